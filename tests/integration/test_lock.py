"""The session lock ([IN-USE]) between processes, and what it costs: an
idle logged-in session holds one descriptor, its socket (store_lock.h)."""

import os
import signal
import stat
import subprocess
import time

from posuto_testlib import (
    USER1, Emldir, Maildir, Pop3, Server, base_config, free_port, login_retry_inuse,
    run, sample_message, write_config,
)


class InetdSession:
    """`posuto serve --inetd` on pipes: one session in a process of its own."""

    def __init__(self, posuto, config_path, log_path, preexec_fn=None):
        self.log_path = log_path
        self.errf = open(log_path, "wb")
        self.p = subprocess.Popen([posuto, "serve", "-c", str(config_path), "--inetd"],
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                  stderr=self.errf, bufsize=0, preexec_fn=preexec_fn)
        self.greeting = self.readline()

    def readline(self):
        line = self.p.stdout.readline()
        if not line:
            raise EOFError("inetd session ended:\n" + self.log())
        return line.rstrip(b"\r\n")

    def cmd(self, line):
        self.p.stdin.write(line.encode() + b"\r\n")
        return self.readline()

    def login(self, user=USER1, password="password"):
        r = self.cmd("USER " + user)
        return r if not r.startswith(b"+OK") else self.cmd("PASS " + password)

    def log(self):
        return self.log_path.read_text(errors="replace")

    def kill9(self):
        self.p.kill()
        self.p.wait(timeout=30)

    def close(self):
        if self.p.poll() is None:
            self.p.stdin.close()  # EOF: the session ends without UPDATE
            try:
                self.p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.kill9()
        self.errf.close()
        assert "Sanitizer" not in self.log() and "runtime error" not in self.log(), self.log()


def inetd_login_retry(posuto, path, log_path, timeout=20):
    """An inetd session logged in, retrying while a closing daemon session
    still holds the mailbox."""
    deadline = time.monotonic() + timeout
    for _ in range(1000):
        s = InetdSession(posuto, path, log_path)
        r = s.login()
        if r.startswith(b"+OK"):
            return s
        s.close()
        assert b"[IN-USE]" in r and time.monotonic() < deadline, r
        time.sleep(0.1)
    raise AssertionError("mailbox stayed in use")


def test_daemon_and_inetd_exclude_each_other(servers, maildir, tmp_path, posuto):
    """A daemon and inetd-mode processes with the same LockFile: each keeps
    the other out, and a holder killed with -9 leaves no lock behind."""
    maildir.deliver(sample_message(1))
    maildir.deliver(sample_message(2))
    cfg = servers.config(AllowPlaintextAuth=True)
    srv = servers.start(cfg)
    path = write_config(tmp_path / "inetd.json", cfg)  # same dir: same LockFile

    a = Pop3("127.0.0.1", srv.port)
    a.must_login()
    i = InetdSession(posuto, path, tmp_path / "inetd1.stderr")
    r = i.login()
    assert r.startswith(b"-ERR [IN-USE]"), r
    assert i.cmd("QUIT").startswith(b"+OK")
    i.close()
    assert a.quit().startswith(b"+OK")

    i = inetd_login_retry(posuto, path, tmp_path / "inetd2.stderr")
    assert i.cmd("STAT").startswith(b"+OK 2 ")
    b = Pop3("127.0.0.1", srv.port)
    r = b.login()
    assert r.startswith(b"-ERR [IN-USE]"), r
    b.close()
    # Two inetd processes exclude each other too.
    j = InetdSession(posuto, path, tmp_path / "inetd3.stderr")
    assert j.login().startswith(b"-ERR [IN-USE]")
    j.close()
    i.kill9()
    i.close()
    d = login_retry_inuse("127.0.0.1", srv.port, timeout=10)
    assert d.stat()[0] == 2
    d.quit()


def fd_targets(pid):
    res = []
    for fd in os.listdir("/proc/%d/fd" % pid):
        try:
            res.append(os.readlink("/proc/%d/fd/%s" % (pid, fd)))
        except FileNotFoundError:
            pass  # closed meanwhile
    return sorted(res)


def listening_sockets():
    """"socket:[inode]" of every listening TCP socket on the host."""
    res = set()
    for f in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = open(f).read().splitlines()[1:]
        except FileNotFoundError:
            continue
        for line in lines:
            fields = line.split()
            if fields[3] == "0A":  # TCP_LISTEN
                res.add("socket:[%s]" % fields[9])
    return res


def connections(targets):
    listening = listening_sockets()
    return [t for t in targets if t.startswith("socket:") and t not in listening]


def settled_fds(pid, timeout=10):
    """The server's descriptors once it holds no connection any more (the
    start-up probe and closing sessions are let go asynchronously)."""
    deadline = time.monotonic() + timeout
    for _ in range(1000):
        t = fd_targets(pid)
        if not connections(t) or time.monotonic() > deadline:
            return t
        time.sleep(0.05)
    return fd_targets(pid)


def test_idle_sessions_hold_one_fd_each(servers, tmp_path):
    """N sessions logged in on N mailboxes (Maildir and emldir) cost the
    server exactly N descriptors, all sockets; none is left after QUIT."""
    n = 50
    users = [{"UserName": "fd%d" % i, "Password": "pw%d" % i, "HashType": "PLAIN"}
             for i in range(n + 1)]
    for i in range(n + 1):
        box = (Maildir if i % 2 == 0 else Emldir)(tmp_path / "mail" / ("fd%d" % i))
        box.deliver(sample_message(i))
    srv = servers.start(servers.config(users=users))
    pid = srv.pid()
    base = settled_fds(pid)
    assert not connections(base), base
    # One whole session first (a RETR reopens the directories), so that
    # anything created on first use is there before counting; it leaves
    # nothing behind.
    w = Pop3("127.0.0.1", srv.port)
    w.must_login("fd%d" % n, "pw%d" % n)
    w.retr(1)
    assert w.quit().startswith(b"+OK")
    assert settled_fds(pid) == base

    clients = []
    for i in range(n):
        c = Pop3("127.0.0.1", srv.port)
        c.must_login("fd%d" % i, "pw%d" % i)
        assert c.stat()[0] == 1
        clients.append(c)
    held = fd_targets(pid)
    assert len(held) == len(base) + n, (len(held), len(base), held)
    new = list(held)
    for t in base:
        new.remove(t)
    assert sorted(connections(held)) == sorted(new), new
    # Still locked, though nothing of the mailbox is open.
    extra = Pop3("127.0.0.1", srv.port)
    r = extra.login("fd0", "pw0")
    assert r.startswith(b"-ERR [IN-USE]"), r
    extra.close()
    for c in clients:
        assert c.quit().startswith(b"+OK")
    assert settled_fds(pid) == base


def test_lock_file_in_missing_directory_fails_startup(posuto, tmp_path):
    lock = tmp_path / "no-such-dir" / "posuto.lock"
    cfg = base_config(free_port(), tmp_path / "mail", LockFile=str(lock),
                      AllowPlaintextAuth=True)
    path = write_config(tmp_path / "c.json", cfg)
    r = run([posuto, "serve", "-c", path], timeout=30)
    err = r.stderr.decode(errors="replace")
    assert r.returncode != 0, err
    assert str(lock) in err and "LockFile" in err, err
    # inetd mode as well: no session without cross-process exclusion
    r = run([posuto, "serve", "-c", path, "--inetd"], input=b"QUIT\r\n", timeout=30)
    err = r.stderr.decode(errors="replace")
    assert r.returncode != 0, err
    assert str(lock) in err, err
    assert b"+OK" not in r.stdout
    assert not lock.parent.exists()


def test_lock_file_that_is_a_symlink_is_refused(posuto, tmp_path):
    target = tmp_path / "real.lock"
    target.write_bytes(b"")
    os.symlink(target, tmp_path / "link.lock")
    cfg = base_config(free_port(), tmp_path / "mail", LockFile="link.lock")
    path = write_config(tmp_path / "c.json", cfg)
    r = run([posuto, "serve", "-c", path], timeout=30)
    err = r.stderr.decode(errors="replace")
    assert r.returncode != 0, err
    assert str(tmp_path / "link.lock") in err and "symbolic link" in err, err


def test_check_config_lock_file(posuto, tmp_path):
    """LockFile is a path like the others (relative to the config file);
    check-config only checks it and creates nothing."""
    cfg = base_config(free_port(), tmp_path / "mail", LockFile="run/p.lock")
    path = write_config(tmp_path / "c.json", cfg)
    r = run([posuto, "check-config", "-c", path])
    assert r.returncode == 0, r.stderr
    assert str(tmp_path / "run" / "p.lock") in r.stdout.decode()
    assert not (tmp_path / "run").exists()
    for bad in ("", "locks/", 5, "C:\\posuto\\lock"):
        cfg["Pop3Server"]["LockFile"] = bad
        path = write_config(tmp_path / "bad.json", cfg)
        r = run([posuto, "check-config", "-c", path])
        out = (r.stdout + r.stderr).decode()
        assert r.returncode == 78, (bad, out)
        assert "LockFile" in out, (bad, out)


def default_lock_path():
    if os.geteuid() == 0:
        return "/run/posuto/mailbox.lock"
    xdg = os.environ.get("XDG_RUNTIME_DIR")
    if xdg and xdg.startswith("/") and os.path.isdir(xdg):
        return os.path.join(xdg, "posuto-mailbox.lock")
    return "/tmp/posuto-%d.lock" % os.geteuid()


def test_default_lock_file(posuto, tmp_path, maildir):
    """Without LockFile: /run/posuto/mailbox.lock for root, else under
    $XDG_RUNTIME_DIR or in /tmp; held open for the process's life."""
    maildir.deliver(sample_message(1))
    cfg = base_config(free_port(), tmp_path / "mail")
    del cfg["Pop3Server"]["LockFile"]
    want = default_lock_path()
    srv = Server(tmp_path, cfg, name="deflock").start()
    try:
        assert want in fd_targets(srv.pid()), fd_targets(srv.pid())
        st = os.lstat(want)
        assert stat.S_ISREG(st.st_mode) and st.st_uid == os.geteuid()
        if os.geteuid() == 0:
            assert stat.S_IMODE(os.stat("/run/posuto").st_mode) == 0o755
        c = Pop3("127.0.0.1", srv.port)
        c.must_login()
        assert c.quit().startswith(b"+OK")
    finally:
        _rc, problems = srv.stop()
        assert not problems, problems


def test_lock_file_change_waits_for_restart(servers, maildir, tmp_path):
    """SIGHUP keeps the lock file the sessions hold their locks in (a new
    one would not exclude the processes on the old one) and says so."""
    maildir.deliver(sample_message(1))
    cfg = servers.config()
    srv = servers.start(cfg)
    a = Pop3("127.0.0.1", srv.port)
    a.must_login()
    cfg["Pop3Server"]["LockFile"] = "other.lock"
    srv.rewrite_config(cfg)
    srv.signal(signal.SIGHUP)
    deadline = time.monotonic() + 20
    for _ in range(400):  # wait for the reload
        if "reload done" in srv.log() or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert "LockFile changes take effect on restart" in srv.log(), srv.log()
    assert str(tmp_path / "posuto.lock") in fd_targets(srv.pid())
    assert not (tmp_path / "other.lock").exists()
    # still one lock, in the old file: a second process on it is kept out
    other = servers.start(servers.config())
    b = Pop3("127.0.0.1", other.port)
    assert b.login().startswith(b"-ERR [IN-USE]")
    b.close()
    assert a.quit().startswith(b"+OK")
