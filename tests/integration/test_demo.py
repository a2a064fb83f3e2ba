"""scripts/demo.sh (what `make run` serves) produces a config the server
accepts and a mailbox it serves; re-running keeps existing mail."""

import json
import poplib
import ssl

from posuto_testlib import REPO, USER1, Maildir, Pop3, free_port, run, to_wire

DEMO = str(REPO / "scripts" / "demo.sh")


def test_demo_config_mail_and_tls(servers, tmp_path, posuto):
    d = tmp_path / "demo"
    r = run(["sh", DEMO, str(d)], timeout=120)
    assert r.returncode == 0, r.stderr.decode()
    out = r.stdout.decode()
    assert "self-signed" in out
    for word in ("telnet", "curl", "pop3://", "pop3s://", "Thunderbird"):
        assert word in out, word
    assert (d / "tls" / "cert.pem").exists() and (d / "tls" / "key.pem").exists()

    r = run([posuto, "check-config", "-c", str(d / "posuto.json")])
    assert r.returncode == 0, (r.stdout + r.stderr).decode()

    cfg = json.loads((d / "posuto.json").read_text())
    p = cfg["Pop3Server"]
    assert [(l["Address"], l["Port"], l["Tls"]) for l in p["Listen"]] == \
        [("127.0.0.1", 1110, "none"), ("127.0.0.1", 1995, "implicit")]
    # Same config on free ports so tests never collide with a running demo.
    p["Listen"][0]["Port"], p["Listen"][1]["Port"] = free_port(), free_port()
    servers.start(cfg)

    box = Maildir(d / "mail" / USER1)
    files = box.files()
    assert len(files) >= 6
    sizes = sorted(len(v[2]) for v in files.values())
    assert sizes[-1] >= 4_500_000  # the ~5 MB one
    raw_all = [v[2] for v in files.values()]
    assert any(b"charset=ISO-2022-JP" in m and b"\x1b$B" in m for m in raw_all)
    assert any(b"charset=UTF-8" in m for m in raw_all)
    assert any(b"\n.\n" in m or b"\n.hidden" in m for m in raw_all)
    assert not any(b"\r\n" in m for m in raw_all)  # LF, as Postfix writes

    c = Pop3("127.0.0.1", p["Listen"][0]["Port"])
    c.must_login(USER1, "password")
    n, total = c.stat()
    assert n == len(files)
    assert total == sum(len(to_wire(m)) for m in raw_all)
    got = sorted(c.retr(i) for i in range(1, n + 1))
    assert got == sorted(to_wire(m) for m in raw_all)
    c.ok("DELE 1")
    c.quit()

    ctx = ssl.create_default_context(cafile=str(d / "tls" / "cert.pem"))
    pop = poplib.POP3_SSL("127.0.0.1", p["Listen"][1]["Port"], context=ctx, timeout=30)
    pop.user(USER1)
    pop.pass_("password")
    assert pop.stat()[0] == n - 1
    pop.quit()

    # Re-running keeps the mail (and the certificate) as they are.
    cert_before = (d / "tls" / "cert.pem").read_bytes()
    r = run(["sh", DEMO, str(d)], timeout=120)
    assert r.returncode == 0, r.stderr.decode()
    assert "self-signed certificate in" not in r.stdout.decode()
    assert (d / "tls" / "cert.pem").read_bytes() == cert_before
    assert len(Maildir(d / "mail" / USER1).files()) == n - 1
