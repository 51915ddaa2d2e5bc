// Package flow holds the account flows of the issuer, free of any
// transport: signup, refresh rotation (open, bind, mint, the atomic store
// step, grace, reuse), logout and device sign-out, the writing of
// revocation entries, and the account-state check of authenticated
// requests. The issuer's Echo handlers only decode a request, call a flow
// and map its error (an *Error with a code of package problem) to a
// response; another transport can call the same flows.
//
// What it trusts: its Config (store, keys, refresh codec, clock, random
// source). It trusts nothing of a request: a username goes through the
// username policy, a refresh token is opened (authenticated encryption)
// before its claims are read, and a DPoP proof is verified by package dpop
// against the method and URL the transport says the request was made to.
// The transport must build that URL from its configured public URL, never
// from request headers.
//
// Order matters for security, and each flow documents its own: nothing is
// stored before every check passed, a refresh token presented with another
// key is refused before any state changes (the real device's session is
// untouched), and the single-use decision is one atomic store step.
//
// Every store call runs under Config.StoreTimeout (internal/storecall);
// past it the flow fails with ErrUnavailable and nothing the client holds
// is lost: every store step is atomic, and a refresh that completed unseen
// is answered again within the grace window.
package flow
