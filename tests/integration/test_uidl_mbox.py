"""Issue 16, mbox side: taking over from UW ipop3d (c-client) and qpopper.

The mboxes are written the way those servers wrote them (no packaged
server is left): c-client per imap-2007f src/osdep/unix/unix.c
(unix_pseudo(): the "FOLDER INTERNAL DATA" pseudo-message with X-IMAP;
unix_xstatus(): X-IMAPbase on the first message, then Status, X-Status,
X-Keywords padded with blanks, X-UID after each message's header),
qpopper 4 per its pop_updt() (X-UIDL first, Status: updated).
What ipop3d and qpopper would have answered is computed here, on its
own, from the same rules: UIDL "%08lx%08lx" % (uidvalidity, uid), sizes
and RETR bytes without c-client's bookkeeping lines; qpopper's X-UIDL
value, RETR/TOP bytes as its pop_send() sent them and LIST sizes as its
pop_dropinfo() counted them (see the qpopper section)."""

import os
import poplib
import re
import subprocess

from posuto_testlib import Pop3, posuto_bin, write_config

PW = "{PLAIN}secret"
UW_FIELDS = {"status", "x-status", "x-keywords", "x-uid", "x-imap", "x-imapbase"}
UIDV = 1733100000


def from_line(i):
    return b"From sender%d@example.org Mon Jan  6 10:%02d:00 2025\n" % (i, i % 60)


def body(i):
    return b"Hello %d\n\nline two of %d\n.dot line\n" % (i, i)


def header(i, extra=b""):
    return (b"Return-Path: <sender%d@example.org>\nSubject: message %d\n"
            b"Message-ID: <%d@uw>\n" % (i, i, i)) + extra


def uw_status(uid, seen=False, base=None, last=0):
    s = b""
    if base is not None:
        s += b"X-IMAPbase: %d %d\n" % (base, last)
    s += b"Status: %sO\n" % (b"R" if seen else b"")
    s += b"X-Status: \n"
    s += b"X-Keywords:" + b" " * 50 + b"\n"
    s += b"X-UID: %d\n" % uid
    return s


def pseudo(uidv, last):
    return (b"From MAILER-DAEMON Mon Jan  6 09:00:00 2025\n"
            b"Date: 06 Jan 2025 09:00:00 +0000\n"
            b"From: Mail System Internal Data <MAILER-DAEMON@host.example>\n"
            b"Subject: DON'T DELETE THIS MESSAGE -- FOLDER INTERNAL DATA\n"
            b"Message-ID: <1736154000@host.example>\n"
            b"X-IMAP: %010d %010d\n"
            b"Status: RO\n\n"
            b"This text is part of the internal format of your mail folder, and is not\n"
            b"a real message.  It is created automatically by the mail system software.\n"
            b"If deleted, important folder data will be lost, and it will be re-created\n"
            b"with the data reset to initial values.\n\n" % (uidv, last))


def uw_message(i, uid, **kw):
    """(the mbox bytes, what ipop3d sends for it)"""
    h = header(i) + uw_status(uid, **kw)
    stored = h + b"\n" + body(i)
    return from_line(i) + stored + b"\n", ipop3d_view(stored)


def ipop3d_view(stored):
    """c-client's message: header lines named like its bookkeeping
    headers (any case) dropped, CRLF line ends."""
    head, _, rest = stored.partition(b"\n\n")
    kept = []
    for line in head.split(b"\n"):
        name = re.match(rb"[^:\s]*", line).group(0).decode().lower()
        if name not in UW_FIELDS:
            kept.append(line)
    text = b"\n".join(kept) + b"\n\n" + rest
    return text.replace(b"\n", b"\r\n")


def start(servers, tmp_path, box_bytes, **extra):
    spool, state = tmp_path / "spool", tmp_path / "state"
    spool.mkdir(exist_ok=True)
    state.mkdir(exist_ok=True)
    (spool / "bob").write_bytes(box_bytes)
    users = [{"UserName": "bob", "Password": PW, "MailboxFormat": "mbox",
              "MailboxPath": str(spool / "%u")}]
    cfg = servers.config(users=users, MboxStateDirectory=str(state), **extra)
    return servers.start(cfg), spool / "bob", cfg


def session(srv):
    c = Pop3("127.0.0.1", srv.port)
    c.must_login("bob", "secret")
    return c


def check_served(c, expect):
    """expect: [(uidl, wire bytes)] as the old server listed them"""
    n, total = c.stat()
    assert n == len(expect)
    assert total == sum(len(w) for _, w in expect)
    assert c.list() == {k + 1: len(w) for k, (_, w) in enumerate(expect)}
    assert c.uidl() == {k + 1: u for k, (u, _) in enumerate(expect)}
    for k, (_, w) in enumerate(expect):
        assert c.retr(k + 1) == w


def uw_box(with_pseudo=True):
    parts, expect = [], []
    if with_pseudo:
        parts.append(pseudo(UIDV, 7))
    uids = [3, 4, 7]
    for k, uid in enumerate(uids):
        base = UIDV if (k == 0 and not with_pseudo) else None
        raw, view = uw_message(k + 1, uid, seen=k == 1, base=base, last=7)
        parts.append(raw)
        expect.append(("%08x%08x" % (UIDV, uid), view))
    return b"".join(parts), expect


def test_uw_pseudo_message_mbox_served_as_ipop3d_did(servers, tmp_path):
    box_bytes, expect = uw_box(with_pseudo=True)
    srv, box, _ = start(servers, tmp_path, box_bytes, UidlCompat="uw")
    c = session(srv)
    check_served(c, expect)
    # TOP: the header without the hidden lines too
    c.ok("TOP 2 0")
    top = c.read_multi_raw()
    assert b"X-UID" not in top and b"Status" not in top
    assert top.startswith(b"Return-Path: <sender2@example.org>\r\n")
    # deleting every listed message leaves the pseudo-message alone
    for k in range(len(expect)):
        c.ok("DELE %d" % (k + 1))
    c.quit()
    left = box.read_bytes()
    assert left.startswith(b"From MAILER-DAEMON ") and left.count(b"\nFrom ") == 0
    assert b"X-IMAP: %010d" % UIDV in left
    c = session(srv)
    assert c.stat() == (0, 0)
    c.quit()


def test_uw_imapbase_auto_detected_and_headers_never_written(servers, tmp_path):
    box_bytes, expect = uw_box(with_pseudo=False)
    srv, box, _ = start(servers, tmp_path, box_bytes)   # UidlCompat auto
    c = session(srv)
    check_served(c, expect)
    c.ok("DELE 2")
    c.quit()
    # posuto removed message 2 and wrote no header of its own
    after = box.read_bytes()
    parts = box_bytes.split(b"\nFrom ")
    assert after == parts[0] + b"\nFrom " + parts[2]
    c = session(srv)
    check_served(c, [expect[0], expect[2]])
    c.quit()
    assert srv.log().count("serving the UIDLs of uw") == 1


def test_uw_headers_in_a_mailbox_posuto_served_do_not_switch(servers, tmp_path):
    plain = b"".join(from_line(i) + header(i) + b"\n" + body(i) + b"\n" for i in (1, 2))
    srv, box, _ = start(servers, tmp_path, plain)
    c = session(srv)
    own = c.uidl()
    c.quit()
    # a mail client run on the spool adds c-client's headers later
    box_bytes, _ = uw_box(with_pseudo=False)
    box.write_bytes(plain + box_bytes)
    c = session(srv)
    u = c.uidl()
    c.quit()
    assert u[1] == own[1] and u[2] == own[2]
    assert not any(re.fullmatch(r"[0-9a-f]{16}", x) for x in u.values())


def test_uw_uids_going_down_are_renumbered_so_posutos_own(servers, tmp_path):
    parts = [pseudo(UIDV, 9)]
    for k, uid in enumerate([5, 4, 9]):
        parts.append(uw_message(k + 1, uid)[0])
    srv, box, _ = start(servers, tmp_path, b"".join(parts), UidlCompat="uw")
    c = session(srv)
    u = c.uidl()
    sizes = c.list()
    c.quit()
    assert len(u) == 3
    assert not any(x.startswith("%08x" % UIDV) for x in u.values())
    # the headers are still hidden (c-client hides them either way)
    assert sizes[1] == len(uw_message(1, 5)[1])


QUOTED = b"Quoted lines:\n>From here Mon Jan  6 10:00:00 2025\n>>From there\n"


def test_uw_quoted_from_lines_as_ipop3d_sent_them(servers, tmp_path):
    """c-client's unix_text_work() sends the stored text as it is (LF as
    CRLF) and quotes nothing back: a ">From " line goes out with its '>',
    and LIST counts it (one octet more than posuto's own mboxrd view)."""
    parts, expect = [pseudo(UIDV, 7)], []
    for k, uid in enumerate([3, 4]):
        h = header(k + 1) + uw_status(uid, last=7)
        stored = h + b"\n" + body(k + 1) + (QUOTED if k == 1 else b"")
        parts.append(from_line(k + 1) + stored + b"\n")
        expect.append(("%08x%08x" % (UIDV, uid), ipop3d_view(stored)))
    assert b"\r\n>From here" in expect[1][1] and b"\r\n>>From there" in expect[1][1]
    srv, box, _ = start(servers, tmp_path, b"".join(parts), UidlCompat="uw")
    c = session(srv)
    check_served(c, expect)
    c.ok("TOP 2 9")
    assert c.read_multi_raw().endswith(b"\r\n>From here Mon Jan  6 10:00:00 2025\r\n"
                                       b">>From there\r\n")
    c.quit()


def test_mboxrd_quoting_undone_outside_the_compat_modes(servers, tmp_path):
    """The control: posuto's own view of the same mbox un-quotes (mboxrd)."""
    stored = header(1) + b"\n" + body(1) + QUOTED
    srv, box, _ = start(servers, tmp_path, from_line(1) + stored + b"\n", UidlCompat="none")
    c = session(srv)
    want = stored.replace(b">From here", b"From here").replace(b">>From", b">From")
    assert c.list() == {1: len(want) + want.count(b"\n")}
    assert c.retr(1) == want.replace(b"\n", b"\r\n")
    c.quit()


# ---- qpopper ----
#
# The files as qpopper 4's pop_updt() writes them: the From_ line, then
# "X-UIDL: <uidl>" first, the other header lines (all old X-UIDL lines
# dropped, Content-Length kept), "Status: RO" for a retrieved message
# (Status: replaced, else "Status: U" or "Status: RO" added before the
# blank line), the body, and the blank line before the next From_ line.
# What qpopper sent is computed here from pop_send()/header_mucker_input()
# and what it listed from pop_dropinfo() (popper.h: CONTENT_LENGTH 0,
# MAXMSGLINELEN 1024), independently of posuto.

QPOP_PIECE = 1023      # fgets(buffer, MAXMSGLINELEN) reads 1023 octets at most
poplib._MAXLINE = 1 << 16    # the 3000-octet line below


def q_written(i, uidl, headers, body, status=b"RO"):
    """One message as pop_updt() writes it (with the blank line after)."""
    h = [b"X-UIDL: " + uidl + b"\n"]
    have_status = False
    for line in headers:
        if line.lower().startswith(b"x-uidl:"):
            continue
        if line.lower().startswith(b"status:"):
            line, have_status = b"Status: " + status + b"\n", True
        h.append(line)
    if not have_status:
        h.append(b"Status: " + status + b"\n")
    return from_line(i) + b"".join(h) + b"\n" + body + b"\n"


def q_lines(msg):
    """The message's lines after its From_ line, as qpopper read them
    (the blank line before the next From_ line included)."""
    rest = msg.split(b"\n", 1)[1]
    return [l + b"\n" for l in rest.split(b"\n")[:-1]]


def q_uidl_of(lines):
    for l in lines:
        if l == b"\n":
            return None
        if l[:7].lower() == b"x-uidl:":
            v = l[7:].lstrip(b" \t")
            if 12 <= len(v[:QPOP_PIECE]) <= 33:
                return v.rstrip(b"\n")
    return None


def q_sent(lines, uidl):
    """pop_send(): header lines starting X-UIDL:/Content-Length: (any case)
    dropped, "X-UIDL: <uidl>" before the first Status: or blank line, the
    rest as stored; LF -> CRLF."""
    out, in_hdr, sent = [], True, False
    for l in lines:
        if l == b"\n":
            in_hdr = False
        low = l.lower()
        if in_hdr and (low.startswith(b"content-length:") or low.startswith(b"x-uidl:")):
            continue
        if not sent and (l == b"\n" or low.startswith(b"status:")):
            out.append(b"X-UIDL: " + uidl + b"\n")
            sent = True
        out.append(l)
    return b"".join(out).replace(b"\n", b"\r\n")


def q_listed(lines):
    """pop_dropinfo(): each fgets() piece counts its octets plus a CR; the
    X-UIDL header lines do not, except the one used."""
    size, in_hdr, found = 0, True, False
    for l in lines:
        pieces = [l[k:k + QPOP_PIECE] for k in range(0, len(l), QPOP_PIECE)]
        if l == b"\n":
            in_hdr = False
        if in_hdr and l[:7].lower() == b"x-uidl:":
            v = pieces[0][7:].lstrip(b" \t")
            if not found and 12 <= len(v) <= 33:
                found = True
                size += len(pieces[0]) + 1
            pieces = pieces[1:]
        size += sum(len(p) + 1 for p in pieces)
    return size


U = [b"'1X!!dG?!!k5'!!3Q0\"!", b"Zb7!!&u@!!x$p!!f9e,!", b"+9<!!Oq~!!_Ad!!mM0/!",
     b"k=*!!2S#!!pe:!!@cS7!", b"F%r!!yW>!!J8a!!)Lt4!"]


def q_box():
    h = lambda i: [b"Return-Path: <sender%d@example.org>\n" % i,
                   b"Received: from mx.example.org by host; Mon, 6 Jan 2025 10:00:00 +0000\n",
                   b"Subject: message %d\n" % i, b"Message-ID: <%d@q>\n" % i]
    msgs = [
        # 1: as qpopper left it after a RETR: X-UIDL moves before Status
        q_written(1, U[0], h(1), body(1)),
        # 2: a Content-Length: header (Solaris mail.local): not sent, but
        # counted (CONTENT_LENGTH 0); an X-UIDL in the body stays
        q_written(2, U[1], h(2) + [b"Content-Length: 40\n"],
                  body(2) + b"X-UIDL: not a header\n", status=b"U"),
        # 3: a 3000-octet body line: three pieces, three CRs counted
        q_written(3, U[2], h(3), b"long " + b"x" * 2995 + b"\n" + QUOTED),
        # 4: no body: the blank line before the next From_ line ends it
        from_line(4) + b"X-UIDL: " + U[3] + b"\n" + b"".join(h(4)) + b"\n",
        # 5: Status in the middle of the header, a second X-UIDL
        from_line(5) + b"X-UIDL: " + U[4] + b"\n" + h(5)[0] + b"Status: RO\n" +
        b"".join(h(5)[1:]) + b"x-uidl: second-one-ignored\n\n" + body(5) + b"\n",
        # 6: an X-UIDL qpopper ignored (too short): it made up its own
        from_line(6) + b"X-UIDL: short\n" + b"".join(h(6)) + b"\n" + body(6) + b"\n",
        # 7: mail that came after qpopper
        from_line(7) + b"".join(h(7)) + b"\n" + body(7) + b"\n",
    ]
    return msgs


def q_expect(msgs):
    """[(uidl or None, LIST size, RETR bytes)] as qpopper served them; None
    where qpopper's UIDL was its own: those are served as stored."""
    out = []
    for m in msgs:
        lines = q_lines(m)
        u = q_uidl_of(lines)
        if u is None:
            stored = b"".join(lines[:-1]).replace(b"\n", b"\r\n")
            out.append((None, len(stored), stored))
        else:
            out.append((u.decode(), q_listed(lines), q_sent(lines, u)))
    return out


def test_qpopper_served_as_qpopper_sent_it(servers, tmp_path):
    msgs = q_box()
    expect = q_expect(msgs)
    # the cases differ from the stored bytes as meant
    assert expect[0][2].index(b"X-UIDL:") > expect[0][2].index(b"Message-ID:")
    assert b"Content-Length" not in expect[1][2] and expect[1][1] > len(expect[1][2])
    assert expect[2][1] == len(expect[2][2]) + 2
    assert expect[3][2].endswith(b"X-UIDL: " + U[3] + b"\r\n\r\n")
    assert expect[4][2].index(b"X-UIDL:") < expect[4][2].index(b"Status:")
    srv, box, _ = start(servers, tmp_path, b"".join(msgs), UidlCompat="qpopper")
    p = poplib.POP3("127.0.0.1", srv.port, timeout=30)
    p.user("bob")
    p.pass_("secret")
    listed = {int(a): int(b) for a, b in (l.split() for l in p.list()[1])}
    uidls = {int(a): b.decode() for a, b in (l.split() for l in p.uidl()[1])}
    assert listed == {k + 1: e[1] for k, e in enumerate(expect)}
    for k, (u, size, sent) in enumerate(expect):
        if u is not None:
            assert uidls[k + 1] == u
        else:
            assert re.fullmatch(r"[0-9a-f]{24}", uidls[k + 1])
        resp, lines, octets = p.retr(k + 1)
        assert b"\r\n".join(lines) + b"\r\n" == sent, k + 1
        assert octets == len(sent)
        # TOP: the same header, then n body lines (the blank line before
        # the next From_ line is one of them for qpopper)
        head = sent[:sent.index(b"\r\n\r\n") + 4]
        resp, lines, octets = p.top(k + 1, 0)
        assert b"\r\n".join(lines) + b"\r\n" == head, k + 1
        resp, lines, octets = p.top(k + 1, 1000)
        assert b"\r\n".join(lines) + b"\r\n" == sent, k + 1
    p.quit()
    # the same on a warm open (sizes from the index), and nothing written
    assert box.read_bytes() == b"".join(msgs)
    p = poplib.POP3("127.0.0.1", srv.port, timeout=30)
    p.user("bob")
    p.pass_("secret")
    assert {int(a): int(b) for a, b in (l.split() for l in p.list()[1])} == listed
    assert b"\r\n".join(p.retr(3)[1]) + b"\r\n" == expect[2][2]
    p.quit()


def test_qpopper_sizes_as_fetchmail_saw_them(servers, tmp_path):
    """fetchmail's LIST-size check: it reports each message's size from
    LIST; under posuto they are qpopper's."""
    msgs = q_box()
    expect = q_expect(msgs)
    srv, box, _ = start(servers, tmp_path, b"".join(msgs), UidlCompat="qpopper")
    rc = tmp_path / "fetchmailrc"
    out = tmp_path / "fetched"
    rc.write_text('poll 127.0.0.1 protocol pop3 port %d uidl\n'
                  '  user "bob" password "secret" keep sslproto \'\' '
                  'mda "cat >> %s"\n' % (srv.port, out))
    rc.chmod(0o600)
    env = dict(os.environ, HOME=str(tmp_path), FETCHMAILHOME=str(tmp_path))
    r = subprocess.run(["fetchmail", "-f", str(rc), "--nosyslog", "--nodetach", "-v"],
                       capture_output=True, timeout=120, env=env, text=True)
    assert r.returncode in (0, 1), r.stdout + r.stderr
    sizes = [int(x) for x in re.findall(r"reading message \S+ of \d+ \((\d+) (?:header )?octets\)",
                                         r.stdout + r.stderr)]
    assert sizes == [e[1] for e in expect], r.stdout + r.stderr
    assert "error" not in (r.stdout + r.stderr).lower(), r.stdout + r.stderr


def test_qpopper_uidls_that_break_rfc1939_or_repeat(servers, tmp_path):
    """Values qpopper used but posuto may not serve (a blank in it, the same
    twice): posuto's own UIDL, logged once, the message served as stored."""
    h = lambda i: header(i) + b"Status: RO\n"
    vals = [b"has a space!", b"dup-uidl-0001", b"dup-uidl-0001", U[0]]
    msgs = [from_line(i + 1) + b"X-UIDL: " + v + b"\n" + h(i + 1) + b"\n" + body(i + 1) + b"\n"
            for i, v in enumerate(vals)]
    srv, box, _ = start(servers, tmp_path, b"".join(msgs), UidlCompat="qpopper")
    c = session(srv)
    u, sizes = c.uidl(), c.list()
    for k in (0, 1, 2):
        stored = q_lines(msgs[k])[:-1]
        if k != 1:
            assert re.fullmatch(r"[0-9a-f]{24}(-\d+)?", u[k + 1]), u
            assert c.retr(k + 1) == b"".join(stored).replace(b"\n", b"\r\n")
    assert u[2] == "dup-uidl-0001" and u[4] == U[0].decode()
    assert c.retr(4) == q_sent(q_lines(msgs[3]), U[0])
    assert len(set(u.values())) == 4
    c.quit()
    log = srv.log()
    assert log.count('"has a space!" of message 1 is not a valid') == 1, log
    assert log.count('"dup-uidl-0001" of message 3 is a duplicate') == 1, log


def test_qpopper_xuidl_ignored_by_auto(servers, tmp_path):
    box_bytes = b"".join(q_box())
    srv, _, _ = start(servers, tmp_path, box_bytes)
    c = session(srv)
    u = c.uidl()
    c.quit()
    assert all(re.fullmatch(r"[0-9a-f]{24}(-\d+)?", x) for x in u.values())


# ---- posuto migrate check ----

def migrate(tmp_path, cfg, frm):
    p = write_config(tmp_path / "migrate.json", cfg)
    return subprocess.run([posuto_bin(), "migrate", "check", "-c", p, "--from", frm, "bob"],
                          capture_output=True, timeout=60, text=True)


def setup_only(tmp_path, box_bytes, servers):
    spool, state = tmp_path / "spool", tmp_path / "state"
    spool.mkdir()
    state.mkdir()
    (spool / "bob").write_bytes(box_bytes)
    users = [{"UserName": "bob", "Password": PW, "MailboxFormat": "mbox",
              "MailboxPath": str(spool / "%u")}]
    return servers.config(users=users, MboxStateDirectory=str(state))


def test_migrate_check_uw(servers, tmp_path):
    box_bytes, expect = uw_box(with_pseudo=True)
    new = from_line(9) + header(9) + b"\n" + body(9) + b"\n"   # came later: no X-UID
    cfg = setup_only(tmp_path, box_bytes + new, servers)
    r = migrate(tmp_path, cfg, "uw")
    assert r.returncode == 1, r.stdout + r.stderr
    assert "4 messages, 3 keep their UIDL, 1 change" in r.stdout
    assert "pseudo-message hidden" in r.stdout
    assert "message 4: UIDL" in r.stdout and "no X-UID header" in r.stdout
    # nothing changed, and the server then serves what it promised
    srv = servers.start(cfg)
    c = session(srv)
    u = c.uidl()
    c.quit()
    assert [u[k + 1] for k in range(3)] == [x for x, _ in expect]


def test_migrate_check_uw_renumbered(servers, tmp_path):
    parts = [uw_message(1, 5, base=UIDV, last=5)[0], uw_message(2, 5)[0]]
    cfg = setup_only(tmp_path, b"".join(parts), servers)
    r = migrate(tmp_path, cfg, "uw")
    assert r.returncode == 1
    assert "2 messages, 0 keep their UIDL, 2 change" in r.stdout
    assert r.stdout.count("c-client renumbered") == 2


def test_migrate_check_qpopper(servers, tmp_path):
    cfg = setup_only(tmp_path, b"".join(q_box()), servers)
    r = migrate(tmp_path, cfg, "qpopper")
    assert r.returncode == 1
    assert "7 messages, 5 keep their UIDL, 2 change" in r.stdout, r.stdout
    assert r.stdout.count("no X-UIDL header qpopper used") == 2, r.stdout


def test_doctor_reads_the_mbox_and_names_the_uidl_source(servers, tmp_path):
    """posuto doctor on an mbox user: the file is a mailbox (not "not a
    directory"), counted, and its UIDLs' source named."""
    box_bytes, expect = uw_box(with_pseudo=True)
    cfg = setup_only(tmp_path, box_bytes, servers)
    p = write_config(tmp_path / "doctor.json", cfg)
    r = subprocess.run([posuto_bin(), "doctor", "-c", p, "bob"], capture_output=True,
                       timeout=60, text=True)
    out = " ".join((r.stdout + r.stderr).split())
    assert "not a directory" not in out, out
    assert "posuto reads the mbox at %s" % (tmp_path / "spool" / "bob") in out, out
    assert "%d messages" % len(expect) in out, out
    assert "UIDLs come from uw" in out, out
