"""Private PostgreSQL and MariaDB servers for the SQL tests.

Each is initialised by the test in its own temporary directory, listens on
127.0.0.1 on a free port and on a unix socket in that directory, logs every
statement (PostgreSQL log_statement=all, MariaDB general_log) to a file the
tests read, and is stopped by PID.  Both servers refuse to run as root, so
they run as the Debian system users postgres / mysql (the directory is
chowned to them).  Every wait is bounded.

    pg = PgServer().start()     # superuser "postgres", password PASSWORD
    pg.sql("CREATE TABLE ...")        # psql over the unix socket
    pg.stop(); pg.start()             # same data directory, same port
    pg.cleanup()                      # stop, remove the directory
"""

import grp
import os
import pathlib
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time

from posuto_testlib import free_port

PASSWORD = "db-secret"
DATABASE = "posuto"
PG_BIN = pathlib.Path("/usr/lib/postgresql/15/bin")


def pg_available():
    return (PG_BIN / "postgres").exists() and _user_exists("postgres")


def mariadb_available():
    return (shutil.which("mariadbd") or os.path.exists("/usr/sbin/mariadbd")) \
        and shutil.which("mariadb-install-db") and _user_exists("mysql")


def _user_exists(name):
    try:
        pwd.getpwnam(name)
        return True
    except KeyError:
        return False


def _chown_tree(path, user):
    pw = pwd.getpwnam(user)
    for root, dirs, files in os.walk(path):
        os.chown(root, pw.pw_uid, pw.pw_gid)
        for f in files:
            os.chown(os.path.join(root, f), pw.pw_uid, pw.pw_gid)


def _as(user):
    pw = pwd.getpwnam(user)
    return {"user": pw.pw_uid, "group": pw.pw_gid, "extra_groups": []}


def _wait_port(port, proc, log, timeout=60):
    deadline = time.monotonic() + timeout
    for _ in range(100000):
        if proc.poll() is not None:
            raise RuntimeError("database exited with %s:\n%s"
                               % (proc.returncode, log()[-3000:]))
        if time.monotonic() > deadline:
            raise RuntimeError("database not up within %ss:\n%s" % (timeout, log()[-3000:]))
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.1)


class _Db:
    kind = "db"

    def __init__(self, workdir=None, buffer_mb=16):
        # buffer_mb: the database's page cache (shared_buffers,
        # innodb_buffer_pool_size); small for tests, the working set for
        # a benchmark (bench/scaleout.py)
        self.buffer_mb = buffer_mb
        # pytest's tmp_path is under a 0700 directory of root's, which the
        # database's own user cannot enter: by default, a directory of
        # our own in /tmp, removed by cleanup().
        self.own_dir = workdir is None
        if workdir is None:
            workdir = tempfile.mkdtemp(prefix="posuto-%s-" % self.kind, dir="/tmp")
        self.dir = pathlib.Path(workdir)
        self.dir.mkdir(parents=True, exist_ok=True)
        os.chmod(self.dir, 0o755)
        self.port = free_port()
        self.proc = None
        self.logf = None

    def log(self):
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def log_size(self):
        try:
            return self.log_path.stat().st_size
        except FileNotFoundError:
            return 0

    def log_since(self, offset):
        with open(self.log_path, "rb") as f:
            f.seek(offset)
            return f.read().decode(errors="replace")

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def stop(self):
        if not self.alive():
            return
        os.kill(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=30)
        if self.logf:
            self.logf.close()
            self.logf = None

    def cleanup(self):
        self.stop()
        if self.own_dir:
            shutil.rmtree(self.dir, ignore_errors=True)

    def _family(self):
        """The server and its children (PostgreSQL's backends are
        processes, each in a session of its own)."""
        pids = [self.proc.pid]
        for d in os.listdir("/proc"):
            if not d.isdigit():
                continue
            try:
                stat = pathlib.Path("/proc", d, "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == self.proc.pid:
                pids.append(int(d))
        return pids

    def pause(self):
        """SIGSTOP: the server holds its connections but answers nothing."""
        self.paused = self._family()
        for pid in self.paused:
            os.kill(pid, signal.SIGSTOP)

    def resume(self):
        for pid in getattr(self, "paused", []):
            try:
                os.kill(pid, signal.SIGCONT)
            except ProcessLookupError:
                pass
        self.paused = []


class PgServer(_Db):
    """PostgreSQL 15: superuser postgres with PASSWORD over TCP
    (scram-sha-256), trust over the unix socket (for the test's psql)."""

    kind = "pgsql"

    def __init__(self, workdir=None, buffer_mb=16):
        super().__init__(workdir, buffer_mb)
        self.data = self.dir / "data"
        self.sock = self.dir / "sock"
        self.log_path = self.dir / "postgres.log"
        self.initialised = False

    def init(self):
        self.sock.mkdir(exist_ok=True)
        pwfile = self.dir / "pw"
        pwfile.write_text(PASSWORD + "\n")
        _chown_tree(self.dir, "postgres")
        subprocess.run([str(PG_BIN / "initdb"), "-D", str(self.data), "-U", "postgres",
                        "--auth-local=trust", "--auth-host=scram-sha-256",
                        "--pwfile=" + str(pwfile), "-E", "UTF8", "--locale=C.UTF-8"],
                       check=True, capture_output=True, timeout=120, cwd=str(self.dir),
                       **_as("postgres"))
        pwfile.unlink()
        self.initialised = True

    def start(self):
        if not self.initialised:
            self.init()
        self.logf = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [str(PG_BIN / "postgres"), "-D", str(self.data), "-k", str(self.sock),
             "-p", str(self.port), "-c", "listen_addresses=127.0.0.1",
             "-c", "log_statement=all", "-c", "log_min_error_statement=error",
             "-c", "fsync=off", "-c", "shared_buffers=%dMB" % self.buffer_mb, "-c", "max_connections=50"],
            stdin=subprocess.DEVNULL, stdout=self.logf, stderr=self.logf,
            cwd=str(self.dir), start_new_session=True, **_as("postgres"))
        _wait_port(self.port, self.proc, self.log)
        # Accepting TCP comes a little before accepting sessions.
        for _ in range(100):
            r = subprocess.run(self._psql_args("SELECT 1", "postgres"), capture_output=True,
                               timeout=30, **_as("postgres"))
            if r.returncode == 0:
                break
            time.sleep(0.2)
        if not getattr(self, "_db_made", False):
            self.sql("CREATE DATABASE %s" % DATABASE, db="postgres")
            self._db_made = True
        return self

    def _psql_args(self, sql, db):
        return [str(PG_BIN / "psql"), "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1",
                "-h", str(self.sock), "-p", str(self.port), "-U", "postgres",
                "-d", db, "-c", sql]

    def sql(self, sql, db=DATABASE):
        """Runs SQL through psql; returns stdout.  Test setup only."""
        r = subprocess.run(self._psql_args(sql, db), capture_output=True, timeout=60,
                           text=True, **_as("postgres"))
        if r.returncode != 0:
            raise RuntimeError("psql failed: %s\n%s" % (sql, r.stderr))
        return r.stdout

    def sql_config(self, **extra):
        c = {"Driver": "pgsql", "Host": "127.0.0.1", "Port": self.port,
             "Database": DATABASE, "User": "postgres"}
        c.update(extra)
        return c


class MariaDbServer(_Db):
    """MariaDB: root over the unix socket for the test, user posuto with
    PASSWORD over TCP for posuto; general_log on."""

    kind = "mysql"

    def __init__(self, workdir=None, buffer_mb=16):
        super().__init__(workdir, buffer_mb)
        self.data = self.dir / "data"
        self.sock = self.dir / "mysqld.sock"
        self.log_path = self.dir / "general.log"
        self.err_path = self.dir / "error.log"
        self.initialised = False

    def init(self):
        self.data.mkdir(exist_ok=True)
        _chown_tree(self.dir, "mysql")
        r = subprocess.run(["mariadb-install-db", "--no-defaults", "--datadir=" + str(self.data),
                            "--user=mysql", "--auth-root-authentication-method=normal",
                            "--skip-test-db"],
                           capture_output=True, timeout=180, cwd=str(self.dir))
        if r.returncode != 0:
            raise RuntimeError("mariadb-install-db: %s %s" % (r.stdout, r.stderr))
        self.initialised = True

    def start(self):
        if not self.initialised:
            self.init()
        mariadbd = shutil.which("mariadbd") or "/usr/sbin/mariadbd"
        self.logf = open(self.err_path, "ab")
        self.proc = subprocess.Popen(
            [mariadbd, "--no-defaults", "--datadir=" + str(self.data),
             "--socket=" + str(self.sock), "--port=%d" % self.port,
             "--bind-address=127.0.0.1", "--pid-file=" + str(self.dir / "mysqld.pid"),
             "--general-log=1", "--general-log-file=" + str(self.log_path),
             "--log-error=" + str(self.err_path), "--innodb-buffer-pool-size=%dM" % self.buffer_mb,
             "--skip-log-bin", "--innodb-flush-log-at-trx-commit=0",
             "--max-connections=50"],
            stdin=subprocess.DEVNULL, stdout=self.logf, stderr=self.logf,
            cwd=str(self.dir), start_new_session=True, **_as("mysql"))
        _wait_port(self.port, self.proc, lambda: self.err_path.read_text(errors="replace"))
        for _ in range(100):
            r = subprocess.run(self._client_args("SELECT 1", None), capture_output=True,
                               timeout=30)
            if r.returncode == 0:
                break
            time.sleep(0.2)
        if not getattr(self, "_db_made", False):
            self.sql("CREATE DATABASE %s CHARACTER SET utf8mb4; "
                     "CREATE USER 'posuto'@'127.0.0.1' IDENTIFIED BY '%s'; "
                     "GRANT ALL ON %s.* TO 'posuto'@'127.0.0.1'"
                     % (DATABASE, PASSWORD, DATABASE), db=None)
            self._db_made = True
        return self

    def _client_args(self, sql, db):
        a = ["mariadb", "--no-defaults", "-S", str(self.sock), "-u", "root",
             "--batch", "--skip-column-names"]
        if db:
            a += ["-D", db]
        return a + ["-e", sql]

    def sql(self, sql, db=DATABASE):
        r = subprocess.run(self._client_args(sql, db), capture_output=True, timeout=60,
                           text=True)
        if r.returncode != 0:
            raise RuntimeError("mariadb failed: %s\n%s" % (sql, r.stderr))
        return r.stdout

    def sql_config(self, **extra):
        c = {"Driver": "mysql", "Host": "127.0.0.1", "Port": self.port,
             "Database": DATABASE, "User": "posuto"}
        c.update(extra)
        return c
