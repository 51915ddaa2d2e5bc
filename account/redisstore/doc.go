// Package redisstore is the Redis account.Store, for several issuer nodes
// sharing one Redis: single node, Sentinel or Cluster through
// redis.UniversalClient.
//
// # Key layout and hash tags
//
// Every multi-key Lua script runs on Redis Cluster because all the keys one
// script touches share one hash tag. The tag of an account is derived from
// its username key (the mapped form), because the username claim must be
// atomic with the creation of the account, its first device and session:
//
//	P:{u:H}:account            hash   the account; its existence IS the claim of the name
//	P:{u:H}:devices            set    the account's device ids
//	P:{u:H}:device:<dev_id>    hash   a device
//	P:{u:H}:session:<dev_id>   hash   the device's refresh session
//	P:{acc_X}:loc              string "u:H", index from account id to tag
//	P:{dev_Y}:loc              string "u:H", index from device id to tag
//
// P is Options.Prefix ("hallpass") and H is the hex SHA-256 of the username
// key truncated to 128 bits, so no username (personal data) appears in key
// names and no user-chosen "{" or "}" can change the slot. Accounts spread
// over the Cluster by username.
//
// CreateAccount, AddDevice, Refresh, EndSession and SetBanned are each one
// Lua script on one tag: claim + account + device + session in one step;
// Refresh reads the account's ban flag, the device and the session and
// updates the session and the device's LastUsed in one step.
//
// The two loc indexes live on other slots and so cannot be in those
// scripts. They are written first, with SET NX, and are only hints: every
// read through an index checks that the record it finds carries the id it
// was looked up by, so an index whose creation then failed (name taken, or
// a crash between the two steps) names nothing. SET NX on the index is
// also what makes account and device ids unique across slots (ErrExists).
// When a create fails the store deletes the index keys it made (compare
// and delete); an index left by a crash at that moment is a few bytes of
// garbage that only blocks its own random, never reused, id.
//
// go-redis retries a command whose connection broke, so a script may run
// twice. Each write carries a random operation id that the script stores;
// a repeat of the same operation is recognised and answered as the first
// run was (a retried CreateAccount does not become ErrUsernameTaken, a
// retried Refresh stays Advanced).
//
// Times are stored as fixed-width UTC digit strings (YYYYMMDDhhmmss and nine
// digits of nanoseconds) that Lua compares exactly in two numeric parts;
// every "now" comes from the caller's RefreshRequest (the injected clock),
// never from Redis.
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
// # What it trusts
//
// Redis itself: whoever can write to it can change any account. A copy of
// Redis holds ids, thumbprints and the issuer-sealed successor token, never a
// usable token. Ids are checked with account.ValidID before they become part
// of a key.
//
// # Limits
//
// Usernames are immutable in this layout (a rename would move the account to
// another tag). Lookups by account or device id cost one extra round trip
// for the index. ListDevices is not a snapshot across devices added during
// the call. Restarting Redis without persistence loses every account.
package redisstore
