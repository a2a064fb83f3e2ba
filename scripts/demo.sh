#!/bin/sh
# demo.sh [--reset] [--serve POSUTO] DIR - prepares the `make run` demo in DIR:
#   DIR/posuto.json                      config (127.0.0.1:POP3_PORT plain+STLS,
#                                        :POP3S_PORT TLS; default 1110 and 1995;
#                                        with SINK_PORT set, the development
#                                        SMTP sink there, `make run`: 1025)
#   DIR/mail/user1@example.com/          Maildir with sample messages (LF, as Postfix writes)
#   DIR/tls/cert.pem, DIR/tls/key.pem    self-signed certificate (made if absent)
# Re-running is safe: existing mail and certificates are kept; samples are
# only written into an empty mailbox.  --reset empties the mailbox first.
# --serve then runs POSUTO on it in the foreground (exec'd: its PID is this
# script's, also written to DIR/posuto.pid) and prints how to connect once
# every port is bound.  Needs sh, coreutils, iconv, openssl.
set -eu

usage() {
	echo "usage: $0 [--reset] [--serve POSUTO] DIR" >&2
	echo "  env: POP3_PORT (default 1110), POP3S_PORT (default 1995)," >&2
	echo "       SINK_PORT (the development SMTP sink; none if unset)" >&2
	exit 64
}
RESET=0
SERVE=
while [ $# -gt 1 ]; do
	case $1 in
	--reset) RESET=1; shift ;;
	--serve) [ $# -ge 3 ] || usage; SERVE=$2; shift 2 ;;
	*) usage ;;
	esac
done
if [ $# -ne 1 ] || [ "${1#-}" != "$1" ]; then
	usage
fi
PLAIN_PORT=${POP3_PORT:-1110}
TLS_PORT=${POP3S_PORT:-1995}
SINK_PORT=${SINK_PORT:-}
for p in "$PLAIN_PORT" "$TLS_PORT" ${SINK_PORT:+"$SINK_PORT"}; do
	case $p in
	''|*[!0-9]*|0*) echo "demo: port '$p' is not a number from 1 to 65535" >&2; exit 64 ;;
	esac
	[ "$p" -le 65535 ] || { echo "demo: port $p is not a number from 1 to 65535" >&2; exit 64; }
done
[ "$PLAIN_PORT" -ne "$TLS_PORT" ] || { echo "demo: POP3_PORT and POP3S_PORT must differ" >&2; exit 64; }
if [ -n "$SERVE" ] && [ ! -x "$SERVE" ]; then
	echo "demo: $SERVE is not an executable" >&2
	exit 66
fi
mkdir -p "$1"
DIR=$(cd "$1" && pwd)
USER=user1@example.com
BOX=$DIR/mail/$USER

# ------------------------------------------------------------------ TLS
mkdir -p "$DIR/tls"
if [ ! -s "$DIR/tls/cert.pem" ] || [ ! -s "$DIR/tls/key.pem" ]; then
	command -v openssl >/dev/null 2>&1 || { echo "demo: openssl is needed" >&2; exit 69; }
	umask 077
	# ECDSA P-256, not RSA-2048: the server signs once per full
	# handshake, and a P-256 signature costs ~18 us of CPU against
	# ~310 us for RSA-2048 (openssl speed, this machine), so the
	# handshake ceiling per core is several times higher; every client
	# of the last decade accepts it.
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 \
		-nodes -days 3650 \
		-keyout "$DIR/tls/key.pem" -out "$DIR/tls/cert.pem" \
		-subj "/CN=localhost" \
		-addext "subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1" \
		>/dev/null 2>&1
	umask 022
	chmod 600 "$DIR/tls/key.pem"
	chmod 644 "$DIR/tls/cert.pem"
	echo "demo: generated a self-signed certificate in $DIR/tls/cert.pem (key: $DIR/tls/key.pem)"
else
	echo "demo: using the existing certificate $DIR/tls/cert.pem"
fi

# --------------------------------------------------------------- config
# "password" as JumboDogX SHA256 hex (seed 000).  Loopback only: plaintext
# logins on 127.0.0.1 are allowed without AllowPlaintextAuth.  README has
# the demo run as root, on loopback, on root's files: RunAsUser "root" says
# that is intended (no "running as root" warning).
runas=
[ "$(id -u)" -ne 0 ] || runas='
    "RunAsUser": "root",'
# The development SMTP sink (not for the internet: loopback only): mail
# to any name becomes a user with password "password".
sink=
sinkcfg=
[ -z "$SINK_PORT" ] || {
	sink=',
      { "Address": "127.0.0.1", "Port": '$SINK_PORT', "Protocol": "smtp-sink" }'
	sinkcfg='
    "SinkCreatesUsers": true,
    "SinkPassword": "password",'
}
tmpcfg=$DIR/.posuto.json.tmp
cat > "$tmpcfg" <<EOF
{
  "Pop3Server": {
    "Enabled": true,
    "Listen": [
      { "Address": "127.0.0.1", "Port": $PLAIN_PORT, "Tls": "none" },
      { "Address": "127.0.0.1", "Port": $TLS_PORT, "Tls": "implicit" }$sink
    ],$sinkcfg
    "TimeOut": 600,
    "MailDir": "$DIR/mail",
    "MailboxFormat": "maildir",
    "AuthFailDelay": 500,$runas
    "Tls": {
      "Certificate": "$DIR/tls/cert.pem",
      "Key": "$DIR/tls/key.pem"
    },
    "Users": [
      {
        "UserName": "$USER",
        "Password": "5e884898da28047151d0e56f8dc6292773603d0d6aabbdd62a11ef721d1542d8",
        "HashType": "SHA256"
      }
    ]
  }
}
EOF
mv "$tmpcfg" "$DIR/posuto.json"

# ------------------------------------------------------------- mailbox
if [ $RESET -eq 1 ] && [ -d "$BOX" ]; then
	rm -rf "$BOX"
	echo "demo: emptied $BOX (--reset)"
fi
mkdir -p "$BOX/new" "$BOX/cur" "$BOX/tmp"

count=$(find "$BOX/new" "$BOX/cur" -maxdepth 1 -type f ! -name '.*' | wc -l)
if [ "$count" -gt 0 ]; then
	echo "demo: $BOX already holds $count message(s); keeping them"
else
	command -v iconv >/dev/null 2>&1 || { echo "demo: iconv is needed" >&2; exit 69; }
	now=$(date +%s)
	seq=0
	date_hdr=$(LC_ALL=C date -R)
	# Write to tmp/, then rename into new/: the Maildir delivery protocol.
	# (Always called in this shell, never at the end of a pipe, so that
	# seq counts and every name is unique.)
	deliver() {
		seq=$((seq + 1))
		name="$((now + seq)).M${seq}P$$.demo"
		cat > "$BOX/tmp/$name"
		mv "$BOX/tmp/$name" "$BOX/new/$name"
	}
	build=$BOX/tmp/.demo-build.$$
	trap 'rm -f "$build"' EXIT
	jis() { printf '%s' "$1" | iconv -f UTF-8 -t ISO-2022-JP; }
	b64w() { printf '%s' "$1" | iconv -f UTF-8 -t "$2" | base64 -w0; }

	# 1. plain ASCII welcome
	deliver <<EOF
Return-Path: <postmaster@example.com>
Delivered-To: $USER
From: posuto demo <postmaster@example.com>
To: $USER
Subject: Welcome to posuto
Date: $date_hdr
Message-ID: <demo-1-$now@example.com>
MIME-Version: 1.0
Content-Type: text/plain; charset=US-ASCII

Hello!

This mailbox was created by scripts/demo.sh. It is a Maildir with
LF line endings, as Postfix writes them; posuto sends every line with
CRLF and counts sizes that way.

Try: STAT, LIST, UIDL, TOP 1 0, RETR 1, DELE 1, RSET, QUIT.
EOF

	# 2. Japanese, ISO-2022-JP (the classic Japanese mail encoding)
	{
		printf 'Return-Path: <tanaka@example.jp>\n'
		printf 'Delivered-To: %s\n' "$USER"
		printf 'From: =?ISO-2022-JP?B?%s?= <tanaka@example.jp>\n' "$(b64w '田中太郎' ISO-2022-JP)"
		printf 'To: %s\n' "$USER"
		printf 'Subject: =?ISO-2022-JP?B?%s?=\n' "$(b64w 'ポスト便りのテスト（ISO-2022-JP）' ISO-2022-JP)"
		printf 'Date: %s\n' "$date_hdr"
		printf 'Message-ID: <demo-2-%s@example.jp>\n' "$now"
		printf 'MIME-Version: 1.0\n'
		printf 'Content-Type: text/plain; charset=ISO-2022-JP\n'
		printf 'Content-Transfer-Encoding: 7bit\n'
		printf '\n'
		jis 'こんにちは。posuto のデモ用メールです。
このメールは ISO-2022-JP（JIS コード）で書かれています。
日本語のメールソフトなら文字化けせずに読めるはずです。

POP3 では、メールは CRLF 改行で送られます。
'
	} > "$build"
	deliver < "$build"

	# 3. Japanese, UTF-8, base64 body
	{
		printf 'Return-Path: <suzuki@example.jp>\n'
		printf 'Delivered-To: %s\n' "$USER"
		printf 'From: =?UTF-8?B?%s?= <suzuki@example.jp>\n' "$(b64w '鈴木花子' UTF-8)"
		printf 'To: %s\n' "$USER"
		printf 'Subject: =?UTF-8?B?%s?=\n' "$(b64w 'UTF-8 の日本語メール 🌸' UTF-8)"
		printf 'Date: %s\n' "$date_hdr"
		printf 'Message-ID: <demo-3-%s@example.jp>\n' "$now"
		printf 'MIME-Version: 1.0\n'
		printf 'Content-Type: text/plain; charset=UTF-8\n'
		printf 'Content-Transfer-Encoding: base64\n'
		printf '\n'
		printf '%s' 'こちらは UTF-8 で書かれたメールです。
本文は base64 でエンコードされています。

春はあけぼの。やうやう白くなりゆく山ぎは、少しあかりて、
紫だちたる雲のほそくたなびきたる。
' | base64 -w76
		printf '\n'
	} > "$build"
	deliver < "$build"

	# 4. UTF-8, 8bit, multipart/alternative
	deliver <<EOF
Return-Path: <news@example.org>
Delivered-To: $USER
From: Demo Newsletter <news@example.org>
To: $USER
Subject: =?UTF-8?Q?Multipart_=E2=80=94_text_and_HTML?=
Date: $date_hdr
Message-ID: <demo-4-$now@example.org>
MIME-Version: 1.0
Content-Type: multipart/alternative; boundary="=_posuto_demo_alt"

This is a multi-part message in MIME format.

--=_posuto_demo_alt
Content-Type: text/plain; charset=UTF-8
Content-Transfer-Encoding: 8bit

8-bit UTF-8 passes through posuto untouched: naïve café, Ωμέγα, 東京.

--=_posuto_demo_alt
Content-Type: text/html; charset=UTF-8
Content-Transfer-Encoding: 8bit

<html><body><p>8-bit UTF-8 passes through posuto untouched:
<b>naïve café, Ωμέγα, 東京</b>.</p></body></html>

--=_posuto_demo_alt--
EOF

	# 5. lines starting with "." (dot-stuffed on the wire, RFC 1939)
	deliver <<EOF
Return-Path: <dots@example.com>
Delivered-To: $USER
From: dots@example.com
To: $USER
Subject: Lines that start with a dot
Date: $date_hdr
Message-ID: <demo-5-$now@example.com>

The next lines start with "." and are sent as "..", then un-stuffed
by your client:
.
..
.hidden
...three dots
. a dot and a space
The message ends after this line, not at the lone dots above.
EOF

	# 6. a large message: about 5 MB (a base64 attachment)
	{
		printf 'Return-Path: <big@example.com>\n'
		printf 'Delivered-To: %s\n' "$USER"
		printf 'From: big@example.com\n'
		printf 'To: %s\n' "$USER"
		printf 'Subject: A 5 MB message (attachment)\n'
		printf 'Date: %s\n' "$date_hdr"
		printf 'Message-ID: <demo-6-%s@example.com>\n' "$now"
		printf 'MIME-Version: 1.0\n'
		printf 'Content-Type: multipart/mixed; boundary="=_posuto_demo_big"\n'
		printf '\n'
		printf -- '--=_posuto_demo_big\n'
		printf 'Content-Type: text/plain; charset=US-ASCII\n'
		printf '\n'
		printf 'About 5 MB of random data is attached; posuto streams it.\n'
		printf '\n'
		printf -- '--=_posuto_demo_big\n'
		printf 'Content-Type: application/octet-stream; name="random.bin"\n'
		printf 'Content-Transfer-Encoding: base64\n'
		printf 'Content-Disposition: attachment; filename="random.bin"\n'
		printf '\n'
		head -c 3700000 /dev/urandom | base64 -w76
		printf '\n--=_posuto_demo_big--\n'
	} > "$build"
	deliver < "$build"

	echo "demo: wrote $seq sample messages to $BOX"
fi

help() { # headline
	n=$(find "$BOX/new" "$BOX/cur" -maxdepth 1 -type f ! -name '.*' | wc -l)
	cat <<EOF

$1
  POP3:    127.0.0.1:$PLAIN_PORT (STLS)    POP3S: 127.0.0.1:$TLS_PORT (TLS)
  config:  $DIR/posuto.json
  mailbox: $BOX (Maildir, $n message(s))
  user:    $USER   password: password
${SINK_PORT:+  SMTP sink: 127.0.0.1:$SINK_PORT (development only, not for the internet):
    mail sent there to NAME@anything is filed for POP3 user NAME
    (created on first mail, password: password), e.g.
    python3 -c "import smtplib; smtplib.SMTP('127.0.0.1', $SINK_PORT).sendmail('app@dev', ['alice@dev'], 'Subject: hi\\n\\nhello\\n')"
}
Connect with
  nc -C 127.0.0.1 $PLAIN_PORT        then type:
      USER $USER
      PASS password
      STAT
      LIST
      RETR 1
      QUIT
  openssl s_client -quiet -crlf -starttls pop3 -connect 127.0.0.1:$PLAIN_PORT   (STLS)
  openssl s_client -quiet -crlf -connect 127.0.0.1:$TLS_PORT                      (POP3S)
  curl -u '$USER:password' pop3://127.0.0.1:$PLAIN_PORT/          (list)
  curl -u '$USER:password' pop3://127.0.0.1:$PLAIN_PORT/2         (message 2)
  curl -u '$USER:password' --ssl-reqd --cacert $DIR/tls/cert.pem pop3://127.0.0.1:$PLAIN_PORT/1
  curl -u '$USER:password' --cacert $DIR/tls/cert.pem pop3s://localhost:$TLS_PORT/1
  Thunderbird: Account Settings > Account Actions > Add Mail Account, "Configure manually":
      Incoming: POP3, server 127.0.0.1, port $TLS_PORT, SSL/TLS
                (or port $PLAIN_PORT, STARTTLS), authentication "Normal password",
      username $USER; accept the self-signed certificate when asked.
      Keep "Leave messages on server" checked to keep the demo mail.

Messages deleted (DELE, then QUIT) stay deleted in later runs;
\`make run RESET=1\` brings the samples back.  Other ports:
\`make run POP3_PORT=2110 POP3S_PORT=2995\`.
EOF
}

if [ -z "$SERVE" ]; then
	help "posuto demo prepared in $DIR; serve it with: posuto serve -c $DIR/posuto.json"
	exit 0
fi

# ---------------------------------------------------------------- serve
# posuto writes a line to --ready-fd once every port is bound, then closes
# it; a reader prints the banner on that line, or a hint if posuto ends
# first (end of file: a port in use, say).  The FIFO is opened here both
# ways (so neither open blocks) and unlinked at once; the reader keeps only
# the read end, posuto only the write end.
fifo=$DIR/.ready.$$
rm -f "$fifo"
mkfifo -m 600 "$fifo"
exec 3<>"$fifo" 4<"$fifo"
rm -f "$fifo"
# The reader runs in a subshell that exits at once: it is nobody's zombie.
(
	(
		exec 3>&-
		if read -r line <&4 && [ "$line" = ready ]; then
			help "posuto demo ready in $DIR   (Ctrl-C stops it)"
		else
			echo "demo: posuto stopped before it was ready (see above): a port" \
			    "in use? Choose others: make run POP3_PORT=2110 POP3S_PORT=2995" >&2
		fi
	) &
)
echo $$ > "$DIR/posuto.pid"
exec "$SERVE" serve -c "$DIR/posuto.json" --ready-fd 3 4<&-
