/*
 * test_config.c - config_load(): JumboDogX files, defaults, and that every
 * kind of mistake is reported at the right FILE:LINE:COL with its key.
 */
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
#include "auth/sasl.h"
#include "auth/userdb.h"
#include "config/config.h"
#include "config/json_loc.h"
#include "lib/log.h"

#define SHA256_PASSWORD \
	"5e884898da28047151d0e56f8dc6292773603d0d6aabbdd62a11ef721d1542d8"
#define SHA512_TEST \
	"ee26b0dd4af7e749aa1a8ee3c10ae9923f618980772e473f8819a5d4940e0db2" \
	"7ac185f8a0e1d5f84f88bc887fd67b143732c304cc5fa9ad8e6f57f50028a8ff"

/* Seed 000's first sample, MailDir changed to a Unix path. */
static const char jdx_simple[] =
	"{\n"
	"  \"Pop3Server\": {\n"
	"    \"Enabled\": true,\n"
	"    \"BindAddress\": \"0.0.0.0\",\n"
	"    \"Port\": 110,\n"
	"    \"TimeOut\": 30,\n"
	"    \"MailDir\": \"/srv/jumbodogx/Mailboxes\",\n"
	"    \"Users\": [\n"
	"      {\n"
	"        \"UserName\": \"user1@example.com\",\n"
	"        \"Password\": \"" SHA256_PASSWORD "\",\n"
	"        \"HashType\": \"SHA256\"\n"
	"      }\n"
	"    ]\n"
	"  }\n"
	"}\n";

/* Seed 000's second sample (two users), MailDir changed likewise. */
static const char jdx_multi[] =
	"{\n"
	"  \"Pop3Server\": {\n"
	"    \"Enabled\": true,\n"
	"    \"BindAddress\": \"0.0.0.0\",\n"
	"    \"Port\": 110,\n"
	"    \"TimeOut\": 30,\n"
	"    \"MailDir\": \"/srv/jumbodogx/Mailboxes\",\n"
	"    \"Users\": [\n"
	"      {\n"
	"        \"UserName\": \"user1@example.com\",\n"
	"        \"Password\": \"" SHA256_PASSWORD "\",\n"
	"        \"HashType\": \"SHA256\"\n"
	"      },\n"
	"      {\n"
	"        \"UserName\": \"user2@example.com\",\n"
	"        \"Password\": \"" SHA512_TEST "\",\n"
	"        \"HashType\": \"SHA512\"\n"
	"      }\n"
	"    ]\n"
	"  }\n"
	"}\n";

static char tmpdir[64];
static char cfgpath[128];
static char *errtext;		/* what config_load wrote to errs */
static struct posuto_config *cfg;

static int
setup(void **state)
{
	(void)state;
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/posuto-test-config-XXXXXX");
	if (mkdtemp(tmpdir) == NULL)
		return -1;
	snprintf(cfgpath, sizeof(cfgpath), "%s/posuto.json", tmpdir);
	return 0;
}

static int
teardown(void **state)
{
	(void)state;
	config_free(&cfg);
	free(errtext);
	errtext = NULL;
	unlink(cfgpath);
	rmdir(tmpdir);
	return 0;
}

static void
write_file(const char *path, const char *text, size_t len)
{
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	assert_int_equal(fwrite(text, 1, len, f), len);
	assert_int_equal(fclose(f), 0);
}

/* Loads text as the config file; errors/warnings go to errtext. */
static int
load_len(const char *text, size_t len)
{
	size_t sz = 0;
	FILE *errs;
	int rc;

	config_free(&cfg);
	free(errtext);
	errtext = NULL;
	write_file(cfgpath, text, len);
	errs = open_memstream(&errtext, &sz);
	assert_non_null(errs);
	rc = config_load(cfgpath, &cfg, errs);
	assert_int_equal(fclose(errs), 0);
	if (rc == 0)
		assert_non_null(cfg);
	else
		assert_null(cfg);
	return rc;
}

static int
load(const char *text)
{
	return load_len(text, strlen(text));
}

/* Number of lines in errtext that are errors (not "warning: "). */
static int
count_errors(void)
{
	int n = 0;

	for (const char *l = errtext; l != NULL && *l != '\0';) {
		const char *nl = strchr(l, '\n');
		if (strncmp(l, "warning: ", 9) != 0)
			n++;
		l = nl != NULL ? nl + 1 : l + strlen(l);
	}
	return n;
}

/* Asserts that some line of errtext starts with the formatted text;
 * "@" in fmt stands for the config file's path. */
static void expect_line(const char *fmt, ...)
    __attribute__((format(printf, 1, 2)));

static void
expect_line(const char *fmt, ...)
{
	char want[1024], expanded[1200];
	size_t o = 0;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(want, sizeof(want), fmt, ap);
	va_end(ap);
	for (const char *p = want; *p != '\0' && o + 200 < sizeof(expanded);
	    p++) {
		if (*p == '@') {
			o += (size_t)snprintf(expanded + o, sizeof(expanded) - o,
			    "%s", cfgpath);
		} else {
			expanded[o++] = *p;
		}
	}
	expanded[o] = '\0';
	for (const char *l = errtext; l != NULL && *l != '\0';) {
		if (strncmp(l, expanded, strlen(expanded)) == 0)
			return;
		l = strchr(l, '\n');
		if (l != NULL)
			l++;
	}
	fail_msg("no line starting with\n  %s\nin:\n%s", expanded,
	    errtext != NULL ? errtext : "(nothing)");
}

/* A config with one line of our choosing at line 4, column 5. */
static int
load_line4(const char *line)
{
	char text[2048];

	snprintf(text, sizeof(text),
	    "{\n"
	    "  \"Pop3Server\": {\n"
	    "    \"MailDir\": \"/m\",\n"
	    "    %s\n"
	    "  }\n"
	    "}\n", line);
	return load(text);
}

/* ------------------------------------------------------------------ */

static void
test_jumbodogx_simple(void **state)
{
	(void)state;
	assert_int_equal(load(jdx_simple), 0);
	assert_int_equal(count_errors(), 0);
	assert_true(cfg->enabled);
	assert_int_equal(cfg->n_listens, 1);
	assert_string_equal(cfg->listens[0].address, "0.0.0.0");
	assert_int_equal(cfg->listens[0].port, 110);
	assert_int_equal(cfg->listens[0].tls, LISTEN_TLS_NONE);
	assert_int_equal(cfg->idle_timeout, 30);
	assert_string_equal(cfg->mail_dir, "/srv/jumbodogx/Mailboxes");
	assert_string_equal(cfg->mailbox_template,
	    "/srv/jumbodogx/Mailboxes/%u");
	assert_string_equal(cfg->format, "auto");
	assert_int_equal(cfg->n_users, 1);
	assert_string_equal(cfg->users[0].name, "user1@example.com");
	assert_string_equal(cfg->users[0].password,
	    "{SHA256.HEX}" SHA256_PASSWORD);
	assert_null(cfg->users[0].apop_secret);
	assert_null(cfg->users[0].mailbox);
	assert_null(cfg->users[0].format);
	assert_string_equal(cfg->path, cfgpath);
	/* 0.0.0.0 without TLS: the admin is told plaintext is loopback-only. */
	expect_line("warning: @:2:17: Pop3Server.AllowPlaintextAuth: ");
}

static void
test_jumbodogx_multi(void **state)
{
	(void)state;
	assert_int_equal(load(jdx_multi), 0);
	assert_int_equal(count_errors(), 0);
	assert_int_equal(cfg->idle_timeout, 30);
	assert_int_equal(cfg->n_users, 2);
	assert_string_equal(cfg->users[0].password,
	    "{SHA256.HEX}" SHA256_PASSWORD);
	assert_string_equal(cfg->users[1].name, "user2@example.com");
	assert_string_equal(cfg->users[1].password,
	    "{SHA512.HEX}" SHA512_TEST);
	/* The normalised notation is what the verifier understands: the
	 * seed's hashes are of "password" and "test". */
	assert_true(passwd_stored_valid(cfg->users[0].password, NULL));
	assert_int_equal(passwd_verify(cfg->users[0].password, "password", 8),
	    PASSWD_OK);
	assert_int_equal(passwd_verify(cfg->users[1].password, "test", 4),
	    PASSWD_OK);
	assert_int_equal(passwd_verify(cfg->users[1].password, "Test", 4),
	    PASSWD_MISMATCH);
}

/* Windows Notepad: BOM and CRLF.  Positions stay those an editor shows. */
static void
test_jumbodogx_bom_crlf(void **state)
{
	char text[4096];
	size_t o = 0;

	(void)state;
	memcpy(text, "\xEF\xBB\xBF", 3);
	o = 3;
	for (const char *p = jdx_simple; *p != '\0'; p++) {
		if (*p == '\n')
			text[o++] = '\r';
		text[o++] = *p;
	}
	text[o] = '\0';
	assert_int_equal(load(text), 0);
	assert_int_equal(cfg->idle_timeout, 30);
	assert_string_equal(cfg->users[0].password,
	    "{SHA256.HEX}" SHA256_PASSWORD);

	/* An error on line 6 is still reported on line 6. */
	char *p = strstr(text, "\"TimeOut\": 30");
	assert_non_null(p);
	memcpy(p, "\"TimeOut\": -1", 13);
	assert_int_equal(load(text), -1);
	expect_line("@:6:16: Pop3Server.TimeOut: -1 is out of range (1..86400)");
}

/* The seed's file as it is, with its Windows MailDir: refused clearly. */
static void
test_jumbodogx_windows_maildir(void **state)
{
	char text[4096];
	char *p;
	size_t off;

	(void)state;
	snprintf(text, sizeof(text), "%s", jdx_simple);
	p = strstr(text, "\"/srv/jumbodogx/Mailboxes\"");
	assert_non_null(p);
	off = (size_t)(p - text);
	snprintf(text + off, sizeof(text) - off,
	    "\"C:\\\\JumboDogX\\\\Mailboxes\"%s",
	    jdx_simple + off + strlen("\"/srv/jumbodogx/Mailboxes\""));
	assert_int_equal(load(text), -1);
	expect_line("@:7:16: Pop3Server.MailDir: is a Windows path");
	/* One mistake, one message: no follow-up "no mailbox" error. */
	assert_int_equal(count_errors(), 1);
}

static void
test_defaults(void **state)
{
	char host[256];

	(void)state;
	assert_int_equal(load("{\"Pop3Server\": {\"MailDir\": \"/m\"}}"), 0);
	assert_int_equal(count_errors(), 0);
	assert_true(cfg->enabled);
	assert_int_equal(cfg->n_listens, 1);
	assert_string_equal(cfg->listens[0].address, "0.0.0.0");
	assert_int_equal(cfg->listens[0].port, 110);
	/* RFC 1939's 10 minutes when TimeOut is absent. */
	assert_int_equal(cfg->idle_timeout, 600);
	assert_int_equal(cfg->session_timeout, 0);
	assert_int_equal(cfg->auth_fail_delay_ms, 2000);
	assert_int_equal(cfg->max_connections, 20000);
	assert_int_equal(cfg->max_connections_per_ip, 64);
	assert_int_equal(cfg->line_timeout, 30);
	assert_int_equal(cfg->max_connect_rate_per_ip, 600);
	assert_false(cfg->limit_loopback);
	assert_int_equal(cfg->max_bad_commands, 10);
	assert_int_equal(cfg->worker_threads, 0);
	assert_int_equal(cfg->log_level, LOG_LVL_INFO);
	assert_null(cfg->run_as_user);
	assert_null(cfg->passwd_file);
	assert_false(cfg->allow_plaintext_auth);
	assert_string_equal(cfg->format, "auto");
	assert_string_equal(cfg->mailbox_template, "/m/%u");
	assert_null(cfg->tls.cert_file);
	assert_null(cfg->tls.key_file);
	assert_null(cfg->tls.ciphers);
	assert_null(cfg->tls.ciphersuites);
	assert_string_equal(cfg->tls.min_version, "TLSv1.2");
	assert_int_equal(cfg->n_users, 0);
	assert_int_equal(gethostname(host, sizeof(host)), 0);
	host[sizeof(host) - 1] = '\0';
	assert_string_equal(cfg->hostname, host);
	expect_line("warning: @:1:16: Pop3Server: no Users, PasswdFile or Sql");
}

static void
test_all_keys(void **state)
{
	(void)state;
	assert_int_equal(load(
	    "{\"Pop3Server\": {\n"
	    "  \"Enabled\": false,\n"
	    "  \"SessionTimeOut\": 3600,\n"
	    "  \"AuthFailDelay\": 0,\n"
	    "  \"MaxConnections\": 0,\n"
	    "  \"MaxConnectionsPerIp\": 5,\n"
	    "  \"MaxBadCommands\": 3,\n"
	    "  \"WorkerThreads\": 4,\n"
	    "  \"LogLevel\": \"Debug\",\n"
	    "  \"RunAsUser\": \"posuto\",\n"
	    "  \"Hostname\": \"pop.example.com\",\n"
	    "  \"PasswdFile\": \"/etc/dovecot/users\",\n"
	    "  \"AllowPlaintextAuth\": true,\n"
	    "  \"MailboxPath\": \"/var/mail/%u/Maildir\",\n"
	    "  \"MailboxFormat\": \"Maildir\",\n"
	    "  \"Users\": [{\"UserName\": \"x\", \"Password\": \"pw\",\n"
	    "    \"HashType\": \"plain\", \"ApopSecret\": \"tanstaaf\",\n"
	    "    \"MailboxPath\": \"/srv/x\", \"MailboxFormat\": \"emldir\"}]\n"
	    "}}\n"), 0);
	assert_int_equal(count_errors(), 0);
	assert_false(cfg->enabled);
	assert_int_equal(cfg->session_timeout, 3600);
	assert_int_equal(cfg->auth_fail_delay_ms, 0);
	assert_int_equal(cfg->max_connections, 0);
	assert_int_equal(cfg->max_connections_per_ip, 5);
	assert_int_equal(cfg->max_bad_commands, 3);
	assert_int_equal(cfg->worker_threads, 4);
	assert_int_equal(cfg->log_level, LOG_LVL_DEBUG);
	assert_string_equal(cfg->run_as_user, "posuto");
	assert_string_equal(cfg->hostname, "pop.example.com");
	assert_string_equal(cfg->passwd_file, "/etc/dovecot/users");
	assert_true(cfg->allow_plaintext_auth);
	assert_null(cfg->mail_dir);
	assert_string_equal(cfg->mailbox_template, "/var/mail/%u/Maildir");
	assert_string_equal(cfg->format, "Maildir");
	assert_string_equal(cfg->users[0].password, "{PLAIN}pw");
	assert_string_equal(cfg->users[0].apop_secret, "tanstaaf");
	assert_string_equal(cfg->users[0].mailbox, "/srv/x");
	assert_string_equal(cfg->users[0].format, "emldir");
	/* Nothing to warn about: TLS is not needed when plaintext is allowed. */
	assert_string_equal(errtext, "");
}

/* LogLevel takes exactly the names lib/log.c knows. */
static void
test_log_levels(void **state)
{
	static const char *const names[] = { "error", "warn", "info", "debug" };
	char line[64];

	(void)state;
	for (size_t i = 0; i < 4; i++) {
		enum log_level want;

		snprintf(line, sizeof(line), "\"LogLevel\": \"%s\"", names[i]);
		assert_int_equal(load_line4(line), 0);
		assert_true(log_level_parse(names[i], &want));
		assert_int_equal(cfg->log_level, want);
		assert_string_equal(log_level_name(cfg->log_level), names[i]);
	}
	assert_int_equal(load_line4("\"LogLevel\": \"loud\""), -1);
	expect_line("@:4:17: Pop3Server.LogLevel: must be one of \"error\", "
	    "\"warn\", \"info\", \"debug\"");
}

static void
test_listen_ipv6_tls(void **state)
{
	(void)state;
	assert_int_equal(load(
	    "{\n"
	    "  \"Pop3Server\": {\n"
	    "    \"BindAddress\": \"127.0.0.1\",\n"
	    "    \"MailDir\": \"mail\",\n"
	    "    \"Tls\": {\"Certificate\": \"tls/pop.pem\", "
	    "\"MinVersion\": \"TLSv1.3\",\n"
	    "            \"Ciphers\": \"HIGH:!aNULL\", "
	    "\"CipherSuites\": \"TLS_AES_256_GCM_SHA384\"},\n"
	    "    \"Listen\": [\n"
	    "      {\"Address\": \"::\", \"Port\": 110},\n"
	    "      {\"Address\": \"::\", \"Tls\": \"implicit\"},\n"
	    "      {\"Address\": \"192.0.2.1\", \"Port\": 1995, "
	    "\"Tls\": \"Implicit\"},\n"
	    "      {\"Address\": \"2001:db8::1\"}\n"
	    "    ],\n"
	    "    \"Users\": [{\"UserName\": \"u\", \"Password\": \"{PLAIN}p\"}]\n"
	    "  }\n"
	    "}\n"), 0);
	assert_int_equal(count_errors(), 0);
	assert_int_equal(cfg->n_listens, 4);
	assert_string_equal(cfg->listens[0].address, "::");
	assert_int_equal(cfg->listens[0].port, 110);
	/* A plain port with a certificate offers STLS: shown as such. */
	assert_int_equal(cfg->listens[0].tls, LISTEN_TLS_STARTTLS);
	/* Implicit TLS without a Port is POP3S's 995 (RFC 8314). */
	assert_int_equal(cfg->listens[1].port, 995);
	assert_int_equal(cfg->listens[1].tls, LISTEN_TLS_IMPLICIT);
	assert_string_equal(cfg->listens[2].address, "192.0.2.1");
	assert_int_equal(cfg->listens[2].port, 1995);
	assert_int_equal(cfg->listens[2].tls, LISTEN_TLS_IMPLICIT);
	assert_int_equal(cfg->listens[3].port, 110);
	/* Relative paths are relative to the config file's directory. */
	char want[256];
	snprintf(want, sizeof(want), "%s/tls/pop.pem", tmpdir);
	assert_string_equal(cfg->tls.cert_file, want);
	assert_string_equal(cfg->tls.key_file, want);
	assert_string_equal(cfg->tls.min_version, "TLSv1.3");
	assert_string_equal(cfg->tls.ciphers, "HIGH:!aNULL");
	assert_string_equal(cfg->tls.ciphersuites, "TLS_AES_256_GCM_SHA384");
	snprintf(want, sizeof(want), "%s/mail", tmpdir);
	assert_string_equal(cfg->mail_dir, want);
	snprintf(want, sizeof(want), "%s/mail/%%u", tmpdir);
	assert_string_equal(cfg->mailbox_template, want);
	expect_line("warning: @:3:5: Pop3Server.BindAddress: ignored because "
	    "Listen is given");
}

static void
test_listen_errors(void **state)
{
	(void)state;
	assert_int_equal(load(
	    "{\n"
	    "  \"Pop3Server\": {\n"
	    "    \"MailDir\": \"/m\",\n"
	    "    \"Listen\": [\n"
	    "      {\"Address\": \"::1\", \"Tls\": \"implicit\"},\n"
	    "      {\"Address\": \"localhost\"},\n"
	    "      {\"Address\": \"127.0.0.1\", \"Port\": 0},\n"
	    "      {\"Port\": 110},\n"
	    "      {\"Address\": \"::1\", \"Port\": 996, \"Tls\": \"starttls\"},\n"
	    "      {\"Address\": \"::1\", \"Port\": 995}\n"
	    "    ]\n"
	    "  }\n"
	    "}\n"), -1);
	expect_line("@:5:33: Pop3Server.Listen[0].Tls: implicit TLS needs "
	    "Pop3Server.Tls.Certificate");
	expect_line("@:6:19: Pop3Server.Listen[1].Address: not a numeric IPv4 "
	    "or IPv6 address");
	expect_line("@:7:40: Pop3Server.Listen[2].Port: 0 is out of range "
	    "(1..65535)");
	expect_line("@:8:7: Pop3Server.Listen[3]: missing required key "
	    "\"Address\"");
	expect_line("@:9:46: Pop3Server.Listen[4].Tls: STLS needs "
	    "Pop3Server.Tls.Certificate");
	expect_line("@:10:7: Pop3Server.Listen[5]: same address and port as "
	    "Listen[0]");
	assert_int_equal(count_errors(), 6);

	assert_int_equal(load_line4("\"Listen\": [{\"Address\": \"::\", "
	    "\"Tls\": \"ssl\"}]"), -1);
	expect_line("@:4:41: Pop3Server.Listen[0].Tls: must be one of \"none\", "
	    "\"implicit\", \"starttls\"");
	assert_int_equal(load_line4("\"Listen\": []"), -1);
	expect_line("@:4:15: Pop3Server.Listen: must list at least one address");
	assert_int_equal(load_line4("\"Listen\": {\"Address\": \"::\"}"), -1);
	expect_line("@:4:15: Pop3Server.Listen: expected an array, got an "
	    "object");
	assert_int_equal(load_line4("\"Listen\": [\"::\"]"), -1);
	expect_line("@:4:16: Pop3Server.Listen[0]: expected an object, got a "
	    "string");
}

static void
test_port_and_types(void **state)
{
	(void)state;
	assert_int_equal(load_line4("\"Port\": 0"), -1);
	expect_line("@:4:13: Pop3Server.Port: 0 is out of range (1..65535)");
	assert_int_equal(count_errors(), 1);
	assert_int_equal(load_line4("\"Port\": 70000"), -1);
	expect_line("@:4:13: Pop3Server.Port: 70000 is out of range (1..65535)");
	assert_int_equal(load_line4("\"Port\": \"110\""), -1);
	expect_line("@:4:13: Pop3Server.Port: expected an integer, got a "
	    "string");
	assert_int_equal(load_line4("\"Port\": 65535"), 0);
	assert_int_equal(cfg->listens[0].port, 65535);
	assert_int_equal(load_line4("\"Port\": 1"), 0);
	assert_int_equal(cfg->listens[0].port, 1);

	assert_int_equal(load_line4("\"TimeOut\": 1.5"), -1);
	expect_line("@:4:16: Pop3Server.TimeOut: expected an integer, got a "
	    "number with a fraction");
	assert_int_equal(load_line4("\"TimeOut\": 0"), -1);
	expect_line("@:4:16: Pop3Server.TimeOut: 0 is out of range (1..86400)");
	assert_int_equal(load_line4("\"TimeOut\": null"), -1);
	expect_line("@:4:16: Pop3Server.TimeOut: expected an integer, got null");
	assert_int_equal(load_line4("\"Enabled\": \"yes\""), -1);
	expect_line("@:4:16: Pop3Server.Enabled: expected a boolean (true or "
	    "false), got a string");
	assert_int_equal(load_line4("\"MaxConnections\": -1"), -1);
	expect_line("@:4:23: Pop3Server.MaxConnections: -1 is out of range");
	assert_int_equal(load_line4("\"MailboxFormat\": \"mboxcl2\""), -1);
	expect_line("@:4:22: Pop3Server.MailboxFormat: must be one of \"auto\", "
	    "\"maildir\", \"emldir\", \"mbox\"");
	assert_int_equal(load_line4("\"MailboxFormat\": \"mbox\""), 0);
	config_free(&cfg);
	assert_int_equal(load_line4("\"MailboxPath\": \"/m/%x\""), -1);
	expect_line("@:4:20: Pop3Server.MailboxPath: unknown %%-sequence");
	assert_int_equal(load_line4("\"MailboxPath\": \"/m/%\""), -1);
	expect_line("@:4:20: Pop3Server.MailboxPath: ends in a lone '%%'");
	assert_int_equal(load_line4("\"BindAddress\": \"localhost\""), -1);
	expect_line("@:4:20: Pop3Server.BindAddress: not a numeric IPv4 or IPv6");
	assert_int_equal(load_line4("\"BindAddress\": \"::\""), 0);
	assert_string_equal(cfg->listens[0].address, "::");
	assert_int_equal(load_line4("\"Hostname\": \"a b\""), -1);
	expect_line("@:4:17: Pop3Server.Hostname: may hold only letters");
	assert_int_equal(load_line4("\"RunAsUser\": \"\""), -1);
	expect_line("@:4:18: Pop3Server.RunAsUser: must not be empty");
	assert_int_equal(load_line4("\"PasswdFile\": \"/etc/x\\ny\""), -1);
	expect_line("@:4:19: Pop3Server.PasswdFile: contains a control character");
	assert_int_equal(load_line4("\"Users\": {}"), -1);
	expect_line("@:4:14: Pop3Server.Users: expected an array, got an object");
	assert_int_equal(load_line4("\"Tls\": []"), -1);
	expect_line("@:4:12: Pop3Server.Tls: expected an object, got an array");
	assert_int_equal(load_line4("\"Tls\": {\"MinVersion\": \"TLSv1.1\"}"), -1);
	expect_line("@:4:27: Pop3Server.Tls.MinVersion: must be \"TLSv1.2\" or "
	    "\"TLSv1.3\"");
	assert_int_equal(load_line4("\"Tls\": {\"Key\": \"/k.pem\"}"), -1);
	expect_line("@:4:13: Pop3Server.Tls.Key: a Key without a Certificate");
}

static void
test_unknown_keys(void **state)
{
	(void)state;
	assert_int_equal(load(
	    "{\n"
	    "  \"SmtpServer\": {\"Port\": 25},\n"
	    "  \"Pop3Server\": {\n"
	    "    \"MailDir\": \"/m\",\n"
	    "    \"Frobnicate\": 1,\n"
	    "    \"Tls\": {\"Certificat\": \"/c.pem\"},\n"
	    "    \"Users\": [{\"UserName\": \"u\", \"Password\": \"{PLAIN}p\",\n"
	    "                \"Colour\": \"red\"}]\n"
	    "  }\n"
	    "}\n"), 0);
	assert_int_equal(count_errors(), 0);
	expect_line("warning: @:2:3: SmtpServer: ignored: posuto reads only "
	    "the Pop3Server and Admin sections");
	expect_line("warning: @:5:5: Pop3Server.Frobnicate: unknown key, "
	    "ignored");
	expect_line("warning: @:6:13: Pop3Server.Tls.Certificat: unknown key");
	expect_line("warning: @:8:17: Pop3Server.Users[0].Colour: unknown key");
	assert_null(cfg->tls.cert_file);

	/* Key names ignore case, as .NET's configuration binder does ... */
	assert_int_equal(load_line4("\"timeout\": 45"), 0);
	assert_int_equal(cfg->idle_timeout, 45);
	assert_int_equal(count_errors(), 0);
	/* ... so two spellings of one key are a conflict. */
	assert_int_equal(load_line4("\"TimeOut\": 45, \"TIMEOUT\": 46"), -1);
	expect_line("@:4:20: Pop3Server.TIMEOUT: \"TimeOut\" given twice");
}

static void
test_users_errors(void **state)
{
	(void)state;
	assert_int_equal(load(
	    "{\n"
	    "  \"Pop3Server\": {\n"
	    "    \"MailDir\": \"/m\",\n"
	    "    \"Users\": [\n"
	    "      { \"UserName\": \"a@example.com\", \"Password\": \"{PLAIN}x\" },\n"
	    "      { \"UserName\": \"b@example.com\",\n"
	    "        \"Password\": \"abc\",\n"
	    "        \"HashType\": \"MD5\" },\n"
	    "      { \"UserName\": \"c@example.com\", \"Password\": \"5e88\", "
	    "\"HashType\": \"SHA256\" },\n"
	    "      { \"UserName\": \"a@example.com\", \"Password\": \"{PLAIN}y\" },\n"
	    "      { \"UserName\": \"a/b\", \"Password\": \"{PLAIN}y\" },\n"
	    "      { \"Password\": \"{PLAIN}y\" },\n"
	    "      \"bob\",\n"
	    "      { \"UserName\": \"d@example.com\", \"Password\": \"plaintext\" },\n"
	    "      { \"UserName\": \"e@example.com\", \"Password\": \"{NOPE}zz\" },\n"
	    "      { \"UserName\": \"f@example.com\", \"Password\": \"" SHA256_PASSWORD
	    "x\", \"HashType\": \"SHA512\" },\n"
	    "      { \"UserName\": \"g@example.com\", \"Password\": "
	    "\"5e884898da28047151d0e56f8dc6292773603d0d6aabbdd62a11ef721d1542dg\", "
	    "\"HashType\": \"SHA256\" }\n"
	    "    ]\n"
	    "  }\n"
	    "}\n"), -1);
	expect_line("@:8:21: Pop3Server.Users[1].HashType: must be one of "
	    "\"SHA256\", \"SHA512\", \"PLAIN\"");
	expect_line("@:9:50: Pop3Server.Users[2].Password: HashType SHA256 needs "
	    "64 hex digits, got 4 characters");
	expect_line("@:10:21: Pop3Server.Users[3].UserName: duplicate user "
	    "(also in Users[0])");
	expect_line("@:12:7: Pop3Server.Users[5]: missing required key "
	    "\"UserName\"");
	expect_line("@:13:7: Pop3Server.Users[6]: expected an object, got a "
	    "string");
	expect_line("@:14:50: Pop3Server.Users[7].Password: not a "
	    "\"{SCHEME}data\" string");
	expect_line("@:16:50: Pop3Server.Users[9].Password: HashType SHA512 needs "
	    "128 hex digits, got 65 characters");
	expect_line("@:17:50: Pop3Server.Users[10].Password: HashType SHA256 "
	    "needs hex digits only (character 64 is not one)");
	/* Every error is reported, and the bad HashType alone (no follow-up
	 * complaint about Users[1]'s password).  Users[4]'s name and
	 * Users[8]'s scheme are auth's to judge: test_users_auth_errors. */
	assert_int_equal(count_errors(), 8);
}

/* Loads text (which must be a valid config), then its users and SASL
 * mechanisms as serve does; their messages go to errtext.  True if
 * auth accepted them. */
static bool
load_auth(const char *text)
{
	size_t sz = 0;
	unsigned mechs;
	struct userdb *db;
	FILE *errs;
	bool ok;

	assert_int_equal(load(text), 0);
	free(errtext);
	errtext = NULL;
	errs = open_memstream(&errtext, &sz);
	assert_non_null(errs);
	db = userdb_load(cfg, errs);
	ok = sasl_mechs_from_config(cfg, &mechs, errs) && db != NULL;
	assert_int_equal(fclose(errs), 0);
	userdb_unref(&db);
	return ok;
}

/* Issue 10 item 2: what config/ no longer judges (it may not include
 * auth) is reported by auth at the same place, with the same words. */
static void
test_users_auth_errors(void **state)
{
	(void)state;
	assert_false(load_auth(
	    "{\n"
	    "  \"Pop3Server\": {\n"
	    "    \"MailDir\": \"/m\",\n"
	    "    \"SaslMechanisms\": [\"PLAIN\", \"CRAM-MD5\"],\n"
	    "    \"Users\": [\n"
	    "      { \"UserName\": \"a@example.com\", \"Password\": \"{PLAIN}x\" },\n"
	    "      { \"UserName\": \"a/b\", \"Password\": \"{PLAIN}y\" },\n"
	    "      { \"UserName\": \"e@example.com\", \"Password\": \"{NOPE}zz\" },\n"
	    "      { \"UserName\": \"c:d\", \"Password\": \"{PLAIN}y\" },\n"
	    "      { \"UserName\": \"bad\\u0085\", \"Password\": \"{PLAIN}y\" }\n"
	    "    ]\n"
	    "  }\n"
	    "}\n"));
	print_message("%s", errtext);
	expect_line("@:7:21: Pop3Server.Users[1].UserName: user name must not "
	    "contain '/'");
	expect_line("@:8:50: Pop3Server.Users[2].Password: unknown password "
	    "scheme");
	expect_line("@:9:21: Pop3Server.Users[3].UserName: user name must not "
	    "contain ':' (the passwd-file separator)");
	expect_line("@:10:21: Pop3Server.Users[4].UserName: user name is not "
	    "valid UTF-8 (or holds a C1 control character)");
	expect_line("@:4:33: Pop3Server.SaslMechanisms[1]: unknown SASL "
	    "mechanism \"CRAM-MD5\" (known: PLAIN, LOGIN, SCRAM-SHA-256, "
	    "SCRAM-SHA-256-PLUS)");
	assert_int_equal(count_errors(), 5);
}

static void
test_users_schemes(void **state)
{
	(void)state;
	/* Dovecot notation without HashType is taken as it is. */
	assert_int_equal(load(
	    "{\"Pop3Server\": {\"MailDir\": \"/m\", \"Users\": [\n"
	    "  {\"UserName\": \"a\", \"Password\": \"{SHA256.HEX}"
	    SHA256_PASSWORD "\"},\n"
	    "  {\"UserName\": \"b\", \"Password\": \"{PLAIN}secret\"},\n"
	    "  {\"UserName\": \"c\", \"Password\": \"5E884898DA28047151D0E56F8DC62"
	    "92773603D0D6AABBDD62A11EF721D1542D8\", \"HashType\": \"sha256\"}\n"
	    "]}}\n"), 0);
	assert_string_equal(cfg->users[0].password,
	    "{SHA256.HEX}" SHA256_PASSWORD);
	assert_string_equal(cfg->users[1].password, "{PLAIN}secret");
	/* Upper-case hex is normalised to lower case. */
	assert_string_equal(cfg->users[2].password,
	    "{SHA256.HEX}" SHA256_PASSWORD);
	assert_int_equal(passwd_verify(cfg->users[2].password, "password", 8),
	    PASSWD_OK);
}

static void
test_mailbox_location(void **state)
{
	(void)state;
	/* Users but nowhere to put their mail. */
	assert_int_equal(load(
	    "{\"Pop3Server\": {\n"
	    "  \"Users\": [{\"UserName\": \"u\", \"Password\": \"{PLAIN}p\"}]\n"
	    "}}\n"), -1);
	expect_line("@:2:3: Pop3Server.Users: users need a mailbox location: "
	    "set MailDir or MailboxPath");
	/* ... unless each user has its own. */
	assert_int_equal(load(
	    "{\"Pop3Server\": {\n"
	    "  \"Users\": [{\"UserName\": \"u\", \"Password\": \"{PLAIN}p\", "
	    "\"MailboxPath\": \"/srv/%n@%d\"}]\n"
	    "}}\n"), 0);
	assert_null(cfg->mailbox_template);
	assert_string_equal(cfg->users[0].mailbox, "/srv/%n@%d");
	/* A PasswdFile needs one too. */
	assert_int_equal(load(
	    "{\"Pop3Server\": {\n"
	    "  \"PasswdFile\": \"/etc/dovecot/users\"\n"
	    "}}\n"), -1);
	expect_line("@:2:3: Pop3Server.PasswdFile: users need a mailbox "
	    "location");
	/* %h is for passwd-file users (they have a home), not Users[]. */
	assert_int_equal(load(
	    "{\"Pop3Server\": {\n"
	    "  \"PasswdFile\": \"/etc/dovecot/users\",\n"
	    "  \"MailboxPath\": \"%h/Maildir\"\n"
	    "}}\n"), 0);
	assert_string_equal(cfg->mailbox_template, "%h/Maildir");
	assert_int_equal(load(
	    "{\"Pop3Server\": {\n"
	    "  \"MailboxPath\": \"%h/Maildir\",\n"
	    "  \"Users\": [{\"UserName\": \"u\", \"Password\": \"{PLAIN}p\"}]\n"
	    "}}\n"), -1);
	expect_line("@:2:18: Pop3Server.MailboxPath: %%h needs a home directory");
	/* A '%' in MailDir is literal in the derived template. */
	assert_int_equal(load_line4("\"MailboxFormat\": \"emldir\"") , 0);
	assert_int_equal(load("{\"Pop3Server\": {\"MailDir\": \"/m%x\"}}"), 0);
	assert_string_equal(cfg->mailbox_template, "/m%%x/%u");
}

static void
test_json_syntax(void **state)
{
	(void)state;
	assert_int_equal(load(
	    "{\n"
	    "  \"Pop3Server\": {\n"
	    "    \"Port\": 110\n"
	    "    \"TimeOut\": 30\n"
	    "  }\n"
	    "}\n"), -1);
	expect_line("@:4:13: Pop3Server: invalid JSON: '}' expected near "
	    "'\"TimeOut\"'");
	assert_int_equal(count_errors(), 1);

	assert_int_equal(load_line4("\"Port\": ,"), -1);
	expect_line("@:4:13: Pop3Server.Port: invalid JSON: unexpected token");
	assert_int_equal(load("{\"Pop3Server\": {\"MailDir\": \"/m"), -1);
	expect_line("@:1:30: Pop3Server.MailDir: invalid JSON: premature end");
	/* jansson refuses duplicate keys: a silent "last one wins" hides
	 * mistakes. */
	assert_int_equal(load_line4("\"Port\": 1, \"Port\": 2"), -1);
	expect_line("@:4:21: Pop3Server.Port: invalid JSON: duplicate object "
	    "key");
	assert_int_equal(load(""), -1);
	/* Not jansson's 1:0: there is no column 0. */
	expect_line("@:1:1: (top level): invalid JSON: unexpected end of file "
	    "('[' or '{' expected)");

	assert_int_equal(load("[1]"), -1);
	expect_line("@:1:1: (top level): expected an object");
	assert_int_equal(load("{\"SmtpServer\": {}}"), -1);
	expect_line("@:1:1: (top level): missing required key \"Pop3Server\"");
	expect_line("warning: @:1:2: SmtpServer: ignored");
	assert_int_equal(load("{\"Pop3Server\": []}"), -1);
	expect_line("@:1:16: Pop3Server: expected an object, got an array");
}

/* Where a person would look: the comma, the end of the last line. */
static void
test_json_syntax_positions(void **state)
{
	(void)state;
	/* jansson names the 7:0 past the end; the last character is 6:5. */
	assert_int_equal(load(
	    "{\n"
	    "  \"Pop3Server\": {\n"
	    "    \"MailDir\": \"/m\",\n"
	    "    \"Users\": [\n"
	    "      {\"UserName\": \"a\", \"Password\": \"{PLAIN}x\"}\n"
	    "    ]\n"), -1);
	expect_line("@:6:5: Pop3Server: invalid JSON: unexpected end of file "
	    "('}' expected)");
	assert_int_equal(count_errors(), 1);
	/* Blank lines after the last character change nothing. */
	assert_int_equal(load("{\"Pop3Server\": {\"Port\": 110\n\n\n"), -1);
	expect_line("@:1:27: Pop3Server: invalid JSON: unexpected end of file");
	assert_int_equal(load("{\"Pop3Server\": {\"MailDir\":\n"), -1);
	expect_line("@:1:26: Pop3Server.MailDir: invalid JSON: unexpected end "
	    "of file");

	/* jansson says "'}' expected near '}'" at 5:3, the next token. */
	assert_int_equal(load(
	    "{\n"
	    "  \"Pop3Server\": {\n"
	    "    \"MailDir\": \"/m\",\n"
	    "    \"Port\": 110,\n"
	    "  }\n"
	    "}\n"), -1);
	expect_line("@:4:16: Pop3Server: invalid JSON: trailing comma before "
	    "'}'");
	assert_int_equal(count_errors(), 1);
	assert_int_equal(load_line4("\"Users\": [{\"UserName\": \"a\"},\n ]"),
	    -1);
	expect_line("@:4:32: Pop3Server.Users: invalid JSON: trailing comma "
	    "before ']'");
	/* A comma between members is not trailing; an earlier error wins. */
	assert_int_equal(load_line4("\"Port\": 01, \"TimeOut\": 2,"), -1);
	expect_line("@:4:13: Pop3Server: invalid JSON: invalid token");
}

/* An unknown key names the known key it resembles, and only then. */
static void
test_unknown_key_suggestions(void **state)
{
	static const struct {
		const char *key, *hint;
	} cases[] = {
		{ "listen_adress", "Listen" },
		{ "BindAdress", "BindAddress" },
		{ "time_out", "TimeOut" },
		{ "Max-Connections", "MaxConnections" },
		{ "Tiemout", "TimeOut" },
		{ "PasswordFile", "PasswdFile" },
		{ "Certificate", NULL },
		{ "Colour", NULL },
		{ "X", NULL },
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char line[128];

		snprintf(line, sizeof(line), "\"%s\": 1", cases[i].key);
		assert_int_equal(load_line4(line), 0);
		if (cases[i].hint != NULL) {
			expect_line("warning: @:4:5: Pop3Server.%s: unknown key, "
			    "ignored (did you mean \"%s\"?)", cases[i].key,
			    cases[i].hint);
		} else {
			expect_line("warning: @:4:5: Pop3Server.%s: unknown key, "
			    "ignored\n", cases[i].key);
		}
	}
	/* In Users[] the user keys are the candidates. */
	assert_int_equal(load_line4("\"Users\": [{\"UserName\": \"a\", "
	    "\"Password\": \"{PLAIN}x\", \"Mailbox_Format\": \"maildir\"}]"), 0);
	expect_line("warning: @:4:57: Pop3Server.Users[0].Mailbox_Format: "
	    "unknown key, ignored (did you mean \"MailboxFormat\"?)");
}

/* Plaintext-equivalent secrets in a file everyone can read are refused,
 * hashes only warned about; a file in a private directory is private. */
static void
test_world_readable_secrets(void **state)
{
	static const char plain[] =
	    "{\"Pop3Server\": {\"MailDir\": \"/m\",\n"
	    " \"Users\": [{\"UserName\": \"h\", \"Password\": \""
	    SHA256_PASSWORD "\", \"HashType\": \"SHA256\"},\n"
	    "  {\"UserName\": \"p\", \"Password\": \"x\", \"HashType\": "
	    "\"PLAIN\"}]}}\n";
	static const char apop[] =
	    "{\"Pop3Server\": {\"MailDir\": \"/m\",\n"
	    " \"Users\": [{\"UserName\": \"a\", \"Password\": \""
	    SHA256_PASSWORD "\", \"HashType\": \"SHA256\",\n"
	    "   \"ApopSecret\": \"tanstaaf\"}]}}\n";

	(void)state;
	assert_int_equal(chmod(tmpdir, 0755), 0);
	assert_int_equal(load(plain), -1);
	assert_int_equal(chmod(cfgpath, 0644), 0);
	assert_int_equal(load(plain), -1);
	expect_line("@:3:33: Pop3Server.Users[1].Password: a plaintext-"
	    "equivalent secret in a file everyone on this host can read "
	    "(1 user); chmod o-r @");
	assert_int_equal(count_errors(), 1);
	assert_int_equal(load(apop), -1);
	expect_line("@:3:18: Pop3Server.Users[0].ApopSecret: a plaintext-");
	/* {PLAIN} without HashType is the same secret. */
	assert_int_equal(load_line4("\"Users\": [{\"UserName\": \"a\", "
	    "\"Password\": \"{plain}x\"}]"), -1);
	expect_line("@:4:45: Pop3Server.Users[0].Password: a plaintext-");

	/* Hashes only: a warning. */
	assert_int_equal(load(jdx_multi), 0);
	expect_line("warning: @:8:5: Pop3Server.Users: readable by everyone; "
	    "password hashes should be private");

	/* Not readable by others, or in a directory others cannot enter. */
	assert_int_equal(chmod(cfgpath, 0640), 0);
	assert_int_equal(load(plain), 0);
	assert_null(strstr(errtext, "readable"));
	assert_int_equal(chmod(cfgpath, 0644), 0);
	assert_int_equal(chmod(tmpdir, 0700), 0);
	assert_int_equal(load(plain), 0);
	assert_int_equal(load(apop), 0);
	assert_null(strstr(errtext, "readable"));
}

/* config_where() places keys used after loading, as config_report()
 * does: the value, else the object that would hold it. */
static void
test_where(void **state)
{
	char buf[512], want[512];

	(void)state;
	assert_int_equal(load(
	    "{\"Pop3Server\": {\"MailDir\": \"/m\",\n"
	    "  \"RunAsUser\": \"vmail\", \"PasswdFile\": \"users\",\n"
	    "  \"Tls\": {\"Certificate\": \"c.pem\"}}}\n"), 0);
	config_where(cfg, "Pop3Server.RunAsUser", buf, sizeof(buf));
	snprintf(want, sizeof(want), "%s:2:16: Pop3Server.RunAsUser", cfgpath);
	assert_string_equal(buf, want);
	config_where(cfg, "Pop3Server.PasswdFile", buf, sizeof(buf));
	snprintf(want, sizeof(want), "%s:2:39: Pop3Server.PasswdFile", cfgpath);
	assert_string_equal(buf, want);
	config_where(cfg, "Pop3Server.Tls.Certificate", buf, sizeof(buf));
	snprintf(want, sizeof(want), "%s:3:26: Pop3Server.Tls.Certificate",
	    cfgpath);
	assert_string_equal(buf, want);
	/* Key defaults to Certificate: shown there. */
	config_where(cfg, "Pop3Server.Tls.Key", buf, sizeof(buf));
	snprintf(want, sizeof(want), "%s:3:26: Pop3Server.Tls.Key", cfgpath);
	assert_string_equal(buf, want);
	/* Not in the file: at the object that would hold it. */
	config_where(cfg, "Pop3Server.Enabled", buf, sizeof(buf));
	snprintf(want, sizeof(want), "%s:1:16: Pop3Server.Enabled", cfgpath);
	assert_string_equal(buf, want);
	/* A key config_where() does not know has no position. */
	config_where(cfg, "Pop3Server.Users", buf, sizeof(buf));
	snprintf(want, sizeof(want), "%s: Pop3Server.Users", cfgpath);
	assert_string_equal(buf, want);
}

/* Every truncation of a valid file is an error naming a position, never a
 * crash or a silently half-read config. */
static void
test_truncated_at_every_offset(void **state)
{
	size_t len = strlen(jdx_multi);
	size_t last = (size_t)(strrchr(jdx_multi, '}') - jdx_multi);

	(void)state;
	for (size_t n = 0; n <= last; n++) {
		char prefix[160];

		assert_int_equal(load_len(jdx_multi, n), -1);
		assert_int_equal(count_errors(), 1);
		snprintf(prefix, sizeof(prefix), "%s:", cfgpath);
		assert_int_equal(strncmp(errtext, prefix, strlen(prefix)), 0);
		assert_non_null(strstr(errtext, ": invalid JSON: "));
	}
	assert_int_equal(load_len(jdx_multi, last + 1), 0);
	assert_int_equal(load_len(jdx_multi, len), 0);
}

static void
test_file_errors(void **state)
{
	size_t sz = 0;
	FILE *errs;
	char missing[160];

	(void)state;
	snprintf(missing, sizeof(missing), "%s/nonexistent.json", tmpdir);
	errs = open_memstream(&errtext, &sz);
	assert_int_equal(config_load(missing, &cfg, errs), -1);
	fclose(errs);
	assert_null(cfg);
	assert_non_null(strstr(errtext, "nonexistent.json: cannot read: "));
	free(errtext);
	errtext = NULL;

	errs = open_memstream(&errtext, &sz);
	assert_int_equal(config_load(tmpdir, &cfg, errs), -1);
	fclose(errs);
	assert_non_null(strstr(errtext, ": cannot read: "));
}

static void
test_dump(void **state)
{
	char *out = NULL;
	size_t sz = 0;
	FILE *f;

	(void)state;
	assert_int_equal(load(
	    "{\"Pop3Server\": {\"TimeOut\": 30, \"MailDir\": \"/srv/mail\",\n"
	    " \"Users\": [{\"UserName\": \"user1@example.com\", \"Password\": \""
	    SHA256_PASSWORD "\", \"HashType\": \"SHA256\",\n"
	    "  \"ApopSecret\": \"tanstaaf\"}]}}\n"), 0);
	f = open_memstream(&out, &sz);
	config_dump(cfg, f);
	fclose(f);
	assert_non_null(strstr(out, "\"Pop3Server\": {"));
	assert_non_null(strstr(out, "\"TimeOut\": 30,"));
	assert_non_null(strstr(out, "\"Address\": \"0.0.0.0\""));
	assert_non_null(strstr(out, "\"Port\": 110"));
	assert_non_null(strstr(out, "\"Tls\": \"none\""));
	assert_non_null(strstr(out, "\"MailboxPath\": \"/srv/mail/%u\""));
	assert_non_null(strstr(out, "\"LogLevel\": \"info\""));
	assert_non_null(strstr(out, "\"UserName\": \"user1@example.com\""));
	assert_non_null(strstr(out, "\"Password\": \"<hidden>\""));
	assert_non_null(strstr(out, "\"ApopSecret\": \"<hidden>\""));
	/* No secret and no input-only key leaks into the dump. */
	assert_null(strstr(out, "5e8848"));
	assert_null(strstr(out, "tanstaaf"));
	assert_null(strstr(out, "HashType"));
	assert_null(strstr(out, "BindAddress"));
	free(out);

	/* What is in effect: STLS on a plain port with a certificate, the
	 * server's format and template for a user without its own. */
	assert_int_equal(load(
	    "{\"Pop3Server\": {\"MailDir\": \"/srv/mail\",\n"
	    " \"MailboxFormat\": \"maildir\", \"Tls\": {\"Certificate\": "
	    "\"/c.pem\"},\n"
	    " \"Listen\": [{\"Address\": \"::\", \"Tls\": \"none\"},\n"
	    "   {\"Address\": \"::\", \"Tls\": \"implicit\"}],\n"
	    " \"Users\": [{\"UserName\": \"a\", \"Password\": \"{PLAIN}x\"},\n"
	    "  {\"UserName\": \"b\", \"Password\": \"{PLAIN}x\",\n"
	    "   \"MailboxFormat\": \"emldir\", \"MailboxPath\": \"/b\"}]}}\n"),
	    0);
	out = NULL;
	f = open_memstream(&out, &sz);
	config_dump(cfg, f);
	fclose(f);
	assert_non_null(strstr(out, "\"Tls\": \"starttls\""));
	assert_non_null(strstr(out, "\"Tls\": \"implicit\""));
	assert_null(strstr(out, "\"Tls\": \"none\""));
	assert_non_null(strstr(out, "\"UserName\": \"a\",\n"
	    "        \"Password\": \"<hidden>\",\n"
	    "        \"MailboxFormat\": \"maildir\",\n"
	    "        \"MailboxPath\": \"/srv/mail/%u\""));
	assert_non_null(strstr(out, "\"MailboxPath\": \"/b\",\n"
	    "        \"MailboxFormat\": \"emldir\",\n"
	    "        \"MailboxLocation\": \"emldir:/b\""));
	/* the store location, per user and for users without their own */
	assert_non_null(strstr(out, "\"MailboxPath\": \"/srv/mail/%u\",\n"
	    "        \"MailboxLocation\": \"maildir:/srv/mail/%u\""));
	assert_non_null(strstr(out, "\n    \"MailboxLocation\": "
	    "\"maildir:/srv/mail/%u\""));
	assert_null(strstr(out, "\"auto\""));
	free(out);
}

/* The source tree, found from this file's path (meson runs tests in the
 * build directory and passes sources by relative path). */
static bool
source_path(const char *rel, char *out, size_t outsz)
{
	const char *tail = strstr(__FILE__, "tests/unit/test_config.c");
	struct stat st;

	if (tail == NULL)
		return false;
	snprintf(out, outsz, "%.*s%s", (int)(tail - __FILE__), __FILE__, rel);
	return stat(out, &st) == 0;
}

/* etc/posuto.json and every JSON example of posuto.json(5) load without
 * an error, so the documentation cannot drift from the parser. */
static void
test_documented_examples(void **state)
{
	char path[512], line[1024];
	char *buf = NULL;
	size_t sz = 0;
	int examples = 0;
	bool in_nf = false;
	FILE *f, *json = NULL;

	(void)state;
	if (!source_path("etc/posuto.json", path, sizeof(path)))
		skip();
	f = fopen(path, "r");
	assert_non_null(f);
	json = open_memstream(&buf, &sz);
	while (fgets(line, sizeof(line), f) != NULL)
		fputs(line, json);
	fclose(f);
	fclose(json);
	json = NULL;
	assert_int_equal(load(buf), 0);
	assert_int_equal(count_errors(), 0);
	assert_int_equal(cfg->n_listens, 4);
	assert_string_equal(cfg->mailbox_template, "/var/mail/%u/Maildir");
	free(buf);
	buf = NULL;

	if (!source_path("man/posuto.json.5", path, sizeof(path)))
		skip();
	f = fopen(path, "r");
	assert_non_null(f);
	while (fgets(line, sizeof(line), f) != NULL) {
		if (strncmp(line, ".nf", 3) == 0) {
			in_nf = true;
			continue;
		}
		if (strncmp(line, ".fi", 3) == 0) {
			in_nf = false;
			if (json != NULL) {
				fclose(json);
				json = NULL;
				assert_int_equal(load(buf), 0);
				assert_int_equal(count_errors(), 0);
				examples++;
				free(buf);
				buf = NULL;
			}
			continue;
		}
		if (in_nf && json == NULL && strcmp(line, "{\n") == 0)
			json = open_memstream(&buf, &sz);
		if (json != NULL)
			fputs(line, json);
	}
	fclose(f);
	assert_int_equal(examples, 2);
}

/* ------------------------------------------------------------------ */
/* json_loc on its own                                                 */

static const char loc_text[] =
	"{\n"
	" \"a\\u00e9\": [1, {\"b\": \"x\"}],\n"
	" \"\xc3\xa9t\xc3\xa9\": {\"c\\ud83d\\ude00\": true},\n"
	" \"d\\\"q\": [[], {}, \"s\\\\\"]\n"
	"}\n";

static void
expect_pos(const struct json_loc *jl, const char *path, bool key,
    unsigned line, unsigned col)
{
	struct json_loc_pos pos;

	if (!json_loc_lookup(jl, path, key, &pos))
		fail_msg("path %s not found", path);
	if (pos.line != line || pos.col != col)
		fail_msg("%s: %u:%u, want %u:%u", path, pos.line, pos.col, line,
		    col);
}

static void
test_json_loc_positions(void **state)
{
	struct json_loc *jl;
	struct json_loc_pos pos;

	(void)state;
	jl = json_loc_scan(loc_text, strlen(loc_text));
	expect_pos(jl, "", false, 1, 1);
	expect_pos(jl, "a\xc3\xa9", true, 2, 2);
	expect_pos(jl, "a\xc3\xa9", false, 2, 13);
	expect_pos(jl, "a\xc3\xa9[0]", false, 2, 14);
	expect_pos(jl, "a\xc3\xa9[1]", false, 2, 17);
	expect_pos(jl, "a\xc3\xa9[1].b", true, 2, 18);
	expect_pos(jl, "a\xc3\xa9[1].b", false, 2, 23);
	/* Columns count code points, as jansson's do. */
	expect_pos(jl, "\xc3\xa9t\xc3\xa9", false, 3, 9);
	expect_pos(jl, "\xc3\xa9t\xc3\xa9.c\xf0\x9f\x98\x80", true, 3, 10);
	expect_pos(jl, "\xc3\xa9t\xc3\xa9.c\xf0\x9f\x98\x80", false, 3, 27);
	expect_pos(jl, "d\"q[1]", false, 4, 15);
	expect_pos(jl, "d\"q[2]", false, 4, 19);
	assert_false(json_loc_lookup(jl, "nope", true, &pos));
	assert_false(json_loc_lookup(jl, "a\xc3\xa9[2]", true, &pos));
	assert_string_equal(json_loc_stop_path(jl), "");
	json_loc_free(&jl);
	assert_null(jl);
}

static void
test_json_loc_every_prefix(void **state)
{
	size_t len = strlen(loc_text);

	(void)state;
	/* Any prefix: no overread (ASan), and a stop path where one makes
	 * sense. */
	for (size_t n = 0; n < len; n++) {
		char *copy = malloc(n > 0 ? n : 1);
		struct json_loc *jl;

		assert_non_null(copy);
		memcpy(copy, loc_text, n);
		jl = json_loc_scan(copy, n);
		(void)json_loc_stop_path(jl);
		json_loc_free(&jl);
		free(copy);
	}
	/* Truncated inside the value of b. */
	const char *x = strstr(loc_text, "\"x\"");
	struct json_loc *jl = json_loc_scan(loc_text, (size_t)(x - loc_text) + 1);
	assert_string_equal(json_loc_stop_path(jl), "a\xc3\xa9[1].b");
	json_loc_free(&jl);
	/* Truncated after a key, before its colon. */
	x = strstr(loc_text, "\"b\"");
	jl = json_loc_scan(loc_text, (size_t)(x - loc_text) + 3);
	assert_string_equal(json_loc_stop_path(jl), "a\xc3\xa9[1].b");
	json_loc_free(&jl);
	/* Truncated between members: the enclosing object. */
	x = strstr(loc_text, "],\n");
	jl = json_loc_scan(loc_text, (size_t)(x - loc_text) + 2);
	assert_string_equal(json_loc_stop_path(jl), "");
	json_loc_free(&jl);
}

/* The web admin's Admin object (issue 12): off without it, defaults with
 * it, errors at their key, and the hash written back atomically. */
static void
test_admin(void **state)
{
	char err[256], where[512];
	FILE *f;
	char buf[4096];
	size_t n;

	(void)state;
	assert_int_equal(load("{ \"Pop3Server\": { \"MailDir\": \"/m\" } }"),
	    0);
	assert_false(cfg->admin.enabled);

	assert_int_equal(load("{ \"Pop3Server\": { \"MailDir\": \"/m\" },\n"
	    "  \"Admin\": {} }"), 0);
	assert_true(cfg->admin.enabled);
	assert_string_equal(cfg->admin.address, "127.0.0.1");
	assert_int_equal(cfg->admin.port, 5001);
	assert_null(cfg->admin.password_hash);
	assert_false(cfg->admin.tls);
	assert_int_equal(cfg->admin.session_timeout, 3600);
	config_where(cfg, "Admin.PasswordHash", where, sizeof(where));
	assert_non_null(strstr(where, ":2:12: Admin.PasswordHash"));

	assert_int_equal(load("{ \"Pop3Server\": { \"MailDir\": \"/m\" },\n"
	    "  \"Admin\": { \"Enabled\": false, \"Port\": 8080 } }"), 0);
	assert_false(cfg->admin.enabled);

	assert_int_equal(load("{ \"Pop3Server\": { \"MailDir\": \"/m\" },\n"
	    "  \"Admin\": { \"Tls\": true,\n"
	    "    \"Port\": 0, \"Hostnames\": [\"ok.example\", \"bad name\"] } }"),
	    -1);
	assert_int_equal(count_errors(), 3);
	expect_line("@:2:21: Admin.Tls: needs Pop3Server.Tls.Certificate");
	expect_line("@:3:13: Admin.Port: ");
	expect_line("@:3:44: Admin.Hostnames[1]: ");

	/* config_admin_set_password_hash keeps the other keys. */
	assert_int_equal(load("{ \"Pop3Server\": { \"MailDir\": \"/m\" },\n"
	    "  \"Other\": [1, 2] }"), 0);
	assert_true(config_admin_set_password_hash(cfgpath, "{PLAIN}x", err,
	    sizeof(err)));
	f = fopen(cfgpath, "r");
	assert_non_null(f);
	n = fread(buf, 1, sizeof(buf) - 1, f);
	buf[n] = '\0';
	fclose(f);
	assert_non_null(strstr(buf, "\"Other\": [\n    1,\n    2\n  ]"));
	assert_non_null(strstr(buf, "\"PasswordHash\": \"{PLAIN}x\""));
	assert_true(strstr(buf, "Pop3Server") < strstr(buf, "Admin"));
	config_free(&cfg);
	f = fopen("/dev/null", "w");
	assert_non_null(f);
	assert_int_equal(config_load(cfgpath, &cfg, f), 0);
	fclose(f);
	assert_true(cfg->admin.enabled);
	assert_string_equal(cfg->admin.password_hash, "{PLAIN}x");
	/* A file that is not a JSON object is left alone. */
	write_file(cfgpath, "[1]", 3);
	assert_false(config_admin_set_password_hash(cfgpath, "{PLAIN}x", err,
	    sizeof(err)));
	assert_false(config_admin_set_password_hash("/nonexistent/x.json",
	    "{PLAIN}x", err, sizeof(err)));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_json_syntax_positions,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_unknown_key_suggestions,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_world_readable_secrets,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_where, setup, teardown),
		cmocka_unit_test_setup_teardown(test_jumbodogx_simple, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_jumbodogx_multi, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_jumbodogx_bom_crlf, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_jumbodogx_windows_maildir,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_defaults, setup, teardown),
		cmocka_unit_test_setup_teardown(test_all_keys, setup, teardown),
		cmocka_unit_test_setup_teardown(test_log_levels, setup, teardown),
		cmocka_unit_test_setup_teardown(test_listen_ipv6_tls, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_listen_errors, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_port_and_types, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_unknown_keys, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_users_errors, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_users_auth_errors, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_users_schemes, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_mailbox_location, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_json_syntax, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_truncated_at_every_offset,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_file_errors, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_dump, setup, teardown),
		cmocka_unit_test_setup_teardown(test_admin, setup, teardown),
		cmocka_unit_test_setup_teardown(test_documented_examples, setup,
		    teardown),
		cmocka_unit_test(test_json_loc_positions),
		cmocka_unit_test(test_json_loc_every_prefix),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
