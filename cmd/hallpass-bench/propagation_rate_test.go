package main

import (
	"bytes"
	"context"
	"encoding/json"
	"testing"
	"time"
)

// TestPropagationClusterRate revokes 60 devices at 300 a second, open loop,
// on a 3-master Redis Cluster, while 2 watcher processes of 2 mirrors each
// follow them, and checks that every mirror saw every revocation and that
// the figures are consistent. Needs redis-server (make test-deps).
func TestPropagationClusterRate(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var out, errb bytes.Buffer
	code := run(ctx, []string{"-propagation", "-cluster", "-rate", "300", "-n", "60", "-watchers", "2", "-mirrors-per-watcher", "2", "-c", "8", "-timeout", "90s", "-json"}, &out, &errb)
	var rep PropagationReport
	if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
		t.Fatalf("exit %d, output is not JSON: %v\nstdout: %s\nstderr: %s", code, err, out.Bytes(), errb.Bytes())
	}
	if code != 0 {
		t.Errorf("exit code %d; stderr: %s", code, errb.Bytes())
	}
	if !rep.Cluster || rep.Rate != 300 || rep.RateInfo == nil || rep.GoalNS != int64(rateGoal) || rep.LineFlushNS != int64(rateLineFlush) {
		t.Fatalf("report %+v: want a cluster run at 300/s against the 5 ms goal, lines gathered", rep)
	}
	if rep.Errors != 0 || rep.Missed != 0 || rep.Observations != 240 || rep.Mirrors != 4 || rep.MirrorsPerWatcher != 2 || rep.Watchers != 2 {
		t.Errorf("report %+v: want 60 devices x 4 mirrors = 240 observations, none missed, no errors", rep)
	}
	for m, n := range rep.PerWatcher {
		if n != 60 {
			t.Errorf("mirror %d saw %d of 60 revocations", m, n)
		}
	}
	if len(rep.PerWatcher) != 4 {
		t.Errorf("per mirror %v, want 4", rep.PerWatcher)
	}
	ri := rep.RateInfo
	if ri.Achieved <= 0 || ri.Achieved > 400 || ri.InFlight != 8 || ri.LagMaxNS < ri.LagP99NS {
		t.Errorf("arrivals %+v: want at most about 300/s", ri)
	}
	// Applied (the watcher's clock) comes before the line is read.
	if rep.AppliedP50NS <= 0 || rep.AppliedP99NS < rep.AppliedP50NS || rep.AppliedMaxNS < rep.AppliedP99NS ||
		rep.AppliedP50NS > rep.P50NS || rep.AppliedMaxNS > rep.MaxNS {
		t.Errorf("applied p50 %d p99 %d max %d vs read p50 %d max %d", rep.AppliedP50NS, rep.AppliedP99NS, rep.AppliedMaxNS, rep.P50NS, rep.MaxNS)
	}
	t.Logf("%s; propagation p50 %v p99 %v max %v; applied p50 %v p99 %v; admin p50 %v p99 %v", rep.mode(),
		time.Duration(rep.P50NS), time.Duration(rep.P99NS), time.Duration(rep.MaxNS),
		time.Duration(rep.AppliedP50NS), time.Duration(rep.AppliedP99NS),
		time.Duration(rep.AdminP50NS), time.Duration(rep.AdminP99NS))
}

func TestPropagationRateFlags(t *testing.T) {
	for _, args := range [][]string{
		{"-propagation", "-rate", "-1"},
		{"-propagation", "-rate", "100001"},
		{"-propagation", "-cluster=maybe"},
		{"-propagation", "-mirrors-per-watcher", "0"},
		{"-propagation", "-mirrors-per-watcher", "65"},
	} {
		var out, errb bytes.Buffer
		if code := run(context.Background(), args, &out, &errb); code != 2 {
			t.Errorf("%q: exit %d, want 2", args, code)
		}
	}
}

// TestRunWatcherMirrors: a watcher runs 1 to 64 mirrors.
func TestRunWatcherMirrors(t *testing.T) {
	for _, n := range []int{0, 65} {
		if err := runWatcher("127.0.0.1:6379", n, 0, bytes.NewReader(nil), &bytes.Buffer{}); err == nil {
			t.Errorf("%d mirrors: no error", n)
		}
	}
}

// TestLoopbackAddrs: the watcher refuses a cluster list with one address
// that is not loopback.
func TestLoopbackAddrs(t *testing.T) {
	if err := loopbackAddrs("127.0.0.1:1,127.0.0.1:2,[::1]:3"); err != nil {
		t.Error(err)
	}
	for _, bad := range []string{"127.0.0.1:1,10.0.0.1:2", "127.0.0.1:1,", "localhost:6379"} {
		if err := loopbackAddrs(bad); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}

// TestLockedWriterGathers: with every set, lines wait for a flush (the
// ready line does not), and none is lost at the end.
func TestLockedWriterGathers(t *testing.T) {
	var buf bytes.Buffer
	l := &lockedWriter{w: &buf, every: time.Hour}
	if err := l.write([]watchEvent{{Ready: true}}, true); err != nil {
		t.Fatal(err)
	}
	if err := l.emit([]watchEvent{{Kind: "device", ID: "dev_a", At: 1}, {Kind: "device", ID: "dev_b", At: 2}}); err != nil {
		t.Fatal(err)
	}
	if got := buf.String(); got != "{\"ready\":true}\n" {
		t.Fatalf("before the flush: %q, want only the ready line", got)
	}
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() { l.run(stop); close(done) }()
	close(stop)
	<-done
	want := "{\"ready\":true}\n{\"kind\":\"device\",\"id\":\"dev_a\",\"at\":1}\n{\"kind\":\"device\",\"id\":\"dev_b\",\"at\":2}\n"
	if got := buf.String(); got != want {
		t.Fatalf("after the flush:\n%q\nwant\n%q", got, want)
	}
}
