/*
 * pop3_msg.h - the message catalogue: the text of every +OK/-ERR reply the
 * server sends, in English and Japanese (RFC 6856 LANG), keyed by id.
 *
 * Each id X has two printf formats, POP3_EN_X and POP3_JA_X, with the same
 * conversions in the same order and the same status and [response code]
 * (tests/unit/test_pop3_msg.c checks).  They are macros, not only table
 * entries, so that every call site (pop3_msg(), pop3_bad() in pop3_int.h)
 * has the compiler check its arguments against both formats.  No reply
 * text lives anywhere else in src/pop3 (tests/pop3_reply_literals.sh).
 *
 * Adding a reply: its id to POP3_MSG_IDS, both texts below.  A reply
 * with a count n has X for n != 1 and X_1 for n == 1 (pop3_msg_n()),
 * both taking n as their first argument.
 */
#ifndef POP3_MSG_H
#define POP3_MSG_H

#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>

enum pop3_lang {
	POP3_LANG_EN = 0,
	POP3_LANG_JA,
	POP3_LANG_COUNT
};
/* Sessions start in it; LANG * returns to it. */
#define POP3_LANG_DEFAULT POP3_LANG_EN

#define POP3_MSG_IDS(X) \
	X(GREETING) X(GREETING_APOP) X(CONN_LIMIT_IP) X(CONN_LIMIT) \
	X(SESSION_TIMEOUT) X(IDLE_TIMEOUT) X(TOO_MANY_BAD) X(KICKED) \
	X(LINE_TOO_LONG) X(SASL_TOO_LONG) \
	X(EMPTY_CMD) X(BAD_BYTES) X(UNKNOWN_CMD) X(WRONG_STATE) \
	X(MISSING_ARG) X(WRONG_ARGS) \
	X(CAPA) X(BYE) X(AUTH_CANCELLED) X(SASL_BAD_B64) \
	X(PLAINTEXT_REFUSED) X(SEND_PASS) X(USER_FIRST) X(AUTH_FAILED) \
	X(AUTH_FAILED_CLOSE) X(APOP_UNAVAILABLE) X(MECH_LIST) \
	X(MECH_UNSUPPORTED) X(SCRAM_PLUS_NEEDS_TLS) X(IR_BAD_B64) \
	X(TLS_ALREADY) X(STLS_UNAVAILABLE) X(STLS_BEGIN) \
	X(MSG_BAD_NUMBER) X(MSG_NO_SUCH) X(MSG_ALREADY_DELETED) \
	X(STAT) X(LIST_SUMMARY) X(LIST_SUMMARY_1) X(LIST_ONE) \
	X(UIDL_LIST) X(UIDL_ONE) \
	X(MSG_GONE) X(MSG_GONE_CLOSE) X(RETR) X(TOP) \
	X(BAD_LINE_COUNT) X(DELE) X(NOOP) X(RSET) X(RSET_1) \
	X(LOGIN_OK) X(LOGIN_OK_1) X(SASL_MALFORMED) \
	X(AUTH_TEMPFAIL) X(IN_USE) X(MAILBOX_TEMP) X(MAILBOX_PERM) \
	X(QUIT_DELETED) X(QUIT_DELETED_1) X(COMMIT_FAILED) \
	X(MSG_UNREADABLE_TEMP) X(MSG_UNREADABLE_PERM) X(MSG_UNREADABLE_CLOSE) \
	X(LOGIN_DELAY) X(LINE_TIMEOUT) X(CONN_RATE) \
	X(FAULT_TEMP) X(FAULT_LOGIN_DELAY) \
	X(UTF8_OK) X(STLS_AFTER_UTF8) X(USER_BAD_UTF8) X(PASS_BAD_UTF8) \
	X(LANG_LIST) X(LANG_CHANGED) X(LANG_UNKNOWN) X(LANG_INVALID)

/* Connection and session. */
#define POP3_EN_GREETING	"+OK POP3 server ready"
#define POP3_JA_GREETING	"+OK POP3サーバの準備ができました"
#define POP3_EN_GREETING_APOP	"+OK POP3 server ready %s"
#define POP3_JA_GREETING_APOP	"+OK POP3サーバの準備ができました %s"
#define POP3_EN_CONN_LIMIT_IP \
	"-ERR [SYS/TEMP] Too many connections from your address"
#define POP3_JA_CONN_LIMIT_IP \
	"-ERR [SYS/TEMP] お使いのアドレスからの接続が多すぎます"
#define POP3_EN_CONN_LIMIT \
	"-ERR [SYS/TEMP] Too many connections, try later"
#define POP3_JA_CONN_LIMIT \
	"-ERR [SYS/TEMP] 接続数が上限に達しています。しばらくしてから接続してください"
#define POP3_EN_SESSION_TIMEOUT	"-ERR [SYS/TEMP] Session time limit reached"
#define POP3_JA_SESSION_TIMEOUT	"-ERR [SYS/TEMP] セッションの制限時間に達しました"
#define POP3_EN_IDLE_TIMEOUT	"-ERR Autologout: idle timeout"
#define POP3_JA_IDLE_TIMEOUT	"-ERR 一定時間操作がなかったため自動ログアウトします"
#define POP3_EN_KICKED	"-ERR [SYS/TEMP] Disconnected by the administrator"
#define POP3_JA_KICKED	"-ERR [SYS/TEMP] 管理者により切断されました"
#define POP3_EN_TOO_MANY_BAD	"-ERR Too many bad commands, closing connection"
#define POP3_JA_TOO_MANY_BAD	"-ERR 不正なコマンドが多すぎるため切断します"
#define POP3_EN_LINE_TOO_LONG	"-ERR Line too long"
#define POP3_JA_LINE_TOO_LONG	"-ERR 行が長すぎます"
#define POP3_EN_SASL_TOO_LONG	"-ERR [AUTH] SASL response too long"
#define POP3_JA_SASL_TOO_LONG	"-ERR [AUTH] SASLの応答が長すぎます"

/* Command table. */
#define POP3_EN_EMPTY_CMD	"-ERR Empty command"
#define POP3_JA_EMPTY_CMD	"-ERR コマンドが空です"
#define POP3_EN_BAD_BYTES	"-ERR Invalid characters in command"
#define POP3_JA_BAD_BYTES	"-ERR コマンドに不正な文字が含まれています"
#define POP3_EN_UNKNOWN_CMD	"-ERR Unknown command"
#define POP3_JA_UNKNOWN_CMD	"-ERR 不明なコマンドです"
#define POP3_EN_WRONG_STATE	"-ERR %s not allowed in this state"
#define POP3_JA_WRONG_STATE	"-ERR %s はこの状態では使用できません"
#define POP3_EN_MISSING_ARG	"-ERR Missing argument"
#define POP3_JA_MISSING_ARG	"-ERR 引数がありません"
#define POP3_EN_WRONG_ARGS	"-ERR Wrong number of arguments"
#define POP3_JA_WRONG_ARGS	"-ERR 引数の数が正しくありません"
#define POP3_EN_CAPA		"+OK Capability list follows"
#define POP3_JA_CAPA		"+OK 機能の一覧です"
#define POP3_EN_BYE		"+OK posuto signing off"
#define POP3_JA_BYE		"+OK posutoを終了します"
#define POP3_EN_AUTH_CANCELLED	"-ERR AUTH cancelled"
#define POP3_JA_AUTH_CANCELLED	"-ERR AUTHを取り消しました"
#define POP3_EN_SASL_BAD_B64	"-ERR Invalid base64 in SASL response"
#define POP3_JA_SASL_BAD_B64	"-ERR SASLの応答のbase64が不正です"

/* AUTHORIZATION state. */
#define POP3_EN_PLAINTEXT_REFUSED \
	"-ERR [AUTH] Plaintext authentication disallowed on non-secure " \
	"connections (use STLS or port 995)"
#define POP3_JA_PLAINTEXT_REFUSED \
	"-ERR [AUTH] 暗号化されていない接続では平文の認証を使用できません" \
	"（STLSかポート995を使用してください）"
#define POP3_EN_SEND_PASS	"+OK Send your password"
#define POP3_JA_SEND_PASS	"+OK パスワードを送ってください"
#define POP3_EN_USER_FIRST	"-ERR USER first"
#define POP3_JA_USER_FIRST	"-ERR 先にUSERを送ってください"
#define POP3_EN_AUTH_FAILED	"-ERR [AUTH] Authentication failed"
#define POP3_JA_AUTH_FAILED	"-ERR [AUTH] 認証に失敗しました"
#define POP3_EN_AUTH_FAILED_CLOSE \
	"-ERR [AUTH] Authentication failed, closing connection"
#define POP3_JA_AUTH_FAILED_CLOSE \
	"-ERR [AUTH] 認証に失敗しました。切断します"
#define POP3_EN_APOP_UNAVAILABLE	"-ERR APOP not available"
#define POP3_JA_APOP_UNAVAILABLE	"-ERR APOPは使用できません"
#define POP3_EN_MECH_LIST	"+OK Supported mechanisms follow"
#define POP3_JA_MECH_LIST	"+OK 使用できる認証方式の一覧です"
#define POP3_EN_MECH_UNSUPPORTED	"-ERR Unsupported authentication mechanism"
#define POP3_JA_MECH_UNSUPPORTED	"-ERR その認証方式には対応していません"
#define POP3_EN_SCRAM_PLUS_NEEDS_TLS	"-ERR SCRAM-SHA-256-PLUS needs TLS"
#define POP3_JA_SCRAM_PLUS_NEEDS_TLS	"-ERR SCRAM-SHA-256-PLUSにはTLSが必要です"
#define POP3_EN_IR_BAD_B64	"-ERR Invalid base64 in initial response"
#define POP3_JA_IR_BAD_B64	"-ERR 初期応答のbase64が不正です"
#define POP3_EN_TLS_ALREADY	"-ERR Already using TLS"
#define POP3_JA_TLS_ALREADY	"-ERR すでにTLSを使用しています"
#define POP3_EN_STLS_UNAVAILABLE	"-ERR STLS not available"
#define POP3_JA_STLS_UNAVAILABLE	"-ERR STLSは使用できません"
#define POP3_EN_STLS_BEGIN	"+OK Begin TLS negotiation"
#define POP3_JA_STLS_BEGIN	"+OK TLSのネゴシエーションを開始します"

/* TRANSACTION state.  STAT, LIST n and UIDL n have no words to translate
 * (RFC 1939 fixes their form). */
#define POP3_EN_MSG_BAD_NUMBER	"-ERR Invalid message number"
#define POP3_JA_MSG_BAD_NUMBER	"-ERR メッセージ番号が不正です"
#define POP3_EN_MSG_NO_SUCH	"-ERR No such message"
#define POP3_JA_MSG_NO_SUCH	"-ERR そのメッセージはありません"
#define POP3_EN_MSG_ALREADY_DELETED	"-ERR Message %" PRIu32 " already deleted"
#define POP3_JA_MSG_ALREADY_DELETED	"-ERR メッセージ%" PRIu32 "は削除済みです"
#define POP3_EN_STAT		"+OK %" PRIu32 " %" PRIu64
#define POP3_JA_STAT		"+OK %" PRIu32 " %" PRIu64
#define POP3_EN_LIST_SUMMARY	"+OK %" PRIu32 " messages (%" PRIu64 " octets)"
#define POP3_JA_LIST_SUMMARY \
	"+OK メッセージ%" PRIu32 "通（%" PRIu64 "オクテット）"
#define POP3_EN_LIST_SUMMARY_1	"+OK %" PRIu32 " message (%" PRIu64 " octets)"
#define POP3_JA_LIST_SUMMARY_1 \
	"+OK メッセージ%" PRIu32 "通（%" PRIu64 "オクテット）"
#define POP3_EN_LIST_ONE	"+OK %" PRIu32 " %" PRIu64
#define POP3_JA_LIST_ONE	"+OK %" PRIu32 " %" PRIu64
#define POP3_EN_UIDL_LIST	"+OK Unique-ID listing follows"
#define POP3_JA_UIDL_LIST	"+OK 固有IDの一覧です"
#define POP3_EN_UIDL_ONE	"+OK %" PRIu32 " %s"
#define POP3_JA_UIDL_ONE	"+OK %" PRIu32 " %s"
#define POP3_EN_MSG_GONE	"-ERR Message %" PRIu32 " is no longer available"
#define POP3_JA_MSG_GONE	"-ERR メッセージ%" PRIu32 "はもうありません"
#define POP3_EN_MSG_GONE_CLOSE \
	"-ERR Message %" PRIu32 " is no longer available, closing connection"
#define POP3_JA_MSG_GONE_CLOSE \
	"-ERR メッセージ%" PRIu32 "はもうありません。切断します"
#define POP3_EN_RETR		"+OK %" PRIu64 " octets"
#define POP3_JA_RETR		"+OK %" PRIu64 "オクテット"
#define POP3_EN_TOP		"+OK Top of message follows"
#define POP3_JA_TOP		"+OK メッセージの先頭です"
#define POP3_EN_BAD_LINE_COUNT	"-ERR Invalid line count"
#define POP3_JA_BAD_LINE_COUNT	"-ERR 行数が不正です"
#define POP3_EN_DELE		"+OK Message %" PRIu32 " deleted"
#define POP3_JA_DELE		"+OK メッセージ%" PRIu32 "を削除しました"
#define POP3_EN_NOOP		"+OK"
#define POP3_JA_NOOP		"+OK"
#define POP3_EN_RSET		"+OK %" PRIu32 " messages"
#define POP3_JA_RSET		"+OK メッセージ%" PRIu32 "通"
#define POP3_EN_RSET_1		"+OK %" PRIu32 " message"
#define POP3_JA_RSET_1		"+OK メッセージ%" PRIu32 "通"

/* Login and UPDATE (pop3_job.c). */
#define POP3_EN_LOGIN_OK \
	"+OK maildrop has %" PRIu32 " messages (%" PRIu64 " octets)"
#define POP3_JA_LOGIN_OK \
	"+OK メッセージが%" PRIu32 "通あります（%" PRIu64 "オクテット）"
#define POP3_EN_LOGIN_OK_1 \
	"+OK maildrop has %" PRIu32 " message (%" PRIu64 " octets)"
#define POP3_JA_LOGIN_OK_1 \
	"+OK メッセージが%" PRIu32 "通あります（%" PRIu64 "オクテット）"
#define POP3_EN_SASL_MALFORMED	"-ERR Malformed SASL message"
#define POP3_JA_SASL_MALFORMED	"-ERR SASLのメッセージの形式が不正です"
#define POP3_EN_AUTH_TEMPFAIL \
	"-ERR [SYS/TEMP] Authentication backend unavailable"
#define POP3_JA_AUTH_TEMPFAIL \
	"-ERR [SYS/TEMP] 認証の仕組みが一時的に使用できません"
#define POP3_EN_IN_USE \
	"-ERR [IN-USE] Mailbox is locked by another POP3 session"
#define POP3_JA_IN_USE \
	"-ERR [IN-USE] メールボックスは別のPOP3セッションが使用中です"
#define POP3_EN_MAILBOX_TEMP	"-ERR [SYS/TEMP] Cannot open mailbox"
#define POP3_JA_MAILBOX_TEMP	"-ERR [SYS/TEMP] メールボックスを開けません"
#define POP3_EN_MAILBOX_PERM	"-ERR [SYS/PERM] Cannot open mailbox"
#define POP3_JA_MAILBOX_PERM	"-ERR [SYS/PERM] メールボックスを開けません"
#define POP3_EN_QUIT_DELETED \
	"+OK posuto signing off (%" PRIu32 " messages deleted)"
#define POP3_JA_QUIT_DELETED \
	"+OK posutoを終了します（%" PRIu32 "通のメッセージを削除しました）"
#define POP3_EN_QUIT_DELETED_1 \
	"+OK posuto signing off (%" PRIu32 " message deleted)"
#define POP3_JA_QUIT_DELETED_1 \
	"+OK posutoを終了します（%" PRIu32 "通のメッセージを削除しました）"
#define POP3_EN_COMMIT_FAILED \
	"-ERR [SYS/TEMP] Some deleted messages not removed"
#define POP3_JA_COMMIT_FAILED \
	"-ERR [SYS/TEMP] 削除できなかったメッセージがあります"

/* From the other parts of issue 9: unreadable message files, LoginDelay,
 * LineTimeOut, MaxConnectRatePerIp. */
#define POP3_EN_MSG_UNREADABLE_TEMP \
	"-ERR [SYS/TEMP] Message %" PRIu32 " cannot be read"
#define POP3_JA_MSG_UNREADABLE_TEMP \
	"-ERR [SYS/TEMP] メッセージ%" PRIu32 "を読み出せません"
#define POP3_EN_MSG_UNREADABLE_PERM \
	"-ERR [SYS/PERM] Message %" PRIu32 " cannot be read"
#define POP3_JA_MSG_UNREADABLE_PERM \
	"-ERR [SYS/PERM] メッセージ%" PRIu32 "を読み出せません"
#define POP3_EN_MSG_UNREADABLE_CLOSE \
	"-ERR Message %" PRIu32 " cannot be read, closing connection"
#define POP3_JA_MSG_UNREADABLE_CLOSE \
	"-ERR メッセージ%" PRIu32 "を読み出せません。切断します"
#define POP3_EN_LOGIN_DELAY \
	"-ERR [LOGIN-DELAY] Too soon after the last login"
#define POP3_JA_LOGIN_DELAY \
	"-ERR [LOGIN-DELAY] 前回のログインから時間が経っていません"
/* Fault injection (Pop3Server.Faults[]): say that it is one. */
#define POP3_EN_FAULT_TEMP \
	"-ERR [SYS/TEMP] Temporary failure (injected fault)"
#define POP3_JA_FAULT_TEMP \
	"-ERR [SYS/TEMP] 一時的な障害です（設定された障害）"
#define POP3_EN_FAULT_LOGIN_DELAY \
	"-ERR [LOGIN-DELAY] Wait %u seconds between logins (injected fault)"
#define POP3_JA_FAULT_LOGIN_DELAY \
	"-ERR [LOGIN-DELAY] ログインの間隔を%u秒空けてください（設定された障害）"
#define POP3_EN_LINE_TIMEOUT \
	"-ERR Autologout: command line not completed in time"
#define POP3_JA_LINE_TIMEOUT \
	"-ERR コマンド行が時間内に届かなかったため自動ログアウトします"
#define POP3_EN_CONN_RATE \
	"-ERR [SYS/TEMP] Too many connections from your address, try later"
#define POP3_JA_CONN_RATE \
	"-ERR [SYS/TEMP] お使いのアドレスからの接続が多すぎます。" \
	"しばらくしてから接続してください"

/* RFC 6856: UTF8 and LANG.  LANG's answer names the new language first,
 * in that language (RFC 6856 §3's examples). */
#define POP3_EN_UTF8_OK		"+OK UTF8 mode enabled"
#define POP3_JA_UTF8_OK		"+OK UTF-8モードを有効にしました"
#define POP3_EN_STLS_AFTER_UTF8	"-ERR STLS not allowed after UTF8"
#define POP3_JA_STLS_AFTER_UTF8	"-ERR UTF8の後にSTLSは使用できません"
#define POP3_EN_USER_BAD_UTF8	"-ERR User name is not valid UTF-8"
#define POP3_JA_USER_BAD_UTF8	"-ERR ユーザー名が正しいUTF-8ではありません"
#define POP3_EN_PASS_BAD_UTF8	"-ERR [AUTH] Password is not valid UTF-8"
#define POP3_JA_PASS_BAD_UTF8	"-ERR [AUTH] パスワードが正しいUTF-8ではありません"
#define POP3_EN_LANG_LIST	"+OK Language listing follows"
#define POP3_JA_LANG_LIST	"+OK 使用できる言語の一覧です"
#define POP3_EN_LANG_CHANGED	"+OK en Language changed to English"
#define POP3_JA_LANG_CHANGED	"+OK ja 言語を日本語に変更しました"
#define POP3_EN_LANG_UNKNOWN	"-ERR Unsupported language"
#define POP3_JA_LANG_UNKNOWN	"-ERR その言語には対応していません"
#define POP3_EN_LANG_INVALID	"-ERR Invalid language range"
#define POP3_JA_LANG_INVALID	"-ERR 言語の指定が正しくありません"

enum pop3_msg_id {
#define POP3_MSG_ENUM(id) POP3_MSG_##id,
	POP3_MSG_IDS(POP3_MSG_ENUM)
#undef POP3_MSG_ENUM
	POP3_MSG_COUNT
};

/* The format of id in lang (id and lang in range). */
const char *pop3_msg_fmt(enum pop3_lang lang, enum pop3_msg_id id);
/* The id's name ("UNKNOWN_CMD"), for tests and logs. */
const char *pop3_msg_name(enum pop3_msg_id id);

/*
 * Formats id in lang into buf, NUL-terminated, without CRLF, and returns
 * its length: at most POP3_MAX_RESPONSE - 2 octets (RFC 2449 §4, with
 * the CRLF) and size - 1, cut at a character boundary.
 */
size_t pop3_msg_vformat(char *buf, size_t size, enum pop3_lang lang,
    enum pop3_msg_id id, va_list ap);

/* Never called: gives the compiler a format to check arguments against. */
static inline int pop3_msg_check(const char *fmt, ...)
    __attribute__((format(printf, 1, 2)));
static inline int
pop3_msg_check(const char *fmt, ...)
{
	(void)fmt;
	return 0;
}
#define POP3_MSG_CHECK(ID, ...) \
	(pop3_msg_check(POP3_EN_##ID, ##__VA_ARGS__) + \
	 pop3_msg_check(POP3_JA_##ID, ##__VA_ARGS__))

/* RFC 6856 §3 language tag ("en") and name, in the language itself. */
const char *pop3_lang_tag(enum pop3_lang lang);
const char *pop3_lang_name(enum pop3_lang lang);

enum pop3_lang_match {
	POP3_LANG_MATCH = 0,
	POP3_LANG_NO_MATCH,	/* well-formed, but none of ours */
	POP3_LANG_BAD_RANGE,	/* not an RFC 4647 basic language range */
};
/*
 * The language for a LANG argument: "*" is the default; otherwise a basic
 * language range (RFC 4647 §2.1), matched case-insensitively by lookup
 * (§3.4: "ja-JP" falls back to "ja").
 */
enum pop3_lang_match pop3_lang_lookup(const char *range, size_t len,
    enum pop3_lang *lang_r);

/* Length of the longest prefix of s[0..len) that is no longer than max
 * and does not end inside a UTF-8 sequence. */
size_t pop3_utf8_cut(const char *s, size_t len, size_t max);
/* True if s[0..len) is well-formed UTF-8 (RFC 3629: no overlongs,
 * surrogates or code points above U+10FFFF). */
bool pop3_utf8_valid(const char *s, size_t len);

#endif
