"""Fault injection (issue 14): Pop3Server.Faults[] and `posuto chaos`.  Each
fault is seen on the wire by real clients (poplib, curl, fetchmail), logged,
and leaves the mailbox exactly as it was."""

import json
import poplib
import re
import socket
import subprocess
import time

import pytest

from posuto_testlib import (USER1, USER2, free_port, message_of_wire_size,
                            posuto_bin, sample_message)

PASSWORD = "password"


@pytest.fixture
def mail(maildir):
    msgs = [sample_message(0), message_of_wire_size(1, 60000), sample_message(2)]
    for m in msgs:
        maildir.deliver(m)
    return maildir


def snapshot(maildir):
    """Every file of the mailbox with its contents: a fault changes none."""
    out = {}
    for sub in ("new", "cur"):
        for p in sorted((maildir.path / sub).iterdir()):
            out[p.name.split(":")[0]] = p.read_bytes()
    return out


def start(servers, faults=(), proxy=False, **extra):
    cfg = servers.config(Faults=list(faults), **extra)
    if proxy:
        p = cfg["Pop3Server"]
        p["Listen"] = [{"Address": "127.0.0.1", "Port": p.pop("Port")},
                       {"Address": "127.0.0.1", "Port": free_port(),
                        "ProxyTrusted": "127.0.0.1"}]
        del p["BindAddress"]
    return servers.start(cfg)


def pop(srv, user=USER1, password=PASSWORD):
    c = poplib.POP3(srv.host, srv.port, timeout=30)
    c.user(user)
    c.pass_(password)
    return c


def login_error(srv):
    with pytest.raises(poplib.error_proto) as e:
        pop(srv)
    return e.value.args[0]


def wait_log(srv, pattern, timeout=20):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if re.search(pattern, srv.log()):
            return
        time.sleep(0.1)
    raise AssertionError("no %r in the log:\n%s" % (pattern, srv.log()))


def fetchmail(srv, tmp_path, keep=True):
    rc = tmp_path / "fetchmailrc"
    rc.write_text('poll 127.0.0.1 protocol pop3 port %d user "%s" password "%s" '
                  'is nobody mda "cat > /dev/null" sslproto \'\' %s\n'
                  % (srv.port, USER1, PASSWORD, "keep" if keep else ""))
    rc.chmod(0o600)
    return subprocess.run(["fetchmail", "-f", str(rc), "--nosyslog", "-v",
                           "--pidfile", str(tmp_path / "fm.pid")],
                          capture_output=True, text=True, timeout=120,
                          env={"HOME": str(tmp_path), "PATH": "/usr/bin:/bin"})


def curl(srv, path="/2", timeout=60):
    return subprocess.run(["curl", "-sS", "--max-time", str(timeout), "-u",
                           "%s:%s" % (USER1, PASSWORD),
                           "pop3://127.0.0.1:%d%s" % (srv.port, path)],
                          capture_output=True, timeout=timeout + 30)


# ------------------------------------------------------------- login faults

def test_in_use(servers, mail, tmp_path):
    before = snapshot(mail)
    srv = start(servers, [{"User": USER1, "Kind": "in-use"}])
    assert login_error(srv).startswith(b"-ERR [IN-USE]")
    r = fetchmail(srv, tmp_path)
    assert r.returncode != 0 and "IN-USE" in r.stdout + r.stderr
    assert curl(srv).returncode != 0
    wait_log(srv, r"fault=in-use at login")
    # Someone else is not affected.
    c = pop(srv, USER2, "test")
    c.quit()
    assert snapshot(mail) == before


def test_temp_fail_at_login_and_on_the_nth_command(servers, mail):
    srv = start(servers, [{"User": USER1, "Kind": "temp-fail"}])
    assert login_error(srv).startswith(b"-ERR [SYS/TEMP]")
    srv.stop()
    before = snapshot(mail)
    srv = start(servers, [{"User": USER1, "Kind": "temp-fail", "Command": 2}])
    c = pop(srv)
    assert c.stat()[0] == 3                     # command 1
    with pytest.raises(poplib.error_proto) as e:
        c.list()                                # command 2
    assert e.value.args[0].startswith(b"-ERR [SYS/TEMP]")
    assert len(c.list()[1]) == 3                # command 3: fine again
    c.dele(1)
    c.rset()
    c.quit()
    wait_log(srv, r"fault=temp-fail command 2 after login")
    assert snapshot(mail) == before


def test_login_delay(servers, mail):
    srv = start(servers, [{"User": USER1, "Kind": "login-delay", "Seconds": 900}])
    r = login_error(srv)
    assert r.startswith(b"-ERR [LOGIN-DELAY]") and b"900" in r
    wait_log(srv, r"fault=login-delay at login: 900 s")


# --------------------------------------------------------- transfer faults

def test_drop_during_retr(servers, mail, tmp_path):
    before = snapshot(mail)
    srv = start(servers, [{"User": USER1, "Kind": "drop", "AfterBytes": 5000}])
    c = pop(srv)
    c.dele(1)                       # marked, and must not be removed
    with pytest.raises((poplib.error_proto, EOFError, OSError)):
        c.retr(2)
    # curl takes the end of the connection for the end of the message
    # (exit 0): it got the start of the message, and no more.
    r = curl(srv)
    assert 0 < len(r.stdout) <= 5000, len(r.stdout)
    wait_log(srv, r"fault=drop connection closed 5000 octets into a message")
    assert snapshot(mail) == before
    assert "reason=fault-drop" in srv.log()


def test_throttle(servers, mail):
    srv = start(servers, [{"User": USER1, "Kind": "throttle",
                           "BytesPerSecond": 20000}])
    c = pop(srv)
    t0 = time.monotonic()
    lines = c.retr(2)[1]
    took = time.monotonic() - t0
    c.quit()
    # 60 kB at 20 kB/s: a lower bound only (a busy machine is slower).
    assert took >= 1.5, took
    assert len(b"\r\n".join(lines)) > 59000
    wait_log(srv, r"fault=throttle 20000 bytes/s")


def test_delay_keeps_order_of_pipelined_replies(servers, mail):
    srv = start(servers, [{"User": USER1, "Kind": "delay", "Milliseconds": 300}])
    s = socket.create_connection((srv.host, srv.port), timeout=30)
    f = s.makefile("rb")
    assert f.readline().startswith(b"+OK")
    s.sendall(b"USER %s\r\nPASS %s\r\n" % (USER1.encode(), PASSWORD.encode()))
    assert f.readline().startswith(b"+OK")
    assert f.readline().startswith(b"+OK")
    t0 = time.monotonic()
    s.sendall(b"NOOP\r\nSTAT\r\nLIST 1\r\nQUIT\r\n")
    replies = [f.readline() for _ in range(4)]
    took = time.monotonic() - t0
    assert replies[0].startswith(b"+OK")
    assert replies[1].startswith(b"+OK 3 ")
    assert replies[2].startswith(b"+OK 1 ")
    assert replies[3].startswith(b"+OK")
    assert took >= 4 * 0.3 * 0.9, took
    s.close()


# ---------------------------------------------------------- listing faults

def test_wrong_size(servers, mail, tmp_path):
    srv = start(servers, [{"User": USER1, "Kind": "wrong-size", "Message": 1}])
    c = pop(srv)
    sizes = dict(l.split() for l in c.list()[1])
    one = int(c.list(1).split()[2])
    c.quit()
    srv.stop()
    srv2 = start(servers)
    c = pop(srv2)
    true_sizes = dict(l.split() for l in c.list()[1])
    c.quit()
    assert int(sizes[b"1"]) == int(true_sizes[b"1"]) + 1 == one
    assert sizes[b"2"] == true_sizes[b"2"] and sizes[b"3"] == true_sizes[b"3"]


def test_uidl_drift(servers, mail):
    srv = start(servers, [{"User": USER1, "Kind": "uidl-drift", "Message": 2}])
    seen = []
    for _ in range(2):
        c = pop(srv)
        seen.append(dict(l.split() for l in c.uidl()[1]))
        one = c.uidl(2).split()[2]
        c.quit()
        assert one == seen[-1][b"2"]
        assert 1 <= len(one) <= 70
    assert seen[0][b"2"] != seen[1][b"2"]
    assert seen[0][b"1"] == seen[1][b"1"] and seen[0][b"3"] == seen[1][b"3"]
    wait_log(srv, r"fault=uidl-drift message 2 is ")


# -------------------------------------------------- scope, CLI, config

def test_remote_clients_are_spared_unless_enabled(servers, mail):
    """Behind a trusted proxy the client is 192.0.2.7: not on this machine."""
    def via_proxy(srv):
        s = socket.create_connection((srv.host, srv.endpoints()[1][1]),
                                     timeout=30)
        s.sendall(b"PROXY TCP4 192.0.2.7 127.0.0.1 40000 110\r\n")
        f = s.makefile("rb")
        assert f.readline().startswith(b"+OK")
        s.sendall(b"USER %s\r\nPASS %s\r\nQUIT\r\n" % (USER1.encode(),
                                                      PASSWORD.encode()))
        f.readline()
        r = f.readline()
        s.close()
        return r

    fault = [{"User": USER1, "Kind": "in-use"}]
    srv = start(servers, fault, proxy=True, AllowPlaintextAuth=True)
    assert via_proxy(srv).startswith(b"+OK")
    assert login_error(srv).startswith(b"-ERR [IN-USE]")
    srv.stop()
    srv = start(servers, fault, proxy=True, AllowPlaintextAuth=True,
                FaultsForRemoteClients=True)
    assert via_proxy(srv).startswith(b"-ERR [IN-USE]")


def chaos(srv, *args):
    return subprocess.run([posuto_bin(), "chaos", "-c", str(srv.config_path),
                           *args], capture_output=True, text=True, timeout=60)


def test_chaos_cli_switches_a_running_server(servers, mail):
    srv = start(servers)
    assert pop(srv).quit()
    r = chaos(srv, USER1, "in-use")
    assert r.returncode == 0, r.stderr
    for _ in range(100):
        try:
            pop(srv).quit()
        except poplib.error_proto as e:
            assert e.args[0].startswith(b"-ERR [IN-USE]")
            break
        time.sleep(0.2)
    else:
        raise AssertionError("the fault never took effect")
    r = chaos(srv, "list")
    assert r.returncode == 0 and "%s in-use" % USER1 in r.stdout
    r = chaos(srv, USER1, "drop", "100")
    assert r.returncode == 0
    assert "drop AfterBytes=100" in chaos(srv).stdout
    r = chaos(srv, USER1, "clear")
    assert r.returncode == 0 and "removed 2 faults" in r.stdout
    for _ in range(100):
        try:
            pop(srv).quit()
            break
        except poplib.error_proto:
            time.sleep(0.2)
    else:
        raise AssertionError("the fault never went away")


@pytest.mark.parametrize("args,rc", [
    (["nobody", "explode"], 64),
    ([USER1, "drop"], 64),            # needs its number
    ([USER1, "in-use", "3"], 64),     # takes none
    ([USER1, "delay", "-1"], 64),
    ([USER1, "delay", "999999"], 1),  # out of range: the server would refuse
])
def test_chaos_cli_bad_input_changes_nothing(servers, mail, args, rc):
    srv = start(servers)
    before = srv.config_path.read_bytes()
    r = chaos(srv, *args)
    assert r.returncode == rc, (r.stdout, r.stderr)
    assert r.stderr
    assert srv.config_path.read_bytes() == before


def test_fault_config_errors_name_file_line_and_key(servers, tmp_path):
    cfg = servers.config(Faults=[{"User": USER1, "Kind": "drop"},
                                 {"User": USER1, "Kind": "delay",
                                  "Milliseconds": 5, "Message": 2},
                                 {"User": USER1, "Kind": "melt"}])
    path = tmp_path / "faults.json"
    path.write_text(json.dumps(cfg, indent=2))
    r = subprocess.run([posuto_bin(), "check-config", "-c", str(path)],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 78
    assert re.search(r"faults\.json:\d+:\d+: Pop3Server\.Faults\[0\]\.Kind: "
                     r"Kind \"drop\" needs AfterBytes", r.stderr), r.stderr
    assert re.search(r"faults\.json:\d+:\d+: Pop3Server\.Faults\[1\]\.Message: "
                     r"not used by Kind \"delay\"", r.stderr), r.stderr
    assert re.search(r"Pop3Server\.Faults\[2\]\.Kind: must be one of", r.stderr), \
        r.stderr


# ------------------------------------------- every fault, every client
#
# For each fault: curl and fetchmail (and mpop where it applies) against
# the faulted user (poplib is above), what each got on the wire, the fault
# in the log, and the mailbox unchanged afterwards.

def fetchmail_keep(srv, tmp_path, tag, uidl=False):
    """fetchmail with keep (and uidl: remember what it fetched); returns
    (result, number of messages it delivered)."""
    home = tmp_path / ("fm-" + tag)
    home.mkdir(exist_ok=True)
    out = home / "out"
    out.mkdir(exist_ok=True)
    mda = home / "mda.sh"
    mda.write_text('#!/bin/sh\ncat > "$(mktemp %s/m.XXXXXX)"\n' % out)
    mda.chmod(0o755)
    rc = home / "rc"
    rc.write_text('set no syslog\npoll 127.0.0.1 with proto POP3 port %d %s\n'
                  '  user "%s" there with password "%s" is "root" here\n'
                  '  options keep sslproto \'\'\n  mda "%s"\n'
                  % (srv.port, "uidl" if uidl else "", USER1, PASSWORD, mda))
    rc.chmod(0o600)
    r = subprocess.run(["fetchmail", "-f", str(rc), "--nosyslog", "--nodetach",
                        "-v", "--idfile", str(home / "ids"), "--pidfile",
                        str(home / "pid")], capture_output=True, text=True,
                       timeout=180, env={"HOME": str(home), "PATH": "/usr/bin:/bin"})
    return r, len(list(out.iterdir()))


def mpop_keep(srv, tmp_path, tag):
    """mpop with keep and only-new (remembers UIDLs); returns (result,
    messages it delivered)."""
    box = tmp_path / ("mpop-%s.mbox" % tag)
    if not box.exists():
        box.write_bytes(b"")
        box.chmod(0o600)
    size0 = box.read_bytes().count(b"\nFrom ") + box.read_bytes().startswith(b"From ")
    r = subprocess.run(["mpop", "--host=127.0.0.1", "--port=%d" % srv.port,
                        "--user=" + USER1, "--passwordeval=echo " + PASSWORD,
                        "--auth=user", "--tls=off", "--keep=on", "--only-new=on",
                        "--uidls-file=" + str(tmp_path / ("mpop-%s.uidls" % tag)),
                        "--delivery=mbox," + str(box)],
                       capture_output=True, text=True, timeout=120)
    n = box.read_bytes().count(b"\nFrom ") + box.read_bytes().startswith(b"From ")
    return r, n - size0


FAULTS = {
    "in-use": {"Kind": "in-use"},
    "temp-fail": {"Kind": "temp-fail"},
    "login-delay": {"Kind": "login-delay", "Seconds": 600},
    "throttle": {"Kind": "throttle", "BytesPerSecond": 40000},
    "drop": {"Kind": "drop", "AfterBytes": 3000},
    "delay": {"Kind": "delay", "Milliseconds": 200},
    "wrong-size": {"Kind": "wrong-size", "Message": 2},
    "uidl-drift": {"Kind": "uidl-drift", "Message": 2},
}


@pytest.mark.parametrize("kind", sorted(FAULTS))
def test_every_fault_seen_by_curl_fetchmail_and_mpop(servers, mail, tmp_path, kind):
    before = snapshot(mail)
    srv = start(servers, [dict(FAULTS[kind], User=USER1)])
    list_ok = curl(srv, "/")
    t0 = time.monotonic()
    retr = curl(srv, "/2")
    retr_took = time.monotonic() - t0
    fm, fetched = fetchmail_keep(srv, tmp_path, "a", uidl=True)
    fm2, fetched2 = fetchmail_keep(srv, tmp_path, "a", uidl=True)
    fm_text = fm.stdout + fm.stderr
    # mpop where it applies: the login faults and the UIDL it keeps
    if kind in ("in-use", "temp-fail", "login-delay", "uidl-drift"):
        mp, mp_got = mpop_keep(srv, tmp_path, "a")
        mp2, mp_got2 = mpop_keep(srv, tmp_path, "a")
        mp_text = mp.stdout + mp.stderr
    true_size = len(before[sorted(before)[1]].replace(b"\r\n", b"\n").replace(b"\n", b"\r\n"))
    if kind in ("in-use", "temp-fail", "login-delay"):
        code = {"in-use": "IN-USE", "temp-fail": "SYS/TEMP",
                "login-delay": "LOGIN-DELAY"}[kind]
        assert list_ok.returncode != 0 and retr.returncode != 0
        assert fm.returncode != 0 and code in fm_text, fm_text
        assert fetched == 0
        assert mp.returncode != 0 and code in mp_text and mp_got == 0, mp_text
    elif kind == "drop":
        assert list_ok.returncode == 0
        assert 0 < len(retr.stdout) <= 3000
        # fetchmail sees the connection end inside message 2
        assert fm.returncode != 0, fm_text
    elif kind == "throttle":
        assert len(retr.stdout) > 59000
        assert retr_took >= 1.0, retr_took          # 60 kB at 40 kB/s
        assert fm.returncode == 0 and fetched == 3, fm_text
    elif kind == "delay":
        assert retr.returncode == 0 and len(retr.stdout) > 59000
        # RETR and QUIT each 200 ms late (faults start at login): a lower
        # bound only
        assert retr_took >= 0.35, retr_took
        assert fm.returncode == 0 and fetched == 3, fm_text
    elif kind == "wrong-size":
        sizes = dict(l.split() for l in list_ok.stdout.decode().splitlines())
        assert int(sizes["2"]) == true_size + 1, (sizes, true_size)
        assert ("(%d octets)" % (true_size + 1)) in fm_text, fm_text
    elif kind == "uidl-drift":
        assert fm.returncode == 0 and fetched == 3, fm_text
        # The second run finds message 2 under a new UIDL: fetched again
        # (fetchmail's "uidl" keeps the others).
        assert fetched2 == 4, fm2.stdout + fm2.stderr
        assert mp.returncode == 0 and mp_got == 3, mp_text
        assert mp2.returncode == 0 and mp_got2 == 1, mp2.stdout + mp2.stderr
    wait_log(srv, r"fault=%s " % kind)
    srv.stop()
    assert snapshot(mail) == before
