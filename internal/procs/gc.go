package procs

import (
	"os"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"sync"
)

// The collector's room. Go starts a collection when the heap has grown by
// GOGC percent of what the last one left live: 100 by default, so the
// heap peaks at twice the live heap. A server with a small live heap
// collects very often at 100; GC lets the heap grow by at least Headroom
// (or by as much as is live, whichever is more), at most MaxGCPercent:
//
//	GOGC = clamp(100 × max(live, Headroom) / live, 100, MaxGCPercent)
//
// So a node whose live heap is 20 MiB collects at 100 MiB instead of 40
// MiB (GOGC 400), one at 100 MiB at 356 MiB (GOGC 256), and one at 256 MiB
// or more (a revocation mirror of a couple of million entries) exactly as
// Go would. The memory this costs over Go's default is at most Headroom.
// Measured with hallpass-bench pinned to one core, 64 clients: signup and
// refresh gained 10 to 15% on both stores (docs/performance.md).
const (
	Headroom     = 256 << 20
	MaxGCPercent = 400
)

// GCPercentFor is the GOGC that GC sets for a live heap of live bytes.
func GCPercentFor(live uint64) int {
	switch {
	case live >= Headroom:
		return 100
	case live == 0 || 100*Headroom/live > MaxGCPercent:
		return MaxGCPercent
	}
	return int(100 * Headroom / live)
}

var gcOnce sync.Once

// GC keeps the collector's percentage at GCPercentFor(the live heap),
// re-computed after every collection, for the rest of the process. It
// does nothing when GOGC or GOMEMLIMIT is set in the environment (the
// operator chose), and reports whether it took over. Calling it again
// does nothing more.
func GC() bool {
	if os.Getenv("GOGC") != "" || os.Getenv("GOMEMLIMIT") != "" {
		return false
	}
	gcOnce.Do(func() {
		t := &gcTuner{sample: []metrics.Sample{{Name: "/gc/heap/live:bytes"}}}
		t.tune()
		t.arm()
	})
	return true
}

// gcSentinel is the object whose collection calls the tuner: large enough
// not to share a tiny-allocator block, which could keep it alive.
type gcSentinel struct{ _ [32]byte }

type gcTuner struct {
	sample []metrics.Sample
	last   int
}

// arm asks to be called after the next collection: a cleanup runs once the
// collector has found its object unreachable.
func (t *gcTuner) arm() {
	runtime.AddCleanup(new(gcSentinel), func(t *gcTuner) {
		t.tune()
		t.arm()
	}, t)
}

func (t *gcTuner) tune() {
	metrics.Read(t.sample)
	var live uint64
	if t.sample[0].Value.Kind() == metrics.KindUint64 {
		live = t.sample[0].Value.Uint64()
	}
	if pct := GCPercentFor(live); pct != t.last {
		debug.SetGCPercent(pct)
		t.last = pct
	}
}
