/* log.c - stderr or syslog; one line per event. */
#include <stdatomic.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>

#include "lib/log.h"

static const char *log_progname = "posuto";
static bool log_to_syslog;
/* A reload sets it while every event loop and worker logs. */
static atomic_int log_level_cur = LOG_LVL_INFO;

static const char *const level_names[] = {
	[LOG_LVL_ERROR] = "error",
	[LOG_LVL_WARN] = "warn",
	[LOG_LVL_INFO] = "info",
	[LOG_LVL_DEBUG] = "debug",
};

void
log_init(const char *progname, bool use_syslog, enum log_level level)
{
	log_progname = progname;
	log_to_syslog = use_syslog;
	atomic_store_explicit(&log_level_cur, (int)level, memory_order_relaxed);
	if (use_syslog)
		openlog(progname, LOG_PID | LOG_NDELAY, LOG_MAIL);
}

void
log_set_level(enum log_level level)
{
	atomic_store_explicit(&log_level_cur, (int)level, memory_order_relaxed);
}

enum log_level
log_get_level(void)
{
	return (enum log_level)atomic_load_explicit(&log_level_cur,
	    memory_order_relaxed);
}

bool
log_level_parse(const char *name, enum log_level *level_r)
{
	for (size_t i = 0; i < sizeof(level_names) / sizeof(level_names[0]); i++) {
		if (strcmp(name, level_names[i]) == 0) {
			*level_r = (enum log_level)i;
			return true;
		}
	}
	return false;
}

const char *
log_level_name(enum log_level level)
{
	if ((size_t)level >= sizeof(level_names) / sizeof(level_names[0]))
		return "?";
	return level_names[level];
}

static void log_vmsg(enum log_level level, const char *suffix,
    const char *fmt, va_list ap) __attribute__((format(printf, 3, 0)));

static void
log_vmsg(enum log_level level, const char *suffix, const char *fmt,
    va_list ap)
{
	char line[2048];
	int n;

	if ((int)level > atomic_load_explicit(&log_level_cur,
	    memory_order_relaxed))
		return;
	n = vsnprintf(line, sizeof(line), fmt, ap);
	if (n < 0)
		return;
	if (log_to_syslog) {
		static const int prio[] = { LOG_ERR, LOG_WARNING, LOG_INFO,
		    LOG_DEBUG };
		syslog(prio[level], "%s%s", line, suffix);
		return;
	}
	struct timespec ts;
	struct tm tm;
	char tbuf[32];
	clock_gettime(CLOCK_REALTIME, &ts);
	localtime_r(&ts.tv_sec, &tm);
	strftime(tbuf, sizeof(tbuf), "%Y-%m-%dT%H:%M:%S", &tm);
	/* One fprintf per line so concurrent threads do not interleave. */
	fprintf(stderr, "%s.%03ld %s %s: %s%s\n", tbuf, ts.tv_nsec / 1000000,
	    log_progname, level_names[level], line, suffix);
}

void
log_msg(enum log_level level, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vmsg(level, "", fmt, ap);
	va_end(ap);
}

void
log_warn(const char *fmt, ...)
{
	char suffix[256];
	va_list ap;

	snprintf(suffix, sizeof(suffix), ": %s", strerror(errno));
	va_start(ap, fmt);
	log_vmsg(LOG_LVL_WARN, suffix, fmt, ap);
	va_end(ap);
}

void
fatal(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vmsg(LOG_LVL_ERROR, "", fmt, ap);
	va_end(ap);
	exit(1);
}

void
fatalx(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vmsg(LOG_LVL_ERROR, " (internal error)", fmt, ap);
	va_end(ap);
	abort();
}

char *
log_sanitize(char *dst, size_t dstsz, const char *src, size_t len)
{
	size_t i;

	if (dstsz == 0)
		return dst;
	for (i = 0; i < len && i + 1 < dstsz; i++) {
		unsigned char c = (unsigned char)src[i];
		dst[i] = (c >= 0x20 && c < 0x7f) ? (char)c : '?';
	}
	dst[i] = '\0';
	return dst;
}
