"""The server runtime seen from outside: SIGUSR1 logs the counters and
every live session (who, from where, in which state, doing what: never a
password), and the counters are logged again at shutdown."""
import poplib
import re
import signal
import time

from posuto_testlib import USER1, sample_message, to_wire


def wait_for(srv, pattern, start=0, timeout=20):
    """The log from offset start once pattern (a regex) appears in it."""
    deadline = time.monotonic() + timeout
    for _ in range(400):
        text = srv.log()[start:]
        if re.search(pattern, text, re.M):
            return text
        if time.monotonic() > deadline:
            break
        time.sleep(0.05)
    raise AssertionError("no %r in the log:\n%s" % (pattern, srv.log()))


def test_sigusr1_dumps_live_sessions_and_counters(servers, maildir):
    msgs = [sample_message(i) for i in range(2)]
    for m in msgs:
        maildir.deliver(m)
    srv = servers.start(servers.config())

    bad = poplib.POP3("127.0.0.1", srv.port, timeout=20)
    bad.user(USER1)
    try:
        bad.pass_("Sesame-42x")
        raise AssertionError("a wrong password logged in")
    except poplib.error_proto:
        pass
    bad.quit()

    c = poplib.POP3("127.0.0.1", srv.port, timeout=20)
    c.user(USER1)
    c.pass_("password")
    resp, lines, _ = c.retr(1)
    assert b"\r\n".join(lines) + b"\r\n" == to_wire(msgs[0])
    waiting = poplib.POP3("127.0.0.1", srv.port, timeout=20)  # greeted only

    start = len(srv.log())
    srv.signal(signal.SIGUSR1)
    text = wait_for(srv, r"sessions live=2$", start)
    text = wait_for(srv, r"^.*session=\S+ protocol=pop3 .*state=AUTHORIZATION", start)
    dump = [l for l in text.splitlines() if re.search(r"session=\S+ protocol=pop3", l)]
    logged_in = [l for l in dump if "user=" + USER1 in l]
    assert len(logged_in) == 1, dump
    line = logged_in[0]
    assert "state=TRANSACTION" in line, line
    assert "command=RETR" in line, line
    assert re.search(r"client=127\.0\.0\.1:\d+ ", line), line
    assert re.search(r"bytes=%d\b" % len(to_wire(msgs[0])), line), line
    others = [l for l in dump if "user=-" in l]
    assert len(others) == 1 and "state=AUTHORIZATION" in others[0], dump
    # Only the verb is kept: no argument, so no password, ever.
    assert "Sesame-42x" not in text
    assert not any("password" in l for l in dump), dump
    counters = [l for l in text.splitlines() if "counters protocol=pop3" in l]
    assert len(counters) == 1, text
    # the harness's own startup probes are connections too
    assert int(re.search(r"connections=(\d+)", counters[0]).group(1)) >= 3
    assert "logins_ok=1" in counters[0], counters
    assert "logins_failed=1" in counters[0], counters
    assert "failed:wrong-password=1" in counters[0], counters
    assert "retrieved=1 " in counters[0], counters

    c.dele(2)
    c.quit()
    waiting.quit()
    srv.stop()
    log = srv.log()
    final = [l for l in log.splitlines() if "counters protocol=pop3" in l]
    assert len(final) == 2, final       # SIGUSR1's, then shutdown's
    assert "deleted=1" in final[-1], final
    assert "retrieved=1 " in final[-1], final
    assert "sessions live" not in log[log.index(final[-1]):]
