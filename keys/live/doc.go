// Package live serves a signing-key ring while it changes: the ring an
// issuer signs with and publishes, kept in a store (keys/filestore on one
// machine, keys/redisring for several nodes), rotated and revoked through
// that store, and, with a store that reports other writers' changes,
// reloaded when another node changes it.
//
// A Ring implements the issuer's key source (Current, Lookup, KeySet) and
// its key manager (Rotate, Revoke). Every change goes through the store's
// Update first, so it is durable and other nodes can see it, and only then
// is served here: a change the store refused is never served. The served
// *keys.Ring is never changed in place; each change or reload swaps in the
// ring the store returned, so a request sees one whole ring.
//
// # What it trusts
//
// The store. A store opens and authenticates every secret it returns
// (filestore by its PASERK wrapping, redisring by its wrapping and a MAC
// over each document); this package adds no check of its own beyond the
// ring's own validation in keys.RestoreRing. Whoever can write to the store
// with its secret can change what is served: see the store's limits.
//
// # Seeing other nodes' changes
//
// Open loads the ring once: a change made elsewhere (another process
// sharing a key directory) is seen on the next start. Follow loads it with
// its version and then reloads it on every change the store reports
// (redisring: Pub/Sub and a poll; filestore: a poll of its files), on its
// own goroutine, until Close (which also stops the maintenance timer). A
// reload that fails is logged and the ring last served stays; the next
// report tries again. Changes made through this Ring and reloads are
// serialised, so an older reload never replaces a newer change.
//
// # Pruning and scheduled rotation
//
// Rotate and Revoke drop, in the same store write, the retired keys that
// stopped signing more than Options.RetiredKeep ago (default
// keys.DefaultRetiredKeep: the longest access token plus leeway, which is
// also its least value), so they leave the published key set; the retired key's secret is already gone
// (keys.Ring drops it on retirement). A followed Ring also runs Prune every
// MaintainEvery (1 min), and with RotateEvery it rotates once the current
// key has signed that long (RotateIfDue). Both check the ring served first
// and write only when something is due; the check runs again inside the
// store's update, so nodes due at once rotate once. Open runs no timer.
//
// Rotate returns keys.ErrNextTooNew, the ring unchanged, when the next key
// has been in the ring less than keys.MinNextAge (a rotation just before,
// on this node or another: of two nodes rotating at once, one rotates and
// the other gets it; the admin API answers 409). RotateIfDue takes it as
// not due and tries again on its next run. Revoke is never held back.
//
// With the file store, Follow reads the directory's files every
// filestore.Store.PollInterval (2 s by default), so `hallpass keys rotate`
// or another issuer on the same machine is followed without a restart.
//
// # The secrets beside the ring
//
// Secrets serves the other secrets a ring's store keeps: the refresh-token
// keys, through a *refresh.Codec that it rekeys as they change (Codec),
// and the peppers that key the digests of link and recovery codes
// (Digests, the flow.Pepper of the issuer). OpenSecrets and FollowSecrets
// create them when the store lacks them (a ring made before they existed).
// A change goes to the store first and is served here after, as for the
// ring; FollowSecrets also reloads on every change the store reports.
//
//   - RotateRefresh: a new key seals from now on; the replaced keys still
//     open the tokens they sealed for SecretsOptions.RefreshKeep (the
//     issuer's RefreshTTL, the longest a refresh token lives), and are
//     then pruned (Prune, run every PruneInterval while following).
//   - EndAllSessions: every older key is dropped, so no outstanding
//     refresh token opens, here at once and on every node as soon as it
//     follows the change. For a real compromise.
//   - RotatePepper: a new pepper digests new codes; older ones are kept
//     for good, so codes made under them still match.
//
// Limit: a node that has not yet followed a rotation (a round trip on
// Redis, PollInterval on files) still seals under the replaced key; a
// session it starts in that window loses its refresh token that much
// before its absolute end, when the key is pruned.
//
// See the keys package documentation for what each state change means.
package live
