#!/bin/bash
# bench/run.sh - posuto vs Dovecot, side by side, interleaved (README.md).
#
#   bench/run.sh            full run (about 45 minutes; run as root)
#   bench/run.sh --smoke    seconds; tiny mailboxes; exits non-zero on any
#                           verification error (this is what `make check` runs)
#   bench/run.sh --baseline REV --ab-quick --no-dovecot
#                           this commit against REV, a few minutes (README.md)
# Options:
#   --reps N        repetitions per figure (full: 3), medians are reported
#   --duration S    measured seconds per run (full: 5), plus --warmup S (1)
#   --servers LIST  comma list of posuto,dovecot (default both)
#   --only LIST     scenarios: session,sha512,retr,fair,idle,bigbox,mailbox,admin,
#                   issue 11's lmtp,deliver,first,mbox (run_delivery.sh),
#                   issue 13's scaleout (scaleout.py),
#                   issue 15's tls (POP3S/STLS sessions, full and resumed),
#                   tlsretr, tlsidle, scale (TLS with the server on both cores)
#   --cert KIND     the one certificate of every TLS server: rsa (RSA-2048,
#                   default) or ecdsa (P-256); rows of ecdsa end in -ecdsa
#   --tls-clients "N .."  TLS session and RETR client counts (full: 1 16 64)
#   --tls-idle "N .."     idle TLS sessions held (full: 1000)
#   --no-pin        do not pin server and load generator to separate cores
#   --no-dovecot    skip Dovecot (ratios then read "-")
#   --posuto PATH   server binary (default build/posuto)
#   --baseline X    also run "base": X is a posuto binary, or a git revision
#                   built (once, cached in bench/out/base/) from a temporary
#                   worktree; same config and mail as posuto, interleaved
#   --tolerance PCT posuto vs base verdict: within PCT % (default 5)
#   --idle-limit K  posuto's idle KiB/session verdict limit (default 8)
#   --session-clients "N ..", --retr-clients "N ..", --idle "N ..",
#   --big "BOX .."  the client counts / boxes to run (full: 1 16 64 256;
#                   1 16 64; 1000 10000; big10k big100k)
#   --no-cold       bigbox: warm figures only (no cache dropping)
#   --no-ceilings   no ok/sf ceiling servers
#   --ab-quick      issue 10's four rows: --only session,retr,bigbox,idle
#                   --session-clients 64 --retr-clients 16 --idle 10000
#                   --big big100k --no-cold --no-ceilings
#   --data DIR      generated mail (default /var/tmp/posuto-bench[-smoke])
#   --keep          leave the servers' work directory for inspection
#   --prepare       only generate the mailboxes and passwords, then exit
# Environment: BENCH_DATA (as --data), POSUTO (as --posuto).
set -u -o pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$HERE/.." && pwd)
OUT=$HERE/out
BIN=$OUT/bin
PY=/usr/bin/python3		# Debian's, stdlib only (not pyenv's)

PREPARE=0 SMOKE=0 REPS= DUR= WARM= SERVERS=posuto,dovecot ONLY= PIN=1 KEEP=0
BASELINE= TOLERANCE=5 IDLE_LIMIT=8 COLD=1 CEILINGS=1
OPT_SESSION= OPT_RETR= OPT_IDLE= OPT_BIG= OPT_TLS= OPT_TLS_IDLE= CERT_KIND=rsa
POSUTO_BIN=${POSUTO:-$REPO/build/posuto}
DATA=${BENCH_DATA:-}
while [ $# -gt 0 ]; do
	case $1 in
	--smoke) SMOKE=1 ;;
	--reps) REPS=$2; shift ;;
	--duration) DUR=$2; shift ;;
	--warmup) WARM=$2; shift ;;
	--servers) SERVERS=$2; shift ;;
	--only) ONLY=$2; shift ;;
	--no-pin) PIN=0 ;;
	--no-dovecot) SERVERS=${SERVERS//dovecot/} ;;
	--posuto) POSUTO_BIN=$2; shift ;;
	--data) DATA=$2; shift ;;
	--keep) KEEP=1 ;;
	--prepare) PREPARE=1 ;;
	--baseline) BASELINE=$2; shift ;;
	--tolerance) TOLERANCE=$2; shift ;;
	--idle-limit) IDLE_LIMIT=$2; shift ;;
	--session-clients) OPT_SESSION=$2; shift ;;
	--retr-clients) OPT_RETR=$2; shift ;;
	--idle) OPT_IDLE=$2; shift ;;
	--big) OPT_BIG=$2; shift ;;
	--cert) CERT_KIND=$2; shift ;;
	--tls-clients) OPT_TLS=$2; shift ;;
	--tls-idle) OPT_TLS_IDLE=$2; shift ;;
	--no-cold) COLD=0 ;;
	--no-ceilings) CEILINGS=0 ;;
	--ab-quick)
		ONLY=session,retr,bigbox,idle OPT_SESSION=64 OPT_RETR=16 OPT_IDLE=10000
		OPT_BIG=big100k COLD=0 CEILINGS=0 ;;
	-h|--help) sed -n '2,41p' "$0"; exit 0 ;;
	*) echo "run.sh: unknown option $1" >&2; exit 2 ;;
	esac
	shift
done

if [ $SMOKE = 1 ]; then
	: "${REPS:=1}" "${DUR:=0.6}" "${WARM:=0.2}"
	: "${DATA:=/var/tmp/posuto-bench-smoke}"
	SESSION_CLIENTS="8" RETR_CLIENTS="4" IDLE_NS="100" BIG_BOXES="big2k"
	FAIR_CLIENTS=4 NUSERS=16 NIDLE=100 NSLOW=8 RETR_PRIME=0.5 BIG_PRIME=1
	# TLS once each way, tiny: so the paths can't rot
	TLS_CLIENTS="4" TLS_IDLE_NS="20" SCALE_CLIENTS=4
else
	: "${REPS:=3}" "${DUR:=5}" "${WARM:=1}"
	: "${DATA:=/var/tmp/posuto-bench}"
	SESSION_CLIENTS="1 16 64 256" RETR_CLIENTS="1 16 64" IDLE_NS="1000 10000"
	BIG_BOXES="big10k big100k" FAIR_CLIENTS=64 NUSERS=256 NIDLE=10000
	NSLOW=64		# SHA512-CRYPT users s1..s64
	RETR_PRIME=25 BIG_PRIME=3
	TLS_CLIENTS="1 16 64" TLS_IDLE_NS="1000" SCALE_CLIENTS=64
fi
[ -n "$OPT_TLS" ] && TLS_CLIENTS=$OPT_TLS
[ -n "$OPT_TLS_IDLE" ] && TLS_IDLE_NS=$OPT_TLS_IDLE
case $CERT_KIND in
rsa) CERT_SUFFIX= ;;
ecdsa) CERT_SUFFIX=-ecdsa ;;
*) echo "run.sh: --cert $CERT_KIND: want rsa or ecdsa" >&2; exit 2 ;;
esac
# What is generated (above) stays the same set; these only choose what runs.
BIG_RUN=$BIG_BOXES
[ -n "$OPT_SESSION" ] && SESSION_CLIENTS=$OPT_SESSION
[ -n "$OPT_RETR" ] && RETR_CLIENTS=$OPT_RETR
[ -n "$OPT_IDLE" ] && IDLE_NS=$OPT_IDLE
[ -n "$OPT_BIG" ] && BIG_RUN=$OPT_BIG

want() { [ -z "$ONLY" ] || [[ ",$ONLY," == *",$1,"* ]]; }
has_server() { [[ ",$SERVERS," == *",$1,"* ]]; }
log() { printf '%s run.sh: %s\n' "$(date +%T)" "$*" >&2; }
die() { log "$*"; exit 2; }

for c in $SESSION_CLIENTS $RETR_CLIENTS $TLS_CLIENTS $SCALE_CLIENTS; do	# user u<i> per client
	[[ $c =~ ^[1-9][0-9]*$ ]] && [ "$c" -le $NUSERS ] || die "client count $c: want 1..$NUSERS"
done
for n in $IDLE_NS $TLS_IDLE_NS; do
	[[ $n =~ ^[1-9][0-9]*$ ]] && [ "$n" -le $NIDLE ] || die "--idle $n: want 1..$NIDLE"
done
for b in $BIG_RUN; do
	[[ " $BIG_BOXES " == *" $b "* ]] || die "--big $b: want one of $BIG_BOXES"
done
[[ $TOLERANCE =~ ^[0-9]+(\.[0-9]+)?$ ]] || die "--tolerance $TOLERANCE: want a percentage"
[[ $IDLE_LIMIT =~ ^[0-9]+(\.[0-9]+)?$ ]] || die "--idle-limit $IDLE_LIMIT: want KiB"

FAILED=0			# verification errors seen (posuto, ceilings, harness)
CMP_FAILED=0			# Dovecot runs that did not complete: data, shown in the table

step_failed() {	# server: a run with errors fails the benchmark, unless it
	# is Dovecot's (holding 10,000 sessions is beyond it on a small box)
	if [ "$1" = dovecot ] || [ "$1" = popa3d ]; then CMP_FAILED=$((CMP_FAILED + 1)); else FAILED=$((FAILED + 1)); fi
}
ulimit -n "$(ulimit -Hn)" 2>/dev/null
NOFILE=$(ulimit -n)

# ---- CPU pinning: server on one core, load generator on another --------------
NCPU=$(nproc)
if [ $PIN = 1 ] && [ "$NCPU" -ge 2 ]; then
	SRV_PIN=(taskset -c 0) GEN_PIN=(taskset -c 1)
else
	SRV_PIN=() GEN_PIN=()
fi
ONE_SRV_PIN=("${SRV_PIN[@]}") ONE_GEN_PIN=("${GEN_PIN[@]}")
# The scaling rows (issue 15): server and load generator both on cores 0-1.
SCALE_CORES=2
[ "$NCPU" -lt 2 ] && SCALE_CORES=1
SRV_CORES=1			# cores the servers are started for (set_cores)

# ---- build ----------------------------------------------------------------------
make -s -C "$HERE" all >&2 || die "building bench/ failed"

if [ "$(id -u)" != 0 ]; then
	# Dovecot's own instance and cache dropping need root.
	if [ $SMOKE = 1 ]; then
		has_server dovecot && log "not root: smoke runs without Dovecot"
		SERVERS=${SERVERS//dovecot/}
	else
		die "the full run needs root (Dovecot, drop_caches)"
	fi
fi

[ -n "$BASELINE" ] && ! has_server posuto && die "--baseline compares with posuto: keep it in --servers"
if [ $PREPARE = 0 ] && has_server posuto && [ ! -x "$POSUTO_BIN" ]; then
	if [ $SMOKE = 1 ]; then
		die "posuto binary $POSUTO_BIN not found (build it first, or --servers dovecot)"
	fi
	die "posuto binary $POSUTO_BIN not found (run make first)"
fi

# ---- baseline: another posuto, run like posuto ------------------------------------
# --baseline BIN runs BIN; --baseline REV builds REV the way `make` builds
# build/posuto (BASE_MESON_OPTS), in a temporary worktree that is removed
# again, and keeps the binary in out/base/<commit>/ for the next run.
BASE_BIN= BASE_DESC= BASE_SHA= BASE_TMP=
: "${BASE_MESON_OPTS:=--buildtype=debugoptimized -Db_pie=true}"
if [ -n "$BASELINE" ]; then
	if [ -f "$BASELINE" ] && [ -x "$BASELINE" ]; then
		BASE_BIN=$(realpath "$BASELINE")
		BASE_DESC="binary $BASE_BIN"
	elif BASE_SHA=$(git -C "$REPO" rev-parse -q --verify "$BASELINE^{commit}" 2>/dev/null); then
		# (the options are part of the key: a binary built otherwise is another)
		BASE_BIN=$OUT/base/$BASE_SHA-$(printf %s "$BASE_MESON_OPTS" | cksum | cut -d' ' -f1)/posuto
		BASE_DESC="$(git -C "$REPO" log -1 --format='%h %s' "$BASE_SHA")"
	else
		die "--baseline $BASELINE: neither an executable nor a git revision of $REPO"
	fi
fi

base_build_cleanup() {
	[ -n "$BASE_TMP" ] || return 0
	git -C "$REPO" worktree remove --force "$BASE_TMP/src" 2>/dev/null
	rm -rf "$BASE_TMP"
	git -C "$REPO" worktree prune 2>/dev/null
	BASE_TMP=
}

base_build() {
	[ -n "$BASE_SHA" ] && [ ! -x "$BASE_BIN" ] || return 0
	log "building baseline $BASE_DESC ($BASE_MESON_OPTS)"
	BASE_TMP=$(mktemp -d /tmp/posuto-base.XXXXXX) || return 1
	local rc=0
	# shellcheck disable=SC2086 # BASE_MESON_OPTS is a list of options
	git -C "$REPO" worktree add -q --detach "$BASE_TMP/src" "$BASE_SHA" >&2 &&
	    meson setup "$BASE_TMP/build" "$BASE_TMP/src" $BASE_MESON_OPTS > "$BASE_TMP/build.log" 2>&1 &&
	    ninja -C "$BASE_TMP/build" posuto >> "$BASE_TMP/build.log" 2>&1 || rc=1
	if [ $rc = 0 ]; then
		mkdir -p "$(dirname "$BASE_BIN")" &&
		    cp "$BASE_TMP/build/posuto" "$BASE_BIN.tmp" && mv "$BASE_BIN.tmp" "$BASE_BIN" || rc=1
	else
		tail -20 "$BASE_TMP/build.log" >&2
	fi
	base_build_cleanup
	return $rc
}

# ---- Dovecot from Debian ----------------------------------------------------------
DOVECOT=$(command -v dovecot || echo /usr/sbin/dovecot)
if has_server dovecot && [ ! -x "$DOVECOT" ]; then
	if [ $SMOKE = 1 ]; then
		log "Dovecot not installed: smoke runs without it"
		SERVERS=${SERVERS//dovecot/}
	else
		log "installing dovecot-pop3d and dovecot-lmtpd from Debian"
		# Never let the package start the system's Dovecot: we run our own.
		PRC=/usr/sbin/policy-rc.d MADE_PRC=0
		if [ ! -e $PRC ]; then
			printf '#!/bin/sh\nexit 101\n' > $PRC && chmod 755 $PRC && MADE_PRC=1
		fi
		DEBIAN_FRONTEND=noninteractive apt-get install -y dovecot-pop3d dovecot-lmtpd >&2
		rc=$?
		[ $MADE_PRC = 1 ] && rm -f $PRC
		[ $rc = 0 ] || die "apt-get install dovecot-pop3d failed"
		DOVECOT=$(command -v dovecot || echo /usr/sbin/dovecot)
	fi
fi
DOVECOT_VERSION=$([ -x "$DOVECOT" ] && "$DOVECOT" --version 2>/dev/null | cut -d' ' -f1 || echo -)

# ---- mail ---------------------------------------------------------------------------
# src/ holds generated mailboxes; mail/<server>/<user> are hard-linked copies,
# one tree per server so renames by one (new/ -> cur/, :2,S) never touch the
# other, while both read the very same inodes (same page cache).
gen_data() {
	local src=$DATA/src
	if [ -f "$src/.done" ]; then return; fi
	log "generating mailboxes in $src (once)"
	rm -rf "$src"
	mkdir -p "$src"
	if [ $SMOKE = 1 ]; then
		$PY "$HERE/mkmail.py" --out "$src/main" --boxes 4 --msgs 20 --mix tiny --prefix b --seed 1 || return 1
		$PY "$HERE/mkmail.py" --out "$src/big" --boxes 1 --msgs 2000 --mix small --name big2k --seed 3 || return 1
		$PY "$HERE/mkmail.py" --out "$src/eml" --format emldir --boxes 1 --msgs 20 --mix tiny --prefix e --seed 4 || return 1
	else
		$PY "$HERE/mkmail.py" --out "$src/main" --boxes 16 --msgs 200 --mix full --prefix b --seed 1 || return 1
		$PY "$HERE/mkmail.py" --out "$src/big" --boxes 1 --msgs 10000 --mix small --name big10k --seed 2 || return 1
		$PY "$HERE/mkmail.py" --out "$src/big" --boxes 1 --msgs 100000 --mix small --name big100k --seed 3 || return 1
	fi
	$PY "$HERE/mkmail.py" --out "$src/tiny" --boxes 1 --msgs 10 --mix tiny --prefix t --seed 5 || return 1
	touch "$src/.done"
}

# users: u1..uNUSERS -> b((i-1)%nb+1); s1..s64 (SHA512-CRYPT) likewise;
# i1..iNIDLE -> t1 (10 small messages); probe -> t1; bigN -> bigN.
# mail/base (--baseline) is a tree of its own, made when first wanted: the
# baseline keeps its own index and wire copies, like posuto and Dovecot.
make_users() {
	local stamp="v2 $NUSERS $NSLOW $NIDLE $BIG_BOXES"
	if [ "$(cat "$DATA/.users.done" 2>/dev/null)" != "$stamp" ]; then
		log "creating user mailboxes (hard links)"
		rm -rf "$DATA/mail" "$DATA/.base.done"
		link_users "posuto dovecot" || return 1
		echo "$stamp" > "$DATA/.users.done"
	fi
	if [ -n "$BASELINE" ] && [ "$(cat "$DATA/.base.done" 2>/dev/null)" != "$stamp" ]; then
		log "creating the baseline's user mailboxes (hard links)"
		rm -rf "$DATA/mail/base"
		link_users base || return 1
		echo "$stamp" > "$DATA/.base.done"
	fi
	return 0
}

link_users() {	# trees
	$PY - "$DATA" $NUSERS $NSLOW $NIDLE "$BIG_BOXES" "$1" <<'PYEOF'
import os, sys
data, nusers, nslow, nidle, bigs = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5].split()
trees = sys.argv[6].split()
src = data + "/src"
def manifest(d):
    return {l.split()[0]: l.split()[1:] for l in open(d + "/manifest.txt")}
main, tiny = manifest(src + "/main"), manifest(src + "/tiny")
big = manifest(src + "/big")
boxes = sorted(main, key=lambda b: int(b[1:]))
plan = []   # (user, srcdir, manifest entry)
for i in range(1, nusers + 1):
    b = boxes[(i - 1) % len(boxes)]; plan.append(("u%d" % i, src + "/main/" + b, main[b]))
for i in range(1, nslow + 1):
    b = boxes[(i - 1) % len(boxes)]; plan.append(("s%d" % i, src + "/main/" + b, main[b]))
for i in range(1, nidle + 1):
    plan.append(("i%d" % i, src + "/tiny/t1", tiny["t1"]))
plan.append(("probe", src + "/tiny/t1", tiny["t1"]))
for b in bigs:
    plan.append((b, src + "/big/" + b, big[b]))
def link_tree(s, d):
    os.makedirs(d)
    for name in os.listdir(s):
        sp, dp = os.path.join(s, name), os.path.join(d, name)
        if os.path.isdir(sp):
            link_tree(sp, dp)
        else:
            os.link(sp, dp)
with open(data + "/users.manifest", "w") as m:
    for u, s, e in plan:
        for t in trees:
            link_tree(s, "%s/mail/%s/%s" % (data, t, u))
        m.write("%s %s\n" % (u, " ".join(e)))
    if os.path.isdir(src + "/eml/e1"):   # JumboDogX layout: not Dovecot's
        for t in trees:
            if t != "dovecot":
                link_tree(src + "/eml/e1", "%s/mail/%s/e1" % (data, t))
        m.write("e1 %s\n" % " ".join(manifest(src + "/eml")["e1"]))
# Dovecot's mail processes run as nobody and write index files there.
# The posuto tree shares the files (hard links), so its directories get
# the same owner: posuto serves only files owned by their directory's
# owner (a hard link planted from another user's mailbox is refused).
nobody = 65534
for t in trees if os.getuid() == 0 else ():
    for root, dirs, files in os.walk(data + "/mail/" + t):
        os.chown(root, nobody, nobody)
        for f in files:
            os.chown(os.path.join(root, f), nobody, nobody)
PYEOF
}

# Passwords: user X has password "pw-X".  SHA256 hex for u*, i*, probe, big*;
# SHA512-CRYPT for s*.
make_passwords() {
	local pf=$DATA/passwd.sha
	if [ -f "$pf" ] && [ "$pf" -nt "$DATA/.users.done" ]; then return; fi
	log "hashing passwords"
	$PY - "$DATA" $NUSERS $NIDLE $NSLOW "$BIG_BOXES" <<'PYEOF' || return 1
import hashlib, subprocess, sys
data, nusers, nidle, nslow, bigs = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5].split()
users = ["u%d" % i for i in range(1, nusers + 1)] + ["i%d" % i for i in range(1, nidle + 1)] + ["probe"] + bigs + ["e1"]
with open(data + "/passwd.sha", "w") as f:
    for u in users:
        f.write("%s %s\n" % (u, hashlib.sha256(("pw-" + u).encode()).hexdigest()))
with open(data + "/passwd.crypt", "w") as f:
    for i in range(1, nslow + 1):
        u = "s%d" % i
        h = subprocess.run(["openssl", "passwd", "-6", "-salt", "bench%04d" % i, "pw-" + u],
                           check=True, capture_output=True, text=True).stdout.strip()
        f.write("%s %s\n" % (u, h))
PYEOF
}

# One certificate for every TLS server in the run (posuto, Dovecot, ceilings).
make_cert() {
	local d=$DATA/tls
	CERT=$d/$CERT_KIND.crt KEY=$d/$CERT_KIND.key
	[ -s "$CERT" ] && [ -s "$KEY" ] && return 0
	mkdir -p "$d"
	local alg=(-newkey rsa:2048)
	[ $CERT_KIND = ecdsa ] && alg=(-newkey ec -pkeyopt ec_paramgen_curve:P-256)
	openssl req -x509 "${alg[@]}" -nodes -days 3650 -subj /CN=localhost \
	    -keyout "$KEY.tmp" -out "$CERT.tmp" 2>/dev/null || return 1
	chmod 644 "$KEY.tmp" "$CERT.tmp"	# Dovecot's config process reads it
	mv "$KEY.tmp" "$KEY" && mv "$CERT.tmp" "$CERT"
}

# Pop3Server.EventLoops (issue 15) is written only when the binary knows
# it (check-config neither fails nor warns about the key): an older posuto
# would ignore it with a warning, or a stricter one refuse to start.
declare -A LOOPS_BY
LOOPS_OK=0			# posuto's (for the report)
event_loops_ok() {	# binary
	if [ -z "${LOOPS_BY[$1]:-}" ]; then
		local t=$WORK/loops-probe.json err
		printf '{"Pop3Server":{"Listen":[{"Address":"127.0.0.1","Port":1}],"EventLoops":1,"Users":[]}}\n' > "$t"
		if err=$("$1" check-config -c "$t" 2>&1 >/dev/null) && [[ $err != *EventLoops* ]]; then
			LOOPS_BY[$1]=1
		else
			LOOPS_BY[$1]=0
		fi
		[ "$1" = "$POSUTO_BIN" ] && LOOPS_OK=${LOOPS_BY[$1]}
	fi
	[ "${LOOPS_BY[$1]}" = 1 ]
}

# ---- ports, processes -------------------------------------------------------------
free_port() {
	local p
	while :; do
		p=$(( 20000 + RANDOM % 12000 ))
		if ! ss -Hltn "sport = :$p" 2>/dev/null | grep -q .; then
			echo $p
			return
		fi
	done
}

wait_port() {	# port seconds
	local i
	for i in $(seq 1 $(( $2 * 20 ))); do
		if ss -Hltn "sport = :$1" 2>/dev/null | grep -q .; then return 0; fi
		sleep 0.05
	done
	return 1
}

# All processes of a server, the main pid and its descendants, each as
# "pid ticks" (user+sys, plus reaped children's), from one pass over /proc.
proc_tree() {
	# (cat: processes come and go while we read; awk would stop at one)
	cat /proc/[0-9]*/stat 2>/dev/null | awk -v root="$1" '
	{
		pid = $1; s = $0; sub(/^.*\) /, "", s); split(s, f, " ")
		ppid[pid] = f[2]; ticks[pid] = f[12] + f[13] + f[14] + f[15]
	}
	END {
		in_tree[root] = 1; changed = 1
		while (changed) {
			changed = 0
			for (q in ppid)
				if (!(q in in_tree) && (ppid[q] in in_tree)) { in_tree[q] = 1; changed = 1 }
		}
		for (q in in_tree) if (q in ticks) print q, ticks[q]
	}'
}

# Proportional set size of a process tree, KiB.
pss_kib() {
	local files=()
	local p t
	while read -r p t; do files+=("/proc/$p/smaps_rollup"); done < <(proc_tree "$1")
	# (a process may be gone by now: cat skips it, awk would stop)
	cat "${files[@]}" 2>/dev/null | awk '/^Pss:/ { s += $2 } END { print s + 0 }'
}

# CPU ticks of a process tree.
cpu_ticks() {
	proc_tree "$1" | awk '{ s += $2 } END { print s + 0 }'
}
HZ=$(getconf CLK_TCK)

WORK=$(mktemp -d /tmp/posuto-bench.XXXXXX)
chmod 755 "$WORK"
declare -A PID PORT TPORT
cleanup() {
	local s
	for s in "${!PID[@]}"; do
		stop_server "$s"
	done
	declare -F dlv_cleanup >/dev/null && dlv_cleanup
	if [ $KEEP = 0 ]; then rm -rf "$WORK"; else log "work directory kept: $WORK"; fi
	base_build_cleanup
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---- servers ----------------------------------------------------------------------
posuto_config() {	# port server tlsport loops (posuto or base: the same but for the tree)
	local port=$1 s=$2
	$PY - "$DATA" "$port" "$s" "$3" "$CERT" "$KEY" "$4" > "$WORK/$s.json" <<'PYEOF'
import json, sys
data, port, tree = sys.argv[1], int(sys.argv[2]), sys.argv[3]
tport, cert, key, loops = int(sys.argv[4]), sys.argv[5], sys.argv[6], sys.argv[7]
users = []
for line in open(data + "/passwd.sha"):
    u, h = line.split()
    users.append({"UserName": u, "Password": h, "HashType": "SHA256"})
    if u == "e1":   # the JumboDogX-layout box
        users[-1]["MailboxFormat"] = "emldir"
for line in open(data + "/passwd.crypt"):
    u, h = line.split()
    users.append({"UserName": u, "Password": "{SHA512-CRYPT}" + h})
cfg = {"Pop3Server": {
    "Listen": [{"Address": "127.0.0.1", "Port": port}],
    "MailDir": data + "/mail/" + tree,
    "MailboxFormat": "maildir",
    "MaxConnectionsPerIp": 0, "MaxConnections": 0, "AuthFailDelay": 0,
    "LogLevel": "warn", "Users": users}}
# POP3S beside the plain listener, which then offers STLS
cfg["Pop3Server"]["Listen"].append({"Address": "127.0.0.1", "Port": tport, "Tls": "implicit"})
cfg["Pop3Server"]["Tls"] = {"Certificate": cert, "Key": key}
if loops:
    cfg["Pop3Server"]["EventLoops"] = int(loops)
json.dump(cfg, sys.stdout, indent=1)
PYEOF
}

dovecot_config() {	# port tlsport
	local port=$1 tport=$2 d=$WORK/dovecot
	mkdir -p "$d/run" "$d/state"
	# passwd-file: scheme in each entry, same secrets as posuto's
	{
		awk '{print $1 ":{SHA256.HEX}" $2}' "$DATA/passwd.sha"
		awk '{print $1 ":{SHA512-CRYPT}" $2}' "$DATA/passwd.crypt"
	} > "$d/passwd"
	chmod 644 "$d/passwd"
	local cache_size=10M
	[ "${DOVECOT_NO_AUTH_CACHE:-0}" = 1 ] && cache_size=0
	cat > "$d/dovecot.conf" <<EOF
# generated by posuto bench/run.sh: tuned for speed, loopback only
base_dir = $d/run
state_dir = $d/state
instance_name = posuto-bench
listen = 127.0.0.1
protocols = pop3
# TLS: the run's certificate, OpenSSL's defaults otherwise (as posuto's)
ssl = yes
ssl_cert = <$CERT
ssl_key = <$KEY
disable_plaintext_auth = no
auth_mechanisms = plain
log_path = $d/dovecot.log
info_log_path = /dev/null
auth_verbose = no
verbose_proctitle = no
first_valid_uid = 1
mail_location = maildir:$DATA/mail/dovecot/%u
mail_fsync = never
maildir_very_dirty_syncs = yes
pop3_uidl_format = %f
auth_cache_size = $cache_size
auth_cache_ttl = 1 hour
auth_cache_negative_ttl = 1 hour
default_process_limit = 12000
default_client_limit = 20000
default_vsz_limit = 1G
passdb {
  driver = passwd-file
  args = $d/passwd
}
userdb {
  driver = static
  args = uid=nobody gid=nogroup home=$DATA/mail/dovecot/%u
}
service pop3-login {
  inet_listener pop3 {
    address = 127.0.0.1
    port = $port
  }
  inet_listener pop3s {
    address = 127.0.0.1
    port = $tport
    ssl = yes
  }
  # "high-performance mode": long-lived login processes, one per core
  # the server is given (they do the TLS work and proxy the session)
  service_count = 0
  process_min_avail = $SRV_CORES
  process_limit = 16
  client_limit = 4096
}
# Reusing pop3 processes (all users share one uid) is Dovecot's fast path;
# DOVECOT_POP3_SERVICE_COUNT=1 gives the classic fork per session.
service pop3 {
  process_limit = 12000
  service_count = ${DOVECOT_POP3_SERVICE_COUNT:-0}
  process_min_avail = 2
}
service auth {
  client_limit = 30000
}
service anvil {
  client_limit = 20000
}
protocol pop3 {
  mail_max_userip_connections = 100000
}
EOF
}

start_server() {	# name
	local s=$1 port tport
	port=$(free_port)
	PORT[$s]=$port
	tport=$(free_port)
	[ "$tport" = "$port" ] && tport=$((port + 1))
	TPORT[$s]=$tport
	case $s in
	ok)
		"${SRV_PIN[@]}" "$BIN/okserver" -p "$port" -s "$tport" -t "$CERT" -k "$KEY" &
		PID[$s]=$! ;;
	sf)
		"${SRV_PIN[@]}" "$BIN/sfserver" -p "$port" -s "$tport" -t "$CERT" -k "$KEY" \
		    -m "$DATA/mail/posuto" -C "$DATA/sfcache" 2>>"$WORK/sfserver.log" &
		PID[$s]=$! ;;
	posuto|base)
		local bin=$POSUTO_BIN loops=
		[ $s = base ] && bin=$BASE_BIN
		event_loops_ok "$bin" && loops=$SRV_CORES
		posuto_config "$port" $s "$tport" "$loops"
		"${SRV_PIN[@]}" "$bin" serve -c "$WORK/$s.json" >>"$WORK/$s.log" 2>&1 &
		PID[$s]=$! ;;
	dovecot)
		dovecot_config "$port" "$tport"
		"${SRV_PIN[@]}" "$DOVECOT" -F -c "$WORK/dovecot/dovecot.conf" >>"$WORK/dovecot/master.log" 2>&1 &
		PID[$s]=$! ;;
	esac
	if ! wait_port "$port" 20 || ! wait_port "$tport" 5; then
		log "$s did not start listening on 127.0.0.1:$port"
		case $s in posuto|base) tail -5 "$WORK/$s.log" >&2 ;; esac
		[ $s = dovecot ] && tail -5 "$WORK/dovecot/master.log" "$WORK/dovecot/dovecot.log" >&2
		return 1
	fi
	# Dovecot's login process must be up before the first connection.
	[ $s = dovecot ] && sleep 0.5
	return 0
}

stop_server() {
	local s=$1 p=${PID[$1]:-}
	[ -n "$p" ] || return 0
	kill "$p" 2>/dev/null
	local i
	for i in $(seq 1 100); do
		kill -0 "$p" 2>/dev/null || break
		sleep 0.05
	done
	kill -9 "$p" 2>/dev/null
	wait "$p" 2>/dev/null
	unset "PID[$s]"
	# Dovecot children leave with their master; make sure of it.
	if [ "$s" = dovecot ]; then
		for i in $(seq 1 100); do
			pgrep -f "$WORK/dovecot" > /dev/null || break
			sleep 0.05
		done
	fi
}

restart_server() { stop_server "$1"; start_server "$1"; }

# ---- running the load generator ---------------------------------------------------
RAW=$WORK/raw.jsonl
: > "$RAW"

# run_gen scenario server extra-json -- popload args...
run_gen() {
	local scen=$1 srv=$2 extra=$3
	shift 4
	local t0 t1 out rc w0=$EPOCHREALTIME
	t0=$(cpu_ticks "${PID[$srv]}")
	out=$("${GEN_PIN[@]}" "$BIN/popload" -p "${PORT[$srv]}" --manifest "$DATA/users.manifest" \
	    --label "$scen" --server-pid "${PID[$srv]}" -q "$@" 2>"$WORK/gen.err")
	rc=$?
	t1=$(cpu_ticks "${PID[$srv]}")
	if [ $rc != 0 ] || [ -z "$out" ]; then
		step_failed "$srv"
		log "FAIL $scen on $srv (exit $rc):"
		head -20 "$WORK/gen.err" >&2
		[ -z "$out" ] && out='{"errors":1}'
	fi
	printf '{"scenario":"%s","server":"%s","server_cpu_s":%s%s,"gen":%s}\n' \
	    "$scen" "$srv" "$(awk -v a="$t0" -v b="$t1" -v hz="$HZ" 'BEGIN{printf "%.2f", (b-a)/hz}')" \
	    "$extra" "$out" >> "$RAW"
	printf '  %5.1fs %-22s %-8s %s\n' "$(awk -v a="$w0" -v b="$EPOCHREALTIME" 'BEGIN{print b-a}')" "$scen" "$srv" \
	    "$(echo "$out" | $PY -c 'import json,sys; d=json.load(sys.stdin); print(" ".join("%s=%s" % (k, d.get(k)) for k in ("rate","lat_p50_ms","lat_p99_ms","mbps","first_line_ms","probe_p99_ms","tls_resumed","srv_cpu_win_s","loadgen_cpu_pct","errors") if d.get(k) not in (None, 0, 0.0)))' 2>/dev/null)" >&2
	return $rc
}

# Servers in interleaved order: forward on odd repetitions, reversed on even.
order() {	# rep names...
	local r=$1; shift
	if (( r % 2 )); then echo "$@"; else echo "$@" | tr ' ' '\n' | tac | tr '\n' ' '; fi
}

MAIN_SERVERS=()
has_server posuto && MAIN_SERVERS+=(posuto)
[ -n "$BASELINE" ] && MAIN_SERVERS+=(base)
has_server dovecot && MAIN_SERVERS+=(dovecot)
CEIL_SESSION=(ok) CEIL_RETR=(sf)
[ $CEILINGS = 0 ] && CEIL_SESSION=() CEIL_RETR=()

# ---- scenarios ---------------------------------------------------------------------
sc_session() {
	local c r s
	for c in $SESSION_CLIENTS; do
		for r in $(seq 1 $REPS); do
			for s in $(order $r "${MAIN_SERVERS[@]}" "${CEIL_SESSION[@]}"); do
				local lax=()
				[ $s = ok ] && lax=(--lax)
				run_gen "session-c$c" $s "" -- -m session -c $c -U $c -u 'u%d' -P 'pw-u%d' \
				    -d "$DUR" -w "$WARM" "${lax[@]}"
			done
		done
	done
}

sc_sha512() {
	local r s c=$NSLOW
	for r in $(seq 1 $REPS); do
		for s in $(order $r "${MAIN_SERVERS[@]}"); do
			run_gen "session-sha512-c$c" $s "" -- -m session -c $c -U $c -u 's%d' -P 'pw-s%d' \
			    -d "$DUR" -w "$WARM" --probe 10 --probe-user probe --probe-pass pw-probe
		done
	done
}

# Untimed, before the RETR figures, for each server: every mailbox the RETR
# and fairness scenarios use is streamed again and again for RETR_PRIME
# seconds, so both are measured in their steady state (Dovecot's index and
# cache files, posuto's wire copies written) and not on a first pass.
retr_prime() {
	local s c=0 n
	local fair= tls=
	want fair && fair=$FAIR_CLIENTS
	want tlsretr && tls=$TLS_CLIENTS
	want scale && tls="$tls $SCALE_CLIENTS"
	for n in $RETR_CLIENTS $fair $tls; do (( n > c )) && c=$n; done
	for s in "${MAIN_SERVERS[@]}"; do
		"${GEN_PIN[@]}" "$BIN/popload" -p "${PORT[$s]}" --manifest "$DATA/users.manifest" \
		    -m retr -c $c -U $c -u 'u%d' -P 'pw-u%d' -d "$RETR_PRIME" -w 0 --pipeline 2 -q \
		    >/dev/null 2>&1 || log "RETR warm-up on $s reported errors"
	done
	# sfserver loads a box (and makes its wire files, blocking its one
	# thread) at a user's first PASS: on a busy machine that can take
	# longer than any fixed wait, and a measured run then got ~0 MB/s.
	# So one-second passes until one ends with payload sent and nothing
	# added to its cache (its size: a wire file being written grows it).
	for s in "${CEIL_RETR[@]}"; do
		local i before after out mb
		for i in $(seq 1 120); do
			before=$(du -sb "$DATA/sfcache" 2>/dev/null | cut -f1)
			out=$("${GEN_PIN[@]}" "$BIN/popload" -p "${PORT[$s]}" --manifest "$DATA/users.manifest" \
			    -m retr -c $c -U $c -u 'u%d' -P 'pw-u%d' -d 1 -w 0 --pipeline 2 -q 2>/dev/null)
			after=$(du -sb "$DATA/sfcache" 2>/dev/null | cut -f1)
			mb=$(echo "$out" | $PY -c 'import json,sys; print(json.load(sys.stdin).get("payload_bytes", 0))' 2>/dev/null)
			[ "${before:-0}" = "${after:-0}" ] && [ "${mb:-0}" -gt 0 ] && break
		done
		[ "$i" = 120 ] && log "RETR warm-up on $s: not ready after $i passes"
	done
}

sc_retr() {
	local c r s
	retr_prime
	for c in $RETR_CLIENTS; do
		for r in $(seq 1 $REPS); do
			for s in $(order $r "${MAIN_SERVERS[@]}" "${CEIL_RETR[@]}"); do
				run_gen "retr-c$c" $s "" -- -m retr -c $c -U $c -u 'u%d' -P 'pw-u%d' \
				    -d "$DUR" -w "$WARM" --pipeline 2
			done
		done
	done
}

sc_fair() {
	local r s c=$FAIR_CLIENTS
	for r in $(seq 1 $REPS); do
		for s in $(order $r "${MAIN_SERVERS[@]}" "${CEIL_RETR[@]}"); do
			run_gen "fair-c$c" $s "" -- -m retr -c $c -U $c -u 'u%d' -P 'pw-u%d' \
			    -d "$DUR" -w "$WARM" --probe 10 --probe-user probe --probe-pass pw-probe
		done
	done
}

sc_idle() { idle_rows idle "$IDLE_NS"; }

# Memory per idle TLS session, next to the plain figure (same users, box).
sc_tlsidle() { idle_rows "tls$CERT_SUFFIX-idle" "$TLS_IDLE_NS" --tls implicit; }

idle_rows() {	# label-prefix counts [popload TLS options]
	local prefix=$1 ns=$2 n s
	shift 2
	local tlsopt=("$@")
	for n in $ns; do
		for s in "${MAIN_SERVERS[@]}"; do
			# A fresh server, so the figure is the sessions' and not leftovers.
			if [ $SMOKE = 0 ]; then
				restart_server $s || { FAILED=$((FAILED + 1)); continue; }
				sleep 0.5
			fi
			local before after ready=$WORK/ready.$s.$n hold=300
			before=$(pss_kib "${PID[$s]}")
			rm -f "$ready"
			local port=${PORT[$s]}
			[ ${#tlsopt[@]} -gt 0 ] && port=${TPORT[$s]}
			"${GEN_PIN[@]}" "$BIN/popload" -p "$port" --manifest "$DATA/users.manifest" \
			    -m idle -c "$n" -U "$n" -u 'i%d' -P 'pw-i%d' -d "$hold" --ready-file "$ready" \
			    --label "$prefix-$n" -q --timeout 60 --ramp 64 "${tlsopt[@]}" > "$WORK/idle.out" 2> "$WORK/gen.err" &
			local gp=$! i
			# Dovecot forks a process per held session: on a busy machine
			# 10,000 take minutes.  popload bounds itself; wait for it.
			for i in $(seq 1 12000); do
				[ -f "$ready" ] && break
				kill -0 $gp 2>/dev/null || break
				sleep 0.1
			done
			sleep 1
			after=$(pss_kib "${PID[$s]}")
			local held
			held=$(cat "$ready" 2>/dev/null || echo 0)
			kill -USR1 $gp 2>/dev/null
			wait $gp
			local rc=$?
			local out
			out=$(cat "$WORK/idle.out")
			if [ $rc != 0 ] || [ -z "$out" ]; then
				step_failed "$s"
				log "FAIL $prefix-$n on $s (exit $rc):"
				head -20 "$WORK/gen.err" >&2
				[ -z "$out" ] && out='{"errors":1}'
			fi
			local per=0
			[ "${held:-0}" -gt 0 ] && per=$(awk -v a="$before" -v b="$after" -v n="$held" 'BEGIN{printf "%.2f", (b-a)/n}')
			printf '{"scenario":"%s-%s","server":"%s","pss_before_kib":%s,"pss_after_kib":%s,"held":%s,"wanted":%s,"pss_per_conn_kib":%s,"gen":%s}\n' \
			    "$prefix" "$n" "$s" "$before" "$after" "${held:-0}" "$n" "$per" "$out" >> "$RAW"
			printf '  %-22s %-8s held=%s pss %s -> %s KiB, %s KiB/session\n' "$prefix-$n" "$s" "$held" "$before" "$after" "$per" >&2
		done
	done
}

# ---- TLS (issue 15) ------------------------------------------------------------------
# tls[-ecdsa]-full-cN / -resumed-cN (POP3S), stls-... (STLS on the plain
# port), tls-retr-cN: posuto, Dovecot and the one-core TLS ceilings (okserver
# for sessions, sfserver for RETR), interleaved like the plain rows.
tls_port_opt() {	# server kind: the popload options that reach its TLS
	case $2 in
	tls) echo "-p ${TPORT[$1]} --tls implicit" ;;
	stls) echo "-p ${PORT[$1]} --tls stls" ;;
	esac
}

sc_tls() {
	local kind hs c r s
	for kind in tls stls; do
		for hs in full resumed; do
			local res=()
			[ $hs = resumed ] && res=(--resume)
			for c in $TLS_CLIENTS; do
				for r in $(seq 1 $REPS); do
					for s in $(order $r "${MAIN_SERVERS[@]}" "${CEIL_SESSION[@]}"); do
						local lax=()
						[ $s = ok ] && lax=(--lax)
						# shellcheck disable=SC2046 # two options
						run_gen "$kind$CERT_SUFFIX-$hs-c$c$SCALE_SUFFIX" $s "" -- -m session -c $c -U $c \
						    -u 'u%d' -P 'pw-u%d' -d "$DUR" -w "$WARM" "${lax[@]}" "${res[@]}" \
						    $(tls_port_opt $s $kind)
					done
				done
			done
		done
	done
}

sc_tlsretr() {
	local c r s
	want retr || retr_prime	# (steady state, as for the plain rows)
	for c in $TLS_CLIENTS; do
		for r in $(seq 1 $REPS); do
			for s in $(order $r "${MAIN_SERVERS[@]}" "${CEIL_RETR[@]}"); do
				# shellcheck disable=SC2046
				run_gen "tls$CERT_SUFFIX-retr-c$c$SCALE_SUFFIX" $s "" -- -m retr -c $c -U $c \
				    -u 'u%d' -P 'pw-u%d' -d "$DUR" -w "$WARM" --pipeline 2 $(tls_port_opt $s tls)
			done
		done
	done
}

# Servers restarted for N cores: pinned to cores 0..N-1, the load generator
# on the same cores when N > 1 (the machine has no third core to give it),
# posuto with EventLoops=N (if it knows the key), Dovecot with N login
# processes.
set_cores() {
	local n=$1 s
	SRV_CORES=$n
	if [ "$n" = 1 ]; then
		SRV_PIN=("${ONE_SRV_PIN[@]}") GEN_PIN=("${ONE_GEN_PIN[@]}") SCALE_SUFFIX=
	else
		SRV_PIN=(taskset -c "0-$((n - 1))") GEN_PIN=(taskset -c "0-$((n - 1))") SCALE_SUFFIX=-${n}c
	fi
	for s in "${MAIN_SERVERS[@]}"; do
		restart_server "$s" || { FAILED=$((FAILED + 1)); return 1; }
	done
}
SCALE_SUFFIX=

# The scaling rows: TLS full, resumed and RETR at SCALE_CLIENTS, the server
# given both cores; report.py sets them against the one-core rows.
sc_scale() {
	[ "$SCALE_CORES" -ge 2 ] || { log "one core: no scaling rows"; return 0; }
	set_cores "$SCALE_CORES" || return 1
	local save_c=$TLS_CLIENTS
	TLS_CLIENTS=$SCALE_CLIENTS
	local ceil_s=("${CEIL_SESSION[@]}") ceil_r=("${CEIL_RETR[@]}")
	CEIL_SESSION=() CEIL_RETR=()	# (single-threaded: one core's worth)
	local r s hs
	for hs in full resumed; do
		local res=()
		[ $hs = resumed ] && res=(--resume)
		for r in $(seq 1 $REPS); do
			for s in $(order $r "${MAIN_SERVERS[@]}"); do
				# shellcheck disable=SC2046
				run_gen "tls$CERT_SUFFIX-$hs-c$SCALE_CLIENTS$SCALE_SUFFIX" $s "" -- -m session \
				    -c $SCALE_CLIENTS -U $SCALE_CLIENTS -u 'u%d' -P 'pw-u%d' -d "$DUR" -w "$WARM" \
				    "${res[@]}" $(tls_port_opt $s tls)
			done
		done
	done
	sc_tlsretr
	TLS_CLIENTS=$save_c CEIL_SESSION=("${ceil_s[@]}") CEIL_RETR=("${ceil_r[@]}")
	set_cores 1
}

drop_index() {	# server box
	local d=$DATA/mail/$1/$2
	case $1 in
	posuto|base) rm -f "$d/.posuto.index" ;;
	dovecot) rm -f "$d"/dovecot.index* "$d"/dovecot-uidlist "$d"/dovecot-keywords ;;
	esac
}

sc_bigbox() {
	local b r s
	for b in $BIG_RUN; do
		# warm: untimed sessions build indexes and fill the caches (more
		# than one: on a fresh VM the first touch of each memory page the
		# guest hands out is a host fault, and that is not the server's)
		for s in "${MAIN_SERVERS[@]}"; do
			"${GEN_PIN[@]}" "$BIN/popload" -p "${PORT[$s]}" --manifest "$DATA/users.manifest" \
			    -m bigbox -n "$BIG_PRIME" -c 1 -U 1 -u "$b" -P "pw-$b" -d 300 --timeout 300 -q >/dev/null 2>&1
		done
		for r in $(seq 1 $REPS); do
			for s in $(order $r "${MAIN_SERVERS[@]}"); do
				run_gen "$b-warm" $s "" -- -m bigbox -n 1 -c 1 -U 1 -u "$b" -P "pw-$b" -d 300 --timeout 300
			done
		done
		# cold: server restarted, its index deleted, page/dentry caches dropped
		[ $COLD = 1 ] || continue
		for r in $(seq 1 $REPS); do
			for s in $(order $r "${MAIN_SERVERS[@]}"); do
				stop_server $s
				drop_index $s $b
				sync
				# (smoke: no cache dropping; it would slow the whole machine)
				if [ $SMOKE = 0 ] && ! echo 3 > /proc/sys/vm/drop_caches 2>/dev/null; then
					log "cannot drop caches (not root?): cold figures are not cold"
				fi
				start_server $s || { FAILED=$((FAILED + 1)); continue; }
				run_gen "$b-cold" $s "" -- -m bigbox -n 1 -c 1 -U 1 -u "$b" -P "pw-$b" -d 300 --timeout 300
			done
		done
	done
}

# JumboDogX emldir layout: verified, not compared (Dovecot cannot read it).
sc_emldir() {
	[ -d "$DATA/mail/posuto/e1" ] || return 0
	has_server posuto || return 0
	run_gen "retr-emldir" posuto "" -- -m retr -c 1 -U 1 -u 'e%d' -P 'pw-e%d' -d "$DUR" -n 3
}

# issue 11: LMTP, deliver, first RETR of delivered mail, mbox
. "$HERE/run_delivery.sh"

# ---- main ----------------------------------------------------------------------------
mkdir -p "$DATA" "$OUT"
gen_data || die "mail generation failed"
dlv_gen_data || die "delivery/mbox data generation failed"
make_users || die "creating mailboxes failed"
make_passwords || die "hashing passwords failed"
make_cert || die "making the $CERT_KIND certificate failed"
if [ $PREPARE = 1 ]; then log "data ready in $DATA"; exit 0; fi
base_build || die "building the baseline $BASE_DESC failed"

T_START=$EPOCHREALTIME
[ -n "$BASELINE" ] && log "base: $BASE_DESC ($BASE_BIN)"
CEIL_ALL="${CEIL_SESSION[*]} ${CEIL_RETR[*]}"
[ $CEILINGS = 1 ] || CEIL_ALL=none
log "servers: ${MAIN_SERVERS[*]} (+ ceilings $CEIL_ALL); reps $REPS, ${DUR}s + ${WARM}s warm-up; pin ${SRV_PIN[*]:-none} / ${GEN_PIN[*]:-none}; nofile $NOFILE"
for s in "${MAIN_SERVERS[@]}" "${CEIL_SESSION[@]}" "${CEIL_RETR[@]}"; do
	start_server $s || die "cannot start $s"
done

log "servers up after $(awk -v a="$T_START" -v b="$EPOCHREALTIME" 'BEGIN{printf "%.1f", b-a}')s"
want session && sc_session
want sha512 && sc_sha512
want retr && sc_retr
want fair && sc_fair
want tls && sc_tls
want tlsretr && sc_tlsretr
[ $SMOKE = 1 ] && want retr && sc_emldir
want bigbox && sc_bigbox
want idle && sc_idle
want tlsidle && sc_tlsidle
want scale && sc_scale
want lmtp && sc_lmtp
want deliver && sc_deliver
want first && sc_first
want mbox && sc_mbox
# Issue 13's rows (sql userdbs, nodes behind haproxy): bench/scaleout.py,
# not in the smoke run (it starts PostgreSQL, MariaDB and haproxy).
if [ $SMOKE = 0 ] && want scaleout; then
	$PY "$HERE/scaleout.py" --data "$DATA" --reps "$REPS" --duration "$DUR" \
	    --warmup "$WARM" --posuto "$POSUTO_BIN" || FAILED=$((FAILED + 1))
fi
# the web admin's mailbox API on a 100k-message Maildir (bench/mailbox_api.py)
want mailbox && { $PY "$HERE/mailbox_api.py" --posuto "$POSUTO_BIN" --data "$DATA-mbx" \
	$([ $SMOKE = 1 ] && echo --msgs 2000 --reps 5) | tee "$OUT/mailbox_api.txt" ||
	die "mailbox API bench failed"; }
# The web admin polled while 64 clients NOOP (issue 12): its own posuto.
[ $SMOKE = 1 ] || ! want admin || $PY "$HERE/admin_poll.py" --posuto "$POSUTO_BIN" \
    --duration "$DUR" > "$OUT/admin_poll.json" || log "FAIL admin-poll: errors"
log "scenarios done after $(awk -v a="$T_START" -v b="$EPOCHREALTIME" 'BEGIN{printf "%.1f", b-a}')s"

MACHINE=$(printf '%s, %s cores, %s, kernel %s' \
    "$(awk -F': ' '/model name/ {print $2; exit}' /proc/cpuinfo)" "$NCPU" \
    "Debian $(cat /etc/debian_version 2>/dev/null)" "$(uname -r)")
$PY "$HERE/report.py" --raw "$RAW" --out "$OUT/results.json" --machine "$MACHINE" \
    --dovecot "$DOVECOT_VERSION" --smoke $SMOKE --reps "$REPS" --duration "$DUR" \
    --event-loops "$LOOPS_OK" --scale-cores "$SCALE_CORES" --cert "$CERT_KIND" \
    ${BASELINE:+--base "$BASE_DESC" --tolerance "$TOLERANCE" --idle-limit "$IDLE_LIMIT"} \
    || FAILED=$((FAILED + 1))
cp "$RAW" "$OUT/raw.jsonl"

[ $CMP_FAILED -gt 0 ] && log "note: $CMP_FAILED Dovecot run(s) did not complete (see the table)"
if [ $FAILED -gt 0 ]; then
	log "FAILED: $FAILED step(s) had verification errors or did not complete"
	exit 1
fi
exit 0
