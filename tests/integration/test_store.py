"""Message content on the wire and the two stores (issue 2: sizes, CRLF,
dot-stuffing, TOP, UIDL, Maildir new->cur, emldir, templates, schemes)."""

import hashlib
import os
import random
import shutil
import subprocess

import pytest

from posuto_testlib import (
    USER1, USER2, Emldir, Maildir, Pop3, dot_stuff, run, sample_message, to_wire,
    wire_top,
)


def test_lf_and_crlf_files_identical_on_the_wire(servers, tmp_path):
    msgs_lf = [sample_message(i) + b".dot\n..dots\n" for i in range(3)]
    msgs_crlf = [m.replace(b"\n", b"\r\n") for m in msgs_lf]
    Maildir(tmp_path / "mail" / USER1)  # user1: LF (Postfix)
    b1 = Maildir(tmp_path / "mail" / USER1)
    b2 = Maildir(tmp_path / "mail" / USER2)
    for a, b in zip(msgs_lf, msgs_crlf):
        b1.deliver(a)
        b2.deliver(b)
    srv = servers.start()
    out = {}
    for user, pw in ((USER1, "password"), (USER2, "test")):
        c = Pop3("127.0.0.1", srv.port)
        c.must_login(user, pw)
        lst = c.list()
        raws = []
        for i in (1, 2, 3):
            c.ok("RETR %d" % i)
            raws.append(c.read_multi_raw())
        out[user] = (c.stat(), lst, raws)
        c.quit()
    assert out[USER1] == out[USER2]
    stat, lst, raws = out[USER1]
    for i, m in enumerate(msgs_crlf):
        assert lst[i + 1] == len(m)          # LIST = un-stuffed CRLF length
        assert raws[i] == dot_stuff(m)       # what went over the wire
    assert stat[1] == sum(len(m) for m in msgs_crlf)


@pytest.mark.parametrize("raw", [
    b"Subject: no final newline\n\nbody without newline",
    b"Subject: no final newline\r\n\r\nbody without newline",
    b"Subject: x\n\n.",                     # last line is a lone dot
    b"Subject: x\n\nends with CR\r",
    b"Subject: lone CR\n\na\rb\n",
])
def test_odd_endings(servers, maildir, raw):
    maildir.deliver(raw)
    srv = servers.start()
    c = Pop3("127.0.0.1", srv.port)
    c.must_login()
    w = to_wire(raw)
    assert c.list() == {1: len(w)}
    c.ok("RETR 1")
    assert c.read_multi_raw() == dot_stuff(w)
    c.quit()


def test_dot_stuffing_round_trip(servers, maildir):
    raw = (b"Subject: dots\n\n"
           b".\n"
           b"..\n"
           b".hidden line\n"
           b"normal\n"
           b". \n"
           b"...\n"
           b"end.\n"
           b".\n")
    maildir.deliver(raw)
    srv = servers.start()
    c = Pop3("127.0.0.1", srv.port)
    c.must_login()
    c.ok("RETR 1")
    wire = c.read_multi_raw()
    assert wire == (b"Subject: dots\r\n\r\n"
                    b"..\r\n"
                    b"...\r\n"
                    b"..hidden line\r\n"
                    b"normal\r\n"
                    b".. \r\n"
                    b"....\r\n"
                    b"end.\r\n"
                    b"..\r\n")
    assert c.list()[1] == len(to_wire(raw))
    c.quit()


def test_eight_bit_and_nul_pass_untouched(servers, maildir):
    raw = (b"Subject: =?UTF-8?B?5pel5pys6Kqe?=\nContent-Type: text/plain; charset=UTF-8\n"
           b"Content-Transfer-Encoding: 8bit\n\n"
           + "日本語の本文です。\n".encode() + bytes(range(0x80, 0x100)) + b"\n"
           + b"nul\x00inside\n")
    maildir.deliver(raw)
    srv = servers.start()
    c = Pop3("127.0.0.1", srv.port)
    c.must_login()
    assert c.retr(1) == to_wire(raw)
    assert c.list()[1] == len(to_wire(raw))
    c.quit()


def five_mb_message():
    rnd = random.Random(5)
    lines = [b"From: big@example.org", b"To: user1@example.com", b"Subject: 5 MB", b""]
    size = 0
    i = 0
    while size < 5 * 1024 * 1024:
        if i % 97 == 0:
            l = b"." + b"d" * 70          # needs stuffing
        else:
            l = bytes(rnd.choice(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/")
                      for _ in range(76))
        lines.append(l)
        size += len(l) + 1
        i += 1
    return b"\n".join(lines) + b"\n"


def test_five_mb_message_streams(servers, maildir):
    big = five_mb_message()
    small = sample_message(1)
    maildir.deliver(big)
    maildir.deliver(small)
    srv = servers.start()
    c = Pop3("127.0.0.1", srv.port)
    c.must_login()
    w = to_wire(big)
    assert c.list() == {1: len(w), 2: len(to_wire(small))}
    got = c.retr(1)
    assert len(got) == len(w)
    assert hashlib.sha256(got).hexdigest() == hashlib.sha256(w).hexdigest()
    # The session continues normally after a big transfer.
    assert c.retr(2) == to_wire(small)
    top = c.multi("TOP 1 3")
    assert b"".join(l + b"\r\n" for l in top) == wire_top(big, 3)
    c.quit()


def test_top(servers, maildir):
    raw = (b"Subject: top\nX-Other: y\n\nbody 1\n.body 2\nbody 3\n")
    noblank = b"Subject: header only\nX: y\n"
    maildir.deliver(raw)
    maildir.deliver(noblank)
    srv = servers.start()
    c = Pop3("127.0.0.1", srv.port)
    c.must_login()
    for k in (0, 1, 2, 3, 100, 1000000):
        c.ok("TOP 1 %d" % k)
        got = c.read_multi()
        assert b"".join(l + b"\r\n" for l in got) == wire_top(raw, k), k
    c.ok("TOP 2 0")
    assert b"".join(l + b"\r\n" for l in c.read_multi()) == to_wire(noblank)
    for bad in ("TOP 1", "TOP 1 -1", "TOP 1 x", "TOP 0 1", "TOP 3 0", "TOP 1 1x"):
        assert c.cmd(bad).startswith(b"-ERR"), bad
    c.quit()


def test_uidl_stable_unique_and_well_formed(servers, maildir, tmp_path):
    msgs, names = [], []
    for i in range(6):
        m = sample_message(i)
        msgs.append(m)
        names.append(maildir.deliver(m, sub="cur" if i % 2 else "new",
                                     info="2,S" if i % 2 else None))
    # Identical content must still get distinct UIDLs.
    maildir.deliver(msgs[0])
    srv = servers.start()
    seen = []
    for _ in range(3):
        c = Pop3("127.0.0.1", srv.port)
        c.must_login()
        u = c.uidl()
        for i in u:
            c.retr(i)
        seen.append(u)
        c.quit()
    assert seen[0] == seen[1] == seen[2]
    vals = list(seen[0].values())
    assert len(set(vals)) == len(vals) == 7
    for v in vals:
        assert 1 <= len(v) <= 70 and all(0x21 <= ord(ch) <= 0x7e for ch in v), v
    assert set(names) <= set(vals)
    # A different server process on the same store agrees.
    srv2 = servers.start(servers.config())
    c = Pop3("127.0.0.1", srv2.port)
    c.must_login()
    assert c.uidl() == seen[0]
    c.quit()


def test_uidl_never_reused_after_delete(servers, maildir):
    names = []
    for i in range(3):
        names.append(maildir.deliver(sample_message(i)))
    srv = servers.start()
    c = Pop3("127.0.0.1", srv.port)
    c.must_login()
    old = c.uidl()
    c.ok("DELE 3")
    c.quit()
    maildir.deliver(sample_message(3))
    d = Pop3("127.0.0.1", srv.port)
    d.must_login()
    new = d.uidl()
    d.quit()
    assert old[3] not in new.values()


def test_maildir_new_to_cur_keeps_info(servers, maildir):
    m_new = sample_message(1)
    m_flag = sample_message(2)
    m_new2 = sample_message(3)
    n1 = maildir.deliver(m_new)
    n2 = maildir.deliver(m_flag, sub="cur", info="2,FS")
    n3 = maildir.deliver(m_new2)
    srv = servers.start()
    c = Pop3("127.0.0.1", srv.port)
    c.must_login()
    uid = c.uidl()
    for i in (1, 2, 3):
        c.retr(i)
    assert c.quit().startswith(b"+OK")
    files = maildir.files()
    assert set(files) == {n1, n2, n3}
    assert files[n1][0] == "cur" and files[n1][2] == m_new
    assert files[n3][0] == "cur"
    sub, full, data = files[n2]
    assert sub == "cur" and data == m_flag
    assert ":2," in full and "F" in full.split(":2,", 1)[1], full
    for f in os.listdir(maildir.path / "cur"):
        assert f.count(":2,") == 1, f  # info part never doubled
    # UIDLs do not change when a file moves from new/ to cur/.
    d = Pop3("127.0.0.1", srv.port)
    d.must_login()
    assert d.uidl() == uid
    d.quit()


def test_maildir_size_hints(servers, maildir):
    raw = sample_message(1) + b"more\n"
    w = len(to_wire(raw))
    name = "1732000500.M5P9.host,S=%d,W=%d" % (len(raw), w)
    maildir.deliver(raw, name=name)
    maildir.deliver(raw, name="1732000501.M6P9.host,S=%d" % len(raw), sub="cur", info="2,S")
    srv = servers.start()
    c = Pop3("127.0.0.1", srv.port)
    c.must_login()
    assert c.list() == {1: w, 2: w}
    assert c.retr(1) == to_wire(raw) and c.retr(2) == to_wire(raw)
    c.quit()


def test_maildir_ignores_tmp_dotfiles_dirs_and_symlinks(servers, maildir, tmp_path):
    good = sample_message(1)
    maildir.deliver(good)
    (maildir.path / "tmp" / "1732009999.M1P1.host").write_bytes(b"Subject: partial\n\nhalf a mess")
    (maildir.path / "new" / ".hidden").write_bytes(b"Subject: hidden\n\n")
    (maildir.path / "new" / "adir").mkdir()
    secret = tmp_path / "secret.txt"
    secret.write_bytes(b"TOP-SECRET-CONTENT\n")
    os.symlink(secret, maildir.path / "new" / "1732007777.M1P1.host")
    os.symlink(secret, maildir.path / "cur" / "1732007778.M1P1.host:2,S")
    srv = servers.start()
    c = Pop3("127.0.0.1", srv.port)
    c.must_login()
    n, _ = c.stat()
    bodies = []
    for i in range(1, n + 1):
        r = c.cmd("RETR %d" % i)
        if r.startswith(b"+OK"):
            bodies.append(b"\n".join(c.read_multi()))
    assert to_wire(good).rstrip(b"\r\n").replace(b"\r\n", b"\n") in bodies
    assert not any(b"TOP-SECRET" in b for b in bodies), "symlink was followed"
    assert not any(b"partial" in b or b"hidden" in b for b in bodies)
    c.quit()
    assert secret.read_bytes() == b"TOP-SECRET-CONTENT\n"


def test_emldir_numeric_order_and_delete(servers, emldir):
    msgs = {n: sample_message(n) for n in (1, 2, 10)}
    for n, m in msgs.items():
        emldir.deliver(m, n=n)
    (emldir.path / "notes.txt").write_bytes(b"not a message")
    srv = servers.start()
    c = Pop3("127.0.0.1", srv.port)
    c.must_login()
    assert c.stat()[0] == 3
    got = [c.retr(i) for i in (1, 2, 3)]
    assert got == [to_wire(msgs[1]), to_wire(msgs[2]), to_wire(msgs[10])]
    c.ok("DELE 2")
    c.quit()
    assert sorted(emldir.files()) == ["1.eml", "10.eml"]
    assert (emldir.path / "notes.txt").exists()


def test_emldir_symlink_not_followed(servers, emldir, tmp_path):
    emldir.deliver(sample_message(1), n=1)
    secret = tmp_path / "secret.txt"
    secret.write_bytes(b"TOP-SECRET-CONTENT\n")
    os.symlink(secret, emldir.path / "2.eml")
    srv = servers.start()
    c = Pop3("127.0.0.1", srv.port)
    c.must_login()
    n, _ = c.stat()
    for i in range(1, n + 1):
        r = c.cmd("RETR %d" % i)
        if r.startswith(b"+OK"):
            assert b"TOP-SECRET" not in b"".join(c.read_multi())
    c.quit()


def test_autodetect_maildir_and_emldir_per_user(servers, tmp_path):
    m1 = Maildir(tmp_path / "mail" / USER1)
    m1.deliver(sample_message(1))
    e2 = Emldir(tmp_path / "mail" / USER2)
    e2.deliver(sample_message(2))
    e2.deliver(sample_message(3))
    srv = servers.start()
    c = Pop3("127.0.0.1", srv.port)
    c.must_login()
    assert c.stat()[0] == 1
    c.quit()
    c = Pop3("127.0.0.1", srv.port)
    c.must_login(USER2, "test")
    assert c.stat()[0] == 2
    c.quit()


def test_empty_or_missing_mailbox(servers, tmp_path):
    (tmp_path / "mail").mkdir()
    srv = servers.start()
    c = Pop3("127.0.0.1", srv.port)
    c.must_login()
    assert c.stat() == (0, 0)
    assert c.multi("LIST") == []
    assert c.multi("UIDL") == []
    assert c.cmd("RETR 1").startswith(b"-ERR")
    c.quit()


def test_unreadable_mailbox_is_sys_error(servers, tmp_path):
    """I9: a broken mailbox is -ERR [SYS/...], never '0 messages'."""
    (tmp_path / "mail").mkdir()
    (tmp_path / "mail" / USER1).write_bytes(b"a file where a directory belongs")
    # Explicit maildir: under "auto" a directory without cur/ would be read
    # as an (empty) emldir by design.
    srv = servers.start(servers.config(MailboxFormat="maildir"))
    c = Pop3("127.0.0.1", srv.port)
    c.cmd("USER " + USER1)
    r = c.cmd("PASS password")
    assert r.startswith(b"-ERR [SYS/"), r
    c.close()
    md = Maildir(tmp_path / "mail" / USER2)
    md.deliver(sample_message(1))
    shutil.rmtree(md.path / "cur")
    (md.path / "cur").write_bytes(b"not a dir")
    c = Pop3("127.0.0.1", srv.port)
    c.cmd("USER " + USER2)
    r = c.cmd("PASS test")
    assert r.startswith(b"-ERR [SYS/"), r
    c.close()


def test_mailbox_path_template(servers, tmp_path):
    md = Maildir(tmp_path / "vmail" / "example.com" / "user1" / "Maildir")
    msgs = [sample_message(i) for i in range(2)]
    for m in msgs:
        md.deliver(m)
    cfg = servers.config(MailboxPath=str(tmp_path / "vmail" / "%d" / "%n" / "Maildir"),
                         MailboxFormat="maildir")
    srv = servers.start(cfg)
    c = Pop3("127.0.0.1", srv.port)
    c.must_login()
    assert c.stat()[0] == 2
    c.ok("DELE 1")
    c.quit()
    assert md.contents() == [msgs[1]]


def test_per_user_mailbox_path_and_format(servers, tmp_path):
    e = Emldir(tmp_path / "elsewhere" / "u1")
    e.deliver(sample_message(1))
    cfg = servers.config(users=[{"UserName": USER1, "Password": "{PLAIN}pw",
                                 "MailboxPath": str(tmp_path / "elsewhere" / "u1"),
                                 "MailboxFormat": "emldir"}])
    srv = servers.start(cfg)
    c = Pop3("127.0.0.1", srv.port)
    c.must_login(USER1, "pw")
    assert c.stat()[0] == 1
    c.quit()


def test_user_name_is_not_a_path(servers, tmp_path):
    """I6: user names never become paths: '../' names do not log in or
    reach other directories."""
    Maildir(tmp_path / "mail" / USER1).deliver(sample_message(1))
    srv = servers.start()
    for name in ("../mail/" + USER1, USER1 + "/../" + USER1, "%u", "user1@example.com\x00x"):
        c = Pop3("127.0.0.1", srv.port)
        try:
            c.send(b"USER " + name.encode() + b"\r\n")
            c.readline()
            c.send(b"PASS password\r\n")
            r = c.readline()
        except (EOFError, OSError):
            r = b"(closed)"
        assert not r.startswith(b"+OK"), (name, r)
        c.close()


# ---------------------------------------------------------------- passwords

def doveadm_hash(scheme, password):
    r = run(["doveadm", "pw", "-s", scheme, "-p", password])
    assert r.returncode == 0, r.stderr
    return r.stdout.decode().strip()


SCHEMES = ["PLAIN", "SHA256", "SHA256.HEX", "SHA512", "SHA512.HEX", "SHA512-CRYPT",
           "BLF-CRYPT", "ARGON2ID"]


@pytest.mark.parametrize("scheme", SCHEMES)
def test_dovecot_password_schemes(servers, maildir, scheme):
    maildir.deliver(sample_message(1))
    h = doveadm_hash(scheme, "pässword 1")
    assert h.startswith("{")
    srv = servers.start(servers.config(users=[{"UserName": USER1, "Password": h}]))
    c = Pop3("127.0.0.1", srv.port)
    assert c.login(USER1, "pässword 2").startswith(b"-ERR [AUTH]")
    c.must_login(USER1, "pässword 1")
    c.quit()


def test_passwd_file(servers, maildir, tmp_path):
    maildir.deliver(sample_message(1))
    pf = tmp_path / "users"
    pf.write_text("# Dovecot passwd-file\n"
                  "%s:%s::::::\n" % (USER1, doveadm_hash("SHA512-CRYPT", "fromfile"))
                  + "other@example.com:{PLAIN}x::::::\n")
    cfg = servers.config(users=[], PasswdFile=str(pf))
    srv = servers.start(cfg)
    c = Pop3("127.0.0.1", srv.port)
    assert c.login(USER1, "password").startswith(b"-ERR [AUTH]")
    c.must_login(USER1, "fromfile")
    assert c.stat()[0] == 1
    c.quit()


@pytest.mark.parametrize("scheme", ["SHA512-CRYPT", "BLF-CRYPT", "ARGON2ID", "SHA256", "SHA512"])
def test_posuto_hash_round_trip_and_doveadm_agrees(servers, maildir, scheme, posuto):
    maildir.deliver(sample_message(1))
    r = subprocess.run([posuto, "hash", "--scheme", scheme], input=b"hunter2 pw\n",
                       capture_output=True, timeout=60)
    assert r.returncode == 0, r.stderr
    h = r.stdout.decode().strip().splitlines()[-1]
    user = {"UserName": USER1, "Password": h}
    if scheme in ("SHA256", "SHA512"):
        # JumboDogX's form: bare hex, read with its HashType.
        import hashlib
        assert h == hashlib.new(scheme.lower(), b"hunter2 pw").hexdigest(), h
        user["HashType"] = scheme
        h = "{%s.HEX}%s" % (scheme, h)
    assert h.startswith("{%s" % scheme), h
    v = run(["doveadm", "pw", "-t", h, "-p", "hunter2 pw"])
    assert v.returncode == 0, (h, v.stdout, v.stderr)
    srv = servers.start(servers.config(users=[user]))
    c = Pop3("127.0.0.1", srv.port)
    c.must_login(USER1, "hunter2 pw")
    c.quit()
