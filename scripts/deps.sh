#!/usr/bin/env bash
# Installs the Debian packages a make target needs, only those missing.
# usage: scripts/deps.sh build|run|check|bench
set -euo pipefail

# cmocka is a build dependency: meson decides at configure time whether
# the unit tests exist, so a build/ configured without it (by `make run`)
# would have none for `make check`.
build_pkgs="gcc make meson ninja-build pkg-config libevent-dev libjansson-dev
  libssl-dev libcrypt-dev libargon2-dev liburing-dev openssl libcmocka-dev
  libpq-dev libmariadb-dev libxml2-dev libgmime-3.0-dev"
# make run: the clients its banner and README's quick start name.
run_pkgs="$build_pkgs curl netcat-openbsd"
check_pkgs="$build_pkgs clang libclang-rt-14-dev python3 python3-pytest python3-openssl
  curl fetchmail mpop perl gsasl dovecot-core dovecot-pop3d procps iproute2 ucspi-tcp
  lockfile-progs postfix postgresql mariadb-server mariadb-client chromium
  fonts-ipafont-gothic haproxy"
# bench: dovecot-lmtpd and dovecot-lda (in dovecot-core) for the delivery
# rows, tcpserver (ucspi-tcp) runs popa3d from inetd; popa3d itself
# conflicts with dovecot-pop3d, so bench/run.sh extracts it, not installs it.
# bench/scaleout.py: haproxy, the databases, Dovecot's SQL passdb drivers.
bench_pkgs="$build_pkgs dovecot-pop3d dovecot-core dovecot-lmtpd ucspi-tcp python3 util-linux procps
  haproxy postgresql mariadb-server mariadb-client dovecot-pgsql dovecot-mysql"

case "${1:-build}" in
build) want=$build_pkgs ;;
run) want=$run_pkgs ;;
check) want=$check_pkgs ;;
bench) want=$bench_pkgs ;;
*) echo "usage: $0 build|run|check|bench" >&2; exit 64 ;;
esac

missing=()
# The browser tests need node and npm: any install will do (Debian's
# nodejs + npm if there is none, not on top of another one).
if [ "${1:-build}" = check ] && ! command -v npm >/dev/null; then
	want="$want nodejs npm"
fi
for p in $want; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' ||
		missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

sudo=""
if [ "$(id -u)" -ne 0 ]; then
	command -v sudo >/dev/null || { echo "need root to install: ${missing[*]}" >&2; exit 1; }
	sudo=sudo
fi
echo "Installing Debian packages: ${missing[*]}"
# Packages such as dovecot would start their system service on install;
# we only want the binaries, so forbid service starts while installing.
policy=/usr/sbin/policy-rc.d
made_policy=0
if [ ! -e "$policy" ]; then
	printf '#!/bin/sh\nexit 101\n' | $sudo tee "$policy" >/dev/null
	$sudo chmod +x "$policy"
	made_policy=1
fi
trap '[ $made_policy -eq 1 ] && $sudo rm -f "$policy"' EXIT
# postfix asks what kind of mail server this is; tests run private
# instances from their own config directories (postconf -c DIR), so the
# system one gets none.
case " ${missing[*]} " in
*" postfix "*)
	echo "postfix postfix/main_mailer_type select No configuration" |
		$sudo debconf-set-selections ;;
esac
stamp=/var/lib/apt/periodic/update-success-stamp
if [ ! -d /var/lib/apt/lists ] || [ -z "$(ls -A /var/lib/apt/lists 2>/dev/null | grep -v lock)" ] ||
   [ -z "$(find /var/lib/apt/lists -maxdepth 1 -name '*Packages*' -mmin -1440 2>/dev/null | head -1)" ]; then
	$sudo apt-get update -qq
fi
$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null ||
	{ $sudo apt-get update -qq && $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"; }
: "$stamp"
