package redispipe_test

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/hallpass/hallpass/internal/redispipe"
	"github.com/hallpass/hallpass/internal/redistest"
)

func newClient(t *testing.T, addr string) *redis.Client {
	t.Helper()
	c := redis.NewClient(&redis.Options{Addr: addr, ContextTimeoutEnabled: true})
	t.Cleanup(func() { _ = c.Close() })
	return c
}

func newPipe(t *testing.T, c redis.UniversalClient) *redispipe.Pipe {
	t.Helper()
	p, err := redispipe.New(c)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// readsProcessed is redis-server's count of socket reads that carried
// commands (INFO stats total_reads_processed).
func readsProcessed(t *testing.T, c *redis.Client) int {
	t.Helper()
	info, err := c.Info(context.Background(), "stats").Result()
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.SplitSeq(info, "\r\n") {
		if v, ok := strings.CutPrefix(line, "total_reads_processed:"); ok {
			n, err := strconv.Atoi(v)
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
	}
	t.Fatal("no total_reads_processed in INFO stats")
	return 0
}

// TestConcurrentCallersShareReads: the commands of concurrent callers reach
// Redis in shared writes, so Redis reads far fewer times than it runs
// commands; every caller still gets its own reply.
func TestConcurrentCallersShareReads(t *testing.T) {
	srv := redistest.Start(t)
	c := newClient(t, srv.Addr())
	p := newPipe(t, c)
	ctx := context.Background()
	const callers, each = 64, 50
	before := readsProcessed(t, c)
	var wg sync.WaitGroup
	errs := make(chan error, callers)
	for g := range callers {
		wg.Go(func() {
			for i := range each {
				k := fmt.Sprintf("k:%d:%d", g, i)
				if err := p.Cmd(ctx, "set", k, k).Err(); err != nil {
					errs <- err
					return
				}
				got, err := p.Cmd(ctx, "get", k).Text()
				if err != nil || got != k {
					errs <- fmt.Errorf("GET %s = %q, %v", k, got, err)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	reads := readsProcessed(t, c) - before
	cmds := callers * each * 2
	t.Logf("%d commands in %d reads by redis-server", cmds, reads)
	if reads*2 > cmds {
		t.Errorf("%d reads for %d commands: the commands were not pipelined", reads, cmds)
	}
}

// TestReplies: a command's own outcome (redis.Nil, a Redis error) reaches
// its caller alone; the others in the same Do complete normally.
func TestReplies(t *testing.T) {
	srv := redistest.Start(t)
	c := newClient(t, srv.Addr())
	p := newPipe(t, c)
	ctx := context.Background()
	set := redis.NewStatusCmd(ctx, "set", "a", "1")
	missing := redis.NewStringCmd(ctx, "get", "nothing")
	wrong := redis.NewIntCmd(ctx, "incr", "a", "extra")
	if err := p.Do(ctx, set, missing, wrong); err != nil {
		t.Fatal(err)
	}
	if set.Err() != nil || set.Val() != "OK" {
		t.Errorf("SET: %q, %v", set.Val(), set.Err())
	}
	if !errors.Is(missing.Err(), redis.Nil) {
		t.Errorf("GET of a missing key: %v, want redis.Nil", missing.Err())
	}
	if wrong.Err() == nil || errors.Is(wrong.Err(), redis.Nil) {
		t.Errorf("INCR with a wrong argument count: %v, want a Redis error", wrong.Err())
	}
}

var echoScript = redis.NewScript(`return {KEYS[1], ARGV[1], redis.call('INCR', KEYS[1])}`)

// TestScriptLoadsItself: Run uses EVALSHA and falls back to EVAL when Redis
// does not know the script (a fresh or flushed server).
func TestScriptLoadsItself(t *testing.T) {
	srv := redistest.Start(t)
	c := newClient(t, srv.Addr())
	p := newPipe(t, c)
	ctx := context.Background()
	for i := range 3 {
		if i == 2 {
			if err := c.ScriptFlush(ctx).Err(); err != nil {
				t.Fatal(err)
			}
		}
		got, err := p.Run(ctx, echoScript, []string{"n"}, "arg").Slice()
		if err != nil {
			t.Fatalf("run %d: %v", i, err)
		}
		if len(got) != 3 || got[0] != "n" || got[1] != "arg" || got[2] != int64(i+1) {
			t.Fatalf("run %d: %v", i, got)
		}
	}
}

// TestDeadline: a caller waits no longer than its context, even when Redis
// does not answer (CLIENT PAUSE holds every command), and gets the
// context's error, never a reply.
func TestDeadline(t *testing.T) {
	srv := redistest.Start(t)
	c := newClient(t, srv.Addr())
	p := newPipe(t, c)
	admin := newClient(t, srv.Addr())
	bg := context.Background()
	if err := p.Cmd(bg, "set", "k", "v").Err(); err != nil { // the pipe's connection is up
		t.Fatal(err)
	}
	if err := admin.Do(bg, "client", "pause", "1500", "all").Err(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(bg, 150*time.Millisecond)
	defer cancel()
	start := time.Now()
	cmd := redis.NewStringCmd(ctx, "get", "k")
	err := p.Do(ctx, cmd)
	took := time.Since(start)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Do under a paused Redis: %v, want the context's deadline", err)
	}
	if took > time.Second {
		t.Errorf("Do returned after %v, its deadline was 150ms", took)
	}
	if err := p.Cmd(ctx, "get", "k").Err(); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Cmd with an ended context: %v", err)
	}
	if _, err := p.Run(ctx, echoScript, []string{"n"}, "x").Result(); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Run with an ended context: %v", err)
	}
	// Once Redis answers again, so does the pipe.
	got, err := p.Cmd(bg, "get", "k").Text()
	if err != nil || got != "v" {
		t.Fatalf("after the pause: %q, %v", got, err)
	}
}

// TestCancelledBeforehand: a context that is already done sends nothing
// and gets its own error, every time (the pipeliner alone could send the
// command and have its reply before the wait looked at the context).
func TestCancelledBeforehand(t *testing.T) {
	srv := redistest.Start(t)
	c := newClient(t, srv.Addr())
	p := newPipe(t, c)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	for i := range 200 {
		if err := p.Cmd(ctx, "set", "k", i).Err(); !errors.Is(err, context.Canceled) {
			t.Fatalf("Cmd %d with a cancelled context: %v", i, err)
		}
	}
	if _, err := p.Run(ctx, echoScript, []string{"n"}, "x").Result(); !errors.Is(err, context.Canceled) {
		t.Fatalf("Run with a cancelled context: %v", err)
	}
	if n, err := c.Exists(context.Background(), "k").Result(); err != nil || n != 0 {
		t.Fatalf("EXISTS k = %d, %v: a cancelled command reached Redis", n, err)
	}
}

// TestCluster: commands and scripts reach the master of their slot.
func TestCluster(t *testing.T) {
	cl := redistest.StartCluster(t, 3)
	c := redis.NewClusterClient(&redis.ClusterOptions{Addrs: cl.Addrs(), ContextTimeoutEnabled: true})
	t.Cleanup(func() { _ = c.Close() })
	p := newPipe(t, c)
	ctx := context.Background()
	for i := range 30 {
		k := "key" + strconv.Itoa(i) // spread over the three masters
		if err := p.Cmd(ctx, "set", k, "v").Err(); err != nil {
			t.Fatalf("SET %s: %v", k, err)
		}
		got, err := p.Run(ctx, echoScript, []string{k + ":n"}, "a").Slice()
		if err != nil || len(got) != 3 {
			t.Fatalf("script on %s: %v, %v", k, got, err)
		}
		// Two slots, two masters most of the time, in one batch.
		both := []*redis.StringCmd{redis.NewStringCmd(ctx, "set", k+":p", "1", "nx", "get"), redis.NewStringCmd(ctx, "set", k+":q", "2", "nx", "get")}
		if err := p.Do(ctx, both[0], both[1]); err != nil {
			t.Fatalf("Do on %s: %v", k, err)
		}
		for j, cmd := range both {
			if err := cmd.Err(); !errors.Is(err, redis.Nil) {
				t.Fatalf("SET NX GET on %s, call %d: %v", k, j, err)
			}
			if got, err := c.Get(ctx, k+[]string{":p", ":q"}[j]).Result(); err != nil || got != []string{"1", "2"}[j] {
				t.Fatalf("GET after the batch on %s, call %d: %q, %v", k, j, got, err)
			}
		}
	}
}

func TestNilClient(t *testing.T) {
	if _, err := redispipe.New(nil); err == nil {
		t.Fatal("New(nil): no error")
	}
}
