"""Expire and LoginDelay (RFC 2449 EXPIRE, LOGIN-DELAY) for the sql:
store (issue 13), against real PostgreSQL and MariaDB (the fixtures of
test_sql_store.py): first retrievals in posuto_messages.first_retr_at,
the last login in posuto_users.last_login_at."""

import subprocess

from posuto_testlib import USER1, Pop3, Server, posuto_bin
from test_sql_store import (  # noqa: F401
    add_row, config, db, fresh_schema, my, pg, rows, stop,
)


def deliver(cfg_path, n):
    for i in range(n):
        r = subprocess.run([posuto_bin(), "deliver", "-c", str(cfg_path), USER1],
                           input=b"Subject: %d\n\nbody %d\n" % (i, i),
                           capture_output=True, timeout=120)
        assert r.returncode == 0, r.stderr


def ago(db, days):
    return ("now() - interval '%d days'" % days if db.kind == "pgsql"
            else "NOW() - INTERVAL %d DAY" % days)


def test_expire_0_deletes_what_was_retrieved_at_update(tmp_path, db):
    fresh_schema(tmp_path, db)
    add_row(db, USER1)
    srv = Server(tmp_path, config(tmp_path, db, Expire=0)).start()
    deliver(srv.config_path, 2)
    c = Pop3(port=srv.port)
    c.must_login()
    c.retr(1)
    assert c.cmd("QUIT").startswith(b"+OK")
    c.close()
    assert rows(db, "SELECT count(*) FROM posuto_messages") == ["1"]
    stop(srv)
    assert "expire: deleting user=%s" % USER1 in srv.log()


def test_expire_days_by_first_retrieval_in_one_transaction(tmp_path, db):
    fresh_schema(tmp_path, db)
    add_row(db, USER1)
    srv = Server(tmp_path, config(tmp_path, db, Expire=3)).start()
    deliver(srv.config_path, 4)
    ids = rows(db, "SELECT id FROM posuto_messages ORDER BY id")
    # 1: retrieved 5 days ago (due); 2: 1 day ago (not yet); 3, 4: never
    db.sql("UPDATE posuto_messages SET flags = 1, first_retr_at = %s WHERE id = %s"
           % (ago(db, 5), ids[0]))
    db.sql("UPDATE posuto_messages SET flags = 1, first_retr_at = %s WHERE id = %s"
           % (ago(db, 1), ids[1]))
    c = Pop3(port=srv.port)
    c.must_login()
    uidls = c.uidl()
    assert len(uidls) == 4
    assert c.cmd("DELE 4").startswith(b"+OK")
    assert c.cmd("QUIT").startswith(b"+OK")
    c.close()
    assert rows(db, "SELECT id FROM posuto_messages ORDER BY id") == ids[1:3]
    stop(srv)


def test_login_delay_kept_in_the_database(tmp_path, db):
    fresh_schema(tmp_path, db)
    add_row(db, USER1)
    srv = Server(tmp_path, config(tmp_path, db, LoginDelay=3600)).start()
    deliver(srv.config_path, 1)
    c = Pop3(port=srv.port)
    c.must_login()
    assert c.cmd("QUIT").startswith(b"+OK")
    c.close()
    assert rows(db, "SELECT count(last_login_at) FROM posuto_users") == ["1"]
    c = Pop3(port=srv.port)
    assert c.cmd("USER " + USER1).startswith(b"+OK")
    r = c.cmd("PASS password")
    assert r.startswith(b"-ERR [LOGIN-DELAY]"), r
    c.close()
    # nothing was changed by the refused login; and it is no lock left
    assert rows(db, "SELECT count(*) FROM posuto_messages") == ["1"]
    db.sql("UPDATE posuto_users SET last_login_at = last_login_at - 7200")
    c = Pop3(port=srv.port)
    c.must_login()
    assert len(c.uidl()) == 1
    c.cmd("QUIT")
    c.close()
    stop(srv)
