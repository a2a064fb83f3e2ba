/*
 * test_transcript.c - protocol transcripts (net/transcript.h): lines with
 * their marks, the cap (the middle goes, the start and the latest stay,
 * a marker says how much), the small cap before login, the finished ones
 * kept (the oldest beyond NET_TR_KEEP goes), and the file written whole.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "net/transcript.h"

static char *
text_of(struct net_transcripts *ts, uint64_t id, size_t *len_r)
{
	char *text = NULL;
	size_t len = 0;

	if (!net_transcripts_get(ts, id, &text, &len))
		return NULL;
	assert_int_equal(strlen(text), len);
	if (len_r != NULL)
		*len_r = len;
	return text;
}

static void
test_lines(void **state)
{
	struct net_transcripts *ts = net_transcripts_new();
	struct net_transcript *t = net_transcript_open(ts, 7, "pop3",
	    "127.0.0.1:1");
	char *text;

	(void)state;
	net_transcript_add(t, 'C', "USER alice", 10);
	net_transcript_add(t, 'S', "+OK\r\nX", 6);	/* controls: '?' */
	text = text_of(ts, 7, NULL);
	assert_non_null(text);
	assert_non_null(strstr(text, "session 7 "));
	assert_non_null(strstr(text, " C USER alice\n"));
	assert_non_null(strstr(text, " S +OK??X\n"));
	free(text);
	assert_null(text_of(ts, 8, NULL));
	net_transcript_close(ts, &t, false, NULL, NULL);
	assert_null(t);
	assert_null(text_of(ts, 7, NULL));	/* not kept */
	net_transcripts_free(&ts);
}

static void
test_cap_drops_the_middle(void **state)
{
	struct net_transcripts *ts = net_transcripts_new();
	struct net_transcript *t = net_transcript_open(ts, 1, "pop3", "x");
	char line[64], *text;
	size_t len;

	(void)state;
	/* Before login: the small cap. */
	for (int i = 0; i < 2000; i++) {
		int n = snprintf(line, sizeof(line), "NOOP %d", i);
		net_transcript_add(t, 'C', line, (size_t)n);
	}
	text = text_of(ts, 1, &len);
	assert_true(len < NET_TR_PRELOGIN_MAX + 512);
	assert_non_null(strstr(text, " C NOOP 0\n"));		/* start */
	assert_non_null(strstr(text, " C NOOP 1999\n"));	/* latest */
	assert_null(strstr(text, " C NOOP 1000\n"));		/* middle */
	assert_non_null(strstr(text, " lines, "));
	assert_non_null(strstr(text, " octets dropped ...]\n"));
	free(text);
	/* Logged in: the big cap, still bounded. */
	net_transcript_set_user(t, "alice");
	for (int i = 0; i < 40000; i++) {
		int n = snprintf(line, sizeof(line), "RETR %d", i);
		net_transcript_add(t, 'C', line, (size_t)n);
	}
	text = text_of(ts, 1, &len);
	assert_true(len < NET_TR_MAX + 1024);
	assert_true(len > NET_TR_MAX / 2);
	assert_non_null(strstr(text, "user alice"));
	assert_non_null(strstr(text, " C NOOP 0\n"));
	assert_non_null(strstr(text, " C RETR 39999\n"));
	free(text);
	net_transcript_close(ts, &t, true, &text, &len);
	assert_non_null(text);
	assert_non_null(strstr(text, " C RETR 39999\n"));
	free(text);
	net_transcripts_free(&ts);
}

static void
test_keeps_the_last_finished(void **state)
{
	struct net_transcripts *ts = net_transcripts_new();
	char *text;

	(void)state;
	for (uint64_t id = 1; id <= NET_TR_KEEP + 5; id++) {
		struct net_transcript *t = net_transcript_open(ts, id, "pop3",
		    "x");

		net_transcript_add(t, 'C', "QUIT", 4);
		net_transcript_close(ts, &t, true, NULL, NULL);
	}
	for (uint64_t id = 1; id <= NET_TR_KEEP + 5; id++) {
		text = text_of(ts, id, NULL);
		if (id <= 5)
			assert_null(text);
		else
			assert_non_null(text);
		free(text);
	}
	net_transcripts_free(&ts);
}

static void
test_write_file(void **state)
{
	char dir[] = "/tmp/test_transcript.XXXXXX", path[256], buf[64];
	struct stat st;
	FILE *f;
	size_t n;

	(void)state;
	assert_non_null(mkdtemp(dir));
	assert_int_equal(net_transcript_write_file(dir, "alice", "t.txt",
	    "hello\n", 6), 0);
	(void)snprintf(path, sizeof(path), "%s/alice", dir);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0700);
	(void)snprintf(path, sizeof(path), "%s/alice/t.txt", dir);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	f = fopen(path, "r");
	assert_non_null(f);
	n = fread(buf, 1, sizeof(buf), f);
	fclose(f);
	assert_int_equal(n, 6);
	assert_memory_equal(buf, "hello\n", 6);
	/* Names that would leave the directory are refused. */
	assert_int_not_equal(net_transcript_write_file(dir, "../x", "t.txt",
	    "x", 1), 0);
	assert_int_not_equal(net_transcript_write_file(dir, ".x", "t.txt",
	    "x", 1), 0);
	assert_int_not_equal(net_transcript_write_file(dir, "alice", "../t",
	    "x", 1), 0);
	(void)unlink(path);
	(void)snprintf(path, sizeof(path), "%s/alice", dir);
	(void)rmdir(path);
	(void)rmdir(dir);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_lines),
		cmocka_unit_test(test_cap_drops_the_middle),
		cmocka_unit_test(test_keeps_the_last_finished),
		cmocka_unit_test(test_write_file),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
