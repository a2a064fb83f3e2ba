"""A real Postfix (Debian's) delivering for posuto (issue 11): a private
instance on a loopback port, its own config and queue directories, started
and stopped by the test.  Each case sends with smtplib, waits (bounded) for
the delivery and fetches with poplib: byte-identical apart from the trace
headers: (1) local(8) into Maildir, (2) mailbox_command, (3) a pipe
transport, (4) LMTP into posuto's listener on a unix socket and on TCP,
(5) local(8) into an mbox.  The instance itself: postfix_instance.py."""

import os
import pathlib
import poplib
import pwd
import re
import shutil
import subprocess
import tempfile
import threading
import time

import pytest

import postfix_instance
from posuto_testlib import SHA256_PASSWORD, base_config, free_port, posuto_bin, write_config

DOMAIN = postfix_instance.DOMAIN
# A hash, not a plaintext secret: the delivery agent runs as the mail user,
# so the config must be world-readable, and posuto refuses to read plaintext
# passwords from such a file.
PW = {"Password": SHA256_PASSWORD, "HashType": "SHA256"}
PASS = "password"
TRACE = (b"received", b"return-path", b"delivered-to", b"x-original-to")

pytestmark = pytest.mark.skipif(not postfix_instance.available(),
                                reason="needs Debian's postfix and root")

# TPOPS's fallback_transport example pointing at posuto, as README.md
# gives it (plus -c): Postfix's D, R and F flags prepend Delivered-To,
# Return-Path and a From_ line, which posuto deliver must not store twice.
PIPE = """\
posuto unix - n n - - pipe
  flags=DRF user={pipe_user} argv={posuto} deliver -c {conf} -f ${{sender}} ${{recipient}}
"""


def strip_trace(msg: bytes) -> bytes:
    head, sep, body = msg.partition(b"\r\n\r\n")
    out, skip = [], False
    for line in head.split(b"\r\n"):
        if line[:1] in (b" ", b"\t"):
            if not skip:
                out.append(line)
            continue
        skip = line.split(b":", 1)[0].strip().lower() in TRACE
        if not skip:
            out.append(line)
    return b"\r\n".join(out) + sep + body


def assert_one_trace(msg):
    """No From_ line, one Return-Path, one Delivered-To: what Postfix
    prepends is not stored twice."""
    head = msg.partition(b"\r\n\r\n")[0].lower().split(b"\r\n")
    assert not head[0].startswith(b"from "), head[0]
    assert [h for h in head if h.startswith(b"return-path:")] == \
        [b"return-path: <sender@example.org>"], head
    assert len([h for h in head if h.startswith(b"delivered-to:")]) == 1, head


@pytest.fixture
def world():
    """A world-traversable top directory (users and Postfix must get in),
    a throwaway system user, removed after."""
    top = pathlib.Path(tempfile.mkdtemp(prefix="posuto-pf-", dir="/tmp"))
    os.chmod(top, 0o755)
    user = "pst%d" % (os.getpid() % 100000)
    home = top / "home"
    subprocess.run(["userdel", user], capture_output=True)   # a crashed run's
    subprocess.run(["useradd", "-M", "-d", str(home), "-s", "/usr/sbin/nologin", user],
                   check=True, capture_output=True)
    home.mkdir()
    pw = pwd.getpwnam(user)
    os.chown(home, pw.pw_uid, pw.pw_gid)
    pfs = []

    def postfix(**main_extra):
        pf = postfix_instance.Postfix(top, main_extra, name="postfix%d" % len(pfs))
        pfs.append(pf)
        return pf

    try:
        yield top, user, home, postfix
    finally:
        for pf in pfs:
            pf.stop()
        subprocess.run(["userdel", user], capture_output=True)
        shutil.rmtree(top, ignore_errors=True)


def message(i):
    return (b"From: Sender <sender@example.org>\r\nTo: rcpt@" + DOMAIN.encode() +
            b"\r\nSubject: case %d\r\nDate: Mon, 01 Jan 2024 00:00:00 +0000\r\n"
            b"Message-ID: <%d.pf@example.org>\r\n\r\nbody line\r\n.leading dot\r\n"
            b"From here on\r\n\r\nlast\r\n" % (i, i))


def posuto_conf(top, users, port, **extra):
    users = [dict({"UserName": u}, **PW, **kw) for u, kw in users.items()]
    path = top / ("posuto-%d.json" % port)
    write_config(path, base_config(port, top / "mail", users=users, **extra))
    os.chmod(path, 0o644)   # the delivery agent runs as the mail user
    return str(path)


def retr_all(port, user, dele=False):
    c = poplib.POP3("127.0.0.1", port, timeout=30)
    try:
        c.user(user)
        c.pass_(PASS)
        out = []
        for i in range(1, len(c.list()[1]) + 1):
            out.append(b"\r\n".join(c.retr(i)[1]) + b"\r\n")
            if dele:
                c.dele(i)
        c.quit()
        return out
    finally:
        c.close()


def wait_pop(port, user, pf, n=1, tries=600):
    """Polls (bounded: tries x 0.1 s plus the calls) until USER has N
    messages; fails with Postfix's log if it never does."""
    last = None
    for _ in range(tries):
        try:
            got = retr_all(port, user)
            if len(got) >= n:
                return got
        except poplib.error_proto as e:
            last = e
        time.sleep(0.1)
    pytest.fail("no mail for %s (%s); maillog:\n%s" % (user, last, pf.log()[:4000]))


def wait_log(pf, pattern, tries=600):
    for _ in range(tries):
        m = re.search(pattern, pf.log())
        if m:
            return m
        time.sleep(0.1)
    pytest.fail("maillog never matched %r:\n%s" % (pattern, pf.log()[-4000:]))


def start_posuto(servers, conf):
    import json
    return servers.start(json.loads(pathlib.Path(conf).read_text()))


def run_case(servers, world, main_extra, users, rcpt_user, extra_cfg=None):
    top, user, home, postfix = world
    port = free_port()
    conf = posuto_conf(top, users, port, **(extra_cfg or {}))
    pf = postfix(**main_extra(conf)).start()
    srv = start_posuto(servers, conf)
    pf.send("%s@%s" % (user, DOMAIN), message(1))
    got = wait_pop(srv.port, rcpt_user, pf)
    assert len(got) == 1, pf.log()
    assert strip_trace(got[0]) == message(1)
    return srv, pf, conf, got[0]


def test_postfix_maildir_lf(servers, world):
    """(1) Postfix's local(8) writes the Maildir itself: LF files."""
    top, user, home, postfix = world
    run_case(servers, world, lambda conf: {"home_mailbox": "Maildir/"},
             {user: {"MailboxPath": str(home / "Maildir"), "MailboxFormat": "maildir"}}, user)
    files = list((home / "Maildir" / "new").iterdir()) + list((home / "Maildir" / "cur").iterdir())
    assert len(files) == 1 and b"\r\n" not in files[0].read_bytes()   # Postfix: LF


def test_postfix_mailbox_command(servers, world):
    """(2) mailbox_command runs posuto deliver as the recipient."""
    top, user, home, postfix = world
    *_, retr = run_case(servers, world, lambda conf: {
        "mailbox_command": '%s deliver -c %s -f "$SENDER" -a "$RECIPIENT" "$USER"' % (
            posuto_bin(), conf)},
        {user: {"MailboxPath": str(home / "Maildir"), "MailboxFormat": "maildir"}}, user)
    # new/ or cur/: the POP3 session may already have moved it
    files = list((home / "Maildir" / "new").iterdir()) + list((home / "Maildir" / "cur").iterdir())
    assert len(files) == 1
    st = files[0].stat()
    assert st.st_uid == pwd.getpwnam(user).pw_uid
    data = files[0].read_bytes()
    assert b"\n" not in data.replace(b"\r\n", b"")        # all CRLF
    assert data.startswith(b"Return-Path: <sender@example.org>\r\n")   # Postfix's, kept
    assert ",S=%d" % len(data) in files[0].name
    assert retr == data                 # what RETR sends is the file itself
    assert_one_trace(retr)


def test_postfix_pipe_transport(servers, world):
    """(3) A pipe transport as fallback_transport for users the system does
    not know (TPOPS's example); posuto knows them, and says 67 for the rest
    so Postfix bounces instead of retrying."""
    top, user, home, postfix = world
    box = top / "vmail"
    box.mkdir()
    os.chown(box, 65534, 65534)    # the pipe runs as nobody
    port = free_port()
    conf = posuto_conf(top, {"vu": {"MailboxPath": str(box / "%u"),
                                    "MailboxFormat": "maildir"}}, port)
    pf = postfix(fallback_transport="posuto", posuto_destination_recipient_limit="1")
    pf.start(PIPE.format(pipe_user="nobody", posuto=posuto_bin(), conf=conf))
    srv = start_posuto(servers, conf)
    pf.send("vu@" + DOMAIN, message(3))
    got = wait_pop(srv.port, "vu", pf)
    assert len(got) == 1, pf.log()
    assert strip_trace(got[0]) == message(3)
    assert_one_trace(got[0])
    # unknown to both: bounced (posuto deliver said 67), not deferred
    pf.send("nobody-here@" + DOMAIN, message(4))
    m = wait_log(pf, r"to=<nobody-here@%s>.*status=(\w+)" % re.escape(DOMAIN))
    assert m.group(1) == "bounced", m.group(0)


def test_postfix_local_mbox(servers, world):
    """(5) Postfix's local(8) appends to the mbox spool (fcntl + dotlock)
    from several SMTP sessions at once, posuto deliver appends to the same
    mbox meanwhile, and POP3 sessions read, DELE and QUIT (posuto's
    expunge) all along: nothing lost, nothing duplicated, nothing torn."""
    top, user, home, postfix = world
    spool = top / "spool"
    spool.mkdir()
    os.chmod(spool, 0o1777)
    state = top / "state"
    state.mkdir()
    srv, pf, conf, _ = run_case(
        servers, world, lambda conf: {"mail_spool_directory": str(spool),
                                      "mailbox_delivery_lock": "fcntl, dotlock"},
        {user: {"MailboxPath": str(spool / "%u"), "MailboxFormat": "mbox"}}, user,
        extra_cfg={"MboxStateDirectory": str(state)})
    SMTP_THREADS, DELIVER_THREADS, PER = 4, 2, 15
    errors = []

    def smtp_sender(k):
        try:
            for i in range(PER):
                pf.send("%s@%s" % (user, DOMAIN), message(100 + k * PER + i))
        except Exception as e:   # reported below, not lost in the thread
            errors.append(e)

    def posuto_sender(k):
        for i in range(PER):
            n = 500 + k * PER + i
            p = subprocess.run([posuto_bin(), "deliver", "-c", conf, "-f",
                                "sender@example.org", user], input=message(n),
                               capture_output=True, timeout=120)
            if p.returncode != 0:
                errors.append((n, p.returncode, p.stderr))

    threads = [threading.Thread(target=smtp_sender, args=(k,)) for k in range(SMTP_THREADS)]
    threads += [threading.Thread(target=posuto_sender, args=(k,))
                for k in range(DELIVER_THREADS)]
    for t in threads:
        t.start()
    want = sorted([message(1)] + [message(100 + i) for i in range(SMTP_THREADS * PER)] +
                  [message(500 + i) for i in range(DELIVER_THREADS * PER)])
    seen = []
    for _ in range(2400):        # bounded: ~4 min of polls
        try:
            seen += [strip_trace(m) for m in retr_all(srv.port, user, dele=True)]
        except poplib.error_proto:
            pass
        if not any(t.is_alive() for t in threads) and len(seen) >= len(want):
            break
        time.sleep(0.1)
    for t in threads:
        t.join(60)
    assert not errors, errors
    assert sorted(seen) == want, pf.log()[-3000:]
    assert (spool / user).stat().st_size == 0
    assert not list(spool.glob("*.lock"))

def test_postfix_defers_on_broken_config(servers, world):
    """posuto deliver as mailbox_command with a broken config: Postfix
    defers (exit 75) and delivers once the config is fixed; 78 would
    have bounced the mail (Postfix's sys_exits: EX_CONFIG is 5.3.5)."""
    top, user, home, postfix = world
    port = free_port()
    conf = posuto_conf(top, {user: {"MailboxPath": str(home / "Maildir"),
                                    "MailboxFormat": "maildir"}}, port)
    good = pathlib.Path(conf).read_text()
    import json
    broken = json.loads(good)
    broken["Pop3Server"]["TimeOut"] = "soon"      # an error, not a warning
    pathlib.Path(conf).write_text(json.dumps(broken))
    pf = postfix(mailbox_command='%s deliver -c %s -f "$SENDER" -a "$RECIPIENT" "$USER"' % (
        posuto_bin(), conf)).start()
    pf.send("%s@%s" % (user, DOMAIN), message(7))
    m = wait_log(pf, r"to=<%s@%s>.*status=(\w+)" % (re.escape(user), re.escape(DOMAIN)))
    assert m.group(1) == "deferred", m.group(0)
    pathlib.Path(conf).write_text(good)
    srv = start_posuto(servers, conf)
    got = wait_pop(srv.port, user, pf)
    assert [strip_trace(g) for g in got] == [message(7)]
    assert "status=bounced" not in pf.log()


def lmtp_listeners(cfg, sock=None, port=None):
    """README's LMTP recipe: a unix socket Postfix's lmtp(8) (running as
    postfix, not chrooted here) may connect to, or a TCP port."""
    listen = [{"Address": "127.0.0.1", "Port": cfg["Pop3Server"]["Port"]}]
    if sock is not None:
        listen.append({"Path": str(sock), "Protocol": "lmtp", "Mode": "0660",
                       "Group": "postfix"})
    if port is not None:
        listen.append({"Address": "127.0.0.1", "Port": port, "Protocol": "lmtp"})
    cfg["Pop3Server"]["Listen"] = listen
    return cfg


def lmtp_case(servers, world, via):
    import json
    top, user, home, postfix = world
    port = free_port()
    conf = posuto_conf(top, {user: {}, "vu": {}}, port)
    cfg = json.loads(pathlib.Path(conf).read_text())
    run = top / "run"
    run.mkdir(exist_ok=True)
    sock, lport = run / "lmtp", free_port()
    if via == "unix":
        lmtp_listeners(cfg, sock=sock)
        pf = postfix(mailbox_transport="lmtp:unix:%s" % sock).start()
        rcpt, who = "%s@%s" % (user, DOMAIN), user
    else:
        lmtp_listeners(cfg, port=lport)
        pf = postfix(virtual_mailbox_domains="v." + DOMAIN,
                     virtual_mailbox_maps="static:OK",
                     virtual_transport="lmtp:inet:127.0.0.1:%d" % lport).start()
        rcpt, who = "vu@v." + DOMAIN, "vu"
    srv = servers.start(cfg)
    if via == "unix":
        st = os.stat(sock)
        assert oct(st.st_mode & 0o777) == "0o660"
        assert st.st_gid == pwd.getpwnam("postfix").pw_gid
    for i in (41, 42):
        pf.send(rcpt, message(i))
    got = wait_pop(srv.port, who, pf, n=2)
    assert sorted(strip_trace(g) for g in got) == [message(41), message(42)], pf.log()[-3000:]
    for g in got:
        assert_one_trace(g)
        assert b"\r\nDelivered-To: <%s>\r\n" % rcpt.encode() in g
    assert re.search(r"to=<%s>, relay=[^,]*(lmtp|127\.0\.0\.1\[127\.0\.0\.1\]:%d)[^,]*,.*status=sent"
                     % (re.escape(rcpt), lport), pf.log()), pf.log()[-3000:]
    # a recipient posuto does not know: its LMTP 550 makes Postfix bounce
    bad = ("nobody-here@%s" % DOMAIN) if via == "unix" else ("nobody@v." + DOMAIN)
    if via == "unix":
        subprocess.run(["useradd", "-M", "-s", "/usr/sbin/nologin", "nobody-here"],
                       capture_output=True)
    try:
        pf.send(bad, message(43))
        m = wait_log(pf, r"to=<%s>.*status=(\w+).*" % re.escape(bad))
        assert m.group(1) == "bounced", m.group(0)
        assert "said: 550" in m.group(0), m.group(0)     # posuto's answer
    finally:
        if via == "unix":
            subprocess.run(["userdel", "nobody-here"], capture_output=True)
    return srv, pf


def test_postfix_lmtp_unix_socket(servers, world):
    """(4a) mailbox_transport = lmtp:unix:PATH into posuto's listener."""
    lmtp_case(servers, world, "unix")


def test_postfix_lmtp_tcp(servers, world):
    """(4b) virtual_transport = lmtp:inet:127.0.0.1:PORT."""
    lmtp_case(servers, world, "tcp")
