package token

import (
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
	"io"
	"net"
	"net/url"
	"time"
	"unicode/utf8"

	"github.com/hallpass/hallpass/keys"
)

// Lifetimes a Minter accepts.
const (
	DefaultTTL = 10 * time.Minute
	MinTTL     = 1 * time.Minute
	// MaxTTL (60 minutes) is declared with Claims: verifiers enforce it too.
)

// maxIDLen bounds the account, device and audience strings.
const maxIDLen = 256

// SigningKey is what Mint signs with: a crypto.Signer holding an Ed25519 key
// that knows its PASERK id. *keys.SecretKey is one; a KMS or HSM key can be.
type SigningKey interface {
	crypto.Signer
	// ID returns the k4.pid of the public key; it goes in the footer.
	ID() keys.KeyID
}

// Config configures a Minter. Issuer and Audience are required; the zero
// value of every other field is a sensible default.
type Config struct {
	// Issuer is the iss claim: an absolute https URL in canonical form
	// (http only for loopback hosts, for development), without user info,
	// query or fragment.
	Issuer string
	// Audience is the aud claim: the one service the tokens are for.
	Audience string
	// TTL is the lifetime of each token, from MinTTL to MaxTTL in whole
	// seconds; zero means DefaultTTL.
	TTL time.Duration
	// Now is the clock, read on every Mint; nil means time.Now.
	Now func() time.Time
	// Rand is the source of jti values; nil means crypto/rand.Reader.
	Rand io.Reader
}

// Subject is who a token is for. All fields are required.
type Subject struct {
	Account string // the sub claim
	Device  string // the dev claim
	// JKT is the base64url SHA-256 thumbprint of the device's DPoP key
	// (cnf.jkt): 43 characters.
	JKT string
}

// Minter mints access tokens. It is safe for concurrent use if Rand is.
type Minter struct {
	iss, aud string
	ttl      time.Duration
	now      func() time.Time
	rand     io.Reader
}

// NewMinter validates cfg and returns a Minter.
func NewMinter(cfg Config) (*Minter, error) {
	if err := validateIssuer(cfg.Issuer); err != nil {
		return nil, err
	}
	if !validText(cfg.Audience) {
		return nil, fmt.Errorf("%w: audience must be 1 to %d bytes of printable UTF-8", ErrConfig, maxIDLen)
	}
	m := &Minter{iss: cfg.Issuer, aud: cfg.Audience, ttl: cfg.TTL, now: cfg.Now, rand: cfg.Rand}
	if m.ttl == 0 {
		m.ttl = DefaultTTL
	}
	if m.ttl < MinTTL || m.ttl > MaxTTL || m.ttl%time.Second != 0 {
		return nil, fmt.Errorf("%w: TTL must be whole seconds from %v to %v", ErrConfig, MinTTL, MaxTTL)
	}
	if m.now == nil {
		m.now = time.Now
	}
	if m.rand == nil {
		m.rand = rand.Reader
	}
	return m, nil
}

func validateIssuer(s string) error {
	bad := fmt.Errorf("%w: issuer must be an absolute https URL (http only on loopback) in canonical form, without user info, query or fragment", ErrConfig)
	if s == "" || len(s) > 2048 {
		return bad
	}
	u, err := url.Parse(s) // its error quotes the input: not returned
	if err != nil || u.String() != s || u.Host == "" || u.Opaque != "" ||
		u.User != nil || u.RawQuery != "" || u.ForceQuery || u.Fragment != "" {
		return bad
	}
	switch u.Scheme {
	case "https":
		return nil
	case "http":
		h := u.Hostname()
		if ip := net.ParseIP(h); h == "localhost" || (ip != nil && ip.IsLoopback()) {
			return nil
		}
	}
	return bad
}

// validText: 1 to maxIDLen bytes of valid UTF-8 without control characters.
func validText(s string) bool {
	if s == "" || len(s) > maxIDLen || !utf8.ValidString(s) {
		return false
	}
	for _, r := range s {
		if r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) {
			return false
		}
	}
	return true
}

// Mint signs an access token for sub with key and returns it with its
// claims: iss and aud from the Config, iat = nbf = now (whole seconds),
// exp = now + TTL, a random 128-bit jti, and the footer {"kid": key.ID()}.
// The key's id must match its public key.
func (m *Minter) Mint(key SigningKey, sub Subject) (string, *Claims, error) {
	if key == nil {
		return "", nil, fmt.Errorf("%w: nil signing key", ErrInvalidKey)
	}
	if sk, ok := key.(*keys.SecretKey); ok && sk == nil {
		return "", nil, fmt.Errorf("%w: nil signing key", ErrInvalidKey)
	}
	switch {
	case !validText(sub.Account):
		return "", nil, fmt.Errorf("%w: account must be 1 to %d bytes of printable UTF-8", ErrSubject, maxIDLen)
	case !validText(sub.Device):
		return "", nil, fmt.Errorf("%w: device must be 1 to %d bytes of printable UTF-8", ErrSubject, maxIDLen)
	case !IsThumbprint(sub.JKT):
		return "", nil, fmt.Errorf("%w: jkt must be a base64url SHA-256 thumbprint", ErrSubject)
	}
	// A KMS key configured with the wrong id would mint tokens no verifier
	// can check: catch it here.
	pub, ok := key.Public().(ed25519.PublicKey)
	if !ok {
		return "", nil, fmt.Errorf("%w: signer is not Ed25519", ErrInvalidKey)
	}
	pk, err := keys.PublicKeyFromEd25519(pub)
	if err != nil {
		return "", nil, fmt.Errorf("%w: signer is not Ed25519", ErrInvalidKey)
	}
	kid := key.ID()
	if pk.ID() != kid {
		return "", nil, fmt.Errorf("%w: signer's id does not match its public key", ErrInvalidKey)
	}

	now := m.now().UTC().Truncate(time.Second)
	exp := now.Add(m.ttl)
	if now.Year() < 1 || exp.Year() > 9999 {
		return "", nil, fmt.Errorf("%w: clock out of range", ErrConfig)
	}
	var jti [16]byte
	if _, err := io.ReadFull(m.rand, jti[:]); err != nil {
		return "", nil, fmt.Errorf("token: random source: %w", err)
	}
	c := &Claims{
		Issuer:       m.iss,
		Audience:     m.aud,
		Subject:      sub.Account,
		Device:       sub.Device,
		Confirmation: Confirmation{JKT: sub.JKT},
		IssuedAt:     now,
		NotBefore:    now,
		Expiry:       exp,
		ID:           b64.EncodeToString(jti[:]),
	}
	var buf [512]byte
	payload := c.AppendJSON(buf[:0])
	var fbuf [96]byte
	footer := Footer{Kid: kid}.AppendJSON(fbuf[:0])
	tok, err := signV4Public(key, payload, footer, nil)
	if err != nil {
		return "", nil, err
	}
	return tok, c, nil
}
