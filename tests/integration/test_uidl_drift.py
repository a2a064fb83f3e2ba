"""Issue 14, the UIDL-drift detector: posuto remembers the UIDLs it served
(<mailbox>/.posuto.drift) and each login flags messages whose UIDL changed
(the same file, by inode and size, under a new name), UIDLs deleted at a
QUIT that came back, and messages RETRieved in 3 or more sessions; in the
log ("uidl-drift user=U changed=N reappeared=M reretrieved=K"), in
`posuto doctor USER` and in /metrics.  It stays quiet across restarts,
new -> cur moves, flag changes and new deliveries."""

import base64
import json
import os
import re
import shutil
import subprocess
import urllib.request

from admin_testlib import ADMIN_PASSWORD, wait_port, with_admin
from posuto_testlib import (Maildir, Pop3, USER1, Server, base_config,
                            free_port, posuto_bin, sample_message, write_config)

DRIFT_RE = re.compile(r"uidl-drift user=(\S+) changed=(\d+) reappeared=(\d+) "
                      r"reretrieved=(\d+)")


def drift_lines(srv):
    return [tuple([m.group(1)] + [int(x) for x in m.groups()[1:]])
            for m in DRIFT_RE.finditer(srv.log())]


def doctor(srv):
    res = subprocess.run([posuto_bin(), "doctor", "-c", str(srv.config_path), USER1],
                         capture_output=True, timeout=60, text=True,
                         cwd=str(srv.workdir))
    # findings are wrapped at 76 columns: compare unwrapped text
    return " ".join((res.stdout + res.stderr).split())


def session(srv, retr=(), dele=(), quit=True):
    """One POP3 session; returns its UIDL listing {n: uidl}."""
    c = Pop3(srv.host, srv.port)
    c.must_login()
    u = c.uidl()
    for n in retr:
        c.retr(n)
    for n in dele:
        c.ok("DELE %d" % n)
    if quit:
        c.quit()
    else:
        c.close()
    return u


def make_world(tmp_path, n=4, **extra):
    port = free_port()
    md = Maildir(tmp_path / "mail" / USER1)
    for i in range(n):
        md.deliver(sample_message(i))
    srv = Server(tmp_path, base_config(port, tmp_path / "mail", **extra)).start()
    return srv, md


def stop(srv):
    rc, problems = srv.stop()
    assert not problems, problems


def start_again(srv):
    """The same server (config, log file) started again after stop()."""
    srv.stopped = srv.killed = False
    srv.start()


def test_rename_by_hand_is_flagged(tmp_path):
    srv, md = make_world(tmp_path)
    try:
        before = session(srv)          # records the served UIDLs
        assert drift_lines(srv) == []
        stop(srv)
        # the admin renames two files to new unique names (same inode)
        for sub in ("new", "cur"):
            for i, f in enumerate(sorted(os.listdir(md.path / sub))[:2]):
                os.rename(md.path / sub / f, md.path / sub / ("1800000000.R%d.renamed" % i))
        # doctor sees it before any client does
        out = doctor(srv)
        assert "2 of 4 messages posuto served before have a new UIDL" in out, out
        assert "will download them again" in out and "renamed by hand" in out, out
        start_again(srv)
        after = session(srv)
        assert len(set(after.values()) - set(before.values())) == 2
        assert drift_lines(srv) == [(USER1, 2, 0, 0)], srv.log()
        # reported once: the next login is quiet again
        session(srv)
        assert len(drift_lines(srv)) == 1, srv.log()
        out = doctor(srv)
        assert "at the login of" in out and "2 of 4 messages had a new UIDL" in out, out
    finally:
        stop(srv)


def test_every_uidl_changed_names_the_cause(tmp_path):
    srv, md = make_world(tmp_path, n=3)
    try:
        session(srv)
        stop(srv)
        # a conversion renames every file (UidlFormat/UidlCompat would
        # change every UIDL the same way)
        for f in os.listdir(md.path / "cur"):
            os.rename(md.path / "cur" / f, md.path / "cur" / ("conv." + f))
        out = doctor(srv)
        assert "3 of 3 messages posuto served before have a new UIDL" in out, out
        assert "every UIDL changed at once" in out and "UidlFormat" in out, out
    finally:
        stop(srv)


def test_restored_after_dele_is_reappeared(tmp_path):
    srv, md = make_world(tmp_path, n=3)
    try:
        files = md.files()
        keep = {u: (sub, name, data) for u, (sub, name, data) in files.items()}
        u = session(srv, retr=[1], dele=[1])
        gone = u[1]
        assert gone not in md.files()
        # a restore from backup puts the file back (a new inode)
        sub, name, data = keep[gone]
        (md.path / "cur" / (gone + ":2,S")).write_bytes(data)
        u2 = session(srv)
        assert gone in u2.values()
        assert drift_lines(srv) == [(USER1, 0, 1, 0)], srv.log()
        out = doctor(srv)
        assert "1 messages deleted at a QUIT were back" in out, out
        assert "restore from a backup" in out, out
    finally:
        stop(srv)


def test_retr_without_dele_in_three_sessions(tmp_path):
    srv, md = make_world(tmp_path, n=3)
    try:
        for k in range(3):
            session(srv, retr=[1, 2, 3])
            assert drift_lines(srv) == [], (k, srv.log())
        session(srv)                   # the 4th login reports it
        assert drift_lines(srv) == [(USER1, 0, 0, 3)], srv.log()
        out = doctor(srv)
        assert "this client will download 3 messages again" in out, out
        # survives a restart (the state is on disk)
        stop(srv)
        start_again(srv)
        session(srv)
        assert drift_lines(srv)[-1] == (USER1, 0, 0, 3), srv.log()
    finally:
        stop(srv)


def test_quiet_across_restart_moves_flags_and_delivery(tmp_path):
    srv, md = make_world(tmp_path, n=4)
    try:
        session(srv, retr=[1])         # new/ -> cur/ for all, S on 1
        stop(srv)
        start_again(srv)               # restart
        session(srv)
        # flag changes by another client, by hand
        for f in os.listdir(md.path / "cur"):
            base = f.split(":", 1)[0]
            os.rename(md.path / "cur" / f, md.path / "cur" / (base + ":2,FS"))
        session(srv)
        # a file moved back to new/ by hand, and new deliveries
        f = sorted(os.listdir(md.path / "cur"))[0]
        os.rename(md.path / "cur" / f, md.path / "new" / f.split(":", 1)[0])
        md.deliver(sample_message(10))
        md.deliver(sample_message(11))
        session(srv, retr=[5], dele=[2])
        session(srv)
        md.deliver(sample_message(12))
        session(srv)
        stop(srv)
        start_again(srv)
        session(srv)
        assert drift_lines(srv) == [], srv.log()
        assert "uidl-drift" not in srv.log(), srv.log()
        out = doctor(srv)
        assert "UIDLs are stable" in out, out
        assert "UIDL drift" not in out, out
    finally:
        stop(srv)


def test_damaged_state_starts_afresh(tmp_path):
    srv, md = make_world(tmp_path, n=2)
    try:
        session(srv)
        state = md.path / ".posuto.drift"
        assert state.exists()
        data = bytearray(state.read_bytes())
        data[-1] ^= 0xff
        state.write_bytes(bytes(data))
        md.deliver(sample_message(9))  # the snapshot changed: state read
        session(srv)
        assert ".posuto.drift is damaged" in srv.log(), srv.log()
        assert drift_lines(srv) == []
        # rewritten whole: the next changed login reads it without complaint
        md.deliver(sample_message(10))
        session(srv)
        assert srv.log().count("is damaged") == 1, srv.log()
    finally:
        stop(srv)


def test_off_and_metrics(tmp_path):
    aport = free_port()
    port = free_port()
    md = Maildir(tmp_path / "mail" / USER1)
    for i in range(2):
        md.deliver(sample_message(i))
    srv = Server(tmp_path, with_admin(base_config(port, tmp_path / "mail"),
                                      port=aport)).start()
    wait_port(aport)
    auth = "Basic " + base64.b64encode(("admin:" + ADMIN_PASSWORD).encode()).decode()
    try:
        session(srv)
        stop(srv)
        for f in os.listdir(md.path / "cur"):
            os.rename(md.path / "cur" / f, md.path / "cur" / ("19" + f))
        start_again(srv)
        wait_port(aport)
        # the web admin's Users page (its API) says so before any login
        req = urllib.request.Request("http://127.0.0.1:%d/api/v1/users?stats=1" % aport,
                                     headers={"Authorization": auth})
        with urllib.request.urlopen(req, timeout=30) as r:
            users = {u["name"]: u for u in json.loads(r.read())["users"]}
        assert users[USER1]["uidl_drift"] == {"changed": 2, "reappeared": 0,
                                              "reretrieved": 0}, users
        session(srv)
        assert drift_lines(srv) == [(USER1, 2, 0, 0)], srv.log()
        req = urllib.request.Request("http://127.0.0.1:%d/metrics" % aport,
                                     headers={"Authorization": auth})
        with urllib.request.urlopen(req, timeout=10) as r:
            m = r.read().decode()
        assert re.search(r'posuto_uidl_drift_changed_total\{protocol="pop3"\} 2\b', m), m
        assert 'posuto_uidl_drift_reappeared_total{protocol="pop3"} 0' in m, m
        stop(srv)
        # UidlDrift false: nothing recorded, nothing said
        cfg = srv.cfg
        cfg["Pop3Server"]["UidlDrift"] = False
        srv.rewrite_config(cfg)
        os.unlink(md.path / ".posuto.drift")
        start_again(srv)
        session(srv)
        assert not (md.path / ".posuto.drift").exists()
        assert "UIDL drift" not in doctor(srv)
    finally:
        stop(srv)
