/* test_passwd_edit.c - passwd-file and JSON config edits (`posuto user`):
 * untouched lines and keys stay as they were, bad values change nothing. */
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

#include "auth/userdb_passwd_edit.h"
#include "config/config_edit.h"

static char tmpdir[64], path[128];

static int
setup(void **state)
{
	(void)state;
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/test_pwedit.XXXXXX");
	if (mkdtemp(tmpdir) == NULL)
		return -1;
	snprintf(path, sizeof(path), "%s/f", tmpdir);
	return 0;
}

static int
teardown(void **state)
{
	(void)state;
	unlink(path);	/* only our own mkdtemp directory */
	rmdir(tmpdir);
	return 0;
}

static void
put(const char *content, mode_t mode)
{
	FILE *fp = fopen(path, "w");

	assert_non_null(fp);
	fputs(content, fp);
	fclose(fp);
	chmod(path, mode);
}

static char *
get(void)
{
	static char buf[4096];
	FILE *fp = fopen(path, "r");
	size_t n;

	assert_non_null(fp);
	n = fread(buf, 1, sizeof(buf) - 1, fp);
	buf[n] = '\0';
	fclose(fp);
	return buf;
}

static void
commit_pw(struct userdb_passwd_edit **ed)
{
	char err[256];
	const char *tmp;

	assert_true(userdb_passwd_edit_stage(*ed, &tmp, err, sizeof(err)));
	assert_non_null(tmp);
	assert_true(userdb_passwd_edit_commit(*ed, err, sizeof(err)));
	userdb_passwd_edit_free(ed);
}

static void
test_lines_kept(void **state)
{
	struct userdb_passwd_edit *ed;
	char err[256], *pw;
	struct stat st;
	long i;

	(void)state;
	put("# comment\r\n\r\na:{PLAIN}x:1:2::/home/a::mail=~/M login_delay=5\r\n"
	    "b:$6$abc\r\nc:{PLAIN}y", 0640);
	assert_true(userdb_passwd_edit_open(path, true, &ed, err, sizeof(err)));
	assert_int_equal(userdb_passwd_edit_find(ed, "a"), 2);
	assert_int_equal(userdb_passwd_edit_find(ed, "b"), 3);
	assert_int_equal(userdb_passwd_edit_find(ed, "comment"), -1);
	assert_int_equal(userdb_passwd_edit_find(ed, "zz"), -1);
	pw = userdb_passwd_edit_password(ed, 3);
	assert_string_equal(pw, "{CRYPT}$6$abc");
	free(pw);
	/* A separator in a value is refused and changes nothing. */
	assert_false(userdb_passwd_edit_set_password(ed, 2, "{PLAIN}a:b", err,
	    sizeof(err)));
	assert_false(userdb_passwd_edit_set_apop(ed, 2, "with space", err,
	    sizeof(err)));
	assert_true(userdb_passwd_edit_set_apop(ed, 2, "s1", err, sizeof(err)));
	assert_true(userdb_passwd_edit_set_apop(ed, 2, "s2", err, sizeof(err)));
	assert_true(userdb_passwd_edit_set_password(ed, 3, "{PLAIN}new", err,
	    sizeof(err)));
	assert_true(userdb_passwd_edit_set_apop(ed, 3, "b-apop", err,
	    sizeof(err)));
	i = userdb_passwd_edit_add(ed, "d", "{PLAIN}dd", err, sizeof(err));
	assert_int_equal(i, 5);
	commit_pw(&ed);
	assert_string_equal(get(), "# comment\r\n\r\n"
	    "a:{PLAIN}x:1:2::/home/a::mail=~/M login_delay=5 apop=s2\r\n"
	    "b:{PLAIN}new::::::apop=b-apop\r\nc:{PLAIN}y\r\nd:{PLAIN}dd\r\n");
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 07777, 0640);

	assert_true(userdb_passwd_edit_open(path, true, &ed, err, sizeof(err)));
	assert_true(userdb_passwd_edit_set_apop(ed, 2, NULL, err, sizeof(err)));
	userdb_passwd_edit_del(ed, userdb_passwd_edit_find(ed, "b"));
	commit_pw(&ed);
	assert_string_equal(get(), "# comment\r\n\r\n"
	    "a:{PLAIN}x:1:2::/home/a::mail=~/M login_delay=5\r\n"
	    "c:{PLAIN}y\r\nd:{PLAIN}dd\r\n");
}

static void
test_read_only(void **state)
{
	struct userdb_passwd_edit *ed;
	struct config_edit *ced;
	char err[256];

	(void)state;
	put("a:{PLAIN}x\n", 0400);
	assert_false(userdb_passwd_edit_open(path, true, &ed, err, sizeof(err)));
	assert_non_null(strstr(err, "read-only"));
	/* Without for_write it is only locked and read; staging refuses. */
	assert_true(userdb_passwd_edit_open(path, false, &ed, err, sizeof(err)));
	userdb_passwd_edit_free(&ed);
	put("{\"Pop3Server\": {}}\n", 0400);
	assert_false(config_edit_open(path, true, &ced, err, sizeof(err)));
	assert_null(ced);
	assert_string_equal(get(), "{\"Pop3Server\": {}}\n");
}

static void
test_json_order_indent_bom(void **state)
{
	struct config_edit *ed;
	char err[256];
	const char *tmp;
	long i;

	(void)state;
	put("\xEF\xBB\xBF{\n    \"Z\": 1,\n    \"Pop3Server\": {\n"
	    "        \"Port\": 110,\n        \"Users\": [\n"
	    "            {\"UserName\": \"a\", \"Password\": \"p\", "
	    "\"HashType\": \"PLAIN\"}\n        ],\n"
	    "        \"MailDir\": \"/m\"\n    },\n    \"A\": true\n}\n", 0600);
	assert_true(config_edit_open(path, true, &ed, err, sizeof(err)));
	assert_int_equal(config_edit_user_find(ed, "a"), 0);
	assert_int_equal(config_edit_user_find(ed, "b"), -1);
	assert_string_equal(config_edit_user_get(ed, 0, "HashType"), "PLAIN");
	assert_true(config_edit_user_set(ed, 0, "Password", "q"));
	assert_false(config_edit_user_set(ed, 0, "Password", "\xff"));
	i = config_edit_user_add(ed, "b");
	assert_int_equal(i, 1);
	assert_true(config_edit_user_set(ed, i, "Password", "{PLAIN}b"));
	assert_true(config_edit_stage(ed, &tmp, err, sizeof(err)));
	assert_true(config_edit_commit(ed, err, sizeof(err)));
	config_edit_free(&ed);
	assert_string_equal(get(), "\xEF\xBB\xBF{\n    \"Z\": 1,\n"
	    "    \"Pop3Server\": {\n        \"Port\": 110,\n"
	    "        \"Users\": [\n            {\n"
	    "                \"UserName\": \"a\",\n"
	    "                \"Password\": \"q\",\n"
	    "                \"HashType\": \"PLAIN\"\n            },\n"
	    "            {\n                \"UserName\": \"b\",\n"
	    "                \"Password\": \"{PLAIN}b\"\n            }\n"
	    "        ],\n        \"MailDir\": \"/m\"\n    },\n"
	    "    \"A\": true\n}\n");
	/* A staged edit that is not committed leaves the file alone. */
	assert_true(config_edit_open(path, true, &ed, err, sizeof(err)));
	config_edit_user_del(ed, 0);
	assert_true(config_edit_stage(ed, &tmp, err, sizeof(err)));
	assert_int_equal(access(tmp, F_OK), 0);
	config_edit_free(&ed);
	assert_non_null(strstr(get(), "\"UserName\": \"a\""));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_lines_kept, setup, teardown),
		cmocka_unit_test_setup_teardown(test_read_only, setup, teardown),
		cmocka_unit_test_setup_teardown(test_json_order_indent_bom,
		    setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
