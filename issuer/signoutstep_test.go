package issuer_test

import (
	"context"
	"errors"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hallpass/hallpass/account"
	"github.com/hallpass/hallpass/issuer"
	"github.com/hallpass/hallpass/revocation"
)

// flakyStepStore fails the store step of a sign-out (EndSession,
// EndAccountSessions, DeleteAccount) while fail > 0 (counting down), or
// always when fail < 0, as a store that does not answer.
type flakyStepStore struct {
	account.Store
	fail  atomic.Int32
	calls atomic.Int32
}

var errStepStoreDown = errors.New("account store down")

func (s *flakyStepStore) step() error {
	s.calls.Add(1)
	for {
		n := s.fail.Load()
		switch {
		case n < 0:
			return errStepStoreDown
		case n == 0:
			return nil
		case s.fail.CompareAndSwap(n, n-1):
			return errStepStoreDown
		}
	}
}

func (s *flakyStepStore) EndSession(ctx context.Context, id string, at time.Time) error {
	if err := s.step(); err != nil {
		return err
	}
	return s.Store.EndSession(ctx, id, at)
}

func (s *flakyStepStore) EndAccountSessions(ctx context.Context, id string, at time.Time) ([]string, error) {
	if err := s.step(); err != nil {
		return nil, err
	}
	return s.Store.EndAccountSessions(ctx, id, at)
}

func (s *flakyStepStore) DeleteAccount(ctx context.Context, id string, now, holdUntil time.Time) error {
	if err := s.step(); err != nil {
		return err
	}
	return s.Store.DeleteAccount(ctx, id, now, holdUntil)
}

// newFlakyStepEnv is an issuer with a revocation store (on the backend's
// engine) and its mirror, as `hallpass serve` runs, over an account store
// whose sign-out steps fail as the test says.
func newFlakyStepEnv(t *testing.T, be backend) (*env, *flakyStepStore) {
	t.Helper()
	var mirror *revocation.Mirror
	e := newEnv(t, be, withClockedRevocation(t, be, &mirror))
	flaky := &flakyStepStore{Store: e.store}
	e.cfg.Store, e.store = flaky, flaky
	e.start()
	return e, flaky
}

// sessionEnded reports whether the store shows dev's session ended.
func sessionEnded(t *testing.T, st account.Store, dev string) bool {
	t.Helper()
	sess, err := st.GetSession(context.Background(), dev)
	if err != nil {
		t.Fatalf("session of %s: %v", dev, err)
	}
	return !sess.Ended.IsZero()
}

// TestSignOutStepRetriedOverHTTP is the regression test of a logout or a
// deletion whose store step failed after its entry was written: the
// answer was 503 "retry", but the entry already refused the owner's token
// (token_revoked), so the retry could not happen: the session stayed live
// in the store (its refresh token worked again once the entry expired,
// unless a refresh met the entry first), the account's data stayed and its
// name was not held. Reproduction: a store whose first two steps fail.
// Now the issuer retries the step itself, and the answer is 204.
func TestSignOutStepRetriedOverHTTP(t *testing.T) {
	forEachBackend(t, func(t *testing.T, be backend) {
		e, flaky := newFlakyStepEnv(t, be)

		d := e.newDevice("EdDSA")
		d.signup("stepout")
		flaky.fail.Store(2)
		if r := d.logout(); r.status != http.StatusNoContent {
			t.Fatalf("logout whose first two store steps fail: %d %s", r.status, r.body)
		}
		if n := flaky.calls.Load(); n != 3 {
			t.Fatalf("store step ran %d times, want 3", n)
		}
		if !sessionEnded(t, e.store, d.devID) {
			t.Fatal("the logout answered 204 and left the session live in the store")
		}

		gone := e.newDevice("EdDSA")
		gone.signup("stepdelete")
		flaky.calls.Store(0)
		flaky.fail.Store(2)
		if r := gone.authJSON(http.MethodDelete, issuer.PathMe, nil); r.status != http.StatusNoContent {
			t.Fatalf("DELETE /v1/me whose first two store steps fail: %d %s", r.status, r.body)
		}
		if n := flaky.calls.Load(); n != 3 {
			t.Fatalf("store step ran %d times, want 3", n)
		}
		if _, err := e.store.GetAccount(context.Background(), gone.accID); !errors.Is(err, account.ErrNotFound) {
			t.Fatalf("account after the deletion: %v, want not found", err)
		}
		if r := e.do(e.newDevice("EdDSA").signupReq("stepdelete")); r.status != http.StatusConflict || r.code(t) != "username_taken" {
			t.Fatalf("signup with the deleted account's name: %d %s, want 409 username_taken", r.status, r.body)
		}
		if m := scrape(t, e); !contains(m, `hallpass_signout_step_failures_total{op="end_session"} 0`) ||
			!contains(m, `hallpass_signout_step_failures_total{op="delete_account"} 0`) {
			t.Fatalf("metrics:\n%s", grep(m, "signout_step"))
		}
		if containsLog(e, `"event":"signout_step_failed"`) {
			t.Fatal("a step that succeeded on a retry was logged as failed")
		}
	})
}

// TestSignOutStepFailsPastBudget: a store that never answers the step
// gives 503 after the retries; the failure is logged and counted. The
// owner's token is refused already (the entry), so the owner cannot retry;
// once the store answers again, a refresh that finds the entry ends the
// session.
func TestSignOutStepFailsPastBudget(t *testing.T) {
	e, flaky := newFlakyStepEnv(t, &boltBackend{})
	d := e.newDevice("EdDSA")
	d.signup("stepdown")
	flaky.fail.Store(-1)
	r := d.logout()
	if r.status != http.StatusServiceUnavailable || r.code(t) != "unavailable" {
		t.Fatalf("logout on a store that does not answer: %d %s", r.status, r.body)
	}
	if contains(string(r.body), "nothing was changed") {
		t.Fatalf("the 503 says nothing was changed, but the entry is in force: %s", r.body)
	}
	if n := flaky.calls.Load(); n != 3 {
		t.Fatalf("store step ran %d times, want 3", n)
	}
	if m := scrape(t, e); !contains(m, `hallpass_signout_step_failures_total{op="end_session"} 1`) {
		t.Fatalf("metrics:\n%s", grep(m, "signout_step"))
	}
	if !containsLog(e, `"event":"signout_step_failed"`) {
		t.Fatal("the failed step was not logged")
	}
	if r := d.logout(); r.status != http.StatusUnauthorized || r.code(t) != "token_revoked" {
		t.Fatalf("the owner's retry: %d %s, want 401 token_revoked", r.status, r.body)
	}
	if sessionEnded(t, e.store, d.devID) {
		t.Fatal("session ended by a step that failed")
	}
	flaky.fail.Store(0)
	if r := d.refreshWith(d.rt); r.status != http.StatusBadRequest || r.code(t) != "invalid_grant" {
		t.Fatalf("refresh after the failed logout: %d %s, want invalid_grant", r.status, r.body)
	}
	if !sessionEnded(t, e.store, d.devID) {
		t.Fatal("the refresh that found the entry did not end the session")
	}
}

// lostReplyStore makes the real deletion and, while lose > 0 (counting
// down), answers as a store whose reply never came back.
type lostReplyStore struct {
	account.Store
	lose atomic.Int32
}

func (s *lostReplyStore) DeleteAccount(ctx context.Context, id string, now, holdUntil time.Time) error {
	err := s.Store.DeleteAccount(ctx, id, now, holdUntil)
	if s.lose.Add(-1) >= 0 {
		return errStepStoreDown
	}
	return err
}

// TestDeleteMeReplyLost: the store deleted the account but its reply was
// lost; the flow's retry found no account and DELETE /v1/me answered 404
// for an account it had deleted (and skipped the entry written again
// after the step). It answers 204.
func TestDeleteMeReplyLost(t *testing.T) {
	forEachBackend(t, func(t *testing.T, be backend) {
		var mirror *revocation.Mirror
		e := newEnv(t, be, withClockedRevocation(t, be, &mirror))
		lost := &lostReplyStore{Store: e.store}
		e.cfg.Store, e.store = lost, lost
		e.start()
		d := e.newDevice("EdDSA")
		d.signup("lostreply")
		lost.lose.Store(1)
		if r := d.authJSON(http.MethodDelete, issuer.PathMe, nil); r.status != http.StatusNoContent {
			t.Fatalf("DELETE /v1/me whose store reply was lost: %d %s, want 204", r.status, r.body)
		}
		if _, err := e.store.GetAccount(context.Background(), d.accID); !errors.Is(err, account.ErrNotFound) {
			t.Fatalf("account after the deletion: %v, want not found", err)
		}
	})
}
