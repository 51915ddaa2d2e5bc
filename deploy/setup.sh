#!/bin/sh
# deploy/setup.sh: makes what docker-compose.yml mounts but never holds,
# owned by you (by the image's user 65532 when you are root), so that the
# issuers, run as HALLPASS_UID:HALLPASS_GID, can read them and nobody else
# can:
#
#   deploy/secrets/wrap.key        32-byte key wrapping the key ring in Redis (0600)
#   deploy/secrets/rate-limit.key  32-byte key of the Redis digests of client addresses (0600)
#   deploy/secrets/admin-keys      digests of the admin keys (0600)
#   deploy/secrets/admin.key       the admin key itself, for `hallpass admin` (0600); not mounted
#   deploy/data/issuer-1, -2       each node's --data (0700): keep them, they hold
#                                  the ring's rollback state
#
# Existing files are kept: run it again after a `git pull`, never to rotate.
# hallpass runs from the image `docker compose build` made
# (HALLPASS_IMAGE, default hallpass/hallpass:local), with no network; or, with
# HALLPASS_BIN=bin/hallpass, from a local binary (`make build`).
# HALLPASS_DEPLOY_DIR: where to make them (default: this directory).
set -eu
dir=${HALLPASS_DEPLOY_DIR:-$(cd "$(dirname "$0")" && pwd)}
umask 077
mkdir -p "$dir/secrets" "$dir/data/issuer-1" "$dir/data/issuer-2"
chmod 700 "$dir/secrets" "$dir/data/issuer-1" "$dir/data/issuer-2"

if [ -n "${HALLPASS_BIN:-}" ]; then
	out=$dir/secrets
	hallpass() { "$HALLPASS_BIN" "$@"; }
else
	out=/secrets
	hallpass() {
		docker run --rm --network none --user "$(id -u):$(id -g)" \
			-v "$dir/secrets:/secrets" "${HALLPASS_IMAGE:-hallpass/hallpass:local}" "$@"
	}
fi

for key in wrap rate-limit; do
	if [ ! -e "$dir/secrets/$key.key" ]; then
		hallpass keys new-wrap-key --out "$out/$key.key"
	fi
done
if [ ! -e "$dir/secrets/admin-keys" ]; then
	# The key goes to stdout once; its digest to admin-keys.
	hallpass admin-key new --keys-file "$out/admin-keys" --id operator >"$dir/secrets/admin.key"
fi

owner="$(id -u):$(id -g)"
if [ "$(id -u)" = 0 ]; then
	# Never run the issuers as root: hand the files to the image's user.
	owner=65532:65532
	chown -R "$owner" "$dir/secrets" "$dir/data/issuer-1" "$dir/data/issuer-2"
fi
echo "deploy/setup.sh: secrets in $dir/secrets, node data in $dir/data, owned by $owner" >&2
if [ "$owner" != "1000:1000" ]; then
	echo "deploy/setup.sh: before docker compose: export HALLPASS_UID=${owner%:*} HALLPASS_GID=${owner#*:}" >&2
fi
