#!/usr/bin/python3
"""mkmail.py - benchmark mailboxes for posuto (bench/README.md).

Writes BOXES mailboxes of MSGS messages each under OUT, as Maildir
(OUT/<prefix><n>/{cur,new,tmp}, files in new/ named the way Postfix names
them, with no ,S= or ,W= size hints) or as JumboDogX emldir
(OUT/<prefix><n>/<k>.eml).  Messages have LF line endings as Postfix
writes them, realistic headers, lines starting with '.', and some are
Japanese (ISO-2022-JP and UTF-8).  Sizes follow --mix:
  full   2 KB .. 5 MB: 70% 2-32 KB, 25% 32 KB-1 MB, 5% 1-5 MB
  small  2 KB .. 512 KB: 99.5% 2-32 KB, 0.5% 32-512 KB (10k/100k boxes)
  tiny   2 KB .. 256 KB (smoke tests)
--single OCTETS writes one such message to the file OUT instead.
The output is deterministic for a given --seed.  OUT/manifest.txt gets one
line per box: "<name> <count> <wire octets>", the wire octets being the
sizes a POP3 server must report (every LF counted as CRLF).

Only the Python standard library is used (Debian's /usr/bin/python3).
"""
import argparse
import base64
import os
import random
import sys
from email.header import Header
from email.utils import format_datetime
import datetime

WORDS = ("the of and to in is that for it as with was on be by this are at "
         "from or have an they which one you were all we her she there would "
         "their will when who him been has more if no out so said what up its "
         "about than into them can only other new some could time these two "
         "may then do first any my now such like our over man me even most "
         "made after also did many before must through back years where much "
         "your way well down should because each just those people how too "
         "little state good very make world still own see men work long get "
         "here between both life being under never day same another know "
         "server mailbox message delivery queue relay spool index octets").split()

JP = [
    "いつもお世話になっております。",
    "来週の会議の資料を添付いたしますので、ご確認ください。",
    "本日の打ち合わせの議事録をお送りします。",
    "ご不明な点がございましたら、お気軽にお問い合わせください。",
    "東京本社の山田です。先日はありがとうございました。",
    "新しいサーバーの移行作業は月曜日の午前中に予定しています。",
    "メールボックスの容量が上限に近づいています。",
    "請求書を送付いたしますので、期日までにお支払いをお願いいたします。",
    "よろしくお願いいたします。",
    "春の桜が満開になり、花見の季節となりました。",
    "会議室の予約を変更しました。第三会議室で行います。",
    "以上、取り急ぎご連絡まで。",
]
JP_SUBJECTS = ["会議資料の送付について", "お見積もりのご依頼", "週報",
               "サーバー移行のお知らせ", "請求書送付のご案内", "打ち合わせ日程の調整"]
EN_SUBJECTS = ["Quarterly report", "Re: meeting notes", "Invoice 2024-117",
               "Fwd: server migration plan", "Lunch on Friday?", "Build failed",
               "Your order has shipped", "Re: Re: budget draft"]
NAMES = [("Alice Example", "alice@example.org"), ("Bob Sender", "bob@example.net"),
         ("山田 太郎", "yamada@example.jp"), ("鈴木 花子", "suzuki@example.co.jp"),
         ("Mailing List", "list@lists.example.com"), ("Carol", "carol@example.com")]


def text_line(rnd):
    r = rnd.random()
    if r < 0.02:
        return "."                       # a line that is just a dot
    if r < 0.04:
        return ".. " + " ".join(rnd.choice(WORDS) for _ in range(8))
    if r < 0.07:
        return "." + " ".join(rnd.choice(WORDS) for _ in range(10))
    if r < 0.10:
        return ""
    if r < 0.12:
        return "> " + " ".join(rnd.choice(WORDS) for _ in range(11))
    n = rnd.randint(6, 13)
    return " ".join(rnd.choice(WORDS) for _ in range(n))


def jp_line(rnd):
    r = rnd.random()
    if r < 0.05:
        return "." + rnd.choice(JP)
    if r < 0.08:
        return "."
    if r < 0.12:
        return ""
    return "".join(rnd.choice(JP) for _ in range(rnd.randint(1, 2)))


class Pools:
    """Large blocks of body lines; bodies are slices at random offsets."""

    def __init__(self, rnd, scale):
        self.text = self._pool(lambda: text_line(rnd) + "\n", scale)
        self.utf8 = self._pool(lambda: jp_line(rnd) + "\n", scale // 4, "utf-8")
        self.jis = self._pool(
            lambda: jp_line(rnd).encode("iso2022_jp").decode("ascii") + "\n",
            scale // 4, "ascii")
        raw = rnd.randbytes(scale * 3 // 4 + 3) if hasattr(rnd, "randbytes") \
            else os.urandom(scale * 3 // 4 + 3)
        self.b64 = base64.encodebytes(raw)

    @staticmethod
    def _pool(gen, size, enc="ascii"):
        out, n = [], 0
        while n < size:
            s = gen().encode(enc)
            out.append(s)
            n += len(s)
        return b"".join(out)

    @staticmethod
    def slice(pool, rnd, length):
        if length <= 0:
            return b""
        if length >= len(pool) - 1:
            reps = pool * (length // len(pool) + 1)
            return reps[:reps.rfind(b"\n", 0, length) + 1] or reps[:length] + b"\n"
        start = rnd.randrange(0, len(pool) - length)
        start = pool.rfind(b"\n", 0, start) + 1
        end = pool.rfind(b"\n", start, start + length) + 1
        if end <= start:
            end = pool.find(b"\n", start) + 1
        return pool[start:end]


def pick_size(rnd, mix):
    r = rnd.random()
    if mix == "full":
        if r < 0.05:
            return rnd.randint(1 << 20, 5 << 20)
        if r < 0.30:
            return int(32768 * (32 ** rnd.random()))
        return int(2048 * (16 ** rnd.random()))
    if mix == "small":
        if r < 0.005:
            return int(32768 * (16 ** rnd.random()))
        return int(2048 * (16 ** rnd.random()))
    if r < 0.1:
        return int(32768 * (8 ** rnd.random()))
    return int(2048 * (16 ** rnd.random()))


def headers(rnd, rcpt, when, subject, charset, cte, ctype, idx):
    name, addr = rnd.choice(NAMES)
    qid = "".join(rnd.choice("0123456789ABCDEF") for _ in range(10))
    date = format_datetime(when)
    hc = "iso-2022-jp" if charset == "iso-2022-jp" else "utf-8"
    if all(ord(c) < 128 for c in subject):
        subj = subject
    else:
        subj = Header(subject, hc).encode()
    if all(ord(c) < 128 for c in name):
        frm = "%s <%s>" % (name, addr)
    else:
        frm = "%s <%s>" % (Header(name, hc).encode(), addr)
    bh = base64.b64encode(rnd.randbytes(32) if hasattr(rnd, "randbytes")
                          else os.urandom(32)).decode()
    sig = base64.b64encode(rnd.randbytes(192) if hasattr(rnd, "randbytes")
                           else os.urandom(192)).decode()
    dom = addr.split("@")[1]
    h = [
        "Return-Path: <%s>" % addr,
        "X-Original-To: %s" % rcpt,
        "Delivered-To: %s" % rcpt,
        "Received: from mail.%s (mail.%s [192.0.2.%d])" % (dom, dom, rnd.randint(1, 254)),
        "\tby mx.bench.example (Postfix) with ESMTPS id %s" % qid,
        "\tfor <%s>; %s" % (rcpt, date),
        "Received: by mail.%s (Postfix, from userid 1000)" % dom,
        "\tid %s; %s" % (qid[::-1], date),
        "DKIM-Signature: v=1; a=rsa-sha256; c=relaxed/relaxed; d=%s;" % dom,
        "\ts=s2024; t=%d; h=from:to:subject:date:message-id:mime-version;" % int(when.timestamp()),
        "\tbh=%s;" % bh,
        "\tb=%s" % sig[:70],
        "\t %s" % sig[70:140],
        "\t %s" % sig[140:],
        "Message-ID: <%d.%s@%s>" % (idx, qid.lower(), dom),
        "Date: %s" % date,
        "From: %s" % frm,
        "To: %s" % rcpt,
        "Subject: %s" % subj,
        "MIME-Version: 1.0",
    ]
    if ctype:
        h.append(ctype)
        if cte:
            h.append("Content-Transfer-Encoding: %s" % cte)
    return ("\n".join(h) + "\n").encode("ascii")


def make_message(rnd, pools, size, rcpt, when, idx):
    kind = rnd.random()
    if size > 64 * 1024:
        # multipart with a text part and a base64 attachment
        boundary = "=_bench_%08x" % rnd.getrandbits(32)
        hdr = headers(rnd, rcpt, when, rnd.choice(EN_SUBJECTS), "us-ascii", None,
                      'Content-Type: multipart/mixed; boundary="%s"' % boundary, idx)
        text = Pools.slice(pools.text, rnd, 1500)
        pre = ("This is a multi-part message in MIME format.\n\n--%s\n"
               "Content-Type: text/plain; charset=us-ascii\n\n" % boundary).encode()
        att = ("\n--%s\nContent-Type: application/pdf; name=\"report-%d.pdf\"\n"
               "Content-Disposition: attachment; filename=\"report-%d.pdf\"\n"
               "Content-Transfer-Encoding: base64\n\n" % (boundary, idx, idx)).encode()
        tail = ("\n--%s--\n" % boundary).encode()
        rest = size - len(hdr) - 1 - len(pre) - len(text) - len(att) - len(tail)
        return hdr + b"\n" + pre + text + att + Pools.slice(pools.b64, rnd, rest) + tail
    if kind < 0.15:
        hdr = headers(rnd, rcpt, when, rnd.choice(JP_SUBJECTS), "iso-2022-jp", "7bit",
                      "Content-Type: text/plain; charset=ISO-2022-JP", idx)
        pool = pools.jis
    elif kind < 0.30:
        hdr = headers(rnd, rcpt, when, rnd.choice(JP_SUBJECTS), "utf-8", "8bit",
                      "Content-Type: text/plain; charset=UTF-8", idx)
        pool = pools.utf8
    else:
        hdr = headers(rnd, rcpt, when, rnd.choice(EN_SUBJECTS), "us-ascii", "7bit",
                      "Content-Type: text/plain; charset=us-ascii; format=flowed", idx)
        pool = pools.text
    body = Pools.slice(pool, rnd, max(size - len(hdr) - 1, 40))
    return hdr + b"\n" + body


def wire_size(data):
    # LF -> CRLF; the generator writes no CR and always ends with LF.
    return len(data) + data.count(b"\n")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", required=True)
    ap.add_argument("--format", choices=("maildir", "emldir"), default="maildir")
    ap.add_argument("--boxes", type=int, default=16)
    ap.add_argument("--msgs", type=int, default=200)
    ap.add_argument("--prefix", default="b")
    ap.add_argument("--name", help="name of the single box (with --boxes 1)")
    ap.add_argument("--mix", choices=("full", "small", "tiny"), default="full")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--single", type=int, metavar="OCTETS",
                    help="write one message of about OCTETS to the file OUT")
    a = ap.parse_args()

    rnd = random.Random(a.seed)
    scale = {"full": 8 << 20, "small": 2 << 20, "tiny": 1 << 20}[a.mix]
    pools = Pools(rnd, scale)
    if a.single:    # one message, for the delivery benchmarks
        when = datetime.datetime(2024, 4, 1, 9, 0, 0,
                                 tzinfo=datetime.timezone(datetime.timedelta(hours=9)))
        data = make_message(rnd, pools, a.single, "rcpt@bench.example", when, a.seed)
        # as the MTA gets it: the delivery agent adds these
        data = b"".join(l for l in data.splitlines(True)
                        if not l.startswith((b"Return-Path:", b"X-Original-To:", b"Delivered-To:")))
        with open(a.out, "wb") as f:
            f.write(data)
        return
    os.makedirs(a.out, exist_ok=True)
    manifest = open(os.path.join(a.out, "manifest.txt"), "a")
    base = datetime.datetime(2024, 4, 1, 9, 0, 0,
                             tzinfo=datetime.timezone(datetime.timedelta(hours=9)))
    serial = 0
    for b in range(1, a.boxes + 1):
        name = a.name if a.name and a.boxes == 1 else "%s%d" % (a.prefix, b)
        root = os.path.join(a.out, name)
        if a.format == "maildir":
            for sub in ("cur", "new", "tmp"):
                os.makedirs(os.path.join(root, sub), exist_ok=True)
        else:
            os.makedirs(root, exist_ok=True)
        total = 0
        for k in range(1, a.msgs + 1):
            serial += 1
            when = base + datetime.timedelta(seconds=serial * 37)
            size = pick_size(rnd, a.mix)
            data = make_message(rnd, pools, size, "%s@bench.example" % name, when, serial)
            total += wire_size(data)
            if a.format == "maildir":
                # Postfix: <time>.V<dev>I<inode>M<usec>.<host>, no size hint
                fn = "%d.V801I%xM%06d.mx.bench.example" % (
                    int(when.timestamp()), 0x100000 + serial, serial % 1000000)
                path = os.path.join(root, "new", fn)
            else:
                path = os.path.join(root, "%d.eml" % k)
            with open(path, "wb") as f:
                f.write(data)
        manifest.write("%s %d %d\n" % (name, a.msgs, total))
        manifest.flush()
        if a.boxes > 1 or a.msgs > 1000:
            print("mkmail: %s: %d messages, %d wire octets" % (root, a.msgs, total),
                  file=sys.stderr)
    manifest.close()


if __name__ == "__main__":
    main()
