package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"text/tabwriter"
	"time"

	"github.com/hallpass/hallpass/account"
	"github.com/hallpass/hallpass/account/boltstore"
	"github.com/hallpass/hallpass/internal/procs"
	"github.com/hallpass/hallpass/revocation"
)

// memWriters is how many goroutines create accounts at once (as many
// concurrent signups share a group commit).
const memWriters = 64

// memSample is how many accounts the reopened store reads.
const memSample = 10_000

// runMemoryChild runs one memory job (KIND:N) in this process and prints
// its MemoryResult as one JSON line to out.
func runMemoryChild(ctx context.Context, spec string, out io.Writer) error {
	kind, num, ok := strings.Cut(spec, ":")
	n, err := strconv.Atoi(num)
	if !ok || err != nil || n < 1 {
		return fmt.Errorf("%s=%q: want KIND:N", memoryEnv, spec)
	}
	procs.GC() // the collector's policy of hallpass serve, which sets how far RSS runs ahead of the live heap
	before, err := sampleMemory()
	if err != nil {
		return err
	}
	r := MemoryResult{Kind: kind, N: n, Before: before}
	switch kind {
	case "accounts":
		err = fillAccounts(ctx, n, &r)
	case "devices", "tokens":
		err = fillMirror(n, kind, &r)
	default:
		err = fmt.Errorf("unknown memory job %q (accounts, devices, tokens)", kind)
	}
	if err != nil {
		return err
	}
	return json.NewEncoder(out).Encode(r)
}

// fillAccounts creates n accounts in a fresh bbolt store, samples memory
// with the store open, then closes it, reopens it, reads memSample
// accounts and samples again.
func fillAccounts(ctx context.Context, n int, r *MemoryResult) error {
	dir, err := os.MkdirTemp("", "hallpass-bench-memory-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "hallpass.db")
	st, err := boltstore.Open(path, boltstore.Options{})
	if err != nil {
		return err
	}
	start := time.Now()
	sample, err := createAccounts(ctx, st, n)
	r.Seconds = time.Since(start).Seconds()
	if err != nil {
		st.Close()
		return err
	}
	if r.After, err = sampleMemory(); err != nil {
		st.Close()
		return err
	}
	r.PeakRSS = r.After.HWM - r.Before.RSS
	if err := st.Close(); err != nil {
		return err
	}
	if fi, err := os.Stat(path); err == nil {
		r.FileBytes = fi.Size()
	}
	re, err := reopenAndRead(ctx, path, sample)
	r.Reopened = &re
	return err
}

// createAccounts creates n accounts from memWriters goroutines and returns
// the ids of up to memSample of them, spread over the whole run.
func createAccounts(ctx context.Context, st *boltstore.Store, n int) ([]string, error) {
	every := max(n/memSample, 1)
	sample := make([]string, (n+every-1)/every)
	var next atomic.Int64
	var firstErr error
	var once sync.Once
	var wg sync.WaitGroup
	now := time.Now().UTC()
	for range memWriters {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= n || ctx.Err() != nil {
					return
				}
				acc, dev, sess, err := memAccount(i, now)
				if err == nil {
					err = st.CreateAccount(ctx, acc, dev, sess)
				}
				if err != nil {
					once.Do(func() { firstErr = err })
					return
				}
				if i%every == 0 {
					sample[i/every] = acc.ID
				}
			}
		})
	}
	wg.Wait()
	if firstErr != nil {
		return nil, firstErr
	}
	return sample, ctx.Err()
}

// memAccount is account i as a signup makes it: fresh ids, a username, one
// device with its key thumbprint, and its first session.
func memAccount(i int, now time.Time) (account.Account, account.Device, account.Session, error) {
	accID, err1 := account.NewID(account.AccountPrefix, nil)
	devID, err2 := account.NewID(account.DevicePrefix, nil)
	jkt, err3 := randomB64(32)
	if err := firstError(err1, err2, err3); err != nil {
		return account.Account{}, account.Device{}, account.Session{}, err
	}
	name := fmt.Sprintf("player%07d", i)
	return account.Account{ID: accID, Username: name, UsernameKey: name, Created: now},
		account.Device{ID: devID, AccountID: accID, Name: "phone", JKT: jkt, Created: now, LastUsed: now},
		account.Session{DeviceID: devID, AccountID: accID, JKT: jkt, Counter: 1, Created: now, LastUsed: now, Expires: now.Add(90 * 24 * time.Hour)},
		nil
}

func firstError(errs ...error) error {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// randomB64 is n random bytes, base64url without padding (a jti is 16, a
// key thumbprint 32).
func randomB64(n int) (string, error) {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// reopenAndRead opens the store at path again, reads the sample accounts
// and samples memory.
func reopenAndRead(ctx context.Context, path string, sample []string) (MemSample, error) {
	st, err := boltstore.Open(path, boltstore.Options{})
	if err != nil {
		return MemSample{}, err
	}
	defer st.Close()
	for _, id := range sample {
		if _, err := st.GetAccount(ctx, id); err != nil {
			return MemSample{}, fmt.Errorf("reading %s back: %w", id, err)
		}
	}
	return sampleMemory()
}

// noStore is the store of a mirror that is filled with Observe and never
// runs.
type noStore struct{ revocation.Store }

// fillMirror applies n device (or token) entries to a fresh mirror and
// samples memory while the mirror holds them.
func fillMirror(n int, kind string, r *MemoryResult) error {
	m, err := revocation.NewMirror(noStore{}, revocation.MirrorOptions{})
	if err != nil {
		return err
	}
	defer m.Close()
	ttl := revocation.EntryTTL(revocation.DefaultMaxAccessLifetime, revocation.DefaultLeeway)
	start := time.Now()
	for range n {
		e, err := memEntry(kind, start, ttl)
		if err != nil {
			return err
		}
		m.Observe(e)
	}
	r.Seconds = time.Since(start).Seconds()
	r.Len = m.Len()
	if r.After, err = sampleMemory(); err != nil {
		return err
	}
	r.PeakRSS = r.After.HWM - r.Before.RSS
	if r.Len != n {
		return fmt.Errorf("mirror holds %d entries, want %d", r.Len, n)
	}
	return nil
}

// memEntry is a live entry with an id shaped like a real one: a device id,
// or a jti.
func memEntry(kind string, now time.Time, ttl time.Duration) (revocation.Entry, error) {
	if kind == "devices" {
		id, err := account.NewID(account.DevicePrefix, nil)
		if err != nil {
			return revocation.Entry{}, err
		}
		return revocation.NewEntry(revocation.KindDevice, id, "", now, ttl)
	}
	jti, err := randomB64(16)
	if err != nil {
		return revocation.Entry{}, err
	}
	return revocation.NewEntry(revocation.KindToken, jti, "", now, ttl)
}

func printMemory(w io.Writer, rep *MemoryReport) {
	fmt.Fprintf(w, "hallpass-bench memory: each row a fresh process; deltas after the fill minus before; heap = /gc/heap/live:bytes after a GC; %s\n\n", rep.GoVersion)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "what\tN\tfill s\tRSS delta\tanon\tfile\tpeak (HWM) delta\theap delta\theap B/item\tRSS B/item\tfile\treopened RSS delta\t")
	for _, r := range rep.Results {
		d := r.After.RSS - r.Before.RSS
		reopened, file := "", ""
		if r.Reopened != nil {
			reopened = mib(r.Reopened.RSS - r.Before.RSS)
			file = mib(r.FileBytes)
		}
		fmt.Fprintf(tw, "%s\t%d\t%.1f\t%s\t%s\t%s\t%s\t%s\t%.0f\t%.0f\t%s\t%s\t\n", r.label(), r.N, r.Seconds,
			mib(d), mib(r.After.RSSAnon-r.Before.RSSAnon), mib(r.After.RSSFile-r.Before.RSSFile), mib(r.PeakRSS),
			mib(r.After.Heap-r.Before.Heap), float64(r.After.Heap-r.Before.Heap)/float64(r.N), float64(d)/float64(r.N),
			file, reopened)
	}
	tw.Flush()
}

func (r MemoryResult) label() string {
	switch r.Kind {
	case "accounts":
		return "bbolt accounts"
	case "devices":
		return "mirror device entries"
	}
	return "mirror token entries"
}

func mib(b int64) string { return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20)) }
