package boltstore

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"

	"github.com/hallpass/hallpass/account"
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
	allBuckets           = [][]byte{bucketAccounts, bucketUsernames, bucketDevices, bucketAccountDevices, bucketSessions,
		bucketHolds, bucketLinkCodes, bucketAccountLinks}
)

// DefaultLockTimeout is how long Open waits for another process's lock.
const DefaultLockTimeout = time.Second

// Options configure Open. The zero value is useful.
type Options struct {
	// LockTimeout bounds the wait for the file lock held by another
	// process (default DefaultLockTimeout). bbolt would wait forever on 0,
	// so a negative value is refused rather than meaning "forever".
	LockTimeout time.Duration
}

// Store is an account.Store on one bbolt file.
type Store struct {
	db *bolt.DB
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
	return &Store{db: db}, nil
}

// Close closes the file, waiting for running transactions. Closing twice is
// not an error.
func (s *Store) Close() error {
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("boltstore: close: %w", err)
	}
	return nil
}

// Ping reports whether the file is open.
// Ping writes a probe record in its own transaction: a store that still
// reads but cannot commit (disk full, read-only remount) is not ready.
func (s *Store) Ping(ctx context.Context) error {
	return s.update(ctx, func(tx *bolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists(bucketProbe)
		if err != nil {
			return err
		}
		return b.Put([]byte("ping"), []byte(time.Now().UTC().Format(time.RFC3339Nano)))
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

func (s *Store) view(ctx context.Context, fn func(*bolt.Tx) error) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("boltstore: %w", err)
	}
	return wrap(s.db.View(fn))
}

func (s *Store) update(ctx context.Context, fn func(*bolt.Tx) error) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("boltstore: %w", err)
	}
	return wrap(s.db.Update(func(tx *bolt.Tx) error {
		// The deadline travels into the transaction: a caller that gave
		// up while this waited for the writer lock (its request already
		// answered 503, "nothing changed") changes nothing.
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("boltstore: abandoned before commit: %w", err)
		}
		return fn(tx)
	}))
}

func get[T any](tx *bolt.Tx, bucket []byte, key string) (T, error) {
	var v T
	raw := tx.Bucket(bucket).Get([]byte(key))
	if raw == nil {
		return v, account.ErrNotFound
	}
	if err := json.Unmarshal(raw, &v); err != nil {
		return v, fmt.Errorf("%w in %s", errCorrupt, bucket)
	}
	return v, nil
}

func put(tx *bolt.Tx, bucket []byte, key string, v any) error {
	raw, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return tx.Bucket(bucket).Put([]byte(key), raw)
}

func exists(tx *bolt.Tx, bucket []byte, key string) bool {
	return tx.Bucket(bucket).Get([]byte(key)) != nil
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
	return s.update(ctx, func(tx *bolt.Tx) error {
		if exists(tx, bucketAccounts, acc.ID) || exists(tx, bucketDevices, dev.ID) || exists(tx, bucketSessions, dev.ID) {
			return account.ErrExists
		}
		taken, err := nameTaken(tx, acc.UsernameKey, acc.Created)
		if err != nil {
			return err
		}
		if taken {
			return account.ErrUsernameTaken
		}
		if err := tx.Bucket(bucketUsernames).Put([]byte(acc.UsernameKey), []byte(acc.ID)); err != nil {
			return err
		}
		if err := put(tx, bucketAccounts, acc.ID, acc); err != nil {
			return err
		}
		return putDevice(tx, dev, sess)
	})
}

func putDevice(tx *bolt.Tx, dev account.Device, sess account.Session) error {
	if err := put(tx, bucketDevices, dev.ID, dev); err != nil {
		return err
	}
	if err := put(tx, bucketSessions, dev.ID, sess); err != nil {
		return err
	}
	return tx.Bucket(bucketAccountDevices).Put([]byte(dev.AccountID+dev.ID), nil)
}

// AddDevice stores another device and session of an existing, not banned
// account.
func (s *Store) AddDevice(ctx context.Context, dev account.Device, sess account.Session) error {
	if err := account.ValidateNewDevice(&dev, &sess); err != nil {
		return err
	}
	return s.update(ctx, func(tx *bolt.Tx) error {
		acc, err := get[account.Account](tx, bucketAccounts, dev.AccountID)
		if err != nil {
			return err
		}
		if exists(tx, bucketDevices, dev.ID) || exists(tx, bucketSessions, dev.ID) {
			return account.ErrExists
		}
		if acc.Banned {
			return account.ErrBanned
		}
		return putDevice(tx, dev, sess)
	})
}

// GetAccount returns the account with id.
func (s *Store) GetAccount(ctx context.Context, id string) (account.Account, error) {
	var acc account.Account
	if !account.ValidID(account.AccountPrefix, id) {
		return acc, account.ErrNotFound
	}
	err := s.view(ctx, func(tx *bolt.Tx) (err error) {
		acc, err = get[account.Account](tx, bucketAccounts, id)
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
	err := s.view(ctx, func(tx *bolt.Tx) (err error) {
		id := tx.Bucket(bucketUsernames).Get([]byte(usernameKey))
		if id == nil {
			return account.ErrNotFound
		}
		acc, err = get[account.Account](tx, bucketAccounts, string(id))
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
	err := s.view(ctx, func(tx *bolt.Tx) (err error) {
		dev, err = get[account.Device](tx, bucketDevices, id)
		return err
	})
	return dev, err
}

// ListDevices returns every device of the account, ordered by Created then
// ID.
func (s *Store) ListDevices(ctx context.Context, accountID string) ([]account.Device, error) {
	if !account.ValidID(account.AccountPrefix, accountID) {
		return nil, account.ErrNotFound
	}
	var devs []account.Device
	err := s.view(ctx, func(tx *bolt.Tx) error {
		if !exists(tx, bucketAccounts, accountID) {
			return account.ErrNotFound
		}
		prefix := []byte(accountID)
		c := tx.Bucket(bucketAccountDevices).Cursor()
		for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
			dev, err := get[account.Device](tx, bucketDevices, string(k[len(prefix):]))
			if err != nil {
				if errors.Is(err, account.ErrNotFound) {
					return fmt.Errorf("%w: device index without device", errCorrupt)
				}
				return err
			}
			devs = append(devs, dev)
		}
		return nil
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
	err := s.view(ctx, func(tx *bolt.Tx) (err error) {
		sess, err = get[account.Session](tx, bucketSessions, deviceID)
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
	err := s.update(ctx, func(tx *bolt.Tx) error {
		sess, err := get[account.Session](tx, bucketSessions, req.DeviceID)
		if err != nil {
			return err
		}
		dev, err := get[account.Device](tx, bucketDevices, req.DeviceID)
		if err != nil {
			return notFoundIsCorrupt(err)
		}
		acc, err := get[account.Account](tx, bucketAccounts, sess.AccountID)
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
			sess.GraceUntil = now.Add(req.Grace)
			sess.LastUsed, dev.LastUsed = now, now
			res = account.RefreshResult{Outcome: account.RefreshAdvanced, Successor: bytes.Clone(req.Successor)}
		case req.Counter+1 == sess.Counter && now.Before(sess.GraceUntil):
			res = account.RefreshResult{Outcome: account.RefreshGrace, Successor: sess.Successor}
			return nil
		default:
			endSession(&sess, &dev, now)
			res = account.RefreshResult{Outcome: account.RefreshReused}
		}
		if err := put(tx, bucketSessions, sess.DeviceID, sess); err != nil {
			return err
		}
		return put(tx, bucketDevices, dev.ID, dev)
	})
	if err != nil {
		return account.RefreshResult{}, err
	}
	return res, nil
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
	return s.update(ctx, func(tx *bolt.Tx) error {
		sess, err := get[account.Session](tx, bucketSessions, deviceID)
		if err != nil {
			return err
		}
		dev, err := get[account.Device](tx, bucketDevices, deviceID)
		if err != nil {
			return notFoundIsCorrupt(err)
		}
		if !sess.Ended.IsZero() && !dev.Revoked.IsZero() {
			return nil
		}
		endSession(&sess, &dev, at)
		if err := put(tx, bucketSessions, deviceID, sess); err != nil {
			return err
		}
		return put(tx, bucketDevices, deviceID, dev)
	})
}

// SetBanned bans or unbans the account.
func (s *Store) SetBanned(ctx context.Context, accountID string, banned bool) error {
	if !account.ValidID(account.AccountPrefix, accountID) {
		return account.ErrNotFound
	}
	return s.update(ctx, func(tx *bolt.Tx) error {
		acc, err := get[account.Account](tx, bucketAccounts, accountID)
		if err != nil {
			return err
		}
		if acc.Banned == banned {
			return nil
		}
		acc.Banned = banned
		return put(tx, bucketAccounts, accountID, acc)
	})
}

func invalid(what string) error { return fmt.Errorf("%w: %s", account.ErrInvalidRequest, what) }
