// Package account defines hallpass accounts, devices and refresh sessions,
// the username policy, and the Store interface that the issuer keeps them
// in. Engines live in subpackages named after them (boltstore, redisstore);
// storetest is the conformance suite both pass.
//
// What it trusts: nothing from the client. Usernames are mapped with RFC
// 8265 UsernameCaseMapped (golang.org/x/text/secure/precis) and uniqueness is
// decided on that mapped form, so "Alice", "ALICE" and full-width "ａｌｉｃｅ"
// are one name. Ids are 128 random bits, never derived from the username.
//
// Threat model: concurrent signups for one name give exactly one account
// (the claim of the name and the creation are one atomic step in every
// Store). A refresh token is single use: the Store decides advance / grace /
// reuse in one atomic step, and a store copy holds no usable token (the
// successor kept for the grace window is sealed by the issuer).
package account
