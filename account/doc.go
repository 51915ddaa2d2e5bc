// Package account defines hallpass accounts, devices and refresh sessions,
// the username policy, and the Store interface that the issuer keeps them
// in. Engines live in subpackages named after them (boltstore, redisstore);
// storetest is the conformance suite both pass.
//
// What it trusts: nothing from the client. Usernames are mapped with RFC
// 8265 UsernameCaseMapped (golang.org/x/text/secure/precis), must pass the
// mixed-script rule of UTS #39 "Highly Restrictive", and uniqueness is
// decided on the UTS #39 confusable skeleton of that mapped form (package
// uts39), so "Alice", "ALICE", full-width "ａｌｉｃｅ", "AIice" and Cyrillic
// "аӏісе" are one name, and names that look like a reserved one are
// refused. A refusal says why (UsernameReason). Ids are 128 random bits,
// never derived from the username.
//
// Threat model: concurrent signups for one name give exactly one account
// (the claim of the name and the creation are one atomic step in every
// Store). A refresh token is single use: the Store decides advance / grace /
// reuse in one atomic step, and a store copy holds no usable token (the
// successor kept for the grace window is sealed by the issuer). Link and
// recovery codes reach a Store only as the issuer's keyed digests; using
// one is a single atomic step, so of concurrent uses exactly one wins. A
// link code names the device that made it and is void once that device is
// signed out, checked in the redeeming step (a code made on a stolen phone
// dies with the phone's session). A
// username left by a rename or a deletion is held (ErrUsernameTaken) until
// the hold the issuer chose, so nobody can pose as its former owner at
// once.
package account
