"""The wire cache (issue 4): big LF messages downloaded a second time get
a CRLF, dot-stuffed copy in <mailbox>/posuto-wire/, later RETRs send that
copy, and a copy never outlives or misrepresents its message."""

import os
import time

from posuto_testlib import USER1, Pop3, dot_stuff, sample_message, to_wire

BIG = 300 * 1024          # above the default WireCacheMinSize (128 KiB)
TRAILER = 64  # after the body, which starts at offset 0


def big_message(i, size=BIG):
    lines = [b"From: a@example.com", b"Subject: big %d" % i, b""]
    n = 0
    while n < size:
        # dot lines, long lines, 8-bit bytes: everything the encoder changes
        line = (b".dot line %d" % n) if n % 7 == 0 else (b"x" * 70 + b"\xe3\x81\x82")
        lines.append(line)
        n += len(line) + 1
    return b"\n".join(lines) + b"\n"


def deliver_read(maildir, msg):
    """A message some client has read before (cur/, S flag): its next
    download builds the copy."""
    return maildir.deliver(msg, sub="cur", info="2,S")


def retr(port, n, user=USER1, password="password"):
    c = Pop3("127.0.0.1", port)
    c.must_login(user, password)
    c.ok("RETR %d" % n)
    raw = c.read_multi_raw()
    c.quit()
    return raw


def wait_for(path, timeout=20):
    deadline = time.monotonic() + timeout
    while not os.path.exists(path):
        assert time.monotonic() < deadline, "%s never appeared" % path
        time.sleep(0.05)


def cache_dir(maildir):
    return maildir.path / "posuto-wire"


def test_second_download_builds_copy_and_later_retr_sends_it(servers, maildir):
    msg = big_message(1)
    key = maildir.deliver(msg)
    small = maildir.deliver(sample_message(2))
    srv = servers.start()
    want = dot_stuff(to_wire(msg))
    # the first download (the usual download-and-delete) builds nothing
    assert retr(srv.port, 1) == want
    time.sleep(0.5)
    assert not cache_dir(maildir).exists()
    # QUIT marked it read (cur/, S): downloaded again, it gets its copy
    assert key + ":2,S" in os.listdir(maildir.path / "cur")
    assert retr(srv.port, 1) == want
    copy = cache_dir(maildir) / key
    wait_for(copy)
    assert os.path.getsize(copy) == len(want) + TRAILER
    assert open(copy, "rb").read()[:-TRAILER] == want
    assert oct(os.stat(copy).st_mode & 0o777) == "0o600"
    # the copy is what goes out now: flip one byte of it (same length)
    # and the next RETR shows it, so it really was sent from the copy
    data = bytearray(open(copy, "rb").read())
    pos = want.index(b"xxxx")
    data[pos] = ord("Y")
    open(copy, "r+b").write(bytes(data))
    got = retr(srv.port, 1)
    assert len(got) == len(want) and got[pos] == ord("Y")
    assert retr(srv.port, 2) == dot_stuff(to_wire(sample_message(2)))
    assert sorted(os.listdir(cache_dir(maildir))) == [key], "small messages are not copied"
    assert small not in os.listdir(cache_dir(maildir))


def test_second_retr_in_one_session_builds_copy(servers, maildir):
    msg = big_message(1)
    key = maildir.deliver(msg)
    srv = servers.start()
    want = dot_stuff(to_wire(msg))
    c = Pop3("127.0.0.1", srv.port)
    c.must_login()
    for _ in range(2):
        c.ok("RETR 1")
        assert c.read_multi_raw() == want
    wait_for(cache_dir(maildir) / key)
    c.quit()
    assert retr(srv.port, 1) == want


def test_replaced_message_is_never_served_from_its_old_copy(servers, maildir):
    key = deliver_read(maildir, big_message(1))
    srv = servers.start()
    retr(srv.port, 1)
    wait_for(cache_dir(maildir) / key)
    # another program rewrites the message under the same name
    path = maildir.path / "cur" / [f for f in os.listdir(maildir.path / "cur")][0]
    new = big_message(2, BIG + 5000)
    tmp = maildir.path / "tmp" / "x"
    tmp.write_bytes(new)
    os.rename(tmp, path)
    assert retr(srv.port, 1) == dot_stuff(to_wire(new))


def test_damaged_copy_is_ignored_and_rebuilt(servers, maildir):
    msg = big_message(1)
    key = deliver_read(maildir, msg)
    srv = servers.start()
    want = dot_stuff(to_wire(msg))
    retr(srv.port, 1)
    copy = cache_dir(maildir) / key
    wait_for(copy)
    # a copy cut short (the crash case fsync+rename prevents, made by hand)
    with open(copy, "r+b") as f:
        f.truncate(1000)
    assert retr(srv.port, 1) == want
    deadline = time.monotonic() + 20
    while os.path.getsize(copy) != len(want) + TRAILER:
        assert time.monotonic() < deadline, "damaged copy not rebuilt"
        time.sleep(0.05)
    # garbage in the trailer: ignored too
    with open(copy, "r+b") as f:
        f.seek(-TRAILER, os.SEEK_END)
        f.write(b"\0" * 16)
    assert retr(srv.port, 1) == want
    # so is a copy shorter than a trailer
    with open(copy, "r+b") as f:
        f.truncate(10)
    assert retr(srv.port, 1) == want


def test_dele_quit_removes_the_copy(servers, maildir):
    keys = [deliver_read(maildir, big_message(i)) for i in range(3)]
    srv = servers.start()
    for n in (1, 2, 3):
        retr(srv.port, n)
        wait_for(cache_dir(maildir) / keys[n - 1])
    c = Pop3("127.0.0.1", srv.port)
    c.must_login()
    c.ok("DELE 2")
    c.quit()
    assert sorted(os.listdir(cache_dir(maildir))) == sorted([keys[0], keys[2]])
    # a session that ends without QUIT deletes nothing, copies included
    c = Pop3("127.0.0.1", srv.port)
    c.must_login()
    c.ok("DELE 1")
    c.close()
    time.sleep(0.3)
    assert sorted(os.listdir(cache_dir(maildir))) == sorted([keys[0], keys[2]])


def test_copies_of_messages_deleted_by_others_are_swept(servers, maildir):
    keys = [deliver_read(maildir, big_message(i)) for i in range(2)]
    srv = servers.start()
    for n in (1, 2):
        retr(srv.port, n)
        wait_for(cache_dir(maildir) / keys[n - 1])
    # another client (Dovecot, a MUA) deletes message 1 from cur/
    for f in os.listdir(maildir.path / "cur"):
        if f.startswith(keys[0]):
            os.unlink(maildir.path / "cur" / f)
    # an abandoned build long ago, and a fresh one that may still run
    old = cache_dir(maildir) / ".tmp.1.1"
    old.write_bytes(b"partial")
    os.utime(old, (time.time() - 7200, time.time() - 7200))
    fresh = cache_dir(maildir) / ".tmp.1.2"
    fresh.write_bytes(b"partial")
    c = Pop3("127.0.0.1", srv.port)
    c.must_login()
    assert c.stat()[0] == 1
    c.quit()
    assert sorted(os.listdir(cache_dir(maildir))) == sorted([keys[1], ".tmp.1.2"])


def test_top_and_uidl_unaffected(servers, maildir):
    msg = big_message(1)
    deliver_read(maildir, msg)
    srv = servers.start()
    c = Pop3("127.0.0.1", srv.port)
    c.must_login()
    before = c.uidl()
    c.quit()
    retr(srv.port, 1)
    wait_for(cache_dir(maildir) / os.listdir(maildir.path / "cur")[0].split(":")[0])
    c = Pop3("127.0.0.1", srv.port)
    c.must_login()
    assert c.uidl() == before
    assert c.list() == {1: len(to_wire(msg))}
    c.ok("TOP 1 2")
    top = c.read_multi_raw()
    assert top.startswith(b"From: a@example.com\r\n") and top.endswith(b"..dot line 0\r\nxxx" + b"x" * 67 + b"\xe3\x81\x82\r\n")
    c.quit()


def test_off_switch_builds_nothing_and_clears_old_copies(servers, maildir):
    keys = [deliver_read(maildir, big_message(i)) for i in range(2)]
    srv = servers.start()
    retr(srv.port, 1)
    wait_for(cache_dir(maildir) / keys[0])
    srv.stop()
    srv2 = servers.start(WireCacheMinSize=0)
    want = dot_stuff(to_wire(big_message(1)))
    assert retr(srv2.port, 2) == want
    c = Pop3("127.0.0.1", srv2.port)
    c.must_login()
    c.ok("DELE 2")
    c.quit()
    time.sleep(0.2)
    assert os.listdir(cache_dir(maildir)) == []


def test_emldir_messages_are_cached_on_first_download(servers, emldir):
    """The emldir layout records no read state: it cannot wait for a
    second download."""
    msg = big_message(1)
    emldir.deliver(msg)
    srv = servers.start()
    want = dot_stuff(to_wire(msg))
    assert retr(srv.port, 1) == want
    d = emldir.path / "posuto-wire"
    deadline = time.monotonic() + 20
    while not (d.exists() and os.listdir(d)):
        assert time.monotonic() < deadline, "no copy for the emldir message"
        time.sleep(0.05)
    assert retr(srv.port, 1) == want
    c = Pop3("127.0.0.1", srv.port)
    c.must_login()
    assert c.stat()[0] == 1, "the cache directory is not a message"
    c.quit()
