package redisstore_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/hallpass/hallpass/internal/redistest"
	"github.com/hallpass/hallpass/revocation"
	"github.com/hallpass/hallpass/revocation/redisstore"
)

// TestFollowNeverSkipsAnEvent: whatever happened to the stream between a
// cursor and the next Follow, Follow either returns every event after the
// cursor or ErrCursorGone (the mirror reloads); it never returns a batch
// that silently leaves an event out, which would let a revoked token
// through.
func TestFollowNeverSkipsAnEvent(t *testing.T) {
	srv := redistest.Start(t)
	c := newClient(t, srv.Addr())
	for _, tc := range []struct {
		name string
		// after writes, after the cursor, the event "missed" and does
		// what the case is about; then tail events are added.
		after func(t *testing.T, ks []string, s *redisstore.Store)
		tail  int
		// follows: nothing after the cursor is lost, so Follow must
		// return the events, not ErrCursorGone.
		follows bool
	}{{
		// MaxEvents 3 keeps "missed" and the two after it: the stream
		// is trimmed exactly at the cursor.
		name: "trimmed exactly at the cursor",
		after: func(t *testing.T, _ []string, s *redisstore.Store) {
			add(t, s, revocation.KindDevice, "missed")
		},
		tail:    2,
		follows: true,
	}, {
		name: "trimmed one past the cursor",
		after: func(t *testing.T, _ []string, s *redisstore.Store) {
			add(t, s, revocation.KindDevice, "missed")
		},
		tail: 3,
	}, {
		// An older node's unnumbered event, not trimmed: the numbered
		// ones after it are taken after a position check.
		name: "unnumbered event from an older node",
		after: func(t *testing.T, ks []string, _ *redisstore.Store) {
			oldNodeAdd(t, c, ks, "missed", 3)
		},
		tail:    2,
		follows: true,
	}, {
		// An older node (rolling upgrade) appends an unnumbered event,
		// as its script did; three numbered events trim it away. They
		// must not look as if they continued the cursor.
		name: "unnumbered event from an older node, trimmed",
		after: func(t *testing.T, ks []string, _ *redisstore.Store) {
			oldNodeAdd(t, c, ks, "missed", 3)
		},
		tail: 3,
	}, {
		// The counter comes back from a backup taken at the cursor
		// (partial restore): it is behind the stream.
		name: "counter restored behind the stream, then trimmed",
		after: func(t *testing.T, ks []string, s *redisstore.Store) {
			seq, err := c.Get(t.Context(), ks[5]).Result()
			if err != nil {
				t.Fatal(err)
			}
			add(t, s, revocation.KindDevice, "missed")
			if err := c.Set(t.Context(), ks[5], seq, 0).Err(); err != nil {
				t.Fatal(err)
			}
		},
		tail: 3,
	}, {
		// The stream alone is lost (eviction), its epoch and counter
		// stay; the new stream grows past the cursor's count before the
		// mirror looks.
		name: "stream lost under its epoch",
		after: func(t *testing.T, ks []string, s *redisstore.Store) {
			add(t, s, revocation.KindDevice, "missed")
			if err := c.Del(t.Context(), ks[3]).Err(); err != nil {
				t.Fatal(err)
			}
		},
		tail: 3,
	}, {
		// A failover to a replica that had only "a" (asynchronous
		// replication lost "b"), whose clock is behind: its next events
		// get ids below the cursor's, which XREAD from the cursor passes
		// over, and numbers that carry on from the cursor's.
		name: "failover lost the tail, the new master's ids behind the cursor",
		after: func(t *testing.T, ks []string, _ *redisstore.Store) {
			failoverBehind(t, c, ks)
		},
		tail: 1,
	}, {
		name: "stream and counter lost under the epoch",
		after: func(t *testing.T, ks []string, s *redisstore.Store) {
			add(t, s, revocation.KindDevice, "missed")
			if err := c.Del(t.Context(), ks[3], ks[5]).Err(); err != nil {
				t.Fatal(err)
			}
		},
		tail: 3,
	}} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := t.Context()
			s, err := redisstore.New(c, redisstore.Options{Prefix: fmt.Sprintf("test%d", prefixes.Add(1)), MaxEvents: 3})
			if err != nil {
				t.Fatal(err)
			}
			ks := s.Keys() // entries, before, expiry, events, epoch, counter
			add(t, s, revocation.KindDevice, "a")
			time.Sleep(5 * time.Millisecond) // room for an id between a's and b's
			add(t, s, revocation.KindDevice, "b")
			_, cur, err := s.Snapshot(ctx)
			if err != nil {
				t.Fatal(err)
			}
			tc.after(t, ks, s)
			for i := range tc.tail {
				add(t, s, revocation.KindDevice, fmt.Sprintf("tail-%d", i))
			}
			evs, _, err := s.Follow(ctx, cur, 100, 0)
			if errors.Is(err, revocation.ErrCursorGone) && !tc.follows {
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			for _, e := range evs {
				if e.ID == "missed" {
					return
				}
			}
			t.Fatalf("Follow returned %d events without the one after the cursor, and no ErrCursorGone", len(evs))
		})
	}
}

// oldNodeAdd appends an event as a node from before numbered events did:
// the entry alone, trimmed to maxLen.
func oldNodeAdd(t *testing.T, c *redis.Client, ks []string, dev string, maxLen int64) {
	t.Helper()
	e, _ := revocation.NewEntry(revocation.KindDevice, dev, "", time.Now(), ttl)
	val, _ := json.Marshal(e)
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	if err := c.HSet(ctx, ks[0], e.Key(), val).Err(); err != nil {
		t.Fatal(err)
	}
	if err := c.XAdd(ctx, &redis.XAddArgs{Stream: ks[3], MaxLen: maxLen, Values: map[string]any{"e": string(val)}}).Err(); err != nil {
		t.Fatal(err)
	}
}

// failoverBehind replaces the stream of two events with what a promoted
// replica that had only the first would hold, then appends "missed" as
// that replica's add script would with a clock behind the old master's:
// an id between the two old ones, the next number, the same epoch, and
// the id it follows.
func failoverBehind(t *testing.T, c *redis.Client, ks []string) {
	t.Helper()
	ctx := t.Context()
	old, err := c.XRange(ctx, ks[3], "-", "+").Result()
	if err != nil || len(old) < 2 {
		t.Fatalf("stream: %v, %v", old, err)
	}
	first := old[len(old)-2]
	ms, _, _ := strings.Cut(first.ID, "-")
	mid, _ := strconv.ParseUint(ms, 10, 64)
	midID := strconv.FormatUint(mid+1, 10) + "-0"
	e, _ := revocation.NewEntry(revocation.KindDevice, "missed", "", time.Now(), ttl)
	val, _ := json.Marshal(e)
	p, _ := first.Values["p"].(string)
	n, _ := strconv.Atoi(first.Values["n"].(string))
	pipe := c.TxPipeline()
	pipe.Del(ctx, ks[3])
	pipe.XAdd(ctx, &redis.XAddArgs{Stream: ks[3], ID: first.ID, Values: first.Values})
	pipe.XAdd(ctx, &redis.XAddArgs{Stream: ks[3], ID: midID, Values: []any{"e", string(val), "p", p, "n", strconv.Itoa(n + 1), "q", first.ID}})
	pipe.Set(ctx, ks[5], n+1, 0)
	if _, err := pipe.Exec(ctx); err != nil {
		t.Fatal(err)
	}
}
