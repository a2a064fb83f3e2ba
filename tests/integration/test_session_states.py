"""Session states (issue 10, item 4): every change goes through one
function that logs "session=N state A -> B (why)" at debug level; a whole
session logs the path it took, and nothing when LogLevel is not debug."""

import re
import ssl
import time

from posuto_testlib import USER1, Pop3, b64, sample_message

STATE_RE = re.compile(r"session=([0-9a-f]+) state (\S+) -> (\S+)")


def session_id(srv, c, timeout=10):
    """The id of client c's session, by its address in the connect line
    (the server's readiness probe connected too, and on a busy machine
    the line may reach the log after the greeting reached us)."""
    host, port = c.sock.getsockname()[:2]
    pat = re.compile(r"session=([0-9a-f]+) connect from=\[?%s\]?:%d\b"
                     % (re.escape(host), port))
    deadline = time.monotonic() + timeout
    while True:
        m = pat.search(srv.log())
        if m:
            return m.group(1)
        assert time.monotonic() < deadline, srv.log()[-2000:]
        time.sleep(0.02)


def path_of(srv, sid, timeout=10):
    """States session sid went through, once it is CLOSED (bounded)."""
    deadline = time.monotonic() + timeout
    for _ in range(1000):
        steps = [(a, b) for s, a, b in STATE_RE.findall(srv.log()) if s == sid]
        if steps and steps[-1][1] == "CLOSED":
            break
        if time.monotonic() > deadline:
            break
        time.sleep(0.02)
    assert steps and steps[-1][1] == "CLOSED", (sid, steps, srv.log()[-3000:])
    # One chain: each change starts where the one before ended.
    for (_a, b), (c, _d) in zip(steps, steps[1:]):
        assert b == c, steps
    return [steps[0][0]] + [b for _a, b in steps]


def test_full_session_path(servers, maildir):
    for i in range(2):
        maildir.deliver(sample_message(i))
    srv = servers.start(LogLevel="debug")
    c = Pop3(srv.host, srv.port)
    sid = session_id(srv, c)
    c.must_login()
    c.ok("STAT")
    c.ok("DELE 1")
    c.ok("QUIT")
    assert path_of(srv, sid) == ["AUTHORIZATION", "LOGIN_PENDING",
                                 "TRANSACTION", "UPDATE", "CLOSING", "CLOSED"]
    assert len(maildir.files()) == 1


def test_failed_login_then_quit_path(servers, maildir):
    maildir.deliver(sample_message(0))
    srv = servers.start(LogLevel="debug")
    c = Pop3(srv.host, srv.port)
    sid = session_id(srv, c)
    assert c.login(USER1, "wrong").startswith(b"-ERR")
    c.must_login()
    c.ok("QUIT")
    assert path_of(srv, sid) == [
        "AUTHORIZATION", "LOGIN_PENDING", "LOGIN_DELAY", "AUTHORIZATION",
        "LOGIN_PENDING", "TRANSACTION", "UPDATE", "CLOSING", "CLOSED"]
    assert len(maildir.files()) == 1


def test_three_strikes_path(servers, maildir):
    srv = servers.start(LogLevel="debug")
    c = Pop3(srv.host, srv.port)
    sid = session_id(srv, c)
    for _ in range(3):
        assert c.login(USER1, "wrong").startswith(b"-ERR")
    retry = ["LOGIN_PENDING", "LOGIN_DELAY", "AUTHORIZATION"]
    assert path_of(srv, sid) == (["AUTHORIZATION"] + retry * 2 +
                                 ["LOGIN_PENDING", "LOGIN_DELAY", "CLOSING",
                                  "CLOSED"])


def test_sasl_path(servers, maildir):
    maildir.deliver(sample_message(0))
    srv = servers.start(LogLevel="debug")
    c = Pop3(srv.host, srv.port)
    sid = session_id(srv, c)
    # A cancelled exchange, then one in two steps (no initial response).
    assert c.cmd("AUTH PLAIN").startswith(b"+")
    assert c.cmd("*").startswith(b"-ERR")
    assert c.cmd("AUTH PLAIN").startswith(b"+")
    assert c.cmd(b64(b"\0" + USER1.encode() + b"\0password")).startswith(b"+OK")
    c.ok("QUIT")
    assert path_of(srv, sid) == [
        "AUTHORIZATION", "LOGIN_PENDING", "AUTH_SASL", "AUTHORIZATION",
        "LOGIN_PENDING", "AUTH_SASL", "LOGIN_PENDING", "TRANSACTION",
        "UPDATE", "CLOSING", "CLOSED"]


def test_stls_path(servers, maildir, tls_cert):
    from test_tls import tls_config
    srv = servers.start(tls_config(servers, tls_cert, LogLevel="debug"))
    c = Pop3(srv.host, srv.port_for("none"))
    sid = session_id(srv, c)
    c.ok("STLS")
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    t = Pop3(sock=ctx.wrap_socket(c.sock), greet=False)
    t.ok("CAPA")
    t.read_multi()
    t.ok("QUIT")
    assert path_of(srv, sid) == ["AUTHORIZATION", "STLS_HANDSHAKE",
                                 "AUTHORIZATION", "CLOSING", "CLOSED"]


def test_no_state_lines_without_debug(servers, maildir):
    maildir.deliver(sample_message(0))
    srv = servers.start(LogLevel="info")
    c = Pop3(srv.host, srv.port)
    c.must_login()
    c.ok("QUIT")
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and " logout " not in srv.log():
        time.sleep(0.02)
    assert " logout " in srv.log()
    assert not STATE_RE.search(srv.log())
