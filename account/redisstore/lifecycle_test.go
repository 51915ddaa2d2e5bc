package redisstore_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/hallpass/hallpass/account"
	"github.com/hallpass/hallpass/account/redisstore"
	"github.com/hallpass/hallpass/internal/redistest"
)

const hold = 30 * 24 * time.Hour

func sum(seed string) []byte {
	h := sha256.Sum256([]byte(seed))
	return h[:]
}

// lifecycleStore is a store on its own Redis with prefix "hp" and the
// client, to look at the keys.
func lifecycleStore(t *testing.T, opts redisstore.Options) (*redisstore.Store, *redis.Client) {
	t.Helper()
	c := newClient(t, redistest.Start(t).Addr())
	opts.Prefix = "hp"
	s, err := redisstore.New(c, opts)
	if err != nil {
		t.Fatal(err)
	}
	return s, c
}

func newDev(t *testing.T, accID string, now time.Time) (account.Device, account.Session) {
	t.Helper()
	id, _ := account.NewID(account.DevicePrefix, nil)
	return account.Device{ID: id, AccountID: accID, JKT: "jkt-" + id, Created: now},
		account.Session{DeviceID: id, AccountID: accID, JKT: "jkt-" + id, Counter: 1, Created: now, Expires: now.Add(time.Hour)}
}

func mustNil(t *testing.T, what string, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// As TestRetriedWritesAreRecognised, for the lifecycle scripts: with a
// constant operation id the second call looks like a re-sent script and
// must get the first run's answer, not ErrExists or ErrNotFound.
func TestRetriedLifecycleWrites(t *testing.T) {
	t.Parallel()
	s, _ := lifecycleStore(t, redisstore.Options{Rand: zeroReader{}})
	ctx := t.Context()
	acc, dev, sess := fixture(t, "alice")
	mustNil(t, "CreateAccount", s.CreateAccount(ctx, acc, dev, sess))
	now := acc.Created
	lc := account.LinkCode{Digest: sum("l1"), AccountID: acc.ID, DeviceID: dev.ID, Created: now, Expires: now.Add(10 * time.Minute)}
	newcomer, newSess := newDev(t, "", now)
	recovered, recSess := newDev(t, "", now)
	mustNil(t, "SetRecoveryCodes", s.SetRecoveryCodes(ctx, acc.ID, []byte("salt"), [][]byte{sum("r1")}))
	for range 2 {
		mustNil(t, "CreateLinkCode", s.CreateLinkCode(ctx, lc, 1, now))
	}
	for i := range 2 {
		got, err := s.RedeemLinkCode(ctx, lc.Digest, now, newcomer, newSess)
		if err != nil || got.ID != acc.ID {
			t.Fatalf("RedeemLinkCode run %d: %+v, %v", i+1, got, err)
		}
	}
	want := []string{dev.ID, newcomer.ID}
	slices.Sort(want)
	for i := range 2 {
		ended, err := s.UseRecoveryCode(ctx, acc.ID, sum("r1"), recovered, recSess, true, now)
		if err != nil || !slices.Equal(ended, want) {
			t.Fatalf("UseRecoveryCode run %d: %q, %v; want %q", i+1, ended, err, want)
		}
	}
	for range 2 {
		mustNil(t, "RenameAccount", s.RenameAccount(ctx, acc.ID, "Alicia", "alicia", now, now.Add(hold)))
	}
	other, otherDev, otherSess := fixture(t, "bob")
	mustNil(t, "CreateAccount(bob)", s.CreateAccount(ctx, other, otherDev, otherSess))
	for i := range 2 {
		ended, err := s.EndAccountSessions(ctx, other.ID, now)
		if err != nil || !slices.Equal(ended, []string{otherDev.ID}) {
			t.Fatalf("EndAccountSessions run %d: %q, %v", i+1, ended, err)
		}
	}
}

// nameRecord rewrites the name record of usernameKey as a registration,
// as if the step that should have held it never ran.
func registerAgain(t *testing.T, c *redis.Client, usernameKey string) {
	t.Helper()
	key := "hp:{" + redisstore.NameTag(usernameKey) + "}:name"
	if c.Exists(t.Context(), key).Val() != 1 {
		t.Fatalf("no name record for %q", usernameKey)
	}
	if err := c.HSet(t.Context(), key, "until", "00010101000000000000000").Err(); err != nil {
		t.Fatal(err)
	}
	c.Persist(t.Context(), key)
}

func signupAt(t *testing.T, s *redisstore.Store, name string, at time.Time) error {
	t.Helper()
	acc, dev, sess := fixture(t, name)
	acc.Created = at
	return s.CreateAccount(t.Context(), acc, dev, sess)
}

// A rename or a deletion of a renamed account is several scripts on
// several slots. When the hold of the name left behind did not run (the
// issuer stopped in between), the next claim of that name finds the
// registration stale and honours the hold it should have become.
func TestCutShortHoldsAreHonoured(t *testing.T) {
	t.Parallel()
	s, c := lifecycleStore(t, redisstore.Options{})
	ctx := t.Context()
	acc, dev, sess := fixture(t, "alice")
	mustNil(t, "CreateAccount", s.CreateAccount(ctx, acc, dev, sess))
	now := acc.Created.Add(time.Minute)
	until := now.Add(hold)
	mustNil(t, "RenameAccount", s.RenameAccount(ctx, acc.ID, "Alicia", "alicia", now, until))
	mustNil(t, "RenameAccount", s.RenameAccount(ctx, acc.ID, "Alex", "alex", now, until))
	registerAgain(t, c, "alicia") // the last rename's hold of alicia was cut short

	if _, err := s.GetAccountByUsername(ctx, "alicia"); !errors.Is(err, account.ErrNotFound) {
		t.Fatalf("GetAccountByUsername(left name) = %v, want ErrNotFound", err)
	}
	if err := signupAt(t, s, "alicia", until.Add(-time.Second)); !errors.Is(err, account.ErrUsernameTaken) {
		t.Fatalf("signup during the hold: %v, want ErrUsernameTaken", err)
	}
	mustNil(t, "signup after the hold", signupAt(t, s, "alicia", until))

	// A deletion whose hold (on another slot) was cut short: the
	// tombstone says how long the name is held.
	mustNil(t, "DeleteAccount", s.DeleteAccount(ctx, acc.ID, now, until))
	registerAgain(t, c, "alex")
	if err := signupAt(t, s, "alex", until.Add(-time.Second)); !errors.Is(err, account.ErrUsernameTaken) {
		t.Fatalf("signup during the deletion hold: %v, want ErrUsernameTaken", err)
	}
	mustNil(t, "signup after the deletion hold", signupAt(t, s, "alex", until))
}

// A claim whose rename never reached the account is taken while the
// rename may still be under way, and free once the account has moved on.
func TestCutShortClaimIsFreedByTheNextRename(t *testing.T) {
	t.Parallel()
	s, c := lifecycleStore(t, redisstore.Options{})
	ctx := t.Context()
	acc, dev, sess := fixture(t, "alice")
	mustNil(t, "CreateAccount", s.CreateAccount(ctx, acc, dev, sess))
	now := acc.Created.Add(time.Minute)
	err := c.HSet(ctx, "hp:{"+redisstore.NameTag("pending")+"}:name", "account_id", acc.ID,
		"home", redisstore.NameTag("alice"), "gen", "1", "until", "00010101000000000000000", "op", "x").Err()
	mustNil(t, "HSET", err)
	if err := signupAt(t, s, "pending", now); !errors.Is(err, account.ErrUsernameTaken) {
		t.Fatalf("signup on a claim in flight: %v, want ErrUsernameTaken", err)
	}
	mustNil(t, "RenameAccount", s.RenameAccount(ctx, acc.ID, "Other", "other", now, now.Add(hold)))
	mustNil(t, "signup after the account moved on", signupAt(t, s, "pending", now))
}

// After a deletion Redis keeps ids, digests and times, never a username,
// and what it keeps expires: the hold with the hold, link codes with
// their lifetime.
func TestDeletionLeavesNoPersonalData(t *testing.T) {
	t.Parallel()
	s, c := lifecycleStore(t, redisstore.Options{})
	ctx := t.Context()
	acc, dev, sess := fixture(t, "alice")
	mustNil(t, "CreateAccount", s.CreateAccount(ctx, acc, dev, sess))
	other, otherDev, otherSess := fixture(t, "bob")
	mustNil(t, "CreateAccount", s.CreateAccount(ctx, other, otherDev, otherSess))
	now := acc.Created
	lc := account.LinkCode{Digest: sum("l1"), AccountID: other.ID, DeviceID: otherDev.ID, Created: now, Expires: now.Add(10 * time.Minute)}
	mustNil(t, "CreateLinkCode", s.CreateLinkCode(ctx, lc, 3, now))
	mustNil(t, "RenameAccount", s.RenameAccount(ctx, acc.ID, "Alicia", "alicia", now, now.Add(hold)))
	mustNil(t, "DeleteAccount", s.DeleteAccount(ctx, acc.ID, now, now.Add(hold)))
	for _, k := range c.Keys(ctx, "*").Val() {
		if strings.Contains(k, acc.ID) && !strings.Contains(k, ":tomb:") {
			t.Errorf("key %q of the deleted account left", k)
		}
		if strings.Contains(strings.Join(dump(ctx, c, k), " "), "ali") || strings.Contains(k, "ali") {
			t.Errorf("key %q keeps the deleted username", k)
		}
		ttl := c.PTTL(ctx, k).Val()
		switch {
		case strings.Contains(k, ":tomb:") || strings.HasSuffix(k, ":name") && !strings.Contains(k, redisstore.NameTag("bob")):
			if ttl <= 0 || ttl > hold {
				t.Errorf("%q expires in %v, want within the hold", k, ttl)
			}
		case strings.Contains(k, ":link:") || strings.HasPrefix(k, "hp:{lc:"):
			if ttl <= 0 || ttl > 10*time.Minute {
				t.Errorf("%q expires in %v, want within the code's lifetime", k, ttl)
			}
		}
	}
}

// dump returns the values under key, whatever its type.
func dump(ctx context.Context, c *redis.Client, key string) []string {
	switch c.Type(ctx, key).Val() {
	case "hash":
		var out []string
		for f, v := range c.HGetAll(ctx, key).Val() {
			out = append(out, f, v)
		}
		return out
	case "set":
		return c.SMembers(ctx, key).Val()
	}
	return []string{c.Get(ctx, key).Val()}
}

// TestLegacyLinkCode: a link record written before records named the
// device that made them (no 'device' field, or an empty one) still
// redeems until it expires, whatever became of the account's devices.
func TestLegacyLinkCode(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		field []string // set on the link record after its 'device' field is removed
		want  error
	}{
		{"no maker recorded", nil, nil},
		{"empty maker", []string{"device", ""}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			s, c := lifecycleStore(t, redisstore.Options{})
			ctx := t.Context()
			acc, dev, sess := fixture(t, "alice")
			mustNil(t, "CreateAccount", s.CreateAccount(ctx, acc, dev, sess))
			now := acc.Created
			lc := account.LinkCode{Digest: sum("l1"), AccountID: acc.ID, DeviceID: dev.ID, Created: now, Expires: now.Add(10 * time.Minute)}
			mustNil(t, "CreateLinkCode", s.CreateLinkCode(ctx, lc, 3, now))
			keys := c.Keys(ctx, "hp:*:link:"+hex.EncodeToString(lc.Digest)).Val()
			if len(keys) != 1 {
				t.Fatalf("link record keys: %q", keys)
			}
			mustNil(t, "HDEL", c.HDel(ctx, keys[0], "device").Err())
			if tc.field != nil {
				mustNil(t, "HSET", c.HSet(ctx, keys[0], tc.field).Err())
			}
			mustNil(t, "EndSession", s.EndSession(ctx, dev.ID, now))
			newcomer, newSess := newDev(t, "", now)
			got, err := s.RedeemLinkCode(ctx, lc.Digest, now.Add(time.Minute), newcomer, newSess)
			if !errors.Is(err, tc.want) || (err == nil && got.ID != acc.ID) {
				t.Fatalf("RedeemLinkCode = %s, %v; want %v", got.ID, err, tc.want)
			}
		})
	}
}
