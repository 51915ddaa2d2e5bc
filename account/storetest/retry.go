package storetest

import (
	"bytes"
	"testing"
	"time"

	"github.com/hallpass/hallpass/account"
)

// retryDigest is a retry digest made of one repeated byte.
func retryDigest(b byte) []byte { return bytes.Repeat([]byte{b}, account.RetryDigestSize) }

func reqRetry(devID string, counter uint64, now time.Time, succ string, d []byte) account.RefreshRequest {
	r := req(devID, counter, now, succ)
	r.RetryDigest = d
	return r
}

// advancedWith sets fx to the state after an advance from counter ctr at
// now with the successor succ and retry digest d.
func advancedWith(fx *fixture, ctr uint64, now time.Time, succ string, d []byte) {
	fx.sess.Counter, fx.sess.Successor, fx.sess.GraceUntil = ctr+1, []byte(succ), now.Add(grace)
	fx.sess.RetryDigest, fx.sess.LastUsed, fx.dev.LastUsed = d, now, now
}

// testRefreshRetried: the previous token after the grace window with the
// retry digest of the advance gets the stored successor again, repeatably,
// and only LastUsed changes; any other digest, or none, is reuse.
func testRefreshRetried(t *testing.T, f Factory) {
	s := f.New(t)
	fx := newFixture(t, "Alice")
	create(t, s, fx)
	now := t0.Add(time.Hour)
	wantOutcome(t, refresh(t, s, reqRetry(fx.dev.ID, 1, now, "s2", retryDigest(1))), account.RefreshAdvanced, "s2")
	advancedWith(&fx, 1, now, "s2", retryDigest(1))
	mustState(t, s, fx)

	// Within grace it is grace whatever the digest, and nothing changes.
	for _, d := range [][]byte{retryDigest(1), retryDigest(2), nil} {
		wantOutcome(t, refresh(t, s, reqRetry(fx.dev.ID, 1, now.Add(grace-time.Nanosecond), "x", d)), account.RefreshGrace, "s2")
		mustState(t, s, fx)
	}
	// After grace, with the same digest: retried, again and again, even
	// after a restart; LastUsed moves, nothing else.
	s = f.Reopen(t, s)
	for _, at := range []time.Time{now.Add(grace), now.Add(time.Hour), now.Add(idle)} {
		wantOutcome(t, refresh(t, s, reqRetry(fx.dev.ID, 1, at, "x", retryDigest(1))), account.RefreshRetried, "s2")
		fx.sess.LastUsed, fx.dev.LastUsed = at, at
		mustState(t, s, fx)
	}
	// The retry counted as a use: the idle limit runs from it, so the
	// successor still advances more than idle after the advance.
	at := now.Add(idle + time.Hour)
	wantOutcome(t, refresh(t, s, reqRetry(fx.dev.ID, 2, at, "s3", retryDigest(3))), account.RefreshAdvanced, "s3")
	advancedWith(&fx, 2, at, "s3", retryDigest(3))
	mustState(t, s, fx)
	// The session moved on: the older token with the first digest is reuse.
	wantOutcome(t, refresh(t, s, reqRetry(fx.dev.ID, 1, at.Add(grace), "x", retryDigest(1))), account.RefreshReused, "")
	sess, err := s.GetSession(ctxT(t), fx.dev.ID)
	if err != nil || !sess.Ended.Equal(at.Add(grace)) || sess.Successor != nil || sess.RetryDigest != nil {
		t.Fatalf("session after reuse: %+v, %v; want ended, no successor, no retry digest", sess, err)
	}
}

// testRefreshRetryReused: after the grace window, the previous token with
// another digest or none is reuse, as is a retry where the advance stored
// no digest (it carried none, or a later advance without one cleared it).
func testRefreshRetryReused(t *testing.T, f Factory) {
	tests := []struct {
		name     string
		advances [][]byte // the digest of each advance, from counter 1
		present  []byte   // with the previous counter, after grace
	}{
		{"another digest", [][]byte{retryDigest(1)}, retryDigest(2)},
		{"no digest", [][]byte{retryDigest(1)}, nil},
		{"advance without digest", [][]byte{nil}, retryDigest(1)},
		{"cleared by a later advance", [][]byte{retryDigest(1), nil}, retryDigest(1)},
		{"previous advance's digest", [][]byte{retryDigest(1), retryDigest(2)}, retryDigest(1)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := f.New(t)
			fx := newFixture(t, "Alice")
			create(t, s, fx)
			now := t0.Add(time.Hour)
			for i, d := range tc.advances {
				ctr := uint64(i + 1)
				now = now.Add(time.Minute)
				wantOutcome(t, refresh(t, s, reqRetry(fx.dev.ID, ctr, now, "s", d)), account.RefreshAdvanced, "s")
				advancedWith(&fx, ctr, now, "s", d)
				mustState(t, s, fx) // the digest replaced (or cleared) the previous one
			}
			prev := fx.sess.Counter - 1
			at := now.Add(grace)
			wantOutcome(t, refresh(t, s, reqRetry(fx.dev.ID, prev, at, "x", tc.present)), account.RefreshReused, "")
			dev, err := s.GetDevice(ctxT(t), fx.dev.ID)
			if err != nil || !dev.Revoked.Equal(at) {
				t.Fatalf("device after reuse: %+v, %v; want revoked at %v", dev, err, at)
			}
			// Ended: the digest of the advance no longer helps either.
			wantOutcome(t, refresh(t, s, reqRetry(fx.dev.ID, prev, at, "x", tc.advances[len(tc.advances)-1])), account.RefreshRejected, "")
		})
	}
}
