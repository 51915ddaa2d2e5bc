// Package ratelimit decides whether one more request under a key (a client
// IP, "global", ...) fits a Rule such as "30/h". The issuer uses it for the
// signup limits; [Memory] serves one node and ratelimit/redislimit shares
// one budget between several nodes.
//
// # Algorithm
//
// Both implementations run GCRA (the generic cell rate algorithm): a rule
// of Limit per Per admits a burst of Limit requests, then one request every
// Per/Limit. Each key keeps one timestamp (the theoretical arrival time), so
// memory per key is constant, and a key whose timestamp has passed is
// indistinguishable from a new one, which makes idle keys free to evict.
// Over any window of length Per a key gets at most 2*Limit-1 requests (a
// full burst, then the steady refill); over long spans the rate is Limit
// per Per. A refused request does not consume budget.
//
// No request leaves a timestamp beyond now+Per. One found further out was
// written by a clock ahead of the caller's (a clock stepped back, or
// another node's clock ahead): the key counts as spent now, so the step
// refuses it for at most one Per and Retry-After never shows the step.
//
// # Rules
//
// [ParseRule] reads "N/unit" or "N/Kunit" with units s, m, h, d ("30/h",
// "100/10m", "5/s"), and "off" for no limit ([Disabled]). "0", "0/h" and negative counts
// are refused rather than read as "deny all" or "no limit": a typo must not
// silently open or close signups. The zero Rule is "off"; [Disabled] is
// "off" said by name, for settings whose zero value selects a default.
//
// # Peeking
//
// A [Peeker] also answers what Allow would decide without counting, so a
// caller can look at a shared budget before it spends another one (the
// issuer looks at its signup reserve before it marks a network as seen).
// Both implementations are Peekers.
//
// # What it trusts
//
// The caller's key and clock. Keys are whatever the caller decides to limit
// on; deciding which client-IP header to believe (trusted proxies) is the
// HTTP layer's job. now is injected on every call; the limiter never reads
// a clock of its own.
//
// # Limits
//
// [Memory] holds at most MaxKeys keys. Under more distinct active keys than
// that it forgets expired keys first, then keys of the rule most keys are
// under (the flooded one), least constrained first, which may let them
// exceed their rule: pair a per-IP rule with a global one. A flood of keys
// under one rule pushes out keys under that rule, not the key of another
// rule, however spent the flood's keys are, so the global key holds;
// budgets that share one rule (Limit and Per) share its fate. Decisions of
// separate Memory instances (separate nodes) are independent; use
// redislimit for a shared budget.
package ratelimit
