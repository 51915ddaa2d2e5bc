package main

import (
	"context"
	"fmt"
	"io"
	"slices"
	"time"
)

// revokeOneByOne revokes the devices of tl in turn, each once every
// watcher has printed the one before (or perRevocationTimeout has passed).
// It returns the latency of every successful admin call, and counts failed
// calls in rep.
func revokeOneByOne(ctx context.Context, at *adminTarget, tl *tally, sights <-chan sighting, rep *PropagationReport, progress io.Writer) ([]time.Duration, error) {
	var admins []time.Duration
	for i, id := range tl.ids {
		// Drain lines already read (late ones of earlier revocations).
		if err := tl.drain(sights); err != nil {
			return nil, err
		}
		t0 := time.Now()
		tl.start[i] = t0
		err := at.revokeDevice(ctx, id)
		admin := time.Since(t0)
		if err != nil {
			tl.failed[i] = true
			rep.fail(err)
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			continue
		}
		admins = append(admins, admin)
		if err := tl.collect(ctx, i, sights, progress); err != nil {
			return nil, err
		}
	}
	return admins, nil
}

// tally matches watcher lines to revocations: when each revocation's admin
// call started, and when each watcher applied and printed it.
type tally struct {
	watchers int // mirrors, in all
	perProc  int // mirrors per watcher process
	ids      []string
	index    map[string]int // device id -> revocation
	start    []time.Time    // [revocation]: the admin call's start
	failed   []bool         // [revocation]: the admin call failed
	seen     [][]time.Time  // [revocation][watcher]: line read; zero: not yet
	applied  [][]int64      // [revocation][watcher]: applied, watcher's Unix ns
	count    []int          // [revocation]: watchers that printed it
	total    int            // sum of count
}

func newTally(ids []string, watchers, perProc int) *tally {
	tl := &tally{
		watchers: watchers,
		perProc:  perProc,
		ids:      ids,
		index:    make(map[string]int, len(ids)),
		start:    make([]time.Time, len(ids)),
		failed:   make([]bool, len(ids)),
		seen:     make([][]time.Time, len(ids)),
		applied:  make([][]int64, len(ids)),
		count:    make([]int, len(ids)),
	}
	for i, id := range ids {
		tl.index[id] = i
		tl.seen[i] = make([]time.Time, watchers)
		tl.applied[i] = make([]int64, watchers)
	}
	return tl
}

// record notes a watcher line; lines of other kinds, unknown ids and
// repeats are ignored.
func (tl *tally) record(s sighting) error {
	if s.err != nil {
		return fmt.Errorf("watcher %d: %w", s.w, s.err)
	}
	w := s.w*tl.perProc + s.ev.M // the mirror
	i, ok := tl.index[s.ev.ID]
	if !ok || s.ev.Kind != "device" || s.ev.M < 0 || s.ev.M >= tl.perProc || !tl.seen[i][w].IsZero() {
		return nil
	}
	tl.seen[i][w] = s.at
	tl.applied[i][w] = s.ev.At
	tl.count[i]++
	tl.total++
	return nil
}

// drain records the lines already read, without waiting.
func (tl *tally) drain(sights <-chan sighting) error {
	for {
		select {
		case s := <-sights:
			if err := tl.record(s); err != nil {
				return err
			}
		default:
			return nil
		}
	}
}

// collect records lines until every watcher has printed revocation i, or
// perRevocationTimeout has passed (which it reports to progress).
func (tl *tally) collect(ctx context.Context, i int, sights <-chan sighting, progress io.Writer) error {
	wait := time.NewTimer(perRevocationTimeout)
	defer wait.Stop()
	for tl.count[i] < tl.watchers {
		select {
		case s := <-sights:
			if err := tl.record(s); err != nil {
				return err
			}
		case <-wait.C:
			fmt.Fprintf(progress, "hallpass-bench: revocation %d seen by %d of %d watchers within %s\n", i, tl.count[i], tl.watchers, perRevocationTimeout)
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

// times returns, for every (successful revocation, watcher) pair seen,
// the time from the admin call's start until the line was read (props)
// and until the watcher had applied it (applied, by the watcher's clock;
// absent when the watcher did not say). It counts the pairs of each
// watcher and the pairs never seen in r.
func (tl *tally) times(r *PropagationReport) (props, applied []time.Duration) {
	for i := range tl.ids {
		if tl.failed[i] {
			continue
		}
		for w, ts := range tl.seen[i] {
			if ts.IsZero() {
				r.Missed++
				continue
			}
			props = append(props, ts.Sub(tl.start[i]))
			if a := tl.applied[i][w]; a != 0 {
				applied = append(applied, time.Duration(a-tl.start[i].UnixNano()))
			}
			r.PerWatcher[w]++
		}
	}
	return props, applied
}

// fail counts a failed admin call.
func (r *PropagationReport) fail(err error) {
	r.Errors++
	if r.FirstError == "" {
		r.FirstError = err.Error()
	}
}

// summarize fills in the figures from the tally and the admin call
// latencies.
func (r *PropagationReport) summarize(tl *tally, admins []time.Duration) {
	props, applied := tl.times(r)
	r.Observations = len(props)
	r.P50NS, r.P99NS, r.MaxNS = quantiles(props)
	r.AppliedP50NS, r.AppliedP99NS, r.AppliedMaxNS = quantiles(applied)
	r.AdminP50NS, r.AdminP99NS, r.AdminMaxNS = quantiles(admins)
	p99 := r.P99NS
	if r.LineFlushNS > 0 {
		p99 = r.AppliedP99NS
	}
	r.GoalMet = r.Observations > 0 && r.Missed == 0 && r.Errors == 0 && len(applied) == len(props) && p99 <= r.GoalNS
}

// quantiles sorts ds and returns its p50, p99 and maximum in ns (zeros
// when empty).
func quantiles(ds []time.Duration) (p50, p99, maxNS int64) {
	if len(ds) == 0 {
		return 0, 0, 0
	}
	slices.Sort(ds)
	return int64(percentile(ds, 0.50)), int64(percentile(ds, 0.99)), int64(ds[len(ds)-1])
}
