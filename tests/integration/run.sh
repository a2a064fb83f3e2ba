#!/bin/sh
# Runs posuto's integration tests against POSUTO_BIN (default build/posuto)
# and ends with one line "integration: N passed, N failed, N skipped".
# Usage: tests/integration/run.sh [extra pytest args]   (exit 0 iff no failure)
set -u
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)
: "${POSUTO_BIN:=$repo/build/posuto}"
case $POSUTO_BIN in /*) ;; *) POSUTO_BIN=$repo/$POSUTO_BIN ;; esac
export POSUTO_BIN
py=/usr/bin/python3
xml=$(mktemp /tmp/posuto-it.XXXXXX.xml)
cd "$repo"
"$py" -m pytest -q -c "$here/pytest.ini" --rootdir "$here" --junitxml "$xml" "$here" "$@"
rc=$?
counts=$("$py" - "$xml" <<'PY'
import sys, xml.etree.ElementTree as ET
try:
    r = ET.parse(sys.argv[1]).getroot()
except Exception:
    print("0 0 0"); sys.exit()
suites = [r] if r.tag == "testsuite" else list(r)
t = f = e = s = 0
for x in suites:
    t += int(x.get("tests", 0)); f += int(x.get("failures", 0))
    e += int(x.get("errors", 0)); s += int(x.get("skipped", 0))
print(t - f - e - s, f + e, s)
PY
)
rm -f "$xml"
set -- $counts
echo "integration: $1 passed, $2 failed, $3 skipped"
# pytest exit 5 = no tests collected: that is a failure here too.
if [ "$rc" -eq 0 ] && [ "$2" -eq 0 ] && [ "$1" -gt 0 ]; then exit 0; fi
exit 1
