package revocation

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/hallpass/hallpass/keys"
)

// ErrUnauthenticated: a key or all entry carries no valid MAC. Such an
// entry is never applied where an EntryAuthenticator is configured.
var ErrUnauthenticated = errors.New("revocation: key or all entry without a valid MAC")

// entryMACPurpose names the key derived from the wrapping key
// (keys.WrappingKey.UnsafeDeriveKey).
const entryMACPurpose = "revocation/entry-mac/v1"

// macLen is the length of an Entry.MAC: base64url of 32 bytes, unpadded.
const macLen = 43

func wellFormedMAC(s string) bool {
	b, err := base64.RawURLEncoding.DecodeString(s)
	return err == nil && len(s) == macLen && len(b) == sha256.Size
}

// EntryAuthenticator makes and checks the MAC of key and all entries, the
// two kinds that never expire and reach every token: a forged "all" entry
// with a Before far in the future would refuse every token, for good, and
// a forged key entry every token of the current key. The key is derived
// (HKDF) from the wrapping key the issuers already share, so only they can
// make one. It prints as redacted. Token, device and account entries are
// not authenticated: they expire within EntryTTL and deny one token, device
// or account.
type EntryAuthenticator struct {
	_ [0]func()
	k []byte
}

// NewEntryAuthenticator derives the entry MAC key from w.
func NewEntryAuthenticator(w *keys.WrappingKey) (*EntryAuthenticator, error) {
	if w == nil {
		return nil, fmt.Errorf("%w: nil wrapping key", ErrConfig)
	}
	k, err := w.UnsafeDeriveKey(entryMACPurpose)
	if err != nil {
		return nil, err
	}
	return &EntryAuthenticator{k: k}, nil
}

func (a EntryAuthenticator) String() string       { return "revocation.EntryAuthenticator(redacted)" }
func (a EntryAuthenticator) GoString() string     { return a.String() }
func (a EntryAuthenticator) LogValue() slog.Value { return slog.StringValue("redacted") }

// authenticated reports whether entries of kind carry a MAC.
func authenticated(k Kind) bool { return k == KindKey || k == KindAll }

// normalize rounds e's times as the stores do (Before and Expires up,
// Created down, to the microsecond, UTC), so that the MAC covers what is
// stored and read back.
func normalize(e Entry) Entry {
	e.Before = CeilMicro(e.Before).UTC()
	e.Created = e.Created.Truncate(time.Microsecond).UTC()
	e.Expires = CeilMicro(e.Expires).UTC()
	return e
}

// mac is HMAC-SHA-256 over a length-prefixed encoding of every field but
// MAC.
func (a *EntryAuthenticator) mac(e Entry) []byte {
	e = normalize(e)
	m := hmac.New(sha256.New, a.k)
	field := func(s string) {
		m.Write(binary.BigEndian.AppendUint32(nil, uint32(len(s))))
		m.Write([]byte(s))
	}
	micro := func(t time.Time) {
		var v int64
		if !t.IsZero() {
			v = t.UnixMicro()
		}
		m.Write(binary.BigEndian.AppendUint64(nil, uint64(v)))
	}
	field("hallpass revocation entry v1")
	field(string(e.Kind))
	field(e.ID)
	micro(e.Before)
	micro(e.Created)
	micro(e.Expires)
	field(e.Reason)
	return m.Sum(nil)
}

// Seal returns e with its times normalised and, for a key or all entry,
// its MAC set. Other kinds are returned without a MAC.
func (a *EntryAuthenticator) Seal(e Entry) Entry {
	e = normalize(e)
	e.MAC = ""
	if authenticated(e.Kind) {
		e.MAC = base64.RawURLEncoding.EncodeToString(a.mac(e))
	}
	return e
}

// Verify reports whether e may be applied: a key or all entry must carry
// a valid MAC; the other kinds need none.
func (a *EntryAuthenticator) Verify(e Entry) bool {
	if !authenticated(e.Kind) {
		return true
	}
	tag, err := base64.RawURLEncoding.DecodeString(e.MAC)
	return err == nil && hmac.Equal(tag, a.mac(e))
}

// AuthOptions configure Authenticated. The zero value is useful.
type AuthOptions struct {
	// Logger receives each refused entry (its kind, never its id), at
	// error level (default: discarded).
	Logger *slog.Logger
	// OnRefused, when set, is called with the kind of each refused entry:
	// the hook for an alert counter.
	OnRefused func(Kind)
}

// AuthenticatedStore is a Store whose key and all entries carry a MAC: Add
// seals them, and Snapshot and Follow drop any without a valid one, so a
// Mirror over it never applies a forged one. See Authenticated.
type AuthenticatedStore struct {
	st   Store
	a    *EntryAuthenticator
	opts AuthOptions
}

var _ Store = (*AuthenticatedStore)(nil)

// Authenticated wraps s so that key and all entries are sealed on Add and
// checked on Snapshot and Follow. Every node that writes or mirrors s must
// use it with the same wrapping key: an unauthenticated key or all entry
// (written before, or by a writer without the key) is ignored.
//
// SECURITY: a writer to the store can still delete entries (a MAC cannot
// prevent that). What a node has seen it keeps: a Mirror never drops a key
// entry or lowers the all epoch when a snapshot lacks them, and a revoked
// signing key also stays listed as revoked in the key ring (keys/redisring
// keeps the kids it has seen revoked, and refuses a ring that brings one
// back).
func Authenticated(s Store, a *EntryAuthenticator, opts AuthOptions) (*AuthenticatedStore, error) {
	if s == nil || a == nil {
		return nil, fmt.Errorf("%w: nil store or authenticator", ErrConfig)
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	return &AuthenticatedStore{st: s, a: a, opts: opts}, nil
}

// Add seals e and adds it. When the store keeps an older key or all entry
// with a later Before that does not verify (a forged one, which wins over
// e in the store), Add returns ErrUnauthenticated: e is not stored, and
// the alert says why.
func (s *AuthenticatedStore) Add(ctx context.Context, e Entry) (Entry, error) {
	kept, err := s.st.Add(ctx, s.a.Seal(e))
	if err != nil {
		return kept, err
	}
	if !s.a.Verify(kept) {
		s.refused(kept.Kind, "add")
		return Entry{}, fmt.Errorf("%w: the store holds a forged %s entry in its place", ErrUnauthenticated, kept.Kind)
	}
	return kept, nil
}

// Snapshot returns the store's snapshot without the entries that do not
// verify.
func (s *AuthenticatedStore) Snapshot(ctx context.Context) ([]Entry, Cursor, error) {
	es, c, err := s.st.Snapshot(ctx)
	return s.filter(es, "snapshot"), c, err
}

// Follow returns the store's events without the entries that do not
// verify.
func (s *AuthenticatedStore) Follow(ctx context.Context, c Cursor, max int, block time.Duration) ([]Entry, Cursor, error) {
	es, next, err := s.st.Follow(ctx, c, max, block)
	return s.filter(es, "follow"), next, err
}

// Ping asks the store.
func (s *AuthenticatedStore) Ping(ctx context.Context) error { return s.st.Ping(ctx) }

func (s *AuthenticatedStore) filter(es []Entry, op string) []Entry {
	out := es[:0]
	for _, e := range es {
		if s.a.Verify(e) {
			out = append(out, e)
			continue
		}
		s.refused(e.Kind, op)
	}
	return out
}

func (s *AuthenticatedStore) refused(k Kind, op string) {
	s.opts.Logger.Error("revocation entry refused: no valid MAC (forged, or written without the wrapping key)",
		slog.String("kind", string(k)), slog.String("op", op))
	if s.opts.OnRefused != nil {
		s.opts.OnRefused(k)
	}
}
