"""Issue 11, `posuto doctor`: where each user's mailbox is, its owner, mode
and access as the server's user, message count, LF files, the TLS
certificate's expiry, and where a real Postfix (Debian's postconf and
postmap reading a private config directory made here: `postconf -c DIR`)
delivers that user's mail against where posuto reads it -- seed 001's
problem: Postfix wrote ~/Maildir, Dovecot read /var/mail/%u/Maildir.

No daemon runs: doctor reads the same files the server would."""

import os
import pathlib
import pwd
import random
import re
import shutil
import subprocess

import pytest

from posuto_testlib import SHA256_PASSWORD, posuto_bin, run, write_config

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="needs root (useradd, chown)")
POSTCONF = shutil.which("postconf") or ("/usr/sbin/postconf"
                                        if os.path.exists("/usr/sbin/postconf") else None)
needs_postfix = pytest.mark.skipif(POSTCONF is None, reason="Postfix is not installed "
                                   "(scripts/deps.sh check installs it)")


@pytest.fixture
def sysuser(tmp_path):
    """A throwaway system account whose home is under tmp_path, removed at
    the end: local(8) delivers to accounts, so seed 001 needs one."""
    name = "pdoc%05d" % random.randrange(100000)
    home = tmp_path / "home" / name
    res = run(["useradd", "-M", "-d", str(home), "-s", "/usr/sbin/nologin", name])
    assert res.returncode == 0, res.stderr
    try:
        home.mkdir(parents=True)
        pw = pwd.getpwnam(name)
        os.chown(home, pw.pw_uid, pw.pw_gid)
        yield pw
    finally:
        run(["userdel", name])


def postfix_dir(tmp_path, main_cf):
    """A private Postfix configuration directory: main.cf as given, master.cf
    Debian's own."""
    d = tmp_path / "postfix"
    d.mkdir(exist_ok=True)
    (d / "main.cf").write_text(main_cf)
    shutil.copy("/usr/share/postfix/master.cf.dist", d / "master.cf")
    return d


def maildir(path, pw=None, mode=0o700):
    path = pathlib.Path(path)
    for sub in ("cur", "new", "tmp"):
        (path / sub).mkdir(parents=True, exist_ok=True)
    if pw is not None:
        for p in [path] + [path / s for s in ("cur", "new", "tmp")]:
            os.chown(p, pw.pw_uid, pw.pw_gid)
    for p in [path] + [path / s for s in ("cur", "new", "tmp")]:
        os.chmod(p, mode)
    # Every directory above must let the server's user through.
    return path


def deliver(md, name, data, pw=None):
    p = pathlib.Path(md) / "new" / name
    p.write_bytes(data)
    if pw is not None:
        os.chown(p, pw.pw_uid, pw.pw_gid)
    return p


def config(tmp_path, users, **extra):
    p = {"Enabled": True, "BindAddress": "127.0.0.1", "Port": 1,
         "Users": users, "LockFile": "posuto.lock"}
    p.update(extra)
    path = write_config(tmp_path / "posuto.json", {"Pop3Server": p})
    os.chmod(path, 0o600)
    return path


def user(name, **kw):
    u = {"UserName": name, "Password": SHA256_PASSWORD, "HashType": "SHA256"}
    u.update(kw)
    return u


def doctor(cfg, *args, env=None):
    """(exit code, findings): each paragraph with its whitespace folded, so
    a test does not depend on where a line was wrapped."""
    res = run([posuto_bin(), "doctor", "-c", str(cfg)] + [str(a) for a in args],
              env=env)
    out = res.stdout.decode()
    paras = [" ".join(p.split()) for p in out.split("\n\n") if p.strip()]
    assert "Sanitizer" not in res.stderr.decode(), res.stderr.decode()
    return res.returncode, paras, out + res.stderr.decode()


def finding(paras, level, *needles):
    """The one paragraph of that level holding every needle."""
    hits = [p for p in paras if p.startswith(level + ":") and all(n in p for n in needles)]
    assert hits, "no %s finding with %r in:\n%s" % (level, needles, "\n".join(paras))
    return hits[0]


def traverse(tmp_path):
    # tmp_path's parents are 0700 for root only; the server's user must
    # be able to walk to its mailbox, as it would to /var/mail.
    p = pathlib.Path(tmp_path)
    while str(p) not in ("/", "/tmp"):
        os.chmod(p, os.stat(p).st_mode | 0o711)
        p = p.parent


# ------------------------------------------------------------- Postfix

@needs_root
@needs_postfix
def test_seed001_home_maildir_vs_var_mail(tmp_path, sysuser):
    """Postfix home_mailbox = Maildir/ delivers to ~/Maildir/; posuto reads
    /var/mail/%u/Maildir (a temp root here): doctor says where each side
    is and gives a fix for both."""
    name, home = sysuser.pw_name, sysuser.pw_dir
    pf = postfix_dir(tmp_path, "home_mailbox = Maildir/\n")
    spool = tmp_path / "var" / "mail"
    md_home = maildir(pathlib.Path(home) / "Maildir", sysuser)
    deliver(md_home, "1732000001.M1P1.host", b"Subject: lost\n\nwhere am I\n", sysuser)
    maildir(spool / name / "Maildir", sysuser)
    cfg = config(tmp_path, [user(name)], MailboxPath=str(spool) + "/%u/Maildir")
    rc, paras, raw = doctor(cfg, "--postfix-config", pf)
    assert rc == 1, raw
    e = finding(paras, "ERROR", "Postfix delivers mail for %s to %s/Maildir/ "
                "(home_mailbox = Maildir/), but posuto reads %s/%s/Maildir"
                % (name, home, spool, name))
    # posuto's side, and Postfix's (seed 001 moved the home).
    assert '"MailboxPath": "%s/%%u/Maildir"' % os.path.dirname(home) in e, e
    assert "usermod -d %s/%s %s" % (spool, name, name) in e, e
    # The mailbox posuto reads is fine in itself: empty, accessible.
    finding(paras, "OK", "%s: posuto reads the Maildir at %s/%s/Maildir" % (name, spool, name),
            "0 messages")


@needs_root
@needs_postfix
def test_seed001_passwd_file_user_gets_percent_h(tmp_path, sysuser):
    """The same with seed 001's Dovecot passwd-file (home field = the
    account's home): the posuto-side fix is "%h/Maildir"."""
    name, home = sysuser.pw_name, sysuser.pw_dir
    pf = postfix_dir(tmp_path, "home_mailbox = Maildir/\n")
    spool = tmp_path / "var" / "mail"
    maildir(pathlib.Path(home) / "Maildir", sysuser)
    users = tmp_path / "users"
    users.write_text("%s:{SHA256.HEX}%s:%d:%d::%s::\n" % (
        name, SHA256_PASSWORD, sysuser.pw_uid, sysuser.pw_gid, home))
    os.chmod(users, 0o600)
    cfg = config(tmp_path, [], PasswdFile=str(users),
                 MailboxPath=str(spool) + "/%u/Maildir")
    rc, paras, raw = doctor(cfg, "--postfix-config", pf, name)
    assert rc == 1, raw
    e = finding(paras, "ERROR", "Postfix delivers mail for %s to %s/Maildir/" % (name, home),
                "but posuto reads %s/%s/Maildir" % (spool, name))
    assert '"MailboxPath": "%h/Maildir"' in e, e
    finding(paras, "WARN", "%s/%s/Maildir does not exist" % (spool, name))


@needs_root
@needs_postfix
def test_matching_config_is_ok(tmp_path, sysuser):
    name, home = sysuser.pw_name, sysuser.pw_dir
    pf = postfix_dir(tmp_path, "home_mailbox = Maildir/\n")
    md = maildir(pathlib.Path(home) / "Maildir", sysuser)
    for i in range(2):
        deliver(md, "173200000%d.M%dP1.host" % (i, i), b"Subject: %d\r\n\r\nbody\r\n" % i,
                sysuser)
    cfg = config(tmp_path, [user(name)],
                 MailboxPath=os.path.dirname(home) + "/%u/Maildir")
    rc, paras, raw = doctor(cfg, "--postfix-config", pf)
    assert rc == 0, raw
    finding(paras, "OK", "Postfix delivers mail for %s to %s/Maildir/ (home_mailbox = "
            "Maildir/), the Maildir posuto reads" % (name, home))
    finding(paras, "OK", "posuto reads the Maildir at %s/Maildir" % home, "2 messages")
    assert not [p for p in paras if p.startswith("ERROR")], raw
    # CRLF files: nothing to say about line ends.
    assert not [p for p in paras if "LF-only" in p], raw


@needs_root
@needs_postfix
def test_mbox_spool_vs_posuto_maildir(tmp_path, sysuser):
    """No home_mailbox: local(8) appends to mail_spool_directory/USER, an
    mbox file; posuto reads a Maildir: a mismatch, with Postfix-side fix."""
    name, home = sysuser.pw_name, sysuser.pw_dir
    spool = tmp_path / "spool"
    spool.mkdir()
    pf = postfix_dir(tmp_path, "mail_spool_directory = %s\n" % spool)
    maildir(pathlib.Path(home) / "Maildir", sysuser)
    cfg = config(tmp_path, [user(name)],
                 MailboxPath=os.path.dirname(home) + "/%u/Maildir")
    rc, paras, raw = doctor(cfg, "--postfix-config", pf, name)
    assert rc == 1, raw
    e = finding(paras, "ERROR", "Postfix appends mail for %s to the mbox file %s/%s"
                % (name, spool, name), "but posuto reads the directory %s/Maildir" % home)
    assert "home_mailbox = Maildir/" in e, e


@needs_root
@needs_postfix
def test_lmtp_and_pipe_to_posuto_are_fine(tmp_path, sysuser):
    """mailbox_transport lmtp: to posuto's socket, or a master.cf pipe
    running posuto deliver: Postfix hands the mail to posuto."""
    name, home = sysuser.pw_name, sysuser.pw_dir
    cfg = config(tmp_path, [user(name)],
                 MailboxPath=os.path.dirname(home) + "/%u/Maildir")
    pf = postfix_dir(tmp_path, "mailbox_transport = lmtp:unix:/run/posuto/lmtp\n")
    rc, paras, raw = doctor(cfg, "--postfix-config", pf, name)
    finding(paras, "OK", "Postfix hands mail for %s to posuto over LMTP" % name)
    pf = postfix_dir(tmp_path, "mailbox_transport = posuto\n")
    with open(pf / "master.cf", "a") as f:
        f.write("posuto unix - n n - - pipe\n"
                "  flags=DRhu user=nobody argv=/usr/local/sbin/posuto deliver "
                "-f ${sender} ${recipient}\n")
    rc, paras, raw = doctor(cfg, "--postfix-config", pf, name)
    finding(paras, "OK", "Postfix hands mail for %s to posuto deliver through the pipe "
            "transport posuto" % name)
    pf = postfix_dir(tmp_path, "mailbox_command = /usr/lib/dovecot/dovecot-lda -f "
                     "\"$SENDER\" -a \"$RECIPIENT\"\n")
    rc, paras, raw = doctor(cfg, "--postfix-config", pf, name)
    finding(paras, "WARN", "Postfix hands mail for %s to /usr/lib/dovecot/dovecot-lda" % name,
            "mail_location")


@needs_root
@needs_postfix
def test_virtual_mailbox_maps(tmp_path):
    """A virtual mailbox domain: virtual_mailbox_base + the map's entry
    (looked up with postmap), against posuto's path."""
    base = tmp_path / "vmail"
    maps = tmp_path / "vmaps"
    maps.write_text("ann@example.net example.net/ann/\n")
    pf = postfix_dir(tmp_path, "virtual_mailbox_domains = example.net\n"
                     "virtual_mailbox_base = %s\n"
                     "virtual_mailbox_maps = texthash:%s\n" % (base, maps))
    cfg = config(tmp_path, [user("ann@example.net"), user("bob@example.net")],
                 MailboxPath=str(base) + "/%d/%n")
    rc, paras, raw = doctor(cfg, "--postfix-config", pf)
    finding(paras, "OK", "Postfix delivers mail for ann@example.net to %s/example.net/ann/"
            % base, "the Maildir posuto reads")
    finding(paras, "ERROR", "bob@example.net is not in virtual_mailbox_maps")
    assert rc == 1


# ------------------------------------------------------ mailbox checks

@needs_root
def test_missing_wrong_owner_world_writable(tmp_path, sysuser):
    """RunAsUser is the account: a missing mailbox is a warning; one that
    belongs to nobody (0700) cannot be read by it; a world-writable new/
    refuses logins."""
    traverse(tmp_path)
    nobody = pwd.getpwnam("nobody")
    root = tmp_path / "boxes"
    root.mkdir()
    os.chmod(root, 0o755)
    maildir(root / "foreign", nobody)
    md = maildir(root / "open", sysuser)
    os.chmod(md / "new", 0o777)
    cfg = config(tmp_path, [user("gone", MailboxPath=str(root / "gone")),
                            user("foreign", MailboxPath=str(root / "foreign")),
                            user("open", MailboxPath=str(root / "open"))],
                 RunAsUser=sysuser.pw_name)
    rc, paras, raw = doctor(cfg, "--postfix-config", tmp_path / "no-postfix")
    assert rc == 1, raw
    finding(paras, "OK", "posuto runs as %s (RunAsUser" % sysuser.pw_name)
    finding(paras, "WARN", "gone: the mailbox %s does not exist" % (root / "gone"))
    finding(paras, "WARN", "foreign: %s belongs to nobody" % (root / "foreign"),
            "chown -R %s:" % sysuser.pw_name)
    finding(paras, "ERROR", "foreign: %s, the user posuto runs as, cannot read and write %s"
            % (sysuser.pw_name, root / "foreign"), "Permission denied")
    finding(paras, "ERROR", "%s/new is writable by every user" % (root / "open"),
            "logins are refused")
    # Only foreign's access fails: open's owner is the server's user.
    assert not [p for p in paras if p.startswith("ERROR: open:")
                and "cannot read and write" in p], raw


@needs_root
def test_lf_only_files_counted(tmp_path, sysuser):
    traverse(tmp_path)
    md = maildir(tmp_path / "box", sysuser)
    for i in range(3):
        deliver(md, "17320000%02d.M%dP1.host" % (i, i), b"Subject: lf\n\nbody\n", sysuser)
    for i in range(3, 5):
        deliver(md, "17320000%02d.M%dP1.host" % (i, i), b"Subject: crlf\r\n\r\nbody\r\n",
                sysuser)
    cfg = config(tmp_path, [user("u", MailboxPath=str(md))], RunAsUser=sysuser.pw_name)
    rc, paras, raw = doctor(cfg, "--postfix-config", tmp_path / "none")
    assert rc == 0, raw
    e = finding(paras, "WARN", "u: 3 of the 5 message files sampled in %s have LF-only "
                "line ends" % md)
    assert "posuto deliver" in e and "RETR" in e, e
    finding(paras, "OK", "5 messages")


def make_cert(tmp_path, days):
    cert, key = tmp_path / ("c%d.pem" % days), tmp_path / ("k%d.pem" % days)
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", str(key),
                    "-out", str(cert), "-days", str(days), "-subj", "/CN=localhost"],
                   check=True, capture_output=True, timeout=60)
    os.chmod(key, 0o600)
    return str(cert), str(key)


def test_certificate_expiring_in_10_days_warns(tmp_path):
    box = tmp_path / "box"
    box.mkdir()
    cert, key = make_cert(tmp_path, 10)
    cfg = config(tmp_path, [user("u", MailboxPath=str(box))],
                 Tls={"Certificate": cert, "Key": key})
    rc, paras, raw = doctor(cfg, "--postfix-config", tmp_path / "none")
    e = finding(paras, "WARN", "The TLS certificate %s expires in" % cert)
    # Created just now for 10 days: 9 whole days and some hours left (10
    # within the second it was made).
    assert re.search(r"expires in (9|10) days", e), e
    assert rc == 0, raw
    cert, key = make_cert(tmp_path, 400)
    cfg = config(tmp_path, [user("u", MailboxPath=str(box))],
                 Tls={"Certificate": cert, "Key": key})
    rc, paras, raw = doctor(cfg, "--postfix-config", tmp_path / "none")
    e = finding(paras, "OK", "The TLS certificate %s is valid for" % cert)
    assert re.search(r"valid for (399|400) more days", e), e


def test_without_postfix_still_runs(tmp_path):
    """No Postfix config directory, or no postconf at all: doctor says
    Postfix was not checked and checks everything else."""
    box = tmp_path / "box"
    box.mkdir()
    cfg = config(tmp_path, [user("u", MailboxPath=str(box))])
    rc, paras, raw = doctor(cfg, "--postfix-config", tmp_path / "nowhere")
    assert rc == 0, raw
    finding(paras, "WARN", "Postfix not checked", str(tmp_path / "nowhere"), "main.cf")
    finding(paras, "OK", "u: posuto reads the emldir at %s" % box, "0 messages")
    # postconf not on PATH (posuto itself needs no PATH).
    empty = tmp_path / "bin"
    empty.mkdir()
    rc, paras, raw = doctor(cfg, env={"PATH": str(empty)})
    assert rc == 0, raw
    finding(paras, "OK", "Postfix not checked: postconf is not on PATH")
    finding(paras, "OK", "u: posuto reads the emldir at %s" % box)


def test_bad_usage_and_unknown_user(tmp_path):
    box = tmp_path / "box"
    box.mkdir()
    cfg = config(tmp_path, [user("u", MailboxPath=str(box))])
    rc, paras, raw = doctor(cfg, "--postfix-config", tmp_path / "none", "nosuch")
    assert rc == 1, raw
    finding(paras, "ERROR", "There is no user nosuch")
    rc, paras, raw = doctor(cfg, "a", "b")
    assert rc == 64, raw
    rc, paras, raw = doctor(cfg, "--bogus")
    assert rc == 64, raw
    (tmp_path / "broken.json").write_text("{ nope")
    rc, paras, raw = doctor(tmp_path / "broken.json")
    assert rc == 1, raw
    finding(paras, "ERROR", "does not load")
