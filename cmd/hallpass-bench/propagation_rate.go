package main

// -propagation -cluster -rate R: revocations arriving at R a second on a
// 3-master Redis Cluster (issue 12: p99 at most 5 ms from the admin call
// to 16 mirrors while 1,000 revocations a second arrive).
//
// The arrivals are open loop: revocation i is due at start + i/R, whether
// or not the earlier ones have returned or been seen, with at most -c
// admin calls in flight (an arrival that finds -c in flight waits, and the
// report says how far behind schedule the calls started). A collector
// reads the watchers' lines meanwhile; after the last call it waits up to
// perRevocationTimeout for the lines still due.
//
// On the cluster every revocation key shares the hash tag {rev}, so the
// revocation store's script, its stream and every mirror's XREAD BLOCK are
// on one of the three masters; the account store's keys spread over all
// three.

import (
	"context"
	"fmt"
	"io"
	"net"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/hallpass/hallpass/internal/redistest"
)

// clusterMasters is the size of the -cluster Redis Cluster.
const clusterMasters = 3

// maxMirrorsPerWatcher bounds -mirrors-per-watcher.
const maxMirrorsPerWatcher = 64

// rateGoal is the p99 target of propagation under -rate (issue 12).
const rateGoal = 5 * time.Millisecond

// rateLineFlush is how often watchers write their lines under -rate
// (watcherFlushEnv). At 1,000 revocations a second, 16 watchers each
// writing a line per batch to a pipe, and this process reading 16,000
// lines, took CPU that the mirrors being measured share on a small
// machine; applied, stamped by the watcher as its mirror has the entry,
// is unchanged by the wait.
const rateLineFlush = 10 * time.Millisecond

// Rate describes the arrivals of a -rate run.
type Rate struct {
	Asked    int     `json:"asked_per_s"`
	Achieved float64 `json:"achieved_per_s"` // calls started / time from first to last start
	// LagP99NS and LagMaxNS: how late calls started behind their due time
	// (too many in flight, or this process not scheduled).
	LagP99NS int64 `json:"lag_p99_ns"`
	LagMaxNS int64 `json:"lag_max_ns"`
	InFlight int   `json:"max_in_flight"` // -c
}

func newPropagationReport(o propOptions) *PropagationReport {
	r := &PropagationReport{
		Devices: o.n, Watchers: o.watchers, GoalNS: int64(propagationGoal),
		GOMAXPROCS: runtime.GOMAXPROCS(0), NumCPU: runtime.NumCPU(), GoVersion: runtime.Version(),
		Setup:             fmt.Sprintf("%d accounts signed up via POST /v1/accounts (fresh key and DPoP proof each, %d at a time, signup limits off)", o.n, o.clients),
		PerWatcher:        make([]int, o.watchers*o.perProc),
		Mirrors:           o.watchers * o.perProc,
		MirrorsPerWatcher: o.perProc,
		Cluster:           o.cluster,
		Rate:              o.rate,
	}
	if o.rate > 0 {
		r.GoalNS = int64(rateGoal)
	}
	return r
}

// mode says how the devices were revoked.
func (r *PropagationReport) mode() string {
	if r.Rate == 0 {
		return "one by one"
	}
	if r.RateInfo == nil {
		return fmt.Sprintf("at %d/s, open loop", r.Rate)
	}
	return fmt.Sprintf("at %d/s, open loop (achieved %.0f/s, start lag p99 %s, max %s, at most %d in flight)",
		r.Rate, r.RateInfo.Achieved, fmtDur(r.RateInfo.LagP99NS), fmtDur(r.RateInfo.LagMaxNS), r.RateInfo.InFlight)
}

// redisKind names the Redis of the run.
func (r *PropagationReport) redisKind() string {
	if r.Cluster {
		return fmt.Sprintf("a %d-master Redis Cluster", clusterMasters)
	}
	return "one redis-server"
}

// startPropagationRedis starts one redis-server, or a 3-master cluster with
// -cluster, and returns its address (a cluster's nodes comma-separated)
// and how to stop it.
func startPropagationRedis(ctx context.Context, o propOptions) (string, func(), error) {
	if !o.cluster {
		rp, err := startRedis(ctx, o.redisBin)
		if err != nil {
			return "", nil, err
		}
		return rp.Addr(), rp.Stop, nil
	}
	c, err := redistest.LaunchCluster(ctx, redistest.Options{Bin: o.redisBin}, clusterMasters)
	if err != nil {
		return "", nil, fmt.Errorf("redis cluster: %w", err)
	}
	return strings.Join(c.Addrs(), ","), c.Stop, nil
}

// newBenchClient is a client of addrs: one host:port, or a cluster's
// nodes comma-separated. pool 0 is go-redis's default pool size.
func newBenchClient(addrs string, pool int) redis.UniversalClient {
	list := strings.Split(addrs, ",")
	if len(list) > 1 {
		return redis.NewClusterClient(&redis.ClusterOptions{Addrs: list, ContextTimeoutEnabled: true, PoolSize: pool})
	}
	return redis.NewClient(&redis.Options{Addr: list[0], ContextTimeoutEnabled: true, PoolSize: pool})
}

// loopbackAddrs checks that every address of a comma-separated list is a
// loopback IP and port.
func loopbackAddrs(addrs string) error {
	for _, a := range strings.Split(addrs, ",") {
		host, _, err := net.SplitHostPort(a)
		if ip := net.ParseIP(host); err != nil || ip == nil || !ip.IsLoopback() {
			return fmt.Errorf("%q is not a loopback host:port", a)
		}
	}
	return nil
}

// revokeAtRate revokes the devices of tl at rep.Rate a second, open loop,
// at most inFlight calls at a time, while a collector records the
// watchers' lines. It returns the latency of every successful admin call
// and fills rep.RateInfo; failed calls are counted in rep.
func revokeAtRate(ctx context.Context, at *adminTarget, tl *tally, sights <-chan sighting, rep *PropagationReport, inFlight int, progress io.Writer) ([]time.Duration, error) {
	col := startCollector(ctx, tl, sights)
	admins, lags, span := fireAtRate(ctx, at, tl, rep, inFlight)
	want := 0
	for i := range tl.ids {
		if !tl.failed[i] {
			want += tl.watchers
		}
	}
	if err := col.finish(want); err != nil {
		return nil, err
	}
	if tl.total < want {
		fmt.Fprintf(progress, "hallpass-bench: %d of %d sightings within %s of the last call\n", tl.total, want, perRevocationTimeout)
	}
	ri := &Rate{Asked: rep.Rate, InFlight: inFlight}
	if span > 0 {
		ri.Achieved = float64(len(tl.ids)-1) / span.Seconds()
	}
	_, ri.LagP99NS, ri.LagMaxNS = quantiles(lags)
	rep.RateInfo = ri
	return admins, ctx.Err()
}

// fireAtRate starts revocation i at its due time, start + i/rate (or as
// soon after as a slot of inFlight is free), and waits for every call. It
// sets tl.start and tl.failed (and counts failures in rep: under a mutex,
// calls end concurrently). It returns the successful calls' latencies, how
// late each call started, and the time from the first start to the last.
func fireAtRate(ctx context.Context, at *adminTarget, tl *tally, rep *PropagationReport, inFlight int) (admins, lags []time.Duration, span time.Duration) {
	interval := time.Second / time.Duration(rep.Rate)
	lat := make([]time.Duration, len(tl.ids))
	lags = make([]time.Duration, 0, len(tl.ids))
	slots := make(chan struct{}, inFlight)
	var mu sync.Mutex
	var wg sync.WaitGroup
	begin := time.Now()
	for i, id := range tl.ids {
		due := begin.Add(time.Duration(i) * interval)
		if !sleepUntil(ctx, due) {
			tl.failed[i] = true
			continue
		}
		slots <- struct{}{}
		t0 := time.Now()
		tl.start[i] = t0
		lags = append(lags, t0.Sub(due))
		wg.Go(func() {
			defer func() { <-slots }()
			err := at.revokeDevice(ctx, id)
			lat[i] = time.Since(t0)
			if err != nil {
				mu.Lock()
				tl.failed[i] = true
				rep.fail(err)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	for i := range tl.ids {
		if !tl.failed[i] {
			admins = append(admins, lat[i])
		}
	}
	if n := len(tl.ids); n > 1 && !tl.start[n-1].IsZero() {
		span = tl.start[n-1].Sub(tl.start[0])
	}
	return admins, lags, span
}

// sleepUntil waits until t; false if ctx ended first.
func sleepUntil(ctx context.Context, t time.Time) bool {
	d := time.Until(t)
	if d <= 0 {
		return ctx.Err() == nil
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-timer.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// collector records watcher lines into a tally from its own goroutine
// while the calls are made.
type collector struct {
	want chan int
	done chan error
}

func startCollector(ctx context.Context, tl *tally, sights <-chan sighting) *collector {
	c := &collector{want: make(chan int, 1), done: make(chan error, 1)}
	go func() { c.done <- c.run(ctx, tl, sights) }()
	return c
}

// run records lines until finish has said how many are due and they have
// all arrived, or perRevocationTimeout after finish, or ctx ends.
func (c *collector) run(ctx context.Context, tl *tally, sights <-chan sighting) error {
	want := -1
	var deadline <-chan time.Time
	wantc := c.want
	for want < 0 || tl.total < want {
		select {
		case s := <-sights:
			if err := tl.record(s); err != nil {
				return err
			}
		case want = <-wantc:
			wantc = nil
			t := time.NewTimer(perRevocationTimeout)
			defer t.Stop()
			deadline = t.C
		case <-deadline:
			return nil
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

// finish tells the collector that want sightings are due in all, and waits
// for it to stop. Only then may the tally be read.
func (c *collector) finish(want int) error {
	c.want <- want
	return <-c.done
}
