package benchratio

import (
	"testing"
	"time"
)

func TestMedian(t *testing.T) {
	for _, tt := range []struct {
		in   []float64
		want float64
	}{
		{nil, 0},
		{[]float64{3}, 3},
		{[]float64{5, 1, 3}, 3},
		{[]float64{4, 1, 3, 2}, 3},
	} {
		if got := Median(tt.in); got != tt.want {
			t.Errorf("Median(%v) = %v, want %v", tt.in, got, tt.want)
		}
	}
}

// BenchmarkRun reports about 2 spin/raw for an operation twice as long as its
// baseline.
func BenchmarkRun(b *testing.B) {
	spin := func(d time.Duration) func() {
		return func() {
			for t0 := time.Now(); time.Since(t0) < d; {
			}
		}
	}
	Run(b, "spin", spin(20*time.Microsecond), spin(10*time.Microsecond))
}
