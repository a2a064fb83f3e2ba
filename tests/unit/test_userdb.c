/* test_userdb.c - passwd-file parsing, path expansion, name allowlist. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cmocka.h>

#include "auth/passwd.h"
#include "auth/userdb.h"
#include "auth/userdb_int.h"
#include "lib/params.h"

#define SHA256_PASSWORD \
	"{SHA256.HEX}5e884898da28047151d0e56f8dc6292773603d0d6aabbdd62a11ef721d1542d8"
#define SHA512_TEST \
	"{SHA512.HEX}ee26b0dd4af7e749aa1a8ee3c10ae9923f618980772e473f8819a5d4940e0db27ac185f8a0e1d5f84f88bc887fd67b143732c304cc5fa9ad8e6f57f50028a8ff"
#define CRYPT_HORSE \
	"$6$P./I9mZNdSfR8Rnm$7.wuqhcztIDQLlb5h2kQm5NxW5YFS8fF.rbJDV5Rt5ew9R1gUKfBF5N.fjNI6olXFq/cu4UtM/0GLD7.QqY350"

static char tmpdir[64];

static int
setup(void **state)
{
	(void)state;
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/test_userdb.XXXXXX");
	return mkdtemp(tmpdir) == NULL ? -1 : 0;
}

static int
teardown(void **state)
{
	char cmd[128];
	(void)state;
	/* only our own mkdtemp directory */
	snprintf(cmd, sizeof(cmd), "%s/users", tmpdir);
	unlink(cmd);
	rmdir(tmpdir);
	return 0;
}

static char *
write_file(const char *content)
{
	static char path[128];
	FILE *fp;

	snprintf(path, sizeof(path), "%s/users", tmpdir);
	fp = fopen(path, "w");
	assert_non_null(fp);
	fputs(content, fp);
	fclose(fp);
	chmod(path, 0600);
	return path;
}

/* Loads cfg; returns the db or NULL, errors in *errs_r (caller frees). */
static struct userdb *
load(const struct posuto_config *cfg, char **errs_r)
{
	size_t len;
	FILE *errs = open_memstream(errs_r, &len);
	struct userdb *db;

	assert_non_null(errs);
	db = userdb_load(cfg, errs);
	fclose(errs);
	return db;
}

static const struct userdb_entry *
lookup(const struct userdb *db, const char *name)
{
	const struct userdb_entry *e = (const void *)1;
	enum userdb_result r = userdb_lookup(db, name, &e);

	assert_true(r == USERDB_OK || r == USERDB_NOT_FOUND);
	assert_true((r == USERDB_OK) == (e != NULL));
	return e;
}

static bool
count_one(const struct userdb_entry *e, void *arg)
{
	(void)e;
	++*(size_t *)arg;
	return true;
}

static size_t
count(const struct userdb *db)
{
	size_t n = 0;

	assert_true(userdb_iterate(db, count_one, &n));
	return n;
}

static void
test_config_users(void **state)
{
	struct user_cfg users[] = {
		{ .name = "user1@example.com", .password = SHA256_PASSWORD },
		{ .name = "user2@example.com", .password = SHA512_TEST,
		  .apop_secret = "tanstaaf", .format = "maildir" },
		{ .name = "user3", .password = SHA512_TEST,
		  .mailbox = "/srv/%d/%n/Maildir" },
	};
	struct posuto_config cfg = {
		.path = "posuto.json", .mail_dir = "/var/mail/jdx",
		.format = "emldir", .users = users, .n_users = 3,
	};
	const struct userdb_entry *e;
	struct userdb *db, *db2;
	char *errs = NULL;
	(void)state;

	db = load(&cfg, &errs);
	assert_non_null(db);
	assert_string_equal(errs, "");
	free(errs);
	assert_int_equal(count(db), 3);
	assert_true(userdb_has_apop(db));
	e = lookup(db, "user1@example.com");
	assert_non_null(e);
	assert_string_equal(e->mailbox_path, "/var/mail/jdx/user1@example.com");
	assert_string_equal(e->format, "emldir");
	assert_null(e->apop_secret);
	assert_int_equal(passwd_verify(e->password, "password", 8), PASSWD_OK);
	e = lookup(db, "user2@example.com");
	assert_non_null(e);
	assert_string_equal(e->apop_secret, "tanstaaf");
	assert_string_equal(e->format, "maildir");
	e = lookup(db, "user3");
	assert_string_equal(e->mailbox_path, "/srv//user3/Maildir");
	/* exact, case-sensitive */
	assert_null(lookup(db, "USER1@example.com"));
	assert_null(lookup(db, "user1@example.co"));
	assert_null(lookup(db, ""));
	/* cost classes: the bigger one (two SHA512 users) first */
	assert_int_equal(userdb_cost_classes(db), 2);
	assert_string_equal(userdb_cost_class_secret(db, 0), SHA512_TEST);
	assert_string_equal(userdb_cost_class_secret(db, 1), SHA256_PASSWORD);
	assert_null(userdb_cost_class_secret(db, 2));
	assert_int_equal(lookup(db, "user3")->cost_class, 0);
	assert_int_equal(lookup(db, "user1@example.com")->cost_class, 1);
	assert_false(userdb_all_scram(db));
	assert_null(userdb_scram_example(db));

	db2 = db;
	userdb_ref(db2);
	userdb_unref(&db);
	assert_null(db);
	assert_non_null(lookup(db2, "user3"));
	userdb_unref(&db2);
	assert_null(db2);
	userdb_unref(&db2);	/* NULL is fine */
}

static void
test_passwd_file(void **state)
{
	struct user_cfg users[] = {
		{ .name = "cfguser", .password = "{PLAIN}secret" },
	};
	struct posuto_config cfg = {
		.path = "posuto.json",
		.mailbox_template = "/var/mail/%u/Maildir",
		.users = users, .n_users = 1,
	};
	const struct userdb_entry *e;
	struct userdb *db;
	char *errs = NULL;
	(void)state;

	cfg.passwd_file = write_file(
	    "# /etc/dovecot/users (seed 001)\n"
	    "\n"
	    "   # indented comment\n"
	    "taro:{SHA512-CRYPT}" CRYPT_HORSE "::::::\n"
	    "hanako:{SHA256.HEX}5e884898da28047151d0e56f8dc6292773603d0d6aabbdd62a11ef721d1542d8\r\n"
	    "bare:" CRYPT_HORSE "\n"
	    "homey:{PLAIN}pw:1000:1000:Homey Person:/home/homey:/bin/sh:"
	    "userdb_mail=maildir:~/Mail:LAYOUT=fs quota_rule=*:storage=1G\n"
	    "home2:{PLAIN}pw:1000:1000::/home/home2::\n"
	    "\xe5\xa4\xaa\xe9\x83\x8e@example.jp:{PLAIN}pw\n"
	    "last:{PLAIN}pw");	/* no final newline */
	db = load(&cfg, &errs);
	assert_string_equal(errs, "");
	free(errs);
	assert_non_null(db);
	assert_int_equal(count(db), 8);
	assert_false(userdb_has_apop(db));

	e = lookup(db, "taro");
	assert_non_null(e);
	assert_int_equal(passwd_verify(e->password, "correct horse", 13),
	    PASSWD_OK);
	assert_string_equal(e->mailbox_path, "/var/mail/taro/Maildir");
	assert_null(e->home);
	e = lookup(db, "hanako");
	assert_non_null(e);	/* CRLF stripped */
	assert_int_equal(passwd_verify(e->password, "password", 8), PASSWD_OK);
	e = lookup(db, "bare");	/* no {SCHEME}: {CRYPT} */
	assert_non_null(e);
	assert_string_equal(e->password, "{CRYPT}" CRYPT_HORSE);
	assert_int_equal(passwd_verify(e->password, "correct horse", 13),
	    PASSWD_OK);
	e = lookup(db, "homey");
	assert_non_null(e);
	assert_string_equal(e->home, "/home/homey");
	assert_string_equal(e->mailbox_path, "/home/homey/Mail");
	assert_string_equal(e->format, "maildir");
	e = lookup(db, "home2");
	assert_string_equal(e->mailbox_path, "/var/mail/home2/Maildir");
	assert_non_null(lookup(db, "\xe5\xa4\xaa\xe9\x83\x8e@example.jp"));
	assert_non_null(lookup(db, "last"));
	assert_non_null(lookup(db, "cfguser"));
	/* 5 PLAIN, 2 $6$ crypt ({SHA512-CRYPT} and {CRYPT} alike), 1 SHA256 */
	assert_int_equal(userdb_cost_classes(db), 3);
	assert_true(strncmp(userdb_cost_class_secret(db, 0), "{PLAIN}", 7) == 0);
	assert_int_equal(lookup(db, "taro")->cost_class,
	    lookup(db, "bare")->cost_class);
	assert_int_equal(lookup(db, "hanako")->cost_class, 2);
	userdb_unref(&db);

	/* Without any template, a home gives %h/Maildir. */
	cfg.mailbox_template = NULL;
	cfg.n_users = 0;
	cfg.passwd_file = write_file("h:{PLAIN}pw:1:1::/home/h::\n");
	db = load(&cfg, &errs);
	assert_non_null(db);
	free(errs);
	assert_string_equal(lookup(db, "h")->mailbox_path,
	    "/home/h/Maildir");
	userdb_unref(&db);
}

struct bad_case {
	const char *content;
	const char *expect;	/* substring of the error output */
};

static void
test_passwd_file_errors(void **state)
{
	static const struct bad_case cases[] = {
		{ "ok:{PLAIN}a\nnopass\n", ":2: expected user:{SCHEME}password" },
		{ "ok:{PLAIN}a\n\nnopass:\n", ":3: expected" },
		{ "x:{NOSUCH}abc\n", ":1: user x: password: unknown password scheme" },
		{ "x:{SHA256.HEX}abc\n", ":1: user x: password: digest" },
		{ "../etc:{PLAIN}a\n", ":1: invalid user name" },
		{ ".x:{PLAIN}a\n", ":1: invalid user name" },
		{ "a b:{PLAIN}a\n", ":1: invalid user name" },
		{ ":{PLAIN}a\n", ":1: invalid user name" },
		{ "\xc0\xaf:{PLAIN}a\n", ":1: invalid user name" },
		{ "a:{PLAIN}x\nb:{PLAIN}y\na:{PLAIN}z\n", ":3: user a already defined at " },
		{ "a:{PLAIN}x:1:1::relative/home::\n", ":1: user a: home relative/home is not absolute" },
		{ "a:{PLAIN}x:1:1::::mail=mbox:~/mail\n", ":1: user a: mail= format" },
		{ "a:{PLAIN}x:1:1::::mail=maildir:~/Maildir\n", ":1: user a: mail= uses ~ but the user has no home" },
		{ "cfguser:{PLAIN}x\n", "already defined" },
	};
	struct user_cfg users[] = {
		{ .name = "cfguser", .password = "{PLAIN}secret" },
	};
	struct posuto_config cfg = {
		.path = "posuto.json", .mail_dir = "/var/mail",
		.users = users, .n_users = 1,
	};
	(void)state;

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *errs = NULL;
		struct userdb *db;

		cfg.passwd_file = write_file(cases[i].content);
		db = load(&cfg, &errs);
		print_message("case %zu: %s", i, errs);
		assert_null(db);
		assert_non_null(strstr(errs, cfg.passwd_file));
		assert_non_null(strstr(errs, cases[i].expect));
		free(errs);
	}

	/* a missing file names itself */
	{
		char *errs = NULL;
		cfg.passwd_file = "/nonexistent/posuto-users";
		assert_null(load(&cfg, &errs));
		assert_non_null(strstr(errs, "/nonexistent/posuto-users: "));
		free(errs);
	}
}

static void
test_config_errors(void **state)
{
	struct user_cfg users[] = {
		{ .name = "ok", .password = "{PLAIN}x" },
		{ .name = "bad/name", .password = "{PLAIN}x" },
		{ .name = "badpw", .password = "{SHA256}zz" },
		{ .name = "badtmpl", .password = "{PLAIN}x", .mailbox = "/m/%x" },
		{ .name = "reltmpl", .password = "{PLAIN}x", .mailbox = "m/%u" },
	};
	struct posuto_config cfg = {
		.path = "posuto.json", .users = users, .n_users = 5,
		.mail_dir = "/var/mail",
	};
	char *errs = NULL;
	(void)state;

	assert_null(load(&cfg, &errs));
	print_message("%s", errs);
	/* No positions in a hand-built config: the file and the key. */
	assert_non_null(strstr(errs, "posuto.json: Pop3Server.Users[1].UserName: user name must not contain '/'\n"));
	assert_non_null(strstr(errs, "posuto.json: Pop3Server.Users[2].Password: "));
	assert_non_null(strstr(errs, "posuto.json: Pop3Server.Users[3]: user badtmpl: mailbox template: unknown %-sequence"));
	assert_non_null(strstr(errs, "Users[4]: user reltmpl: mailbox path m/reltmpl is not absolute"));
	assert_null(strstr(errs, "Users[0]"));
	free(errs);

	/* no location at all */
	cfg.n_users = 1;
	cfg.mail_dir = NULL;
	assert_null(load(&cfg, &errs));
	assert_non_null(strstr(errs, "no mailbox location"));
	free(errs);
}

/* Issue 10 item 2: drivers by name, asked in order, entries with ids and
 * a location. */
static bool
collect_names(const struct userdb_entry *e, void *arg)
{
	char *buf = arg;
	size_t len = strlen(buf);

	snprintf(buf + len, 128 - len, "%s,", e->name);
	return strcmp(e->name, "stop") != 0;
}

static void
test_drivers(void **state)
{
	struct user_cfg users[] = {
		{ .name = "zed", .password = "{PLAIN}x",
		  .format = "emldir" },
		{ .name = "amy", .password = "{PLAIN}x" },
	};
	struct posuto_config cfg = {
		.path = "posuto.json", .mail_dir = "/var/mail",
		.users = users, .n_users = 2,
	};
	const struct userdb_entry *e;
	struct userdb *db;
	char *errs = NULL, names[128] = "";
	(void)state;

	assert_string_equal(userdb_driver_find("static")->name, "static");
	assert_string_equal(userdb_driver_find("passwd-file")->name,
	    "passwd-file");
	assert_string_equal(userdb_driver_find("sql")->name, "sql");
	assert_null(userdb_driver_find("ldap"));

	cfg.passwd_file = write_file(
	    "pf:{PLAIN}y:1001:1002::/home/pf::\n"
	    "named:{PLAIN}y:mail:mail::::\n"
	    "stop:{PLAIN}y\n"
	    "zz-after:{PLAIN}y\n");
	db = load(&cfg, &errs);
	assert_non_null(db);
	assert_string_equal(errs, "");
	free(errs);

	e = lookup(db, "pf");
	assert_int_equal(e->uid, 1001);
	assert_int_equal(e->gid, 1002);
	assert_string_equal(e->location, "auto:/var/mail/pf");
	assert_non_null(strstr(e->origin, ":1"));
	/* a system user name there is not an id posuto could use */
	e = lookup(db, "named");
	assert_int_equal(e->uid, USERDB_ID_NONE);
	assert_int_equal(e->gid, USERDB_ID_NONE);
	e = lookup(db, "zed");
	assert_int_equal(e->uid, USERDB_ID_NONE);
	assert_string_equal(e->location, "emldir:/var/mail/zed");
	assert_string_equal(e->mailbox_path, "/var/mail/zed");
	assert_string_equal(e->format, "emldir");

	/* static first, then passwd-file, each in name order; the
	 * callback stops it */
	assert_false(userdb_iterate(db, collect_names, names));
	assert_string_equal(names, "amy,zed,named,pf,stop,");
	userdb_unref(&db);
}

static void
expect_expand(const char *tmpl, const char *user, const char *home,
    const char *want)
{
	const char *why = NULL;
	char *got = userdb_expand_path_home(tmpl, user, home, &why);

	if (want == NULL) {
		assert_null(got);
		assert_non_null(why);
		return;
	}
	assert_non_null(got);
	assert_string_equal(got, want);
	free(got);
}

static void
test_expand(void **state)
{
	const char *why;
	char *p;
	(void)state;

	expect_expand("/var/mail/%u/Maildir", "a@b.c", NULL,
	    "/var/mail/a@b.c/Maildir");
	expect_expand("/m/%d/%n", "a@b.c", NULL, "/m/b.c/a");
	expect_expand("/m/%d/%n", "plain", NULL, "/m//plain");
	expect_expand("/m/%n/%d", "a@b@c", NULL, "/m/a/b@c");
	expect_expand("%h/Maildir", "u", "/home/u", "/home/u/Maildir");
	expect_expand("%h/Maildir", "u", NULL, NULL);
	expect_expand("/100%%/%u", "u", NULL, "/100%/u");
	expect_expand("/x/%", "u", NULL, NULL);
	expect_expand("/x/%q", "u", NULL, NULL);
	expect_expand("", "u", NULL, "");
	expect_expand("%u%u%u", "ab", NULL, "ababab");
	/* a %-sequence inside a value is not expanded again */
	expect_expand("/m/%u", "%d%h", NULL, "/m/%d%h");
	p = userdb_expand_path("/v/%u", "z", &why);
	assert_string_equal(p, "/v/z");
	free(p);
	assert_null(userdb_expand_path("%h", "z", &why));
}

static void
test_name_valid(void **state)
{
	static const char *const good[] = {
		"a", "user1@example.com", "first.last", "a-b_c+d", "x.",
		"\xe3\x83\xa6\xe3\x83\xbc\xe3\x82\xb6\xe3\x83\xbc",	/* ユーザー */
		"caf\xc3\xa9", "\xf0\x9f\x93\xa7mail", "a=b,c", "%u",
	};
	static const char *const bad[] = {
		"", ".", "..", "../etc/passwd", "a/../b", "a/b", "/etc",
		".hidden", "a..b", "a b", "a\tb", "a\nb", "a\rb", "a:b",
		"a\\b", "\x7f", "a\x01", "\xc0\xaf", "\xe0\x80\xaf",
		"\xed\xa0\x80", "\xf4\x90\x80\x80", "\xc2\x85", "\xff",
		"\xe3\x83", "caf\xc3",
	};
	char longname[USERNAME_MAX + 2];
	(void)state;

	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++)
		assert_true(userdb_name_valid(good[i], strlen(good[i])));
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		print_message("bad %zu\n", i);
		assert_false(userdb_name_valid(bad[i], strlen(bad[i])));
	}
	/* embedded NUL: the length says more than strlen */
	assert_false(userdb_name_valid("ab\0c", 4));
	assert_false(userdb_name_valid(NULL, 0));
	memset(longname, 'a', sizeof(longname));
	assert_true(userdb_name_valid(longname, USERNAME_MAX));
	assert_false(userdb_name_valid(longname, USERNAME_MAX + 1));
}

#define SCRAM_4096 "{SCRAM-SHA-256}4096,Nv7PRPLaKGYsBkFkvlSN4A==," \
	"rIILQcEcyrqRAxJtodpVOFz/ANNaWtAmPwzosYfBbUo=," \
	"QJj5rp5c3DXp9APC6ZBdxeu47jfPTigywR+jKX2+Emw="
#define SCRAM_10000 "{SCRAM-SHA-256}10000,Nv7PRPLaKGYsBkFkvlSN4A==," \
	"rIILQcEcyrqRAxJtodpVOFz/ANNaWtAmPwzosYfBbUo=," \
	"QJj5rp5c3DXp9APC6ZBdxeu47jfPTigywR+jKX2+Emw="
#define CRYPT_10000 "{SHA512-CRYPT}$6$rounds=10000$abcdefghijkl$QmNNzR6ydfQQ" \
	"96epFMS3YSWDPd2hAcZ6SloHgCQtcBG7igNHHWX0QZQsEa9WJfKIu9KRwrytHAM3dD." \
	"Z5sS2c."
#define BCRYPT_5 \
	"{BLF-CRYPT}$2b$05$CcDWy6ealLFV2Qwn89cOWu981wlgxza7UgBEyEA8PVzwND1IW2gKO"

/* Issue 9 item 5: classes follow the work parameters, not the salt. */
static void
test_cost_classes(void **state)
{
	char key[80];
	struct user_cfg users[] = {
		{ .name = "a", .password = SCRAM_4096 },
		{ .name = "b", .password = SCRAM_10000 },
		{ .name = "c", .password = SCRAM_10000 },
		{ .name = "d", .password = "{SHA512-CRYPT}" CRYPT_HORSE },
		{ .name = "e", .password = CRYPT_10000 },
		{ .name = "f", .password = BCRYPT_5 },
	};
	struct posuto_config cfg = {
		.path = "posuto.json", .mail_dir = "/var/mail",
		.users = users, .n_users = 3,
	};
	struct userdb *db;
	char *errs = NULL;
	(void)state;

	assert_true(passwd_cost_key(CRYPT_10000, key, sizeof(key)));
	assert_string_equal(key, "CRYPT $6$rounds=10000$");
	assert_true(passwd_cost_key("{SHA512-CRYPT}" CRYPT_HORSE, key,
	    sizeof(key)));
	assert_string_equal(key, "CRYPT $6$");
	assert_true(passwd_cost_key(BCRYPT_5, key, sizeof(key)));
	assert_string_equal(key, "CRYPT $2b$05$");
	assert_true(passwd_cost_key(SCRAM_10000, key, sizeof(key)));
	assert_string_equal(key, "SCRAM-SHA-256 10000");
	assert_true(passwd_cost_key("{ARGON2ID}$argon2id$v=19$m=65536,t=3,"
	    "p=1$c29tZXNhbHQxMjM0NTY$OF0/3lNRTYp7SKXntw6ydrxEaKTTc9BbDMlNl6RAK"
	    "zY", key, sizeof(key)));
	assert_string_equal(key, "ARGON2ID $argon2id$v=19$m=65536,t=3,p=1$");
	assert_true(passwd_cost_key("{PLAIN}x", key, sizeof(key)));
	assert_string_equal(key, "PLAIN ");
	assert_false(passwd_cost_key("{NOSUCH}x", key, sizeof(key)));
	assert_false(passwd_cost_key(CRYPT_10000, key, 8));

	/* only SCRAM users: SCRAM may be offered; the example is the
	 * most common iteration count */
	db = load(&cfg, &errs);
	assert_non_null(db);
	free(errs);
	assert_true(userdb_all_scram(db));
	assert_string_equal(userdb_scram_example(db), SCRAM_10000);
	assert_int_equal(userdb_cost_classes(db), 2);
	assert_int_equal(lookup(db, "a")->cost_class, 1);
	userdb_unref(&db);

	cfg.n_users = 6;
	db = load(&cfg, &errs);
	assert_non_null(db);
	free(errs);
	assert_false(userdb_all_scram(db));
	assert_int_equal(userdb_cost_classes(db), 5);
	assert_int_equal(lookup(db, "b")->cost_class, 0);
	for (size_t i = 1; i < 5; i++)
		assert_non_null(userdb_cost_class_secret(db, i));
	userdb_unref(&db);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_config_users),
		cmocka_unit_test(test_drivers),
		cmocka_unit_test(test_cost_classes),
		cmocka_unit_test(test_passwd_file),
		cmocka_unit_test(test_passwd_file_errors),
		cmocka_unit_test(test_config_errors),
		cmocka_unit_test(test_expand),
		cmocka_unit_test(test_name_valid),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
