package keys

// Status is the life-cycle state of a signing key in a Ring.
type Status string

const (
	// StatusNext: published so verifiers learn it early, not yet signing.
	StatusNext Status = "next"
	// StatusCurrent: the one key that signs new tokens.
	StatusCurrent Status = "current"
	// StatusRetired: no longer signs; published until every token it signed
	// has expired.
	StatusRetired Status = "retired"
	// StatusRevoked: withdrawn at once; tokens it signed are refused.
	StatusRevoked Status = "revoked"
)

// KeySetDocument is the published key set served at
// GET /.well-known/hallpass/keys. It holds no secret. A verifier must
// recompute every kid from its key and refuse a mismatch (see
// verifier.ParseKeySet); revoked kids are listed so that caches drop them.
type KeySetDocument struct {
	Issuer  string         `json:"issuer"`
	Keys    []PublishedKey `json:"keys"`
	Revoked []KeyID        `json:"revoked"`
}

// PublishedKey is one entry of a KeySetDocument.
type PublishedKey struct {
	Kid    KeyID  `json:"kid"`    // k4.pid...
	Key    string `json:"key"`    // k4.public...
	Status Status `json:"status"` // current, next or retired
}
