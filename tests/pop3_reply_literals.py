#!/usr/bin/env python3
"""Every reply text of src/pop3 is in the catalogue (src/pop3/pop3_msg.h).

Fails if a C string literal outside the catalogue starts a status line
("+OK", "-ERR"), if an id lacks its English or Japanese text, or if a
text has no id.  Comments are ignored; literals are read as C reads them
(escapes and all), so a reply cannot hide in a comment-like string.

Usage: pop3_reply_literals.py SRC_POP3_DIR
"""

import pathlib
import re
import sys

CATALOGUE = "pop3_msg.h"


def literals(text):
    """(line, literal body) of every string literal outside comments."""
    out = []
    i, n, line = 0, len(text), 1
    while i < n:
        c = text[i]
        if c == "\n":
            line += 1
            i += 1
        elif text.startswith("/*", i):
            j = text.find("*/", i + 2)
            j = n if j < 0 else j + 2
            line += text.count("\n", i, j)
            i = j
        elif text.startswith("//", i):
            j = text.find("\n", i)
            i = n if j < 0 else j
        elif c == "'":
            j = i + 1
            while j < n and text[j] != "'":
                j += 2 if text[j] == "\\" else 1
            i = j + 1
        elif c == '"':
            j = i + 1
            while j < n and text[j] != '"':
                j += 2 if text[j] == "\\" else 1
            out.append((line, text[i + 1:j]))
            i = j + 1
        else:
            i += 1
    return out


def main(argv):
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    d = pathlib.Path(argv[1])
    problems = []
    sources = sorted(d.glob("*.c")) + sorted(d.glob("*.h"))
    if not any(p.name == CATALOGUE for p in sources):
        problems.append("%s not found in %s" % (CATALOGUE, d))
    for p in sources:
        if p.name == CATALOGUE:
            continue
        for line, lit in literals(p.read_text(encoding="utf-8")):
            if re.match(r"(\+OK|-ERR)(\s|$|\\)", lit):
                problems.append("%s:%d: reply text outside the catalogue: \"%s\""
                                % (p, line, lit))

    cat = (d / CATALOGUE).read_text(encoding="utf-8")
    m = re.search(r"#define POP3_MSG_IDS\(X\)((?:.*\\\n)*.*\n)", cat)
    if not m:
        problems.append("POP3_MSG_IDS not found in %s" % CATALOGUE)
        ids = []
    else:
        ids = re.findall(r"X\((\w+)\)", m.group(1))
    dup = sorted({i for i in ids if ids.count(i) > 1})
    if dup:
        problems.append("ids listed twice: %s" % ", ".join(dup))
    texts = {}
    for lang, ident in re.findall(r"#define POP3_(EN|JA)_(\w+)", cat):
        texts.setdefault(ident, set()).add(lang)
    for i in ids:
        for lang in ("EN", "JA"):
            if lang not in texts.get(i, set()):
                problems.append("id %s has no POP3_%s_%s text" % (i, lang, i))
    for t in sorted(set(texts) - set(ids)):
        problems.append("POP3_*_%s has no id in POP3_MSG_IDS" % t)

    for p in problems:
        print(p)
    print("%d ids, %d problems" % (len(ids), len(problems)))
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
