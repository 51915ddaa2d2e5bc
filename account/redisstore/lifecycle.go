package redisstore

import (
	"context"
	"encoding/hex"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/hallpass/hallpass/account"
)

// snapshot is what a script over every device of an account needs read
// first: the device ids, and for a deletion the link code digests (hex)
// and the username key.
type snapshot struct {
	devices, links []string
	usernameKey    string
}

func (s *Store) snapshot(ctx context.Context, h home, forDelete bool) (snapshot, error) {
	var devs, links *redis.StringSliceCmd
	var key *redis.StringCmd
	_, err := s.c.Pipelined(ctx, func(p redis.Pipeliner) error {
		devs = p.SMembers(ctx, s.devicesKey(h))
		if forDelete {
			links = p.HKeys(ctx, s.linksKey(h))
			key = p.HGet(ctx, s.accountKey(h), "username_key")
		}
		return nil
	})
	if err != nil && !isNil(err) {
		return snapshot{}, unavailable(err)
	}
	snap := snapshot{devices: devs.Val()}
	if forDelete {
		snap.links, snap.usernameKey = links.Val(), key.Val()
	}
	for _, id := range snap.devices {
		if !account.ValidID(account.DevicePrefix, id) {
			return snapshot{}, corrupt(fmt.Errorf("%w: device set", errCorrupt))
		}
	}
	return snap, nil
}

// deviceKeys lists the device and session key of every id.
func (s *Store) deviceKeys(h home, ids []string) []string {
	keys := make([]string, 0, 2*len(ids))
	for _, id := range ids {
		keys = append(keys, s.deviceKey(h.tag, id), s.sessionKey(h.tag, id))
	}
	return keys
}

// members renders a snapshot list as script arguments: count, then ids.
func members(ids []string) []any {
	out := make([]any, 0, len(ids)+1)
	out = append(out, len(ids))
	for _, id := range ids {
		out = append(out, id)
	}
	return out
}

// endedReply maps a reply that lists ended device ids after its status.
func endedReply(reply []string) ([]string, error) {
	if len(reply) == 0 {
		return nil, corrupt(fmt.Errorf("%w: empty script reply", errCorrupt))
	}
	if err := scriptResult(reply[0]); err != nil {
		return nil, err
	}
	ended := slices.Clone(reply[1:])
	slices.Sort(ended)
	if len(ended) == 0 {
		return nil, nil
	}
	return ended, nil
}

// CreateLinkCode stores a link code: its digest's index (with the code's
// lifetime as its TTL) first, then one script on the account's tag.
func (s *Store) CreateLinkCode(ctx context.Context, lc account.LinkCode, maxLive int, now time.Time) error {
	if err := account.ValidateLinkCode(lc, maxLive, now); err != nil {
		return err
	}
	ctx, cancel, op, h, err := s.beginAccountOp(ctx, lc.AccountID)
	if err != nil {
		return err
	}
	defer cancel()
	hx, ttl := hex.EncodeToString(lc.Digest), ttlMillis(now, lc.Expires)
	made, err := s.claim(ctx, linkLocID(hx), h, ttl)
	if err != nil {
		return err
	}
	keys := []string{s.accountKey(h), s.linksKey(h), s.linkKey(h.tag, hx),
		s.deviceKey(h.tag, lc.DeviceID), s.sessionKey(h.tag, lc.DeviceID)}
	res, err := s.run(ctx, createLink, keys, op, h.acc, hx, encTime(now), encTime(lc.Created),
		encTime(lc.Expires), maxLive, ttl, lc.DeviceID, zeroTime).Text()
	if err != nil {
		return unavailable(err)
	}
	if err := scriptResult(res); err != nil {
		if made {
			s.release(ctx, h, linkLocID(hx))
		}
		return err
	}
	return nil
}

// CountLinkCodes counts the account's codes live at now.
func (s *Store) CountLinkCodes(ctx context.Context, accountID string, now time.Time) (int, error) {
	if !account.ValidID(account.AccountPrefix, accountID) {
		return 0, account.ErrNotFound
	}
	ctx, cancel, err := s.begin(ctx)
	if err != nil {
		return 0, err
	}
	defer cancel()
	h, err := s.lookupAccount(ctx, accountID)
	if err != nil {
		return 0, err
	}
	var id *redis.StringCmd
	var expires *redis.StringSliceCmd
	_, err = s.c.Pipelined(ctx, func(p redis.Pipeliner) error {
		id = p.HGet(ctx, s.accountKey(h), "id")
		expires = p.HVals(ctx, s.linksKey(h))
		return nil
	})
	if err != nil && !isNil(err) {
		return 0, unavailable(err)
	}
	if id.Val() != accountID {
		return 0, account.ErrNotFound
	}
	n := 0
	for _, v := range expires.Val() {
		t, err := decTime(v)
		if err != nil {
			return 0, corrupt(err)
		}
		if now.Before(t) {
			n++
		}
	}
	return n, nil
}

// RedeemLinkCode uses up a live link code and adds the device, in one
// script on the tag of the code's account.
func (s *Store) RedeemLinkCode(ctx context.Context, digest []byte, now time.Time, dev account.Device, sess account.Session) (account.Account, error) {
	if account.ValidateDigest(digest) != nil {
		return account.Account{}, account.ErrNotFound
	}
	if now.IsZero() {
		return account.Account{}, invalid("redeem time")
	}
	ctx, cancel, op, err := s.beginOp(ctx)
	if err != nil {
		return account.Account{}, err
	}
	defer cancel()
	hx := hex.EncodeToString(digest)
	h, err := s.lookup(ctx, linkLocID(hx))
	if err != nil {
		return account.Account{}, err
	}
	if err := account.BindDevice(&dev, &sess, h.acc); err != nil {
		return account.Account{}, err
	}
	maker, err := s.linkMaker(ctx, h, hx)
	if err != nil {
		return account.Account{}, err
	}
	made, err := s.claim(ctx, dev.ID, h, 0)
	if err != nil {
		return account.Account{}, err
	}
	keys := []string{s.linkKey(h.tag, hx), s.linksKey(h), s.accountKey(h), s.devicesKey(h),
		s.deviceKey(h.tag, dev.ID), s.sessionKey(h.tag, dev.ID), s.recoveryKey(h)}
	keys = append(keys, s.deviceKey(h.tag, maker.or(dev.ID)), s.sessionKey(h.tag, maker.or(dev.ID)))
	args := []any{op, hx, h.acc, dev.ID, encTime(now), string(maker), zeroTime}
	args = append(args, deviceFields(dev, op)...)
	args = append(args, sessionFields(sess, op)...)
	reply, err := s.run(ctx, redeemLink, keys, args...).StringSlice()
	if err != nil {
		return account.Account{}, unavailable(err)
	}
	acc, err := redeemedAccount(reply)
	if err != nil {
		if made {
			s.release(ctx, h, dev.ID)
		}
		return account.Account{}, err
	}
	// The code's index stays until its TTL: a re-sent script finds its way
	// to the answer, a later redemption to a code that is used, and
	// RedeemedLinkCode to the device that used it.
	return acc, nil
}

// LinkCodeMaker reports the live, unredeemed code with this digest: one
// read of its record (its account's tag, through the digest's index).
func (s *Store) LinkCodeMaker(ctx context.Context, digest []byte, now time.Time) (account.LinkCode, error) {
	if account.ValidateDigest(digest) != nil {
		return account.LinkCode{}, account.ErrNotFound
	}
	if now.IsZero() {
		return account.LinkCode{}, invalid("lookup time")
	}
	ctx, cancel, err := s.begin(ctx)
	if err != nil {
		return account.LinkCode{}, err
	}
	defer cancel()
	hx := hex.EncodeToString(digest)
	h, err := s.lookup(ctx, linkLocID(hx))
	if err != nil {
		return account.LinkCode{}, err
	}
	v, err := s.c.HMGet(ctx, s.linkKey(h.tag, hx), "account_id", "device", "created", "expires", "redeemed_by").Result()
	if err != nil {
		return account.LinkCode{}, unavailable(err)
	}
	return linkCodeOf(v, h.acc, now)
}

// linkCodeOf decodes a link record's account_id, device, created,
// expires and redeemed_by: ErrNotFound unless it is live at now and not
// redeemed.
func linkCodeOf(v []any, acc string, now time.Time) (account.LinkCode, error) {
	str := func(i int) string { s, _ := v[i].(string); return s }
	if str(0) == "" || str(4) != "" {
		return account.LinkCode{}, account.ErrNotFound
	}
	created, err1 := decTime(str(2))
	expires, err2 := decTime(str(3))
	dev := str(1)
	if str(0) != acc || err1 != nil || err2 != nil || (dev != "" && !account.ValidID(account.DevicePrefix, dev)) {
		return account.LinkCode{}, corrupt(fmt.Errorf("%w: link code record", errCorrupt))
	}
	if !now.Before(expires) {
		return account.LinkCode{}, account.ErrNotFound
	}
	return account.LinkCode{AccountID: acc, DeviceID: dev, Created: created, Expires: expires}, nil
}

// RedeemedLinkCode reports the account and the device that redeemed a
// link code, in one read-only script on the tag of the code's account.
func (s *Store) RedeemedLinkCode(ctx context.Context, digest []byte, now time.Time) (account.Account, string, error) {
	if account.ValidateDigest(digest) != nil {
		return account.Account{}, "", account.ErrNotFound
	}
	if now.IsZero() {
		return account.Account{}, "", invalid("lookup time")
	}
	ctx, cancel, err := s.begin(ctx)
	if err != nil {
		return account.Account{}, "", err
	}
	defer cancel()
	hx := hex.EncodeToString(digest)
	h, err := s.lookup(ctx, linkLocID(hx))
	if err != nil {
		return account.Account{}, "", err
	}
	maker, err := s.linkMaker(ctx, h, hx)
	if err != nil {
		return account.Account{}, "", err
	}
	// With no maker named the script reads no maker keys; the code's own
	// key stands in so that every key stays on the account's tag.
	devKey, sessKey := s.linkKey(h.tag, hx), s.linkKey(h.tag, hx)
	if maker != "" {
		devKey, sessKey = s.deviceKey(h.tag, string(maker)), s.sessionKey(h.tag, string(maker))
	}
	keys := []string{s.linkKey(h.tag, hx), s.accountKey(h), s.recoveryKey(h), devKey, sessKey}
	reply, err := s.q.Run(ctx, redeemedLink, keys, h.acc, encTime(now), string(maker), zeroTime).StringSlice()
	if err != nil {
		return account.Account{}, "", unavailable(err)
	}
	if len(reply) >= 2 && reply[0] == "ok" {
		by := reply[1]
		if !account.ValidID(account.DevicePrefix, by) {
			return account.Account{}, "", corrupt(fmt.Errorf("%w: link code redeemer", errCorrupt))
		}
		acc, err := redeemedAccount(append([]string{"ok"}, reply[2:]...))
		return acc, by, err
	}
	_, err = redeemedAccount(reply)
	return account.Account{}, "", err
}

// makerID is the id of the device that made a link code, "" when the
// record names none (made before makers were recorded, or gone).
type makerID string

// or is the maker's id, or alt when there is none: the script's keys must
// be listed either way.
func (m makerID) or(alt string) string {
	if m == "" {
		return alt
	}
	return string(m)
}

// linkMaker reads which device made a link code, so that redeemLink can
// list its keys; the script checks the record still names it. A malformed
// id is corrupt data (its key must not leave the account's tag).
func (s *Store) linkMaker(ctx context.Context, h home, hx string) (makerID, error) {
	id, err := s.c.HGet(ctx, s.linkKey(h.tag, hx), "device").Result()
	switch {
	case isNil(err):
		return "", nil
	case err != nil:
		return "", unavailable(err)
	case id != "" && !account.ValidID(account.DevicePrefix, id):
		return "", corrupt(fmt.Errorf("%w: link code maker", errCorrupt))
	}
	return makerID(id), nil
}

// redeemedAccount decodes redeemLink's reply: the status, then for 'ok'
// the number of account hash entries, the hash, and the recovery digests.
func redeemedAccount(reply []string) (account.Account, error) {
	if len(reply) == 0 {
		return account.Account{}, corrupt(fmt.Errorf("%w: empty script reply", errCorrupt))
	}
	if reply[0] != "ok" {
		return account.Account{}, scriptResult(reply[0])
	}
	n, err := strconv.Atoi(reply[1])
	if err != nil || n%2 != 0 || len(reply) < 2+n {
		return account.Account{}, corrupt(fmt.Errorf("%w: redeem reply", errCorrupt))
	}
	m := make(map[string]string, n/2)
	for i := 2; i < 2+n; i += 2 {
		m[reply[i]] = reply[i+1]
	}
	acc, err := decAccount(m, reply[2+n:])
	if err != nil {
		return account.Account{}, corrupt(err)
	}
	return acc, nil
}

// SetRecoveryCodes replaces the account's recovery codes.
func (s *Store) SetRecoveryCodes(ctx context.Context, accountID string, salt []byte, digests [][]byte) error {
	if !account.ValidID(account.AccountPrefix, accountID) {
		return account.ErrNotFound
	}
	if err := account.ValidateRecoveryCodes(salt, digests); err != nil {
		return err
	}
	return s.onAccount(ctx, accountID, func(ctx context.Context, h home) (string, error) {
		args := append([]any{accountID, hex.EncodeToString(salt)}, hexDigests(digests)...)
		return s.run(ctx, setRecovery, []string{s.accountKey(h), s.recoveryKey(h)}, args...).Text()
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
	return s.onAccount(ctx, accountID, func(ctx context.Context, h home) (string, error) {
		return s.run(ctx, addRecovery, []string{s.accountKey(h), s.recoveryKey(h)},
			accountID, hex.EncodeToString(salt), hex.EncodeToString(digest), maxCodes).Text()
	})
}

// onAccount runs one script (run) on the account's tag and maps its reply.
func (s *Store) onAccount(ctx context.Context, accountID string, run func(context.Context, home) (string, error)) error {
	ctx, cancel, err := s.begin(ctx)
	if err != nil {
		return err
	}
	defer cancel()
	h, err := s.lookupAccount(ctx, accountID)
	if err != nil {
		return err
	}
	res, err := run(ctx, h)
	if err != nil {
		return unavailable(err)
	}
	return scriptResult(res)
}

// UseRecoveryCode uses up a recovery code and adds the device, ending
// every other session when asked, in one script on the account's tag.
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
	ctx, cancel, op, h, err := s.beginAccountOp(ctx, accountID)
	if err != nil {
		return nil, err
	}
	defer cancel()
	made, err := s.claim(ctx, dev.ID, h, 0)
	if err != nil {
		return nil, err
	}
	ended, err := s.useRounds(ctx, h, op, hex.EncodeToString(digest), dev, sess, signOutOthers, now)
	if err != nil && made && !isUnavailable(err) {
		s.release(ctx, h, dev.ID)
	}
	return ended, err
}

func (s *Store) useRounds(ctx context.Context, h home, op, hx string, dev account.Device, sess account.Session, signOut bool, now time.Time) ([]string, error) {
	for range maxAttempts {
		var snap snapshot
		if signOut {
			var err error
			if snap, err = s.snapshot(ctx, h, false); err != nil {
				return nil, err
			}
		}
		keys := []string{s.accountKey(h), s.recoveryKey(h), s.devicesKey(h), s.deviceKey(h.tag, dev.ID), s.sessionKey(h.tag, dev.ID)}
		keys = append(keys, s.deviceKeys(h, snap.devices)...)
		keys = append(keys, s.linksKey(h))
		args := append([]any{op, h.acc, hx, dev.ID, encTime(now), zeroTime, flag(signOut)}, members(snap.devices)...)
		args = append(args, deviceFields(dev, op)...)
		args = append(args, sessionFields(sess, op)...)
		reply, err := s.run(ctx, useRecovery, keys, args...).StringSlice()
		if err != nil {
			return nil, unavailable(err)
		}
		if len(reply) > 0 && reply[0] == "retry" {
			continue
		}
		return endedReply(reply)
	}
	return nil, errContended
}

// EndAccountSessions ends every live session of the account in one script.
func (s *Store) EndAccountSessions(ctx context.Context, accountID string, at time.Time) ([]string, error) {
	if !account.ValidID(account.AccountPrefix, accountID) {
		return nil, account.ErrNotFound
	}
	if at.IsZero() {
		return nil, invalid("end time")
	}
	ctx, cancel, op, h, err := s.beginAccountOp(ctx, accountID)
	if err != nil {
		return nil, err
	}
	defer cancel()
	for range maxAttempts {
		snap, err := s.snapshot(ctx, h, false)
		if err != nil {
			return nil, err
		}
		keys := append([]string{s.accountKey(h), s.devicesKey(h)}, s.deviceKeys(h, snap.devices)...)
		keys = append(keys, s.linksKey(h))
		args := append([]any{op, h.acc, encTime(at), zeroTime}, members(snap.devices)...)
		reply, err := s.run(ctx, endAll, keys, args...).StringSlice()
		if err != nil {
			return nil, unavailable(err)
		}
		if len(reply) > 0 && reply[0] == "retry" {
			continue
		}
		return endedReply(reply)
	}
	return nil, errContended
}
