"""posuto deliver (issue 11): exit codes, trace headers, CRLF files with
,S= and ,W=, several recipients, mbox, privilege drop, disk full, kill -9
and 1,000 parallel deliveries against a popping client."""

import concurrent.futures
import os
import pathlib
import poplib
import random
import re
import shutil
import signal
import subprocess
import tempfile
import time

import pytest

from posuto_testlib import (Maildir, Pop3, base_config, dot_stuff, free_port, posuto_bin,
                            write_config)

PW = "{PLAIN}secret"


def cfg_for(tmp, users, **extra):
    c = base_config(free_port(), tmp / "mail", users=[
        dict({"UserName": u, "Password": PW}, **kw) for u, kw in users.items()],
        **extra)
    return write_config(tmp / "posuto.json", c)


def deliver(conf, rcpts, data, sender=None, env=None, extra=()):
    args = [posuto_bin(), "deliver", "-c", conf, *extra]
    if sender is not None:
        args += ["-f", sender]
    e = dict(os.environ)
    e.pop("SENDER", None)
    e.update(env or {})
    p = subprocess.run(args + list(rcpts), input=data, capture_output=True,
                       timeout=60, env=e)
    return p.returncode, p.stderr.decode(errors="replace")


def pop_all(port, user, dele=False):
    c = poplib.POP3("127.0.0.1", port, timeout=30)
    c.user(user)
    c.pass_("secret")
    n = len(c.list()[1])
    out = []
    for i in range(1, n + 1):
        resp, lines, octets = c.retr(i)
        out.append(b"\r\n".join(lines) + b"\r\n")
        if dele:
            c.dele(i)
    c.quit()
    return out


MSG = (b"From sender@example.org Mon Jan  1 00:00:00 2024\n"
       b"From: a@example.org\nSubject: hi\nMessage-ID: <1@t>\n\nbody\nline 2\n")


def test_maildir_crlf_sizes_and_trace_headers(tmp_path):
    conf = cfg_for(tmp_path, {"bob": {}}, MailboxFormat="maildir")
    (tmp_path / "mail" / "bob").mkdir(parents=True)
    rc, err = deliver(conf, ["bob@example.com"], MSG, sender="s@example.org")
    assert rc == 0, err
    files = list((tmp_path / "mail" / "bob" / "new").iterdir())
    assert len(files) == 1
    data = files[0].read_bytes()
    # the From_ line went, trace headers came, every line end is CRLF
    assert data == (b"Return-Path: <s@example.org>\r\nDelivered-To: <bob@example.com>\r\n"
                    b"From: a@example.org\r\nSubject: hi\r\nMessage-ID: <1@t>\r\n\r\n"
                    b"body\r\nline 2\r\n")
    m = re.search(r",S=(\d+),W=(\d+)", files[0].name)
    assert m and int(m.group(1)) == int(m.group(2)) == len(data)
    # a '.' line: stored right; W= is its LIST size all the same (as
    # Dovecot's), the stuffing is the wire cache's business
    rc, err = deliver(conf, ["bob"], b"Subject: d\n\n.dot\n")
    assert rc == 0, err
    names = sorted(f.name for f in (tmp_path / "mail" / "bob" / "new").iterdir())
    assert all(re.search(r",S=(\d+),W=\1$", n) for n in names), names


def test_prepended_trace_not_doubled(tmp_path):
    """What Postfix local(8) prepends for mailbox_command (and pipe(8)
    with flags=DRF): its Return-Path and this recipient's Delivered-To are
    not added a second time; another recipient's Delivered-To (a forward),
    a Return-Path other than the envelope sender and one further down are
    no reason to skip ours."""
    conf = cfg_for(tmp_path, {"bob": {}}, MailboxFormat="maildir")
    (tmp_path / "mail" / "bob").mkdir(parents=True)
    pre = (b"From s@example.org  Mon Jan  1 00:00:00 2024\n"
           b"Return-Path: <s@example.org>\nX-Original-To: bob@example.com\n"
           b"Delivered-To: bob@example.com\nReceived: by mx\n\tfor x;\n"
           b"Subject: hi\n\nbody\n")
    rc, err = deliver(conf, ["bob@example.com"], pre, sender="s@example.org")
    assert rc == 0, err
    rc, err = deliver(conf, ["bob@example.com"],
                      b"Return-Path: <forged@example.org>\n"
                      b"Delivered-To: <alice@example.com>\nSubject: fwd\n"
                      b"Return-Path: <late@example.org>\n\nbody\n", sender="s@example.org")
    assert rc == 0, err
    got = sorted((f.read_bytes() for f in (tmp_path / "mail" / "bob" / "new").iterdir()),
                 key=lambda d: b"fwd" in d)
    assert got[0] == pre.split(b"\n", 1)[1].replace(b"\n", b"\r\n")
    assert got[1] == (b"Return-Path: <s@example.org>\r\nDelivered-To: <bob@example.com>\r\n"
                      b"Return-Path: <forged@example.org>\r\n"
                      b"Delivered-To: <alice@example.com>\r\nSubject: fwd\r\n"
                      b"Return-Path: <late@example.org>\r\n\r\nbody\r\n")


def test_sender_from_env_and_default(tmp_path):
    conf = cfg_for(tmp_path, {"bob": {}}, MailboxFormat="maildir")
    (tmp_path / "mail" / "bob").mkdir(parents=True)
    assert deliver(conf, ["bob"], b"S: 1\n\nx\n", env={"SENDER": "env@x.org"})[0] == 0
    assert deliver(conf, ["bob"], b"S: 2\n\nx\n")[0] == 0
    got = sorted(f.read_bytes() for f in (tmp_path / "mail" / "bob" / "new").iterdir())
    heads = sorted(g.split(b"\r\n")[0] for g in got)
    assert heads == [b"Return-Path: <>", b"Return-Path: <env@x.org>"]
    # -a names Delivered-To
    assert deliver(conf, ["bob"], b"S: 3\n\nx\n", extra=["-a", "Bob@Example.COM"])[0] == 0
    assert any(b"Delivered-To: <Bob@Example.COM>\r\n" in f.read_bytes()
               for f in (tmp_path / "mail" / "bob" / "new").iterdir())


@pytest.mark.parametrize("rcpts,expect,stored", [
    (["nosuch"], 67, []),
    (["bob", "nosuch"], 67, ["bob"]),
    (["bob+ext@example.com", "alice@example.com"], 0, ["bob", "alice"]),
    (["../bob"], 67, []),
    (["bob/new"], 67, []),
])
def test_recipients(tmp_path, rcpts, expect, stored):
    conf = cfg_for(tmp_path, {"bob": {}, "alice": {}}, MailboxFormat="maildir")
    for u in ("bob", "alice"):
        (tmp_path / "mail" / u).mkdir(parents=True)
    rc, err = deliver(conf, rcpts, b"Subject: r\n\nx\n")
    assert rc == expect, err
    for u in ("bob", "alice"):
        new = tmp_path / "mail" / u / "new"
        n = len(list(new.iterdir())) if new.exists() else 0
        assert n == (1 if u in stored else 0), u


@pytest.mark.parametrize("data,expect", [
    (b"", 65), (b"Subject: x\n\na\0b\n", 65), (b"From only the From_ line\n", 65)])
def test_malformed(tmp_path, data, expect):
    conf = cfg_for(tmp_path, {"bob": {}}, MailboxFormat="maildir")
    (tmp_path / "mail" / "bob").mkdir(parents=True)
    assert deliver(conf, ["bob"], data)[0] == expect
    assert not (tmp_path / "mail" / "bob" / "new").exists() or \
        not list((tmp_path / "mail" / "bob" / "new").iterdir())


def test_usage_and_bad_sender(tmp_path):
    conf = cfg_for(tmp_path, {"bob": {}})
    assert deliver(conf, [], b"x\n")[0] == 64
    assert deliver(conf, ["bob"], b"x\n", sender="a\r\nX-Evil: 1")[0] == 64


def test_bad_config_is_75_so_the_mta_retries(tmp_path):
    """A missing, unreadable or broken config is the administrator's to
    fix; the MTA must keep the mail: 75, not 78 (EX_CONFIG, which Postfix
    maps to 5.3.5 and bounces)."""
    assert deliver(str(tmp_path / "missing.json"), ["bob"], b"x\n")[0] == 75
    bad = tmp_path / "bad.json"
    bad.write_text('{"Pop3Server": {"Port": "not a number",}')
    rc, err = deliver(str(bad), ["bob"], b"x\n")
    assert rc == 75 and "bad.json" in err, err
    conf = cfg_for(tmp_path, {"bob": {}}, TimeOut="soon")
    rc, err = deliver(conf, ["bob"], b"x\n")
    assert rc == 75 and "TimeOut" in err, err


def test_mbox_delivery_read_by_pop3(tmp_path, servers):
    spool = tmp_path / "spool"
    spool.mkdir()
    (spool / "bob").touch()
    users = [{"UserName": "bob", "Password": PW, "MailboxFormat": "mbox",
              "MailboxPath": str(spool / "%u")}]
    cfg = servers.config(users=users, MboxStateDirectory=str(tmp_path / "state"))
    (tmp_path / "state").mkdir()
    conf = write_config(tmp_path / "d.json", cfg)
    body = b"Subject: m\n\nFrom the start\n>From quoted\n.dot\n"
    for i in range(3):
        rc, err = deliver(conf, ["bob"], b"Message-ID: <%d@m>\n" % i + body,
                          sender="s@x.org")
        assert rc == 0, err
    raw = (spool / "bob").read_bytes()
    assert raw.count(b"\nFrom s@x.org  ") + raw.startswith(b"From s@x.org  ") == 3
    assert b"\r" not in raw and b"\n>From the start\n>>From quoted\n" in raw
    assert not list(spool.glob("*.posuto-*"))      # side files in the state dir
    srv = servers.start(cfg)
    got = pop_all(srv.port, "bob", dele=True)
    assert len(got) == 3
    for i, g in enumerate(got):
        assert g == (b"Return-Path: <s@x.org>\r\nDelivered-To: <bob>\r\n"
                     b"Message-ID: <%d@m>\r\nSubject: m\r\n\r\nFrom the start\r\n"
                     b">From quoted\r\n.dot\r\n" % i)
    assert pop_all(srv.port, "bob") == []
    assert (spool / "bob").stat().st_size == 0


def test_root_drops_to_mailbox_owner(tmp_path):
    if os.geteuid() != 0:
        pytest.skip("needs root")
    top = pathlib.Path(tempfile.mkdtemp(prefix="posuto-own-", dir="/tmp"))
    try:
        os.chmod(top, 0o755)
        box = top / "bob"
        box.mkdir()
        os.chown(box, 65534, 65534)
        conf = cfg_for(tmp_path, {"bob": {"MailboxPath": str(box)}},
                       MailboxFormat="maildir")
        rc, err = deliver(conf, ["bob"], b"Subject: o\n\nx\n")
        assert rc == 0, err
        for p in [box / "new", box / "tmp", box / "cur"] + list((box / "new").iterdir()):
            assert p.stat().st_uid == 65534, p
        # a mailbox not there yet and no RunAsUser: never created as root
        conf = cfg_for(tmp_path, {"bob": {"MailboxPath": str(top / "none")}},
                       MailboxFormat="maildir")
        assert deliver(conf, ["bob"], b"Subject: o\n\nx\n")[0] == 75
        assert not (top / "none").exists()
    finally:
        shutil.rmtree(top)


def test_disk_full_is_75_and_leaves_nothing(tmp_path):
    mnt = tmp_path / "tiny"
    mnt.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(mnt)],
                      capture_output=True).returncode != 0:
        pytest.skip("cannot mount a tmpfs")
    try:
        for fmt in ("maildir", "mbox"):
            box = mnt / fmt
            if fmt == "mbox":
                box.touch()
            else:
                box.mkdir()
            conf = cfg_for(tmp_path, {"bob": {"MailboxPath": str(box),
                                              "MailboxFormat": fmt}})
            big = b"Subject: big\n\n" + (b"x" * 70 + b"\n") * 8000
            rc, err = deliver(conf, ["bob"], big)
            assert rc == 75, err
            if fmt == "mbox":
                assert box.stat().st_size == 0
                # side files: only the (empty) append marker may stay
                side = sorted(p.name for p in mnt.iterdir() if p.name.startswith("mbox."))
                assert side in ([], ["mbox.posuto-append"]), side
                assert all((mnt / n).stat().st_size == 0 for n in side)
            else:
                assert [list((box / d).iterdir()) for d in ("new", "cur", "tmp")] == \
                    [[], [], []]
            # and a small one still goes in
            assert deliver(conf, ["bob"], b"Subject: s\n\nx\n")[0] == 0
    finally:
        subprocess.run(["umount", str(mnt)])


def test_kill9_never_leaves_partial_message(tmp_path, servers):
    cfg = servers.config(users=[{"UserName": "bob", "Password": PW}],
                         MailboxFormat="maildir")
    conf = write_config(tmp_path / "d.json", cfg)
    (tmp_path / "mail" / "bob").mkdir(parents=True)
    body = b"Subject: k\n\n" + b"".join(b"line %06d\n" % i for i in range(60000))
    rnd = random.Random(11)
    complete = 0
    for trial in range(25):
        p = subprocess.Popen([posuto_bin(), "deliver", "-c", conf, "bob"],
                             stdin=subprocess.PIPE, stderr=subprocess.DEVNULL,
                             start_new_session=True)
        try:
            p.stdin.write(body)
            p.stdin.close()
        except BrokenPipeError:
            pass
        time.sleep(rnd.random() * 0.05)
        rc = kill_group(p)
        complete += rc == 0
    srv = servers.start(cfg)
    got = pop_all(srv.port, "bob")
    assert len(got) >= complete
    want = (b"Return-Path: <>\r\nDelivered-To: <bob>\r\n" +
            body.replace(b"\n", b"\r\n"))
    for g in got:
        assert g == want


@pytest.mark.parametrize("fmt", ["maildir", "mbox"])
def test_1000_parallel_deliveries_while_popping(tmp_path, servers, fmt):
    """1,000 messages, half through posuto deliver processes and half as
    LMTP transactions (the listener in the server), 6 at a time, while a
    POP3 client logs in, RETRs, DELEs and QUITs over and over: every
    Message-ID is retrieved once or still there at the end; none twice,
    none lost."""
    import collections
    import smtplib
    import threading
    lport = free_port()
    if fmt == "mbox":
        (tmp_path / "spool").mkdir()
        (tmp_path / "state").mkdir()
        users = [{"UserName": "bob", "Password": PW, "MailboxFormat": "mbox",
                  "MailboxPath": str(tmp_path / "spool" / "%u")}]
        cfg = servers.config(users=users, MboxStateDirectory=str(tmp_path / "state"))
        # As an MTA's setup has it: a root `posuto deliver` refuses to
        # create a mailbox (whose would it be?), and which delivery comes
        # first is up to the scheduler.
        (tmp_path / "spool" / "bob").touch(mode=0o600)
    else:
        cfg = servers.config(users=[{"UserName": "bob", "Password": PW}],
                             MailboxFormat="maildir")
        (tmp_path / "mail" / "bob").mkdir(parents=True)
    cfg["Pop3Server"]["Listen"] = [
        {"Address": "127.0.0.1", "Port": cfg["Pop3Server"]["Port"]},
        {"Address": "127.0.0.1", "Port": lport, "Protocol": "lmtp"}]
    conf = write_config(tmp_path / "d.json", cfg)
    srv = servers.start(cfg)
    N, WORKERS = 1000, 6

    def msg(i):
        return b"Message-ID: <%d@par>\nSubject: p\n\nmsg %d\n" % (i, i)

    def worker(k):
        lm, failed = None, []
        try:
            for i in range(k, N, WORKERS):
                if i % 2 == 0:
                    rc = deliver(conf, ["bob"], msg(i))[0]
                    if rc != 0:
                        failed.append((i, rc))
                    continue
                if lm is None:
                    lm = smtplib.LMTP("127.0.0.1", lport, timeout=60)
                    lm.ehlo("par.example")
                assert lm.mail("s@example.org")[0] == 250
                assert lm.rcpt("bob@example.com")[0] == 250
                code = lm.data(msg(i).replace(b"\n", b"\r\n"))[0]
                if code != 250:
                    failed.append((i, code))
        finally:
            if lm is not None:
                lm.quit()
        return failed

    seen = collections.Counter()

    def pop_round():
        for m in pop_all(srv.port, "bob", dele=True):
            seen[int(re.search(rb"Message-ID: <(\d+)@par>", m).group(1))] += 1

    with concurrent.futures.ThreadPoolExecutor(WORKERS) as ex:
        futs = [ex.submit(worker, k) for k in range(WORKERS)]
        for _ in range(5000):       # bounded: the workers end first
            try:
                pop_round()
            except poplib.error_proto as e:
                assert "in-use" in str(e).lower() or "in use" in str(e).lower(), e
            if all(f.done() for f in futs):
                break
            time.sleep(0.02)
        failed = [x for f in futs for x in f.result()]
    assert failed == []
    for _ in range(50):
        try:
            pop_round()
            break
        except poplib.error_proto:
            time.sleep(0.2)
    assert [i for i in range(N) if seen[i] != 1] == [], \
        {i: seen[i] for i in range(N) if seen[i] != 1}
    assert set(seen) == set(range(N))
    assert pop_all(srv.port, "bob") == []


def mbox_world(tmp_path, servers):
    spool = tmp_path / "spool"
    spool.mkdir()
    (spool / "bob").touch()
    (tmp_path / "state").mkdir()
    users = [{"UserName": "bob", "Password": PW, "MailboxFormat": "mbox",
              "MailboxPath": str(spool / "%u")}]
    cfg = servers.config(users=users, MboxStateDirectory=str(tmp_path / "state"))
    conf = write_config(tmp_path / "d.json", cfg)
    return spool / "bob", cfg, conf


def kill_group(p):
    """posuto deliver run as root delivers in a child running as the
    mailbox owner: kill them all, as a crash (or Postfix's timeout) does."""
    try:
        os.killpg(p.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    return p.wait(timeout=30)


def test_mbox_kill9_during_append_never_shows_a_torn_message(tmp_path, servers):
    """kill -9 of posuto deliver while it appends a large message to an
    mbox, at random points, 20 times: every POP3 session after it sees only
    complete messages, the next delivery is a message of its own (not
    glued onto a torn one), and the mbox is still an mbox."""
    box, cfg, conf = mbox_world(tmp_path, servers)
    srv = servers.start(cfg)
    big = b"Subject: big\n\n" + b"".join(b"line %07d of the big one\n" % i
                                         for i in range(160000))
    big_wire = b"Return-Path: <>\r\nDelivered-To: <bob>\r\n" + big.replace(b"\n", b"\r\n")

    def small(i):
        return b"Message-ID: <%d@small>\nSubject: s\n\nsmall %d\n" % (i, i)

    def small_wire(i):
        return b"Return-Path: <>\r\nDelivered-To: <bob>\r\n" + small(i).replace(b"\n", b"\r\n")

    assert deliver(conf, ["bob"], small(0))[0] == 0        # kept throughout
    rnd = random.Random(2033)
    seen_small, torn = [], 0
    for trial in range(1, 21):
        before = box.stat().st_size
        p = subprocess.Popen([posuto_bin(), "deliver", "-c", conf, "bob"],
                             stdin=subprocess.PIPE, stderr=subprocess.DEVNULL,
                             start_new_session=True)
        try:
            p.stdin.write(big)
            p.stdin.close()
        except BrokenPipeError:
            pass
        if rnd.random() < 0.75:
            # as soon as the append has begun, plus a random bit
            for _ in range(20000):
                if box.stat().st_size > before or p.poll() is not None:
                    break
                time.sleep(0.0002)
            time.sleep(rnd.random() * 0.004)
        else:
            time.sleep(rnd.random() * 0.05)
        rc = kill_group(p)
        after = box.stat().st_size
        torn += rc != 0 and after > before and (after - before) != len(big) + 200
        assert deliver(conf, ["bob"], small(trial))[0] == 0
        c = poplib.POP3("127.0.0.1", srv.port, timeout=60)
        c.user("bob")
        c.pass_("secret")
        sizes = [int(x.split()[1]) for x in c.list()[1]]
        assert sizes[0] == len(small_wire(0))
        for n, size in enumerate(sizes[1:], start=2):
            # LIST: only whole messages; no torn one, nothing glued
            assert size in (len(big_wire), len(small_wire(trial))), (trial, sizes)
            msg = b"\r\n".join(c.retr(n)[1]) + b"\r\n"
            if size == len(big_wire):
                assert msg == big_wire
            else:
                assert msg == small_wire(trial)
                seen_small.append(trial)
            c.dele(n)
        c.quit()
    assert seen_small == list(range(1, 21))
    final = pop_all(srv.port, "bob")
    assert final == [small_wire(0)]
    raw = box.read_bytes()
    assert raw.startswith(b"From MAILER-DAEMON  ") and raw.count(b"\nFrom ") == 0
    print("torn appends: %d of 20" % torn)


def test_emldir_delivery_read_by_pop3(tmp_path, servers):
    """Whatever the store: into an emldir (JumboDogX's numbered .eml
    files) too, read back byte-identical apart from the trace headers."""
    cfg = servers.config(users=[{"UserName": "bob", "Password": PW}],
                         MailboxFormat="emldir")
    conf = write_config(tmp_path / "d.json", cfg)
    (tmp_path / "mail" / "bob").mkdir(parents=True)
    for i in range(3):
        rc, err = deliver(conf, ["bob"], b"Message-ID: <%d@e>\nSubject: e\n\n.dot\nx\n" % i,
                          sender="s@x.org")
        assert rc == 0, err
    files = sorted((tmp_path / "mail" / "bob").iterdir())
    assert len(files) == 3 and all(f.suffix == ".eml" for f in files), files
    srv = servers.start(cfg)
    got = pop_all(srv.port, "bob")
    assert got == [b"Return-Path: <s@x.org>\r\nDelivered-To: <bob>\r\n"
                   b"Message-ID: <%d@e>\r\nSubject: e\r\n\r\n.dot\r\nx\r\n" % i
                   for i in range(3)]


def test_qmail_dot_qmail_line(tmp_path):
    """qmail-local runs a ~/.qmail line '| cmd' with /bin/sh -c, the bare
    message on stdin (nothing prepended for programs) and SENDER, USER,
    LOCAL, HOST, RECIPIENT in the environment: posuto(8)'s recipe works so.
    (qmail is not in Debian: this is qmail-command(8)'s contract.)"""
    conf = cfg_for(tmp_path, {"bob": {}}, MailboxFormat="maildir")
    (tmp_path / "mail" / "bob").mkdir(parents=True)
    line = '| %s deliver -c %s -f "$SENDER" "$USER"' % (posuto_bin(), conf)
    env = dict(os.environ, SENDER="app@example.org", USER="bob", LOCAL="bob",
               HOST="example.com", RECIPIENT="bob@example.com",
               DTLINE="Delivered-To: bob@example.com\n")
    p = subprocess.run(["/bin/sh", "-c", line[1:].strip()], input=b"Subject: q\n\nhi\n",
                       env=env, capture_output=True, timeout=60, cwd=str(tmp_path))
    assert p.returncode == 0, p.stderr
    files = list((tmp_path / "mail" / "bob" / "new").iterdir())
    assert [f.read_bytes() for f in files] == [
        b"Return-Path: <app@example.org>\r\nDelivered-To: <bob>\r\nSubject: q\r\n\r\nhi\r\n"]


def test_never_runs_a_program(tmp_path):
    """posuto deliver never runs a shell or any program, whatever the
    recipient, sender or headers say (strace: no execve after its own)."""
    if shutil.which("strace") is None:
        pytest.skip("needs strace")
    conf = cfg_for(tmp_path, {"bob": {}}, MailboxFormat="maildir")
    (tmp_path / "mail" / "bob").mkdir(parents=True)
    trace = tmp_path / "trace"
    p = subprocess.run(["strace", "-f", "-qq", "-e", "trace=execve,execveat", "-o", str(trace),
                        posuto_bin(), "deliver", "-c", conf, "-f", "a@b.c", "bob", "|true",
                        "$(touch x)@example.com"],
                       input=b"Subject: `touch y`\nTo: |/bin/sh\n\n$(id)\n",
                       capture_output=True, timeout=120,
                       # LeakSanitizer cannot run under ptrace
                       env=dict(os.environ, ASAN_OPTIONS=os.environ.get("ASAN_OPTIONS", "") +
                                ":detect_leaks=0"))
    assert p.returncode == 67, p.stderr                   # bob got it, the rest unknown
    execs = [ln for ln in trace.read_text().splitlines() if "execve" in ln]
    assert len(execs) == 1 and posuto_bin() in execs[0], execs
    assert not (tmp_path / "x").exists() and not (tmp_path / "y").exists()
    assert len(list((tmp_path / "mail" / "bob" / "new").iterdir())) == 1


def test_mbox_lock_timeout_is_75_and_changes_nothing(tmp_path):
    """The mbox locked by another program (an fcntl lock, as Postfix and
    procmail take) for longer than posuto waits (20 s): 75, the MTA
    retries, the file is untouched."""
    import fcntl
    spool = tmp_path / "spool"
    spool.mkdir()
    box = spool / "bob"
    box.write_bytes(b"From a@b  Mon Jan  6 10:00:00 2025\nSubject: old\n\nx\n\n")
    before = box.read_bytes()
    conf = cfg_for(tmp_path, {"bob": {"MailboxPath": str(spool / "%u"),
                                      "MailboxFormat": "mbox"}})
    with open(box, "r+b") as f:
        fcntl.lockf(f, fcntl.LOCK_EX)
        rc, err = deliver(conf, ["bob"], b"Subject: new\n\ny\n")
    assert rc == 75, err
    assert "lock" in err.lower(), err
    assert box.read_bytes() == before
    assert not list(spool.glob("bob.lock"))              # its dotlock went too
    assert deliver(conf, ["bob"], b"Subject: new\n\ny\n")[0] == 0


def test_user_database_down_is_75(tmp_path):
    """Users in SQL and the database not there: 75, not 67 (a down
    database must not bounce mail as 'unknown user')."""
    pwf = tmp_path / "db-password"
    pwf.write_text("x\n")
    pwf.chmod(0o600)
    for driver in ("pgsql", "mysql"):
        conf = write_config(tmp_path / ("%s.json" % driver), base_config(
            free_port(), tmp_path / "mail", users=[], Sql={
                "Driver": driver, "Host": "127.0.0.1", "Port": free_port(),
                "Database": "posuto", "User": "posuto", "PasswordFile": str(pwf),
                "ConnectTimeOut": 2, "QueryTimeOut": 2}))
        rc, err = deliver(conf, ["bob"], b"Subject: s\n\nx\n")
        assert rc == 75, (driver, rc, err)


WIRE_TRAILER = 64


def big_body(size, dots):
    lines, n = [b"Subject: big"], 0
    lines.append(b"")
    while n < size:
        line = b".dot %d" % n if dots and n % 5 == 0 else b"y" * 60
        lines.append(line)
        n += len(line) + 1
    return b"\n".join(lines) + b"\n"


def raw_retr(port, n=1):
    c = Pop3("127.0.0.1", port)
    c.must_login("bob", "secret")
    c.ok("RETR %d" % n)
    raw = c.read_multi_raw()
    c.quit()
    return raw


def test_delivered_mail_gets_its_wire_copy_and_first_retr_sends_it(tmp_path, servers):
    """Issue 11: the first RETR of a big message posuto delivered is a
    sendfile(): a dot-stuffed copy made at delivery (tmp, fsync, rename),
    or for bytes already in wire form a trailer saying so; the Maildir
    file itself stays the standard one."""
    cfg = servers.config(users=[{"UserName": "bob", "Password": PW}],
                         MailboxFormat="maildir", WireCacheMinSize=100000)
    conf = write_config(tmp_path / "d.json", cfg)
    box = tmp_path / "mail" / "bob"
    box.mkdir(parents=True)
    dotty, plain, small = big_body(200000, True), big_body(200000, False), b"Subject: s\n\n.x\n"
    for m in (dotty, plain, small):
        rc, err = deliver(conf, ["bob"], m)
        assert rc == 0, err
    names = sorted(os.listdir(box / "new"))
    assert len(names) == 3
    stored = {n: (box / "new" / n).read_bytes() for n in names}
    trace = b"Return-Path: <>\r\nDelivered-To: <bob>\r\n"
    want = {m: trace + m.replace(b"\n", b"\r\n") for m in (dotty, plain, small)}
    # the Maildir files are what any Maildir reader expects: no stuffing
    assert sorted(stored.values()) == sorted(want.values())
    by = {want[m]: n for m in want for n in names if stored[n] == want[m]}
    copies = sorted(os.listdir(box / "posuto-wire"))
    assert copies == sorted([by[want[dotty]], by[want[plain]]]), "small ones get none"
    wire = dot_stuff(want[dotty])
    copy = box / "posuto-wire" / by[want[dotty]]
    assert copy.read_bytes()[:-WIRE_TRAILER] == wire
    assert os.path.getsize(box / "posuto-wire" / by[want[plain]]) == WIRE_TRAILER
    assert not [n for n in os.listdir(box / "posuto-wire") if n.startswith(".")]
    srv = servers.start(cfg)
    order = sorted(names)  # arrival order: the names' times and sequence
    nr = {n: order.index(n) + 1 for n in names}
    # the very first download is sent from the copy: one byte flipped in
    # it (same length, so its trailer still matches) shows in the RETR
    data = bytearray(copy.read_bytes())
    pos = data.index(b"yyyy")
    data[pos] = ord("Z")
    with open(copy, "r+b") as f:
        f.write(bytes(data))
    got = raw_retr(srv.port, nr[by[want[dotty]]])
    assert len(got) == len(wire) and got[pos] == ord("Z")
    assert raw_retr(srv.port, nr[by[want[plain]]]) == dot_stuff(want[plain])
    assert raw_retr(srv.port, nr[by[want[small]]]) == dot_stuff(want[small])


def test_delivery_time_copies_are_never_served_stale(tmp_path, servers):
    """A message rewritten in place after delivery (same inode and size,
    other bytes, a new mtime) is not answered from its delivery-time copy,
    nor taken for wire form by its "self" trailer: a dot line written into
    a message that had none still goes out stuffed."""
    cfg = servers.config(users=[{"UserName": "bob", "Password": PW}],
                         MailboxFormat="maildir", WireCacheMinSize=100000)
    conf = write_config(tmp_path / "d.json", cfg)
    box = tmp_path / "mail" / "bob"
    box.mkdir(parents=True)
    for m in (big_body(150000, False), big_body(150000, True)):
        rc, err = deliver(conf, ["bob"], m)
        assert rc == 0, err
    names = sorted(os.listdir(box / "new"))
    srv = servers.start(cfg)
    for n in names:
        # QUIT moved the ones read before to cur/ (S flag): same key
        path = [d / f for d in (box / "new", box / "cur") for f in os.listdir(d)
                if f.split(":")[0] == n][0]
        data = bytearray(path.read_bytes())
        i = data.index(b"\r\nyyyy") + 2
        data[i:i + 4] = b".\r\n."   # same length: "." alone, then ".yy.."
        time.sleep(0.01)              # a distinct mtime even on coarse clocks
        with open(path, "r+b") as f:
            f.write(bytes(data))
        nr = names.index(n) + 1
        assert raw_retr(srv.port, nr) == dot_stuff(bytes(data)), n
