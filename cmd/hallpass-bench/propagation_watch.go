package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"github.com/hallpass/hallpass/revocation"
	revredis "github.com/hallpass/hallpass/revocation/redisstore"
	"github.com/hallpass/hallpass/token"
)

// watcherEnv, when set to a loopback Redis address (or a cluster's nodes,
// comma-separated), turns this process
// (the bench binary, or its test binary) into a propagation watcher: see
// runWatcher. The bench re-executes itself with it, so the watchers are
// separate OS processes without building anything.
const watcherEnv = "HALLPASS_BENCH_WATCHER_REDIS"

func init() {
	addr := os.Getenv(watcherEnv)
	if addr == "" {
		return
	}
	// Run in init so that the test binary becomes a watcher too, before
	// the testing package parses its flags.
	err := runWatcher(addr, os.Stdin, os.Stdout)
	if err != nil {
		fmt.Fprintln(os.Stderr, "hallpass-bench watcher:", err)
		os.Exit(1)
	}
	os.Exit(0)
}

// watchEvent is one line a watcher prints: a revocation its mirror has
// applied (Kind, ID; Src "stream" or "snapshot"; At, this process's wall
// clock in Unix ns once the mirror had it), or Ready once the first
// snapshot is loaded.
type watchEvent struct {
	Ready bool   `json:"ready,omitempty"`
	Kind  string `json:"kind,omitempty"`
	ID    string `json:"id,omitempty"`
	Src   string `json:"src,omitempty"`
	At    int64  `json:"at,omitempty"`
}

// lockedWriter writes each batch of lines with one Write (unbuffered:
// flushed at once).
type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) emit(evs []watchEvent) error {
	var b []byte
	for _, e := range evs {
		j, err := json.Marshal(e)
		if err != nil {
			return err
		}
		b = append(append(b, j...), '\n')
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	_, err := l.w.Write(b)
	return err
}

// tapStore wraps the mirror's store to learn what the mirror applies. The
// mirror's Run loop applies the events of one Follow (or the entries of
// one Snapshot) and then calls Follow again: at that call, the previous
// batch is in the mirror's maps, so tapStore confirms each entry with
// CheckRevoked and prints it. Only the Run goroutine calls it.
type tapStore struct {
	revocation.Store
	m       *revocation.Mirror
	out     *lockedWriter
	pending []revocation.Entry
	src     string
	err     error // first confirmation or write failure
}

func (t *tapStore) Snapshot(ctx context.Context) ([]revocation.Entry, revocation.Cursor, error) {
	es, cur, err := t.Store.Snapshot(ctx)
	if err == nil {
		t.pending, t.src = es, "snapshot"
	}
	return es, cur, err
}

func (t *tapStore) Follow(ctx context.Context, cur revocation.Cursor, max int, block time.Duration) ([]revocation.Entry, revocation.Cursor, error) {
	t.flush()
	es, next, err := t.Store.Follow(ctx, cur, max, block)
	if err == nil {
		t.pending, t.src = es, "stream"
	}
	return es, next, err
}

// flush prints the applied batch, device entries confirmed: a token of
// that device issued just before the entry must be refused.
func (t *tapStore) flush() {
	if len(t.pending) == 0 {
		return
	}
	at := time.Now().UnixNano() // the batch is in the mirror's maps
	evs := make([]watchEvent, 0, len(t.pending))
	for _, e := range t.pending {
		if e.Kind == revocation.KindDevice && !e.Expired(time.Now()) {
			c := &token.Claims{Subject: "acc_bench", Device: e.ID, ID: "bench", IssuedAt: e.Before.Add(-time.Microsecond)}
			if err := t.m.CheckRevoked(context.Background(), "k4.pid.bench", c); !errors.Is(err, revocation.ErrRevoked) && t.err == nil {
				t.err = fmt.Errorf("device entry applied but not refused: %v", err)
			}
		}
		evs = append(evs, watchEvent{Kind: string(e.Kind), ID: e.ID, Src: t.src, At: at})
	}
	t.pending = nil
	if err := t.out.emit(evs); err != nil && t.err == nil {
		t.err = err
	}
}

// runWatcher mirrors the revocation store of the Redis at addr (loopback
// only; a cluster's nodes comma-separated) exactly as `hallpass serve` does (revocation/redisstore defaults,
// revocation.Mirror defaults), prints {"ready":true} once the first
// snapshot is loaded, then one JSON line per entry the mirror applies. It
// returns when stdin ends (the bench closes it, or died).
func runWatcher(addr string, stdin io.Reader, stdout io.Writer) error {
	if err := loopbackAddrs(addr); err != nil {
		return fmt.Errorf("%s: %w", watcherEnv, err)
	}
	rc := newBenchClient(addr, 0)
	defer rc.Close()
	st, err := revredis.New(rc, revredis.Options{})
	if err != nil {
		return err
	}
	out := &lockedWriter{w: stdout}
	tap := &tapStore{Store: st, out: out}
	m, err := revocation.NewMirror(tap, revocation.MirrorOptions{})
	if err != nil {
		return err
	}
	tap.m = m
	m.Start()
	defer m.Close()
	select {
	case <-m.Synced():
	case <-time.After(30 * time.Second):
		return errors.New("no snapshot within 30s")
	}
	if err := out.emit([]watchEvent{{Ready: true}}); err != nil {
		return err
	}
	_, _ = io.Copy(io.Discard, stdin)
	m.Close()
	return tap.err
}
