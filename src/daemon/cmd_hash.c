/*
 * cmd_hash.c - `posuto hash`: make a stored secret for the config's
 * Users[].Password or a passwd-file, like `doveadm pw`.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include "auth/passwd.h"
#include "daemon/cmd_hash.h"
#include "lib/params.h"
#include "lib/strutil.h"
#include "lib/xmalloc.h"

#define EXIT_USAGE	64	/* sysexits EX_USAGE */

void
cmd_hash_list_schemes(FILE *fp, int indent)
{
	int col = indent;

	fprintf(fp, "%*s", indent, "");
	for (const char *const *s = passwd_schemes(); *s != NULL; s++) {
		int len = (int)strlen(*s);

		if (col > indent && col + 1 + len > 72) {
			fprintf(fp, "\n%*s", indent, "");
			col = indent;
		}
		fprintf(fp, "%s%s", col > indent ? " " : "", *s);
		col += len + (col > indent ? 1 : 0);
	}
	fprintf(fp, "\n");
}

static void
usage(FILE *fp)
{
	fprintf(fp,
	    "usage: posuto hash [--scheme SCHEME]\n"
	    "\n"
	    "Reads a password (one line from stdin, or prompted twice on the\n"
	    "terminal) and prints its stored form for Users[].Password or a\n"
	    "passwd-file.  SCHEME is case-insensitive; default %s.\n"
	    "SHA256 and SHA512 print the bare hex digest of a JumboDogX\n"
	    "config (Password with \"HashType\": \"SHA256\" or \"SHA512\");\n"
	    "the others print \"{SCHEME}data\".  Schemes:\n",
	    CMD_HASH_DEFAULT_SCHEME);
	cmd_hash_list_schemes(fp, 2);
}

/* JumboDogX's HashType values: the bare hex of SHA256.HEX/SHA512.HEX. */
static const char *
hash_jumbodogx_scheme(const char *scheme)
{
	if (ascii_caseeq(scheme, "SHA256"))
		return "SHA256.HEX";
	if (ascii_caseeq(scheme, "SHA512"))
		return "SHA512.HEX";
	return NULL;
}

/* Reads one line into buf; strips the newline (and a CR before it).
 * Returns its length, or -1 on EOF/error/too long. */
static long
read_line(FILE *fp, char *buf, size_t bufsz)
{
	size_t len;

	if (fgets(buf, (int)bufsz, fp) == NULL)
		return -1;
	len = strlen(buf);
	if (len > 0 && buf[len - 1] == '\n')
		buf[--len] = '\0';
	else if (!feof(fp))
		return -1;	/* no newline within bufsz: too long */
	if (len > 0 && buf[len - 1] == '\r')
		buf[--len] = '\0';
	return (long)len;
}

/* Prompts on the terminal with echo off. */
static long
prompt_tty(FILE *tty, const char *prompt, char *buf, size_t bufsz)
{
	struct termios old, noecho;
	bool restored = false;
	long len;

	if (tcgetattr(fileno(tty), &old) != 0)
		return -1;
	noecho = old;
	noecho.c_lflag &= ~(tcflag_t)ECHO;
	noecho.c_lflag |= ECHONL;
	/* Echo off before the prompt, as getpass(3): TCSAFLUSH drops what
	 * was typed before it, so an answer to a prompt already shown would
	 * be lost (and echoed). */
	if (tcsetattr(fileno(tty), TCSAFLUSH, &noecho) != 0)
		return -1;
	fputs(prompt, tty);
	fflush(tty);
	len = read_line(tty, buf, bufsz);
	restored = tcsetattr(fileno(tty), TCSAFLUSH, &old) == 0;
	if (!restored)
		fprintf(stderr, "posuto hash: could not restore terminal echo\n");
	return len;
}

int
cmd_hash_read_secret(const char *who, const char *what, char *buf,
    size_t bufsz)
{
	char again[PASSWORD_MAX + 2], prompt[64];
	FILE *tty;
	long len, len2;

	if (!isatty(STDIN_FILENO)) {
		len = read_line(stdin, buf, bufsz);
		if (len < 0) {
			fprintf(stderr, "%s: no %s on stdin (or longer than "
			    "%zu bytes)\n", who, what, bufsz - 2);
			return -1;
		}
		return (int)len;
	}
	tty = fopen("/dev/tty", "r+e");
	if (tty == NULL) {
		fprintf(stderr, "%s: /dev/tty: %s\n", who, strerror(errno));
		return -1;
	}
	(void)snprintf(prompt, sizeof(prompt), "%c%s: ",
	    toupper((unsigned char)what[0]), what + 1);
	len = prompt_tty(tty, prompt, buf, bufsz);
	(void)snprintf(prompt, sizeof(prompt), "Retype %s: ", what);
	len2 = len < 0 ? -1 :
	    prompt_tty(tty, prompt, again, sizeof(again) < bufsz ?
	    sizeof(again) : bufsz);
	fclose(tty);
	if (len < 0 || len2 < 0) {
		fprintf(stderr, "%s: could not read the %s\n", who, what);
		len = -1;
	} else if (len != len2 || !ct_memeq(buf, again, (size_t)len)) {
		fprintf(stderr, "%s: %ss do not match\n", who,
		    what);
		len = -1;
	}
	explicit_bzero(again, sizeof(again));
	return (int)len;
}

int
cmd_hash(int argc, char **argv)
{
	const char *scheme = CMD_HASH_DEFAULT_SCHEME;
	char pw[PASSWORD_MAX + 2];
	const char *jdx, *out;
	char *stored;
	bool known = false;
	int len;

	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];

		if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
			usage(stdout);
			return 0;
		} else if (strcmp(a, "--scheme") == 0 || strcmp(a, "-s") == 0) {
			if (++i == argc) {
				fprintf(stderr, "posuto hash: %s needs a "
				    "scheme\n", a);
				usage(stderr);
				return EXIT_USAGE;
			}
			scheme = argv[i];
		} else if (strncmp(a, "--scheme=", 9) == 0) {
			scheme = a + 9;
		} else {
			fprintf(stderr, "posuto hash: unknown argument '%s'\n",
			    a);
			usage(stderr);
			return EXIT_USAGE;
		}
	}
	for (const char *const *s = passwd_schemes(); *s != NULL; s++) {
		if (ascii_caseeq(*s, scheme))
			known = true;
	}
	if (!known) {
		fprintf(stderr, "posuto hash: unknown scheme '%s'\n", scheme);
		usage(stderr);
		return EXIT_USAGE;
	}
	len = cmd_hash_read_secret("posuto hash", "password", pw, sizeof(pw));
	if (len < 0)
		return 1;
	if (len == 0) {
		fprintf(stderr, "posuto hash: empty password refused\n");
		return 1;
	}
	jdx = hash_jumbodogx_scheme(scheme);
	stored = passwd_hash(jdx != NULL ? jdx : scheme, pw, (size_t)len);
	explicit_bzero(pw, sizeof(pw));
	if (stored == NULL) {
		fprintf(stderr, "posuto hash: cannot hash this password with "
		    "%s\n", scheme);
		return 1;
	}
	/* "{SHA256.HEX}" + hex: JumboDogX keeps only the hex. */
	out = stored;
	if (jdx != NULL && strchr(stored, '}') != NULL)
		out = strchr(stored, '}') + 1;
	printf("%s\n", out);
	free_secret(stored);
	if (fflush(stdout) != 0 || ferror(stdout)) {
		fprintf(stderr, "posuto hash: write error: %s\n",
		    strerror(errno));
		return 1;
	}
	return 0;
}
