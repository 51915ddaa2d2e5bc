package procs_test

import (
	"os"
	"os/exec"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hallpass/hallpass/internal/procs"
)

func TestGCPercentFor(t *testing.T) {
	const mib = 1 << 20
	for _, tc := range []struct {
		live uint64
		want int
	}{
		{0, procs.MaxGCPercent},
		{1, procs.MaxGCPercent},
		{20 * mib, procs.MaxGCPercent},
		{64 * mib, 400},
		{100 * mib, 256},
		{128 * mib, 200},
		{255 * mib, 100},
		{256 * mib, 100},
		{4096 * mib, 100},
	} {
		if got := procs.GCPercentFor(tc.live); got != tc.want {
			t.Errorf("GCPercentFor(%d MiB) = %d, want %d", tc.live/mib, got, tc.want)
		}
	}
}

// TestGCFollowsTheLiveHeap runs in a child process (GC changes the
// process for good): with a small live heap GOGC becomes 400; after the
// live heap grows past Headroom, the next collections bring it to 100; when
// it shrinks again, back up.
func TestGCFollowsTheLiveHeap(t *testing.T) {
	if os.Getenv("PROCS_GC_CHILD") == "1" {
		gcChild()
		return
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestGCFollowsTheLiveHeap$")
	cmd.Env = append(withoutGCEnv(), "PROCS_GC_CHILD=1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("child: %v\n%s", err, out)
	}
	got := strings.Fields(strings.TrimSpace(lastLine(string(out))))
	want := []string{"true", "400", "100", "400"}
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Fatalf("child reported %q, want %q (took over, GOGC small, big, small again)\n%s", got, want, out)
	}
}

func gcChild() {
	took := procs.GC()
	small := waitGOGC(procs.MaxGCPercent)
	big := make([][]byte, 0, 300)
	for range 300 { // 300 MiB live
		big = append(big, make([]byte, 1<<20))
	}
	large := waitGOGC(100)
	runtime.KeepAlive(big)
	big = nil
	again := waitGOGC(procs.MaxGCPercent)
	println(strconv.FormatBool(took), small, large, again)
}

// waitGOGC collects until GOGC is want (the tuner runs after each
// collection, on the cleanup goroutine), for at most 5 s, and returns
// what it last read.
func waitGOGC(want int) int {
	deadline := time.Now().Add(5 * time.Second)
	for {
		runtime.GC()
		time.Sleep(10 * time.Millisecond)
		now := debug.SetGCPercent(-1)
		debug.SetGCPercent(now)
		if now == want || time.Now().After(deadline) {
			return now
		}
	}
}

// TestGCLeavesTheOperatorsChoice: with GOGC or GOMEMLIMIT in the
// environment, GC does not take over.
func TestGCLeavesTheOperatorsChoice(t *testing.T) {
	for _, kv := range []string{"GOGC=50", "GOMEMLIMIT=1GiB"} {
		k, v, _ := strings.Cut(kv, "=")
		t.Setenv(k, v)
		if procs.GC() {
			t.Errorf("%s in the environment: GC took over", kv)
		}
		os.Unsetenv(k)
	}
}

func withoutGCEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "GOGC=") && !strings.HasPrefix(kv, "GOMEMLIMIT=") {
			env = append(env, kv)
		}
	}
	return env
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	for i := len(lines) - 1; i >= 0; i-- {
		if f := strings.Fields(lines[i]); len(f) == 4 {
			return lines[i]
		}
	}
	return ""
}
