package boltstore

import (
	"bytes"
	"path/filepath"
	"testing"
	"time"

	"github.com/hallpass/hallpass/account"
	bolt "go.etcd.io/bbolt"
)

// decodeSessionBeforeRetry is how a binary before retry ids read a session
// record: JSON, or format 1 and nothing after the successor; any other
// format byte, or a trailing byte, is corrupt.
func decodeSessionBeforeRetry(raw []byte) (account.Session, error) {
	r, _, legacy, err := open(raw, bucketSessions, formatV1)
	if err != nil || legacy {
		if legacy {
			return decodeJSON[account.Session](raw, bucketSessions)
		}
		return account.Session{}, err
	}
	s := account.Session{DeviceID: r.string(), AccountID: r.string(), JKT: r.string(), Counter: r.uvarint(),
		Created: r.time(), LastUsed: r.time(), Expires: r.time(), GraceUntil: r.time(), Ended: r.time(),
		Successor: r.bytes()}
	return s, r.done(bucketSessions)
}

// A deployment rolled back to a binary before retry ids must still read
// every session this one wrote, a session advanced with a retry digest
// included; and once rolled forward again, a digest stored before an
// advance made by the older binary (which knows nothing of it) must not
// answer for the token that advance spent.
func TestSessionRollback(t *testing.T) {
	path := filepath.Join(t.TempDir(), "accounts.db")
	s, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	t0 := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	acc := account.Account{ID: "acc_AAAAAAAAAAAAAAAAAAAAAA", Username: "Alice", UsernameKey: "alice", Created: t0}
	dev := account.Device{ID: "dev_BBBBBBBBBBBBBBBBBBBBBA", AccountID: acc.ID, Name: "phone", JKT: "jkt", Created: t0, LastUsed: t0}
	sess := account.Session{DeviceID: dev.ID, AccountID: acc.ID, JKT: "jkt", Counter: 1, Created: t0, LastUsed: t0,
		Expires: t0.Add(90 * 24 * time.Hour)}
	if err := s.CreateAccount(ctx, acc, dev, sess); err != nil {
		t.Fatal(err)
	}
	digest := bytes.Repeat([]byte{7}, account.RetryDigestSize)
	now := t0.Add(time.Hour)
	refresh := func(ctr uint64, at time.Time) account.RefreshOutcome {
		t.Helper()
		res, err := s.Refresh(ctx, account.RefreshRequest{DeviceID: dev.ID, Counter: ctr, Now: at,
			Grace: 30 * time.Second, Idle: 30 * 24 * time.Hour, Successor: []byte("s"), RetryDigest: digest})
		if err != nil {
			t.Fatal(err)
		}
		return res.Outcome
	}
	if o := refresh(1, now); o != account.RefreshAdvanced {
		t.Fatalf("advance: %v", o)
	}
	if o := refresh(1, now.Add(time.Minute)); o != account.RefreshRetried {
		t.Fatalf("retry after grace: %v, want retried", o)
	}
	s.Close()

	// The older binary: it reads the session, and advances it (writing
	// its own format 1 record, leaving whatever else the file holds).
	db, err := bolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketSessions)
		old, err := decodeSessionBeforeRetry(b.Get([]byte(dev.ID)))
		if err != nil {
			return err
		}
		if old.Counter != 2 || string(old.Successor) != "s" {
			t.Errorf("session as the older binary reads it: %+v", old)
		}
		old.Counter, old.Successor, old.GraceUntil, old.LastUsed = 3, []byte("s3"), now.Add(2*time.Minute+30*time.Second), now.Add(2*time.Minute)
		return b.Put([]byte(dev.ID), encodeSession(old))
	})
	db.Close()
	if err != nil {
		t.Fatalf("older binary: %v", err)
	}

	s, err = Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	got, err := s.GetSession(ctx, dev.ID)
	if err != nil || got.Counter != 3 || got.RetryDigest != nil {
		t.Fatalf("session after the older binary's advance: %+v, %v; want counter 3, no retry digest", got, err)
	}
	// Token 2, spent by the older binary without a digest, with the digest
	// of the advance before: reuse.
	if o := refresh(2, now.Add(time.Hour)); o != account.RefreshReused {
		t.Fatalf("token spent by the older binary, with an earlier digest: %v, want reused", o)
	}
}
