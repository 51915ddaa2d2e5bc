#!/usr/bin/env bash
# Make sure nginx is installed: the gateway's end-to-end test
# (internal/nginxtest) starts its own nginx on a free loopback port with a
# temporary prefix and never uses a system instance. Installs the Debian
# package nginx when missing (needs root or sudo); the package's own service
# is not needed and is left as the distribution configures it.
set -euo pipefail
for p in nginx /usr/sbin/nginx /usr/bin/nginx; do
  if command -v "$p" >/dev/null 2>&1; then exit 0; fi
done
echo "nginx not found; installing the Debian package nginx" >&2
SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -qq || true
# RUNLEVEL=1: invoke-rc.d does not start the packaged service (a system
# nginx on port 80 that the tests never use); env passes it through sudo.
$SUDO env DEBIAN_FRONTEND=noninteractive RUNLEVEL=1 apt-get install -y -qq --no-install-recommends nginx >/dev/null
command -v nginx >/dev/null || test -x /usr/sbin/nginx
