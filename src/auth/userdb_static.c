/*
 * userdb_static.c - the "static" driver: the config's Users[].
 *
 * config/ only reads the keys; what a user name or a stored password may
 * be is auth's to say, so they are checked here, and reported at their
 * place in the file (config_where()) as config_load() reports its own.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth/passwd.h"
#include "auth/userdb_int.h"
#include "lib/xmalloc.h"

static bool
static_configured(const struct posuto_config *cfg)
{
	return cfg->n_users > 0;
}

static struct userdb_source *
static_load(struct userdb_load_ctx *ctx)
{
	const struct posuto_config *cfg = ctx->cfg;
	struct userdb_source *t = userdb_table_new();

	for (size_t i = 0; i < cfg->n_users; i++) {
		const struct user_cfg *uc = &cfg->users[i];
		struct userdb_user *u = userdb_table_add(t, cfg);

		char key[64], where[600];
		const char *why;

		(void)snprintf(key, sizeof(key), "Pop3Server.Users[%zu]", i);
		config_where(cfg, key, where, sizeof(where));
		u->origin = xstrdup(where);
		u->name = xstrdup(uc->name != NULL ? uc->name : "");
		u->password = xstrdup(uc->password != NULL ? uc->password : "");
		if (uc->apop_secret != NULL)
			u->apop_secret = xstrdup(uc->apop_secret);
		if (uc->format != NULL) {
			free(u->format);
			u->format = xstrdup(uc->format);
		}
		if (uc->has_login_delay)
			u->pub.login_delay = uc->login_delay;
		if (uc->expire_days != EXPIRE_INHERIT)
			u->pub.expire_days = uc->expire_days;
		if (!userdb_name_check(u->name, strlen(u->name), &why)) {
			(void)snprintf(key, sizeof(key),
			    "Pop3Server.Users[%zu].UserName", i);
			config_where(cfg, key, where, sizeof(where));
			userdb_load_error(ctx, "%s: %s", where, why);
		} else if (why = NULL, !passwd_stored_valid(u->password,
		    &why)) {
			(void)snprintf(key, sizeof(key),
			    "Pop3Server.Users[%zu].Password", i);
			config_where(cfg, key, where, sizeof(where));
			userdb_load_error(ctx, "%s: %s", where, why != NULL ?
			    why : "not a usable stored password");
		} else {
			(void)userdb_user_set_mailbox(ctx, u, uc->mailbox);
		}
	}
	userdb_table_finish(ctx, t);
	return t;
}

const struct userdb_driver userdb_driver_static = {
	.name = "static",
	.configured = static_configured,
	.load = static_load,
	.lookup = userdb_table_lookup,
	.iterate = userdb_table_iterate,
	.free = userdb_table_free,
};
