"""RFC 2449 LOGIN-DELAY and EXPIRE as enforced policy (issue 9, item 19).

Time is never waited out: LoginDelay tests use a delay far longer than the
test (or move the recorded login back in time), Expire tests move the
first-retrieval times in the mailbox's .posuto.expire back, which is the
documented format (store_policy.h, posuto.json(5)).
"""

import os
import re
import time

from posuto_testlib import (
    SHA256_PASSWORD, SHA512_TEST, USER1, USER2, Emldir, Maildir, Pop3,
    login_after_drop, sample_message,
)

USER3 = "user3@example.com"


def capa(c):
    return [l.decode() for l in c.multi("CAPA")]


def users(**over):
    u1 = {"UserName": USER1, "Password": SHA256_PASSWORD, "HashType": "SHA256"}
    u2 = {"UserName": USER2, "Password": SHA512_TEST, "HashType": "SHA512"}
    u1.update(over.get("u1", {}))
    u2.update(over.get("u2", {}))
    return [u1, u2]


def wait_for(pred, what, srv, timeout=30):
    deadline = time.monotonic() + timeout
    for _ in range(int(timeout * 20) + 10):
        if pred():
            return
        if time.monotonic() > deadline:
            break
        time.sleep(0.05)
    raise AssertionError("timed out waiting for %s; log:\n%s" % (what, srv.log()[-4000:]))


def read_state(box):
    p = box.path / ".posuto.expire"
    lines = p.read_text().splitlines()
    assert lines[0] == "posuto-expire 1"
    return {u: int(t) for t, u in (l.split(" ", 1) for l in lines[1:])}


def write_state(box, entries):
    p = box.path / ".posuto.expire"
    tmp = box.path / ".posuto.expire.test"
    tmp.write_text("posuto-expire 1\n" + "".join("%d %s\n" % (t, u) for u, t in entries.items()))
    os.rename(tmp, p)


# ---------------------------------------------------------------- LOGIN-DELAY

def test_login_delay_refuses_second_login(servers, maildir):
    maildir.deliver(sample_message(1))
    srv = servers.start(LoginDelay=3600)
    c = Pop3("127.0.0.1", srv.port)
    assert "LOGIN-DELAY 3600" in capa(c)
    c.must_login()
    assert "LOGIN-DELAY 3600" in capa(c)
    c.quit()
    c = Pop3("127.0.0.1", srv.port)
    r = c.login()
    assert r.startswith(b"-ERR [LOGIN-DELAY]"), r
    # the session is still usable and nothing was locked or opened
    assert c.cmd("NOOP").startswith(b"-ERR")  # still AUTHORIZATION
    # a wrong password learns nothing about the delay
    r = c.login(USER1, "wrong")
    assert r.startswith(b"-ERR [AUTH]"), r
    c.quit()
    assert re.search(r"login user=user1@example.com refused: LoginDelay 3600s", srv.log()), srv.log()
    # other users are not delayed by user1's login
    c = Pop3("127.0.0.1", srv.port)
    c.must_login(USER2, "test")
    c.quit()


def test_login_delay_over_allows_login(servers, maildir):
    """Once the delay is over (the recorded login moved back past it), the
    next login succeeds and is recorded anew."""
    maildir.deliver(sample_message(1))
    srv = servers.start(LoginDelay=3600)
    c = Pop3("127.0.0.1", srv.port)
    c.must_login()
    c.quit()
    stamp = maildir.path / ".posuto.login"
    m = re.fullmatch(r"posuto-login 1 (\d+)\n", stamp.read_text())
    assert m, stamp.read_text()
    t = int(m.group(1))
    assert abs(t - time.time()) < 600
    stamp.write_text("posuto-login 1 %d\n" % (t - 3601))
    c = Pop3("127.0.0.1", srv.port)
    c.must_login()
    c.quit()
    assert int(stamp.read_text().split()[2]) >= t
    # a damaged stamp does not lock anyone out
    stamp.write_text("garbage\n")
    c = Pop3("127.0.0.1", srv.port)
    c.must_login()
    c.quit()


def test_login_delay_shared_with_inetd(servers, maildir, posuto, tmp_path):
    """The last login lives in the mailbox, so a --inetd process (which
    serves one session and forgets) honours a daemon's login."""
    import subprocess
    maildir.deliver(sample_message(1))
    srv = servers.start(LoginDelay=3600)
    c = Pop3("127.0.0.1", srv.port)
    c.must_login()
    c.quit()
    p = subprocess.run([posuto, "serve", "--inetd", "-c", str(srv.config_path)],
                       input=b"USER %s\r\nPASS password\r\nQUIT\r\n" % USER1.encode(),
                       capture_output=True, timeout=60)
    assert b"-ERR [LOGIN-DELAY]" in p.stdout, p.stdout


def test_login_delay_per_user_capa(servers, maildir):
    maildir.deliver(sample_message(1))
    srv = servers.start(users=users(u1={"LoginDelay": 900}))
    c = Pop3("127.0.0.1", srv.port)
    assert "LOGIN-DELAY 900 USER" in capa(c)
    c.must_login(USER2, "test")
    assert not [l for l in capa(c) if l.startswith("LOGIN-DELAY")]
    c.quit()
    c = Pop3("127.0.0.1", srv.port)
    c.must_login(USER1)
    assert "LOGIN-DELAY 900" in capa(c)
    c.quit()
    c = Pop3("127.0.0.1", srv.port)
    assert c.login(USER1).startswith(b"-ERR [LOGIN-DELAY]")
    c.quit()


def test_login_delay_off_by_default(servers, maildir):
    maildir.deliver(sample_message(1))
    srv = servers.start()
    for _ in range(3):
        c = Pop3("127.0.0.1", srv.port)
        cl = capa(c)
        assert not [l for l in cl if l.startswith("LOGIN-DELAY")], cl
        assert "EXPIRE NEVER" in cl
        c.must_login()
        c.quit()
    assert not (maildir.path / ".posuto.login").exists()
    assert not (maildir.path / ".posuto.expire").exists()


def test_login_delay_passwd_file(servers, tmp_path):
    box = Maildir(tmp_path / "mail" / "pw1")
    box.deliver(sample_message(1))
    Maildir(tmp_path / "mail" / "pw2").deliver(sample_message(2))
    pf = tmp_path / "users"
    pf.write_text("pw1:{PLAIN}secret::::::userdb_login_delay=600 expire=7\n"
                  "pw2:{PLAIN}secret::::::login_delay=0\n")
    os.chmod(pf, 0o600)
    srv = servers.start(users=[], PasswdFile=str(pf), LoginDelay=60)
    c = Pop3("127.0.0.1", srv.port)
    cl = capa(c)
    assert "LOGIN-DELAY 600 USER" in cl and "EXPIRE 7 USER" in cl, cl
    c.must_login("pw1", "secret")
    cl = capa(c)
    assert "LOGIN-DELAY 600" in cl and "EXPIRE 7" in cl, cl
    c.quit()
    for _ in range(2):
        c = Pop3("127.0.0.1", srv.port)
        c.must_login("pw2", "secret")
        assert "EXPIRE NEVER" in capa(c)
        c.quit()


def test_policy_config_errors(posuto, tmp_path):
    import subprocess
    from posuto_testlib import base_config, write_config
    cfg = base_config(1100, tmp_path / "mail", users=users(u2={"Expire": "soon"}),
                      Expire=-1, LoginDelay="5", ExpireCheckInterval=0)
    path = write_config(tmp_path / "c.json", cfg)
    p = subprocess.run([posuto, "check-config", "-c", path], capture_output=True, timeout=60)
    err = p.stderr.decode()
    assert p.returncode == 78, err
    assert re.search(r'c\.json:\d+:\d+: Pop3Server\.Expire: -1 is out of range', err), err
    assert re.search(r'c\.json:\d+:\d+: Pop3Server\.LoginDelay: expected an integer', err), err
    assert re.search(r'c\.json:\d+:\d+: Pop3Server\.ExpireCheckInterval: 0 is out of range', err), err
    assert re.search(r'c\.json:\d+:\d+: Pop3Server\.Users\[1\]\.Expire: expected a number of days or "never"', err), err
    pf = tmp_path / "users"
    pf.write_text("pw1:{PLAIN}secret::::::expire=later\n")
    os.chmod(pf, 0o600)
    cfg = base_config(1100, tmp_path / "mail", users=[], PasswdFile=str(pf))
    path = write_config(tmp_path / "c2.json", cfg)
    p = subprocess.run([posuto, "check-config", "-c", path], capture_output=True, timeout=60)
    assert p.returncode == 78 and b"users:1: user pw1: expire= needs" in p.stderr, p.stderr


# ---------------------------------------------------------------- EXPIRE

def test_expire_zero_deletes_retrieved_at_quit(servers, maildir):
    """EXPIRE 0: what the session retrieved goes at its UPDATE; what it did
    not retrieve stays; a session dropped without QUIT deletes nothing."""
    names = [maildir.deliver(sample_message(i)) for i in range(3)]
    srv = servers.start(Expire=0)
    c = Pop3("127.0.0.1", srv.port)
    c.must_login()
    assert "EXPIRE 0" in capa(c)
    c.retr(1)
    c.retr(2)
    c.close()  # no QUIT: nothing deleted, nothing recorded
    c = login_after_drop(srv, "127.0.0.1", srv.port)
    assert c.stat()[0] == 3
    c.retr(2)
    c.multi("TOP 3 0")  # TOP is not a retrieval
    r = c.quit()
    assert r.startswith(b"+OK"), r
    left = set(maildir.files())
    assert left == {names[0], names[2]}, left
    assert re.search(r"expire: deleting user=user1@example.com uidl=%s age=\d+s expire=0d"
                     % re.escape(names[1]), srv.log()), srv.log()
    assert not (maildir.path / ".posuto.expire").exists() or names[1] not in read_state(maildir)


def test_expire_days_recorded_then_deleted_by_job_not_while_locked(servers, maildir):
    """Expire 2: the first RETR is recorded; while a session holds the
    mailbox the expiry job skips it even though it is due; once the
    session is gone the job deletes the message and logs it."""
    names = [maildir.deliver(sample_message(i)) for i in range(2)]
    srv = servers.start(Expire=2, ExpireCheckInterval=1, LogLevel="debug")
    c = Pop3("127.0.0.1", srv.port)
    c.must_login()
    assert "EXPIRE 2" in capa(c)
    c.retr(1)
    assert c.quit().startswith(b"+OK")
    st = read_state(maildir)
    assert list(st) == [names[0]], st
    assert abs(st[names[0]] - time.time()) < 600
    assert set(maildir.files()) == set(names)  # not due yet
    # a second RETR keeps the first time
    c = Pop3("127.0.0.1", srv.port)
    c.must_login()
    c.retr(1)
    c.quit()
    assert read_state(maildir)[names[0]] == st[names[0]]

    holder = Pop3("127.0.0.1", srv.port)
    holder.must_login()
    write_state(maildir, {names[0]: st[names[0]] - 3 * 86400})
    wait_for(lambda: "expire: user=user1@example.com skipped: mailbox in use" in srv.log(),
             "the job to skip the locked mailbox", srv)
    assert set(maildir.files()) == set(names)
    assert "expire: deleting" not in srv.log()
    assert holder.stat()[0] == 2
    holder.close()  # dropped: no UPDATE of its own
    wait_for(lambda: names[0] not in maildir.files(), "the job to expire message 1", srv)
    assert set(maildir.files()) == {names[1]}
    # the summary is logged just after the unlink
    wait_for(lambda: "expire: user=user1@example.com deleted 1 message(s)" in srv.log(),
             "the job's summary line", srv)
    log = srv.log()
    m = re.search(r"expire: deleting user=user1@example.com uidl=%s age=(\d+)s expire=2d"
                  % re.escape(names[0]), log)
    assert m and int(m.group(1)) >= 3 * 86400, log
    wait_for(lambda: not (maildir.path / ".posuto.expire").exists(),
             "the state file to be dropped", srv)
    c = login_after_drop(srv, "127.0.0.1", srv.port)
    assert c.stat()[0] == 1
    c.quit()


def test_expire_at_update_of_due_message(servers, emldir):
    """emldir too: a due message is deleted at the UPDATE of any session
    of its user (also one that retrieved nothing), not others."""
    for i in range(3):
        emldir.deliver(sample_message(i))
    srv = servers.start(Expire=1)  # the job runs hourly: only UPDATE acts
    c = Pop3("127.0.0.1", srv.port)
    c.must_login()
    uidls = c.uidl()
    c.retr(1)
    c.retr(3)
    c.quit()
    st = read_state(emldir)
    assert set(st) == {uidls[1], uidls[3]}, (st, uidls)
    assert len(emldir.files()) == 3
    write_state(emldir, {uidls[1]: st[uidls[1]] - 86400, uidls[3]: st[uidls[3]]})
    c = Pop3("127.0.0.1", srv.port)
    c.must_login()
    assert c.stat()[0] == 3  # still listed in the session that expires it
    assert c.quit().startswith(b"+OK")
    assert sorted(emldir.files()) == ["2.eml", "3.eml"]
    assert set(read_state(emldir)) == {uidls[3]}


def test_expire_state_file_damage_keeps_mail(servers, maildir):
    names = [maildir.deliver(sample_message(i)) for i in range(2)]
    srv = servers.start(Expire=0, ExpireCheckInterval=1)
    for text in ("garbage\n%d %s\n" % (1, names[0]),
                 "posuto-expire 1\nnot-a-time %s\n0 %s\n" % (names[0], names[0]),
                 "posuto-expire 1\n" + "x" * 5000 + "\n"):
        (maildir.path / ".posuto.expire").write_text(text)
        c = Pop3("127.0.0.1", srv.port)
        c.must_login()
        assert c.stat()[0] == 2
        c.quit()
        assert set(maildir.files()) == set(names)
    assert srv.alive()


def test_expire_per_user_capa(servers, maildir):
    srv = servers.start(users=users(u1={"Expire": 5}), Expire="never")
    c = Pop3("127.0.0.1", srv.port)
    assert "EXPIRE 5 USER" in capa(c)
    c.must_login(USER2, "test")
    assert "EXPIRE NEVER" in capa(c)
    c.quit()
    c = Pop3("127.0.0.1", srv.port)
    c.must_login(USER1)
    assert "EXPIRE 5" in capa(c)
    c.quit()
