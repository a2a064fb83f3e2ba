"""Command line: check-config, --version, --help, serve startup errors."""

import re
import subprocess

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
