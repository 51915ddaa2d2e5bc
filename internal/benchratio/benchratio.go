// Package benchratio reports a hot path's cost next to its baseline from the
// same benchmark run, e.g. Verify against raw ed25519.Verify.
//
// The two are timed in interleaved pairs, alternating which goes first, and
// the figure reported is the median over all pairs of their time ratio. On a
// shared or loaded machine this is much steadier than the ratio of two
// separate benchmarks, or of two summed times: a preemption spoils a few
// pairs, not the median.
package benchratio

import (
	"slices"
	"testing"
	"time"
)

// Run times op and raw in pairs for b's loop and reports the median of
// op/raw as "<name>/raw" with the median time of each as "ns/<name>" and
// "ns/raw". op and raw report their own failures (b.Fatal).
func Run(b *testing.B, name string, op, raw func()) {
	b.Helper()
	var ta, tr []float64
	timed := func(f func(), into *[]float64) {
		t0 := time.Now()
		f()
		*into = append(*into, float64(time.Since(t0)))
	}
	for b.Loop() {
		if len(ta)%2 == 0 {
			timed(op, &ta)
			timed(raw, &tr)
		} else {
			timed(raw, &tr)
			timed(op, &ta)
		}
	}
	ratios := make([]float64, len(ta))
	for i := range ta {
		ratios[i] = ta[i] / tr[i]
	}
	b.ReportMetric(Median(ratios), name+"/raw")
	b.ReportMetric(Median(ta), "ns/"+name)
	b.ReportMetric(Median(tr), "ns/raw")
}

// Median returns the median of x, sorting x in place; 0 if x is empty.
func Median(x []float64) float64 {
	if len(x) == 0 {
		return 0
	}
	slices.Sort(x)
	return x[len(x)/2]
}
