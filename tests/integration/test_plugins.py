"""posuto's shared modules (lib/plugin.h): the SQL drivers and the web
admin's parsers are loaded only when used, from next to the binary or from
../lib/posuto; a binary without them still serves POP3, and a config that
needs one says clearly what is missing."""

import pathlib
import shutil
import subprocess

from posuto_testlib import free_port, posuto_bin, sample_message, write_config


def copy_of_binary(tmp_path, with_modules):
    """posuto installed as PREFIX/sbin/posuto, modules (or not) in
    PREFIX/lib/posuto."""
    prefix = tmp_path / "prefix"
    (prefix / "sbin").mkdir(parents=True)
    shutil.copy2(posuto_bin(), prefix / "sbin" / "posuto")
    if with_modules:
        (prefix / "lib" / "posuto").mkdir(parents=True)
        for m in ("posuto_sql.so", "posuto_parse.so"):
            shutil.copy2(pathlib.Path(posuto_bin()).parent / m,
                         prefix / "lib" / "posuto" / m)
    return str(prefix / "sbin" / "posuto")


def sql_config(tmp_path):
    return write_config(tmp_path / "sql.json", {"Pop3Server": {
        "BindAddress": "127.0.0.1", "Port": free_port(), "MailDir": str(tmp_path),
        "Sql": {"Driver": "pgsql", "Database": "x", "Host": "127.0.0.1",
                "Port": free_port(), "ConnectTimeOut": 1}}})


def test_the_binary_links_none_of_the_module_libraries():
    out = subprocess.run(["ldd", posuto_bin()], capture_output=True, text=True,
                         timeout=60).stdout
    for lib in ("libpq", "libmariadb", "libgmime", "libxml2", "libglib"):
        assert lib not in out, out


def test_installed_tree_finds_its_modules(tmp_path):
    exe = copy_of_binary(tmp_path, with_modules=True)
    r = subprocess.run([exe, "check-config", "-c", sql_config(tmp_path)],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr


def test_missing_module_is_a_clear_config_error(tmp_path):
    exe = copy_of_binary(tmp_path, with_modules=False)
    r = subprocess.run([exe, "check-config", "-c", sql_config(tmp_path)],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 78
    assert "Pop3Server.Sql.Driver: cannot load posuto_sql.so" in r.stderr, r.stderr


def test_without_modules_pop3_is_served(tmp_path):
    exe = copy_of_binary(tmp_path, with_modules=False)
    md = tmp_path / "mail" / "u"
    for d in ("cur", "new", "tmp"):
        (md / d).mkdir(parents=True)
    (md / "new" / "1.M1P1.h").write_bytes(sample_message(0))
    port = free_port()
    cfg = write_config(tmp_path / "p.json", {"Pop3Server": {
        "BindAddress": "127.0.0.1", "Port": port, "MailDir": str(tmp_path / "mail"),
        "LockFile": str(tmp_path / "lock"), "AuthFailDelay": 0,
        "Users": [{"UserName": "u", "Password": "pw", "HashType": "PLAIN"}]}})
    p = subprocess.Popen([exe, "serve", "-c", cfg], stdout=subprocess.DEVNULL,
                         stderr=subprocess.PIPE)
    try:
        r = subprocess.run(["curl", "-sS", "--retry", "30", "--retry-connrefused",
                            "--retry-delay", "1", "--max-time", "90", "-u", "u:pw",
                            "pop3://127.0.0.1:%d/1" % port],
                           capture_output=True, timeout=120)
        assert r.returncode == 0, r.stderr
        assert r.stdout.replace(b"\r\n", b"\n") == sample_message(0)
    finally:
        p.terminate()
        p.wait(timeout=30)
