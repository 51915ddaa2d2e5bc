package remotekeys_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hallpass/hallpass/verifier/remotekeys"
)

// TestBackoffDoesNotSpin: the retry backoff doubled on every failed fetch
// and was only bounded when it was used (min(backoff, MinRefresh)), so
// after 34 failures in a row (some 17 minutes of an unreachable issuer at
// the default MinRefresh) it overflowed to a negative and then to a zero
// duration: the refresh goroutine fetched in a tight loop, a CPU spin and
// a flood of requests at an issuer that was already down.
func TestBackoffDoesNotSpin(t *testing.T) {
	is := newIssuer(t, true)
	is.cache = "no-store" // refresh every MinRefresh
	cfg := is.config()
	cfg.MinRefresh = 5 * time.Millisecond
	ks := is.keySet(cfg)
	is.down.Store(true)

	// 50 failures at MinRefresh apart take 250 ms; a second is 200 of
	// them, and more than that is a spin.
	start := ks.Fetches()
	time.Sleep(time.Second)
	if n := ks.Fetches() - start; n > 300 {
		t.Fatalf("%d fetches in a second with MinRefresh 5 ms: the backoff overflowed", n)
	}
}

// TestAgedAnswerRefreshesBeforeStale: the refresh interval was max-age
// less Age, bounded by half of MaxStale, but an answer with an Age has
// less than MaxStale left before it is stale: with a max-age longer than
// MaxStale (a CDN's own TTL) the next refresh came after the set had gone
// stale, and every lookup failed with ErrStale until then although the
// issuer answered. The interval is now also held to half of what is left.
func TestAgedAnswerRefreshesBeforeStale(t *testing.T) {
	is := newIssuer(t, true)
	kid := kidOf(t, is.mint())
	doc, _ := json.Marshal(is.ring.KeySet(is.srv.URL))
	var answers atomic.Int64
	is.srv.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "public, max-age=3600")
		if answers.Add(1) == 1 {
			w.Header().Set("Age", "3") // 1 s of MaxStale left
		} else {
			w.Header().Set("Age", "0") // the cache has a fresh copy now
		}
		_, _ = w.Write(doc)
	})
	cfg := is.config()
	cfg.Now = timeNow
	cfg.MinRefresh = 100 * time.Millisecond
	cfg.MaxStale = 4 * time.Second
	ks := is.keySet(cfg)

	time.Sleep(1500 * time.Millisecond)
	if _, err := ks.LookupKey(context.Background(), kid); err != nil {
		t.Fatalf("LookupKey after %d answers: %v (the refresh came after the set went stale)", answers.Load(), err)
	}
}

// TestAgeHeaderList: RFC 9111 (section 5.1) has a cache that receives a
// list-based Age ("Age: 90000, 0", as a proxy that appends may send) use
// its first member. The whole value was parsed as one number, failed, and
// counted as no Age at all: a copy older than MaxStale was taken as fresh.
func TestAgeHeaderList(t *testing.T) {
	is := newIssuer(t, true)
	kid := kidOf(t, is.mint())
	doc, _ := json.Marshal(is.ring.KeySet(is.srv.URL))
	var age atomic.Value
	age.Store("0")
	is.srv.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "public, max-age=60")
		w.Header().Set("Age", age.Load().(string))
		_, _ = w.Write(doc)
	})
	ks := is.keySet(is.config())
	tests := []struct {
		name  string
		age   string
		stale bool // an hour later
	}{
		{"older than MaxStale, then 0", "90000, 0", false}, // refused: the set in use stays
		{"23 hours, then 0", "82800 , 0", true},
		{"0, then 23 hours", "0,82800", false},
		{"not a number first: ignored", "soon, 82800", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			age.Store(tt.age)
			err := ks.Refresh(context.Background())
			if tt.age == "90000, 0" {
				if !errors.Is(err, remotekeys.ErrFetch) {
					t.Fatalf("Refresh of a copy older than MaxStale: %v, want ErrFetch", err)
				}
				age.Store("0")
				if err := ks.Refresh(context.Background()); err != nil {
					t.Fatal(err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			is.clock.Add(time.Hour + time.Second)
			_, err = ks.LookupKey(context.Background(), kid)
			if tt.stale != errors.Is(err, remotekeys.ErrStale) {
				t.Fatalf("an hour later: %v, want stale %v", err, tt.stale)
			}
		})
	}
}
