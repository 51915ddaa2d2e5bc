#!/usr/bin/env bash
# Run every fuzz target of the module for a bounded time each.
# FUZZTIME (default 60s) bounds each target; findings land in the package's
# testdata/fuzz/<Target>/ and fail the run.
set -euo pipefail
cd "$(dirname "$0")/.."
FUZZTIME="${FUZZTIME:-60s}"
grep -rl --include='*_test.go' -E '^func Fuzz[A-Za-z0-9_]+\(' . | sort | while read -r f; do
  dir="$(dirname "$f")"
  for t in $(grep -oE '^func Fuzz[A-Za-z0-9_]+' "$f" | sed 's/^func //'); do
    echo "== $dir $t ($FUZZTIME)"
    go test -run='^$' -fuzz="^${t}\$" -fuzztime="$FUZZTIME" "$dir"
  done
done
