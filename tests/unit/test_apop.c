/* test_apop.c - APOP digest (RFC 1939 §7 example) and auth_apop/auth_plain. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "auth/auth.h"
#include "auth/userdb.h"

#define TS	"<1896.697170952@dbc.mtview.ca.us>"
#define DIGEST	"c4c9334bac560ecc979e58001b3e22fb"

static struct userdb *db;

static int
setup(void **state)
{
	static struct user_cfg users[] = {
		{ .name = "mrose", .password = "{PLAIN}unused",
		  .apop_secret = "tanstaaf" },
		{ .name = "hashonly", .password =
		  "{SHA256.HEX}5e884898da28047151d0e56f8dc6292773603d0d6aabbdd62a11ef721d1542d8" },
	};
	static struct posuto_config cfg = {
		.path = "test", .mail_dir = "/var/mail",
		.users = users, .n_users = 2,
	};
	(void)state;
	db = userdb_load(&cfg, stderr);
	return db == NULL ? -1 : 0;
}

static int
teardown(void **state)
{
	(void)state;
	userdb_unref(&db);
	return 0;
}

static void
test_rfc1939_example(void **state)
{
	char out[33];
	(void)state;

	apop_digest(TS, "tanstaaf", out);
	assert_string_equal(out, DIGEST);
	apop_digest(TS, "tanstaaF", out);
	assert_string_not_equal(out, DIGEST);
	apop_digest("", "", out);	/* MD5("") */
	assert_string_equal(out, "d41d8cd98f00b204e9800998ecf8427e");
}

static void
test_auth_apop(void **state)
{
	const struct userdb_entry *e = (const void *)1;
	const char *why;
	(void)state;

	assert_int_equal(auth_apop(db, "mrose", TS, DIGEST, &e, &why), AUTH_OK);
	assert_non_null(e);
	assert_string_equal(e->name, "mrose");
	/* clients may send upper-case hex */
	assert_int_equal(auth_apop(db, "mrose", TS,
	    "C4C9334BAC560ECC979E58001B3E22FB", &e, &why), AUTH_OK);
	/* wrong digest, other timestamp, truncated, extended, empty */
	assert_int_equal(auth_apop(db, "mrose", TS,
	    "c4c9334bac560ecc979e58001b3e22fc", &e, &why), AUTH_FAILED);
	assert_null(e);
	assert_int_equal(auth_apop(db, "mrose", "<1.2@x>", DIGEST, &e, &why),
	    AUTH_FAILED);
	assert_int_equal(auth_apop(db, "mrose", TS,
	    "c4c9334bac560ecc979e58001b3e22f", &e, &why), AUTH_FAILED);
	assert_int_equal(auth_apop(db, "mrose", TS, DIGEST "0", &e, &why),
	    AUTH_FAILED);
	assert_int_equal(auth_apop(db, "mrose", TS, "", &e, &why), AUTH_FAILED);
	/* unknown user, invalid name, user without an APOP secret: the same
	 * AUTH_FAILED as a wrong digest */
	assert_int_equal(auth_apop(db, "nobody", TS, DIGEST, &e, &why), AUTH_FAILED);
	assert_string_equal(why, "unknown-user");
	assert_int_equal(auth_apop(db, "../mrose", TS, DIGEST, &e, &why),
	    AUTH_FAILED);
	assert_int_equal(auth_apop(db, "hashonly", TS, DIGEST, &e, &why),
	    AUTH_FAILED);
	assert_string_equal(why, "no-apop-secret");
	assert_null(e);
	{
		/* even with the digest of the built-in dummy secret */
		char d[33];
		apop_digest(TS, "posuto-apop-no-secret-\x01", d);
		assert_int_equal(auth_apop(db, "hashonly", TS, d, &e, &why),
		    AUTH_FAILED);
		assert_int_equal(auth_apop(db, "nobody", TS, d, &e, &why),
		    AUTH_FAILED);
	}
}

static void
test_auth_plain(void **state)
{
	const struct userdb_entry *e = NULL;
	const char *why;
	(void)state;

	assert_int_equal(auth_plain(db, "hashonly", "password", 8, &e, &why),
	    AUTH_OK);
	assert_string_equal(e->name, "hashonly");
	assert_int_equal(auth_plain(db, "hashonly", "passwore", 8, &e, &why),
	    AUTH_FAILED);
	assert_string_equal(why, "wrong-password");
	assert_null(e);
	assert_int_equal(auth_plain(db, "nobody", "password", 8, &e, &why),
	    AUTH_FAILED);
	assert_string_equal(why, "unknown-user");
	assert_int_equal(auth_plain(db, "hash/only", "password", 8, &e, &why),
	    AUTH_FAILED);
	assert_string_equal(why, "invalid-user-name");
	assert_int_equal(auth_plain(db, "", "password", 8, &e, &why), AUTH_FAILED);
	assert_int_equal(auth_plain(db, NULL, "password", 8, &e, &why),
	    AUTH_FAILED);
	assert_int_equal(auth_plain(db, "mrose", "unused", 6, &e, &why), AUTH_OK);
	assert_int_equal(auth_plain(db, "mrose", "unused\0x", 8, &e, &why),
	    AUTH_FAILED);
	assert_null(e);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rfc1939_example),
		cmocka_unit_test(test_auth_apop),
		cmocka_unit_test(test_auth_plain),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
