package revocation

import (
	"context"
	"errors"
	"fmt"
	"time"
	"unicode/utf8"
)

// Kind is what an Entry revokes.
type Kind string

// The kinds of entries.
const (
	// KindToken revokes one token: ID is its jti.
	KindToken Kind = "token"
	// KindDevice revokes the tokens of one device (ID, the dev claim)
	// issued before Before.
	KindDevice Kind = "device"
	// KindAccount revokes the tokens of one account (ID, the sub claim)
	// issued before Before.
	KindAccount Kind = "account"
	// KindAll revokes every token issued before Before (the global epoch);
	// ID is empty. It never expires; only the latest one is kept.
	KindAll Kind = "all"
	// KindKey revokes every token signed by one key: ID is its kid
	// (k4.pid...). It never expires.
	KindKey Kind = "key"
)

// Bounds on entries.
const (
	// MaxIDLen bounds Entry.ID (a kid is 48 bytes, a jti 22).
	MaxIDLen = 128
	// MaxReasonLen bounds Entry.Reason, in bytes.
	MaxReasonLen = 256
)

// Defaults for EntryTTL's inputs, matching the issuer's and the verifier's.
const (
	DefaultMaxAccessLifetime = 10 * time.Minute
	DefaultLeeway            = 30 * time.Second
)

// Entry is one revocation. Times are UTC, with microsecond precision (Before
// is rounded up, which only denies more).
type Entry struct {
	Kind Kind   `json:"kind"`
	ID   string `json:"id"`
	// Before: tokens (of the device, account, or all) with iat < Before
	// are denied. For a token entry it is the creation time; a key entry
	// ignores it.
	Before time.Time `json:"before"`
	// Created is when the entry was made.
	Created time.Time `json:"created"`
	// Expires is when the entry stops mattering: no token it denies can
	// be valid after it. Zero means never (kinds key and all).
	Expires time.Time `json:"expires,omitzero"`
	// Reason is short, admin-provided text. It is never shown to token
	// holders.
	Reason string `json:"reason,omitempty"`
	// MAC authenticates a key or all entry: HMAC-SHA-256 under a key
	// derived from the issuers' wrapping key (EntryAuthenticator),
	// base64url. Empty for the other kinds, and everywhere no
	// authenticator is configured.
	MAC string `json:"mac,omitempty"`
}

// Key is the identity of an entry: an entry with the same Key and a later
// Before replaces an earlier one.
func (e Entry) Key() string { return string(e.Kind) + ":" + e.ID }

// Expired reports whether e no longer matters at now.
func (e Entry) Expired(now time.Time) bool {
	return !e.Expires.IsZero() && !now.Before(e.Expires)
}

// Validate checks e's shape: a known kind, an ID fitting the kind, bounded
// text, and times consistent with the kind.
func (e Entry) Validate() error {
	switch e.Kind {
	case KindToken, KindDevice, KindAccount, KindKey:
		if e.ID == "" {
			return fmt.Errorf("%w: empty id", ErrInvalidEntry)
		}
	case KindAll:
		if e.ID != "" {
			return fmt.Errorf("%w: kind all takes no id", ErrInvalidEntry)
		}
	default:
		return fmt.Errorf("%w: unknown kind", ErrInvalidEntry)
	}
	if len(e.ID) > MaxIDLen || !printable(e.ID) {
		return fmt.Errorf("%w: id too long or not printable ASCII", ErrInvalidEntry)
	}
	if len(e.Reason) > MaxReasonLen || !utf8.ValidString(e.Reason) {
		return fmt.Errorf("%w: reason too long or not UTF-8", ErrInvalidEntry)
	}
	if e.MAC != "" && !wellFormedMAC(e.MAC) {
		return fmt.Errorf("%w: malformed mac", ErrInvalidEntry)
	}
	if e.Created.IsZero() || e.Before.IsZero() && e.Kind != KindKey {
		return fmt.Errorf("%w: missing time", ErrInvalidEntry)
	}
	switch e.Kind {
	case KindKey, KindAll:
		if !e.Expires.IsZero() {
			return fmt.Errorf("%w: kinds key and all never expire", ErrInvalidEntry)
		}
	default:
		if e.Expires.IsZero() || e.Expires.Before(e.Before) {
			return fmt.Errorf("%w: expiry missing or before Before", ErrInvalidEntry)
		}
	}
	return nil
}

func printable(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x21 || s[i] > 0x7e {
			return false
		}
	}
	return true
}

// EntryTTL is how long a token, device or account entry must live after its
// Before: the longest a token issued before it can still be accepted
// (maxAccessLifetime, plus the verifier's leeway on exp).
func EntryTTL(maxAccessLifetime, leeway time.Duration) time.Duration {
	return maxAccessLifetime + leeway
}

// NewEntry builds an entry made at now: Before = Created = now, and Expires =
// now + ttl (see EntryTTL) for kinds token, device and account, never for
// key and all. The result is validated.
func NewEntry(kind Kind, id, reason string, now time.Time, ttl time.Duration) (Entry, error) {
	if ttl <= 0 {
		return Entry{}, fmt.Errorf("%w: ttl must be positive", ErrInvalidEntry)
	}
	now = CeilMicro(now.UTC())
	e := Entry{Kind: kind, ID: id, Before: now, Created: now, Reason: reason}
	switch kind {
	case KindKey, KindAll:
	default:
		e.Expires = now.Add(ttl)
	}
	return e, e.Validate()
}

// CeilMicro rounds t up to the microsecond, the precision of stored times.
func CeilMicro(t time.Time) time.Time {
	if t.IsZero() {
		return t
	}
	tr := t.Truncate(time.Microsecond)
	if tr.Before(t) {
		tr = tr.Add(time.Microsecond)
	}
	return tr
}

// Cursor is an opaque position in a store's event stream. The zero Cursor
// is before the first event.
type Cursor string

// Store keeps the live entries and a bounded stream of the events that
// added them. Implementations: revocation/redisstore (shared by every
// node), revocation/boltstore (one node). Conformance: revocation/storetest.
type Store interface {
	// Add validates e, stores it and appends it to the event stream. An
	// entry with the same Key and an equal or later Before already there
	// wins: Add then returns it and appends nothing. Expired entries are
	// dropped along the way.
	Add(ctx context.Context, e Entry) (Entry, error)
	// Snapshot returns every live entry and a cursor such that following
	// from it yields every event the snapshot may not reflect. Entries may
	// also show up again in Follow; applying an entry twice is harmless.
	Snapshot(ctx context.Context) ([]Entry, Cursor, error)
	// Follow returns up to max events after cursor, waiting up to block
	// for the first, and the cursor after them. It returns no events and
	// the same cursor when block passes without any. It returns
	// ErrCursorGone when events after cursor have been trimmed (or the
	// stream was lost): the caller reloads a Snapshot.
	Follow(ctx context.Context, cursor Cursor, max int, block time.Duration) ([]Entry, Cursor, error)
	// Ping reports whether the store answers.
	Ping(ctx context.Context) error
}

// Errors, tested with errors.Is. Their text never carries token content.
var (
	// ErrRevoked: the token is denied by an entry.
	ErrRevoked = errors.New("revocation: token revoked")
	// ErrStale: the mirror has not heard from its store for longer than
	// its bound, so it cannot vouch that a token is not revoked.
	ErrStale = errors.New("revocation: denylist stale")
	// ErrCursorGone: events after the cursor are no longer in the stream.
	ErrCursorGone = errors.New("revocation: cursor trimmed")
	// ErrInvalidEntry: an entry is malformed.
	ErrInvalidEntry = errors.New("revocation: invalid entry")
	// ErrUnavailable: the store could not be reached or failed.
	ErrUnavailable = errors.New("revocation: store unavailable")
	// ErrConfig: invalid options.
	ErrConfig = errors.New("revocation: invalid configuration")
)
