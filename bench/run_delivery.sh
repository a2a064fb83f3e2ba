# bench/run_delivery.sh - issue 11's rows, sourced by run.sh (README.md,
# "Delivery and mbox"): LMTP and `posuto deliver` against Dovecot's LMTP
# and dovecot-lda, the first RETR of mail posuto delivered against the
# sendfile ceiling, and the mbox store against Dovecot and popa3d on the
# same mbox files.  Uses run.sh's variables and helpers (log, free_port,
# wait_port, cpu_ticks, stop_server, step_failed, order, PID, PORT, ...).

if [ $SMOKE = 1 ]; then
	DLV_CLIENTS=4 DLV_PAR="1 2" DLV_SIZES="4k" DLV_NUSERS=4
	MBOX_NUSERS=8 MBOX_SESSION_C=8 MBOX_RETR_C=4 MBOX_MSGS=20 FIRST_C=4
else
	DLV_CLIENTS=16 DLV_PAR="1 8" DLV_SIZES="4k 100k" DLV_NUSERS=16
	MBOX_NUSERS=64 MBOX_SESSION_C=64 MBOX_RETR_C=16 MBOX_MSGS=100 FIRST_C=16
fi
DLV_PER_CONN=10			# Postfix's cached LMTP session: several transactions
DLV_SENDER=sender@bench.example
LDA=/usr/lib/dovecot/dovecot-lda
POPA3D=$OUT/popa3d/root/usr/sbin/popa3d
POPA3D_ON=0			# set by popa3d_setup
DLV_MADE_USERS=()		# system users we created (removed again)
DLV_MADE_POPA3D_USER=0 DLV_MADE_CHROOT=0
# System users for popa3d (it serves /var/mail/<user>, authenticates with
# PAM); their GECOS marks them as ours, so a later run may reuse or remove them.
MBOX_GECOS="posuto bench user"

# ---- data ---------------------------------------------------------------------------
# m4k.eml, m100k.eml: one message each, as an MTA hands it over (no
# Return-Path/Delivered-To).  mbox/src/bN: the first MBOX_MSGS messages of
# box bN as a classic /var/mail mbox (From_ lines, a blank line between);
# the generator writes no body line starting "From ", so no quoting is
# needed and every server must report the Maildir's wire sizes.
dlv_deps() {	# Dovecot's LMTP (dovecot-lda comes with dovecot-core)
	[ $SMOKE = 0 ] && [ "$(id -u)" = 0 ] && has_server dovecot && [ ! -x /usr/lib/dovecot/lmtp ] || return 0
	log "installing dovecot-lmtpd from Debian"
	local prc=/usr/sbin/policy-rc.d made=0
	if [ ! -e $prc ]; then printf '#!/bin/sh\nexit 101\n' > $prc && chmod 755 $prc && made=1; fi
	DEBIAN_FRONTEND=noninteractive apt-get install -y dovecot-lmtpd >&2 || log "apt-get install dovecot-lmtpd failed"
	[ $made = 1 ] && rm -f $prc
	return 0
}

dlv_gen_data() {
	dlv_deps
	local d=$DATA/dlv
	if [ ! -f "$d/.done" ]; then
		mkdir -p "$d"
		$PY "$HERE/mkmail.py" --single 4096 --mix tiny --seed 7 --out "$d/m4k.eml" &&
		    $PY "$HERE/mkmail.py" --single 102400 --mix tiny --seed 8 --out "$d/m100k.eml" || return 1
		touch "$d/.done"
	fi
	local m=$DATA/mbox stamp="v1 $MBOX_MSGS $MBOX_NUSERS"
	if [ "$(cat "$m/.done" 2>/dev/null)" != "$stamp" ]; then
		log "making mbox files in $m/src (once)"
		rm -rf "$m"
		mkdir -p "$m/src"
		$PY - "$DATA/src/main" "$m" "$MBOX_MSGS" "$MBOX_NUSERS" <<'PYEOF' || return 1
import os, sys
src, out, nmsgs, nusers = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
boxes = sorted((b for b in os.listdir(src) if os.path.isdir(os.path.join(src, b))),
               key=lambda b: int(b[1:]))
sizes = {}
for b in boxes:
    names = sorted(os.listdir(os.path.join(src, b, "new")))[:nmsgs]
    total = 0
    with open(os.path.join(out, "src", b), "wb") as f:
        for i, n in enumerate(names):
            d = open(os.path.join(src, b, "new", n), "rb").read()
            if any(l.startswith((b"From ", b">From ")) for l in d.split(b"\n")):
                sys.exit("mbox: %s/%s has a From_ body line" % (b, n))
            f.write(b"From sender@example.org Mon Apr  1 09:%02d:%02d 2024\n" % (i // 60 % 60, i % 60))
            f.write(d if d.endswith(b"\n") else d + b"\n")
            f.write(b"\n")
            total += len(d) + d.count(b"\n")
    sizes[b] = (len(names), total)
with open(os.path.join(out, "manifest"), "w") as m:
    for i in range(1, nusers + 1):
        b = boxes[(i - 1) % len(boxes)]
        m.write("pbm%d %d %d\n" % (i, sizes[b][0], sizes[b][1]))
PYEOF
		echo "$stamp" > "$m/.done"
	fi
	return 0
}

# A fresh copy of the mbox files for one server: user pbmI <- bN.
mbox_copy() {	# dir [owner-per-user]
	local dir=$1 per_user=${2:-0} i b nb
	nb=$(find "$DATA/mbox/src" -maxdepth 1 -type f | wc -l)
	rm -rf "$dir" && mkdir -p "$dir" || return 1
	for i in $(seq 1 $MBOX_NUSERS); do
		b=b$(( (i - 1) % nb + 1 ))
		cp "$DATA/mbox/src/$b" "$dir/pbm$i" || return 1
		if [ "$per_user" = 1 ]; then
			chown "pbm$i:mail" "$dir/pbm$i" && chmod 600 "$dir/pbm$i"
		elif [ "$(id -u)" = 0 ]; then
			chown nobody:nogroup "$dir/pbm$i"
		fi
	done
	[ "$(id -u)" = 0 ] && [ "$per_user" = 0 ] && chown nobody:nogroup "$dir"
	return 0
}

# ---- popa3d: the Debian package's binary, run from inetd (tcpserver) -------------
# popa3d conflicts with dovecot-pop3d (both provide pop3-server), so it is
# not installed: `apt-get download` and `dpkg-deb -x` into out/popa3d.
popa3d_setup() {
	[ $SMOKE = 0 ] && [ "$(id -u)" = 0 ] || return 1
	if [ ! -x "$POPA3D" ]; then
		log "fetching popa3d (Debian package, extracted, not installed)"
		mkdir -p "$OUT/popa3d" &&
		    (cd "$OUT/popa3d" && rm -f popa3d_*.deb && apt-get download popa3d >&2 &&
		     dpkg-deb -x popa3d_*.deb root) || { log "popa3d not available: its column is skipped"; return 1; }
	fi
	command -v tcpserver >/dev/null || { log "tcpserver (ucspi-tcp) missing: popa3d skipped"; return 1; }
	# popa3d drops to user popa3d in the empty /var/lib/popa3d before it
	# reads the network; the package's postinst would have made both.
	if ! id popa3d >/dev/null 2>&1; then
		useradd -r -M -d /var/lib/popa3d -s /usr/sbin/nologin -c "$MBOX_GECOS" popa3d || return 1
		DLV_MADE_POPA3D_USER=1
	fi
	if [ ! -d /var/lib/popa3d ]; then mkdir -p /var/lib/popa3d && DLV_MADE_CHROOT=1; fi
	local i u hash
	for i in $(seq 1 $MBOX_NUSERS); do
		u=pbm$i
		if id "$u" >/dev/null 2>&1; then
			[ "$(getent passwd "$u" | cut -d: -f5)" = "$MBOX_GECOS" ] ||
			    { log "user $u exists and is not ours: popa3d skipped"; return 1; }
		else
			useradd -M -N -g mail -d /nonexistent -s /usr/sbin/nologin -c "$MBOX_GECOS" "$u" || return 1
		fi
		DLV_MADE_USERS+=("$u")
		# md5crypt, the cheapest hash pam_unix takes: like the SHA256
		# of the others, so sessions/s measure the servers, not the hash
		hash=$(openssl passwd -1 -salt "bm$i" "pw-$u") && usermod -p "$hash" "$u" || return 1
	done
	mbox_copy /var/mail 1 || return 1
	POPA3D_ON=1
	return 0
}

dlv_cleanup() {
	local u
	for u in "${DLV_MADE_USERS[@]}"; do
		rm -f "/var/mail/$u" "/var/mail/$u.lock"
		userdel "$u" 2>/dev/null
	done
	DLV_MADE_USERS=()
	[ $DLV_MADE_POPA3D_USER = 1 ] && userdel popa3d 2>/dev/null
	[ $DLV_MADE_CHROOT = 1 ] && rmdir /var/lib/popa3d 2>/dev/null
	DLV_MADE_POPA3D_USER=0 DLV_MADE_CHROOT=0
}

# ---- servers --------------------------------------------------------------------------
# Keys in PID/PORT: plmtp (posuto: LMTP and POP3 on the delivered tree),
# dlmtp (Dovecot LMTP, also dovecot-lda's auth), pmbox, dmbox, popa3d, sf1st.
# Users l1..lN (delivery) have password pw-lI; pbm1..pbmN (mbox) pw-pbmI.
dlv_users_json() {	# prefix n [scheme]
	$PY - "$1" "$2" <<'PYEOF'
import hashlib, json, sys
p, n = sys.argv[1], int(sys.argv[2])
print(json.dumps([{"UserName": "%s%d" % (p, i), "HashType": "SHA256",
                   "Password": hashlib.sha256(("pw-%s%d" % (p, i)).encode()).hexdigest()}
                  for i in range(1, n + 1)]))
PYEOF
}

dlv_posuto_config() {	# file lmtp-port pop3-port maildir
	# As root, posuto (serve and deliver) works as nobody, as Dovecot does;
	# its own LockFile, as the default one would be handed to nobody.
	local RUNAS=
	[ "$(id -u)" = 0 ] && RUNAS=' "RunAsUser": "nobody",'
	cat > "$1" <<EOF
{"Pop3Server": {
 "Listen": [{"Address": "127.0.0.1", "Port": $2, "Protocol": "lmtp"},
            {"Address": "127.0.0.1", "Port": $3}],
 "MailDir": "$4", "MailboxFormat": "maildir",
 "MaxConnectionsPerIp": 0, "MaxConnections": 0, "AuthFailDelay": 0,
 "LockFile": "$WORK/plmtp.lock", "LogLevel": "warn",$RUNAS "Users": $(dlv_users_json l "$DLV_NUSERS")}}
EOF
	chmod 600 "$1"
}

dovecot_common() {	# dir instance
	cat <<EOF
# generated by posuto bench/run_delivery.sh: loopback only
base_dir = $1/run
state_dir = $1/state
instance_name = posuto-bench-$2
listen = 127.0.0.1
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain
log_path = $1/dovecot.log
info_log_path = /dev/null
auth_verbose = no
verbose_proctitle = no
first_valid_uid = 1
auth_cache_size = 10M
auth_cache_ttl = 1 hour
auth_username_format = %Ln
default_process_limit = 1000
default_client_limit = 4000
passdb {
  driver = passwd-file
  args = $1/passwd
}
EOF
}

# Dovecot's LMTP into Maildir, as shipped but for: the lmtp processes kept
# (process_min_avail = one per client; they are reused by default) and the
# auth cache.  mail_fsync = optimized is Dovecot's default: fsync of each
# delivered message before it is acknowledged.
dlv_dovecot_config() {	# dir port maildir
	local d=$1
	mkdir -p "$d/run" "$d/state"
	$PY - "$DLV_NUSERS" > "$d/passwd" <<'PYEOF'
import hashlib, sys
for i in range(1, int(sys.argv[1]) + 1):
    u = "l%d" % i
    print("%s:{SHA256.HEX}%s" % (u, hashlib.sha256(("pw-" + u).encode()).hexdigest()))
PYEOF
	chmod 644 "$d/passwd"
	{
		dovecot_common "$d" lmtp
		cat <<EOF
protocols = lmtp
mail_location = maildir:$3/%u
mail_fsync = optimized
userdb {
  driver = static
  args = uid=nobody gid=nogroup home=$3/%u
}
service lmtp {
  inet_listener lmtp {
    address = 127.0.0.1
    port = $2
  }
  process_min_avail = $DLV_CLIENTS
}
protocol lmtp {
  postmaster_address = postmaster@bench.example
}
EOF
	} > "$d/dovecot.conf"
}

# Dovecot's POP3 on mbox files, tuned like the Maildir instance: processes
# reused, no flag updates at RETR (so QUIT rewrites nothing), lazy syncs.
mbox_dovecot_config() {	# dir port mboxdir
	local d=$1
	mkdir -p "$d/run" "$d/state" "$d/index"
	[ "$(id -u)" = 0 ] && chown nobody:nogroup "$d/index"
	$PY - "$MBOX_NUSERS" > "$d/passwd" <<'PYEOF'
import hashlib, sys
for i in range(1, int(sys.argv[1]) + 1):
    u = "pbm%d" % i
    print("%s:{SHA256.HEX}%s" % (u, hashlib.sha256(("pw-" + u).encode()).hexdigest()))
PYEOF
	chmod 644 "$d/passwd"
	{
		dovecot_common "$d" mbox
		cat <<EOF
protocols = pop3
mail_location = mbox:$d/index/%u:INBOX=$3/%u:INDEX=$d/index/%u
mail_fsync = never
mbox_very_dirty_syncs = yes
pop3_no_flag_updates = yes
userdb {
  driver = static
  args = uid=nobody gid=nogroup home=$d/index/%u
}
service pop3-login {
  inet_listener pop3 {
    address = 127.0.0.1
    port = $2
  }
  inet_listener pop3s {
    port = 0
  }
  service_count = 0
  process_min_avail = 1
}
service pop3 {
  service_count = 0
  process_min_avail = 2
}
service auth {
  client_limit = 4000
}
protocol pop3 {
  mail_max_userip_connections = 100000
}
EOF
	} > "$d/dovecot.conf"
}

dlv_start() {	# key [pop3-port-key]
	local s=$1 port
	port=$(free_port)
	PORT[$s]=$port
	case $s in
	plmtp)
		local pport
		pport=$(free_port)
		[ "$pport" = "$port" ] && pport=$(free_port)
		PORT[plmtp_pop3]=$pport
		dlv_posuto_config "$WORK/plmtp.json" "$port" "$pport" "$WORK/dlv/posuto"
		"${SRV_PIN[@]}" "$POSUTO_BIN" serve -c "$WORK/plmtp.json" >>"$WORK/plmtp.log" 2>&1 &
		PID[$s]=$! ;;
	dlmtp)
		dlv_dovecot_config "$WORK/dlmtp" "$port" "$WORK/dlv/dovecot"
		"${SRV_PIN[@]}" "$DOVECOT" -F -c "$WORK/dlmtp/dovecot.conf" >>"$WORK/dlmtp.log" 2>&1 &
		PID[$s]=$! ;;
	pmbox)
		mkdir -p "$WORK/pmbox-state"
		[ "$(id -u)" = 0 ] && chown nobody:nogroup "$WORK/pmbox-state"
		cat > "$WORK/pmbox.json" <<EOF
{"Pop3Server": {
 "Listen": [{"Address": "127.0.0.1", "Port": $port}],
 "MailDir": "$DATA/mbox/posuto", "MailboxFormat": "mbox",
 "MboxStateDirectory": "$WORK/pmbox-state",
 "MaxConnectionsPerIp": 0, "MaxConnections": 0, "AuthFailDelay": 0,
 "LogLevel": "warn", "Users": $(dlv_users_json pbm "$MBOX_NUSERS")}}
EOF
		chmod 600 "$WORK/pmbox.json"
		"${SRV_PIN[@]}" "$POSUTO_BIN" serve -c "$WORK/pmbox.json" >>"$WORK/pmbox.log" 2>&1 &
		PID[$s]=$! ;;
	dmbox)
		mbox_dovecot_config "$WORK/dmbox" "$port" "$DATA/mbox/dovecot"
		"${SRV_PIN[@]}" "$DOVECOT" -F -c "$WORK/dmbox/dovecot.conf" >>"$WORK/dmbox.log" 2>&1 &
		PID[$s]=$! ;;
	popa3d)
		# inetd mode, popa3d's default: a process per connection
		"${SRV_PIN[@]}" tcpserver -H -R -l0 -c 1000 -b 1000 127.0.0.1 "$port" "$POPA3D" \
		    >>"$WORK/popa3d.log" 2>&1 &
		PID[$s]=$! ;;
	sf1st)
		"${SRV_PIN[@]}" "$BIN/sfserver" -p "$port" -m "$WORK/first/master" -C "$WORK/first/sfcache" \
		    2>>"$WORK/sfserver.log" &
		PID[$s]=$! ;;
	esac
	if ! wait_port "$port" 20; then
		log "$s did not start listening on 127.0.0.1:$port"
		tail -5 "$WORK/$s.log" "$WORK/$s/dovecot.log" 2>/dev/null >&2
		return 1
	fi
	[ $s = plmtp ] && ! wait_port "${PORT[plmtp_pop3]}" 5 && return 1
	case $s in dlmtp|dmbox) sleep 0.5 ;; esac	# login/lmtp processes up
	return 0
}

dlv_stop() {
	stop_server "$1"
	case $1 in
	dlmtp|dmbox)
		local i
		for i in $(seq 1 100); do
			pgrep -f "$WORK/$1/" > /dev/null || break
			sleep 0.05
		done ;;
	esac
}

# ---- running ------------------------------------------------------------------------
# dlv_run scenario label key stored-check -- lmtpload|popload args...
# label: the column (posuto, dovecot, popa3d, sf); key: PID/PORT entry.
# stored-check: a directory whose Maildirs must hold exactly the messages
# the load generator saw acknowledged (no loss, no duplicate), or "-".
dlv_run() {
	local scen=$1 label=$2 key=$3 tree=$4 gen=$5
	shift 6
	local t0 t1 out rc w0=$EPOCHREALTIME extra=""
	t0=$(cpu_ticks "${PID[$key]:-1}")
	case $gen in
	lmtp) out=$("${GEN_PIN[@]}" "$BIN/lmtpload" --label "$scen" -q "$@" 2>"$WORK/gen.err") ;;
	pop) out=$("${GEN_PIN[@]}" "$BIN/popload" --label "$scen" -q "$@" 2>"$WORK/gen.err") ;;
	esac
	rc=$?
	t1=$(cpu_ticks "${PID[$key]:-1}")
	local cpu
	cpu=$(awk -v a="$t0" -v b="$t1" -v hz="$HZ" 'BEGIN{printf "%.2f", (b-a)/hz}')
	if [ $gen = lmtp ] && [ -n "$out" ]; then
		# exec: the delivery processes are the server
		cpu=$(echo "$out" | $PY -c 'import json,sys; d=json.load(sys.stdin); print("%.2f" % (d.get("child_cpu_s", 0) + float(sys.argv[1])))' "$cpu")
	fi
	if [ "$tree" != - ] && [ -n "$out" ]; then
		local want have
		want=$(echo "$out" | $PY -c 'import json,sys; print(json.load(sys.stdin)["msgs_total"])')
		have=$(find "$tree" -path '*/new/*' -type f 2>/dev/null | wc -l)
		extra=",\"stored\":$have"
		if [ "$want" != "$have" ]; then
			log "$scen on $label: $want messages acknowledged, $have stored"
			rc=1
			out=$(echo "$out" | $PY -c 'import json,sys; d=json.load(sys.stdin); d["errors"] += 1; print(json.dumps(d))')
		fi
	fi
	if [ $rc != 0 ] || [ -z "$out" ]; then
		step_failed "$label"
		log "FAIL $scen on $label (exit $rc):"
		head -20 "$WORK/gen.err" >&2
		[ -z "$out" ] && out='{"errors":1}'
	fi
	printf '{"scenario":"%s","server":"%s","server_cpu_s":%s%s,"gen":%s}\n' \
	    "$scen" "$label" "$cpu" "$extra" "$out" >> "$RAW"
	printf '  %5.1fs %-22s %-8s %s\n' "$(awk -v a="$w0" -v b="$EPOCHREALTIME" 'BEGIN{print b-a}')" "$scen" "$label" \
	    "$(echo "$out" | $PY -c 'import json,sys; d=json.load(sys.stdin); print(" ".join("%s=%s" % (k, d.get(k)) for k in ("rate","lat_p50_ms","lat_p99_ms","mbps","msgs_total","loadgen_cpu_pct","errors") if d.get(k) not in (None, 0, 0.0)))' 2>/dev/null)" >&2
	return $rc
}

# A fresh, empty delivery tree for a server (mailboxes are made by the first
# delivery, as on a new host), the server restarted on it.
dlv_fresh() {	# label key
	dlv_stop "$2"
	rm -rf "$WORK/dlv/$1"
	mkdir -p "$WORK/dlv/$1"
	[ "$(id -u)" = 0 ] && chown nobody:nogroup "$WORK/dlv/$1"
	dlv_start "$2"
}

dlv_servers() {	# what compares: posuto always, Dovecot when it is there
	local s="posuto"
	has_server dovecot && [ -x /usr/lib/dovecot/lmtp ] && s="$s dovecot"
	echo $s
}

dlv_key() { case $1 in posuto) echo plmtp ;; dovecot) echo dlmtp ;; esac; }

sc_lmtp() {
	local size r s
	for size in $DLV_SIZES; do
		for r in $(seq 1 $REPS); do
			for s in $(order $r $(dlv_servers)); do
				local k
				k=$(dlv_key $s)
				dlv_fresh $s $k || { step_failed $s; continue; }
				dlv_run "lmtp-$size-c$DLV_CLIENTS" $s $k "$WORK/dlv/$s" lmtp -- \
				    -m lmtp -p "${PORT[$k]}" -c $DLV_CLIENTS -U $DLV_NUSERS -u 'l%d' \
				    --per-conn $DLV_PER_CONN --msg "$DATA/dlv/m$size.eml" -d "$DUR" -w "$WARM"
			done
		done
	done
}

# One process per message, as Postfix's mailbox_command or a pipe transport
# runs it.  dovecot-lda looks users up in the running Dovecot (dlmtp).
sc_deliver() {
	local size p r s
	local have_lda=0
	[[ " $(dlv_servers) " == *" dovecot "* ]] && [ -x "$LDA" ] && have_lda=1
	for size in $DLV_SIZES; do
		for p in $DLV_PAR; do
			for r in $(seq 1 $REPS); do
				local list=posuto
				[ $have_lda = 1 ] && list="posuto dovecot"
				for s in $(order $r $list); do
					local k cmd
					k=$(dlv_key $s)
					dlv_fresh $s $k || { step_failed $s; continue; }
					if [ $s = posuto ]; then
						cmd=("$POSUTO_BIN" deliver -c "$WORK/plmtp.json" -f "$DLV_SENDER" %u)
					else
						cmd=("$LDA" -c "$WORK/dlmtp/dovecot.conf" -d %u -f "$DLV_SENDER")
					fi
					dlv_run "deliver-$size-p$p" $s $k "$WORK/dlv/$s" lmtp -- \
					    -m exec -c $p -U $DLV_NUSERS -u 'l%d' --msg "$DATA/dlv/m$size.eml" \
					    -d "$DUR" -w "$WARM" --child-log "$WORK/deliver.$s.log" -- "${cmd[@]}"
				done
			done
		done
	done
}

# The first download of mail posuto delivered: the corpus boxes b1..bN go
# in over posuto's LMTP (Python's smtplib.LMTP, one connection), once; each
# repetition then gets a hard-linked copy that no server has read (no wire
# copies, no S flags, no index), served by a freshly started posuto, and
# every client downloads one mailbox once (-n: as many sessions as
# clients).  sf serves the same delivered files, from its prepared wire
# copies, in the same way.
sc_first() {
	local c=$FIRST_C r s
	dlv_fresh posuto plmtp || { step_failed posuto; return; }
	log "delivering the corpus over posuto's LMTP for the first-RETR figure"
	$PY - "${PORT[plmtp]}" "$DATA/src/main" "$c" "$WORK/first.manifest" "$WORK/dlv/posuto" <<'PYEOF' || { log "corpus delivery failed"; step_failed posuto; return; }
import hashlib, os, smtplib, sys
port, src, n, manifest, tree = int(sys.argv[1]), sys.argv[2], int(sys.argv[3]), sys.argv[4], sys.argv[5]
boxes = sorted((b for b in os.listdir(src) if os.path.isdir(os.path.join(src, b))), key=lambda b: int(b[1:]))
want = {}
lm = smtplib.LMTP("127.0.0.1", port, timeout=60)
lm.ehlo("loader.bench.example")
for i in range(1, n + 1):
    b = boxes[(i - 1) % len(boxes)]
    d = os.path.join(src, b, "new")
    want[i] = []
    for name in sorted(os.listdir(d)):
        data = open(os.path.join(d, name), "rb").read()
        # (smtplib does not fix the line ends of bytes: CRLF, as an MTA sends)
        refused = lm.sendmail("sender@bench.example", ["l%d@bench.example" % i],
                              data.replace(b"\n", b"\r\n"),
                              mail_options=["BODY=8BITMIME"])
        if refused:
            sys.exit("refused: %r" % refused)
        want[i].append(hashlib.sha1(data).hexdigest())
lm.quit()
# What was stored is what was sent, each message once, plus the trace
# headers; the manifest is what RETR must send.
with open(manifest, "w") as m:
    for i in range(1, n + 1):
        got, octets = [], 0
        for sub in ("new", "cur"):
            dd = os.path.join(tree, "l%d" % i, sub)
            for name in os.listdir(dd) if os.path.isdir(dd) else ():
                data = open(os.path.join(dd, name), "rb").read()
                octets += len(data) + data.count(b"\n") - data.count(b"\r\n")
                lines = data.split(b"\r\n")
                # posuto's two trace lines (the corpus has its own below them)
                if not (lines[0].startswith(b"Return-Path: ") and lines[1].startswith(b"Delivered-To: ")):
                    sys.exit("l%d/%s/%s: no Return-Path and Delivered-To on top" % (i, sub, name))
                got.append(hashlib.sha1(b"\n".join(lines[2:])).hexdigest())
        if sorted(got) != sorted(want[i]):
            sys.exit("l%d: stored messages differ from those sent (%d vs %d)" % (i, len(got), len(want[i])))
        m.write("l%d %d %d\n" % (i, len(got), octets))
PYEOF
	dlv_stop plmtp
	mkdir -p "$WORK/first"
	mv "$WORK/dlv/posuto" "$WORK/first/master"
	local srv=(posuto)
	[ $CEILINGS = 1 ] && srv+=(sf)
	if [ $CEILINGS = 1 ]; then
		dlv_start sf1st || { FAILED=$((FAILED + 1)); return; }
		# (sf makes its wire copies at the first login: untimed)
		"${GEN_PIN[@]}" "$BIN/popload" -p "${PORT[sf1st]}" --manifest "$WORK/first.manifest" \
		    -m retr -c $c -U $c -u 'l%d' -P 'pw-l%d' -n $c -d 300 --retr-max 1 -q >/dev/null 2>&1
	fi
	for r in $(seq 1 $REPS); do
		for s in $(order $r "${srv[@]}"); do
			if [ $s = posuto ]; then
				rm -rf "$WORK/dlv/posuto"
				cp -al "$WORK/first/master" "$WORK/dlv/posuto" || { step_failed posuto; continue; }
				dlv_stop plmtp
				dlv_start plmtp || { step_failed posuto; continue; }
				dlv_run "retr-first-c$c" posuto plmtp - pop -- -p "${PORT[plmtp_pop3]}" \
				    --manifest "$WORK/first.manifest" -m retr -c $c -U $c -u 'l%d' -P 'pw-l%d' \
				    -n $c -d 300 -w 0 --pipeline 2
			else
				dlv_run "retr-first-c$c" sf sf1st - pop -- -p "${PORT[sf1st]}" \
				    --manifest "$WORK/first.manifest" -m retr -c $c -U $c -u 'l%d' -P 'pw-l%d' \
				    -n $c -d 300 -w 0 --pipeline 2
			fi
		done
	done
	dlv_stop plmtp
	dlv_stop sf1st
}

# mbox: the same mbox files (fresh copies, identical bytes) for posuto,
# Dovecot and popa3d; sessions as in session-cN, RETR as in retr-cN.
sc_mbox() {
	local srv=(posuto) r s c
	mbox_copy "$DATA/mbox/posuto" || { step_failed posuto; return; }
	dlv_start pmbox || { step_failed posuto; return; }
	if has_server dovecot; then
		mbox_copy "$DATA/mbox/dovecot" && dlv_start dmbox && srv+=(dovecot)
	fi
	if popa3d_setup && dlv_start popa3d; then srv+=(popa3d); fi
	declare -A key=([posuto]=pmbox [dovecot]=dmbox [popa3d]=popa3d)
	local man=(--manifest "$DATA/mbox/manifest")
	# untimed: indexes built (posuto's size index, Dovecot's), caches warm
	for s in "${srv[@]}"; do
		"${GEN_PIN[@]}" "$BIN/popload" -p "${PORT[${key[$s]}]}" "${man[@]}" -m retr \
		    -c $MBOX_SESSION_C -U $MBOX_SESSION_C -u 'pbm%d' -P 'pw-pbm%d' -n $MBOX_SESSION_C \
		    -d 600 --timeout 300 --pipeline 2 -q >/dev/null 2>"$WORK/gen.err" ||
		    { log "mbox warm-up on $s reported errors:"; head -5 "$WORK/gen.err" >&2; }
	done
	c=$MBOX_SESSION_C
	for r in $(seq 1 $REPS); do
		for s in $(order $r "${srv[@]}"); do
			dlv_run "session-mbox-c$c" $s ${key[$s]} - pop -- -p "${PORT[${key[$s]}]}" "${man[@]}" \
			    -m session -c $c -U $c -u 'pbm%d' -P 'pw-pbm%d' -d "$DUR" -w "$WARM" --timeout 60
		done
	done
	c=$MBOX_RETR_C
	for r in $(seq 1 $REPS); do
		for s in $(order $r "${srv[@]}"); do
			dlv_run "retr-mbox-c$c" $s ${key[$s]} - pop -- -p "${PORT[${key[$s]}]}" "${man[@]}" \
			    -m retr -c $c -U $c -u 'pbm%d' -P 'pw-pbm%d' -d "$DUR" -w "$WARM" --pipeline 2 --timeout 60
		done
	done
	for s in "${srv[@]}"; do dlv_stop ${key[$s]}; done
	# (Dovecot rewrote its copy's headers; the next run copies afresh)
	rm -rf "$DATA/mbox/dovecot"
	dlv_cleanup
}
