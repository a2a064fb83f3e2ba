"""The sql userdb against real PostgreSQL and MariaDB servers (issue 13).

Each database is a private instance started once per module
(sqlservers.py).  Users are put in with SQL, as an operator or a
provisioning system would, and log in over POP3 with poplib and raw
commands.  The statement logs of the servers themselves show that client
input reaches them only as parameters.
"""

import base64
import json
import pathlib
import poplib
import re
import shutil
import subprocess
import tempfile
import time

import pytest

from posuto_testlib import (
    SHA256_PASSWORD, Maildir, Pop3, Server, free_port, posuto_bin, sample_message,
    to_wire, write_config,
)
import sqlservers
from sqlservers import PASSWORD, MariaDbServer, PgServer


@pytest.fixture(scope="module")
def pg(tmp_path_factory):
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
def my(tmp_path_factory):
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
    return request.getfixturevalue("pg" if request.param == "pgsql" else "my")


def stored(scheme, password):
    r = subprocess.run([posuto_bin(), "hash", "--scheme", scheme], input=password + "\n",
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    return r.stdout.strip()


def q(s):
    """A literal for the test's own setup SQL (never posuto's)."""
    return "'" + s.replace("\\", "\\\\").replace("'", "''") + "'"


def sql_cfg(tmp_path, db, **extra):
    pw = tmp_path / "db-password"
    pw.write_text(PASSWORD + "\n")
    pw.chmod(0o600)
    return db.sql_config(PasswordFile=str(pw), ConnectTimeOut=2, QueryTimeOut=3, **extra)


def pop_config(tmp_path, db, port, **sql_extra):
    return {"Pop3Server": {
        "BindAddress": "127.0.0.1", "Port": port, "TimeOut": 60,
        "MailDir": str(tmp_path / "mail"), "AuthFailDelay": 0,
        "LockFile": "posuto.lock", "Sql": sql_cfg(tmp_path, db, **sql_extra)}}


def sql_init(cfg_path):
    return subprocess.run([posuto_bin(), "sql", "init", "-c", str(cfg_path)],
                          capture_output=True, text=True, timeout=120)


def fresh_schema(tmp_path, db):
    """posuto's tables, empty."""
    path = tmp_path / "init.json"
    write_config(path, pop_config(tmp_path, db, free_port()))
    r = sql_init(path)
    assert r.returncode == 0, r.stdout + r.stderr
    db.sql("DELETE FROM posuto_users")


def add_user(db, name, password, apop=None, location=None):
    db.sql("INSERT INTO posuto_users (name, password, apop_secret, location) VALUES "
           "(%s, %s, %s, %s)" % (q(name), q(password), q(apop) if apop else "NULL",
                                 q(location) if location else "NULL"))


def mailbox(tmp_path, user, n=1):
    md = Maildir(tmp_path / "mail" / user)
    for i in range(n):
        md.deliver(sample_message(i))
    return md


def start(tmp_path, db, **sql_extra):
    port = free_port()
    srv = Server(tmp_path, pop_config(tmp_path, db, port, **sql_extra)).start()
    return srv


def stop(srv):
    rc, problems = srv.stop()
    assert not problems, problems


def login_reply(port, user, password):
    c = Pop3(port=port)
    try:
        r = c.cmd("USER " + user)
        if r.startswith(b"+OK"):
            r = c.cmd("PASS " + password)
        return r
    finally:
        c.close()


# ------------------------------------------------------------------ schema

def test_sql_init_creates_versioned_schema_idempotently(tmp_path, db):
    path = tmp_path / "init.json"
    write_config(path, pop_config(tmp_path, db, free_port()))
    for t in ("posuto_message_chunks", "posuto_messages", "posuto_users",
              "posuto_schema_version"):
        db.sql("DROP TABLE IF EXISTS %s" % t)
    r = sql_init(path)
    assert r.returncode == 0, r.stderr
    assert "schema version 1 applied" in r.stdout
    assert "schema version 2 applied" in r.stdout
    assert "schema version 3 applied" in r.stdout
    r = sql_init(path)
    assert r.returncode == 0, r.stderr
    assert "nothing to do" in r.stdout
    assert sorted(db.sql("SELECT version FROM posuto_schema_version").split()) == [
        "1", "2", "3"]
    # a version-1 database (an older posuto made it) is brought to 3
    db.sql("DELETE FROM posuto_schema_version WHERE version >= 2")
    db.sql("ALTER TABLE posuto_users DROP COLUMN last_login_at")
    if db.kind == "pgsql":
        db.sql("ALTER TABLE posuto_message_chunks ALTER COLUMN data SET STORAGE EXTENDED")
    r = sql_init(path)
    assert r.returncode == 0 and "schema version 2 applied" in r.stdout, r.stdout + r.stderr
    assert "schema version 3 applied" in r.stdout, r.stdout
    assert db.sql("SELECT count(last_login_at) FROM posuto_users").split() == ["0"]
    if db.kind == "pgsql":
        # version 3: chunks stored uncompressed ('e': EXTERNAL)
        assert db.sql("SELECT attstorage FROM pg_attribute WHERE attrelid = "
                      "'posuto_message_chunks'::regclass AND attname = 'data'"
                      ).split() == ["e"]
    cur = "current_schema()" if db.kind == "pgsql" else "DATABASE()"
    tables = sorted(db.sql("SELECT table_name FROM information_schema.tables WHERE "
                           "table_schema = %s" % cur).split())
    assert tables == ["posuto_message_chunks", "posuto_messages", "posuto_schema_version",
                      "posuto_users"]
    cols = db.sql("SELECT column_name FROM information_schema.columns WHERE "
                  "table_schema = %s AND table_name = 'posuto_messages'" % cur).split()
    for c in ("uidl", "arrived_at", "wire_size", "flags", "user_id"):
        assert c in cols
    # A database from a newer posuto is refused, not "migrated" back.
    db.sql("INSERT INTO posuto_schema_version (version) VALUES (99)")
    r = sql_init(path)
    db.sql("DELETE FROM posuto_schema_version WHERE version = 99")
    assert r.returncode != 0 and "version 99" in r.stderr


def test_sql_user_add_command(tmp_path, db):
    fresh_schema(tmp_path, db)
    srv = start(tmp_path, db)
    r = subprocess.run([posuto_bin(), "sql", "user", "add", "-c", str(srv.config_path),
                        "dave"], input="dave-pw\n", capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 0, r.stderr
    mailbox(tmp_path, "dave")
    p = poplib.POP3("127.0.0.1", srv.port, timeout=30)
    p.user("dave")
    assert p.pass_("dave-pw").startswith(b"+OK")
    p.quit()
    stop(srv)


# ------------------------------------------------------------------ logins

def test_sql_users_log_in_with_their_schemes(tmp_path, db):
    fresh_schema(tmp_path, db)
    add_user(db, "alice", stored("SHA512-CRYPT", "alice-pw"))
    # JumboDogX style: the bare SHA256 hex of "password", with the
    # default scheme the Sql object names for such rows.
    add_user(db, "bob", SHA256_PASSWORD)
    add_user(db, "carol", stored("SHA512-CRYPT", "carol-pw"), apop="carol-apop")
    # MariaDB's default collation folds case; posuto's lookup must not.
    add_user(db, "Erin", stored("SHA512-CRYPT", "erin-pw"))
    own = tmp_path / "elsewhere" / "carol"
    db.sql("UPDATE posuto_users SET location = %s WHERE name = 'carol'"
           % q("maildir:" + str(own)))
    md_a = mailbox(tmp_path, "alice", 2)
    mailbox(tmp_path, "bob", 1)
    md_c = Maildir(own)
    md_c.deliver(sample_message(7))
    srv = start(tmp_path, db, PasswordScheme="SHA256.HEX")

    p = poplib.POP3("127.0.0.1", srv.port, timeout=30)
    p.user("alice")
    assert p.pass_("alice-pw").startswith(b"+OK")
    assert p.stat()[0] == 2
    assert b"\r\n".join(p.retr(1)[1]) + b"\r\n" == to_wire(sample_message(0))
    p.quit()

    p = poplib.POP3("127.0.0.1", srv.port, timeout=30)
    p.user("bob")
    assert p.pass_("password").startswith(b"+OK")
    assert p.stat()[0] == 1
    p.quit()

    p = poplib.POP3("127.0.0.1", srv.port, timeout=30)
    assert p.apop("carol", "carol-apop").startswith(b"+OK")
    assert p.stat()[0] == 1     # from the row's own location
    p.quit()

    assert login_reply(srv.port, "erin", "erin-pw").startswith(b"-ERR")
    assert login_reply(srv.port, "Erin", "erin-pw").startswith(b"+OK")
    assert md_a.files()
    stop(srv)


def test_password_change_applies_at_next_login(tmp_path, db):
    fresh_schema(tmp_path, db)
    add_user(db, "alice", stored("SHA512-CRYPT", "old-pw"))
    mailbox(tmp_path, "alice")
    srv = start(tmp_path, db)
    assert login_reply(srv.port, "alice", "old-pw").startswith(b"+OK")
    db.sql("UPDATE posuto_users SET password = %s WHERE name = 'alice'"
           % q(stored("SHA512-CRYPT", "new-pw")))
    assert login_reply(srv.port, "alice", "old-pw").startswith(b"-ERR")
    assert login_reply(srv.port, "alice", "new-pw").startswith(b"+OK")
    stop(srv)


def _lookups(db, since):
    return db.log_since(since).count("SELECT name, password")


def test_userdb_cache_answers_within_its_ttl_and_never_after(tmp_path, db):
    """Sql CacheSize: logins within CacheTimeToLive ask the database
    nothing (its statement log says so); a changed password is served
    from the cache only until the TTL has passed, never after; names not
    found are kept for CacheNegativeTimeToLive."""
    fresh_schema(tmp_path, db)
    add_user(db, "alice", stored("SHA512-CRYPT", "old-pw"))
    mailbox(tmp_path, "alice")
    srv = start(tmp_path, db, CacheSize=64, CacheTimeToLive=3600,
                CacheNegativeTimeToLive=3600)
    since = db.log_size()
    assert login_reply(srv.port, "alice", "old-pw").startswith(b"+OK")
    assert login_reply(srv.port, "nobody-here", "x").startswith(b"-ERR")
    for _ in range(5):
        assert login_reply(srv.port, "alice", "old-pw").startswith(b"+OK")
        assert login_reply(srv.port, "nobody-here", "x").startswith(b"-ERR")
    # cached: the five later rounds asked nothing
    first = _lookups(db, since)
    assert first >= 1
    since2 = db.log_size()
    assert login_reply(srv.port, "alice", "old-pw").startswith(b"+OK")
    assert _lookups(db, since2) == 0
    # within the TTL the cached row stands (as Dovecot's auth cache)
    db.sql("UPDATE posuto_users SET password = %s WHERE name = 'alice'"
           % q(stored("SHA512-CRYPT", "new-pw")))
    add_user(db, "nobody-here", stored("SHA512-CRYPT", "pw"))
    assert login_reply(srv.port, "alice", "old-pw").startswith(b"+OK")
    assert login_reply(srv.port, "nobody-here", "pw").startswith(b"-ERR")
    stop(srv)

    # a TTL of 1 s: once it has passed, the database's answer counts
    db.sql("DELETE FROM posuto_users WHERE name = 'nobody-here'")
    srv = start(tmp_path, db, CacheSize=64, CacheTimeToLive=1,
                CacheNegativeTimeToLive=1)
    assert login_reply(srv.port, "alice", "new-pw").startswith(b"+OK")
    assert login_reply(srv.port, "nobody-here", "pw").startswith(b"-ERR")
    db.sql("UPDATE posuto_users SET password = %s WHERE name = 'alice'"
           % q(stored("SHA512-CRYPT", "third-pw")))
    add_user(db, "nobody-here", stored("SHA512-CRYPT", "pw"))
    mailbox(tmp_path, "nobody-here")
    time.sleep(1.2)             # longer than the TTL: never a cached answer
    assert login_reply(srv.port, "alice", "new-pw").startswith(b"-ERR")
    assert login_reply(srv.port, "alice", "third-pw").startswith(b"+OK")
    assert login_reply(srv.port, "nobody-here", "pw").startswith(b"+OK")
    stop(srv)


def test_userdb_cache_keeps_no_failure(tmp_path, db):
    """A lookup that failed (database down) is not cached: the next
    login after the database is back asks it again and gets in."""
    fresh_schema(tmp_path, db)
    add_user(db, "alice", stored("SHA512-CRYPT", "pw"))
    mailbox(tmp_path, "alice")
    srv = start(tmp_path, db, CacheSize=64, CacheTimeToLive=3600,
                CacheNegativeTimeToLive=3600)
    db.stop()
    try:
        assert login_reply(srv.port, "alice", "pw").startswith(b"-ERR [SYS/TEMP]")
    finally:
        db.start()
    r = b""
    for _ in range(50):
        r = login_reply(srv.port, "alice", "pw")
        if r.startswith(b"+OK"):
            break
        time.sleep(0.2)
    assert r.startswith(b"+OK"), r
    stop(srv)


def test_unknown_user_and_wrong_password_get_the_same_reply(tmp_path, db):
    fresh_schema(tmp_path, db)
    add_user(db, "alice", stored("SHA512-CRYPT", "alice-pw"))
    mailbox(tmp_path, "alice")
    srv = start(tmp_path, db)
    wrong = login_reply(srv.port, "alice", "nope")
    unknown = login_reply(srv.port, "nobody-here", "nope")
    assert wrong.startswith(b"-ERR") and wrong == unknown
    stop(srv)
    assert "reason=wrong-password" in srv.log()
    assert "reason=unknown-user" in srv.log()


# ------------------------------------------------------------------ injection

INJECTED_NAMES = [
    "x'OR'1'='1",
    "x'--",
    "a%",
    "%",
    "q_%q",
    "x\";DROP-TABLE-posuto_users;--",
    "o'brien@example.com",
]
INJECTED_PASSWORDS = ["pw' OR '1'='1", "pw%", "' OR 1=1 -- pw", "A" * 4096]


def _statement_lines_pg(log):
    """(statement text, parameter detail) of every statement in the log."""
    out = []
    lines = log.splitlines()
    for i, l in enumerate(lines):
        m = re.search(r"LOG:  (?:statement|execute [^:]*): (.*)", l)
        if m:
            detail = ""
            if i + 1 < len(lines) and "DETAIL:  parameters:" in lines[i + 1]:
                detail = lines[i + 1]
            out.append((m.group(1), detail))
    return out


def test_injection_reaches_the_database_only_as_parameters(tmp_path, db):
    fresh_schema(tmp_path, db)
    add_user(db, "alice", stored("SHA512-CRYPT", "alice-pw"))
    mailbox(tmp_path, "alice")
    srv = start(tmp_path, db)
    log_from = db.log_size()
    for name in INJECTED_NAMES:
        for pw in INJECTED_PASSWORDS[:2]:
            assert login_reply(srv.port, name, pw).startswith(b"-ERR"), name
    for pw in INJECTED_PASSWORDS:
        r = login_reply(srv.port, "alice", pw)
        assert r.startswith(b"-ERR"), pw[:20]
    # NUL inside the authentication identity and the password (AUTH PLAIN
    # carries them in base64), and 4 KiB of bytes as a name.
    c = Pop3(port=srv.port)
    for blob in (b"\0alice\0x\0' OR '1'='1", b"\0ali\0ce\0alice-pw",
                 b"\0alice\0alice-pw\0", b"\0" + bytes(range(1, 256)) * 16 + b"\0p",
                 b"\0x'OR'1'='1\0x"):
        r = c.cmd("AUTH PLAIN " + base64.b64encode(blob).decode())
        assert r.startswith(b"-ERR"), blob[:30]
    c.close()
    r = login_reply(srv.port, "B" * 4096, "x")
    assert r.startswith(b"-ERR")
    # The real user still gets in: nothing was broken or changed.
    assert login_reply(srv.port, "alice", "alice-pw").startswith(b"+OK")
    stop(srv)
    assert db.sql("SELECT count(*) FROM posuto_users").split() == ["1"]

    log = db.log_since(log_from)
    # Passwords never reach the database at all (checked here, against
    # the stored hash).
    for pw in INJECTED_PASSWORDS + ["alice-pw"]:
        assert pw not in log
    reached = [n for n in INJECTED_NAMES if n.replace("'", "''") in log
               or n.replace("'", "\\'") in log or n in log]
    assert len(reached) >= 5, "lookups of these names did not reach the log: %r" % log[-2000:]
    if db.kind == "pgsql":
        stmts = _statement_lines_pg(log)
        lookups = [s for s in stmts if s[0].startswith("SELECT name, password")]
        assert len(lookups) >= len(INJECTED_NAMES)
        for text, detail in lookups:
            assert text.endswith("WHERE name = $1"), text
            assert detail.startswith("") and "parameters: $1 = '" in detail, detail
        for n in INJECTED_NAMES:
            for text, _detail in stmts:
                assert n not in text and n.replace("'", "''") not in text
    else:
        # The general log shows the SQL text once, at Prepare, with '?';
        # Execute lines are the server's own rendering of the bound
        # values.  No plain Query ever carries client input.
        prepares = [l for l in log.splitlines()
                    if re.search(r"\d+ Prepare\t", l) and "posuto_users" in l]
        assert prepares and all(l.rstrip().endswith("WHERE name = ?") for l in prepares)
        for l in log.splitlines():
            if re.search(r"\d+ (Query|Prepare)\t", l):
                for n in INJECTED_NAMES:
                    assert n not in l and n.replace("'", "\\'") not in l, l


# ------------------------------------------------------------------ TPOPS

# TPOPS 0.4's sql.txt (tmtm/tpops, tag v0-4), the tables as TPOPS made them.
TPOPS_04_SQL = """
create table user (
    uid int not null auto_increment,
    login char(16) not null,
    passwd char(16) not null,
    mail char(64) not null,
    maildir char(64) not null,
    quota int not null,
    primary key (uid),
    unique (login),
    unique (mail)
);

create table msg (
    id int not null auto_increment,
    uid int not null,
    msgno int not null,
    timestamp datetime not null,
    header mediumtext not null,
    body mediumtext not null,
    size int not null,
    primary key (id),
    index (uid)
);

create table locks (
    uid int not null,
    timestamp timestamp not null,
    unique (uid)
);

create table pbs (
    ip char(16) not null,
    timestamp timestamp not null,
    unique (ip)
);
"""


def tpops_useradd(my, login, passwd, mail, maildir=""):
    """What tpops-useradd 0.4 runs: the password as it is, no quota (the
    MySQL of 2002 filled a NOT NULL column without a default with 0; the
    same with sql_mode='' today)."""
    my.sql("SET SESSION sql_mode = ''; insert into user (login,passwd,mail,maildir) "
           "values (%s,%s,%s,%s)" % (q(login), q(passwd), q(mail), q(maildir)))


def test_tpops_04_user_table_served_as_it_is(tmp_path, my):
    my.sql("DROP TABLE IF EXISTS user, msg, locks, pbs")
    my.sql(TPOPS_04_SQL)
    tpops_useradd(my, "tommy", "tommypass", "tommy@example.com")
    # maildir is char(64): a short path of its own.
    own = pathlib.Path(tempfile.mkdtemp(prefix="tpops-", dir="/tmp")) / "hana"
    tpops_useradd(my, "hana", "hanapass", "hana@example.com", str(own))
    mailbox(tmp_path, "tommy", 2)
    Maildir(own).deliver(sample_message(3))
    path = tmp_path / "tpops.json"
    port = free_port()
    cfg = pop_config(tmp_path, my, port, Schema="tpops", TpopsMailbox="maildir")
    write_config(path, cfg)
    r = sql_init(path)
    assert r.returncode == 0 and "TPOPS" in r.stdout, r.stderr
    srv = Server(tmp_path, cfg).start()
    p = poplib.POP3("127.0.0.1", port, timeout=30)
    p.user("tommy")
    assert p.pass_("tommypass").startswith(b"+OK")
    assert p.stat()[0] == 2
    p.quit()
    p = poplib.POP3("127.0.0.1", port, timeout=30)
    assert p.apop("hana", "hanapass").startswith(b"+OK")    # TPOPS offered APOP
    assert p.stat()[0] == 1
    p.quit()
    assert login_reply(port, "tommy", "wrong").startswith(b"-ERR")
    assert login_reply(port, "TOMMY", "tommypass").startswith(b"-ERR")
    stop(srv)
    # The TPOPS tables are read, never changed.
    assert my.sql("SELECT login, passwd FROM user ORDER BY uid").split() == \
        ["tommy", "tommypass", "hana", "hanapass"]
    my.sql("DROP TABLE user, msg, locks, pbs")
    shutil.rmtree(own.parent)


# ------------------------------------------------------------------ outages

def _timed_login(port, user, password):
    t0 = time.monotonic()
    r = login_reply(port, user, password)
    return r, time.monotonic() - t0


def test_database_down_gives_sys_temp_and_recovers(tmp_path, db):
    fresh_schema(tmp_path, db)
    add_user(db, "alice", stored("SHA512-CRYPT", "alice-pw"))
    mailbox(tmp_path, "alice")
    srv = start(tmp_path, db)
    try:
        assert login_reply(srv.port, "alice", "alice-pw").startswith(b"+OK")
        db.stop()
        # Twice: the pooled connection is dead, then a new one is refused.
        for _ in range(2):
            r, took = _timed_login(srv.port, "alice", "alice-pw")
            assert r.startswith(b"-ERR [SYS/TEMP]"), r
            # Bounded by ConnectTimeOut (2 s) + QueryTimeOut (3 s); the
            # margin is for a loaded machine, the point is "no hang".
            assert took < 30, took
    finally:
        if not db.alive():
            db.start()
    # Back without restarting posuto.
    ok = None
    for _ in range(20):
        ok = login_reply(srv.port, "alice", "alice-pw")
        if ok.startswith(b"+OK"):
            break
        time.sleep(0.5)
    assert ok.startswith(b"+OK"), ok
    stop(srv)
    log = srv.log()
    assert "userdb" in log
    # A session refused with [SYS/TEMP] never logged in: its logout line
    # names nobody.
    assert log.count(" logout user=alice ") == \
        len(re.findall(r" login user=alice method=", log)), log


def test_database_hung_gives_sys_temp_within_the_timeout(tmp_path, db):
    fresh_schema(tmp_path, db)
    add_user(db, "alice", stored("SHA512-CRYPT", "alice-pw"))
    mailbox(tmp_path, "alice")
    srv = start(tmp_path, db)
    try:
        assert login_reply(srv.port, "alice", "alice-pw").startswith(b"+OK")
        db.pause()
        r, took = _timed_login(srv.port, "alice", "alice-pw")
        assert r.startswith(b"-ERR [SYS/TEMP]"), r
        assert took < 40, took
    finally:
        db.resume()
    ok = None
    for _ in range(20):
        ok = login_reply(srv.port, "alice", "alice-pw")
        if ok.startswith(b"+OK"):
            break
        time.sleep(0.5)
    assert ok.startswith(b"+OK"), ok
    stop(srv)


# ------------------------------------------------------------------ config

def test_sql_config_errors_name_file_line_and_key(tmp_path, pg):
    path = tmp_path / "bad.json"
    text = json.dumps({"Pop3Server": {
        "BindAddress": "127.0.0.1", "Port": free_port(), "MailDir": str(tmp_path),
        "Sql": {"Driver": "oracle", "Database": "posuto", "Host": "127.0.0.1",
                "Socket": "/tmp/x", "PoolSize": 0}}}, indent=2)
    path.write_text(text)
    r = subprocess.run([posuto_bin(), "check-config", "-c", str(path)],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 78
    err = r.stderr
    assert re.search(r"bad\.json:\d+:\d+: Pop3Server\.Sql\.Driver: must be one of", err), err
    assert re.search(r"bad\.json:\d+:\d+: Pop3Server\.Sql\.PoolSize", err), err
    assert re.search(r"bad\.json:\d+:\d+: Pop3Server\.Sql\.Socket: give Host", err), err
    # A missing password file is reported at its key.
    cfg = pop_config(tmp_path, pg, free_port())
    cfg["Pop3Server"]["Sql"]["PasswordFile"] = str(tmp_path / "missing")
    write_config(path, cfg)
    r = subprocess.run([posuto_bin(), "check-config", "-c", str(path)],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 78
    assert re.search(r"bad\.json:\d+:\d+: Pop3Server\.Sql\.PasswordFile: .*missing", r.stderr), \
        r.stderr
