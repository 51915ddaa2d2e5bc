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
// GC (gc.go) gives the collector room while the live heap is small: the
// issuer's and the gateway's requests make a lot of short-lived garbage
// (JSON, PASETO encoding, HTTP headers), and at Go's default GOGC 100 the
// collector took about 14% of the pinned core in a CPU profile of refresh.
//
// What it trusts: the GOMAXPROCS, GOGC and GOMEMLIMIT environment
// variables, when set, are the operator's choice and are left alone.
package procs

import (
	"os"
	"runtime"
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
