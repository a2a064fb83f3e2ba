"""Helpers for the web admin's tests (API and browser): a config with an
Admin section, a wait for its port, and a small HTTP client that keeps the
session cookie and the CSRF token.  Every wait is bounded."""

import http.client
import json
import socket
import subprocess
import time

from posuto_testlib import free_port, posuto_bin

ADMIN_PASSWORD = "admin-test-pw"

_hash_cache = {}


def admin_hash(password=ADMIN_PASSWORD):
    if password not in _hash_cache:
        r = subprocess.run([posuto_bin(), "hash", "--scheme", "SHA512-CRYPT"],
                           input=password + "\n", capture_output=True, text=True,
                           timeout=60, check=True)
        _hash_cache[password] = r.stdout.strip()
    return _hash_cache[password]


def with_admin(cfg, port=None, password=ADMIN_PASSWORD, **extra):
    a = {"Port": port or free_port()}
    if password is not None:
        a["PasswordHash"] = admin_hash(password)
    a.update(extra)
    cfg["Admin"] = a
    return cfg


def start_with_admin(servers, cfg, login=True):
    """Starts cfg (given an admin section) and returns the server and an
    Admin client for it (logged in unless login=False)."""
    if "Admin" not in cfg:
        with_admin(cfg)
    s = servers.start(cfg)
    wait_port(cfg["Admin"]["Port"])
    a = Admin(cfg["Admin"]["Port"])
    if login:
        assert a.login()[0] == 200
    a.server = s
    return s, a


def wait_port(port, host="127.0.0.1", timeout=30):
    deadline = time.monotonic() + timeout
    for _ in range(10000):
        try:
            with socket.create_connection((host, port), timeout=1):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


class Admin:
    """One browser-like client: cookie jar of one cookie, CSRF token."""

    def __init__(self, port, host="127.0.0.1", source=None):
        self.port = port
        self.host = host
        self.source = source
        self.cookie = None
        self.csrf = None

    def conn(self):
        kw = {"timeout": 30}
        if self.source:
            kw["source_address"] = (self.source, 0)
        return http.client.HTTPConnection(self.host, self.port, **kw)

    def request(self, method, path, body=None, headers=None, host=None,
                cookie=True, csrf=True, raw_body=None):
        h = {"Host": host or "%s:%d" % (self.host, self.port)}
        if cookie and self.cookie:
            h["Cookie"] = "posuto_sid=" + self.cookie
        if csrf and self.csrf and method not in ("GET", "HEAD"):
            h["X-CSRF-Token"] = self.csrf
        data = raw_body
        if body is not None:
            data = json.dumps(body).encode()
            h["Content-Type"] = "application/json"
        h.update(headers or {})
        h = {k: v for k, v in h.items() if v is not None}
        c = self.conn()
        try:
            c.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
            for k, v in h.items():
                c.putheader(k, v)
            if data is not None and "Content-Length" not in h:
                c.putheader("Content-Length", str(len(data)))
            c.endheaders(data)
            r = c.getresponse()
            payload = r.read()
            return r.status, dict((k.lower(), v) for k, v in r.getheaders()), \
                r.getheader("Set-Cookie"), payload
        finally:
            c.close()

    def json(self, method, path, body=None, **kw):
        st, hdr, _sc, payload = self.request(method, path, body=body, **kw)
        try:
            data = json.loads(payload) if payload else None
        except ValueError:
            data = payload
        return st, data

    def login(self, password=ADMIN_PASSWORD):
        st, hdr, sc, payload = self.request("POST", "/api/v1/login",
                                            body={"password": password})
        if st == 200:
            assert sc and sc.startswith("posuto_sid="), sc
            self.cookie = sc.split(";", 1)[0].split("=", 1)[1]
            self.csrf = json.loads(payload)["csrf"]
        return st, hdr, sc
