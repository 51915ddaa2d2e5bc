package verifier

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"github.com/hallpass/hallpass/keys"
)

// KeySource finds the trusted public key for a kid. It returns ErrUnknownKey
// (possibly wrapped) when it has no such key and ErrKeyRevoked when the key
// is revoked; any other error refuses the token as ErrKeySource.
//
// An implementation that refetches a remote key set on an unknown kid must
// rate-limit the refetch: the kid is attacker-controlled.
type KeySource interface {
	LookupKey(ctx context.Context, kid keys.KeyID) (keys.PublicKey, error)
}

// StaticKeySet is a fixed set of trusted keys and revoked kids. It is
// immutable and safe for concurrent use.
type StaticKeySet struct {
	keys    map[keys.KeyID]keys.PublicKey
	revoked map[keys.KeyID]struct{}
}

// NewStaticKeySet trusts the given keys.
func NewStaticKeySet(pks ...keys.PublicKey) (*StaticKeySet, error) {
	s := &StaticKeySet{keys: make(map[keys.KeyID]keys.PublicKey, len(pks))}
	for _, pk := range pks {
		if pk.IsZero() {
			return nil, fmt.Errorf("%w: zero public key", ErrKeySet)
		}
		s.keys[pk.ID()] = pk
	}
	return s, nil
}

// LookupKey implements KeySource.
func (s *StaticKeySet) LookupKey(_ context.Context, kid keys.KeyID) (keys.PublicKey, error) {
	if _, r := s.revoked[kid]; r {
		return keys.PublicKey{}, ErrKeyRevoked
	}
	if pk, ok := s.keys[kid]; ok {
		return pk, nil
	}
	return keys.PublicKey{}, ErrUnknownKey
}

// MaxKeySetSize bounds the key-set document ParseKeySet reads.
const MaxKeySetSize = 64 << 10

// maxKeySetDepth bounds nesting inside unknown members of a key set.
const maxKeySetDepth = 16

// ParseKeySet reads a published key-set document (keys.KeySetDocument, as
// served at /.well-known/hallpass/keys) and trusts its keys. It refuses a
// document that is larger than MaxKeySetSize, is not one JSON object, has a
// duplicate member name at any depth, lacks "issuer" or "keys", or has a
// member of the wrong type; whose issuer is not exactly issuer; with an entry
// whose key is not a k4.public, whose kid is not the id recomputed from that
// key, whose status is not current, next or retired, or whose kid repeats;
// or with a "revoked" entry that is not a k4.pid.
//
// Unknown members are ignored (after the same checks), as in token claims, so
// the issuer can extend the document. A kid listed in "revoked" is refused by
// LookupKey with ErrKeyRevoked even if an entry also lists its key.
func ParseKeySet(data []byte, issuer string) (*StaticKeySet, error) {
	if issuer == "" {
		return nil, fmt.Errorf("%w: no expected issuer", ErrKeySet)
	}
	if len(data) > MaxKeySetSize {
		return nil, fmt.Errorf("%w: too large", ErrKeySet)
	}
	doc, err := decodeKeySet(data)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrKeySet, err)
	}
	if doc.Issuer != issuer {
		return nil, fmt.Errorf("%w: issuer does not match", ErrKeySet)
	}
	s := &StaticKeySet{
		keys:    make(map[keys.KeyID]keys.PublicKey, len(doc.Keys)),
		revoked: make(map[keys.KeyID]struct{}, len(doc.Revoked)),
	}
	for _, id := range doc.Revoked {
		kid, err := keys.ParseKeyID(string(id), "pid")
		if err != nil {
			return nil, fmt.Errorf("%w: revoked entry is not a k4.pid", ErrKeySet)
		}
		s.revoked[kid] = struct{}{}
	}
	seen := make(map[keys.KeyID]bool, len(doc.Keys))
	for _, e := range doc.Keys {
		kid, err := keys.ParseKeyID(string(e.Kid), "pid")
		if err != nil {
			return nil, fmt.Errorf("%w: kid is not a k4.pid", ErrKeySet)
		}
		pk, err := keys.ParsePublicKey(e.Key)
		if err != nil {
			return nil, fmt.Errorf("%w: key is not a k4.public", ErrKeySet)
		}
		if pk.ID() != kid {
			return nil, fmt.Errorf("%w: kid does not match its key", ErrKeySet)
		}
		switch e.Status {
		case keys.StatusCurrent, keys.StatusNext, keys.StatusRetired:
		default:
			return nil, fmt.Errorf("%w: status must be current, next or retired", ErrKeySet)
		}
		if seen[kid] {
			return nil, fmt.Errorf("%w: duplicate kid", ErrKeySet)
		}
		seen[kid] = true
		if _, r := s.revoked[kid]; !r {
			s.keys[kid] = pk
		}
	}
	return s, nil
}

// Reasons a key-set document is refused; fixed text.
var (
	errKSSyntax    = errors.New("invalid JSON")
	errKSType      = errors.New("member of the wrong type")
	errKSDuplicate = errors.New("duplicate member name")
	errKSMissing   = errors.New("missing member")
	errKSDepth     = errors.New("nesting too deep")
)

// decodeKeySet decodes strictly from encoding/json's token stream: exact
// (case-sensitive) member names, no duplicates at any depth, typed members.
// encoding/json's struct decoding would match names case-insensitively and
// let the last duplicate win.
func decodeKeySet(data []byte) (keys.KeySetDocument, error) {
	var doc keys.KeySetDocument
	d := ksDecoder{json.NewDecoder(bytes.NewReader(data))}
	var haveIssuer, haveKeys bool
	err := d.object(0, func(name string) error {
		var err error
		switch name {
		case "issuer":
			haveIssuer = true
			doc.Issuer, err = d.str()
		case "keys":
			haveKeys = true
			err = d.array(func() error {
				e, err := d.publishedKey()
				if err != nil {
					return err
				}
				doc.Keys = append(doc.Keys, e)
				return nil
			})
		case "revoked":
			err = d.array(func() error {
				s, err := d.str()
				doc.Revoked = append(doc.Revoked, keys.KeyID(s))
				return err
			})
		default:
			err = d.skip(1)
		}
		return err
	})
	if err != nil {
		return doc, err
	}
	if !haveIssuer || !haveKeys {
		return doc, errKSMissing
	}
	if _, err := d.dec.Token(); err != io.EOF {
		return doc, errKSSyntax
	}
	return doc, nil
}

type ksDecoder struct{ dec *json.Decoder }

// publishedKey reads one entry of "keys", an object whose kid, key and status are all required.
func (d ksDecoder) publishedKey() (keys.PublishedKey, error) {
	var e keys.PublishedKey
	var haveKid, haveKey, haveStatus bool
	err := d.object(2, func(name string) error {
		var err error
		switch name {
		case "kid":
			haveKid = true
			var s string
			s, err = d.str()
			e.Kid = keys.KeyID(s)
		case "key":
			haveKey = true
			e.Key, err = d.str()
		case "status":
			haveStatus = true
			var s string
			s, err = d.str()
			e.Status = keys.Status(s)
		default:
			err = d.skip(3)
		}
		return err
	})
	if err != nil {
		return keys.PublishedKey{}, err
	}
	if !haveKid || !haveKey || !haveStatus {
		return keys.PublishedKey{}, errKSMissing
	}
	return e, nil
}

func (d ksDecoder) token() (json.Token, error) {
	t, err := d.dec.Token()
	if err != nil { // its text may quote the input
		return nil, errKSSyntax
	}
	return t, nil
}

// object reads an object, calling member for each name; member must consume
// the value.
func (d ksDecoder) object(depth int, member func(name string) error) error {
	if depth > maxKeySetDepth {
		return errKSDepth
	}
	t, err := d.token()
	if err != nil {
		return err
	}
	if t != json.Delim('{') {
		return errKSType
	}
	seen := make(map[string]bool)
	for d.dec.More() {
		t, err := d.token()
		if err != nil {
			return err
		}
		name, ok := t.(string)
		if !ok {
			return errKSSyntax
		}
		if seen[name] {
			return errKSDuplicate
		}
		seen[name] = true
		if err := member(name); err != nil {
			return err
		}
	}
	_, err = d.token() // '}'
	return err
}

// array reads an array (or null, read as empty), calling elem for each
// element; elem must consume it.
func (d ksDecoder) array(elem func() error) error {
	t, err := d.token()
	if err != nil {
		return err
	}
	if t == nil {
		return nil
	}
	if t != json.Delim('[') {
		return errKSType
	}
	for d.dec.More() {
		if err := elem(); err != nil {
			return err
		}
	}
	_, err = d.token() // ']'
	return err
}

func (d ksDecoder) str() (string, error) {
	t, err := d.token()
	if err != nil {
		return "", err
	}
	s, ok := t.(string)
	if !ok {
		return "", errKSType
	}
	return s, nil
}

// skip consumes one value of any type, checking nested objects for
// duplicate names.
func (d ksDecoder) skip(depth int) error {
	if depth > maxKeySetDepth {
		return errKSDepth
	}
	t, err := d.token()
	if err != nil {
		return err
	}
	switch t {
	case json.Delim('{'):
		seen := make(map[string]bool)
		for d.dec.More() {
			t, err := d.token()
			if err != nil {
				return err
			}
			name, _ := t.(string)
			if seen[name] {
				return errKSDuplicate
			}
			seen[name] = true
			if err := d.skip(depth + 1); err != nil {
				return err
			}
		}
		_, err = d.token()
	case json.Delim('['):
		for d.dec.More() {
			if err := d.skip(depth + 1); err != nil {
				return err
			}
		}
		_, err = d.token()
	}
	return err
}
