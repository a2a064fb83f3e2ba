/* log.h - the one logging API: stderr or syslog, printf-checked. */
#ifndef POSUTO_LOG_H
#define POSUTO_LOG_H

#include <stdbool.h>
#include <stddef.h>

enum log_level {
	LOG_LVL_ERROR = 0,
	LOG_LVL_WARN,
	LOG_LVL_INFO,
	LOG_LVL_DEBUG,
};

#define LOG_PRINTF(a, b) __attribute__((format(printf, a, b)))

void log_init(const char *progname, bool use_syslog, enum log_level level);
void log_set_level(enum log_level level);
enum log_level log_get_level(void);
/* Parses "error", "warn", "info", "debug"; returns false if unknown. */
bool log_level_parse(const char *name, enum log_level *level_r);
const char *log_level_name(enum log_level level);

void log_msg(enum log_level level, const char *fmt, ...) LOG_PRINTF(2, 3);
#define log_error(...) log_msg(LOG_LVL_ERROR, __VA_ARGS__)
#define log_warnx(...) log_msg(LOG_LVL_WARN, __VA_ARGS__)
#define log_info(...)  log_msg(LOG_LVL_INFO, __VA_ARGS__)
#define log_debug(...) log_msg(LOG_LVL_DEBUG, __VA_ARGS__)
/* Like log_warnx, with ": strerror(errno)" appended. */
void log_warn(const char *fmt, ...) LOG_PRINTF(1, 2);

/* Unrecoverable setup failure or out of memory: log and exit(1). */
_Noreturn void fatal(const char *fmt, ...) LOG_PRINTF(1, 2);
/* A programmer bug (impossible state): log and abort(). */
_Noreturn void fatalx(const char *fmt, ...) LOG_PRINTF(1, 2);

/*
 * Copies client-supplied text for logging: non-printable bytes become '?',
 * the result is NUL-terminated and truncated to dstsz-1 bytes.
 * Returns dst.
 */
char *log_sanitize(char *dst, size_t dstsz, const char *src, size_t len);

#endif
