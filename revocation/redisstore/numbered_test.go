package redisstore_test

import (
	"encoding/json"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/hallpass/hallpass/internal/redistest"
	"github.com/hallpass/hallpass/revocation"
)

// scriptCalls is how many scripts (EVALSHA and EVAL) and XREADs srv's
// Redis has run.
func scriptCalls(t *testing.T, c *redis.Client) (scripts, xreads int) {
	t.Helper()
	info, err := c.Info(t.Context(), "commandstats").Result()
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.SplitSeq(info, "\n") {
		name, rest, ok := strings.Cut(strings.TrimSpace(line), ":")
		if !ok {
			continue
		}
		calls, _, _ := strings.Cut(strings.TrimPrefix(rest, "calls="), ",")
		n, _ := strconv.Atoi(calls)
		switch name {
		case "cmdstat_evalsha", "cmdstat_eval":
			scripts += n
		case "cmdstat_xread":
			xreads += n
		}
	}
	return scripts, xreads
}

// TestFollowNumberedEvents: events carry their epoch and number, so a
// Follow that reads events numbered on from its cursor takes them without
// reading the stream's position (one XREAD, no script); a Follow that
// reads nothing checks the position.
func TestFollowNumberedEvents(t *testing.T) {
	srv := redistest.Start(t)
	c := newClient(t, srv.Addr())
	s := newStore(t, c)
	ctx := t.Context()
	_, cur, err := s.Snapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		add(t, s, revocation.KindDevice, "numbered"+strconv.Itoa(i))
	}
	scripts0, xreads0 := scriptCalls(t, c)
	got, next, err := s.Follow(ctx, cur, 10, 0)
	if err != nil || len(got) != 3 {
		t.Fatalf("Follow: %d events, %v", len(got), err)
	}
	scripts1, xreads1 := scriptCalls(t, c)
	if scripts1 != scripts0 || xreads1 != xreads0+1 {
		t.Fatalf("Follow of numbered events: %d scripts, %d XREADs; want 0 and 1", scripts1-scripts0, xreads1-xreads0)
	}
	if !strings.HasSuffix(string(next), "/3") {
		t.Fatalf("cursor %q does not count 3 events", next)
	}
	if got, _, err := s.Follow(ctx, next, 10, 10*time.Millisecond); err != nil || len(got) != 0 {
		t.Fatalf("Follow at the end: %d events, %v", len(got), err)
	}
	if scripts2, _ := scriptCalls(t, c); scripts2 != scripts1+1 {
		t.Fatalf("an empty Follow ran %d scripts, want 1 (the position)", scripts2-scripts1)
	}
}

// TestEventNumbersStartFromTheStream: events appended before events were
// numbered (no "n") make Follow read the position; the first numbered
// event continues the stream's count, and Follow takes the next ones
// directly again. An epoch created anew (the epoch key deleted) restarts
// the count from the stream.
func TestEventNumbersStartFromTheStream(t *testing.T) {
	srv := redistest.Start(t)
	c := newClient(t, srv.Addr())
	s := newStore(t, c)
	ctx := t.Context()
	ks := s.Keys() // entries, before, expiry, events, epoch, counter
	_, cur, err := s.Snapshot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 2 { // as written by a node that does not number events
		e, _ := revocation.NewEntry(revocation.KindDevice, "old"+strconv.Itoa(i), "", time.Now(), ttl)
		val, _ := json.Marshal(e)
		c.XAdd(ctx, &redis.XAddArgs{Stream: ks[3], Values: map[string]any{"e": string(val)}})
	}
	got, cur, err := s.Follow(ctx, cur, 10, 0)
	if err != nil || len(got) != 2 || !strings.HasSuffix(string(cur), "/2") {
		t.Fatalf("Follow of unnumbered events: %d, %q, %v", len(got), cur, err)
	}
	add(t, s, revocation.KindDevice, "third")
	add(t, s, revocation.KindDevice, "fourth")
	last := lastEvent(t, c, ks[3])
	epoch, _ := c.Get(ctx, ks[4]).Result()
	if last["n"] != "4" || last["p"] != epoch {
		t.Fatalf("the fourth event carries n=%v p=%v, want 4 and %s", last["n"], last["p"], epoch)
	}
	scripts0, _ := scriptCalls(t, c)
	if got, _, err := s.Follow(ctx, cur, 10, 0); err != nil || len(got) != 2 {
		t.Fatalf("Follow: %d, %v", len(got), err)
	}
	if scripts1, _ := scriptCalls(t, c); scripts1 != scripts0 {
		t.Fatalf("Follow of numbered events ran %d scripts", scripts1-scripts0)
	}

	c.Del(ctx, ks[4]) // the epoch goes: the next Add creates one and counts from the stream
	add(t, s, revocation.KindDevice, "fifth")
	last = lastEvent(t, c, ks[3])
	if last["n"] != "5" || last["p"] == epoch {
		t.Fatalf("after a new epoch the event carries n=%v p=%v, want 5 and a new epoch", last["n"], last["p"])
	}

	// The stream goes, its epoch and counter stay: the new stream's first
	// event is 1, so a mirror numbered further on sees a gap, checks the
	// position and reloads.
	if _, cur, err = s.Snapshot(ctx); err != nil || !strings.HasSuffix(string(cur), "/5") {
		t.Fatalf("Snapshot in the new epoch: %q, %v", cur, err)
	}
	c.Del(ctx, ks[3])
	add(t, s, revocation.KindDevice, "sixth")
	if last := lastEvent(t, c, ks[3]); last["n"] != "1" {
		t.Fatalf("the first event of a new stream carries n=%v, want 1", last["n"])
	}
	if _, _, err := s.Follow(ctx, cur, 10, 0); !errors.Is(err, revocation.ErrCursorGone) {
		t.Fatalf("Follow on a replaced stream: %v, want ErrCursorGone", err)
	}
}

func lastEvent(t *testing.T, c *redis.Client, stream string) map[string]any {
	t.Helper()
	msgs, err := c.XRevRangeN(t.Context(), stream, "+", "-", 1).Result()
	if err != nil || len(msgs) != 1 {
		t.Fatalf("last event: %v %v", msgs, err)
	}
	return msgs[0].Values
}
