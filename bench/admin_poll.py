#!/usr/bin/python3
"""bench/admin_poll.py - does the web admin slow POP3 down? (issue 12)

64 logged-in POP3 clients each send NOOP every 20 ms and time the reply,
first alone, then while 4 browser-like clients (separate processes, each
with its own login cookie, keep-alive) poll /api/v1/sessions and
/api/v1/counters as fast as they can.  Target: NOOP p99 <= 10 ms under
polling.  Prints one JSON line (and a summary on stderr).

    bench/admin_poll.py [--posuto build/posuto] [--duration 10]
                        [--clients 64] [--pollers 4]

Self-contained: a temporary config, users and ports; stdlib only.
"""
import argparse
import http.client
import json
import multiprocessing
import os
import pathlib
import selectors
import socket
import subprocess
import sys
import tempfile
import time

HERE = pathlib.Path(__file__).resolve().parent
ADMIN_PW = "bench-admin-pw"


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def wait_port(port, timeout=30):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    raise SystemExit("port %d not open" % port)


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(len(xs) * p))] if xs else float("nan")


def login_cookie(port):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    c.request("POST", "/api/v1/login", body=json.dumps({"password": ADMIN_PW}),
              headers={"Host": "127.0.0.1:%d" % port, "Content-Type": "application/json"})
    r = c.getresponse()
    r.read()
    if r.status != 200:
        raise SystemExit("admin login: %d" % r.status)
    return r.getheader("Set-Cookie").split(";", 1)[0]


def poller(port, cookie, stop_at, out):
    """Polls as fast as it can on one keep-alive connection."""
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    h = {"Host": "127.0.0.1:%d" % port, "Cookie": cookie}
    n = bad = 0
    paths = ["/api/v1/sessions", "/api/v1/counters"]
    while time.monotonic() < stop_at:
        try:
            c.request("GET", paths[n % 2], headers=h)
            r = c.getresponse()
            r.read()
            bad += r.status != 200
        except (OSError, http.client.HTTPException):
            bad += 1
            c.close()
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        n += 1
    out.put((n, bad))


def pop3_clients(port, n, duration, interval=0.02):
    """n logged-in sessions, NOOP each every interval; latencies in ms."""
    socks = []
    for i in range(n):
        s = socket.create_connection(("127.0.0.1", port), timeout=30)
        f = s.makefile("rb")
        f.readline()
        for line in (b"USER u%d\r\n" % i, b"PASS pw%d\r\n" % i):
            s.sendall(line)
            r = f.readline()
            if not r.startswith(b"+OK"):
                raise SystemExit("login u%d: %r" % (i, r))
        s.setblocking(False)
        socks.append(s)
    sel = selectors.DefaultSelector()
    state = {}
    t0 = time.monotonic()
    for i, s in enumerate(socks):
        # Spread over the interval, so the clients do not move in step.
        state[s] = {"next": t0 + interval * i / n, "sent": None, "buf": b""}
        sel.register(s, selectors.EVENT_READ)
    lat, errors = [], 0
    end = t0 + duration
    while True:
        now = time.monotonic()
        if now >= end:
            break
        for s, st in state.items():
            if st["sent"] is None and now >= st["next"]:
                st["sent"] = time.monotonic()
                s.send(b"NOOP\r\n")
        nxt = min([st["next"] for st in state.values() if st["sent"] is None] + [end])
        for key, _ in sel.select(max(0.0, nxt - time.monotonic())):
            s = key.fileobj
            st = state[s]
            st["buf"] += s.recv(4096)
            while b"\r\n" in st["buf"]:
                line, st["buf"] = st["buf"].split(b"\r\n", 1)
                t = time.monotonic()
                if st["sent"] is not None:
                    lat.append((t - st["sent"]) * 1000)
                errors += not line.startswith(b"+OK")
                st["sent"] = None
                st["next"] += interval
                if st["next"] < t:
                    st["next"] = t
    for s in socks:
        s.close()
    return lat, errors


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--posuto", default=str(HERE.parent / "build" / "posuto"))
    ap.add_argument("--duration", type=float, default=10)
    ap.add_argument("--clients", type=int, default=64)
    ap.add_argument("--pollers", type=int, default=4)
    o = ap.parse_args()
    tmp = pathlib.Path(tempfile.mkdtemp(prefix="posuto-admin-bench-"))
    pop_port, admin_port = free_port(), free_port()
    admin_hash = subprocess.run([o.posuto, "hash", "--scheme", "SHA512-CRYPT"],
                                input=ADMIN_PW + "\n", capture_output=True, text=True,
                                check=True).stdout.strip()
    cfg = {"Pop3Server": {
        "BindAddress": "127.0.0.1", "Port": pop_port, "MailDir": str(tmp / "mail"),
        "AuthFailDelay": 0, "LockFile": str(tmp / "posuto.lock"), "LogLevel": "warn",
        "MaxConnectionsPerIp": 0, "MaxConnectRatePerIp": 0,
        "Users": [{"UserName": "u%d" % i, "Password": "pw%d" % i, "HashType": "PLAIN"}
                  for i in range(o.clients)]},
        "Admin": {"Port": admin_port, "PasswordHash": admin_hash}}
    (tmp / "posuto.json").write_text(json.dumps(cfg))
    os.chmod(tmp / "posuto.json", 0o600)
    log = open(tmp / "posuto.log", "wb")
    srv = subprocess.Popen([o.posuto, "serve", "-c", str(tmp / "posuto.json")],
                           stdout=log, stderr=log, cwd=str(tmp))
    try:
        wait_port(pop_port)
        wait_port(admin_port)
        alone, err1 = pop3_clients(pop_port, o.clients, o.duration)
        q = multiprocessing.Queue()
        stop_at = time.monotonic() + o.duration + 3
        procs = [multiprocessing.Process(target=poller, args=(
            admin_port, login_cookie(admin_port), stop_at, q)) for _ in range(o.pollers)]
        for p in procs:
            p.start()
        time.sleep(0.5)
        t = time.monotonic()
        polled, err2 = pop3_clients(pop_port, o.clients, o.duration)
        dt = time.monotonic() - t
        reqs = bad = 0
        for p in procs:
            n, b = q.get(timeout=60)
            reqs += n
            bad += b
            p.join(timeout=60)
    finally:
        srv.terminate()
        srv.wait(timeout=30)
    res = {
        "scenario": "admin-poll-c%d" % o.clients, "server": "posuto",
        "noop_alone_p50_ms": round(pct(alone, 0.5), 3),
        "noop_alone_p99_ms": round(pct(alone, 0.99), 3),
        "noop_polled_p50_ms": round(pct(polled, 0.5), 3),
        "noop_polled_p99_ms": round(pct(polled, 0.99), 3),
        "noops": len(polled), "api_requests_per_s": round(reqs / (dt + 3.5), 1),
        "api_errors": bad, "errors": err1 + err2, "target_p99_ms": 10,
    }
    res["ok"] = res["noop_polled_p99_ms"] <= 10 and res["errors"] == 0 and bad == 0
    print(json.dumps(res))
    print("admin-poll: NOOP p99 %.2f ms alone, %.2f ms with %d pollers at %.0f req/s "
          "(target <= 10 ms): %s" % (res["noop_alone_p99_ms"], res["noop_polled_p99_ms"],
                                     o.pollers, res["api_requests_per_s"],
                                     "ok" if res["ok"] else "OVER"), file=sys.stderr)
    return 0 if res["errors"] == 0 and bad == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
