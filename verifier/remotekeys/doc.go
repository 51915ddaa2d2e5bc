// Package remotekeys is a verifier.KeySource that follows an issuer's
// published key set, GET {issuer}/.well-known/hallpass/keys.
//
// A KeySet fetches the document over HTTPS (http only for a loopback host,
// with Config.AllowHTTP), reads at most Config.MaxSize bytes and parses it
// with verifier.ParseKeySet: the document's issuer must be exactly
// Config.Issuer, every kid is recomputed from its key, revoked kids are
// refused. It then:
//
//   - refreshes in a background goroutine when the document's Cache-Control
//     max-age (less the answer's Age) runs out, bounded to [MinRefresh,
//     MaxRefresh] and to half of what the Age leaves of MaxStale, so it
//     refreshes before the set goes stale; after a failed fetch it retries
//     with backoff (1 s doubling up to MinRefresh) and keeps
//     the last good set. Close stops the goroutine and waits for it;
//   - on a kid it does not know, refetches at once, at most once per
//     Cooldown (default 30 s): the kid is chosen by whoever sent the token.
//     Concurrent lookups share one fetch in flight, so a burst of unknown
//     kids costs one request to the issuer;
//   - refuses a revoked kid from the first fetch that lists it as revoked,
//     and keeps refusing it for the life of the KeySet even if a later (or
//     cached, older) document lists it again;
//   - writes each good document to Config.CacheFile (atomic rename, mode
//     0600, stamped with the set's fetch time), its "revoked" member
//     replaced by every kid the KeySet refuses (the file is removed instead
//     when that would pass Config.MaxSize: never written without them),
//     and reads it back when the issuer is unreachable at start, so that a
//     verifier can start while the issuer is down. New also reads the
//     revoked kids of the cache file before its first fetch, so a
//     revocation seen by an earlier process is not forgotten when a stale
//     issuer node or cache answers with an older document.
//
// # What it trusts
//
// The issuer URL of its configuration, TLS (the system roots, or the
// transport of Config.Client), and the cache file, which it refuses when
// group- or world-writable or (on unix) owned by another user than the
// process: whoever can write it chooses the trusted keys, and its revoked
// kids are refused even when the issuer answers. Keep it in a directory
// that only the service's user can write.
// Nothing a token says is used to find keys; a kid only selects among the
// keys of the issuer's document.
//
// # Limits
//
// A revocation reaches this verifier only with the next fetch: at worst
// after the max-age of the document (60 s from hallpass serve), or at once
// when a token signed by a new key makes it refetch. While the issuer is
// unreachable the last good set is used, but only for Config.MaxStale
// (default 24 h): past it LookupKey fails with ErrStale and the verifier
// answers 503 (fail closed), since a key revoked in the meantime would
// otherwise be trusted for as long as the cut lasts. The document is
// "public", so a shared cache may answer for an issuer that is down: the
// set's age counts from the answer's Age header, and an answer older than
// MaxStale is refused. The age of the cache
// file is its modification time; one stamped in the future of the clock
// has no known age and is stale from the start, and so is a set whose
// fetch time is more than a minute ahead of a clock stepped back since
// (until a fetch succeeds). There is no unbounded
// setting; choose a MaxStale as long as the longest issuer outage you would
// rather ride out than refuse tokens through.
package remotekeys
