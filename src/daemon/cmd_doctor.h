/*
 * cmd_doctor.h - `posuto doctor [-c FILE] [--postfix-config DIR] [USER]`:
 * looks at what the server would serve and says, in plain words, what is
 * wrong and how to fix it.  For each user (or USER): where posuto reads
 * the mailbox, whether it exists with a sane owner and mode, whether the
 * server's user (RunAsUser, else whoever runs doctor) can read and write
 * it (checked in a child that has switched to that user), how many
 * messages it holds, how many of a sample of its files have LF line ends;
 * when Postfix is installed, where Postfix delivers that user's mail
 * (postconf: mailbox_transport, mailbox_command, home_mailbox,
 * mail_spool_directory; virtual_transport, virtual_mailbox_base,
 * virtual_mailbox_maps) and whether that is the place posuto reads (seed
 * 001), with the fix on either side.  Also a TLS certificate that expires
 * within DOCTOR_CERT_WARN_DAYS.
 *
 * Each finding is one paragraph starting "OK:", "WARN:" or "ERROR:".
 * doctor changes nothing, except what opening a mailbox as the server
 * would do (its size index).
 */
#ifndef POSUTO_CMD_DOCTOR_H
#define POSUTO_CMD_DOCTOR_H

#define DOCTOR_CERT_WARN_DAYS	30
/* Message files read per mailbox for the line-end sample, and how much
 * of each. */
#define DOCTOR_LF_SAMPLE	200
#define DOCTOR_LF_READ		(64 * 1024)

/*
 * argv[0] is "doctor".  Returns 0 if no finding is an ERROR, 1 if one is,
 * 64 (EX_USAGE) for a bad command line.
 */
int cmd_doctor(int argc, char **argv, const char *default_config);

#endif
