"""A private instance of Debian's Postfix for the integration tests.

Everything it reads and writes is under one top directory the test made:
TOP/etc (main.cf, master.cf), TOP/queue, TOP/data and TOP/maillog.  The
machine's /etc/postfix is never read for configuration nor written: as root,
`postfix -c DIR` needs no alternate_config_directories entry in a default
main.cf (that check is for the set-gid postdrop/postqueue), so this works on
a fresh machine where Debian installed Postfix with "No configuration".

What it took to make it start (each one was a silent `exit 1` before):
- Postfix logs to syslog and there is no /dev/log in a container, and it
  writes errors to stderr only when stderr is a terminal.  `maillog_file`
  (with the `postlog` unix-dgram service) sends the log to TOP/maillog; the
  file must lie under one of `maillog_file_prefixes` (default /var,
  /dev/stdout), so TOP is added there.
- master(8) takes its lock in data_directory as mail_owner: the directory
  must be owned by postfix.  `postfix start` creates the queue tree itself.
Stop: `postfix -c DIR stop`, then, bounded, the master process named by
TOP/queue/pid/master.pid is waited for and killed if it lingers.
"""

import os
import pathlib
import pwd
import signal
import smtplib
import subprocess
import time

import pytest

from posuto_testlib import free_port

POSTFIX = "/usr/sbin/postfix"
DOMAIN = "posuto.test"

# Only what the tests use; no chroot (the queue is not a chroot tree), no
# pickup (nothing is submitted through sendmail).  {extra} adds transports.
MASTER = """\
{listen} inet n - n - - smtpd
cleanup unix n - n - 0 cleanup
qmgr unix n - n 300 1 qmgr
rewrite unix - - n - - trivial-rewrite
bounce unix - - n - 0 bounce
defer unix - - n - 0 bounce
trace unix - - n - 0 bounce
verify unix - - n - 1 verify
flush unix n - n 1000? 0 flush
proxymap unix - - n - - proxymap
showq unix n - n - - showq
error unix - - n - - error
retry unix - - n - - error
discard unix - - n - - discard
local unix - n n - - local
lmtp unix - - n - - lmtp
anvil unix - - n - 1 anvil
scache unix - - n - 1 scache
postlog unix-dgram n - n - 1 postlogd
{extra}"""


def available():
    return os.path.exists(POSTFIX) and os.geteuid() == 0


class Postfix:
    """One private instance under TOP/<name>; start() writes main.cf from
    the defaults below updated by main_extra, and master.cf with the extra
    service lines given."""

    def __init__(self, top, main_extra=None, name="postfix"):
        self.top = pathlib.Path(top) / name
        self.cdir = self.top / "etc"
        self.queue = self.top / "queue"
        self.data = self.top / "data"
        self.maillog = self.top / "maillog"
        for d in (self.top, self.cdir, self.queue, self.data):
            d.mkdir(parents=True, exist_ok=True)
        os.chmod(self.top, 0o755)
        pw = pwd.getpwnam("postfix")
        os.chown(self.data, pw.pw_uid, pw.pw_gid)
        self.port = free_port()
        self.main_extra = dict(main_extra or {})
        self.started = False

    def main_cf(self):
        main = {
            "compatibility_level": "3.6",
            "queue_directory": str(self.queue),
            "data_directory": str(self.data),
            "mail_owner": "postfix", "setgid_group": "postdrop",
            "inet_interfaces": "loopback-only", "inet_protocols": "ipv4",
            "myhostname": "mx." + DOMAIN, "mydomain": DOMAIN,
            "mydestination": DOMAIN, "mynetworks": "127.0.0.0/8",
            "alias_maps": "", "alias_database": "",
            "local_recipient_maps": "", "biff": "no",
            "smtputf8_enable": "no",
            "maillog_file": str(self.maillog),
            "maillog_file_prefixes": str(self.top),
            "queue_run_delay": "1s", "minimal_backoff_time": "1s",
            "maximal_backoff_time": "2s",
            # Nothing leaves: a bounce to the outside sender fails at once
            # instead of waiting in the queue for an smtp(8) there is not.
            "relayhost": "", "default_transport": "error:no mail leaves the test instance",
        }
        main.update(self.main_extra)
        return "".join("%s = %s\n" % kv for kv in main.items())

    def start(self, master_extra=""):
        (self.cdir / "main.cf").write_text(self.main_cf())
        (self.cdir / "master.cf").write_text(MASTER.format(
            listen="127.0.0.1:%d" % self.port, extra=master_extra))
        p = subprocess.run([POSTFIX, "-c", str(self.cdir), "start"],
                           capture_output=True, timeout=120)
        self.started = True
        assert p.returncode == 0, "postfix start: %s%s\nmaillog:\n%s" % (
            p.stdout.decode(errors="replace"), p.stderr.decode(errors="replace"), self.log())
        last = None
        for _ in range(200):
            try:
                smtplib.SMTP("127.0.0.1", self.port, timeout=10).quit()
                return self
            except (OSError, smtplib.SMTPException) as e:
                last = e
                time.sleep(0.1)
        pytest.fail("postfix did not listen on %d (%s):\n%s" % (self.port, last, self.log()))

    def log(self):
        try:
            return self.maillog.read_text(errors="replace")
        except OSError:
            return ""

    def master_pid(self):
        try:
            return int((self.queue / "pid" / "master.pid").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None

    def stop(self):
        if not self.started:
            return
        self.started = False
        pid = self.master_pid()
        subprocess.run([POSTFIX, "-c", str(self.cdir), "stop"],
                       capture_output=True, timeout=120)
        if pid is None:
            return
        for _ in range(200):
            if not _is_master(pid):
                return
            time.sleep(0.05)
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass

    def send(self, rcpt, msg, sender="sender@example.org"):
        with smtplib.SMTP("127.0.0.1", self.port, timeout=60) as s:
            return s.sendmail(sender, [rcpt] if isinstance(rcpt, str) else rcpt, msg)


def _is_master(pid):
    """The pid file's process still runs and is Postfix's master (pids get
    reused: never signal a stranger)."""
    try:
        return pathlib.Path("/proc/%d/comm" % pid).read_text().strip() == "master"
    except OSError:
        return False
