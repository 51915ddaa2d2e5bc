package boltstore

import (
	"context"
	"encoding/json"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/hallpass/hallpass/account"
)

// HoldWriter takes the database's writer lock until release is called, as
// a stalled disk holds a commit.
func HoldWriter(s *Store) (release func()) {
	held, done := make(chan struct{}), make(chan struct{})
	stop := make(chan struct{})
	go func() {
		defer close(done)
		_ = s.db.Update(func(*bolt.Tx) error {
			close(held)
			<-stop
			return nil
		})
	}()
	<-held
	return func() { close(stop); <-done }
}

// Queued is the number of write operations waiting for the committer.
func Queued(s *Store) int {
	return s.commit.Queued()
}

// Taken is the number of write operations the committer has taken from
// its queue.
func Taken(s *Store) uint64 { return s.commit.Taken() }

// Commits is the number of transactions the committer has run.
func Commits(s *Store) uint64 { return s.commit.Commits() }

// WriteThen is a write operation that stores key in the probe bucket and
// then returns fail, or panics with it when panics is set: an operation
// that fails after writing.
func WriteThen(ctx context.Context, s *Store, key string, fail error, panics bool) error {
	return s.update(ctx, func(t *txn) error {
		if err := t.ensure(bucketProbe); err != nil {
			return err
		}
		if err := t.put(bucketProbe, key, []byte("x")); err != nil {
			return err
		}
		if panics {
			panic(fail)
		}
		return fail
	})
}

// HasProbe reports whether key is in the probe bucket.
func HasProbe(s *Store, key string) bool {
	found := false
	_ = s.db.View(func(tx *bolt.Tx) error {
		if b := tx.Bucket(bucketProbe); b != nil {
			found = b.Get([]byte(key)) != nil
		}
		return nil
	})
	return found
}

// PutLegacyLink stores a link code as stores did before codes recorded the
// device that made them: a JSON record with no device_id.
func PutLegacyLink(ctx context.Context, s *Store, accountID string, digest []byte, created, expires time.Time) error {
	raw, err := json.Marshal(struct {
		AccountID string    `json:"account_id"`
		Created   time.Time `json:"created"`
		Expires   time.Time `json:"expires"`
	}{accountID, created, expires})
	if err != nil {
		return err
	}
	return s.update(ctx, func(t *txn) error {
		if err := t.put(bucketLinkCodes, string(digest), raw); err != nil {
			return err
		}
		return t.put(bucketAccountLinks, accountID+string(digest), nil)
	})
}

// PutHolds holds each username key of keys until `until`, as a rename or
// a deletion leaves it.
func PutHolds(s *Store, until time.Time, keys ...string) error {
	return s.db.Update(func(tx *bolt.Tx) error {
		t := &txn{tx: tx}
		for _, k := range keys {
			if err := putJSON(t, bucketHolds, holdKey(k), holdRecord{Until: until}); err != nil {
				return err
			}
		}
		return nil
	})
}

// SweepHolds runs the sweep that a release of usernameKey at now runs, in
// a transaction of its own, and returns how many holds it read.
func SweepHolds(s *Store, usernameKey string, now time.Time) (visited int, err error) {
	err = s.db.Update(func(tx *bolt.Tx) error {
		visited, err = sweepHolds(&txn{tx: tx}, holdKey(usernameKey), now)
		return err
	})
	return visited, err
}

// Holds is the number of holds stored, expired or not.
func Holds(s *Store) (n int) {
	_ = s.db.View(func(tx *bolt.Tx) error {
		n = tx.Bucket(bucketHolds).Stats().KeyN
		return nil
	})
	return n
}

// SweepBatch is how many holds one release reads at most.
const SweepBatch = sweepBatch

// LinkExpiresAsBefore reads the link record of digest as a binary from
// before redeemed_by did: only its expiry, the one field that decides
// whether such a binary redeems the code.
func LinkExpiresAsBefore(ctx context.Context, s *Store, digest []byte) (time.Time, error) {
	var out struct {
		Expires time.Time `json:"expires"`
	}
	err := s.view(ctx, func(t *txn) error {
		raw := t.get(bucketLinkCodes, string(digest))
		if raw == nil {
			return account.ErrNotFound
		}
		return json.Unmarshal(raw, &out)
	})
	return out.Expires, err
}
