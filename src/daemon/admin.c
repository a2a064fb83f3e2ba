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
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include "auth/passwd.h"
#include "auth/userdb.h"
#include "config/config.h"
#include "daemon/admin.h"
#include "daemon/cmd_hash.h"
#include "daemon/cmd_user.h"
#include "daemon/server.h"
#include "config/config_edit.h"
#include "http/http.h"
#include "lib/log.h"
#include "lib/params.h"
#include "lib/strutil.h"
#include "lib/xmalloc.h"
#include "net/protocol.h"
#include "net/registry.h"
#include "net/runtime.h"
#include "net/transcript.h"
#include "net/tls.h"
#include "store/store.h"

#define ADMIN_SCHEME	"SHA512-CRYPT"

struct admin {
	struct http_server *http;
	struct net_runtime *rt;
	time_t started;
	size_t last_sessions;		/* loop thread only (admin_tick) */
	/* Users of generation users_gen, counted once per generation. */
	atomic_uint users_gen;
	atomic_long n_users;
	char *config_path;

	/* Reloads asked by the HTTP thread, done by the loop (reload_fn). */
	admin_reload_fn *reload_fn;
	void *reload_arg;
	int reload_fd;
	struct event *reload_ev;
	pthread_mutex_t mu;		/* guards what follows */
	pthread_cond_t reloaded;
	uint64_t reload_asked, reload_done;
	bool reload_ok;
	/* The chart: a ring of minutes, and the totals last seen (tick). */
	struct http_admin_point chart[HTTP_ADMIN_CHART_MINUTES];
	uint64_t last_logins, last_retrieved, last_bytes;
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
	[NET_CNT_UIDL_CHANGED] = { "posuto_uidl_drift_changed_total",
	    "Messages found at a login under a new UIDL (same file)" },
	[NET_CNT_UIDL_REAPPEARED] = { "posuto_uidl_drift_reappeared_total",
	    "UIDLs deleted at a QUIT found again at a login" },
	[NET_CNT_UIDL_RERETRIEVED] = { "posuto_uidl_drift_reretrieved_total",
	    "Messages reported at a login as retrieved in 3 or more sessions" },
};

struct admin_users_arg {
	http_admin_user_fn *fn;
	void *fn_arg;
	bool stats;		/* also count each mailbox (users_stats) */
};

static bool admin_users_one(const struct userdb_entry *e, void *arg);

static bool
admin_users_iterate(void *arg, http_admin_user_fn *fn, void *fn_arg,
    bool stats)
{
	struct admin *a = arg;
	struct admin_users_arg ua = { fn, fn_arg, stats };
	struct net_gen *g = net_runtime_gen_ref(a->rt);

	/* userdb_iterate may block: this is the HTTP thread, not the loop. */
	if (g->userdb != NULL)
		(void)userdb_iterate(g->userdb, admin_users_one, &ua);
	net_gen_unref(&g);
	return true;
}

static bool
admin_users(void *arg, http_admin_user_fn *fn, void *fn_arg)
{
	return admin_users_iterate(arg, fn, fn_arg, false);
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
		o->idle_timeout = s[i].idle_timeout;
		o->loop = s[i].loop;
		o->n_history = net_registry_history_count(&s[i]);
		if (o->n_history > sizeof(o->history) / sizeof(o->history[0]))
			o->n_history = sizeof(o->history) /
			    sizeof(o->history[0]);
		for (unsigned h = 0; h < o->n_history; h++)
			(void)str_copy(o->history[h], sizeof(o->history[h]),
			    net_registry_history_at(&s[i], h));
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

static struct http_admin_metric *
admin_metric(struct http_admin_metric *m, size_t *n, size_t max,
    const char *name, const char *help, enum http_metric_type type,
    double value, const char *label)
{
	struct http_admin_metric *x;

	if (*n >= max)
		return NULL;
	x = &m[(*n)++];
	memset(x, 0, sizeof(*x));
	x->name = name;
	x->help = help;
	x->type = type;
	x->value = value;
	if (label != NULL)
		(void)str_copy(x->label, sizeof(x->label), label);
	return x;
}

/* Live sessions by protocol and state: every state the registry shows
 * now (a state with no session has no line: Prometheus reads that as
 * absent, and sum() over the gauge is still the total). */
static void
admin_metrics_states(struct admin *a, struct http_admin_metric *m,
    size_t *n, size_t max)
{
	struct net_session_info *s = NULL;
	size_t ns = net_registry_snapshot(a->rt->registry, &s);
	char keys[32][NET_REG_PROTO_LEN + NET_REG_STATE_LEN + 2];
	unsigned counts[32], nk = 0;
	char label[96];

	for (size_t i = 0; i < ns; i++) {
		char k[sizeof(keys[0])];
		unsigned j;

		snprintf(k, sizeof(k), "%s/%s", s[i].proto, s[i].state[0] !=
		    '\0' ? s[i].state : "none");
		for (j = 0; j < nk && strcmp(keys[j], k) != 0; j++)
			;
		if (j == nk) {
			if (nk == 32)
				continue;
			memcpy(keys[nk], k, sizeof(k));
			counts[nk++] = 0;
		}
		counts[j]++;
	}
	free(s);
	for (unsigned j = 0; j < nk; j++) {
		char *slash = strchr(keys[j], '/');

		*slash = '\0';
		/* The registry's names are ours (fixed tokens): no quote. */
		snprintf(label, sizeof(label), "protocol=\"%.8s\",state=\"%.16s\"",
		    keys[j], slash + 1);
		admin_metric(m, n, max, "posuto_sessions_by_state",
		    "Live sessions by protocol and state", HTTP_METRIC_GAUGE,
		    counts[j], label);
	}
}

static void
admin_metrics_hist(struct admin *a, struct http_admin_metric *m, size_t *n,
    size_t max)
{
	static const struct {
		const char *family, *bucket, *sum, *count, *help;
	} fam[NET_HIST_COUNT] = {
		[NET_HIST_LOGIN] = { "posuto_login_duration_seconds",
		    "posuto_login_duration_seconds_bucket",
		    "posuto_login_duration_seconds_sum",
		    "posuto_login_duration_seconds_count",
		    "POP3 login (USER/PASS, APOP, AUTH) to its answer" },
		[NET_HIST_RETR] = { "posuto_retr_duration_seconds",
		    "posuto_retr_duration_seconds_bucket",
		    "posuto_retr_duration_seconds_sum",
		    "posuto_retr_duration_seconds_count",
		    "RETR to the whole message queued for the client" },
	};
	struct http_admin_metric *x;
	struct net_hist_values hv;
	char label[96];

	for (unsigned h = 0; h < NET_HIST_COUNT; h++) {
		net_hist_read(a->rt, (enum net_hist)h, &hv);
		for (unsigned b = 0; b <= NET_HIST_BUCKETS; b++) {
			if (b < NET_HIST_BUCKETS)
				snprintf(label, sizeof(label), "le=\"%g\"",
				    net_hist_bounds[b]);
			else
				snprintf(label, sizeof(label), "le=\"+Inf\"");
			x = admin_metric(m, n, max, fam[h].bucket,
			    fam[h].help, HTTP_METRIC_HISTOGRAM,
			    (double)hv.bucket[b], label);
			if (x != NULL)
				x->family = fam[h].family;
		}
		x = admin_metric(m, n, max, fam[h].sum, fam[h].help,
		    HTTP_METRIC_HISTOGRAM, hv.sum, NULL);
		if (x != NULL)
			x->family = fam[h].family;
		x = admin_metric(m, n, max, fam[h].count, fam[h].help,
		    HTTP_METRIC_HISTOGRAM, (double)hv.bucket[NET_HIST_BUCKETS],
		    NULL);
		if (x != NULL)
			x->family = fam[h].family;
	}
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
	    HTTP_METRIC_GAUGE, (double)atomic_load(&a->rt->listening), NULL);
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
	admin_metrics_states(a, m, &n, max);
	admin_metrics_hist(a, m, &n, max);
	return n;
}

/* ------------------------------------------------------------------ */
/* Edits from the web admin (HTTP thread)                              */

/* One user as the pages show it.  With stats, counted as `posuto user
 * list` does: the mailbox is opened (its lock held for the count only);
 * a mailbox a session holds is "in-use". */
static bool
admin_users_one(const struct userdb_entry *e, void *arg)
{
	struct admin_users_arg *ua = arg;
	struct mailbox *mb = NULL;
	char err[256];
	enum store_status st;
	struct http_admin_user u = {
		.name = e->name,
		.mailbox = e->mailbox_path,
		.format = e->format,
		.location = e->location,
		.scheme = passwd_scheme_name(e->password),
		.apop = e->apop_secret != NULL,
		.origin = e->origin,
		.messages = -1,
		.octets = -1,
	};

	if (!ua->stats)
		return ua->fn(&u, ua->fn_arg);
	st = mailbox_open(e->location, e->name, &mb, err, sizeof(err));
	if (st == STORE_OK) {
		struct mailbox_drift dr;

		u.messages = mailbox_count(mb);
		u.octets = (long long)mailbox_total_size(mb);
		/* what a login now would find (recording nothing) */
		mailbox_drift_report(mb, &dr);
		u.drift_tracked = dr.enabled;
		u.drift_changed = dr.changed;
		u.drift_reappeared = dr.reappeared;
		u.drift_reretrieved = dr.reretrieved;
		mailbox_close(&mb);
	} else {
		u.stats_error = st == STORE_IN_USE ? "in-use" : "error";
	}
	return ua->fn(&u, ua->fn_arg);
}

static bool
admin_users_stats(void *arg, http_admin_user_fn *fn, void *fn_arg)
{
	return admin_users_iterate(arg, fn, fn_arg, true);
}

/* The loop applies the edit now (not in two seconds, when the file
 * watcher would): the caller waits for it, a bounded time. */
static bool
admin_reload_now(struct admin *a)
{
	struct timespec until;
	uint64_t one = 1, mine;
	bool ok;

	if (a->reload_fn == NULL)
		return true;
	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += 10;
	pthread_mutex_lock(&a->mu);
	mine = ++a->reload_asked;
	if (write(a->reload_fd, &one, sizeof(one)) < 0 && errno != EAGAIN)
		log_warn("admin: eventfd");
	while (a->reload_done < mine)
		if (pthread_cond_timedwait(&a->reloaded, &a->mu, &until) != 0)
			break;
	ok = a->reload_done >= mine && a->reload_ok;
	pthread_mutex_unlock(&a->mu);
	return ok;
}

static void
admin_on_reload(evutil_socket_t fd, short what, void *arg)
{
	struct admin *a = arg;
	uint64_t v, target;
	bool ok;

	(void)what;
	if (read(fd, &v, sizeof(v)) < 0 && errno != EAGAIN)
		log_warn("admin: eventfd");
	pthread_mutex_lock(&a->mu);
	target = a->reload_asked;
	pthread_mutex_unlock(&a->mu);
	ok = a->reload_fn(a->reload_arg);
	pthread_mutex_lock(&a->mu);
	a->reload_done = target;
	a->reload_ok = ok;
	pthread_cond_broadcast(&a->reloaded);
	pthread_mutex_unlock(&a->mu);
}

void
admin_set_reload(struct admin *a, admin_reload_fn *fn, void *arg)
{
	if (a == NULL)
		return;
	a->reload_fn = fn;
	a->reload_arg = arg;
	a->reload_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (a->reload_fd < 0)
		fatal("admin: eventfd");
	a->reload_ev = event_new(a->rt->base, a->reload_fd,
	    EV_READ | EV_PERSIST, admin_on_reload, a);
	if (a->reload_ev == NULL || event_add(a->reload_ev, NULL) != 0)
		fatalx("admin: cannot set up the reload event");
}

static int
admin_user_op(void *arg, const struct http_admin_user_op *op, char *msg,
    size_t msgsz)
{
	struct admin *a = arg;
	struct cmd_user_req r = {
		.op = op->op,
		.config_path = a->config_path,
		.name = op->name,
		.scheme = op->scheme,
		.secret = op->secret,
		.secret_len = op->secret_len,
		.purge = op->purge,
		.to_passwd_file = -1,
	};
	int rc = cmd_user_apply(&r, msg, msgsz);

	switch (rc) {
	case 0:
		if (!admin_reload_now(a))
			(void)snprintf(msg, msgsz, "saved, but the reload "
			    "failed (see the log)");
		return 200;
	case CMD_USER_EXIT_NOUSER:
		return 404;
	case EXIT_CONFIG:
		return 409;		/* the file has errors: fix it first */
	default:
		return 400;
	}
}

/*
 * "FILE:LINE:COL: KEY: message" (config_load, server_load_runtime) into
 * key and message; warnings are skipped.  False if text holds no error.
 */
static bool
admin_first_error(const char *text, const char *file, char *key,
    size_t keysz, char *msg, size_t msgsz)
{
	const char *line = text;

	while (line != NULL && *line != '\0') {
		const char *end = strchr(line, '\n');
		size_t len = end != NULL ? (size_t)(end - line) : strlen(line);
		const char *p = line, *k, *colon;

		if (strncmp(line, "warning: ", 9) != 0) {
			if (strncmp(p, file, strlen(file)) == 0)
				p += strlen(file);
			/* :LINE:COL: */
			for (int i = 0; i < 2 && *p == ':'; i++) {
				p++;
				while (*p >= '0' && *p <= '9')
					p++;
			}
			if (*p == ':')
				p++;
			while (*p == ' ')
				p++;
			k = p;
			colon = strstr(k, ": ");
			if (colon != NULL && colon < line + len &&
			    memchr(k, ' ', (size_t)(colon - k)) == NULL) {
				(void)snprintf(key, keysz, "%.*s",
				    (int)(colon - k), k);
				p = colon + 2;
			}
			(void)snprintf(msg, msgsz, "%.*s",
			    (int)(line + len - p), p);
			return true;
		}
		line = end != NULL ? end + 1 : NULL;
	}
	return false;
}

/* Puts the text from before an edit back (the same atomic replace). */
static void
admin_settings_restore(struct admin *a, const char *orig, size_t len)
{
	struct config_edit_file f;
	char err[512];

	memset(&f, 0, sizeof(f));
	f.fd = -1;
	if (!config_edit_file_open(&f, a->config_path, true, err, sizeof(err)) ||
	    !config_edit_file_stage(&f, orig, len, err, sizeof(err)) ||
	    !config_edit_file_commit(&f, err, sizeof(err)))
		log_error("admin: cannot restore %s: %s", a->config_path, err);
	config_edit_file_close(&f);
	(void)admin_reload_now(a);
}

static int
admin_settings_patch(void *arg, const char *patch, size_t len, char *key,
    size_t keysz, char *msg, size_t msgsz)
{
	struct admin *a = arg;
	struct config_edit *ed = NULL;
	struct posuto_config *ncfg = NULL;
	struct userdb *db = NULL;
	struct tls_ctx *tls = NULL;
	const char *tmp = NULL;
	char *text = NULL, *orig = NULL;
	size_t tlen = 0, orig_len = 0;
	FILE *mem;
	bool ok;
	int code = 400;

	key[0] = msg[0] = '\0';
	if (!config_edit_open(a->config_path, true, &ed, msg, msgsz))
		return 409;
	orig_len = config_edit_file_of(ed)->len;
	orig = xmalloc(orig_len + 1);
	memcpy(orig, config_edit_file_of(ed)->data, orig_len + 1);
	if (!config_edit_merge(ed, patch, len, msg, msgsz))
		goto out;
	if (!config_edit_stage(ed, &tmp, msg, msgsz)) {
		code = 500;
		goto out;
	}
	/* Checked as a reload checks it, before it replaces the file. */
	mem = open_memstream(&text, &tlen);
	if (mem == NULL)
		fatal("open_memstream");
	ok = config_load(tmp, &ncfg, mem) == 0 &&
	    server_load_runtime(ncfg, false, mem, &db, &tls);
	fclose(mem);
	userdb_unref(&db);
	tls_ctx_unref(&tls);
	config_free(&ncfg);
	if (!ok) {
		if (!admin_first_error(text, tmp, key, keysz, msg, msgsz))
			(void)snprintf(msg, msgsz, "the server would refuse "
			    "this configuration");
		goto out;
	}
	if (!config_edit_commit(ed, msg, msgsz)) {
		code = 500;
		goto out;
	}
	code = 200;
	if (!admin_reload_now(a)) {
		/* The file is valid but could not be applied (a port in
		 * use): the old text goes back, so file and server agree. */
		admin_settings_restore(a, orig, orig_len);
		(void)snprintf(msg, msgsz, "cannot be applied (a port in use? "
		    "see the log); nothing changed");
		code = 409;
	}
out:
	free_secret(orig);
	free(text);
	config_edit_free(&ed);
	return code;
}

static bool
admin_kick(void *arg, uint64_t id)
{
	struct admin *a = arg;

	return net_runtime_kick(a->rt, id);
}

static bool
admin_transcript(void *arg, uint64_t id, char **text_r, size_t *len_r)
{
	struct admin *a = arg;

	return net_transcripts_get(a->rt->transcripts, id, text_r, len_r);
}

static size_t
admin_chart(void *arg, struct http_admin_point *out, size_t max)
{
	struct admin *a = arg;
	int64_t now = (int64_t)time(NULL) / 60;
	size_t k = 0;

	pthread_mutex_lock(&a->mu);
	for (int64_t m = now - HTTP_ADMIN_CHART_MINUTES + 1; m <= now &&
	    k < max; m++) {
		const struct http_admin_point *p =
		    &a->chart[m % HTTP_ADMIN_CHART_MINUTES];

		out[k] = p->minute == m ? *p : (struct http_admin_point){
			.minute = m };
		k++;
	}
	pthread_mutex_unlock(&a->mu);
	return k;
}

/* Once a second (loop): what happened since, into this minute. */
static void
admin_chart_tick(struct admin *a)
{
	struct net_counter_values cv;
	uint64_t logins = 0, retrieved = 0, bytes = 0;
	int64_t m = (int64_t)time(NULL) / 60;
	struct http_admin_point *p;

	for (unsigned i = 0; i < net_protocol_count() &&
	    i < NET_PROTOCOL_MAX; i++) {
		net_counters_read(a->rt, i, &cv);
		logins += cv.v[NET_CNT_LOGIN_OK];
		retrieved += cv.v[NET_CNT_RETRIEVED];
		bytes += cv.v[NET_CNT_RETRIEVED_BYTES];
	}
	pthread_mutex_lock(&a->mu);
	p = &a->chart[m % HTTP_ADMIN_CHART_MINUTES];
	if (p->minute != m)
		*p = (struct http_admin_point){ .minute = m };
	/* The counters start at 0 with the process, as last_* do. */
	p->logins += logins - a->last_logins;
	p->retrieved += retrieved - a->last_retrieved;
	p->bytes += bytes - a->last_bytes;
	a->last_logins = logins;
	a->last_retrieved = retrieved;
	a->last_bytes = bytes;
	pthread_mutex_unlock(&a->mu);
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
	a->config_path = xstrdup(cfg->path);
	a->reload_fd = -1;
	pthread_mutex_init(&a->mu, NULL);
	pthread_cond_init(&a->reloaded, NULL);
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
		.users_stats = admin_users_stats,
		.user_op = admin_user_op,
		.settings_patch = admin_settings_patch,
		.kick = admin_kick,
		.transcript = admin_transcript,
		.chart = admin_chart,
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
	admin_chart_tick(a);
	/* Sessions also change without coming or going (a login, a
	 * command): the page asks again at most once a second. */
	n = net_registry_count(a->rt->registry);
	if (n != a->last_sessions || n > 0) {
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
	if (a->reload_ev != NULL)
		event_free(a->reload_ev);
	if (a->reload_fd >= 0)
		close(a->reload_fd);
	pthread_cond_destroy(&a->reloaded);
	pthread_mutex_destroy(&a->mu);
	free(a->config_path);
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
