"""The web admin's HTTP server (issue 12): routes, login, CSRF, Host and
Origin checks, the login limiter, body limits, static assets and their
headers, escaping, live events, /metrics, and `posuto admin passwd`."""

import json
import os
import re
import signal
import socket
import stat
import subprocess
import time

import pytest

from admin_testlib import ADMIN_PASSWORD, Admin, admin_hash, wait_port, with_admin
from posuto_testlib import posuto_bin, write_config

XSS_NAME = "<b>bold<i>"          # a valid user name that is markup
XSS_IMG = "<img src=x onerror=alert(1)>"  # user names cannot hold spaces:
# it reaches the pages through the mailbox path instead

API_GET = ["/api/v1/me", "/api/v1/users", "/api/v1/settings", "/api/v1/sessions",
           "/api/v1/counters", "/api/v1/events", "/api/v1/openapi.json", "/metrics"]
API_POST = ["/api/v1/logout"]


def start_admin(servers, tmp_path, users=None, **admin_extra):
    cfg = servers.config(users=users)
    with_admin(cfg, **admin_extra)
    s = servers.start(cfg)
    port = cfg["Admin"]["Port"]
    wait_port(port)
    return s, port


@pytest.fixture
def admin(servers, tmp_path):
    s, port = start_admin(servers, tmp_path)
    a = Admin(port)
    a.server = s
    return a


def logged_in(a):
    st, _h, _sc = a.login()
    assert st == 200
    return a


# ---------------------------------------------------------------- login

def test_every_route_needs_login(admin):
    for path in API_GET + ["/api/v1/nosuchroute", "/api/v1/"]:
        st, hdr, _sc, body = admin.request("GET", path)
        assert st == 401, path
        assert json.loads(body) == {"error": "login required"}, path
        assert "no-store" in hdr.get("cache-control", "")
    for path in API_POST:
        st, _h, _sc, _b = admin.request("POST", path, body={})
        assert st == 401, path
    # A cookie that names no session is no login either.
    admin.cookie = "0" * 64
    for path in API_GET:
        assert admin.request("GET", path)[0] == 401, path


def test_login_cookie_and_session(admin):
    st, _h, sc = admin.login("wrong")
    assert st == 401 and sc is None
    st, _h, sc = admin.login()
    assert st == 200
    attrs = [x.strip() for x in sc.split(";")]
    assert re.fullmatch(r"posuto_sid=[0-9a-f]{64}", attrs[0]), sc
    assert "HttpOnly" in attrs and "SameSite=Strict" in attrs and "Path=/" in attrs
    assert "Secure" not in attrs          # plain HTTP here; see the TLS test
    first = admin.cookie
    st, me = admin.json("GET", "/api/v1/me")
    assert st == 200 and me["user"] == "admin" and me["csrf"] == admin.csrf
    for path in API_GET:
        if path == "/api/v1/events":
            continue
        assert admin.request("GET", path)[0] == 200, path
    # A second login is another session with other ids.
    b = Admin(admin.port)
    assert b.login()[0] == 200
    assert b.cookie != first and b.csrf != admin.csrf


def test_csrf_required_for_changes(admin):
    logged_in(admin)
    token = admin.csrf
    admin.csrf = None
    assert admin.json("POST", "/api/v1/logout", body={})[0] == 403
    admin.csrf = "f" * 64
    assert admin.json("POST", "/api/v1/logout", body={})[0] == 403
    admin.csrf = token[:-1]
    assert admin.json("POST", "/api/v1/logout", body={})[0] == 403
    # Another session's token is not this one's.
    other = logged_in(Admin(admin.port))
    admin.csrf = other.csrf
    assert admin.json("POST", "/api/v1/logout", body={})[0] == 403
    assert admin.json("GET", "/api/v1/me")[0] == 200      # still logged in
    admin.csrf = token
    st, _h, sc, _b = admin.request("POST", "/api/v1/logout", body={})
    assert st == 200 and "Max-Age=0" in sc
    # The server forgot the session: the old cookie is no login any more.
    assert admin.json("GET", "/api/v1/me")[0] == 401
    assert other.json("GET", "/api/v1/me")[0] == 200


def test_basic_auth_reads_only(admin):
    import base64
    good = "Basic " + base64.b64encode(("admin:" + ADMIN_PASSWORD).encode()).decode()
    bad = "Basic " + base64.b64encode(b"admin:nope").decode()
    st, hdr, _sc, body = admin.request("GET", "/metrics", headers={"Authorization": good})
    assert st == 200 and b"posuto_uptime_seconds" in body
    st, hdr, _sc, _b = admin.request("GET", "/metrics", headers={"Authorization": bad})
    assert st == 401 and hdr["www-authenticate"].startswith("Basic")
    # Credentials a browser cached never change anything.
    st, _h, _sc, _b = admin.request("POST", "/api/v1/logout", body={},
                                    headers={"Authorization": good})
    assert st == 401


def test_login_bad_input(admin):
    cases = [
        ({"Content-Type": "text/plain"}, b'{"password":"x"}', 415),
        ({"Content-Type": "application/x-www-form-urlencoded"}, b"password=x", 415),
        ({"Content-Type": "application/json"}, b"not json", 400),
        ({"Content-Type": "application/json"}, b"[1,2]", 400),
        ({"Content-Type": "application/json"}, b'{"password": 5}', 400),
        ({"Content-Type": "application/json"}, b'{"password":"a","password":"b"}', 400),
        ({"Content-Type": "application/json"}, b"", 400),
    ]
    for hdr, body, want in cases:
        st, _h, sc, _b = admin.request("POST", "/api/v1/login", headers=hdr, raw_body=body)
        assert st == want, (hdr, body, st)
        assert sc is None
    # Wrong methods on known routes.
    assert admin.request("GET", "/api/v1/login")[0] == 405
    logged_in(admin)
    assert admin.request("DELETE", "/api/v1/users")[0] == 405
    assert admin.request("POST", "/api/v1/nosuchroute", body={})[0] == 404
    assert admin.server.alive()


def test_login_rate_limited(admin):
    for i in range(4):
        st, _h, _sc = admin.login("wrong%d" % i)
        assert st == 401, i
    # Now even the right password is not looked at.
    st, hdr, sc = admin.login()
    assert st == 429 and sc is None
    assert int(hdr["retry-after"]) > 0
    st, _h, _sc = admin.login("wrong")
    assert st == 429
    # Basic credentials go through the same limiter.
    import base64
    good = "Basic " + base64.b64encode(("admin:" + ADMIN_PASSWORD).encode()).decode()
    assert admin.request("GET", "/metrics", headers={"Authorization": good})[0] == 401
    # The limit is per client address: 127.0.0.2 may still log in.
    other = Admin(admin.port, source="127.0.0.2")
    assert other.login()[0] == 200
    assert "failed login from 127.0.0.1" in admin.server.log()


# ---------------------------------------------------------------- Host / Origin

def test_host_checked_against_dns_rebinding(servers, tmp_path):
    s, port = start_admin(servers, tmp_path, Hostnames=["admin.example.test"])
    a = Admin(port)
    for host in ["evil.example", "evil.example:%d" % port, "127.0.0.1:%d" % (port + 1),
                 "127.0.0.1", "localhost.evil.example:%d" % port, "[::1]:%dx" % port,
                 "127.0.0.1:%d:%d" % (port, port), "", "admin.example.test:1"]:
        st, hdr, _sc, _b = a.request("GET", "/", headers={"Host": host})
        assert st == 421, host
        assert hdr["content-security-policy"]
        assert a.request("POST", "/api/v1/login", body={"password": ADMIN_PASSWORD},
                         headers={"Host": host})[0] == 421, host
    for host in ["127.0.0.1:%d" % port, "localhost:%d" % port, "LocalHost:%d" % port,
                 "[::1]:%d" % port, "admin.example.test:%d" % port]:
        assert a.request("GET", "/", host=host)[0] == 200, host
    # HTTP/1.0 without a Host header.
    with socket.create_connection(("127.0.0.1", port), timeout=30) as c:
        c.sendall(b"GET / HTTP/1.0\r\n\r\n")
        resp = b""
        for _ in range(1000):
            chunk = c.recv(65536)
            if not chunk:
                break
            resp += chunk
        assert resp.startswith(b"HTTP/1.0 421") or resp.startswith(b"HTTP/1.1 421"), resp[:80]


def test_origin_checked(admin):
    port = admin.port
    for origin in ["http://evil.example", "null", "http://127.0.0.1:%d.evil.example" % port,
                   "https://127.0.0.1:%d" % port, "http://127.0.0.1:%d/x" % port,
                   "http://127.0.0.1:%d" % (port + 1)]:
        st, _h, sc, _b = admin.request("POST", "/api/v1/login", body={"password": ADMIN_PASSWORD},
                                       headers={"Origin": origin})
        assert st == 403 and sc is None, origin
    logged_in(admin)
    st, _h, _sc, _b = admin.request("GET", "/api/v1/users", headers={"Origin": "http://evil.example"})
    assert st == 403
    st, _h, _sc, _b = admin.request("POST", "/api/v1/logout", body={},
                                    headers={"Origin": "http://evil.example"})
    assert st == 403
    assert admin.json("GET", "/api/v1/me")[0] == 200
    st, _h, _sc, _b = admin.request("POST", "/api/v1/logout", body={},
                                    headers={"Origin": "http://localhost:%d" % port})
    assert st == 200


# ---------------------------------------------------------------- limits

def test_100mb_upload_refused_cleanly(admin):
    size = 100 * 1024 * 1024
    for path in ["/api/v1/login", "/api/v1/logout", "/nosuchfile"]:
        with socket.create_connection(("127.0.0.1", admin.port), timeout=30) as c:
            c.sendall(("POST %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n"
                       "Content-Type: application/json\r\nContent-Length: %d\r\n\r\n"
                       % (path, admin.port, size)).encode())
            # Offer some of the body, then read: the answer comes without it.
            sent = 0
            c.settimeout(5)
            try:
                for _ in range(64):
                    c.sendall(b"x" * 65536)
                    sent += 65536
            except OSError:
                pass
            c.settimeout(30)
            resp = b""
            try:
                for _ in range(1000):
                    chunk = c.recv(65536)
                    if not chunk:
                        break
                    resp += chunk
            except ConnectionResetError:
                pass
            assert resp.startswith(b"HTTP/1.1 413"), (path, resp[:100])
            assert sent < size
    # Chunked: no length to judge up front, refused once over the limit.
    with socket.create_connection(("127.0.0.1", admin.port), timeout=30) as c:
        c.sendall(("POST /api/v1/login HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n"
                   "Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
                   % admin.port).encode())
        resp = b""
        c.settimeout(5)
        try:
            for _ in range(1600):
                c.sendall(b"10000\r\n" + b"x" * 65536 + b"\r\n")
        except OSError:
            pass
        c.settimeout(30)
        try:
            for _ in range(1000):
                chunk = c.recv(65536)
                if not chunk:
                    break
                resp += chunk
        except ConnectionResetError:
            pass
        assert resp.startswith(b"HTTP/1.1 413"), resp[:100]
    # The server is fine and still answers.
    assert admin.server.alive()
    assert logged_in(admin).json("GET", "/api/v1/me")[0] == 200


# ---------------------------------------------------------------- static files

def test_static_assets_types_and_security_headers(admin):
    want = {
        "/": "text/html; charset=utf-8",
        "/index.html": "text/html; charset=utf-8",
        "/app.js": "text/javascript; charset=utf-8",
        "/style.css": "text/css; charset=utf-8",
        "/i18n/en.js": "text/javascript; charset=utf-8",
        "/i18n/ja.js": "text/javascript; charset=utf-8",
    }
    for path, ctype in want.items():
        st, hdr, _sc, body = admin.request("GET", path)
        assert st == 200, path
        assert hdr["content-type"] == ctype, path
        csp = hdr["content-security-policy"]
        assert "default-src 'self'" in csp and "frame-ancestors 'none'" in csp
        assert "script-src 'self'" in csp and "unsafe-inline" not in csp
        assert hdr["x-content-type-options"] == "nosniff"
        assert hdr["x-frame-options"] == "DENY"
        etag = hdr["etag"]
        st, hdr2, _sc, body2 = admin.request("GET", path, headers={"If-None-Match": etag})
        assert st == 304 and body2 == b"", path
        st, hdr3, _sc, body3 = admin.request("HEAD", path)
        assert st == 200 and body3 == b"" and hdr3["etag"] == etag
    # No inline script anywhere in the page: the CSP would refuse it.
    _st, _h, _sc, page = admin.request("GET", "/")
    assert not re.search(rb"<script(?![^>]*\bsrc=)", page)
    assert b" on" not in re.sub(rb"<!--.*?-->", b"", page).lower().replace(b" one", b"")
    # Only the embedded table: nothing else, however the path is spelled.
    for path in ["/../../etc/passwd", "/%2e%2e/%2e%2e/etc/passwd", "/etc/passwd",
                 "//etc/passwd", "/app.js/", "/app.js%00", "/web/app.js",
                 "/api/openapi.json", "/index.html/..", "/.git/config",
                 "/" + "a" * 5000]:
        st, hdr, _sc, body = admin.request("GET", path)
        assert st in (404, 400, 401, 414), path
        assert b"root:" not in body
        assert hdr.get("content-security-policy"), path
    assert admin.request("POST", "/", body={})[0] == 405


def test_i18n_tables_have_the_same_keys(admin):
    keys = {}
    for lang in ("en", "ja"):
        _st, _h, _sc, body = admin.request("GET", "/i18n/%s.js" % lang)
        keys[lang] = set(re.findall(r'^\s*"([^"]+)":', body.decode(), re.M))
    assert keys["en"] and keys["en"] == keys["ja"]
    _st, _h, _sc, page = admin.request("GET", "/")
    used = set(re.findall(r'data-i18n="([^"]+)"', page.decode()))
    _st, _h, _sc, app = admin.request("GET", "/app.js")
    used |= {k for k in re.findall(r"\bt\('([a-z_.]+)'", app.decode()) if not k.endswith('.')}
    assert used - keys["en"] == set()
    # The rule that makes escaping unnecessary: no HTML from strings.
    assert b"innerHTML" not in app and b"insertAdjacentHTML" not in app
    assert b"document.write" not in app


# ---------------------------------------------------------------- data routes

def test_users_and_settings_routes(servers, tmp_path):
    users = [
        {"UserName": "plain1", "Password": "password", "HashType": "PLAIN"},
        {"UserName": XSS_NAME, "Password": "password", "HashType": "PLAIN",
         "ApopSecret": "apop-secret"},
    ]
    cfg = servers.config(users=users, MailDir=str(tmp_path / ("mail" + XSS_IMG)))
    with_admin(cfg)
    s = servers.start(cfg)
    wait_port(cfg["Admin"]["Port"])
    a = logged_in(Admin(cfg["Admin"]["Port"]))
    st, hdr, _sc, body = a.request("GET", "/api/v1/users")
    assert st == 200 and hdr["content-type"].startswith("application/json")
    data = json.loads(body)
    names = [u["name"] for u in data["users"]]
    assert sorted(names) == sorted(["plain1", XSS_NAME])
    u = [x for x in data["users"] if x["name"] == XSS_NAME][0]
    assert u["apop"] is True and u["scheme"] == "PLAIN" and XSS_IMG in u["mailbox"]
    # Secrets never leave the server.
    assert b"apop-secret" not in body and b"password" not in body
    st, settings = a.json("GET", "/api/v1/settings")
    assert st == 200
    pop = settings["Pop3Server"]
    assert pop["Listen"][0]["Port"] == s.port and "Users" not in pop
    assert settings["user_count"] == 2
    assert settings["Admin"]["PasswordHash"] == "<hidden>"
    text = json.dumps(settings)
    assert "apop-secret" not in text and admin_hash() not in text
    st, sess = a.json("GET", "/api/v1/sessions")
    assert st == 200 and sess["sessions"] == []
    st, cnt = a.json("GET", "/api/v1/counters")
    m = {x["name"]: x["value"] for x in cnt["metrics"]}
    assert m["posuto_users"] == 2 and m["posuto_listeners"] == 1
    assert cnt["uptime_seconds"] >= 0


def test_metrics_and_openapi(admin):
    logged_in(admin)
    st, hdr, _sc, body = admin.request("GET", "/metrics")
    assert st == 200 and hdr["content-type"].startswith("text/plain; version=0.0.4")
    text = body.decode()
    for name in ("posuto_uptime_seconds", "posuto_users", "posuto_sessions"):
        assert "# TYPE %s gauge" % name in text
        assert re.search(r"^%s \d+$" % name, text, re.M), name
    for line in text.splitlines():
        assert line.startswith("# ") or re.fullmatch(r"[a-z_]+(\{[^}]*\})? -?[0-9.e+]+", line), line
    st, spec = admin.json("GET", "/api/v1/openapi.json")
    assert st == 200 and spec["openapi"].startswith("3.")
    for path in API_GET + ["/api/v1/login", "/api/v1/logout"]:
        assert path in spec["paths"], path


def read_events(sock, want, limit=200):
    buf = b""
    for _ in range(limit):
        chunk = sock.recv(65536)
        if not chunk:
            break
        buf += chunk
        if want in buf:
            return buf
    raise AssertionError("no %r in %r" % (want, buf[-500:]))


def test_events_stream_changed_on_reload(admin):
    logged_in(admin)
    with socket.create_connection(("127.0.0.1", admin.port), timeout=30) as c:
        c.sendall(("GET /api/v1/events HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n"
                   "Cookie: posuto_sid=%s\r\nAccept: text/event-stream\r\n\r\n"
                   % (admin.port, admin.cookie)).encode())
        buf = read_events(c, b"event: hello")
        assert b"content-type: text/event-stream" in buf.lower()
        read_events(c, b"event: heartbeat")
        admin.server.signal(signal.SIGHUP)
        buf = read_events(c, b'"what":"settings"')
        assert b"event: changed" in buf
        # Logging out ends the stream (no more events for that page).
        assert admin.json("POST", "/api/v1/logout", body={})[0] == 200
        for _ in range(200):
            chunk = c.recv(65536)
            if not chunk or chunk.endswith(b"0\r\n\r\n"):
                break
        assert not chunk or chunk.endswith(b"0\r\n\r\n")
    # A page that just goes away is forgotten too (its next heartbeat fails).
    logged_in(admin)
    c = socket.create_connection(("127.0.0.1", admin.port), timeout=30)
    c.sendall(("GET /api/v1/events HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n"
               "Cookie: posuto_sid=%s\r\n\r\n" % (admin.port, admin.cookie)).encode())
    read_events(c, b"event: hello")

    def live_pages():
        m = admin.json("GET", "/api/v1/counters")[1]["metrics"]
        return [x["value"] for x in m if x["name"] == "posuto_admin_live_pages"][0]
    assert live_pages() == 1
    c.close()
    for _ in range(300):
        if live_pages() == 0:
            break
        time.sleep(0.1)
    assert live_pages() == 0


def test_sessions_gauge_follows_pop3(admin):
    logged_in(admin)
    from posuto_testlib import Pop3
    p = Pop3(port=admin.server.port)
    p.login()
    seen = None
    for _ in range(100):
        seen = {x["name"]: x["value"] for x in admin.json("GET", "/api/v1/counters")[1]["metrics"]}
        if seen["posuto_sessions"] >= 1:
            break
        time.sleep(0.1)
    assert seen["posuto_sessions"] >= 1
    st, sess = admin.json("GET", "/api/v1/sessions")
    assert st == 200 and sess["available"] is True
    mine = [x for x in sess["sessions"] if x["user"] == "user1@example.com"]
    assert len(mine) == 1 and mine[0]["protocol"] == "pop3", sess
    assert mine[0]["client"].startswith("127.0.0.1")
    _st, _h, _sc, body = admin.request("GET", "/metrics")
    assert re.search(rb'^posuto_logins_ok_total\{protocol="pop3"\} [1-9]', body, re.M), body
    p.ok("QUIT")


# ---------------------------------------------------------------- config and CLI

def test_admin_passwd_keeps_other_keys(servers, tmp_path):
    cfg = servers.config()
    cfg["SmtpServer"] = {"Port": 25, "Note": "日本語"}
    path = tmp_path / "edit.json"
    write_config(path, cfg)
    os.chmod(path, 0o640)
    before = json.loads(path.read_text())
    r = subprocess.run([posuto_bin(), "admin", "passwd", "-c", str(path)],
                       input="new-admin-pw\n", capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    after = json.loads(path.read_text())
    h = after.pop("Admin")["PasswordHash"]
    assert h.startswith("{SHA512-CRYPT}$6$")
    assert after == before                      # every other key kept, in order
    assert list(after) == list(before)
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o640
    assert sorted(os.listdir(tmp_path)) == ["edit.json"] or \
        not [f for f in os.listdir(tmp_path) if f.startswith("edit.json.")]
    # Again: the hash is replaced, not added.
    r = subprocess.run([posuto_bin(), "admin", "passwd", "-c", str(path), "--scheme", "ARGON2ID"],
                       input="other-pw\n", capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert json.loads(path.read_text())["Admin"]["PasswordHash"].startswith("{ARGON2ID}")
    # The new password works.
    cfg2 = json.loads(path.read_text())
    cfg2["Admin"]["Port"] = __import__("posuto_testlib").free_port()
    s = servers.start(cfg2)
    wait_port(cfg2["Admin"]["Port"])
    a = Admin(cfg2["Admin"]["Port"])
    assert a.login("new-admin-pw")[0] == 401
    assert a.login("other-pw")[0] == 200
    # Bad uses: no file, empty password, unknown scheme.
    for args, inp in [(["-c", str(tmp_path / "missing.json")], "x\n"),
                      (["-c", str(path)], "\n"),
                      (["-c", str(path), "--scheme", "NOPE"], "x\n")]:
        r = subprocess.run([posuto_bin(), "admin", "passwd", *args], input=inp,
                           capture_output=True, text=True, timeout=60)
        assert r.returncode != 0 and r.stderr, args
    assert s.alive()


def test_first_start_generates_password_once(servers, tmp_path):
    cfg = servers.config()
    with_admin(cfg, password=None)
    s = servers.start(cfg)
    port = cfg["Admin"]["Port"]
    wait_port(port)
    m = re.search(r"generated password for user admin: (\S+)", s.log())
    assert m, s.log()
    pw = m.group(1)
    stored = json.loads(s.config_path.read_text())
    assert stored["Admin"]["PasswordHash"].startswith("{SHA512-CRYPT}")
    assert pw not in s.config_path.read_text()
    assert stored["Pop3Server"] == cfg["Pop3Server"]
    assert Admin(port).login(pw)[0] == 200
    # The next start uses the stored hash and prints nothing new.
    s.stop()
    s2 = servers.start(stored)
    wait_port(port)
    assert "generated password" not in s2.log().split("posuto 0")[-1] or \
        s2.log().count("generated password") == 1
    assert Admin(port).login(pw)[0] == 200


def test_no_admin_section_no_admin(servers):
    s = servers.start()
    assert "web admin" not in s.log()


def test_config_errors_name_their_key(servers, tmp_path):
    cases = [
        ({"Port": 0}, "Admin.Port"),
        ({"Port": "x"}, "Admin.Port"),
        ({"Address": "localhost"}, "Admin.Address"),
        ({"Tls": True}, "Admin.Tls"),
        ({"Hostnames": ["bad name"]}, "Admin.Hostnames[0]"),
        ({"PasswordHash": "{NOPE}x"}, "Admin.PasswordHash"),
        ({"Bogus": 1}, "Admin.Bogus"),
    ]
    for admin_cfg, key in cases:
        cfg = servers.config()
        cfg["Admin"] = admin_cfg
        path = tmp_path / "bad.json"
        write_config(path, cfg)
        r = subprocess.run([posuto_bin(), "check-config", "-c", str(path)],
                           capture_output=True, text=True, timeout=60)
        assert re.search(r"bad\.json:\d+:\d+: %s: " % re.escape(key), r.stderr), (key, r.stderr)
        if key != "Admin.Bogus":     # an unknown key is a warning
            assert r.returncode == 78, key


def test_https_admin_secure_cookie(servers, tmp_path, tls_cert):
    import http.client
    import ssl
    cert, key = tls_cert
    cfg = servers.config(Tls={"Certificate": cert, "Key": key})
    with_admin(cfg, Tls=True)
    servers.start(cfg)
    port = cfg["Admin"]["Port"]
    wait_port(port)
    ctx = ssl.create_default_context(cafile=cert)
    c = http.client.HTTPSConnection("localhost", port, context=ctx, timeout=30)
    c.request("POST", "/api/v1/login", body=json.dumps({"password": ADMIN_PASSWORD}),
              headers={"Content-Type": "application/json", "Origin": "https://localhost:%d" % port})
    r = c.getresponse()
    r.read()
    assert r.status == 200
    sc = r.getheader("Set-Cookie")
    assert "Secure" in [x.strip() for x in sc.split(";")]
    c.close()
    # Plain HTTP to the TLS port gets nothing useful.
    with socket.create_connection(("127.0.0.1", port), timeout=30) as s:
        s.sendall(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
        s.settimeout(10)
        try:
            data = s.recv(4096)
        except (ConnectionResetError, socket.timeout):
            data = b""
        assert b"<html" not in data


def test_admin_passwd_applies_on_sighup(admin):
    r = subprocess.run([posuto_bin(), "admin", "passwd", "-c", str(admin.server.config_path)],
                       input="changed-pw\n", capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    admin.server.signal(signal.SIGHUP)
    for _ in range(300):
        if "reload done" in admin.server.log():
            break
        time.sleep(0.1)
    assert "reload done" in admin.server.log()
    assert admin.login(ADMIN_PASSWORD)[0] == 401
    assert admin.login("changed-pw")[0] == 200
