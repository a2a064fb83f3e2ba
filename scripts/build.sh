#!/bin/sh
# build.sh [--configure-only | --target T] DIR [MESON-SETUP-ARGS...] -
# configures DIR once and builds it (or only target T), quietly: meson's and ninja's output is shown only when
# they fail.  A DIR configured while cmocka was missing has no unit tests
# (meson.build: dependency('cmocka', required: false) is decided at
# configure time); once cmocka is installed it is reconfigured, so that
# `make run` before `make check` (README's order) never leaves a build
# without tests.
set -eu

only_configure=0
target=
case "${1:-}" in
--configure-only) only_configure=1; shift ;;
--target) target=${2:-}; shift 2 || true ;;
esac
if [ $# -lt 1 ] || [ "${1#-}" != "$1" ]; then
	echo "usage: $0 [--configure-only | --target T] DIR [MESON-SETUP-ARGS...]" >&2
	exit 64
fi
dir=$1
shift
log=$(mktemp "${TMPDIR:-/tmp}/posuto-build.XXXXXX")
trap 'rm -f "$log"' EXIT

quiet() { # command...: its output only if it fails
	if ! "$@" >"$log" 2>&1; then
		cat "$log" >&2
		echo "build: failed: $*" >&2
		exit 1
	fi
}

if [ ! -f "$dir/build.ninja" ]; then
	quiet meson setup "$dir" "$@"
elif [ "$(meson introspect "$dir" --tests 2>/dev/null || echo unknown)" = "[]" ] &&
	pkg-config --exists cmocka 2>/dev/null; then
	echo "build: $dir was configured without cmocka (no unit tests); reconfiguring"
	quiet meson setup --reconfigure "$dir" "$@"
fi
[ $only_configure -eq 1 ] && exit 0
quiet ninja -C "$dir" $target
