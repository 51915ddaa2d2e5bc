package ratelimit_test

import (
	"errors"
	"flag"
	"fmt"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/hallpass/hallpass/ratelimit"
	"github.com/hallpass/hallpass/ratelimit/limittest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestMemoryConformance(t *testing.T) {
	limittest.Run(t, func(t *testing.T) ratelimit.Limiter {
		m, err := ratelimit.NewMemory(ratelimit.MemoryOptions{})
		if err != nil {
			t.Fatal(err)
		}
		return m
	})
}

func TestParseRule(t *testing.T) {
	tests := []struct {
		in   string
		want ratelimit.Rule
		str  string
	}{
		{in: "30/h", want: ratelimit.Rule{Limit: 30, Per: time.Hour}, str: "30/h"},
		{in: " 5/s ", want: ratelimit.Rule{Limit: 5, Per: time.Second}, str: "5/s"},
		{in: "100/10m", want: ratelimit.Rule{Limit: 100, Per: 10 * time.Minute}, str: "100/10m"},
		{in: "1000/d", want: ratelimit.Rule{Limit: 1000, Per: 24 * time.Hour}, str: "1000/d"},
		{in: "2/60m", want: ratelimit.Rule{Limit: 2, Per: time.Hour}, str: "2/h"},
		{in: "7/90s", want: ratelimit.Rule{Limit: 7, Per: 90 * time.Second}, str: "7/90s"},
		{in: "off", want: ratelimit.Disabled, str: "off"},
		{in: "OFF", want: ratelimit.Disabled, str: "off"},
	}
	for _, tc := range tests {
		got, err := ratelimit.ParseRule(tc.in)
		if err != nil || got != tc.want {
			t.Errorf("ParseRule(%q) = %+v, %v; want %+v", tc.in, got, err, tc.want)
			continue
		}
		if got.String() != tc.str {
			t.Errorf("ParseRule(%q).String() = %q, want %q", tc.in, got.String(), tc.str)
		}
	}
	for _, in := range []string{
		"", "0", "0/h", "-1/h", "+3/h", "30", "30/", "30/x", "30/hh", "30/0h", "30/-1h", "30/+1h",
		"x/h", "30/h/h", "1.5/h", "30/1.5h", "2000000/h", "1000/ms", "10/401d", "30 /h", "on",
		"99999999999999999999/h", "1/99999999999999999999s",
	} {
		if r, err := ratelimit.ParseRule(in); !errors.Is(err, ratelimit.ErrInvalidRule) {
			t.Errorf("ParseRule(%q) = %+v, %v; want ErrInvalidRule", in, r, err)
		}
	}
}

func TestRuleFlagAndText(t *testing.T) {
	var r ratelimit.Rule
	fs := flag.NewFlagSet("x", flag.ContinueOnError)
	fs.SetOutput(new(nopWriter))
	fs.Var(&r, "limit", "")
	if err := fs.Parse([]string{"-limit", "30/h"}); err != nil || r != (ratelimit.Rule{Limit: 30, Per: time.Hour}) {
		t.Fatalf("flag: %+v, %v", r, err)
	}
	if err := fs.Parse([]string{"-limit", "0"}); err == nil {
		t.Fatal("flag accepted 0")
	}
	var r2 ratelimit.Rule
	b, _ := r.MarshalText()
	if err := r2.UnmarshalText(b); err != nil || r2 != r {
		t.Fatalf("text round trip: %+v, %v", r2, err)
	}
}

type nopWriter struct{}

func (*nopWriter) Write(p []byte) (int, error) { return len(p), nil }

func FuzzParseRule(f *testing.F) {
	for _, s := range []string{"30/h", "off", "100/10m", "0", "1/99999999999999999999s", "5/s"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, err := ratelimit.ParseRule(s)
		if err != nil {
			return
		}
		if err := r.Validate(); err != nil {
			t.Fatalf("ParseRule(%q) returned an invalid rule %+v: %v", s, r, err)
		}
		again, err := ratelimit.ParseRule(r.String())
		if err != nil || again != r {
			t.Fatalf("round trip of %q via %q: %+v, %v", s, r.String(), again, err)
		}
	})
}

// Memory stays within MaxKeys however many keys pass through, and makes
// room by dropping expired keys before live ones.
func TestMemoryBounded(t *testing.T) {
	const maxKeys = 1600
	m, err := ratelimit.NewMemory(ratelimit.MemoryOptions{MaxKeys: maxKeys})
	if err != nil {
		t.Fatal(err)
	}
	r := ratelimit.Rule{Limit: 1, Per: time.Hour}
	now := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := range 20_000 {
		if _, err := m.Allow(t.Context(), fmt.Sprintf("10.0.%d.%d", i/256, i%256), r, now.Add(time.Duration(i)*time.Millisecond)); err != nil {
			t.Fatal(err)
		}
	}
	if n := m.Len(); n > maxKeys {
		t.Fatalf("Memory holds %d keys, MaxKeys is %d", n, maxKeys)
	}
	// Two hours on, every old key has expired: new keys push those out, not
	// the live "hot" key.
	later := now.Add(2 * time.Hour)
	if d, _ := m.Allow(t.Context(), "hot", r, later); !d.Allowed {
		t.Fatal("hot key refused")
	}
	for i := range 200 {
		if _, err := m.Allow(t.Context(), fmt.Sprintf("new%d", i), r, later); err != nil {
			t.Fatal(err)
		}
	}
	if d, _ := m.Allow(t.Context(), "hot", r, later); d.Allowed {
		t.Fatal("the live hot key was evicted and got a second request")
	}
	if n := m.Len(); n > maxKeys {
		t.Fatalf("Memory holds %d keys, MaxKeys is %d", n, maxKeys)
	}
	if _, err := ratelimit.NewMemory(ratelimit.MemoryOptions{MaxKeys: -1}); err == nil {
		t.Fatal("NewMemory accepted a negative MaxKeys")
	}
}

// TestMemoryFloodKeepsOtherRules: a flood of keys under one rule (client
// addresses), each spent so that it is more constrained than a spent
// global budget, pushes out keys under that rule, not the one key of the
// global rule. Before, eviction took the sampled key closest to expiry
// whatever its rule, so the spent global key went first and the global
// budget was whole again: "pair a per-IP rule with a global one" did not
// hold on Memory.
func TestMemoryFloodKeepsOtherRules(t *testing.T) {
	tests := []struct {
		name   string
		global ratelimit.Rule
		perIP  ratelimit.Rule
	}{
		{"global 1000/h, per address 30/h", ratelimit.Rule{Limit: 1000, Per: time.Hour}, ratelimit.Rule{Limit: 30, Per: time.Hour}},
		{"global 100/h, per address 2/d", ratelimit.Rule{Limit: 100, Per: time.Hour}, ratelimit.Rule{Limit: 2, Per: 24 * time.Hour}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m, err := ratelimit.NewMemory(ratelimit.MemoryOptions{MaxKeys: 1600})
			if err != nil {
				t.Fatal(err)
			}
			t0 := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
			allow := func(key string, r ratelimit.Rule, now time.Time) ratelimit.Decision {
				t.Helper()
				d, err := m.Allow(t.Context(), key, r, now)
				if err != nil {
					t.Fatal(err)
				}
				return d
			}
			for allow("global", tc.global, t0).Allowed {
			}
			// A second on, the flood: 3200 addresses, each spending its
			// whole budget (each key then expires after the global one).
			later := t0.Add(time.Second)
			for i := range 3200 {
				ip := fmt.Sprintf("2001:db8:%x::/64", i)
				for allow(ip, tc.perIP, later).Allowed {
				}
			}
			if n := m.Len(); n > 1600 {
				t.Fatalf("Memory holds %d keys, MaxKeys is 1600", n)
			}
			if d := allow("global", tc.global, later); d.Allowed {
				t.Fatal("the spent global budget was forgotten under a flood of per-address keys")
			}
		})
	}
}

func BenchmarkMemoryAllow(b *testing.B) {
	m, _ := ratelimit.NewMemory(ratelimit.MemoryOptions{})
	r := ratelimit.Rule{Limit: 1000, Per: time.Second}
	now := time.Now()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			i++
			_, _ = m.Allow(b.Context(), fmt.Sprint(i%1000), r, now)
		}
	})
}
