// Package redisstore is the Redis account.Store, for several issuer nodes
// sharing one Redis: single node, Sentinel or Cluster through
// redis.UniversalClient.
//
// # Key layout and hash tags
//
// Every Lua script runs on Redis Cluster because all the keys one script
// touches share one hash tag. An account lives on the tag of the username
// key it was created with, its home, because claiming the name must be
// atomic with creating the account, its first device and session:
//
//	P:{u:H}:name                hash   the name record of the username key whose tag is u:H
//	P:{T}:account:<acc_id>      hash   the account (T: its home tag)
//	P:{T}:devices:<acc_id>      set    the account's device ids
//	P:{T}:recovery:<acc_id>     set    its recovery code digests (hex)
//	P:{T}:links:<acc_id>        hash   its link codes: digest (hex) -> expiry; a code not listed is void
//	P:{T}:link:<digest>         hash   a link code (account, device that made it, created, expires, redeemed_by once used); TTL its lifetime
//	P:{T}:tomb:<acc_id>         hash   a deleted account's tombstone; TTL the hold
//	P:{T}:device:<dev_id>       hash   a device
//	P:{T}:session:<dev_id>      hash   the device's refresh session
//	P:{acc_X}:loc               string "T|acc_X", index from account id to home
//	P:{dev_Y}:loc               string "T|acc_X", index from device id to home
//	P:{lc:<digest>}:loc         string "T|acc_X", index from link code digest to home; TTL its lifetime
//
// P is Options.Prefix ("hallpass") and H is the hex SHA-256 of a username
// key truncated to 128 bits, so no username (personal data) appears in key
// names and no user-chosen "{" or "}" can change the slot. Accounts spread
// over the Cluster by username. Digests are the issuer's keyed digests of
// link and recovery codes: no code reaches Redis. A tombstone holds the
// name's tag and the hold, not the name.
//
// A name record says who has the name: the account id, its home tag, the
// account's rename generation when it claimed the name, and "until": zero
// while registered, the end of the hold once the account has left the
// name (renamed or deleted). A hold is free once until has passed by the
// caller's clock, and goes with its TTL. CreateAccount claims the record
// and writes the account in one script. The account keys carry the
// account id because a name left by a renamed account can be taken, after
// its hold, by a new account whose home is then the same tag.
//
// CreateAccount, AddDevice, Refresh, EndSession, SetBanned and every
// Lifecycle method but RenameAccount are each one Lua script on one tag
// (DeleteAccount of a renamed account adds a second, see below).
// EndAccountSessions, UseRecoveryCode and DeleteAccount touch every device
// of the account: the caller reads the device set (and link codes) first
// and passes their keys; the script answers "retry" if the set changed
// meanwhile, and the caller reads it again (a few rounds at most).
//
// # Renames and deletions
//
// A rename touches three tags: the new name's, the account's home and the
// old name's. It runs as three scripts, ordered so that two accounts never
// hold one name: (1) claim the new name's record for the account at
// generation g+1 (refused if registered to another account or held); (2)
// on the home, move the account to the new name if it still has the name
// and generation g read before, else start again (concurrent renames of
// one account serialise on this compare); (3) hold the old name's record
// if it still registers the account at generation g. Step 3 joins step 2
// when the old record is on the home tag (a first rename). A deletion
// removes everything on the home and holds the name in one script when the
// name's record is there; for a renamed account the hold is a second
// script.
//
// If the issuer stops between these steps, a registration is left that
// does not hold: a claim the account never took, or a name it has left
// without the hold. GetAccountByUsername checks that the account it finds
// carries the name, so such a record names nobody. The next signup or
// rename that meets it reads the owner's account and tombstone: a name
// left is held until the hold the interrupted step would have written (an
// account keeps the last name it left, a tombstone the deleted one), then
// free; a claim whose account has since passed its generation is free.
// These facts cannot change back (generations only grow, deletion is
// final), so acting on them outside the script that claims is safe. A
// repeated DeleteAccount finishes an interrupted hold from the tombstone.
//
// The loc indexes live on other slots and so cannot be in those scripts.
// They are written first, each with one SET NX GET (Redis 7.0 or later:
// set unless it exists, and answer what was there), and are only hints:
// every read
// through an index checks that the record it finds carries the id it was
// looked up by, so an index whose creation then failed (name taken, or a
// crash between the two steps) names nothing. SET NX on the index is also
// what makes account and device ids and link code digests unique across
// slots (ErrExists). When a create fails the store deletes the index keys
// it made (compare and delete), as DeleteAccount deletes those of what it
// removed; an index left by a crash at that moment is a few bytes of
// garbage that only blocks its own random, never reused, id.
//
// go-redis retries a command whose connection broke, so a script may run
// twice. Each write carries a random operation id that the script stores;
// a repeat of the same operation is recognised and answered as the first
// run was (a retried CreateAccount does not become ErrUsernameTaken, a
// retried Refresh stays Advanced, a retried RedeemLinkCode or
// UseRecoveryCode gets the first run's answer, and the sessions a retried
// EndAccountSessions ended are reported again).
//
// Times are stored as fixed-width UTC digit strings (YYYYMMDDhhmmss and nine
// digits of nanoseconds) that Lua compares exactly in two numeric parts;
// every "now" comes from the caller (the injected clock), never from
// Redis. TTLs (link codes, holds, tombstones) are the record's end minus
// the caller's now, so Redis's clock only decides when garbage goes, never
// whether a code or a hold is live.
//
// # Availability
//
// Every operation is bounded by its context and by Options.OpTimeout
// (default 2 s), whichever ends first. Any failure to talk to Redis (down,
// timeout, closed client, cluster errors) is returned wrapping
// account.ErrUnavailable, so the issuer answers 503 and never hangs; go-redis
// reconnects by itself once Redis is back. The client must be built with
// ContextTimeoutEnabled, or a caller's deadline would not reach the socket;
// New refuses a client that shows it is built without it.
//
// # Account views
//
// GetAccountView (account.ViewReader) answers the issuer's identity routes
// (GET /v1/me, POST /v1/logout, GET /v1/me/devices), whose device and ban
// state already comes from the revocation mirror. With Options.ViewCache
// it keeps up to that many accounts on this node, trimmed to what those
// routes show (no recovery salt or digests), and sends Redis nothing for
// an account it holds. It is kept in step by Redis's server-assisted
// client-side caching (CLIENT TRACKING, default mode, RESP3): a miss reads
// the account and its recovery codes over one connection of the cache's
// own with tracking on, and Redis then queues an "invalidate" push on that
// connection as soon as anyone changes either key, ahead of any later
// reply there. The cache reads that connection at least every
// Options.ViewCachePoll (50 ms: a HELLO, before whose reply go-redis hands
// over every queued push), so a change made through another node shows
// within about that; a change this node makes drops the account at once
// (every script it runs drops the accounts whose keys it was given).
//
// Redis sends an invalidation only to the connection that read the key.
// So a new connection (reconnect, Redis restarted) and a failed check
// each drop the whole cache, and nothing is cached until a check passes; a
// read that raced an invalidation or a reset is not kept (a token per
// read in flight). A flush of the database drops everything. While Redis
// is away nothing is cached, and views are ErrUnavailable as every read
// is.
//
// The cache keeps only what a master answered: the connection must say it
// is one (HELLO's role) when it is made and at every check. A master
// demoted to a replica (a failover) stops getting the new master's writes
// once its link breaks, so the cache then drops everything and its client
// and dials again. On Sentinel (a failover client, with
// Options.ViewCacheSentinel) the cache's client is a failover client of
// its own: it dials the master the Sentinels name, and leaves the old one
// as soon as they announce a new one, as the store's client does; a
// partitioned old master that still calls itself master is left then too.
//
// On a Cluster the cache has one such connection per master, opened on
// the first miss there; a miss reads through the connection to the master
// the cluster client's slot map names. A slot that moves to another master
// is handed over by deleting its keys at the source, which invalidates
// them; a miss that a stale slot map sends to the old master is
// redirected (MOVED or ASK) and reads uncached through the cluster client,
// which learns the new map. Each check of a master's connection also reads
// the last account key read there, so a master that no longer serves that
// slot (a failover, a move) drops what it read, once, and one whose
// cluster is down is not read through until it answers again. A reset
// drops only what that master's connection read; the bound is for all
// masters together.
//
// New refuses the cache with a Ring client and with a failover client
// without ViewCacheSentinel. Without a cache GetAccountView reads Redis
// each time. Each account held costs about 500 bytes (10 recovery codes),
// 32 MiB at the 65,536 `hallpass serve` keeps by default
// (--account-cache).
//
// # What it trusts
//
// Redis itself: whoever can write to it can change any account. A copy of
// Redis holds ids, thumbprints, code digests, retry-id digests and the
// issuer-sealed successor token, never a usable token or code. Ids are checked with
// account.ValidID, digests for their length, before they become part of a
// key.
//
// # Limits
//
// Single commands and scripts go through internal/redispipe: concurrent
// requests' commands share writes and reads on one connection (go-redis's
// automatic pipeliner), each caller still waiting for its own reply, under
// its own deadline. MULTI/EXEC and WATCH stay on the client.
//
// Lookups by account or device id cost one extra round trip for the index,
// GetAccountByUsername one for the name record. A rename is not one atomic
// step (see above): if the account renames again before anyone meets the
// record an interrupted rename left, that name's hold may end early. An
// operation that loses every round to concurrent changes of one account
// answers ErrUnavailable. ListDevices is not a snapshot across devices
// added during the call. Restarting Redis without persistence loses every
// account. This layout is not the one before Lifecycle (account keys gained
// the account id, names their own record): data written by the older
// layout is not read.
package redisstore
