// Package opsmetrics builds the Prometheus collectors that tell an
// operator whether a verifier still knows what it must: how old its key
// set is, how long ago its revocation mirror last heard from the store and
// how many entries it holds, and, for `hallpass gateway`, how its requests
// ended and how long their authentication took. `hallpass serve` and
// `hallpass gateway` register them on their own registries (never the
// global one), under the same names, so that one alert rule covers both.
//
// # Names
//
//   - hallpass_key_set_age_seconds: seconds since the key set in use was
//     fetched (gateway). Past --keys-max-stale the gateway answers 503.
//   - hallpass_revocation_mirror_age_seconds: seconds since the revocation
//     mirror last heard from its store; +Inf before its first snapshot.
//     Past hallpass_revocation_mirror_max_staleness_seconds the mirror
//     refuses every token (fail closed).
//   - hallpass_revocation_mirror_max_staleness_seconds: that bound.
//   - hallpass_revocation_mirror_entries: entries held (expired ones not
//     yet swept included).
//   - hallpass_gateway_requests_total{outcome,code}: requests answered, by
//     outcome (allowed, refused, error) and problem code ("ok" when
//     allowed).
//   - hallpass_gateway_verify_duration_seconds: time spent authenticating
//     one request (token, proof, revocation, replay), whatever the verdict.
//
// # What it trusts
//
// The values come from the process's own state; no label takes request
// content (codes come from the fixed vocabulary of package problem), so the
// number of series is bounded. Serve them only where monitoring reaches,
// never on a public listener: they show traffic volume and refusals.
package opsmetrics
