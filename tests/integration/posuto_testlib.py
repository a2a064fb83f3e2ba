"""Helpers for posuto's integration tests: config, mailboxes, server, client.

Everything here talks to the real binary over real sockets.  Every wait is
bounded in time and in iterations; servers listen on 127.0.0.1/::1 only and
are stopped by PID.
"""

import base64
import hashlib
import json
import os
import pathlib
import re
import signal
import socket
import ssl
import subprocess
import time

REPO = pathlib.Path(__file__).resolve().parents[2]

# Seed 000 (JumboDogX): "password" as SHA256 hex, "test" as SHA512 hex.
SHA256_PASSWORD = "5e884898da28047151d0e56f8dc6292773603d0d6aabbdd62a11ef721d1542d8"
SHA512_TEST = ("ee26b0dd4af7e749aa1a8ee3c10ae9923f618980772e473f8819a5d4940e0db2"
               "7ac185f8a0e1d5f84f88bc887fd67b143732c304cc5fa9ad8e6f57f50028a8ff")
USER1 = "user1@example.com"
USER2 = "user2@example.com"

SANITIZER_PATTERNS = ("ERROR: AddressSanitizer", "ERROR: LeakSanitizer",
                      "runtime error:", "AddressSanitizer:", "UndefinedBehaviorSanitizer",
                      "ThreadSanitizer:")


def posuto_bin():
    b = os.environ.get("POSUTO_BIN") or "build/posuto"
    p = pathlib.Path(b)
    if not p.is_absolute():
        p = (pathlib.Path.cwd() / p) if (pathlib.Path.cwd() / p).exists() else REPO / p
    return str(p)


def free_port(family=socket.AF_INET, host="127.0.0.1"):
    with socket.socket(family, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((host, 0))
        return s.getsockname()[1]


def ipv6_available():
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


# ---------------------------------------------------------------- wire form

def to_wire(raw: bytes) -> bytes:
    """A stored message as POP3 sends it before dot-stuffing (wire.h):
    bare LF -> CRLF, CRLF stays, lone CR passes, missing final newline gets
    CRLF."""
    out = bytearray()
    n = len(raw)
    i = 0
    while i < n:
        c = raw[i]
        if c == 0x0A:
            if not (out and out[-1] == 0x0D and i > 0 and raw[i - 1] == 0x0D):
                out += b"\r"
            out += b"\n"
        else:
            out.append(c)
        i += 1
    if out and not out.endswith(b"\r\n"):
        out += b"\r\n"
    return bytes(out)


def dot_stuff(wire: bytes) -> bytes:
    lines = wire.split(b"\r\n")
    return b"\r\n".join((b"." + l) if l.startswith(b".") else l for l in lines)


def unstuff_lines(lines):
    return [l[1:] if l.startswith(b".") else l for l in lines]


def wire_top(raw: bytes, k: int) -> bytes:
    """Expected TOP n k payload (un-stuffed): header, blank line, k lines."""
    w = to_wire(raw)
    lines = w[:-2].split(b"\r\n") if w else []
    out = []
    i = 0
    while i < len(lines):
        out.append(lines[i])
        if lines[i] == b"":
            i += 1
            break
        i += 1
    out.extend(lines[i:i + k])
    return b"".join(l + b"\r\n" for l in out)


# ---------------------------------------------------------------- mailboxes

class Maildir:
    """A Maildir written the way Postfix does: LF line ends, unique names
    like 1732000000.M1P123.host, complete files renamed from tmp/."""

    def __init__(self, path):
        self.path = pathlib.Path(path)
        for d in ("cur", "new", "tmp"):
            (self.path / d).mkdir(parents=True, exist_ok=True)
        self.seq = 0

    def deliver(self, data: bytes, sub="new", info=None, name=None):
        self.seq += 1
        if name is None:
            name = "%d.M%dP%d.host" % (1732000000 + self.seq, self.seq, 123 + self.seq)
        fname = name + ((":" + info) if info is not None else "")
        tmp = self.path / "tmp" / (name + ".part")
        tmp.write_bytes(data)
        os.rename(tmp, self.path / sub / fname)
        return name

    def files(self):
        """{unique part: (subdir, full name, bytes)} of complete messages."""
        res = {}
        for sub in ("new", "cur"):
            for f in sorted(os.listdir(self.path / sub)):
                if f.startswith("."):
                    continue
                uniq = f.split(":", 1)[0]
                res[uniq] = (sub, f, (self.path / sub / f).read_bytes())
        return res

    def contents(self):
        return sorted(v[2] for v in self.files().values())


class Emldir:
    """JumboDogX's MailDir/<UserName>/N.eml."""

    def __init__(self, path):
        self.path = pathlib.Path(path)
        self.path.mkdir(parents=True, exist_ok=True)

    def deliver(self, data: bytes, n=None):
        if n is None:
            existing = [int(f[:-4]) for f in os.listdir(self.path)
                        if f.endswith(".eml") and f[:-4].isdigit()]
            n = max(existing, default=0) + 1
        p = self.path / ("%d.eml" % n)
        tmp = self.path / (".tmp-%d" % n)
        tmp.write_bytes(data)
        os.rename(tmp, p)
        return p.name

    def files(self):
        return {f: (self.path / f).read_bytes() for f in sorted(os.listdir(self.path))
                if f.endswith(".eml")}

    def contents(self):
        return sorted(self.files().values())


def sample_message(i, body_lines=3, extra=b""):
    body = b"".join(b"line %d of message %d\n" % (j, i) for j in range(body_lines))
    return (b"Return-Path: <sender@example.org>\n"
            b"From: sender@example.org\n"
            b"To: user1@example.com\n"
            b"Subject: test message %d\n"
            b"Message-ID: <%d.test@example.org>\n"
            b"\n" % (i, i)) + body + extra


def message_of_wire_size(i, size):
    """An LF message whose CRLF wire size is exactly `size`."""
    head = (b"From: sender@example.org\nTo: hogehoge@pop3.foo.com\n"
            b"Subject: seed 002 message %d\n\n" % i)
    body = bytearray()
    cur = len(to_wire(head))
    line = 0
    while True:
        remaining = size - cur
        if remaining <= 0:
            break
        if remaining <= 72:
            # final line: text + CRLF = remaining
            body += b"x" * max(remaining - 2, 0) + b"\n"
            break
        l = (b"%04d " % line) + b"y" * 60
        body += l + b"\n"
        cur += len(l) + 2  # wire form: LF -> CRLF
        line += 1
    msg = head + bytes(body)
    assert len(to_wire(msg)) == size, (len(to_wire(msg)), size)
    return msg


# ---------------------------------------------------------------- config

def base_config(port, maildir, users=None, **extra):
    if users is None:
        users = [
            {"UserName": USER1, "Password": SHA256_PASSWORD, "HashType": "SHA256"},
            {"UserName": USER2, "Password": SHA512_TEST, "HashType": "SHA512"},
        ]
    p = {
        "Enabled": True,
        "BindAddress": "127.0.0.1",
        "Port": port,
        "TimeOut": 60,
        "MailDir": str(maildir),
        "AuthFailDelay": 0,
        "Users": users,
        # Relative to the config file's directory (the test's tmp_path):
        # servers of one test share it, as processes of one host must, and
        # no test depends on /run.
        "LockFile": "posuto.lock",
        # More than one loop unless told otherwise, so every test also
        # exercises what loops share (POSUTO_TEST_EVENT_LOOPS=1: one).
        "EventLoops": int(os.environ.get("POSUTO_TEST_EVENT_LOOPS", "2")),
    }
    p.update(extra)
    return {"Pop3Server": p}


def write_config(path, cfg):
    pathlib.Path(path).write_text(json.dumps(cfg, indent=2, ensure_ascii=False) + "\n")
    return str(path)


# ---------------------------------------------------------------- server

def sanitizer_lines(text):
    return [l for l in text.splitlines() if any(p in l for p in SANITIZER_PATTERNS)]


class Server:
    def __init__(self, workdir, cfg, name="posuto"):
        self.workdir = pathlib.Path(workdir)
        self.cfg = cfg
        self.name = name
        self.config_path = self.workdir / (name + ".json")
        self.log_path = self.workdir / (name + ".stderr")
        self.proc = None
        self.killed = False
        self.stopped = False
        write_config(self.config_path, cfg)

    # The ports to wait for: Listen[] if present, else BindAddress/Port.
    def endpoints(self):
        p = self.cfg["Pop3Server"]
        if "Listen" in p:
            # Unix sockets (LMTP "Path") are not probed.
            return [(l["Address"], l["Port"], l.get("Tls", "none"))
                    for l in p["Listen"] if "Address" in l]
        return [(p.get("BindAddress", "127.0.0.1"), p["Port"], "none")]

    def startup_probes(self):
        """Connections start() made: one per endpoint, one that waited for
        the greeting."""
        eps = self.endpoints()
        return len(eps) + any(t != "implicit" for _a, _p, t in eps)

    @property
    def port(self):
        return self.endpoints()[0][1]

    @property
    def host(self):
        return self.endpoints()[0][0]

    def port_for(self, tls):
        for a, p, t in self.endpoints():
            if t == tls:
                return p
        raise KeyError(tls)

    def rewrite_config(self, cfg):
        self.cfg = cfg
        write_config(self.config_path, cfg)

    def start(self, extra_args=(), timeout=30):
        env = dict(os.environ)
        env.setdefault("UBSAN_OPTIONS", "print_stacktrace=1:halt_on_error=1")
        self.logf = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [posuto_bin(), "serve", "-c", str(self.config_path), *extra_args],
            stdin=subprocess.DEVNULL, stdout=self.logf, stderr=self.logf,
            cwd=str(self.workdir), env=env)
        deadline = time.monotonic() + timeout
        pending = list(self.endpoints())
        for _ in range(100000):
            if not pending:
                break
            if self.proc.poll() is not None:
                self.stopped = True  # reported here; teardown adds nothing
                raise RuntimeError("posuto exited with %s during startup:\n%s"
                                   % (self.proc.returncode, self.log()))
            if time.monotonic() > deadline:
                self.kill9()
                self.stopped = True
                raise RuntimeError("posuto did not accept connections within %ss:\n%s"
                                   % (timeout, self.log()))
            a, p, _t = pending[0]
            try:
                with socket.create_connection((a, p), timeout=1):
                    pending.pop(0)
            except OSError:
                time.sleep(0.05)
        # The kernel accepts into the backlog as soon as posuto listens,
        # before its worker threads exist; a greeting means the event loop
        # runs, so start-up is over (tests count descriptors and threads).
        plain = [(a, p) for a, p, t in self.endpoints() if t != "implicit"]
        if plain:
            try:
                with socket.create_connection(plain[0], timeout=10) as s:
                    buf = b""
                    while b"\n" not in buf:
                        chunk = s.recv(512)
                        if not chunk:
                            break
                        buf += chunk
            except OSError:
                pass
        return self

    def log(self):
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def pid(self):
        return self.proc.pid

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def signal(self, sig):
        assert self.alive(), "server died:\n" + self.log()
        os.kill(self.proc.pid, sig)

    def kill9(self):
        if self.alive():
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=30)
        self.killed = True

    def stop(self, check=True):
        """SIGTERM by PID; returns (returncode, problems)."""
        problems = []
        if self.proc is None or self.stopped:
            return None, problems
        self.stopped = True
        if self.killed:
            rc = self.proc.returncode
        elif self.proc.poll() is not None:
            rc = self.proc.returncode
            problems.append("server had already exited with %s before SIGTERM" % rc)
        else:
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                rc = self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=30)
                rc = None
                problems.append("server did not exit within 30 s of SIGTERM")
            if rc not in (0, None):
                problems.append("server exited with status %s after SIGTERM" % rc)
        try:
            self.logf.close()
        except Exception:
            pass
        san = sanitizer_lines(self.log())
        if san:
            problems.append("sanitizer reports:\n" + "\n".join(san[:20]))
        return rc, problems


# ---------------------------------------------------------------- client

class ProtocolError(AssertionError):
    pass


class Pop3:
    """A raw POP3 client over a socket: exact bytes, bounded reads."""

    def __init__(self, host="127.0.0.1", port=110, timeout=30, sock=None, greet=True):
        self.timeout = timeout
        self.sock = sock or socket.create_connection((host, port), timeout=timeout)
        self.sock.settimeout(timeout)
        self.host = host
        self.buf = b""
        self.greeting = self.readline() if greet else None

    def fileno(self):
        return self.sock.fileno()

    def send(self, data: bytes):
        self.sock.sendall(data)

    def _fill(self):
        d = self.sock.recv(65536)
        if not d:
            raise EOFError("connection closed by server")
        self.buf += d

    def readline(self, limit=1 << 20) -> bytes:
        """One line without CRLF; EOFError if the server closed."""
        for _ in range(1 << 20):
            i = self.buf.find(b"\r\n")
            if i >= 0:
                line, self.buf = self.buf[:i], self.buf[i + 2:]
                return line
            if len(self.buf) > limit:
                raise ProtocolError("line longer than %d bytes" % limit)
            self._fill()
        raise ProtocolError("readline did not finish")

    def cmd(self, line) -> bytes:
        if isinstance(line, str):
            line = line.encode()
        self.send(line + b"\r\n")
        r = self.readline()
        if not (r.startswith(b"+OK") or r.startswith(b"-ERR") or r.startswith(b"+ ") or r == b"+"):
            raise ProtocolError("bad response to %r: %r" % (line, r))
        if len(r) + 2 > 512 and not r.startswith(b"+ "):
            raise ProtocolError("first response line > 512 octets: %r" % r[:80])
        return r

    def read_multi_raw(self) -> bytes:
        """Raw bytes of a multi-line body up to and excluding the final
        '.\\r\\n' (still dot-stuffed)."""
        if self.buf.startswith(b".\r\n"):
            self.buf = self.buf[3:]
            return b""
        for _ in range(1 << 24):
            i = self.buf.find(b"\r\n.\r\n")
            if i >= 0:
                body, self.buf = self.buf[:i + 2], self.buf[i + 5:]
                return body
            self._fill()
        raise ProtocolError("multi-line read did not finish")

    def read_multi(self):
        body = self.read_multi_raw()
        if not body:
            return []
        return unstuff_lines(body[:-2].split(b"\r\n"))

    def ok(self, line) -> bytes:
        r = self.cmd(line)
        if not r.startswith(b"+OK"):
            raise ProtocolError("%r -> %r" % (line, r))
        return r

    def multi(self, line):
        self.ok(line)
        return self.read_multi()

    def login(self, user=USER1, password="password"):
        r = self.cmd("USER " + user)
        if not r.startswith(b"+OK"):
            return r
        return self.cmd("PASS " + password)

    def must_login(self, user=USER1, password="password"):
        r = self.login(user, password)
        if not r.startswith(b"+OK"):
            raise ProtocolError("login %s failed: %r" % (user, r))
        return r

    def stat(self):
        r = self.ok("STAT")
        parts = r.split()
        return int(parts[1]), int(parts[2])

    def list(self):
        return {int(a): int(b) for a, b in (l.split()[:2] for l in self.multi("LIST"))}

    def uidl(self):
        return {int(a): b.decode() for a, b in (l.split()[:2] for l in self.multi("UIDL"))}

    def retr(self, n) -> bytes:
        """The un-stuffed wire bytes of message n (every line with CRLF)."""
        self.ok("RETR %d" % n)
        body = self.read_multi_raw()
        return b"".join(l + b"\r\n" for l in unstuff_lines(body[:-2].split(b"\r\n"))) if body else b""

    def quit(self):
        r = self.cmd("QUIT")
        self.close()
        return r

    def closed_by_server(self, timeout=30) -> bool:
        """True once the server closes the connection within `timeout`
        (lines it sends meanwhile are collected in self.trailing)."""
        self.trailing = []
        deadline = time.monotonic() + timeout
        self.sock.settimeout(1)
        for _ in range(int(timeout * 10) + 100):
            if time.monotonic() > deadline:
                return False
            try:
                d = self.sock.recv(65536)
            except socket.timeout:
                continue
            except (ConnectionResetError, BrokenPipeError):
                return True
            if not d:
                return True
            self.buf += d
        return False

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass


def login_retry_inuse(host, port, user=USER1, password="password", timeout=20):
    """Log in, retrying while the mailbox is [IN-USE] by a session that is
    still being torn down (a dropped connection is seen asynchronously)."""
    deadline = time.monotonic() + timeout
    last = None
    for _ in range(1000):
        c = Pop3(host, port)
        r = c.login(user, password)
        if r.startswith(b"+OK"):
            return c
        last = r
        c.close()
        if b"[IN-USE]" not in r or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    raise ProtocolError("login failed: %r" % last)


def login_after_drop(srv, host, port, **kw):
    """The mailbox of a dropped session is free again: login succeeds (a
    session wedged on the dead connection would keep it [IN-USE])."""
    try:
        return login_retry_inuse(host, port, **kw)
    except (ProtocolError, OSError) as e:
        raise AssertionError("%s; server log:\n%s" % (e, srv.log()[-4000:]))


def cpu_seconds(pid):
    """User + system CPU time the process has used so far."""
    f = pathlib.Path("/proc/%d/stat" % pid).read_text().rsplit(")", 1)[1].split()
    return (int(f[11]) + int(f[12])) / os.sysconf("SC_CLK_TCK")


def pipeline_retrs_without_reading(sock):
    """Sends RETR 1 over and over, never reading, until the server stops
    taking them (2 s without progress)."""
    sock.settimeout(2)
    try:
        for _ in range(2000):
            sock.sendall(b"RETR 1\r\n" * 64)
    except (socket.timeout, ssl.SSLError):
        pass


def server_cpu_over(srv, secs=2.0):
    """CPU seconds the server uses in the next `secs` seconds."""
    time.sleep(0.5)
    before = cpu_seconds(srv.pid())
    time.sleep(secs)
    return cpu_seconds(srv.pid()) - before


def apop_digest(greeting: bytes, secret: str) -> str:
    m = re.search(rb"<[^<>]*@[^<>]*>", greeting)
    assert m, "greeting has no APOP timestamp: %r" % greeting
    return hashlib.md5(m.group(0) + secret.encode()).hexdigest()


def b64(s) -> str:
    if isinstance(s, str):
        s = s.encode()
    return base64.b64encode(s).decode()


def make_cert(dirpath, name="cert", cn="localhost"):
    """Self-signed certificate valid for localhost, 127.0.0.1 and ::1."""
    d = pathlib.Path(dirpath)
    cert, key = d / (name + ".pem"), d / (name + "-key.pem")
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec",
                    "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                    "-keyout", str(key), "-out", str(cert), "-days", "2",
                    "-subj", "/CN=" + cn,
                    "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1"],
                   check=True, capture_output=True, timeout=60)
    return str(cert), str(key)


def cert_fingerprint(pem_path):
    der = ssl.PEM_cert_to_DER_cert(pathlib.Path(pem_path).read_text())
    return hashlib.sha256(der).hexdigest()


def run(cmd, timeout=60, **kw):
    return subprocess.run(cmd, capture_output=True, timeout=timeout, **kw)
