"""Issue 16, mbox side: taking over from UW ipop3d (c-client) and qpopper.

The mboxes are written the way those servers wrote them (no packaged
server is left): c-client per imap-2007f src/osdep/unix/unix.c
(unix_pseudo(): the "FOLDER INTERNAL DATA" pseudo-message with X-IMAP;
unix_xstatus(): X-IMAPbase on the first message, then Status, X-Status,
X-Keywords padded with blanks, X-UID after each message's header),
qpopper per its pop_dropinfo() (an X-UIDL: header in each message).
What ipop3d and qpopper would have answered is computed here, on its
own, from the same rules: UIDL "%08lx%08lx" % (uidvalidity, uid), sizes
and RETR bytes without c-client's bookkeeping lines; qpopper's X-UIDL
value, its header left in the message."""

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

def q_message(i, uidl_line):
    stored = header(i, (b"X-UIDL: %s\n" % uidl_line if uidl_line is not None else b"")
                    + b"Status: RO\n") + b"\n" + body(i)
    return from_line(i) + stored + b"\n", stored.replace(b"\n", b"\r\n")


def q_box():
    vals = [b"0a1b2c3d4e5f60718293a4b5c6d7e8f9", b"has a space", None,
            b"dup-uidl-1", b"dup-uidl-1", b"!#$%&'()*+,-./:;<=>?@[]^_`{|}~"]
    msgs = [q_message(i + 1, v) for i, v in enumerate(vals)]
    return b"".join(m for m, _ in msgs), [w for _, w in msgs], vals


def test_qpopper_xuidl_only_when_configured(servers, tmp_path):
    box_bytes, wires, vals = q_box()
    srv, box, _ = start(servers, tmp_path, box_bytes, UidlCompat="qpopper")
    c = session(srv)
    u, sizes = c.uidl(), c.list()
    # sizes and content as qpopper gave them: the X-UIDL header is sent
    assert sizes == {k + 1: len(w) for k, w in enumerate(wires)}
    for k, w in enumerate(wires):
        assert c.retr(k + 1) == w
    c.quit()
    assert u[1] == vals[0].decode()
    assert u[4] == "dup-uidl-1" and u[6] == vals[5].decode()
    # invalid, missing, duplicate: posuto's own (24 hex digits)
    for k in (2, 3, 5):
        assert re.fullmatch(r"[0-9a-f]{24}(-\d+)?", u[k]), u
    assert len(set(u.values())) == 6
    c = session(srv)
    assert c.uidl() == u
    c.quit()
    log = srv.log()
    assert log.count('"has a space" of message 2 is not a valid') == 1
    assert log.count('"dup-uidl-1" of message 5 is a duplicate') == 1


def test_qpopper_quoted_from_lines_as_qpopper_sent_them(servers, tmp_path):
    """qpopper's pop_send() sends the body lines as stored (only '.' is
    stuffed) and pop_dropinfo() counts each stored line plus its CR."""
    raw, wire = q_message(1, b"quoted-1")
    stored = raw[len(from_line(1)):-1] + QUOTED
    wire = stored.replace(b"\n", b"\r\n")
    srv, box, _ = start(servers, tmp_path, from_line(1) + stored + b"\n",
                        UidlCompat="qpopper")
    c = session(srv)
    assert c.list() == {1: len(wire)}
    assert c.retr(1) == wire
    assert c.uidl() == {1: "quoted-1"}
    c.quit()


def test_qpopper_xuidl_ignored_by_auto(servers, tmp_path):
    box_bytes, _, vals = q_box()
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
    box_bytes, _, _ = q_box()
    cfg = setup_only(tmp_path, box_bytes, servers)
    r = migrate(tmp_path, cfg, "qpopper")
    assert r.returncode == 1
    assert "6 messages, 3 keep their UIDL, 3 change" in r.stdout
    assert "not a valid RFC 1939" in r.stdout
    assert "repeats another" in r.stdout
    assert "no X-UIDL header" in r.stdout


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
