/*
 * config_schema.h - the table-driven settings schema (private to config/).
 *
 * Every JSON key is one row of a section table: its name, what kind of
 * value it takes, where it is stored (offsetof into the section's struct),
 * its default and an optional validator, in the spirit of nginx's
 * ngx_command_t and Dovecot's setting_define.  One generic walker uses the
 * rows to fill in defaults, parse, dump and free, so adding a key is adding
 * a row.  Checks that involve several keys live in the section's verify
 * hook.
 */
#ifndef POSUTO_CONFIG_SCHEMA_H
#define POSUTO_CONFIG_SCHEMA_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "config/config.h"
#include "config/json_loc.h"

/* Largest config file we read: a Users[] list of ~200k entries fits, and a
 * bigger file is far more likely a mistake (wrong path) than a config. */
#define CONFIG_MAX_FILE_SIZE	(64u * 1024 * 1024)

/* State of one config_load(): where messages go and how many there were. */
struct config_ctx {
	const char *file;		/* as given to config_load() */
	const struct json_loc *loc;
	FILE *errs;
	char *dir;			/* absolute directory of file, no trailing '/' */
	unsigned n_errors;
	unsigned n_warnings;
};

enum config_at {
	CONFIG_AT_KEY,		/* point at the key (unknown or misplaced key) */
	CONFIG_AT_VALUE,	/* point at the value (wrong type, bad value) */
};

/* Writes "[warning: ]FILE:LINE:COL: PATH: message".  A path not in the
 * file (a default, a missing key) is reported at its nearest ancestor. */
void config_report(struct config_ctx *ctx, bool error, const char *path,
    enum config_at at, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
#define config_error(ctx, path, at, ...) \
	config_report(ctx, true, path, at, __VA_ARGS__)
#define config_warning(ctx, path, at, ...) \
	config_report(ctx, false, path, at, __VA_ARGS__)

enum config_kind {
	CONFIG_BOOL,		/* bool */
	CONFIG_UINT,		/* unsigned, in [min, max] */
	CONFIG_U16,		/* uint16_t, in [min, max] */
	CONFIG_STRING,		/* char *, non-empty, no control characters */
	CONFIG_PATH,		/* CONFIG_STRING made absolute against the
				 * config file's directory */
	CONFIG_TEMPLATE,	/* mailbox template (%u %n %d %h %%), made
				 * absolute like CONFIG_PATH */
	CONFIG_SECRET,		/* char *, any non-empty text, dumped as
				 * "<hidden>", wiped when freed */
	CONFIG_ENUM,		/* int-sized enum, by name from names[] */
	CONFIG_OBJECT,		/* nested section stored at offset */
	CONFIG_CUSTOM,		/* set/dump/free hooks do everything */
};

/* Row flags. */
#define CONFIG_F_REQUIRED	0x1u	/* missing key is an error */
#define CONFIG_F_NODUMP		0x2u	/* input only (folded into other fields) */
#define CONFIG_F_ANYTYPE	0x4u	/* CONFIG_CUSTOM: the set hook checks the
					 * JSON type (a number or a word) */

struct config_enum_name {
	const char *name;
	int value;
};

struct config_section;
struct config_setting;

/* Hooks of a CONFIG_CUSTOM row.  v has already been type-checked against
 * the row's jtype. */
typedef void config_set_fn(struct config_ctx *ctx,
    const struct config_setting *row, json_t *v, const char *path,
    void *base);
typedef json_t *config_dump_fn(const struct config_setting *row,
    const void *base);
typedef void config_free_fn(const struct config_setting *row, void *base);
/* Extra check of a string value; false and *why_r set if it is bad. */
typedef bool config_check_fn(const char *value, const char **why_r);

struct config_setting {
	const char *key;		/* JSON key, PascalCase as JumboDogX */
	enum config_kind kind;
	size_t offset;			/* offsetof into the section's struct */
	unsigned flags;
	long long min, max;		/* CONFIG_UINT / CONFIG_U16 range */
	long long def_int;		/* default of BOOL, UINT, U16, ENUM */
	const char *def_str;		/* default of string kinds, or NULL */
	const struct config_enum_name *names;	/* CONFIG_ENUM, NULL-ended */
	config_check_fn *check;		/* string kinds; NULL = no extra check */
	const struct config_section *sub;	/* CONFIG_OBJECT */
	json_type jtype;		/* CONFIG_CUSTOM: JSON type wanted */
	config_set_fn *set;		/* CONFIG_CUSTOM */
	config_dump_fn *dump;		/* CONFIG_CUSTOM; NULL = not dumped */
	config_free_fn *free;		/* CONFIG_CUSTOM; NULL = nothing owned */
};

/* Cross-key checks once every key of an object has been read; seen has
 * bit i set if row i was given in the file. */
typedef void config_verify_fn(struct config_ctx *ctx, const char *path,
    void *base, uint64_t seen);

struct config_section {
	const struct config_setting *rows;
	size_t n_rows;			/* at most 64 (the seen mask) */
	config_verify_fn *verify;	/* NULL = none */
	const char *unknown_note;	/* text of the unknown-key warning */
};

/* The generic walker (config_walk.c). */
void config_section_defaults(const struct config_section *sec, void *base);
/* Parses obj (a JSON object) into base, reporting problems; returns the
 * seen mask.  Defaults must already be in place. */
uint64_t config_section_parse(struct config_ctx *ctx,
    const struct config_section *sec, json_t *obj, const char *path,
    void *base);
json_t *config_section_dump(const struct config_section *sec,
    const void *base);
void config_section_free(const struct config_section *sec, void *base);
/* Index of the row named key in sec (for seen-mask tests). */
size_t config_section_row(const struct config_section *sec, const char *key);
#define CONFIG_SEEN(sec, seen, key) \
	(((seen) >> config_section_row((sec), (key))) & 1u)

/*
 * The internal form of a loaded file.  The public struct comes first so a
 * struct posuto_config * handed out by config_load() is also a pointer to
 * this, which config_free() relies on.
 */
struct config_server {
	struct posuto_config cfg;
	char *bind_address;		/* BindAddress (folded into listens) */
	unsigned port;			/* Port (folded into listens) */
};

/* The top-level object: { "Pop3Server": {...}, other servers ignored }. */
extern const struct config_section config_root_section;
/* The "Pop3Server" object. */
extern const struct config_section config_server_section;

/* "an integer", "a string", ... for messages. */
const char *config_json_type_name(json_type t);
/* Doubles every '%' so text can be put into a mailbox template. */
char *config_template_escape(const char *s);

/* "maildir:/var/mail/%u" (format lower-cased) for check-config: the
 * store location (store.h) that format and template make. */
json_t *config_location_json(const char *format, const char *tmpl);

/* Mailbox template syntax check (also used for per-user MailboxPath). */
bool config_template_valid(const char *tmpl, const char **why_r);

/* Where parent's key (or parent itself if key is NULL) is in the file,
 * at its value, for config_where(); 0:0 if not even an ancestor is. */
void config_pos(struct config_ctx *ctx, const char *parent, const char *key,
    struct config_where_pos *pos_r);

#endif
