package main

import (
	"testing"
	"time"

	"github.com/hallpass/hallpass/internal/redistest"
)

// TestRedisOutage kills the real redis-server the revocation mirror
// follows, with established sockets. The mirror goes stale after its
// MaxStaleness (1 s here). New handshakes are refused (unavailable) from
// then on, grace or not. Without --stale-grace the established socket is
// dropped (unavailable) at once; with it, it stays until MaxStaleness +
// grace from the mirror's last contact, then is dropped, unless Redis is
// back before that.
func TestRedisOutage(t *testing.T) {
	const maxStaleness = time.Second
	// The mirror last heard from Redis at most one poll (its Block,
	// MaxStaleness/3) before the kill, and the guard re-checks every
	// 100 ms: how early and how late a drop may come.
	const early, late = maxStaleness/3 + 50*time.Millisecond, 2 * time.Second
	for _, tc := range []struct {
		name    string
		grace   time.Duration
		recover bool // Redis restarts within the grace
	}{
		{name: "no grace: dropped when the mirror goes stale"},
		{name: "grace: kept through the outage, dropped when the grace ends", grace: 3 * time.Second},
		{name: "grace: Redis back within the grace, kept", grace: 5 * time.Second, recover: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rs := redistest.StartPersistent(t)
			f := newFixtureWith(t, fixtureOpts{redis: rs, maxStaleness: maxStaleness, staleGrace: tc.grace})
			dev := newDevice(t, "acc_frank", "dev_frank")
			iat := time.Now().Add(-2 * time.Second)
			tok := f.mint(t, dev, iat)
			c := f.runClient(t, tok, f.proof(t, dev.key, tok), "websocket")
			c.connected(dev)

			stopped := time.Now()
			rs.Stop(t)
			if tc.grace == 0 {
				at := c.kicked("unavailable")
				checkWithin(t, "drop", at.Sub(stopped), maxStaleness-early, maxStaleness+late)
				return
			}
			f.waitStale(t)
			// Past MaxStaleness: still connected.
			c.quiet(t, maxStaleness+500*time.Millisecond-time.Since(stopped))
			if !tc.recover {
				// But no new socket.
				t2 := f.mint(t, dev, iat)
				if e := f.runClient(t, t2, f.proof(t, dev.key, t2), "websocket").expect("connect_error"); e.Message != "unavailable" {
					t.Fatalf("handshake during the outage: connect_error %q, want unavailable", e.Message)
				}
				at := c.kicked("unavailable")
				checkWithin(t, "drop", at.Sub(stopped), maxStaleness+tc.grace-early, maxStaleness+tc.grace+late)
				return
			}
			// The mirror retries with a backoff of up to 2 s: Redis comes
			// back at least that long before the grace ends.
			rs.Restart(t)
			f.waitFresh(t)
			// Well past where the grace would have ended: still connected,
			// and new handshakes are accepted again.
			c.quiet(t, maxStaleness+tc.grace+time.Second-time.Since(stopped))
			if n := f.app.guard.Len(); n != 1 {
				t.Fatalf("guard watches %d sockets, want 1", n)
			}
			t3 := f.mint(t, dev, iat)
			f.runClient(t, t3, f.proof(t, dev.key, t3), "websocket").connected(dev)
		})
	}
}

// checkWithin fails unless lo <= d <= hi.
func checkWithin(t *testing.T, what string, d, lo, hi time.Duration) {
	t.Helper()
	t.Logf("%s after %v (want %v..%v)", what, d.Round(time.Millisecond), lo, hi)
	if d < lo || d > hi {
		t.Fatalf("%s after %v, want between %v and %v", what, d.Round(time.Millisecond), lo, hi)
	}
}

// quiet fails if the client sees anything within d.
func (c *client) quiet(t *testing.T, d time.Duration) {
	t.Helper()
	if d <= 0 {
		return
	}
	select {
	case e := <-c.events:
		t.Fatalf("client saw %+v, want nothing", e)
	case <-time.After(d):
	}
}

// waitStale waits (5 s at most) until the mirror reports itself stale.
func (f *fixture) waitStale(t *testing.T) {
	t.Helper()
	f.waitMirror(t, false)
}

// waitFresh waits (10 s at most) until the mirror has heard from its store
// again.
func (f *fixture) waitFresh(t *testing.T) {
	t.Helper()
	f.waitMirror(t, true)
}

func (f *fixture) waitMirror(t *testing.T, fresh bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for (f.app.mirror.Ready() == nil) != fresh {
		if time.Now().After(deadline) {
			t.Fatalf("mirror fresh=%v not reached within 10s", fresh)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
