"""RFC 1939 semantics that protect mail (issue 2, invariants I2-I4)."""

import os
import re
import signal
import time

import pytest

from posuto_testlib import (
    USER1, USER2, Emldir, Maildir, Pop3, apop_digest, free_port, login_retry_inuse,
    sample_message, to_wire, wire_top,
)


def fill(box, n=3, **kw):
    msgs = [sample_message(i, **kw) for i in range(n)]
    names = [box.deliver(m) for m in msgs]
    return msgs, names


# ------------------------------------------------------------ seed 000 configs

SEED000_SINGLE = {
    "Pop3Server": {
        "Enabled": True, "BindAddress": "0.0.0.0", "Port": 110, "TimeOut": 30,
        "MailDir": "C:\\JumboDogX\\Mailboxes",
        "Users": [{"UserName": "user1@example.com",
                   "Password": "5e884898da28047151d0e56f8dc6292773603d0d6aabbdd62a11ef721d1542d8",
                   "HashType": "SHA256"}]}}

SEED000_MULTI = {
    "Pop3Server": {
        "Enabled": True, "BindAddress": "0.0.0.0", "Port": 110, "TimeOut": 30,
        "MailDir": "C:\\JumboDogX\\Mailboxes",
        "Users": [
            {"UserName": "user1@example.com",
             "Password": "5e884898da28047151d0e56f8dc6292773603d0d6aabbdd62a11ef721d1542d8",
             "HashType": "SHA256"},
            {"UserName": "user2@example.com",
             "Password": "ee26b0dd4af7e749aa1a8ee3c10ae9923f618980772e473f8819a5d4940e0db27ac185f8a0e1d5f84f88bc887fd67b143732c304cc5fa9ad8e6f57f50028a8ff",
             "HashType": "SHA512"}]}}


def seed_config(seed, tmp_path):
    import copy
    cfg = copy.deepcopy(seed)
    p = cfg["Pop3Server"]
    # Only the Windows path, and (to stay on loopback/free ports) the address.
    p["MailDir"] = str(tmp_path / "Mailboxes")
    p["BindAddress"] = "127.0.0.1"
    p["Port"] = free_port()
    return cfg


def test_seed000_single_user_config(servers, tmp_path):
    cfg = seed_config(SEED000_SINGLE, tmp_path)
    box = Emldir(tmp_path / "Mailboxes" / USER1)
    msgs, _ = fill(box, 3)
    srv = servers.start(cfg)
    c = Pop3("127.0.0.1", srv.port)
    c.must_login(USER1, "password")
    assert c.stat() == (3, sum(len(to_wire(m)) for m in msgs))
    assert c.retr(2) == to_wire(msgs[1])
    c.quit()


def test_seed000_multi_user_config(servers, tmp_path):
    cfg = seed_config(SEED000_MULTI, tmp_path)
    b1 = Emldir(tmp_path / "Mailboxes" / USER1)
    b2 = Emldir(tmp_path / "Mailboxes" / USER2)
    m1, _ = fill(b1, 2)
    m2, _ = fill(b2, 1)
    srv = servers.start(cfg)
    c = Pop3("127.0.0.1", srv.port)
    c.must_login(USER2, "test")
    assert c.stat()[0] == 1
    c.quit()
    c = Pop3("127.0.0.1", srv.port)
    c.must_login(USER1, "password")
    assert c.stat()[0] == 2
    c.quit()
    # Wrong passwords are refused with [AUTH]; the seed config has no
    # AuthFailDelay so this waits the default delay (bounded by the socket
    # timeout).
    c = Pop3("127.0.0.1", srv.port)
    r = c.login(USER2, "password")
    assert r.startswith(b"-ERR [AUTH]"), r
    c.close()


def test_wrong_password_and_unknown_user_look_the_same(servers, maildir):
    fill(maildir, 1)
    srv = servers.start()
    answers = []
    for user, pw in ((USER1, "wrong"), ("nobody@example.com", "password"),
                     ("nobody@example.com", "wrong")):
        c = Pop3("127.0.0.1", srv.port)
        r1 = c.cmd("USER " + user)
        r2 = c.cmd("PASS " + pw)
        answers.append((r1, r2))
        assert r2.startswith(b"-ERR [AUTH]"), r2
        # The session is still usable after a failed login.
        c.must_login()
        c.quit()
    assert len(set(answers)) == 1, answers


def test_passwords_never_logged(servers, maildir):
    fill(maildir, 1)
    cfg = servers.config(users=[{"UserName": USER1, "Password": "{PLAIN}S3cr3t-Xyzzy-pw"}])
    srv = servers.start(cfg)
    c = Pop3("127.0.0.1", srv.port)
    assert c.login(USER1, "Wr0ng-Plugh-pw").startswith(b"-ERR")
    c.must_login(USER1, "S3cr3t-Xyzzy-pw")
    c.quit()
    log = srv.log()
    assert "S3cr3t-Xyzzy" not in log and "Wr0ng-Plugh" not in log
    assert "user1@example.com" in log  # login events are logged with the user


# ----------------------------------------------------------------- locking

def test_two_sessions_same_user_in_use(servers, maildir):
    msgs, _ = fill(maildir, 2)
    srv = servers.start()
    a = Pop3("127.0.0.1", srv.port)
    a.must_login()
    b = Pop3("127.0.0.1", srv.port)
    r = b.login()
    assert r.startswith(b"-ERR [IN-USE]"), r
    # A different user is not affected.
    c = Pop3("127.0.0.1", srv.port)
    c.must_login(USER2, "test")
    c.quit()
    assert a.stat()[0] == 2  # the first session is undisturbed
    a.ok("DELE 1")
    assert a.quit().startswith(b"+OK")
    b.close()
    d = login_retry_inuse("127.0.0.1", srv.port)
    assert d.stat()[0] == 1
    d.quit()


def test_in_use_across_processes(servers, maildir, tmp_path):
    """The lock holds across two server processes sharing the store (and
    the LockFile, tmp_path/posuto.lock), either way round."""
    fill(maildir, 1)
    s1 = servers.start()
    s2 = servers.start(servers.config())
    assert s1.pid() != s2.pid()
    assert (tmp_path / "posuto.lock").is_file()
    a = Pop3("127.0.0.1", s1.port)
    a.must_login()
    b = Pop3("127.0.0.1", s2.port)
    r = b.login()
    assert r.startswith(b"-ERR [IN-USE]"), r
    b.close()
    a.quit()
    b = login_retry_inuse("127.0.0.1", s2.port)
    a = Pop3("127.0.0.1", s1.port)
    r = a.login()
    assert r.startswith(b"-ERR [IN-USE]"), r
    a.close()
    b.quit()


# ----------------------------------------------------- deletion only at QUIT

def test_dropped_connection_keeps_all_mail(servers, maildir):
    msgs, _ = fill(maildir, 3)
    srv = servers.start()
    c = Pop3("127.0.0.1", srv.port)
    c.must_login()
    for i in (1, 2, 3):
        c.ok("DELE %d" % i)
    c.close()  # no QUIT
    d = login_retry_inuse("127.0.0.1", srv.port)
    assert d.stat()[0] == 3
    d.quit()
    assert sorted(maildir.contents()) == sorted(msgs)


def test_kill9_mid_session_keeps_all_mail(servers, maildir, tmp_path):
    msgs, _ = fill(maildir, 3)
    srv = servers.start()
    c = Pop3("127.0.0.1", srv.port)
    c.must_login()
    c.retr(1)
    for i in (1, 2, 3):
        c.ok("DELE %d" % i)
    srv.kill9()
    c.close()
    assert sorted(maildir.contents()) == sorted(msgs)
    # A restarted server on the same store serves the mailbox at once: the
    # dead session's lock is not left behind.
    srv2 = servers.start(srv.cfg)
    d = login_retry_inuse("127.0.0.1", srv2.port, timeout=10)
    assert d.stat()[0] == 3
    assert sorted(d.retr(i) for i in (1, 2, 3)) == sorted(to_wire(m) for m in msgs)
    d.quit()


def test_dele_rset_quit_keeps_mail(servers, maildir):
    msgs, _ = fill(maildir, 3)
    srv = servers.start()
    c = Pop3("127.0.0.1", srv.port)
    c.must_login()
    c.ok("DELE 1")
    c.ok("DELE 3")
    assert c.stat()[0] == 1  # deleted messages are not counted
    c.ok("RSET")
    assert c.stat()[0] == 3
    assert c.quit().startswith(b"+OK")
    assert sorted(maildir.contents()) == sorted(msgs)


def test_dele_quit_removes_exactly_those(servers, maildir):
    msgs, names = fill(maildir, 5)
    srv = servers.start()
    c = Pop3("127.0.0.1", srv.port)
    c.must_login()
    uidl = c.uidl()
    c.ok("DELE 2")
    c.ok("DELE 4")
    assert c.cmd("DELE 2").startswith(b"-ERR")   # already deleted
    assert c.cmd("RETR 2").startswith(b"-ERR")
    assert c.cmd("LIST 4").startswith(b"-ERR")
    assert c.cmd("UIDL 4").startswith(b"-ERR")
    assert c.cmd("TOP 2 0").startswith(b"-ERR")
    assert sorted(c.list()) == [1, 3, 5]
    assert sorted(c.uidl()) == [1, 3, 5]
    assert c.quit().startswith(b"+OK")
    assert sorted(maildir.contents()) == sorted([msgs[0], msgs[2], msgs[4]])
    d = Pop3("127.0.0.1", srv.port)
    d.must_login()
    assert sorted(d.uidl().values()) == sorted([uidl[1], uidl[3], uidl[5]])
    d.quit()


def test_quit_in_authorization_deletes_nothing(servers, maildir):
    msgs, _ = fill(maildir, 2)
    srv = servers.start()
    c = Pop3("127.0.0.1", srv.port)
    assert c.cmd("DELE 1").startswith(b"-ERR")  # not allowed before login
    c.ok("USER " + USER1)
    assert c.quit().startswith(b"+OK")
    c = Pop3("127.0.0.1", srv.port)
    c.send(b"USER user1@example.com\r\nPASS wrong\r\nDELE 1\r\nQUIT\r\n")
    for _ in range(4):
        c.readline()
    assert sorted(maildir.contents()) == sorted(msgs)


def test_idle_timeout_disconnects_and_keeps_mail(servers, maildir):
    msgs, _ = fill(maildir, 2)
    srv = servers.start(servers.config(TimeOut=1))
    pre = Pop3("127.0.0.1", srv.port)
    c = Pop3("127.0.0.1", srv.port)
    c.must_login()
    c.ok("DELE 1")
    # The autologout is announced before the close.
    assert c.readline().startswith(b"-ERR"), "no -ERR before the autologout"
    assert pre.closed_by_server(30), "pre-auth idle session not closed"
    assert c.closed_by_server(30), "idle session not closed"
    d = login_retry_inuse("127.0.0.1", srv.port)
    assert d.stat()[0] == 2
    d.quit()
    assert sorted(maildir.contents()) == sorted(msgs)


def test_session_timeout_bounds_active_session(servers, maildir):
    fill(maildir, 1)
    srv = servers.start(servers.config(TimeOut=60, SessionTimeOut=2))
    c = Pop3("127.0.0.1", srv.port)
    c.must_login()
    closed = False
    deadline = time.monotonic() + 30
    for _ in range(300):
        if time.monotonic() > deadline:
            break
        try:
            r = c.cmd("NOOP")
            if r.startswith(b"-ERR"):
                closed = c.closed_by_server(10)
                break
        except (EOFError, OSError):
            closed = True
            break
        time.sleep(0.2)
    assert closed, "active session outlived SessionTimeOut"
    assert len(maildir.contents()) == 1


# ------------------------------------------------- snapshot for the session

@pytest.mark.parametrize("kind", ["maildir", "emldir"])
def test_delivery_during_session_invisible_until_next(servers, tmp_path, kind):
    box = (Maildir if kind == "maildir" else Emldir)(tmp_path / "mail" / USER1)
    msgs, _ = fill(box, 3)
    srv = servers.start()
    c = Pop3("127.0.0.1", srv.port)
    c.must_login()
    st, lst, uid = c.stat(), c.list(), c.uidl()
    new = sample_message(42, body_lines=50)
    box.deliver(new)
    assert c.stat() == st
    assert c.list() == lst
    assert c.uidl() == uid
    assert c.cmd("RETR 4").startswith(b"-ERR")
    assert c.cmd("LIST 4").startswith(b"-ERR")
    assert c.retr(3) == to_wire(msgs[2])
    c.ok("DELE 1")
    assert c.quit().startswith(b"+OK")
    # QUIT deleted exactly message 1, not the newcomer.
    assert sorted(box.contents()) == sorted(msgs[1:] + [new])
    d = Pop3("127.0.0.1", srv.port)
    d.must_login()
    assert d.stat()[0] == 3
    assert to_wire(new) in [d.retr(i) for i in (1, 2, 3)]
    assert {uid[2], uid[3]} <= set(d.uidl().values())
    d.quit()


def test_message_removed_externally_during_session(servers, maildir):
    """Another agent removes a message mid-session: numbering stays, the
    gone message is an error (never another message's bytes), others work."""
    msgs, names = fill(maildir, 3)
    srv = servers.start()
    c = Pop3("127.0.0.1", srv.port)
    c.must_login()
    lst = c.list()
    for sub in ("new", "cur"):
        for f in os.listdir(maildir.path / sub):
            if f.startswith(names[1]):
                os.unlink(maildir.path / sub / f)
    r = c.cmd("RETR 2")
    if r.startswith(b"+OK"):
        # Served from an already-open descriptor: must be the right bytes.
        body = c.read_multi()
        assert b"".join(l + b"\r\n" for l in body) == to_wire(msgs[1])
    assert c.retr(3) == to_wire(msgs[2])
    assert c.list() == lst
    c.ok("DELE 1")
    assert c.quit().startswith(b"+OK")
    assert maildir.contents() == [msgs[2]]


# -------------------------------------------------------------- APOP

def test_apop_rfc1939_example_digest():
    g = b"+OK POP3 server ready <1896.697170952@dbc.mtview.ca.us>"
    assert apop_digest(g, "tanstaaf") == "c4c9334bac560ecc979e58001b3e22fb"


def test_no_apop_secret_no_timestamp(servers, maildir):
    fill(maildir, 1)
    srv = servers.start()
    c = Pop3("127.0.0.1", srv.port)
    assert not re.search(rb"<[^>]*@[^>]*>", c.greeting), c.greeting
    r = c.cmd("APOP %s %s" % (USER1, "0" * 32))
    assert r.startswith(b"-ERR"), r
    c.must_login()
    c.quit()


def apop_config(servers):
    return servers.config(users=[
        {"UserName": USER1, "Password": "5e884898da28047151d0e56f8dc6292773603d0d6aabbdd62a11ef721d1542d8",
         "HashType": "SHA256", "ApopSecret": "tanstaaf"},
        {"UserName": USER2, "Password": "ee26b0dd4af7e749aa1a8ee3c10ae9923f618980772e473f8819a5d4940e0db27ac185f8a0e1d5f84f88bc887fd67b143732c304cc5fa9ad8e6f57f50028a8ff",
         "HashType": "SHA512"},
    ])


def test_apop_with_secret(servers, maildir):
    msgs, _ = fill(maildir, 2)
    srv = servers.start(apop_config(servers))
    c = Pop3("127.0.0.1", srv.port)
    m = re.search(rb"<[^<>@\s]+@[^<>\s]+>", c.greeting)
    assert m, c.greeting
    r = c.cmd("APOP %s %s" % (USER1, apop_digest(c.greeting, "tanstaaf")))
    assert r.startswith(b"+OK"), r
    assert c.stat()[0] == 2
    c.quit()
    # A fresh timestamp for every connection.
    g2 = Pop3("127.0.0.1", srv.port)
    g3 = Pop3("127.0.0.1", srv.port)
    assert re.search(rb"<[^>]+>", g2.greeting).group(0) != re.search(rb"<[^>]+>", g3.greeting).group(0)
    # A digest for another greeting (replay) fails.
    r = g3.cmd("APOP %s %s" % (USER1, apop_digest(g2.greeting, "tanstaaf")))
    assert r.startswith(b"-ERR [AUTH]"), r
    g2.close()
    g3.close()
    # Wrong secret.
    c = Pop3("127.0.0.1", srv.port)
    r = c.cmd("APOP %s %s" % (USER1, apop_digest(c.greeting, "wrong")))
    assert r.startswith(b"-ERR [AUTH]"), r
    # Uppercase hex is a different string; malformed digest is an error.
    assert c.cmd("APOP %s zz" % USER1).startswith(b"-ERR")
    # USER/PASS with the normal password still works for that user.
    c.must_login(USER1, "password")
    c.quit()


def test_apop_refused_for_hashed_only_user(servers, maildir):
    srv = servers.start(apop_config(servers))
    c = Pop3("127.0.0.1", srv.port)
    for secret in ("test", "ee26b0dd4af7e749aa1a8ee3c10ae9923f618980772e473f8819a5d4940e0db27ac185f8a0e1d5f84f88bc887fd67b143732c304cc5fa9ad8e6f57f50028a8ff"):
        r = c.cmd("APOP %s %s" % (USER2, apop_digest(c.greeting, secret)))
        assert r.startswith(b"-ERR"), r
    c.must_login(USER2, "test")
    c.quit()


def test_apop_with_perl_net_pop3(servers, maildir, tmp_path):
    from test_clients import PERL_SCRIPT
    from posuto_testlib import run
    msgs, _ = fill(maildir, 2)
    srv = servers.start(apop_config(servers))
    script = tmp_path / "client.pl"
    script.write_text(PERL_SCRIPT)
    r = run(["perl", str(script), str(srv.port), USER1, "tanstaaf", "apop"],
            env=dict(os.environ, OUT=str(tmp_path)))
    assert r.returncode == 0, r.stdout.decode() + r.stderr.decode()
    assert "COUNT 2" in r.stdout.decode()


def test_apop_with_curl(servers, maildir):
    from posuto_testlib import run
    msgs, _ = fill(maildir, 2)
    srv = servers.start(apop_config(servers))
    r = run(["curl", "-sS", "--max-time", "60", "-u", USER1 + ":tanstaaf",
             "--login-options", "AUTH=+APOP", "pop3://127.0.0.1:%d/1" % srv.port])
    assert r.returncode == 0, r.stderr
    assert r.stdout == to_wire(msgs[0])


# ------------------------------------------------------------ misc protocol

def test_commands_case_insensitive(servers, maildir):
    msgs, _ = fill(maildir, 2)
    srv = servers.start()
    c = Pop3("127.0.0.1", srv.port)
    assert c.cmd("user " + USER1).startswith(b"+OK")
    assert c.cmd("Pass password").startswith(b"+OK")
    assert c.cmd("sTaT").startswith(b"+OK 2 ")
    assert c.cmd("noop").startswith(b"+OK")
    c.ok("list")
    assert len(c.read_multi()) == 2
    assert c.cmd("quit").startswith(b"+OK")


def test_password_with_spaces(servers, maildir):
    fill(maildir, 1)
    srv = servers.start(servers.config(users=[
        {"UserName": USER1, "Password": "{PLAIN}pass with  spaces "}]))
    c = Pop3("127.0.0.1", srv.port)
    c.must_login(USER1, "pass with  spaces ")
    c.quit()


def test_capa_pre_and_post_auth(servers, maildir):
    fill(maildir, 1)
    srv = servers.start()
    c = Pop3("127.0.0.1", srv.port)
    caps = [l.decode() for l in c.multi("CAPA")]
    words = {l.split()[0] for l in caps}
    for w in ("TOP", "UIDL", "USER", "RESP-CODES", "AUTH-RESP-CODE", "PIPELINING",
              "EXPIRE", "IMPLEMENTATION"):
        assert w in words, caps
    assert "STLS" not in words
    c.must_login()
    caps2 = [l.decode() for l in c.multi("CAPA")]
    assert "PIPELINING" in {l.split()[0] for l in caps2}
    c.quit()


def test_multiline_responses_and_stat_consistent(servers, maildir):
    msgs, names = fill(maildir, 4)
    srv = servers.start()
    c = Pop3("127.0.0.1", srv.port)
    c.must_login()
    n, size = c.stat()
    lst = c.list()
    assert n == 4 and size == sum(lst.values())
    for i in range(1, 5):
        r = c.ok("LIST %d" % i)
        assert r.split()[1:3] == [b"%d" % i, b"%d" % lst[i]]
        r = c.ok("UIDL %d" % i)
        assert r.split()[1:3] == [b"%d" % i, names[i - 1].encode()]
        assert len(c.retr(i)) == lst[i]
    c.quit()


def test_pipelined_commands_answered_in_order(servers, maildir):
    msgs, names = fill(maildir, 3)
    srv = servers.start()
    c = Pop3("127.0.0.1", srv.port)
    # Authorization pipelined too.
    c.send(b"USER user1@example.com\r\nPASS password\r\n")
    assert c.readline().startswith(b"+OK")
    assert c.readline().startswith(b"+OK")
    batch = (b"STAT\r\nLIST\r\nUIDL\r\nRETR 1\r\nTOP 2 0\r\nNOOP\r\nLIST 3\r\n"
             b"UIDL 2\r\nRETR 3\r\nRETR 9\r\n")
    c.send(batch)
    total = sum(len(to_wire(m)) for m in msgs)
    assert c.readline().split()[:3] == [b"+OK", b"3", b"%d" % total]
    assert c.readline().startswith(b"+OK")
    assert c.read_multi() == [b"%d %d" % (i + 1, len(to_wire(m))) for i, m in enumerate(msgs)]
    assert c.readline().startswith(b"+OK")
    assert c.read_multi() == [b"%d %s" % (i + 1, n.encode()) for i, n in enumerate(names)]
    assert c.readline().startswith(b"+OK")
    assert b"".join(l + b"\r\n" for l in c.read_multi()) == to_wire(msgs[0])
    assert c.readline().startswith(b"+OK")
    assert b"".join(l + b"\r\n" for l in c.read_multi()) == wire_top(msgs[1], 0)
    assert c.readline().startswith(b"+OK")  # NOOP
    assert c.readline().split()[:3] == [b"+OK", b"3", b"%d" % len(to_wire(msgs[2]))]
    assert c.readline().split()[:3] == [b"+OK", b"2", names[1].encode()]
    assert c.readline().startswith(b"+OK")
    assert b"".join(l + b"\r\n" for l in c.read_multi()) == to_wire(msgs[2])
    assert c.readline().startswith(b"-ERR")
    c.quit()


def test_many_pipelined_retrs_client_reads_late(servers, maildir):
    """A client that pipelines many RETRs and reads slowly gets everything,
    in order (the server throttles instead of buffering unboundedly)."""
    big = sample_message(0, body_lines=20000)  # ~0.5 MB
    maildir.deliver(big)
    srv = servers.start()
    c = Pop3("127.0.0.1", srv.port)
    c.must_login()
    c.send(b"RETR 1\r\n" * 20)
    time.sleep(1)
    for _ in range(20):
        assert c.readline().startswith(b"+OK")
        assert b"".join(l + b"\r\n" for l in c.read_multi()) == to_wire(big)
    c.quit()


def test_sighup_reloads_users_without_dropping_sessions(servers, maildir, tmp_path):
    msgs, _ = fill(maildir, 2)
    Maildir(tmp_path / "mail" / "user3@example.com").deliver(sample_message(7))
    cfg = servers.config()
    srv = servers.start(cfg)
    c = Pop3("127.0.0.1", srv.port)
    c.must_login()
    cfg["Pop3Server"]["Users"].append({"UserName": "user3@example.com", "Password": "{PLAIN}three"})
    srv.rewrite_config(cfg)
    srv.signal(signal.SIGHUP)
    ok = False
    deadline = time.monotonic() + 20
    for _ in range(200):
        d = Pop3("127.0.0.1", srv.port)
        r = d.login("user3@example.com", "three")
        if r.startswith(b"+OK"):
            ok = True
            assert d.stat()[0] == 1
            d.quit()
            break
        d.close()
        if time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert ok, "user added before SIGHUP cannot log in"
    # The session opened before the reload still works.
    assert c.stat()[0] == 2
    assert c.retr(1) == to_wire(msgs[0])
    assert c.quit().startswith(b"+OK")


def test_sighup_applies_to_connections_opened_before_it(servers, maildir, tmp_path):
    """A password changed by SIGHUP counts for the next login, even on a
    connection that was greeted before the reload."""
    fill(maildir, 1)
    cfg = servers.config()
    srv = servers.start(cfg)
    early = Pop3("127.0.0.1", srv.port)          # greeted, not logged in
    cfg["Pop3Server"]["Users"][0] = {"UserName": USER1, "Password": "{PLAIN}changed"}
    srv.rewrite_config(cfg)
    srv.signal(signal.SIGHUP)
    deadline = time.monotonic() + 20
    for _ in range(200):                          # wait for the reload
        d = Pop3("127.0.0.1", srv.port)
        r = d.login(USER1, "changed")
        d.close()
        if r.startswith(b"+OK") or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert r.startswith(b"+OK"), r
    assert early.cmd("USER " + USER1).startswith(b"+OK")
    assert early.cmd("PASS password").startswith(b"-ERR [AUTH]")
    assert early.login(USER1, "changed").startswith(b"+OK")
    early.quit()


def test_max_connections_per_ip(servers, maildir):
    fill(maildir, 1)
    # The test runs from 127.0.0.1, exempt unless LimitLoopback.
    srv = servers.start(servers.config(MaxConnectionsPerIp=2, LimitLoopback=True))
    def served():
        # The harness's readiness probes may still hold slots a moment.
        for _ in range(100):
            c = Pop3("127.0.0.1", srv.port)
            if c.greeting.startswith(b"+OK"):
                return c
            c.close()
            time.sleep(0.05)
        return c

    a = served()
    b = served()
    assert a.greeting.startswith(b"+OK") and b.greeting.startswith(b"+OK")
    refused = False
    try:
        c = Pop3("127.0.0.1", srv.port)
        refused = c.greeting.startswith(b"-ERR") or c.closed_by_server(10)
    except (EOFError, ConnectionError):
        refused = True
    assert refused, "third connection from one IP was served"
    a.close()
    b.close()
    # Slots are freed when clients go away.
    ok = False
    for _ in range(100):
        try:
            d = Pop3("127.0.0.1", srv.port)
            if d.greeting.startswith(b"+OK"):
                d.must_login()
                d.quit()
                ok = True
                break
        except (EOFError, ConnectionError):
            pass
        time.sleep(0.1)
    assert ok


def test_ipv6_listen(servers, maildir):
    from posuto_testlib import ipv6_available
    if not ipv6_available():
        pytest.skip("no IPv6 loopback")
    fill(maildir, 1)
    p4, p6 = free_port(), free_port(__import__("socket").AF_INET6, "::1")
    cfg = servers.config()
    del cfg["Pop3Server"]["BindAddress"]
    del cfg["Pop3Server"]["Port"]
    cfg["Pop3Server"]["Listen"] = [{"Address": "127.0.0.1", "Port": p4, "Tls": "none"},
                                   {"Address": "::1", "Port": p6, "Tls": "none"}]
    servers.start(cfg)
    for host, port in (("127.0.0.1", p4), ("::1", p6)):
        c = Pop3(host, port)
        c.must_login()
        assert c.stat()[0] == 1
        c.quit()
