"""Issue 16: taking over a Maildir from Dovecot (and Courier) without a
single re-download.

A private Dovecot from Debian (own config, loopback port, mail processes as
nobody) serves a Maildir to clients that keep mail (poplib recording UIDLs
and sizes, mpop with keep); then posuto serves the same Maildir: the same
UIDLs, sizes and bytes, and mpop downloads nothing again; new mail gets a
fresh UIDL; Dovecot started again on the Maildir still works.  Once with
Dovecot's defaults, once with pop3_save_uidl, once per non-default
pop3_uidl_format.  Courier's courierpop3dsizelist is written the way
Courier's pop3dserver.c writes it (no Courier package in Debian 12).
"""

import os
import pathlib
import pwd
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time

import pytest

from posuto_testlib import (Pop3, USER1, Server, base_config, free_port,
                            posuto_bin, sample_message)

DOVECOT = shutil.which("dovecot") or "/usr/sbin/dovecot"
PASSWORD = "password"
SHA256_PASSWORD = "5e884898da28047151d0e56f8dc6292773603d0d6aabbdd62a11ef721d1542d8"

needs_dovecot = pytest.mark.skipif(not os.access(DOVECOT, os.X_OK) or os.geteuid() != 0,
                                   reason="needs dovecot-pop3d and root")


@pytest.fixture
def world():
    """A directory nobody can enter (Dovecot's mail processes run as
    nobody, and pytest's tmp_path is root's 0700)."""
    d = pathlib.Path(tempfile.mkdtemp(prefix="posuto-uidl-", dir="/tmp"))
    d.chmod(0o755)
    yield d
    if not os.environ.get("POSUTO_KEEP_TMP"):
        shutil.rmtree(d, ignore_errors=True)


def chown_nobody(path):
    pw = pwd.getpwnam("nobody")
    for root, dirs, files in os.walk(path):
        os.chown(root, pw.pw_uid, pw.pw_gid)
        for f in files:
            os.chown(os.path.join(root, f), pw.pw_uid, pw.pw_gid)


def wait_port(port, timeout=20):
    deadline = time.monotonic() + timeout
    for _ in range(1000):
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as s:
                s.settimeout(5)
                if s.recv(512).startswith(b"+OK"):
                    return True
        except OSError:
            pass
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return False


class Dovecot:
    def __init__(self, base, mail, **settings):
        self.base = base
        self.mail = mail
        self.settings = settings
        self.proc = None
        (base / "run").mkdir(exist_ok=True)
        (base / "state").mkdir(exist_ok=True)
        (base / "passwd").write_text("%s:{PLAIN}%s\n" % (USER1, PASSWORD))

    def start(self):
        self.port = free_port()
        extra = "".join("%s = %s\n" % kv for kv in self.settings.items())
        d = self.base
        (d / "dovecot.conf").write_text("""
base_dir = {d}/run
state_dir = {d}/state
instance_name = posuto-uidl-{port}
listen = 127.0.0.1
protocols = pop3
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain
log_path = {d}/dovecot.log
mail_location = maildir:{mail}/%u
{extra}
passdb {{
  driver = passwd-file
  args = {d}/passwd
}}
userdb {{
  driver = static
  args = uid=nobody gid=nogroup home={mail}/%u
}}
service pop3-login {{
  inet_listener pop3 {{
    address = 127.0.0.1
    port = {port}
  }}
  inet_listener pop3s {{
    port = 0
  }}
}}
""".format(d=d, mail=self.mail, port=self.port, extra=extra))
        self.log = open(d / "master.log", "ab")
        self.proc = subprocess.Popen([DOVECOT, "-F", "-c", str(d / "dovecot.conf")],
                                     stdin=subprocess.DEVNULL, stdout=self.log,
                                     stderr=self.log)
        if not wait_port(self.port):
            self.stop()
            raise RuntimeError("dovecot did not start:\n" +
                               (d / "master.log").read_text(errors="replace"))
        return self

    def stop(self):
        if self.proc is None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)
        self.proc = None
        self.log.close()


def snapshot(port, retr=True):
    """(uidls, sizes, bodies) as a client that keeps mail records them."""
    c = Pop3("127.0.0.1", port)
    c.must_login(USER1, PASSWORD)
    u = c.uidl()
    uidl = [u[k] for k in sorted(u)]
    sizes = [int(l.split(b" ")[1]) for l in c.multi("LIST")]
    bodies = [c.retr(i + 1) for i in range(len(uidl))] if retr else []
    c.quit()
    return uidl, sizes, bodies


def mpop(base, port, uidls):
    box = base / ("mpop-%d.mbox" % port)
    box.write_bytes(b"")
    box.chmod(0o600)
    r = subprocess.run(["mpop", "--host=127.0.0.1", "--port=%d" % port,
                        "--user=" + USER1, "--passwordeval=echo " + PASSWORD,
                        "--auth=user", "--tls=off", "--keep=on", "--only-new=on",
                        "--uidls-file=" + str(uidls), "--delivery=mbox," + str(box)],
                       capture_output=True, timeout=90)
    assert r.returncode == 0, r.stderr
    return box.read_bytes().count(b"\nFrom ") + box.read_bytes().startswith(b"From ")


def make_maildir(mail):
    box = mail / USER1
    for d in ("new", "cur", "tmp"):
        (box / d).mkdir(parents=True, exist_ok=True)
    # as an MTA left them: new/ and cur/ (flags), one with S= in the name,
    # one LF, one CRLF, one without a final newline
    (box / "new" / "1700000001.M1P11.mx").write_bytes(sample_message(1))
    m2 = sample_message(2)
    (box / "new" / ("1700000002.M2P12.mx,S=%d" % len(m2))).write_bytes(m2)
    (box / "cur" / "1700000003.M3P13.mx:2,S").write_bytes(
        sample_message(3).replace(b"\n", b"\r\n"))
    (box / "cur" / "1700000004.M4P14.mx:2,").write_bytes(sample_message(4) + b"no newline")
    (box / "new" / "1700000005.M5P15.mx").write_bytes(sample_message(5, body_lines=200))
    chown_nobody(mail)
    return box


def posuto_server(base, mail, **extra):
    cfg = base_config(free_port(), mail, users=[
        {"UserName": USER1, "Password": SHA256_PASSWORD, "HashType": "SHA256"}], **extra)
    wd = base / ("posuto-%d" % free_port())
    wd.mkdir()
    return Server(wd, cfg).start()


def deliver_new(box, n):
    name = "1800000000.M%dP99.mx" % n
    p = box / "tmp" / name
    p.write_bytes(sample_message(100 + n))
    os.rename(p, box / "new" / name)
    chown_nobody(box)
    return name


CASES = {
    "default": {},
    "save_uidl": {"pop3_save_uidl": "yes"},
    "filename": {"pop3_uidl_format": "%f"},
    "guid": {"pop3_uidl_format": "%g"},
    "upper": {"pop3_uidl_format": "%08XUv%08Xu-%Lf"},
}


@needs_dovecot
@pytest.mark.parametrize("case", sorted(CASES))
def test_dovecot_takeover(world, case):
    settings = CASES[case]
    mail = world / "mail"
    box = make_maildir(mail)
    dv = Dovecot(world, mail, **settings).start()
    try:
        before = snapshot(dv.port)
        uidls = world / "mpop.uidls"
        assert mpop(world, dv.port, uidls) == 5   # first download
        assert mpop(world, dv.port, uidls) == 0   # keeps mail: nothing new
    finally:
        dv.stop()
    uidlist = (box / "dovecot-uidlist").read_bytes()
    if case == "save_uidl":
        assert b" P" in uidlist, uidlist  # Dovecot saved its UIDLs

    fmt = settings.get("pop3_uidl_format")
    srv = posuto_server(world, mail, **({"UidlFormat": fmt} if fmt else {}))
    try:
        after = snapshot(srv.port)
        assert after[0] == before[0], (after[0], before[0])
        assert after[1] == before[1]
        assert after[2] == before[2]
        assert mpop(world, srv.port, uidls) == 0   # nothing downloaded again
        # new mail: posuto's own UIDL, the old ones unchanged
        deliver_new(box, 1)
        now = snapshot(srv.port)
        assert now[0][:5] == before[0]
        assert now[0][5] not in before[0] and len(now[0]) == 6
        assert mpop(world, srv.port, uidls) == 1
        again = snapshot(srv.port, retr=False)
        assert again[0] == now[0]      # stable across sessions
    finally:
        srv.stop()
    assert re.search(r"serving the UIDLs of dovecot", srv.log()), srv.log()
    # posuto never writes Dovecot's files
    assert (box / "dovecot-uidlist").read_bytes() == uidlist
    assert (box / ".posuto-uidl").read_text().startswith("posuto-uidl 2 dovecot ")

    chown_nobody(box)   # posuto's own side files too, for Dovecot's sake
    dv = Dovecot(world, mail, **settings).start()
    try:
        back = snapshot(dv.port)
        assert len(back[0]) == 6
        assert back[0][:5] == before[0]
    finally:
        dv.stop()
    # and posuto, once more after Dovecot numbered the new message: the
    # UIDL posuto gave it stays (pinned in its index)
    srv = posuto_server(world, mail, **({"UidlFormat": fmt} if fmt else {}))
    try:
        last = snapshot(srv.port, retr=False)
        assert last[0] == now[0]
    finally:
        srv.stop()


@needs_dovecot
def test_dovecot_uid_order_kept_where_file_order_differs(world):
    """Dovecot numbers messages in UID order (dovecot-uidlist), which is
    the order it first saw the files: mail with older names that turned
    up later (moved in, restored) comes after.  posuto serves Dovecot's
    order, so message n is what it was; new mail after."""
    mail = world / "mail"
    box = mail / USER1
    for d in ("new", "cur", "tmp"):
        (box / d).mkdir(parents=True, exist_ok=True)
    for n in (7, 8, 9):
        (box / "new" / ("170000000%d.M%dP1.mx" % (n, n))).write_bytes(sample_message(n))
    chown_nobody(mail)
    dv = Dovecot(world, mail).start()
    try:
        snapshot(dv.port, retr=False)       # UIDs 1-3 for the 7, 8, 9 files
        for n in (1, 2):                     # older names, seen later: UIDs 4, 5
            (box / "new" / ("170000000%d.M%dP1.mx" % (n, n))).write_bytes(
                sample_message(n, body_lines=n + 10))
        chown_nobody(mail)
        before = snapshot(dv.port)
    finally:
        dv.stop()
    assert [b.split(b"Subject: test message ")[1][:1] for b in before[2]] == \
        [b"7", b"8", b"9", b"1", b"2"]       # Dovecot's order is not the files'
    srv = posuto_server(world, mail)
    try:
        assert snapshot(srv.port) == before
        deliver_new(box, 1)
        now = snapshot(srv.port)
        assert now[0][:5] == before[0] and now[2][:5] == before[2]
        assert b"test message 101" in now[2][5]     # new mail last
    finally:
        srv.stop()
    # cold again (the index, written in file-name order, still matches)
    srv = posuto_server(world, mail)
    try:
        assert snapshot(srv.port) == now
    finally:
        srv.stop()
    assert "cannot write index" not in srv.log()


@needs_dovecot
def test_dovecot_mailbox_posuto_served_before_keeps_posutos_uidls(world):
    """An existing posuto installation (its index there, no record) whose
    Maildir also has a dovecot-uidlist keeps serving posuto's UIDLs."""
    mail = world / "mail"
    box = make_maildir(mail)
    srv = posuto_server(world, mail, UidlCompat="none")
    try:
        own = snapshot(srv.port)[0]
    finally:
        srv.stop()
    assert (box / ".posuto.index").exists()
    dv = Dovecot(world, mail).start()
    try:
        dovecots = snapshot(dv.port)[0]
    finally:
        dv.stop()
    assert dovecots != own
    srv = posuto_server(world, mail)
    try:
        assert snapshot(srv.port)[0] == own
    finally:
        srv.stop()
    assert (box / ".posuto-uidl").read_text().startswith("posuto-uidl 2 none ")


def migrate(world, mail, *args):
    cfg = base_config(free_port(), mail, users=[
        {"UserName": USER1, "Password": SHA256_PASSWORD, "HashType": "SHA256"}])
    p = world / "migrate.json"
    import json
    p.write_text(json.dumps(cfg))
    return subprocess.run([posuto_bin(), "migrate", "check", "-c", str(p), *args, USER1],
                          capture_output=True, timeout=60, text=True)


@needs_dovecot
def test_migrate_check_dovecot(world):
    mail = world / "mail"
    box = make_maildir(mail)
    dv = Dovecot(world, mail).start()
    try:
        snapshot(dv.port)
    finally:
        dv.stop()
    deliver_new(box, 1)   # Dovecot never listed it
    r = migrate(world, mail, "--from", "dovecot")
    assert r.returncode == 1, r.stdout + r.stderr
    assert "6 messages, 5 keep their UIDL, 1 change" in r.stdout, r.stdout
    assert "message 6:" in r.stdout and "not in the old server's list" in r.stdout
    # %m is for Dovecot's mbox only: every message would change
    r = migrate(world, mail, "--from", "dovecot", "--format", "%m")
    assert "6 messages, 0 keep their UIDL, 6 change" in r.stdout, r.stdout
    # doctor says where the UIDLs come from
    cfgp = world / "migrate.json"
    d = subprocess.run([posuto_bin(), "doctor", "-c", str(cfgp), USER1],
                       capture_output=True, timeout=60, text=True)
    assert "UIDLs come from dovecot (dovecot-uidlist" in d.stdout, d.stdout


def test_dovecot_uidls_that_break_rfc1939_replaced_logged_once(world):
    """A dovecot-uidlist (as maildir-uidlist.c writes version 3) whose
    saved POP3 UIDLs (P) break RFC 1939: too long, not printable, a
    repeat.  Each is replaced by posuto's own, logged once, at the
    takeover; the rest keep theirs."""
    mail = world / "mail"
    box = mail / USER1
    for d in ("new", "cur", "tmp"):
        (box / d).mkdir(parents=True, exist_ok=True)
    names = ["170000000%d.M%dP1.mx" % (i, i) for i in range(1, 6)]
    for i, n in enumerate(names):
        (box / "cur" / (n + ":2,S")).write_bytes(sample_message(i + 1))
    p = [b"P0123abcd ", b"P" + b"x" * 80 + b" ", b"P0123abcd ", b"", b"Pbad\x7fvalue "]
    (box / "dovecot-uidlist").write_bytes(
        b"3 V1700000000 N6 G0123456789abcdef0123456789abcdef\n" +
        b"".join(b"%d %s:%s\n" % (i + 1, p[i], n.encode()) for i, n in enumerate(names)))
    srv = posuto_server(world, mail)
    try:
        u = snapshot(srv.port, retr=False)[0]
    finally:
        srv.stop()
    assert u == ["0123abcd", names[1], names[2], "%08x%08x" % (4, 1700000000), names[4]], u
    log = srv.log()
    assert log.count('"%s" of %s:2,S is not a valid' % ("x" * 80, names[1])) == 1, log
    assert log.count("of %s:2,S is a duplicate" % names[2]) == 1, log
    assert log.count("of %s:2,S is not a valid" % names[4]) == 1, log
    srv = posuto_server(world, mail)
    try:
        assert snapshot(srv.port, retr=False)[0] == u
    finally:
        srv.stop()
    assert "instead" not in srv.log()


def test_pinned_uidls_survive_a_commit_on_a_warm_open(world):
    """posuto gave new mail its own UIDL; Dovecot, run again, numbers it
    later.  A QUIT with DELE on a mailbox opened from the in-memory cache
    rewrites the index: the pins must stay, or the next process would
    serve Dovecot's UIDL for that message and clients fetch it again."""
    mail = world / "mail"
    box = mail / USER1
    for d in ("new", "cur", "tmp"):
        (box / d).mkdir(parents=True, exist_ok=True)
    names = ["1700000001.M1P1.mx", "1700000002.M2P1.mx"]
    for i, n in enumerate(names):
        (box / "cur" / (n + ":2,S")).write_bytes(sample_message(i + 1))
    uidlist = b"3 V1700000000 N3\n1 :%s\n2 :%s\n" % (names[0].encode(), names[1].encode())
    (box / "dovecot-uidlist").write_bytes(uidlist)
    srv = posuto_server(world, mail)
    try:
        first = snapshot(srv.port, retr=False)[0]
        new = deliver_new(box, 1)
        second = snapshot(srv.port, retr=False)[0]      # cold: the directory changed
        assert second == first + [new]
        # directories settled (changed over a second ago): the next open
        # is cached, the one after it warm
        for d in ("new", "cur"):
            st = os.stat(box / d)
            os.utime(box / d, ns=(st.st_atime_ns, st.st_mtime_ns - 10 ** 10))
        for _ in range(2):
            assert snapshot(srv.port, retr=False)[0] == second
        c = Pop3("127.0.0.1", srv.port)                  # warm: nothing changed
        c.must_login(USER1, PASSWORD)
        c.ok("DELE 1")
        c.quit()
    finally:
        srv.stop()
    # Dovecot runs again and numbers the new message
    (box / "dovecot-uidlist").write_bytes(uidlist.replace(b"N3", b"N4") +
                                          b"3 :%s\n" % new.encode())
    srv = posuto_server(world, mail)
    try:
        assert snapshot(srv.port, retr=False)[0] == second[1:]
    finally:
        srv.stop()


def courier_maildir(mail, broken=False):
    """A Maildir as Courier's pop3dserver.c leaves it: every message in
    cur/, courierpop3dsizelist "/3 <nextuid> <uidv>" then "<name> <size>
    <uid>:<uidv>:<utf8>" (savepop3dlist())."""
    box = mail / USER1
    for d in ("new", "cur", "tmp"):
        (box / d).mkdir(parents=True, exist_ok=True)
    names = ["1600000001.M1P1V2I3.courier", "1600000002.M2P1V2I4.courier",
             "1600000003.M3P1V2I5.courier"]
    lines = ["/3 4 1599999999"]
    for i, n in enumerate(names):
        data = sample_message(i)
        (box / "cur" / (n + ":2,S")).write_bytes(data)
        size = len(data) + data.count(b"\n")
        lines.append("%s %d %d:1599999999:0" % (n, size, i + 1))
    if broken:
        lines[2] = lines[2].replace(" 2:", " 1:")   # the uid of message 1 again
    (box / "courierpop3dsizelist").write_text("\n".join(lines) + "\n")
    return box, names


def test_courier_takeover(world):
    mail = world / "mail"
    box, names = courier_maildir(mail)
    # one more message Courier never saw
    (box / "new" / "1700000000.M9P9.mx").write_bytes(sample_message(9))
    srv = posuto_server(world, mail)
    try:
        u, sizes, bodies = snapshot(srv.port)
    finally:
        srv.stop()
    assert u[:3] == ["UID1-1599999999", "UID2-1599999999", "UID3-1599999999"]
    assert u[3] == "1700000000.M9P9.mx"
    assert sizes[:3] == [len(b) for b in bodies[:3]]
    assert "posuto-uidl 2 courier" in (box / ".posuto-uidl").read_text()


def test_courier_duplicate_uidl_replaced_and_logged(world):
    mail = world / "mail"
    box, names = courier_maildir(mail, broken=True)
    srv = posuto_server(world, mail)
    try:
        u = snapshot(srv.port, retr=False)[0]
    finally:
        srv.stop()
    assert len(set(u)) == 3
    assert u[0] == "UID1-1599999999" and u[1] == names[1]
    assert "is a duplicate" in srv.log(), srv.log()
    r = migrate(world, mail, "--from", "courier")
    assert "3 messages, 2 keep their UIDL, 1 change" in r.stdout, r.stdout
    assert "repeats another message's" in r.stdout


@pytest.mark.parametrize("key,value,why", [
    ("UidlCompat", "tpops2", "must be one of"),
    ("UidlFormat", "%q", "pop3_uidl_format"),
    ("UidlFormat", "%u %v", "pop3_uidl_format"),
])
def test_bad_settings_are_refused(world, key, value, why):
    cfg = base_config(free_port(), world, users=[
        {"UserName": USER1, "Password": SHA256_PASSWORD, "HashType": "SHA256",
         key: value}])
    p = world / "bad.json"
    import json
    p.write_text(json.dumps(cfg))
    r = subprocess.run([posuto_bin(), "check-config", "-c", str(p)],
                       capture_output=True, timeout=60, text=True)
    assert r.returncode == 78 and key in r.stderr and why in r.stderr, r.stderr


def test_per_user_setting_overrides_the_server(world):
    """UidlCompat "none" for the server, "courier" for the user: Courier's
    UIDLs; the same Maildir with "none" alone: posuto's own."""
    mail = world / "mail"
    box, names = courier_maildir(mail)
    cfg = base_config(free_port(), mail, UidlCompat="none", users=[
        {"UserName": USER1, "Password": SHA256_PASSWORD, "HashType": "SHA256",
         "UidlCompat": "courier"}])
    wd = world / "peruser"
    wd.mkdir()
    srv = Server(wd, cfg).start()
    try:
        u = snapshot(srv.port, retr=False)[0]
    finally:
        srv.stop()
    assert u == ["UID1-1599999999", "UID2-1599999999", "UID3-1599999999"]
    srv = posuto_server(world, mail, UidlCompat="none")
    try:
        assert snapshot(srv.port, retr=False)[0] == names
    finally:
        srv.stop()
