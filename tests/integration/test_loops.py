"""Several event loops (issue 15, EventLoops): sessions spread over the
loops, and what must stay true with one loop stays true with 2 and 4:
the registry and /metrics see every loop, one session per mailbox
across loops ([IN-USE]), a kick reaches a session on any loop, SIGHUP
reaches every loop, per-IP limits count across loops, TLS sessions
resume on another loop than the one that issued the ticket, and a
SIGTERM drains every loop.

Which loop takes a connection is the kernel's and the scheduler's
choice (every loop waits on one socket): tests open connections until
the admin API shows them on more than one loop, never assume where one
lands."""

import re
import signal
import socket
import ssl
import threading
import time

import pytest

from admin_testlib import start_with_admin
from posuto_testlib import (USER1, USER2, SHA256_PASSWORD, Maildir, Pop3,
                            free_port, message_of_wire_size, sample_message,
                            to_wire)

MAX_TRIES = 400     # connections opened looking for another loop


def start(servers, loops, tls_cert=None, **extra):
    cfg = servers.config(EventLoops=loops, **extra)
    if tls_cert is not None:
        p = cfg["Pop3Server"]
        del p["BindAddress"]
        del p["Port"]
        p["Listen"] = [{"Address": "127.0.0.1", "Port": free_port(), "Tls": "none"},
                       {"Address": "127.0.0.1", "Port": free_port(), "Tls": "implicit"}]
        p["Tls"] = {"Certificate": tls_cert[0], "Key": tls_cert[1]}
    return start_with_admin(servers, cfg)


def sessions(a):
    st, r = a.json("GET", "/api/v1/sessions")
    assert st == 200
    return r["sessions"]


def loop_of(a, sock):
    """The loop serving our end sock (by its client address), or None."""
    me = "%s:%d" % sock.getsockname()[:2]
    for x in sessions(a):
        if x["client"] == me:
            return x["loop"]
    return None


def open_until_loops(a, port, want, keep):
    """Opens sessions (kept in keep) until they run on want loops;
    returns {loop: [Pop3...]}."""
    by_loop = {}
    for _ in range(MAX_TRIES):
        p = Pop3(port=port)
        keep.append(p)
        lp = loop_of(a, p.sock)
        assert lp is not None
        by_loop.setdefault(lp, []).append(p)
        if len(by_loop) >= want:
            return by_loop
    pytest.fail("%d sessions all ran on loops %s" % (MAX_TRIES, sorted(by_loop)))


def close_all(keep):
    for p in keep:
        p.close()


@pytest.mark.parametrize("loops", [2, 4])
def test_sessions_spread_registry_and_metrics_see_every_loop(servers, loops):
    s, a = start(servers, loops)
    keep = []
    by_loop = open_until_loops(a, s.port, 2, keep)
    # Many at once, served together.
    for _ in range(32):
        keep.append(Pop3(port=s.port))
    live = sessions(a)
    assert len(live) == len(keep)
    assert all(0 <= x["loop"] < loops for x in live)
    assert len({x["loop"] for x in live}) >= 2
    _st, _h, _sc, body = a.request("GET", "/metrics")
    text = body.decode()
    assert "posuto_sessions %d" % len(keep) in text, text
    # Every session answers (each loop runs its own).
    for p in keep:
        assert p.multi("CAPA")
    # Logins on two loops, both counted, and the connections of all.
    (l1, ps1), (l2, ps2) = list(by_loop.items())[:2]
    ps1[0].must_login(USER1, "password")
    ps2[0].must_login(USER2, "test")
    _st, _h, _sc, body = a.request("GET", "/metrics")
    text = body.decode()
    assert 'posuto_logins_ok_total{protocol="pop3"} 2' in text, text
    # (the start-up probes connected too)
    conns = re.search(r'posuto_connections_total\{protocol="pop3"\} (\d+)', text)
    assert conns and int(conns.group(1)) >= len(keep), text
    close_all(keep)


@pytest.mark.parametrize("loops", [2, 4])
def test_in_use_across_loops(servers, maildir, loops):
    maildir.deliver(sample_message(1))
    s, a = start(servers, loops)
    keep = []
    by_loop = open_until_loops(a, s.port, 2, keep)
    l1, l2 = list(by_loop)[:2]
    first, second = by_loop[l1][0], by_loop[l2][0]
    first.must_login()
    r = second.cmd("USER " + USER1)
    assert r.startswith(b"+OK")
    r = second.cmd("PASS password")
    assert r.startswith(b"-ERR [IN-USE]"), r
    first.quit()
    close_all(keep)


def test_kick_reaches_every_loop(servers):
    s, a = start(servers, 4)
    keep = []
    by_loop = open_until_loops(a, s.port, 2, keep)
    victims = [ps[0] for ps in by_loop.values()]
    for p in victims:
        sid = [x for x in sessions(a) if x["client"] == "%s:%d" % p.sock.getsockname()[:2]][0]["id"]
        st, r = a.json("POST", "/api/v1/sessions/%d/kick" % sid, {})
        assert st == 202 and r["kicked"] is True
    for p in victims:
        assert p.closed_by_server(timeout=30)
        assert p.buf.startswith(b"-ERR ") and b"administrator" in p.buf, p.buf
    # The others never noticed.
    for p in keep:
        if p not in victims:
            assert p.multi("CAPA")
    close_all(keep)


def test_sighup_reaches_every_loop(servers):
    s, a = start(servers, 4)
    keep = []
    by_loop = open_until_loops(a, s.port, 2, keep)
    cfg = s.cfg
    new = "user3@example.com"
    cfg["Pop3Server"]["Users"].append(
        {"UserName": new, "Password": SHA256_PASSWORD, "HashType": "SHA256"})
    s.rewrite_config(cfg)
    s.signal(signal.SIGHUP)
    # Polling with logins before the reload is done would fail them, and
    # three failures end the session: wait for the server to say so.
    deadline = time.monotonic() + 30
    while "reload done" not in s.log():
        assert time.monotonic() < deadline, "no 'reload done' in the log"
        time.sleep(0.05)
    # Sessions opened before the reload, on every loop, see its users.
    for ps in by_loop.values():
        p = ps[0]
        p.cmd("USER " + new)
        r = p.cmd("PASS password")
        assert r.startswith(b"+OK"), (p.sock.getsockname(), r)
        p.quit()
    close_all(keep)


def test_per_ip_limit_counts_across_loops(servers):
    s, a = start(servers, 4, MaxConnectionsPerIp=3, LimitLoopback=True)
    ok = [Pop3(port=s.port) for _ in range(3)]
    # With a limit counted per loop, some of these would be let in.
    for _ in range(24):
        p = Pop3(port=s.port, greet=False)
        line = p.readline()
        assert line.startswith(b"-ERR"), line
        p.close()
    for p in ok:
        assert p.multi("CAPA")
        p.quit()


def test_max_connections_counts_across_loops(servers):
    s, a = start(servers, 4, MaxConnections=4)
    ok = [Pop3(port=s.port) for _ in range(4)]
    for _ in range(16):
        p = Pop3(port=s.port, greet=False)
        line = p.readline()
        assert line.startswith(b"-ERR"), line
        p.close()
    for p in ok:
        p.quit()


_ctxs = {}


def tls_connect(port, cafile, session=None):
    # One client context: Python resumes a session only with the
    # context that made it.
    ctx = _ctxs.setdefault(cafile, ssl.create_default_context(cafile=cafile))
    raw = socket.create_connection(("127.0.0.1", port), timeout=30)
    t = ctx.wrap_socket(raw, server_hostname="localhost", session=session)
    return ctx, t


def test_tls_resumes_on_another_loop(servers, tls_cert):
    s, a = start(servers, 4, tls_cert=tls_cert)
    port = s.port_for("implicit")
    # A full handshake and its ticket (TLS 1.3: after the handshake).
    _c, t = tls_connect(port, tls_cert[0])
    f = t.makefile("rb")
    assert f.readline().startswith(b"+OK")
    first_loop = loop_of(a, t)
    sess = t.session
    t.sendall(b"QUIT\r\n")
    f.readline()
    t.close()
    assert sess is not None
    resumed_on = set()
    for _ in range(MAX_TRIES):
        _c, t = tls_connect(port, tls_cert[0], session=sess)
        f = t.makefile("rb")
        assert f.readline().startswith(b"+OK")
        assert t.session_reused, "a ticket from loop %d was refused" % first_loop
        resumed_on.add(loop_of(a, t))
        t.sendall(b"QUIT\r\n")
        f.readline()
        t.close()
        if len(resumed_on - {first_loop}) >= 2 or len(resumed_on) >= 3:
            break
    # Two resumptions on loops other than the one that issued the ticket.
    assert len(resumed_on - {first_loop}) >= 1 and len(resumed_on) >= 2, \
        (first_loop, resumed_on)


def test_tls_every_resumption_gets_a_fresh_ticket(servers, tls_cert):
    # A client that uses each ticket once (RFC 8446 8.1; OpenSSL's
    # s_client -sess_in/-sess_out, the bench's load generator) resumes
    # with the ticket of its last connection: each resumed session must
    # leave it a new one, or every other connection is a full handshake.
    s, _a = start(servers, 2, tls_cert=tls_cert)
    port = s.port_for("implicit")
    sess, reused = None, []
    for _ in range(6):
        _c, t = tls_connect(port, tls_cert[0], session=sess)
        f = t.makefile("rb")
        assert f.readline().startswith(b"+OK")
        t.sendall(b"QUIT\r\n")
        f.readline()     # the ticket came before this reply
        reused.append(t.session_reused)
        # a new ticket is a new session (old one: the same id again)
        assert t.session is not None and t.session != sess
        sess = t.session
        t.close()
    assert reused == [False] + [True] * 5, reused


def test_tls_ticket_survives_reload(servers, tls_cert):
    s, a = start(servers, 2, tls_cert=tls_cert)
    port = s.port_for("implicit")
    _c, t = tls_connect(port, tls_cert[0])
    f = t.makefile("rb")
    assert f.readline().startswith(b"+OK")
    sess = t.session
    t.close()
    s.signal(signal.SIGHUP)
    # A new SSL_CTX after the reload; the ring's keys are the process's.
    for _ in range(200):
        if "reload done" in s.log():
            break
        time.sleep(0.05)
    _c, t = tls_connect(port, tls_cert[0], session=sess)
    f = t.makefile("rb")
    assert f.readline().startswith(b"+OK")
    assert t.session_reused
    t.close()


def test_sigterm_drains_every_loop(servers, maildir):
    maildir.deliver(sample_message(1))
    s, a = start(servers, 4)
    keep = []
    by_loop = open_until_loops(a, s.port, 2, keep)
    p = list(by_loop.values())[0][0]
    p.must_login()
    p.ok("DELE 1")
    s.signal(signal.SIGTERM)
    for q in keep:
        assert q.closed_by_server(timeout=30)
    # No UPDATE at a shutdown: nothing deleted.
    assert len(maildir.files()) == 1
    close_all(keep)


@pytest.mark.parametrize("loops", [2, 4])
def test_concurrent_sessions_on_every_loop_never_cross(servers, tmp_path, loops):
    """Many clients at once, each logging in, reading its own messages
    (small ones and one streamed in chunks) and quitting, over and over:
    every reply must be its own session's, whichever loops run them."""
    n = 12
    users = [{"UserName": "u%d@example.com" % i, "Password": SHA256_PASSWORD,
              "HashType": "SHA256"} for i in range(n)]
    want = {}
    for i in range(n):
        md = Maildir(tmp_path / "mail" / ("u%d@example.com" % i))
        msgs = [sample_message(1000 * i + k, extra=b"owner u%d\n" % i) for k in range(3)]
        msgs.append(message_of_wire_size(1000 * i + 9, 300 * 1024))
        for m in msgs:
            md.deliver(m)
        want[i] = sorted(to_wire(m) for m in msgs)
    s, a = start(servers, loops, users=users)
    errors = []

    def client(i):
        try:
            for _ in range(8):
                p = Pop3(port=s.port)
                p.must_login("u%d@example.com" % i, "password")
                count = p.stat()[0]
                got = sorted(p.retr(k) for k in range(1, count + 1))
                if got != want[i]:
                    errors.append("u%d got another mailbox's messages" % i)
                p.quit()
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append("u%d: %r" % (i, e))

    threads = [threading.Thread(target=client, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors[:5]
