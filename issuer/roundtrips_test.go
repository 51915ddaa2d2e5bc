package issuer_test

import (
	"context"
	"strconv"
	"strings"
	"testing"
)

// TestMeStoreCallsOnRedis: without a revocation store, once the node has
// seen the account, /v1/me reads the full account state in one batch of
// three reads (the account, its recovery codes and the device, on the
// account's slot, sent together) and makes no index lookups (GET): with
// the replay check, two round trips to Redis for the whole request.
// Before: five sequential round trips (device index and record, account
// index and record, replay).
func TestMeStoreCallsOnRedis(t *testing.T) {
	be := &redisBackend{}
	meStoreCalls(t, be, newEnv(t, be), map[string]int{"hgetall": 2, "smembers": 1})
}

// TestMeStoreCallsOnRedisWithMirror: with a revocation store and its
// mirror, device and ban state come from the mirror and /v1/me reads only
// the account: without the store's view cache, its record and its
// recovery codes, sent together, beside the replay check. No device
// record, no index lookup.
func TestMeStoreCallsOnRedisWithMirror(t *testing.T) {
	be := &redisBackend{noViews: true}
	meStoreCalls(t, be, newEnv(t, be, withRevocation(t, be, nil, nil)), map[string]int{"hgetall": 1, "smembers": 1})
}

// TestMeStoreCallsOnRedisWithViews: as `hallpass serve` runs on a
// redis:// store, with the mirror and the store's view cache, /v1/me
// sends Redis nothing but the replay check once the node holds the
// account's view.
func TestMeStoreCallsOnRedisWithViews(t *testing.T) {
	be := &redisBackend{}
	meStoreCalls(t, be, newEnv(t, be, withRevocation(t, be, nil, nil)), map[string]int{"hgetall": 0, "smembers": 0})
}

// meStoreCalls signs a device up on e, lets the node learn where its
// account lives, then checks the Redis commands of 5 more /v1/me: one
// replay SET each, reads per request as in reads, and no transaction,
// index lookup or script.
func meStoreCalls(t *testing.T, be *redisBackend, e *env, reads map[string]int) {
	t.Helper()
	d := e.newDevice("EdDSA")
	d.signup("roundtrips")
	for range 3 { // the node learns where the account lives (and fills its view)
		checkMe(t, d)
	}
	ctx := context.Background()
	before := commandStats(t, be, ctx)
	const n = 5
	for range n {
		checkMe(t, d)
	}
	after := commandStats(t, be, ctx)
	t.Logf("commands for %d /v1/me: %v", n, diff(before, after))
	want := map[string]int{"set": n, "exec": 0, "multi": 0, "get": 0, "evalsha": 0}
	for cmd, per := range reads {
		want[cmd] = per * n
	}
	for cmd, w := range want {
		if got := after[cmd] - before[cmd]; got != w {
			t.Errorf("%s: %d calls for %d /v1/me, want %d (all: %v)", cmd, got, n, w, diff(before, after))
		}
	}
}

// commandStats returns the calls per command of INFO commandstats.
func commandStats(t *testing.T, be *redisBackend, ctx context.Context) map[string]int {
	t.Helper()
	info, err := be.client.Info(ctx, "commandstats").Result()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]int{}
	for line := range strings.SplitSeq(info, "\n") {
		name, rest, ok := strings.Cut(strings.TrimSpace(line), ":")
		if !ok || !strings.HasPrefix(name, "cmdstat_") {
			continue
		}
		calls, _, _ := strings.Cut(strings.TrimPrefix(rest, "calls="), ",")
		v, err := strconv.Atoi(calls)
		if err != nil {
			t.Fatalf("INFO commandstats line %q", line)
		}
		out[strings.TrimPrefix(name, "cmdstat_")] = v
	}
	return out
}

func diff(before, after map[string]int) map[string]int {
	d := map[string]int{}
	for k, v := range after {
		if v != before[k] {
			d[k] = v - before[k]
		}
	}
	return d
}

// TestRefreshStoreCallsOnRedis: once the node has seen the device, a
// refresh is three round trips: the replay SET, the session read (HGETALL)
// and the refresh script (EVALSHA; the commands inside it count too), with
// no index lookups (GET). Before: five (two GETs of the device's index).
func TestRefreshStoreCallsOnRedis(t *testing.T) {
	be := &redisBackend{}
	e := newEnv(t, be)
	d := e.newDevice("EdDSA")
	d.signup("refreshtrips")
	d.refresh() // the node learns where the device lives
	ctx := context.Background()
	before := commandStats(t, be, ctx)
	const n = 5
	for range n {
		d.refresh()
	}
	after := commandStats(t, be, ctx)
	t.Logf("commands for %d refreshes: %v", n, diff(before, after))
	for cmd, want := range map[string]int{"set": n, "hgetall": n, "evalsha": n, "get": 0, "multi": 0} {
		if got := after[cmd] - before[cmd]; got != want {
			t.Errorf("%s: %d calls for %d refreshes, want %d (all: %v)", cmd, got, n, want, diff(before, after))
		}
	}
}
