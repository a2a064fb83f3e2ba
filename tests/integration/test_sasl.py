"""SASL (issue 3, RFC 5034): PLAIN, LOGIN, SCRAM-SHA-256(-PLUS).

SCRAM is driven by GNU SASL's `gsasl` client (stdin/stdout mode: it prints
"Output from client:" tokens and reads the server's base64 data, and asks
for channel-binding data, which we take from the TLS connection with
pyOpenSSL's export_keying_material).  A small SCRAM client of our own is
used only for cases gsasl cannot produce (tls-server-end-point, a forged
'y' flag)."""

import base64
import hashlib
import hmac
import os
import select
import socket
import subprocess
import time

import pytest

from posuto_testlib import (
    USER1, USER2, Pop3, b64, run, sample_message, to_wire,
)

GSASL = "gsasl"


ALL_MECHS = ["PLAIN", "LOGIN", "SCRAM-SHA-256", "SCRAM-SHA-256-PLUS"]


def doveadm_scram(password):
    r = run(["doveadm", "pw", "-s", "SCRAM-SHA-256", "-p", password])
    assert r.returncode == 0, r.stderr
    return r.stdout.decode().strip()


@pytest.fixture
def mail(maildir):
    msgs = [sample_message(i) for i in range(2)]
    for m in msgs:
        maildir.deliver(m)
    return msgs


def sasl_users(scram_secret=None):
    return [
        {"UserName": USER1, "Password": "5e884898da28047151d0e56f8dc6292773603d0d6aabbdd62a11ef721d1542d8",
         "HashType": "SHA256"},
        {"UserName": USER2, "Password": scram_secret or doveadm_scram("test")},
        {"UserName": "plain@example.com", "Password": "{PLAIN}plainpw"},
    ]


@pytest.fixture
def ssrv(servers, mail, tls_cert):
    from test_tls import tls_config
    cfg = tls_config(servers, tls_cert)
    cfg["Pop3Server"]["Users"] = sasl_users()
    # Mixed schemes: the default would offer neither SCRAM (issue 9).
    cfg["Pop3Server"]["SaslMechanisms"] = ALL_MECHS
    return servers.start(cfg)


def pport(s):
    return s.port_for("none")


def tport(s):
    return s.port_for("implicit")


def sasl_mechs(c):
    for l in c.multi("CAPA"):
        parts = l.decode().split()
        if parts and parts[0] == "SASL":
            return parts[1:]
    return []


# ------------------------------------------------------------- PLAIN, LOGIN

def test_capa_lists_sasl(ssrv, tls_cert):
    c = Pop3("127.0.0.1", pport(ssrv))
    mechs = sasl_mechs(c)
    for m in ("PLAIN", "LOGIN", "SCRAM-SHA-256"):
        assert m in mechs, mechs
    assert "SCRAM-SHA-256-PLUS" not in mechs  # no channel to bind to
    c.close()
    t = TlsConn(tport(ssrv), tls_cert)
    mechs = sasl_mechs(t.pop)
    assert "SCRAM-SHA-256-PLUS" in mechs and "SCRAM-SHA-256" in mechs, mechs
    t.pop.close()


def test_auth_plain_with_initial_response(ssrv, mail):
    c = Pop3("127.0.0.1", pport(ssrv))
    r = c.cmd("AUTH PLAIN " + b64("\0%s\0password" % USER1))
    assert r.startswith(b"+OK"), r
    assert c.stat()[0] == 2
    assert c.cmd("AUTH PLAIN " + b64("\0%s\0password" % USER1)).startswith(b"-ERR")  # already in
    c.quit()


def test_auth_plain_without_initial_response(ssrv):
    c = Pop3("127.0.0.1", pport(ssrv))
    r = c.cmd("AUTH PLAIN")
    assert r.startswith(b"+"), r
    assert not r.startswith(b"+OK"), r
    r = c.cmd(b64("\0plain@example.com\0plainpw"))
    assert r.startswith(b"+OK"), r
    c.quit()


def test_auth_plain_authzid(ssrv):
    c = Pop3("127.0.0.1", pport(ssrv))
    r = c.cmd("AUTH PLAIN " + b64("%s\0%s\0password" % (USER1, USER1)))
    assert r.startswith(b"+OK"), r  # authzid == authcid is fine
    c.quit()
    c = Pop3("127.0.0.1", pport(ssrv))
    r = c.cmd("AUTH PLAIN " + b64("%s\0%s\0password" % (USER2, USER1)))
    assert r.startswith(b"-ERR"), r  # no proxy authorization
    c.must_login()
    assert c.stat()[0] == 2  # and certainly not into USER2's box
    c.quit()


def test_auth_plain_wrong_password_and_unknown_user(ssrv):
    answers = []
    for u, p in ((USER1, "nope"), ("ghost@example.com", "password")):
        c = Pop3("127.0.0.1", pport(ssrv))
        r = c.cmd("AUTH PLAIN " + b64("\0%s\0%s" % (u, p)))
        assert r.startswith(b"-ERR [AUTH]"), r
        answers.append(r)
        c.must_login()  # the session goes on
        c.quit()
    assert answers[0] == answers[1]


def test_auth_cancel(ssrv):
    for mech in ("PLAIN", "LOGIN", "SCRAM-SHA-256"):
        c = Pop3("127.0.0.1", pport(ssrv))
        r = c.cmd("AUTH " + mech)
        assert r.startswith(b"+") and not r.startswith(b"+OK"), (mech, r)
        r = c.cmd("*")
        assert r.startswith(b"-ERR"), (mech, r)
        c.must_login()
        c.quit()


@pytest.mark.parametrize("bad", ["!!!!", "AHVzZXIx=AHBhc3M", "A", "=", "AAAA====", "\x7f\x80"])
def test_auth_malformed_base64(ssrv, bad):
    c = Pop3("127.0.0.1", pport(ssrv))
    r = c.cmd("AUTH PLAIN " + bad)
    assert r.startswith(b"-ERR"), r
    r = c.cmd("AUTH PLAIN")
    assert r.startswith(b"+ ") or r == b"+", r
    r = c.cmd(bad)
    assert r.startswith(b"-ERR"), r
    c.must_login()
    c.quit()


def test_auth_unknown_mechanism(ssrv):
    c = Pop3("127.0.0.1", pport(ssrv))
    for m in ("FOOBAR", "CRAM-MD5", "GSSAPI", "X" * 200, "PLAIN\x01"):
        r = c.cmd("AUTH " + m)
        assert r.startswith(b"-ERR"), (m, r)
        if m == "CRAM-MD5":
            break
    c.close()
    c = Pop3("127.0.0.1", pport(ssrv))
    assert c.cmd("AUTH plain " + b64("\0%s\0password" % USER1)).startswith(b"+OK")  # case-insensitive
    c.quit()


def test_auth_login(ssrv):
    c = Pop3("127.0.0.1", pport(ssrv))
    r = c.cmd("AUTH LOGIN")
    assert r.startswith(b"+ "), r
    r = c.cmd(b64(USER1))
    assert r.startswith(b"+ "), r
    r = c.cmd(b64("password"))
    assert r.startswith(b"+OK"), r
    assert c.stat()[0] == 2
    c.quit()
    # With the user name as initial response (what Outlook may send).
    c = Pop3("127.0.0.1", pport(ssrv))
    r = c.cmd("AUTH LOGIN " + b64(USER1))
    assert r.startswith(b"+ "), r
    r = c.cmd(b64("wrong"))
    assert r.startswith(b"-ERR [AUTH]"), r
    c.close()


def test_overlong_sasl_continuation(ssrv):
    c = Pop3("127.0.0.1", pport(ssrv))
    assert c.cmd("AUTH PLAIN").startswith(b"+")
    c.send(b"A" * 20000 + b"\r\n")
    try:
        r = c.readline()
    except (EOFError, ConnectionError):
        r = None
    assert r is None or r.startswith(b"-ERR"), r
    if r is not None:
        c.must_login()
    c.close()


def test_sasl_disconnects_mid_exchange_do_not_hurt(ssrv):
    for i in range(20):
        c = Pop3("127.0.0.1", pport(ssrv))
        if i % 3 == 0:
            c.send(b"AUTH SCRAM-SHA-256 " + b64("n,,n=%s,r=abcdefgh%d" % (USER2, i)).encode() + b"\r\n")
        elif i % 3 == 1:
            c.send(b"AUTH LOGIN\r\n" + b64(USER1).encode() + b"\r\n")
        else:
            c.send(b"AUTH PLAIN\r\n")
        c.close()
    c = Pop3("127.0.0.1", pport(ssrv))
    c.must_login()
    c.quit()


def test_curl_auth_plain_and_login(ssrv, mail):
    for mech in ("PLAIN", "LOGIN"):
        r = run(["curl", "-sS", "--max-time", "60", "-u", USER1 + ":password",
                 "--login-options", "AUTH=" + mech, "-v", "pop3://127.0.0.1:%d/1" % pport(ssrv)])
        assert r.returncode == 0, r.stderr
        assert r.stdout == to_wire(mail[0])
        assert ("AUTH " + mech).encode() in r.stderr, r.stderr


# ---------------------------------------------------------- gsasl driver

class Gsasl:
    """GNU SASL's command-line client in stdin/stdout mode."""

    CB_EXPORTER = b"Enter base64 encoded tls-exporter channel binding: "
    CB_UNIQUE = b"Enter base64 encoded tls-unique channel binding: "
    OUT = b"Output from client:\n"
    WANT = b"Enter base64 authentication data from server (press RET if none):"

    def __init__(self, mech, user, password, exporter=None, extra=()):
        args = [GSASL, "--client", "--mechanism", mech, "-a", user, "-p", password,
                "--no-starttls", *extra]
        self.exporter = exporter
        self.p = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                  stderr=subprocess.STDOUT, bufsize=0)
        self.buf = b""
        self.transcript = []

    def _more(self, deadline):
        left = deadline - time.monotonic()
        if left <= 0:
            raise AssertionError("gsasl stalled: %r" % self.buf)
        r, _, _ = select.select([self.p.stdout], [], [], left)
        if not r:
            raise AssertionError("gsasl stalled: %r" % self.buf)
        d = os.read(self.p.stdout.fileno(), 65536)
        if not d:
            return False
        self.buf += d
        return True

    def next_token(self, timeout=30):
        """Answer channel-binding prompts; return the client's next token
        (possibly ''), or None if gsasl finished.  Returns once gsasl
        waits for server data or exits."""
        deadline = time.monotonic() + timeout
        token = None
        for _ in range(10000):
            for prompt, answer in ((self.CB_EXPORTER, self.exporter), (self.CB_UNIQUE, None)):
                i = self.buf.find(prompt)
                if i >= 0:
                    self.buf = self.buf[i + len(prompt):]
                    self.p.stdin.write(((answer or "") + "\n").encode())
            i = self.buf.find(self.OUT)
            if i >= 0:
                j = self.buf.find(b"\n", i + len(self.OUT))
                if j >= 0:
                    token = self.buf[i + len(self.OUT):j].decode().strip()
                    self.transcript.append(("C", token))
                    self.buf = self.buf[j + 1:]
                    continue
            i = self.buf.find(self.WANT)
            if i >= 0:
                self.buf = self.buf[i + len(self.WANT):].lstrip(b"\n")
                return token
            if not self._more(deadline):
                return token
        raise AssertionError("gsasl driver loop")

    def feed(self, server_b64):
        self.transcript.append(("S", server_b64))
        self.p.stdin.write(server_b64.encode() + b"\n")

    def finish(self, timeout=30):
        try:
            self.p.stdin.close()
        except BrokenPipeError:
            pass
        deadline = time.monotonic() + timeout
        for _ in range(1000):
            if not self._more(deadline):
                break
        rc = self.p.wait(timeout=timeout)
        return rc, self.buf.decode(errors="replace")


def gsasl_auth(pop, mech, user, password, exporter=None):
    """Runs AUTH <mech> on `pop` with gsasl as the client.  Returns
    (final server line, gsasl exit status, gsasl output)."""
    g = Gsasl(mech, user, password, exporter=exporter)
    try:
        tok = g.next_token()
        assert tok is not None, g.buf
        r = pop.cmd("AUTH %s %s" % (mech, tok) if tok else "AUTH %s" % mech)
        for _ in range(10):
            if not (r.startswith(b"+ ") or r == b"+"):
                break
            g.feed(r[2:].decode())
            tok = g.next_token()
            r = pop.cmd(tok or "")
        if r.startswith(b"+OK") and g.p.poll() is None:
            # GNU SASL's SCRAM client takes one more (empty) input after
            # checking the server signature before it reports success.
            g.feed("")
        rc, out = g.finish()
        return r, rc, out
    finally:
        if g.p.poll() is None:
            g.p.kill()
            g.p.wait(timeout=30)


def test_gsasl_plain_and_login(ssrv):
    for mech in ("PLAIN", "LOGIN"):
        c = Pop3("127.0.0.1", pport(ssrv))
        r, rc, out = gsasl_auth(c, mech, USER1, "password")
        assert r.startswith(b"+OK"), (mech, r, out)
        assert c.stat()[0] == 2
        c.quit()


def test_gsasl_scram_sha256(ssrv):
    c = Pop3("127.0.0.1", pport(ssrv))
    r, rc, out = gsasl_auth(c, "SCRAM-SHA-256", USER2, "test")
    assert r.startswith(b"+OK"), (r, out)
    assert rc == 0 and "server trusted" in out, out  # gsasl verified the server's signature
    c.quit()


def test_gsasl_scram_wrong_password(ssrv):
    c = Pop3("127.0.0.1", pport(ssrv))
    r, rc, out = gsasl_auth(c, "SCRAM-SHA-256", USER2, "wrong")
    assert r.startswith(b"-ERR [AUTH]"), (r, out)
    c.close()


def test_gsasl_scram_with_posuto_hash_secret(servers, mail, posuto):
    r = subprocess.run([posuto, "hash", "--scheme", "SCRAM-SHA-256"], input=b"s3cret word\n",
                       capture_output=True, timeout=60)
    assert r.returncode == 0, r.stderr
    secret = r.stdout.decode().strip().splitlines()[-1]
    assert secret.startswith("{SCRAM-SHA-256}"), secret
    srv = servers.start(servers.config(users=sasl_users(secret), SaslMechanisms=ALL_MECHS))
    c = Pop3("127.0.0.1", srv.port)
    r, rc, out = gsasl_auth(c, "SCRAM-SHA-256", USER2, "s3cret word")
    assert r.startswith(b"+OK"), (r, out)
    assert rc == 0 and "server trusted" in out, out
    c.quit()


def test_gsasl_scram_unknown_user_same_shape(ssrv):
    """I6: an unknown user gets a (fake) server-first message and fails at
    the end like a wrong password, with the same reply."""
    c = Pop3("127.0.0.1", pport(ssrv))
    r_unknown, _, out = gsasl_auth(c, "SCRAM-SHA-256", "ghost@example.com", "test")
    c.close()
    c = Pop3("127.0.0.1", pport(ssrv))
    r_wrong, _, _ = gsasl_auth(c, "SCRAM-SHA-256", USER2, "wrong")
    c.close()
    assert r_unknown.startswith(b"-ERR [AUTH]"), r_unknown
    assert r_unknown == r_wrong


def test_scram_for_user_without_scram_secret_fails_cleanly(ssrv):
    c = Pop3("127.0.0.1", pport(ssrv))
    r, rc, out = gsasl_auth(c, "SCRAM-SHA-256", USER1, "password")
    assert r.startswith(b"-ERR"), r
    c.must_login()
    c.quit()


def test_scram_plus_refused_without_tls(ssrv):
    c = Pop3("127.0.0.1", pport(ssrv))
    r = c.cmd("AUTH SCRAM-SHA-256-PLUS " + b64("p=tls-exporter,,n=%s,r=abc" % USER2))
    assert r.startswith(b"-ERR"), r
    c.close()


# ------------------------------------------------------------ TLS + -PLUS

class _OSSLSock:
    """Minimal socket interface over a pyOpenSSL connection for Pop3."""

    def __init__(self, conn, raw, timeout=30):
        self.conn, self.raw, self.timeout = conn, raw, timeout

    def settimeout(self, t):
        pass

    def _wait(self, write=False):
        r, w, _ = select.select([] if write else [self.raw], [self.raw] if write else [], [],
                                self.timeout)
        if not (r or w):
            raise socket.timeout("TLS read timed out")

    def recv(self, n):
        from OpenSSL import SSL
        for _ in range(100000):
            try:
                return self.conn.recv(n)
            except SSL.WantReadError:
                self._wait()
            except SSL.ZeroReturnError:
                return b""
            except SSL.SysCallError as e:
                if e.args and e.args[0] == -1:
                    return b""
                raise
        raise socket.timeout("recv loop")

    def sendall(self, data):
        from OpenSSL import SSL
        view = memoryview(data)
        for _ in range(100000):
            if not view:
                return
            try:
                n = self.conn.send(view.tobytes())
                view = view[n:]
            except SSL.WantWriteError:
                self._wait(write=True)
            except SSL.WantReadError:
                self._wait()

    def close(self):
        try:
            self.conn.shutdown()
        except Exception:
            pass
        self.raw.close()


class TlsConn:
    """An implicit-TLS (or STLS) POP3 connection made with pyOpenSSL so that
    the channel-binding data can be read."""

    def __init__(self, port, cert, version="1.3", starttls=False):
        # pyOpenSSL (Debian python3-openssl) exposes export_keying_material.
        SSL = pytest.importorskip("OpenSSL.SSL", reason="needs python3-openssl")
        ctx = SSL.Context(SSL.TLS_METHOD)
        v = {"1.2": SSL.TLS1_2_VERSION, "1.3": SSL.TLS1_3_VERSION}[version]
        ctx.set_min_proto_version(v)
        ctx.set_max_proto_version(v)
        ctx.load_verify_locations(cert[0])
        ctx.set_verify(SSL.VERIFY_PEER, lambda *a: a[-1])
        raw = socket.create_connection(("127.0.0.1", port), timeout=30)
        pre = None
        if starttls:
            pre = Pop3(sock=raw)
            pre.ok("STLS")
        raw.setblocking(False)
        conn = SSL.Connection(ctx, raw)
        conn.set_tlsext_host_name(b"localhost")
        conn.set_connect_state()
        w = _OSSLSock(conn, raw)
        deadline = time.monotonic() + 30
        for _ in range(100000):
            try:
                conn.do_handshake()
                break
            except SSL.WantReadError:
                if time.monotonic() > deadline:
                    raise
                w._wait()
            except SSL.WantWriteError:
                w._wait(write=True)
        self.conn = conn
        self.pop = Pop3(sock=w, greet=not starttls)

    def exporter(self):
        return base64.b64encode(self.conn.export_keying_material(
            b"EXPORTER-Channel-Binding", 32)).decode()

    def end_point(self):
        der = self.conn.get_peer_certificate().to_cryptography().public_bytes(
            __import__("cryptography.hazmat.primitives.serialization",
                       fromlist=["Encoding"]).Encoding.DER)
        return hashlib.sha256(der).digest()  # ECDSA-with-SHA256 cert


@pytest.mark.parametrize("starttls", [False, True], ids=["pop3s", "stls"])
def test_gsasl_scram_plus_tls_exporter(ssrv, tls_cert, starttls):
    port = pport(ssrv) if starttls else tport(ssrv)
    t = TlsConn(port, tls_cert, "1.3", starttls=starttls)
    r, rc, out = gsasl_auth(t.pop, "SCRAM-SHA-256-PLUS", USER2, "test", exporter=t.exporter())
    assert r.startswith(b"+OK"), (r, out)
    assert rc == 0 and "server trusted" in out, out
    assert t.pop.stat()[0] == 0  # user2 has an empty mailbox
    t.pop.quit()


def test_gsasl_scram_plus_channel_binding_mismatch(ssrv, tls_cert):
    t = TlsConn(tport(ssrv), tls_cert, "1.3")
    wrong = base64.b64encode(b"\x01" * 32).decode()
    r, rc, out = gsasl_auth(t.pop, "SCRAM-SHA-256-PLUS", USER2, "test", exporter=wrong)
    assert r.startswith(b"-ERR"), (r, out)
    t.pop.close()


def test_gsasl_scram_plus_binding_from_another_connection(ssrv, tls_cert):
    """A MITM relaying SCRAM between two TLS connections: the binding of
    connection A does not authenticate connection B."""
    a = TlsConn(tport(ssrv), tls_cert, "1.3")
    b = TlsConn(tport(ssrv), tls_cert, "1.3")
    r, rc, out = gsasl_auth(b.pop, "SCRAM-SHA-256-PLUS", USER2, "test", exporter=a.exporter())
    assert r.startswith(b"-ERR"), (r, out)
    a.pop.close()
    b.pop.close()


def test_gsasl_scram_non_plus_over_tls(ssrv, tls_cert):
    """Plain SCRAM-SHA-256 inside TLS (client without channel binding: 'n')."""
    t = TlsConn(tport(ssrv), tls_cert, "1.3")
    r, rc, out = gsasl_auth(t.pop, "SCRAM-SHA-256", USER2, "test")
    assert r.startswith(b"+OK"), (r, out)
    t.pop.quit()


# ---------------------------------------------- our own SCRAM client bits

def _scram(pop, mech, user, password, gs2, cbdata, proof_cb=None):
    nonce = base64.b64encode(os.urandom(18)).decode()
    bare = "n=%s,r=%s" % (user.replace("=", "=3D").replace(",", "=2C"), nonce)
    r = pop.cmd("AUTH %s %s" % (mech, b64(gs2 + bare)))
    if not r.startswith(b"+ "):
        return r
    sfirst = base64.b64decode(r[2:]).decode()
    attrs = dict(kv.split("=", 1) for kv in sfirst.split(","))
    assert attrs["r"].startswith(nonce)
    salted = hashlib.pbkdf2_hmac("sha256", password.encode(), base64.b64decode(attrs["s"]),
                                 int(attrs["i"]))
    ck = hmac.new(salted, b"Client Key", "sha256").digest()
    stored = hashlib.sha256(ck).digest()
    cbind = base64.b64encode(gs2.encode() + (proof_cb if proof_cb is not None else cbdata)).decode()
    wp = "c=%s,r=%s" % (cbind, attrs["r"])
    auth = ("%s,%s,%s" % (bare, sfirst, wp)).encode()
    sig = hmac.new(stored, auth, "sha256").digest()
    proof = bytes(x ^ y for x, y in zip(ck, sig))
    r = pop.cmd(b64(wp + ",p=" + base64.b64encode(proof).decode()))
    if r.startswith(b"+ "):
        sk = hmac.new(salted, b"Server Key", "sha256").digest()
        expect = "v=" + base64.b64encode(hmac.new(sk, auth, "sha256").digest()).decode()
        assert base64.b64decode(r[2:]).decode() == expect
        r = pop.cmd("")
    return r


def test_scram_plus_tls_server_end_point_tls12(ssrv, tls_cert):
    t = TlsConn(tport(ssrv), tls_cert, "1.2")
    r = _scram(t.pop, "SCRAM-SHA-256-PLUS", USER2, "test", "p=tls-server-end-point,,",
               t.end_point())
    assert r.startswith(b"+OK"), r
    t.pop.quit()


def test_scram_y_flag_downgrade_detected(ssrv, tls_cert):
    """Client says 'y' (supports binding, thinks server does not) while the
    server advertises -PLUS: a downgrade, must fail (RFC 5802 §6)."""
    t = TlsConn(tport(ssrv), tls_cert, "1.3")
    r = _scram(t.pop, "SCRAM-SHA-256", USER2, "test", "y,,", b"")
    assert r.startswith(b"-ERR"), r
    t.pop.close()


def test_scram_own_client_exporter_matches(ssrv, tls_cert):
    t = TlsConn(tport(ssrv), tls_cert, "1.3")
    r = _scram(t.pop, "SCRAM-SHA-256-PLUS", USER2, "test", "p=tls-exporter,,",
               base64.b64decode(t.exporter()))
    assert r.startswith(b"+OK"), r
    t.pop.quit()


def test_scram_unsupported_cb_type(ssrv, tls_cert):
    t = TlsConn(tport(ssrv), tls_cert, "1.3")
    r = _scram(t.pop, "SCRAM-SHA-256-PLUS", USER2, "test", "p=tls-unique,,", b"\0" * 12)
    assert r.startswith(b"-ERR"), r  # tls-unique is not defined for TLS 1.3
    t.pop.close()
