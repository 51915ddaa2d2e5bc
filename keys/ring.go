package keys

import (
	"errors"
	"fmt"
	"io"
	"sort"
	"sync"
	"time"
)

// Ring errors.
var (
	ErrRingInvalid = errors.New("keys: invalid key ring")
	ErrKeyNotFound = errors.New("keys: no such key in ring")
	ErrKeyRevoked  = errors.New("keys: key is revoked")
	// ErrNextTooNew: Rotate was asked to promote a next key published
	// less than MinNextAge ago, which verifiers may not know yet.
	ErrNextTooNew = errors.New("keys: next key published too recently to sign")
)

// MinNextAge is how long the next key must have been in the ring before
// Rotate lets it sign: twice the published key set's max-age (60 s), so a
// verifier that follows the key set knows it before its first token. Two
// rotations in quick succession would otherwise put to signing a key made
// seconds before, one no verifier has fetched. Revoking the current
// key is not held back by it: an emergency withdrawal promotes the next
// key whatever its age (verifiers refetch on an unknown kid).
const MinNextAge = 2 * time.Minute

// DefaultRetiredKeep is how long a retired key stays published: the longest
// access-token lifetime (token.MaxTTL, 60 min) plus the verifier's default
// leeway on exp (30 s). After it no token the key signed can still be
// accepted, so Prune may drop it. It is a constant of this package, not
// derived from the current access-token TTL: tokens signed under an earlier,
// longer TTL are still in flight after the TTL is lowered.
const DefaultRetiredKeep = 60*time.Minute + 30*time.Second

// RingEntry is one signing key of a Ring with its life-cycle times.
// Secret is set for the current and the next key only: a retired key's
// secret is dropped when it retires (it never signs again) and a revoked
// key's when it is revoked; stores keep only their public keys.
type RingEntry struct {
	Secret    *SecretKey
	Public    PublicKey
	Status    Status
	Created   time.Time
	Activated time.Time // became current; zero if never
	Retired   time.Time // stopped signing; zero unless retired
	Revoked   time.Time // zero unless revoked
}

// ID returns the entry's kid.
func (e RingEntry) ID() KeyID { return e.Public.ID() }

// Ring is a set of Ed25519 signing keys with exactly one current key (which
// signs), at most one next key (published, not yet signing), retired keys
// (published until their tokens expire) and revoked keys (only their ids are
// kept, to be published as revoked). A Ring is safe for concurrent use.
type Ring struct {
	mu      sync.RWMutex
	entries []RingEntry
}

// NewRing creates a ring with one current and one next key.
func NewRing(rand io.Reader, now time.Time) (*Ring, error) {
	cur, err := GenerateSecretKey(rand)
	if err != nil {
		return nil, err
	}
	next, err := GenerateSecretKey(rand)
	if err != nil {
		return nil, err
	}
	now = now.UTC()
	return &Ring{entries: []RingEntry{
		{Secret: cur, Public: cur.PublicKey(), Status: StatusCurrent, Created: now, Activated: now},
		{Secret: next, Public: next.PublicKey(), Status: StatusNext, Created: now},
	}}, nil
}

// RestoreRing rebuilds a ring from stored entries and validates it: exactly
// one current key, at most one next key, a secret for the current and the
// next key matching its public key, no duplicate ids. A secret given for a
// retired or revoked key is dropped, not kept: such a key never signs (a
// ring stored before retired secrets were dropped loses them here, and its
// store writes them no more).
func RestoreRing(entries []RingEntry) (*Ring, error) {
	r := &Ring{entries: append([]RingEntry(nil), entries...)}
	for i := range r.entries {
		if !signs(r.entries[i].Status) {
			r.entries[i].Secret = nil
		}
	}
	if err := r.validate(); err != nil {
		return nil, err
	}
	return r, nil
}

// RestorePublicRing rebuilds a ring from stored public entries only (no
// secrets): enough to publish the key set, not to sign or rotate.
func RestorePublicRing(entries []RingEntry) (*Ring, error) {
	r := &Ring{entries: make([]RingEntry, len(entries))}
	for i, e := range entries {
		e.Secret = nil
		r.entries[i] = e
	}
	if err := r.validateShape(); err != nil {
		return nil, err
	}
	return r, nil
}

func (r *Ring) validateShape() error {
	var current, next int
	seen := make(map[KeyID]bool, len(r.entries))
	for _, e := range r.entries {
		if e.Public.IsZero() {
			return fmt.Errorf("%w: entry without public key", ErrRingInvalid)
		}
		if seen[e.ID()] {
			return fmt.Errorf("%w: duplicate key id", ErrRingInvalid)
		}
		seen[e.ID()] = true
		switch e.Status {
		case StatusCurrent:
			current++
		case StatusNext:
			next++
		case StatusRetired, StatusRevoked:
		default:
			return fmt.Errorf("%w: unknown status", ErrRingInvalid)
		}
	}
	if current != 1 || next > 1 {
		return fmt.Errorf("%w: need exactly one current and at most one next key", ErrRingInvalid)
	}
	return nil
}

func (r *Ring) validate() error {
	if err := r.validateShape(); err != nil {
		return err
	}
	for _, e := range r.entries {
		if !signs(e.Status) {
			continue
		}
		if e.Secret == nil || !e.Secret.PublicKey().Equal(e.Public) {
			return fmt.Errorf("%w: secret key missing or not matching %s", ErrRingInvalid, e.ID())
		}
	}
	return nil
}

// signs reports whether a key of status st keeps its secret: the current
// key signs, the next key will.
func signs(st Status) bool { return st == StatusCurrent || st == StatusNext }

// Current returns the signing key. It is nil only for a public-only ring.
func (r *Ring) Current() *SecretKey {
	r.mu.RLock()
	defer r.mu.RUnlock()
	for _, e := range r.entries {
		if e.Status == StatusCurrent {
			return e.Secret
		}
	}
	return nil
}

// Lookup returns the public key and status of kid, without copying the
// ring: the per-request key lookup of a verifier that trusts this ring.
func (r *Ring) Lookup(kid KeyID) (PublicKey, Status, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	for _, e := range r.entries {
		if e.Public.ID() == kid {
			return e.Public, e.Status, true
		}
	}
	return PublicKey{}, "", false
}

// Entries returns a copy of the entries, current first, then next, retired
// (newest first) and revoked.
func (r *Ring) Entries() []RingEntry {
	r.mu.RLock()
	out := append([]RingEntry(nil), r.entries...)
	r.mu.RUnlock()
	rank := map[Status]int{StatusCurrent: 0, StatusNext: 1, StatusRetired: 2, StatusRevoked: 3}
	sort.SliceStable(out, func(i, j int) bool {
		if rank[out[i].Status] != rank[out[j].Status] {
			return rank[out[i].Status] < rank[out[j].Status]
		}
		return out[i].Created.After(out[j].Created)
	})
	return out
}

// Rotate promotes the next key to current, retires the old current key and
// creates a new next key. The retired key's secret is dropped at once (it
// never signs again; a store writes only its public key). Tokens it signed
// stay valid until they expire; publish the key set again so verifiers learn
// the change, and Prune it after DefaultRetiredKeep. A next key created
// less than MinNextAge before now is not promoted: ErrNextTooNew, and the
// ring is unchanged.
func (r *Ring) Rotate(rand io.Reader, now time.Time) error {
	fresh, err := GenerateSecretKey(rand)
	if err != nil {
		return err
	}
	now = now.UTC()
	r.mu.Lock()
	defer r.mu.Unlock()
	if next, ok := r.tooNewLocked(now); ok {
		return fmt.Errorf("%w: it was created at %s; rotate after %s, or revoke the current key if it must stop signing now",
			ErrNextTooNew, next.Format(time.RFC3339), next.Add(MinNextAge).Format(time.RFC3339))
	}
	return r.rotateLocked(fresh, now)
}

// tooNewLocked reports the creation time of a next key that may not sign
// yet at now: one added after the current key, less than MinNextAge ago.
// A next key created with the current key (NewRing) was published in the
// same key set as the current key, so any verifier that can check the
// current key's tokens knows it too.
func (r *Ring) tooNewLocked(now time.Time) (time.Time, bool) {
	var cur, next *RingEntry
	for i := range r.entries {
		switch r.entries[i].Status {
		case StatusCurrent:
			cur = &r.entries[i]
		case StatusNext:
			next = &r.entries[i]
		}
	}
	if cur == nil || next == nil || !next.Created.After(cur.Created) {
		return time.Time{}, false
	}
	return next.Created, now.Sub(next.Created) < MinNextAge
}

func (r *Ring) rotateLocked(fresh *SecretKey, now time.Time) error {
	if err := r.validate(); err != nil {
		return err
	}
	promoted := false
	for i := range r.entries {
		e := &r.entries[i]
		switch e.Status {
		case StatusCurrent:
			// Dropped, not zeroed: a request may be signing with it right
			// now through a pointer it took from Current.
			e.Status, e.Retired, e.Secret = StatusRetired, now, nil
		case StatusNext:
			e.Status, e.Activated = StatusCurrent, now
			promoted = true
		}
	}
	if !promoted {
		// No next key (should not happen in a valid ring built here): the
		// fresh key signs at once.
		r.entries = append(r.entries, RingEntry{Secret: fresh, Public: fresh.PublicKey(), Status: StatusCurrent, Created: now, Activated: now})
		return nil
	}
	r.entries = append(r.entries, RingEntry{Secret: fresh, Public: fresh.PublicKey(), Status: StatusNext, Created: now})
	return nil
}

// Revoke withdraws a key at once: its secret is destroyed and it is published
// as revoked, so verifiers refuse every token it signed. Revoking the current
// key rotates first, so the ring keeps a signing key.
func (r *Ring) Revoke(kid KeyID, rand io.Reader, now time.Time) error {
	// Generate before locking; at most one fresh key is needed.
	fresh, err := GenerateSecretKey(rand)
	if err != nil {
		return err
	}
	now = now.UTC()
	r.mu.Lock()
	defer r.mu.Unlock()
	idx := -1
	for i, e := range r.entries {
		if e.ID() == kid {
			idx = i
		}
	}
	if idx < 0 {
		return ErrKeyNotFound
	}
	switch r.entries[idx].Status {
	case StatusRevoked:
		return ErrKeyRevoked
	case StatusCurrent:
		// Keep a signing key: the next key takes over, fresh becomes next.
		if err := r.rotateLocked(fresh, now); err != nil {
			return err
		}
	case StatusNext:
		r.entries = append(r.entries, RingEntry{Secret: fresh, Public: fresh.PublicKey(), Status: StatusNext, Created: now})
	}
	e := &r.entries[idx]
	e.Status, e.Revoked, e.Secret = StatusRevoked, now, nil
	return nil
}

// Prune drops retired keys that stopped signing more than keep ago, where
// keep must be at least the longest token lifetime plus verifier leeway
// (DefaultRetiredKeep): no token they signed can still be valid. Revoked
// ids are kept. It returns the number of keys dropped.
func (r *Ring) Prune(now time.Time, keep time.Duration) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	kept := r.entries[:0]
	n := 0
	for _, e := range r.entries {
		if e.Status == StatusRetired && now.Sub(e.Retired) > keep {
			n++
			continue
		}
		kept = append(kept, e)
	}
	r.entries = kept
	return n
}

// Prunable is the number of retired keys Prune(now, keep) would drop,
// without changing the ring: a caller checks it before asking a store to
// write.
func (r *Ring) Prunable(now time.Time, keep time.Duration) int {
	r.mu.RLock()
	defer r.mu.RUnlock()
	n := 0
	for _, e := range r.entries {
		if e.Status == StatusRetired && now.Sub(e.Retired) > keep {
			n++
		}
	}
	return n
}

// Activated is when the current key started signing (zero for a ring that
// never recorded it).
func (r *Ring) Activated() time.Time {
	r.mu.RLock()
	defer r.mu.RUnlock()
	for _, e := range r.entries {
		if e.Status == StatusCurrent {
			return e.Activated
		}
	}
	return time.Time{}
}

// KeySet returns the published key-set document: current, next and retired
// public keys, and the ids of revoked keys.
func (r *Ring) KeySet(issuer string) KeySetDocument {
	doc := KeySetDocument{Issuer: issuer, Keys: []PublishedKey{}, Revoked: []KeyID{}}
	for _, e := range r.Entries() {
		if e.Status == StatusRevoked {
			doc.Revoked = append(doc.Revoked, e.ID())
			continue
		}
		doc.Keys = append(doc.Keys, PublishedKey{Kid: e.ID(), Key: e.Public.PASERK(), Status: e.Status})
	}
	return doc
}
