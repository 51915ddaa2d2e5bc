// Package redisstore is a revocation.Store on Redis or Redis Cluster, shared
// by every issuer and verifier node.
//
// # Layout
//
// Every key starts with <Prefix>:{rev}: (Prefix defaults to "hallpass"), so
// all of them hash to one slot and the scripts run on Redis Cluster:
//
//	{rev}:entries  hash        kind:id -> entry JSON (live entries)
//	{rev}:before   hash        kind:id -> Before in µs (compared by the add script)
//	{rev}:expiry   sorted set  kind:id scored by Expires in µs (+inf: never)
//	{rev}:events   stream      one event per stored entry: e = entry JSON,
//	                           p = epoch, n = its number (entries-added),
//	                           q = the id it follows (last-generated-id)
//	{rev}:epoch    string      random id of the stream, created with it
//	{rev}:seq      string      the number of the last event
//
// Add is one Lua script: drop up to 256 expired entries (ZRANGEBYSCORE on
// the expiry set, so the set stays as small as the revocations of the last
// max-access-lifetime + leeway), keep the entry with the later Before, and
// XADD the event, numbered and stamped with the epoch, with MAXLEN =
// Options.MaxEvents (exact). The number is the stream's entries-added + 1,
// read from the stream in the same script (a new stream starts at 1), never
// from the counter key, which an older node's unnumbered events or a
// restore can leave behind: an event's number always counts the events of
// its own stream. The counter is still written, for nodes that INCR it.
//
// # Retention
//
// The stream keeps the latest Options.MaxEvents events (default 100,000:
// at 1,000 revocations a second, 100 s of history). A mirror further behind
// than that, or cut off while Redis lost its data, gets ErrCursorGone and
// reloads the snapshot, so no event is ever silently skipped. A cursor is
// epoch/stream id/count; see Follow.
//
// # Propagation
//
// Follow is XREAD BLOCK: it returns as soon as an event is appended, so a
// mirror learns a revocation about one round trip after Add returns
// (milliseconds on loopback). Events numbered on from the cursor, in the
// cursor's epoch, each naming the id before it, are taken at once; an event
// of the cursor's epoch with another number or another id before it means
// events after the cursor were lost (ErrCursorGone: a stream deleted under
// its epoch, a failover that lost the cursor's event); anything else (no
// event, a new epoch, events without a number or the id before them) is
// checked against the stream's position (a script reading XINFO STREAM)
// before it is taken.
//
// # Trust
//
// Redis holds ids (jti, device, account, kid) and admin reasons, never a
// token. Anyone who can write these keys can revoke anything, and anyone who
// can delete them can un-revoke for mirrors started after (a running
// mirror keeps what it has applied until it expires); protect Redis
// accordingly (ACLs, TLS, private network). Restarts keep the stream only if
// Redis persists it (appendonly); otherwise mirrors detect the new epoch and
// reload, keeping the entries they had applied, and revocations not
// persisted are lost with the data for mirrors that had not applied them
// (a new node, a restarted one).
package redisstore
