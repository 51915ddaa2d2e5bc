package procs_test

import (
	"runtime"
	"testing"

	"github.com/hallpass/hallpass/internal/procs"
)

func TestAtLeast(t *testing.T) {
	t.Setenv("GOMAXPROCS", "") // unset for AtLeast's purpose (empty)
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(0))
	for _, tc := range []struct{ start, min, want int }{
		{1, 2, 2},
		{2, 2, 2},
		{4, 2, 4},
	} {
		runtime.GOMAXPROCS(tc.start)
		before, after := procs.AtLeast(tc.min)
		if before != tc.start || after != tc.want || runtime.GOMAXPROCS(0) != tc.want {
			t.Errorf("start %d, min %d: (%d, %d), now %d; want (%d, %d)", tc.start, tc.min, before, after, runtime.GOMAXPROCS(0), tc.start, tc.want)
		}
	}
}

func TestAtLeastLeavesTheOperatorsChoice(t *testing.T) {
	t.Setenv("GOMAXPROCS", "1")
	defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(0))
	runtime.GOMAXPROCS(1)
	if _, after := procs.AtLeast(2); after != 1 || runtime.GOMAXPROCS(0) != 1 {
		t.Fatalf("GOMAXPROCS=1 in the environment: raised to %d", runtime.GOMAXPROCS(0))
	}
}
