package procs_test

import (
	"runtime"
	"runtime/debug"
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

func TestGC(t *testing.T) {
	t.Setenv("GOGC", "")
	defer debug.SetGCPercent(debug.SetGCPercent(100))
	before, after := procs.GC(procs.GCPercent)
	if before != 100 || after != procs.GCPercent {
		t.Fatalf("GC from 100: (%d, %d), want (100, %d)", before, after, procs.GCPercent)
	}
	if now := debug.SetGCPercent(100); now != procs.GCPercent {
		t.Fatalf("GOGC now %d, want %d", now, procs.GCPercent)
	}
}

func TestGCLeavesTheOperatorsChoice(t *testing.T) {
	t.Setenv("GOGC", "50")
	defer debug.SetGCPercent(debug.SetGCPercent(50))
	if _, after := procs.GC(procs.GCPercent); after != 50 {
		t.Fatalf("GOGC=50 in the environment: set to %d", after)
	}
	if now := debug.SetGCPercent(50); now != 50 {
		t.Fatalf("GOGC=50 in the environment: now %d", now)
	}
}
