/*
 * admin.c - the web admin's data source and its start-up (see admin.h).
 *
 * Everything comes from the net runtime, which may be read from any
 * thread: the current generation (users, settings in effect) by
 * reference, the counters as atomics, the live sessions as a registry
 * snapshot.
 */
#include <errno.h>
#include <getopt.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "auth/passwd.h"
#include "auth/userdb.h"
#include "config/config.h"
#include "daemon/admin.h"
#include "daemon/cmd_hash.h"
#include "http/http.h"
#include "lib/log.h"
#include "lib/params.h"
#include "lib/strutil.h"
#include "lib/xmalloc.h"
#include "net/protocol.h"
#include "net/registry.h"
#include "net/runtime.h"

#define ADMIN_SCHEME	"SHA512-CRYPT"

struct admin {
	struct http_server *http;
	struct net_runtime *rt;
	time_t started;
	size_t last_sessions;		/* loop thread only (admin_tick) */
	/* Users of generation users_gen, counted once per generation. */
	atomic_uint users_gen;
	atomic_long n_users;
};

/* Prometheus names of the runtime's counters, by enum net_counter. */
static const struct {
	const char *name, *help;
} admin_counter_names[NET_CNT_COUNT] = {
	[NET_CNT_CONNECTIONS] = { "posuto_connections_total",
	    "Connections accepted" },
	[NET_CNT_LOGIN_OK] = { "posuto_logins_ok_total", "Successful logins" },
	[NET_CNT_LOGIN_FAILED] = { "posuto_logins_failed_total",
	    "Failed logins" },
	[NET_CNT_RETRIEVED] = { "posuto_retrieved_messages_total",
	    "Messages sent whole (RETR)" },
	[NET_CNT_RETRIEVED_BYTES] = { "posuto_retrieved_bytes_total",
	    "Message octets sent" },
	[NET_CNT_DELETED] = { "posuto_deleted_messages_total",
	    "Messages removed at the end of a session" },
	[NET_CNT_TLS_HANDSHAKES] = { "posuto_tls_handshakes_total",
	    "TLS handshakes completed" },
	[NET_CNT_TLS_FAILURES] = { "posuto_tls_failures_total",
	    "TLS handshakes failed" },
};

struct admin_users_arg {
	http_admin_user_fn *fn;
	void *fn_arg;
};

static bool
admin_users_one(const struct userdb_entry *e, void *arg)
{
	struct admin_users_arg *ua = arg;
	struct http_admin_user u = {
		.name = e->name,
		.mailbox = e->mailbox_path,
		.format = e->format,
		.scheme = passwd_scheme_name(e->password),
		.apop = e->apop_secret != NULL,
		.origin = e->origin,
	};

	return ua->fn(&u, ua->fn_arg);
}

static bool
admin_users(void *arg, http_admin_user_fn *fn, void *fn_arg)
{
	struct admin *a = arg;
	struct admin_users_arg ua = { fn, fn_arg };
	struct net_gen *g = net_runtime_gen_ref(a->rt);

	/* userdb_iterate may block: this is the HTTP thread, not the loop. */
	if (g->userdb != NULL)
		(void)userdb_iterate(g->userdb, admin_users_one, &ua);
	net_gen_unref(&g);
	return true;
}

static char *
admin_settings_json(void *arg)
{
	struct admin *a = arg;
	struct net_gen *g = net_runtime_gen_ref(a->rt);
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);

	if (f == NULL)
		fatal("open_memstream");
	/* A generation's config is immutable: any thread may dump it. */
	config_dump(g->cfg, f);
	if (fclose(f) != 0)
		fatal("open_memstream");
	net_gen_unref(&g);
	return text;
}

static bool
admin_autoconfig(void *arg, struct autoconfig_info *ai)
{
	struct admin *a = arg;
	struct net_gen *g = net_runtime_gen_ref(a->rt);
	bool ok = admin_autoconfig_fill(g->cfg, ai);

	net_gen_unref(&g);
	return ok;
}

static size_t
admin_sessions(void *arg, struct http_admin_session *out, size_t max)
{
	struct admin *a = arg;
	struct net_session_info *s = NULL;
	size_t n = net_registry_snapshot(a->rt->registry, &s), k = 0;

	for (size_t i = 0; i < n && k < max; i++, k++) {
		struct http_admin_session *o = &out[k];

		memset(o, 0, sizeof(*o));
		o->id = s[i].id;
		(void)str_copy(o->user, sizeof(o->user), s[i].user);
		(void)str_copy(o->client, sizeof(o->client), s[i].client);
		(void)str_copy(o->protocol, sizeof(o->protocol), s[i].proto);
		(void)str_copy(o->state, sizeof(o->state), s[i].state);
		(void)str_copy(o->command, sizeof(o->command), s[i].command);
		o->since = (int64_t)s[i].since;
		o->bytes_out = s[i].bytes;
	}
	free(s);
	return k;
}

static bool
admin_count_one(const struct userdb_entry *e, void *arg)
{
	(void)e;
	(*(long *)arg)++;
	return true;
}

static long
admin_user_count(struct admin *a)
{
	struct net_gen *g = net_runtime_gen_ref(a->rt);
	long users = 0;

	if (atomic_load(&a->users_gen) == g->number) {
		users = atomic_load(&a->n_users);
	} else if (g->userdb != NULL) {
		/* Counted once per generation, here off the loop. */
		(void)userdb_iterate(g->userdb, admin_count_one, &users);
		atomic_store(&a->n_users, users);
		atomic_store(&a->users_gen, g->number);
	}
	net_gen_unref(&g);
	return users;
}

static void
admin_metric(struct http_admin_metric *m, size_t *n, size_t max,
    const char *name, const char *help, enum http_metric_type type,
    double value, const char *label)
{
	struct http_admin_metric *x;

	if (*n >= max)
		return;
	x = &m[(*n)++];
	memset(x, 0, sizeof(*x));
	x->name = name;
	x->help = help;
	x->type = type;
	x->value = value;
	if (label != NULL)
		(void)str_copy(x->label, sizeof(x->label), label);
}

static size_t
admin_metrics(void *arg, struct http_admin_metric *m, size_t max)
{
	struct admin *a = arg;
	struct net_counter_values cv[NET_PROTOCOL_MAX];
	unsigned np = net_protocol_count();
	char label[96];
	size_t n = 0;

	admin_metric(m, &n, max, "posuto_uptime_seconds",
	    "Seconds since the server started", HTTP_METRIC_GAUGE,
	    (double)(time(NULL) - a->started), NULL);
	admin_metric(m, &n, max, "posuto_users", "Users that can log in",
	    HTTP_METRIC_GAUGE, (double)admin_user_count(a), NULL);
	admin_metric(m, &n, max, "posuto_sessions", "Live sessions",
	    HTTP_METRIC_GAUGE, (double)net_registry_count(a->rt->registry),
	    NULL);
	admin_metric(m, &n, max, "posuto_listeners", "Listening sockets",
	    HTTP_METRIC_GAUGE, (double)a->rt->n_listeners, NULL);
	if (np > NET_PROTOCOL_MAX)
		np = NET_PROTOCOL_MAX;
	for (unsigned p = 0; p < np; p++)
		net_counters_read(a->rt, p, &cv[p]);
	/* One name's lines together (the exposition format wants that). */
	for (unsigned k = 0; k < NET_CNT_COUNT; k++) {
		for (unsigned p = 0; p < np; p++) {
			snprintf(label, sizeof(label), "protocol=\"%s\"",
			    net_protocol_at(p)->name);
			admin_metric(m, &n, max, admin_counter_names[k].name,
			    admin_counter_names[k].help, HTTP_METRIC_COUNTER,
			    (double)cv[p].v[k], label);
		}
	}
	for (unsigned p = 0; p < np; p++)
		for (unsigned r = 0; r < cv[p].n_reasons; r++) {
			char safe[NET_FAIL_REASON_LEN];

			/* Reasons are tokens of ours; keep labels clean
			 * whatever they hold. */
			(void)log_sanitize(safe, sizeof(safe), cv[p].reason[r],
			    strlen(cv[p].reason[r]));
			for (char *c = safe; *c != '\0'; c++)
				if (*c == '"' || *c == '\\')
					*c = '_';
			snprintf(label, sizeof(label),
			    "protocol=\"%s\",reason=\"%s\"",
			    net_protocol_at(p)->name, safe);
			admin_metric(m, &n, max, "posuto_login_failures_total",
			    "Failed logins by reason", HTTP_METRIC_COUNTER,
			    (double)cv[p].by_reason[r], label);
		}
	return n;
}

/* A password for the first start: 18 random bytes, base64 (24 chars). */
static void
admin_generate_password(char *out, size_t outsz)
{
	unsigned char raw[18];

	if (getrandom(raw, sizeof(raw), 0) != (ssize_t)sizeof(raw))
		fatal("getrandom failed");
	if (outsz < base64_encoded_len(sizeof(raw)) + 1)
		fatalx("admin_generate_password: buffer");
	base64_encode(raw, sizeof(raw), out);
	/* URL-safe letters: easier to copy from a log. */
	for (char *p = out; *p != '\0'; p++)
		*p = *p == '+' ? '-' : *p == '/' ? '_' : *p;
	explicit_bzero(raw, sizeof(raw));
}

bool
admin_new(const struct posuto_config *cfg, struct net_runtime *rt,
    struct admin **a_r)
{
	struct http_server_params p;
	struct admin *a;
	char err[512], pw[64];
	char *hash = NULL;

	*a_r = NULL;
	if (!cfg->admin.enabled)
		return true;
	if (cfg->admin.password_hash == NULL) {
		/* A login is always required, so the first start makes a
		 * password, says it once, and keeps only its hash. */
		admin_generate_password(pw, sizeof(pw));
		hash = passwd_hash(ADMIN_SCHEME, pw, strlen(pw));
		if (hash == NULL)
			fatalx("admin: cannot hash the generated password");
		if (config_admin_set_password_hash(cfg->path, hash, err,
		    sizeof(err)))
			log_warnx("admin: no Admin.PasswordHash: generated "
			    "password for user admin: %s (its hash is now in "
			    "%s; change it with `posuto admin passwd`)", pw,
			    cfg->path);
		else
			log_warnx("admin: no Admin.PasswordHash: generated "
			    "password for user admin: %s (valid until restart: "
			    "cannot store its hash: %s)", pw, err);
		explicit_bzero(pw, sizeof(pw));
	}
	a = xcalloc(1, sizeof(*a));
	a->rt = rt;
	a->started = time(NULL);
	atomic_init(&a->users_gen, 0);
	atomic_init(&a->n_users, 0);
	memset(&p, 0, sizeof(p));
	p.cfg = &cfg->admin;
	p.password_hash = hash != NULL ? hash : cfg->admin.password_hash;
	p.tls = cfg->admin.tls ? rt->gen->tls : NULL;
	p.source = (struct http_admin_source){
		.arg = a,
		.users = admin_users,
		.sessions = admin_sessions,
		.metrics = admin_metrics,
		.settings_json = admin_settings_json,
		.autoconfig = admin_autoconfig,
	};
	a->http = http_server_new(&p, err, sizeof(err));
	free_secret(hash);
	if (a->http == NULL) {
		log_error("%s", err);
		admin_free(&a);
		return false;
	}
	*a_r = a;
	return true;
}

bool
admin_start(struct admin *a)
{
	char err[256];

	if (a == NULL)
		return true;
	if (!http_server_start(a->http, err, sizeof(err))) {
		log_error("%s", err);
		return false;
	}
	log_info("web admin on http%s://%s/", strstr(http_server_name(a->http),
	    "(TLS)") != NULL ? "s" : "", http_server_name(a->http));
	return true;
}

void
admin_reloaded(struct admin *a, const struct posuto_config *cfg)
{
	if (a == NULL)
		return;
	if (cfg->admin.password_hash != NULL)
		http_server_set_password_hash(a->http,
		    cfg->admin.password_hash);
	http_server_changed(a->http, "users");
	http_server_changed(a->http, "settings");
}

void
admin_tick(struct admin *a)
{
	size_t n;

	if (a == NULL)
		return;
	/* The registry has no change callback: a changed count is the
	 * cue for pages to fetch the list again. */
	n = net_registry_count(a->rt->registry);
	if (n != a->last_sessions) {
		a->last_sessions = n;
		http_server_changed(a->http, "sessions");
	}
}

void
admin_free(struct admin **ap)
{
	struct admin *a = *ap;

	if (a == NULL)
		return;
	*ap = NULL;
	/* The thread first: nothing calls the source after this. */
	http_server_free(&a->http);
	free(a);
}

/* ------------------------------------------------------------------ */
/* posuto admin passwd                                                 */

static void
cmd_admin_usage(FILE *f)
{
	fprintf(f,
	    "usage: posuto admin passwd [-c FILE] [--scheme SCHEME]\n"
	    "\n"
	    "Reads the web admin's new password (a line on stdin, or prompted\n"
	    "twice on the terminal) and stores its hash (default %s) as\n"
	    "Admin.PasswordHash in the config file, keeping every other key.\n"
	    "A running server takes it on SIGHUP.\n", ADMIN_SCHEME);
}

int
cmd_admin(int argc, char **argv, const char *default_config)
{
	static const struct option longopts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "scheme", required_argument, NULL, 's' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *path = default_config, *scheme = ADMIN_SCHEME;
	char pw[PASSWORD_MAX + 2], err[512];
	char *hash;
	int ch, len;

	if (argc < 2 || strcmp(argv[1], "passwd") != 0) {
		if (argc >= 2 && (strcmp(argv[1], "--help") == 0 ||
		    strcmp(argv[1], "-h") == 0)) {
			cmd_admin_usage(stdout);
			return 0;
		}
		cmd_admin_usage(stderr);
		return 64;
	}
	argc--;
	argv++;
	optind = 1;
	opterr = 0;
	while ((ch = getopt_long(argc, argv, ":c:h", longopts, NULL)) != -1) {
		switch (ch) {
		case 'c':
			path = optarg;
			break;
		case 's':
			scheme = optarg;
			break;
		case 'h':
			cmd_admin_usage(stdout);
			return 0;
		default:
			fprintf(stderr, "posuto admin passwd: bad option or "
			    "missing argument\n");
			cmd_admin_usage(stderr);
			return 64;
		}
	}
	if (optind != argc) {
		fprintf(stderr, "posuto admin passwd: unexpected argument "
		    "'%s'\n", argv[optind]);
		return 64;
	}
	len = cmd_hash_read_secret("posuto admin passwd", "password", pw,
	    sizeof(pw));
	if (len < 0)
		return 1;
	if (len == 0) {
		fprintf(stderr, "posuto admin passwd: empty password\n");
		return 1;
	}
	hash = passwd_hash(scheme, pw, (size_t)len);
	explicit_bzero(pw, sizeof(pw));
	if (hash == NULL) {
		fprintf(stderr, "posuto admin passwd: unknown scheme '%s'\n",
		    scheme);
		return 64;
	}
	if (!config_admin_set_password_hash(path, hash, err, sizeof(err))) {
		fprintf(stderr, "posuto admin passwd: %s\n", err);
		free_secret(hash);
		return 1;
	}
	free_secret(hash);
	printf("Admin.PasswordHash set in %s\n", path);
	return 0;
}
