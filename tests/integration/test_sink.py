"""The development SMTP sink (issue 11): smtplib sends to three
recipients, each of them logs in with poplib and sees exactly its mail;
unknown recipients become users (SinkCreatesUsers); loopback only."""

import json
import poplib
import re
import smtplib
import subprocess
import time

import pytest

from posuto_testlib import Server, base_config, free_port, posuto_bin

SINK_PW = "devpass"


@pytest.fixture
def sink_server(tmp_path):
    pop_port, sink_port = free_port(), free_port()
    cfg = base_config(pop_port, tmp_path / "mail", users=[
        {"UserName": "known", "Password": "{PLAIN}secret"}],
        SinkCreatesUsers=True, SinkPassword=SINK_PW)
    cfg["Pop3Server"]["Listen"] = [
        {"Address": "127.0.0.1", "Port": pop_port},
        {"Address": "127.0.0.1", "Port": sink_port, "Protocol": "smtp-sink",
         "MaxMessageSize": 50000},
    ]
    srv = Server(tmp_path, cfg).start()
    srv.pop_port, srv.sink_port = pop_port, sink_port
    yield srv
    srv.stop()


def pop_login(port, user, password, tries=100):
    """The user list is reloaded when the file watcher sees the config
    change: a created user can log in once it has (bounded wait)."""
    for _ in range(tries):
        c = poplib.POP3("127.0.0.1", port, timeout=30)
        try:
            c.user(user)
            c.pass_(password)
            return c
        except poplib.error_proto:
            c.close()
            time.sleep(0.1)
    raise AssertionError("%s never could log in" % user)


def fetch_all(c):
    out = []
    for i in range(1, len(c.list()[1]) + 1):
        out.append(b"\r\n".join(c.retr(i)[1]) + b"\r\n")
    c.quit()
    return out


def test_three_recipients_each_see_their_mail(sink_server):
    srv = sink_server
    s = smtplib.SMTP("127.0.0.1", srv.sink_port, timeout=30)
    code, _ = s.ehlo("app.example")
    assert code == 250
    msgs = {
        "one": b"Subject: to one and two\r\n\r\nhello 12\r\n",
        "three": b"Subject: to three\r\n\r\nhello 3\r\n",
    }
    assert s.sendmail("app@example.org", ["one@dev.test", "two@dev.test"],
                      msgs["one"]) == {}
    assert s.sendmail("app@example.org", ["three@dev.test", "known@dev.test"],
                      msgs["three"]) == {}
    s.quit()
    expect = {"one": [b"to one and two"], "two": [b"to one and two"],
              "three": [b"to three"]}
    for user, subjects in expect.items():
        got = fetch_all(pop_login(srv.pop_port, user, SINK_PW))
        assert [re.search(rb"Subject: ([^\r]*)", m).group(1) for m in got] \
            == subjects, user
        assert all(b"Delivered-To: <%s@dev.test>" % user.encode() in m
                   for m in got)
    got = fetch_all(pop_login(srv.pop_port, "known", "secret"))
    assert len(got) == 1 and b"Subject: to three" in got[0]
    users = [u["UserName"] for u in
             json.loads(srv.config_path.read_text())["Pop3Server"]["Users"]]
    assert sorted(users) == ["known", "one", "three", "two"]


def test_banner_size_and_bad_names(sink_server):
    srv = sink_server
    s = smtplib.SMTP(timeout=30)
    code, greeting = s.connect("127.0.0.1", srv.sink_port)
    assert code == 220 and b"not for the internet" in greeting
    s.ehlo("app.example")
    assert int(s.esmtp_features["size"]) == 50000
    with pytest.raises(smtplib.SMTPSenderRefused):
        s.sendmail("a@example.org", ["big@dev.test"], b"x" * 60000,
                   mail_options=["SIZE=60000"])
    s.rset()
    # No relaying, no paths: a name the validator refuses is refused.
    with pytest.raises(smtplib.SMTPRecipientsRefused):
        s.sendmail("a@example.org", ["../../etc@dev.test"], b"hi\r\n")
    s.quit()


def test_non_loopback_refused(tmp_path):
    port = free_port()
    cfg = base_config(port, tmp_path / "mail")
    cfg["Pop3Server"]["Listen"] = [
        {"Address": "127.0.0.1", "Port": port},
        {"Address": "0.0.0.0", "Port": free_port(), "Protocol": "smtp-sink"}]
    srv = Server(tmp_path, cfg)
    p = subprocess.run([posuto_bin(), "check-config", "-c",
                        str(srv.config_path)], capture_output=True, timeout=30)
    assert p.returncode != 0
    assert b"not for the internet" in p.stderr
    cfg["Pop3Server"]["Listen"][1]["AllowNonLoopback"] = True
    srv.rewrite_config(cfg)
    p = subprocess.run([posuto_bin(), "check-config", "-c",
                        str(srv.config_path)], capture_output=True, timeout=30)
    assert p.returncode == 0, p.stderr
