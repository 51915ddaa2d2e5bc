package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
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

// watcherMirrorsEnv is how many mirrors a watcher process runs (default 1).
const watcherMirrorsEnv = "HALLPASS_BENCH_WATCHER_MIRRORS"

func init() {
	addr := os.Getenv(watcherEnv)
	if addr == "" {
		return
	}
	// Run in init so that the test binary becomes a watcher too, before
	// the testing package parses its flags.
	mirrors := 1
	if v := os.Getenv(watcherMirrorsEnv); v != "" {
		mirrors, _ = strconv.Atoi(v) // runWatcher refuses a bad count
	}
	err := runWatcher(addr, mirrors, os.Stdin, os.Stdout)
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
	M     int    `json:"m,omitempty"` // which of the process's mirrors
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
	index   int // of this mirror in its process
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
		evs = append(evs, watchEvent{Kind: string(e.Kind), ID: e.ID, Src: t.src, At: at, M: t.index})
	}
	t.pending = nil
	if err := t.out.emit(evs); err != nil && t.err == nil {
		t.err = err
	}
}

// runWatcher runs mirrors revocation mirrors of the revocation store of the
// Redis at addr (loopback only; a cluster's nodes comma-separated), each
// on its own client and exactly as `hallpass serve` runs its one
// (revocation/redisstore defaults, revocation.Mirror defaults), prints
// {"ready":true} once every first snapshot is loaded, then one JSON line
// per entry a mirror applies. It returns when stdin ends (the bench closes
// it, or died).
func runWatcher(addr string, mirrors int, stdin io.Reader, stdout io.Writer) error {
	if err := loopbackAddrs(addr); err != nil {
		return fmt.Errorf("%s: %w", watcherEnv, err)
	}
	if mirrors < 1 || mirrors > maxMirrorsPerWatcher {
		return fmt.Errorf("%s: want 1 to %d mirrors", watcherMirrorsEnv, maxMirrorsPerWatcher)
	}
	out := &lockedWriter{w: stdout}
	taps := make([]*tapStore, 0, mirrors)
	for i := range mirrors {
		tap, stop, err := startTapMirror(addr, i, out)
		if err != nil {
			return err
		}
		defer stop()
		taps = append(taps, tap)
	}
	if err := out.emit([]watchEvent{{Ready: true}}); err != nil {
		return err
	}
	_, _ = io.Copy(io.Discard, stdin)
	var errs []error
	for _, tap := range taps {
		tap.m.Close()
		errs = append(errs, tap.err)
	}
	return errors.Join(errs...)
}

// startTapMirror starts mirror i of a watcher on its own client to addr
// and waits for its first snapshot; stop closes the mirror and the client.
func startTapMirror(addr string, i int, out *lockedWriter) (*tapStore, func(), error) {
	rc := newBenchClient(addr, 0)
	st, err := revredis.New(rc, revredis.Options{})
	if err != nil {
		rc.Close()
		return nil, nil, err
	}
	tap := &tapStore{Store: st, out: out, index: i}
	m, err := revocation.NewMirror(tap, revocation.MirrorOptions{})
	if err != nil {
		rc.Close()
		return nil, nil, err
	}
	tap.m = m
	m.Start()
	stop := func() { m.Close(); rc.Close() }
	select {
	case <-m.Synced():
		return tap, stop, nil
	case <-time.After(30 * time.Second):
		stop()
		return nil, nil, errors.New("no snapshot within 30s")
	}
}
