/* privdrop.h - leave root after binding: the configured user only. */
#ifndef POSUTO_PRIVDROP_H
#define POSUTO_PRIVDROP_H

#include <stddef.h>
#include <sys/types.h>

/* Raises the open-file limit to its hard maximum (thousands of sessions). */
void privdrop_raise_nofile(void);
/* setgroups + setresgid + setresuid to user, then verifies that root
 * cannot be regained.  Returns -1 with a reason in err. */
int privdrop_to(const char *user, char *err, size_t errsz);
/* The same to numeric ids, gid the only group (posuto deliver: the
 * mailbox owner). */
int privdrop_to_ids(uid_t uid, gid_t gid, char *err, size_t errsz);

#endif
