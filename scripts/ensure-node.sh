#!/usr/bin/env bash
# Make sure node (>= 18) and npm are installed, then install the npm packages
# of the socket.io example test: it drives its server with the real
# socket.io-client, pinned by socketio/example/testdata/package-lock.json.
# Installs the Debian packages nodejs and npm when missing (needs root or
# sudo). The test itself installs nothing: it fails, telling you to run
# `make test-deps`, when the packages are missing or stale.
set -euo pipefail
ok() {
  command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1 &&
    [ "$(node -p 'process.versions.node.split(".")[0]')" -ge 18 ]
}
if ! ok; then
  echo "node >= 18 and npm not found; installing the Debian packages nodejs and npm" >&2
  SUDO=""
  if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq || true
  $SUDO apt-get install -y -qq nodejs npm >/dev/null
  ok
fi

# clients/js/test/socketio.test.mjs makes its test certificate authority with
# the openssl command (in the base image; installed here when missing).
if ! command -v openssl >/dev/null 2>&1; then
  SUDO=""
  if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq openssl >/dev/null
fi

# npm ci replaces node_modules; the stamp (a copy of the lock file it
# installed) lets the next run skip the install and the test notice a stale one.
dir="$(cd "$(dirname "$0")/.." && pwd)/socketio/example/testdata"
stamp="$dir/node_modules/.hallpass-package-lock.json"
if ! cmp -s "$dir/package-lock.json" "$stamp"; then
  echo "installing socket.io-client for the socket.io example test (npm ci in $dir)" >&2
  (cd "$dir" && npm ci --no-audit --no-fund --ignore-scripts --loglevel=error)
  cp "$dir/package-lock.json" "$stamp"
fi
