#!/usr/bin/env bash
# Fuzzes every target of ./fuzz/ in turn for ${FUZZTIME:-10s} each and fails
# if any finds a crasher (written to fuzz/testdata/fuzz/<Target>/: commit it
# with the fix, it then replays under plain go test).
#
#   FUZZTIME=1m ./fuzz/run.sh
set -euo pipefail
cd "$(dirname "$0")/.."
fuzztime="${FUZZTIME:-10s}"
targets=$(go test -list 'Fuzz.*' ./fuzz/ | grep '^Fuzz' || true)
if [[ -z "$targets" ]]; then
	echo "fuzz/run.sh: no Fuzz targets found in ./fuzz/" >&2
	exit 1
fi
failed=()
for t in $targets; do
	echo "=== fuzz $t for $fuzztime"
	if ! go test -run '^$' -fuzz "^${t}\$" -fuzztime "$fuzztime" ./fuzz/; then
		failed+=("$t")
	fi
done
if ((${#failed[@]} > 0)); then
	echo "fuzz/run.sh: FAILED: ${failed[*]}" >&2
	exit 1
fi
echo "fuzz/run.sh: every target passed ($fuzztime each)"
