// Package problem is hallpass's one vocabulary of error codes: every stable
// code a hallpass server can answer, its HTTP status and its fixed title and
// detail, and the RFC 9457 problem details object that carries them.
//
// The issuer, verifier/httpauth, the gateway, dpop and the Go client all
// take their codes from here, so a client switches on the same strings
// whichever hallpass component refused it. docs/openapi.yaml lists exactly
// the codes of [Codes] whose [Info.Scope] is [Public], and
// docs/openapi-admin.yaml adds the [Admin] ones; a test keeps them in step.
//
// What it trusts: nothing. It holds constants and formats responses; no
// text from a request ever goes into a [Details] unless the caller puts it
// there, and callers only put fixed sentences or their own configuration
// (such as the URL a proof's htu must name) into Details.Detail.
package problem
