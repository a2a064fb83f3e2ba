"""The web admin's editing routes (issue 12): users (add, delete, password,
APOP) through the same code as `posuto user`, settings (checked like the
loader, written atomically, applied live: a changed port rebinds without
dropping sessions, a changed TimeOut applies to new sessions), sessions'
recent commands (secrets redacted) and the kick, the last-hour chart, and
the /metrics histograms and gauges by state."""

import base64
import hashlib
import json
import re
import signal
import socket
import time

import pytest

from admin_testlib import Admin, start_with_admin
from posuto_testlib import (USER1, Maildir, Pop3, free_port, login_retry_inuse,
                            sample_message, write_config)

CHANGES = [
    ("POST", "/api/v1/users", {"name": "x1", "password": "pw"}),
    ("DELETE", "/api/v1/users/" + USER1, {}),
    ("PUT", "/api/v1/users/%s/password" % USER1, {"password": "pw2"}),
    ("PUT", "/api/v1/users/%s/apop" % USER1, {"secret": "s"}),
    ("DELETE", "/api/v1/users/%s/apop" % USER1, {}),
    ("PUT", "/api/v1/settings", {"Pop3Server": {"TimeOut": 77}}),
    ("PATCH", "/api/v1/settings", {"Pop3Server": {"TimeOut": 77}}),
    ("POST", "/api/v1/sessions/1/kick", {}),
]


def start(servers, **pop_extra):
    cfg = servers.config(**pop_extra)
    cfg["Other"] = {"Kept": ["as", "it", "was"], "日本語": True}
    return start_with_admin(servers, cfg)


def file_text(s):
    return s.config_path.read_text()


def file_json(s):
    return json.loads(file_text(s))


def wait_for(fn, what, tries=200, pause=0.05):
    for _ in range(tries):
        v = fn()
        if v:
            return v
        time.sleep(pause)
    raise AssertionError("timed out waiting for " + what)


def session_of(a, user):
    for x in a.json("GET", "/api/v1/sessions")[1]["sessions"]:
        if x["user"] == user:
            return x
    return None


# ---------------------------------------------------------------- access

def test_new_routes_need_login_and_csrf(servers):
    s, a = start(servers)
    before = file_text(s)
    anon = Admin(a.port)
    assert anon.request("GET", "/api/v1/chart")[0] == 401
    for method, path, body in CHANGES:
        st, _h, _sc, payload = anon.request(method, path, body=body)
        assert st == 401, (method, path)
        assert json.loads(payload) == {"error": "login required"}
    # Basic credentials never change anything (a browser may have cached them).
    basic = "Basic " + base64.b64encode(b"admin:admin-test-pw").decode()
    for method, path, body in CHANGES:
        st = anon.request(method, path, body=body, headers={"Authorization": basic})[0]
        assert st == 401, (method, path)
    # Logged in, but without the token, or with a wrong one.
    for method, path, body in CHANGES:
        assert a.request(method, path, body=body, csrf=False)[0] == 403, (method, path)
        st = a.request(method, path, body=body, headers={"X-CSRF-Token": "0" * 64})[0]
        assert st == 403, (method, path)
    assert file_text(s) == before
    # A form post (no JSON) is refused before anything is read.
    st = a.request("POST", "/api/v1/users", raw_body=b"name=x&password=y",
                   headers={"Content-Type": "application/x-www-form-urlencoded"})[0]
    assert st == 415
    assert a.request("GET", "/api/v1/users/" + USER1)[0] == 405
    assert a.request("POST", "/api/v1/sessions/1/nothing", body={})[0] == 404
    assert file_text(s) == before


# ---------------------------------------------------------------- users

def test_users_add_list_passwd_apop_delete(servers, tmp_path):
    s, a = start(servers)
    st, r = a.json("POST", "/api/v1/users", {"name": "new1", "password": "first-pw",
                                              "scheme": "SHA256-CRYPT"})
    assert st == 200, r
    u = [x for x in file_json(s)["Pop3Server"]["Users"] if x["UserName"] == "new1"][0]
    assert u["Password"].startswith("{SHA256-CRYPT}")
    assert "first-pw" not in file_text(s)
    assert file_json(s)["Other"] == {"Kept": ["as", "it", "was"], "日本語": True}
    # Applied at once (not after the file watcher's delay): logs in now.
    p = Pop3(port=s.port)
    p.must_login("new1", "first-pw")
    p.quit()
    # The list counts messages and octets.
    box = Maildir(tmp_path / "mail" / "new1")
    box.deliver(sample_message(1))
    box.deliver(sample_message(2))
    st, users = a.json("GET", "/api/v1/users?stats=1")
    mine = [x for x in users["users"] if x["name"] == "new1"][0]
    assert mine["messages"] == 2 and mine["octets"] > 0 and mine["scheme"] == "SHA256-CRYPT"
    assert "messages" not in a.json("GET", "/api/v1/users")[1]["users"][0]
    # New password, another scheme.
    st, r = a.json("PUT", "/api/v1/users/new1/password",
                   {"password": "second-pw", "scheme": "SHA512-CRYPT"})
    assert st == 200, r
    p = Pop3(port=s.port)
    assert p.login("new1", "first-pw").startswith(b"-ERR")
    p.close()
    p = Pop3(port=s.port)
    p.must_login("new1", "second-pw")
    p.quit()
    # APOP secret: set, used, removed.
    assert a.json("PUT", "/api/v1/users/new1/apop", {"secret": "apop-s3cret"})[0] == 200
    p = Pop3(port=s.port)
    ts = re.search(rb"<[^>]+>", p.greeting).group(0)
    digest = hashlib.md5(ts + b"apop-s3cret").hexdigest()
    assert p.cmd("APOP new1 " + digest).startswith(b"+OK")
    p.quit()
    assert a.json("DELETE", "/api/v1/users/new1/apop", {})[0] == 200
    assert "ApopSecret" not in [x for x in file_json(s)["Pop3Server"]["Users"]
                                if x["UserName"] == "new1"][0]
    # Delete: the user goes, the mail stays.
    assert a.json("DELETE", "/api/v1/users/new1", {})[0] == 200
    assert "new1" not in [x["UserName"] for x in file_json(s)["Pop3Server"]["Users"]]
    assert len(box.files()) == 2
    p = Pop3(port=s.port)
    assert p.login("new1", "second-pw").startswith(b"-ERR")
    p.close()
    assert a.json("DELETE", "/api/v1/users/new1", {})[0] == 404


def test_users_delete_purge(servers, tmp_path):
    s, a = start(servers)
    assert a.json("POST", "/api/v1/users", {"name": "gone", "password": "pw"})[0] == 200
    box = Maildir(tmp_path / "mail" / "gone")
    box.deliver(sample_message(1))
    assert a.json("DELETE", "/api/v1/users/gone?purge=1", {})[0] == 200
    assert not (tmp_path / "mail" / "gone").exists()


@pytest.mark.parametrize("method,path,body,key", [
    ("POST", "/api/v1/users", {"name": "bad/name", "password": "pw"}, None),
    ("POST", "/api/v1/users", {"name": "ok1", "password": ""}, "password"),
    ("POST", "/api/v1/users", {"name": "ok1"}, "password"),
    ("POST", "/api/v1/users", {"password": "pw"}, "name"),
    ("POST", "/api/v1/users", {"name": "ok1", "password": "pw", "scheme": "ROT13"}, None),
    ("POST", "/api/v1/users", {"name": "ok1", "password": "a\nb"}, None),
    ("POST", "/api/v1/users", {"name": USER1, "password": "pw"}, None),
    ("PUT", "/api/v1/users/%s/password" % USER1, {"password": ""}, "password"),
    ("PUT", "/api/v1/users/%s/apop" % USER1, {"secret": "tab\there"}, None),
    ("PUT", "/api/v1/users/%s/apop" % USER1, {}, "secret"),
])
def test_users_bad_input_changes_nothing(servers, method, path, body, key):
    s, a = start(servers)
    before = file_text(s)
    st, r = a.json(method, path, body)
    assert st in (400, 404), (st, r)
    assert r["error"], r
    if key is not None:
        assert r["key"] == key
    assert file_text(s) == before
    # And the user it was about still logs in as before.
    Pop3(port=s.port).must_login()


def test_users_unknown_user_404(servers):
    s, a = start(servers)
    before = file_text(s)
    assert a.json("PUT", "/api/v1/users/nobody/password", {"password": "x"})[0] == 404
    assert a.json("DELETE", "/api/v1/users/nobody", {})[0] == 404
    assert a.json("DELETE", "/api/v1/users/%2e%2e", {})[0] in (400, 404)
    assert file_text(s) == before


# ---------------------------------------------------------------- settings

def test_settings_bad_input_400_names_the_key(servers):
    s, a = start(servers)
    before = file_text(s)
    cases = [
        ({"Pop3Server": {"TimeOut": 0}}, "Pop3Server.TimeOut", "out of range"),
        ({"Pop3Server": {"TimeOut": "soon"}}, "Pop3Server.TimeOut", ""),
        ({"Pop3Server": {"MaxConnections": -1}}, "Pop3Server.MaxConnections", ""),
        ({"Pop3Server": {"Listen": [{"Address": "127.0.0.1", "Port": 70000}],
                         "BindAddress": None, "Port": None}},
         "Pop3Server.Listen[0].Port", ""),
        ({"Pop3Server": {"Tls": {"Certificate": "/nonexistent/cert.pem",
                                 "Key": "/nonexistent/key.pem"}}}, "Pop3Server.Tls", ""),
        ({"Pop3Server": {"Users": []}}, "Pop3Server.Users", "/api/v1/users"),
        ({"Admin": {"Port": 1}}, "Admin", "Pop3Server"),
        ({"Pop3Server": 5}, "Pop3Server", "object"),
    ]
    for patch, key, text in cases:
        st, r = a.json("PUT", "/api/v1/settings", patch)
        assert st == 400, (patch, st, r)
        assert r["key"].startswith(key), (patch, r)
        assert text in r["error"], (patch, r)
        assert file_text(s) == before, patch
    assert a.json("PUT", "/api/v1/settings", raw_body=b"[1]",
                  headers={"Content-Type": "application/json"})[0] == 400
    # Still serving, unchanged.
    assert a.json("GET", "/api/v1/settings")[1]["Pop3Server"]["TimeOut"] == 60
    Pop3(port=s.port).must_login()


def test_settings_timeout_persisted_and_applies_to_new_sessions(servers):
    s, a = start(servers)
    old = Pop3(port=s.port)
    old.must_login()
    st, r = a.json("PATCH", "/api/v1/settings", {"Pop3Server": {"TimeOut": 2}})
    assert st == 200, r
    assert r["Pop3Server"]["TimeOut"] == 2
    f = file_json(s)
    assert f["Pop3Server"]["TimeOut"] == 2
    assert f["Other"] == {"Kept": ["as", "it", "was"], "日本語": True}
    assert f["Pop3Server"]["Users"][0]["UserName"] == USER1
    assert f["Admin"]["PasswordHash"].startswith("{SHA512-CRYPT}")
    new = Pop3(port=s.port)
    new.must_login("user2@example.com", "test")
    entry = wait_for(lambda: session_of(a, "user2@example.com"), "the new session")
    assert entry["idle_timeout"] == 2
    assert session_of(a, USER1)["idle_timeout"] == 60
    # The new session is logged out by the new timer (bounded wait)...
    assert new.closed_by_server(timeout=30)
    assert b"-ERR" in new.buf and b"idle" in new.buf.lower()
    # ...the old one keeps its own.
    assert old.ok("NOOP")
    old.quit()


def rebind_patch(port):
    return {"Pop3Server": {"BindAddress": None, "Port": None,
                           "Listen": [{"Address": "127.0.0.1", "Port": port}]}}


def refused(port):
    try:
        socket.create_connection(("127.0.0.1", port), timeout=5).close()
        return False
    except ConnectionRefusedError:
        return True


def test_settings_port_rebinds_live(servers):
    s, a = start(servers)
    old_port = s.port
    kept = Pop3(port=old_port)
    kept.must_login()
    new_port = free_port()
    st, r = a.json("PUT", "/api/v1/settings", rebind_patch(new_port))
    assert st == 200, r
    assert [l["Port"] for l in r["Pop3Server"]["Listen"]] == [new_port]
    assert file_json(s)["Pop3Server"]["Listen"] == [{"Address": "127.0.0.1", "Port": new_port}]
    assert "Port" not in file_json(s)["Pop3Server"]
    # The old port is closed, the new one serves, the session on the old
    # listener goes on.
    assert refused(old_port)
    p = Pop3(port=new_port)
    p.must_login("user2@example.com", "test")
    p.quit()
    assert kept.stat() == (0, 0)
    kept.quit()

    def gauge(name):
        m = a.json("GET", "/api/v1/counters")[1]["metrics"]
        return [x["value"] for x in m if x["name"] == name]
    # The session ends once its QUIT reply is out: seen a moment later.
    wait_for(lambda: gauge("posuto_sessions") == [0], "the session to end")
    assert gauge("posuto_listeners") == [1]


def test_settings_port_in_use_changes_nothing(servers):
    s, a = start(servers)
    busy = socket.socket()
    busy.bind(("127.0.0.1", 0))
    busy.listen(1)
    before = file_text(s)
    try:
        st, r = a.json("PUT", "/api/v1/settings", rebind_patch(busy.getsockname()[1]))
    finally:
        busy.close()
    assert st == 409, r
    assert "nothing changed" in r["error"]
    assert file_text(s) == before
    Pop3(port=s.port).must_login()


def test_sighup_rebinds_a_changed_port(servers):
    """The reload path itself (SIGHUP, the file watcher): listeners follow
    the file (before, a changed port needed a restart)."""
    cfg = servers.config()
    s = servers.start(cfg)
    kept = Pop3(port=s.port)
    kept.must_login()
    old_port, new_port = s.port, free_port()
    cfg["Pop3Server"]["Port"] = new_port
    write_config(s.config_path, cfg)
    s.signal(signal.SIGHUP)

    def serves():
        try:
            c = Pop3(port=new_port)
        except OSError:
            return False
        c.close()
        return True
    wait_for(serves, "the new port", tries=300, pause=0.1)
    assert refused(old_port)
    assert kept.stat() == (0, 0)
    kept.quit()


# ---------------------------------------------------------------- sessions

def test_session_history_redacted(servers):
    s, a = start(servers)
    p = Pop3(port=s.port)
    p.cmd("USER " + USER1)
    p.cmd("PASS not-the-password")
    p.cmd("AUTH PLAIN " + base64.b64encode(b"\0u\0sekrit-ir").decode())
    assert p.cmd("AUTH PLAIN").startswith(b"+")
    # The continuation logs in; its data is a secret too.
    assert p.cmd(base64.b64encode(("\0%s\0password" % USER1).encode()).decode()).startswith(b"+OK")
    # Recorded even where it is refused (wrong state).
    p.cmd("APOP " + USER1 + " 0123456789abcdef0123456789abcdef")
    p.ok("STAT")
    p.ok("NOOP")
    entry = wait_for(lambda: session_of(a, USER1), "the session")
    hist = entry["history"]
    assert "PASS ****" in hist and "USER " + USER1 in hist
    assert "APOP %s ****" % USER1 in hist
    assert "AUTH PLAIN ****" in hist and "AUTH PLAIN" in hist and "****" in hist
    assert hist[-2:] == ["STAT", "NOOP"]
    text = json.dumps(hist)
    for secret in ("not-the-password", "password", "0123456789abcdef", "AHUA", "sekrit"):
        assert secret not in text.replace(USER1, ""), secret
    # At most the last 16.
    for _ in range(20):
        p.ok("NOOP")
    hist = wait_for(lambda: (lambda e: e and e["history"][-1] == "NOOP" and
                             len(e["history"]) == 16 and e)(session_of(a, USER1)), "16 lines")
    assert hist["history"] == ["NOOP"] * 16
    p.quit()


def test_kick_ends_session_cleanly_nothing_deleted(servers, maildir):
    maildir.deliver(sample_message(1))
    maildir.deliver(sample_message(2))
    s, a = start(servers)
    p = Pop3(port=s.port)
    p.must_login()
    p.ok("DELE 1")
    other = Pop3(port=s.port)
    other.must_login("user2@example.com", "test")
    sid = wait_for(lambda: session_of(a, USER1), "the session")["id"]
    st, r = a.json("POST", "/api/v1/sessions/%d/kick" % sid, {})
    assert st == 202 and r["kicked"] is True
    assert p.closed_by_server(timeout=30)
    lines = p.buf.split(b"\r\n")
    assert lines[0].startswith(b"-ERR ") and b"administrator" in lines[0], p.buf
    assert p.buf.endswith(b"\r\n") and len([l for l in lines if l]) == 1
    # No UPDATE: the DELE'd message is still there; the lock is released.
    assert len(maildir.files()) == 2
    q = login_retry_inuse("127.0.0.1", s.port)
    assert q.stat()[0] == 2
    q.quit()
    # The other session never noticed.
    assert other.ok("NOOP")
    other.quit()
    wait_for(lambda: session_of(a, USER1) is None, "the kicked session gone")
    assert a.json("POST", "/api/v1/sessions/%d/kick" % sid, {})[0] == 404
    assert a.json("POST", "/api/v1/sessions/notanumber/kick", {})[0] == 404
    assert a.json("POST", "/api/v1/sessions/99999999/kick", {})[0] == 404
    assert "session=%x kicked" % sid in s.log()


# ---------------------------------------------------------------- chart, metrics

def test_chart_and_metrics_histograms(servers, maildir):
    maildir.deliver(sample_message(1))
    s, a = start(servers)
    p = Pop3(port=s.port)
    p.must_login()
    p.retr(1)
    q = Pop3(port=s.port)
    q.cmd("USER user2@example.com")

    def chart_counts():
        m = a.json("GET", "/api/v1/chart")[1]["minutes"]
        return sum(x["logins"] for x in m) >= 1 and sum(x["retrieved"] for x in m) >= 1 and m
    minutes = wait_for(chart_counts, "the chart to count", tries=100, pause=0.1)
    assert len(minutes) == 60
    assert all(b["minute"] - a_["minute"] == 60 for a_, b in zip(minutes, minutes[1:]))
    assert sum(x["bytes"] for x in minutes) > 0
    st, _h, _sc, body = a.request("GET", "/metrics")
    text = body.decode()
    for fam in ("posuto_login_duration_seconds", "posuto_retr_duration_seconds"):
        assert "# TYPE %s histogram" % fam in text
        buckets = re.findall(r'^%s_bucket\{le="([^"]+)"\} (\d+)$' % fam, text, re.M)
        assert buckets[-1][0] == "+Inf" and len(buckets) >= 5
        counts = [int(c) for _le, c in buckets]
        assert counts == sorted(counts) and counts[-1] >= 1
        assert re.search(r"^%s_count %d$" % (fam, counts[-1]), text, re.M)
        assert re.search(r"^%s_sum [0-9.]+$" % fam, text, re.M)
    assert "# TYPE posuto_sessions_by_state gauge" in text
    assert re.search(r'^posuto_sessions_by_state\{protocol="pop3",state="TRANSACTION"\} 1$',
                     text, re.M), text
    assert re.search(r'^posuto_sessions_by_state\{protocol="pop3",state="AUTHORIZATION"\} 1$',
                     text, re.M), text
    for line in text.splitlines():
        assert line.startswith("# ") or re.fullmatch(
            r'[a-z_]+(\{[^}]*\})? -?[0-9.]+', line), line
    p.quit()
    q.close()
