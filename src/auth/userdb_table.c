/*
 * userdb_table.c - the sorted in-memory table behind the static and
 * passwd-file drivers, and the checks every driver's users go through.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "auth/passwd.h"
#include "auth/userdb_int.h"
#include "lib/xmalloc.h"

struct userdb_source {
	struct userdb_user *users;	/* sorted by name after finish */
	size_t n_users, cap;
};

struct userdb_source *
userdb_table_new(void)
{
	return xcalloc(1, sizeof(struct userdb_source));
}

struct userdb_user *
userdb_table_add(struct userdb_source *t, const struct posuto_config *cfg)
{
	struct userdb_user *u;

	if (t->n_users == t->cap) {
		t->cap = t->cap == 0 ? 16 : t->cap * 2;
		t->users = xreallocarray(t->users, t->cap, sizeof(*t->users));
	}
	u = &t->users[t->n_users];
	memset(u, 0, sizeof(*u));
	u->seq = t->n_users++;
	u->pub.uid = u->pub.gid = USERDB_ID_NONE;
	u->format = xstrdup(cfg->format != NULL ? cfg->format : "auto");
	u->pub.login_delay = cfg->login_delay;
	u->pub.expire_days = cfg->expire_days;
	return u;
}

size_t
userdb_table_size(const struct userdb_source *t)
{
	return t->n_users;
}

struct userdb_user *
userdb_table_at(struct userdb_source *t, size_t i)
{
	return &t->users[i];
}

static void
user_free(struct userdb_user *u)
{
	free(u->name);
	free_secret(u->password);
	free_secret(u->apop_secret);
	free(u->mailbox_path);
	free(u->format);
	free(u->location);
	free(u->home);
	free(u->origin);
}

void
userdb_table_free(struct userdb_source *t)
{
	if (t == NULL)
		return;
	for (size_t i = 0; i < t->n_users; i++)
		user_free(&t->users[i]);
	free(t->users);
	free(t);
}

/* By name, then in file order so that the later one is reported. */
static int
user_cmp(const void *a, const void *b)
{
	const struct userdb_user *ua = a, *ub = b;
	int c = strcmp(ua->name, ub->name);

	return c != 0 ? c : (ua->seq > ub->seq) - (ua->seq < ub->seq);
}

void
userdb_table_finish(struct userdb_load_ctx *ctx, struct userdb_source *t)
{
	if (t->n_users > 0)	/* qsort(NULL, 0) is undefined */
		qsort(t->users, t->n_users, sizeof(*t->users), user_cmp);
	for (size_t i = 0; i < t->n_users; i++) {
		struct userdb_user *u = &t->users[i];

		if (i > 0 && strcmp(u->name, t->users[i - 1].name) == 0)
			userdb_load_error(ctx, "%s: user %s already defined "
			    "at %s", u->origin, u->name, t->users[i - 1].origin);
		if (u->format == NULL)
			u->format = xstrdup("auto");
		if (u->mailbox_path != NULL)
			u->location = xasprintf("%s:%s", u->format,
			    u->mailbox_path);
		u->pub.format = u->format;
		u->pub.name = u->name;
		u->pub.password = u->password;
		u->pub.apop_secret = u->apop_secret;
		u->pub.mailbox_path = u->mailbox_path;
		u->pub.location = u->location;
		u->pub.home = u->home;
		u->pub.origin = u->origin;
	}
}

enum userdb_result
userdb_table_lookup(struct userdb_source *t, const char *name,
    struct userdb_entry **entry_r)
{
	size_t lo = 0, hi = t->n_users;

	*entry_r = NULL;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = strcmp(name, t->users[mid].name);

		if (c == 0) {
			*entry_r = &t->users[mid].pub;
			return USERDB_OK;
		}
		if (c < 0)
			hi = mid;
		else
			lo = mid + 1;
	}
	return USERDB_NOT_FOUND;
}

bool
userdb_table_iterate(struct userdb_source *t, userdb_source_iter_fn *fn,
    void *arg)
{
	for (size_t i = 0; i < t->n_users; i++)
		if (!fn(&t->users[i].pub, arg))
			return false;
	return true;
}

bool
userdb_user_check(struct userdb_load_ctx *ctx, struct userdb_user *u)
{
	const char *why;

	if (!userdb_name_check(u->name, strlen(u->name), &why)) {
		userdb_load_error(ctx, "%s: invalid user name: %s", u->origin,
		    why);
		return false;
	}
	why = NULL;
	if (!passwd_stored_valid(u->password, &why)) {
		userdb_load_error(ctx, "%s: user %s: password: %s", u->origin,
		    u->name, why != NULL ? why : "not usable");
		return false;
	}
	return true;
}

bool
userdb_user_set_mailbox(struct userdb_load_ctx *ctx, struct userdb_user *u,
    const char *tmpl)
{
	const struct posuto_config *cfg = ctx->cfg;
	char *dflt = NULL;
	const char *why;

	/* sql: the mailbox is the user's row in the database, no path */
	if (u->format != NULL && strcasecmp(u->format, "sql") == 0) {
		u->mailbox_path = xstrdup("");
		return true;
	}
	if (tmpl == NULL)
		tmpl = cfg->mailbox_template;
	if (tmpl == NULL && cfg->mail_dir != NULL)
		tmpl = dflt = xasprintf("%s/%%u", cfg->mail_dir);
	if (tmpl == NULL && u->home != NULL)
		tmpl = "%h/Maildir";
	if (tmpl == NULL) {
		userdb_load_error(ctx, "%s: user %s: no mailbox location (set "
		    "MailDir or MailboxPath)", u->origin, u->name);
		return false;
	}
	u->mailbox_path = userdb_expand_path_home(tmpl, u->name, u->home,
	    &why);
	free(dflt);
	if (u->mailbox_path == NULL) {
		userdb_load_error(ctx, "%s: user %s: mailbox template: %s",
		    u->origin, u->name, why);
		return false;
	}
	if (u->mailbox_path[0] != '/') {
		userdb_load_error(ctx, "%s: user %s: mailbox path %s is not "
		    "absolute", u->origin, u->name, u->mailbox_path);
		return false;
	}
	return true;
}
