/*
 * config.h - the configuration snapshot: JSON (jansson) -> plain structs.
 *
 * The file is JumboDogX-compatible: a top-level object whose "Pop3Server"
 * member holds Enabled, BindAddress, Port, TimeOut, MailDir, Users[] with
 * the same meaning, plus posuto's own keys (see posuto.json(5)).
 * Only config/ sees jansson.  A loaded config is immutable and owned by
 * whoever called config_load(); SIGHUP builds a new one.
 *
 * After a successful load every path (MailDir, MailboxPath, PasswdFile,
 * LockFile, Tls files) is absolute: relative ones are taken relative to the config
 * file's directory.  Mailbox templates contain only %u %n %d %h %%.
 */
#ifndef POSUTO_CONFIG_H
#define POSUTO_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "lib/log.h"

enum listen_tls {
	LISTEN_TLS_NONE = 0,	/* plain; no certificate, so no STLS */
	LISTEN_TLS_IMPLICIT,	/* POP3S, RFC 8314 */
	LISTEN_TLS_STARTTLS,	/* plain with STLS (RFC 2595); a "none" port
				 * becomes this when a certificate is set */
};

/* What a listener serves (Listen[].Protocol). */
enum listen_proto {
	LISTEN_PROTO_POP3 = 0,
	LISTEN_PROTO_LMTP,	/* RFC 2033, for the MTA */
	LISTEN_PROTO_SMTP_SINK,	/* development SMTP sink: not for the internet */
};

struct listen_cfg {
	char *address;		/* numeric IPv4 or IPv6 literal; NULL with path */
	uint16_t port;
	enum listen_tls tls;
	/* ProxyTrusted: peers that send a PROXY header naming the client
	 * (haproxy), lib/cidr.h list syntax; NULL: none. */
	char *proxy_trusted;
	enum listen_proto protocol;
	char *path;		/* Path: a unix socket (LMTP only) or NULL */
	char *mode;		/* Mode of the socket, octal text ("0660") */
	char *owner, *group;	/* Owner/Group of the socket, or NULL */
	/* AllowNonLoopback: the sink may bind a non-loopback address. */
	bool allow_non_loopback;
	unsigned max_message_size;	/* MaxMessageSize (LMTP, sink); bytes */
};

/* Line:column of a key in the file (0:0 if not known), see config_where(). */
struct config_where_pos {
	unsigned line, col;
};

struct user_cfg {
	char *name;
	/* Stored secret, always normalised to "{SCHEME}data": JumboDogX
	 * HashType SHA256/SHA512 + hex becomes {SHA256.HEX}/{SHA512.HEX}. */
	char *password;
	char *apop_secret;	/* plaintext-equivalent APOP secret or NULL */
	char *mailbox;		/* per-user MailboxPath template or NULL */
	char *format;		/* per-user MailboxFormat as given (a store
				 * driver name or "auto"), NULL = the
				 * server's */
	/* RFC 2449 policy overrides (LoginDelay, Expire); see below. */
	unsigned login_delay;		/* valid if has_login_delay */
	bool has_login_delay;
	int expire_days;		/* days, EXPIRE_NEVER or EXPIRE_INHERIT */
	char *uidl_compat;	/* per-user UidlCompat or NULL = the server's */
	char *uidl_format;	/* per-user UidlFormat or NULL = the server's */
	/* Where the element, its UserName and its Password are in the file,
	 * for config_where() ("Pop3Server.Users[N]", "...[N].UserName",
	 * "...[N].Password"): the static userdb driver checks those two. */
	struct config_where_pos where, where_name, where_password;
};

/* Expire values: days (0 = deleted at the QUIT after the first RETR), or: */
#define EXPIRE_NEVER	(-1)	/* posuto never deletes mail by itself */
#define EXPIRE_INHERIT	(-2)	/* per user: the server's Expire applies */
#define EXPIRE_MAX_DAYS	36500
#define LOGIN_DELAY_MAX	86400	/* s */

struct tls_cfg {
	char *cert_file;	/* PEM chain; NULL = no TLS at all */
	char *key_file;		/* defaults to cert_file (one PEM with both) */
	char *ciphers;		/* TLS <= 1.2 cipher list or NULL (OpenSSL default) */
	char *ciphersuites;	/* TLS 1.3 suites or NULL */
	char *min_version;	/* "TLSv1.2" (default) or "TLSv1.3" */
};

/* Sql {...}: users (and later mail) in PostgreSQL or MariaDB/MySQL;
 * see docs/sql.md.  driver NONE: no Sql object. */
enum sql_driver_kind {
	SQL_DRIVER_NONE = 0,
	SQL_DRIVER_PGSQL,	/* "pgsql": libpq */
	SQL_DRIVER_MYSQL,	/* "mysql": libmariadb (MariaDB or MySQL) */
};

enum sql_schema_kind {
	SQL_SCHEMA_POSUTO = 0,	/* posuto's own tables (posuto sql init) */
	SQL_SCHEMA_TPOPS,	/* TPOPS 0.4's user/msg tables, as they are */
};

/* Where a TPOPS user's mail is, as TPOPS's MailboxType said. */
enum sql_tpops_mailbox {
	SQL_TPOPS_MAILBOX_MSG = 0,	/* "msg": the msg table (tpops:/UID) */
	SQL_TPOPS_MAILBOX_MAILDIR,	/* "maildir": user.maildir, a Maildir */
};

struct sql_cfg {
	enum sql_driver_kind driver;	/* Driver */
	char *host;		/* Host: name or address; NULL = Socket or
				 * the client library's default */
	unsigned port;		/* Port; 0 = the driver's default */
	char *socket;		/* Socket: unix socket (mysql) or its
				 * directory (pgsql) */
	char *database;		/* Database */
	char *user;		/* User; NULL = the library's default */
	char *password_file;	/* PasswordFile: first line is the password */
	enum sql_schema_kind schema;	/* Schema */
	char *password_scheme;	/* PasswordScheme: for stored passwords
				 * without "{SCHEME}"; NULL = none */
	unsigned connect_timeout;	/* ConnectTimeOut, s */
	unsigned query_timeout;		/* QueryTimeOut, s */
	unsigned pool_size;		/* PoolSize: connections per process */
	/* The sql userdb's cache of lookups (userdb_sql.c): CacheSize
	 * entries (0: off), CacheTimeToLive / CacheNegativeTimeToLive
	 * seconds for a found user / a name not found (0: not kept). */
	unsigned cache_size;
	unsigned cache_ttl;
	unsigned cache_negative_ttl;
	enum sql_tpops_mailbox tpops_mailbox;	/* TpopsMailbox (tpops) */
	/* Not a key: set by a caller that needs text columns as their
	 * stored bytes, unconverted (MariaDB connection charset "binary",
	 * PostgreSQL client_encoding SQL_ASCII):
	 * the tpops store, whose tables have the charset of the MySQL
	 * they were made on.  false: utf8mb4. */
	bool bytes_as_stored;
};

/* Admin.Autoconfig: what the client setup documents say (posuto.json(5)). */
enum autoconfig_login {
	AUTOCONFIG_LOGIN_LOCAL_PART = 0,	/* "LocalPart": alice */
	AUTOCONFIG_LOGIN_ADDRESS,		/* "Address": alice@example.net */
};

struct autoconfig_cfg {
	char *hostname;		/* Hostname; NULL: "localhost" when every POP3
				 * listener is loopback, else the host's name */
	char *domain;		/* Domain; NULL: from the address asked for */
	char *display_name;	/* DisplayName; NULL: "posuto on HOSTNAME" */
	enum autoconfig_login login;	/* LoginName */
	char *smtp_hostname;	/* SmtpHostname; NULL: Hostname */
	uint16_t smtp_port;	/* SmtpPort; 0: the SMTP sink's, if any */
	enum listen_tls smtp_security;	/* SmtpSecurity */
	bool smtp_auth;		/* SmtpAuth */
	/* Address + Port: a listener serving only these documents, for
	 * clients that cannot reach the admin (Port 0: none). */
	char *address;
	uint16_t port;
};

/* The web admin (issue 12), the top-level "Admin" object. */
struct admin_cfg {
	bool enabled;		/* an "Admin" object is in the file and its
				 * Enabled (default true) is not false */
	char *address;		/* Address, numeric; default 127.0.0.1 */
	uint16_t port;		/* Port; default 5001 */
	char *password_hash;	/* PasswordHash "{SCHEME}..." or NULL: the
				 * first start generates one (auth judges
				 * the scheme, as for Users[].Password) */
	bool tls;		/* Tls: HTTPS with Pop3Server.Tls's certificate */
	unsigned session_timeout;	/* SessionTimeOut, s of inactivity */
	char **hostnames;	/* Hostnames: more names the Host header may
				 * carry (beside 127.0.0.1, localhost, [::1]) */
	size_t n_hostnames;
	struct autoconfig_cfg autoconfig;	/* Autoconfig {...} */
};

/* Pop3Server.Faults[]: what a tester asks posuto to do wrong for one
 * user (posuto.json(5), "Fault injection"). */
enum fault_kind {
	FAULT_IN_USE = 0,	/* "in-use": -ERR [IN-USE] at login */
	FAULT_TEMP_FAIL,	/* "temp-fail": -ERR [SYS/TEMP] at login, or
				 * to the Command-th command after it */
	FAULT_LOGIN_DELAY,	/* "login-delay": -ERR [LOGIN-DELAY] */
	FAULT_THROTTLE,		/* "throttle": BytesPerSecond */
	FAULT_DROP,		/* "drop": close AfterBytes into a RETR */
	FAULT_DELAY,		/* "delay": every reply Milliseconds late */
	FAULT_WRONG_SIZE,	/* "wrong-size": LIST lies about Message */
	FAULT_UIDL_DRIFT,	/* "uidl-drift": Message's UIDL changes in
				 * every session */
	FAULT_KIND_COUNT
};

struct fault_cfg {
	char *user;
	enum fault_kind kind;
	unsigned command, seconds, bytes_per_second, after_bytes,
	    milliseconds, message;
};

/* Pop3Server.Transcripts {...}: whose sessions are recorded (issue 14,
 * posuto.json(5), "Transcripts"). */
struct transcripts_cfg {
	char **users;		/* Users: names, or "*" for everyone */
	size_t n_users;
	char *directory;	/* Directory: files written there, or NULL */
};

#define CONFIG_WHERE_MAX	24

struct posuto_config {
	char *path;			/* file it was loaded from */
	bool enabled;			/* Enabled (JumboDogX); false: serve refuses to start */

	struct listen_cfg *listens;	/* BindAddress+Port, or Listen[]; >= 1 */
	size_t n_listens;

	unsigned idle_timeout;		/* TimeOut, seconds; default 600 */
	unsigned session_timeout;	/* SessionTimeOut, seconds; 0 = none */
	unsigned auth_fail_delay_ms;	/* AuthFailDelay (ms) */
	unsigned max_connections;	/* MaxConnections */
	unsigned max_connections_per_ip; /* MaxConnectionsPerIp */
	unsigned max_bad_commands;	/* MaxBadCommands */
	/* Slow and busy peers (issue 9): see posuto.json(5), "Limits". */
	unsigned line_timeout;		/* LineTimeOut, seconds: a command
					 * line or TLS handshake, from its
					 * first byte; capped by TimeOut */
	unsigned max_connect_rate_per_ip; /* MaxConnectRatePerIp, per minute */
	bool limit_loopback;		/* LimitLoopback: per-IP limits also
					 * for 127.0.0.0/8 and ::1 */
	unsigned worker_threads;	/* WorkerThreads; 0 = number of CPUs */
	unsigned event_loops;		/* EventLoops; 0 = number of CPUs */

	char *mail_dir;			/* MailDir */
	char *mailbox_template;		/* MailboxPath; default "<MailDir>/%u"
					 * (a '%' in MailDir doubled); NULL if
					 * neither is set (then every user has
					 * its own mailbox template) */
	char *format;			/* MailboxFormat as given: a store
					 * driver name (store.h), or "auto"
					 * (the default) */
	unsigned wire_cache_min_size;	/* WireCacheMinSize; 0 = no wire cache */
	char *mbox_state_dir;		/* MboxStateDirectory: mbox side files;
					 * NULL = next to each mbox */
	char *uidl_compat;		/* UidlCompat (store/uidl_compat.h names);
					 * NULL = "auto" */
	char *uidl_format;		/* UidlFormat (pop3_uidl_format) or NULL */
	bool uidl_drift;		/* UidlDrift: the UIDL-drift detector */

	enum log_level log_level;	/* LogLevel */
	char *run_as_user;		/* RunAsUser; NULL = stay as started */
	char *hostname;			/* Hostname; default gethostname(); never NULL */
	char *passwd_file;		/* PasswdFile (Dovecot passwd-file) or NULL */
	/* The development SMTP sink (Listen[].Protocol "smtp-sink") adds a
	 * user it does not know to Users[], with this password. */
	bool sink_creates_users;	/* SinkCreatesUsers */
	char *sink_password;		/* SinkPassword (plaintext) */
	char *lock_file;		/* LockFile; NULL = the default
					 * (store_lock_default_path()) */
	bool allow_plaintext_auth;	/* AllowPlaintextAuth: USER/PASS etc. w/o TLS off loopback */
	/* SaslMechanisms as written: auth knows the names and checks them
	 * (sasl_mechs_from_config()); where[] for config_where()'s
	 * "Pop3Server.SaslMechanisms[N]".  !sasl_mechanisms_set: not
	 * given, the default applies (pop3). */
	bool sasl_mechanisms_set;
	char **sasl_mechanisms;
	size_t n_sasl_mechanisms;
	struct config_where_pos *sasl_mechanisms_where;

	/* RFC 2449 policies, enforced (pop3_policy.c, store_expire.c). */
	unsigned login_delay;		/* LoginDelay, s between logins; 0 = off */
	int expire_days;		/* Expire: days after first RETR, or
					 * EXPIRE_NEVER (default) */
	unsigned expire_interval;	/* ExpireCheckInterval, s between runs
					 * of the daemon's expiry job */

	struct tls_cfg tls;		/* Tls {...} */
	struct sql_cfg sql;		/* Sql {...} */
	struct admin_cfg admin;		/* top-level Admin {...} */

	struct user_cfg *users;		/* Users[]: names unique (the static
					 * userdb driver checks what they are) */
	size_t n_users;

	struct fault_cfg *faults;	/* Faults[] */
	size_t n_faults;
	bool faults_for_remote;		/* FaultsForRemoteClients */

	struct transcripts_cfg transcripts;	/* Transcripts {...} */

	/* Where the keys config_where() knows are in the file. */
	struct config_where_pos where[CONFIG_WHERE_MAX];
};

/*
 * Loads and validates path.  Every problem is written to errs (stderr if
 * NULL), one line each, as "FILE:LINE:COL: KEY: message" (warnings
 * prefixed "warning: "; KEY is a path like Pop3Server.Users[1].HashType,
 * or "(top level)"), and loading goes on to report all of them.  A file
 * that cannot be read gives "FILE: cannot read: reason".  Returns 0 and
 * sets *cfg_r on success (warnings allowed), or -1 and *cfg_r = NULL if
 * there was at least one error.
 */
int config_load(const char *path, struct posuto_config **cfg_r, FILE *errs);
void config_free(struct posuto_config **cfg);
/* Writes the effective configuration (defaults filled in) as JSON,
 * with passwords and secrets replaced by "<hidden>". */
void config_dump(const struct posuto_config *cfg, FILE *out);
/* "in-use", "temp-fail", ... (the Kind names of Faults[]). */
const char *config_fault_kind_name(enum fault_kind k);
/* The kind named name; false if there is none. */
bool config_fault_kind_lookup(const char *name, enum fault_kind *k_r);
/* The key of Faults[] holding kind k's number ("AfterBytes"), or NULL
 * for a kind that takes none. */
const char *config_fault_kind_key(enum fault_kind k);

/*
 * Writes "FILE:LINE:COL: KEY" (or "FILE: KEY" if the position is not
 * known) into buf, for messages about a key's value that is used after
 * loading, so that they point into the file like config_load()'s own:
 * Pop3Server.Enabled, .RunAsUser, .PasswdFile, .LockFile, .MailDir,
 * .MailboxPath, .Tls, .Tls.Certificate, .Tls.Key, .Tls.Ciphers,
 * .Tls.CipherSuites, .Tls.MinVersion, .Users[N], .Users[N].UserName,
 * .Users[N].Password, .SaslMechanisms[N], and Admin, Admin.Port,
 * Admin.PasswordHash.  A key not in the file is
 * shown at the object that would hold it (Tls.Key at Tls.Certificate,
 * which it defaults to).
 */
void config_where(const struct posuto_config *cfg, const char *key,
    char *buf, size_t bufsz);

/*
 * True if everyone on the host can read the file open on fd: it has o+r
 * and every directory above it o+x (a file in a 0700 directory is not
 * public, whatever its own mode).  path is the name it was opened by.
 */
bool config_file_public(int fd, const char *path);

/*
 * Sets Admin.PasswordHash in the JSON file at path, keeping every other
 * key (and the file's owner and mode): the new text goes to a temporary
 * file in the same directory, is fsynced and renamed over the old one,
 * then the directory is fsynced, so a crash leaves the old file or the
 * new one.  The file is re-read first: an edit made since it was loaded
 * is kept.  Returns false with a reason in err.
 */
bool config_admin_set_password_hash(const char *path, const char *hash,
    char *err, size_t errsz);

/* Exit code for configuration errors (sysexits EX_CONFIG). */
#define EXIT_CONFIG 78

#endif
