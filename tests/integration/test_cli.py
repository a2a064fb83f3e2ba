"""Command line: check-config, --version, --help, serve startup errors."""

import os
import pathlib
import re
import shutil
import subprocess
import tempfile

import pytest

from posuto_testlib import SHA256_PASSWORD, base_config, free_port, write_config


def cli(posuto, *args, input=None, timeout=60):
    from posuto_testlib import sanitizer_lines
    r = subprocess.run([posuto, *args], input=input, capture_output=True, timeout=timeout)
    san = sanitizer_lines(r.stderr.decode(errors="replace"))
    assert not san, "sanitizer reports for %s:\n%s" % (args, "\n".join(san))
    return r


def test_version(posuto):
    r = cli(posuto, "--version")
    assert r.returncode == 0, r.stderr
    out = (r.stdout + r.stderr).decode()
    assert "posuto" in out.lower() and re.search(r"\d+\.\d+", out), out


@pytest.mark.parametrize("args", [["--help"], ["serve", "--help"], ["check-config", "--help"],
                                  ["hash", "--help"]])
def test_help_everywhere(posuto, args):
    r = cli(posuto, *args)
    assert r.returncode == 0, (args, r.stderr)
    out = (r.stdout + r.stderr).decode()
    assert "usage" in out.lower() or "Usage" in out, out
    if args == ["--help"]:
        for word in ("serve", "check-config", "hash"):
            assert word in out, out


def test_unknown_subcommand_fails(posuto):
    r = cli(posuto, "no-such-command")
    assert r.returncode != 0


def test_check_config_valid_prints_effective_config_without_secrets(posuto, tmp_path):
    cfg = base_config(free_port(), tmp_path / "mail")
    cfg["Pop3Server"]["Users"].append({"UserName": "u3@example.com", "Password": "{PLAIN}SuperSecret123",
                                       "ApopSecret": "ApopSecret456"})
    path = write_config(tmp_path / "ok.json", cfg)
    r = cli(posuto, "check-config", "-c", path)
    assert r.returncode == 0, r.stderr
    out = r.stdout.decode()
    assert "user1@example.com" in out
    for secret in (SHA256_PASSWORD, "SuperSecret123", "ApopSecret456"):
        assert secret not in out + r.stderr.decode()
    # Defaults are filled in: the idle timeout we set, e.g.
    assert "60" in out


def test_check_config_default_timeout_is_600(posuto, tmp_path):
    cfg = base_config(free_port(), tmp_path / "mail")
    del cfg["Pop3Server"]["TimeOut"]
    path = write_config(tmp_path / "ok.json", cfg)
    r = cli(posuto, "check-config", "-c", path)
    assert r.returncode == 0, r.stderr
    assert "600" in r.stdout.decode()


def test_check_config_seed000_with_unix_maildir_loads(posuto, tmp_path):
    """Seed 000's multi-user config with only MailDir changed loads as is
    (port 110 on 0.0.0.0; check-config binds nothing)."""
    import copy
    from test_session import SEED000_MULTI
    cfg = copy.deepcopy(SEED000_MULTI)
    cfg["Pop3Server"]["MailDir"] = str(tmp_path / "Mailboxes")
    path = write_config(tmp_path / "seed.json", cfg)
    r = cli(posuto, "check-config", "-c", path)
    assert r.returncode == 0, r.stdout + r.stderr
    out = r.stdout.decode()
    assert "user2@example.com" in out and "110" in out


def test_check_config_seed000_windows_maildir_is_named(posuto, tmp_path):
    """Verbatim seed 000 (Windows MailDir): if refused, the message names
    the file, line 7 and MailDir."""
    from test_session import SEED000_MULTI
    path = write_config(tmp_path / "seed.json", SEED000_MULTI)
    r = cli(posuto, "check-config", "-c", path)
    if r.returncode != 0:
        assert r.returncode == 78
        assert re.search(re.escape(path) + r":7:\d+: [^\n]*MailDir", errors_of(r)), errors_of(r)


def errors_of(r):
    return (r.stdout + r.stderr).decode()


def test_check_config_wrong_type_names_file_line_key(posuto, tmp_path):
    text = ('{\n'
            '  "Pop3Server": {\n'
            '    "Enabled": true,\n'
            '    "BindAddress": "127.0.0.1",\n'
            '    "Port": "one hundred ten",\n'
            '    "TimeOut": 30,\n'
            '    "MailDir": "/tmp/x",\n'
            '    "Users": []\n'
            '  }\n'
            '}\n')
    p = tmp_path / "bad.json"
    p.write_text(text)
    r = cli(posuto, "check-config", "-c", str(p))
    assert r.returncode == 78, errors_of(r)
    out = errors_of(r)
    m = re.search(re.escape(str(p)) + r":(\d+):(\d+): [^\n]*Port", out)
    assert m, out
    assert m.group(1) == "5", out


def test_check_config_reports_every_error(posuto, tmp_path):
    text = ('{"Pop3Server": {\n'
            '  "Enabled": true,\n'
            '  "Port": -5,\n'
            '  "TimeOut": "soon",\n'
            '  "MailDir": 42,\n'
            '  "Users": [{"UserName": "a@b", "Password": "abc", "HashType": "MD4"}]\n'
            '}}\n')
    p = tmp_path / "bad.json"
    p.write_text(text)
    r = cli(posuto, "check-config", "-c", str(p))
    assert r.returncode == 78
    out = errors_of(r)
    for line, key in ((3, "Port"), (4, "TimeOut"), (5, "MailDir"), (6, "HashType")):
        assert re.search(re.escape(str(p)) + r":%d:\d+: [^\n]*%s" % (line, key), out), (key, out)


def test_check_config_malformed_json(posuto, tmp_path):
    p = tmp_path / "broken.json"
    p.write_text('{\n  "Pop3Server": {\n    "Port": 110,\n    "Users": [\n  }\n}\n')
    r = cli(posuto, "check-config", "-c", str(p))
    assert r.returncode == 78
    assert re.search(re.escape(str(p)) + r":\d+:\d+:", errors_of(r)), errors_of(r)


def test_check_config_unknown_key_warns(posuto, tmp_path):
    cfg = base_config(free_port(), tmp_path / "mail")
    cfg["Pop3Server"]["FrobnicateLevel"] = 3
    cfg["Pop3Server"]["Users"][0]["Colour"] = "blue"
    path = write_config(tmp_path / "warn.json", cfg)
    r = cli(posuto, "check-config", "-c", path)
    assert r.returncode == 0, errors_of(r)
    out = errors_of(r)
    assert "FrobnicateLevel" in out and "Colour" in out, out
    assert "warning" in out.lower()


def test_check_config_missing_file(posuto, tmp_path):
    r = cli(posuto, "check-config", "-c", str(tmp_path / "nope.json"))
    assert r.returncode != 0
    assert "nope.json" in errors_of(r)


def test_serve_with_bad_config_exits_78(posuto, tmp_path):
    p = tmp_path / "bad.json"
    p.write_text('{"Pop3Server": {"Port": "x", "Users": []}}')
    r = cli(posuto, "serve", "-c", str(p), timeout=30)
    assert r.returncode == 78, errors_of(r)
    assert str(p) in errors_of(r)


def test_serve_port_in_use_fails_clearly(posuto, tmp_path):
    import socket
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(1)
    port = s.getsockname()[1]
    path = write_config(tmp_path / "c.json", base_config(port, tmp_path / "mail"))
    try:
        r = cli(posuto, "serve", "-c", path, timeout=30)
    finally:
        s.close()
    assert r.returncode != 0
    assert str(port) in errors_of(r), errors_of(r)


def test_disabled_server_refuses_to_start(posuto, tmp_path):
    cfg = base_config(free_port(), tmp_path / "mail")
    cfg["Pop3Server"]["Enabled"] = False
    path = write_config(tmp_path / "c.json", cfg)
    r = cli(posuto, "serve", "-c", path, timeout=30)
    assert r.returncode != 0


def test_hash_reads_stdin(posuto):
    r = cli(posuto, "hash", "--scheme", "SHA512-CRYPT", input=b"password\n")
    assert r.returncode == 0, r.stderr
    h = r.stdout.decode().strip()
    assert h.startswith("{SHA512-CRYPT}$6$"), h
    assert "password" not in h
    r2 = cli(posuto, "hash", "--scheme", "SHA512-CRYPT", input=b"password\n")
    assert r2.stdout.decode().strip() != h  # fresh salt


def test_hash_unknown_scheme(posuto):
    r = cli(posuto, "hash", "--scheme", "ROT13", input=b"password\n")
    assert r.returncode != 0


# ------------------------------------------------- issue 9: check-config

def line_col_of(text, needle, nth=0):
    """1-based line:column of the nth occurrence of needle in text."""
    pos = -1
    for _ in range(nth + 1):
        pos = text.index(needle, pos + 1)
    line = text.count("\n", 0, pos) + 1
    col = pos - (text.rfind("\n", 0, pos) + 1) + 1
    return line, col


def check(posuto, path, *extra):
    r = cli(posuto, "check-config", "-c", str(path), *extra)
    return r, errors_of(r)


def test_check_config_eof_points_at_the_last_character(posuto, tmp_path):
    """jansson says trunc.json:7:0 (past the end): show 6:5, the ']'."""
    p = tmp_path / "trunc.json"
    p.write_text('{\n  "Pop3Server": {\n    "MailDir": "/m",\n    "Users": [\n'
                 '      {"UserName": "a", "Password": "{PLAIN}x"}\n    ]\n')
    r, out = check(posuto, p)
    assert r.returncode == 78, out
    assert "%s:6:5: Pop3Server: invalid JSON: unexpected end of file" % p in out, out
    assert ":7:0:" not in out, out


def test_check_config_trailing_comma_at_the_comma(posuto, tmp_path):
    text = '{\n  "Pop3Server": {\n    "MailDir": "/m",\n    "Port": 110,\n  }\n}\n'
    p = tmp_path / "comma.json"
    p.write_text(text)
    r, out = check(posuto, p)
    assert r.returncode == 78, out
    line, col = line_col_of(text, "110,")
    assert "%s:%d:%d: Pop3Server: invalid JSON: trailing comma before '}'" % (
        p, line, col + 3) in out, out


def test_check_config_unknown_key_suggests_the_known_one(posuto, tmp_path):
    cfg = base_config(free_port(), tmp_path / "mail")
    cfg["Pop3Server"]["listen_adress"] = "127.0.0.1"
    path = write_config(tmp_path / "typo.json", cfg)
    r, out = check(posuto, path)
    assert r.returncode == 0, out
    assert re.search(r"warning: %s:\d+:\d+: Pop3Server\.listen_adress: unknown key, ignored "
                     r"\(did you mean \"Listen\"\?\)" % re.escape(path), out), out


def test_check_config_unknown_run_as_user_fails_like_serve(posuto, tmp_path):
    """check-config passed this, then serve failed (ExecStartPre ok, start not)."""
    cfg = base_config(free_port(), tmp_path / "mail", RunAsUser="no-such-user-xyz")
    path = write_config(tmp_path / "c.json", cfg)
    text = pathlib.Path(path).read_text()
    line, col = line_col_of(text, '"no-such-user-xyz"')
    r, out = check(posuto, path)
    assert r.returncode == 78, out
    assert '%s:%d:%d: Pop3Server.RunAsUser: no such user "no-such-user-xyz"' % (
        path, line, col) in out, out
    s = cli(posuto, "serve", "-c", path, timeout=30)
    assert s.returncode == 78, errors_of(s)
    assert "%s:%d:%d: Pop3Server.RunAsUser:" % (path, line, col) in errors_of(s)


def test_check_config_disabled_fails_like_serve(posuto, tmp_path):
    cfg = base_config(free_port(), tmp_path / "mail", Enabled=False)
    path = write_config(tmp_path / "c.json", cfg)
    r, out = check(posuto, path)
    assert r.returncode == 78, out
    assert re.search(re.escape(path) + r":\d+:\d+: Pop3Server\.Enabled: is false", out), out


def test_check_config_tls_errors_name_file_line_and_key(posuto, tmp_path, tls_cert, tls_cert2):
    cert, key = tls_cert
    cfg = base_config(free_port(), tmp_path / "mail")
    cfg["Pop3Server"]["Tls"] = {"Certificate": str(tmp_path / "missing.pem"), "Key": key}
    path = write_config(tmp_path / "c.json", cfg)
    line, col = line_col_of(pathlib.Path(path).read_text(), '"%s"' % (tmp_path / "missing.pem"))
    r, out = check(posuto, path)
    assert r.returncode == 78, out
    assert "%s:%d:%d: Pop3Server.Tls.Certificate: cannot read %s" % (
        path, line, col, tmp_path / "missing.pem") in out, out
    # A key that does not match the certificate: the Key line.
    cfg["Pop3Server"]["Tls"] = {"Certificate": cert, "Key": tls_cert2[1]}
    path = write_config(tmp_path / "c.json", cfg)
    line, col = line_col_of(pathlib.Path(path).read_text(), '"%s"' % tls_cert2[1])
    r, out = check(posuto, path)
    assert r.returncode == 78, out
    assert "%s:%d:%d: Pop3Server.Tls.Key: " % (path, line, col) in out, out


def test_check_config_passwd_file_error_names_the_key(posuto, tmp_path):
    cfg = base_config(free_port(), tmp_path / "mail", PasswdFile="users.passwd")
    path = write_config(tmp_path / "c.json", cfg)
    line, col = line_col_of(pathlib.Path(path).read_text(), '"users.passwd"')
    r, out = check(posuto, path)
    assert r.returncode == 78, out
    assert "%s:%d:%d: Pop3Server.PasswdFile: %s: No such file" % (
        path, line, col, tmp_path / "users.passwd") in out, out


@pytest.mark.parametrize("args,wrong", [
    (["check-config", "serve", "--inetd"], "'serve'"),
    (["check-config", "--inetd"], "--inetd"),
    (["check-config", "--syslog"], "--syslog"),
    (["check-config", "--frob"], "'--frob'"),
    (["serve", "extra"], "'extra'"),
    (["check-config", "-c"], "'-c'"),
])
def test_usage_errors_say_which_argument(posuto, args, wrong):
    r = cli(posuto, *args)
    assert r.returncode == 64, errors_of(r)
    first = r.stderr.decode().splitlines()[0]
    assert wrong in first and not first.startswith("usage"), r.stderr.decode()


def test_check_config_shows_what_is_in_effect(posuto, tmp_path, tls_cert):
    import json
    cert, key = tls_cert
    cfg = base_config(free_port(), tmp_path / "mail", MailboxFormat="maildir")
    p = cfg["Pop3Server"]
    del p["BindAddress"], p["Port"]
    p["Listen"] = [{"Address": "127.0.0.1", "Port": free_port(), "Tls": "none"},
                   {"Address": "127.0.0.1", "Port": free_port(), "Tls": "implicit"}]
    p["Tls"] = {"Certificate": cert, "Key": key}
    p["Users"][1]["MailboxFormat"] = "emldir"
    path = write_config(tmp_path / "c.json", cfg)
    r, out = check(posuto, path)
    assert r.returncode == 0, out
    eff = json.loads(r.stdout)["Pop3Server"]
    assert [l["Tls"] for l in eff["Listen"]] == ["starttls", "implicit"], eff["Listen"]
    assert [u["MailboxFormat"] for u in eff["Users"]] == ["maildir", "emldir"], eff["Users"]
    assert eff["Users"][0]["MailboxPath"] == str(tmp_path / "mail") + "/%u", eff["Users"]


# ------------------------------------ issue 9: world-readable secrets

@pytest.fixture
def public_dir():
    """A directory everyone can enter (pytest's tmp_path is 0700)."""
    d = pathlib.Path(tempfile.mkdtemp(prefix="posuto-public-"))
    os.chmod(d, 0o755)
    yield d
    shutil.rmtree(d, ignore_errors=True)


@pytest.mark.parametrize("user,key", [
    ({"UserName": "p@example.com", "Password": "secret", "HashType": "PLAIN"}, "Password"),
    ({"UserName": "p@example.com", "Password": "{PLAIN}secret"}, "Password"),
    ({"UserName": "p@example.com", "Password": SHA256_PASSWORD, "HashType": "SHA256",
      "ApopSecret": "tanstaaf"}, "ApopSecret"),
])
def test_world_readable_plaintext_secret_is_refused(posuto, public_dir, user, key):
    cfg = base_config(free_port(), public_dir / "mail")
    cfg["Pop3Server"]["Users"].append(user)
    path = write_config(public_dir / "c.json", cfg)
    os.chmod(path, 0o644)
    r, out = check(posuto, path)
    assert r.returncode == 78, out
    assert re.search(re.escape(path) + r":\d+:\d+: Pop3Server\.Users\[2\]\.%s: a plaintext-"
                     r"equivalent secret in a file everyone on this host can read" % key, out), out
    s = cli(posuto, "serve", "-c", path, timeout=30)
    assert s.returncode == 78, errors_of(s)
    # Private again: accepted, nothing said about it.
    os.chmod(path, 0o600)
    r, out = check(posuto, path)
    assert r.returncode == 0, out
    assert "readable" not in out, out


def test_world_readable_hashes_only_warn(posuto, public_dir):
    path = write_config(public_dir / "c.json", base_config(free_port(), public_dir / "mail"))
    os.chmod(path, 0o644)
    r, out = check(posuto, path)
    assert r.returncode == 0, out
    assert re.search(r"warning: %s:\d+:\d+: Pop3Server\.Users: readable by everyone"
                     % re.escape(path), out), out


def test_world_readable_passwd_file_with_plaintext_is_refused(posuto, public_dir):
    pf = public_dir / "users"
    pf.write_text("a@example.com:{SHA256.HEX}%s::::::\nb@example.com:{PLAIN}secret::::::\n"
                  % SHA256_PASSWORD)
    os.chmod(pf, 0o644)
    cfg = base_config(free_port(), public_dir / "mail", users=[], PasswdFile=str(pf))
    path = write_config(public_dir / "c.json", cfg)
    os.chmod(path, 0o600)
    r, out = check(posuto, path)
    assert r.returncode == 78, out
    assert "%s:2: a plaintext password in a file everyone on this host can read" % pf in out, out
    os.chmod(pf, 0o640)
    r, out = check(posuto, path)
    assert r.returncode == 0, out
    # Hashes only: a warning, as before.
    pf.write_text("a@example.com:{SHA256.HEX}%s::::::\n" % SHA256_PASSWORD)
    os.chmod(pf, 0o644)
    r, out = check(posuto, path)
    assert r.returncode == 0, out
    assert "warning: %s: readable by everyone" % pf in out, out


# ------------------------------------------------------- issue 9: hash

@pytest.mark.parametrize("scheme", ["SHA256", "sha512"])
def test_hash_jumbodogx_hex(posuto, tmp_path, scheme):
    """What a JumboDogX config holds in Password with this HashType."""
    import hashlib
    r = cli(posuto, "hash", "--scheme", scheme, input=b"p4ss word\n")
    assert r.returncode == 0, r.stderr
    h = r.stdout.decode().strip()
    assert h == hashlib.new(scheme.lower(), b"p4ss word").hexdigest(), h
    # ... and it is accepted there.
    cfg = base_config(free_port(), tmp_path / "mail",
                      users=[{"UserName": "u@example.com", "Password": h,
                              "HashType": scheme.upper()}])
    r, out = check(posuto, write_config(tmp_path / "c.json", cfg))
    assert r.returncode == 0, out
    r = cli(posuto, "hash", "--scheme", scheme + ".HEX", input=b"p4ss word\n")
    assert r.stdout.decode().strip() == "{%s.HEX}%s" % (scheme.upper(), h)


@pytest.mark.parametrize("args", [["--help"], ["hash", "--help"]])
def test_help_lists_the_schemes(posuto, args):
    r = cli(posuto, *args)
    out = r.stdout.decode()
    for scheme in ("PLAIN", "SHA256", "SHA512.HEX", "SHA512-CRYPT", "ARGON2ID", "SCRAM-SHA-256"):
        assert scheme in out, out
