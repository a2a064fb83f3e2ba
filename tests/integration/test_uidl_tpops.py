"""Issue 16: taking over from TPOPS without a single re-download.

TPOPS (tmtm/tpops) had two mailboxes.  0.4 kept mail in MySQL (its `msg`
table; UIDL concat(id, '.', uid, '.', timestamp + 0)): posuto's tpops:
driver serves such a database as TPOPS did (test_tpops.py proves the
bytes), and `migrate check --from tpops` and doctor say so.  0.5 dropped
MySQL mail; 0.6 served Maildirs only, and 0.6.4 added
maildir-uidl-convert: a map in the Maildir, "tpops_uidl" (0.6.4, 0.6.5,
0.8) or ".tpops_uidl" (0.7 to 0.7.2), lines "<name up to ':'>\\t<UIDL>",
the UIDL served being the map's where it has the name, else the name up
to ':' (plugin/mailbox-maildir.rb, uidl_all; only files whose names match
/^(\\d+)\\./ are listed; LIST size: ",S=<n>" in the name, else the file's
size).  That map is how a TPOPS 0.4 site moved to 0.6 without its clients
downloading everything again: the second test does that move, a TPOPS 0.4
database in a real MariaDB (TPOPS's own sql.txt, filled as tpops-store
did) to a Maildir with the map, posuto serving both sides, mpop keeping
mail and poplib recording UIDLs and sizes.  No TPOPS package exists (it
is Ruby 1.8 code), so the Maildir and the map are made as TPOPS's source
documents them.
"""

import hashlib
import re
import subprocess
import time

from posuto_testlib import Pop3, Server, base_config, free_port, posuto_bin, write_config
from test_tpops import cfg_for, filled, my, tpops_rows  # noqa: F401 (fixture)

USER = "tommy"
PASSWORD = "tommypass"


def users():
    return [{"UserName": USER, "Password": hashlib.sha256(PASSWORD.encode()).hexdigest(),
             "HashType": "SHA256"}]


def snapshot(port):
    """(uidls, sizes) as a client that keeps mail records them."""
    c = Pop3("127.0.0.1", port)
    c.must_login(USER, PASSWORD)
    u = c.uidl()
    uidl = [u[k] for k in sorted(u)]
    sizes = [int(l.split(b" ")[1]) for l in c.multi("LIST")]
    c.quit()
    return uidl, sizes


def mpop(base, port, uidls):
    box = base / ("mpop-%d.mbox" % port)
    box.write_bytes(b"")
    box.chmod(0o600)
    r = subprocess.run(["mpop", "--host=127.0.0.1", "--port=%d" % port,
                        "--user=" + USER, "--passwordeval=echo " + PASSWORD,
                        "--auth=user", "--tls=off", "--keep=on", "--only-new=on",
                        "--uidls-file=" + str(uidls), "--delivery=mbox," + str(box)],
                       capture_output=True, timeout=90)
    assert r.returncode == 0, r.stderr
    data = box.read_bytes()
    return data.count(b"\nFrom ") + data.startswith(b"From ")


def maildir(base):
    box = base / "mail" / USER
    for d in ("new", "cur", "tmp"):
        (box / d).mkdir(parents=True, exist_ok=True)
    return box


def maildir_server(base, **extra):
    cfg = base_config(free_port(), base / "mail", users=users(), **extra)
    wd = base / ("posuto-%d" % free_port())
    wd.mkdir()
    return Server(wd, cfg).start()


def stopped(srv):
    rc, problems = srv.stop()
    assert not problems, problems     # sanitizer reports too (ASan builds)


def migrate(cfg_path, *args):
    return subprocess.run([posuto_bin(), "migrate", "check", "-c", str(cfg_path), *args, USER],
                          capture_output=True, timeout=60, text=True)


def doctor(cfg_path):
    return subprocess.run([posuto_bin(), "doctor", "-c", str(cfg_path), USER],
                          capture_output=True, timeout=60, text=True)


def test_tpops_database_migrate_check_and_doctor(tmp_path, my):  # noqa: F811
    uid = filled(my)
    rows = tpops_rows(my, uid)
    cfgp = write_config(tmp_path / "tpops.json", cfg_for(tmp_path, my, free_port()))
    r = migrate(cfgp, "--from", "tpops")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "%d messages, %d keep their UIDL, 0 change" % (len(rows), len(rows)) in r.stdout, \
        r.stdout
    assert "UIDLs from tpops (TPOPS 0.4's msg table" in r.stdout, r.stdout
    d = doctor(cfgp)
    assert "UIDLs come from tpops (TPOPS 0.4's msg table" in d.stdout, d.stdout + d.stderr
    # nothing changed in the database
    assert tpops_rows(my, uid) == rows


def test_tpops_database_to_maildir_with_tpops_uidl(tmp_path, my):  # noqa: F811
    # 1. TPOPS 0.4's database, served (posuto's tpops: driver is TPOPS 0.4
    # on the wire): the client keeps everything, records UIDLs and sizes.
    uid = filled(my)
    rows = tpops_rows(my, uid)
    srv = Server(tmp_path, cfg_for(tmp_path, my, free_port()), name="tpops04").start()
    uidls = tmp_path / "mpop.uidls"
    try:
        before = snapshot(srv.port)
        assert before == ([r[4] for r in rows], [r[3] for r in rows])
        assert mpop(tmp_path, srv.port, uidls) == len(rows)
        assert mpop(tmp_path, srv.port, uidls) == 0
    finally:
        stopped(srv)

    # 2. The move to TPOPS 0.6: one file per row (header, the empty line,
    # body: what TPOPS 0.4's retr joined), named so that TPOPS's order
    # (the leading number, then the name) is the database's, ",S=" the
    # size TPOPS 0.4 reported (TPOPS 0.6 lists that); read ones in cur/.
    # The map gives each file the UIDL TPOPS 0.4 served.
    box = maildir(tmp_path)
    lines = []
    for k, (mid, h, b, size, uidl) in enumerate(rows):
        base = "%d.M%dP1.tpops,S=%d" % (1090000000 + k, mid, size)
        name = base + (":2,S" if k % 2 else "")
        (box / ("cur" if k % 2 else "new") / name).write_bytes(h + b"\n" + b)
        lines.append("%s\t%s\n" % (base, uidl))
    (box / "tpops_uidl").write_text("".join(lines))
    (box / "tpops_lock").write_bytes(b"")
    tmap = (box / "tpops_uidl").read_bytes()

    # 3. migrate check before the switch: every message keeps its UIDL.
    cfgp = write_config(tmp_path / "maildir.json", base_config(free_port(), tmp_path / "mail",
                                                               users=users()))
    r = migrate(cfgp, "--from", "tpops")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "%d messages, %d keep their UIDL, 0 change" % (len(rows), len(rows)) in r.stdout, \
        r.stdout
    assert "the tpops_uidl map, else the base name" in r.stdout, r.stdout
    # checked, not taken over yet (T0: the takeover time comes later)
    assert (box / ".posuto-uidl").read_text() == "posuto-uidl 2 tpops T0\n"

    # 4. posuto on the Maildir ("auto" finds TPOPS's files): the same
    # UIDLs and sizes, and mpop downloads nothing again.
    srv = maildir_server(tmp_path)
    try:
        assert snapshot(srv.port) == before
        assert mpop(tmp_path, srv.port, uidls) == 0
        # new mail (named as an MTA names it, after the switch): TPOPS
        # would have served its name; posuto does, with its true size
        name = "%d.M1P99.mx" % (int(time.time()) + 1000)
        (box / "tmp" / name).write_bytes(b"Subject: new\n\nnew mail\n")
        (box / "tmp" / name).rename(box / "new" / name)
        now = snapshot(srv.port)
        assert now[0] == before[0] + [name]
        assert now[1] == before[1] + [26]
        assert mpop(tmp_path, srv.port, uidls) == 1
    finally:
        stopped(srv)
    assert "serving the UIDLs of tpops" in srv.log(), srv.log()
    assert re.fullmatch(r"posuto-uidl 2 tpops T[1-9]\d+\n", (box / ".posuto-uidl").read_text())
    assert (box / "tpops_uidl").read_bytes() == tmap    # never written

    # 5. and again, cold (a new process): pinned, unchanged
    srv = maildir_server(tmp_path)
    try:
        assert snapshot(srv.port) == now
    finally:
        stopped(srv)
    d = doctor(srv.config_path)
    assert "UIDLs come from tpops (the tpops_uidl map" in d.stdout, d.stdout + d.stderr


def test_tpops_maildir_rules(tmp_path):
    """What TPOPS 0.7 (".tpops_uidl") served, message by message, and what
    posuto does where that breaks RFC 1939: replaced, logged once."""
    box = maildir(tmp_path)
    msgs = {
        # (dir, file name): content
        ("cur", "1100000001.M1P1.host:2,S"): b"Subject: a\n\nmapped, no S=\n",
        ("cur", "1100000002.M2P1.host,S=123:2,S"): b"Subject: b\n\nnot mapped, S=123\n",
        ("new", "1100000003.M3P1.host"): b"Subject: c\n\nmapped to a space\n",
        ("new", "1100000004.M4P1.host"): b"Subject: d\n\nmapped to a's UIDL\n",
        ("new", "1100000005.M5P1.host"): b"Subject: e\n\nmapped to nothing\n",
        ("new", "maildrop.name"): b"Subject: f\n\nTPOPS never listed it\n",
        ("new", "1100000007." + "x" * 70): b"Subject: g\n\na name too long\n",
        # one second, two names: TPOPS orders them bytewise ("M12" < "M5")
        ("new", "1100000010.M5P1.host"): b"Subject: h\n\nsame second, M5\n",
        ("cur", "1100000010.M12P1.host:2,S"): b"Subject: i\n\nsame second, M12\n",
    }
    for (d, n), data in msgs.items():
        (box / d / n).write_bytes(data)
    (box / ".tpops_uidl").write_bytes(
        b"1100000001.M1P1.host\tok-1\n"
        b"1100000003.M3P1.host\tbad uidl\n"
        b"1100000004.M4P1.host\tok-1\r\n"
        b"1100000005.M5P1.host\t\n"
        b"1100000009.gone\tnot-here\n")
    cfgp = write_config(tmp_path / "c.json", base_config(free_port(), tmp_path / "mail",
                                                         users=users(), UidlCompat="tpops"))
    r = migrate(cfgp, "--from", "tpops", "-v")
    assert r.returncode == 1, r.stdout + r.stderr
    assert "9 messages, 4 keep their UIDL, 5 change" in r.stdout, r.stdout
    assert "the .tpops_uidl map" in r.stdout
    assert r.stdout.count("not a valid RFC 1939 unique-id") == 3, r.stdout
    assert r.stdout.count("repeats another message's") == 1, r.stdout
    assert "TPOPS never listed it" in r.stdout, r.stdout

    srv = maildir_server(tmp_path, UidlCompat="tpops")
    try:
        uidl, sizes = snapshot(srv.port)
        c = Pop3("127.0.0.1", srv.port)
        c.must_login(USER, PASSWORD)
        subj = [c.retr(i + 1).split(b"\r\n")[0].decode()[len("Subject: "):]
                for i in range(len(uidl))]
        c.quit()
    finally:
        stopped(srv)
    first = srv.log()
    # TPOPS's order: the leading number, then the name; what it never
    # listed after
    assert subj == ["a", "b", "c", "d", "e", "g", "i", "h", "f"], subj
    u = dict(zip(subj, uidl))
    size = dict(zip(subj, sizes))
    assert u["a"] == "ok-1"
    assert u["b"] == "1100000002.M2P1.host,S=123"     # TPOPS's own: the base name
    assert u["c"] == "1100000003.M3P1.host"           # "bad uidl" replaced
    assert u["d"] == "1100000004.M4P1.host"           # duplicate of ok-1 replaced
    assert u["e"] == "1100000005.M5P1.host"           # "" replaced
    assert u["f"] == "maildrop.name"                  # posuto's own
    assert u["g"].startswith("H") and len(u["g"]) == 33   # 81 characters: hashed
    assert len(set(uidl)) == len(uidl)
    # LIST: TPOPS's size (S=, else the file's) for what TPOPS listed;
    # posuto's wire size for what it never listed
    files = {n: data for (_, n), data in msgs.items()}
    assert size["a"] == len(files["1100000001.M1P1.host:2,S"])
    assert size["b"] == 123
    assert size["f"] == len(files["maildrop.name"]) + files["maildrop.name"].count(b"\n")
    # logged once: at the takeover, not by the next process
    for what in ('"bad uidl"', '"ok-1" of 1100000004', '"1100000007.xxx'):
        assert first.count(what) == 1, (what, first)
    srv = maildir_server(tmp_path, UidlCompat="tpops")
    try:
        assert snapshot(srv.port) == (uidl, sizes)
    finally:
        stopped(srv)
    assert "instead" not in srv.log(), srv.log()
