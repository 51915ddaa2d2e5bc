package dpop

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"time"
)

// HTTP header fields of RFC 9449.
const (
	// Header carries the proof on a request.
	Header = "DPoP"
	// NonceHeader carries a server nonce on a response (RFC 9449 section 8).
	NonceHeader = "DPoP-Nonce"
)

// NonceKeySize is the size of a [NonceKey] in bytes.
const NonceKeySize = 32

// NonceKey is the secret shared by every node that issues or checks server
// nonces. It is not comparable with ==; use Equal. String and LogValue print
// only a short key id derived from it.
type NonceKey struct {
	_ [0]func() // not comparable
	k [NonceKeySize]byte
}

// NewNonceKey copies a NonceKeySize-byte secret into a NonceKey.
func NewNonceKey(secret []byte) (*NonceKey, error) {
	if len(secret) != NonceKeySize {
		return nil, fmt.Errorf("%w: nonce key must be %d bytes", ErrConfig, NonceKeySize)
	}
	k := new(NonceKey)
	copy(k.k[:], secret)
	return k, nil
}

// GenerateNonceKey reads a new key from rand (crypto/rand when nil).
func GenerateNonceKey(rnd io.Reader) (*NonceKey, error) {
	if rnd == nil {
		rnd = rand.Reader
	}
	k := new(NonceKey)
	if _, err := io.ReadFull(rnd, k.k[:]); err != nil {
		return nil, fmt.Errorf("dpop: generating nonce key: %w", err)
	}
	return k, nil
}

// Equal reports in constant time whether k and o hold the same secret.
func (k *NonceKey) Equal(o *NonceKey) bool {
	if k == nil || o == nil {
		return k == o
	}
	return subtle.ConstantTimeCompare(k.k[:], o.k[:]) == 1
}

// ID is a short public identifier of the key (a truncated hash), for logs.
func (k *NonceKey) ID() string {
	h := sha256.Sum256(append([]byte("hallpass dpop nonce key id\x00"), k.k[:]...))
	return hex.EncodeToString(h[:6])
}

// String prints the key id, never the secret.
func (k *NonceKey) String() string { return "dpop.NonceKey(" + k.ID() + ")" }

// LogValue prints the key id, never the secret.
func (k *NonceKey) LogValue() slog.Value { return slog.StringValue(k.String()) }

// NonceChecker decides whether a proof's nonce claim is one the server
// issued and still accepts. *NonceSource implements it.
type NonceChecker interface {
	// Check returns nil, or an error wrapping ErrNonceRequired (nonce is
	// "") or ErrNonceInvalid.
	Check(nonce string) error
}

// NonceOptions configures a NonceSource. The zero value is usable.
type NonceOptions struct {
	// Step is how often the nonce changes; a nonce is accepted during the
	// step it was issued in and the next one, so for between Step and
	// 2*Step. Default 5 minutes; at least 1 second.
	Step time.Duration
	// Now is read on every Issue and Check. Default time.Now.
	Now func() time.Time
	// PreviousKeys are still accepted by Check (never used by Issue), for
	// rotating the key without a burst of use_dpop_nonce errors.
	PreviousKeys []*NonceKey
}

// NonceSource issues and checks stateless server nonces (RFC 9449 section
// 8): base64url(HMAC-SHA256(key, "hallpass dpop nonce v1" || step)), where
// step is the current time divided by Step. Any node holding the key can
// check a nonce another node issued; nothing is stored. Nodes' clocks must
// agree to well within Step.
//
// A nonce is the same for every client during a step: it proves freshness
// (a proof cannot be made before the nonce existed), not identity.
type NonceSource struct {
	key  *NonceKey
	prev []*NonceKey
	step time.Duration
	now  func() time.Time
}

// NewNonceSource returns a NonceSource using key.
func NewNonceSource(key *NonceKey, opts NonceOptions) (*NonceSource, error) {
	if key == nil {
		return nil, fmt.Errorf("%w: nil nonce key", ErrConfig)
	}
	for _, p := range opts.PreviousKeys {
		if p == nil {
			return nil, fmt.Errorf("%w: nil previous nonce key", ErrConfig)
		}
	}
	s := &NonceSource{key: key, prev: opts.PreviousKeys, step: opts.Step, now: opts.Now}
	if s.step == 0 {
		s.step = 5 * time.Minute
	}
	if s.step < time.Second {
		return nil, fmt.Errorf("%w: nonce step below 1s", ErrConfig)
	}
	if s.now == nil {
		s.now = time.Now
	}
	return s, nil
}

// Issue returns the nonce of the current step, for the DPoP-Nonce header.
func (s *NonceSource) Issue() string {
	mac := nonceMAC(s.key, s.stepAt(s.now()))
	return b64.EncodeToString(mac[:])
}

// Check accepts the nonce of the current or the previous step.
func (s *NonceSource) Check(nonce string) error {
	if nonce == "" {
		return ErrNonceRequired
	}
	var got [sha256.Size]byte
	if !decodeFixed(got[:], nonce) {
		return ErrNonceInvalid
	}
	cur := s.stepAt(s.now())
	ok := 0
	for _, k := range append([]*NonceKey{s.key}, s.prev...) {
		for _, st := range [2]int64{cur, cur - 1} {
			want := nonceMAC(k, st)
			ok |= subtle.ConstantTimeCompare(got[:], want[:])
		}
	}
	if ok != 1 {
		return ErrNonceInvalid
	}
	return nil
}

func (s *NonceSource) stepAt(t time.Time) int64 {
	ns := t.UnixNano()
	st := ns / int64(s.step)
	if ns < 0 && ns%int64(s.step) != 0 {
		st-- // floor
	}
	return st
}

func nonceMAC(k *NonceKey, step int64) [sha256.Size]byte {
	m := hmac.New(sha256.New, k.k[:])
	var in [len("hallpass dpop nonce v1") + 8]byte
	n := copy(in[:], "hallpass dpop nonce v1")
	binary.BigEndian.PutUint64(in[n:], uint64(step))
	m.Write(in[:])
	var out [sha256.Size]byte
	m.Sum(out[:0])
	return out
}
