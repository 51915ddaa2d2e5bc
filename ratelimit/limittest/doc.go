// Package limittest is the conformance suite for ratelimit.Limiter
// implementations: ratelimit.Memory and redislimit must decide alike, to the
// microsecond, for the same rule, key and injected time: burst, refill,
// a full budget after the period, refusals that cost nothing, independent
// keys and rules, "off" (Off and Disabled), invalid rules, odd keys (empty,
// braces, 10 KB), exactly Limit successes among concurrent callers, and,
// for a ratelimit.Peeker, peeks that answer as Allow would and count nothing.
//
// What it trusts: the limiter only through the Limiter interface.
package limittest
