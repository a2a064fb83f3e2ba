/*
 * pop3_policy.h - RFC 2449 LOGIN-DELAY and EXPIRE, enforced: what CAPA
 * says, the login check, the expiry at UPDATE, and the daemon's periodic
 * expiry job.  State kept in mailboxes: store_policy.h.
 *
 * LoginDelay: a login earlier than the user's delay after the previous
 * successful one is refused with "-ERR [LOGIN-DELAY]", only once the
 * credentials were right (a wrong password gets the usual answer).
 * Expire: a message is deleted that many days after its first RETR, at
 * the UPDATE state of one of the user's sessions (after QUIT; "Expire 0"
 * deletes what the session retrieved, RFC 2449 §6.7) or by the daemon's
 * job (every ExpireCheckInterval seconds, one mailbox at a time, on the
 * background thread, skipping every mailbox a session holds).
 */
#ifndef POP3_POLICY_H
#define POP3_POLICY_H

#include <stdbool.h>
#include <stdint.h>

#include "store/store.h"

struct pop3_env;
struct pop3_session;
struct userdb_entry;

/* The daemon's expiry job: (re)armed with interval seconds; needs
 * env->rt->base and ->bgq.  Not used in --inetd mode (one session). */
void pop3_policy_expiry_configure(struct pop3_env *env, unsigned interval);
/* Stops arming, asks a running job to finish after its mailbox; call
 * before workq_free(&env->rt->bgq), and _free() after it. */
void pop3_policy_expiry_stop(struct pop3_env *env);
void pop3_policy_expiry_free(struct pop3_env *env);

/* --- inside src/pop3 ------------------------------------------------- */

/* The EXPIRE and LOGIN-DELAY lines of CAPA for s's state. */
void pop3_policy_capa(struct pop3_session *s);
/* Worker: true if e logged in less than its LoginDelay ago (time now). */
bool pop3_policy_login_early(const struct userdb_entry *e, uint64_t now);
/* Worker, the same for a store that keeps the last login itself (sql:),
 * asked once the mailbox is open; false for the others. */
bool pop3_policy_login_early_opened(const struct userdb_entry *e,
    const struct mailbox *mb, uint64_t now);
/* Worker, after the mailbox was opened: remembers this login. */
void pop3_policy_login_opened(const struct userdb_entry *e,
    struct mailbox *mb, uint64_t now);
/* Worker: UPDATE, with the user's Expire (EXPIRE_NEVER: plain commit).
 * user is for the log, already sanitised. */
enum store_status pop3_policy_commit(struct mailbox *mb, uint8_t *deleted,
    int expire_days, const char *user, uint32_t *n_deleted_r);
/* Wall-clock seconds: the times the policy files keep. */
uint64_t pop3_policy_now(void);

#endif
