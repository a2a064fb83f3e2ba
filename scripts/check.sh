#!/usr/bin/env bash
# make check: unit + integration tests with gcc, the same under clang
# ASan+UBSan, the fuzzers for a bounded time, the benchmark's smoke run.
# Ends with one line "N passed, N failed".
set -uo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
scripts/deps.sh check || exit 1

passed=0
failed=0
failures=()
FUZZ_SECONDS=${FUZZ_SECONDS:-20}

note() { printf '\n==== %s ====\n' "$*"; }
count() { # name rc
	if [ "$2" -eq 0 ]; then passed=$((passed + 1)); else failed=$((failed + 1)); failures+=("$1"); fi
}
add_counts() { # passed failed name
	passed=$((passed + $1)); failed=$((failed + $2))
	[ "$2" -gt 0 ] && failures+=("$3")
	return 0
}

# Configures once (again if configured without cmocka, as `make run`
# before `make check` could leave build/), builds; output only on errors.
setup() { # dir, then meson args
	scripts/build.sh "$@"
}

unit() { # dir label
	local out
	out=$(meson test -C "$1" --print-errorlogs 2>&1)
	# A build configured without cmocka has no tests: reconfigure and retry
	# once; if there are still none, that counts as a failure below.
	if echo "$out" | grep -q 'No tests defined'; then
		echo "$1: no unit tests defined; reconfiguring (is libcmocka-dev installed?)"
		meson setup --reconfigure "$1" >/dev/null && ninja -C "$1" >/dev/null &&
			out=$(meson test -C "$1" --print-errorlogs 2>&1)
	fi
	echo "$out" | grep -E '^ *[0-9]+/[0-9]+ ' || true
	local ok fail
	ok=$(echo "$out" | sed -n 's/^Ok: *\([0-9]*\).*/\1/p')
	fail=$(echo "$out" | sed -n 's/^Fail: *\([0-9]*\).*/\1/p')
	to=$(echo "$out" | sed -n 's/^Timeout: *\([0-9]*\).*/\1/p')
	[ -n "$ok" ] || { echo "$out" | tail -30; ok=0; fail=1; }
	[ "${fail:-0}" -gt 0 ] && echo "$out" | grep -A30 -E 'FAIL|ERROR' | head -80
	add_counts "${ok:-0}" "$(( ${fail:-0} + ${to:-0} ))" "unit tests ($2)"
}

integration() { # binary label
	local log=$root/build/pytest-$2.log line p f
	POSUTO_BIN=$1 tests/integration/run.sh >"$log" 2>&1
	grep -E '^(FAILED|ERROR) ' "$log" | head -40
	line=$(grep -E '^integration: [0-9]+ passed' "$log" | tail -1)
	echo "$line"
	[ -n "$line" ] || { tail -30 "$log"; add_counts 0 1 "integration ($2)"; return; }
	p=$(echo "$line" | sed -E 's/^integration: ([0-9]+) passed.*/\1/')
	f=$(echo "$line" | sed -E 's/.* ([0-9]+) failed.*/\1/')
	add_counts "$p" "$f" "integration ($2)"
}

# The web admin in headless Chromium (tests/browser, node --test); each
# node test is counted.  playwright-core from the lockfile, no browser
# download: it drives Debian's /usr/bin/chromium.
browser() { # binary label
	local log=$root/build/browser-$2.log p f
	(cd tests/browser && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund) >"$log" 2>&1 ||
		{ tail -20 "$log"; add_counts 0 1 "browser npm ci"; return; }
	POSUTO_BIN=$1 node --test tests/browser/ >>"$log" 2>&1
	grep -E '^not ok ' "$log" | head -20
	p=$(sed -n 's/^# pass \([0-9]*\)$/\1/p' "$log" | tail -1)
	f=$(sed -n 's/^# fail \([0-9]*\)$/\1/p' "$log" | tail -1)
	echo "browser: ${p:-0} passed, ${f:-?} failed (screenshots in build/artifacts/)"
	[ -n "$p" ] && [ -n "$f" ] || { tail -30 "$log"; add_counts 0 1 "browser ($2)"; return; }
	add_counts "$p" "$f" "browser ($2)"
}

note "banned functions"
if grep -nE '\b(gets|strcpy|strcat|sprintf|vsprintf|strtok|atoi|system|popen)\s*\(' src/*/*.c; then
	count "banned functions" 1
else
	count "banned functions" 0
fi

note "module graph (#include direction, private headers)"
scripts/check_includes.py; count "module graph" $?

note "build (gcc, -Werror)"
setup build --buildtype=debugoptimized -Db_pie=true; count "gcc build" $?
note "unit tests (gcc)"
unit build gcc
note "integration tests (gcc build)"
integration "$root/build/posuto" gcc

note "browser tests (headless Chromium, gcc build)"
browser "$root/build/posuto" gcc

note "make install (DESTDIR, PREFIX)"
inst=$(mktemp -d)
make -s install DESTDIR="$inst" PREFIX=/opt/posuto >/dev/null &&
	[ -x "$inst/opt/posuto/sbin/posuto" ] &&
	[ -f "$inst/opt/posuto/lib/posuto/posuto_sql.so" ] &&
	[ -f "$inst/opt/posuto/lib/posuto/posuto_parse.so" ] &&
	[ -f "$inst/opt/posuto/share/man/man8/posuto.8" ] &&
	[ -f "$inst/opt/posuto/share/man/man5/posuto.json.5" ] &&
	[ -f "$inst/etc/posuto/posuto.json.sample" ] &&
	grep -q '^ExecStart=/opt/posuto/sbin/posuto serve' "$inst/opt/posuto/lib/systemd/system/posuto.service" &&
	"$inst/opt/posuto/sbin/posuto" --version >/dev/null
count "make install" $?
rm -rf "$inst"

note "build (clang, ASan+UBSan, -Werror)"
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:detect_stack_use_after_return=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
export LSAN_OPTIONS=suppressions=$root/tests/lsan.supp
CC=clang setup build-asan --buildtype=debug -Db_sanitize=address,undefined -Db_lundef=false
count "clang asan build" $?
note "unit tests (ASan+UBSan)"
unit build-asan asan
note "integration tests (ASan+UBSan build)"
integration "$root/build-asan/posuto" asan

note "fuzzers (${FUZZ_SECONDS}s each)"
if CC=clang setup build-fuzz --buildtype=debugoptimized -Dfuzz=true -Db_sanitize=address,undefined -Db_lundef=false; then
	for f in build-fuzz/tests/fuzz/fuzz_*; do
		[ -f "$f" ] && [ -x "$f" ] || continue
		name=${f##*/fuzz_}
		mkdir -p "build-fuzz/corpus/$name"
		seeds=tests/fuzz/corpus/$name
		[ -d "$seeds" ] || seeds=
		dict=; [ -f tests/fuzz/$name.dict ] && dict=-dict=tests/fuzz/$name.dict
		"$f" -max_total_time="$FUZZ_SECONDS" -rss_limit_mb=2048 -artifact_prefix=build-fuzz/ $dict \
			"build-fuzz/corpus/$name" $seeds >"build-fuzz/$name.log" 2>&1
		rc=$?
		if [ $rc -eq 0 ]; then
			echo "fuzz $name: $(tail -1 "build-fuzz/$name.log")"
		else
			echo "fuzz $name: FAILED (exit $rc; log build-fuzz/$name.log)"
		fi
		count "fuzz $name" $rc
		[ $rc -eq 0 ] || tail -40 "build-fuzz/$name.log"
	done
else
	count "fuzz build" 1
fi

if [ -x bench/run.sh ]; then
	note "benchmark smoke run"
	bench/run.sh --smoke >build/bench-smoke.log 2>&1
	rc=$?
	tail -25 build/bench-smoke.log
	count "bench smoke" $rc
fi

echo
[ ${#failures[@]} -gt 0 ] && printf 'failing: %s\n' "${failures[@]}"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
