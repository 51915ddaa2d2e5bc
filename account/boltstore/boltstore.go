package boltstore

import (
	"bytes"
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"

	"github.com/hallpass/hallpass/account"
	"github.com/hallpass/hallpass/internal/boltcommit"
)

var (
	bucketAccounts       = []byte("accounts")
	bucketUsernames      = []byte("usernames")
	bucketDevices        = []byte("devices")
	bucketAccountDevices = []byte("account_devices")
	bucketSessions       = []byte("sessions")
	bucketHolds          = []byte("username_holds")
	bucketLinkCodes      = []byte("link_codes")
	bucketAccountLinks   = []byte("account_link_codes")
	bucketSessionRetry   = []byte("session_retry")
	allBuckets           = [][]byte{bucketAccounts, bucketUsernames, bucketDevices, bucketAccountDevices, bucketSessions,
		bucketHolds, bucketLinkCodes, bucketAccountLinks, bucketSessionRetry}
)

// Defaults for Options.
const (
	// DefaultLockTimeout is how long Open waits for another process's lock.
	DefaultLockTimeout = time.Second
	// DefaultMaxBatch bounds the write operations that share one
	// transaction. Batches form only from writes that arrive while the
	// previous commit is being flushed, so this caps a burst, not the
	// latency of a lone write.
	DefaultMaxBatch = 256
)

// Options configure Open. The zero value is useful.
type Options struct {
	// LockTimeout bounds the wait for the file lock held by another
	// process (default DefaultLockTimeout). bbolt would wait forever on 0,
	// so a negative value is refused rather than meaning "forever".
	LockTimeout time.Duration
	// MaxBatch bounds the write operations committed together, in one
	// transaction and one flush (default DefaultMaxBatch). 1 commits each
	// operation on its own, as the store did before group commit.
	MaxBatch int
}

// Store is an account.Store on one bbolt file.
type Store struct {
	db     *bolt.DB
	commit *boltcommit.Committer
}

var _ account.Store = (*Store)(nil)

// Open opens or creates the store file at path (mode 0600, fsync on every
// commit) and creates its buckets.
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
	if opts.MaxBatch < 0 {
		return nil, errors.New("boltstore: negative MaxBatch")
	}
	if opts.MaxBatch == 0 {
		opts.MaxBatch = DefaultMaxBatch
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: opts.LockTimeout, NoSync: false, NoGrowSync: false})
	if err != nil {
		if errors.Is(err, berrors.ErrTimeout) {
			return nil, fmt.Errorf("boltstore: %s is locked by another process: %w", path, err)
		}
		return nil, fmt.Errorf("boltstore: open %s: %w", path, err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		for _, b := range allBuckets {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("boltstore: init %s: %w", path, err)
	}
	commit, err := boltcommit.New(db, opts.MaxBatch)
	if err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("boltstore: %w", err)
	}
	return &Store{db: db, commit: commit}, nil
}

// Close commits the writes already queued, then closes the file, waiting
// for running transactions. Closing twice is not an error.
func (s *Store) Close() error {
	s.commit.Close()
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("boltstore: close: %w", err)
	}
	return nil
}

// Ping writes a probe record in its own transaction: a store that still
// reads but cannot commit (disk full, read-only remount) is not ready.
func (s *Store) Ping(ctx context.Context) error {
	return s.update(ctx, func(t *txn) error {
		if err := t.ensure(bucketProbe); err != nil {
			return err
		}
		return t.put(bucketProbe, "ping", []byte(time.Now().UTC().Format(time.RFC3339Nano)))
	})
}

// bucketProbe holds the record Ping writes; nothing reads it.
var bucketProbe = []byte("probe")

// errCorrupt: a stored record does not decode; never a client's fault.
var errCorrupt = errors.New("boltstore: corrupt record")

// wrap classifies a transaction error: our own sentinels pass, a closed
// database is ErrUnavailable, anything else (I/O) is ErrUnavailable too, so
// the issuer answers 503 and not 4xx.
func wrap(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, account.ErrNotFound), errors.Is(err, account.ErrExists),
		errors.Is(err, account.ErrUsernameTaken), errors.Is(err, account.ErrBanned),
		errors.Is(err, account.ErrInvalidRequest), errors.Is(err, account.ErrTooMany):
		return err
	case errors.Is(err, berrors.ErrDatabaseNotOpen):
		return fmt.Errorf("%w: boltstore: closed", account.ErrUnavailable)
	}
	return fmt.Errorf("%w: boltstore: %w", account.ErrUnavailable, err)
}

func (s *Store) view(ctx context.Context, fn func(*txn) error) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("boltstore: %w", err)
	}
	return wrap(s.db.View(func(tx *bolt.Tx) error { return fn(&txn{tx: tx}) }))
}

// update runs fn in a shared write transaction (see commit.go) and returns
// once that transaction is on disk. A caller whose context is done before
// fn's turn comes changes nothing.
func (s *Store) update(ctx context.Context, fn func(*txn) error) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("boltstore: %w", err)
	}
	return wrap(s.commit.Do(ctx, op(fn)))
}

// CreateAccount claims acc.UsernameKey and stores the account, device and
// session in one transaction.
func (s *Store) CreateAccount(ctx context.Context, acc account.Account, dev account.Device, sess account.Session) error {
	if err := account.ValidateNewAccount(acc); err != nil {
		return err
	}
	if err := account.ValidateNewDevice(&dev, &sess); err != nil {
		return err
	}
	if dev.AccountID != acc.ID {
		return invalid("device of another account")
	}
	if len(acc.RecoveryCodes) > 0 {
		acc.RecoveryCodes = cloneDigests(acc.RecoveryCodes)
	}
	return s.update(ctx, func(t *txn) error {
		if t.has(bucketAccounts, acc.ID) || t.has(bucketDevices, dev.ID) || t.has(bucketSessions, dev.ID) {
			return account.ErrExists
		}
		taken, err := nameTaken(t, acc.UsernameKey, acc.Created)
		if err != nil {
			return err
		}
		if taken {
			return account.ErrUsernameTaken
		}
		if err := t.put(bucketUsernames, acc.UsernameKey, []byte(acc.ID)); err != nil {
			return err
		}
		if err := putAccount(t, acc); err != nil {
			return err
		}
		return putDevice(t, dev, sess)
	})
}

func putDevice(t *txn, dev account.Device, sess account.Session) error {
	if err := putDeviceRecord(t, dev); err != nil {
		return err
	}
	if err := putSession(t, sess); err != nil {
		return err
	}
	return t.put(bucketAccountDevices, dev.AccountID+dev.ID, nil)
}

// AddDevice stores another device and session of an existing, not banned
// account.
func (s *Store) AddDevice(ctx context.Context, dev account.Device, sess account.Session) error {
	if err := account.ValidateNewDevice(&dev, &sess); err != nil {
		return err
	}
	return s.update(ctx, func(t *txn) error {
		acc, err := getAccount(t, dev.AccountID)
		if err != nil {
			return err
		}
		if t.has(bucketDevices, dev.ID) || t.has(bucketSessions, dev.ID) {
			return account.ErrExists
		}
		if acc.Banned {
			return account.ErrBanned
		}
		return putDevice(t, dev, sess)
	})
}

// GetAccount returns the account with id.
func (s *Store) GetAccount(ctx context.Context, id string) (account.Account, error) {
	var acc account.Account
	if !account.ValidID(account.AccountPrefix, id) {
		return acc, account.ErrNotFound
	}
	err := s.view(ctx, func(t *txn) (err error) {
		acc, err = getAccount(t, id)
		return err
	})
	return acc, err
}

// GetAccountByUsername returns the account that holds usernameKey.
func (s *Store) GetAccountByUsername(ctx context.Context, usernameKey string) (account.Account, error) {
	var acc account.Account
	if usernameKey == "" || len(usernameKey) > account.MaxField {
		return acc, account.ErrNotFound
	}
	err := s.view(ctx, func(t *txn) (err error) {
		id := t.get(bucketUsernames, usernameKey)
		if id == nil {
			return account.ErrNotFound
		}
		acc, err = getAccount(t, string(id))
		if errors.Is(err, account.ErrNotFound) {
			return fmt.Errorf("%w: username without account", errCorrupt)
		}
		return err
	})
	return acc, err
}

// GetDevice returns the device with id.
func (s *Store) GetDevice(ctx context.Context, id string) (account.Device, error) {
	var dev account.Device
	if !account.ValidID(account.DevicePrefix, id) {
		return dev, account.ErrNotFound
	}
	err := s.view(ctx, func(t *txn) (err error) {
		dev, err = getDevice(t, id)
		return err
	})
	return dev, err
}

// GetCaller returns the account and its device, read in one transaction.
func (s *Store) GetCaller(ctx context.Context, accountID, deviceID string) (acc account.Account, dev account.Device, err error) {
	if !account.ValidID(account.AccountPrefix, accountID) || !account.ValidID(account.DevicePrefix, deviceID) {
		return acc, dev, account.ErrNotFound
	}
	err = s.view(ctx, func(t *txn) (err error) {
		if dev, err = getDevice(t, deviceID); err != nil {
			return err
		}
		if dev.AccountID != accountID {
			return account.ErrNotFound
		}
		acc, err = getAccount(t, accountID)
		return err
	})
	if err != nil {
		return account.Account{}, account.Device{}, err
	}
	return acc, dev, nil
}

// ListDevices returns every device of the account, ordered by Created then
// ID.
func (s *Store) ListDevices(ctx context.Context, accountID string) ([]account.Device, error) {
	if !account.ValidID(account.AccountPrefix, accountID) {
		return nil, account.ErrNotFound
	}
	var devs []account.Device
	err := s.view(ctx, func(t *txn) error {
		if !t.has(bucketAccounts, accountID) {
			return account.ErrNotFound
		}
		var err error
		t.scan(bucketAccountDevices, accountID, func(id, _ []byte) bool {
			var dev account.Device
			if dev, err = getDevice(t, string(id)); err != nil {
				if errors.Is(err, account.ErrNotFound) {
					err = fmt.Errorf("%w: device index without device", errCorrupt)
				}
				return false
			}
			devs = append(devs, dev)
			return true
		})
		return err
	})
	if err != nil {
		return nil, err
	}
	slices.SortFunc(devs, func(a, b account.Device) int {
		if c := a.Created.Compare(b.Created); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	return devs, nil
}

// GetSession returns the session of the device.
func (s *Store) GetSession(ctx context.Context, deviceID string) (account.Session, error) {
	var sess account.Session
	if !account.ValidID(account.DevicePrefix, deviceID) {
		return sess, account.ErrNotFound
	}
	err := s.view(ctx, func(t *txn) (err error) {
		sess, err = getSession(t, deviceID)
		return err
	})
	return sess, err
}

// Refresh applies the single-use rule in one transaction.
func (s *Store) Refresh(ctx context.Context, req account.RefreshRequest) (account.RefreshResult, error) {
	var res account.RefreshResult
	if !account.ValidID(account.DevicePrefix, req.DeviceID) {
		return res, account.ErrNotFound
	}
	if err := account.ValidateRefresh(req); err != nil {
		return res, err
	}
	err := s.update(ctx, func(t *txn) error {
		sess, err := getSession(t, req.DeviceID)
		if err != nil {
			return err
		}
		dev, err := getDevice(t, req.DeviceID)
		if err != nil {
			return notFoundIsCorrupt(err)
		}
		acc, err := getAccount(t, sess.AccountID)
		if err != nil {
			return notFoundIsCorrupt(err)
		}
		now := req.Now
		switch {
		case !sess.Ended.IsZero(), !dev.Active(), acc.Banned, !now.Before(sess.Expires),
			req.Idle > 0 && now.Sub(sess.LastUsed) > req.Idle:
			res = account.RefreshResult{Outcome: account.RefreshRejected}
			return nil
		case req.Counter == sess.Counter:
			sess.Counter++
			sess.Successor = bytes.Clone(req.Successor)
			sess.RetryDigest = bytes.Clone(req.RetryDigest)
			sess.GraceUntil = now.Add(req.Grace)
			sess.LastUsed, dev.LastUsed = now, now
			res = account.RefreshResult{Outcome: account.RefreshAdvanced, Successor: bytes.Clone(req.Successor)}
		case req.Counter+1 == sess.Counter && now.Before(sess.GraceUntil):
			res = account.RefreshResult{Outcome: account.RefreshGrace, Successor: sess.Successor}
			return nil
		case req.Counter+1 == sess.Counter && sameRetry(sess.RetryDigest, req.RetryDigest):
			sess.LastUsed, dev.LastUsed = now, now
			res = account.RefreshResult{Outcome: account.RefreshRetried, Successor: sess.Successor}
		default:
			endSession(&sess, &dev, now)
			res = account.RefreshResult{Outcome: account.RefreshReused}
		}
		if err := putSession(t, sess); err != nil {
			return err
		}
		return putDeviceRecord(t, dev)
	})
	if err != nil {
		return account.RefreshResult{}, err
	}
	return res, nil
}

// sameRetry reports whether a request's retry digest matches the stored
// one, in constant time; no digest on either side never matches.
func sameRetry(stored, presented []byte) bool {
	return len(stored) == account.RetryDigestSize && len(presented) == account.RetryDigestSize &&
		subtle.ConstantTimeCompare(stored, presented) == 1
}

func notFoundIsCorrupt(err error) error {
	if errors.Is(err, account.ErrNotFound) {
		return fmt.Errorf("%w: session without device or account", errCorrupt)
	}
	return err
}

// endSession ends a live session at `at` and drops its successor; the first
// end time stays.
func endSession(sess *account.Session, dev *account.Device, at time.Time) {
	if sess.Ended.IsZero() {
		sess.Ended = at
		sess.Successor = nil
		sess.RetryDigest = nil
		sess.GraceUntil = time.Time{}
	}
	if dev.Revoked.IsZero() {
		dev.Revoked = at
	}
}

// EndSession ends the device's session and revokes the device.
func (s *Store) EndSession(ctx context.Context, deviceID string, at time.Time) error {
	if !account.ValidID(account.DevicePrefix, deviceID) {
		return account.ErrNotFound
	}
	if at.IsZero() {
		return invalid("end time")
	}
	return s.update(ctx, func(t *txn) error {
		sess, err := getSession(t, deviceID)
		if err != nil {
			return err
		}
		dev, err := getDevice(t, deviceID)
		if err != nil {
			return notFoundIsCorrupt(err)
		}
		if !sess.Ended.IsZero() && !dev.Revoked.IsZero() {
			return nil
		}
		endSession(&sess, &dev, at)
		if err := putSession(t, sess); err != nil {
			return err
		}
		return putDeviceRecord(t, dev)
	})
}

// SetBanned bans or unbans the account.
func (s *Store) SetBanned(ctx context.Context, accountID string, banned bool) error {
	if !account.ValidID(account.AccountPrefix, accountID) {
		return account.ErrNotFound
	}
	return s.update(ctx, func(t *txn) error {
		acc, err := getAccount(t, accountID)
		if err != nil {
			return err
		}
		if acc.Banned == banned {
			return nil
		}
		acc.Banned = banned
		return putAccount(t, acc)
	})
}

func invalid(what string) error { return fmt.Errorf("%w: %s", account.ErrInvalidRequest, what) }
