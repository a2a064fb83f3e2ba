"""Issue 9, the store: files renamed by another client during a cold scan,
one unreadable file, arrival order within one second, and mailbox
permissions (foreign-owned files, hard links, world-writable
directories), with what check-config reports about them."""

import os
import pathlib
import pwd
import random
import shutil
import subprocess
import sys
import tempfile
import time

import pytest

from posuto_testlib import (USER1, USER2, Maildir, Pop3, Server, base_config,
                            free_port, login_retry_inuse, sample_message,
                            to_wire)

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="needs root")

# Another client (an IMAP server, a sync tool) working on the Maildir:
# moves new/X -> cur/X:2,S and toggles flags in cur/ as fast as it can.
RENAMER = r"""
import os, random, sys, time
box, stop, uniq_file = sys.argv[1], sys.argv[2], sys.argv[3]
uniqs = open(uniq_file).read().split()
deadline = time.monotonic() + 120
n = 0
rnd = random.Random(9)
while not os.path.exists(stop) and time.monotonic() < deadline:
    u = rnd.choice(uniqs)
    for src, dst in ((("new", u), ("cur", u + ":2,S")),
                     (("cur", u + ":2,"), ("cur", u + ":2,S")),
                     (("cur", u + ":2,S"), ("cur", u + ":2,FS")),
                     (("cur", u + ":2,FS"), ("cur", u + ":2,S"))):
        try:
            os.rename(os.path.join(box, *src), os.path.join(box, *dst))
            n += 1
            break
        except FileNotFoundError:
            pass
print(n)
"""


def test_renamed_during_cold_scan_never_vanish_or_repeat(servers, tmp_path):
    """3,000 messages, another process renaming them the whole time, the
    index removed before every other login: every login lists all 3,000,
    each UIDL once."""
    md = Maildir(tmp_path / "mail" / USER1)
    uniqs = [md.deliver(b"Subject: m%d\n\nbody %d\n" % (i, i)) for i in range(3000)]
    (tmp_path / "uniqs").write_text("\n".join(uniqs))
    srv = servers.start()
    stop = tmp_path / "stop-renamer"
    ren = subprocess.Popen([sys.executable, "-c", RENAMER, str(md.path), str(stop),
                            str(tmp_path / "uniqs")], stdout=subprocess.PIPE)
    bad = []
    try:
        time.sleep(0.2)  # let it get going
        for i in range(24):
            if i % 2 == 0:
                try:
                    os.unlink(md.path / ".posuto.index")
                except FileNotFoundError:
                    pass
            # QUIT moves 3,000 files new/ -> cur/ while they are renamed
            # under it: slow under ASan on a busy machine, never a hang.
            c = Pop3("127.0.0.1", srv.port, timeout=180)
            c.must_login()
            n, _octets = c.stat()
            lines = c.multi("UIDL")
            ids = [l.split()[1].decode() for l in lines]
            if n != 3000 or len(ids) != 3000 or len(set(ids)) != 3000 or \
                    set(ids) != set(uniqs):
                bad.append((i, n, len(ids), len(set(ids))))
            assert c.quit().startswith(b"+OK")
        assert ren.poll() is None, "the renamer stopped early: the race was not run"
    finally:
        stop.write_text("")
        try:
            out, _ = ren.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            ren.kill()
            out, _ = ren.communicate(timeout=30)
    assert int(out or b"0") > 1000, "too few renames to mean anything"
    assert not bad, "logins with a wrong listing (login, STAT, UIDLs, unique): %r" % bad
    assert len(md.files()) == 3000


def drop_tree(top, pw):
    for dirpath, _dirnames, filenames in os.walk(top / "mail"):
        os.chown(dirpath, pw.pw_uid, pw.pw_gid)
        for f in filenames:
            os.chown(os.path.join(dirpath, f), pw.pw_uid, pw.pw_gid)


@needs_root
def test_one_unreadable_message_does_not_lock_the_mailbox():
    """Mode 000 on one file (the server runs as nobody, for whom that
    means EACCES): the session opens, LIST shows the file with its S=
    size, RETR/TOP of it get -ERR [SYS/TEMP] (logged), its neighbours are
    served, and DELE removes it at QUIT."""
    nobody = pwd.getpwnam("nobody")
    top = pathlib.Path(tempfile.mkdtemp(prefix="posuto-unreadable-"))
    try:
        os.chmod(top, 0o755)
        md = Maildir(top / "mail" / USER1)
        msgs = [sample_message(i) for i in range(3)]
        md.deliver(msgs[0])
        bad = md.deliver(msgs[1], name="1732000002.M2P124.host,S=%d" % len(msgs[1]))
        md.deliver(msgs[2])
        drop_tree(top, nobody)
        os.chmod(md.path / "new" / bad, 0)
        cfg = base_config(free_port(), top / "mail", RunAsUser="nobody")
        srv = Server(top, cfg, name="unreadable").start()
        try:
            for _ in range(2):      # the second login: warm index for the others
                c = Pop3("127.0.0.1", srv.port)
                c.must_login()
                assert c.stat()[0] == 3
                lst = c.list()
                assert lst[1] == len(to_wire(msgs[0])) and lst[3] == len(to_wire(msgs[2]))
                assert lst[2] == len(msgs[1])        # its S= hint
                assert c.cmd("RETR 2").startswith(b"-ERR [SYS/TEMP]")
                assert c.cmd("TOP 2 0").startswith(b"-ERR [SYS/TEMP]")
                assert c.retr(1) == to_wire(msgs[0])
                assert c.retr(3) == to_wire(msgs[2])
                assert len(c.uidl()) == 3
                c.cmd("RSET")
                assert c.quit().startswith(b"+OK")
            c = Pop3("127.0.0.1", srv.port)
            c.must_login()
            assert c.cmd("DELE 2").startswith(b"+OK")
            assert c.quit().startswith(b"+OK")
            left = md.files()
            assert len(left) == 2 and bad not in left
            log = srv.log()
            assert "cannot read message %s" % bad in log and "not served" in log
            assert "Cannot open mailbox" not in log
        finally:
            _rc, problems = srv.stop()
            assert not problems, problems
    finally:
        shutil.rmtree(top, ignore_errors=True)


def test_same_second_arrival_order(servers, tmp_path):
    """Names of one second come out in arrival order (microseconds or
    sequence), not by inode, pid or device, the same warm and cold."""
    md = Maildir(tmp_path / "mail" / USER1)
    arrival = [
        # Postfix: V<dev>I<inode>M<usec>; the inodes run backwards
        "1700000000.V803I9fM5.mx", "1700000000.V803I1aM42.mx",
        "1700000000.V801I05M999999.mx",
        # Dovecot: M<usec>P<pid>[Q<n>]
        "1700000001.M9P4000.mx", "1700000001.M10P100.mx",
        "1700000001.M10P100Q2.mx", "1700000001.M10P100Q10.mx",
        # Courier: M<usec>P<pid>V<dev>I<inode>
        "1700000002.M77P9V0000000000000803I00000000000000ff.mx",
        "1700000002.M78P1V0000000000000803I0000000000000001.mx",
        # qmail: time.pid.host has nothing finer than the second (then
        # name order), time.MusecPpid.host does
        "1700000003.4321.mx", "1700000003.M1P99.mx", "1700000003.M2P5.mx",
    ]
    shuffled = list(enumerate(arrival))
    random.Random(4).shuffle(shuffled)
    for i, name in shuffled:
        md.deliver(b"Subject: arrival %d\n\nbody\n" % i, name=name)
    srv = servers.start()
    for attempt in ("cold", "warm", "no index"):
        if attempt == "no index":
            os.unlink(md.path / ".posuto.index")
        c = login_retry_inuse("127.0.0.1", srv.port)
        uidl = c.uidl()
        assert [uidl[k] for k in sorted(uidl)] == arrival, attempt
        last = c.retr(len(arrival))
        assert b"Subject: arrival %d\r\n" % (len(arrival) - 1) in last
        # QUIT moves them to cur/: unique parts (and UIDLs) stay
        assert c.cmd("RSET").startswith(b"+OK")
        assert c.quit().startswith(b"+OK")
        assert sorted(md.files()) == sorted(arrival)


def check_config(posuto, cfg_path):
    r = subprocess.run([posuto, "check-config", "-c", str(cfg_path)],
                       capture_output=True, timeout=60)
    return r.returncode, r.stderr.decode(errors="replace")


@needs_root
def test_foreign_file_and_hard_links(servers, tmp_path, posuto):
    """A hard link to another user's message planted in user1's Maildir
    is listed but never served (-ERR, logged) and DELE removes just the
    link; a hard link between files of one owner is served.  check-config
    reports both."""
    m1 = Maildir(tmp_path / "mail" / USER1)
    m2 = Maildir(tmp_path / "mail" / USER2)
    own = [sample_message(i) for i in range(2)]
    m1.deliver(own[0])
    secret = b"Subject: user2's secret\n\nnot for user1\n"
    s_name = m2.deliver(secret, name="1732000005.M1P9.host")
    nobody = pwd.getpwnam("nobody")
    for dirpath, _d, files in os.walk(m2.path):
        os.chown(dirpath, nobody.pw_uid, nobody.pw_gid)
        for f in files:
            os.chown(os.path.join(dirpath, f), nobody.pw_uid, nobody.pw_gid)
    os.link(m2.path / "new" / s_name, m1.path / "new" / (s_name + ".planted"))
    own1 = m1.deliver(own[1], name="1732000009.M1P9.host")
    os.link(m1.path / "new" / own1, tmp_path / "a-backup-link")
    srv = servers.start()
    c = Pop3("127.0.0.1", srv.port)
    c.must_login()
    assert c.stat()[0] == 3
    uidl = c.uidl()
    planted = [k for k, v in uidl.items() if v.endswith(".planted")][0]
    r = c.cmd("RETR %d" % planted)
    assert r.startswith(b"-ERR") and b"no longer available" not in r, r
    assert c.cmd("TOP %d 0" % planted).startswith(b"-ERR")
    for k in uidl:
        if k != planted:
            assert c.retr(k) in (to_wire(own[0]), to_wire(own[1]))
    assert c.cmd("DELE %d" % planted).startswith(b"+OK")
    assert c.quit().startswith(b"+OK")
    assert s_name + ".planted" not in m1.files()
    assert m2.files()[s_name][2] == secret
    assert "belongs to uid %d" % nobody.pw_uid in srv.log()
    # check-config, with another planted link
    os.link(m2.path / "new" / s_name, m1.path / "cur" / (s_name + ".again:2,"))
    rc, err = check_config(posuto, srv.config_path)
    assert rc == 0, err
    assert "user %s" % USER1 in err and (s_name + ".again:2,") in err, err
    assert "belongs to uid %d" % nobody.pw_uid in err and "not served" in err, err
    assert "other hard links" in err, err


@pytest.mark.parametrize("sub", ["", "new", "cur"])
def test_world_writable_mailbox_refused(servers, tmp_path, posuto, sub):
    md = Maildir(tmp_path / "mail" / USER1)
    md.deliver(sample_message(1))
    srv = servers.start()
    d = md.path / sub if sub else md.path
    os.chmod(d, 0o1777)
    c = Pop3("127.0.0.1", srv.port)
    r = c.login()
    assert r.startswith(b"-ERR [SYS/PERM]"), r
    c.close()
    assert "writable by every user" in srv.log()
    rc, err = check_config(posuto, srv.config_path)
    assert rc == 0 and "writable by every user" in err and str(d) in err, err
    os.chmod(d, 0o755)
    rc, err = check_config(posuto, srv.config_path)
    assert "warning: user" not in err, err
    for _ in range(200):
        c = Pop3("127.0.0.1", srv.port)
        r = c.login()
        c.close()
        if not r.startswith(b"-ERR [IN-USE]"):
            break
        time.sleep(0.05)
    assert r.startswith(b"+OK"), r
