package flow

import (
	"context"
	"testing"
	"time"

	"github.com/hallpass/hallpass/ratelimit"
)

// keyRecorder is a limiter that allows everything and records the keys.
type keyRecorder struct{ keys []string }

func (k *keyRecorder) Allow(_ context.Context, key string, _ ratelimit.Rule, _ time.Time) (ratelimit.Decision, error) {
	k.keys = append(k.keys, key)
	return ratelimit.Decision{Allowed: true}, nil
}

// TestRecoverBudgetKeys: each (username, client address) pair has its own
// budget. Joined with ':', a username holding one (a policy may allow it
// as punctuation) and an IPv6 client key named another pair's budget:
// "bob" from 2001:db8::/64 and "bob:2001" from db8::/64 shared one.
func TestRecoverBudgetKeys(t *testing.T) {
	rec := &keyRecorder{}
	f := &Flows{cfg: Config{Limiter: rec, RecoverPerAccount: ratelimit.Rule{Limit: 10, Per: time.Hour}, StoreTimeout: time.Second}, now: time.Now}
	for _, p := range [][2]string{{"bob", "2001:db8::/64"}, {"bob:2001", "db8::/64"}} {
		if err := f.recoverBudget(context.Background(), p[0], p[1]); err != nil {
			t.Fatal(err)
		}
	}
	if len(rec.keys) != 2 || rec.keys[0] == rec.keys[1] {
		t.Fatalf("budget keys %q: want two distinct keys", rec.keys)
	}
}
