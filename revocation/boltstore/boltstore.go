package boltstore

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"

	"github.com/hallpass/hallpass/internal/boltcommit"
	"github.com/hallpass/hallpass/revocation"
)

var (
	bucketEntries = []byte("revocation_entries") // Entry.Key() -> entry JSON
	bucketExpiry  = []byte("revocation_expiry")  // expires µs (8 bytes BE) + Entry.Key() -> nil
	bucketEvents  = []byte("revocation_events")  // seq (8 bytes BE) -> entry JSON; bucket sequence = last seq
	bucketMeta    = []byte("revocation_meta")
	keyTrimmed    = []byte("trimmed") // highest seq deleted by trimming
	allBuckets    = [][]byte{bucketEntries, bucketExpiry, bucketEvents, bucketMeta}
)

// Defaults for Options.
const (
	DefaultMaxEvents   = 100_000
	DefaultLockTimeout = time.Second
	// DefaultMaxBatch bounds the Adds that share one transaction.
	DefaultMaxBatch = 256
	// sweepBatch bounds the expired entries dropped per Add.
	sweepBatch = 256
)

// Options configure Open and New. The zero value is useful.
type Options struct {
	// MaxEvents is the stream's retention: the number of latest events
	// kept (default DefaultMaxEvents). A mirror further behind reloads the
	// snapshot.
	MaxEvents int
	// Now is the clock used to drop expired entries (default time.Now).
	Now func() time.Time
	// LockTimeout bounds Open's wait for another process's lock (default
	// DefaultLockTimeout).
	LockTimeout time.Duration
	// NoSync skips fsync on commit. Tests only: a crash can lose
	// revocations.
	NoSync bool
	// MaxBatch bounds the Adds committed together, in one transaction and
	// one flush (default DefaultMaxBatch); 1 commits each on its own.
	MaxBatch int
}

// Store is a revocation.Store on one bbolt database, for a single node.
type Store struct {
	db        *bolt.DB
	own       bool
	commit    *boltcommit.Committer
	maxEvents uint64
	now       func() time.Time

	mu     sync.Mutex
	notify chan struct{} // closed and replaced on every append
}

var _ revocation.Store = (*Store)(nil)

// Open opens or creates the database file at path (mode 0600) and its
// buckets. Close closes it.
func Open(path string, opts Options) (*Store, error) {
	if path == "" {
		return nil, errors.New("boltstore: empty path")
	}
	if opts.LockTimeout < 0 {
		return nil, errors.New("boltstore: negative LockTimeout")
	}
	if opts.LockTimeout == 0 {
		opts.LockTimeout = DefaultLockTimeout
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: opts.LockTimeout, NoSync: opts.NoSync})
	if err != nil {
		if errors.Is(err, berrors.ErrTimeout) {
			return nil, fmt.Errorf("boltstore: %s is locked by another process: %w", path, err)
		}
		return nil, fmt.Errorf("boltstore: open %s: %w", path, err)
	}
	s, err := New(db, opts)
	if err != nil {
		_ = db.Close()
		return nil, err
	}
	s.own = true
	return s, nil
}

// New returns a Store in db (its own buckets, prefixed "revocation_"), so
// that one file can hold other stores too. The caller owns db unless the
// Store came from Open, and closes the Store before db. Only one Store per db: Follow is woken by Adds made
// through the same Store (and otherwise polls).
func New(db *bolt.DB, opts Options) (*Store, error) {
	if db == nil {
		return nil, errors.New("boltstore: nil db")
	}
	if opts.MaxEvents < 0 {
		return nil, errors.New("boltstore: negative MaxEvents")
	}
	if opts.MaxEvents == 0 {
		opts.MaxEvents = DefaultMaxEvents
	}
	if opts.MaxBatch < 0 {
		return nil, errors.New("boltstore: negative MaxBatch")
	}
	if opts.MaxBatch == 0 {
		opts.MaxBatch = DefaultMaxBatch
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	err := db.Update(func(tx *bolt.Tx) error {
		for _, b := range allBuckets {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("boltstore: init: %w", err)
	}
	commit, err := boltcommit.New(db, opts.MaxBatch)
	if err != nil {
		return nil, fmt.Errorf("boltstore: %w", err)
	}
	return &Store{db: db, maxEvents: uint64(opts.MaxEvents), now: opts.Now, notify: make(chan struct{}),
		commit: commit}, nil
}

// Close commits the Adds already queued and stops the Store's committer
// goroutine, then closes the database if Open opened it. A Store from New
// must be closed too, before its database.
func (s *Store) Close() error {
	s.commit.Close()
	if !s.own {
		return nil
	}
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("boltstore: close: %w", err)
	}
	return nil
}

// Ping reports whether the database is open.
func (s *Store) Ping(ctx context.Context) error {
	if err := ctx.Err(); err != nil {
		return unavailable(err)
	}
	return unavailable(s.db.View(func(*bolt.Tx) error { return nil }))
}

func unavailable(err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("%w: boltstore: %w", revocation.ErrUnavailable, err)
}

var errCorrupt = errors.New("boltstore: corrupt record")

func u64(v uint64) []byte { return binary.BigEndian.AppendUint64(nil, v) }

func expiryKey(e revocation.Entry) []byte {
	return append(u64(uint64(e.Expires.UnixMicro())), e.Key()...)
}

// normalize puts e's times in UTC with microsecond precision.
func normalize(e revocation.Entry) revocation.Entry {
	e.Before = revocation.CeilMicro(e.Before).UTC()
	e.Created = e.Created.Truncate(time.Microsecond).UTC()
	e.Expires = revocation.CeilMicro(e.Expires).UTC()
	if e.Expires.IsZero() {
		e.Expires = time.Time{}
	}
	return e
}

// Add implements revocation.Store.
func (s *Store) Add(ctx context.Context, e revocation.Entry) (revocation.Entry, error) {
	if err := e.Validate(); err != nil {
		return revocation.Entry{}, err
	}
	if err := ctx.Err(); err != nil {
		return revocation.Entry{}, unavailable(err)
	}
	e = normalize(e)
	val, err := json.Marshal(e)
	if err != nil {
		return revocation.Entry{}, err
	}
	now := s.now()
	var out revocation.Entry
	var appended bool
	// Run once per transaction that carries this Add: a rolled back batch
	// runs it again from the start.
	err = s.commit.Do(ctx, boltcommit.MayHaveWritten(func(tx *bolt.Tx) error {
		var err error
		out, appended, err = s.put(tx, e, val, now)
		return err
	}))
	if err != nil {
		if errors.Is(err, errCorrupt) {
			return revocation.Entry{}, err
		}
		return revocation.Entry{}, unavailable(err)
	}
	if appended {
		s.wake()
	}
	return out, nil
}

// put is Add's transaction body: it returns the entry in force and whether e (as val) was appended.
func (s *Store) put(tx *bolt.Tx, e revocation.Entry, val []byte, now time.Time) (revocation.Entry, bool, error) {
	entries, expiry, events, meta := tx.Bucket(bucketEntries), tx.Bucket(bucketExpiry), tx.Bucket(bucketEvents), tx.Bucket(bucketMeta)
	if err := sweep(entries, expiry, now, sweepBatch); err != nil {
		return e, false, err
	}
	key := []byte(e.Key())
	old, keep, err := supersede(entries, expiry, key, e)
	if err != nil {
		return e, false, err
	}
	if keep {
		return old, false, nil
	}
	if err := entries.Put(key, val); err != nil {
		return e, false, err
	}
	if !e.Expires.IsZero() {
		if err := expiry.Put(expiryKey(e), nil); err != nil {
			return e, false, err
		}
	}
	seq, err := events.NextSequence()
	if err != nil {
		return e, false, err
	}
	if err := events.Put(u64(seq), val); err != nil {
		return e, false, err
	}
	return e, true, trim(events, meta, seq, s.maxEvents)
}

// supersede returns the entry under key, keep if it is not older than e, else drops its expiry record.
func supersede(entries, expiry *bolt.Bucket, key []byte, e revocation.Entry) (revocation.Entry, bool, error) {
	v := entries.Get(key)
	if v == nil {
		return revocation.Entry{}, false, nil
	}
	var old revocation.Entry
	if err := json.Unmarshal(v, &old); err != nil {
		return revocation.Entry{}, false, errCorrupt
	}
	if !old.Before.Before(e.Before) {
		return old, true, nil
	}
	if !old.Expires.IsZero() {
		if err := expiry.Delete(expiryKey(old)); err != nil {
			return revocation.Entry{}, false, err
		}
	}
	return old, false, nil
}

// wake closes and replaces notify, waking every Follow waiting on this Store.
func (s *Store) wake() {
	s.mu.Lock()
	close(s.notify)
	s.notify = make(chan struct{})
	s.mu.Unlock()
}

// sweep drops up to limit entries expired at now (limit < 0: all).
func sweep(entries, expiry *bolt.Bucket, now time.Time, limit int) error {
	end := u64(uint64(now.UnixMicro()))
	var dead [][]byte
	c := expiry.Cursor()
	for k, _ := c.First(); k != nil && bytes.Compare(k[:8], end) <= 0 && (limit < 0 || len(dead) < limit); k, _ = c.Next() {
		dead = append(dead, bytes.Clone(k))
	}
	for _, k := range dead {
		if err := expiry.Delete(k); err != nil {
			return err
		}
		if err := entries.Delete(k[8:]); err != nil {
			return err
		}
	}
	return nil
}

// trim keeps the latest max events and records the highest trimmed seq.
func trim(events, meta *bolt.Bucket, last, max uint64) error {
	if last <= max {
		return nil
	}
	trimmed := uint64(0)
	if v := meta.Get(keyTrimmed); len(v) == 8 {
		trimmed = binary.BigEndian.Uint64(v)
	}
	upTo := last - max
	if upTo <= trimmed {
		return nil
	}
	for seq := trimmed + 1; seq <= upTo; seq++ {
		if err := events.Delete(u64(seq)); err != nil {
			return err
		}
	}
	return meta.Put(keyTrimmed, u64(upTo))
}

// Snapshot implements revocation.Store: the live entries and the last event
// sequence, read in one transaction.
func (s *Store) Snapshot(ctx context.Context) ([]revocation.Entry, revocation.Cursor, error) {
	if err := ctx.Err(); err != nil {
		return nil, "", unavailable(err)
	}
	now := s.now()
	var out []revocation.Entry
	var last uint64
	err := s.db.View(func(tx *bolt.Tx) error {
		last = tx.Bucket(bucketEvents).Sequence()
		b := tx.Bucket(bucketEntries)
		out = make([]revocation.Entry, 0, b.Stats().KeyN)
		return b.ForEach(func(_, v []byte) error {
			var e revocation.Entry
			if err := json.Unmarshal(v, &e); err != nil {
				return errCorrupt
			}
			if !e.Expired(now) {
				out = append(out, e)
			}
			return nil
		})
	})
	if err != nil {
		if errors.Is(err, errCorrupt) {
			return nil, "", err
		}
		return nil, "", unavailable(err)
	}
	return out, revocation.Cursor(strconv.FormatUint(last, 10)), nil
}

func parseCursor(c revocation.Cursor) (uint64, error) {
	if c == "" {
		return 0, nil
	}
	v, err := strconv.ParseUint(string(c), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%w: malformed cursor", revocation.ErrCursorGone)
	}
	return v, nil
}

// Follow implements revocation.Store. It waits for an Add through this
// Store, polling every 100 ms in case another writer shares the file.
func (s *Store) Follow(ctx context.Context, cursor revocation.Cursor, max int, block time.Duration) ([]revocation.Entry, revocation.Cursor, error) {
	from, err := parseCursor(cursor)
	if err != nil {
		return nil, cursor, err
	}
	if max <= 0 {
		max = revocation.DefaultBatch
	}
	deadline := time.Now().Add(block)
	for {
		if err := ctx.Err(); err != nil {
			return nil, cursor, unavailable(err)
		}
		s.mu.Lock()
		wake := s.notify
		s.mu.Unlock()
		out, next, err := s.read(from, max)
		if err != nil || len(out) > 0 {
			return out, revocation.Cursor(strconv.FormatUint(next, 10)), err
		}
		wait := time.Until(deadline)
		if wait <= 0 {
			return nil, cursor, nil
		}
		t := time.NewTimer(min(wait, 100*time.Millisecond))
		select {
		case <-ctx.Done():
		case <-wake:
		case <-t.C:
		}
		t.Stop()
	}
}

func (s *Store) read(from uint64, max int) ([]revocation.Entry, uint64, error) {
	var out []revocation.Entry
	next := from
	err := s.db.View(func(tx *bolt.Tx) error {
		events := tx.Bucket(bucketEvents)
		last := events.Sequence()
		var trimmed uint64
		if v := tx.Bucket(bucketMeta).Get(keyTrimmed); len(v) == 8 {
			trimmed = binary.BigEndian.Uint64(v)
		}
		if from < trimmed || from > last {
			return revocation.ErrCursorGone
		}
		c := events.Cursor()
		for k, v := c.Seek(u64(from + 1)); k != nil && len(out) < max; k, v = c.Next() {
			var e revocation.Entry
			if err := json.Unmarshal(v, &e); err != nil {
				return errCorrupt
			}
			out = append(out, e)
			next = binary.BigEndian.Uint64(k)
		}
		return nil
	})
	switch {
	case err == nil:
		return out, next, nil
	case errors.Is(err, revocation.ErrCursorGone), errors.Is(err, errCorrupt):
		return nil, from, err
	}
	return nil, from, unavailable(err)
}

// Len is the number of stored entries, expired ones not yet swept included.
func (s *Store) Len() int {
	n := 0
	_ = s.db.View(func(tx *bolt.Tx) error {
		n = tx.Bucket(bucketEntries).Stats().KeyN
		return nil
	})
	return n
}
