"""A small crash-consistency check (RELIABILITY.md §4 recipe, bounded):
kill -9 the server at varying points of an UPDATE (expunge + new->cur
moves) and check I1-I4 on the store: nothing not DELE'd is lost or torn,
nothing is duplicated, only tmp/ may hold leftovers."""

import hashlib
import os
import random
import time

import pytest

from posuto_testlib import USER1, Maildir, Pop3, login_retry_inuse

N = 4000
TRIALS = 6


def ledger(md):
    """unique name -> (sha256, size) for every complete message."""
    res = {}
    seen = {}
    for sub in ("new", "cur"):
        for f in os.listdir(md.path / sub):
            if f.startswith("."):
                continue
            uniq = f.split(":", 1)[0]
            assert uniq not in seen, "duplicate: %s in %s and %s" % (uniq, seen[uniq], sub)
            seen[uniq] = sub
            data = (md.path / sub / f).read_bytes()
            res[uniq] = hashlib.sha256(data).hexdigest()
    return res


@pytest.mark.parametrize("trial", range(TRIALS))
def test_kill9_during_update(servers, tmp_path, trial):
    rnd = random.Random(trial)
    md = Maildir(tmp_path / "mail" / USER1)
    for i in range(N):
        md.deliver(b"Subject: %d\n\n" % i + b"x" * rnd.randrange(10, 4000) + b"\n",
                   sub="cur" if i % 5 == 0 else "new", info="2,S" if i % 5 == 0 else None)
    before = ledger(md)
    srv = servers.start()
    c = Pop3("127.0.0.1", srv.port)
    c.must_login()
    uidl = c.uidl()
    dele = {n for n in uidl if rnd.random() < 0.5}
    for n in sorted(uidl)[:50]:
        c.retr(n)
    c.send(b"".join(b"DELE %d\r\n" % n for n in sorted(dele)))
    for _ in dele:
        assert c.readline().startswith(b"+OK")
    c.send(b"QUIT\r\n")
    # Kill at a varying point: right away, or after some of the expunge.
    time.sleep(rnd.choice([0, 0.0005, 0.002, 0.005, 0.01, 0.03]))
    srv.kill9()
    c.close()

    after = ledger(md)
    deleted_uids = {uidl[n] for n in dele}
    for uniq, digest in before.items():
        if uniq in after:
            assert after[uniq] == digest, "torn message %s" % uniq
        else:
            assert uniq in deleted_uids, "message %s lost but never DELE'd" % uniq
    assert set(after) <= set(before), "new names appeared"
    print("trial %d: DELE %d, removed %d" % (trial, len(dele), len(before) - len(after)))

    # The restarted server serves the survivors with unchanged UIDLs.
    srv2 = servers.start(srv.cfg)
    d = login_retry_inuse("127.0.0.1", srv2.port, timeout=10)
    u2 = d.uidl()
    assert sorted(u2.values()) == sorted(after), (len(u2), len(after))
    d.quit()
