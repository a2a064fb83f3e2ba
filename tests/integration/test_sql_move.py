"""`posuto sql import` / `posuto sql export` (issue 13) against real
PostgreSQL and MariaDB (the fixtures of test_sql_store.py).

A client that leaves mail on the server must download nothing twice after
the move: poplib records UIDL, LIST and RETR of the mailbox as posuto
serves it from files (Maildir, mbox), the mailbox is imported, and posuto
serving it from SQL must give the same UIDLs, sizes and bytes in the same
order; the source files are untouched; an import run again (also after
one that stopped part way) adds nothing twice; and an export back into a
Maildir is served with the same UIDLs and bytes again.
"""

import pathlib
import poplib
import subprocess

from posuto_testlib import (
    SHA256_PASSWORD, USER1, Server, base_config, free_port, posuto_bin,
    write_config,
)
# the database fixtures and helpers, not copies (pytest finds the
# fixtures through these names)
from test_sql_store import (  # noqa: F401
    add_row, config, db, fresh_schema, my, pg, rows, stop,
)


def file_server(tmp_path, fmt, path, name):
    users = [{"UserName": USER1, "Password": SHA256_PASSWORD, "HashType": "SHA256",
              "MailboxFormat": fmt, "MailboxPath": str(path)}]
    cfg = base_config(free_port(), tmp_path / "mail", users=users,
                      MboxStateDirectory=str(tmp_path / "mboxstate"))
    return Server(tmp_path, cfg, name=name).start()


def sql_server(tmp_path, db, name="sqlsrv"):
    cfg = config(tmp_path, db, MboxStateDirectory=str(tmp_path / "mboxstate"))
    return Server(tmp_path, cfg, name=name).start()


def seen_by_client(port):
    """[(uidl, size, wire bytes)] in message order, as poplib gets them;
    QUIT without DELE (the client leaves mail on the server)."""
    p = poplib.POP3("127.0.0.1", port, timeout=60)
    p.user(USER1)
    p.pass_("password")
    uidls = [l.split()[1].decode() for l in p.uidl()[1]]
    sizes = [int(l.split()[1]) for l in p.list()[1]]
    bodies = []
    for i in range(len(uidls)):
        _r, lines, _o = p.retr(i + 1)
        bodies.append(b"".join(l + b"\r\n" for l in lines))
    assert p.quit().startswith(b"+OK")
    assert sizes == [len(b) for b in bodies]
    return list(zip(uidls, sizes, bodies))


def cli_config(tmp_path, db):
    path = tmp_path / "cli.json"
    write_config(path, config(tmp_path, db,
                              MboxStateDirectory=str(tmp_path / "mboxstate")))
    return str(path)


def sql_cmd(cfg, *args):
    r = subprocess.run([posuto_bin(), "sql", *args, "-c", cfg],
                       capture_output=True, text=True, timeout=300)
    assert "Sanitizer" not in r.stderr, r.stderr[-3000:]
    return r


def tree(path):
    """Every message file below path (posuto's own .posuto* side files
    aside), name -> bytes, and for mbox the file itself."""
    path = pathlib.Path(path)
    if path.is_file():
        return {path.name: path.read_bytes()}
    return {str(f.relative_to(path)): f.read_bytes() for f in sorted(path.rglob("*"))
            if f.is_file() and not f.name.startswith(".posuto")}


def arrival(db, uidl):
    e = ("CAST(EXTRACT(EPOCH FROM arrived_at) AS bigint)" if db.kind == "pgsql"
         else "UNIX_TIMESTAMP(arrived_at)")
    return rows(db, "SELECT %s FROM posuto_messages WHERE uidl = '%s'" % (e, uidl))


def make_maildir(md):
    for d in ("cur", "new", "tmp"):
        (md / d).mkdir(parents=True)
    files = {
        "cur/1700000001.M1P1.test:2,S": b"Subject: one\n\nfirst, LF\n.dot line\n",
        "cur/1700000002.M2P1.test:2,": b"Subject: two\r\n\r\nCRLF already\r\n",
        "new/1700000003.M3P1.test": b"Subject: three\n\nno final newline",
        "new/1700000004.M4P1.test": b"Subject: four\n\nlone\rcr\n\n\n" + (b"x" * 70 + b"\n") * 5000,
    }
    for name, data in files.items():
        (md / name).write_bytes(data)


def test_import_maildir_keeps_uidls_bytes_order_then_export_back(tmp_path, db):
    fresh_schema(tmp_path, db)
    add_row(db, USER1)
    md = tmp_path / "Maildir"
    make_maildir(md)
    fsrv = file_server(tmp_path, "maildir", md, "filesrv")
    before = seen_by_client(fsrv.port)
    stop(fsrv)
    assert len(before) == 4
    files = tree(md)
    cfg = cli_config(tmp_path, db)

    r = sql_cmd(cfg, "import", "--from", "maildir:%s" % md, USER1)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "4 copied, 0 already there, 0 failed" in r.stdout, r.stdout
    assert tree(md) == files                       # the source is only read
    assert arrival(db, "1700000002.M2P1.test") == ["1700000002"]

    ssrv = sql_server(tmp_path, db)
    assert seen_by_client(ssrv.port) == before

    # run again: nothing twice
    r = sql_cmd(cfg, "import", "--from", "maildir:%s" % md, USER1)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "0 copied, 4 already there" in r.stdout, r.stdout
    # an import that stopped after two messages (the last two never
    # committed): the next run brings exactly those, in their place
    db.sql("DELETE FROM posuto_messages WHERE uidl IN "
           "('1700000003.M3P1.test', '1700000004.M4P1.test')")
    r = sql_cmd(cfg, "import", "--from", "maildir:%s" % md, USER1)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "2 copied, 2 already there" in r.stdout, r.stdout
    assert seen_by_client(ssrv.port) == before
    assert rows(db, "SELECT count(*) FROM posuto_messages") == ["4"]

    # a session holds the mailbox: the import waits for a later run
    p = poplib.POP3("127.0.0.1", ssrv.port, timeout=60)
    p.user(USER1)
    p.pass_("password")
    r = sql_cmd(cfg, "import", "--from", "maildir:%s" % md, USER1)
    assert r.returncode == 75 and "in use" in r.stderr, r.stdout + r.stderr
    p.quit()
    stop(ssrv)

    # export into a new Maildir, served by posuto from files again
    out = tmp_path / "Exported"
    r = sql_cmd(cfg, "export", "--to", "maildir:%s" % out, USER1)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "4 copied" in r.stdout, r.stdout
    assert not list((out / "tmp").iterdir())
    assert (out / "cur" / "1700000002.M2P1.test:2,").stat().st_mtime == 1700000002
    esrv = file_server(tmp_path, "maildir", out, "exportsrv")
    assert seen_by_client(esrv.port) == before
    stop(esrv)
    r = sql_cmd(cfg, "export", "--to", "maildir:%s" % out, USER1)
    assert r.returncode == 0 and "0 copied, 4 already there" in r.stdout, \
        r.stdout + r.stderr


def test_import_mbox_keeps_uidls_and_bytes(tmp_path, db):
    fresh_schema(tmp_path, db)
    add_row(db, USER1)
    spool = tmp_path / "spool"
    spool.mkdir()
    box = spool / "box"
    box.write_bytes(
        b"From a@example.org  Mon Jan  6 10:00:01 2025\n"
        b"Subject: m1\n\nbody\n>From quoted in the file\n\n"
        b"From b@example.org  Mon Jan  6 10:00:02 2025\n"
        b"Subject: m2\n\n.leading dot\nsecond\n\n"
        b"From c@example.org  Mon Jan  6 10:00:03 2025\n"
        b"Subject: m3\n\nthird\n\n")
    (tmp_path / "mboxstate").mkdir()
    fsrv = file_server(tmp_path, "mbox", box, "mboxsrv")
    before = seen_by_client(fsrv.port)
    stop(fsrv)
    assert len(before) == 3 and b"\r\nFrom quoted" in before[0][2]
    files = tree(box)
    cfg = cli_config(tmp_path, db)
    r = sql_cmd(cfg, "import", "--from", "mbox:%s" % box, USER1)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "3 copied" in r.stdout, r.stdout
    assert tree(box) == files
    ssrv = sql_server(tmp_path, db)
    assert seen_by_client(ssrv.port) == before
    stop(ssrv)
    r = sql_cmd(cfg, "import", "--from", "mbox:%s" % box, USER1)
    assert r.returncode == 0 and "0 copied, 3 already there" in r.stdout, r.stdout

    # back into a Maildir: the same UIDLs and bytes (a Maildir orders by
    # file name, which is the UIDL here, so compare by UIDL)
    out = tmp_path / "FromMbox"
    r = sql_cmd(cfg, "export", "--to", "maildir:%s" % out, USER1)
    assert r.returncode == 0, r.stdout + r.stderr
    esrv = file_server(tmp_path, "maildir", out, "exportsrv")
    assert sorted(seen_by_client(esrv.port)) == sorted(before)
    stop(esrv)


def test_delivered_uidls_never_meet_imported_numbers(tmp_path, db):
    """UIDLs a delivery into SQL makes are numbers; an exported-and-
    imported-again mailbox brings such numbers back: deliveries go on
    above them, so no delivery is refused by the UNIQUE (user, UIDL)."""
    fresh_schema(tmp_path, db)
    add_row(db, USER1)
    md = tmp_path / "Numbers"
    for d in ("cur", "new", "tmp"):
        (md / d).mkdir(parents=True)
    for n in (1, 2, 7):
        (md / "cur" / ("%d:2," % n)).write_bytes(b"Subject: %d\n\nx\n" % n)
    cfg = cli_config(tmp_path, db)
    r = sql_cmd(cfg, "import", "--from", "maildir:%s" % md, USER1)
    assert r.returncode == 0, r.stdout + r.stderr
    r = subprocess.run([posuto_bin(), "deliver", "-c", cfg, USER1],
                       input=b"Subject: new\n\nnew\n", capture_output=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert rows(db, "SELECT uidl FROM posuto_messages ORDER BY id") == ["1", "2", "7", "8"]


def test_bad_locations_and_users_are_refused(tmp_path, db):
    fresh_schema(tmp_path, db)
    cfg = cli_config(tmp_path, db)
    r = sql_cmd(cfg, "import", "--from", "sql:x", USER1)
    assert r.returncode == 64, r.stderr
    r = sql_cmd(cfg, "import", USER1)
    assert r.returncode == 64 and "--from" in r.stderr, r.stderr
    # no posuto_users row: nothing can hold the mail
    md = tmp_path / "M"
    make_maildir(md)
    r = sql_cmd(cfg, "import", "--from", "maildir:%s" % md, USER1)
    assert r.returncode == 65 and "no user" in r.stderr, r.stdout + r.stderr
    # export needs a store that can keep UIDLs
    add_row(db, USER1)
    assert sql_cmd(cfg, "import", "--from", "maildir:%s" % md, USER1).returncode == 0
    r = sql_cmd(cfg, "export", "--to", "mbox:%s" % (tmp_path / "out.mbox"), USER1)
    assert r.returncode == 65 and "cannot keep" in r.stderr, r.stdout + r.stderr


def test_admin_viewer_reads_sql_mailboxes_without_the_lock(tmp_path, db):
    """The web admin's mailbox viewer on sql: messages of several 256 KiB
    chunks (reads that say EAGAIN until the next chunk is fetched) come
    out whole, raw and as the mbox download; the viewer takes no mailbox
    lock, so a POP3 login meanwhile is not [IN-USE]."""
    from admin_testlib import Admin, wait_port, with_admin
    import urllib.parse
    fresh_schema(tmp_path, db)
    add_row(db, USER1)
    cfg = config(tmp_path, db)
    with_admin(cfg)
    srv = Server(tmp_path, cfg, name="adminsql").start()
    big = b"Subject: big\n\n" + b"".join(b"line %07d of a big message\n" % i
                                        for i in range(30000))
    for m in (b"Subject: small\n\nsmall\n", big):
        r = subprocess.run([posuto_bin(), "deliver", "-c", str(srv.config_path), USER1],
                           input=m, capture_output=True, timeout=120)
        assert r.returncode == 0, r.stderr
    port = cfg["Admin"]["Port"]
    wait_port(port)
    a = Admin(port)
    assert a.login()[0] == 200
    base = "/api/v1/mailboxes/" + urllib.parse.quote(USER1, safe="")
    st, lst = a.json("GET", base + "/messages?limit=50")
    assert st == 200, lst
    assert sorted(m["subject"] for m in lst["messages"]) == ["big", "small"]
    # POP3 while the viewer holds its snapshot
    got = seen_by_client(srv.port)
    by_uidl = {u: body for u, _s, body in got}
    for m in lst["messages"]:
        st, _h, _sc, body = a.request("GET", base + "/messages/%s/raw" % m["uidl"])
        assert st == 200 and body == by_uidl[m["uidl"]], (m["uidl"], len(body))
    st, _h, _sc, body = a.request("GET", base + "/download")
    assert st == 200 and body.count(b"line 0029999 of a big message\n") == 1
    stop(srv)
