"""Real clients against the real server: poplib, Net::POP3, curl, fetchmail,
the telnet dialogues of seeds 002 and 003, and --inetd sessions."""

import os
import poplib
import socket
import subprocess
import textwrap


from posuto_testlib import (
    USER1, Pop3, message_of_wire_size, run, sample_message, to_wire, write_config,
    base_config, free_port,
)


def test_poplib_seed000_sample_unchanged(servers, maildir):
    """Seed 000's Python sample, only host/port changed."""
    msgs = [sample_message(i) for i in range(3)]
    for m in msgs:
        maildir.deliver(m)
    srv = servers.start()

    pop = poplib.POP3('localhost', srv.port)
    pop.user('user1@example.com')
    pop.pass_('password')
    num_messages = len(pop.list()[1])
    assert num_messages == 3
    got = []
    for i in range(num_messages):
        msg = pop.retr(i + 1)
        got.append(b'\n'.join(msg[1]).decode('utf-8'))
    pop.quit()
    for m, g in zip(msgs, got):
        assert g == m.decode().rstrip("\n")


def test_poplib_full_api(servers, maildir):
    msgs = [sample_message(i, body_lines=5) for i in range(3)]
    for m in msgs:
        maildir.deliver(m)
    srv = servers.start()
    pop = poplib.POP3("127.0.0.1", srv.port, timeout=30)
    assert pop.getwelcome().startswith(b"+OK")
    caps = pop.capa()
    for c in ("TOP", "UIDL", "USER", "RESP-CODES", "AUTH-RESP-CODE", "PIPELINING",
              "EXPIRE", "IMPLEMENTATION"):
        assert c in caps, caps
    assert "STLS" not in caps  # no TLS configured
    pop.user(USER1)
    pop.pass_("password")
    n, size = pop.stat()
    assert n == 3 and size == sum(len(to_wire(m)) for m in msgs)
    resp, lines, _ = pop.list()
    assert [l.split()[1] for l in lines] == [str(len(to_wire(m))).encode() for m in msgs]
    assert pop.list(2).split()[2] == str(len(to_wire(msgs[1]))).encode()
    resp, top, _ = pop.top(1, 2)
    assert b"".join(l + b"\r\n" for l in top) == \
        to_wire(msgs[0]).split(b"\r\n\r\n")[0] + b"\r\n\r\n" + b"line 0 of message 0\r\nline 1 of message 0\r\n"
    resp, uidls, _ = pop.uidl()
    assert len(set(u.split()[1] for u in uidls)) == 3
    pop.noop()
    pop.dele(1)
    pop.rset()
    pop.dele(3)
    pop.quit()
    assert sorted(maildir.contents()) == sorted(msgs[:2])


PERL_SCRIPT = r'''
use strict; use warnings;
use Net::POP3;
my ($port, $user, $pass, $mode) = @ARGV;
my $pop = Net::POP3->new("127.0.0.1", Port => $port, Timeout => 30)
    or die "connect failed: $@";
if ($mode eq "apop") {
    my $n = $pop->apop($user, $pass);
    defined $n or die "APOP failed: " . $pop->message;
    print "COUNT ", ($n + 0), "\n";
} else {
    my $n = $pop->login($user, $pass);
    defined $n or die "login failed: " . $pop->message;
    print "COUNT ", ($n + 0), "\n";
}
my ($cnt, $size) = $pop->popstat;
print "STAT $cnt $size\n";
my $list = $pop->list;
for my $k (sort { $a <=> $b } keys %$list) { print "LIST $k $list->{$k}\n"; }
my $uidl = $pop->uidl;
for my $k (sort { $a <=> $b } keys %$uidl) { print "UIDL $k $uidl->{$k}\n"; }
my $caps = $pop->capa;
print "CAPA ", join(" ", sort keys %$caps), "\n";
my $msg = $pop->get(1);
open(my $fh, ">:raw", "$ENV{OUT}/msg1") or die; print $fh join("", @$msg); close $fh;
my $top = $pop->top(2, 1);
open($fh, ">:raw", "$ENV{OUT}/top2") or die; print $fh join("", @$top); close $fh;
$pop->delete(2) or die "DELE failed";
$pop->quit or die "QUIT failed";
print "DONE\n";
'''


def test_perl_net_pop3(servers, maildir, tmp_path):
    msgs = [sample_message(i) + b".dot line\n..two dots\n" for i in range(3)]
    names = [maildir.deliver(m) for m in msgs]
    srv = servers.start()
    script = tmp_path / "client.pl"
    script.write_text(PERL_SCRIPT)
    r = run(["perl", str(script), str(srv.port), USER1, "password", "login"],
            env=dict(os.environ, OUT=str(tmp_path)))
    out = r.stdout.decode()
    assert r.returncode == 0, out + r.stderr.decode()
    assert "COUNT 3" in out
    total = sum(len(to_wire(m)) for m in msgs)
    assert "STAT 3 %d" % total in out
    for i, m in enumerate(msgs):
        assert "LIST %d %d" % (i + 1, len(to_wire(m))) in out
        assert "UIDL %d %s" % (i + 1, names[i]) in out
    assert "TOP" in out and "UIDL" in out
    # Net::POP3 returns lines with "\n" endings, dot-stuffing removed.
    assert (tmp_path / "msg1").read_bytes() == msgs[0]
    assert (tmp_path / "top2").read_bytes() == msgs[1].split(b"\n\n")[0] + b"\n\n" + b"line 0 of message 1\n"
    assert "DONE" in out
    assert sorted(maildir.contents()) == sorted([msgs[0], msgs[2]])


def test_curl_list_retrieve_uidl_dele(servers, maildir):
    msgs = [sample_message(i) + b".starts with dot\n" for i in range(3)]
    names = [maildir.deliver(m) for m in msgs]
    srv = servers.start()
    url = "pop3://127.0.0.1:%d/" % srv.port
    auth = ["-u", "user1@example.com:password", "--max-time", "60", "-sS"]
    r = run(["curl", *auth, url])
    assert r.returncode == 0, r.stderr
    assert r.stdout.replace(b"\r\n", b"\n").split(b"\n")[:3] == \
        [b"%d %d" % (i + 1, len(to_wire(m))) for i, m in enumerate(msgs)]
    r = run(["curl", *auth, url + "2"])
    assert r.returncode == 0, r.stderr
    assert r.stdout == to_wire(msgs[1])  # curl removes the dot-stuffing
    r = run(["curl", *auth, "-X", "UIDL", url])
    assert r.returncode == 0, r.stderr
    assert r.stdout.replace(b"\r\n", b"\n").split(b"\n")[:3] == \
        [b"%d %s" % (i + 1, n.encode()) for i, n in enumerate(names)]
    r = run(["curl", *auth, "-X", "DELE", "-I", url + "1"])
    assert r.returncode == 0, r.stderr
    # The QUIT curl sends makes the deletion happen.
    assert sorted(maildir.contents()) == sorted(msgs[1:])
    r = run(["curl", *auth, url + "9"])
    assert r.returncode != 0  # no such message


def test_curl_wrong_password(servers, maildir):
    maildir.deliver(sample_message(1))
    srv = servers.start()
    r = run(["curl", "-sS", "--max-time", "60", "-u", "user1@example.com:wrong",
             "pop3://127.0.0.1:%d/" % srv.port])
    assert r.returncode == 67  # CURLE_LOGIN_DENIED


# ------------------------------------------------------------------ fetchmail

def fetchmail_run(tmp_path, port, opts, tls_opts="sslproto ''", args=(), password="password"):
    home = tmp_path / "fmhome"
    home.mkdir(exist_ok=True)
    out = tmp_path / "delivered"
    out.mkdir(exist_ok=True)
    mda = tmp_path / "mda.sh"
    mda.write_text('#!/bin/sh\nf=$(mktemp "%s/msg.XXXXXXXX")\ncat > "$f"\n' % out)
    mda.chmod(0o755)
    rc = tmp_path / "fetchmailrc"
    rc.write_text(textwrap.dedent('''\
        set no syslog
        poll 127.0.0.1 with proto POP3 port %d
          user "user1@example.com" there with password "%s" is "root" here
          options %s %s
          mda "%s"
        ''') % (port, password, opts, tls_opts, mda))
    rc.chmod(0o600)
    env = dict(os.environ, HOME=str(home), FETCHMAILHOME=str(home))
    r = run(["fetchmail", "-f", str(rc), "--nosyslog", "--nodetach", "-v",
             "--idfile", str(home / "fetchids"), *args], env=env, timeout=120)
    delivered = [p.read_bytes() for p in sorted(out.iterdir())]
    return r, delivered


def _strip_fetchmail(m: bytes) -> bytes:
    # fetchmail adds a Received: header (and may add others) at the top.
    i = m.find(b"Return-Path:")
    return m[i:] if i >= 0 else m


def test_fetchmail_keep_then_new_then_flush(servers, maildir, tmp_path):
    msgs = [sample_message(i) for i in range(3)]
    for m in msgs:
        maildir.deliver(m)
    srv = servers.start()
    r, got = fetchmail_run(tmp_path, srv.port, "keep")
    assert r.returncode == 0, r.stdout.decode() + r.stderr.decode()
    assert sorted(_strip_fetchmail(g).replace(b"\r\n", b"\n") for g in got) == sorted(msgs)
    assert sorted(maildir.contents()) == sorted(msgs)  # kept on the server

    # A new message: with keep, fetchmail's UIDL tracking fetches only it.
    new = sample_message(99)
    maildir.deliver(new)
    r, got = fetchmail_run(tmp_path, srv.port, "keep")
    assert r.returncode == 0, r.stdout.decode() + r.stderr.decode()
    assert len(got) == 4, r.stdout.decode() + r.stderr.decode()
    assert sorted(maildir.contents()) == sorted(msgs + [new])

    # flush: old (seen) messages are deleted from the server.
    r, got = fetchmail_run(tmp_path, srv.port, "flush")
    assert r.returncode in (0, 1), r.stdout.decode() + r.stderr.decode()
    assert len(got) == 4  # nothing delivered twice
    assert maildir.contents() == []


def test_fetchmail_fetch_and_delete(servers, maildir, tmp_path):
    msgs = [sample_message(i) for i in range(2)] + [message_of_wire_size(7, 300000)]
    for m in msgs:
        maildir.deliver(m)
    srv = servers.start()
    r, got = fetchmail_run(tmp_path, srv.port, "fetchall")
    assert r.returncode == 0, r.stdout.decode() + r.stderr.decode()
    assert len(got) == 3
    assert any(g.replace(b"\r\n", b"\n").endswith(msgs[2]) for g in got)
    assert maildir.contents() == []
    # Nothing left: fetchmail exits 1 ("no mail").
    r, got = fetchmail_run(tmp_path, srv.port, "fetchall")
    assert r.returncode == 1, r.stdout.decode() + r.stderr.decode()


# ------------------------------------------------------------ seed dialogues

SEED002_SIZES = [1518, 1612, 1636, 1486, 1631, 2328]


def test_seed002_telnet_dialogue(servers, tmp_path):
    """Seed 002: USER/PASS, '6 messages (10211 octets)', LIST, RETR 1, DELE 1, QUIT."""
    from posuto_testlib import Maildir
    md = Maildir(tmp_path / "mail" / "hogehoge")
    msgs = [message_of_wire_size(i + 1, s) for i, s in enumerate(SEED002_SIZES)]
    for m in msgs:
        md.deliver(m)
    cfg = base_config(free_port(), tmp_path / "mail", users=[
        {"UserName": "hogehoge", "Password": "{PLAIN}secret"}])
    srv = servers.start(cfg)
    c = Pop3("127.0.0.1", srv.port)
    assert c.greeting.startswith(b"+OK")
    assert c.cmd("USER hogehoge").startswith(b"+OK")
    assert c.cmd("PASS secret").startswith(b"+OK")
    assert c.stat() == (6, 10211)
    r = c.ok("LIST")
    lines = c.read_multi()
    assert lines == [b"%d %d" % (i + 1, s) for i, s in enumerate(SEED002_SIZES)]
    r = c.cmd("RETR 1")
    assert r.startswith(b"+OK")
    body = c.read_multi()
    assert b"".join(l + b"\r\n" for l in body) == to_wire(msgs[0])
    assert c.cmd("DELE 1").startswith(b"+OK")
    assert c.cmd("QUIT").startswith(b"+OK")
    assert c.closed_by_server(10)
    assert sorted(md.contents()) == sorted(msgs[1:])


SEED003_MESSAGE = (
    "Return-Path: <i2006000@itl.koeki-u.ac.jp>\n"
    "Delivered-To: i2006000@qm200.is.koeki-u.ac.jp\n"
    "Received: (qmail 9682 invoked by uid 32200); 10 Mar 2006 07:50:43 -0000\n"
    "Message-ID: <20060310075043.9681.qmail@qm200.is.koeki-u.ac.jp>\n"
    "From: i2006000@itl.koeki-u.ac.jp\n"
    "Date: 10 Mar 2006 16:50:43 +0900\n"
    "To: i2006000@qm200.is.koeki-u.ac.jp\n"
    "Subject: cal\n"
    "Status:   \n"
    "\n"
    "      3月 2006\n"
    "日 月 火 水 木 金 土\n"
    "          1  2  3  4\n"
    " 5  6  7  8  9 10 11\n"
    "12 13 14 15 16 17 18\n"
    "19 20 21 22 23 24 25\n"
    "26 27 28 29 30 31\n"
    "\n").encode("utf-8")


def seed003_dialogue(c, md):
    assert c.greeting.startswith(b"+OK")
    assert c.cmd("USER i2006000").startswith(b"+OK")
    assert c.cmd("PASS apoppass").startswith(b"+OK")
    size = len(to_wire(SEED003_MESSAGE))
    assert c.multi("LIST") == [b"1 %d" % size]
    r = c.cmd("RETR 1")
    assert r.startswith(b"+OK")
    assert b"".join(l + b"\r\n" for l in c.read_multi()) == to_wire(SEED003_MESSAGE)
    assert c.multi("LIST") == [b"1 %d" % size]
    assert c.cmd("DELE 1").startswith(b"+OK")
    assert c.multi("LIST") == []  # deleted message is gone from LIST
    assert c.cmd("LIST 1").startswith(b"-ERR")
    assert c.cmd("RETR 1").startswith(b"-ERR")
    assert c.cmd("QUIT").startswith(b"+OK")


def _seed003_setup(tmp_path):
    from posuto_testlib import Maildir
    md = Maildir(tmp_path / "mail" / "i2006000")
    md.deliver(SEED003_MESSAGE)
    cfg = base_config(free_port(), tmp_path / "mail", users=[
        {"UserName": "i2006000", "Password": "{PLAIN}apoppass"}])
    return md, cfg


def test_seed003_telnet_dialogue(servers, tmp_path):
    md, cfg = _seed003_setup(tmp_path)
    srv = servers.start(cfg)
    c = Pop3("127.0.0.1", srv.port)
    seed003_dialogue(c, md)
    assert c.closed_by_server(10)
    assert md.contents() == []


def test_seed003_via_inetd_on_tcp_socket(posuto, tmp_path):
    """Seed 003 runs ipop3d under tcpserver: the session's stdin/stdout is
    the accepted TCP socket."""
    md, cfg = _seed003_setup(tmp_path)
    path = write_config(tmp_path / "inetd.json", cfg)
    ls = socket.socket()
    ls.bind(("127.0.0.1", 0))
    ls.listen(1)
    client = socket.create_connection(ls.getsockname(), timeout=30)
    conn, _ = ls.accept()
    ls.close()
    errf = open(tmp_path / "inetd.stderr", "wb")
    p = subprocess.Popen([posuto, "serve", "-c", path, "--inetd"],
                         stdin=conn.fileno(), stdout=conn.fileno(), stderr=errf)
    conn.close()
    try:
        c = Pop3(sock=client)
        seed003_dialogue(c, md)
        rc = p.wait(timeout=30)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait(timeout=30)
        errf.close()
    log = (tmp_path / "inetd.stderr").read_text(errors="replace")
    assert rc == 0, log
    assert "runtime error" not in log and "Sanitizer" not in log, log
    assert md.contents() == []


def test_inetd_through_pipe(posuto, tmp_path, maildir):
    msgs = [sample_message(i) for i in range(2)]
    for m in msgs:
        maildir.deliver(m)
    cfg = base_config(free_port(), tmp_path / "mail", AllowPlaintextAuth=True)
    path = write_config(tmp_path / "inetd.json", cfg)
    script = (b"USER user1@example.com\r\nPASS password\r\nSTAT\r\nLIST\r\n"
              b"RETR 2\r\nDELE 1\r\nQUIT\r\n")
    p = subprocess.run([posuto, "serve", "-c", path, "--inetd"], input=script,
                       capture_output=True, timeout=60)
    assert p.returncode == 0, p.stderr.decode(errors="replace")
    assert "Sanitizer" not in p.stderr.decode(errors="replace")
    out = p.stdout
    lines = out.split(b"\r\n")
    assert lines[0].startswith(b"+OK")           # greeting
    assert lines[1].startswith(b"+OK")           # USER
    assert lines[2].startswith(b"+OK")           # PASS
    total = sum(len(to_wire(m)) for m in msgs)
    assert lines[3].split()[:3] == [b"+OK", b"2", str(total).encode()]
    assert to_wire(msgs[1]) + b".\r\n" in out
    assert out.rstrip(b"\r\n").split(b"\r\n")[-1].startswith(b"+OK")  # QUIT
    assert maildir.contents() == [msgs[1]]


def test_inetd_stdin_eof_keeps_mail(posuto, tmp_path, maildir):
    """Connection drop in inetd mode (stdin EOF without QUIT) deletes nothing."""
    msgs = [sample_message(i) for i in range(2)]
    for m in msgs:
        maildir.deliver(m)
    cfg = base_config(free_port(), tmp_path / "mail", AllowPlaintextAuth=True)
    path = write_config(tmp_path / "inetd.json", cfg)
    errf = open(tmp_path / "inetd.stderr", "wb")
    p = subprocess.Popen([posuto, "serve", "-c", path, "--inetd"], stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE, stderr=errf, bufsize=0)
    try:
        out = p.stdout
        assert out.readline().startswith(b"+OK")
        for line in (b"USER user1@example.com", b"PASS password", b"DELE 1", b"DELE 2"):
            p.stdin.write(line + b"\r\n")
            r = out.readline()
            assert r.startswith(b"+OK"), (line, r)
        p.stdin.close()  # EOF without QUIT
        rc = p.wait(timeout=30)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait(timeout=30)
        errf.close()
    log = (tmp_path / "inetd.stderr").read_text(errors="replace")
    assert "Sanitizer" not in log and "runtime error" not in log, log
    assert rc == 0, log
    assert sorted(maildir.contents()) == sorted(msgs)
