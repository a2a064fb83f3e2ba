"""Started as root with RunAsUser, posuto binds, then runs as that user:
every uid and gid of the process (and of its worker threads) is the user's,
and it still serves and deletes mail it owns."""

import os
import pwd
import shutil
import subprocess
import tempfile
import pathlib

import pytest

from posuto_testlib import (Maildir, Pop3, USER1, base_config, free_port,
                            sample_message, Server, write_config)

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="needs root")


def ids(pid, key):
    for line in pathlib.Path("/proc/%d/status" % pid).read_text().splitlines():
        if line.startswith(key + ":"):
            return [int(x) for x in line.split()[1:]]
    raise AssertionError(key)


def test_runs_as_configured_user_after_binding(posuto):
    nobody = pwd.getpwnam("nobody")
    # pytest's tmp dirs are 0700 root: the dropped server could not enter.
    top = pathlib.Path(tempfile.mkdtemp(prefix="posuto-privdrop-"))
    try:
        os.chmod(top, 0o755)
        md = Maildir(top / "mail" / USER1)
        for i in range(3):
            md.deliver(sample_message(i))
        for dirpath, dirnames, filenames in os.walk(top / "mail"):
            os.chown(dirpath, nobody.pw_uid, nobody.pw_gid)
            for f in filenames:
                os.chown(os.path.join(dirpath, f), nobody.pw_uid, nobody.pw_gid)
        cfg = base_config(free_port(), top / "mail", RunAsUser="nobody")
        srv = Server(top, cfg, name="privdrop").start()
        try:
            pid = srv.proc.pid
            assert ids(pid, "Uid") == [nobody.pw_uid] * 4
            assert ids(pid, "Gid") == [nobody.pw_gid] * 4
            for task in os.listdir("/proc/%d/task" % pid):
                status = pathlib.Path("/proc/%d/task/%s/status" % (pid, task)).read_text()
                uid_line = [l for l in status.splitlines() if l.startswith("Uid:")][0]
                assert uid_line.split()[1:] == [str(nobody.pw_uid)] * 4, task
            # The lock file, created by root before the drop, is the
            # user's now, so inetd-mode instances running as it can use it.
            st = os.lstat(top / "posuto.lock")
            assert (st.st_uid, st.st_gid) == (nobody.pw_uid, nobody.pw_gid)
            assert st.st_mode & 0o777 == 0o600
            c = Pop3("127.0.0.1", srv.port)
            c.must_login()
            assert c.stat()[0] == 3
            inetd_as_nobody_is_refused(posuto, srv, nobody)
            assert c.cmd("DELE 1").startswith(b"+OK")
            assert c.cmd("QUIT").startswith(b"+OK")
            assert len(md.files()) == 2
            assert b"running as nobody" in srv.log().encode() if isinstance(srv.log(), str) else b"running as nobody" in srv.log()
        finally:
            _rc, problems = srv.stop()
            assert not problems, problems
    finally:
        shutil.rmtree(top, ignore_errors=True)


def inetd_as_nobody_is_refused(posuto, srv, pw):
    """An inetd-mode process started as the user itself shares the lock
    file with the daemon: the mailbox the daemon holds is [IN-USE]."""
    def become():
        os.setgroups([])
        os.setgid(pw.pw_gid)
        os.setuid(pw.pw_uid)
    cfg = dict(srv.cfg["Pop3Server"], AllowPlaintextAuth=True)
    path = srv.workdir / "inetd.json"
    write_config(path, {"Pop3Server": cfg})
    os.chmod(path, 0o644)
    p = subprocess.run([posuto, "serve", "-c", str(path), "--inetd"],
                       input=b"USER user1@example.com\r\nPASS password\r\nQUIT\r\n",
                       capture_output=True, timeout=60, preexec_fn=become)
    err = p.stderr.decode(errors="replace")
    assert p.returncode == 0, err
    lines = p.stdout.split(b"\r\n")
    assert lines[2].startswith(b"-ERR [IN-USE]"), (p.stdout, err)


def test_unknown_run_as_user_is_refused(posuto, tmp_path):
    cfg = base_config(free_port(), tmp_path / "mail", RunAsUser="no-such-user-xyz")
    srv = Server(tmp_path, cfg, name="badrunas")
    with pytest.raises(RuntimeError) as e:
        srv.start(timeout=10)
    assert "no-such-user-xyz" in str(e.value)
