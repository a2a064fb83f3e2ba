"""`posuto serve --inetd` under the real tcpserver (Debian's ucspi-tcp), as
seed 003 runs it: `tcpserver -vR -c40 -p 0 pop3 posuto serve --inetd -c …`
(here on 127.0.0.1 and a free port instead of 0.0.0.0:110).  posuto logs
the client that tcpserver names in TCPREMOTEIP/TCPREMOTEPORT, also when
its stdin is no socket (a pipe between them)."""

import os
import poplib
import re
import shutil
import signal
import socket
import subprocess
import time

import pytest

from posuto_testlib import (
    USER1, Maildir, base_config, free_port, sample_message, to_wire, write_config,
)

TCPSERVER = shutil.which("tcpserver")
needs_tcpserver = pytest.mark.skipif(TCPSERVER is None,
                                     reason="tcpserver (ucspi-tcp) not installed")


class Tcpserver:
    def __init__(self, tmp_path, port, argv):
        self.log_path = tmp_path / "tcpserver.stderr"
        self.logf = open(self.log_path, "wb")
        self.port = port
        # -v logs every connection, -R skips the ident lookup, -c40 at most
        # 40 at once, -p paranoid DNS: seed 003's flags exactly.
        self.proc = subprocess.Popen(
            [TCPSERVER, "-vR", "-c40", "-p", "127.0.0.1", str(port), *argv],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=self.logf)
        deadline = time.monotonic() + 30
        for _ in range(600):
            if "status: 0/40" in self.log():
                return
            assert self.proc.poll() is None, "tcpserver exited:\n" + self.log()
            assert time.monotonic() < deadline, "tcpserver did not start:\n" + self.log()
            time.sleep(0.05)
        raise AssertionError("tcpserver did not start:\n" + self.log())

    def log(self):
        return self.log_path.read_text(errors="replace")

    def wait_log(self, pattern, what):
        """Waits (bounded) until the log matches; returns the match."""
        deadline = time.monotonic() + 30
        for _ in range(600):
            m = re.search(pattern, self.log(), re.M)
            if m or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        assert m, "no %s in the log:\n%s" % (what, self.log())
        return m

    def stop(self):
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=30)
        self.logf.close()


def _setup(tmp_path):
    md = Maildir(tmp_path / "mail" / USER1)
    msgs = [sample_message(i) for i in range(3)]
    for m in msgs:
        md.deliver(m)
    path = write_config(tmp_path / "inetd.json",
                        base_config(free_port(), tmp_path / "mail"))
    return md, msgs, path


def _session(port, msgs):
    """login, LIST, RETR, DELE 1, QUIT; returns the client's own port."""
    pop = poplib.POP3("127.0.0.1", port, timeout=30)
    client_port = pop.sock.getsockname()[1]
    assert pop.getwelcome().startswith(b"+OK")
    pop.user(USER1)
    pop.pass_("password")
    _resp, listing, _o = pop.list()
    assert [int(l.split()[1]) for l in listing] == [len(to_wire(m)) for m in msgs]
    _resp, lines, _o = pop.retr(2)
    assert b"\r\n".join(lines) + b"\r\n" == to_wire(msgs[1])
    pop.dele(1)
    assert pop.quit().startswith(b"+OK")
    pop.close()
    return client_port


def _sanitizer_free(log):
    assert "runtime error" not in log and "Sanitizer" not in log, log


@needs_tcpserver
def test_seed003_under_tcpserver(posuto, tmp_path):
    md, msgs, cfg = _setup(tmp_path)
    port = free_port()
    ts = Tcpserver(tmp_path, port, [posuto, "serve", "--inetd", "-c", cfg])
    try:
        client_port = _session(port, msgs)
        # tcpserver -v: "tcpserver: ok PID LOCAL HOST:IP:INFO:PORT", the
        # remote values it hands the child as TCPREMOTEIP and TCPREMOTEPORT.
        m = ts.wait_log(r"^tcpserver: ok \d+ \S+ [^:\s]*:([0-9.]+):[^:\s]*:(\d+)$",
                        "ok line")
        ip, rport = m.group(1), int(m.group(2))
        assert (ip, rport) == ("127.0.0.1", client_port)
        ts.wait_log(r"logout user=%s reason=quit" % re.escape(USER1), "logout")
        ts.wait_log(r"^tcpserver: end \d+ status 0$", "child exit 0")
    finally:
        ts.stop()
    log = ts.log()
    assert "session=1 connect from=%s:%d" % (ip, rport) in log, log
    _sanitizer_free(log)
    assert md.contents() == sorted(msgs[1:])  # DELE 1 happened at QUIT


@needs_tcpserver
def test_tcpremoteip_when_stdin_is_a_pipe(posuto, tmp_path):
    """Between tcpserver and posuto sit pipes (a filter): no getpeername,
    only TCPREMOTEIP/TCPREMOTEPORT say who the client is."""
    md, msgs, cfg = _setup(tmp_path)
    port = free_port()
    # The config allows plaintext: the client is loopback either way, but
    # the pipe hides it unless TCPREMOTEIP is used (then: "127.0.0.1:PORT").
    script = 'cat | "$0" serve --inetd -c "$1" | cat'
    ts = Tcpserver(tmp_path, port, ["sh", "-c", script, posuto, cfg])
    try:
        client_port = _session(port, msgs)
        ts.wait_log(r"logout user=%s reason=quit" % re.escape(USER1), "logout")
    finally:
        ts.stop()
    log = ts.log()
    assert "connect from=127.0.0.1:%d" % client_port in log, log
    assert "from=stdin" not in log, log
    _sanitizer_free(log)
    assert md.contents() == sorted(msgs[1:])


def _pipe_session(posuto, cfg, env, script=b"USER %s\r\nPASS password\r\nQUIT\r\n" % USER1.encode()):
    e = {k: v for k, v in os.environ.items()
         if k not in ("PROTO", "TCPREMOTEIP", "TCPREMOTEPORT")}
    e.update(env)
    p = subprocess.run([posuto, "serve", "--inetd", "-c", cfg], input=script,
                       capture_output=True, timeout=60, env=e)
    err = p.stderr.decode(errors="replace")
    assert p.returncode == 0, err
    _sanitizer_free(err)
    return p.stdout.split(b"\r\n"), err


def test_tcpremoteip_needs_proto_tcp(posuto, tmp_path):
    _md, _msgs, cfg = _setup(tmp_path)
    # Without PROTO=TCP the variables are not a UCSPI server's: ignored.
    out, err = _pipe_session(posuto, cfg, {"TCPREMOTEIP": "192.0.2.7",
                                           "TCPREMOTEPORT": "4321"})
    assert "connect from=stdin" in err and "192.0.2.7" not in err, err
    # With it, the pipe's client is 192.0.2.7:4321: a remote client on an
    # unencrypted connection, so no plaintext password (as on a socket).
    out, err = _pipe_session(posuto, cfg, {"PROTO": "TCP", "TCPREMOTEIP": "192.0.2.7",
                                           "TCPREMOTEPORT": "4321"})
    assert "connect from=192.0.2.7:4321" in err, err
    assert out[0].startswith(b"+OK") and out[1].startswith(b"-ERR"), out
    out, err = _pipe_session(posuto, cfg, {"PROTO": "TCP", "TCPREMOTEIP": "2001:db8::7",
                                           "TCPREMOTEPORT": "65535"})
    assert "connect from=[2001:db8::7]:65535" in err, err
    # Garbage is refused with a warning, not half-used.
    for ip, rport in (("192.0.2.300", "1"), ("192.0.2.7", "65536"), ("192.0.2.7", "x"),
                      ("", "1")):
        out, err = _pipe_session(posuto, cfg, {"PROTO": "TCP", "TCPREMOTEIP": ip,
                                               "TCPREMOTEPORT": rport})
        assert "connect from=stdin" in err and "ignoring TCPREMOTEIP" in err, (ip, rport, err)
        assert out[1].startswith(b"+OK"), out  # a pipe, as before: local


def test_socket_peer_wins_over_tcpremoteip(posuto, tmp_path):
    """On a TCP socket the kernel's word counts, not the environment's."""
    _md, _msgs, cfg = _setup(tmp_path)
    ls = socket.socket()
    ls.bind(("127.0.0.1", 0))
    ls.listen(1)
    client = socket.create_connection(ls.getsockname(), timeout=30)
    client_port = client.getsockname()[1]
    conn, _ = ls.accept()
    ls.close()
    env = dict(os.environ, PROTO="TCP", TCPREMOTEIP="192.0.2.7", TCPREMOTEPORT="4321")
    errf = open(tmp_path / "inetd.stderr", "wb")
    p = subprocess.Popen([posuto, "serve", "--inetd", "-c", cfg], stdin=conn.fileno(),
                         stdout=conn.fileno(), stderr=errf, env=env)
    conn.close()
    try:
        client.sendall(b"QUIT\r\n")
        buf = b""
        for _ in range(100):
            chunk = client.recv(4096)
            if not chunk:
                break
            buf += chunk
        assert buf.startswith(b"+OK")
        rc = p.wait(timeout=30)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait(timeout=30)
        errf.close()
        client.close()
    log = (tmp_path / "inetd.stderr").read_text(errors="replace")
    assert rc == 0, log
    assert "connect from=127.0.0.1:%d" % client_port in log, log
    assert "192.0.2.7" not in log, log
