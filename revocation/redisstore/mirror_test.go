package redisstore_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/hallpass/hallpass/internal/redistest"
	"github.com/hallpass/hallpass/keys"
	"github.com/hallpass/hallpass/revocation"
	"github.com/hallpass/hallpass/revocation/redisstore"
	"github.com/hallpass/hallpass/token"
)

const ttl = revocation.DefaultMaxAccessLifetime + revocation.DefaultLeeway

// counting counts snapshots.
type counting struct {
	revocation.Store
	snapshots atomic.Int64
}

func (c *counting) Snapshot(ctx context.Context) ([]revocation.Entry, revocation.Cursor, error) {
	c.snapshots.Add(1)
	return c.Store.Snapshot(ctx)
}

func newStore(t *testing.T, c redis.UniversalClient) *redisstore.Store {
	t.Helper()
	s, err := redisstore.New(c, redisstore.Options{Prefix: fmt.Sprintf("test%d", prefixes.Add(1)), OpTimeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func startMirror(t *testing.T, s revocation.Store) *revocation.Mirror {
	t.Helper()
	m, err := revocation.NewMirror(s, revocation.MirrorOptions{
		MaxStaleness: 2 * time.Second, Block: 100 * time.Millisecond,
		MinBackoff: 10 * time.Millisecond, MaxBackoff: 100 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	m.Start()
	t.Cleanup(func() { m.Close() })
	select {
	case <-m.Synced():
	case <-time.After(5 * time.Second):
		t.Fatal("mirror did not sync")
	}
	return m
}

func add(t *testing.T, s revocation.Store, kind revocation.Kind, id string) {
	t.Helper()
	e, err := revocation.NewEntry(kind, id, "", time.Now(), ttl)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Add(t.Context(), e); err != nil {
		t.Fatal(err)
	}
}

// deviceClaims are the claims of a token of dev issued a minute ago: before
// any revocation a test makes.
func deviceClaims(dev string) *token.Claims {
	iat := time.Now().Add(-time.Minute).Truncate(time.Second)
	return &token.Claims{Subject: "acct", Device: dev, ID: "jti-" + dev, IssuedAt: iat, Expiry: iat.Add(10 * time.Minute)}
}

func revoked(m *revocation.Mirror, c *token.Claims) bool {
	return errors.Is(m.CheckRevoked(context.Background(), keys.KeyID("k4.pid.x"), c), revocation.ErrRevoked)
}

func waitRevoked(t *testing.T, m *revocation.Mirror, c *token.Claims, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !revoked(m, c) {
		if time.Now().After(deadline) {
			t.Fatalf("device %s not revoked within %v", c.Device, within)
		}
		time.Sleep(time.Millisecond)
	}
}

// TestMirrorSurvivesRestart: Redis crashes and comes back with its data
// (append-only file); the mirror reconnects and resumes from its cursor,
// without reloading the snapshot, and sees what was revoked after.
func TestMirrorSurvivesRestart(t *testing.T) {
	srv := redistest.StartPersistent(t)
	s := &counting{Store: newStore(t, newClient(t, srv.Addr()))}
	m := startMirror(t, s)
	add(t, s, revocation.KindDevice, "before-crash")
	waitRevoked(t, m, deviceClaims("before-crash"), time.Second)

	srv.Stop(t)
	e, _ := revocation.NewEntry(revocation.KindDevice, "during-outage", "", time.Now(), ttl)
	if _, err := s.Add(t.Context(), e); !errors.Is(err, revocation.ErrUnavailable) {
		t.Fatalf("Add while Redis is down = %v, want ErrUnavailable", err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for m.Ready() == nil {
		if time.Now().After(deadline) {
			t.Fatal("mirror still ready 5 s into the outage (bound 2 s)")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := m.CheckRevoked(t.Context(), "k4.pid.x", deviceClaims("other")); !errors.Is(err, revocation.ErrStale) {
		t.Fatalf("stale mirror: %v, want ErrStale (fail closed)", err)
	}

	srv.Restart(t)
	add(t, s, revocation.KindDevice, "after-restart")
	waitRevoked(t, m, deviceClaims("after-restart"), 5*time.Second)
	if !revoked(m, deviceClaims("before-crash")) {
		t.Fatal("the revocation from before the crash was lost")
	}
	if err := m.Ready(); err != nil {
		t.Fatalf("Ready after restart: %v", err)
	}
	if n := s.snapshots.Load(); n != 1 {
		t.Fatalf("%d snapshots, want 1: the stream survived, the mirror resumes from its cursor", n)
	}
}

// TestMirrorReloadsWhenRedisLosesData: a restart without persistence
// replaces the stream (new epoch); the mirror must notice and reload rather
// than follow the new stream from an old id.
func TestMirrorReloadsWhenRedisLosesData(t *testing.T) {
	srv := redistest.Start(t)
	s := &counting{Store: newStore(t, newClient(t, srv.Addr()))}
	m := startMirror(t, s)
	add(t, s, revocation.KindDevice, "lost")
	waitRevoked(t, m, deviceClaims("lost"), time.Second)
	srv.Restart(t)
	add(t, s, revocation.KindDevice, "new")
	waitRevoked(t, m, deviceClaims("new"), 5*time.Second)
	if n := s.snapshots.Load(); n != 2 {
		t.Fatalf("%d snapshots, want 2 (reload on the new epoch)", n)
	}
}

// TestMirrorKeepsWhatRedisLost: Redis loses its data (FLUSHALL; a failover
// to a replica that had not received the last writes does the same to
// them). The mirror reloads, but the token, device and account entries it
// had applied still deny until their own expiry: entries only deny, and a
// signed-out device must not get its tokens (or its refresh) back because
// the store forgot.
func TestMirrorKeepsWhatRedisLost(t *testing.T) {
	srv := redistest.Start(t)
	c := newClient(t, srv.Addr())
	s := &counting{Store: newStore(t, c)}
	m := startMirror(t, s)
	add(t, s, revocation.KindToken, "jti-tok")
	add(t, s, revocation.KindDevice, "lost")
	add(t, s, revocation.KindAccount, "lost-acct")
	waitRevoked(t, m, deviceClaims("lost"), time.Second)
	waitRevoked(t, m, &token.Claims{Subject: "lost-acct", Device: "d2", ID: "j2", IssuedAt: time.Now().Add(-time.Minute)}, time.Second)
	if err := c.FlushAll(t.Context()).Err(); err != nil {
		t.Fatal(err)
	}
	add(t, s, revocation.KindDevice, "new")
	waitRevoked(t, m, deviceClaims("new"), 5*time.Second)
	if n := s.snapshots.Load(); n != 2 {
		t.Fatalf("%d snapshots, want 2 (reload on the new epoch)", n)
	}
	iat := time.Now().Add(-time.Minute)
	for name, cl := range map[string]*token.Claims{
		"token":   {Subject: "a", Device: "d", ID: "jti-tok", IssuedAt: iat},
		"device":  deviceClaims("lost"),
		"account": {Subject: "lost-acct", Device: "d3", ID: "j3", IssuedAt: iat},
	} {
		if !revoked(m, cl) {
			t.Errorf("the %s entry Redis lost is forgotten by the mirror that had it", name)
		}
	}
	if err := m.CheckSession(t.Context(), "lost", "acct", iat); !errors.Is(err, revocation.ErrRevoked) {
		t.Errorf("CheckSession of the lost device entry: %v, want ErrRevoked", err)
	}
}

// TestPropagationLatency revokes 1,000 devices one by one and measures, for
// each, the time from Add returning to the mirror denying the device.
func TestPropagationLatency(t *testing.T) {
	for _, tc := range []struct {
		name   string
		client func(t *testing.T) redis.UniversalClient
	}{
		{"redis", func(t *testing.T) redis.UniversalClient { return newClient(t, redistest.Start(t).Addr()) }},
		{"cluster", func(t *testing.T) redis.UniversalClient {
			return newClusterClient(t, redistest.StartCluster(t, 3).Addrs())
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newStore(t, tc.client(t))
			m := startMirror(t, s)
			n := 1000
			if testing.Short() {
				n = 100
			}
			lat := make([]time.Duration, 0, n)
			for i := range n {
				c := deviceClaims(fmt.Sprintf("dev-%d", i))
				add(t, s, revocation.KindDevice, c.Device)
				start := time.Now()
				for !revoked(m, c) {
					if time.Since(start) > 5*time.Second {
						t.Fatalf("device %d not seen", i)
					}
					time.Sleep(20 * time.Microsecond)
				}
				lat = append(lat, time.Since(start))
			}
			slices.Sort(lat)
			p50, p99, mx := lat[len(lat)/2], lat[len(lat)*99/100], lat[len(lat)-1]
			t.Logf("propagation after Add returns, %d revocations: p50 %v, p99 %v, max %v", n, p50, p99, mx)
			// The goal is p99 under 50 ms on loopback (met by far on an idle
			// machine); the assertion leaves room for a loaded CI runner.
			if p99 > 250*time.Millisecond {
				t.Errorf("p99 %v, goal under 50 ms on loopback", p99)
			}
		})
	}
}
