"""Protocol transcripts (issue 14, Pop3Server.Transcripts): the dialogue of
a session, safe to share.  Sessions with USER/PASS, AUTH PLAIN (with and
without an initial response), SCRAM-SHA-256 and APOP, transcripts on and
a Directory: no password, no base64 of one, no AUTH PLAIN blob, no APOP
digest and no message body in any file of the directory, any transcript
the API gives, or the server's log; the commands and replies are there.
Off (the default), nothing is recorded or written."""

import base64
import os
import re
import stat
import subprocess
import time

from admin_testlib import Admin, wait_port, with_admin
from posuto_testlib import Pop3, apop_digest, posuto_bin, sample_message, Maildir
from test_sasl import gsasl_auth

ALICE = "alice"
ALICE_PW = "Al1ce-Pass-Word-77"
ALICE_APOP = "Ap0p-Secret-Word-88"
BOB = "bob"
BOB_PW = "B0b-Pass-Word-99"
SCRAM = "scram"
SCRAM_PW = "Scr4m-Secret-Word-66"
BODY_MARK = b"Transcript-body-marker-4242"


def b64(s):
    return base64.b64encode(s.encode() if isinstance(s, str) else s).decode()


def scram_secret(password):
    r = subprocess.run([posuto_bin(), "hash", "--scheme", "SCRAM-SHA-256"],
                       input=(password + "\n").encode(), capture_output=True,
                       timeout=60, check=True)
    return r.stdout.decode().strip()


def plain_blob(user, pw):
    return b64("\0%s\0%s" % (user, pw))


def config(servers, tmp_path, transcripts=None):
    cfg = servers.config(users=[
        {"UserName": ALICE, "Password": "{PLAIN}" + ALICE_PW,
         "ApopSecret": ALICE_APOP},
        {"UserName": BOB, "Password": "{PLAIN}" + BOB_PW},
        {"UserName": SCRAM, "Password": scram_secret(SCRAM_PW)},
    ])
    cfg["Pop3Server"]["SaslMechanisms"] = ["PLAIN", "LOGIN", "SCRAM-SHA-256"]
    if transcripts is not None:
        cfg["Pop3Server"]["Transcripts"] = transcripts
    with_admin(cfg)
    for u in (ALICE, BOB, SCRAM):
        md = Maildir(tmp_path / "mail" / u)
        for i in range(2):
            md.deliver(sample_message(i, extra=b"X-Mark: " + BODY_MARK + b"\r\n"))
    return cfg


def admin_of(srv, cfg):
    port = cfg["Admin"]["Port"]
    wait_port(port)
    a = Admin(port)
    st, _, _ = a.login()
    assert st == 200
    return a


def live_id(a, user):
    """The API id of user's one live session."""
    for _ in range(200):
        st, data = a.json("GET", "/api/v1/sessions")
        assert st == 200, data
        ids = [s["id"] for s in data["sessions"] if s.get("user") == user]
        if ids:
            assert len(ids) == 1, data
            return ids[0]
        time.sleep(0.05)
    raise AssertionError("no live session of %s" % user)


def transcript(a, sid):
    st, hdr, _, body = a.request("GET", "/api/v1/sessions/%d/transcript" % sid)
    return st, hdr, body


def wait_files(d, n, timeout=30):
    deadline = time.monotonic() + timeout
    for _ in range(3000):
        files = [os.path.join(r, f) for r, _, fs in os.walk(d) for f in fs]
        done = [f for f in files if f.endswith(".txt")
                and not os.path.basename(f).startswith(".")]
        if len(done) >= n or time.monotonic() > deadline:
            return done
        time.sleep(0.05)
    return []


def secrets():
    out = []
    for pw in (ALICE_PW, BOB_PW, SCRAM_PW, ALICE_APOP):
        out += [pw, b64(pw)]
    out += [plain_blob(ALICE, ALICE_PW), plain_blob(BOB, BOB_PW)]
    return [s.encode() for s in out]


def session_userpass(srv, a):
    c = Pop3("127.0.0.1", srv.port)
    assert c.cmd("USER " + ALICE).startswith(b"+OK")
    assert c.cmd("PASS " + ALICE_PW).startswith(b"+OK")
    sid = live_id(a, ALICE)
    sizes = dict((int(l.split()[0]), int(l.split()[1])) for l in
                 (x.decode() for x in c.multi("LIST")))
    c.multi("UIDL")
    c.multi("CAPA")
    body = c.retr(1)
    assert BODY_MARK in body
    # Live: readable while the session is open.
    st, hdr, live = transcript(a, sid)
    assert st == 200, live
    assert hdr["content-type"].startswith("text/plain")
    assert b"C USER alice" in live and b"C PASS ****" in live, live
    assert b"[RETR body: %d octets]" % sizes[1] in live, live
    c.quit()
    return sid, sizes


def session_plain(srv, a):
    c = Pop3("127.0.0.1", srv.port)
    r = c.cmd("AUTH PLAIN " + plain_blob(ALICE, ALICE_PW))
    assert r.startswith(b"+OK"), r
    sid = live_id(a, ALICE)
    c.retr(2)
    c.quit()
    # Without an initial response: the blob on a line of its own; a wrong
    # password first.
    c = Pop3("127.0.0.1", srv.port)
    assert c.cmd("AUTH PLAIN " + plain_blob(BOB, "wrong-" + BOB_PW)).startswith(b"-ERR")
    assert c.cmd("AUTH PLAIN").startswith(b"+")
    r = c.cmd(plain_blob(BOB, BOB_PW))
    assert r.startswith(b"+OK"), r
    sid2 = live_id(a, BOB)
    c.quit()
    return sid, sid2


def session_scram(srv, a):
    c = Pop3("127.0.0.1", srv.port)
    r, rc, out = gsasl_auth(c, "SCRAM-SHA-256", SCRAM, SCRAM_PW)
    assert r.startswith(b"+OK"), (r, out)
    sid = live_id(a, SCRAM)
    c.stat()
    c.quit()
    return sid


def session_apop(srv, a):
    c = Pop3("127.0.0.1", srv.port)
    digest = apop_digest(c.greeting, ALICE_APOP)
    r = c.cmd("APOP %s %s" % (ALICE, digest))
    assert r.startswith(b"+OK"), r
    sid = live_id(a, ALICE)
    c.cmd("NOOP")
    c.quit()
    return sid, digest.encode()


def test_transcripts_hold_the_dialogue_and_no_secret(servers, tmp_path):
    tdir = tmp_path / "transcripts"
    cfg = config(servers, tmp_path, {"Users": [ALICE, BOB, SCRAM],
                                     "Directory": str(tdir)})
    srv = servers.start(cfg)
    a = admin_of(srv, cfg)

    sid_up, sizes = session_userpass(srv, a)
    sid_plain, sid_plain2 = session_plain(srv, a)
    sid_scram = session_scram(srv, a)
    sid_apop, digest = session_apop(srv, a)
    # A message body, a digest: never in a transcript either.
    forbidden = secrets() + [digest, BODY_MARK]

    texts = {}
    for sid in (sid_up, sid_plain, sid_plain2, sid_scram, sid_apop):
        st, _, body = transcript(a, sid)       # finished, still kept
        assert st == 200, body
        texts[sid] = body
    files = wait_files(tdir, 5)
    assert len(files) == 5, files

    up = texts[sid_up]
    for want in (b"C USER alice", b"C PASS ****", b"S +OK", b"C LIST",
                 b"[LIST: %d lines]" % len(sizes), b"[UIDL: 2 lines]",
                 b"[CAPA: ", b"C RETR 1",
                 b"[RETR body: %d octets]" % sizes[1], b"C QUIT"):
        assert want in up, (want, up)
    assert re.search(rb"(?m)^ +\d+ C USER alice$", up), up
    assert b"C AUTH PLAIN ****" in texts[sid_plain], texts[sid_plain]
    p2 = texts[sid_plain2]
    assert b"C AUTH PLAIN ****" in p2 and b"S + ****" in p2 and b"C ****" in p2, p2
    assert b"-ERR" in p2, p2                 # the failed try is there too
    sc = texts[sid_scram]
    assert b"C AUTH SCRAM-SHA-256 ****" in sc and b"S + ****" in sc, sc
    assert b"C APOP alice ****" in texts[sid_apop], texts[sid_apop]

    # Files: 0700 directories, 0600 files, one per session, named by the
    # user and the session; the same texts.
    assert stat.S_IMODE(os.stat(tdir / ALICE).st_mode) == 0o700
    for f in files:
        assert stat.S_IMODE(os.stat(f).st_mode) == 0o600, f
        assert os.path.basename(os.path.dirname(f)) in (ALICE, BOB, SCRAM), f
        assert re.fullmatch(r"\d{8}T\d{6}Z-[0-9a-f]+\.txt", os.path.basename(f)), f
    assert len([f for f in files if "/%s/" % ALICE in f]) == 3, files

    # The whole directory (every file, whatever its name), the API's
    # texts and the server's log: no secret anywhere.
    everything = [("api %d" % k, v) for k, v in texts.items()]
    for r, _, fs in os.walk(tdir):
        for f in fs:
            everything.append((f, open(os.path.join(r, f), "rb").read()))
    srv.stop()
    everything.append(("log", srv.log().encode()))
    for name, text in everything:
        for s in forbidden:
            assert s not in text, (name, s)


def test_unselected_user_and_pre_login_are_not_kept(servers, tmp_path):
    tdir = tmp_path / "transcripts"
    cfg = config(servers, tmp_path, {"Users": [BOB], "Directory": str(tdir)})
    srv = servers.start(cfg)
    a = admin_of(srv, cfg)
    c = Pop3("127.0.0.1", srv.port)
    c.must_login(ALICE, ALICE_PW)
    sid = live_id(a, ALICE)
    assert transcript(a, sid)[0] == 404      # alice is not selected
    c.quit()
    c = Pop3("127.0.0.1", srv.port)
    c.must_login(BOB, BOB_PW)
    sid = live_id(a, BOB)
    st, _, body = transcript(a, sid)
    assert st == 200 and b"C USER bob" in body, body   # pre-login kept
    c.quit()
    files = wait_files(tdir, 1)
    assert [os.path.basename(os.path.dirname(f)) for f in files] == [BOB]


def test_off_by_default_records_and_writes_nothing(servers, tmp_path):
    tdir = tmp_path / "transcripts"
    # Off: no Transcripts at all, and a Directory with no Users.
    for tr in (None, {"Users": [], "Directory": str(tdir)}):
        cfg = config(servers, tmp_path / ("off%d" % (tr is None)), tr)
        cfg["Pop3Server"]["MailDir"] = str(tmp_path / ("off%d" % (tr is None)) / "mail")
        srv = servers.start(cfg)
        a = admin_of(srv, cfg)
        c = Pop3("127.0.0.1", srv.port)
        c.must_login(ALICE, ALICE_PW)
        sid = live_id(a, ALICE)
        c.retr(1)
        assert transcript(a, sid)[0] == 404
        c.quit()
        assert transcript(a, sid)[0] == 404
        srv.stop()
    assert not tdir.exists()
