"""An existing TPOPS 0.4 database served by posuto (issue 13).

The database is made with TPOPS 0.4's own sql.txt (tmtm/tpops, tag v0-4):
verbatim on MariaDB (TPOPS ran on MySQL), in a latin1 database as the MySQL
of 2002 had; on PostgreSQL in a faithful translation (below).  It is filled
the way tpops-useradd and tpops-store fill it: their statements, built as
their Ruby built them (tpops-store itself needs Ruby 1.6's MySQL/Ruby API,
which no Debian Ruby has; its code is GPL and is not copied here, only its
statements reproduced).  What TPOPS's server would have sent is computed
from what its code did (tpops 0.4 comm_retr/comm_uidl, mailbox-mysql.rb),
and poplib and a raw client check posuto sends exactly that.
"""

import os
import poplib
import re
import signal
import subprocess
import time

import pytest

from posuto_testlib import Pop3, Server, free_port, posuto_bin, write_config
import sqlservers
from sqlservers import PASSWORD, MariaDbServer, PgServer
from test_sql_userdb import TPOPS_04_SQL

TPOPS_DB = "tpops"

# sql.txt for PostgreSQL.  auto_increment -> serial; MySQL's CHAR drops
# trailing spaces when read, so varchar (PostgreSQL's char pads); a NOT
# NULL column without DEFAULT had an implicit one in the MySQL of 2002 (0,
# ''), which tpops-useradd (quota) and tpops-store (msgno) rely on;
# mediumtext -> text; datetime -> timestamp(0); a MySQL TIMESTAMP column
# sets itself to now().  "user" and "timestamp" quoted.
TPOPS_04_SQL_PG = """
create table "user" (
    uid serial not null,
    login varchar(16) not null default '',
    passwd varchar(16) not null default '',
    mail varchar(64) not null default '',
    maildir varchar(64) not null default '',
    quota int not null default 0,
    primary key (uid),
    unique (login),
    unique (mail)
);
create table msg (
    id serial not null,
    uid int not null default 0,
    msgno int not null default 0,
    "timestamp" timestamp(0) without time zone not null,
    header text not null default '',
    body text not null default '',
    size int not null default 0,
    primary key (id)
);
create index msg_uid on msg (uid);
create table locks (
    uid int not null,
    "timestamp" timestamp(0) not null default now(),
    unique (uid)
);
create table pbs (
    ip varchar(16) not null,
    "timestamp" timestamp(0) not null default now(),
    unique (ip)
);
"""


@pytest.fixture(scope="module")
def pg():
    if not sqlservers.pg_available():
        pytest.skip("PostgreSQL 15 server binaries not installed")
    s = PgServer()
    try:
        s.start()
        # SQL_ASCII: any bytes, as latin1 was to the MySQL TPOPS ran on.
        s.sql("CREATE DATABASE %s ENCODING 'SQL_ASCII' LC_COLLATE 'C' LC_CTYPE 'C' "
              "TEMPLATE template0" % TPOPS_DB, db="postgres")
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
        s.sql("CREATE DATABASE %s CHARACTER SET latin1; "
              "GRANT ALL ON %s.* TO 'posuto'@'127.0.0.1'" % (TPOPS_DB, TPOPS_DB), db=None)
        yield s
    finally:
        if s.alive():
            s.resume()
        s.cleanup()


@pytest.fixture(params=["pgsql", "mysql"])
def db(request):
    return request.getfixturevalue("pg" if request.param == "pgsql" else "my")


# ------------------------------------------------------------ TPOPS's side

def my_quote(b: bytes) -> bytes:
    """MySQL/Ruby's Mysql#quote (mysql_escape_string)."""
    out = bytearray()
    for c in b:
        out += {0: b"\\0", 0x0A: b"\\n", 0x0D: b"\\r", 0x5C: b"\\\\", 0x27: b"\\'",
                0x22: b'\\"', 0x1A: b"\\Z"}.get(c, bytes([c]))
    return bytes(out)


def pg_quote(b: bytes) -> bytes:
    return b.replace(b"'", b"''")


def raw_sql(db, sql: bytes) -> str:
    """Statement bytes as they are, in the TPOPS database (test setup)."""
    if db.kind == "mysql":
        args = ["mariadb", "--no-defaults", "-S", str(db.sock), "-u", "root", "--batch",
                "--skip-column-names", "--default-character-set=latin1", "-D", TPOPS_DB]
        r = subprocess.run(args, input=sql, capture_output=True, timeout=60)
    else:
        args = [str(sqlservers.PG_BIN / "psql"), "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1",
                "-h", str(db.sock), "-p", str(db.port), "-U", "postgres", "-d", TPOPS_DB]
        r = subprocess.run(args, input=sql, capture_output=True, timeout=60,
                           env={"PGCLIENTENCODING": "SQL_ASCII"}, **sqlservers._as("postgres"))
    if r.returncode != 0:
        raise RuntimeError("setup SQL failed: %r\n%s" % (sql[:200], r.stderr))
    return r.stdout.decode("latin1")


def tpops_tables(db):
    raw_sql(db, b"DROP TABLE IF EXISTS " + (b'"user"' if db.kind == "pgsql" else b"user") +
            b", msg, locks, pbs")
    raw_sql(db, (TPOPS_04_SQL if db.kind == "mysql" else TPOPS_04_SQL_PG).encode())


def tpops_useradd(db, login, passwd, mail, maildir="", quota=None):
    """tpops-useradd 0.4's insert (no quota: MySQL's implicit 0, which
    sql_mode='' still gives).  quota: set afterwards, as an operator
    would."""
    q = my_quote if db.kind == "mysql" else pg_quote
    table = b"user" if db.kind == "mysql" else b'"user"'
    pre = b"SET SESSION sql_mode = ''; " if db.kind == "mysql" else b""
    raw_sql(db, pre + b"insert into " + table + b" (login,passwd,mail,maildir) values ('" +
            q(login.encode()) + b"','" + q(passwd.encode()) + b"','" + q(mail.encode()) +
            b"','" + q(maildir.encode()) + b"')")
    if quota is not None:
        raw_sql(db, b"update " + table + b" set quota=%d where login='%s'"
                % (quota, q(login.encode())))
    return int(raw_sql(db, b"select uid from " + table + b" where login='" +
                       q(login.encode()) + b"'").strip())


def tpops_store(db, mail, raw: bytes, timestamp=None):
    """tpops-store 0.4 for one message: CRLF -> LF, size with CRLF, the
    quota check, split at the first empty line, insert with now().
    Returns the exit status tpops-store would have had."""
    q = my_quote if db.kind == "mysql" else pg_quote
    table = b"user" if db.kind == "mysql" else b'"user"'
    row = re.split(r"[|\s]+", raw_sql(db, b"select uid,quota from " + table +
                                       b" where mail='" + q(mail.encode()) + b"'").strip())
    if row == [""]:
        return 67
    uid, quota = int(row[0]), int(row[1])
    msg = raw.replace(b"\r\n", b"\n")
    size = len(msg.replace(b"\n", b"\r\n"))
    used = raw_sql(db, b"select sum(size) from msg where uid=%d" % uid).strip()
    if used not in ("", "NULL") and quota > 0 and int(used) + size > quota:
        return 73
    i = msg.find(b"\n\n")
    if i >= 0:
        h, b = msg[:i + 1], msg[i + 2:]
    else:
        h, b = msg, b""
    # now(); a given timestamp stands for mail stored at another time
    ts = b"now()" if timestamp is None else b"'" + timestamp.encode() + b"'"
    pre = b"SET SESSION sql_mode = ''; " if db.kind == "mysql" else b""
    if db.kind == "pgsql":
        ts = b"date_trunc('second', localtimestamp)" if timestamp is None else ts
    raw_sql(db, pre + b"insert into msg (uid,header,body,size,timestamp) values (%d,'" % uid +
            q(h) + b"','" + q(b) + b"',%d," % size + ts + b")")
    return 0


def tpops_rows(db, uid):
    """(id, header, body, size, UIDL as TPOPS's uidl_all made it) in
    TPOPS's order.  On MariaDB the UIDL is MySQL's own concat(id, '.', uid,
    '.', timestamp + 0); on PostgreSQL the same number from the text."""
    if db.kind == "mysql":
        out = raw_sql(db, b"select id, size, concat(id, '.', uid, '.', timestamp + 0), "
                      b"hex(header), hex(body) from msg where uid=%d order by timestamp, id" % uid)
        rows = []
        for line in out.splitlines():
            i, size, uidl, h, b = line.split("\t")
            rows.append((int(i), bytes.fromhex(h), bytes.fromhex(b), int(size), uidl))
        return rows
    out = raw_sql(db, b"select id, size, uid, \"timestamp\", encode(convert_to(header, "
                  b"'SQL_ASCII'), 'hex'), encode(convert_to(body, 'SQL_ASCII'), 'hex') "
                  b"from msg where uid=%d order by \"timestamp\", id" % uid)
    rows = []
    for line in out.splitlines():
        i, size, u, ts, h, b = line.split("|")
        rows.append((int(i), bytes.fromhex(h), bytes.fromhex(b), int(size),
                     "%s.%s.%d" % (i, u, int(re.sub(r"\D", "", ts) or "0"))))
    return rows


def tpops_retr(header: bytes, body: bytes) -> bytes:
    """The bytes TPOPS 0.4 sent after "+OK" for RETR, up to and
    including ".\\r\\n": retr joined header, CRLF and body with every LF
    as CRLF; comm_retr wrote it line by line (Ruby's each: lines end in
    LF), a '.' before a line starting with '.', CRLF if it did not end in
    one, then the terminator."""
    msg = header.replace(b"\n", b"\r\n") + b"\r\n" + body.replace(b"\n", b"\r\n")
    out = b""
    for line in re.findall(rb"[^\n]*\n|[^\n]+\Z", msg):
        out += (b"." + line) if line.startswith(b".") else line
    if msg[-2:] != b"\r\n":
        out += b"\r\n"
    return out + b".\r\n"


MESSAGES = [
    # an ordinary message as Postfix hands it to a pipe (LF)
    b"From: a@example.org\nTo: tommy@example.com\nSubject: one\n\nhello\nworld\n",
    # CRLF (tpops-store made it LF), lines starting with '.', a trailing dot line
    b"From: b@example.org\r\nSubject: dots\r\n\r\n.hidden\r\n..two\r\n.\r\nend\r\n",
    # header only, no empty line: TPOPS sent one more CRLF than it counted
    b"From: c@example.org\nSubject: header only\n",
    # a body without a final newline; a lone CR; 8-bit bytes; CR CR LF
    b"From: d@example.org\nSubject: =?ISO-2022-JP?B?GyRCJEYkOSRIGyhC?=\n\n"
    b"caf\xe9 \x1b$B$3$s$K$A$O\x1b(B\nlone\rcr\nx\r\r\nlast line",
    # empty body
    b"From: e@example.org\nSubject: empty body\n\n",
    # body starts with an empty line (only the first empty line splits)
    b"From: f@example.org\n\n\nsecond paragraph\n",
]


def cfg_for(tmp_path, db, port, **extra):
    pw = tmp_path / "db-password"
    pw.write_text(PASSWORD + "\n")
    pw.chmod(0o600)
    sql = db.sql_config(PasswordFile=str(pw), ConnectTimeOut=2, QueryTimeOut=3,
                        Schema="tpops", Database=TPOPS_DB)
    sql.update(extra)
    return {"Pop3Server": {
        "BindAddress": "127.0.0.1", "Port": port, "TimeOut": 60,
        "MailDir": str(tmp_path / "mail"), "AuthFailDelay": 0,
        "LockFile": str(tmp_path / "posuto.lock"), "Sql": sql}}


def start(tmp_path, db, name="posuto", **extra):
    port = free_port()
    srv = Server(tmp_path, cfg_for(tmp_path, db, port, **extra), name=name).start()
    return srv


def stop(srv):
    rc, problems = srv.stop()
    assert not problems, problems


def login(port, user="tommy", password="tommypass"):
    p = poplib.POP3("127.0.0.1", port, timeout=30)
    p.user(user)
    p.pass_(password)
    return p


def filled(db, extra_timestamps=True):
    tpops_tables(db)
    uid = tpops_useradd(db, "tommy", "tommypass", "tommy@example.com")
    for m in MESSAGES:
        assert tpops_store(db, "tommy@example.com", m) == 0
    if extra_timestamps:
        # Stored earlier (a higher id, an older timestamp): TPOPS's order
        # is timestamp, then id.
        assert tpops_store(db, "tommy@example.com",
                           b"Subject: from 2002\n\nold\n", "2002-03-04 05:06:07") == 0
    return uid


# ------------------------------------------------------------------ tests

def test_tpops_mailbox_served_as_tpops_served_it(tmp_path, db):
    uid = filled(db)
    rows = tpops_rows(db, uid)
    assert len(rows) == len(MESSAGES) + 1
    assert rows[0][2] == b"old\n"      # the 2002 message first
    srv = start(tmp_path, db)
    try:
        p = login(srv.port)
        # UIDL as TPOPS formed it, LIST/STAT as it reported them.
        assert p.stat() == (len(rows), sum(r[3] for r in rows))
        uidls = [l.split()[1].decode() for l in p.uidl()[1]]
        assert uidls == [r[4] for r in rows]
        assert re.fullmatch(r"\d+\.%d\.20020304050607" % uid, uidls[0])
        assert [int(l.split()[1]) for l in p.list()[1]] == [r[3] for r in rows]
        # poplib gets every message as TPOPS sent it
        for n, r in enumerate(rows, 1):
            want = tpops_retr(r[1], r[2])[:-3]     # without ".\r\n"
            lines = [l[1:] if l.startswith(b"..") else l
                     for l in want.split(b"\r\n")[:-1]]
            assert p.retr(n)[1] == lines, n
        p.quit()
        # and a raw client byte for byte, dot-stuffing and terminator too
        c = Pop3(port=srv.port)
        assert c.cmd("USER tommy").startswith(b"+OK")
        assert c.cmd("PASS tommypass").startswith(b"+OK")
        for n, r in enumerate(rows, 1):
            assert c.cmd("RETR %d" % n).startswith(b"+OK")
            assert c.read_multi_raw() + b".\r\n" == tpops_retr(r[1], r[2]), n
        # pipelined: the replies come in order while each fetch waits
        c.send(b"RETR 1\r\nNOOP\r\nRETR 2\r\n")
        assert c.readline().startswith(b"+OK")
        assert c.read_multi_raw() + b".\r\n" == tpops_retr(rows[0][1], rows[0][2])
        assert c.readline().startswith(b"+OK")
        assert c.readline().startswith(b"+OK")
        assert c.read_multi_raw() + b".\r\n" == tpops_retr(rows[1][1], rows[1][2])
        assert rows[2][2].startswith(b".hidden")
        assert c.cmd("TOP 3 1").startswith(b"+OK")
        assert c.read_multi_raw().endswith(b"\r\n\r\n..hidden\r\n")
        assert c.cmd("QUIT").startswith(b"+OK")
        c.close()
    finally:
        stop(srv)
    # served, never changed
    assert tpops_rows(db, uid) == rows


def test_zero_timestamp_uidl_is_mysqls_number(tmp_path, my):
    """MySQL's '0000-00-00 00:00:00' + 0 is 0; TPOPS's UIDL said so."""
    uid = filled(my, extra_timestamps=False)
    tpops_store(my, "tommy@example.com", b"Subject: zero\n\nz\n", "0000-00-00 00:00:00")
    rows = tpops_rows(my, uid)
    assert rows[0][4].endswith(".%d.0" % uid)
    srv = start(tmp_path, my)
    try:
        p = login(srv.port)
        assert [l.split()[1].decode() for l in p.uidl()[1]] == [r[4] for r in rows]
        p.quit()
    finally:
        stop(srv)


def test_dele_quit_is_one_transaction(tmp_path, db):
    uid = filled(db)
    rows = tpops_rows(db, uid)
    srv = start(tmp_path, db)
    try:
        p = login(srv.port)
        p.dele(2)
        p.dele(4)
        p.rset()
        p.dele(1)
        p.dele(3)
        assert p.quit().startswith(b"+OK")
        left = tpops_rows(db, uid)
        assert [r[0] for r in left] == [r[0] for i, r in enumerate(rows) if i not in (0, 2)]
        # A session without QUIT deletes nothing.
        p = login(srv.port)
        p.dele(1)
        p.close()
        for _ in range(100):
            try:
                q = login(srv.port)
                break
            except poplib.error_proto as e:
                assert b"[IN-USE]" in e.args[0], e
                time.sleep(0.1)
        assert [l.split()[1].decode() for l in q.uidl()[1]] == [r[4] for r in left]
        q.quit()
    finally:
        stop(srv)


def test_two_processes_one_mailbox_in_use(tmp_path, db):
    filled(db, extra_timestamps=False)
    a = start(tmp_path, db, name="a")
    b = start(tmp_path, db, name="b")
    try:
        pa = login(a.port)
        with pytest.raises(poplib.error_proto) as e:
            login(b.port)
        assert b"[IN-USE]" in e.value.args[0]
        pa.dele(1)
        pa.quit()
        # freed at QUIT: the other process serves it at once
        pb = login(b.port)
        assert pb.stat()[0] == len(MESSAGES) - 1
        # and the lock goes with a process that dies
        b.proc.kill()
        b.proc.wait(timeout=30)
        b.killed = True
        for _ in range(100):
            try:
                pa = login(a.port)
                break
            except poplib.error_proto as e:
                assert b"[IN-USE]" in e.args[0], e
                time.sleep(0.1)
        assert pa.stat()[0] == len(MESSAGES) - 1
        pa.quit()
    finally:
        stop(a)
        if not b.killed:
            stop(b)


def deliver(cfg_path, rcpt, data, timeout=60):
    return subprocess.run([posuto_bin(), "deliver", "-c", str(cfg_path), "-f",
                           "sender@example.org", rcpt], input=data, capture_output=True,
                          timeout=timeout)


def test_posuto_deliver_stores_as_tpops_store(tmp_path, db):
    tpops_tables(db)
    uid = tpops_useradd(db, "tommy", "tommypass", "tommy@example.com")
    # the address, not the login, names the user (user.mail)
    sato = tpops_useradd(db, "t.sato", "satopass", "sato@example.jp")
    tpops_useradd(db, "small", "smallpass", "small@example.jp", quota=200)
    srv = start(tmp_path, db)
    try:
        cfg = srv.config_path
        msg = (b"From: a@example.org\r\nSubject: deliver\r\n\r\n.dot\r\nbody\r\n"
               b"8bit caf\xe9\r\nno newline")
        r = deliver(cfg, "tommy@example.com", msg)
        assert r.returncode == 0, r.stderr
        r = deliver(cfg, "sato@example.jp", b"Subject: to sato\n\nhi\n")
        assert r.returncode == 0, r.stderr
        r = deliver(cfg, "nobody@example.com", b"Subject: x\n\nx\n")
        assert r.returncode == 67, r.stderr
        # quota: tpops-store's check (sum of sizes + this one > quota)
        r = deliver(cfg, "small@example.jp", b"Subject: fits\n\nsmall\n")
        assert r.returncode == 0, r.stderr
        r = deliver(cfg, "small@example.jp", b"Subject: big\n\n" + b"x" * 300 + b"\n")
        assert r.returncode == 73, r.stderr

        rows = tpops_rows(db, uid)
        assert len(rows) == 1
        _, h, b, size, _ = rows[0]
        # posuto adds Return-Path and Delivered-To, as for every store
        assert h.startswith(b"Return-Path: <sender@example.org>\nDelivered-To: "
                            b"<tommy@example.com>\nFrom: a@example.org\n")
        assert h.endswith(b"Subject: deliver\n") and b"\r" not in h
        assert b == b".dot\nbody\n8bit caf\xe9\nno newline\n"
        assert size == len((h + b"\n" + b).replace(b"\n", b"\r\n"))
        msgno = raw_sql(db, b"select msgno from msg where uid=%d" % uid).split()
        assert msgno == ["0"]
        assert len(tpops_rows(db, sato)) == 1

        p = login(srv.port)
        assert p.list()[1] == [b"1 %d" % size]
        assert p.uidl()[1] == [b"1 " + rows[0][4].encode()]
        p.quit()
        c = Pop3(port=srv.port)
        c.cmd("USER tommy")
        c.cmd("PASS tommypass")
        assert c.cmd("RETR 1").startswith(b"+OK")
        assert c.read_multi_raw() + b".\r\n" == tpops_retr(h, b)
        c.cmd("QUIT")
        c.close()
    finally:
        stop(srv)


def db_down(db):
    """The server goes away with its connections, as a crash or a
    failover looks to posuto (PostgreSQL's SIGTERM would wait for every
    client to leave: SIGINT, its fast shutdown)."""
    if db.kind == "pgsql":
        os.kill(db.proc.pid, signal.SIGINT)
    db.stop()


def test_database_down_sys_temp_nothing_lost(tmp_path, db):
    uid = filled(db, extra_timestamps=False)
    rows = tpops_rows(db, uid)
    srv = start(tmp_path, db)
    cfg = srv.config_path
    try:
        c = Pop3(port=srv.port)
        c.cmd("USER tommy")
        assert c.cmd("PASS tommypass").startswith(b"+OK")
        assert c.cmd("DELE 1").startswith(b"+OK")
        db_down(db)
        # RETR while it is down: a clear temporary error, the session goes on
        r = c.cmd("RETR 2")
        assert r.startswith(b"-ERR [SYS/TEMP]"), r
        # QUIT: the deletion cannot be committed; nothing is deleted
        r = c.cmd("QUIT")
        assert r.startswith(b"-ERR [SYS/TEMP]"), r
        c.close()
        # login and delivery meanwhile: temporary, the MTA keeps the mail
        r = Pop3(port=srv.port)
        r.cmd("USER tommy")
        assert r.cmd("PASS tommypass").startswith(b"-ERR [SYS/TEMP]")
        r.close()
        d = deliver(cfg, "tommy@example.com", b"Subject: while down\n\nkept\n")
        assert d.returncode == 75, d.stderr
    finally:
        if not db.alive():
            db.start()
    # back without a restart of posuto; nothing was lost
    p = None
    for _ in range(40):
        try:
            p = login(srv.port)
            break
        except poplib.error_proto as e:
            assert b"[SYS/TEMP]" in e.args[0] or b"[IN-USE]" in e.args[0], e
            time.sleep(0.5)
    assert p is not None
    assert [l.split()[1].decode() for l in p.uidl()[1]] == [r[4] for r in rows]
    # a deletion after the outage is committed
    p.dele(1)
    p.quit()
    assert len(tpops_rows(db, uid)) == len(rows) - 1
    d = deliver(cfg, "tommy@example.com", b"Subject: after\n\nback\n")
    assert d.returncode == 0, d.stderr
    stop(srv)


INJECTED = ["x' OR '1'='1", "tommy'--", "%", "a\"b", "x';DROP TABLE msg;--"]


def test_hostile_names_reach_the_database_only_as_parameters(tmp_path, db):
    filled(db, extra_timestamps=False)
    srv = start(tmp_path, db)
    start_log = db.log_size()
    try:
        for name in INJECTED:
            c = Pop3(port=srv.port)
            r = c.cmd("USER " + name)
            if r.startswith(b"+OK"):
                r = c.cmd("PASS x")
            assert r.startswith(b"-ERR") and b"SYS/TEMP" not in r, (name, r)
            c.close()
        for name in INJECTED:
            d = deliver(srv.config_path, name.replace(" ", "") + "@example.com",
                        b"Subject: x\n\nx\n")
            assert d.returncode in (64, 67), (name, d.returncode, d.stderr)
        p = login(srv.port)
        assert p.stat()[0] == len(MESSAGES)
        p.quit()
    finally:
        stop(srv)
    log = db.log_since(start_log)
    assert "WHERE mail = " in log and "WHERE login = " in log
    for line in log.splitlines():
        if db.kind == "mysql":
            # Prepare lines are the statements; Query lines carry no input
            if not re.search(r"\d+ (Query|Prepare)\t", line):
                continue
        else:
            # "statement:"/"execute" lines are the statements; values
            # are in the "DETAIL:  parameters:" lines
            if "DETAIL:" in line or "parameters:" in line:
                continue
        for n in INJECTED:
            if n in ("%",):
                continue
            assert n not in line and n.replace("'", "\\'") not in line, line
    assert raw_sql(db, b"select count(*) from msg").strip() == str(len(MESSAGES))


def test_lmtp_into_tpops(tmp_path, db):
    """LMTP in the server process: the same lookup by user.mail, one
    transaction, 250 only once committed."""
    import smtplib
    tpops_tables(db)
    uid = tpops_useradd(db, "tommy", "tommypass", "tommy@example.com")
    pop_port, lmtp_port = free_port(), free_port()
    cfg = cfg_for(tmp_path, db, pop_port)
    cfg["Pop3Server"]["Listen"] = [
        {"Address": "127.0.0.1", "Port": pop_port},
        {"Address": "127.0.0.1", "Port": lmtp_port, "Protocol": "lmtp"}]
    srv = Server(tmp_path, cfg).start()
    try:
        c = smtplib.LMTP("127.0.0.1", lmtp_port, timeout=30)
        c.ehlo("client.example")
        assert c.mail("app@example.org")[0] == 250
        assert c.rcpt("tommy@example.com")[0] == 250
        assert c.rcpt("nobody@example.com")[0] == 550
        assert c.docmd("DATA")[0] == 354
        c.send(b"Subject: lmtp\r\n\r\n..dot\r\nbody\r\n.\r\n")
        assert c.getreply()[0] == 250
        c.quit()
        rows = tpops_rows(db, uid)
        assert len(rows) == 1 and rows[0][2] == b".dot\nbody\n"
        p = login(pop_port)
        assert p.uidl()[1] == [b"1 " + rows[0][4].encode()]
        assert p.retr(1)[1][-2:] == [b"..dot"[1:], b"body"]
        p.quit()
    finally:
        stop(srv)
