#!/usr/bin/env bash
# Load benchmark of the issuer: signup, refresh and /v1/me over loopback
# HTTP on bbolt and on a private redis-server, beside the floor (Ed25519
# sign, proof verify, Redis PING) measured in the same run. Extra flags go
# to cmd/hallpass-bench (e.g. -c 32 -d 10s -json). It installs redis-server
# when missing (see ensure-redis.sh) unless -stores bolt is given.
set -euo pipefail
cd "$(dirname "$0")/.."
case " $* " in
  *" -stores bolt "*|*" -stores=bolt "*) ;;
  *) ./scripts/ensure-redis.sh ;;
esac
exec "${GO:-go}" run ./cmd/hallpass-bench -d 5s "$@"
