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
// (redisring: Pub/Sub and a poll), on its own goroutine, until Close. A
// reload that fails is logged and the ring last served stays; the next
// report tries again. Changes made through this Ring and reloads are
// serialised, so an older reload never replaces a newer change.
//
// See the keys package documentation for what each state change means.
package live
