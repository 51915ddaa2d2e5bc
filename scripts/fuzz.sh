#!/usr/bin/env bash
# Run every fuzz target of the repository's modules (the root and socketio/)
# for a bounded time each.
# FUZZTIME (default 60s) bounds each target; findings land in the package's
# testdata/fuzz/<Target>/ and fail the run.
set -euo pipefail
cd "$(dirname "$0")/.."
FUZZTIME="${FUZZTIME:-60s}"
grep -rl --include='*_test.go' -E '^func Fuzz[A-Za-z0-9_]+\(' . | sort | while read -r f; do
  dir="$(dirname "$f")"
  # go test runs in the module that holds the package: the nearest go.mod up.
  mod="$dir"
  while [ ! -f "$mod/go.mod" ]; do mod="$(dirname "$mod")"; done
  pkg=".${dir#"$mod"}"
  for t in $(grep -oE '^func Fuzz[A-Za-z0-9_]+' "$f" | sed 's/^func //'); do
    echo "== $dir $t ($FUZZTIME)"
    go -C "$mod" test -run='^$' -fuzz="^${t}\$" -fuzztime="$FUZZTIME" "$pkg"
  done
done
