package redisstore_test

import (
	"encoding/json"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/hallpass/hallpass/internal/redistest"
	"github.com/hallpass/hallpass/keys"
	"github.com/hallpass/hallpass/revocation"
)

// TestForgedAndDeletedEntriesOnRedis plays issue 11, finding 1, on a real
// Redis: a writer without the wrapping key adds an all entry with a Before
// a century away (in the entries hash and the stream, as Add would) and
// deletes a real key entry. A mirror over the authenticated store never
// applies the forged entry, and keeps the key entry it saw before the
// deletion, through the snapshot reload the trimmed stream forces.
func TestForgedAndDeletedEntriesOnRedis(t *testing.T) {
	srv := redistest.Start(t)
	c := newClient(t, srv.Addr())
	raw := newStore(t, c)
	w, _ := keys.GenerateWrappingKey(nil)
	a, err := revocation.NewEntryAuthenticator(w)
	if err != nil {
		t.Fatal(err)
	}
	var refused atomic.Int64
	st, err := revocation.Authenticated(raw, a, revocation.AuthOptions{OnRefused: func(revocation.Kind) { refused.Add(1) }})
	if err != nil {
		t.Fatal(err)
	}
	add(t, st, revocation.KindKey, "k4.pid.x")
	cs := &counting{Store: st}
	m := startMirror(t, cs)
	ks := raw.Keys() // entries, before, expiry, events, epoch, counter

	forged, _ := revocation.NewEntry(revocation.KindAll, "", "", time.Now().Add(100*365*24*time.Hour), ttl)
	val, _ := json.Marshal(forged)
	ctx := t.Context()
	c.HSet(ctx, ks[0], forged.Key(), val)
	c.XAdd(ctx, &redis.XAddArgs{Stream: ks[3], Values: map[string]any{"e": string(val)}})
	// The real key entry goes, and the stream with it: the mirror's
	// cursor is gone, it reloads a snapshot that lacks the entry.
	c.HDel(ctx, ks[0], "key:k4.pid.x")
	c.Del(ctx, ks[3], ks[4])
	add(t, st, revocation.KindDevice, "after")
	deadline := time.Now().Add(5 * time.Second)
	for !errors.Is(m.CheckRevoked(ctx, "k4.pid.other", deviceClaims("after")), revocation.ErrRevoked) {
		if time.Now().After(deadline) {
			t.Fatal("the mirror did not follow the stream after its deletion")
		}
		time.Sleep(time.Millisecond)
	}
	if n := cs.snapshots.Load(); n != 2 {
		t.Fatalf("%d snapshots, want 2: the deleted stream forces a reload", n)
	}

	if err := m.CheckRevoked(ctx, "k4.pid.other", deviceClaims("fresh")); err != nil {
		t.Fatalf("the forged all entry was applied: %v", err)
	}
	if err := m.CheckRevoked(ctx, "k4.pid.x", deviceClaims("fresh")); !errors.Is(err, revocation.ErrRevoked) {
		t.Fatalf("the deleted key entry was forgotten: %v", err)
	}
	if refused.Load() == 0 {
		t.Fatal("no refusal reported")
	}
}
