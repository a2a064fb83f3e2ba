/*
 * userdb_static.c - the "static" driver: the config's Users[].
 */
#include <stdlib.h>

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

		u->origin = xasprintf("%s: Users[%zu]",
		    cfg->path != NULL ? cfg->path : "config", i);
		u->name = xstrdup(uc->name != NULL ? uc->name : "");
		u->password = xstrdup(uc->password != NULL ? uc->password : "");
		if (uc->apop_secret != NULL)
			u->apop_secret = xstrdup(uc->apop_secret);
		if (uc->format != MBOX_FORMAT_AUTO)
			u->pub.format = uc->format;
		if (uc->has_login_delay)
			u->pub.login_delay = uc->login_delay;
		if (uc->expire_days != EXPIRE_INHERIT)
			u->pub.expire_days = uc->expire_days;
		if (userdb_user_check(ctx, u))
			(void)userdb_user_set_mailbox(ctx, u, uc->mailbox);
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
