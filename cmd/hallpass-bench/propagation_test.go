package main

import (
	"bytes"
	"context"
	"encoding/json"
	"testing"
	"time"
)

// TestPropagation revokes 20 devices while 2 watcher processes (this test
// binary re-executed, see propagation_watch.go) mirror the revocations, and
// checks that every watcher saw every revocation. Needs redis-server (make
// test-deps).
func TestPropagation(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var out, errb bytes.Buffer
	code := run(ctx, []string{"-propagation", "-n", "20", "-watchers", "2", "-c", "4", "-timeout", "90s", "-json"}, &out, &errb)
	var rep PropagationReport
	if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
		t.Fatalf("exit %d, output is not JSON: %v\nstdout: %s\nstderr: %s", code, err, out.Bytes(), errb.Bytes())
	}
	if code != 0 {
		t.Errorf("exit code %d; stderr: %s", code, errb.Bytes())
	}
	if rep.Devices != 20 || rep.Watchers != 2 || rep.Errors != 0 || rep.Missed != 0 || rep.Observations != 40 {
		t.Errorf("report %+v: want 20 devices x 2 watchers = 40 observations, none missed, no errors", rep)
	}
	for w, n := range rep.PerWatcher {
		if n != 20 {
			t.Errorf("watcher %d saw %d of 20 revocations", w, n)
		}
	}
	if len(rep.PerWatcher) != 2 {
		t.Errorf("per watcher %v, want 2 watchers", rep.PerWatcher)
	}
	if rep.P50NS <= 0 || rep.P99NS < rep.P50NS || rep.MaxNS < rep.P99NS || rep.AdminP50NS <= 0 || rep.AdminMaxNS < rep.AdminP99NS {
		t.Errorf("figures out of order: %+v", rep)
	}
	t.Logf("propagation p50 %v p99 %v max %v; admin p50 %v p99 %v",
		time.Duration(rep.P50NS), time.Duration(rep.P99NS), time.Duration(rep.MaxNS),
		time.Duration(rep.AdminP50NS), time.Duration(rep.AdminP99NS))
}

func TestPropagationFlags(t *testing.T) {
	for _, args := range [][]string{
		{"-propagation", "-n", "0"},
		{"-propagation", "-watchers", "0"},
		{"-propagation", "-watchers", "65"},
		{"-propagation", "-timeout", "0s"},
		{"-propagation", "-d", "1s"}, // a load flag: not in this mode
		{"-propagation", "extra"},
	} {
		var out, errb bytes.Buffer
		if code := run(context.Background(), args, &out, &errb); code != 2 {
			t.Errorf("%q: exit %d, want 2", args, code)
		}
	}
}

// TestRunWatcherRefusesNonLoopback: the watcher only talks to loopback.
func TestRunWatcherRefusesNonLoopback(t *testing.T) {
	for _, addr := range []string{"10.0.0.1:6379", "example.com:6379", "nonsense"} {
		if err := runWatcher(addr, 1, 0, bytes.NewReader(nil), &bytes.Buffer{}); err == nil {
			t.Errorf("%s: no error", addr)
		}
	}
}
