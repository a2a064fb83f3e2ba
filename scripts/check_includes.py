#!/usr/bin/env python3
"""The module graph, enforced on #include lines (make check runs this).

    daemon -> pop3, smtp, deliver, http -> net, auth, store -> config -> lib
                                         auth, store -> sql -> config -> lib
    (deliver, the delivery core, uses auth and store only; LMTP may use it)

A file under src/<module>/ may include headers of its own module and of the
modules below it (transitively); net, auth and store never include one
another, and none of them includes a protocol (pop3, smtp, http).
sql (database connections) is used by auth (the sql userdb) and store (the
SQL mail store), and sees only config and lib; libpq and libmariadb are
seen only by sql.
Private headers (*_int.h, *_private.h) are included only from their own
directory.  jansson is seen only by config and http (the web admin's JSON
API), OpenSSL's SSL API only by net.
meson.build links each module's static library with the same graph.

Exit 0 if clean, 1 with one line per violation ("FILE:LINE: ...").
"""
import os
import re
import sys

# Module -> modules it may include (itself always).
ALLOWED = {
    "lib": set(),
    "config": {"lib"},
    "sql": {"config", "lib"},
    "auth": {"sql", "config", "lib"},
    "store": {"sql", "config", "lib"},
    "net": {"config", "lib"},
    "pop3": {"net", "auth", "store", "sql", "config", "lib"},
    "smtp": {"net", "auth", "store", "sql", "config", "lib", "deliver"},
    "deliver": {"auth", "store", "sql", "config", "lib"},
    "http": {"net", "auth", "store", "config", "lib"},
    "daemon": {"pop3", "smtp", "deliver", "http", "net", "auth", "store", "sql", "config",
               "lib"},
}

# System headers only one module may include.
EXTERNAL_OWNER = {
    "jansson.h": ("config", "http"),
    "openssl/ssl.h": "net",
    "libpq-fe.h": "sql",
    "mysql.h": "sql",
    "errmsg.h": "sql",
    "gmime/gmime.h": "http",
}

# Known violations in other helpers' areas, each with the TODO that
# removes it: (file, included header).  Keep this list shrinking.
ALLOWLIST = {
    # (none today; net has no POP3 name or constant either)
}

INCLUDE = re.compile(r'^\s*#\s*include\s*([<"])([^>"]+)[>"]')


def check(root):
    problems = []
    src = os.path.join(root, "src")
    for module in sorted(os.listdir(src)):
        mdir = os.path.join(src, module)
        if not os.path.isdir(mdir):
            continue
        if module not in ALLOWED:
            problems.append("src/%s/: module not in the graph "
                            "(add it to scripts/check_includes.py)" % module)
            continue
        for name in sorted(os.listdir(mdir)):
            if not name.endswith((".c", ".h")):
                continue
            rel = "src/%s/%s" % (module, name)
            with open(os.path.join(mdir, name), encoding="utf-8",
                      errors="replace") as f:
                for lineno, line in enumerate(f, 1):
                    m = INCLUDE.match(line)
                    if m is None:
                        continue
                    why = judge(module, m.group(1), m.group(2))
                    if why is not None and (rel, m.group(2)) not in ALLOWLIST:
                        problems.append("%s:%d: %s" % (rel, lineno, why))
    return problems


def judge(module, kind, header):
    if kind == "<":
        owner = EXTERNAL_OWNER.get(header)
        owners = (owner,) if isinstance(owner, str) else owner
        if owner is not None and module not in owners:
            return "<%s> is for src/%s/ only" % (
                header, "/ and src/".join(owners))
        return None
    if "/" not in header:
        return '"%s": include as "<module>/%s"' % (header, header)
    target, base = header.split("/", 1)
    if target not in ALLOWED:
        return '"%s": no module src/%s/' % (header, target)
    if target != module and target not in ALLOWED[module]:
        return '"%s": %s may not use %s (%s -> %s)' % (
            header, module, target, module,
            ", ".join(sorted(ALLOWED[module])) or "nothing")
    if (base.endswith("_int.h") or base.endswith("_private.h")) \
            and target != module:
        return '"%s": private to src/%s/' % (header, target)
    return None


def main():
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    if len(sys.argv) > 1:
        root = sys.argv[1]
    problems = check(root)
    for p in problems:
        print(p)
    stale = [a for a in ALLOWLIST if not os.path.exists(os.path.join(root, a[0]))]
    for a in stale:
        print("allowlist entry for a missing file: %s" % (a,))
    return 1 if problems or stale else 0


if __name__ == "__main__":
    sys.exit(main())
