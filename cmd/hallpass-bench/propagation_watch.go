package main

import (
	"cmp"
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

// watcherFlushEnv, a duration, makes a watcher write its lines that often
// instead of as each batch is applied (unset: at once). Each line still
// carries the time its mirror had the entry; only the pipe's share waits.
// Under -rate the bench sets it (rateLineFlush), so that 16 watchers
// writing a pipe, and the bench reading it, per revocation do not take the
// CPU that the mirrors and the issuer being measured need.
const watcherFlushEnv = "HALLPASS_BENCH_WATCHER_FLUSH"

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
	every, err := time.ParseDuration(cmp.Or(os.Getenv(watcherFlushEnv), "0s"))
	if err == nil {
		err = runWatcher(addr, mirrors, every, os.Stdin, os.Stdout)
	}
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

// lockedWriter writes each batch of lines with one Write, at once, or
// with every set, what gathered every that long (run) and at the end.
type lockedWriter struct {
	mu    sync.Mutex
	w     io.Writer
	every time.Duration
	buf   []byte
	err   error // the first failed Write of a gathered batch
}

func (l *lockedWriter) emit(evs []watchEvent) error { return l.write(evs, false) }

// write writes evs' lines, at once when now or l.every is 0, else into
// the next flush.
func (l *lockedWriter) write(evs []watchEvent, now bool) error {
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
	if l.every > 0 && !now {
		l.buf = append(l.buf, b...)
		return l.err
	}
	_, err := l.w.Write(b)
	return err
}

// flush writes what gathered.
func (l *lockedWriter) flush() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.buf) > 0 && l.err == nil {
		_, l.err = l.w.Write(l.buf)
	}
	l.buf = l.buf[:0]
	return l.err
}

// run flushes every l.every until stop is closed, then once more.
func (l *lockedWriter) run(stop <-chan struct{}) {
	t := time.NewTicker(l.every)
	defer t.Stop()
	for {
		select {
		case <-stop:
			_ = l.flush()
			return
		case <-t.C:
			_ = l.flush()
		}
	}
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
func runWatcher(addr string, mirrors int, every time.Duration, stdin io.Reader, stdout io.Writer) error {
	if err := loopbackAddrs(addr); err != nil {
		return fmt.Errorf("%s: %w", watcherEnv, err)
	}
	if mirrors < 1 || mirrors > maxMirrorsPerWatcher {
		return fmt.Errorf("%s: want 1 to %d mirrors", watcherMirrorsEnv, maxMirrorsPerWatcher)
	}
	if every < 0 || every > time.Second {
		return fmt.Errorf("%s: want 0 to 1s", watcherFlushEnv)
	}
	out := &lockedWriter{w: stdout, every: every}
	taps := make([]*tapStore, 0, mirrors)
	for i := range mirrors {
		tap, stop, err := startTapMirror(addr, i, out)
		if err != nil {
			return err
		}
		defer stop()
		taps = append(taps, tap)
	}
	if err := out.write([]watchEvent{{Ready: true}}, true); err != nil {
		return err
	}
	stop, flushed := make(chan struct{}), make(chan struct{})
	if every > 0 {
		go func() { out.run(stop); close(flushed) }()
	} else {
		close(flushed)
	}
	_, _ = io.Copy(io.Discard, stdin)
	var errs []error
	for _, tap := range taps {
		tap.m.Close()
		errs = append(errs, tap.err)
	}
	close(stop)
	<-flushed
	return errors.Join(append(errs, out.flush())...)
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
