"""Slow and busy peers (issue 9 #6): a line and a TLS handshake have a
deadline from their first byte; the connect rate per IP is limited; the
per-IP limits leave loopback clients alone unless LimitLoopback is set."""

import resource
import socket
import ssl
import time

import pytest

from posuto_testlib import Pop3, USER1, free_port, sample_message


def tls_config(servers, cert, **extra):
    cfile, kfile = cert
    cfg = servers.config(**extra)
    p = cfg["Pop3Server"]
    del p["BindAddress"]
    del p["Port"]
    p["Listen"] = [{"Address": "127.0.0.1", "Port": free_port(), "Tls": "none"},
                   {"Address": "127.0.0.1", "Port": free_port(), "Tls": "implicit"}]
    p["Tls"] = {"Certificate": cfile, "Key": kfile}
    return cfg


def trickle(sock, data, every=0.5, limit=40):
    """Sends data a byte at a time; True once the server has closed the
    connection (within `limit` seconds), collecting what it sent."""
    sock.settimeout(every)
    got = b""
    deadline = time.monotonic() + limit
    for i in range(int(limit / every) + 10):
        if time.monotonic() > deadline:
            return False, got
        try:
            sock.sendall(data[i % len(data):i % len(data) + 1])
        except (BrokenPipeError, ConnectionResetError):
            return True, got
        try:
            d = sock.recv(4096)
            if not d:
                return True, got
            got += d
        except socket.timeout:
            pass
        except ConnectionResetError:
            return True, got
    return False, got


# ------------------------------------------------------------ line deadline

def test_byte_a_second_without_crlf_is_dropped(servers, maildir):
    """Each byte restarts the idle timer; the line's deadline does not move.
    TimeOut 5 bounds the line (LineTimeOut is capped by it)."""
    maildir.deliver(sample_message(1))
    srv = servers.start(servers.config(TimeOut=5))
    c = Pop3("127.0.0.1", srv.port)
    closed, got = trickle(c.sock, b"NOOPNOOPNOOP", limit=30)
    assert closed, "a line trickled a byte every 0.5 s was never dropped"
    assert b"-ERR" in got, got


def test_line_timeout_key_and_reply(servers, maildir):
    maildir.deliver(sample_message(1))
    srv = servers.start(servers.config(LineTimeOut=2))
    c = Pop3("127.0.0.1", srv.port)
    c.must_login()
    closed, got = trickle(c.sock, b"STATSTAT", every=0.3, limit=30)
    assert closed and got.startswith(b"-ERR "), got
    deadline = time.monotonic() + 20
    for _ in range(400):
        if "reason=line-timeout" in srv.log() or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert "reason=line-timeout" in srv.log()


def test_slow_lines_that_complete_are_served(servers, maildir):
    """The deadline is per line: many lines each sent slowly but within it
    are all answered, and overlong lines being discarded get one too."""
    maildir.deliver(sample_message(1))
    srv = servers.start(servers.config(LineTimeOut=4))
    c = Pop3("127.0.0.1", srv.port)
    c.must_login()
    for _ in range(4):                     # 4 x 1.5 s > LineTimeOut
        for ch in b"NOOP\r\n":
            c.send(bytes([ch]))
            time.sleep(0.25)
        assert c.readline().startswith(b"+OK")
    assert c.stat()[0] == 1
    # An endless line being discarded is dropped by the deadline too.
    c.send(b"X" * 600)
    assert c.readline().startswith(b"-ERR")   # Line too long
    closed, _got = trickle(c.sock, b"Y", every=0.3, limit=30)
    assert closed


# ------------------------------------------------------------ handshake deadline

def test_stalled_stls_handshake_follows_timeout(servers, tls_cert, maildir):
    """Was 60 s whatever TimeOut said."""
    srv = servers.start(tls_config(servers, tls_cert, TimeOut=3))
    c = Pop3("127.0.0.1", srv.port_for("none"))
    assert c.cmd("STLS").startswith(b"+OK")
    assert c.closed_by_server(20), "stalled STLS handshake held past 20 s (TimeOut 3)"
    deadline = time.monotonic() + 20
    for _ in range(400):
        if 'reason="handshake timed out"' in srv.log() or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert 'tls handshake failed client=127.0.0.1:' in srv.log()
    assert 'reason="handshake timed out"' in srv.log()


def test_trickled_pop3s_handshake_is_dropped(servers, tls_cert, maildir):
    """A ClientHello sent a byte at a time restarts the idle timer with
    every byte; the handshake deadline still ends it."""
    srv = servers.start(tls_config(servers, tls_cert, TimeOut=3))
    ctx = ssl.create_default_context(cafile=tls_cert[0])
    inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = ctx.wrap_bio(inc, out, server_hostname="localhost")
    with pytest.raises(ssl.SSLWantReadError):
        obj.do_handshake()
    hello = out.read()
    s = socket.create_connection(("127.0.0.1", srv.port_for("implicit")), timeout=30)
    closed, _got = trickle(s, hello, every=0.5, limit=25)
    s.close()
    assert closed, "a trickled handshake was held past 25 s (TimeOut 3)"


# ------------------------------------------------------------ per-IP limits

def _greet(port):
    try:
        c = Pop3("127.0.0.1", port, timeout=10)
    except (EOFError, ConnectionError, OSError):
        return None
    g = c.greeting
    c.close()
    return g


def test_connect_rate_per_ip(servers, maildir):
    srv = servers.start(servers.config(MaxConnectRatePerIp=30, LimitLoopback=True,
                                       MaxConnectionsPerIp=0))
    greetings = [_greet(srv.port) for _ in range(60)]
    served = sum(1 for g in greetings if g and g.startswith(b"+OK"))
    refused = [g for g in greetings if not (g and g.startswith(b"+OK"))]
    # 30 at once (the start-up probes took some), about one more each 2 s.
    assert served <= 30 + 10, served
    assert len(refused) >= 15, greetings
    assert any(g and g.startswith(b"-ERR [SYS/TEMP]") for g in refused), refused
    assert srv.log().count("(MaxConnectRatePerIp)") == 1, srv.log()[-2000:]


def test_connect_rate_exempts_loopback_by_default(servers, maildir):
    srv = servers.start(servers.config(MaxConnectRatePerIp=5))
    greetings = [_greet(srv.port) for _ in range(40)]
    assert all(g and g.startswith(b"+OK") for g in greetings), greetings


def test_500_connections_from_loopback_by_default(servers, maildir):
    """A local test harness opening 500 connections from 127.0.0.1 is not
    refused by MaxConnectionsPerIp (default 64): loopback is exempt."""
    maildir.deliver(sample_message(1))
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < 1200:
        if hard != resource.RLIM_INFINITY and hard < 1200:
            pytest.skip("RLIMIT_NOFILE too small")
        resource.setrlimit(resource.RLIMIT_NOFILE, (1200, hard))
    srv = servers.start()
    conns = []
    try:
        for _ in range(500):
            conns.append(Pop3("127.0.0.1", srv.port, timeout=30))
        bad = [c.greeting for c in conns if not c.greeting.startswith(b"+OK")]
        assert not bad, bad[:3]
        conns[-1].must_login()
        assert conns[-1].stat()[0] == 1
    finally:
        for c in conns:
            c.close()
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
