"""Fixtures for posuto's integration tests.

POSUTO_BIN names the binary under test (default build/posuto); the same
suite runs against the ASan+UBSan build, so every server we start is
checked at teardown for a clean SIGTERM exit and for sanitizer reports.
"""

import os
import pathlib
import signal
import sys

import pytest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))

from posuto_testlib import (  # noqa: E402
    Emldir, Maildir, Server, base_config, free_port, make_cert, posuto_bin,
)

# A hard per-test bound on top of every socket/subprocess timeout: SIGALRM
# interrupts a blocked call and fails the test instead of hanging the run.
TEST_TIME_LIMIT = int(os.environ.get("POSUTO_TEST_TIME_LIMIT", "300"))


class TestTimeout(Exception):
    pass


@pytest.fixture(autouse=True)
def _time_limit():
    def on_alarm(signum, frame):
        raise TestTimeout("test exceeded %d s" % TEST_TIME_LIMIT)
    old = signal.signal(signal.SIGALRM, on_alarm)
    signal.alarm(TEST_TIME_LIMIT)
    yield
    signal.alarm(0)
    signal.signal(signal.SIGALRM, old)


@pytest.fixture(scope="session")
def posuto():
    b = posuto_bin()
    if not os.access(b, os.X_OK):
        pytest.fail("posuto binary not found at %s (set POSUTO_BIN)" % b)
    return b


class ServerFactory:
    """Starts servers for one test and tears all of them down."""

    def __init__(self, tmp_path):
        self.tmp = tmp_path
        self.servers = []
        self.n = 0

    def config(self, maildir=None, port=None, **extra):
        return base_config(port or free_port(), maildir or (self.tmp / "mail"), **extra)

    def start(self, cfg=None, extra_args=(), **kw):
        if cfg is None:
            cfg = self.config(**kw)
        # Configs not from base_config (seed files) too: not /run's.
        cfg["Pop3Server"].setdefault("LockFile", str(self.tmp / "posuto.lock"))
        self.n += 1
        s = Server(self.tmp, cfg, name="posuto%d" % self.n)
        self.servers.append(s)
        return s.start(extra_args=extra_args)

    def finish(self):
        problems = []
        for s in self.servers:
            _rc, p = s.stop()
            problems += ["%s: %s" % (s.name, x) for x in p]
            if p:
                problems.append("%s log tail:\n%s" % (s.name, s.log()[-3000:]))
        return problems


@pytest.fixture
def servers(tmp_path, posuto):
    f = ServerFactory(tmp_path)
    yield f
    problems = f.finish()
    if problems:
        pytest.fail("\n".join(problems), pytrace=False)


@pytest.fixture
def maildir(tmp_path):
    """user1's Maildir under MailDir/<UserName>/ (auto-detected)."""
    return Maildir(tmp_path / "mail" / "user1@example.com")


@pytest.fixture
def emldir(tmp_path):
    return Emldir(tmp_path / "mail" / "user1@example.com")


@pytest.fixture(scope="session")
def tls_cert(tmp_path_factory):
    d = tmp_path_factory.mktemp("tls")
    return make_cert(d)


@pytest.fixture(scope="session")
def tls_cert2(tmp_path_factory):
    d = tmp_path_factory.mktemp("tls2")
    return make_cert(d, name="cert2")
