#!/usr/bin/env bash
# Make sure promtool is installed: the observability tests
# (cmd/hallpass/observability_test.go) run `promtool check rules`,
# `promtool check config` and `promtool test rules` on deploy/prometheus, so
# that alerting rules Prometheus would refuse, or that would not fire as
# their unit tests say, fail `make test`. Installs the Debian package
# prometheus (which provides /usr/bin/promtool) when missing (needs root or
# sudo), without its recommended node exporter. Only promtool is used: if
# the package's own Prometheus service was started by the install, it is
# stopped and disabled again.
set -euo pipefail
if command -v promtool >/dev/null 2>&1; then exit 0; fi
echo "promtool not found; installing the Debian package prometheus" >&2
SUDO=""
if [ "$(id -u)" != 0 ]; then SUDO="sudo"; fi
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -qq || true
# RUNLEVEL=1: invoke-rc.d does not start the packaged service where there
# is no systemd (Debian's Prometheus listens on every interface, port
# 9090); env passes it through sudo. Where systemd started it, it is
# stopped below.
$SUDO env DEBIAN_FRONTEND=noninteractive RUNLEVEL=1 apt-get install -y -qq --no-install-recommends prometheus >/dev/null
if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet prometheus 2>/dev/null; then
  $SUDO systemctl disable --now prometheus >/dev/null 2>&1 || true
fi
command -v promtool >/dev/null
