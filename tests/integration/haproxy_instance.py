"""A private haproxy (Debian package haproxy) in front of posuto nodes.

Its own config file in the test's directory, TCP mode, loopback ports
only, run in the foreground (-db: no daemon, no system service) and
stopped by PID.  Every wait is bounded.

    hp = Haproxy(tmp_path, [("a", 127.0.0.1, port_a), ("b", ...)],
                 proxy="v2").start()
    hp.port          # balanced frontend: roundrobin over every node
    hp.pin["a"]      # a frontend whose only backend is node a
    hp.untrusted     # to the first node, from UNTRUSTED_SOURCE (a source
                     # address the nodes do not trust)
    hp.stop()

proxy is "v2" (send-proxy-v2), "v1" (send-proxy) or None (no header).
There are no health checks (they would be connections the tests do not
make); a pinned frontend to a dead node simply fails to connect.
"""

import os
import pathlib
import shutil
import signal
import subprocess
import time

from posuto_testlib import free_port

# A loopback address haproxy connects from for the "untrusted" frontend;
# the tests' nodes trust only 127.0.0.1.
UNTRUSTED_SOURCE = "127.0.0.9"

PROXY_KEYWORD = {"v2": " send-proxy-v2", "v1": " send-proxy", None: ""}


def haproxy_bin():
    return shutil.which("haproxy") or ("/usr/sbin/haproxy"
                                       if os.path.exists("/usr/sbin/haproxy") else None)


def available():
    return haproxy_bin() is not None


def _listening(port):
    """True if something listens on 127.0.0.1:port (/proc/net/tcp: no
    probe connection, so the balanced frontend's rotation stays as it
    is and the nodes see no extra connections)."""
    want = "0100007F:%04X" % port
    try:
        lines = pathlib.Path("/proc/net/tcp").read_text().splitlines()[1:]
    except OSError:
        return False
    for l in lines:
        f = l.split()
        if len(f) > 3 and f[1] == want and f[3] == "0A":
            return True
    return False


class Haproxy:
    def __init__(self, workdir, nodes, proxy="v2", name="haproxy", timeout_s=120):
        """nodes: [(name, host, port)]."""
        self.dir = pathlib.Path(workdir)
        self.name = name
        self.nodes = list(nodes)
        self.proxy = proxy
        self.port = free_port()
        self.pin = {n: free_port() for n, _h, _p in self.nodes}
        self.untrusted = free_port()
        self.cfg_path = self.dir / (name + ".cfg")
        self.log_path = self.dir / (name + ".log")
        self.proc = None
        self.logf = None
        self.timeout_s = timeout_s
        self.cfg_path.write_text(self.config())

    def config(self):
        kw = PROXY_KEYWORD[self.proxy]
        t = self.timeout_s
        out = [
            "global",
            "    maxconn 4096",
            "    nbthread 1",
            "defaults",
            "    mode tcp",
            "    timeout connect 5s",
            "    timeout client %ds" % t,
            "    timeout server %ds" % t,
            "frontend all",
            "    bind 127.0.0.1:%d" % self.port,
            "    default_backend all",
            "backend all",
            "    balance roundrobin",
        ]
        out += ["    server %s %s:%d%s" % (n, h, p, kw) for n, h, p in self.nodes]
        for n, h, p in self.nodes:
            out += ["frontend pin_%s" % n, "    bind 127.0.0.1:%d" % self.pin[n],
                    "    default_backend pin_%s" % n,
                    "backend pin_%s" % n, "    server %s %s:%d%s" % (n, h, p, kw)]
        n, h, p = self.nodes[0]
        out += ["frontend untrusted", "    bind 127.0.0.1:%d" % self.untrusted,
                "    default_backend untrusted", "backend untrusted",
                "    server %s %s:%d%s source %s" % (n, h, p, kw, UNTRUSTED_SOURCE)]
        return "\n".join(out) + "\n"

    def start(self, timeout=30):
        r = subprocess.run([haproxy_bin(), "-c", "-q", "-f", str(self.cfg_path)],
                           capture_output=True, text=True, timeout=60)
        if r.returncode != 0:
            raise RuntimeError("haproxy -c: %s %s" % (r.stdout, r.stderr))
        self.logf = open(self.log_path, "ab")
        self.proc = subprocess.Popen([haproxy_bin(), "-db", "-f", str(self.cfg_path)],
                                     stdin=subprocess.DEVNULL, stdout=self.logf,
                                     stderr=self.logf, cwd=str(self.dir),
                                     start_new_session=True)
        ports = [self.port, self.untrusted, *self.pin.values()]
        deadline = time.monotonic() + timeout
        for _ in range(100000):
            if self.proc.poll() is not None:
                raise RuntimeError("haproxy exited with %s:\n%s"
                                   % (self.proc.returncode, self.log()))
            if all(_listening(p) for p in ports):
                return self
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("haproxy not listening within %ss:\n%s"
                                   % (timeout, self.log()))
            time.sleep(0.05)
        return self

    def pid(self):
        return self.proc.pid

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def log(self):
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def stop(self):
        if self.alive():
            os.kill(self.proc.pid, signal.SIGTERM)   # hard stop: closes everything
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=30)
        if self.logf:
            self.logf.close()
            self.logf = None
