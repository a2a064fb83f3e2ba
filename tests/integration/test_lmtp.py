"""LMTP (RFC 2033) on TCP and on a unix socket (issue 11): extensions,
per-recipient replies, SIZE, and 200 messages over 8 parallel connections
with nothing lost or duplicated.  Clients are Python's smtplib.LMTP and
poplib."""

import concurrent.futures
import os
import poplib
import re
import smtplib
import socket
import stat

import pytest

from posuto_testlib import Server, base_config, free_port

PW = "{PLAIN}secret"
USERS = ["alice", "bob"]


def strip_trace(raw: bytes) -> bytes:
    return re.sub(rb"^(Return-Path|Delivered-To):[^\r\n]*\r\n", b"", raw,
                  flags=re.M)


def pop_all(port, user, dele=False):
    c = poplib.POP3("127.0.0.1", port, timeout=30)
    c.user(user)
    c.pass_("secret")
    n = len(c.list()[1])
    out = []
    for i in range(1, n + 1):
        _resp, lines, _octets = c.retr(i)
        out.append(b"\r\n".join(lines) + b"\r\n")
        if dele:
            c.dele(i)
    c.quit()
    return out


@pytest.fixture
def lmtp_server(tmp_path):
    pop_port, lmtp_port = free_port(), free_port()
    sock = tmp_path / "lmtp.sock"
    cfg = base_config(pop_port, tmp_path / "mail", users=[
        {"UserName": u, "Password": PW} for u in USERS])
    cfg["Pop3Server"]["Listen"] = [
        {"Address": "127.0.0.1", "Port": pop_port},
        {"Address": "127.0.0.1", "Port": lmtp_port, "Protocol": "lmtp",
         "MaxMessageSize": 100000},
        {"Path": str(sock), "Protocol": "lmtp", "Mode": "0600"},
    ]
    srv = Server(tmp_path, cfg).start()
    srv.pop_port, srv.lmtp_port, srv.sock = pop_port, lmtp_port, str(sock)
    yield srv
    srv.stop()


def lmtp_tcp(srv):
    c = smtplib.LMTP("127.0.0.1", srv.lmtp_port, timeout=30)
    return c


def lmtp_unix(srv):
    c = smtplib.LMTP(srv.sock, timeout=30)
    return c


def lmtp_send(c, sender, rcpts, msg):
    """One transaction; the DATA replies, one per accepted recipient
    (smtplib.LMTP.data() reads only the first of them)."""
    assert c.mail(sender)[0] == 250
    ok = [r for r in rcpts if c.rcpt(r)[0] == 250]
    assert c.docmd("DATA")[0] == 354
    c.send(msg.replace(b"\r\n.", b"\r\n..") + b".\r\n")
    return [c.getreply() for _ in ok]


MSG = (b"From: app@example.org\r\nTo: alice@example.com\r\nSubject: hi\r\n"
       b"Message-ID: <1@test>\r\n\r\nbody line\r\n.leading dot\r\n"
       b"8bit \xc3\xa9\r\n")


@pytest.mark.parametrize("via", ["tcp", "unix"])
def test_lhlo_and_per_recipient_replies(lmtp_server, via):
    srv = lmtp_server
    if via == "unix":
        assert stat.S_ISSOCK(os.lstat(srv.sock).st_mode)
        assert stat.S_IMODE(os.lstat(srv.sock).st_mode) == 0o600
    c = lmtp_tcp(srv) if via == "tcp" else lmtp_unix(srv)
    code, _ = c.ehlo("client.example")   # smtplib.LMTP sends LHLO
    assert code == 250
    for ext in ("pipelining", "8bitmime", "enhancedstatuscodes", "size"):
        assert c.has_extn(ext), ext
    code, _ = c.mail("sender@example.org")
    assert code == 250
    assert c.rcpt("alice@example.com")[0] == 250
    code, text = c.rcpt("nobody@example.com")
    assert code == 550 and text.startswith(b"5.1.1"), (code, text)
    assert c.rcpt("bob@example.com")[0] == 250
    # smtplib.LMTP.data() raises unless every recipient succeeded; speak
    # DATA by hand to see each of the two replies.
    assert c.docmd("DATA")[0] == 354
    c.send(MSG.replace(b"\r\n.", b"\r\n..") + b".\r\n")
    replies = [c.getreply() for _ in range(2)]
    assert [r[0] for r in replies] == [250, 250], replies
    c.quit()
    for u, rcpt in (("alice", b"alice@example.com"), ("bob", b"bob@example.com")):
        msgs = pop_all(srv.pop_port, u)
        assert len(msgs) == 1
        assert b"Return-Path: <sender@example.org>\r\n" in msgs[0]
        assert b"Delivered-To: <" + rcpt + b">\r\n" in msgs[0]
        assert strip_trace(msgs[0]) == MSG


def test_over_size_refused(lmtp_server):
    srv = lmtp_server
    c = lmtp_tcp(srv)
    c.ehlo("client.example")
    assert int(c.esmtp_features["size"]) == 100000
    # Declared too big: refused at MAIL.
    code, _ = c.mail("s@example.org", options=["SIZE=200000"])
    assert code == 552
    c.rset()
    # Undeclared, sent anyway: refused after DATA, nothing stored.
    replies = lmtp_send(c, "s@example.org", ["alice@example.com"],
                        b"Subject: big\r\n\r\n" + (b"x" * 998 + b"\r\n") * 150)
    assert [r[0] for r in replies] == [552], replies
    assert c.noop()[0] == 250
    c.quit()
    assert pop_all(srv.pop_port, "alice") == []


def test_parallel_nothing_lost_or_duplicated(lmtp_server):
    srv = lmtp_server
    total, conns = 200, 8

    def worker(k):
        c = lmtp_tcp(srv) if k % 2 == 0 else lmtp_unix(srv)
        c.ehlo("client.example")
        sent = []
        for i in range(k, total, conns):
            msg = ("From: p@example.org\r\nMessage-ID: <%d@par>\r\n\r\n"
                   "message %d\r\n" % (i, i)).encode()
            replies = lmtp_send(c, "p@example.org",
                                ["alice@example.com", "bob@example.com"], msg)
            assert [r[0] for r in replies] == [250, 250], replies
            sent.append(i)
        c.quit()
        return sent

    with concurrent.futures.ThreadPoolExecutor(conns) as ex:
        sent = sorted(i for r in ex.map(worker, range(conns)) for i in r)
    assert sent == list(range(total))
    for u in USERS:
        got = sorted(int(re.search(rb"Message-ID: <(\d+)@par>", m).group(1))
                     for m in pop_all(srv.pop_port, u))
        assert got == list(range(total)), u


def test_config_errors(tmp_path):
    port = free_port()
    cfg = base_config(port, tmp_path / "mail")
    cfg["Pop3Server"]["Listen"] = [
        {"Address": "127.0.0.1", "Port": port},
        {"Address": "127.0.0.1", "Port": free_port(), "Protocol": "imap"},
        {"Path": str(tmp_path / "s"), "Protocol": "pop3"},
        {"Address": "0.0.0.0", "Protocol": "smtp-sink"},
    ]
    srv = Server(tmp_path, cfg)
    import subprocess
    from posuto_testlib import posuto_bin
    p = subprocess.run([posuto_bin(), "check-config", "-c",
                        str(srv.config_path)], capture_output=True, timeout=30)
    err = p.stderr.decode()
    assert p.returncode != 0
    assert re.search(r":\d+:\d+: .*Listen\[1\]\.Protocol", err), err
    assert re.search(r"Listen\[2\]\.Path.*LMTP only", err), err
    assert re.search(r"Listen\[3\]\.Address.*not for the internet", err), err


def test_stale_socket_replaced_file_kept(tmp_path):
    pop_port = free_port()
    sock = tmp_path / "lmtp.sock"
    s = socket.socket(socket.AF_UNIX)
    s.bind(str(sock))
    s.close()                      # a stale socket, as after a crash
    cfg = base_config(pop_port, tmp_path / "mail")
    cfg["Pop3Server"]["Listen"] = [
        {"Address": "127.0.0.1", "Port": pop_port},
        {"Path": str(sock), "Protocol": "lmtp"}]
    srv = Server(tmp_path, cfg).start()
    try:
        c = smtplib.LMTP(str(sock), timeout=30)
        assert c.ehlo("x")[0] == 250
        c.quit()
    finally:
        srv.stop()
    plain = tmp_path / "notasocket"
    plain.write_text("keep me")
    cfg["Pop3Server"]["Listen"][1]["Path"] = str(plain)
    srv2 = Server(tmp_path, cfg, name="second")
    with pytest.raises(RuntimeError):
        srv2.start(timeout=10)
    assert plain.read_text() == "keep me"
    assert "not a socket" in srv2.log()


def test_first_delivery_into_maildir_being_made(lmtp_server, tmp_path):
    """MailboxFormat auto: a mailbox directory that holds only tmp/ is a
    Maildir another first delivery is making (parallel LMTP connections
    to a new user); the message goes into new/, not beside it as an
    emldir file that the Maildir, once complete, hides (a lost message,
    seen in test_parallel_nothing_lost_or_duplicated under ASan)."""
    srv = lmtp_server
    box = tmp_path / "mail" / "alice"
    (box / "tmp").mkdir(parents=True)
    c = lmtp_tcp(srv)
    c.ehlo("client.example")
    assert [r[0] for r in lmtp_send(c, "s@example.org", ["alice@example.com"],
                                    MSG)] == [250]
    c.quit()
    assert [p.name for p in box.iterdir() if p.is_file()] == []
    assert len(list((box / "new").iterdir())) == 1
    (box / "cur").mkdir(exist_ok=True)
    assert [strip_trace(m) for m in pop_all(srv.pop_port, "alice")] == [MSG]


def test_disk_full_for_one_recipient_only(tmp_path):
    """One recipient's mailbox on a full disk: a 4xx for that one (Postfix
    retries it alone), 250 for the other, and nothing half-written."""
    import subprocess
    mnt = tmp_path / "tiny"
    mnt.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(mnt)],
                      capture_output=True).returncode != 0:
        pytest.skip("cannot mount a tmpfs")
    srv = None
    try:
        (mnt / "alice").mkdir()
        pop_port, lmtp_port = free_port(), free_port()
        cfg = base_config(pop_port, tmp_path / "mail", users=[
            {"UserName": "alice", "Password": PW, "MailboxPath": str(mnt / "alice"),
             "MailboxFormat": "maildir"},
            {"UserName": "bob", "Password": PW}])
        cfg["Pop3Server"]["Listen"] = [
            {"Address": "127.0.0.1", "Port": pop_port},
            {"Address": "127.0.0.1", "Port": lmtp_port, "Protocol": "lmtp",
             "MaxMessageSize": 4000000}]
        srv = Server(tmp_path, cfg).start()
        srv.pop_port = pop_port
        big = b"Subject: big\r\n\r\n" + (b"x" * 70 + b"\r\n") * 8000
        c = smtplib.LMTP("127.0.0.1", lmtp_port, timeout=60)
        c.ehlo("client.example")
        replies = lmtp_send(c, "s@example.org", ["alice@example.com", "bob@example.com"], big)
        c.quit()
        assert [r[0] // 100 for r in replies] == [4, 2], replies
        assert [list((mnt / "alice" / d).iterdir()) for d in ("new", "cur", "tmp")] == [[], [], []]
        assert [strip_trace(m) for m in pop_all(pop_port, "bob")] == [big]
        assert pop_all(pop_port, "alice") == []
    finally:
        if srv is not None:
            srv.stop()
        subprocess.run(["umount", str(mnt)])
