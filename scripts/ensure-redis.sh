#!/usr/bin/env bash
# Make sure redis-server is installed: tests start their own instances on
# free loopback ports and never use a shared server. Installs the Debian
# package when missing (needs root or sudo).
set -euo pipefail
for p in redis-server /usr/bin/redis-server /usr/sbin/redis-server; do
  if command -v "$p" >/dev/null 2>&1; then exit 0; fi
done
echo "redis-server not found; installing the Debian package redis-server" >&2
SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -qq || true
# RUNLEVEL=1: invoke-rc.d does not start the packaged service (a system
# Redis on port 6379 that the tests never use); env passes it through sudo.
$SUDO env DEBIAN_FRONTEND=noninteractive RUNLEVEL=1 apt-get install -y -qq redis-server >/dev/null
command -v redis-server >/dev/null
