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
# One outcome per test: failed if its call or its setup/teardown failed.
import sys, xml.etree.ElementTree as ET
try:
    root = ET.parse(sys.argv[1]).getroot()
except Exception:
    print("0 0 0"); sys.exit()
worst = {}
rank = {"passed": 0, "skipped": 1, "failed": 2}
for tc in root.iter("testcase"):
    key = (tc.get("classname"), tc.get("name"))
    kids = {c.tag for c in tc}
    o = "failed" if kids & {"failure", "error"} else "skipped" if "skipped" in kids else "passed"
    if rank[o] >= rank[worst.get(key, "passed")]:
        worst[key] = o
v = list(worst.values())
print(v.count("passed"), v.count("failed"), v.count("skipped"))
PY
)
rm -f "$xml"
set -- $counts
echo "integration: $1 passed, $2 failed, $3 skipped"
# pytest exit 5 = no tests collected: that is a failure here too.
if [ "$rc" -eq 0 ] && [ "$2" -eq 0 ] && [ "$1" -gt 0 ]; then exit 0; fi
exit 1
