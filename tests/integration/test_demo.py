"""scripts/demo.sh (what `make run` serves) produces a config the server
accepts and a mailbox it serves; re-running keeps existing mail.  With
--serve (and through `make run`) it prints its banner only once every port
answers, takes its ports from POP3_PORT/POP3S_PORT, and says clearly when a
port is in use."""

import json
import os
import pathlib
import poplib
import signal
import socket
import ssl
import subprocess
import threading
import time

from posuto_testlib import REPO, USER1, Maildir, Pop3, free_port, posuto_bin, run, to_wire

DEMO = str(REPO / "scripts" / "demo.sh")


def test_demo_config_mail_and_tls(servers, tmp_path, posuto):
    d = tmp_path / "demo"
    r = run(["sh", DEMO, str(d)], timeout=120)
    assert r.returncode == 0, r.stderr.decode()
    out = r.stdout.decode()
    assert "self-signed" in out
    for word in ("nc -C", "curl", "pop3://", "pop3s://", "Thunderbird", "RESET=1",
                 "POP3_PORT="):
        assert word in out, word
    assert (d / "tls" / "cert.pem").exists() and (d / "tls" / "key.pem").exists()

    r = run([posuto, "check-config", "-c", str(d / "posuto.json")])
    assert r.returncode == 0, (r.stdout + r.stderr).decode()

    cfg = json.loads((d / "posuto.json").read_text())
    p = cfg["Pop3Server"]
    assert [(l["Address"], l["Port"], l["Tls"]) for l in p["Listen"]] == \
        [("127.0.0.1", 1110, "none"), ("127.0.0.1", 1995, "implicit")]
    # Same config on free ports so tests never collide with a running demo.
    p["Listen"][0]["Port"], p["Listen"][1]["Port"] = free_port(), free_port()
    servers.start(cfg)

    box = Maildir(d / "mail" / USER1)
    files = box.files()
    assert len(files) >= 6
    sizes = sorted(len(v[2]) for v in files.values())
    assert sizes[-1] >= 4_500_000  # the ~5 MB one
    raw_all = [v[2] for v in files.values()]
    assert any(b"charset=ISO-2022-JP" in m and b"\x1b$B" in m for m in raw_all)
    assert any(b"charset=UTF-8" in m for m in raw_all)
    assert any(b"\n.\n" in m or b"\n.hidden" in m for m in raw_all)
    assert not any(b"\r\n" in m for m in raw_all)  # LF, as Postfix writes

    c = Pop3("127.0.0.1", p["Listen"][0]["Port"])
    c.must_login(USER1, "password")
    n, total = c.stat()
    assert n == len(files)
    assert total == sum(len(to_wire(m)) for m in raw_all)
    got = sorted(c.retr(i) for i in range(1, n + 1))
    assert got == sorted(to_wire(m) for m in raw_all)
    c.ok("DELE 1")
    c.quit()

    ctx = ssl.create_default_context(cafile=str(d / "tls" / "cert.pem"))
    pop = poplib.POP3_SSL("127.0.0.1", p["Listen"][1]["Port"], context=ctx, timeout=30)
    pop.user(USER1)
    pop.pass_("password")
    assert pop.stat()[0] == n - 1
    pop.quit()

    # Re-running keeps the mail (and the certificate) as they are.
    cert_before = (d / "tls" / "cert.pem").read_bytes()
    r = run(["sh", DEMO, str(d)], timeout=120)
    assert r.returncode == 0, r.stderr.decode()
    assert "self-signed certificate in" not in r.stdout.decode()
    assert (d / "tls" / "cert.pem").read_bytes() == cert_before
    assert len(Maildir(d / "mail" / USER1).files()) == n - 1


HEADLINE = "posuto demo ready in"


class Output:
    """Collects a process's stdout+stderr in a thread; waits are bounded."""

    def __init__(self, proc):
        self.proc = proc
        self.lines = []
        self.done = threading.Event()
        self.t = threading.Thread(target=self._read, daemon=True)
        self.t.start()

    def _read(self):
        for line in iter(self.proc.stdout.readline, b""):
            self.lines.append(line.decode(errors="replace").rstrip("\n"))
        self.done.set()

    def text(self):
        return "\n".join(self.lines)

    def wait_for(self, needle, timeout=300):
        """Index of the first line containing needle, or None once the
        output ended (or the time is up)."""
        deadline = time.monotonic() + timeout
        for _ in range(int(timeout * 20) + 1):
            for i, line in enumerate(list(self.lines)):
                if needle in line:
                    return i
            if self.done.is_set() or time.monotonic() > deadline:
                return None
            time.sleep(0.05)
        return None

    def wait_end(self, timeout=60):
        assert self.done.wait(timeout), "output did not end:\n" + self.text()


def _greets(port, cafile=None):
    """One connection, no retry: the port must answer at once."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        if cafile is not None:
            ctx = ssl.create_default_context(cafile=cafile)
            with ctx.wrap_socket(s, server_hostname="localhost") as t:
                return t.recv(512).startswith(b"+OK")
        return s.recv(512).startswith(b"+OK")


def _start(cmd, env=None, **kw):
    e = dict(os.environ)
    e.update(env or {})
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, env=e, cwd=str(REPO), **kw)
    return proc, Output(proc)


def _stop(proc, sig=signal.SIGTERM, pid=None):
    if proc.poll() is None:
        os.kill(pid or proc.pid, sig)
    try:
        return proc.wait(timeout=60)
    except subprocess.TimeoutExpired:
        os.kill(pid or proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
        raise


def _check_banner(out, d, plain, tls):
    """The banner comes after every startup line of posuto and names the
    ports; there is no root warning."""
    i = out.wait_for(HEADLINE)
    assert i is not None, out.text()
    # Right now, with no retry, both ports answer.
    assert _greets(plain), out.text()
    assert _greets(tls, cafile=str(d / "tls" / "cert.pem")), out.text()
    assert out.wait_for("POP3S_PORT=2995", timeout=30) is not None, out.text()
    lines = list(out.lines)
    before, banner = lines[:i], "\n".join(lines[i:])
    assert any("listening on 127.0.0.1 port %d" % plain in l for l in before), out.text()
    assert any("listening on 127.0.0.1 port %d (TLS)" % tls in l for l in before), out.text()
    assert any(l.endswith(" ready") and "posuto info" in l for l in before), out.text()
    assert "127.0.0.1:%d (STLS)" % plain in banner and "127.0.0.1:%d (TLS)" % tls in banner
    assert "nc -C 127.0.0.1 %d" % plain in banner and "telnet" not in banner
    assert "RESET=1" in banner
    assert not any("running as root" in l and "warn" in l for l in lines), out.text()
    assert not any(" warn: " in l or " error: " in l for l in lines), out.text()
    # Nothing of the build or of posuto's start-up comes after the banner.
    assert not any("listening on" in l or "ninja" in l for l in lines[i:]), out.text()


def test_demo_serve_banner_after_ports_bound(tmp_path, posuto):
    d = tmp_path / "demo"
    plain, tls = free_port(), free_port()
    proc, out = _start(["sh", DEMO, "--serve", posuto, str(d)],
                       env={"POP3_PORT": str(plain), "POP3S_PORT": str(tls)})
    try:
        _check_banner(out, d, plain, tls)
        # exec'd: the PID we started is the server's, and it is in posuto.pid
        assert int((d / "posuto.pid").read_text()) == proc.pid
        cfg = json.loads((d / "posuto.json").read_text())
        assert [l["Port"] for l in cfg["Pop3Server"]["Listen"]] == [plain, tls]
        c = Pop3("127.0.0.1", plain)
        c.must_login(USER1, "password")
        assert c.stat()[0] == 6
        c.quit()
    finally:
        rc = _stop(proc, signal.SIGINT)  # Ctrl-C
    out.wait_end()
    assert rc == 0, out.text()
    assert "stopping: SIGINT" in out.text()


def test_demo_port_in_use(tmp_path, posuto):
    d = tmp_path / "demo"
    plain, tls = free_port(), free_port()
    with socket.socket() as busy:
        busy.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        busy.bind(("127.0.0.1", tls))
        busy.listen(1)
        proc, out = _start(["sh", DEMO, "--serve", posuto, str(d)],
                           env={"POP3_PORT": str(plain), "POP3S_PORT": str(tls)})
        try:
            rc = proc.wait(timeout=120)
        finally:
            if proc.poll() is None:
                _stop(proc)
        out.wait_end()
    text = out.text()
    assert rc != 0, text
    assert "Address already in use" in text and str(tls) in text, text
    assert "a port in use? Choose others: make run POP3_PORT=" in text, text
    assert HEADLINE not in text, text
    assert not any(l.endswith(" ready") for l in out.lines), text  # posuto's own


def test_demo_bad_ports(tmp_path):
    for plain, tls in (("0", "1995"), ("65536", "1995"), ("x", "1995"), ("2110", "2110")):
        r = run(["sh", DEMO, str(tmp_path / "demo")],
                env=dict(os.environ, POP3_PORT=plain, POP3S_PORT=tls))
        assert r.returncode == 64, (plain, tls, r.stderr)
        assert b"port" in r.stderr.lower()


def test_demo_reset_brings_the_samples_back(tmp_path):
    d = tmp_path / "demo"
    r = run(["sh", DEMO, str(d)], timeout=120)
    assert r.returncode == 0, r.stderr.decode()
    box = Maildir(d / "mail" / USER1)
    files = box.files()
    assert len(files) == 6
    # As a DELE at QUIT leaves it: one message gone, for good.
    sub, name, _raw = sorted(files.values())[0]
    os.unlink(d / "mail" / USER1 / sub / name)
    r = run(["sh", DEMO, str(d)], timeout=120)
    assert r.returncode == 0 and b"holds 5 message(s)" in r.stdout, r.stdout
    r = run(["sh", DEMO, "--reset", str(d)], timeout=120)
    assert r.returncode == 0, r.stderr.decode()
    assert len(Maildir(d / "mail" / USER1).files()) == 6


def test_make_run(tmp_path, posuto):
    """`make run` itself, on the build directory of the binary under test
    (already built: build.sh finds nothing to do), with its ports and
    demo directory given on the command line."""
    build = pathlib.Path(posuto).parent
    if not (build / "build.ninja").exists():
        import pytest
        pytest.skip("%s is not a meson build directory" % build)
    d = tmp_path / "demo"
    plain, tls, sink = free_port(), free_port(), free_port()
    proc, out = _start(["make", "-s", "--no-print-directory", "run", "BUILD=" + str(build),
                        "DEMO=" + str(d), "POP3_PORT=%d" % plain, "POP3S_PORT=%d" % tls,
                        "SINK_PORT=%d" % sink])
    server = None
    try:
        _check_banner(out, d, plain, tls)
        server = int((d / "posuto.pid").read_text())
        # make's child is the server itself (exec'd), no shell in between.
        with open("/proc/%d/stat" % server) as f:
            assert int(f.read().rsplit(")", 1)[1].split()[1]) == proc.pid
        assert os.readlink("/proc/%d/exe" % server) == os.path.realpath(posuto)
        # The development SMTP sink is on: mail to a new name is that
        # user's over POP3 (once the reload has picked the user up).
        import smtplib
        assert "SMTP sink: 127.0.0.1:%d" % sink in out.text()
        smtp = smtplib.SMTP("127.0.0.1", sink, timeout=30)
        assert smtp.sendmail("app@dev.test", ["sinkuser@dev.test"],
                             b"Subject: via the sink\r\n\r\nhi\r\n") == {}
        smtp.quit()
        for _ in range(100):
            pop = poplib.POP3("127.0.0.1", plain, timeout=30)
            try:
                pop.user("sinkuser")
                pop.pass_("password")
                break
            except poplib.error_proto:
                pop.close()
                time.sleep(0.1)
        else:
            raise AssertionError("sink user never could log in")
        assert b"via the sink" in b"\n".join(pop.retr(1)[1])
        pop.quit()
    finally:
        if server is not None:
            os.kill(server, signal.SIGTERM)  # make ends with its child
        rc = _stop(proc) if server is None else proc.wait(timeout=60)
    out.wait_end()
    assert rc == 0, out.text()


def test_build_reconfigures_a_build_without_cmocka(tmp_path):
    """README's order: `make run` may have configured build/ before cmocka
    was installed (no unit tests: meson decides at configure time); the
    next build (make check's) reconfigures it, so the tests exist."""
    import pytest
    if run(["pkg-config", "--exists", "cmocka"]).returncode != 0:
        pytest.skip("cmocka is not installed")
    # A pkg-config directory with everything but cmocka, and no cmake:
    # the configure run sees a machine without cmocka.
    pc = tmp_path / "pc"
    pc.mkdir()
    dirs = run(["pkg-config", "--variable", "pc_path", "pkg-config"]).stdout.decode().strip()
    for dname in dirs.split(":"):
        dpath = pathlib.Path(dname)
        if dpath.is_dir():
            for f in dpath.glob("*.pc"):
                if not f.name.startswith("cmocka") and not (pc / f.name).exists():
                    (pc / f.name).symlink_to(f)
    native = tmp_path / "native.ini"
    native.write_text("[binaries]\ncmake = '/bin/false'\n")
    b = tmp_path / "build"
    env = dict(os.environ, PKG_CONFIG_LIBDIR=str(pc))
    r = run(["meson", "setup", str(b), "--native-file", str(native)], env=env, timeout=300)
    assert r.returncode == 0, r.stdout.decode() + r.stderr.decode()

    def tests():
        r = run(["meson", "introspect", str(b), "--tests"])
        assert r.returncode == 0, r.stderr
        return json.loads(r.stdout)

    assert tests() == []  # as `make run` left it
    r = run([str(REPO / "scripts" / "build.sh"), "--configure-only", str(b)], timeout=300)
    assert r.returncode == 0, r.stdout.decode() + r.stderr.decode()
    assert b"reconfiguring" in r.stdout
    names = {t["name"] for t in tests()}
    assert {"strutil", "pop3_parse"} <= names, names
    # Configured with cmocka: nothing more to do.
    r = run([str(REPO / "scripts" / "build.sh"), "--configure-only", str(b)], timeout=300)
    assert r.returncode == 0 and b"reconfiguring" not in r.stdout, r.stdout


def test_ready_fd_is_checked(posuto, tmp_path):
    cfg = tmp_path / "none.json"  # never read: the option is refused first
    r_fd, w_fd = os.pipe()
    try:
        for args in (["--ready-fd", "2"], ["--ready-fd", "99"], ["--ready-fd", "x"],
                     ["--ready-fd", str(w_fd), "--inetd"]):
            r = run([posuto, "serve", "-c", str(cfg), *args], pass_fds=(w_fd,))
            assert r.returncode == 64, (args, r.stderr)
        r = run([posuto, "check-config", "-c", str(cfg), "--ready-fd", str(w_fd)],
                pass_fds=(w_fd,))
        assert r.returncode == 64, r.stderr
    finally:
        os.close(r_fd)
        os.close(w_fd)
