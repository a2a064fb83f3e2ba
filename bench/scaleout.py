#!/usr/bin/python3
"""bench/scaleout.py - issue 13's rows: SQL userdbs, and nodes behind haproxy.

Same run, interleaved, ratios (README.md):

  sql-session-c64     sessions/s at 64 clients (USER, PASS, STAT, QUIT) of
                      posuto with its sql userdb (PostgreSQL, MariaDB) on
                      Maildir, next to posuto with the same users in Users[]
                      and Dovecot with an SQL passdb (dovecot-pgsql,
                      dovecot-mysql) on the same Maildirs; both with their
                      userdb/auth caches on (POSUTO_NO_USERDB_CACHE=1,
                      DOVECOT_NO_AUTH_CACHE=1 turn them off).
  sql-retr-c16        RETR MB/s at 16 clients (USER, PASS, STAT, LIST, RETR
                      all, QUIT) of posuto's sql mail store on PostgreSQL and
                      MariaDB next to posuto on Maildir, the same messages
                      (the first 20 of u1..u16, brought into each database
                      with `posuto sql import`), with CPU per MB of posuto
                      and of the database.
  sql-store-session-c64  sessions/s at 64 clients with the mail in SQL too
                      (sql store: database lock, message list, unlock per
                      session) next to posuto on Maildir, sql userdb cached.
  scale-session-c64   one posuto node vs two behind haproxy (PROXY v2,
                      roundrobin), sql userdb on PostgreSQL, with the CPU
                      seconds of every process (nodes, haproxy, database,
                      load generator): on a 2-core machine the rate cannot
                      double, but CPU per session shows what scales.

Private PostgreSQL and MariaDB (tests/integration/sqlservers.py) and a
private haproxy (haproxy_instance.py), started here, stopped by PID.  Mail
and users come from run.sh's data directory (run `bench/run.sh --prepare`
first); the mailboxes u1..uN are hard-linked into trees of their own.
Results: a table on stdout and out/scaleout.json.

  bench/scaleout.py [--reps 3] [--duration 5] [--warmup 1] [--clients 64]
                    [--data DIR] [--posuto PATH] [--only sql,retr,store,scale]
                    [--keep] [--db-buffer-mb 512]
"""

import argparse
import json
import os
import pathlib
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

HERE = pathlib.Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(REPO / "tests" / "integration"))

import haproxy_instance  # noqa: E402
import sqlservers  # noqa: E402
from posuto_testlib import free_port  # noqa: E402

HZ = os.sysconf("SC_CLK_TCK")
NOBODY = 65534


def log(*a):
    print(time.strftime("%H:%M:%S"), "scaleout:", *a, file=sys.stderr, flush=True)


def proc_ticks():
    """{pid: (ppid, ticks incl. reaped children)} from one pass over /proc."""
    out = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            s = pathlib.Path("/proc", d, "stat").read_text()
        except OSError:
            continue
        f = s.rsplit(")", 1)[1].split()
        out[int(d)] = (int(f[1]), sum(int(x) for x in f[11:15]))
    return out


def tree_cpu(root, table):
    """CPU seconds of root and its descendants."""
    kids = {}
    for p, (pp, _t) in table.items():
        kids.setdefault(pp, []).append(p)
    total, todo = 0, [root]
    while todo:
        p = todo.pop()
        if p in table:
            total += table[p][1]
        todo += kids.get(p, [])
    return total / HZ


def wait_port(port, proc, timeout=30):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            return False
        if haproxy_instance._listening(port):
            return True
        time.sleep(0.05)
    return False


class Proc:
    def __init__(self, name, argv, log_path, port):
        self.name, self.port = name, port
        self.logf = open(log_path, "ab")
        self.p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=self.logf,
                                  stderr=self.logf, start_new_session=True)
        if not wait_port(port, self.p):
            raise RuntimeError("%s did not listen on %d (see %s)" % (name, port, log_path))

    @property
    def pid(self):
        return self.p.pid

    def stop(self):
        if self.p.poll() is None:
            os.kill(self.p.pid, signal.SIGTERM)
            try:
                self.p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.kill(self.p.pid, signal.SIGKILL)
                self.p.wait(timeout=30)
        self.logf.close()


def link_tree(src, dst):
    subprocess.run(["cp", "-al", str(src), str(dst)], check=True)
    for root, dirs, files in os.walk(dst):
        os.chown(root, NOBODY, NOBODY)


class Bench:
    def __init__(self, a):
        self.a = a
        self.data = pathlib.Path(a.data)
        self.work = pathlib.Path(tempfile.mkdtemp(prefix="posuto-scaleout-", dir="/tmp"))
        os.chmod(self.work, 0o755)
        self.users = ["u%d" % i for i in range(1, a.clients + 1)]
        self.sha = dict(l.split() for l in open(self.data / "passwd.sha"))
        self.raw = []
        self.procs = []
        self.dbs = {}

    # ---- data
    def prepare_mail(self):
        for tree in ("scale-posuto", "scale-dovecot"):
            root = self.data / "mail" / tree
            stamp = root / ".users"
            if stamp.exists() and stamp.read_text() == " ".join(self.users):
                continue
            log("linking mailboxes into", root)
            shutil.rmtree(root, ignore_errors=True)
            root.mkdir(parents=True)
            for u in self.users:
                link_tree(self.data / "mail" / "posuto" / u, root / u)
            os.chown(root, NOBODY, NOBODY)
            stamp.write_text(" ".join(self.users))

    def start_dbs(self):
        pwfile = self.work / "db-password"
        pwfile.write_text(sqlservers.PASSWORD + "\n")
        pwfile.chmod(0o600)
        self.pwfile = pwfile
        for kind, cls in (("pgsql", sqlservers.PgServer), ("mysql", sqlservers.MariaDbServer)):
            log("starting", kind)
            # page cache for the working set (the RETR rows' ~80 MB and
            # their indexes), as a production server has; the tests'
            # 16 MB made every chunk a read from the OS and, for InnoDB,
            # a page checksum and an LRU eviction per 16 KiB
            db = cls(buffer_mb=self.a.db_buffer_mb)
            db.start()
            # no statement log: it would be the benchmark's bottleneck
            if kind == "pgsql":
                db.sql("ALTER SYSTEM SET log_statement = 'none'", db="postgres")
                db.sql("SELECT pg_reload_conf()", db="postgres")
            else:
                db.sql("SET GLOBAL general_log = 0", db=None)
            self.dbs[kind] = db
            cfg = self.posuto_cfg(free_port(), kind)
            path = self.work / ("init-%s.json" % kind)
            path.write_text(json.dumps(cfg))
            subprocess.run([self.a.posuto, "sql", "init", "-c", str(path)], check=True,
                           capture_output=True, timeout=120)
            db.sql("DELETE FROM posuto_users")
            rows = ",".join("('%s', '{SHA256.HEX}%s')" % (u, self.sha[u]) for u in self.users)
            db.sql("INSERT INTO posuto_users (name, password) VALUES " + rows)

    # ---- servers
    RETR_USERS = 16
    RETR_MSGS = 20

    def prepare_retr_mail(self):
        """u1..u16 with the first 20 messages each, hard-linked (Maildir
        row), then imported into each database (sql rows)."""
        root = self.data / "mail" / "scale-retr"
        users = ["u%d" % i for i in range(1, self.RETR_USERS + 1)]
        stamp = root / ".users"
        if not (stamp.exists() and stamp.read_text() == "%s %d" % (" ".join(users),
                                                                   self.RETR_MSGS)):
            log("linking retr mailboxes into", root)
            shutil.rmtree(root, ignore_errors=True)
            for u in users:
                src = self.data / "mail" / "posuto" / u
                for d in ("cur", "new", "tmp"):
                    (root / u / d).mkdir(parents=True)
                # cur/ once a run.sh session has seen the mail, new/ on
                # fresh --prepare data: the first messages, either way
                msgs = sorted((f, d) for d in ("cur", "new")
                              for f in os.listdir(src / d))[:self.RETR_MSGS]
                if len(msgs) < self.RETR_MSGS:
                    raise RuntimeError("%s has fewer than %d messages"
                                       % (src, self.RETR_MSGS))
                for f, d in msgs:
                    os.link(src / d / f, root / u / d / f)
                for d in (root / u, root / u / "cur", root / u / "new", root / u / "tmp"):
                    os.chown(d, NOBODY, NOBODY)
            os.chown(root, NOBODY, NOBODY)
            stamp.write_text("%s %d" % (" ".join(users), self.RETR_MSGS))
        for kind in self.dbs:
            t0 = time.monotonic()
            for u in users:
                r = subprocess.run([self.a.posuto, "sql", "import", "-c",
                                    str(self.work / ("init-%s.json" % kind)),
                                    "--from", "maildir:%s" % (root / u), u],
                                   capture_output=True, text=True, timeout=600)
                if r.returncode != 0:
                    raise RuntimeError("sql import %s into %s: %s" % (u, kind, r.stderr))
            log("imported %d mailboxes into %s in %.1fs" % (len(users), kind,
                                                             time.monotonic() - t0))
        self.retr_users = users

    def posuto_cfg(self, port, userdb, proxy=False, store="maildir"):
        mail = "scale-retr" if store == "maildir-retr" else "scale-posuto"
        p = {"Listen": [{"Address": "127.0.0.1", "Port": port}],
             "MailDir": str(self.data / "mail" / mail),
             "MailboxFormat": "sql" if store == "sql" else "maildir",
             "MaxConnectionsPerIp": 0, "MaxConnections": 0, "AuthFailDelay": 0,
             "LogLevel": "warn", "LockFile": str(self.work / "mailbox.lock")}
        if proxy:
            p["Listen"][0]["ProxyTrusted"] = "127.0.0.1"
        if userdb == "static":
            p["Users"] = [{"UserName": u, "Password": self.sha[u], "HashType": "SHA256"}
                          for u in self.users]
        else:
            p["Sql"] = self.dbs[userdb].sql_config(PasswordFile=str(self.pwfile))
            # as Dovecot's auth cache below (10M, 1 hour); POSUTO_NO_USERDB_CACHE=1
            # measures every login's round trip
            if os.environ.get("POSUTO_NO_USERDB_CACHE") != "1":
                p["Sql"].update(CacheSize=100000, CacheTimeToLive=3600)
        return {"Pop3Server": p}

    def start_posuto(self, name, userdb, proxy=False, store="maildir"):
        port = free_port()
        path = self.work / (name + ".json")
        path.write_text(json.dumps(self.posuto_cfg(port, userdb, proxy, store), indent=1))
        pr = Proc(name, [self.a.posuto, "serve", "-c", str(path)], self.work / (name + ".log"),
                  port)
        self.procs.append(pr)
        return pr

    def start_dovecot(self, name, kind):
        port = free_port()
        d = self.work / name
        (d / "run").mkdir(parents=True)
        (d / "state").mkdir()
        db = self.dbs[kind]
        if kind == "pgsql":
            connect = "host=127.0.0.1 port=%d dbname=%s user=postgres password=%s" % (
                db.port, sqlservers.DATABASE, sqlservers.PASSWORD)
        else:
            connect = "host=127.0.0.1 port=%d dbname=%s user=posuto password=%s" % (
                db.port, sqlservers.DATABASE, sqlservers.PASSWORD)
        (d / "sql.conf.ext").write_text(
            "driver = %s\nconnect = %s\n"
            "password_query = SELECT name AS user, password FROM posuto_users "
            "WHERE name = '%%u'\n" % (kind, connect))
        cache = "0" if os.environ.get("DOVECOT_NO_AUTH_CACHE") == "1" else "10M"
        mail = self.data / "mail" / "scale-dovecot"
        (d / "dovecot.conf").write_text("""# generated by posuto bench/scaleout.py
base_dir = {d}/run
state_dir = {d}/state
instance_name = posuto-scaleout-{name}
listen = 127.0.0.1
protocols = pop3
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain
log_path = {d}/dovecot.log
info_log_path = /dev/null
first_valid_uid = 1
mail_location = maildir:{mail}/%u
mail_fsync = never
maildir_very_dirty_syncs = yes
pop3_uidl_format = %f
auth_cache_size = {cache}
auth_cache_ttl = 1 hour
default_process_limit = 1000
default_client_limit = 4000
passdb {{
  driver = sql
  args = {d}/sql.conf.ext
}}
userdb {{
  driver = static
  args = uid=nobody gid=nogroup home={mail}/%u
}}
service pop3-login {{
  inet_listener pop3 {{
    address = 127.0.0.1
    port = {port}
  }}
  inet_listener pop3s {{
    port = 0
  }}
  service_count = 0
  process_min_avail = 1
}}
service pop3 {{
  service_count = 0
  process_min_avail = 2
}}
protocol pop3 {{
  mail_max_userip_connections = 100000
}}
""".format(d=d, name=name, mail=mail, cache=cache, port=port))
        pr = Proc(name, ["/usr/sbin/dovecot", "-F", "-c", str(d / "dovecot.conf")],
                  d / "master.log", port)
        time.sleep(0.5)     # the login process
        self.procs.append(pr)
        return pr

    # ---- load
    def popload(self, label, port, watch, retr=False, manifest=True):
        """One run; watch: {name: pid} whose CPU is reported.  retr: the
        RETR mode at 16 clients on the small mailboxes (no manifest: the
        first STAT of each user is what LIST and RETR are checked with)."""
        a = self.a
        n = self.RETR_USERS if retr else a.clients
        argv = [str(HERE / "out" / "bin" / "popload"), "-p", str(port),
                "-m", "retr" if retr else "session",
                "-c", str(n), "-U", str(n), "-u", "u%d", "-P", "pw-u%d",
                "-d", str(a.duration), "-w", str(a.warmup), "-q", "--label", label]
        if retr:
            argv += ["--pipeline", "2"]
        elif manifest:
            argv += ["--manifest", str(self.data / "users.manifest")]
        t0 = proc_ticks()
        r = subprocess.run(argv, capture_output=True, text=True,
                           timeout=a.duration + a.warmup + 60)
        t1 = proc_ticks()
        try:
            out = json.loads(r.stdout)
        except ValueError:
            out = {"errors": 1}
        cpu = {n: round(tree_cpu(p, t1) - tree_cpu(p, t0), 2) for n, p in watch.items()}
        rec = {"scenario": label.split("/")[0], "server": label.split("/")[1],
               "rate": out.get("rate"), "mbps": out.get("mbps"),
               "errors": out.get("errors", 0) or r.returncode,
               "loadgen_cpu_pct": out.get("loadgen_cpu_pct"), "cpu_s": cpu,
               "measured_s": a.duration}
        self.raw.append(rec)
        log("%-28s rate=%-8s errors=%s cpu=%s" % (label, rec["rate"], rec["errors"], cpu))
        if rec["errors"]:
            log("  popload:", r.stderr.strip()[:400])
        return rec

    def db_pids(self):
        return {"db-" + k: db.proc.pid for k, db in self.dbs.items()}

    def run_sql(self):
        srv = {"posuto-static": self.start_posuto("posuto-static", "static"),
               "posuto-pgsql": self.start_posuto("posuto-pgsql", "pgsql"),
               "posuto-mysql": self.start_posuto("posuto-mysql", "mysql")}
        try:
            srv["dovecot-pgsql"] = self.start_dovecot("dovecot-pgsql", "pgsql")
            srv["dovecot-mysql"] = self.start_dovecot("dovecot-mysql", "mysql")
        except RuntimeError as e:
            log("Dovecot not started:", e)
        names = list(srv)
        for r in range(self.a.reps):
            for n in (names if r % 2 == 0 else names[::-1]):
                watch = {n: srv[n].pid}
                if n.endswith("sql"):
                    k = n.rsplit("-", 1)[1]
                    watch["db-" + k] = self.dbs[k].proc.pid
                self.popload("sql-session-c%d/%s" % (self.a.clients, n), srv[n].port, watch)
        for n in names:
            srv[n].stop()

    def run_retr(self):
        self.prepare_retr_mail()
        srv = {"posuto-maildir": self.start_posuto("retr-maildir", "static",
                                                   store="maildir-retr"),
               "posuto-sql-pgsql": self.start_posuto("retr-pgsql", "pgsql", store="sql"),
               "posuto-sql-mysql": self.start_posuto("retr-mysql", "mysql", store="sql")}
        names = list(srv)
        c = self.RETR_USERS
        for r in range(self.a.reps):
            for n in (names if r % 2 == 0 else names[::-1]):
                watch = {n: srv[n].pid}
                if n.startswith("posuto-sql-"):
                    k = n.rsplit("-", 1)[1]
                    watch["db-" + k] = self.dbs[k].proc.pid
                self.popload("sql-retr-c%d/%s" % (c, n), srv[n].port, watch, retr=True)
        for n in names:
            srv[n].stop()

    def run_store_sessions(self):
        """sessions/s with the mail in SQL too (lock, list, unlock per
        session): u1..u16 hold the imported mailboxes, the others none;
        no manifest (each user's first STAT is what is checked)."""
        if not getattr(self, "retr_users", None):
            self.prepare_retr_mail()
        srv = {"posuto-maildir": self.start_posuto("st-maildir", "static",
                                                   store="maildir-retr"),
               "posuto-sql-pgsql": self.start_posuto("st-pgsql", "pgsql", store="sql"),
               "posuto-sql-mysql": self.start_posuto("st-mysql", "mysql", store="sql")}
        names = list(srv)
        for r in range(self.a.reps):
            for n in (names if r % 2 == 0 else names[::-1]):
                watch = {n: srv[n].pid}
                if n.startswith("posuto-sql-"):
                    k = n.rsplit("-", 1)[1]
                    watch["db-" + k] = self.dbs[k].proc.pid
                self.popload("sql-store-session-c%d/%s" % (self.a.clients, n), srv[n].port,
                             watch, manifest=False)
        for n in names:
            srv[n].stop()

    def run_scale(self):
        a_ = self.start_posuto("node-a", "pgsql", proxy=True)
        b_ = self.start_posuto("node-b", "pgsql", proxy=True)
        one = haproxy_instance.Haproxy(self.work, [("a", "127.0.0.1", a_.port)],
                                       name="haproxy-1").start()
        two = haproxy_instance.Haproxy(self.work, [("a", "127.0.0.1", a_.port),
                                                   ("b", "127.0.0.1", b_.port)],
                                       name="haproxy-2").start()
        try:
            for r in range(self.a.reps):
                order = [("1node", one), ("2nodes", two)]
                for n, hp in (order if r % 2 == 0 else order[::-1]):
                    self.popload("scale-session-c%d/%s" % (self.a.clients, n), hp.port,
                                 {"node-a": a_.pid, "node-b": b_.pid, "haproxy": hp.pid(),
                                  "db-pgsql": self.dbs["pgsql"].proc.pid})
        finally:
            one.stop()
            two.stop()
            a_.stop()
            b_.stop()

    def cleanup(self):
        for p in self.procs:
            try:
                p.stop()
            except Exception:
                pass
        for db in self.dbs.values():
            db.cleanup()
        if self.a.keep:
            log("work directory kept:", self.work)
        else:
            shutil.rmtree(self.work, ignore_errors=True)


def med(xs):
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def report(raw, a):
    rows = {}
    for r in raw:
        rows.setdefault((r["scenario"], r["server"]), []).append(r)
    summary = {}
    for (sc, sv), rs in rows.items():
        cpu = {k: med([x["cpu_s"].get(k) for x in rs]) for k in rs[0]["cpu_s"]}
        rate = med([x["rate"] for x in rs])
        sessions = (rate or 0) * a.duration
        mbps = med([x.get("mbps") for x in rs])
        mb = (mbps or 0) * a.duration
        summary["%s/%s" % (sc, sv)] = {
            "rate": rate, "runs": [x["rate"] for x in rs],
            "mbps": mbps if sc.startswith("sql-retr") else None,
            # RETR rows: CPU ms of the POP3 server / of everything per MB
            "server_cpu_ms_per_mb": round(1000 * sum(
                v for k, v in cpu.items() if not k.startswith("db-") and v) / mb, 2)
            if mb and sc.startswith("sql-retr") else None,
            "total_cpu_ms_per_mb": round(1000 * sum(v for v in cpu.values() if v) / mb, 2)
            if mb and sc.startswith("sql-retr") else None,
            "errors": sum(x["errors"] for x in rs), "cpu_s": cpu,
            "loadgen_cpu_pct": med([x["loadgen_cpu_pct"] for x in rs]),
            # CPU ms of the POP3 servers (posuto nodes or Dovecot) per session
            "server_cpu_ms_per_session": round(1000 * sum(
                v for k, v in cpu.items() if not k.startswith(("db-", "haproxy")) and v)
                / sessions, 3) if sessions else None,
            # everything it took: servers, haproxy, database
            "total_cpu_ms_per_session": round(1000 * sum(v for v in cpu.values() if v)
                                              / sessions, 3) if sessions else None}
    c = a.clients
    print("\n%-34s %10s  %-52s %s" % ("scenario/server", "sessions/s", "CPU s per run (median)",
                                     "CPU ms/session: server, total"))
    for k, v in summary.items():
        if v["mbps"] is not None:
            continue
        print("%-34s %10s  %-52s %s, %s" % (k, v["rate"], " ".join(
            "%s=%s" % kv for kv in v["cpu_s"].items()), v["server_cpu_ms_per_session"],
            v["total_cpu_ms_per_session"]) + ("  ERR%d" % v["errors"] if v["errors"] else ""))

    retr = {k: v for k, v in summary.items() if v["mbps"] is not None}
    if retr:
        print("\n%-34s %10s  %-52s %s" % ("scenario/server", "RETR MB/s", "CPU s per run (median)",
                                         "CPU ms/MB: server, total"))
        for k, v in retr.items():
            print("%-34s %10s  %-52s %s, %s" % (k, v["mbps"], " ".join(
                "%s=%s" % kv for kv in v["cpu_s"].items()), v["server_cpu_ms_per_mb"],
                v["total_cpu_ms_per_mb"]) + ("  ERR%d" % v["errors"] if v["errors"] else ""))

    def ratio(x, y):
        rx, ry = summary.get(x, {}).get("rate"), summary.get(y, {}).get("rate")
        return round(rx / ry, 2) if rx and ry else None
    ratios = {}
    for k in ("pgsql", "mysql"):
        ratios["posuto-%s/dovecot-%s" % (k, k)] = ratio(
            "sql-session-c%d/posuto-%s" % (c, k), "sql-session-c%d/dovecot-%s" % (c, k))
        ratios["posuto-%s/posuto-static" % k] = ratio(
            "sql-session-c%d/posuto-%s" % (c, k), "sql-session-c%d/posuto-static" % c)
    for k in ("pgsql", "mysql"):
        d = summary.get("sql-session-c%d/dovecot-%s" % (c, k), {}).get("total_cpu_ms_per_session")
        p = summary.get("sql-session-c%d/posuto-%s" % (c, k), {}).get("total_cpu_ms_per_session")
        ratios["cpu/session dovecot-%s/posuto-%s" % (k, k)] = round(d / p, 2) if d and p else None
    for k in ("pgsql", "mysql"):
        ratios["store sessions sql-%s/maildir" % k] = ratio(
            "sql-store-session-c%d/posuto-sql-%s" % (c, k),
            "sql-store-session-c%d/posuto-maildir" % c)
        # the 5x covers the store too: against the same run's
        # Dovecot with that SQL passdb (its mail on Maildir)
        ratios["store sessions sql-%s/dovecot-%s" % (k, k)] = ratio(
            "sql-store-session-c%d/posuto-sql-%s" % (c, k),
            "sql-session-c%d/dovecot-%s" % (c, k))
        d = summary.get("sql-session-c%d/dovecot-%s" % (c, k), {}).get(
            "total_cpu_ms_per_session")
        p = summary.get("sql-store-session-c%d/posuto-sql-%s" % (c, k), {}).get(
            "total_cpu_ms_per_session")
        ratios["cpu/session dovecot-%s/store-sql-%s" % (k, k)] = (
            round(d / p, 2) if d and p else None)
    for k in ("pgsql", "mysql"):
        x = summary.get("sql-retr-c16/posuto-sql-%s" % k, {}).get("mbps")
        y = summary.get("sql-retr-c16/posuto-maildir", {}).get("mbps")
        ratios["retr MB/s sql-%s/maildir" % k] = round(x / y, 2) if x and y else None
    ratios["2nodes/1node"] = ratio("scale-session-c%d/2nodes" % c, "scale-session-c%d/1node" % c)
    print("\nratios (same run):", " ".join("%s=%s" % kv for kv in ratios.items()))
    return summary, ratios


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--duration", type=float, default=5)
    ap.add_argument("--warmup", type=float, default=1)
    ap.add_argument("--clients", type=int, default=64)
    ap.add_argument("--data", default=os.environ.get("BENCH_DATA", "/var/tmp/posuto-bench"))
    ap.add_argument("--posuto", default=os.environ.get("POSUTO", str(REPO / "build" / "posuto")))
    ap.add_argument("--only", default="sql,retr,store,scale")
    ap.add_argument("--keep", action="store_true", help="keep the work directory")
    ap.add_argument("--db-buffer-mb", type=int, default=512,
                    help="shared_buffers / innodb_buffer_pool_size (MB)")
    a = ap.parse_args()
    if not (pathlib.Path(a.data) / "users.manifest").exists():
        sys.exit("scaleout: no data in %s (bench/run.sh --prepare)" % a.data)
    for need, ok in (("haproxy", haproxy_instance.available()),
                     ("PostgreSQL", sqlservers.pg_available()),
                     ("MariaDB", sqlservers.mariadb_available())):
        if not ok:
            sys.exit("scaleout: %s not installed (scripts/deps.sh bench)" % need)
    load_before = open("/proc/loadavg").read().split()[:3]
    b = Bench(a)
    try:
        b.prepare_mail()
        b.start_dbs()
        only = a.only.split(",")
        if "sql" in only:
            b.run_sql()
        if "retr" in only:
            b.run_retr()
        if "store" in only:
            b.run_store_sessions()
        if "scale" in only:
            b.run_scale()
    finally:
        b.cleanup()
    summary, ratios = report(b.raw, a)
    (HERE / "out").mkdir(exist_ok=True)
    (HERE / "out" / "scaleout.json").write_text(json.dumps(
        {"clients": a.clients, "reps": a.reps, "duration": a.duration,
         "loadavg_before": load_before,
         "summary": summary, "ratios": ratios, "raw": b.raw}, indent=1))
    sys.exit(1 if any(v["errors"] for k, v in summary.items()
                      if not k.split("/")[1].startswith("dovecot")) else 0)


if __name__ == "__main__":
    main()
