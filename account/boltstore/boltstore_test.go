package boltstore_test

import (
	"errors"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
	"go.uber.org/goleak"

	"github.com/hallpass/hallpass/account"
	"github.com/hallpass/hallpass/account/boltstore"
	"github.com/hallpass/hallpass/account/storetest"
)

// TestMain runs the test binary as the crash test's child process when
// TestCrashKeepsAcknowledged names a store file in crashChildEnv, and runs
// the tests otherwise.
func TestMain(m *testing.M) {
	if path := os.Getenv(crashChildEnv); path != "" {
		os.Exit(crashChild(path, os.Stdout))
	}
	goleak.VerifyTestMain(m)
}

// factory keeps one file per store; Reopen opens the same file again.
type factory struct {
	mu    sync.Mutex
	paths map[account.Store]string
}

func (f *factory) open(t *testing.T, path string) account.Store {
	t.Helper()
	s, err := boltstore.Open(path, boltstore.Options{})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	f.mu.Lock()
	f.paths[s] = path
	f.mu.Unlock()
	return s
}

func (f *factory) New(t *testing.T) account.Store {
	return f.open(t, filepath.Join(t.TempDir(), "accounts.db"))
}

func (f *factory) Reopen(t *testing.T, old account.Store) account.Store {
	t.Helper()
	f.mu.Lock()
	path := f.paths[old]
	f.mu.Unlock()
	if err := old.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	return f.open(t, path)
}

func TestConformance(t *testing.T) {
	storetest.Run(t, &factory{paths: map[account.Store]string{}})
}

func TestFileMode(t *testing.T) {
	path := filepath.Join(t.TempDir(), "accounts.db")
	s, err := boltstore.Open(path, boltstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("file mode %v, want 0600", fi.Mode().Perm())
	}
}

// A second opener (another process in production; flock locks are per open
// file description, so a second Open in this process conflicts the same way)
// fails within the lock timeout instead of hanging.
func TestLockedFileFailsFast(t *testing.T) {
	path := filepath.Join(t.TempDir(), "accounts.db")
	s, err := boltstore.Open(path, boltstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	start := time.Now()
	s2, err := boltstore.Open(path, boltstore.Options{LockTimeout: 200 * time.Millisecond})
	if err == nil {
		s2.Close()
		t.Fatal("second Open of a locked file succeeded")
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("second Open took %v", d)
	}
	// Once the first store is closed the file opens again.
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s3, err := boltstore.Open(path, boltstore.Options{})
	if err != nil {
		t.Fatalf("Open after Close: %v", err)
	}
	s3.Close()
}

func TestOpenErrors(t *testing.T) {
	dir := t.TempDir()
	for name, tc := range map[string]struct {
		path string
		opts boltstore.Options
	}{
		"empty path":       {"", boltstore.Options{}},
		"negative timeout": {filepath.Join(dir, "a.db"), boltstore.Options{LockTimeout: -1}},
		"directory":        {dir, boltstore.Options{}},
		"missing parent":   {filepath.Join(dir, "no", "such", "a.db"), boltstore.Options{}},
	} {
		if s, err := boltstore.Open(tc.path, tc.opts); err == nil {
			s.Close()
			t.Errorf("%s: Open succeeded", name)
		}
	}
}

// A record that does not decode is reported as the store's failure
// (ErrUnavailable, a 503 upstream), never as a panic or a client error.
func TestCorruptRecord(t *testing.T) {
	path := filepath.Join(t.TempDir(), "accounts.db")
	s, err := boltstore.Open(path, boltstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	id, _ := account.NewID(account.AccountPrefix, nil)
	s.Close()
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		if err := tx.Bucket([]byte("accounts")).Put([]byte(id), []byte("{not json")); err != nil {
			return err
		}
		return tx.Bucket([]byte("usernames")).Put([]byte("ghost"), []byte(id))
	})
	db.Close()
	if err != nil {
		t.Fatal(err)
	}
	s, err = boltstore.Open(path, boltstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := s.GetAccount(t.Context(), id); !errors.Is(err, account.ErrUnavailable) {
		t.Fatalf("GetAccount(corrupt) = %v, want ErrUnavailable", err)
	}
	if _, err := s.GetAccountByUsername(t.Context(), "ghost"); !errors.Is(err, account.ErrUnavailable) {
		t.Fatalf("GetAccountByUsername(corrupt) = %v, want ErrUnavailable", err)
	}
}

// BenchmarkRefresh: one advancing refresh per op (one fsync'd transaction).
func BenchmarkRefresh(b *testing.B) {
	s, err := boltstore.Open(filepath.Join(b.TempDir(), "accounts.db"), boltstore.Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	now := time.Now()
	accID, _ := account.NewID(account.AccountPrefix, nil)
	devID, _ := account.NewID(account.DevicePrefix, nil)
	err = s.CreateAccount(b.Context(),
		account.Account{ID: accID, Username: "bench", UsernameKey: "bench", Created: now},
		account.Device{ID: devID, AccountID: accID, JKT: "j", Created: now},
		account.Session{DeviceID: devID, AccountID: accID, JKT: "j", Counter: 1, Created: now, Expires: now.Add(time.Hour)})
	if err != nil {
		b.Fatal(err)
	}
	succ := make([]byte, 200)
	b.ResetTimer()
	for i := range b.N {
		res, err := s.Refresh(b.Context(), account.RefreshRequest{DeviceID: devID, Counter: uint64(i + 1), Now: now, Successor: succ})
		if err != nil || res.Outcome != account.RefreshAdvanced {
			b.Fatal(res.Outcome, err)
		}
	}
}

// TestLegacyJSONRecords: a file written before the binary record format
// (account, device and session as JSON objects) still reads, refreshes and
// lists, and a write moves the records it touches to the current format.
func TestLegacyJSONRecords(t *testing.T) {
	path := filepath.Join(t.TempDir(), "accounts.db")
	s, err := boltstore.Open(path, boltstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	const (
		accID = "acc_AAAAAAAAAAAAAAAAAAAAAA"
		devID = "dev_BBBBBBBBBBBBBBBBBBBBBA"
	)
	// As the earlier version's json.Marshal wrote them.
	legacy := map[string]string{
		"accounts": `{"id":"acc_AAAAAAAAAAAAAAAAAAAAAA","username":"Alice","username_key":"alice","created":"2030-01-02T03:04:05.123456789+01:00","banned":false,"recovery_salt":"c2FsdA==","recovery_codes":["AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE="]}`,
		"devices":  `{"id":"dev_BBBBBBBBBBBBBBBBBBBBBA","account_id":"acc_AAAAAAAAAAAAAAAAAAAAAA","name":"phone","jkt":"jkt","created":"2030-01-02T03:04:05.123456789+01:00","last_used":"2030-01-02T03:04:05.123456789+01:00","revoked":"0001-01-01T00:00:00Z"}`,
		"sessions": `{"device_id":"dev_BBBBBBBBBBBBBBBBBBBBBA","account_id":"acc_AAAAAAAAAAAAAAAAAAAAAA","jkt":"jkt","counter":7,"created":"2030-01-02T03:04:05.123456789+01:00","last_used":"2030-01-02T03:04:05.123456789+01:00","expires":"2030-04-02T03:04:05.123456789+01:00","grace_until":"2030-01-02T03:04:35.123456789+01:00","successor":"czc=","ended":"0001-01-01T00:00:00Z"}`,
	}
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		for bucket, rec := range legacy {
			key := accID
			if bucket != "accounts" {
				key = devID
			}
			if err := tx.Bucket([]byte(bucket)).Put([]byte(key), []byte(rec)); err != nil {
				return err
			}
		}
		if err := tx.Bucket([]byte("usernames")).Put([]byte("alice"), []byte(accID)); err != nil {
			return err
		}
		return tx.Bucket([]byte("account_devices")).Put([]byte(accID+devID), nil)
	})
	db.Close()
	if err != nil {
		t.Fatal(err)
	}

	s, err = boltstore.Open(path, boltstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	created := time.Date(2030, 1, 2, 2, 4, 5, 123456789, time.UTC)
	acc, err := s.GetAccountByUsername(ctx, "alice")
	if err != nil || acc.ID != accID || acc.Username != "Alice" || !acc.Created.Equal(created) ||
		string(acc.RecoverySalt) != "salt" || acc.RecoveryCodesLeft() != 1 {
		t.Fatalf("legacy account: %+v, %v", acc, err)
	}
	devs, err := s.ListDevices(ctx, accID)
	if err != nil || len(devs) != 1 || devs[0].ID != devID || !devs[0].Active() || !devs[0].LastUsed.Equal(created) {
		t.Fatalf("legacy device: %+v, %v", devs, err)
	}
	sess, err := s.GetSession(ctx, devID)
	if err != nil || sess.Counter != 7 || string(sess.Successor) != "s7" || !sess.Ended.IsZero() {
		t.Fatalf("legacy session: %+v, %v", sess, err)
	}
	now := created.Add(time.Hour)
	res, err := s.Refresh(ctx, account.RefreshRequest{DeviceID: devID, Counter: 7, Now: now, Grace: time.Minute, Successor: []byte("s8")})
	if err != nil || res.Outcome != account.RefreshAdvanced {
		t.Fatalf("refresh of a legacy session: %v, %v", res.Outcome, err)
	}
	s.Close()

	// The refresh rewrote the session and the device (format 1); the
	// account, not written since, is still JSON.
	db, err = bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	_ = db.View(func(tx *bolt.Tx) error {
		for bucket, key := range map[string]string{"sessions": devID, "devices": devID, "accounts": accID} {
			first := tx.Bucket([]byte(bucket)).Get([]byte(key))[0]
			want := map[string]byte{"sessions": 1, "devices": 1, "accounts": '{'}[bucket]
			if first != want {
				t.Errorf("%s record starts with %q after the refresh", bucket, first)
			}
		}
		return nil
	})
	db.Close()
	s, err = boltstore.Open(path, boltstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	sess, err = s.GetSession(ctx, devID)
	if err != nil || sess.Counter != 8 || string(sess.Successor) != "s8" || !sess.LastUsed.Equal(now) || !sess.Created.Equal(created) {
		t.Fatalf("session after the refresh: %+v, %v", sess, err)
	}
}

// TestLegacyLinkCode: a link code stored before codes recorded the device
// that made them still reads and redeems until it expires (ten minutes at
// most), whatever became of the account's devices; it is not corrupt data.
func TestLegacyLinkCode(t *testing.T) {
	tests := []struct {
		name  string
		after time.Duration // after the code's creation
		want  error
	}{
		{"live", time.Minute, nil},
		{"last instant", 10*time.Minute - time.Nanosecond, nil},
		{"expired", 10 * time.Minute, account.ErrNotFound},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, alice := openWithAlice(t)
			ctx := t.Context()
			d := linkDigest("legacy")
			if err := boltstore.PutLegacyLink(ctx, s, alice.acc.ID, d, bt0, bt0.Add(10*time.Minute)); err != nil {
				t.Fatal(err)
			}
			if err := s.EndSession(ctx, alice.dev.ID, bt0); err != nil {
				t.Fatal(err)
			}
			if n, err := s.CountLinkCodes(ctx, alice.acc.ID, bt0); err != nil || n != 1 {
				t.Fatalf("CountLinkCodes = %d, %v; want 1", n, err)
			}
			now := bt0.Add(tc.after)
			dev := account.Device{ID: mustID(t, account.DevicePrefix), Name: "tablet", Created: now, LastUsed: now}
			dev.JKT = "jkt-" + dev.ID
			sess := account.Session{DeviceID: dev.ID, JKT: dev.JKT, Counter: 1, Created: now, LastUsed: now, Expires: now.Add(time.Hour)}
			acc, err := s.RedeemLinkCode(ctx, d, now, dev, sess)
			if !errors.Is(err, tc.want) || (err == nil && acc.ID != alice.acc.ID) {
				t.Fatalf("RedeemLinkCode(legacy code) = %s, %v; want %v", acc.ID, err, tc.want)
			}
		})
	}
}

// TestRedeemedLinkCodeRollback: a redeemed code's record stays for
// retries, but a binary from before redeemed_by (a rolled-back
// deployment) decides on its expiry alone: that must read as passed, or
// the rolled-back binary would redeem the used code a second time.
func TestRedeemedLinkCodeRollback(t *testing.T) {
	s, alice := openWithAlice(t)
	ctx := t.Context()
	lc := account.LinkCode{Digest: linkDigest("a"), AccountID: alice.acc.ID, DeviceID: alice.dev.ID, Created: bt0, Expires: bt0.Add(10 * time.Minute)}
	if err := s.CreateLinkCode(ctx, lc, 3, bt0); err != nil {
		t.Fatal(err)
	}
	now := bt0.Add(time.Minute)
	dev := account.Device{ID: mustID(t, account.DevicePrefix), Name: "tablet", Created: now, LastUsed: now}
	dev.JKT = "jkt-" + dev.ID
	sess := account.Session{DeviceID: dev.ID, JKT: dev.JKT, Created: now, LastUsed: now, Expires: now.Add(time.Hour)}
	if _, err := s.RedeemLinkCode(ctx, lc.Digest, now, dev, sess); err != nil {
		t.Fatal(err)
	}
	if _, by, err := s.RedeemedLinkCode(ctx, lc.Digest, now); err != nil || by != dev.ID {
		t.Fatalf("RedeemedLinkCode = %q, %v; want %s", by, err, dev.ID)
	}
	exp, err := boltstore.LinkExpiresAsBefore(ctx, s, lc.Digest)
	if err != nil || now.Before(exp) {
		t.Fatalf("expiry an older binary reads = %v, %v; want passed at the redemption (%v)", exp, err, now)
	}
}

// openWithAlice opens a store on a file of the test's (closed at its end)
// holding one account, alice, with its device and session.
func openWithAlice(t *testing.T) (*boltstore.Store, fixture) {
	t.Helper()
	s, err := boltstore.Open(filepath.Join(t.TempDir(), "a.db"), boltstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	alice := newFixture(t, "alice")
	if err := alice.create(t.Context(), s); err != nil {
		t.Fatal(err)
	}
	return s, alice
}
