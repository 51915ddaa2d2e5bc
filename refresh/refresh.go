package refresh

import (
	"bytes"
	"crypto/cipher"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"time"

	"aidanwoods.dev/go-paseto"

	"github.com/hallpass/hallpass/keys"
)

// Errors. Every failure to open a token is ErrInvalid (opaque); ErrExpired is
// kept apart so the issuer can tell a user their session ran out.
var (
	ErrInvalid = errors.New("refresh: invalid refresh token")
	ErrExpired = errors.New("refresh: refresh token expired")
)

const (
	header = "v4.local."
	// MaxTokenSize bounds what Open reads; real tokens are under 300 bytes.
	MaxTokenSize = 1024
	// Implicit assertions separate the two uses of the keys: a sealed
	// successor can never be presented as a refresh token and vice versa.
	implicitToken     = "hallpass refresh token v1"
	implicitSuccessor = "hallpass sealed successor v1"
)

// Claims are the payload of a refresh token. The token is encrypted: the
// client cannot read or forge it.
type Claims struct {
	DeviceID  string    `json:"sid"` // the device session id
	Counter   uint64    `json:"ctr"`
	IssuedAt  time.Time `json:"iat"`
	ExpiresAt time.Time `json:"exp"` // absolute end of the session
}

type footer struct {
	Kid keys.KeyID `json:"kid"`
}

// Codec seals and opens refresh tokens with a set of symmetric keys: the
// first seals, all open (so tokens survive a key rotation until they
// expire). Rekey replaces the set while the codec is in use, so one Codec
// can follow a key ring that changes (keys/live does). A Codec is safe for
// concurrent use.
type Codec struct {
	ks  atomic.Pointer[keySet]
	now func() time.Time
}

// keySet is one immutable set of keys: every Seal and Open reads one set
// whole, never half of an old one and half of a new one.
type keySet struct {
	current keys.KeyID
	curKey  paseto.V4SymmetricKey
	byID    map[keys.KeyID]paseto.V4SymmetricKey
	blobs   map[keys.KeyID]cipher.AEAD // sealed successors (blob.go)
	ids     []keys.KeyID               // current first, as given
}

// NewCodec returns a codec that seals with current and opens with current
// and any of previous. now is read on every Open.
func NewCodec(now func() time.Time, current *keys.LocalKey, previous ...*keys.LocalKey) (*Codec, error) {
	if current == nil || now == nil {
		return nil, errors.New("refresh: NewCodec needs a clock and a current key")
	}
	c := &Codec{now: now}
	if err := c.Rekey(current, previous...); err != nil {
		return nil, err
	}
	return c, nil
}

// Snapshot returns a codec fixed to c's keys as they are now: a later Rekey
// of c does not change it. One refresh uses one snapshot to open the
// presented token and seal its successor, so a key set replaced between
// the two (an end of every session) can never let a token opened under
// a dropped key live on under the new one.
func (c *Codec) Snapshot() *Codec {
	s := &Codec{now: c.now}
	s.ks.Store(c.ks.Load())
	return s
}

// Rekey replaces the codec's keys at once: current seals from now on, and
// current and previous open. A token sealed under a key not given here no
// longer opens: leaving out every older key ends every session whose
// refresh token it sealed. Seal and Open calls running meanwhile use
// either the old set or the new one, whole. On error the keys are
// unchanged.
func (c *Codec) Rekey(current *keys.LocalKey, previous ...*keys.LocalKey) error {
	if current == nil {
		return errors.New("refresh: Rekey needs a current key")
	}
	ks := &keySet{current: current.ID(), byID: make(map[keys.KeyID]paseto.V4SymmetricKey, 1+len(previous)),
		blobs: make(map[keys.KeyID]cipher.AEAD, 1+len(previous))}
	for _, k := range append([]*keys.LocalKey{current}, previous...) {
		if k == nil {
			return errors.New("refresh: nil key")
		}
		if _, dup := ks.byID[k.ID()]; dup {
			continue
		}
		raw := k.UnsafeBytes()
		pk, err := paseto.V4SymmetricKeyFromBytes(raw)
		aead, err2 := blobAEAD(raw)
		clear(raw)
		if err != nil || err2 != nil {
			return fmt.Errorf("refresh: %w", keys.ErrInvalidKey)
		}
		ks.byID[k.ID()] = pk
		ks.blobs[k.ID()] = aead
		ks.ids = append(ks.ids, k.ID())
	}
	ks.curKey = ks.byID[ks.current]
	c.ks.Store(ks)
	return nil
}

// KeyIDs returns the ids (k4.lid, safe to log) of the keys that open
// tokens, the sealing key first.
func (c *Codec) KeyIDs() []keys.KeyID {
	return append([]keys.KeyID(nil), c.ks.Load().ids...)
}

// Seal encrypts claims into a refresh token.
func (c *Codec) Seal(cl Claims) (string, error) {
	payload, err := json.Marshal(claimsJSON{cl.DeviceID, cl.Counter, cl.IssuedAt.UTC().Format(time.RFC3339), cl.ExpiresAt.UTC().Format(time.RFC3339)})
	if err != nil {
		return "", err
	}
	return c.seal(payload, implicitToken)
}

type claimsJSON struct {
	Sid string `json:"sid"`
	Ctr uint64 `json:"ctr"`
	Iat string `json:"iat"`
	Exp string `json:"exp"`
}

func (c *Codec) seal(payload []byte, implicit string) (string, error) {
	ks := c.ks.Load()
	f, _ := json.Marshal(footer{Kid: ks.current})
	t, err := paseto.NewTokenFromClaimsJSON(payload, f)
	if err != nil {
		return "", fmt.Errorf("refresh: seal: %w", err)
	}
	return t.V4Encrypt(ks.curKey, []byte(implicit)), nil
}

// Open decrypts and checks a tainted refresh token: size, header, key id,
// authenticity, payload shape and expiry (against the clock, read now).
func (c *Codec) Open(tainted string) (Claims, error) {
	payload, err := c.open(tainted, implicitToken, MaxTokenSize)
	if err != nil {
		return Claims{}, err
	}
	var cj claimsJSON
	dec := json.NewDecoder(bytes.NewReader(payload))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&cj); err != nil || cj.Sid == "" {
		return Claims{}, ErrInvalid
	}
	iat, err1 := time.Parse(time.RFC3339, cj.Iat)
	exp, err2 := time.Parse(time.RFC3339, cj.Exp)
	if err1 != nil || err2 != nil {
		return Claims{}, ErrInvalid
	}
	if !c.now().Before(exp) {
		return Claims{}, ErrExpired
	}
	return Claims{DeviceID: cj.Sid, Counter: cj.Ctr, IssuedAt: iat, ExpiresAt: exp}, nil
}

func (c *Codec) open(tainted, implicit string, maxSize int) ([]byte, error) {
	if len(tainted) > maxSize || !strings.HasPrefix(tainted, header) {
		return nil, ErrInvalid
	}
	raw, err := paseto.NewParser().UnsafeParseFooter(paseto.V4Local, tainted)
	if err != nil || len(raw) > 128 {
		return nil, ErrInvalid
	}
	var f footer
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&f); err != nil {
		return nil, ErrInvalid
	}
	key, ok := c.ks.Load().byID[f.Kid]
	if !ok {
		return nil, ErrInvalid
	}
	p := paseto.NewParserWithoutExpiryCheck()
	tok, err := p.ParseV4Local(key, tainted, []byte(implicit))
	if err != nil {
		return nil, ErrInvalid
	}
	return tok.ClaimsJSON(), nil
}
