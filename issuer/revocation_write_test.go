package issuer_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync/atomic"
	"testing"

	"github.com/hallpass/hallpass/issuer"
	"github.com/hallpass/hallpass/revocation"
	revbolt "github.com/hallpass/hallpass/revocation/boltstore"
)

// flakyRevocations fails Add while fail > 0 (counting down) or always when
// fail < 0, as a store that does not answer; onAdd, when set, runs first.
type flakyRevocations struct {
	revocation.Store
	fail  atomic.Int32
	calls atomic.Int32
	onAdd func()
}

var errRevocationsDown = errors.New("revocation store down")

func (f *flakyRevocations) Add(ctx context.Context, e revocation.Entry) (revocation.Entry, error) {
	f.calls.Add(1)
	if f.onAdd != nil {
		f.onAdd()
	}
	for {
		n := f.fail.Load()
		if n < 0 {
			return revocation.Entry{}, errRevocationsDown
		}
		if n == 0 {
			return f.Store.Add(ctx, e)
		}
		if f.fail.CompareAndSwap(n, n-1) {
			return revocation.Entry{}, errRevocationsDown
		}
	}
}

// deviceEntry reports whether st holds a device entry for dev.
func deviceEntry(t *testing.T, st revocation.Store, dev string) bool {
	t.Helper()
	entries, _, err := st.Snapshot(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if e.Kind == revocation.KindDevice && e.ID == dev {
			return true
		}
	}
	return false
}

func newFlakyRevocations(t *testing.T) *flakyRevocations {
	t.Helper()
	st, err := revbolt.Open(filepath.Join(t.TempDir(), "revocation.db"), revbolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return &flakyRevocations{Store: st}
}

// TestReuseRevocationRetried is the regression test of issue 11, finding
// 9: after a refresh-token reuse, a failed write of the device entry was
// only logged: no retry, no metric, while the stolen access token stayed
// valid at every verifier. Reproduction: a revocation store whose first
// Add fails; present a reused refresh token: invalid_grant, and no entry
// was ever written. Now the write is retried (3 attempts, with backoff,
// within twice the store timeout), the answer waits for it, and a final
// failure is counted in hallpass_revocation_write_failures_total.
func TestReuseRevocationRetried(t *testing.T) {
	tests := []struct {
		name       string
		fail       int32 // failing Adds before the store answers; -1: never answers
		wantCalls  int32
		wantStored bool
		wantMetric string
	}{
		{"first attempt", 0, 1, true, "hallpass_revocation_write_failures_total 0"},
		{"two failures, then written", 2, 3, true, "hallpass_revocation_write_failures_total 0"},
		{"store down: counted once", -1, 3, false, "hallpass_revocation_write_failures_total 1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rs := newFlakyRevocations(t)
			e := newEnv(t, &boltBackend{}, func(c *issuer.Config) { c.Revocations = rs })
			d := e.newDevice("EdDSA")
			d.signup("reuser3")
			t0 := d.rt
			d.refresh()
			d.refresh()
			rs.fail.Store(tt.fail)
			r := d.refreshWith(t0)
			if r.status != http.StatusBadRequest || r.code(t) != "invalid_grant" {
				t.Fatalf("reuse: %d %s", r.status, r.body)
			}
			// The answer came after the write: no waiting here.
			if got := deviceEntry(t, rs.Store, d.devID); got != tt.wantStored {
				t.Fatalf("device entry stored: %v, want %v", got, tt.wantStored)
			}
			if n := rs.calls.Load(); n != tt.wantCalls {
				t.Fatalf("Add called %d times, want %d", n, tt.wantCalls)
			}
			if m := scrape(t, e); !contains(m, tt.wantMetric) {
				t.Fatalf("metrics lack %q:\n%s", tt.wantMetric, grep(m, "revocation_write"))
			}
			if failed := containsLog(e, `"event":"revocation_write_failed"`); failed == tt.wantStored {
				t.Fatalf("failure log line: %v, want %v", failed, !tt.wantStored)
			}
		})
	}
}

// TestReuseRevocationOutlivesHangUp: a client that hangs up as soon as it
// presented a reused token does not stop the device entry from being
// written (the write is detached from the request's cancellation).
func TestReuseRevocationOutlivesHangUp(t *testing.T) {
	rs := newFlakyRevocations(t)
	e := newEnv(t, &boltBackend{}, func(c *issuer.Config) { c.Revocations = rs })
	d := e.newDevice("EdDSA")
	d.signup("hangup")
	t0 := d.rt
	d.refresh()
	d.refresh()

	ctx, hangUp := context.WithCancel(context.Background())
	defer hangUp()
	rs.fail.Store(1)
	rs.onAdd = hangUp // the client is gone by the first attempt
	rec := httptest.NewRecorder()
	e.srv.Handler().ServeHTTP(rec, d.refreshReq(t0).WithContext(ctx))
	rs.onAdd = nil
	if n := rs.calls.Load(); n != 2 {
		t.Fatalf("Add called %d times, want 2 (the retry after the hang-up)", n)
	}
	if !deviceEntry(t, rs.Store, d.devID) {
		t.Fatal("no device entry after the client hung up")
	}
}
