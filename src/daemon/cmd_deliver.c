/*
 * cmd_deliver.c - `posuto deliver` (cmd_deliver.h).
 *
 * Exit status for several recipients (an MTA's pipe sees one status for
 * all of them): never lose mail, then avoid duplicates.  Any temporary
 * failure: 75, so the MTA retries the whole message (recipients already
 * served get it again: one recipient per run avoids that, see posuto(8));
 * else any unknown user: 67 (the others are stored; a bounce is better
 * than a second copy); else any unusable mailbox or oversized message:
 * 73; else 0, only once every copy is durable.
 */
#include "daemon/cmd_deliver.h"

#include <errno.h>
#include <getopt.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <sysexits.h>
#include <unistd.h>

#include "auth/userdb.h"
#include "config/config.h"
#include "daemon/privdrop.h"
#include "deliver/deliver.h"
#include "lib/log.h"
#include "store/store.h"

static void
deliver_usage(FILE *f)
{
	fprintf(f, "usage: posuto deliver [-c FILE] [-f SENDER] [-a ADDRESS] "
	    "RECIPIENT...\n"
	    "  reads one message on stdin and stores it in each recipient's "
	    "mailbox\n");
}

static int
deliver_exit_of(enum deliver_status st)
{
	switch (st) {
	case DELIVER_OK:
		return EX_OK;
	case DELIVER_NO_USER:
		return EX_NOUSER;
	case DELIVER_TEMP:
		return EX_TEMPFAIL;
	case DELIVER_BAD_MSG:
		return EX_DATAERR;
	case DELIVER_PERM:
	case DELIVER_TOO_BIG:
		return EX_CANTCREAT;
	}
	return EX_SOFTWARE;
}

static enum deliver_status
deliver_status_of_exit(int code)
{
	switch (code) {
	case EX_OK:
		return DELIVER_OK;
	case EX_NOUSER:
		return DELIVER_NO_USER;
	case EX_CANTCREAT:
		return DELIVER_PERM;
	default:
		return DELIVER_TEMP;
	}
}

/*
 * Whom to deliver as, when root: the user's uid/gid from the userdb, else
 * the owner of the existing mailbox, else RunAsUser; else refuse (75),
 * never creating a mailbox as root.
 */
static bool
deliver_ids(const struct posuto_config *cfg, const struct userdb_entry *e,
    uid_t *uid_r, gid_t *gid_r, char *err, size_t errsz)
{
	struct passwd *pw;
	struct stat st;

	if (e->uid != USERDB_ID_NONE && e->uid != 0) {
		*uid_r = (uid_t)e->uid;
		if (e->gid != USERDB_ID_NONE)
			*gid_r = (gid_t)e->gid;
		else if ((pw = getpwuid(*uid_r)) != NULL)
			*gid_r = pw->pw_gid;
		else
			*gid_r = (gid_t)e->uid;
		return true;
	}
	/* an existing mailbox keeps its owner (root's included: its files
	 * must all be one owner's to be served, store.h) */
	if (e->mailbox_path != NULL && lstat(e->mailbox_path, &st) == 0) {
		*uid_r = st.st_uid;
		*gid_r = st.st_gid;
		return true;
	}
	if (cfg->run_as_user != NULL &&
	    (pw = getpwnam(cfg->run_as_user)) != NULL && pw->pw_uid != 0) {
		*uid_r = pw->pw_uid;
		*gid_r = pw->pw_gid;
		return true;
	}
	(void)snprintf(err, errsz, "no user to deliver as (the mailbox does "
	    "not exist yet and RunAsUser is not set): refusing to create it "
	    "as root");
	return false;
}

/* As root: the delivery in a child that has left root for the owner. */
static enum deliver_status
deliver_as_owner(const struct posuto_config *cfg,
    const struct deliver_spool *sp, const char *sender, const char *rcpt,
    const struct userdb_entry *e, char *err, size_t errsz)
{
	uid_t uid;
	gid_t gid;
	pid_t pid;
	int status;

	if (!deliver_ids(cfg, e, &uid, &gid, err, errsz))
		return DELIVER_TEMP;
	fflush(stderr);
	if ((pid = fork()) < 0) {
		(void)snprintf(err, errsz, "fork: %s", strerror(errno));
		return DELIVER_TEMP;
	}
	if (pid == 0) {
		char cerr[512] = "";
		enum deliver_status st;

		if (privdrop_to_ids(uid, gid, cerr, sizeof(cerr)) != 0) {
			fprintf(stderr, "posuto deliver: %s: %s\n", rcpt, cerr);
			_exit(EX_TEMPFAIL);
		}
		st = deliver_to_entry(sp, sender, rcpt, e, NULL, 0, cerr,
		    sizeof(cerr));
		if (st != DELIVER_OK)
			fprintf(stderr, "posuto deliver: %s: %s: %s\n", rcpt,
			    deliver_status_str(st), cerr);
		fflush(stderr);
		_exit(deliver_exit_of(st));
	}
	while (waitpid(pid, &status, 0) == -1) {
		if (errno != EINTR) {
			(void)snprintf(err, errsz, "waitpid: %s",
			    strerror(errno));
			return DELIVER_TEMP;
		}
	}
	if (!WIFEXITED(status)) {
		(void)snprintf(err, errsz, "delivery process killed by signal "
		    "%d", WIFSIGNALED(status) ? WTERMSIG(status) : 0);
		return DELIVER_TEMP;
	}
	err[0] = '\0';		/* the child said why */
	return deliver_status_of_exit(WEXITSTATUS(status));
}

int
cmd_deliver(int argc, char **argv, const char *default_config)
{
	static const struct option longopts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *config_path = default_config, *sender_arg = NULL;
	const char *address = NULL;
	char sender[1024], err[512];
	struct posuto_config *cfg = NULL;
	struct userdb *db = NULL;
	struct deliver_spool *sp = NULL;
	enum deliver_status st;
	bool any_temp = false, any_nouser = false, any_perm = false;
	int ch, rc;

	optind = 1;
	opterr = 0;
	while ((ch = getopt_long(argc, argv, ":c:f:a:h", longopts,
	    NULL)) != -1) {
		switch (ch) {
		case 'c':
			config_path = optarg;
			break;
		case 'f':
			sender_arg = optarg;
			break;
		case 'a':
			address = optarg;
			break;
		case 'h':
			deliver_usage(stdout);
			return EX_OK;
		default:
			fprintf(stderr, "posuto deliver: %s '%s'\n",
			    ch == ':' ? "missing argument to" : "bad option",
			    argv[optind - 1]);
			deliver_usage(stderr);
			return EX_USAGE;
		}
	}
	if (optind >= argc) {
		fprintf(stderr, "posuto deliver: no recipient\n");
		deliver_usage(stderr);
		return EX_USAGE;
	}
	log_init("posuto deliver", false, LOG_LVL_WARN);
	/* Postfix local(8) puts the envelope sender in $SENDER */
	if (sender_arg == NULL)
		sender_arg = getenv("SENDER");
	if (sender_arg == NULL)
		sender_arg = "";
	if (!deliver_address_ok(sender_arg, sender, sizeof(sender))) {
		fprintf(stderr, "posuto deliver: bad sender address\n");
		return EX_USAGE;
	}
	if (address != NULL) {
		char tmp[1024];

		if (!deliver_address_ok(address, tmp, sizeof(tmp)) ||
		    *tmp == '\0') {
			fprintf(stderr, "posuto deliver: bad -a address\n");
			return EX_USAGE;
		}
	}
	/* A broken or unreadable config is the administrator's to fix:
	 * the MTA must keep the mail meanwhile.  Not EX_CONFIG: Postfix
	 * (sys_exits.c: 5.3.5) and qmail bounce on 78. */
	if (config_load(config_path, &cfg, stderr) != 0)
		return EX_TEMPFAIL;
	if ((db = userdb_load(cfg, stderr)) == NULL) {
		config_free(&cfg);
		return EX_TEMPFAIL;
	}
	store_mbox_configure(cfg->mbox_state_dir);
	store_wire_configure(cfg->wire_cache_min_size);
	if (!store_tpops_configure(&cfg->sql, err, sizeof(err))) {
		fprintf(stderr, "posuto deliver: Sql: %s\n", err);
		userdb_unref(&db);
		config_free(&cfg);
		return EX_TEMPFAIL;
	}
	store_sql_configure(&cfg->sql);
	err[0] = '\0';
	st = deliver_spool_fd(STDIN_FILENO, &sp, err, sizeof(err));
	if (st != DELIVER_OK) {
		fprintf(stderr, "posuto deliver: %s: %s\n",
		    deliver_status_str(st), err);
		rc = deliver_exit_of(st);
		goto out;
	}
	for (int i = optind; i < argc; i++) {
		const char *rcpt = argv[i];
		const struct userdb_entry *e = NULL;
		char shown[1024];
		enum userdb_result ur = USERDB_NOT_FOUND;

		err[0] = '\0';
		if (deliver_address_ok(rcpt, shown, sizeof(shown)) &&
		    *shown != '\0')
			ur = deliver_resolve(db, shown, &e);
		if (ur == USERDB_TEMPFAIL) {
			st = DELIVER_TEMP;
			(void)snprintf(err, sizeof(err), "user database "
			    "unavailable");
		} else if (ur != USERDB_OK) {
			st = DELIVER_NO_USER;
		} else if (geteuid() == 0 &&
		    store_location_has_files(e->location)) {
			st = deliver_as_owner(cfg, sp, sender,
			    address != NULL ? address : shown, e, err,
			    sizeof(err));
		} else {
			st = deliver_to_entry(sp, sender,
			    address != NULL ? address : shown, e, NULL, 0, err,
			    sizeof(err));
		}
		if (st != DELIVER_OK && err[0] != '\0')
			fprintf(stderr, "posuto deliver: %s: %s: %s\n", rcpt,
			    deliver_status_str(st), err);
		else if (st == DELIVER_NO_USER)
			fprintf(stderr, "posuto deliver: %s: unknown user\n",
			    rcpt);
		any_temp |= st == DELIVER_TEMP;
		any_nouser |= st == DELIVER_NO_USER;
		any_perm |= st == DELIVER_PERM || st == DELIVER_TOO_BIG;
	}
	rc = any_temp ? EX_TEMPFAIL : any_nouser ? EX_NOUSER :
	    any_perm ? EX_CANTCREAT : EX_OK;
out:
	store_sql_configure(NULL);
	deliver_spool_free(&sp);
	userdb_unref(&db);
	config_free(&cfg);
	return rc;
}
