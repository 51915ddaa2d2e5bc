#!/usr/bin/env bash
# Make sure node (>= 18) and npm are installed: the socket.io example test
# (examples/socketio) drives its server with the real socket.io-client from
# npm. Installs the Debian packages nodejs and npm when missing (needs root
# or sudo).
set -euo pipefail
ok() {
  command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1 &&
    [ "$(node -p 'process.versions.node.split(".")[0]')" -ge 18 ]
}
if ok; then exit 0; fi
echo "node >= 18 and npm not found; installing the Debian packages nodejs and npm" >&2
SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq || true
$SUDO apt-get install -y -qq nodejs npm >/dev/null
ok
