#!/usr/bin/env bash
# Fuzzes every target of ./fuzz/ and of the packages below (whose targets
# need internals fuzz/ cannot import) in turn for ${FUZZTIME:-10s} each and
# fails if any finds a crasher (written to <package>/testdata/fuzz/<Target>/:
# commit it with the fix, it then replays under plain go test).
#
#   FUZZTIME=1m ./fuzz/run.sh
set -euo pipefail
cd "$(dirname "$0")/.."
fuzztime="${FUZZTIME:-10s}"
pkgs=(./fuzz/ ./adapters/internal/engine/)
failed=()
for pkg in "${pkgs[@]}"; do
	targets=$(go test -list 'Fuzz.*' "$pkg" | grep '^Fuzz' || true)
	if [[ -z "$targets" ]]; then
		echo "fuzz/run.sh: no Fuzz targets found in $pkg" >&2
		exit 1
	fi
	for t in $targets; do
		echo "=== fuzz $pkg $t for $fuzztime"
		if ! go test -run '^$' -fuzz "^${t}\$" -fuzztime "$fuzztime" "$pkg"; then
			failed+=("$pkg:$t")
		fi
	done
done
if ((${#failed[@]} > 0)); then
	echo "fuzz/run.sh: FAILED: ${failed[*]}" >&2
	exit 1
fi
echo "fuzz/run.sh: every target passed ($fuzztime each)"
