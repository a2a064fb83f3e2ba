"""The web admin's mailbox viewer API (issue 12): mailboxes, messages
(list, search, decoding of Japanese headers, parsed, raw, HTML, parts),
delete (409 while a POP3 session holds the mailbox), upload (413 for
100 MB), the mbox download, the POP3 state overlay and the CSP report
endpoint."""

import base64
import json
import mailbox
import os
import socket
import urllib.parse

import pytest

from admin_testlib import Admin, start_with_admin
from posuto_testlib import USER1, USER2, Maildir, Pop3 as Pop3Client

U1 = urllib.parse.quote(USER1, safe="")
BASE = "/api/v1/mailboxes/" + U1


def start(servers, tmp_path):
    cfg = servers.config()
    _s, a = start_with_admin(servers, cfg, login=False)
    a.pop3_port = cfg["Pop3Server"]["Port"]
    return a


@pytest.fixture
def admin(servers, tmp_path):
    return start(servers, tmp_path)


@pytest.fixture
def box(tmp_path):
    return Maildir(tmp_path / "mail" / USER1)


def login(a):
    assert a.login()[0] == 200
    return a


def msg(subject=b"hello", frm=b"sender@example.org", body=b"body\n", extra=b""):
    return (b"From: " + frm + b"\nTo: user1@example.com\nSubject: " + subject +
            b"\nDate: Tue, 01 Dec 2026 10:00:00 +0000\n" + extra + b"\n" + body)


def uidls(a):
    st, r = a.json("GET", BASE + "/messages?limit=500")
    assert st == 200, r
    return [m["uidl"] for m in r["messages"]]


def q(s):
    return urllib.parse.quote(s, safe="")


# ---------------------------------------------------------------- access

def test_routes_need_login_and_csrf(admin, box):
    box.deliver(msg())
    gets = ["/api/v1/mailboxes", BASE + "/messages", BASE + "/messages/x",
            BASE + "/messages/x/raw", BASE + "/messages/x/html",
            BASE + "/messages/x/parts/0", BASE + "/download",
            "/api/v1/csp-reports", "/api/v1/mailboxes/nobody/messages"]
    for p in gets:
        st, _h, _sc, body = admin.request("GET", p)
        assert st == 401, p
        assert json.loads(body) == {"error": "login required"}
    assert admin.request("DELETE", BASE + "/messages/x")[0] == 401
    assert admin.request("POST", BASE + "/messages", raw_body=msg(),
                         headers={"Content-Type": "message/rfc822"})[0] == 401
    login(admin)
    uid = uidls(admin)[0]
    token = admin.csrf
    for bad in (None, "f" * 64, token[:-1]):
        admin.csrf = bad
        st, _h, _sc, _b = admin.request("DELETE", BASE + "/messages/" + q(uid))
        assert st == 403, bad
        st, _h, _sc, _b = admin.request("POST", BASE + "/messages", raw_body=msg(),
                                        headers={"Content-Type": "message/rfc822"})
        assert st == 403, bad
    admin.csrf = token
    assert uidls(admin) == [uid]          # nothing changed
    # Basic credentials read, never change.
    good = "Basic " + base64.b64encode(b"admin:admin-test-pw").decode()
    st, _h, _sc, _b = admin.request("GET", BASE + "/messages", cookie=False,
                                    headers={"Authorization": good})
    assert st == 200
    st, _h, _sc, _b = admin.request("DELETE", BASE + "/messages/" + q(uid),
                                    cookie=False, csrf=False,
                                    headers={"Authorization": good})
    assert st == 401
    # Wrong methods.
    st, hdr, _sc, _b = admin.request("PUT", BASE + "/messages", raw_body=b"")
    assert st == 405 and "POST" in hdr["allow"]


def test_unknown_user_uidl_part_and_bad_input(admin, box):
    box.deliver(msg())
    login(admin)
    uid = uidls(admin)[0]
    for p in ["/api/v1/mailboxes/nobody/messages", "/api/v1/mailboxes/nobody/download",
              BASE + "/messages/nosuchuidl", BASE + "/messages/nosuchuidl/raw",
              BASE + "/messages/" + q(uid) + "/parts/99",
              BASE + "/messages/" + q(uid) + "/nosuchtail",
              "/api/v1/mailboxes/%2e%2e/messages", BASE + "/messages/a/b/c/d"]:
        st, r = admin.json("GET", p)
        assert st == 404, (p, st, r)
    assert admin.json("DELETE", "/api/v1/mailboxes/nobody/messages/x")[0] == 404
    assert admin.json("DELETE", BASE + "/messages/nosuchuidl")[0] == 404
    for query in ["offset=x", "limit=0", "limit=501", "limit=-1", "since=yesterday",
                  "until=2026-13-01", "q=" + "x" * 201]:
        st, r = admin.json("GET", BASE + "/messages?" + query)
        assert st == 400, (query, r)
    st, r = admin.json("GET", BASE + "/messages/" + q(uid) + "/parts/x")
    assert st == 400
    # A path segment decoding to NUL or a slash is no name.
    assert admin.json("GET", "/api/v1/mailboxes/a%00b/messages")[0] == 404
    assert admin.server.alive()


# ---------------------------------------------------------------- list

JIS_SUBJECT = "テスト件名です"
JIS_FROM = "山田太郎"


def b_word(text, charset):
    raw = text.encode(charset)
    return ("=?%s?B?%s?=" % (charset, base64.b64encode(raw).decode())).encode()


def test_japanese_headers_decoded(admin, box):
    cases = {
        # ISO-2022-JP encoded-words, the usual Japanese mail
        "jis-word": msg(subject=b_word(JIS_SUBJECT, "iso-2022-jp"),
                        frm=b_word(JIS_FROM, "iso-2022-jp") + b" <taro@example.jp>"),
        # Shift_JIS encoded-word
        "sjis-word": msg(subject=b_word(JIS_SUBJECT, "shift_jis")),
        # raw ISO-2022-JP in the header (old clients)
        "jis-raw": msg(subject=JIS_SUBJECT.encode("iso-2022-jp")),
        # raw Shift_JIS 8-bit
        "sjis-raw": msg(subject=JIS_SUBJECT.encode("cp932")),
        # raw UTF-8
        "utf8-raw": msg(subject=JIS_SUBJECT.encode()),
        # Q encoding, UTF-8, folded over two words
        "q-word": msg(subject=b"=?UTF-8?Q?caf=C3=A9?= =?UTF-8?Q?_cr=C3=A8me?="),
    }
    for name, data in cases.items():
        box.deliver(data, name="%s.M1P1.host" % name)
    login(admin)
    st, r = admin.json("GET", BASE + "/messages")
    assert st == 200 and r["total"] == len(cases)
    by = {m["uidl"].split(".")[0]: m for m in r["messages"]}
    for name in ("jis-word", "sjis-word", "jis-raw", "sjis-raw", "utf8-raw"):
        assert by[name]["subject"] == JIS_SUBJECT, (name, by[name])
    assert by["q-word"]["subject"] == "café crème"
    assert JIS_FROM in by["jis-word"]["from"]
    assert "taro@example.jp" in by["jis-word"]["from"]
    assert by["jis-word"]["date"] == 1796119200
    # the parsed message says the same, and its text is converted too
    jis_body = ("Content-Type: text/plain; charset=ISO-2022-JP\n"
                "Content-Transfer-Encoding: 7bit\n").encode()
    box.deliver(msg(subject=b_word(JIS_SUBJECT, "iso-2022-jp"), extra=jis_body,
                    body="本文です\n".encode("iso-2022-jp")), name="jis-body.M1P1.host")
    st, m = admin.json("GET", BASE + "/messages/jis-body.M1P1.host")
    assert st == 200, m
    assert m["subject"] == JIS_SUBJECT and m["text"] == "本文です\n"
    assert ["Subject", JIS_SUBJECT] in m["headers"]


def test_pagination_and_search(admin, box):
    for i in range(30):
        box.deliver(msg(subject=b"number %d" % i,
                        frm=b"alice@example.org" if i % 3 == 0 else b"bob@example.org",
                        extra=b"X-I: %d\n" % i).replace(
                            b"Tue, 01 Dec 2026", b"%02d Nov 2026" % (i + 1)))
    login(admin)
    st, r = admin.json("GET", BASE + "/messages?limit=10")
    assert st == 200 and r["total"] == 30 and r["count"] == 30
    assert [m["subject"] for m in r["messages"]] == ["number %d" % i
                                                     for i in range(29, 19, -1)]
    st, r2 = admin.json("GET", BASE + "/messages?limit=10&offset=25")
    assert [m["subject"] for m in r2["messages"]] == ["number %d" % i
                                                      for i in range(4, -1, -1)]
    st, r = admin.json("GET", BASE + "/messages?from=ALICE")
    assert r["complete"] and r["total"] == 10
    assert all("alice" in m["from"] for m in r["messages"])
    st, r = admin.json("GET", BASE + "/messages?subject=number%201")
    assert sorted(m["subject"] for m in r["messages"]) == sorted(
        ["number 1"] + ["number 1%d" % i for i in range(10)])
    st, r = admin.json("GET", BASE + "/messages?q=bob&subject=number%202")
    assert sorted(m["subject"] for m in r["messages"]) == sorted(
        ["number 2", "number 20", "number 22", "number 23", "number 25",
         "number 26", "number 28", "number 29"])
    st, r = admin.json("GET", BASE + "/messages?since=2026-11-05&until=2026-11-07")
    assert sorted(m["subject"] for m in r["messages"]) == ["number 4", "number 5",
                                                           "number 6"]
    st, r = admin.json("GET", BASE + "/messages?q=nothing-matches")
    assert r["total"] == 0 and r["messages"] == []


def test_mailboxes_list(admin, box):
    box.deliver(msg(body=b"x" * 100))
    box.deliver(msg(body=b"y" * 100))
    login(admin)
    st, r = admin.json("GET", "/api/v1/mailboxes")
    assert st == 200 and r["available"]
    by = {m["user"]: m for m in r["mailboxes"]}
    assert by[USER1]["count"] == 2 and by[USER1]["size"] > 200
    assert by[USER2]["count"] == 0            # no mail yet: empty, not an error


# ---------------------------------------------------------------- one message

HOSTILE_NAME = r'../..\\evil\"; x=<img src=x onerror=alert(1)>.html'


def multipart_message():
    png = base64.b64encode(b"\x89PNG\r\n\x1a\nfakeimage").decode()
    att = base64.b64encode(b"attached bytes\x00\x01").decode()
    return ("""From: =?UTF-8?B?""" + base64.b64encode("差出人".encode()).decode() +
            """?= <s@example.org>
To: user1@example.com
Subject: <img src=x onerror=alert(1)>
Date: Tue, 01 Dec 2026 10:00:00 +0000
MIME-Version: 1.0
Content-Type: multipart/mixed; boundary="OUT"

--OUT
Content-Type: multipart/alternative; boundary="ALT"

--ALT
Content-Type: text/plain; charset=UTF-8

plain text body
--ALT
Content-Type: multipart/related; boundary="REL"

--REL
Content-Type: text/html; charset=UTF-8

<html><body><p>html body</p><script>alert(1)</script>
<img src="cid:img1@x"><img src="cid:missing@x"><img src="https://remote.example/t.png">
</body></html>
--REL
Content-Type: image/png
Content-ID: <img1@x>
Content-Transfer-Encoding: base64

""" + png + """
--REL--
--ALT--
--OUT
Content-Type: application/octet-stream
Content-Disposition: attachment; filename="%s"
Content-Transfer-Encoding: base64

""" % HOSTILE_NAME + att + """
--OUT--
""").encode()


def test_message_parsed_raw_html_parts(admin, box):
    data = multipart_message()
    box.deliver(data, name="multi.M1P1.host")
    login(admin)
    st, m = admin.json("GET", BASE + "/messages/multi.M1P1.host")
    assert st == 200, m
    assert m["subject"] == "<img src=x onerror=alert(1)>"    # data, as it is
    assert "差出人" in m["from"]
    assert m["text"].strip() == "plain text body"
    assert m["html"] is True
    atts = m["attachments"]
    names = [a["filename"] for a in atts]
    assert len(atts) == 2, atts
    evil = [a for a in atts if a["type"] == "application/octet-stream"][0]
    assert "/" not in evil["filename"] and '"' not in evil["filename"]
    assert not evil["filename"].startswith(".")
    assert evil["size"] == len(b"attached bytes\x00\x01")
    # raw: the stored bytes, as text
    st, hdr, _sc, body = admin.request("GET", BASE + "/messages/multi.M1P1.host/raw")
    assert st == 200 and body == data
    assert hdr["content-type"].startswith("text/plain")
    # HTML: its own strict policy, framable by us only
    st, hdr, _sc, body = admin.request("GET", BASE + "/messages/multi.M1P1.host/html")
    assert st == 200 and hdr["content-type"].startswith("text/html")
    csp = hdr["content-security-policy"]
    assert "default-src 'none'" in csp and "sandbox" in csp
    assert "script-src" not in csp and "img-src data:;" in csp
    assert "report-uri /api/v1/csp-report" in csp
    assert "frame-ancestors 'self'" in csp and hdr["x-frame-options"] == "SAMEORIGIN"
    assert b"data:image/png;base64," in body          # cid: resolved
    assert b"cid:" not in body
    assert b"https://remote.example/t.png" in body     # blocked by the policy
    st, hdr, _sc, _b = admin.request("GET", BASE + "/messages/multi.M1P1.host/html?remote=1")
    assert "img-src data: https: http:" in hdr["content-security-policy"]
    # parts: always a download of opaque bytes, with a safe name
    st, hdr, _sc, body = admin.request(
        "GET", BASE + "/messages/multi.M1P1.host/parts/%d" % evil["n"])
    assert st == 200 and body == b"attached bytes\x00\x01"
    assert hdr["content-type"] == "application/octet-stream"
    cd = hdr["content-disposition"]
    assert cd.startswith("attachment; filename=\"") and "\r" not in cd and "\n" not in cd
    assert "x-injected" not in hdr
    assert "filename*=UTF-8''" in cd
    ascii_name = cd.split('filename="', 1)[1].split('"', 1)[0]
    assert "/" not in ascii_name and "\\" not in ascii_name
    assert names


def test_deep_nesting_is_not_parsed(admin, box):
    parts = b"".join(b"Content-Type: multipart/mixed; boundary=\"b%d\"\n\n--b%d\n" % (i, i)
                     for i in range(5000))
    box.deliver(b"From: a@b\nSubject: deep\nMIME-Version: 1.0\n" + parts,
                name="deep.M1P1.host")
    login(admin)
    st, m = admin.json("GET", BASE + "/messages/deep.M1P1.host")
    assert st == 200 and m.get("unparsed") is True
    assert uidls(admin) == ["deep.M1P1.host"]
    assert admin.server.alive()


# ---------------------------------------------------------------- changes

def test_delete_refused_while_pop3_holds_the_lock(admin, box):
    box.deliver(msg(subject=b"one"), name="one.M1P1.host")
    box.deliver(msg(subject=b"two"), name="two.M1P1.host")
    login(admin)
    c = Pop3Client(port=admin.pop3_port)
    c.must_login()
    st, r = admin.json("DELETE", BASE + "/messages/one.M1P1.host")
    assert st == 409, r
    # the viewer still reads it while the session holds it
    assert sorted(uidls(admin)) == ["one.M1P1.host", "two.M1P1.host"]
    c.quit()
    st, r = admin.json("DELETE", BASE + "/messages/one.M1P1.host")
    assert st == 200 and r["deleted"] == 1
    assert uidls(admin) == ["two.M1P1.host"]
    assert list(box.files()) == ["two.M1P1.host"]
    # and POP3 agrees
    c = Pop3Client(port=admin.pop3_port)
    c.must_login()
    assert c.stat()[0] == 1
    c.quit()


def test_upload_eml(admin, box):
    login(admin)
    data = msg(subject=b_word(JIS_SUBJECT, "iso-2022-jp"))
    st, _h, _sc, body = admin.request("POST", BASE + "/messages", raw_body=data,
                                      headers={"Content-Type": "message/rfc822"})
    assert st == 201, body
    st, r = admin.json("GET", BASE + "/messages")
    assert r["total"] == 1 and r["messages"][0]["subject"] == JIS_SUBJECT
    assert box.contents() == [data]            # stored as given, in new/
    # a user that has no mailbox directory yet gets one
    st, _h, _sc, body = admin.request(
        "POST", "/api/v1/mailboxes/" + q(USER2) + "/messages", raw_body=data,
        headers={"Content-Type": "message/rfc822"})
    assert st == 201, body
    # bad input
    for ct, body, want in [("text/plain", data, 415), (None, data, 415),
                           ("message/rfc822", b"", 400),
                           ("message/rfc822", b"\n\njust a body", 400)]:
        st, _h, _sc, _b = admin.request("POST", BASE + "/messages", raw_body=body,
                                        headers={"Content-Type": ct})
        assert st == want, (ct, body, st)
    assert admin.request("POST", "/api/v1/mailboxes/nobody/messages", raw_body=data,
                         headers={"Content-Type": "message/rfc822"})[0] == 404
    assert len(box.contents()) == 1


def test_100mb_upload_refused_cleanly(admin, box):
    login(admin)
    size = 100 * 1024 * 1024
    with socket.create_connection(("127.0.0.1", admin.port), timeout=30) as c:
        c.sendall(("POST %s/messages HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n"
                   "Cookie: posuto_sid=%s\r\nX-CSRF-Token: %s\r\n"
                   "Content-Type: message/rfc822\r\nContent-Length: %d\r\n\r\n"
                   % (BASE, admin.port, admin.cookie, admin.csrf, size)).encode())
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
        assert resp.startswith(b"HTTP/1.1 413"), resp[:100]
        assert sent < size
    assert admin.server.alive()
    assert box.contents() == []
    assert uidls(admin) == []


def test_download_mbox(admin, box):
    bodies = [b"first\nFrom the start\n>From quoted\n", b"second\r\nline\r\n"]
    for i, b in enumerate(bodies):
        box.deliver(msg(subject=b"m%d" % i, body=b), name="m%d.M1P1.host" % i)
    login(admin)
    st, hdr, _sc, body = admin.request("GET", BASE + "/download")
    assert st == 200 and hdr["content-type"] == "application/mbox"
    assert hdr["content-disposition"].startswith("attachment;")
    assert ".mbox" in hdr["content-disposition"]
    assert body.startswith(b"From MAILER-DAEMON ")
    assert b"\n>From the start\n>>From quoted\n" in body
    assert b"\r" not in body
    path = os.path.join(admin.server.workdir if hasattr(admin.server, "workdir")
                        else "/tmp", "dl-%d.mbox" % os.getpid())
    with open(path, "wb") as f:
        f.write(body)
    try:
        got = [m["Subject"] for m in mailbox.mbox(path)]
    finally:
        os.unlink(path)
    assert sorted(got) == ["m0", "m1"]


# ---------------------------------------------------------------- POP3 overlay

def test_pop3_state_overlay(admin, box):
    box.deliver(msg(subject=b"a"), name="a.M1P1.host")
    box.deliver(msg(subject=b"b"), name="b.M1P1.host")
    login(admin)

    def states():
        st, r = admin.json("GET", BASE + "/messages")
        assert st == 200
        return {m["uidl"]: m["state"] for m in r["messages"]}, r["deleted"]

    s, dels = states()
    assert s == {"a.M1P1.host": {}, "b.M1P1.host": {}} and dels == []
    c = Pop3Client(port=admin.pop3_port)
    c.must_login()
    uid = {v: k for k, v in c.uidl().items()}
    c.retr(uid["a.M1P1.host"])
    c.ok("DELE %d" % uid["b.M1P1.host"])
    s, _ = states()
    assert "retrieved" in s["a.M1P1.host"] and "marked" not in s["a.M1P1.host"]
    sid = s["a.M1P1.host"]["retrieved"]["session"]
    assert s["b.M1P1.host"]["marked"]["session"] == sid
    c.ok("RSET")
    s, _ = states()
    assert "marked" not in s["b.M1P1.host"]
    c.ok("DELE %d" % uid["b.M1P1.host"])
    c.quit()
    s, dels = states()
    assert list(s) == ["a.M1P1.host"]
    assert [(d["uidl"], d["session"], d["subject"]) for d in dels] == [
        ("b.M1P1.host", sid, "b")]
    # a session that ends without QUIT lifts its marks
    c = Pop3Client(port=admin.pop3_port)
    c.must_login()
    c.ok("DELE 1")
    s, _ = states()
    assert "marked" in s["a.M1P1.host"]
    c.close()
    for _ in range(200):
        s, _ = states()
        if "marked" not in s["a.M1P1.host"]:
            break
        import time
        time.sleep(0.05)
    assert "marked" not in s["a.M1P1.host"]
    assert list(s) == ["a.M1P1.host"]


# ---------------------------------------------------------------- CSP reports

def test_csp_report_endpoint(admin):
    report = json.dumps({"csp-report": {"blocked-uri": "inline",
                                        "violated-directive": "script-src"}}).encode()
    login(admin)
    st, r = admin.json("GET", "/api/v1/csp-reports")
    assert st == 200 and r == {"admin": 0, "mail": 0, "total": 0}
    anon = Admin(admin.port)
    # browsers send reports without our CSRF token; a mail frame's origin is "null"
    st, _h, _sc, _b = anon.request("POST", "/api/v1/csp-report", raw_body=report,
                                   headers={"Content-Type": "application/csp-report"})
    assert st == 204
    st, _h, _sc, _b = anon.request("POST", "/api/v1/csp-report?from=mail",
                                   raw_body=report,
                                   headers={"Content-Type": "application/csp-report",
                                            "Origin": "null"})
    assert st == 204
    rj = json.dumps([{"type": "csp-violation", "body": {"blockedURL": "x"}}]).encode()
    st, _h, _sc, _b = anon.request("POST", "/api/v1/csp-report", raw_body=rj,
                                   headers={"Content-Type": "application/reports+json"})
    assert st == 204
    for ct, body, want in [("text/plain", report, 415), ("application/csp-report",
                                                         b"not json", 400),
                           ("application/csp-report", b"x" * 70000, 413)]:
        st, _h, _sc, _b = anon.request("POST", "/api/v1/csp-report", raw_body=body,
                                       headers={"Content-Type": ct})
        assert st == want, (ct, st)
    # other cross-origin requests stay refused
    st, _h, _sc, _b = anon.request("POST", "/api/v1/login", body={"password": "x"},
                                   headers={"Origin": "null"})
    assert st == 403
    st, r = admin.json("GET", "/api/v1/csp-reports")
    assert r == {"admin": 2, "mail": 1, "total": 3}
    # the admin's own policy reports there too
    st, hdr, _sc, _b = admin.request("GET", "/")
    assert "report-uri /api/v1/csp-report" in hdr["content-security-policy"]


def test_mailbox_page_script_is_text_only(admin):
    """mailbox.js builds the page from data with textContent only, and every
    string it names is in both language tables."""
    import re
    login(admin)
    st, hdr, _sc, js = admin.request("GET", "/mailbox.js")
    assert st == 200 and hdr["content-type"].startswith("text/javascript")
    for bad in (b"innerHTML", b"outerHTML", b"insertAdjacentHTML", b"document.write",
                b"srcdoc", b"allow-scripts", b"eval("):
        assert bad not in js, bad
    keys = {}
    for lang in ("en", "ja"):
        _st, _h, _sc, body = admin.request("GET", "/i18n/%s.js" % lang)
        keys[lang] = set(re.findall(r'^\s*"([^"]+)":', body.decode(), re.M))
    used = {k for k in re.findall(r"\bt\('([a-z_.]+)'", js.decode()) if not k.endswith('.')}
    used |= {"mbx.tab." + k for k in ("html", "text", "headers", "raw", "attachments")}
    _st, _h, _sc, page = admin.request("GET", "/")
    used |= set(re.findall(r'data-i18n(?:-placeholder)?="([^"]+)"', page.decode()))
    assert used - keys["en"] == set() and used - keys["ja"] == set()
    assert b'src="/mailbox.js"' in page
