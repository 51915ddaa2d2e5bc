package limittest

import (
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hallpass/hallpass/ratelimit"
)

// t0 carries nanoseconds: implementations may count in coarser units but
// must keep whole intervals exact.
var t0 = time.Date(2030, 1, 2, 3, 4, 5, 6000, time.UTC)

// Run runs the suite; newLimiter returns a limiter with no state shared
// with any other call.
func Run(t *testing.T, newLimiter func(t *testing.T) ratelimit.Limiter) {
	tests := []struct {
		name string
		fn   func(t *testing.T, l ratelimit.Limiter)
	}{
		{"Burst", testBurst},
		{"Refill", testRefill},
		{"WindowPasses", testWindowPasses},
		{"RefusalsAreFree", testRefusalsAreFree},
		{"Independent", testIndependent},
		{"Off", testOff},
		{"InvalidRule", testInvalidRule},
		{"OddKeys", testOddKeys},
		{"Concurrent", testConcurrent},
		{"Disabled", testDisabled},
		{"Peek", testPeek},
		{"ClockStepsBack", testClockStepsBack},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.fn(t, newLimiter(t))
		})
	}
}

func allow(t *testing.T, l ratelimit.Limiter, key string, r ratelimit.Rule, now time.Time) ratelimit.Decision {
	t.Helper()
	d, err := l.Allow(t.Context(), key, r, now)
	if err != nil {
		t.Fatalf("Allow(%q, %v): %v", key, r, err)
	}
	return d
}

func want(t *testing.T, d ratelimit.Decision, allowed bool, remaining int, retry time.Duration) {
	t.Helper()
	if d.Allowed != allowed || d.Remaining != remaining || d.RetryAfter != retry {
		t.Fatalf("decision %+v, want allowed=%v remaining=%d retry=%v", d, allowed, remaining, retry)
	}
}

var fivePerMinute = ratelimit.Rule{Limit: 5, Per: time.Minute} // interval 12 s

func testBurst(t *testing.T, l ratelimit.Limiter) {
	for i := range 5 {
		want(t, allow(t, l, "ip", fivePerMinute, t0), true, 4-i, 0)
	}
	d := allow(t, l, "ip", fivePerMinute, t0)
	want(t, d, false, 0, 12*time.Second)
	// Part of the wait has passed.
	want(t, allow(t, l, "ip", fivePerMinute, t0.Add(5*time.Second)), false, 0, 7*time.Second)
}

func testRefill(t *testing.T, l ratelimit.Limiter) {
	for range 5 {
		allow(t, l, "ip", fivePerMinute, t0)
	}
	want(t, allow(t, l, "ip", fivePerMinute, t0.Add(12*time.Second)), true, 0, 0)
	want(t, allow(t, l, "ip", fivePerMinute, t0.Add(12*time.Second)), false, 0, 12*time.Second)
	want(t, allow(t, l, "ip", fivePerMinute, t0.Add(36*time.Second)), true, 1, 0)
}

func testWindowPasses(t *testing.T, l ratelimit.Limiter) {
	r := ratelimit.Rule{Limit: 30, Per: time.Hour}
	for range 30 {
		if !allow(t, l, "ip", r, t0).Allowed {
			t.Fatal("refused within the burst")
		}
	}
	if d := allow(t, l, "ip", r, t0.Add(time.Minute)); d.Allowed || d.RetryAfter <= 0 {
		t.Fatalf("after the burst: %+v, want refused with RetryAfter > 0", d)
	}
	later := t0.Add(time.Hour)
	for i := range 30 {
		want(t, allow(t, l, "ip", r, later), true, 29-i, 0)
	}
	if allow(t, l, "ip", r, later).Allowed {
		t.Fatal("more than the limit after the window")
	}
	// Limit 1: one per period.
	one := ratelimit.Rule{Limit: 1, Per: time.Hour}
	want(t, allow(t, l, "one", one, t0), true, 0, 0)
	want(t, allow(t, l, "one", one, t0.Add(time.Hour-time.Second)), false, 0, time.Second)
	want(t, allow(t, l, "one", one, t0.Add(time.Hour)), true, 0, 0)
}

func testRefusalsAreFree(t *testing.T, l ratelimit.Limiter) {
	r := ratelimit.Rule{Limit: 2, Per: 10 * time.Second}
	allow(t, l, "ip", r, t0)
	allow(t, l, "ip", r, t0)
	for range 100 {
		if allow(t, l, "ip", r, t0.Add(time.Second)).Allowed {
			t.Fatal("allowed over the limit")
		}
	}
	want(t, allow(t, l, "ip", r, t0.Add(5*time.Second)), true, 0, 0)
}

func testIndependent(t *testing.T, l ratelimit.Limiter) {
	r := ratelimit.Rule{Limit: 1, Per: time.Hour}
	want(t, allow(t, l, "a", r, t0), true, 0, 0)
	want(t, allow(t, l, "b", r, t0), true, 0, 0)
	want(t, allow(t, l, "a", r, t0), false, 0, time.Hour)
	// Another rule on the same key has its own budget.
	want(t, allow(t, l, "a", ratelimit.Rule{Limit: 2, Per: time.Hour}, t0), true, 1, 0)
}

func testOff(t *testing.T, l ratelimit.Limiter) {
	for range 1000 {
		want(t, allow(t, l, "ip", ratelimit.Off, t0), true, -1, 0)
	}
}

func testInvalidRule(t *testing.T, l ratelimit.Limiter) {
	for _, r := range []ratelimit.Rule{
		{Limit: -1, Per: time.Hour},
		{Limit: 1, Per: 0},
		{Limit: 1, Per: -time.Hour},
		{Limit: ratelimit.MaxLimit + 1, Per: time.Hour},
		{Limit: 10_000, Per: time.Millisecond},
		{Limit: 1, Per: ratelimit.MaxPer + 1},
	} {
		if _, err := l.Allow(t.Context(), "ip", r, t0); !errors.Is(err, ratelimit.ErrInvalidRule) {
			t.Errorf("Allow with %+v: %v, want ErrInvalidRule", r, err)
		}
	}
}

func testOddKeys(t *testing.T, l ratelimit.Limiter) {
	r := ratelimit.Rule{Limit: 1, Per: time.Hour}
	for _, key := range []string{"", "{x}", "}{", "\x00", strings.Repeat("k", 10_000), "2001:db8::1", "ünï"} {
		want(t, allow(t, l, key, r, t0), true, 0, 0)
		want(t, allow(t, l, key, r, t0), false, 0, time.Hour)
	}
	// Long keys differing only at the end stay apart.
	long := strings.Repeat("k", 10_000)
	want(t, allow(t, l, long+"x", r, t0), true, 0, 0)
}

func testConcurrent(t *testing.T, l ratelimit.Limiter) {
	r := ratelimit.Rule{Limit: 30, Per: time.Hour}
	const n = 200
	var allowed atomic.Int64
	var wg sync.WaitGroup
	start := make(chan struct{})
	errs := make(chan error, n)
	for range n {
		wg.Go(func() {
			<-start
			d, err := l.Allow(t.Context(), "global", r, t0)
			if err != nil {
				errs <- err
				return
			}
			if d.Allowed {
				allowed.Add(1)
			} else if d.RetryAfter <= 0 {
				errs <- errors.New("refused without RetryAfter")
			}
		})
	}
	close(start)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if got := allowed.Load(); got != int64(r.Limit) {
		t.Fatalf("%d of %d concurrent requests allowed, want exactly %d", got, n, r.Limit)
	}
}

func testDisabled(t *testing.T, l ratelimit.Limiter) {
	for range 100 {
		want(t, allow(t, l, "ip", ratelimit.Disabled, t0), true, -1, 0)
	}
}

// testPeek: the limiter implements ratelimit.Peeker (both of hallpass's
// do, and the suite requires it rather than skip a case), answers what
// Allow would, and a peek never counts.
func testPeek(t *testing.T, l ratelimit.Limiter) {
	p, ok := l.(ratelimit.Peeker)
	if !ok {
		t.Fatalf("%T does not implement ratelimit.Peeker", l)
	}
	peek := func(key string, r ratelimit.Rule, now time.Time) ratelimit.Decision {
		t.Helper()
		d, err := p.Peek(t.Context(), key, r, now)
		if err != nil {
			t.Fatalf("Peek(%q, %v): %v", key, r, err)
		}
		return d
	}
	for range 10 { // a new key: the full burst, and peeking takes none of it
		want(t, peek("ip", fivePerMinute, t0), true, 4, 0)
	}
	for i := range 5 {
		want(t, peek("ip", fivePerMinute, t0), true, 4-i, 0)
		want(t, allow(t, l, "ip", fivePerMinute, t0), true, 4-i, 0)
	}
	want(t, peek("ip", fivePerMinute, t0), false, 0, 12*time.Second)
	want(t, peek("ip", fivePerMinute, t0.Add(5*time.Second)), false, 0, 7*time.Second)
	want(t, peek("ip", fivePerMinute, t0.Add(12*time.Second)), true, 0, 0)
	want(t, allow(t, l, "ip", fivePerMinute, t0.Add(12*time.Second)), true, 0, 0)
	want(t, peek("ip", fivePerMinute, t0.Add(12*time.Second)), false, 0, 12*time.Second)
	want(t, peek("ip", ratelimit.Off, t0), true, -1, 0)
	want(t, peek("ip", ratelimit.Disabled, t0), true, -1, 0)
	if _, err := p.Peek(t.Context(), "ip", ratelimit.Rule{Limit: -1, Per: time.Hour}, t0); !errors.Is(err, ratelimit.ErrInvalidRule) {
		t.Errorf("Peek with a bad rule: %v, want ErrInvalidRule", err)
	}
}

// testClockStepsBack: a clock that steps back (NTP correcting a clock that
// ran fast, a restored VM) finds keys written at the later time. A key
// spent then counts as spent now: refused for one interval, not for the
// length of the step, and never with a Retry-After of the step.
func testClockStepsBack(t *testing.T, l ratelimit.Limiter) {
	later := t0.Add(24 * time.Hour)
	for i := range 5 {
		want(t, allow(t, l, "ip", fivePerMinute, later), true, 4-i, 0)
	}
	want(t, allow(t, l, "ip", fivePerMinute, later), false, 0, 12*time.Second)
	if p, ok := l.(ratelimit.Peeker); ok {
		d, err := p.Peek(t.Context(), "ip", fivePerMinute, t0)
		if err != nil {
			t.Fatal(err)
		}
		want(t, d, false, 0, 12*time.Second)
	}
	want(t, allow(t, l, "ip", fivePerMinute, t0), false, 0, 12*time.Second)
	want(t, allow(t, l, "ip", fivePerMinute, t0.Add(12*time.Second)), true, 0, 0)
	want(t, allow(t, l, "ip", fivePerMinute, t0.Add(12*time.Second)), false, 0, 12*time.Second)
	// Forward again: the budget the step left is all there is.
	want(t, allow(t, l, "ip", fivePerMinute, t0.Add(time.Hour)), true, 4, 0)
}
