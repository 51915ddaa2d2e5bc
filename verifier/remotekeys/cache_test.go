package remotekeys_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hallpass/hallpass/verifier"
	"github.com/hallpass/hallpass/verifier/remotekeys"
)

// TestRevocationSurvivesRestart: a KeySet that saw a kid revoked, then
// fetched an older document that lists it again (a stale issuer node or
// cache in front of the issuer), wrote that older document to its cache
// file; the next process, started from the cache file or answered by the
// stale node, trusted the revoked key again. The cache file now keeps
// every revoked kid the KeySet saw, and New reads them before its first
// fetch.
func TestRevocationSurvivesRestart(t *testing.T) {
	is := newIssuer(t, true)
	cfg := is.config()
	cfg.CacheFile = filepath.Join(t.TempDir(), "keys.json")
	tok := is.mint()
	oldDoc, _ := json.Marshal(is.ring.KeySet(is.srv.URL))

	first, err := remotekeys.New(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := is.ring.Revoke(is.ring.Current().ID(), nil, is.clock.Now()); err != nil {
		t.Fatal(err)
	}
	if err := first.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	is.body.Store(&oldDoc) // a stale node answers from now on
	if err := first.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	if err := verify(is.verifier(first), tok); !errors.Is(err, verifier.ErrKeyRevoked) {
		t.Fatalf("same process, after the old document: %v", err)
	}
	first.Close()

	t.Run("issuer down: from the cache file", func(t *testing.T) {
		is.down.Store(true)
		defer is.down.Store(false)
		ks := is.keySet(cfg)
		if err := verify(is.verifier(ks), tok); !errors.Is(err, verifier.ErrKeyRevoked) {
			t.Fatalf("revoked key's token after a restart: %v", err)
		}
	})
	t.Run("stale node answers the first fetch", func(t *testing.T) {
		ks := is.keySet(cfg)
		if err := verify(is.verifier(ks), tok); !errors.Is(err, verifier.ErrKeyRevoked) {
			t.Fatalf("revoked key's token after a restart: %v", err)
		}
	})
}

// TestCacheFileTooLargeToRemember: when the remembered revoked kids would
// make the cache document pass MaxSize, the fetched document was written
// as it came, without them: a stale node's older document then put a
// revoked key back into the file, and the next process started from it
// with the issuer down trusted the key. Now the file is removed instead:
// that process has no set until the issuer answers (fail closed).
func TestCacheFileTooLargeToRemember(t *testing.T) {
	is := newIssuer(t, true)
	cfg := is.config()
	cfg.CacheFile = filepath.Join(t.TempDir(), "keys.json")
	tok := is.mint()
	oldSet := is.ring.KeySet(is.srv.URL)
	if err := is.ring.Revoke(is.ring.Current().ID(), nil, is.clock.Now()); err != nil {
		t.Fatal(err)
	}
	newDoc, _ := json.Marshal(is.ring.KeySet(is.srv.URL))
	// The stale node's document: the old one, with one more (retired) key,
	// so that it fits MaxSize only without a revoked kid added.
	extra := is.ring.KeySet(is.srv.URL).Keys[1]
	extra.Status = "retired"
	oldSet.Keys = append(oldSet.Keys, extra)
	staleDoc, _ := json.Marshal(oldSet)
	cfg.MaxSize = int64(len(staleDoc))
	if len(newDoc) > len(staleDoc) {
		t.Fatalf("documents of %d and %d bytes: the test needs the stale one larger", len(newDoc), len(staleDoc))
	}

	is.body.Store(&newDoc)
	first, err := remotekeys.New(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	is.body.Store(&staleDoc) // a stale node answers from now on
	if err := first.Refresh(context.Background()); err != nil {
		t.Fatal(err)
	}
	first.Close()

	is.down.Store(true)
	ks, err := remotekeys.New(context.Background(), cfg)
	if err == nil {
		defer ks.Close()
		err = verify(is.verifier(ks), tok)
	}
	if err == nil {
		t.Fatal("the revoked key's token verified after a restart from the cache file")
	}
	if _, serr := os.Stat(cfg.CacheFile); !errors.Is(serr, os.ErrNotExist) {
		t.Errorf("cache file: %v, want removed", serr)
	}
}

// TestCacheFileFromTheFuture: the age of a cache file is its modification
// time, and a negative age was not stale, so a file stamped in the future
// (written while the clock ran ahead, since corrected; a restored backup)
// was trusted for as long as its stamp was ahead plus MaxStale, while the
// issuer stayed unreachable: a key revoked meanwhile was accepted past the
// documented bound. Such a file's age is unknown: it is stale (every
// lookup fails) until the issuer answers.
func TestCacheFileFromTheFuture(t *testing.T) {
	is := newIssuer(t, true)
	cfg := withCacheFile(t, is)
	tok := is.mint()
	kid := kidOf(t, tok)

	tests := []struct {
		name  string
		ahead time.Duration // mtime minus the clock
		stale bool
	}{
		{"a little ahead (coarse file times)", 10 * time.Second, false},
		{"a day ahead", 24 * time.Hour, true},
		{"thirty days ahead", 30 * 24 * time.Hour, true},
	}
	is.down.Store(true)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mtime := is.clock.Now().Add(tt.ahead)
			if err := os.Chtimes(cfg.CacheFile, mtime, mtime); err != nil {
				t.Fatal(err)
			}
			ks := is.keySet(cfg)
			_, err := ks.LookupKey(context.Background(), kid)
			if tt.stale != errors.Is(err, remotekeys.ErrStale) || (!tt.stale && err != nil) {
				t.Fatalf("LookupKey: %v, want stale %v", err, tt.stale)
			}
		})
	}
	t.Run("the issuer answers again", func(t *testing.T) {
		is.down.Store(false)
		ks := is.keySet(cfg)
		if _, err := ks.LookupKey(context.Background(), kid); err != nil {
			t.Fatal(err)
		}
	})
}

// TestAgeHeader: the issuer serves its key set with "Cache-Control:
// public", so a shared cache (a CDN) may answer for it, and may go on
// answering with its copy while the issuer is down (stale-if-error, a long
// TTL). Every such answer counted as fetched now, so MaxStale never ran
// out and a key revoked since the copy was made stayed trusted for as long
// as the cache kept it. The answer's Age (RFC 9111) now counts: the set
// was fetched Age seconds ago, and one older than MaxStale is refused.
func TestAgeHeader(t *testing.T) {
	is := newIssuer(t, true)
	tok := is.mint()
	kid := kidOf(t, tok)
	doc, _ := json.Marshal(is.ring.KeySet(is.srv.URL))
	copied := is.clock.Now()
	var ageHeader atomic.Value // "" for none
	ageHeader.Store("")
	is.srv.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		age := ageHeader.Load().(string)
		if age == "" {
			age = strconv.Itoa(int(is.clock.Now().Sub(copied) / time.Second))
		}
		w.Header().Set("Cache-Control", "public, max-age=60")
		w.Header().Set("Age", age)
		_, _ = w.Write(doc)
	})
	ks := is.keySet(is.config())
	if _, err := ks.LookupKey(context.Background(), kid); err != nil {
		t.Fatal(err)
	}

	// The issuer is down; the cache answers with its copy for 25 hours.
	is.clock.Add(remotekeys.DefaultMaxStale + time.Hour)
	if err := ks.Refresh(context.Background()); !errors.Is(err, remotekeys.ErrFetch) {
		t.Fatalf("Refresh of a copy older than MaxStale: %v", err)
	}
	if _, err := ks.LookupKey(context.Background(), kid); !errors.Is(err, remotekeys.ErrStale) {
		t.Fatalf("LookupKey: %v, want ErrStale", err)
	}

	tests := []struct {
		name  string
		age   string
		stale bool // after one more hour
	}{
		{"23 hours old", "82800", true},
		{"fresh", "0", false},
		{"not a number: ignored", "soon", false},
		{"negative: ignored", "-90000", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ageHeader.Store(tt.age)
			if err := ks.Refresh(context.Background()); err != nil {
				t.Fatal(err)
			}
			if _, err := ks.LookupKey(context.Background(), kid); err != nil {
				t.Fatal(err)
			}
			is.clock.Add(time.Hour + time.Second)
			_, err := ks.LookupKey(context.Background(), kid)
			if tt.stale != errors.Is(err, remotekeys.ErrStale) {
				t.Fatalf("an hour later: %v, want stale %v", err, tt.stale)
			}
		})
	}
}

// TestCacheFileKeepsAge: a document a shared cache answered with an Age
// was written to the cache file stamped with the time of the write, so a
// process started from the file counted the set as that much younger and
// trusted it past MaxStale. The file is now stamped with the set's fetch
// time.
func TestCacheFileKeepsAge(t *testing.T) {
	is := newIssuer(t, true)
	doc, _ := json.Marshal(is.ring.KeySet(is.srv.URL))
	var down atomic.Bool
	is.srv.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if down.Load() {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		w.Header().Set("Cache-Control", "public, max-age=60")
		w.Header().Set("Age", "82800") // 23 h
		_, _ = w.Write(doc)
	})
	cfg := withCacheFile(t, is)
	kid := kidOf(t, is.mint())

	down.Store(true)
	is.clock.Add(time.Hour + time.Second)
	ks := is.keySet(cfg)
	if _, err := ks.LookupKey(context.Background(), kid); !errors.Is(err, remotekeys.ErrStale) {
		t.Fatalf("a set 24 h old, from the cache file: %v, want ErrStale", err)
	}
}

// TestCacheFileOwner: the cache file was refused only when group- or
// world-writable, so a file that another user owns (planted in a shared
// directory before the first write, or left by another service) was read,
// though its owner can rewrite it at will: its keys were trusted while the
// issuer was unreachable at start, and its revoked kids refused the
// issuer's own keys even when the issuer answered. A file that another
// user owns is now refused (checkOwner: a test cannot make one unless it
// runs as root, so the verdict is tested on this process's file with
// another euid).
func TestCacheFileOwner(t *testing.T) {
	is := newIssuer(t, true)
	cfg := withCacheFile(t, is)
	fi, err := os.Stat(cfg.CacheFile)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		euid    int
		refused bool
	}{
		{"this process's own file", os.Geteuid(), false},
		{"another user's file", os.Geteuid() + 1, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := remotekeys.CheckOwner(fi, tt.euid); (err != nil) != tt.refused {
				t.Fatalf("checkOwner: %v, want refused %v", err, tt.refused)
			}
		})
	}
	t.Run("the issuer down: the own file is read", func(t *testing.T) {
		is.down.Store(true)
		defer is.down.Store(false)
		ks := is.keySet(cfg)
		if err := verify(is.verifier(ks), is.mint()); err != nil {
			t.Fatal(err)
		}
	})
}

// TestClockSteppedBack: a set's age is Config.Now less its fetch time, and
// a negative age (the clock stepped back since) was not stale, on the
// ground that the next fetch sets a new time. A set read from the cache
// file while the issuer is unreachable gets no next fetch: with the clock
// stepped back it was trusted for as long as the step plus MaxStale, a
// key revoked meanwhile accepted past the documented bound (and for ever
// if the clock kept being set back). A fetch time more than a minute
// after now, like a cache file stamped in the future, is no known age:
// stale until the issuer answers.
func TestClockSteppedBack(t *testing.T) {
	is := newIssuer(t, true)
	cfg := withCacheFile(t, is)
	kid := kidOf(t, is.mint())
	is.down.Store(true)
	ks := is.keySet(cfg) // from the cache file

	tests := []struct {
		name  string
		back  time.Duration // how far the clock is set back from the file's stamp
		stale bool
	}{
		{"a few seconds (coarse file times)", 10 * time.Second, false},
		{"two hours", 2 * time.Hour, true},
		{"thirty days", 30 * 24 * time.Hour, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			is.clock.Add(-tt.back)
			defer is.clock.Add(tt.back)
			_, err := ks.LookupKey(context.Background(), kid)
			if tt.stale != errors.Is(err, remotekeys.ErrStale) || (!tt.stale && err != nil) {
				t.Fatalf("LookupKey: %v, want stale %v", err, tt.stale)
			}
		})
	}
	t.Run("the issuer answers again", func(t *testing.T) {
		is.clock.Add(-2 * time.Hour)
		defer is.clock.Add(2 * time.Hour)
		is.down.Store(false)
		defer is.down.Store(true)
		if err := ks.Refresh(context.Background()); err != nil {
			t.Fatal(err)
		}
		if _, err := ks.LookupKey(context.Background(), kid); err != nil {
			t.Fatal(err)
		}
	})
}

// withCacheFile returns is's config with a cache file, written by a first
// KeySet that fetched from is.
func withCacheFile(t *testing.T, is *issuer) remotekeys.Config {
	t.Helper()
	cfg := is.config()
	cfg.CacheFile = filepath.Join(t.TempDir(), "keys.json")
	first, err := remotekeys.New(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	first.Close()
	return cfg
}
