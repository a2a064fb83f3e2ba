"""RFC 6856 (issue 9 item 18): UTF8 (UTF-8 user names and passwords) and
LANG with English and Japanese replies."""

import hashlib
import poplib

from posuto_testlib import (
    SHA256_PASSWORD, USER1, Maildir, Pop3, free_port, sample_message, to_wire,
)

JP_USER = "ユーザー@example.jp"
JP_PASS = "パスワード"


def jp_users():
    return [
        {"UserName": USER1, "Password": SHA256_PASSWORD, "HashType": "SHA256"},
        {"UserName": JP_USER, "HashType": "SHA256",
         "Password": hashlib.sha256(JP_PASS.encode()).hexdigest()},
    ]


def start_jp(servers, tmp_path, **extra):
    md = Maildir(tmp_path / "mail" / JP_USER)
    msg = sample_message(1)
    md.deliver(msg)
    Maildir(tmp_path / "mail" / USER1).deliver(sample_message(2))
    return servers.start(users=jp_users(), **extra), md, msg


def cmd(c, line):
    """cmd() for UTF-8 lines; the reply must be UTF-8 too."""
    r = c.cmd(line.encode() if isinstance(line, str) else line)
    return r.decode("utf-8")


# ------------------------------------------------------------ CAPA

def test_capa_advertises_utf8_user_and_lang(servers, maildir):
    maildir.deliver(sample_message(1))
    srv = servers.start()
    for login in (False, True):
        c = Pop3("127.0.0.1", srv.port)
        if login:
            c.must_login()
        caps = c.multi("CAPA")
        assert b"UTF8 USER" in caps, caps
        assert b"LANG" in caps, caps
        c.quit()


# ------------------------------------------------------------ LANG

def test_lang_lists_english_and_japanese(servers, maildir):
    srv = servers.start()
    c = Pop3("127.0.0.1", srv.port)
    assert c.cmd("LANG") == b"+OK Language listing follows"
    assert c.read_multi() == [b"en English", "ja 日本語".encode()]
    c.quit()


def test_lang_ja_then_replies_in_japanese(servers, maildir):
    maildir.deliver(sample_message(1))
    srv = servers.start()
    c = Pop3("127.0.0.1", srv.port)
    assert cmd(c, "LANG ja") == "+OK ja 言語を日本語に変更しました"
    assert cmd(c, "XYZZY") == "-ERR 不明なコマンドです"
    assert cmd(c, "STAT") == "-ERR STAT はこの状態では使用できません"
    assert cmd(c, "USER " + USER1) == "+OK パスワードを送ってください"
    r = cmd(c, "PASS password")
    assert r.startswith("+OK メッセージが1通あります（"), r
    assert cmd(c, "RETR 9") == "-ERR そのメッセージはありません"
    assert cmd(c, "DELE 1") == "+OK メッセージ1を削除しました"
    assert cmd(c, "DELE 1") == "-ERR メッセージ1は削除済みです"
    # STAT keeps RFC 1939's form whatever the language.
    assert cmd(c, "STAT") == "+OK 0 0"
    # Response codes stay as they are.
    assert cmd(c, "LANG fr") == "-ERR その言語には対応していません"
    # Back to English, also in TRANSACTION; "*" is the default.
    assert cmd(c, "LANG *") == "+OK en Language changed to English"
    assert cmd(c, "XYZZY") == "-ERR Unknown command"
    assert cmd(c, "LANG ja").startswith("+OK ja ")
    assert cmd(c, "QUIT") == "+OK posutoを終了します（1通のメッセージを削除しました）"
    c.close()


def test_lang_matching_is_case_insensitive_with_fallback(servers, maildir):
    srv = servers.start()
    c = Pop3("127.0.0.1", srv.port)
    for tag in ("ja-JP", "JA", "Ja-jp-x-osaka"):
        assert cmd(c, "LANG " + tag).startswith("+OK ja "), tag
    for tag in ("en-US", "EN", "i-default"):
        assert cmd(c, "LANG " + tag).startswith("+OK en "), tag
    c.quit()


def test_lang_unknown_or_invalid_keeps_the_language(servers, maildir):
    srv = servers.start()
    c = Pop3("127.0.0.1", srv.port)
    assert cmd(c, "LANG uga") == "-ERR Unsupported language"
    assert cmd(c, "LANG ja").startswith("+OK ja")
    assert cmd(c, "LANG de-DE") == "-ERR その言語には対応していません"
    assert cmd(c, "LANG ja_JP") == "-ERR 言語の指定が正しくありません"
    assert cmd(c, "LANG 日本語") == "-ERR 言語の指定が正しくありません"
    assert cmd(c, "CAPA") == "+OK 機能の一覧です"  # before the 3rd bad one
    c.read_multi()
    assert cmd(c, "LANG ja JP") == "-ERR 引数の数が正しくありません"
    assert cmd(c, "XYZZY") == "-ERR 不明なコマンドです"
    c.quit()


def test_japanese_limit_reply_is_the_only_one(servers, maildir):
    """The bad-command limit in Japanese: one reply, then close."""
    srv = servers.start()
    c = Pop3("127.0.0.1", srv.port)
    assert cmd(c, "LANG ja").startswith("+OK ja")
    assert cmd(c, "XYZZY") == "-ERR 不明なコマンドです"
    assert cmd(c, "XYZZY") == "-ERR 不明なコマンドです"
    c.send(b"XYZZY\r\n")
    assert c.closed_by_server(timeout=30)
    assert c.buf.decode() == "-ERR 不正なコマンドが多すぎるため切断します\r\n"
    c.close()


# ------------------------------------------------------------ UTF8

def test_utf8_command_and_utf8_user_login(servers, tmp_path):
    srv, _md, msg = start_jp(servers, tmp_path)
    c = Pop3("127.0.0.1", srv.port)
    assert cmd(c, "UTF8") == "+OK UTF8 mode enabled"
    assert cmd(c, "UTF8") == "+OK UTF8 mode enabled"
    assert cmd(c, "USER " + JP_USER).startswith("+OK")
    assert cmd(c, "PASS " + JP_PASS).startswith("+OK maildrop has 1 message (")
    assert c.retr(1) == to_wire(msg)
    assert cmd(c, "UTF8") == "-ERR UTF8 not allowed in this state"
    c.quit()


def test_utf8_user_without_utf8_mode_is_accepted(servers, tmp_path):
    """Decided: UTF-8 names and passwords are accepted with or without the
    UTF8 command (CAPA says "UTF8 USER"); RFC 6856 §2.2 allows it."""
    srv, _md, _msg = start_jp(servers, tmp_path)
    c = Pop3("127.0.0.1", srv.port)
    assert cmd(c, "USER " + JP_USER).startswith("+OK")
    assert cmd(c, "PASS " + JP_PASS).startswith("+OK")
    c.quit()
    c = Pop3("127.0.0.1", srv.port)
    assert cmd(c, "USER " + JP_USER).startswith("+OK")
    assert cmd(c, "PASS wrong").startswith("-ERR [AUTH]")
    c.close()


def test_invalid_utf8_user_is_refused_in_both_modes(servers, tmp_path):
    srv, _md, _msg = start_jp(servers, tmp_path)
    sjis = JP_USER.encode("shift_jis")
    for utf8 in (False, True):
        c = Pop3("127.0.0.1", srv.port)
        if utf8:
            c.ok("UTF8")
        for name in (sjis, b"user\xc0\xaf", b"\xed\xa0\x80x", b"a\xe3\x81"):
            assert c.cmd(b"USER " + name) == b"-ERR User name is not valid UTF-8", name
            c.ok("CAPA")
            c.read_multi()
        # That name was not kept: PASS has no USER.
        assert c.cmd(b"PASS x") == b"-ERR USER first"
        assert c.cmd(b"USER " + JP_USER.encode()).startswith(b"+OK")
        assert c.cmd(b"PASS " + JP_PASS.encode()).startswith(b"+OK")
        c.quit()


def test_invalid_utf8_password_in_utf8_mode(servers, tmp_path):
    srv, _md, _msg = start_jp(servers, tmp_path)
    c = Pop3("127.0.0.1", srv.port)
    c.ok("UTF8")
    assert c.cmd(b"USER " + JP_USER.encode()).startswith(b"+OK")
    assert c.cmd(b"PASS " + JP_PASS.encode("shift_jis")) == \
        b"-ERR [AUTH] Password is not valid UTF-8"
    assert c.cmd(b"PASS " + JP_PASS.encode()).startswith(b"+OK")
    c.quit()
    # Without UTF8 mode the octets are only a wrong password.
    c = Pop3("127.0.0.1", srv.port)
    assert c.cmd(b"USER " + JP_USER.encode()).startswith(b"+OK")
    assert c.cmd(b"PASS " + JP_PASS.encode("shift_jis")).startswith(
        b"-ERR [AUTH] Authentication failed")
    c.close()


def test_stls_after_utf8_is_refused(servers, tmp_path, tls_cert):
    cfile, kfile = tls_cert
    cfg = servers.config()
    p = cfg["Pop3Server"]
    del p["BindAddress"]
    del p["Port"]
    p["Listen"] = [{"Address": "127.0.0.1", "Port": free_port(), "Tls": "none"}]
    p["Tls"] = {"Certificate": cfile, "Key": kfile}
    srv = servers.start(cfg)
    c = Pop3("127.0.0.1", srv.port)
    c.ok("UTF8")
    assert c.cmd("STLS") == b"-ERR STLS not allowed after UTF8"
    c.quit()


def test_python_poplib_utf8(servers, tmp_path):
    srv, _md, msg = start_jp(servers, tmp_path)
    p = poplib.POP3("127.0.0.1", srv.port, timeout=30)
    try:
        caps = p.capa()
        assert caps.get("UTF8") == ["USER"], caps
        assert "LANG" in caps, caps
        assert p.utf8().startswith(b"+OK")
        p.user(JP_USER)
        p.pass_(JP_PASS)
        assert p.stat() == (1, len(to_wire(msg)))
        _resp, lines, _octets = p.retr(1)
        assert b"".join(l + b"\r\n" for l in lines) == to_wire(msg)
        assert p.quit().startswith(b"+OK")
    finally:
        p.close()
