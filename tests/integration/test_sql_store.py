"""The sql: mail store against real PostgreSQL and MariaDB (issue 13).

Each database is a private instance started once per module
(sqlservers.py), with posuto's schema made by `posuto sql init`.  Mail goes
in through `posuto deliver` (and LMTP), comes out through POP3 (poplib and
raw commands), and the database's own statement log shows how it got
there.  The store contract suite (tests/unit/test_store_contract.c) runs
here too, against both databases, so it cannot skip silently.
"""

import os
import pathlib
import poplib
import re
import signal
import smtplib
import subprocess
import sys
import time

import pytest

from posuto_testlib import (
    SHA256_PASSWORD, USER1, USER2, Pop3, Server, base_config, free_port, posuto_bin,
    login_retry_inuse, sample_message, to_wire, write_config,
)
import sqlservers
from sqlservers import PASSWORD, MariaDbServer, PgServer


@pytest.fixture(scope="module")
def pg():
    if not sqlservers.pg_available():
        pytest.skip("PostgreSQL 15 server binaries not installed")
    s = PgServer()
    try:
        s.start()
        yield s
    finally:
        if s.alive():
            s.resume()
        s.cleanup()


@pytest.fixture(scope="module")
def my():
    if not sqlservers.mariadb_available():
        pytest.skip("MariaDB server not installed")
    s = MariaDbServer()
    try:
        s.start()
        yield s
    finally:
        if s.alive():
            s.resume()
        s.cleanup()


@pytest.fixture(params=["pgsql", "mysql"])
def db(request):
    d = request.getfixturevalue("pg" if request.param == "pgsql" else "my")
    if not d.alive():           # a test stopped it and failed before restarting
        d.start()
    return d


def q(s):
    """A literal for the test's own setup SQL (never posuto's)."""
    return "'" + s.replace("\\", "\\\\").replace("'", "''") + "'"


def pwfile(tmp_path):
    pw = tmp_path / "db-password"
    pw.write_text(PASSWORD + "\n")
    pw.chmod(0o600)
    return str(pw)


def sql_cfg(tmp_path, db, **extra):
    c = db.sql_config(PasswordFile=pwfile(tmp_path), ConnectTimeOut=2, QueryTimeOut=3)
    c.update(extra)
    return c


def config(tmp_path, db, port=None, users=None, **extra):
    """Users[] of the config (no database needed to log in) whose
    mailboxes are sql:."""
    c = base_config(port or free_port(), tmp_path / "mail", users=users,
                    MailboxFormat="sql", Sql=sql_cfg(tmp_path, db), **extra)
    return c


def fresh_schema(tmp_path, db):
    path = tmp_path / "init.json"
    write_config(path, config(tmp_path, db))
    r = subprocess.run([posuto_bin(), "sql", "init", "-c", str(path)],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr
    db.sql("DELETE FROM posuto_users")


def add_row(db, name, password="{PLAIN}unused", location=None):
    db.sql("INSERT INTO posuto_users (name, password, location) VALUES (%s, %s, %s)"
           % (q(name), q(password), q(location) if location else "NULL"))


def deliver(cfg_path, rcpt, msg, timeout=300):
    r = subprocess.run([posuto_bin(), "deliver", "-c", str(cfg_path), rcpt],
                       input=msg, capture_output=True, timeout=timeout)
    assert r.returncode == 0, r.stderr
    return r


def start(tmp_path, db, name="posuto", **extra):
    srv = Server(tmp_path, config(tmp_path, db, **extra), name=name).start()
    return srv


def stop(srv):
    rc, problems = srv.stop()
    assert not problems, problems


def rows(db, sql):
    return db.sql(sql).replace("|", " ").split()


def sanitized_binary():
    with open(posuto_bin(), "rb") as f:
        return b"__asan_init" in f.read()


def vm(pid, key):
    for line in pathlib.Path("/proc/%d/status" % pid).read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])   # kB
    raise KeyError(key)


def delivered(got, m):
    """got is m as `posuto deliver` / LMTP stored it: the trace headers
    the delivery agent puts first (wire form), then m byte for byte."""
    want = to_wire(m)
    assert got.endswith(want), got[:300]
    head = got[:len(got) - len(want)]
    assert head.startswith(b"Return-Path: ") and head.endswith(b"\r\n"), head
    for l in head[:-2].split(b"\r\n"):
        assert l.split(b":")[0] in (b"Return-Path", b"Delivered-To", b"X-Original-To"), l
    return True


MESSAGES = [
    sample_message(0),
    b"Subject: crlf\r\n\r\nalready wire form\r\n.dot line\r\n",
    b"Subject: no final newline\n\nlast line",
    b"Subject: lone cr\n\nx\ry\n\n\n",
    b"Subject: empty body\n\n",
]


# ------------------------------------------------------------------ contract

def contract_binary():
    p = pathlib.Path(posuto_bin()).parent / "test_store_contract"
    assert p.exists(), "%s not built: the contract suite must run here" % p
    return p


def test_store_contract_suite_on_the_database(tmp_path, db):
    fresh_schema(tmp_path, db)
    env = dict(os.environ)
    # this database's group must run: a missing one fails the binary
    env["POSUTO_TEST_SQL_REQUIRED"] = db.kind
    env["CMOCKA_MESSAGE_OUTPUT"] = "stdout"
    var = "POSUTO_TEST_PGSQL" if db.kind == "pgsql" else "POSUTO_TEST_MYSQL"
    other = "POSUTO_TEST_MYSQL" if db.kind == "pgsql" else "POSUTO_TEST_PGSQL"
    c = db.sql_config()
    env[var] = "%s %d %s %s %s" % (c["Host"], c["Port"], c["Database"], c["User"],
                                   pwfile(tmp_path))
    env.pop(other, None)
    r = subprocess.run([str(contract_binary())], capture_output=True, text=True,
                       timeout=900, env=env, cwd=str(tmp_path))
    out = r.stdout + r.stderr
    assert r.returncode == 0, out[-6000:]
    assert "no database (%s)" % var not in out, out[-3000:]
    # printed once by each database group (its ENOSPC test does not apply)
    assert out.count("a database's space is not ours to fill") == 1, out[-6000:]
    assert "[  FAILED  ]" not in out, out[-6000:]
    assert rows(db, "SELECT count(*) FROM posuto_users") == ["0"]


# ------------------------------------------------------------------ POP3

def test_pop3_list_uidl_retr_byte_exact_then_dele_quit(tmp_path, db):
    fresh_schema(tmp_path, db)
    add_row(db, USER1)
    srv = start(tmp_path, db)
    for m in MESSAGES:
        deliver(srv.config_path, USER1, m)
    assert rows(db, "SELECT count(*) FROM posuto_messages") == [str(len(MESSAGES))]
    p = poplib.POP3("127.0.0.1", srv.port, timeout=60)
    p.user(USER1)
    p.pass_("password")
    count, total = p.stat()
    assert count == len(MESSAGES)
    sizes = [int(l.split()[1]) for l in p.list()[1]]
    uidls = [l.split()[1] for l in p.uidl()[1]]
    assert len(set(uidls)) == len(MESSAGES)
    got = []
    for i, m in enumerate(MESSAGES):
        _resp, lines, octets = p.retr(i + 1)
        got.append(b"".join(l + b"\r\n" for l in lines))
        assert delivered(got[-1], m)
    # LIST and STAT say exactly what RETR sent (before dot-stuffing)
    assert sizes == [len(g) for g in got]
    assert total == sum(sizes)
    _resp, top, _o = p.top(1, 1)
    assert top[-1] == b"line 0 of message 0"
    p.dele(2)
    p.dele(4)
    assert p.quit().startswith(b"+OK")

    p = poplib.POP3("127.0.0.1", srv.port, timeout=60)
    p.user(USER1)
    p.pass_("password")
    assert [l.split()[1] for l in p.uidl()[1]] == [uidls[0], uidls[2], uidls[4]]
    p.quit()
    # RETRed and not deleted: recorded as seen, with the first RETR time
    assert rows(db, "SELECT count(*) FROM posuto_messages WHERE flags = 1 AND "
                "first_retr_at IS NOT NULL") == ["3"]
    # UIDLs are never used again: a new message gets a new one
    deliver(srv.config_path, USER1, sample_message(9))
    c = Pop3(port=srv.port)
    c.must_login()
    new = list(c.uidl().values())
    assert new[-1].encode() not in uidls and len(new) == 4
    c.quit()
    stop(srv)


def test_lmtp_delivery_into_sql(tmp_path, db):
    fresh_schema(tmp_path, db)
    add_row(db, USER1)
    lport = free_port()
    port = free_port()
    cfg = config(tmp_path, db, port=port)
    cfg["Pop3Server"]["Listen"] = [
        {"Address": "127.0.0.1", "Port": port},
        {"Address": "127.0.0.1", "Port": lport, "Protocol": "lmtp"},
    ]
    srv = Server(tmp_path, cfg).start()
    with smtplib.LMTP("127.0.0.1", lport, timeout=60) as l:
        # CRLF: smtplib sends bytes as they are
        l.sendmail("a@example.org", [USER1], to_wire(sample_message(3)))
    c = Pop3(port=port)
    c.must_login()
    assert delivered(c.retr(1), sample_message(3))
    c.quit()
    stop(srv)


def test_50mb_message_streams_with_bounded_memory(tmp_path, db):
    fresh_schema(tmp_path, db)
    add_row(db, USER1)
    srv = start(tmp_path, db)
    line = b"%s\n" % (b"x" * 98)
    big = b"Subject: big\n\n" + line * (50 * 1024 * 1024 // len(line))
    # posuto deliver, measured by a wrapper so its own peak RSS is known
    code = ("import resource, subprocess, sys\n"
            "r = subprocess.run(sys.argv[1:], stdin=sys.stdin)\n"
            "print(r.returncode, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n")
    r = subprocess.run([sys.executable, "-c", code, posuto_bin(), "deliver", "-c",
                        str(srv.config_path), USER1], input=big, capture_output=True,
                       timeout=600)
    rc, deliver_kb = r.stdout.split()
    assert rc == b"0", r.stderr
    # ASan's quarantine keeps every freed buffer: RSS then counts what
    # went through, not what is held (test_protocol.py does the same)
    measured = not sanitized_binary()
    assert int(deliver_kb) < 40 * 1024 or not measured, deliver_kb
    size, chunks = (int(v) for v in rows(db, "SELECT wire_size, n_chunks FROM posuto_messages"))
    assert chunks == (size + 256 * 1024 - 1) // (256 * 1024) and chunks > 190
    # poplib: a client that reads 50 MB in linear time
    p = poplib.POP3("127.0.0.1", srv.port, timeout=120)
    p.user(USER1)
    p.pass_("password")
    base = vm(srv.pid(), "VmHWM")
    assert p.list()[1] == [b"1 %d" % size]
    _resp, lines, _octets = p.retr(1)
    got = b"".join(l + b"\r\n" for l in lines)
    del lines
    assert len(got) == size and delivered(got, big)
    grown = vm(srv.pid(), "VmHWM") - base
    assert grown < 16 * 1024 or not measured, "server peak RSS grew by %d kB on a 50 MB RETR" % grown
    p.quit()
    stop(srv)


# ------------------------------------------------------------------ parameters

HOSTILE_NAME = "o'brien%_x';--"
HOSTILE_PASSWORD = "pw' OR '1'='1"


def test_names_reach_the_database_only_as_parameters(tmp_path, db):
    fresh_schema(tmp_path, db)
    add_row(db, HOSTILE_NAME)
    users = [{"UserName": HOSTILE_NAME, "Password": "{PLAIN}" + HOSTILE_PASSWORD}]
    srv = start(tmp_path, db, users=users)
    log_from = db.log_size()
    deliver(srv.config_path, HOSTILE_NAME, sample_message(1))
    c = Pop3(port=srv.port)
    assert c.login(HOSTILE_NAME, HOSTILE_PASSWORD).startswith(b"+OK")
    assert delivered(c.retr(1), sample_message(1))
    c.ok("DELE 1")
    assert c.cmd("QUIT").startswith(b"+OK")
    c.close()
    stop(srv)
    assert rows(db, "SELECT count(*) FROM posuto_messages") == ["0"]
    log = db.log_since(log_from)
    assert HOSTILE_PASSWORD not in log
    forms = [HOSTILE_NAME, HOSTILE_NAME.replace("'", "''"), HOSTILE_NAME.replace("'", "\\'")]
    if db.kind == "pgsql":
        stmts = [(m.group(1), i) for i, l in enumerate(log.splitlines())
                 for m in [re.search(r"LOG:  (?:statement|execute [^:]*): (.*)", l)] if m]
        assert any("posuto_messages" in s for s, _ in stmts)
        for text, _ in stmts:
            for f in forms:
                assert f not in text, text
        # and it did reach it, as a parameter
        assert "parameters: $1 = '%s'" % HOSTILE_NAME.replace("'", "''") in log
    else:
        lines = log.splitlines()
        assert any(re.search(r"\d+ Prepare\t", l) and "posuto_messages" in l for l in lines)
        for l in lines:
            if re.search(r"\d+ (Query|Prepare)\t", l):
                for f in forms:
                    assert f not in l, l
        # Execute lines are the server's rendering of the bound values
        assert any(re.search(r"\d+ Execute\t", l) and "o\\'brien" in l for l in lines) \
            or any(re.search(r"\d+ Execute\t", l) and "o'brien" in l for l in lines)


# ------------------------------------------------------------------ outages

def db_down(db):
    """Stops the database now.  PostgreSQL's SIGTERM (smart shutdown)
    would wait for posuto's sessions to end; SIGINT ends them, as a
    crash or failover does."""
    if db.kind == "pgsql" and db.alive():
        os.kill(db.proc.pid, signal.SIGINT)
        db.proc.wait(timeout=60)
        if db.logf:
            db.logf.close()
            db.logf = None
    db.stop()


def _restart(db):
    db_down(db)
    db.start()


def test_database_down_at_login_retr_quit_then_back(tmp_path, db):
    fresh_schema(tmp_path, db)
    add_row(db, USER1)
    srv = start(tmp_path, db)
    for i in range(3):
        deliver(srv.config_path, USER1, sample_message(i))
    try:
        # login: the mailbox cannot be opened
        db_down(db)
        c = Pop3(port=srv.port, timeout=60)
        assert c.login().startswith(b"-ERR [SYS/TEMP]")
        c.close()
        db.start()
        # RETR: the first chunk is fetched before the +OK
        c = login_retry_inuse("127.0.0.1", srv.port)
        c.ok("DELE 3")
        db_down(db)
        r = c.cmd("RETR 1")
        assert r.startswith(b"-ERR [SYS/TEMP]"), r
        # QUIT: the lock went with the database; nothing is deleted
        r = c.cmd("QUIT")
        assert r.startswith(b"-ERR [SYS/TEMP]"), r
        c.close()
        db.start()
        assert rows(db, "SELECT count(*) FROM posuto_messages") == ["3"]
        # QUIT after a restart the session did not see: the lock it held
        # is gone (another node may hold it now), so nothing is deleted
        c = login_retry_inuse("127.0.0.1", srv.port)
        c.ok("DELE 1")
        _restart(db)
        r = c.cmd("QUIT")
        assert r.startswith(b"-ERR [SYS/TEMP]"), r
        c.close()
        assert rows(db, "SELECT count(*) FROM posuto_messages") == ["3"]
    finally:
        if not db.alive():
            db.start()
    # back, without restarting posuto
    c = login_retry_inuse("127.0.0.1", srv.port)
    assert delivered(c.retr(1), sample_message(0))
    c.ok("DELE 1")
    assert c.cmd("QUIT").startswith(b"+OK")
    c.close()
    assert rows(db, "SELECT count(*) FROM posuto_messages") == ["2"]
    stop(srv)


def test_delivery_fails_temporarily_while_the_database_is_down(tmp_path, db):
    fresh_schema(tmp_path, db)
    add_row(db, USER1)
    path = tmp_path / "d.json"
    write_config(path, config(tmp_path, db))
    try:
        db_down(db)
        r = subprocess.run([posuto_bin(), "deliver", "-c", str(path), USER1],
                           input=sample_message(1), capture_output=True, timeout=120)
        assert r.returncode == 75, r.stderr
    finally:
        db.start()
    deliver(path, USER1, sample_message(1))
    assert rows(db, "SELECT count(*) FROM posuto_messages") == ["1"]
    # an unknown row is a permanent failure, not a retry for ever
    r = subprocess.run([posuto_bin(), "deliver", "-c", str(path), "user2@example.com"],
                       input=sample_message(2), capture_output=True, timeout=120)
    assert r.returncode not in (0, 75), r.stderr


# ------------------------------------------------------------------ two nodes

def two_nodes(tmp_path, db, *users):
    """A fresh schema with these users, and two posuto processes on it."""
    fresh_schema(tmp_path, db)
    for u in users:
        add_row(db, u)
    nodes = []
    for name in ("a", "b"):
        d = tmp_path / name
        d.mkdir()
        nodes.append(start(d, db, name=name))
    return nodes


def test_two_posuto_processes_share_the_mailbox_lock(tmp_path, db):
    a, b = two_nodes(tmp_path, db, USER1)
    deliver(a.config_path, USER1, sample_message(1))
    ca = Pop3(port=a.port)
    ca.must_login()
    cb = Pop3(port=b.port)
    assert cb.login().startswith(b"-ERR [IN-USE]")
    cb.close()
    # mail delivered meanwhile survives A's QUIT
    deliver(b.config_path, USER1, sample_message(2))
    ca.ok("DELE 1")
    assert ca.cmd("QUIT").startswith(b"+OK")
    ca.close()
    cb = login_retry_inuse("127.0.0.1", b.port)
    assert cb.stat()[0] == 1
    assert delivered(cb.retr(1), sample_message(2))
    cb.quit()
    # kill -9 of the holder frees the lock (its database session drops)
    ca = Pop3(port=a.port)
    ca.must_login()
    cb = Pop3(port=b.port)
    assert cb.login().startswith(b"-ERR [IN-USE]")
    cb.close()
    a.kill9()
    cb = login_retry_inuse("127.0.0.1", b.port, timeout=60)
    assert cb.stat()[0] == 1
    cb.quit()
    stop(b)
    a.stop()


def test_logout_releases_without_waiting_and_the_next_statement_reads_it(tmp_path, db):
    """A logout sends the lock release and leaves its answer to the next
    statement on the lock connection: a take of the same mailbox, another
    user's take, and the lock check of a QUIT that deletes must each read
    it first and still work; and the lock is free for another node."""
    a, b = two_nodes(tmp_path, db, USER1, USER2)
    for i in range(3):
        deliver(a.config_path, USER2, sample_message(i))
    for _ in range(5):
        # a release, then a take of the same name on that connection
        c = Pop3(port=a.port)
        c.must_login()
        c.quit()
    c2 = Pop3(port=a.port)
    c2.must_login(USER2, "test")
    assert c2.stat()[0] == 3
    c1 = Pop3(port=a.port)
    c1.must_login()
    c1.quit()                   # USER1's release is the pending answer...
    c2.ok("DELE 1")
    # ...which the lock check before USER2's deletion reads first
    assert c2.cmd("QUIT").startswith(b"+OK")
    c2.close()
    assert rows(db, "SELECT count(*) FROM posuto_messages") == ["2"]
    # every release reached the database: node B gets both mailboxes
    for user, pw, n in ((USER1, "password", 0), (USER2, "test", 2)):
        cb = login_retry_inuse("127.0.0.1", b.port, user=user, password=pw)
        assert cb.stat()[0] == n
        cb.quit()
    # and node A takes them again after B's releases
    c = Pop3(port=a.port)
    c.must_login(USER2, "test")
    assert c.stat()[0] == 2
    c.quit()
    stop(b)
    stop(a)


def test_sql_userdb_users_with_sql_locations(tmp_path, db):
    """Users and mail both in the database: a row whose location is
    "sql:", and one with no location under MailboxFormat "sql"."""
    fresh_schema(tmp_path, db)
    add_row(db, "alice", "{PLAIN}alice-pw", location="sql:")
    add_row(db, "bob", "{PLAIN}bob-pw")
    port = free_port()
    cfg = {"Pop3Server": {"BindAddress": "127.0.0.1", "Port": port, "TimeOut": 60,
                          "AuthFailDelay": 0, "LockFile": "posuto.lock",
                          "MailboxFormat": "sql", "Sql": sql_cfg(tmp_path, db)}}
    srv = Server(tmp_path, cfg).start()
    for user in ("alice", "bob"):
        deliver(srv.config_path, user, sample_message(7))
        c = Pop3(port=port)
        assert c.login(user, user + "-pw").startswith(b"+OK")
        assert delivered(c.retr(1), sample_message(7))
        c.quit()
    assert rows(db, "SELECT count(*) FROM posuto_messages") == ["2"]
    stop(srv)


def test_mailbox_format_sql_needs_an_sql_database(tmp_path):
    cfg = base_config(free_port(), tmp_path / "mail", MailboxFormat="sql")
    path = tmp_path / "c.json"
    write_config(path, cfg)
    r = subprocess.run([posuto_bin(), "check-config", "-c", str(path)],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode != 0
    assert "MailboxFormat" in r.stderr and "set Sql" in r.stderr, r.stderr
