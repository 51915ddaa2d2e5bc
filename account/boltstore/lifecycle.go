package boltstore

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"slices"
	"time"

	"github.com/hallpass/hallpass/account"
)

// holdRecord is a username key held after a rename or a deletion. It is
// stored under the SHA-256 of the key, so a held name is not kept in clear.
type holdRecord struct {
	Until time.Time `json:"until"`
}

// linkRecord is a link code, stored under its digest. DeviceID is the
// device that made it; records stored before it was recorded have none
// (and are good until they expire, ten minutes at most). RedeemedBy is
// the device that redeemed it: a redeemed record is no longer live (it
// neither counts nor redeems again) and stays until RetryUntil, when the
// code would have expired, so that a lost answer can be retried
// (RedeemedLinkCode). Its Expires is set to the redemption time: a binary
// from before redeemed_by (a rollback) reads the record as an expired
// code, never as a live one.
type linkRecord struct {
	AccountID  string    `json:"account_id"`
	DeviceID   string    `json:"device_id,omitempty"`
	Created    time.Time `json:"created"`
	Expires    time.Time `json:"expires"`
	RedeemedBy string    `json:"redeemed_by,omitempty"`
	RetryUntil time.Time `json:"retry_until,omitzero"`
}

// kept reports whether the record is still of use at now: a live code, or
// a redeemed one whose retry time lasts.
func (r linkRecord) kept(now time.Time) bool {
	if r.RedeemedBy != "" {
		return now.Before(r.RetryUntil)
	}
	return now.Before(r.Expires)
}

// activeDevice checks that deviceID is a device of the account whose
// session has not ended and which is not revoked: ErrNotFound when it is
// not the account's, ErrSessionEnded when it is no longer active.
func activeDevice(t *txn, accountID, deviceID string) error {
	dev, err := getDevice(t, deviceID)
	if err != nil {
		return err
	}
	if dev.AccountID != accountID {
		return account.ErrNotFound
	}
	sess, err := getSession(t, deviceID)
	if err != nil {
		return notFoundIsCorrupt(err)
	}
	if !dev.Active() || !sess.Ended.IsZero() {
		return account.ErrSessionEnded
	}
	return nil
}

// sweepBatch bounds the holds one release reads to drop the expired ones.
const sweepBatch = 256

func holdKey(usernameKey string) string {
	h := sha256.Sum256([]byte(usernameKey))
	return hex.EncodeToString(h[:])
}

// suffixes returns copies of the keys of bucket under prefix, minus the
// prefix: collected first, because deleting under a live cursor skips keys.
func suffixes(t *txn, bucket []byte, prefix string) []string {
	var out []string
	t.scan(bucket, prefix, func(suffix, _ []byte) bool {
		out = append(out, string(suffix))
		return true
	})
	return out
}

// nameTaken reports whether usernameKey is registered or held at now. An
// expired hold found on the way is dropped.
func nameTaken(t *txn, usernameKey string, now time.Time) (bool, error) {
	if t.has(bucketUsernames, usernameKey) {
		return true, nil
	}
	h, err := getJSON[holdRecord](t, bucketHolds, holdKey(usernameKey))
	switch {
	case errors.Is(err, account.ErrNotFound):
		return false, nil
	case err != nil:
		return false, err
	case now.Before(h.Until):
		return true, nil
	}
	return false, t.del(bucketHolds, holdKey(usernameKey))
}

// releaseName unregisters usernameKey and holds it until `until`, then
// sweeps the holds that follow its own (sweepHolds) so that expired ones
// do not pile up.
func releaseName(t *txn, usernameKey string, now, until time.Time) error {
	if err := t.del(bucketUsernames, usernameKey); err != nil {
		return err
	}
	if until.After(now) {
		if err := putJSON(t, bucketHolds, holdKey(usernameKey), holdRecord{Until: until}); err != nil {
			return err
		}
	}
	_, err := sweepHolds(t, holdKey(usernameKey), now)
	return err
}

// sweepHolds drops the expired holds among at most sweepBatch holds from
// the key from on, wrapping around to the first, and returns how many it
// read. A release then costs the same however many holds are live: a
// sweep that read the whole bucket until it had found sweepBatch expired
// ones read every hold when few had expired, and each rename or deletion
// held the one writer for that long (an account renaming in a loop adds a
// hold each time). Hold keys are SHA-256 digests, so successive sweeps
// start at random places and reach every hold in time.
func sweepHolds(t *txn, from string, now time.Time) (visited int, err error) {
	var expired []string
	t.scanRing(bucketHolds, from, sweepBatch, func(k, v []byte) {
		visited++
		if h, err := decodeJSON[holdRecord](v, bucketHolds); err != nil || !now.Before(h.Until) {
			expired = append(expired, string(k))
		}
	})
	for _, k := range expired {
		if err := t.del(bucketHolds, k); err != nil {
			return visited, err
		}
	}
	return visited, nil
}

// liveLinks counts the account's codes live at now (not expired, not
// redeemed) and, with drop, drops those expired, redeemed ones included.
func liveLinks(t *txn, accountID string, now time.Time, drop bool) (int, error) {
	live := 0
	for _, digest := range suffixes(t, bucketAccountLinks, accountID) {
		rec, err := getJSON[linkRecord](t, bucketLinkCodes, digest)
		if err != nil && !errors.Is(err, account.ErrNotFound) {
			return 0, err
		}
		if err == nil && rec.kept(now) {
			if rec.RedeemedBy == "" {
				live++
			}
			continue
		}
		if drop {
			if err := deleteLink(t, accountID, digest); err != nil {
				return 0, err
			}
		}
	}
	return live, nil
}

func deleteLink(t *txn, accountID, digest string) error {
	if err := t.del(bucketLinkCodes, digest); err != nil {
		return err
	}
	return t.del(bucketAccountLinks, accountID+digest)
}

// makerActive checks that the device that made a link code is still an
// active device of its account. A code whose maker has since been revoked
// or signed out (a stolen phone) is void: ErrNotFound, the answer of a
// code that is not there. A record from before makers were recorded has
// none and passes.
func makerActive(t *txn, rec linkRecord) error {
	if rec.DeviceID == "" {
		return nil
	}
	err := activeDevice(t, rec.AccountID, rec.DeviceID)
	if errors.Is(err, account.ErrSessionEnded) {
		return account.ErrNotFound
	}
	return err
}

// CreateLinkCode stores a link code of an existing, not banned account.
func (s *Store) CreateLinkCode(ctx context.Context, lc account.LinkCode, maxLive int, now time.Time) error {
	if err := account.ValidateLinkCode(lc, maxLive, now); err != nil {
		return err
	}
	return s.update(ctx, func(t *txn) error {
		acc, err := getAccount(t, lc.AccountID)
		if err != nil {
			return err
		}
		if t.has(bucketLinkCodes, string(lc.Digest)) {
			return account.ErrExists
		}
		if acc.Banned {
			return account.ErrBanned
		}
		if err := activeDevice(t, lc.AccountID, lc.DeviceID); err != nil {
			return err
		}
		// Count first and drop the expired codes only when the new one is
		// stored: a refusal then writes nothing and just leaves a shared
		// commit (see commit.go) instead of making it roll back.
		live, err := liveLinks(t, lc.AccountID, now, false)
		if err != nil {
			return err
		}
		if live >= maxLive {
			return account.ErrTooMany
		}
		if _, err := liveLinks(t, lc.AccountID, now, true); err != nil {
			return err
		}
		rec := linkRecord{AccountID: lc.AccountID, DeviceID: lc.DeviceID, Created: lc.Created, Expires: lc.Expires}
		if err := putJSON(t, bucketLinkCodes, string(lc.Digest), rec); err != nil {
			return err
		}
		return t.put(bucketAccountLinks, lc.AccountID+string(lc.Digest), nil)
	})
}

// CountLinkCodes counts the account's codes live at now.
func (s *Store) CountLinkCodes(ctx context.Context, accountID string, now time.Time) (int, error) {
	if !account.ValidID(account.AccountPrefix, accountID) {
		return 0, account.ErrNotFound
	}
	var n int
	err := s.view(ctx, func(t *txn) (err error) {
		if !t.has(bucketAccounts, accountID) {
			return account.ErrNotFound
		}
		n, err = liveLinks(t, accountID, now, false)
		return err
	})
	return n, err
}

// RedeemLinkCode uses up a live link code and adds the device to its
// account, in one transaction.
func (s *Store) RedeemLinkCode(ctx context.Context, digest []byte, now time.Time, dev account.Device, sess account.Session) (account.Account, error) {
	if account.ValidateDigest(digest) != nil {
		return account.Account{}, account.ErrNotFound
	}
	if now.IsZero() {
		return account.Account{}, invalid("redeem time")
	}
	var acc account.Account
	err := s.update(ctx, func(t *txn) error {
		rec, err := getJSON[linkRecord](t, bucketLinkCodes, string(digest))
		if err != nil {
			return err
		}
		if !now.Before(rec.Expires) || rec.RedeemedBy != "" {
			return account.ErrNotFound
		}
		if err := makerActive(t, rec); err != nil {
			return err
		}
		acc, err = getAccount(t, rec.AccountID)
		if err != nil {
			return err
		}
		d, se := dev, sess
		if err := account.BindDevice(&d, &se, acc.ID); err != nil {
			return err
		}
		if acc.Banned {
			return account.ErrBanned
		}
		if t.has(bucketDevices, d.ID) || t.has(bucketSessions, d.ID) {
			return account.ErrExists
		}
		rec.RedeemedBy, rec.RetryUntil, rec.Expires = d.ID, rec.Expires, now
		if err := putJSON(t, bucketLinkCodes, string(digest), rec); err != nil {
			return err
		}
		return putDevice(t, d, se)
	})
	if err != nil {
		return account.Account{}, err
	}
	return acc, nil
}

// LinkCodeMaker reports the live, unredeemed code with this digest.
func (s *Store) LinkCodeMaker(ctx context.Context, digest []byte, now time.Time) (account.LinkCode, error) {
	if account.ValidateDigest(digest) != nil {
		return account.LinkCode{}, account.ErrNotFound
	}
	if now.IsZero() {
		return account.LinkCode{}, invalid("lookup time")
	}
	var lc account.LinkCode
	err := s.view(ctx, func(t *txn) error {
		rec, err := getJSON[linkRecord](t, bucketLinkCodes, string(digest))
		if err != nil {
			return err
		}
		if rec.RedeemedBy != "" || !now.Before(rec.Expires) {
			return account.ErrNotFound
		}
		lc = account.LinkCode{AccountID: rec.AccountID, DeviceID: rec.DeviceID, Created: rec.Created, Expires: rec.Expires}
		return nil
	})
	return lc, err
}

// RedeemedLinkCode reports the account and the device that redeemed the
// code with this digest, while the code's lifetime lasts and its maker is
// an active device of the account.
func (s *Store) RedeemedLinkCode(ctx context.Context, digest []byte, now time.Time) (account.Account, string, error) {
	if account.ValidateDigest(digest) != nil {
		return account.Account{}, "", account.ErrNotFound
	}
	if now.IsZero() {
		return account.Account{}, "", invalid("lookup time")
	}
	var acc account.Account
	var by string
	err := s.view(ctx, func(t *txn) error {
		rec, err := getJSON[linkRecord](t, bucketLinkCodes, string(digest))
		if err != nil {
			return err
		}
		if rec.RedeemedBy == "" || !rec.kept(now) {
			return account.ErrNotFound
		}
		if err := makerActive(t, rec); err != nil {
			return err
		}
		if acc, err = getAccount(t, rec.AccountID); err != nil {
			return err
		}
		if acc.Banned {
			return account.ErrBanned
		}
		by = rec.RedeemedBy
		return nil
	})
	if err != nil {
		return account.Account{}, "", err
	}
	return acc, by, nil
}

func cloneDigests(digests [][]byte) [][]byte {
	out := make([][]byte, len(digests))
	for i, d := range digests {
		out[i] = bytes.Clone(d)
	}
	slices.SortFunc(out, bytes.Compare)
	return out
}

// SetRecoveryCodes replaces the account's recovery codes.
func (s *Store) SetRecoveryCodes(ctx context.Context, accountID string, salt []byte, digests [][]byte) error {
	if !account.ValidID(account.AccountPrefix, accountID) {
		return account.ErrNotFound
	}
	if err := account.ValidateRecoveryCodes(salt, digests); err != nil {
		return err
	}
	return s.update(ctx, func(t *txn) error {
		acc, err := getAccount(t, accountID)
		if err != nil {
			return err
		}
		acc.RecoverySalt, acc.RecoveryCodes = bytes.Clone(salt), cloneDigests(digests)
		return putAccount(t, acc)
	})
}

// AddRecoveryCode adds one digest to the account's recovery codes.
func (s *Store) AddRecoveryCode(ctx context.Context, accountID string, salt, digest []byte, maxCodes int) error {
	if !account.ValidID(account.AccountPrefix, accountID) {
		return account.ErrNotFound
	}
	if err := account.ValidateRecoveryCodes(salt, [][]byte{digest}); err != nil {
		return err
	}
	if maxCodes < 1 {
		return invalid("maxCodes")
	}
	maxCodes = min(maxCodes, account.MaxRecoveryCodes)
	return s.update(ctx, func(t *txn) error {
		acc, err := getAccount(t, accountID)
		if err != nil {
			return err
		}
		if len(acc.RecoverySalt) > 0 && !bytes.Equal(acc.RecoverySalt, salt) {
			return invalid("recovery salt differs from the account's")
		}
		if recoveryIndex(acc.RecoveryCodes, digest) >= 0 {
			return nil
		}
		if len(acc.RecoveryCodes) >= maxCodes {
			return account.ErrTooMany
		}
		acc.RecoverySalt = bytes.Clone(salt)
		acc.RecoveryCodes = cloneDigests(append(acc.RecoveryCodes, digest))
		return putAccount(t, acc)
	})
}

// recoveryIndex finds digest among codes, comparing every one in constant
// time.
func recoveryIndex(codes [][]byte, digest []byte) int {
	found := -1
	for i, c := range codes {
		if subtle.ConstantTimeCompare(c, digest) == 1 {
			found = i
		}
	}
	return found
}

// UseRecoveryCode uses up a recovery code and adds the device, ending the
// other sessions when asked, in one transaction.
func (s *Store) UseRecoveryCode(ctx context.Context, accountID string, digest []byte, dev account.Device, sess account.Session, signOutOthers bool, now time.Time) ([]string, error) {
	if !account.ValidID(account.AccountPrefix, accountID) || account.ValidateDigest(digest) != nil {
		return nil, account.ErrNotFound
	}
	if now.IsZero() {
		return nil, invalid("recovery time")
	}
	if err := account.BindDevice(&dev, &sess, accountID); err != nil {
		return nil, err
	}
	var ended []string
	err := s.update(ctx, func(t *txn) (err error) {
		acc, err := getAccount(t, accountID)
		if err != nil {
			return err
		}
		i := recoveryIndex(acc.RecoveryCodes, digest)
		switch {
		case i < 0:
			return account.ErrNotFound
		case acc.Banned:
			return account.ErrBanned
		case t.has(bucketDevices, dev.ID) || t.has(bucketSessions, dev.ID):
			return account.ErrExists
		}
		acc.RecoveryCodes = slices.Delete(acc.RecoveryCodes, i, i+1)
		if err := putAccount(t, acc); err != nil {
			return err
		}
		if signOutOthers {
			if ended, err = endAll(t, accountID, now); err != nil {
				return err
			}
		}
		return putDevice(t, dev, sess)
	})
	if err != nil {
		return nil, err
	}
	return ended, nil
}

// endAll ends every live session of the account at `at` and returns the
// ids of the devices it ended, sorted. It also drops the account's link
// codes: a code made on a device now signed out (a stolen phone) must not
// bring a new device in afterwards.
func endAll(t *txn, accountID string, at time.Time) ([]string, error) {
	for _, digest := range suffixes(t, bucketAccountLinks, accountID) {
		if err := deleteLink(t, accountID, digest); err != nil {
			return nil, err
		}
	}
	var ended []string
	for _, id := range suffixes(t, bucketAccountDevices, accountID) {
		sess, err := getSession(t, id)
		if err != nil {
			return nil, notFoundIsCorrupt(err)
		}
		dev, err := getDevice(t, id)
		if err != nil {
			return nil, notFoundIsCorrupt(err)
		}
		if !sess.Ended.IsZero() && !dev.Revoked.IsZero() {
			continue
		}
		endSession(&sess, &dev, at)
		if err := putSession(t, sess); err != nil {
			return nil, err
		}
		if err := putDeviceRecord(t, dev); err != nil {
			return nil, err
		}
		ended = append(ended, id)
	}
	slices.Sort(ended)
	return ended, nil
}

// EndAccountSessions ends every live session of the account.
func (s *Store) EndAccountSessions(ctx context.Context, accountID string, at time.Time) ([]string, error) {
	if !account.ValidID(account.AccountPrefix, accountID) {
		return nil, account.ErrNotFound
	}
	if at.IsZero() {
		return nil, invalid("end time")
	}
	var ended []string
	err := s.update(ctx, func(t *txn) (err error) {
		if !t.has(bucketAccounts, accountID) {
			return account.ErrNotFound
		}
		ended, err = endAll(t, accountID, at)
		return err
	})
	if err != nil {
		return nil, err
	}
	return ended, nil
}

// DeleteAccount removes the account and everything it owns, and holds its
// username key until holdUntil, in one transaction.
func (s *Store) DeleteAccount(ctx context.Context, accountID string, now, holdUntil time.Time) error {
	if !account.ValidID(account.AccountPrefix, accountID) {
		return account.ErrNotFound
	}
	if now.IsZero() || holdUntil.IsZero() {
		return invalid("delete times")
	}
	return s.update(ctx, func(t *txn) error {
		acc, err := getAccount(t, accountID)
		if err != nil {
			return err
		}
		for _, id := range suffixes(t, bucketAccountDevices, accountID) {
			for _, b := range [][]byte{bucketDevices, bucketSessions, bucketSessionRetry} {
				if err := t.del(b, id); err != nil {
					return err
				}
			}
			if err := t.del(bucketAccountDevices, accountID+id); err != nil {
				return err
			}
		}
		for _, digest := range suffixes(t, bucketAccountLinks, accountID) {
			if err := deleteLink(t, accountID, digest); err != nil {
				return err
			}
		}
		if err := t.del(bucketAccounts, accountID); err != nil {
			return err
		}
		return releaseName(t, acc.UsernameKey, now, holdUntil)
	})
}

// RenameAccount claims newKey for the account and holds the old key, in
// one transaction.
func (s *Store) RenameAccount(ctx context.Context, accountID, newDisplay, newKey string, now, holdUntil time.Time) error {
	if !account.ValidID(account.AccountPrefix, accountID) {
		return account.ErrNotFound
	}
	if err := account.ValidateRename(newDisplay, newKey, now, holdUntil); err != nil {
		return err
	}
	return s.update(ctx, func(t *txn) error {
		acc, err := getAccount(t, accountID)
		if err != nil {
			return err
		}
		if acc.UsernameKey == newKey {
			return nil
		}
		taken, err := nameTaken(t, newKey, now)
		if err != nil {
			return err
		}
		if taken {
			return account.ErrUsernameTaken
		}
		if err := releaseName(t, acc.UsernameKey, now, holdUntil); err != nil {
			return err
		}
		if err := t.put(bucketUsernames, newKey, []byte(accountID)); err != nil {
			return err
		}
		acc.Username, acc.UsernameKey = newDisplay, newKey
		return putAccount(t, acc)
	})
}
