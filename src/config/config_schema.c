/*
 * config_schema.c - the settings tables: one row per JSON key.
 *
 * One table per JSON object (Pop3Server, Tls, Listen[], Users[]), with the
 * hooks for what a row cannot say (arrays, cross-key checks, password
 * notation).  config_walk.c applies the rows.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config/config_schema.h"
#include "lib/cidr.h"
#include "lib/params.h"
#include "lib/strutil.h"
#include "lib/xmalloc.h"

/* Enums are stored through int: make sure that is their size. */
_Static_assert(sizeof(enum listen_tls) == sizeof(int), "enum size");
_Static_assert(sizeof(enum log_level) == sizeof(int), "enum size");
_Static_assert(sizeof(enum sql_driver_kind) == sizeof(int), "enum size");
_Static_assert(sizeof(enum sql_schema_kind) == sizeof(int), "enum size");
_Static_assert(sizeof(enum sql_tpops_mailbox) == sizeof(int), "enum size");

/* ------------------------------------------------------------------ */
/* Value checks                                                        */

static bool
check_ip(const char *s, const char **why_r)
{
	unsigned char buf[sizeof(struct in6_addr)];

	if (inet_pton(AF_INET, s, buf) == 1 || inet_pton(AF_INET6, s, buf) == 1)
		return true;
	*why_r = "not a numeric IPv4 or IPv6 address (host names are not "
	    "resolved; write \"::\" or \"0.0.0.0\" for all)";
	return false;
}

/* A socket's permission bits, octal ("0660"). */
static bool
check_mode(const char *s, const char **why_r)
{
	size_t n = strlen(s);

	if (n < 3 || n > 4 || strspn(s, "01234567") != n) {
		*why_r = "must be octal permission bits, like \"0660\"";
		return false;
	}
	return true;
}

static bool
check_cidr_list(const char *s, const char **why_r)
{
	if (cidr_list_parse(s, NULL, NULL, NULL))
		return true;
	*why_r = "not a list of numeric addresses or address/prefix blocks "
	    "(\"127.0.0.1 10.0.0.0/8\")";
	return false;
}

static bool
check_hostname(const char *s, const char **why_r)
{
	size_t len = strlen(s);

	/* It goes into the greeting and the APOP timestamp <pid.time@host>. */
	if (len > 253) {
		*why_r = "longer than 253 characters";
		return false;
	}
	for (const char *p = s; *p != '\0'; p++) {
		if (!isalnum((unsigned char)*p) && *p != '.' && *p != '-' &&
		    *p != '_') {
			*why_r = "may hold only letters, digits, '.', '-', '_'";
			return false;
		}
	}
	return true;
}

static bool
check_system_user(const char *s, const char **why_r)
{
	if (strlen(s) > 32 || s[0] == '-') {
		*why_r = "not a valid system user name";
		return false;
	}
	for (const char *p = s; *p != '\0'; p++) {
		if (!isalnum((unsigned char)*p) && *p != '.' && *p != '-' &&
		    *p != '_') {
			*why_r = "not a valid system user name";
			return false;
		}
	}
	return true;
}

static bool
check_file_name(const char *s, const char **why_r)
{
	size_t len = strlen(s);

	if (s[len - 1] == '/' || strcmp(s, ".") == 0 || strcmp(s, "..") == 0 ||
	    (len >= 2 && strcmp(s + len - 2, "/.") == 0) ||
	    (len >= 3 && strcmp(s + len - 3, "/..") == 0)) {
		*why_r = "names a directory; give a file name";
		return false;
	}
	return true;
}

static bool
check_tls_version(const char *s, const char **why_r)
{
	if (strcmp(s, "TLSv1.2") == 0 || strcmp(s, "TLSv1.3") == 0)
		return true;
	*why_r = "must be \"TLSv1.2\" or \"TLSv1.3\"";
	return false;
}

bool
config_template_valid(const char *tmpl, const char **why_r)
{
	for (const char *p = tmpl; *p != '\0'; p++) {
		if (*p != '%')
			continue;
		p++;
		switch (*p) {
		case 'u':
		case 'n':
		case 'd':
		case 'h':
		case '%':
			break;
		case '\0':
			*why_r = "ends in a lone '%' (write %% for a percent "
			    "sign)";
			return false;
		default:
			*why_r = "unknown %-sequence (use %u, %n, %d, %h or %%)";
			return false;
		}
	}
	return true;
}

/* True if tmpl uses %h (a home directory only passwd-file users have). */
static bool
config_template_uses_home(const char *tmpl)
{
	for (const char *p = tmpl; *p != '\0'; p++) {
		if (*p == '%') {
			p++;
			if (*p == 'h')
				return true;
			if (*p == '\0')
				break;
		}
	}
	return false;
}

/* ------------------------------------------------------------------ */
/* Enum names                                                          */

/* MailboxFormat: the store drivers' names (store.h store_driver_find(),
 * test_store_contract.c checks they agree) and "auto".  Kept as given:
 * the store resolves it, case-insensitively. */
static const char *const mbox_format_names[] = {
	"auto", "maildir", "emldir", "mbox", "sql", NULL,
};

static bool
mailbox_format_valid(const char *s, const char **why_r)
{
	for (size_t i = 0; mbox_format_names[i] != NULL; i++)
		if (ascii_caseeq(s, mbox_format_names[i]))
			return true;
	*why_r = "must be one of \"auto\", \"maildir\", \"emldir\", "
	    "\"mbox\", \"sql\"";
	return false;
}

/* UidlCompat / UidlFormat: the store expands them (store/uidl_compat.h,
 * which keeps the same names); config only knows their shape. */
static bool
uidl_compat_valid(const char *s, const char **why_r)
{
	static const char *const names[] = {
		"auto", "none", "dovecot", "courier", "uw", "qpopper", "tpops",
		NULL,
	};

	for (size_t i = 0; names[i] != NULL; i++)
		if (ascii_caseeq(s, names[i]))
			return true;
	*why_r = "must be one of \"auto\", \"none\", \"dovecot\", "
	    "\"courier\", \"uw\", \"qpopper\", \"tpops\"";
	return false;
}

/* Dovecot 2.3 pop3_uidl_format: %[-][0][width][.[0][-]width][LUXRMT]var,
 * var one of v u m f g % or {uidvalidity} {uid} {md5} {filename} {guid}. */
static bool
uidl_format_valid(const char *s, const char **why_r)
{
	static const char *const longs[] = {
		"{uidvalidity}", "{uid}", "{md5}", "{filename}", "{guid}", NULL,
	};

	*why_r = "is not a pop3_uidl_format posuto can expand (variables "
	    "%v %u %m %f %g, modifiers L U X R M T, printable ASCII)";
	if (*s == '\0' || strlen(s) > 120)
		return false;
	for (const char *p = s; *p != '\0'; p++) {
		size_t i;

		if ((unsigned char)*p < 0x21 || (unsigned char)*p > 0x7e)
			return false;
		if (*p != '%')
			continue;
		p++;
		if (*p == '-')
			p++;
		while (*p >= '0' && *p <= '9')
			p++;
		if (*p == '.') {
			p++;
			if (*p == '-')
				p++;
			while (*p >= '0' && *p <= '9')
				p++;
		}
		while (*p != '\0' && strchr("LUXRMT", *p) != NULL)
			p++;
		if (*p != '\0' && strchr("vumfg%", *p) != NULL)
			continue;
		for (i = 0; longs[i] != NULL; i++)
			if (strncmp(p, longs[i], strlen(longs[i])) == 0)
				break;
		if (longs[i] == NULL)
			return false;
		p += strlen(longs[i]) - 1;
	}
	return true;
}

static const struct config_enum_name listen_tls_names[] = {
	{ "none", LISTEN_TLS_NONE },
	{ "implicit", LISTEN_TLS_IMPLICIT },
	{ "starttls", LISTEN_TLS_STARTTLS },
	{ NULL, 0 },
};

static const struct config_enum_name listen_proto_names[] = {
	{ "pop3", LISTEN_PROTO_POP3 },
	{ "lmtp", LISTEN_PROTO_LMTP },
	{ "smtp-sink", LISTEN_PROTO_SMTP_SINK },
	{ NULL, 0 },
};

/* Same names as log_level_parse() in lib/log.c. */
static const struct config_enum_name log_level_names[] = {
	{ "error", LOG_LVL_ERROR },
	{ "warn", LOG_LVL_WARN },
	{ "info", LOG_LVL_INFO },
	{ "debug", LOG_LVL_DEBUG },
	{ NULL, 0 },
};

enum config_hash_type {
	CONFIG_HASH_NONE = 0,	/* Password is already "{SCHEME}data" */
	CONFIG_HASH_SHA256,	/* JumboDogX: 64 hex digits */
	CONFIG_HASH_SHA512,	/* JumboDogX: 128 hex digits */
	CONFIG_HASH_PLAIN,
};

static const struct config_enum_name hash_type_names[] = {
	{ "SHA256", CONFIG_HASH_SHA256 },
	{ "SHA512", CONFIG_HASH_SHA512 },
	{ "PLAIN", CONFIG_HASH_PLAIN },
	{ NULL, 0 },
};

/* ------------------------------------------------------------------ */
/* Listen[]                                                            */

static void listen_verify(struct config_ctx *, const char *, void *,
    uint64_t);

static const struct config_setting listen_rows[] = {
	{ .key = "Address", .kind = CONFIG_STRING,
	  .offset = offsetof(struct listen_cfg, address), .check = check_ip },
	{ .key = "Port", .kind = CONFIG_U16,
	  .offset = offsetof(struct listen_cfg, port),
	  .min = 1, .max = 65535, .def_int = 110 },
	{ .key = "Tls", .kind = CONFIG_ENUM,
	  .offset = offsetof(struct listen_cfg, tls),
	  .names = listen_tls_names, .def_int = LISTEN_TLS_NONE },
	{ .key = "ProxyTrusted", .kind = CONFIG_STRING,
	  .offset = offsetof(struct listen_cfg, proxy_trusted),
	  .check = check_cidr_list },
	{ .key = "Protocol", .kind = CONFIG_ENUM,
	  .offset = offsetof(struct listen_cfg, protocol),
	  .names = listen_proto_names, .def_int = LISTEN_PROTO_POP3 },
	{ .key = "Path", .kind = CONFIG_PATH,
	  .offset = offsetof(struct listen_cfg, path) },
	{ .key = "Mode", .kind = CONFIG_STRING,
	  .offset = offsetof(struct listen_cfg, mode), .check = check_mode },
	{ .key = "Owner", .kind = CONFIG_STRING,
	  .offset = offsetof(struct listen_cfg, owner) },
	{ .key = "Group", .kind = CONFIG_STRING,
	  .offset = offsetof(struct listen_cfg, group) },
	{ .key = "AllowNonLoopback", .kind = CONFIG_BOOL,
	  .offset = offsetof(struct listen_cfg, allow_non_loopback) },
	/* Postfix's message_size_limit default (10 MB) is too small for a
	 * local hop that sees attachments; the body is streamed anyway. */
	{ .key = "MaxMessageSize", .kind = CONFIG_UINT,
	  .offset = offsetof(struct listen_cfg, max_message_size),
	  .min = 1024, .max = 512u << 20, .def_int = 64u << 20 },
};

static const struct config_section listen_section = {
	listen_rows, sizeof(listen_rows) / sizeof(listen_rows[0]),
	listen_verify, NULL,
};

static void
listen_verify(struct config_ctx *ctx, const char *path, void *base,
    uint64_t seen)
{
	struct listen_cfg *l = base;
	char *kp;

	if (!CONFIG_SEEN(&listen_section, seen, "Address") &&
	    !CONFIG_SEEN(&listen_section, seen, "Path")) {
		config_error(ctx, path, CONFIG_AT_VALUE, "missing required key "
		    "\"Address\" (or \"Path\", a unix socket for LMTP)");
		return;
	}
	if (CONFIG_SEEN(&listen_section, seen, "Address") &&
	    CONFIG_SEEN(&listen_section, seen, "Path")) {
		config_error(ctx, path, CONFIG_AT_VALUE, "Address and Path: "
		    "give one of them");
		return;
	}
	if (l->path != NULL && l->protocol != LISTEN_PROTO_LMTP) {
		kp = json_loc_path_key(path, "Path");
		config_error(ctx, kp, CONFIG_AT_KEY, "a unix socket serves "
		    "LMTP only (\"Protocol\": \"lmtp\")");
		free(kp);
	}
	if (l->path == NULL && (l->mode != NULL || l->owner != NULL ||
	    l->group != NULL)) {
		kp = json_loc_path_key(path, l->mode != NULL ? "Mode" :
		    l->owner != NULL ? "Owner" : "Group");
		config_error(ctx, kp, CONFIG_AT_KEY, "only for a unix socket "
		    "(Path)");
		free(kp);
	}
	if (l->protocol != LISTEN_PROTO_POP3 && l->tls != LISTEN_TLS_NONE) {
		kp = json_loc_path_key(path, "Tls");
		config_error(ctx, kp, CONFIG_AT_VALUE, "LMTP and the SMTP sink "
		    "are plain (a local hop)");
		free(kp);
	}
	/* Not for the internet: an open sink stores anyone's mail. */
	if (l->protocol == LISTEN_PROTO_SMTP_SINK && l->address != NULL &&
	    !l->allow_non_loopback && strncmp(l->address, "127.", 4) != 0 &&
	    strcmp(l->address, "::1") != 0) {
		kp = json_loc_path_key(path, "Address");
		config_error(ctx, kp, CONFIG_AT_VALUE, "the SMTP sink is for "
		    "development, not for the internet: bind a loopback "
		    "address, or set AllowNonLoopback");
		free(kp);
	}
	if (!CONFIG_SEEN(&listen_section, seen, "Port") &&
	    l->protocol == LISTEN_PROTO_LMTP)
		l->port = 24;
	if (!CONFIG_SEEN(&listen_section, seen, "Port") &&
	    l->protocol == LISTEN_PROTO_SMTP_SINK)
		l->port = 1025;
	/* RFC 8314: POP3S is 995, plain POP3 (with STLS) 110. */
	if (!CONFIG_SEEN(&listen_section, seen, "Port") &&
	    l->tls == LISTEN_TLS_IMPLICIT)
		l->port = 995;
}

/* An array of objects of one section (Listen[], Faults[]): each element
 * parsed into its own struct of size bytes, defaults first. */
static void *
section_array_parse(struct config_ctx *ctx, const struct config_section *sec,
    json_t *v, const char *path, size_t size)
{
	size_t n = json_array_size(v);
	char *items = xcalloc(n + 1, size);

	for (size_t i = 0; i < n; i++) {
		json_t *e = json_array_get(v, i);
		char *ep = json_loc_path_index(path, i);

		config_section_defaults(sec, items + i * size);
		if (!json_is_object(e))
			config_error(ctx, ep, CONFIG_AT_VALUE,
			    "expected an object, got %s",
			    config_json_type_name(json_typeof(e)));
		else
			(void)config_section_parse(ctx, sec, e, ep,
			    items + i * size);
		free(ep);
	}
	return items;
}

static void
listen_set(struct config_ctx *ctx, const struct config_setting *row,
    json_t *v, const char *path, void *base)
{
	struct posuto_config *cfg = base;
	size_t n = json_array_size(v);

	(void)row;
	if (n == 0) {
		config_error(ctx, path, CONFIG_AT_VALUE,
		    "must list at least one address");
		return;
	}
	cfg->listens = section_array_parse(ctx, &listen_section, v, path,
	    sizeof(*cfg->listens));
	cfg->n_listens = n;
}

/* Listen[], Users[] and Faults[] are arrays of one section each: dumped
 * and freed element by element the same way. */
static json_t *
section_array_dump(const struct config_section *sec, const void *items,
    size_t n, size_t size)
{
	json_t *a = json_array();

	for (size_t i = 0; i < n; i++)
		json_array_append_new(a,
		    config_section_dump(sec, (const char *)items + i * size));
	return a;
}

static void
section_array_free(const struct config_section *sec, void *items, size_t n,
    size_t size)
{
	for (size_t i = 0; i < n; i++)
		config_section_free(sec, (char *)items + i * size);
	free(items);
}

static json_t *
listen_dump(const struct config_setting *row, const void *base)
{
	const struct posuto_config *cfg = base;

	(void)row;
	return section_array_dump(&listen_section, cfg->listens,
	    cfg->n_listens, sizeof(*cfg->listens));
}

static void
listen_free(const struct config_setting *row, void *base)
{
	struct posuto_config *cfg = base;

	(void)row;
	section_array_free(&listen_section, cfg->listens, cfg->n_listens,
	    sizeof(*cfg->listens));
	cfg->listens = NULL;
	cfg->n_listens = 0;
}

/* ------------------------------------------------------------------ */
/* RFC 2449 policies: LoginDelay, Expire (server-wide and per user)     */

/* Expire: whole days after a message's first RETR, or "never".  The row's
 * offset locates an int in whichever struct the section fills. */
static void
expire_set(struct config_ctx *ctx, const struct config_setting *row,
    json_t *v, const char *path, void *base)
{
	int *f = (int *)(void *)((char *)base + row->offset);

	if (json_is_string(v) && ascii_caseeq(json_string_value(v), "never")) {
		*f = EXPIRE_NEVER;
		return;
	}
	if (!json_is_integer(v)) {
		config_error(ctx, path, CONFIG_AT_VALUE, "expected a number of "
		    "days or \"never\", got %s",
		    json_is_string(v) ? "another string" :
		    config_json_type_name(json_typeof(v)));
		return;
	}
	if (json_integer_value(v) < 0 ||
	    json_integer_value(v) > EXPIRE_MAX_DAYS) {
		config_error(ctx, path, CONFIG_AT_VALUE,
		    "%lld is out of range (0..%d days, or \"never\")",
		    (long long)json_integer_value(v), EXPIRE_MAX_DAYS);
		return;
	}
	*f = (int)json_integer_value(v);
}

static json_t *
expire_dump(const struct config_setting *row, const void *base)
{
	int v = *(const int *)(const void *)((const char *)base + row->offset);

	if (v == EXPIRE_INHERIT)
		return NULL;
	return v == EXPIRE_NEVER ? json_string("never") : json_integer(v);
}

/* A user's LoginDelay: given (even 0) overrides the server's. */
static void
user_login_delay_set(struct config_ctx *ctx, const struct config_setting *row,
    json_t *v, const char *path, void *base)
{
	struct user_cfg *u = base;	/* first member of struct config_user */
	json_int_t n = json_integer_value(v);

	(void)row;
	if (n < 0 || n > LOGIN_DELAY_MAX) {
		config_error(ctx, path, CONFIG_AT_VALUE,
		    "%lld is out of range (0..%d)", (long long)n,
		    LOGIN_DELAY_MAX);
		return;
	}
	u->login_delay = (unsigned)n;
	u->has_login_delay = true;
}

static json_t *
user_login_delay_dump(const struct config_setting *row, const void *base)
{
	const struct user_cfg *u = base;

	(void)row;
	return u->has_login_delay ? json_integer(u->login_delay) : NULL;
}

#define POLICY_EXPIRE_ROW(off) \
	{ .key = "Expire", .kind = CONFIG_CUSTOM, .offset = (off), \
	  .flags = CONFIG_F_ANYTYPE, .set = expire_set, .dump = expire_dump }

/* A custom row has no default of its own: an Expire not given is "never"
 * for the server and "inherit" for a user. */
static void
policy_user_defaults(const struct config_section *sec, uint64_t seen,
    struct user_cfg *u)
{
	if (!CONFIG_SEEN(sec, seen, "Expire"))
		u->expire_days = EXPIRE_INHERIT;
}

static void
policy_server_defaults(const struct config_section *sec, uint64_t seen,
    struct posuto_config *cfg)
{
	if (!CONFIG_SEEN(sec, seen, "Expire"))
		cfg->expire_days = EXPIRE_NEVER;
}

/* ------------------------------------------------------------------ */
/* Users[]                                                             */

/*
 * One Users[] element while it is parsed.  The public struct comes first
 * and HashType is input-only, so the same rows also free and dump a plain
 * struct user_cfg of the final array.
 */
struct config_user {
	struct user_cfg u;
	int hash_type;		/* enum config_hash_type */
};

static void user_verify(struct config_ctx *, const char *, void *, uint64_t);

static const struct config_setting user_rows[] = {
	{ .key = "UserName", .kind = CONFIG_STRING, .flags = CONFIG_F_REQUIRED,
	  .offset = offsetof(struct config_user, u.name) },
	{ .key = "Password", .kind = CONFIG_SECRET, .flags = CONFIG_F_REQUIRED,
	  .offset = offsetof(struct config_user, u.password) },
	{ .key = "HashType", .kind = CONFIG_ENUM, .flags = CONFIG_F_NODUMP,
	  .offset = offsetof(struct config_user, hash_type),
	  .names = hash_type_names, .def_int = CONFIG_HASH_NONE },
	{ .key = "ApopSecret", .kind = CONFIG_SECRET,
	  .offset = offsetof(struct config_user, u.apop_secret) },
	{ .key = "MailboxPath", .kind = CONFIG_TEMPLATE,
	  .offset = offsetof(struct config_user, u.mailbox) },
	{ .key = "MailboxFormat", .kind = CONFIG_STRING,
	  .offset = offsetof(struct config_user, u.format),
	  .check = mailbox_format_valid },
	{ .key = "UidlCompat", .kind = CONFIG_STRING,
	  .offset = offsetof(struct config_user, u.uidl_compat),
	  .check = uidl_compat_valid },
	{ .key = "UidlFormat", .kind = CONFIG_STRING,
	  .offset = offsetof(struct config_user, u.uidl_format),
	  .check = uidl_format_valid },
	{ .key = "LoginDelay", .kind = CONFIG_CUSTOM, .offset = 0,
	  .jtype = JSON_INTEGER, .set = user_login_delay_set,
	  .dump = user_login_delay_dump },
	POLICY_EXPIRE_ROW(offsetof(struct config_user, u.expire_days)),
};

static const struct config_section user_section = {
	user_rows, sizeof(user_rows) / sizeof(user_rows[0]),
	user_verify, NULL,
};

/* JumboDogX stores a bare hex digest; Dovecot notation names the scheme. */
static char *
user_hex_to_scheme(struct config_ctx *ctx, const char *path,
    const char *type, const char *scheme, size_t want, const char *hex)
{
	size_t len = strlen(hex);
	char *out;

	if (len != want) {
		config_error(ctx, path, CONFIG_AT_VALUE,
		    "HashType %s needs %zu hex digits, got %zu characters",
		    type, want, len);
		return NULL;
	}
	for (size_t i = 0; i < len; i++) {
		if (!isxdigit((unsigned char)hex[i])) {
			config_error(ctx, path, CONFIG_AT_VALUE,
			    "HashType %s needs hex digits only (character %zu "
			    "is not one)", type, i + 1);
			return NULL;
		}
	}
	out = xasprintf("{%s}%s", scheme, hex);
	for (char *p = out + strlen(scheme) + 2; *p != '\0'; p++)
		*p = (char)tolower((unsigned char)*p);
	return out;
}

static void
user_verify(struct config_ctx *ctx, const char *path, void *base,
    uint64_t seen)
{
	struct config_user *cu = base;
	char *pp, *np = NULL;

	policy_user_defaults(&user_section, seen, &cu->u);
	if (cu->u.mailbox != NULL && config_template_uses_home(cu->u.mailbox)) {
		pp = json_loc_path_key(path, "MailboxPath");
		config_error(ctx, pp, CONFIG_AT_VALUE, "%%h needs a home "
		    "directory, which only PasswdFile users have");
		free(pp);
	}
	/* A bad HashType has been reported; guessing at the password's
	 * notation would only add a misleading second error. */
	if (cu->u.password == NULL || (cu->hash_type == CONFIG_HASH_NONE &&
	    CONFIG_SEEN(&user_section, seen, "HashType")))
		return;
	pp = json_loc_path_key(path, "Password");
	switch ((enum config_hash_type)cu->hash_type) {
	case CONFIG_HASH_SHA256:
		np = user_hex_to_scheme(ctx, pp, "SHA256", "SHA256.HEX", 64,
		    cu->u.password);
		break;
	case CONFIG_HASH_SHA512:
		np = user_hex_to_scheme(ctx, pp, "SHA512", "SHA512.HEX", 128,
		    cu->u.password);
		break;
	case CONFIG_HASH_PLAIN:
		np = xasprintf("{PLAIN}%s", cu->u.password);
		break;
	case CONFIG_HASH_NONE:
		/* Only the notation: whether the scheme and its data are
		 * usable is auth's to say (the static userdb driver). */
		if (cu->u.password[0] != '{' ||
		    strchr(cu->u.password, '}') == NULL)
			config_error(ctx, pp, CONFIG_AT_VALUE,
			    "not a \"{SCHEME}data\" string: set \"HashType\" "
			    "(SHA256, SHA512 or PLAIN) or write e.g. "
			    "\"{SHA512-CRYPT}$6$...\"");
		break;
	}
	if (np != NULL) {
		free_secret(cu->u.password);
		cu->u.password = np;
	}
	free(pp);
}

static int
user_name_cmp(const void *a, const void *b, void *arg)
{
	const struct posuto_config *cfg = arg;
	const char *na = cfg->users[*(const size_t *)a].name;
	const char *nb = cfg->users[*(const size_t *)b].name;
	int c;

	if (na == NULL || nb == NULL)
		c = (na == NULL) - (nb == NULL);
	else
		c = strcmp(na, nb);
	if (c != 0)
		return c;
	/* Ties in file order, so the later one is reported. */
	return (*(const size_t *)a > *(const size_t *)b) -
	    (*(const size_t *)a < *(const size_t *)b);
}

static void
users_check_duplicates(struct config_ctx *ctx, const char *path,
    const struct posuto_config *cfg)
{
	size_t *idx = xcalloc(cfg->n_users, sizeof(*idx));

	for (size_t i = 0; i < cfg->n_users; i++)
		idx[i] = i;
	/* Sorted, not pairwise: Users[] may list many thousands. */
	qsort_r(idx, cfg->n_users, sizeof(*idx), user_name_cmp,
	    (void *)(uintptr_t)cfg);
	for (size_t i = 1; i < cfg->n_users; i++) {
		const char *a = cfg->users[idx[i - 1]].name;
		const char *b = cfg->users[idx[i]].name;
		char *ep, *np;

		if (a == NULL || b == NULL || strcmp(a, b) != 0)
			continue;
		ep = json_loc_path_index(path, idx[i]);
		np = json_loc_path_key(ep, "UserName");
		config_error(ctx, np, CONFIG_AT_VALUE,
		    "duplicate user (also in Users[%zu])", idx[i - 1]);
		free(np);
		free(ep);
	}
	free(idx);
}

static void
users_set(struct config_ctx *ctx, const struct config_setting *row,
    json_t *v, const char *path, void *base)
{
	struct posuto_config *cfg = base;
	size_t n = json_array_size(v);

	(void)row;
	if (n == 0)
		return;
	cfg->users = xcalloc(n, sizeof(*cfg->users));
	cfg->n_users = n;
	for (size_t i = 0; i < n; i++) {
		json_t *e = json_array_get(v, i);
		char *ep = json_loc_path_index(path, i);
		struct config_user cu;

		memset(&cu, 0, sizeof(cu));
		config_section_defaults(&user_section, &cu);
		if (!json_is_object(e))
			config_error(ctx, ep, CONFIG_AT_VALUE,
			    "expected an object, got %s",
			    config_json_type_name(json_typeof(e)));
		else
			(void)config_section_parse(ctx, &user_section, e, ep,
			    &cu);
		config_pos(ctx, ep, NULL, &cu.u.where);
		config_pos(ctx, ep, "UserName", &cu.u.where_name);
		config_pos(ctx, ep, "Password", &cu.u.where_password);
		cfg->users[i] = cu.u;
		free(ep);
	}
	users_check_duplicates(ctx, path, cfg);
}

/* "maildir:/var/mail/%u": the store location a format and a template
 * make (store.h), as check-config shows it. */
json_t *
config_location_json(const char *format, const char *tmpl)
{
	char *s = xasprintf("%s:%s", format, tmpl);
	json_t *v;

	for (char *p = s; *p != ':'; p++)
		if (*p >= 'A' && *p <= 'Z')
			*p = (char)(*p - 'A' + 'a');
	v = json_string(s);
	free(s);
	return v;
}

/* Shows what is in effect for each user: the server's MailboxFormat and
 * mailbox template where the user has none of its own, and the store
 * location they make. */
static json_t *
users_dump(const struct config_setting *row, const void *base)
{
	const struct posuto_config *cfg = base;
	json_t *a = section_array_dump(&user_section, cfg->users, cfg->n_users,
	    sizeof(*cfg->users));

	(void)row;
	for (size_t i = 0; i < cfg->n_users; i++) {
		const struct user_cfg *u = &cfg->users[i];
		json_t *o = json_array_get(a, i);
		const char *f = u->format != NULL ? u->format : cfg->format;
		const char *t = u->mailbox != NULL ? u->mailbox :
		    cfg->mailbox_template;

		json_object_set_new(o, "MailboxFormat", json_string(f));
		if (u->mailbox == NULL && cfg->mailbox_template != NULL)
			json_object_set_new(o, "MailboxPath",
			    json_string(cfg->mailbox_template));
		if (t != NULL)
			json_object_set_new(o, "MailboxLocation",
			    config_location_json(f, t));
	}
	return a;
}

static void
users_free(const struct config_setting *row, void *base)
{
	struct posuto_config *cfg = base;

	(void)row;
	section_array_free(&user_section, cfg->users, cfg->n_users,
	    sizeof(*cfg->users));
	cfg->users = NULL;
	cfg->n_users = 0;
}

/* ------------------------------------------------------------------ */
/* Faults[] (fault injection for people who test mail clients)        */

static const struct config_enum_name fault_kind_names[] = {
	{ "in-use", FAULT_IN_USE },
	{ "temp-fail", FAULT_TEMP_FAIL },
	{ "login-delay", FAULT_LOGIN_DELAY },
	{ "throttle", FAULT_THROTTLE },
	{ "drop", FAULT_DROP },
	{ "delay", FAULT_DELAY },
	{ "wrong-size", FAULT_WRONG_SIZE },
	{ "uidl-drift", FAULT_UIDL_DRIFT },
	{ NULL, 0 },
};

/* The one number each kind takes, and whether it must be given. */
static const struct {
	const char *key;
	bool required;
} fault_kind_keys[FAULT_KIND_COUNT] = {
	[FAULT_IN_USE] = { NULL, false },
	[FAULT_TEMP_FAIL] = { "Command", false },
	[FAULT_LOGIN_DELAY] = { "Seconds", true },
	[FAULT_THROTTLE] = { "BytesPerSecond", true },
	[FAULT_DROP] = { "AfterBytes", true },
	[FAULT_DELAY] = { "Milliseconds", true },
	[FAULT_WRONG_SIZE] = { "Message", true },
	[FAULT_UIDL_DRIFT] = { "Message", true },
};

const char *
config_fault_kind_name(enum fault_kind k)
{
	return k < FAULT_KIND_COUNT ? fault_kind_names[k].name : "?";
}

bool
config_fault_kind_lookup(const char *name, enum fault_kind *k_r)
{
	for (size_t i = 0; fault_kind_names[i].name != NULL; i++) {
		if (strcmp(fault_kind_names[i].name, name) == 0) {
			*k_r = (enum fault_kind)fault_kind_names[i].value;
			return true;
		}
	}
	return false;
}

const char *
config_fault_kind_key(enum fault_kind k)
{
	return k < FAULT_KIND_COUNT ? fault_kind_keys[k].key : NULL;
}

static void fault_verify(struct config_ctx *, const char *, void *,
    uint64_t);

#define FLT(f)	offsetof(struct fault_cfg, f)
static const struct config_setting fault_rows[] = {
	{ .key = "User", .kind = CONFIG_STRING, .flags = CONFIG_F_REQUIRED,
	  .offset = FLT(user) },
	{ .key = "Kind", .kind = CONFIG_ENUM, .flags = CONFIG_F_REQUIRED,
	  .offset = FLT(kind), .names = fault_kind_names },
	{ .key = "Command", .kind = CONFIG_UINT, .offset = FLT(command),
	  .min = 0, .max = 1000000 },
	{ .key = "Seconds", .kind = CONFIG_UINT, .offset = FLT(seconds),
	  .min = 1, .max = 86400 },
	{ .key = "BytesPerSecond", .kind = CONFIG_UINT,
	  .offset = FLT(bytes_per_second), .min = 1, .max = 1u << 30 },
	{ .key = "AfterBytes", .kind = CONFIG_UINT, .offset = FLT(after_bytes),
	  .min = 0, .max = 1u << 30 },
	{ .key = "Milliseconds", .kind = CONFIG_UINT,
	  .offset = FLT(milliseconds), .min = 1, .max = 60000 },
	{ .key = "Message", .kind = CONFIG_UINT, .offset = FLT(message),
	  .min = 1, .max = 10000000 },
};
#undef FLT

static const struct config_section fault_section = {
	fault_rows, sizeof(fault_rows) / sizeof(fault_rows[0]), fault_verify,
	NULL,
};

/* Each kind takes its own number and no other: a "drop" with
 * Milliseconds is a typo that would otherwise do something else. */
static void
fault_verify(struct config_ctx *ctx, const char *path, void *base,
    uint64_t seen)
{
	struct fault_cfg *f = base;
	const char *want;

	if (f->kind >= FAULT_KIND_COUNT)
		return;
	want = fault_kind_keys[f->kind].key;
	for (size_t i = 2; i < fault_section.n_rows; i++) {
		const char *key = fault_rows[i].key;
		bool given = (seen >> i) & 1;
		bool mine = want != NULL && strcmp(key, want) == 0;
		char *kp;

		if (given == mine || (mine && !fault_kind_keys[f->kind].required))
			continue;
		kp = json_loc_path_key(path, given ? key : "Kind");
		if (given)
			config_error(ctx, kp, CONFIG_AT_KEY, "not used by Kind "
			    "\"%s\"", config_fault_kind_name(f->kind));
		else
			config_error(ctx, kp, CONFIG_AT_VALUE, "Kind \"%s\" "
			    "needs %s", config_fault_kind_name(f->kind), key);
		free(kp);
	}
}

static void
faults_set(struct config_ctx *ctx, const struct config_setting *row,
    json_t *v, const char *path, void *base)
{
	struct posuto_config *cfg = base;

	(void)row;
	cfg->faults = section_array_parse(ctx, &fault_section, v, path,
	    sizeof(*cfg->faults));
	cfg->n_faults = json_array_size(v);
}

static json_t *
faults_dump(const struct config_setting *row, const void *base)
{
	const struct posuto_config *cfg = base;

	(void)row;
	return section_array_dump(&fault_section, cfg->faults, cfg->n_faults,
	    sizeof(*cfg->faults));
}

static void
faults_free(const struct config_setting *row, void *base)
{
	struct posuto_config *cfg = base;

	(void)row;
	section_array_free(&fault_section, cfg->faults, cfg->n_faults,
	    sizeof(*cfg->faults));
	cfg->faults = NULL;
	cfg->n_faults = 0;
}

/* Transcripts.Users: user names, or "*". */
/* An array of non-empty strings (Admin.Hostnames, Transcripts.Users),
 * each also passing check when given; set/dump/free of the two. */
static void
strings_free(char ***arr, size_t *n)
{
	for (size_t i = 0; i < *n; i++)
		free((*arr)[i]);
	free(*arr);
	*arr = NULL;
	*n = 0;
}

static void
strings_set(struct config_ctx *ctx, json_t *v, const char *path,
    char ***arr, size_t *n, config_check_fn *check)
{
	size_t len = json_array_size(v);
	const char *why;

	strings_free(arr, n);
	*arr = xcalloc(len + 1, sizeof(**arr));
	for (size_t i = 0; i < len; i++) {
		json_t *e = json_array_get(v, i);
		char *ep = json_loc_path_index(path, i);

		if (!json_is_string(e))
			config_error(ctx, ep, CONFIG_AT_VALUE,
			    "expected a string, got %s",
			    config_json_type_name(json_typeof(e)));
		else if (json_string_length(e) == 0)
			config_error(ctx, ep, CONFIG_AT_VALUE, "empty");
		else if (check != NULL && !check(json_string_value(e), &why))
			config_error(ctx, ep, CONFIG_AT_VALUE, "%s", why);
		else
			(*arr)[(*n)++] = xstrdup(json_string_value(e));
		free(ep);
	}
}

static json_t *
strings_dump(char *const *arr, size_t n)
{
	json_t *a = json_array();

	for (size_t i = 0; i < n; i++)
		json_array_append_new(a, json_string(arr[i]));
	return a;
}

static void
transcript_users_set(struct config_ctx *ctx, const struct config_setting *row,
    json_t *v, const char *path, void *base)
{
	struct transcripts_cfg *t = base;

	(void)row;
	strings_set(ctx, v, path, &t->users, &t->n_users, NULL);
}

static json_t *
transcript_users_dump(const struct config_setting *row, const void *base)
{
	const struct transcripts_cfg *t = base;

	(void)row;
	return strings_dump(t->users, t->n_users);
}

static void
transcript_users_free(const struct config_setting *row, void *base)
{
	struct transcripts_cfg *t = base;

	(void)row;
	strings_free(&t->users, &t->n_users);
}

static const struct config_setting transcripts_rows[] = {
	{ .key = "Users", .kind = CONFIG_CUSTOM, .offset = 0,
	  .jtype = JSON_ARRAY, .set = transcript_users_set,
	  .dump = transcript_users_dump, .free = transcript_users_free },
	{ .key = "Directory", .kind = CONFIG_PATH,
	  .offset = offsetof(struct transcripts_cfg, directory) },
};

static const struct config_section transcripts_section = {
	transcripts_rows, sizeof(transcripts_rows) / sizeof(transcripts_rows[0]),
	NULL, NULL,
};

/* ------------------------------------------------------------------ */
/* Tls                                                                 */

static void tls_verify(struct config_ctx *, const char *, void *, uint64_t);

static const struct config_setting tls_rows[] = {
	{ .key = "Certificate", .kind = CONFIG_PATH,
	  .offset = offsetof(struct tls_cfg, cert_file) },
	{ .key = "Key", .kind = CONFIG_PATH,
	  .offset = offsetof(struct tls_cfg, key_file) },
	{ .key = "Ciphers", .kind = CONFIG_STRING,
	  .offset = offsetof(struct tls_cfg, ciphers) },
	{ .key = "CipherSuites", .kind = CONFIG_STRING,
	  .offset = offsetof(struct tls_cfg, ciphersuites) },
	{ .key = "MinVersion", .kind = CONFIG_STRING,
	  .offset = offsetof(struct tls_cfg, min_version),
	  .def_str = "TLSv1.2", .check = check_tls_version },
};

static const struct config_section tls_section = {
	tls_rows, sizeof(tls_rows) / sizeof(tls_rows[0]), tls_verify, NULL,
};

static void
tls_verify(struct config_ctx *ctx, const char *path, void *base,
    uint64_t seen)
{
	struct tls_cfg *tls = base;
	char *kp;

	if (tls->cert_file == NULL && CONFIG_SEEN(&tls_section, seen, "Key")) {
		kp = json_loc_path_key(path, "Key");
		config_error(ctx, kp, CONFIG_AT_KEY,
		    "a Key without a Certificate");
		free(kp);
	}
	/* One PEM file may hold both chain and key. */
	if (tls->cert_file != NULL && tls->key_file == NULL)
		tls->key_file = xstrdup(tls->cert_file);
}

/* ------------------------------------------------------------------ */
/* Sql                                                                 */

static void sql_verify(struct config_ctx *, const char *, void *, uint64_t);

static const struct config_enum_name sql_driver_names[] = {
	{ "pgsql", SQL_DRIVER_PGSQL },
	{ "mysql", SQL_DRIVER_MYSQL },
	{ NULL, 0 },
};

static const struct config_enum_name sql_schema_names[] = {
	{ "posuto", SQL_SCHEMA_POSUTO },
	{ "tpops", SQL_SCHEMA_TPOPS },
	{ NULL, 0 },
};

static const struct config_enum_name sql_tpops_mailbox_names[] = {
	{ "msg", SQL_TPOPS_MAILBOX_MSG },
	{ "maildir", SQL_TPOPS_MAILBOX_MAILDIR },
	{ NULL, 0 },
};

/* A SQL identifier or host name; no quoting questions (the conninfo and
 * the client options get it as a value, never inside SQL). */
static bool
check_sql_word(const char *s, const char **why_r)
{
	if (strlen(s) > 255) {
		*why_r = "longer than 255 characters";
		return false;
	}
	for (const char *p = s; *p != '\0'; p++) {
		if (!isalnum((unsigned char)*p) && *p != '.' && *p != '-' &&
		    *p != '_' && *p != ':' && *p != '$') {
			*why_r = "may hold only letters, digits and . - _ : $";
			return false;
		}
	}
	return true;
}

#define SQLF(field) offsetof(struct sql_cfg, field)

static const struct config_setting sql_rows[] = {
	{ .key = "Driver", .kind = CONFIG_ENUM, .flags = CONFIG_F_REQUIRED,
	  .offset = SQLF(driver), .names = sql_driver_names,
	  .def_int = SQL_DRIVER_NONE },
	{ .key = "Host", .kind = CONFIG_STRING, .offset = SQLF(host),
	  .check = check_sql_word },
	/* 0 (the default) is the driver's own default port. */
	{ .key = "Port", .kind = CONFIG_UINT, .offset = SQLF(port),
	  .min = 1, .max = 65535, .def_int = 0 },
	{ .key = "Socket", .kind = CONFIG_PATH, .offset = SQLF(socket) },
	{ .key = "Database", .kind = CONFIG_STRING, .flags = CONFIG_F_REQUIRED,
	  .offset = SQLF(database), .check = check_sql_word },
	{ .key = "User", .kind = CONFIG_STRING, .offset = SQLF(user),
	  .check = check_sql_word },
	/* Read by the sql module when it connects (as the userdb is
	 * loaded): a file, so the secret stays out of the config dump. */
	{ .key = "PasswordFile", .kind = CONFIG_PATH,
	  .offset = SQLF(password_file), .check = check_file_name },
	{ .key = "Schema", .kind = CONFIG_ENUM, .offset = SQLF(schema),
	  .names = sql_schema_names, .def_int = SQL_SCHEMA_POSUTO },
	{ .key = "PasswordScheme", .kind = CONFIG_STRING,
	  .offset = SQLF(password_scheme) },
	{ .key = "ConnectTimeOut", .kind = CONFIG_UINT,
	  .offset = SQLF(connect_timeout), .min = 1, .max = 300,
	  .def_int = 5 },
	{ .key = "QueryTimeOut", .kind = CONFIG_UINT,
	  .offset = SQLF(query_timeout), .min = 1, .max = 3600,
	  .def_int = 10 },
	{ .key = "PoolSize", .kind = CONFIG_UINT, .offset = SQLF(pool_size),
	  .min = 1, .max = 1024, .def_int = 8 },
	{ .key = "CacheSize", .kind = CONFIG_UINT, .offset = SQLF(cache_size),
	  .min = 0, .max = 10000000, .def_int = 0 },
	{ .key = "CacheTimeToLive", .kind = CONFIG_UINT,
	  .offset = SQLF(cache_ttl), .min = 1, .max = 86400, .def_int = 60 },
	{ .key = "CacheNegativeTimeToLive", .kind = CONFIG_UINT,
	  .offset = SQLF(cache_negative_ttl), .min = 0, .max = 86400,
	  .def_int = 60 },
	{ .key = "TpopsMailbox", .kind = CONFIG_ENUM,
	  .offset = SQLF(tpops_mailbox), .names = sql_tpops_mailbox_names,
	  .def_int = SQL_TPOPS_MAILBOX_MSG },
};

static const struct config_section sql_section = {
	sql_rows, sizeof(sql_rows) / sizeof(sql_rows[0]), sql_verify, NULL,
};

static void
sql_verify(struct config_ctx *ctx, const char *path, void *base,
    uint64_t seen)
{
	char *kp;

	(void)base;
	/* Two ways to the same server: say which one is meant. */
	if (CONFIG_SEEN(&sql_section, seen, "Host") &&
	    CONFIG_SEEN(&sql_section, seen, "Socket")) {
		kp = json_loc_path_key(path, "Socket");
		config_error(ctx, kp, CONFIG_AT_KEY,
		    "give Host (and Port) or Socket, not both");
		free(kp);
	}
	if (CONFIG_SEEN(&sql_section, seen, "Port") &&
	    CONFIG_SEEN(&sql_section, seen, "Socket")) {
		kp = json_loc_path_key(path, "Port");
		config_error(ctx, kp, CONFIG_AT_KEY,
		    "a Port is for Host, not for a Socket");
		free(kp);
	}
}

/* ------------------------------------------------------------------ */
/* SaslMechanisms                                                      */

static void sasl_mechs_free(const struct config_setting *, void *);

/* Names as Dovecot's auth_mechanisms, kept as written: auth knows which
 * exist (sasl_mechs_from_config()).  The default (key absent) is decided
 * per session, see pop3_sasl_mech_enabled(). */
static void
sasl_mechs_set(struct config_ctx *ctx, const struct config_setting *row,
    json_t *v, const char *path, void *base)
{
	struct posuto_config *cfg = base;
	size_t n = json_array_size(v);

	sasl_mechs_free(row, base);	/* never two lists */
	cfg->sasl_mechanisms_set = true;
	cfg->sasl_mechanisms = xcalloc(n + 1, sizeof(*cfg->sasl_mechanisms));
	cfg->sasl_mechanisms_where = xcalloc(n + 1,
	    sizeof(*cfg->sasl_mechanisms_where));
	for (size_t i = 0; i < n; i++) {
		json_t *e = json_array_get(v, i);
		char *ep = json_loc_path_index(path, i);

		if (!json_is_string(e)) {
			config_error(ctx, ep, CONFIG_AT_VALUE,
			    "expected a string, got %s",
			    config_json_type_name(json_typeof(e)));
		} else {
			size_t k = cfg->n_sasl_mechanisms++;

			cfg->sasl_mechanisms[k] = xstrdup(json_string_value(e));
			config_pos(ctx, ep, NULL,
			    &cfg->sasl_mechanisms_where[k]);
		}
		free(ep);
	}
}

static json_t *
sasl_mechs_dump(const struct config_setting *row, const void *base)
{
	const struct posuto_config *cfg = base;
	json_t *a;

	(void)row;
	if (!cfg->sasl_mechanisms_set)
		return NULL;
	a = json_array();
	for (size_t i = 0; i < cfg->n_sasl_mechanisms; i++)
		json_array_append_new(a, json_string(cfg->sasl_mechanisms[i]));
	return a;
}

static void
sasl_mechs_free(const struct config_setting *row, void *base)
{
	struct posuto_config *cfg = base;

	(void)row;
	for (size_t i = 0; i < cfg->n_sasl_mechanisms; i++)
		free(cfg->sasl_mechanisms[i]);
	free(cfg->sasl_mechanisms);
	free(cfg->sasl_mechanisms_where);
	cfg->sasl_mechanisms = NULL;
	cfg->sasl_mechanisms_where = NULL;
	cfg->n_sasl_mechanisms = 0;
}

/* ------------------------------------------------------------------ */
/* Pop3Server                                                          */

static void server_verify(struct config_ctx *, const char *, void *,
    uint64_t);

#define SRV(field) offsetof(struct config_server, field)

static const struct config_setting server_rows[] = {
	{ .key = "Enabled", .kind = CONFIG_BOOL, .offset = SRV(cfg.enabled),
	  .def_int = 1 },
	{ .key = "BindAddress", .kind = CONFIG_STRING, .flags = CONFIG_F_NODUMP,
	  .offset = SRV(bind_address), .def_str = "0.0.0.0",
	  .check = check_ip },
	{ .key = "Port", .kind = CONFIG_U16, .flags = CONFIG_F_NODUMP,
	  .offset = SRV(port), .min = 1, .max = 65535, .def_int = 110 },
	{ .key = "Listen", .kind = CONFIG_CUSTOM, .offset = 0,
	  .jtype = JSON_ARRAY, .set = listen_set, .dump = listen_dump,
	  .free = listen_free },
	/* RFC 1939 §3: the autologout timer is at least 10 minutes; shorter
	 * values are allowed because JumboDogX files say 30. */
	{ .key = "TimeOut", .kind = CONFIG_UINT, .offset = SRV(cfg.idle_timeout),
	  .min = 1, .max = 86400, .def_int = POP3_DEFAULT_IDLE_TIMEOUT },
	{ .key = "SessionTimeOut", .kind = CONFIG_UINT,
	  .offset = SRV(cfg.session_timeout), .min = 0, .max = 30 * 86400,
	  .def_int = 0 },
	{ .key = "AuthFailDelay", .kind = CONFIG_UINT,
	  .offset = SRV(cfg.auth_fail_delay_ms), .min = 0, .max = 60000,
	  .def_int = AUTH_DEFAULT_FAIL_DELAY_MS },
	{ .key = "MaxConnections", .kind = CONFIG_UINT,
	  .offset = SRV(cfg.max_connections), .min = 0, .max = 10000000,
	  .def_int = DEFAULT_MAX_CONN },
	{ .key = "MaxConnectionsPerIp", .kind = CONFIG_UINT,
	  .offset = SRV(cfg.max_connections_per_ip), .min = 0, .max = 10000000,
	  .def_int = DEFAULT_MAX_CONN_PER_IP },
	/* Slow and busy peers (issue 9).  The per-IP limits protect a public
	 * listener; loopback clients (a local test harness, webmail, a TLS
	 * proxy that makes every client 127.0.0.1) are exempt by default. */
	{ .key = "LineTimeOut", .kind = CONFIG_UINT,
	  .offset = SRV(cfg.line_timeout), .min = 1, .max = 86400,
	  .def_int = POP3_DEFAULT_LINE_TIMEOUT },
	{ .key = "MaxConnectRatePerIp", .kind = CONFIG_UINT,
	  .offset = SRV(cfg.max_connect_rate_per_ip), .min = 0,
	  .max = 10000000, .def_int = DEFAULT_MAX_CONNECT_RATE_PER_IP },
	{ .key = "LimitLoopback", .kind = CONFIG_BOOL,
	  .offset = SRV(cfg.limit_loopback), .def_int = 0 },
	{ .key = "MaxBadCommands", .kind = CONFIG_UINT,
	  .offset = SRV(cfg.max_bad_commands), .min = 1, .max = 1000,
	  .def_int = POP3_MAX_BAD_CMDS },
	{ .key = "WorkerThreads", .kind = CONFIG_UINT,
	  .offset = SRV(cfg.worker_threads), .min = 0, .max = 1024,
	  .def_int = 0 },
	{ .key = "EventLoops", .kind = CONFIG_UINT,
	  .offset = SRV(cfg.event_loops), .min = 0, .max = 256,
	  .def_int = 0 },
	{ .key = "LogLevel", .kind = CONFIG_ENUM, .offset = SRV(cfg.log_level),
	  .names = log_level_names, .def_int = LOG_LVL_INFO },
	{ .key = "RunAsUser", .kind = CONFIG_STRING,
	  .offset = SRV(cfg.run_as_user), .check = check_system_user },
	{ .key = "Hostname", .kind = CONFIG_STRING, .offset = SRV(cfg.hostname),
	  .check = check_hostname },
	{ .key = "PasswdFile", .kind = CONFIG_PATH,
	  .offset = SRV(cfg.passwd_file) },
	/* Opened by serve, not here: check-config must not create files. */
	{ .key = "LockFile", .kind = CONFIG_PATH,
	  .offset = SRV(cfg.lock_file), .check = check_file_name },
	{ .key = "SinkCreatesUsers", .kind = CONFIG_BOOL,
	  .offset = SRV(cfg.sink_creates_users), .def_int = 0 },
	{ .key = "SinkPassword", .kind = CONFIG_SECRET,
	  .offset = SRV(cfg.sink_password) },
	{ .key = "AllowPlaintextAuth", .kind = CONFIG_BOOL,
	  .offset = SRV(cfg.allow_plaintext_auth), .def_int = 0 },
	{ .key = "SaslMechanisms", .kind = CONFIG_CUSTOM, .offset = 0,
	  .jtype = JSON_ARRAY, .set = sasl_mechs_set,
	  .dump = sasl_mechs_dump, .free = sasl_mechs_free },
	{ .key = "MailDir", .kind = CONFIG_PATH, .offset = SRV(cfg.mail_dir) },
	{ .key = "MailboxPath", .kind = CONFIG_TEMPLATE,
	  .offset = SRV(cfg.mailbox_template) },
	{ .key = "MailboxFormat", .kind = CONFIG_STRING, .offset = SRV(cfg.format),
	  .def_str = "auto", .check = mailbox_format_valid },
	{ .key = "MboxStateDirectory", .kind = CONFIG_PATH,
	  .offset = SRV(cfg.mbox_state_dir) },
	{ .key = "UidlCompat", .kind = CONFIG_STRING,
	  .offset = SRV(cfg.uidl_compat), .check = uidl_compat_valid },
	{ .key = "UidlFormat", .kind = CONFIG_STRING,
	  .offset = SRV(cfg.uidl_format), .check = uidl_format_valid },
	{ .key = "UidlDrift", .kind = CONFIG_BOOL,
	  .offset = SRV(cfg.uidl_drift), .def_int = 1 },
	{ .key = "WireCacheMinSize", .kind = CONFIG_UINT,
	  .offset = SRV(cfg.wire_cache_min_size), .min = 0,
	  .max = 1024 * 1024 * 1024, .def_int = WIRE_CACHE_DEFAULT_MIN_SIZE },
	{ .key = "LoginDelay", .kind = CONFIG_UINT,
	  .offset = SRV(cfg.login_delay), .min = 0, .max = LOGIN_DELAY_MAX,
	  .def_int = 0 },
	POLICY_EXPIRE_ROW(SRV(cfg.expire_days)),
	{ .key = "ExpireCheckInterval", .kind = CONFIG_UINT,
	  .offset = SRV(cfg.expire_interval), .min = 1, .max = 86400,
	  .def_int = 3600 },
	{ .key = "Tls", .kind = CONFIG_OBJECT, .offset = SRV(cfg.tls),
	  .sub = &tls_section },
	{ .key = "Sql", .kind = CONFIG_OBJECT, .offset = SRV(cfg.sql),
	  .sub = &sql_section },
	{ .key = "Users", .kind = CONFIG_CUSTOM, .offset = 0,
	  .jtype = JSON_ARRAY, .set = users_set, .dump = users_dump,
	  .free = users_free },
	{ .key = "Faults", .kind = CONFIG_CUSTOM, .offset = 0,
	  .jtype = JSON_ARRAY, .set = faults_set, .dump = faults_dump,
	  .free = faults_free },
	{ .key = "FaultsForRemoteClients", .kind = CONFIG_BOOL,
	  .offset = SRV(cfg.faults_for_remote), .def_int = 0 },
	{ .key = "Transcripts", .kind = CONFIG_OBJECT,
	  .offset = SRV(cfg.transcripts), .sub = &transcripts_section },
};

const struct config_section config_server_section = {
	server_rows, sizeof(server_rows) / sizeof(server_rows[0]),
	server_verify, NULL,
};

static bool
config_is_loopback(const char *addr)
{
	return strncmp(addr, "127.", 4) == 0 || strcmp(addr, "::1") == 0;
}

static void
server_verify_listens(struct config_ctx *ctx, const char *path,
    struct config_server *srv, uint64_t seen)
{
	struct posuto_config *cfg = &srv->cfg;
	const struct config_section *sec = &config_server_section;
	char *lp = json_loc_path_key(path, "Listen");

	if (!CONFIG_SEEN(sec, seen, "Listen")) {
		cfg->listens = xcalloc(1, sizeof(*cfg->listens));
		cfg->n_listens = 1;
		cfg->listens[0].address = xstrdup(srv->bind_address);
		cfg->listens[0].port = srv->port;
		cfg->listens[0].tls = LISTEN_TLS_NONE;
	} else {
		static const char *const legacy[] = { "BindAddress", "Port" };

		for (size_t i = 0; i < 2; i++) {
			char *kp;

			if (!CONFIG_SEEN(sec, seen, legacy[i]))
				continue;
			kp = json_loc_path_key(path, legacy[i]);
			config_warning(ctx, kp, CONFIG_AT_KEY,
			    "ignored because Listen is given");
			free(kp);
		}
	}
	for (size_t i = 0; i < cfg->n_listens; i++) {
		const struct listen_cfg *l = &cfg->listens[i];
		char *ep = json_loc_path_index(lp, i);

		if (l->tls != LISTEN_TLS_NONE && cfg->tls.cert_file == NULL) {
			char *tp = json_loc_path_key(ep, "Tls");
			config_error(ctx, tp, CONFIG_AT_VALUE, "%s needs "
			    "Pop3Server.Tls.Certificate",
			    l->tls == LISTEN_TLS_IMPLICIT ? "implicit TLS" :
			    "STLS");
			free(tp);
		}
		/* What is in effect: a plain port offers STLS when there is
		 * a certificate, and check-config should say so. */
		if (l->tls == LISTEN_TLS_NONE && cfg->tls.cert_file != NULL &&
		    l->protocol == LISTEN_PROTO_POP3)
			cfg->listens[i].tls = LISTEN_TLS_STARTTLS;
		for (size_t j = 0; j < i; j++) {
			const struct listen_cfg *o = &cfg->listens[j];

			if ((l->address != NULL && o->address != NULL &&
			    l->port == o->port &&
			    strcmp(l->address, o->address) == 0) ||
			    (l->path != NULL && o->path != NULL &&
			    strcmp(l->path, o->path) == 0)) {
				config_error(ctx, ep, CONFIG_AT_VALUE,
				    "same address and port as Listen[%zu]", j);
				break;
			}
		}
		free(ep);
	}
	free(lp);
}

static void
server_verify(struct config_ctx *ctx, const char *path, void *base,
    uint64_t seen)
{
	struct config_server *srv = base;
	struct posuto_config *cfg = &srv->cfg;
	bool need_default_mailbox;
	bool all_loopback = true;
	char *kp;

	server_verify_listens(ctx, path, srv, seen);
	policy_server_defaults(&config_server_section, seen, cfg);

	if (cfg->hostname == NULL) {
		char host[256];

		if (gethostname(host, sizeof(host)) != 0 || host[0] == '\0')
			cfg->hostname = xstrdup("localhost");
		else {
			host[sizeof(host) - 1] = '\0';
			cfg->hostname = xstrdup(host);
		}
	}

	/* JumboDogX layout: MailDir/<UserName>/. */
	if (cfg->mailbox_template == NULL && cfg->mail_dir != NULL) {
		char *esc = config_template_escape(cfg->mail_dir);
		cfg->mailbox_template = xasprintf("%s/%%u", esc);
		free(esc);
	}
	need_default_mailbox = cfg->passwd_file != NULL;
	for (size_t i = 0; i < cfg->n_users; i++)
		if (cfg->users[i].mailbox == NULL)
			need_default_mailbox = true;
	/* sql: mailboxes are named by user, not by a path */
	if (cfg->format != NULL && ascii_caseeq(cfg->format, "sql")) {
		need_default_mailbox = false;
		if (cfg->sql.driver == SQL_DRIVER_NONE) {
			kp = json_loc_path_key(path, "MailboxFormat");
			config_error(ctx, kp, CONFIG_AT_VALUE, "\"sql\" "
			    "keeps mail in the Sql database: set Sql");
			free(kp);
		}
	}
	/* A MailDir/MailboxPath that was given but bad is reported already. */
	if (cfg->mailbox_template == NULL && need_default_mailbox &&
	    !CONFIG_SEEN(&config_server_section, seen, "MailDir") &&
	    !CONFIG_SEEN(&config_server_section, seen, "MailboxPath")) {
		kp = json_loc_path_key(path, cfg->n_users > 0 ? "Users" :
		    "PasswdFile");
		config_error(ctx, kp, CONFIG_AT_KEY, "users need a mailbox "
		    "location: set MailDir or MailboxPath");
		free(kp);
	} else if (cfg->mailbox_template != NULL &&
	    config_template_uses_home(cfg->mailbox_template)) {
		for (size_t i = 0; i < cfg->n_users; i++) {
			if (cfg->users[i].mailbox != NULL)
				continue;
			kp = json_loc_path_key(path, "MailboxPath");
			config_error(ctx, kp, CONFIG_AT_VALUE, "%%h needs a "
			    "home directory, which Users[%zu] does not have "
			    "(only PasswdFile users do)", i);
			free(kp);
			break;
		}
	}

	if (cfg->n_users == 0 && cfg->passwd_file == NULL &&
	    cfg->sql.driver == SQL_DRIVER_NONE && !cfg->sink_creates_users)
		config_warning(ctx, path, CONFIG_AT_VALUE,
		    "no Users, PasswdFile or Sql: nobody can log in");
	if (cfg->sink_creates_users && (cfg->sink_password == NULL ||
	    cfg->mailbox_template == NULL)) {
		kp = json_loc_path_key(path, "SinkCreatesUsers");
		config_error(ctx, kp, CONFIG_AT_VALUE, "needs SinkPassword (the "
		    "password of the users it creates) and MailDir");
		free(kp);
	}

	for (size_t i = 0; i < cfg->n_listens; i++)
		if (cfg->listens[i].protocol != LISTEN_PROTO_POP3)
			continue;
		else if (cfg->listens[i].address == NULL ||
		    !config_is_loopback(cfg->listens[i].address))
			all_loopback = false;
	if (!cfg->allow_plaintext_auth && cfg->tls.cert_file == NULL &&
	    !all_loopback) {
		kp = json_loc_path_key(path, "AllowPlaintextAuth");
		config_warning(ctx, kp, CONFIG_AT_VALUE, "no Tls and "
		    "AllowPlaintextAuth is false: only clients on loopback "
		    "can log in");
		free(kp);
	}
}

/* ------------------------------------------------------------------ */
/* Admin (the web admin, issue 12)                                     */

/* Names the Host header may carry besides the loopback ones: a DNS name
 * pointing here (the DNS-rebinding check accepts nothing else). */
static void
admin_hostnames_set(struct config_ctx *ctx, const struct config_setting *row,
    json_t *v, const char *path, void *base)
{
	struct admin_cfg *a = base;

	(void)row;
	strings_set(ctx, v, path, &a->hostnames, &a->n_hostnames,
	    check_hostname);
}

static json_t *
admin_hostnames_dump(const struct config_setting *row, const void *base)
{
	const struct admin_cfg *a = base;

	(void)row;
	return strings_dump(a->hostnames, a->n_hostnames);
}

static void
admin_hostnames_free(const struct config_setting *row, void *base)
{
	struct admin_cfg *a = base;

	(void)row;
	strings_free(&a->hostnames, &a->n_hostnames);
}

static const struct config_enum_name autoconfig_login_names[] = {
	{ "LocalPart", AUTOCONFIG_LOGIN_LOCAL_PART },
	{ "Address", AUTOCONFIG_LOGIN_ADDRESS },
	{ NULL, 0 },
};

#define ACF(f)	offsetof(struct autoconfig_cfg, f)
static const struct config_setting autoconfig_rows[] = {
	{ .key = "Hostname", .kind = CONFIG_STRING, .offset = ACF(hostname) },
	{ .key = "Domain", .kind = CONFIG_STRING, .offset = ACF(domain) },
	{ .key = "DisplayName", .kind = CONFIG_STRING,
	  .offset = ACF(display_name) },
	{ .key = "LoginName", .kind = CONFIG_ENUM, .offset = ACF(login),
	  .names = autoconfig_login_names,
	  .def_int = AUTOCONFIG_LOGIN_LOCAL_PART },
	{ .key = "SmtpHostname", .kind = CONFIG_STRING,
	  .offset = ACF(smtp_hostname) },
	{ .key = "SmtpPort", .kind = CONFIG_U16, .offset = ACF(smtp_port),
	  .min = 0, .max = 65535, .def_int = 0 },
	{ .key = "SmtpSecurity", .kind = CONFIG_ENUM,
	  .offset = ACF(smtp_security), .names = listen_tls_names,
	  .def_int = LISTEN_TLS_NONE },
	{ .key = "SmtpAuth", .kind = CONFIG_BOOL, .offset = ACF(smtp_auth),
	  .def_int = 0 },
	{ .key = "Address", .kind = CONFIG_STRING, .offset = ACF(address),
	  .def_str = "0.0.0.0", .check = check_ip },
	{ .key = "Port", .kind = CONFIG_U16, .offset = ACF(port),
	  .min = 0, .max = 65535, .def_int = 0 },
};
#undef ACF

static const struct config_section autoconfig_section = {
	autoconfig_rows, sizeof(autoconfig_rows) / sizeof(autoconfig_rows[0]),
	NULL, NULL,
};

static const struct config_setting admin_rows[] = {
	{ .key = "Enabled", .kind = CONFIG_BOOL,
	  .offset = offsetof(struct admin_cfg, enabled), .def_int = 1 },
	/* The issue: "listens on 127.0.0.1 by default" (JumboDogX: 5001). */
	{ .key = "Address", .kind = CONFIG_STRING,
	  .offset = offsetof(struct admin_cfg, address),
	  .def_str = "127.0.0.1", .check = check_ip },
	{ .key = "Port", .kind = CONFIG_U16,
	  .offset = offsetof(struct admin_cfg, port),
	  .min = 1, .max = 65535, .def_int = 5001 },
	{ .key = "PasswordHash", .kind = CONFIG_SECRET,
	  .offset = offsetof(struct admin_cfg, password_hash) },
	{ .key = "Tls", .kind = CONFIG_BOOL,
	  .offset = offsetof(struct admin_cfg, tls), .def_int = 0 },
	{ .key = "SessionTimeOut", .kind = CONFIG_UINT,
	  .offset = offsetof(struct admin_cfg, session_timeout),
	  .min = 60, .max = 7 * 86400, .def_int = 3600 },
	{ .key = "Hostnames", .kind = CONFIG_CUSTOM, .offset = 0,
	  .jtype = JSON_ARRAY, .set = admin_hostnames_set,
	  .dump = admin_hostnames_dump, .free = admin_hostnames_free },
	{ .key = "Autoconfig", .kind = CONFIG_OBJECT,
	  .offset = offsetof(struct admin_cfg, autoconfig),
	  .sub = &autoconfig_section },
};

static const struct config_section admin_section = {
	admin_rows, sizeof(admin_rows) / sizeof(admin_rows[0]), NULL, NULL,
};

/* ------------------------------------------------------------------ */
/* Top level                                                           */

static void root_verify(struct config_ctx *, const char *, void *,
    uint64_t);

static const struct config_setting root_rows[] = {
	{ .key = "Pop3Server", .kind = CONFIG_OBJECT,
	  .flags = CONFIG_F_REQUIRED, .offset = 0,
	  .sub = &config_server_section },
	{ .key = "Admin", .kind = CONFIG_OBJECT, .offset = SRV(cfg.admin),
	  .sub = &admin_section },
};

const struct config_section config_root_section = {
	root_rows, sizeof(root_rows) / sizeof(root_rows[0]), root_verify,
	/* JumboDogX keeps all its servers in one file. */
	"ignored: posuto reads only the Pop3Server and Admin sections",
};

static void
root_verify(struct config_ctx *ctx, const char *path, void *base,
    uint64_t seen)
{
	struct config_server *srv = base;
	struct admin_cfg *a = &srv->cfg.admin;

	(void)path;
	/* The web admin is there when the file asks for it: a config
	 * without "Admin" (every JumboDogX file, every test's) opens no
	 * port nobody expects and writes no generated password into it. */
	if (!CONFIG_SEEN(&config_root_section, seen, "Admin")) {
		a->enabled = false;
		return;
	}
	if (a->enabled && a->tls && srv->cfg.tls.cert_file == NULL)
		config_error(ctx, "Admin.Tls", CONFIG_AT_VALUE,
		    "needs Pop3Server.Tls.Certificate (the web admin serves "
		    "the POP3 server's certificate)");
}
