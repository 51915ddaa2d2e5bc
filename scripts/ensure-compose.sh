#!/usr/bin/env bash
# Make sure docker-compose is installed: the deployment test
# (cmd/hallpass/compose_test.go) runs `docker-compose config -q` on
# docker-compose.yml, so that a file Compose would refuse fails `make test`.
# Only the file is checked: no container engine is needed or started.
# Installs the Debian package docker-compose when missing (needs root or
# sudo), without its recommended docker.io.
set -euo pipefail
if command -v docker-compose >/dev/null 2>&1; then exit 0; fi
echo "docker-compose not found; installing the Debian package docker-compose" >&2
SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -qq || true
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends docker-compose >/dev/null
command -v docker-compose >/dev/null
