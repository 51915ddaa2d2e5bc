#!/usr/bin/env bash
# Make sure Debian's chromium is installed at /usr/bin/chromium: the browser
# tests of clients/js drive it with playwright-core (which downloads no
# browser of its own). Installs the Debian package chromium when missing
# (needs root or sudo). The tests install nothing: they fail, telling you to
# run `make test-deps`, when chromium is missing.
set -euo pipefail
if [ -x /usr/bin/chromium ]; then exit 0; fi
echo "chromium not found at /usr/bin/chromium; installing the Debian package chromium" >&2
SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq || true
$SUDO apt-get install -y -qq --no-install-recommends chromium fonts-liberation >/dev/null
test -x /usr/bin/chromium
