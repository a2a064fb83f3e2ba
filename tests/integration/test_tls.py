"""TLS (issue 3): STLS, POP3S, CAPA by state, STARTTLS injection, reload,
bad certificates, plaintext policy off loopback."""

import pathlib
import poplib
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import time

import pytest

from posuto_testlib import (
    USER1, Maildir, Pop3, cert_fingerprint, free_port, login_after_drop,
    pipeline_retrs_without_reading, posuto_bin, run, sample_message, server_cpu_over,
    to_wire, write_config,
)


def tls_config(servers, cert, extra_listen=(), **extra):
    cfile, kfile = cert
    cfg = servers.config(**extra)
    p = cfg["Pop3Server"]
    del p["BindAddress"]
    del p["Port"]
    p["Listen"] = [{"Address": "127.0.0.1", "Port": free_port(), "Tls": "none"},
                   {"Address": "127.0.0.1", "Port": free_port(), "Tls": "implicit"},
                   *extra_listen]
    p["Tls"] = {"Certificate": cfile, "Key": kfile}
    return cfg


@pytest.fixture
def mail3(maildir):
    msgs = [sample_message(i) + b".dotted\n" for i in range(3)]
    for m in msgs:
        maildir.deliver(m)
    return msgs


@pytest.fixture
def tsrv(servers, tls_cert, mail3):
    return servers.start(tls_config(servers, tls_cert))


def ctx_for(cert):
    ctx = ssl.create_default_context(cafile=cert[0])
    return ctx


def plain_port(s):
    return s.port_for("none")


def tls_port(s):
    return s.port_for("implicit")


def test_poplib_stls(tsrv, tls_cert, mail3):
    pop = poplib.POP3("127.0.0.1", plain_port(tsrv), timeout=30)
    caps = pop.capa()
    assert "STLS" in caps, caps
    pop.stls(context=ctx_for(tls_cert))
    caps = pop.capa()
    assert "STLS" not in caps, caps
    pop.user(USER1)
    pop.pass_("password")
    assert pop.stat()[0] == 3
    assert b"\r\n".join(pop.retr(1)[1]) + b"\r\n" == to_wire(mail3[0])
    pop.quit()


def test_poplib_pop3_ssl(tsrv, tls_cert, mail3):
    pop = poplib.POP3_SSL("127.0.0.1", tls_port(tsrv), context=ctx_for(tls_cert), timeout=30)
    assert pop.getwelcome().startswith(b"+OK")
    assert "STLS" not in pop.capa()
    pop.user(USER1)
    pop.pass_("password")
    assert pop.stat()[0] == 3
    assert b"\r\n".join(pop.retr(3)[1]) + b"\r\n" == to_wire(mail3[2])
    pop.dele(3)
    pop.quit()
    assert len(Maildir(pathlib.Path(tsrv.cfg["Pop3Server"]["MailDir"]) / USER1).contents()) == 2


def test_tls_versions(tsrv, tls_cert):
    for ver in (ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3):
        ctx = ctx_for(tls_cert)
        ctx.minimum_version = ctx.maximum_version = ver
        with socket.create_connection(("127.0.0.1", tls_port(tsrv)), timeout=30) as s:
            with ctx.wrap_socket(s, server_hostname="localhost") as t:
                assert t.version() == {ssl.TLSVersion.TLSv1_2: "TLSv1.2",
                                       ssl.TLSVersion.TLSv1_3: "TLSv1.3"}[ver]
                c = Pop3(sock=t)
                assert c.greeting.startswith(b"+OK")
                c.must_login()
                c.quit()
    # TLS 1.1 is refused by default.
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    try:
        ctx.minimum_version = ctx.maximum_version = ssl.TLSVersion.TLSv1_1
        ctx.set_ciphers("ALL:@SECLEVEL=0")
    except (ValueError, ssl.SSLError):
        return
    with socket.create_connection(("127.0.0.1", tls_port(tsrv)), timeout=30) as s:
        with pytest.raises((ssl.SSLError, ConnectionError, OSError)):
            ctx.wrap_socket(s).do_handshake()


def test_min_version_tls13(servers, tls_cert, mail3):
    cfg = tls_config(servers, tls_cert)
    cfg["Pop3Server"]["Tls"]["MinVersion"] = "TLSv1.3"
    srv = servers.start(cfg)
    ctx = ctx_for(tls_cert)
    ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    with socket.create_connection(("127.0.0.1", tls_port(srv)), timeout=30) as s:
        with pytest.raises((ssl.SSLError, ConnectionError, OSError)):
            ctx.wrap_socket(s, server_hostname="localhost")
    ctx = ctx_for(tls_cert)
    with socket.create_connection(("127.0.0.1", tls_port(srv)), timeout=30) as s:
        with ctx.wrap_socket(s, server_hostname="localhost") as t:
            assert t.version() == "TLSv1.3"


def test_curl_pop3s_and_ssl_reqd(tsrv, tls_cert, mail3):
    auth = ["-sS", "--max-time", "60", "-u", USER1 + ":password", "--cacert", tls_cert[0]]
    r = run(["curl", *auth, "pop3s://127.0.0.1:%d/1" % tls_port(tsrv)])
    assert r.returncode == 0, r.stderr
    assert r.stdout == to_wire(mail3[0])
    r = run(["curl", *auth, "-v", "--ssl-reqd", "pop3://127.0.0.1:%d/2" % plain_port(tsrv)])
    assert r.returncode == 0, r.stderr
    assert r.stdout == to_wire(mail3[1])
    assert b"STLS" in r.stderr
    r = run(["curl", *auth, "pop3s://127.0.0.1:%d/" % tls_port(tsrv)])
    assert r.returncode == 0
    assert len(r.stdout.strip().splitlines()) == 3


def test_curl_ssl_reqd_fails_without_tls(servers, mail3):
    srv = servers.start()
    r = run(["curl", "-sS", "--max-time", "60", "-u", USER1 + ":password", "--ssl-reqd",
             "pop3://127.0.0.1:%d/" % srv.port])
    assert r.returncode != 0


def test_openssl_s_client_starttls(tsrv, tls_cert, mail3):
    script = b"USER user1@example.com\nPASS password\nSTAT\nCAPA\nQUIT\n"
    r = run(["openssl", "s_client", "-starttls", "pop3", "-connect",
             "127.0.0.1:%d" % plain_port(tsrv), "-CAfile", tls_cert[0],
             "-verify_return_error", "-crlf", "-ign_eof", "-servername", "localhost"],
            input=script, timeout=60)
    out = r.stdout.decode(errors="replace")
    assert "Verify return code: 0 (ok)" in out, out + r.stderr.decode()
    total = sum(len(to_wire(m)) for m in mail3)
    assert "+OK 3 %d" % total in out, out
    # CAPA inside TLS does not offer STLS any more.
    capa = out.split("+OK 3 %d" % total, 1)[1]
    assert "STLS" not in capa.split("\n.\r")[0], capa


def test_openssl_s_client_implicit(tsrv, tls_cert, mail3):
    r = run(["openssl", "s_client", "-connect", "127.0.0.1:%d" % tls_port(tsrv),
             "-CAfile", tls_cert[0], "-verify_return_error", "-crlf", "-ign_eof"],
            input=b"USER user1@example.com\nPASS password\nLIST\nQUIT\n", timeout=60)
    out = r.stdout.decode(errors="replace")
    assert "Verify return code: 0 (ok)" in out
    assert "\n3 %d" % len(to_wire(mail3[2])) in out.replace("\r", "")


def _fetchmail_tls(tmp_path, port, tls_cert, ssl_line):
    from test_clients import fetchmail_run
    return fetchmail_run(tmp_path, port, "keep",
                         tls_opts="%s sslcertck sslcommonname localhost sslcertfile \"%s\"" % (ssl_line, tls_cert[0]))


def test_fetchmail_implicit_tls(tsrv, tls_cert, mail3, tmp_path):
    r, got = _fetchmail_tls(tmp_path, tls_port(tsrv), tls_cert, "ssl")
    out = r.stdout.decode() + r.stderr.decode()
    assert r.returncode == 0, out
    assert len(got) == 3


def test_fetchmail_stls(tsrv, tls_cert, mail3, tmp_path):
    r, got = _fetchmail_tls(tmp_path, plain_port(tsrv), tls_cert, "sslproto \"TLS1.2+\"")
    out = r.stdout.decode() + r.stderr.decode()
    assert r.returncode == 0, out
    assert "STLS" in out, out
    assert len(got) == 3


# ------------------------------------------------------------ STLS rules

def test_stls_injection_is_discarded(tsrv, tls_cert):
    """CVE-2011-0411: 'STLS\\r\\nUSER x\\r\\n' in one packet; the USER must
    never be executed, neither in plaintext nor inside TLS."""
    c = Pop3("127.0.0.1", plain_port(tsrv))
    c.send(b"STLS\r\nUSER " + USER1.encode() + b"\r\n")
    r = c.readline()
    assert r.startswith(b"+OK"), r
    assert c.buf == b"", "server answered the injected command in plaintext: %r" % c.buf
    c.sock.settimeout(30)
    try:
        t = ctx_for(tls_cert).wrap_socket(c.sock, server_hostname="localhost")
    except ssl.SSLError as e:
        pytest.fail("handshake broken (plaintext reply to the injected USER?): %s" % e)
    tc = Pop3(sock=t, greet=False)
    r = tc.cmd("PASS password")
    assert r.startswith(b"-ERR"), "injected USER was executed after STLS: PASS -> %r" % r
    # The session is fresh and usable inside TLS.
    tc.must_login()
    tc.quit()


def test_stls_injection_with_login_attempt(tsrv, tls_cert):
    """Variant: the whole login is injected; after TLS the client is not
    logged in."""
    c = Pop3("127.0.0.1", plain_port(tsrv))
    c.send(b"STLS\r\nUSER user1@example.com\r\nPASS password\r\nDELE 1\r\n")
    r = c.readline()
    assert r.startswith(b"+OK"), r
    t = ctx_for(tls_cert).wrap_socket(c.sock, server_hostname="localhost")
    tc = Pop3(sock=t, greet=False)
    r = tc.cmd("STAT")
    assert r.startswith(b"-ERR"), "injected login executed: %r" % r
    tc.close()


def test_stls_after_login_refused(tsrv):
    c = Pop3("127.0.0.1", plain_port(tsrv))
    c.must_login()
    assert c.cmd("STLS").startswith(b"-ERR")
    assert c.stat()[0] == 3  # still a working plaintext session
    c.quit()


def test_stls_inside_tls_refused(tsrv, tls_cert):
    c = Pop3("127.0.0.1", plain_port(tsrv))
    assert c.cmd("STLS").startswith(b"+OK")
    t = ctx_for(tls_cert).wrap_socket(c.sock, server_hostname="localhost")
    tc = Pop3(sock=t, greet=False)
    assert tc.cmd("STLS").startswith(b"-ERR")
    tc.must_login()
    tc.quit()
    with socket.create_connection(("127.0.0.1", tls_port(tsrv)), timeout=30) as s:
        t = ctx_for(tls_cert).wrap_socket(s, server_hostname="localhost")
        tc = Pop3(sock=t)
        assert tc.cmd("STLS").startswith(b"-ERR")
        tc.close()


def test_stls_after_user_resets_state(tsrv, tls_cert):
    """USER given before STLS is forgotten (RFC 2595: discard state)."""
    c = Pop3("127.0.0.1", plain_port(tsrv))
    assert c.cmd("USER " + USER1).startswith(b"+OK")
    r = c.cmd("STLS")
    if r.startswith(b"-ERR"):
        c.close()  # refusing STLS after USER is also acceptable
        return
    t = ctx_for(tls_cert).wrap_socket(c.sock, server_hostname="localhost")
    tc = Pop3(sock=t, greet=False)
    assert tc.cmd("PASS password").startswith(b"-ERR")
    tc.close()


def test_capa_reflects_tls_state(tsrv, tls_cert):
    c = Pop3("127.0.0.1", plain_port(tsrv))
    words = {l.split()[0] for l in c.multi("CAPA")}
    assert b"STLS" in words
    c.ok("STLS")
    t = ctx_for(tls_cert).wrap_socket(c.sock, server_hostname="localhost")
    tc = Pop3(sock=t, greet=False)
    words = {l.split()[0] for l in tc.multi("CAPA")}
    assert b"STLS" not in words and b"USER" in words
    tc.must_login()
    words = {l.split()[0] for l in tc.multi("CAPA")}
    assert b"STLS" not in words
    tc.quit()


def test_tls_handshake_garbage_does_not_kill_server(tsrv, tls_cert):
    for junk in (b"\x16\x03\x01\x00\x05hello", b"GET / HTTP/1.0\r\n\r\n", b"\x00" * 100):
        with socket.create_connection(("127.0.0.1", tls_port(tsrv)), timeout=30) as s:
            s.sendall(junk)
            s.settimeout(30)
            try:
                s.recv(100)
            except OSError:
                pass
    c = Pop3("127.0.0.1", plain_port(tsrv))
    c.ok("STLS")
    c.sock.sendall(b"not a client hello\r\n" * 10)
    c.close()
    pop = poplib.POP3_SSL("127.0.0.1", tls_port(tsrv), context=ctx_for(tls_cert), timeout=30)
    pop.user(USER1)
    pop.pass_("password")
    pop.quit()


# ---------------------------------------------------- certificates, reload

def expect_startup_failure(servers, cfg, words):
    from posuto_testlib import Server
    servers.n += 1
    s = Server(servers.tmp, cfg, name="badcert%d" % servers.n)
    r = subprocess.run([posuto_bin(), "serve", "-c", str(s.config_path)],
                       capture_output=True, timeout=60)
    out = (r.stdout + r.stderr).decode(errors="replace")
    assert r.returncode != 0, out
    assert any(w in out for w in words), out
    return out


def test_missing_certificate_clear_error(servers, tls_cert, tmp_path):
    cfg = tls_config(servers, (str(tmp_path / "nope.pem"), tls_cert[1]))
    expect_startup_failure(servers, cfg, ["nope.pem"])


def test_garbage_certificate_clear_error(servers, tls_cert, tmp_path):
    bad = tmp_path / "garbage.pem"
    bad.write_text("-----BEGIN CERTIFICATE-----\nnot base64 at all\n-----END CERTIFICATE-----\n")
    cfg = tls_config(servers, (str(bad), tls_cert[1]))
    expect_startup_failure(servers, cfg, ["garbage.pem"])


def test_key_not_matching_certificate(servers, tls_cert, tls_cert2):
    cfg = tls_config(servers, (tls_cert[0], tls_cert2[1]))
    expect_startup_failure(servers, cfg, [tls_cert2[1], tls_cert[0], "Key", "key"])


def served_fingerprint(port):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    with socket.create_connection(("127.0.0.1", port), timeout=30) as s:
        with ctx.wrap_socket(s) as t:
            import hashlib
            return hashlib.sha256(t.getpeercert(binary_form=True)).hexdigest()


def test_sighup_broken_cert_keeps_old_then_good_cert_switches(servers, tls_cert, tls_cert2,
                                                              tmp_path, mail3):
    live_cert, live_key = tmp_path / "live.pem", tmp_path / "live-key.pem"
    shutil.copy(tls_cert[0], live_cert)
    shutil.copy(tls_cert[1], live_key)
    srv = servers.start(tls_config(servers, (str(live_cert), str(live_key))))
    fp1, fp2 = cert_fingerprint(tls_cert[0]), cert_fingerprint(tls_cert2[0])
    assert served_fingerprint(tls_port(srv)) == fp1
    # A TLS session open across the reloads must survive them.
    pop = poplib.POP3_SSL("127.0.0.1", tls_port(srv), context=ctx_for(tls_cert), timeout=30)
    pop.user(USER1)
    pop.pass_("password")

    live_cert.write_text("-----BEGIN CERTIFICATE-----\ngarbage\n-----END CERTIFICATE-----\n")
    srv.signal(signal.SIGHUP)
    time.sleep(1)
    assert srv.alive(), srv.log()
    for _ in range(3):
        assert served_fingerprint(tls_port(srv)) == fp1
    c = Pop3("127.0.0.1", plain_port(srv))
    c.ok("STLS")
    t = ctx_for(tls_cert).wrap_socket(c.sock, server_hostname="localhost")
    t.close()

    shutil.copy(tls_cert2[0], live_cert)
    shutil.copy(tls_cert2[1], live_key)
    srv.signal(signal.SIGHUP)
    switched = False
    deadline = time.monotonic() + 20
    for _ in range(200):
        if served_fingerprint(tls_port(srv)) == fp2:
            switched = True
            break
        if time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert switched, "a good certificate was not picked up by SIGHUP"
    assert pop.stat()[0] == 3
    pop.quit()


# ------------------------------------------- plaintext policy off loopback

NETNS_SCRIPT = r'''
import json, socket, ssl, subprocess, sys, time, os, signal
posuto, cfgpath, host, port, tport, cafile, logpath = sys.argv[1:8]
port, tport = int(port), int(tport)
log = open(logpath, "wb")
p = subprocess.Popen([posuto, "serve", "-c", cfgpath], stdout=log, stderr=log)
res = {}
try:
    for _ in range(300):
        try:
            socket.create_connection((host, port), timeout=1).close(); break
        except OSError:
            time.sleep(0.05)
    def rl(f):
        return f.readline().rstrip(b"\r\n").decode(errors="replace")
    def multi(f):
        out = []
        for _ in range(100):
            l = rl(f)
            if l == ".": break
            out.append(l)
        return out
    s = socket.create_connection((host, port), timeout=30)
    f = s.makefile("rwb", buffering=0)
    res["greeting"] = rl(f)
    f.write(b"CAPA\r\n"); res["capa_status"] = rl(f); res["capa"] = multi(f)
    f.write(b"USER user1@example.com\r\n"); res["user"] = rl(f)
    f.write(b"PASS password\r\n"); res["pass"] = rl(f)
    f.write(b"AUTH PLAIN AHVzZXIxQGV4YW1wbGUuY29tAHBhc3N3b3Jk\r\n"); res["auth_plain"] = rl(f)
    f.write(b"STLS\r\n"); res["stls"] = rl(f)
    if not res["stls"].startswith("+OK"):
        raise SystemExit(0)
    ctx = ssl.create_default_context(cafile=cafile)
    ctx.check_hostname = False
    t = ctx.wrap_socket(s)
    tf = t.makefile("rwb", buffering=0)
    tf.write(b"CAPA\r\n"); res["tls_capa_status"] = rl(tf); res["tls_capa"] = multi(tf)
    tf.write(b"USER user1@example.com\r\n"); res["tls_user"] = rl(tf)
    tf.write(b"PASS password\r\n"); res["tls_pass"] = rl(tf)
    tf.write(b"QUIT\r\n"); res["tls_quit"] = rl(tf)
except Exception as e:
    res["error"] = repr(e)
finally:
    p.send_signal(signal.SIGTERM)
    try:
        res["rc"] = p.wait(timeout=30)
    except subprocess.TimeoutExpired:
        p.kill(); p.wait(); res["rc"] = "killed"
    print(json.dumps(res))
'''


def netns_available():
    if shutil.which("unshare") is None or shutil.which("ip") is None:
        return False
    r = subprocess.run(["unshare", "-n", "true"], capture_output=True, timeout=30)
    return r.returncode == 0


def test_plaintext_auth_refused_off_loopback(servers, tls_cert, mail3, tmp_path, posuto):
    """In a private network namespace the server listens on 10.99.0.1 (a
    non-loopback address on lo); without AllowPlaintextAuth USER/PASS and
    AUTH PLAIN are refused until STLS."""
    if not netns_available():
        pytest.skip("cannot create a network namespace here")
    cfg = tls_config(servers, tls_cert)
    port, tport = free_port(), free_port()
    cfg["Pop3Server"]["Listen"] = [{"Address": "10.99.0.1", "Port": port, "Tls": "none"},
                                   {"Address": "10.99.0.1", "Port": tport, "Tls": "implicit"}]
    path = write_config(tmp_path / "netns.json", cfg)
    script = tmp_path / "netns_client.py"
    script.write_text(NETNS_SCRIPT)
    log = tmp_path / "netns.stderr"
    shell = ('ip link set lo up && ip addr add 10.99.0.1/32 dev lo && exec "$0" "$@"')
    r = subprocess.run(["unshare", "-n", "sh", "-c", shell, sys.executable, str(script),
                        posuto, path, "10.99.0.1", str(port), str(tport), tls_cert[0], str(log)],
                       capture_output=True, timeout=120)
    import json
    assert r.returncode == 0, r.stderr.decode() + log.read_text(errors="replace")
    res = json.loads(r.stdout.decode().strip().splitlines()[-1])
    srvlog = log.read_text(errors="replace")
    assert res["rc"] == 0, srvlog
    assert "Sanitizer" not in srvlog and "runtime error" not in srvlog, srvlog
    caps = [l.split()[0] for l in res["capa"]]
    assert "STLS" in caps, res
    assert "USER" not in caps, res
    sasl = [l for l in res["capa"] if l.startswith("SASL")]
    assert not any("PLAIN" in l.split() or "LOGIN" in l.split() for l in sasl), res
    assert res["user"].startswith("-ERR") or res["pass"].startswith("-ERR"), res
    assert not res["pass"].startswith("+OK"), res
    assert res["auth_plain"].startswith("-ERR"), res
    assert res["stls"].startswith("+OK"), res
    assert "USER" in [l.split()[0] for l in res["tls_capa"]], res
    assert res["tls_user"].startswith("+OK") and res["tls_pass"].startswith("+OK"), res


def test_plaintext_auth_allowed_off_loopback_when_configured(servers, tls_cert, mail3, tmp_path, posuto):
    if not netns_available():
        pytest.skip("cannot create a network namespace here")
    cfg = tls_config(servers, tls_cert, AllowPlaintextAuth=True)
    port, tport = free_port(), free_port()
    cfg["Pop3Server"]["Listen"] = [{"Address": "10.99.0.1", "Port": port, "Tls": "none"},
                                   {"Address": "10.99.0.1", "Port": tport, "Tls": "implicit"}]
    path = write_config(tmp_path / "netns.json", cfg)
    script = tmp_path / "netns_client.py"
    script.write_text(NETNS_SCRIPT)
    log = tmp_path / "netns.stderr"
    shell = ('ip link set lo up && ip addr add 10.99.0.1/32 dev lo && exec "$0" "$@"')
    r = subprocess.run(["unshare", "-n", "sh", "-c", shell, sys.executable, str(script),
                        posuto, path, "10.99.0.1", str(port), str(tport), tls_cert[0], str(log)],
                       capture_output=True, timeout=120)
    import json
    assert r.returncode == 0, r.stderr.decode() + log.read_text(errors="replace")
    res = json.loads(r.stdout.decode().strip().splitlines()[-1])
    assert res["user"].startswith("+OK") and res["pass"].startswith("+OK"), res


def test_stalled_pipelining_tls_client_does_not_spin(servers, tls_cert, maildir):
    """Over TLS too, a client that pipelines RETRs and stops reading costs
    no CPU while it waits, and its reset frees the mailbox."""
    maildir.deliver(sample_message(1, body_lines=20000))  # ~0.5 MB
    srv = servers.start(tls_config(servers, tls_cert))
    raw = socket.create_connection(("127.0.0.1", tls_port(srv)), timeout=30)
    raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    c = Pop3(sock=ctx_for(tls_cert).wrap_socket(raw, server_hostname="localhost"))
    c.must_login()
    pipeline_retrs_without_reading(c.sock)
    used = server_cpu_over(srv)
    assert used < 0.5, "server used %.2f s CPU while the client stalled" % used
    c.close()
    d = login_after_drop(srv, "127.0.0.1", plain_port(srv))
    assert d.stat()[0] == 1
    d.quit()


def test_pop3s_retr_big_messages_exact(servers, tls_cert, maildir):
    """Over TLS a message stored in its wire form (CRLF, no line starting
    with '.') is copied as it is, not through the encoder; one that needs
    CRs and dots is encoded.  Both, bigger than one output fill (256 KiB),
    twice each (the second download may come from a wire copy), must
    arrive byte for byte."""
    line = b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ-%06d"
    wire = b"Subject: wire form\r\n\r\n" + b"".join(
        (line % i) + b"\r\n" for i in range(12000))
    needs = b"Subject: needs work\n\n" + b"".join(
        (b"." if i % 7 == 0 else b"") + (line % i) + b"\n" for i in range(12000))
    maildir.deliver(wire)
    maildir.deliver(needs)
    s = servers.start(tls_config(servers, tls_cert))
    for _ in range(2):
        pop = poplib.POP3_SSL("127.0.0.1", tls_port(s), context=ctx_for(tls_cert),
                              timeout=30)
        pop.user(USER1)
        pop.pass_("password")
        got = {}
        for i in (1, 2):
            got[i] = b"\r\n".join(pop.retr(i)[1]) + b"\r\n"
        pop.quit()
        assert sorted(got.values()) == sorted([to_wire(wire), to_wire(needs)])
