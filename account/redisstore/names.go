package redisstore

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/hallpass/hallpass/account"
)

// maxAttempts bounds the optimistic rounds of an operation whose script
// found that what the caller read first had changed ({'retry'}).
const maxAttempts = 8

// errContended: maxAttempts rounds lost to concurrent changes of one
// account.
var errContended = fmt.Errorf("%w: redisstore: account changed concurrently, try again", account.ErrUnavailable)

// stale is a name registration found not to hold: the account it names
// has left the name (or is gone) since, and the step that should have
// turned it into a hold did not run. It counts as a hold until until (the
// zero time when nothing holds it any more).
type stale struct {
	acc, gen string
	until    time.Time
}

// args renders s for luaNameState.
func (s *stale) args(now time.Time) []any {
	if s == nil {
		return []any{"", "", zeroTime, 1}
	}
	return []any{s.acc, s.gen, encTime(s.until), ttlMillis(now, s.until)}
}

// resolve decides whether the registration of usernameKey by reply
// ({'registered', acc, home tag, gen}) still holds. Its owner's account
// and tombstone decide, and what they say cannot change back: rename
// generations only grow and a deleted account stays deleted. nil means
// the name is really registered (or a rename to it is under way).
func (s *Store) resolve(ctx context.Context, usernameKey string, reply []string) (*stale, error) {
	if len(reply) != 4 {
		return nil, corrupt(fmt.Errorf("%w: name script reply", errCorrupt))
	}
	h, recGen := home{tag: reply[2], acc: reply[1]}, reply[3]
	if !validTag(h.tag) || !account.ValidID(account.AccountPrefix, h.acc) {
		return nil, corrupt(fmt.Errorf("%w: name record", errCorrupt))
	}
	var acc, tomb *redis.SliceCmd
	_, err := s.c.Pipelined(ctx, func(p redis.Pipeliner) error {
		acc = p.HMGet(ctx, s.accountKey(h), "id", "username_key", "name_gen", "prev_tag", "prev_gen", "prev_until")
		tomb = p.HMGet(ctx, s.tombKey(h), "name_tag", "gen", "until")
		return nil
	})
	if err != nil {
		return nil, unavailable(err)
	}
	a, t := strs(acc.Val()), strs(tomb.Val())
	st := &stale{acc: h.acc, gen: recGen}
	tag := nameTag(usernameKey)
	switch {
	case a[0] == h.acc: // the account lives
		gen, _ := strconv.ParseUint(a[2], 10, 64)
		rg, _ := strconv.ParseUint(recGen, 10, 64)
		if a[1] == usernameKey || gen < rg {
			return nil, nil // its name, or a rename to it in flight
		}
		if a[3] == tag && a[4] == recGen {
			st.until, _ = decTime(a[5])
		}
	case t[0] == tag && t[1] == recGen: // deleted, the hold was not written
		st.until, _ = decTime(t[2])
	}
	return st, nil
}

// strs reads an HMGET reply, absent fields as "".
func strs(vals []any) []string {
	out := make([]string, len(vals))
	for i, v := range vals {
		out[i], _ = v.(string)
	}
	return out
}

// nameReply maps the reply of createAccount or claimName. registered is
// the reply when the name is registered to another account.
func nameReply(reply []string) (registered []string, err error) {
	if len(reply) == 0 {
		return nil, corrupt(fmt.Errorf("%w: empty script reply", errCorrupt))
	}
	if reply[0] == "registered" {
		return reply, account.ErrUsernameTaken
	}
	return nil, scriptResult(reply[0])
}

// claimRounds runs a name claim (run, given the stale registration found
// so far), resolving a registration of another account once.
func (s *Store) claimRounds(ctx context.Context, usernameKey string, run func(*stale) ([]string, error)) error {
	var st *stale
	for range 2 {
		reply, err := run(st)
		if err != nil {
			return err
		}
		registered, err := nameReply(reply)
		if registered == nil || st != nil {
			return err
		}
		if st, err = s.resolve(ctx, usernameKey, registered); err != nil || st == nil {
			if err == nil {
				err = account.ErrUsernameTaken
			}
			return err
		}
	}
	return account.ErrUsernameTaken
}

// CreateAccount claims acc.UsernameKey and stores the account, device and
// session in one script on the name's tag, the account's home.
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
	ctx, cancel, op, err := s.beginOp(ctx)
	if err != nil {
		return err
	}
	defer cancel()
	h := home{tag: nameTag(acc.UsernameKey), acc: acc.ID}
	made, err := s.claimAll(ctx, h, acc.ID, dev.ID)
	if err != nil {
		s.release(ctx, h, made...)
		return err
	}
	keys := []string{s.nameKey(h.tag), s.accountKey(h), s.devicesKey(h), s.deviceKey(h.tag, dev.ID),
		s.sessionKey(h.tag, dev.ID), s.recoveryKey(h)}
	err = s.claimRounds(ctx, acc.UsernameKey, func(st *stale) ([]string, error) {
		args := append([]any{op, acc.ID, dev.ID, encTime(acc.Created), h.tag, zeroTime}, st.args(acc.Created)...)
		args = append(args, accountFields(acc, op)...)
		args = append(args, deviceFields(dev, op)...)
		args = append(args, sessionFields(sess, op)...)
		args = append(args, group(hexDigests(acc.RecoveryCodes)...)...)
		reply, err := s.run(ctx, createAccount, keys, args...).StringSlice()
		if err != nil {
			return nil, unavailable(err) // the script may have run: keep the indexes
		}
		return reply, nil
	})
	if err != nil && !errors.Is(err, account.ErrUnavailable) {
		s.release(ctx, h, made...)
	}
	return err
}

// RenameAccount claims newKey on its own tag, then moves the account to it
// if its name and rename generation are still those read first, holding
// the old name (in the same script when its record is on the account's
// tag, else in a third one). Concurrent renames of one account lose the
// compare and start again; a claim a lost round leaves behind is stale
// once the account's generation has passed it (see resolve).
func (s *Store) RenameAccount(ctx context.Context, accountID, newDisplay, newKey string, now, holdUntil time.Time) error {
	if !account.ValidID(account.AccountPrefix, accountID) {
		return account.ErrNotFound
	}
	if err := account.ValidateRename(newDisplay, newKey, now, holdUntil); err != nil {
		return err
	}
	ctx, cancel, op, h, err := s.beginAccountOp(ctx, accountID)
	if err != nil {
		return err
	}
	defer cancel()
	for range maxAttempts {
		done, err := s.renameRound(ctx, h, op, newDisplay, newKey, now, holdUntil)
		if done || err != nil {
			return err
		}
	}
	return errContended
}

// renameRound is one optimistic round of RenameAccount; done is false when
// the account changed under it.
func (s *Store) renameRound(ctx context.Context, h home, op, newDisplay, newKey string, now, holdUntil time.Time) (done bool, err error) {
	cur, err := s.hmget(ctx, s.accountKey(h), "id", "username_key", "name_gen", "prev_tag", "prev_gen", "prev_until")
	if err != nil {
		return false, unavailable(err)
	}
	a := strs(cur)
	if a[0] != h.acc {
		return false, account.ErrNotFound
	}
	if a[1] == newKey { // a no-op; finish the last rename's hold if it was cut short
		if until, err := decTime(a[5]); err == nil && validTag(a[3]) {
			return true, s.hold(ctx, a[3], h.acc, a[4], now, until)
		}
		return true, nil
	}
	gen, err := strconv.ParseUint(a[2], 10, 64)
	if err != nil {
		return false, corrupt(fmt.Errorf("%w: field name_gen", errCorrupt))
	}
	newTag, oldTag, newGen := nameTag(newKey), nameTag(a[1]), strconv.FormatUint(gen+1, 10)
	err = s.claimRounds(ctx, newKey, func(st *stale) ([]string, error) {
		args := append([]any{h.acc, h.tag, newGen, op, encTime(now), zeroTime}, st.args(now)...)
		reply, err := s.run(ctx, claimName, []string{s.nameKey(newTag)}, args...).StringSlice()
		if err != nil {
			return nil, unavailable(err)
		}
		return reply, nil
	})
	if err != nil {
		return false, err
	}
	oldKey := s.accountKey(h)
	if oldTag == h.tag {
		oldKey = s.nameKey(oldTag)
	}
	reply, err := s.run(ctx, renameAccount, []string{s.accountKey(h), oldKey},
		h.acc, a[1], a[2], newKey, newDisplay, newGen, oldTag, encTime(now), encTime(holdUntil),
		ttlMillis(now, holdUntil), zeroTime, flag(oldTag == h.tag)).StringSlice()
	switch {
	case err != nil:
		return false, unavailable(err)
	case len(reply) > 0 && reply[0] == "retry":
		return false, nil
	case len(reply) > 0 && reply[0] == "notfound":
		_ = s.run(ctx, releaseName, []string{s.nameKey(newTag)}, h.acc, op, zeroTime).Err()
		return false, account.ErrNotFound
	case len(reply) == 0 || reply[0] != "ok":
		return false, corrupt(fmt.Errorf("redisstore: unexpected rename reply %q", reply))
	}
	if oldTag != h.tag {
		return true, s.hold(ctx, oldTag, h.acc, a[2], now, holdUntil)
	}
	return true, nil
}

// hold turns the name record on tag, if it still registers acc at gen,
// into a hold until `until`.
func (s *Store) hold(ctx context.Context, tag, acc, gen string, now, until time.Time) error {
	err := s.run(ctx, holdName, []string{s.nameKey(tag)},
		acc, gen, encTime(now), encTime(until), ttlMillis(now, until), zeroTime).Err()
	if err != nil {
		return unavailable(err)
	}
	return nil
}

// tombTTL keeps a tombstone for the hold, and at least a minute so that a
// re-sent delete is still recognised.
func tombTTL(now, holdUntil time.Time) int64 {
	if floor := now.Add(time.Minute); holdUntil.Before(floor) {
		holdUntil = floor
	}
	return ttlMillis(now, holdUntil)
}

// DeleteAccount removes the account with everything it owns and holds its
// name, in one script when the name's record is on the account's tag;
// else the hold is a second script, which a repeated DeleteAccount
// finishes (from the tombstone) if it was cut short.
func (s *Store) DeleteAccount(ctx context.Context, accountID string, now, holdUntil time.Time) error {
	if !account.ValidID(account.AccountPrefix, accountID) {
		return account.ErrNotFound
	}
	if now.IsZero() || holdUntil.IsZero() {
		return invalid("delete times")
	}
	ctx, cancel, op, h, err := s.beginAccountOp(ctx, accountID)
	if err != nil {
		return err
	}
	defer cancel()
	for range maxAttempts {
		snap, err := s.snapshot(ctx, h, true)
		if err != nil {
			return err
		}
		reply, err := s.deleteRound(ctx, h, op, snap, now, holdUntil)
		if err != nil || reply[0] == "retry" {
			if err != nil {
				return err
			}
			continue
		}
		return s.afterDelete(ctx, h, snap, reply, now)
	}
	return errContended
}

// deleteRound runs the deletion script once over snap.
func (s *Store) deleteRound(ctx context.Context, h home, op string, snap snapshot, now, holdUntil time.Time) ([]string, error) {
	tag := nameTag(snap.usernameKey)
	nameKey, here := s.tombKey(h), tag == h.tag
	if here {
		nameKey = s.nameKey(tag)
	}
	keys := []string{s.accountKey(h), s.devicesKey(h), s.linksKey(h), s.recoveryKey(h), s.tombKey(h), nameKey}
	keys = append(keys, s.deviceKeys(h, snap.devices)...)
	for _, hx := range snap.links {
		keys = append(keys, s.linkKey(h.tag, hx))
	}
	args := []any{op, h.acc, encTime(now), encTime(holdUntil), ttlMillis(now, holdUntil), zeroTime,
		snap.usernameKey, tag, flag(here), tombTTL(now, holdUntil)}
	args = append(args, members(snap.devices)...)
	args = append(args, members(snap.links)...)
	reply, err := s.run(ctx, deleteAccount, keys, args...).StringSlice()
	if err != nil {
		return nil, unavailable(err)
	}
	if len(reply) == 0 || (reply[0] != "retry" && reply[0] != "notfound" && len(reply) != 4) {
		return nil, corrupt(fmt.Errorf("redisstore: unexpected delete reply %q", reply))
	}
	return reply, nil
}

// afterDelete holds the name when its record is on another tag (again, for
// a repeated delete, from the tombstone) and drops the indexes of what was
// deleted.
func (s *Store) afterDelete(ctx context.Context, h home, snap snapshot, reply []string, now time.Time) error {
	if reply[0] == "notfound" {
		return account.ErrNotFound
	}
	until, err := decTime(reply[3])
	if err != nil || !validTag(reply[1]) {
		return corrupt(fmt.Errorf("%w: tombstone", errCorrupt))
	}
	if reply[0] == "gone" || reply[1] != h.tag { // else the script held it
		if err := s.hold(ctx, reply[1], h.acc, reply[2], now, until); err != nil {
			return err
		}
	}
	if reply[0] == "gone" {
		return account.ErrNotFound
	}
	s.release(ctx, h, append([]string{h.acc}, snap.devices...)...)
	for _, hx := range snap.links {
		s.release(ctx, h, linkLocID(hx))
	}
	return nil
}
