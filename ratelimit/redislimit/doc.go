// Package redislimit is a ratelimit.Limiter on Redis, so several issuer
// nodes share one budget per key (single node, Sentinel or Cluster through
// redis.UniversalClient).
//
// Each decision is one Lua script on one key (sent through
// internal/redispipe, pipelined with concurrent callers'), running the same GCRA as
// ratelimit.Memory: the key holds the theoretical arrival time in
// microseconds and expires when that time passes, so idle keys cost
// nothing. The key is
//
//	P:rl:{H}
//
// where P is Options.Prefix ("hallpass") and H is the hex of the first 128
// bits of HMAC-SHA-256(Options.HashKey, rule || 0x00 || key), rule as
// ratelimit.Rule.String prints it. The hash tag is the digest, so keys
// spread over a Cluster and no raw IP address reaches Redis. Without a
// HashKey the HMAC key is empty, a digest anyone can recompute, which only
// pseudonymises: the IPv4 space is small enough to reverse by brute force;
// set a HashKey shared by all nodes when that matters.
//
// Peek (ratelimit.Peeker) reads the key with one GET and runs the same GCRA
// in Go; it counts nothing and is not atomic with a later Allow.
//
// Time comes from the caller (now is injected); nodes' clocks should agree
// to within a fraction of a rule's interval (NTP), as a node whose clock
// runs behind is stricter and one ahead is more lenient. A key spent by a
// node ahead can reach beyond a node behind's now+Per, which no request
// of its own leaves; that node counts it as spent at its now (as
// ratelimit.Memory does after a clock step back), which gives back at most
// the skew, and a clock stepped back refuses a key for at most one Per.
//
// Availability: every call is bounded by its context and Options.OpTimeout
// (default 2 s). When Redis cannot be reached Allow returns an error
// wrapping ratelimit.ErrUnavailable and no decision; the caller chooses to
// fail closed (refuse signups) or open. The client must be built with
// ContextTimeoutEnabled; New refuses one that shows otherwise.
//
// What it trusts: Redis (whoever writes to it can reset or exhaust any
// budget) and the caller's keys and clock.
package redislimit
