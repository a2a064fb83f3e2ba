"""PROXY protocol from trusted networks (Listen[].ProxyTrusted): the client
named in the header is the client everywhere (log, limits, the plaintext
policy), a trusted peer must send one, and an untrusted peer that starts
with a header is closed (where ProxyTrusted is not set, a header is just a
bad command)."""
import re
import socket
import struct
import time

from posuto_testlib import USER1, free_port, posuto_bin, run, write_config

V2_SIG = b"\r\n\r\n\x00\r\nQUIT\n"


def proxy_config(servers, trusted):
    cfg = servers.config()
    p = cfg["Pop3Server"]
    plain = p.pop("Port")
    p.pop("BindAddress", None)
    p["Listen"] = [
        {"Address": "127.0.0.1", "Port": plain},
        {"Address": "127.0.0.1", "Port": free_port(), "ProxyTrusted": trusted},
    ]
    return cfg


def connect(port, first=b""):
    s = socket.create_connection(("127.0.0.1", port), timeout=20)
    if first:
        s.sendall(first)
    return s


def readline(s):
    buf = b""
    while not buf.endswith(b"\r\n"):
        c = s.recv(1)
        if not c:
            break
        buf += c
    return buf


def wait_log(srv, pattern, timeout=20):
    deadline = time.monotonic() + timeout
    for _ in range(400):
        m = re.search(pattern, srv.log())
        if m or time.monotonic() > deadline:
            return m
        time.sleep(0.05)
    return None


def test_proxy_v1_client_is_not_local(servers):
    srv = servers.start(proxy_config(servers, "127.0.0.1"))
    port = srv.cfg["Pop3Server"]["Listen"][1]["Port"]
    # header and first command in one segment
    s = connect(port, b"PROXY TCP4 192.0.2.9 127.0.0.1 40001 110\r\nCAPA\r\n")
    assert readline(s).startswith(b"+OK")
    capa = []
    while True:
        l = readline(s)
        assert l, capa
        if l == b".\r\n":
            break
        capa.append(l)
    # A remote client behind a local proxy is not "local": no plaintext
    # login without TLS (AllowPlaintextAuth is false).
    assert b"USER\r\n" not in capa
    s.sendall(b"USER " + USER1.encode() + b"\r\n")
    assert readline(s).startswith(b"-ERR")
    s.close()
    assert wait_log(srv, r"connect from=192\.0\.2\.9:40001"), srv.log()
    assert wait_log(srv, r"reason=plaintext-refused"), srv.log()


def test_proxy_v2_and_local_loopback_still_trusted(servers):
    srv = servers.start(proxy_config(servers, "127.0.0.0/8"))
    port = srv.cfg["Pop3Server"]["Listen"][1]["Port"]
    body = socket.inet_pton(socket.AF_INET6, "2001:db8::5") + \
        socket.inet_pton(socket.AF_INET6, "::1") + struct.pack("!HH", 5555, 110)
    s = connect(port, V2_SIG + bytes([0x21, 0x21]) + struct.pack("!H", len(body)) + body)
    assert readline(s).startswith(b"+OK")
    s.sendall(b"QUIT\r\n")
    assert readline(s).startswith(b"+OK")
    s.close()
    assert wait_log(srv, r"connect from=\[2001:db8::5\]:5555"), srv.log()
    # A client that really is local, through the proxy: still trusted.
    s = connect(port, b"PROXY TCP4 127.0.0.1 127.0.0.1 40002 110\r\n")
    assert readline(s).startswith(b"+OK")
    s.sendall(b"USER " + USER1.encode() + b"\r\n")
    assert readline(s).startswith(b"+OK")
    s.close()


def test_trusted_peer_without_header_is_refused(servers):
    srv = servers.start(proxy_config(servers, "127.0.0.1"))
    port = srv.cfg["Pop3Server"]["Listen"][1]["Port"]
    s = connect(port, b"USER " + USER1.encode() + b"\r\n")
    try:
        assert s.recv(100) == b""
    except ConnectionResetError:
        pass
    s.close()
    assert wait_log(srv, r"bad PROXY header from a trusted peer"), srv.log()
    # the plain listener has no ProxyTrusted: served as before
    s = connect(srv.port)
    assert readline(s).startswith(b"+OK")
    s.close()


def test_untrusted_peer_header_closes_the_connection(servers):
    srv = servers.start(proxy_config(servers, "192.0.2.0/24"))
    port = srv.cfg["Pop3Server"]["Listen"][1]["Port"]
    for header in (b"PROXY TCP4 192.0.2.9 127.0.0.1 40001 110\r\nUSER x\r\n",
                   V2_SIG + b"\x21\x11\x00\x0c" + b"\xc0\x00\x02\x09" * 2 + b"\x9c\x41\x00\x6e"):
        s = connect(port)
        assert readline(s).startswith(b"+OK")
        s.sendall(header)
        # closed, not answered as a command
        try:
            assert s.recv(100) == b""
        except ConnectionResetError:
            pass
        s.close()
    assert len(re.findall(r"PROXY header from untrusted peer 127\.0\.0\.1:\d+: "
                          r"connection closed", srv.log())) == 2, srv.log()
    assert not re.search(r"connect from=192\.0\.2\.9", srv.log())
    # Only the first bytes: a session that later says PROXY gets -ERR.
    s = connect(port)
    assert readline(s).startswith(b"+OK")
    s.sendall(b"CAPA\r\n")
    assert readline(s).startswith(b"+OK")
    for _ in range(100):
        if readline(s) in (b".\r\n", b""):
            break
    s.sendall(b"PROXY TCP4 192.0.2.9 127.0.0.1 40001 110\r\n")
    assert readline(s).startswith(b"-ERR")
    s.close()
    # On a listener without ProxyTrusted a header is just a bad command.
    s = connect(srv.port)
    assert readline(s).startswith(b"+OK")
    s.sendall(b"PROXY TCP4 192.0.2.9 127.0.0.1 40001 110\r\n")
    assert readline(s).startswith(b"-ERR")
    s.close()


def test_bad_proxy_trusted_is_a_config_error(servers, tmp_path):
    cfg = proxy_config(servers, "10.0.0.1/8")
    path = tmp_path / "bad.json"
    write_config(path, cfg)
    path.chmod(0o600)
    r = run([posuto_bin(), "check-config", "-c", str(path)])
    assert r.returncode == 78, r
    assert b"Listen[1].ProxyTrusted" in (r.stdout + r.stderr), r
