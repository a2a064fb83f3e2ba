"""`posuto user add|passwd|del|list|apop` (issue 11, user administration):
every command and each bad input, on the JSON config and on a
passwd-file, with a running server picking the change up without SIGHUP.
"""

import concurrent.futures
import copy
import json
import os
import pathlib
import poplib
import pty
import re
import select
import shutil
import subprocess
import tempfile
import time

import pytest

from posuto_testlib import (
    SHA256_PASSWORD, USER1, USER2, Maildir, apop_digest, base_config, free_port,
    posuto_bin, sample_message, write_config,
)

RELOAD_WAIT = 30  # s: the server polls once a second; the machine is loaded


def user(cfg_path, *args, stdin="", timeout=60):
    return subprocess.run([posuto_bin(), "user", *args, "-c", str(cfg_path)],
                          input=stdin.encode(), capture_output=True,
                          timeout=timeout)


def login_ok(port, name, password):
    try:
        p = poplib.POP3("127.0.0.1", port, timeout=10)
    except OSError:
        return False
    try:
        p.user(name)
        p.pass_(password)
        p.quit()
        return True
    except poplib.error_proto:
        try:
            p.quit()
        except Exception:
            pass
        return False


def wait_login(port, name, password, want=True):
    """Polls (bounded) until a login succeeds (or fails, want=False)."""
    deadline = time.monotonic() + RELOAD_WAIT
    for _ in range(400):
        if login_ok(port, name, password) == want:
            return True
        if time.monotonic() > deadline:
            break
        time.sleep(0.1)
    return False


def snapshot(path):
    p = pathlib.Path(path)
    st = p.stat()
    return p.read_bytes(), st.st_ino, st.st_mode


def no_temp_files(d):
    return [f for f in os.listdir(d) if ".tmp." in f]


# ------------------------------------------------------------ JSON config

def test_add_to_json_is_picked_up_without_sighup(servers, tmp_path):
    srv = servers.start()
    before = json.loads(srv.config_path.read_text())
    r = user(srv.config_path, "add", "alice@example.com", stdin="s3cret-Pw\n")
    assert r.returncode == 0, r.stderr
    assert wait_login(srv.port, "alice@example.com", "s3cret-Pw"), srv.log()
    assert not login_ok(srv.port, "alice@example.com", "wrong")
    assert "SIGHUP" not in srv.log()
    assert "config or passwd-file changed" in srv.log()
    after = json.loads(srv.config_path.read_text())
    # Everything else is as it was, keys in their order; the new user is
    # appended with a strong default scheme.
    added = after["Pop3Server"]["Users"].pop()
    assert after == before
    assert list(after["Pop3Server"]) == list(before["Pop3Server"])
    assert added["UserName"] == "alice@example.com"
    assert added["Password"].startswith("{SHA512-CRYPT}$6$"), added
    assert no_temp_files(tmp_path) == []


def test_add_with_scheme(servers):
    srv = servers.start()
    r = user(srv.config_path, "add", "argon@example.com", "--scheme", "argon2id",
             stdin="pw-argon\n")
    assert r.returncode == 0, r.stderr
    u = json.loads(srv.config_path.read_text())["Pop3Server"]["Users"][-1]
    assert u["Password"].startswith("{ARGON2ID}$argon2id$"), u
    assert wait_login(srv.port, "argon@example.com", "pw-argon"), srv.log()


def test_passwd_keeps_jumbodogx_hashtype_and_other_keys(servers, maildir):
    maildir.deliver(sample_message(1))
    cfg = servers.config(Expire="never")
    cfg["Pop3Server"]["Users"][0]["LoginDelay"] = 0
    srv = servers.start(cfg)
    before = json.loads(srv.config_path.read_text())
    assert login_ok(srv.port, USER1, "password")
    r = user(srv.config_path, "passwd", USER1, stdin="brand-new\n")
    assert r.returncode == 0, r.stderr
    assert wait_login(srv.port, USER1, "brand-new"), srv.log()
    assert not login_ok(srv.port, USER1, "password")
    after = json.loads(srv.config_path.read_text())
    u = after["Pop3Server"]["Users"][0]
    assert list(u) == ["UserName", "Password", "HashType", "LoginDelay"]
    assert u["HashType"] == "SHA256"
    assert re.fullmatch(r"[0-9a-f]{64}", u["Password"]) and u["Password"] != SHA256_PASSWORD
    # The parsed JSON minus the edited password is unchanged.
    before["Pop3Server"]["Users"][0]["Password"] = u["Password"]
    assert after == before
    assert list(after["Pop3Server"]) == list(before["Pop3Server"])
    # --scheme leaves the JumboDogX form.
    r = user(srv.config_path, "passwd", USER1, "--scheme", "SHA512-CRYPT", stdin="third\n")
    assert r.returncode == 0, r.stderr
    u = json.loads(srv.config_path.read_text())["Pop3Server"]["Users"][0]
    assert "HashType" not in u and u["Password"].startswith("{SHA512-CRYPT}")
    assert wait_login(srv.port, USER1, "third"), srv.log()


def test_del_keeps_mail_unless_purge(servers, tmp_path, maildir):
    maildir.deliver(sample_message(1))
    m2 = Maildir(tmp_path / "mail" / USER2)
    m2.deliver(sample_message(2))
    srv = servers.start()
    r = user(srv.config_path, "del", USER1)
    assert r.returncode == 0, r.stderr
    assert b"kept" in r.stdout
    assert wait_login(srv.port, USER1, "password", want=False), srv.log()
    assert maildir.files(), "mail was removed without --purge"
    r = user(srv.config_path, "del", USER2, "--purge")
    assert r.returncode == 0, r.stderr
    assert not m2.path.exists()
    assert wait_login(srv.port, USER2, "test", want=False), srv.log()
    assert maildir.files()
    assert json.loads(srv.config_path.read_text())["Pop3Server"]["Users"] == []


def test_purge_refused_while_a_session_holds_the_mailbox(servers, maildir):
    maildir.deliver(sample_message(1))
    srv = servers.start()
    p = poplib.POP3("127.0.0.1", srv.port, timeout=10)
    p.user(USER1)
    p.pass_("password")
    before = snapshot(srv.config_path)
    r = user(srv.config_path, "del", USER1, "--purge")
    assert r.returncode == 1
    assert b"in use" in r.stderr, r.stderr
    assert snapshot(srv.config_path) == before
    assert maildir.files()
    assert p.stat()[0] == 1
    p.quit()


def test_purge_refuses_what_is_not_a_mailbox(servers, tmp_path):
    home = tmp_path / "mail" / USER1
    home.mkdir(parents=True)
    (home / "notes.txt").write_text("not mail")
    srv = servers.start()
    before = snapshot(srv.config_path)
    r = user(srv.config_path, "del", USER1, "--purge")
    assert r.returncode == 1
    assert b"neither a Maildir nor an emldir" in r.stderr, r.stderr
    assert snapshot(srv.config_path) == before
    assert (home / "notes.txt").exists()


def test_purge_never_follows_symlinks(servers, tmp_path):
    elsewhere = Maildir(tmp_path / "elsewhere")
    elsewhere.deliver(sample_message(1))
    (tmp_path / "mail").mkdir()
    os.symlink(elsewhere.path, tmp_path / "mail" / USER1)
    srv = servers.start()
    r = user(srv.config_path, "del", USER1, "--purge")
    assert r.returncode == 1
    assert b"symbolic link" in r.stderr, r.stderr
    assert elsewhere.files()


def test_list_counts_and_sizes(servers, tmp_path, maildir):
    m1 = [sample_message(i) for i in range(3)]
    for m in m1:
        maildir.deliver(m)
    srv = servers.start()
    r = user(srv.config_path, "list")
    assert r.returncode == 0, r.stderr
    rows = {l.split()[0]: l.split() for l in r.stdout.decode().splitlines()[1:]}
    wire = sum(len(m.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")) for m in m1)
    assert rows[USER1][1:] == ["config", "SHA256.HEX", "no", "3", str(wire)]
    assert rows[USER2][1:] == ["config", "SHA512.HEX", "no", "0", "0"]
    # A mailbox a session holds is "in use", not opened behind its back.
    p = poplib.POP3("127.0.0.1", srv.port, timeout=10)
    p.user(USER1)
    p.pass_("password")
    r = user(srv.config_path, "list")
    assert r.returncode == 0, r.stderr
    line = [l for l in r.stdout.decode().splitlines() if l.startswith(USER1)][0]
    assert "in use" in line
    p.quit()


def test_apop_json(servers):
    srv = servers.start()
    r = user(srv.config_path, "apop", USER1, stdin="tanstaaf\n")
    assert r.returncode == 0, r.stderr
    u = json.loads(srv.config_path.read_text())["Pop3Server"]["Users"][0]
    assert u["ApopSecret"] == "tanstaaf"
    ok = False
    deadline = time.monotonic() + RELOAD_WAIT
    for _ in range(400):
        p = poplib.POP3("127.0.0.1", srv.port, timeout=10)
        try:
            p.apop(USER1, "tanstaaf")
            ok = True
        except poplib.error_proto:
            pass
        p.quit()
        if ok or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert ok, srv.log()
    r = user(srv.config_path, "apop", USER1, "--remove")
    assert r.returncode == 0, r.stderr
    assert "ApopSecret" not in json.loads(srv.config_path.read_text())["Pop3Server"]["Users"][0]


# ------------------------------------------------------------ passwd-file

PASSWD_HEAD = "# posuto users\n\n"


def passwd_setup(tmp_path, port=None):
    pf = tmp_path / "users.passwd"
    pf.write_text(PASSWD_HEAD + "bob@example.com:{PLAIN}bobpw::::::login_delay=0\n")
    os.chmod(pf, 0o600)
    cfg = base_config(port or free_port(), tmp_path / "mail", PasswdFile=str(pf))
    return pf, cfg


def test_passwd_file_every_command(servers, tmp_path):
    pf, cfg = passwd_setup(tmp_path)
    srv = servers.start(cfg)
    json_before = srv.config_path.read_bytes()
    # add goes to the passwd-file when there is one
    r = user(srv.config_path, "add", "carol@example.com", stdin="carol-pw\n")
    assert r.returncode == 0, r.stderr
    text = pf.read_text()
    assert text.startswith(PASSWD_HEAD + "bob@example.com:{PLAIN}bobpw::::::login_delay=0\n")
    assert re.search(r"^carol@example\.com:\{SHA512-CRYPT\}\$6\$[^:\n]+\n\Z", text, re.M), text
    assert oct(pf.stat().st_mode & 0o777) == "0o600"
    assert srv.config_path.read_bytes() == json_before
    assert wait_login(srv.port, "carol@example.com", "carol-pw"), srv.log()
    # passwd keeps the other fields of the line
    r = user(srv.config_path, "passwd", "bob@example.com", stdin="bob-new\n")
    assert r.returncode == 0, r.stderr
    assert re.search(r"^bob@example\.com:\{PLAIN\}bob-new::::::login_delay=0$",
                     pf.read_text(), re.M), pf.read_text()
    assert wait_login(srv.port, "bob@example.com", "bob-new"), srv.log()
    assert not login_ok(srv.port, "bob@example.com", "bobpw")
    # apop: an extra field
    r = user(srv.config_path, "apop", "carol@example.com", stdin="c-apop\n")
    assert r.returncode == 0, r.stderr
    assert re.search(r"^carol@example\.com:\{SHA512-CRYPT\}[^:]+::::::apop=c-apop$",
                     pf.read_text(), re.M), pf.read_text()
    ok = False
    deadline = time.monotonic() + RELOAD_WAIT
    for _ in range(400):
        p = poplib.POP3("127.0.0.1", srv.port, timeout=10)
        try:
            p.apop("carol@example.com", "c-apop")
            ok = True
        except poplib.error_proto:
            pass
        p.quit()
        if ok or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert ok, srv.log()
    # list names the source
    r = user(srv.config_path, "list")
    assert r.returncode == 0, r.stderr
    rows = {l.split()[0]: l.split() for l in r.stdout.decode().splitlines()[1:]}
    assert rows["carol@example.com"][1:4] == ["passwd-file", "SHA512-CRYPT", "yes"]
    assert rows[USER1][1] == "config"
    # del
    r = user(srv.config_path, "del", "bob@example.com")
    assert r.returncode == 0, r.stderr
    assert "bob@example.com" not in pf.read_text()
    assert pf.read_text().startswith(PASSWD_HEAD)
    assert wait_login(srv.port, "bob@example.com", "bob-new", want=False), srv.log()
    # --to json overrides the default
    r = user(srv.config_path, "add", "dave@example.com", "--to", "json", stdin="dave-pw\n")
    assert r.returncode == 0, r.stderr
    assert "dave@example.com" not in pf.read_text()
    assert json.loads(srv.config_path.read_text())["Pop3Server"]["Users"][-1]["UserName"] == \
        "dave@example.com"
    assert wait_login(srv.port, "dave@example.com", "dave-pw"), srv.log()
    assert no_temp_files(tmp_path) == []


# ------------------------------------------------------------ bad input

@pytest.fixture(params=["json", "passwd-file"])
def target(request, tmp_path):
    """(config path, the file an edit of bob@example.com changes)."""
    if request.param == "json":
        cfg = base_config(free_port(), tmp_path / "mail")
        cfg["Pop3Server"]["Users"].append({"UserName": "bob@example.com",
                                           "Password": "{PLAIN}bobpw"})
        cp = write_config(tmp_path / "c.json", cfg)
        os.chmod(cp, 0o600)
        return pathlib.Path(cp), pathlib.Path(cp)
    pf, cfg = passwd_setup(tmp_path)
    cp = write_config(tmp_path / "c.json", cfg)
    os.chmod(cp, 0o600)
    return pathlib.Path(cp), pf


def both(cp, f):
    return snapshot(cp), snapshot(f)


def test_existing_user_refused(target):
    cp, f = target
    before = both(cp, f)
    for name in ("bob@example.com", USER1):
        r = user(cp, "add", name, stdin="x-pw\n")
        assert r.returncode == 1, r
        assert b"already exists" in r.stderr and b"nothing changed" in r.stderr
    assert both(cp, f) == before


@pytest.mark.parametrize("name", ["../etc", "a/b", "with space", ".hidden", "a:b", "x" * 300])
def test_invalid_name_refused(target, name):
    cp, f = target
    before = both(cp, f)
    r = user(cp, "add", name, stdin="x-pw\n")
    assert r.returncode == 1
    assert b"invalid user name" in r.stderr, r.stderr
    assert both(cp, f) == before


def test_unknown_user(target):
    cp, f = target
    before = both(cp, f)
    for args in (("passwd", "nobody"), ("del", "nobody"), ("apop", "nobody")):
        r = user(cp, *args, stdin="x-pw\n")
        assert r.returncode == 67, r
        assert b"no such user nobody" in r.stderr
    assert both(cp, f) == before


def test_read_only_file_refused(target):
    cp, f = target
    os.chmod(f, 0o400)
    before = both(cp, f)
    for args in (("passwd", "bob@example.com"), ("del", "bob@example.com"),
                 ("apop", "bob@example.com")):
        r = user(cp, *args, stdin="x-pw\n")
        assert r.returncode == 1, r
        assert b"read-only" in r.stderr and b"not changed" in r.stderr, r.stderr
    assert both(cp, f) == before
    assert no_temp_files(cp.parent) == []


def test_read_only_directory_refused(tmp_path):
    d = tmp_path / "etc"
    d.mkdir()
    pf, cfg = passwd_setup(d)
    cp = pathlib.Path(write_config(d / "c.json", cfg))
    os.chmod(cp, 0o600)
    os.chmod(d, 0o555)
    try:
        before = both(cp, pf)
        r = user(cp, "add", "new@example.com", stdin="x-pw\n")
        assert r.returncode == 1
        assert b"read-only" in r.stderr, r.stderr
        assert both(cp, pf) == before
        assert os.listdir(d) == sorted(os.listdir(d)) and len(os.listdir(d)) == 2
    finally:
        os.chmod(d, 0o755)


def test_empty_and_mismatched_passwords(target):
    cp, f = target
    before = both(cp, f)
    r = user(cp, "add", "new@example.com", stdin="\n")
    assert r.returncode == 1 and b"empty password" in r.stderr
    r = user(cp, "add", "new@example.com", stdin="")
    assert r.returncode == 1
    # On a terminal the password is asked twice; different answers refuse.
    out, rc = user_on_tty(cp, ["add", "new@example.com"], ["first-pw", "other-pw"])
    assert rc == 1, out
    assert b"do not match" in out
    assert both(cp, f) == before
    # ... the same answer twice adds the user, without echoing it.
    out, rc = user_on_tty(cp, ["add", "new@example.com"], ["same-pw", "same-pw"])
    assert rc == 0, out
    assert b"same-pw" not in out
    assert b"Retype password" in out


def user_on_tty(cp, args, answers):
    """Runs posuto user on a pseudo-terminal, answering each prompt."""
    pid, fd = pty.fork()
    if pid == 0:
        try:
            os.execv(posuto_bin(), [posuto_bin(), "user", *args, "-c", str(cp)])
        finally:
            os._exit(127)
    out = b""
    pending = list(answers)
    sent = 0
    deadline = time.monotonic() + 60
    for _ in range(10000):
        if time.monotonic() > deadline:
            os.kill(pid, 9)
            break
        r, _, _ = select.select([fd], [], [], 0.5)
        if not r:
            continue
        try:
            chunk = os.read(fd, 1024)
        except OSError:
            break
        if not chunk:
            break
        out += chunk
        # One answer per prompt shown ("Password: ", "Retype password: ").
        if pending and out.lower().count(b"password: ") > sent:
            os.write(fd, pending.pop(0).encode() + b"\n")
            sent += 1
    _, status = os.waitpid(pid, 0)
    os.close(fd)
    return out, os.waitstatus_to_exitcode(status)


def test_to_passwd_file_without_one(tmp_path):
    cp = pathlib.Path(write_config(tmp_path / "c.json", base_config(free_port(), tmp_path / "m")))
    before = snapshot(cp)
    r = user(cp, "add", "new@example.com", "--to", "passwd-file", stdin="x-pw\n")
    assert r.returncode == 1 and b"no PasswdFile" in r.stderr
    assert snapshot(cp) == before


def test_broken_config_is_not_edited(tmp_path):
    cp = tmp_path / "c.json"
    cp.write_text('{"Pop3Server": {"Port": "x",')
    r = user(cp, "add", "new@example.com", stdin="x-pw\n")
    assert r.returncode == 78
    assert cp.read_text() == '{"Pop3Server": {"Port": "x",'


@pytest.fixture
def public_dir():
    d = pathlib.Path(tempfile.mkdtemp(prefix="posuto-public-"))
    os.chmod(d, 0o755)
    yield d
    shutil.rmtree(d, ignore_errors=True)


def test_plaintext_into_world_readable_file_refused(public_dir):
    """The permission rules of posuto.json(5) keep holding for the new
    file: it has the old one's mode, and a plaintext secret in a file
    everyone can read is refused as the server would refuse it."""
    cp = pathlib.Path(write_config(public_dir / "c.json",
                                   base_config(free_port(), public_dir / "mail")))
    os.chmod(cp, 0o644)
    before = snapshot(cp)
    r = user(cp, "add", "p@example.com", "--scheme", "PLAIN", stdin="plain-pw\n")
    assert r.returncode == 1, r
    assert b"everyone on this host can read" in r.stderr, r.stderr
    assert str(cp).encode() in r.stderr and b".tmp." not in r.stderr
    r = user(cp, "apop", USER1, stdin="secret\n")
    assert r.returncode == 1, r
    assert snapshot(cp) == before
    r = user(cp, "add", "h@example.com", stdin="hashed-pw\n")
    assert r.returncode == 0, r.stderr
    assert cp.stat().st_mode & 0o777 == 0o644


# ------------------------------------------------------------ concurrency

@pytest.mark.parametrize("where", ["json", "passwd-file"])
def test_parallel_adds_lose_nothing(tmp_path, where):
    if where == "json":
        cfg = base_config(free_port(), tmp_path / "mail")
    else:
        _pf, cfg = passwd_setup(tmp_path)
    cp = pathlib.Path(write_config(tmp_path / "c.json", cfg))
    os.chmod(cp, 0o600)
    names = ["par%02d@example.com" % i for i in range(20)]
    with concurrent.futures.ThreadPoolExecutor(max_workers=20) as ex:
        results = list(ex.map(lambda n: user(cp, "add", n, "--scheme", "SHA256-CRYPT",
                                             stdin="pw-" + n + "\n", timeout=120), names))
    for n, r in zip(names, results):
        assert r.returncode == 0, (n, r.stderr)
    r = user(cp, "list")
    assert r.returncode == 0, r.stderr
    listed = {l.split()[0] for l in r.stdout.decode().splitlines()[1:]}
    assert set(names) <= listed
    assert no_temp_files(tmp_path) == []
    chk = subprocess.run([posuto_bin(), "check-config", "-c", str(cp)], capture_output=True,
                         timeout=60)
    assert chk.returncode == 0, chk.stderr


def test_user_help(tmp_path):
    r = subprocess.run([posuto_bin(), "user", "--help"], capture_output=True, timeout=30)
    assert r.returncode == 0 and b"posuto user add NAME" in r.stdout
    r = subprocess.run([posuto_bin(), "user", "frob"], capture_output=True, timeout=30)
    assert r.returncode == 64
    r = subprocess.run([posuto_bin(), "user", "add"], capture_output=True, timeout=30)
    assert r.returncode == 64 and b"needs a user NAME" in r.stderr
    r = subprocess.run([posuto_bin(), "--help"], capture_output=True, timeout=30)
    assert b"posuto user" in r.stdout
