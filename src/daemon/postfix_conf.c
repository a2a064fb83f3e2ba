/* postfix_conf.c - postconf(1) and postmap(1), run without a shell. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "daemon/postfix_conf.h"
#include "lib/xmalloc.h"

/* What a child's stderr may tell us: its first lines are enough. */
#define POSTFIX_CONF_ERR_MAX	2048
/* PATH when none is set, as login(1) gives root. */
#define POSTFIX_CONF_PATH	"/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

static const char *const postfix_conf_names[POSTFIX_PARAM_COUNT] = {
	[POSTFIX_HOME_MAILBOX] = "home_mailbox",
	[POSTFIX_MAIL_SPOOL_DIRECTORY] = "mail_spool_directory",
	[POSTFIX_MAILBOX_COMMAND] = "mailbox_command",
	[POSTFIX_MAILBOX_TRANSPORT] = "mailbox_transport",
	[POSTFIX_VIRTUAL_MAILBOX_BASE] = "virtual_mailbox_base",
	[POSTFIX_VIRTUAL_TRANSPORT] = "virtual_transport",
	[POSTFIX_VIRTUAL_MAILBOX_MAPS] = "virtual_mailbox_maps",
	[POSTFIX_VIRTUAL_MAILBOX_DOMAINS] = "virtual_mailbox_domains",
	[POSTFIX_MYDESTINATION] = "mydestination",
};

struct postfix_conf_out {
	char *buf;
	size_t len, max;
	bool overflow;
};

const char *
postfix_conf_param_name(enum postfix_param p)
{
	return p < POSTFIX_PARAM_COUNT ? postfix_conf_names[p] : "?";
}

const char *
postfix_conf_get(const struct postfix_conf *pc, enum postfix_param p)
{
	return p < POSTFIX_PARAM_COUNT && pc->values[p] != NULL ?
	    pc->values[p] : "";
}

/* First absolute PATH entry holding an executable name; NULL if none. */
static char *
postfix_conf_which(const char *name)
{
	const char *path = getenv("PATH");
	char buf[4096];

	if (path == NULL || *path == '\0')
		path = POSTFIX_CONF_PATH;
	while (*path != '\0') {
		const char *end = strchr(path, ':');
		size_t n = end != NULL ? (size_t)(end - path) : strlen(path);

		/* A relative entry would run whatever the current directory
		 * holds: never. */
		if (n > 0 && path[0] == '/' &&
		    (size_t)snprintf(buf, sizeof(buf), "%.*s/%s", (int)n, path,
		    name) < sizeof(buf) && access(buf, X_OK) == 0)
			return xstrdup(buf);
		path += n;
		if (*path == ':')
			path++;
	}
	return NULL;
}

static void
postfix_conf_take(struct postfix_conf_out *o, const char *p, size_t n)
{
	size_t room = o->max - o->len;

	if (n > room) {
		n = room;
		o->overflow = true;
	}
	memcpy(o->buf + o->len, p, n);
	o->len += n;
	o->buf[o->len] = '\0';
}

static long
postfix_conf_ms_since(const struct timespec *t0)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (long)(now.tv_sec - t0->tv_sec) * 1000 +
	    (now.tv_nsec - t0->tv_nsec) / 1000000;
}

/*
 * Runs argv[0] with argv, stdout into *out (at most POSTFIX_CONF_OUT_MAX),
 * stderr into errbuf (truncated).  Returns the exit status (0..255), or
 * -1 if it could not run, was killed, timed out or printed too much
 * (reason in errbuf).
 */
static int
postfix_conf_run(char *const argv[], struct postfix_conf_out *out,
    char *errbuf, size_t errsz)
{
	static char env_path[] = "PATH=/usr/sbin:/usr/bin:/sbin:/bin";
	static char env_lang[] = "LC_ALL=C";
	char *const envp[] = { env_path, env_lang, NULL };
	struct postfix_conf_out err = { .max = errsz - 1 };
	struct pollfd pfd[2];
	struct timespec t0;
	int po[2], pe[2], status, n_open = 2;
	bool killed = false;
	pid_t pid;

	out->buf = xmalloc(POSTFIX_CONF_OUT_MAX + 1);
	out->buf[0] = '\0';
	out->len = 0;
	out->max = POSTFIX_CONF_OUT_MAX;
	out->overflow = false;
	err.buf = errbuf;
	errbuf[0] = '\0';
	if (pipe2(po, O_CLOEXEC) == -1) {
		snprintf(errbuf, errsz, "pipe: %s", strerror(errno));
		return -1;
	}
	if (pipe2(pe, O_CLOEXEC) == -1) {
		snprintf(errbuf, errsz, "pipe: %s", strerror(errno));
		close(po[0]);
		close(po[1]);
		return -1;
	}
	fflush(NULL);	/* a child must not write our buffered output again */
	pid = fork();
	if (pid == -1) {
		snprintf(errbuf, errsz, "fork: %s", strerror(errno));
		close(po[0]);
		close(po[1]);
		close(pe[0]);
		close(pe[1]);
		return -1;
	}
	if (pid == 0) {
		int null = open("/dev/null", O_RDONLY | O_CLOEXEC);

		if (null == -1 || dup2(null, 0) == -1 || dup2(po[1], 1) == -1 ||
		    dup2(pe[1], 2) == -1)
			_exit(127);
		execve(argv[0], argv, envp);
		_exit(127);
	}
	close(po[1]);
	close(pe[1]);
	pfd[0] = (struct pollfd){ .fd = po[0], .events = POLLIN };
	pfd[1] = (struct pollfd){ .fd = pe[0], .events = POLLIN };
	clock_gettime(CLOCK_MONOTONIC, &t0);
	while (n_open > 0) {
		long left = POSTFIX_CONF_TIMEOUT_MS - postfix_conf_ms_since(&t0);
		int r;

		if (left <= 0 || out->overflow) {
			(void)kill(pid, SIGKILL);
			killed = true;
			break;
		}
		r = poll(pfd, 2, (int)left);
		if (r == -1 && errno == EINTR)
			continue;
		if (r == -1)
			break;
		for (int i = 0; i < 2; i++) {
			char chunk[4096];
			ssize_t k;

			if (pfd[i].fd == -1 || pfd[i].revents == 0)
				continue;
			k = read(pfd[i].fd, chunk, sizeof(chunk));
			if (k == -1 && errno == EINTR)
				continue;
			if (k <= 0) {
				close(pfd[i].fd);
				pfd[i].fd = -1;
				n_open--;
				continue;
			}
			if (i == 0)
				postfix_conf_take(out, chunk, (size_t)k);
			else if (!err.overflow)
				postfix_conf_take(&err, chunk, (size_t)k);
		}
	}
	for (int i = 0; i < 2; i++)
		if (pfd[i].fd != -1)
			close(pfd[i].fd);
	while (waitpid(pid, &status, 0) == -1) {
		if (errno != EINTR) {
			snprintf(errbuf, errsz, "waitpid: %s", strerror(errno));
			return -1;
		}
	}
	if (killed) {
		snprintf(errbuf, errsz, "%s %s", argv[0], out->overflow ?
		    "printed more than we read" : "did not finish in time");
		return -1;
	}
	if (!WIFEXITED(status)) {
		snprintf(errbuf, errsz, "%s was killed by signal %d", argv[0],
		    WIFSIGNALED(status) ? WTERMSIG(status) : 0);
		return -1;
	}
	/* Keep the first line of stderr only: postconf's "fatal: ..." */
	errbuf[strcspn(errbuf, "\n")] = '\0';
	return WEXITSTATUS(status);
}

/* "name = value" lines into pc->values. */
static void
postfix_conf_parse(struct postfix_conf *pc, char *text)
{
	char *line = text;

	while (line != NULL && *line != '\0') {
		char *nl = strchr(line, '\n');
		char *eq;

		if (nl != NULL)
			*nl = '\0';
		eq = strstr(line, " =");
		if (eq != NULL) {
			const char *val = eq + 2;

			*eq = '\0';
			if (*val == ' ')
				val++;
			for (size_t i = 0; i < POSTFIX_PARAM_COUNT; i++) {
				if (strcmp(line, postfix_conf_names[i]) == 0 &&
				    pc->values[i] == NULL)
					pc->values[i] = xstrdup(val);
			}
		}
		line = nl != NULL ? nl + 1 : NULL;
	}
}

enum postfix_conf_status
postfix_conf_read(const char *config_dir, struct postfix_conf *pc, char *err,
    size_t errsz)
{
	char *argv[4 + POSTFIX_PARAM_COUNT + 1];
	char path[4096], msg[POSTFIX_CONF_ERR_MAX];
	struct postfix_conf_out out;
	struct stat st;
	size_t n = 0;
	int rc;

	memset(pc, 0, sizeof(*pc));
	pc->config_dir = xstrdup(config_dir != NULL ? config_dir :
	    POSTFIX_CONF_DEFAULT_DIR);
	pc->postconf = postfix_conf_which("postconf");
	if (pc->postconf == NULL) {
		snprintf(err, errsz, "postconf is not on PATH");
		return POSTFIX_CONF_NO_POSTCONF;
	}
	snprintf(path, sizeof(path), "%s", pc->postconf);
	*strrchr(path, '/') = '\0';
	pc->postmap = xmalloc(strlen(path) + sizeof("/postmap"));
	memcpy(pc->postmap, path, strlen(path));
	memcpy(pc->postmap + strlen(path), "/postmap", sizeof("/postmap"));

	if ((size_t)snprintf(path, sizeof(path), "%s/main.cf",
	    pc->config_dir) >= sizeof(path) || stat(path, &st) == -1) {
		snprintf(err, errsz, "%s: %s", path, strerror(errno));
		return POSTFIX_CONF_NO_MAIN_CF;
	}
	/* execve() takes char *const[]: copies, so nothing const is cast. */
	argv[n++] = xstrdup(pc->postconf);
	argv[n++] = xstrdup("-c");
	argv[n++] = xstrdup(pc->config_dir);
	argv[n++] = xstrdup("-x");
	for (size_t i = 0; i < POSTFIX_PARAM_COUNT; i++)
		argv[n++] = xstrdup(postfix_conf_names[i]);
	argv[n] = NULL;
	rc = postfix_conf_run(argv, &out, msg, sizeof(msg));
	for (size_t i = 0; i < n; i++)
		free(argv[i]);
	if (rc != 0) {
		snprintf(err, errsz, "%s -c %s failed%s%s", pc->postconf,
		    pc->config_dir, msg[0] != '\0' ? ": " : "", msg);
		free(out.buf);
		return POSTFIX_CONF_FAILED;
	}
	postfix_conf_parse(pc, out.buf);
	free(out.buf);
	return POSTFIX_CONF_OK;
}

/* Shared by the two lookups: 1 with the first line of stdout, 0 if the
 * tool printed nothing and said nothing, -1 otherwise. */
static int
postfix_conf_query(const char *const args[], char **value_r, char *err,
    size_t errsz)
{
	char msg[POSTFIX_CONF_ERR_MAX];
	char *argv[8];
	struct postfix_conf_out out;
	size_t n = 0;
	int rc;

	*value_r = NULL;
	while (args[n] != NULL && n < sizeof(argv) / sizeof(argv[0]) - 1) {
		argv[n] = xstrdup(args[n]);
		n++;
	}
	argv[n] = NULL;
	rc = postfix_conf_run(argv, &out, msg, sizeof(msg));
	for (size_t i = 0; i < n; i++)
		free(argv[i]);
	out.buf[strcspn(out.buf, "\n")] = '\0';
	if (rc >= 0 && out.buf[0] != '\0') {
		*value_r = out.buf;
		return 1;
	}
	free(out.buf);
	/* postmap -q exits 1 and says nothing for a missing key; postconf
	 * -M warns "unmatched request" and exits 0. */
	if (rc >= 0 && (msg[0] == '\0' || strstr(msg, "unmatched") != NULL))
		return 0;
	snprintf(err, errsz, "%s", msg[0] != '\0' ? msg : "failed");
	return -1;
}

int
postfix_conf_map_query(const struct postfix_conf *pc, const char *map,
    const char *key, char **value_r, char *err, size_t errsz)
{
	const char *const argv[] = { pc->postmap, "-c", pc->config_dir, "-q",
	    key, map, NULL };

	return postfix_conf_query(argv, value_r, err, errsz);
}

int
postfix_conf_service(const struct postfix_conf *pc, const char *service,
    char **line_r, char *err, size_t errsz)
{
	char name[256];
	const char *const argv[] = { pc->postconf, "-c", pc->config_dir, "-M",
	    name, NULL };

	if ((size_t)snprintf(name, sizeof(name), "%s/unix", service) >=
	    sizeof(name)) {
		snprintf(err, errsz, "transport name too long");
		return -1;
	}
	return postfix_conf_query(argv, line_r, err, errsz);
}

void
postfix_conf_free(struct postfix_conf *pc)
{
	free(pc->config_dir);
	free(pc->postconf);
	free(pc->postmap);
	for (size_t i = 0; i < POSTFIX_PARAM_COUNT; i++)
		free(pc->values[i]);
	memset(pc, 0, sizeof(*pc));
}
