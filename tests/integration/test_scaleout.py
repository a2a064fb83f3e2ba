"""Scale-out (issue 13): two posuto nodes behind a real haproxy that sends
PROXY headers, sharing one mail store and one sql userdb on a private
PostgreSQL or MariaDB.

Clients reach the nodes the way they would in production, through
haproxy (haproxy_instance.py): its pinned frontends choose the node, so a
test knows which node serves which client.  Distinct real clients on one
machine are distinct loopback source addresses (127.0.0.2, 127.0.0.3):
haproxy names them in its PROXY header, while every connection a node
sees comes from haproxy's 127.0.0.1.

The mail store is a parameter (STORES): every test runs once per store
and per database.
"""

import os
import re
import signal
import smtplib
import socket
import subprocess
import time

import pytest

import haproxy_instance
from haproxy_instance import UNTRUSTED_SOURCE, Haproxy
from admin_testlib import Admin, wait_port, with_admin
from posuto_testlib import Maildir, Pop3, ProtocolError, Server, free_port, posuto_bin, write_config
import sqlservers
from sqlservers import PASSWORD, MariaDbServer, PgServer

X = "127.0.0.2"     # one real client
Y = "127.0.0.3"     # another

USERS = {"alice": "alice-pw", "bob": "bob-pw"}


# ------------------------------------------------------------------ stores

class MaildirStore:
    """One Maildir tree both nodes see (here one directory; in production
    a shared filesystem), with the [IN-USE] lock in one LockFile on it:
    the lock is a POSIX record lock, so it holds across the nodes'
    processes and the kernel drops it when a process dies."""

    name = "maildir"

    def __init__(self, tmp_path, db):
        self.root = tmp_path / "mail"
        self.root.mkdir()
        self.lock = tmp_path / "shared-mailbox.lock"

    def pop3_settings(self):
        """Pop3Server keys every node gets."""
        return {"MailDir": str(self.root), "MailboxFormat": "maildir",
                "LockFile": str(self.lock)}

    def location(self, user):
        """The location column of the user's row (None: from MailDir)."""
        return None

    def create(self, user):
        """An empty mailbox, as provisioning makes it (deliver running as
        root refuses to create one: it would be root's)."""
        Maildir(self.root / user)


# Hook for the SQL mail store: add "sql" here and a class with the same
# four members (name, pop3_settings(), location(user), create(user); its constructor
# gets the test's tmp_path and the database fixture) to STORE_CLASSES.
# Nothing else in this file knows what a store is: mail goes in with
# `posuto deliver` and LMTP and comes out over POP3.
class SqlStore:
    """The sql: mail store: mail in the same database as the users; the
    [IN-USE] lock is a database lock (advisory lock / GET_LOCK), so each
    node keeps a LockFile of its own and still they exclude each other."""

    name = "sql"

    def __init__(self, tmp_path, db):
        pass

    def pop3_settings(self):
        return {"MailboxFormat": "sql", "LockFile": "posuto.lock"}

    def location(self, user):
        return "sql:"

    def create(self, user):
        pass        # the user's posuto_users row is the mailbox


STORES = ["maildir", "sql"]
STORE_CLASSES = {"maildir": MaildirStore, "sql": SqlStore}


# ------------------------------------------------------------------ databases

@pytest.fixture(scope="module")
def pg():
    if not sqlservers.pg_available():
        pytest.skip("PostgreSQL 15 server binaries not installed")
    s = PgServer()
    try:
        s.start()
        yield s
    finally:
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
        s.cleanup()


@pytest.fixture(params=["pgsql", "mysql"])
def db(request):
    return request.getfixturevalue("pg" if request.param == "pgsql" else "my")


@pytest.fixture(params=STORES)
def store(request, tmp_path, db):
    return STORE_CLASSES[request.param](tmp_path, db)


_hashes = {}


def stored(password):
    if password not in _hashes:
        r = subprocess.run([posuto_bin(), "hash", "--scheme", "SHA512-CRYPT"],
                           input=password + "\n", capture_output=True, text=True,
                           timeout=60)
        assert r.returncode == 0, r.stderr
        _hashes[password] = r.stdout.strip()
    return _hashes[password]


def q(s):
    """A literal for the test's own setup SQL (never posuto's)."""
    return "'" + s.replace("\\", "\\\\").replace("'", "''") + "'"


# ------------------------------------------------------------------ the cluster

class Cluster:
    """Nodes a and b (own directory, config, ports, log), one store, one
    userdb, one haproxy."""

    def __init__(self, tmp_path, db, store, proxy="v2", **pop3_extra):
        self.tmp = tmp_path
        self.db = db
        self.store = store
        self.nodes = {}
        self.lmtp_port = free_port()
        pw = tmp_path / "db-password"
        pw.write_text(PASSWORD + "\n")
        pw.chmod(0o600)
        self.sql = db.sql_config(PasswordFile=str(pw), ConnectTimeOut=2, QueryTimeOut=5)
        for name in ("a", "b"):
            d = tmp_path / name
            d.mkdir()
            p = {"Enabled": True, "TimeOut": 60, "AuthFailDelay": 0, "Sql": self.sql,
                 "Listen": [
                     # direct (the start-up probes, and an operator's own checks)
                     {"Address": "127.0.0.1", "Port": free_port()},
                     # behind haproxy
                     {"Address": "127.0.0.1", "Port": free_port(),
                      "ProxyTrusted": "127.0.0.1"}]}
            if name == "b":
                p["Listen"].append({"Address": "127.0.0.1", "Port": self.lmtp_port,
                                    "Protocol": "lmtp"})
            p.update(store.pop3_settings())
            p.update(pop3_extra)
            cfg = {"Pop3Server": p}
            if name == "a":
                with_admin(cfg)
            self.nodes[name] = Server(d, cfg, name="node-" + name)
        self.init_db()
        for s in self.nodes.values():
            s.start()
        self.hp = Haproxy(tmp_path, [(n, "127.0.0.1", s.cfg["Pop3Server"]["Listen"][1]["Port"])
                                     for n, s in self.nodes.items()], proxy=proxy).start()

    def init_db(self):
        r = subprocess.run([posuto_bin(), "sql", "init", "-c",
                            str(self.nodes["a"].config_path)],
                           capture_output=True, text=True, timeout=120)
        assert r.returncode == 0, r.stdout + r.stderr
        self.db.sql("DELETE FROM posuto_users")
        for u, pw in USERS.items():
            self.store.create(u)
            loc = self.store.location(u)
            self.db.sql("INSERT INTO posuto_users (name, password, location) VALUES "
                        "(%s, %s, %s)" % (q(u), q(stored(pw)), q(loc) if loc else "NULL"))

    def __getitem__(self, name):
        return self.nodes[name]

    def connect(self, node=None, source=X, port=None):
        """A POP3 client from `source` through haproxy (to node `node`,
        or balanced)."""
        if port is None:
            port = self.hp.pin[node] if node else self.hp.port
        s = socket.create_connection(("127.0.0.1", port), timeout=30,
                                     source_address=(source, 0))
        return Pop3(sock=s)

    def deliver(self, node, user, raw):
        """`posuto deliver` with node's config, as the MTA on that node."""
        r = subprocess.run([posuto_bin(), "deliver", "-c", str(self.nodes[node].config_path),
                            user], input=raw, capture_output=True, timeout=60)
        assert r.returncode == 0, r.stderr

    def stop(self):
        problems = []
        self.hp.stop()
        for s in self.nodes.values():
            _rc, p = s.stop()
            problems += p
        return problems


@pytest.fixture
def cluster_factory(tmp_path, db, store):
    if not haproxy_instance.available():
        pytest.skip("haproxy not installed")
    made = []

    def make(**kw):
        c = Cluster(tmp_path, db, store, **kw)
        made.append(c)
        return c
    yield make
    problems = []
    for c in made:
        problems += c.stop()
    assert not problems, problems


@pytest.fixture
def cluster(cluster_factory):
    return cluster_factory()


def msg(i, tag=b""):
    return (b"From: s@example.org\nTo: alice@example.com\nSubject: %s %d\n"
            b"Message-ID: <%d.%s@scaleout>\n\nbody %d\n.dot line\n" % (tag, i, i, tag, i))


def login(c, user="alice"):
    return c.login(user, USERS[user])


def login_retry(cluster, node, user="alice", source=X, timeout=30):
    """Logs in through `node`, retrying while the mailbox is [IN-USE]
    by a session whose end is still being noticed."""
    deadline = time.monotonic() + timeout
    last = None
    for _ in range(1000):
        c = cluster.connect(node, source)
        r = login(c, user)
        if r.startswith(b"+OK"):
            return c
        c.close()
        last = r
        if b"[IN-USE]" not in r or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    raise AssertionError("login through %s: %r\nlog:\n%s"
                         % (node, last, cluster[node].log()[-3000:]))


def subjects(c):
    n, _ = c.stat()
    out = []
    for i in range(1, n + 1):
        m = re.search(rb"Subject: ([^\r\n]*)", c.retr(i))
        out.append(m.group(1).decode())
    return sorted(out)


def wait_for(pred, timeout=20):
    deadline = time.monotonic() + timeout
    for _ in range(1000):
        v = pred()
        if v or time.monotonic() > deadline:
            return v
        time.sleep(0.05)
    return pred()


# ------------------------------------------------------------------ tests

def test_in_use_across_nodes_and_kill9_frees_the_lock(cluster):
    cluster.deliver("a", "alice", msg(1, b"first"))
    a = cluster.connect("a")
    assert login(a).startswith(b"+OK")
    assert a.stat()[0] == 1
    b = cluster.connect("b")
    r = login(b)
    assert r.startswith(b"-ERR [IN-USE]"), r
    b.close()
    # bob is not alice: node b serves him meanwhile
    cb = cluster.connect("b")
    assert login(cb, "bob").startswith(b"+OK"), cluster["b"].log()
    cb.quit()
    # Node a dies with the session open: its client loses the connection,
    # the lock goes with the process, and node b serves alice.
    a.send(b"DELE 1\r\n")
    assert a.readline().startswith(b"+OK")
    cluster["a"].kill9()
    assert a.closed_by_server(timeout=30)
    a.close()
    b = login_retry(cluster, "b")
    assert subjects(b) == ["first 1"]       # the DELE was never committed
    b.quit()
    # The balanced frontend keeps working with one node left: the
    # connections haproxy sends to the dead one fail, the others succeed.
    ok = 0
    for _ in range(4):
        try:
            c = cluster.connect()
            if c.greeting and c.greeting.startswith(b"+OK"):
                ok += 1
            c.close()
        except (EOFError, OSError, ProtocolError):
            pass
    assert ok >= 1


def test_mail_delivered_through_b_survives_quit_on_a(cluster):
    for i in (1, 2):
        cluster.deliver("a", "alice", msg(i, b"old"))
    a = cluster.connect("a")
    assert login(a).startswith(b"+OK")
    assert a.stat()[0] == 2
    uidl_old = set(a.uidl().values())
    # Meanwhile node b's MTA side takes two more: posuto deliver and LMTP.
    cluster.deliver("b", "alice", msg(3, b"new"))
    with smtplib.LMTP("127.0.0.1", cluster.lmtp_port, timeout=30) as l:
        l.sendmail("s@example.org", ["alice@example.com"], msg(4, b"new"))
    # A's snapshot is fixed for the session
    assert a.stat()[0] == 2
    assert a.ok("DELE 1") and a.ok("DELE 2")
    assert a.quit().startswith(b"+OK")
    b = login_retry(cluster, "b")
    assert subjects(b) == ["new 3", "new 4"]
    assert not (set(b.uidl().values()) & uidl_old)    # UIDLs never reused
    b.quit()


@pytest.mark.parametrize("proxy", ["v2", "v1"])
def test_node_log_and_registry_show_the_real_client(cluster_factory, proxy):
    cl = cluster_factory(proxy=proxy)
    node = cl["a"]
    since = len(node.log())     # after the start-up probes (direct, from 127.0.0.1)
    c = cl.connect("a", source=X)
    port = c.sock.getsockname()[1]
    assert login(c).startswith(b"+OK")
    me = "%s:%d" % (X, port)
    assert wait_for(lambda: re.search(r"connect from=%s\b" % re.escape(me), node.log())), \
        node.log()
    # the session registry: SIGUSR1's dump ...
    node.signal(signal.SIGUSR1)
    line = wait_for(lambda: re.search(r"session=\w+ protocol=pop3 client=(\S+) user=alice",
                                      node.log()))
    assert line and line.group(1) == me, node.log()
    # ... and the admin API
    adm = Admin(node.cfg["Admin"]["Port"])
    wait_port(adm.port)
    assert adm.login()[0] == 200
    st, data = adm.json("GET", "/api/v1/sessions")
    assert st == 200, data
    mine = [s for s in data["sessions"] if s.get("user") == "alice"]
    assert [s["client"] for s in mine] == [me], data
    c.quit()
    # haproxy's own address is nowhere a client
    assert not re.search(r"(from|client)=127\.0\.0\.1:", node.log()[since:]), node.log()


@pytest.mark.parametrize("proxy", ["v2", "v1"])
def test_proxy_header_from_untrusted_address_is_refused(cluster_factory, proxy):
    cl = cluster_factory(proxy=proxy)
    node = cl["a"]
    c = cl.connect(port=cl.hp.untrusted, source=X)
    # haproxy sent its header from UNTRUSTED_SOURCE, which node a does
    # not trust: the connection is closed; no session, no login.
    got = []
    try:
        c.send(b"USER alice\r\n")
        for _ in range(10):
            got.append(c.readline())
    except (EOFError, OSError):
        pass
    c.close()
    assert not any(l.startswith(b"+OK") and b"alice" in l.lower() for l in got), got
    assert len(got) < 10, got
    assert wait_for(lambda: re.search(r"PROXY header from untrusted peer %s"
                                      % re.escape(UNTRUSTED_SOURCE), node.log())), node.log()
    assert not re.search(r"connect from=%s" % re.escape(X), node.log())
    # a trusted haproxy still gets through
    ok = cl.connect("a", source=X)
    assert login(ok).startswith(b"+OK")
    ok.quit()


def test_per_ip_connection_limit_counts_the_real_client(cluster_factory):
    # Every client here is loopback: LimitLoopback makes the limit apply.
    cl = cluster_factory(MaxConnectionsPerIp=1, LimitLoopback=True)
    x1 = cl.connect("a", source=X)
    assert x1.greeting.startswith(b"+OK")
    # a second connection of X is over its limit ...
    x2 = cl.connect("a", source=X)
    assert x2.greeting.startswith(b"-ERR"), x2.greeting
    assert x2.closed_by_server()
    x2.close()
    # ... Y, through the same haproxy (the same peer 127.0.0.1), is not
    y = cl.connect("a", source=Y)
    assert y.greeting.startswith(b"+OK"), (y.greeting, cl["a"].log())
    assert login(y, "bob").startswith(b"+OK")
    y.quit()
    assert login(x1).startswith(b"+OK")
    x1.quit()


def timed_failure(cl, source):
    c = cl.connect("a", source=source)
    assert c.cmd("USER alice").startswith(b"+OK")
    t0 = time.monotonic()
    r = c.cmd("PASS wrong")
    dt = time.monotonic() - t0
    c.close()
    assert r.startswith(b"-ERR"), r
    return dt


def test_login_penalty_counts_the_real_client(cluster_factory):
    # The delay after a failed login grows with the failures from the
    # client's address (AuthFailDelay per failure).  X fails four times;
    # then X's fifth waits at least 5 delays, and Y's first only one --
    # it would wait 5 or more if the penalty counted haproxy's address.
    step = 1.0
    cl = cluster_factory(AuthFailDelay=int(step * 1000))
    for _ in range(4):
        timed_failure(cl, X)
    x = timed_failure(cl, X)
    y = timed_failure(cl, Y)
    assert x >= 5 * step * 0.95, x       # a timer never fires early
    assert y < 3 * step, (x, y)          # 1 step, with 3x for a loaded machine
    # and a good login of Y works at once
    c = cl.connect("a", source=Y)
    assert login(c).startswith(b"+OK")
    c.quit()
