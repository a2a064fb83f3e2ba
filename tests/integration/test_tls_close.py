"""TLS session ends (issue 9): close_notify after QUIT (STLS and POP3S),
every session freed after a storm of handshakes, aborts and resets, and the
reason a handshake failed in the log."""

import os
import socket
import ssl
import struct
import threading
import time

import pytest

from posuto_testlib import USER1, Pop3, free_port, sample_message, run


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


@pytest.fixture
def tsrv(servers, tls_cert, maildir):
    maildir.deliver(sample_message(1))
    return servers.start(tls_config(servers, tls_cert))


def client_ctx(cert, version=None):
    ctx = ssl.create_default_context(cafile=cert[0])
    # Debian's Python sets it by default; a strict client does not.
    ctx.options &= ~getattr(ssl, "OP_IGNORE_UNEXPECTED_EOF", 0)
    if version is not None:
        ctx.minimum_version = ctx.maximum_version = version
    return ctx


def pop3s(srv, ctx, session=None, timeout=30):
    s = socket.create_connection(("127.0.0.1", srv.port_for("implicit")), timeout=timeout)
    t = ctx.wrap_socket(s, server_hostname="localhost", session=session,
                        suppress_ragged_eofs=False)
    return t


def stls(srv, ctx, timeout=30):
    c = Pop3("127.0.0.1", srv.port_for("none"), timeout=timeout)
    assert c.cmd("STLS").startswith(b"+OK")
    return ctx.wrap_socket(c.sock, server_hostname="localhost", suppress_ragged_eofs=False)


def read_to_clean_eof(t):
    """Everything until the server's close_notify; SSLEOFError ("unexpected
    eof") if the server closed the TCP connection without one."""
    data = b""
    for _ in range(1000):
        d = t.recv(65536)
        if not d:
            return data
        data += d
    raise AssertionError("no EOF")


def rst_close(sock):
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


# ------------------------------------------------------------ close_notify

@pytest.mark.parametrize("mode", ["pop3s", "stls"])
@pytest.mark.parametrize("ver", [ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3])
def test_quit_sends_close_notify(tsrv, tls_cert, mode, ver):
    ctx = client_ctx(tls_cert, ver)
    t = pop3s(tsrv, ctx) if mode == "pop3s" else stls(tsrv, ctx)
    if mode == "pop3s":
        greet = b""
        while b"\r\n" not in greet:
            greet += t.recv(512)
        assert greet.startswith(b"+OK")
    t.sendall(b"USER " + USER1.encode() + b"\r\nPASS password\r\nSTAT\r\nQUIT\r\n")
    try:
        data = read_to_clean_eof(t)
    except ssl.SSLError as e:
        pytest.fail("server closed without close_notify: %s" % e)
    assert data.rstrip(b"\r\n").split(b"\r\n")[-1].startswith(b"+OK"), data
    # The server's close_notify has arrived; ours completes the shutdown.
    try:
        t.unwrap()
    except (ssl.SSLError, OSError):
        pass  # the server may already have closed: its half is what counts
    t.close()


def test_idle_timeout_sends_close_notify(servers, tls_cert, maildir):
    srv = servers.start(tls_config(servers, tls_cert, TimeOut=2))
    t = pop3s(srv, client_ctx(tls_cert))
    try:
        data = read_to_clean_eof(t)
    except ssl.SSLError as e:
        pytest.fail("server closed without close_notify: %s" % e)
    assert b"-ERR" in data, data
    t.close()


def test_openssl_s_client_sees_no_unexpected_eof(tsrv, tls_cert):
    r = run(["openssl", "s_client", "-connect", "127.0.0.1:%d" % tsrv.port_for("implicit"),
             "-CAfile", tls_cert[0], "-verify_return_error", "-crlf", "-ign_eof"],
            input=b"QUIT\n", timeout=60)
    out = (r.stdout + r.stderr).decode(errors="replace")
    assert "+OK" in out, out
    assert "unexpected eof" not in out.lower(), out


# ------------------------------------------------------------ TLS failure reason

def test_tls10_client_refusal_is_logged_with_reason(tsrv, tls_cert):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    try:
        ctx.minimum_version = ctx.maximum_version = ssl.TLSVersion.TLSv1
        ctx.set_ciphers("ALL:@SECLEVEL=0")
    except (ValueError, ssl.SSLError):
        pytest.skip("the local OpenSSL cannot offer TLS 1.0")
    for mode in ("pop3s", "stls"):
        if mode == "pop3s":
            s = socket.create_connection(("127.0.0.1", tsrv.port_for("implicit")), timeout=30)
        else:
            c = Pop3("127.0.0.1", tsrv.port_for("none"))
            assert c.cmd("STLS").startswith(b"+OK")
            s = c.sock
        with pytest.raises((ssl.SSLError, ConnectionError, OSError)):
            ctx.wrap_socket(s).do_handshake()
        s.close()
    deadline = time.monotonic() + 20
    for _ in range(400):
        # (start-up's probe of the POP3S port failed its handshake too)
        lines = [l for l in tsrv.log().splitlines()
                 if "tls handshake failed" in l and "unexpected eof" not in l]
        if len(lines) >= 2 or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert len(lines) == 2, tsrv.log()[-3000:]
    for l in lines:
        assert "client=127.0.0.1:" in l and 'reason="' in l, l
        assert "unsupported protocol" in l or "version" in l, l


# ------------------------------------------------------------ storm

def _fd_count(pid):
    return len(os.listdir("/proc/%d/fd" % pid))


def _count(srv, what):
    return srv.log().count(what)


def _storm_one(srv, kind, ctx12, ctx13, sessions, lock):
    port_s, port_p = srv.port_for("implicit"), srv.port_for("none")
    if kind == "full":
        t = pop3s(srv, ctx13)
        t.recv(512)
        t.sendall(b"QUIT\r\n")
        t.recv(512)
        with lock:
            sessions["13"] = t.session
        t.close()
    elif kind == "resume12":
        with lock:
            sess = sessions.get("12")
        t = pop3s(srv, ctx12, session=sess)
        t.recv(512)
        with lock:
            sessions["12"] = t.session
        t.sendall(b"QUIT\r\n")
        t.recv(512)
        t.close()
    elif kind == "resume13":
        with lock:
            sess = sessions.get("13")
        t = pop3s(srv, ctx13, session=sess)
        t.recv(512)
        t.sendall(b"USER " + USER1.encode() + b"\r\nPASS password\r\n")
        t.recv(512)
        t.close()                                  # FIN before QUIT, no close_notify
    elif kind == "abort":
        # A ClientHello cut short, then RST or FIN.
        s = socket.create_connection(("127.0.0.1", port_s), timeout=30)
        inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
        obj = ctx13.wrap_bio(inc, out, server_hostname="localhost")
        try:
            obj.do_handshake()
        except ssl.SSLWantReadError:
            pass
        hello = out.read()
        s.sendall(hello[:len(hello) // 2])
        if hash(time.monotonic()) & 1:
            rst_close(s)
        else:
            s.close()
    elif kind == "abort_after_hello":
        # The whole ClientHello, the server's flight arrives, then RST.
        s = socket.create_connection(("127.0.0.1", port_s), timeout=30)
        inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
        obj = ctx13.wrap_bio(inc, out, server_hostname="localhost")
        try:
            obj.do_handshake()
        except ssl.SSLWantReadError:
            pass
        s.sendall(out.read())
        s.recv(4096)
        rst_close(s)
    elif kind == "quit_rst":
        t = pop3s(srv, ctx13)
        t.recv(512)
        t.sendall(b"USER " + USER1.encode() + b"\r\n")
        t.recv(512)
        t.sendall(b"PASS password\r\n")
        t.recv(512)
        t.sendall(b"QUIT\r\n")
        rst_close(t)
    elif kind == "stls_quit_rst":
        c = Pop3("127.0.0.1", port_p)
        assert c.cmd("STLS").startswith(b"+OK")
        t = ctx12.wrap_socket(c.sock, server_hostname="localhost")
        t.sendall(b"USER " + USER1.encode() + b"\r\nPASS password\r\n")
        t.recv(512)
        t.sendall(b"QUIT\r\n")
        rst_close(t)
    elif kind == "stls_abort":
        c = Pop3("127.0.0.1", port_p)
        c.send(b"STLS\r\n")
        rst_close(c.sock)


KINDS = ["full", "resume12", "resume13", "abort", "abort_after_hello", "quit_rst",
         "stls_quit_rst", "stls_abort"]


def test_tls_storm_frees_every_session_and_sigterm_exits(servers, tls_cert, maildir):
    """Issue 9 #15: thousands of TLS sessions, full and resumed handshakes,
    clients that abort mid-handshake, close before QUIT, QUIT then RST.
    Afterwards every session has ended, the descriptors are back to the
    baseline and SIGTERM exits promptly."""
    maildir.deliver(sample_message(1))
    srv = servers.start(tls_config(servers, tls_cert))
    base_logouts = srv.startup_probes()
    deadline = time.monotonic() + 20
    for _ in range(400):
        if _count(srv, " logout ") >= base_logouts or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    base_fds = _fd_count(srv.pid())
    ctx12 = client_ctx(tls_cert, ssl.TLSVersion.TLSv1_2)
    ctx13 = client_ctx(tls_cert, ssl.TLSVersion.TLSv1_3)
    sessions, lock = {}, threading.Lock()
    errors, done = [], [0]
    stop_at = time.monotonic() + 20

    def worker(w):
        for i in range(400):
            if time.monotonic() > stop_at:
                return
            kind = KINDS[(i + w) % len(KINDS)]
            try:
                _storm_one(srv, kind, ctx12, ctx13, sessions, lock)
            except (OSError, ssl.SSLError, EOFError, AssertionError) as e:
                if not srv.alive():
                    errors.append("%s: %r" % (kind, e))
                    return
            with lock:
                done[0] += 1

    threads = [threading.Thread(target=worker, args=(w,)) for w in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors and srv.alive(), (errors, srv.log()[-3000:])
    assert done[0] >= 200, "only %d connections in the storm" % done[0]

    # Every session ends, every descriptor is closed (bounded wait).
    deadline = time.monotonic() + 30
    for _ in range(600):
        connects, logouts = _count(srv, " connect from="), _count(srv, " logout ")
        fds = _fd_count(srv.pid())
        if (logouts == connects and fds <= base_fds) or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert logouts == connects, ("%d sessions never ended" % (connects - logouts),
                                 srv.log()[-3000:])
    assert fds <= base_fds, "descriptors: %d after, %d before" % (fds, base_fds)

    # SIGTERM exits promptly (the issue saw no exit within 25 s).
    t0 = time.monotonic()
    rc, problems = srv.stop()
    took = time.monotonic() - t0
    assert not problems and rc == 0, problems
    assert took < 10, "SIGTERM took %.1f s after the storm" % took
