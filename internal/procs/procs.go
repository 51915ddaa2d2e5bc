// Package procs keeps a server that waits on its disk from running on a
// single Go processor.
//
// With GOMAXPROCS 1 (what Go chooses on one CPU, under taskset -c N, or in
// a container limited to one CPU) the embedded store's committer holds the
// only processor while it enters each commit's fdatasync, and the runtime
// hands that processor to the request goroutines only once sysmon notices
// the blocked thread. Measured with hallpass-bench pinned to one core, 64
// clients, bbolt: signup 188 req/s with GOMAXPROCS 1 against 2,542 with
// GOMAXPROCS 2 on the same single core (the core sat idle through the
// flushes). Two processors on one CPU cost the cryptography nothing
// measurable: while one thread waits for the disk the other computes.
//
// GC sets the collector's target (GOGC) to GCPercent, 400 instead of Go's
// 100: the issuer's and the gateway's requests allocate a lot of short-lived
// garbage (JSON, PASETO encoding, HTTP headers), and at 100 the collector
// took about 14% of the pinned core in a CPU profile of refresh. Measured
// with hallpass-bench pinned to one core, 64 clients, signup and refresh
// gained 10-15% on both stores (docs/performance.md). The price is memory:
// the heap may grow to about five times what is live between collections,
// instead of twice. The live heap of a node is small (the revocation
// mirror is the largest part: about 160 MB at a million live entries), and
// an operator who needs a bound sets GOMEMLIMIT, or GOGC to choose.
//
// What it trusts: the GOMAXPROCS and GOGC environment variables, when set,
// are the operator's choice and are left alone.
package procs

import (
	"os"
	"runtime"
	"runtime/debug"
)

// Min is the least GOMAXPROCS a server waiting on fsync should run with.
const Min = 2

// AtLeast raises GOMAXPROCS to min unless the GOMAXPROCS environment
// variable is set, and returns the value before and after.
func AtLeast(min int) (before, after int) {
	before = runtime.GOMAXPROCS(0)
	if before >= min || os.Getenv("GOMAXPROCS") != "" {
		return before, before
	}
	runtime.GOMAXPROCS(min)
	return before, min
}

// GCPercent is the collector target a server runs with (see the package
// doc).
const GCPercent = 400

// GC sets the collector's target percentage to pct unless the GOGC
// environment variable is set, and returns the value before and after.
func GC(pct int) (before, after int) {
	before = debug.SetGCPercent(-1)
	debug.SetGCPercent(before)
	if os.Getenv("GOGC") != "" || before == pct {
		return before, before
	}
	debug.SetGCPercent(pct)
	return before, pct
}
