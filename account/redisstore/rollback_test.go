package redisstore_test

import (
	"bytes"
	"fmt"
	"testing"
	"time"

	"github.com/hallpass/hallpass/account"
	"github.com/hallpass/hallpass/account/redisstore"
	"github.com/hallpass/hallpass/internal/redistest"
)

// A node from before retry ids (a rolling deployment, or a rollback) knows
// nothing of a session's retry digest: its advance leaves the digest of
// the advance before in the hash. That digest must not answer for the
// token the older node's advance spent.
func TestRetryDigestAfterOlderAdvance(t *testing.T) {
	srv := redistest.Start(t)
	c := newClient(t, srv.Addr())
	s, err := redisstore.New(c, redisstore.Options{Prefix: "rb"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	ctx := t.Context()
	acc, dev, sess := fixture(t, "alice")
	if err := s.CreateAccount(ctx, acc, dev, sess); err != nil {
		t.Fatal(err)
	}
	digest := bytes.Repeat([]byte{7}, account.RetryDigestSize)
	now := sess.Created.Add(time.Minute)
	refresh := func(ctr uint64, at time.Time) account.RefreshOutcome {
		t.Helper()
		res, err := s.Refresh(ctx, account.RefreshRequest{DeviceID: dev.ID, Counter: ctr, Now: at,
			Grace: 30 * time.Second, Idle: time.Hour, Successor: []byte("s"), RetryDigest: digest})
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
	// The older node's refresh script advances token 2: the fields it
	// knows, nothing else.
	keys, err := c.Keys(ctx, "*session:"+dev.ID+"*").Result()
	if err != nil || len(keys) != 1 {
		t.Fatalf("session key: %v, %v", keys, err)
	}
	at := now.Add(2 * time.Minute)
	enc := func(t time.Time) string {
		return t.UTC().Format("20060102150405") + fmt.Sprintf("%09d", t.Nanosecond())
	}
	if err := c.HSet(ctx, keys[0], "counter", "3", "successor", "s3", "op", "older",
		"grace_until", enc(at.Add(30*time.Second)), "last_used", enc(at)).Err(); err != nil {
		t.Fatal(err)
	}
	got, err := s.GetSession(ctx, dev.ID)
	if err != nil || got.Counter != 3 || got.RetryDigest != nil {
		t.Fatalf("session after the older node's advance: %+v, %v; want counter 3, no retry digest", got, err)
	}
	if o := refresh(2, at.Add(time.Minute)); o != account.RefreshReused {
		t.Fatalf("token spent by the older node, with the digest of the advance before: %v, want reused", o)
	}
}
