package flow_test

import (
	"context"
	"errors"
	"log/slog"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hallpass/hallpass/account"
	"github.com/hallpass/hallpass/flow"
	"github.com/hallpass/hallpass/internal/logbuf"
	"github.com/hallpass/hallpass/revocation"
	revbolt "github.com/hallpass/hallpass/revocation/boltstore"
)

// flakyStep fails the store step of a sign-out (EndSession,
// EndAccountSessions, DeleteAccount) while fail > 0 (counting down), or
// always when fail < 0, as a store that does not answer; onStep, when set,
// runs first.
type flakyStep struct {
	account.Store
	fail   atomic.Int32
	calls  atomic.Int32
	onStep func()
}

var errStepDown = errors.New("connection refused")

func (s *flakyStep) step() error {
	s.calls.Add(1)
	if s.onStep != nil {
		s.onStep()
	}
	for {
		n := s.fail.Load()
		switch {
		case n < 0:
			return errStepDown
		case n == 0:
			return nil
		case s.fail.CompareAndSwap(n, n-1):
			return errStepDown
		}
	}
}

func (s *flakyStep) EndSession(ctx context.Context, id string, at time.Time) error {
	if err := s.step(); err != nil {
		return err
	}
	return s.Store.EndSession(ctx, id, at)
}

func (s *flakyStep) EndAccountSessions(ctx context.Context, id string, at time.Time) ([]string, error) {
	if err := s.step(); err != nil {
		return nil, err
	}
	return s.Store.EndAccountSessions(ctx, id, at)
}

func (s *flakyStep) DeleteAccount(ctx context.Context, id string, now, holdUntil time.Time) error {
	if err := s.step(); err != nil {
		return err
	}
	return s.Store.DeleteAccount(ctx, id, now, holdUntil)
}

// stepObserver records the sign-out steps that failed for good.
type stepObserver struct {
	mu     sync.Mutex
	failed []string
}

func (*stepObserver) StoreCall(string, time.Duration)  {}
func (*stepObserver) ProofRefused(string)              {}
func (*stepObserver) SignedUp()                        {}
func (*stepObserver) Refreshed(account.RefreshOutcome) {}
func (o *stepObserver) SignOutStepFailed(op string) {
	o.mu.Lock()
	o.failed = append(o.failed, op)
	o.mu.Unlock()
}

func (o *stepObserver) ops() []string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return slices.Clone(o.failed)
}

var _ flow.SignOutStepObserver = (*stepObserver)(nil)

// signOutPaths are the calls that write a revocation entry and then do a
// store step, with the store operation each one runs.
var signOutPaths = []struct {
	name    string
	op      string
	signOut func(ctx context.Context, f *flow.Flows, acc, dev string) error
}{
	{"logout", "end_session", func(ctx context.Context, f *flow.Flows, _, dev string) error {
		return f.RevokeDevice(ctx, dev, "logout")
	}},
	{"device entry", "end_session", func(ctx context.Context, f *flow.Flows, _, dev string) error {
		_, err := f.Revoke(ctx, revocation.KindDevice, dev, "admin")
		return err
	}},
	{"account entry", "end_account_sessions", func(ctx context.Context, f *flow.Flows, acc, _ string) error {
		_, err := f.Revoke(ctx, revocation.KindAccount, acc, "admin")
		return err
	}},
	{"sessions of a ban", "end_account_sessions", func(ctx context.Context, f *flow.Flows, acc, _ string) error {
		return f.EndAccount(ctx, acc, "ban")
	}},
	{"deletion", "delete_account", func(ctx context.Context, f *flow.Flows, acc, _ string) error {
		return f.DeleteAccount(ctx, acc, "deleted")
	}},
}

// openRevocations opens a revocation store on a bbolt file of the test's.
func openRevocations(t *testing.T) *revbolt.Store {
	t.Helper()
	rs, err := revbolt.Open(filepath.Join(t.TempDir(), "revocation.db"), revbolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rs.Close() })
	return rs
}

// newMirroredFixture builds flows over store with a revocation store and
// the issuer's own mirror of it (Observe, Sessions), as hallpass serve runs
// them; the mirror does not go stale on the fixture's clock. opts change
// the configuration as newFixture's do.
func newMirroredFixture(t *testing.T, store account.Store, opts ...func(*flow.Config)) (*fixture, *revbolt.Store) {
	t.Helper()
	rs := openRevocations(t)
	var mirror *revocation.Mirror
	fx := newFixture(t, store, append([]func(*flow.Config){func(c *flow.Config) {
		var err error
		if mirror, err = revocation.NewMirror(rs, revocation.MirrorOptions{Now: c.Now, MaxStaleness: 365 * 24 * time.Hour}); err != nil {
			t.Fatal(err)
		}
		c.Revocations, c.Observe, c.Sessions = rs, mirror.Observe, mirror
	}}, opts...)...)
	mirror.Start()
	t.Cleanup(func() { mirror.Close() })
	<-mirror.Synced()
	return fx, rs
}

type stepFixture struct {
	*fixture
	store *flakyStep
	obs   *stepObserver
	logs  *logbuf.Buffer
}

// newStepFixture builds flows over a flaky bbolt store, with a revocation
// store (so the entry is written first, as in production), an observer and
// a log buffer.
func newStepFixture(t *testing.T) *stepFixture {
	t.Helper()
	rs := openRevocations(t)
	sf := &stepFixture{store: &flakyStep{Store: openBolt(t)}, obs: &stepObserver{}, logs: &logbuf.Buffer{}}
	sf.fixture = newFixture(t, sf.store, func(c *flow.Config) {
		c.Revocations, c.Observer = rs, sf.obs
		c.Logger = slog.New(slog.NewJSONHandler(sf.logs, nil))
	})
	return sf
}

// TestSignOutStepRetried is the regression test of the sign-out whose
// store step failed after its entry was written: the answer was 503 "retry",
// but the entry already refused the owner's own token, so nobody could
// retry. A logout left the session live in the store (its refresh token
// worked again once the entry expired, if no refresh met the entry
// first); a deletion left the account's data and did not hold its name.
// Now the flow retries the step itself when the store did not answer.
func TestSignOutStepRetried(t *testing.T) {
	for _, p := range signOutPaths {
		t.Run(p.name, func(t *testing.T) {
			for _, tc := range []struct {
				name      string
				fail      int32 // failing steps before the store answers; -1: never answers
				wantCalls int32
				wantErr   error
			}{
				{"first attempt", 0, 1, nil},
				{"two failures, then done", 2, 3, nil},
				{"store down: 503, counted once", -1, 3, flow.ErrUnavailable},
			} {
				t.Run(tc.name, func(t *testing.T) {
					fx := newStepFixture(t)
					out := fx.signup(t, newKey(t), "stepper")
					fx.store.fail.Store(tc.fail)
					err := p.signOut(context.Background(), fx.flows, out.AccountID, out.DeviceID)
					if !errors.Is(err, tc.wantErr) {
						t.Fatalf("sign-out: %v, want %v", err, tc.wantErr)
					}
					if n := fx.store.calls.Load(); n != tc.wantCalls {
						t.Fatalf("store step ran %d times, want %d", n, tc.wantCalls)
					}
					logged := strings.Contains(fx.logs.String(), `"event":"signout_step_failed"`)
					if tc.wantErr == nil {
						if got := fx.obs.ops(); len(got) != 0 || logged {
							t.Fatalf("failures counted %v, logged %v; want none", got, logged)
						}
						checkSignedOut(t, fx, out, p.op)
						return
					}
					if got := fx.obs.ops(); !slices.Equal(got, []string{p.op}) || !logged {
						t.Fatalf("failures counted %v, logged %v; want [%s], logged", got, logged, p.op)
					}
				})
			}
		})
	}
}

// checkSignedOut checks the store step happened: the refresh token is
// refused by the store itself (no mirror here), and a deleted account is
// gone.
func checkSignedOut(t *testing.T, fx *stepFixture, out flow.Tokens, op string) {
	t.Helper()
	if op == "delete_account" {
		if _, err := fx.flows.Account(context.Background(), out.AccountID); !errors.Is(err, flow.ErrNotFound) {
			t.Fatalf("account after the deletion: %v, want not found", err)
		}
	}
	sess, err := fx.store.GetSession(context.Background(), out.DeviceID)
	switch {
	case op == "delete_account" && !errors.Is(err, account.ErrNotFound):
		t.Fatalf("session after the deletion: %v, want not found", err)
	case op != "delete_account" && (err != nil || sess.Ended.IsZero()):
		t.Fatalf("session after the sign-out: %v, ended %v", err, sess.Ended)
	}
}

// TestSignOutStepOutlivesHangUp: a client that hangs up once its entry is
// written does not stop the store step's retry (its token is refused
// already, it could not come back to finish).
func TestSignOutStepOutlivesHangUp(t *testing.T) {
	for _, p := range signOutPaths {
		t.Run(p.name, func(t *testing.T) {
			fx := newStepFixture(t)
			out := fx.signup(t, newKey(t), "hangup")
			ctx, hangUp := context.WithCancel(context.Background())
			defer hangUp()
			fx.store.fail.Store(1)
			fx.store.onStep = hangUp // gone by the first attempt
			if err := p.signOut(ctx, fx.flows, out.AccountID, out.DeviceID); err != nil {
				t.Fatalf("sign-out: %v", err)
			}
			if n := fx.store.calls.Load(); n != 2 {
				t.Fatalf("store step ran %d times, want 2 (the retry after the hang-up)", n)
			}
			checkSignedOut(t, fx, out, p.op)
		})
	}
}

// TestSignOutStepVerdictNotRetried: a store that answers (an unknown
// account) is not asked again.
func TestSignOutStepVerdictNotRetried(t *testing.T) {
	fx := newStepFixture(t)
	if err := fx.flows.DeleteAccount(context.Background(), "acc_AAAAAAAAAAAAAAAAAAAAAA", "deleted"); !errors.Is(err, flow.ErrNotFound) {
		t.Fatalf("deleting an unknown account: %v, want not found", err)
	}
	if n := fx.store.calls.Load(); n != 1 {
		t.Fatalf("store step ran %d times, want 1", n)
	}
	if got := fx.obs.ops(); len(got) != 0 {
		t.Fatalf("failures counted %v, want none", got)
	}
}

// lostReply runs the real DeleteAccount, EndSession or EndAccountSessions
// and, while lose > 0 (counting down), answers as a store whose reply
// never came back: the step was made, the caller saw the store fail.
type lostReply struct {
	account.Store
	lose  atomic.Int32
	calls atomic.Int32
}

func (s *lostReply) lost() bool {
	s.calls.Add(1)
	for {
		n := s.lose.Load()
		if n <= 0 {
			return false
		}
		if s.lose.CompareAndSwap(n, n-1) {
			return true
		}
	}
}

func (s *lostReply) EndSession(ctx context.Context, id string, at time.Time) error {
	err := s.Store.EndSession(ctx, id, at)
	if s.lost() {
		return errStepDown
	}
	return err
}

func (s *lostReply) EndAccountSessions(ctx context.Context, id string, at time.Time) ([]string, error) {
	ended, err := s.Store.EndAccountSessions(ctx, id, at)
	if s.lost() {
		return nil, errStepDown
	}
	return ended, err
}

func (s *lostReply) DeleteAccount(ctx context.Context, id string, now, holdUntil time.Time) error {
	err := s.Store.DeleteAccount(ctx, id, now, holdUntil)
	if s.lost() {
		return errStepDown
	}
	return err
}

// TestSignOutStepReplyLost: the store made the step but its reply was
// lost (a timeout, an abandoned call that completed). The retry of a
// deletion then found no account: the deletion answered not found
// although the account was deleted, and skipped the entry written again
// after the step, so a token minted by a refresh that raced the deletion
// stayed valid. A step whose earlier attempt did not answer and that now
// finds nothing to act on is done.
func TestSignOutStepReplyLost(t *testing.T) {
	for _, p := range signOutPaths {
		t.Run(p.name, func(t *testing.T) {
			rs := openRevocations(t)
			store := &lostReply{Store: openBolt(t)}
			var mu sync.Mutex
			var written []revocation.Entry
			fx := newFixture(t, store, func(c *flow.Config) {
				c.Revocations = rs
				c.Observe = func(e revocation.Entry) { mu.Lock(); written = append(written, e); mu.Unlock() }
			})
			out := fx.signup(t, newKey(t), "lostreply")
			store.lose.Store(1)
			if err := p.signOut(context.Background(), fx.flows, out.AccountID, out.DeviceID); err != nil {
				t.Fatalf("sign-out whose first store reply was lost: %v, want done", err)
			}
			if n := store.calls.Load(); n != 2 {
				t.Fatalf("store step ran %d times, want 2", n)
			}
			checkSignedOut(t, &stepFixture{fixture: fx, store: &flakyStep{Store: store.Store}}, out, p.op)
			mu.Lock()
			defer mu.Unlock()
			// A device entry reaches SignOutMargin past its making, and
			// the step ended within it: written once.
			want := 2
			if p.op == "end_session" {
				want = 1
			}
			if len(written) != want {
				t.Fatalf("%d entries written, want %d", len(written), want)
			}
		})
	}
}

// TestSignOutStepFailedHoldsEntry: when the store step fails for good, the
// session it should have ended stays live in the store. Before, the first
// entry (Config.EntryTTL) was all that stopped its refresh token: once it
// expired, with no refresh having met it, the signed-out device (or the
// banned or deleted account) refreshed again. Now the entry is written once
// more for the sessions' idle limit, and a refresh long after the first
// entry's end is still refused, ending the session.
func TestSignOutStepFailedHoldsEntry(t *testing.T) {
	for _, p := range signOutPaths {
		t.Run(p.name, func(t *testing.T) {
			store := &flakyStep{Store: openBolt(t)}
			var ttl, idle time.Duration
			fx, rs := newMirroredFixture(t, store, func(c *flow.Config) { ttl, idle = c.EntryTTL, c.RefreshIdle })
			k := newKey(t)
			out := fx.signup(t, k, "holder")
			fx.clock.Add(2 * time.Second)
			store.fail.Store(-1)
			store.onStep = func() { fx.clock.Add(time.Second) } // the retries take time
			if err := p.signOut(context.Background(), fx.flows, out.AccountID, out.DeviceID); !errors.Is(err, flow.ErrUnavailable) {
				t.Fatalf("sign-out with the store step down: %v, want ErrUnavailable", err)
			}
			store.fail.Store(0)
			fx.clock.Add(ttl + time.Hour) // the first entry is long gone
			if _, err := fx.refresh(t, k, out.RefreshToken); !errors.Is(err, flow.ErrInvalidGrant) {
				t.Fatalf("refresh after the first entry expired: %v, want invalid_grant", err)
			}
			if op := p.op; op != "delete_account" {
				checkSignedOut(t, &stepFixture{fixture: fx, store: store}, out, op)
			}
			entries, _, err := rs.Snapshot(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			held := false
			for _, e := range entries {
				held = held || (e.ID == out.DeviceID || e.ID == out.AccountID) && e.Expires.Sub(e.Before) >= idle
			}
			if !held {
				t.Fatalf("no entry held for the idle limit (%v) among %+v", idle, entries)
			}
		})
	}
}
