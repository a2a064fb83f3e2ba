"""mbox (issue 11): kill -9 of the server during the expunge at QUIT, at
random points; the restarted server finishes or undoes it and serves a
mailbox that parses, with every message not DELE'd intact, nothing torn,
nothing duplicated, UIDLs unchanged.  (tests/unit/test_mbox_crash.c stops
the expunge at every single step in-process; this is the real server.)"""

import random
import re
import time

import pytest

from posuto_testlib import Pop3, login_retry_inuse

PW = "{PLAIN}secret"
N = 3000
TRIALS = 8


def msg(i, rnd):
    body = b"".join(b"%d line %d %s\n" % (i, k, b"x" * rnd.randrange(0, 70))
                    for k in range(rnd.randrange(1, 60)))
    if i % 7 == 0:
        body += b">From quoted\nFrom unquoted-looking\n"
    return b"Subject: %d\nMessage-ID: <%d@mbox>\n\n%s" % (i, i, body)


def quoted(raw):
    return re.sub(rb"(?m)^(>*From )", rb">\1", raw)


def ids_of(msgs):
    return [int(re.search(rb"Message-ID: <(\d+)@mbox>", m).group(1)) for m in msgs]


_expunge_secs = []


def setup_box(servers, tmp_path, rnd, name):
    top = tmp_path / name
    spool, state = top / "spool", top / "state"
    spool.mkdir(parents=True)
    state.mkdir()
    box = spool / "bob"
    raw = {i: msg(i, rnd) for i in range(N)}
    box.write_bytes(b"".join(b"From s@example.org  Mon Jan  6 10:00:%02d 2025\n" % (i % 60) +
                             quoted(raw[i]) + b"\n" for i in range(N)))
    users = [{"UserName": "bob", "Password": PW, "MailboxFormat": "mbox",
              "MailboxPath": str(spool / "%u")}]
    cfg = servers.config(users=users, MboxStateDirectory=str(state))
    srv = servers.start(cfg)
    c = Pop3("127.0.0.1", srv.port)
    c.must_login("bob", "secret")
    uidl = c.uidl()
    assert len(uidl) == N
    # a deletion near the start makes the rewrite cover most of the file
    dele = {1 + rnd.randrange(0, 20)} | {n for n in uidl if rnd.random() < 0.4}
    c.send(b"".join(b"DELE %d\r\n" % n for n in sorted(dele)))
    for _ in dele:
        assert c.readline().startswith(b"+OK")
    return box, state, raw, srv, c, uidl, dele


def expunge_secs(servers, tmp_path):
    """How long one whole expunge of such a mailbox takes here (once per
    run): kill points are spread over it, whatever the machine's speed."""
    if not _expunge_secs:
        *_, srv, c, _u, _d = setup_box(servers, tmp_path, random.Random(1), "probe")
        t0 = time.monotonic()
        c.send(b"QUIT\r\n")
        assert c.readline().startswith(b"+OK")
        _expunge_secs.append(time.monotonic() - t0)
        c.close()
        srv.stop()
    return _expunge_secs[0]


@pytest.mark.parametrize("trial", range(TRIALS))
def test_kill9_during_mbox_expunge(servers, tmp_path, trial):
    rnd = random.Random(1100 + trial)
    span = expunge_secs(servers, tmp_path)
    box, state, raw, srv, c, uidl, dele = setup_box(servers, tmp_path, rnd, "box")
    c.send(b"QUIT\r\n")
    time.sleep(rnd.random() * span * 1.1)
    srv.kill9()
    c.close()

    srv2 = servers.start(srv.cfg)
    d = login_retry_inuse("127.0.0.1", srv2.port, user="bob", password="secret", timeout=20)
    u2 = d.uidl()
    got = [d.retr(n) for n in sorted(u2)]
    d.quit()
    got_ids = ids_of(got)
    assert len(got_ids) == len(set(got_ids)), "duplicated"
    deleted_ids = {n - 1 for n in dele}          # message n holds id n-1
    assert set(range(N)) - deleted_ids <= set(got_ids), "lost a message not DELE'd"
    for i, m in zip(got_ids, got):
        assert m == raw[i].replace(b"\n", b"\r\n"), "message %d changed" % i
    # survivors keep their UIDLs
    assert {uidl[i + 1] for i in got_ids} == set(u2.values())
    # the file itself parses as just those messages, and no journal is left
    data = box.read_bytes()
    assert data.startswith(b"From ") or data == b""
    assert len(re.findall(rb"(?:^|\n\n)From s@example\.org  ", data)) == len(got_ids)
    assert not list(state.glob("*.posuto-journal*"))
    print("trial %d: DELE %d, removed %d (expunge %.3f s)" % (
        trial, len(dele), N - len(got_ids), span))


def deliver_cmd(conf, data, *rcpts):
    import subprocess
    from posuto_testlib import posuto_bin
    p = subprocess.run([posuto_bin(), "deliver", "-c", conf, *rcpts], input=data,
                       capture_output=True, timeout=120)
    return p.returncode, p.stderr.decode(errors="replace")


def test_stale_and_live_dotlocks(servers, tmp_path):
    """A dotlock whose pid is dead (an MTA killed mid-delivery) is broken
    at once; a live one (dotlockfile, as procmail/liblockfile take it) is
    waited for: the delivery goes in once it is released."""
    import os
    import subprocess
    from posuto_testlib import write_config
    spool = tmp_path / "spool"
    spool.mkdir()
    box = spool / "bob"
    box.touch()
    users = [{"UserName": "bob", "Password": PW, "MailboxFormat": "mbox",
              "MailboxPath": str(spool / "%u")}]
    cfg = servers.config(users=users)
    conf = write_config(tmp_path / "d.json", cfg)
    dead = subprocess.Popen(["true"])
    dead.wait()
    (spool / "bob.lock").write_text("%d\n" % dead.pid)
    rc, err = deliver_cmd(conf, b"Subject: 1\n\none\n", "bob")
    assert rc == 0, err
    assert not (spool / "bob.lock").exists()
    # a live holder: released after a moment, then the delivery goes in
    lock = spool / "bob.lock"
    # the holder checks its lock is still its own before it lets go
    p = subprocess.Popen(["/bin/sh", "-c", 'dotlockfile -p -l -r 0 %s && sleep 2 && '
                          '[ "$(cat %s)" = "$$" ] && dotlockfile -u %s' % (lock, lock, lock)])
    try:
        for _ in range(200):
            if lock.exists() or p.poll() is not None:
                break
            time.sleep(0.02)
        assert lock.read_text().strip() == str(p.pid)     # a live holder's pid
        rc, err = deliver_cmd(conf, b"Subject: 2\n\ntwo\n", "bob")
        assert rc == 0, err
        assert p.wait(timeout=30) == 0, "posuto broke a live dotlock"
    finally:
        p.wait(timeout=30)
    srv = servers.start(cfg)
    c = Pop3("127.0.0.1", srv.port)
    c.must_login("bob", "secret")
    assert [c.retr(n).split(b"\r\n")[2] for n in (1, 2)] == [b"Subject: 1", b"Subject: 2"]
    c.quit()
    assert not os.path.exists(spool / "bob.lock")
