package main

import (
	"bytes"
	"context"
	"encoding/json"
	"testing"
	"time"
)

func runJSON(t *testing.T, args ...string) Report {
	t.Helper()
	var out, errb bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	code := run(ctx, append(args, "-stores", "bolt", "-json", "-floor", "20ms"), &out, &errb)
	var rep Report
	if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
		t.Fatalf("exit %d, output is not JSON: %v\nstdout: %s\nstderr: %s", code, err, out.Bytes(), errb.Bytes())
	}
	if code != 0 {
		t.Errorf("exit code %d; stderr: %s", code, errb.Bytes())
	}
	if len(rep.Results) != len(scenarios) {
		t.Fatalf("%d results, want %d: %+v", len(rep.Results), len(scenarios), rep.Results)
	}
	if rep.Floor.SignNS <= 0 || rep.Floor.VerifyNS <= 0 || rep.Floor.RedisPingNS != 0 {
		t.Errorf("floor %+v: want sign and verify measured, no Redis", rep.Floor)
	}
	return rep
}

// TestBolt runs every scenario for about a second on bbolt with 2 clients.
func TestBolt(t *testing.T) {
	rep := runJSON(t, "-d", "1s", "-c", "2")
	for _, r := range rep.Results {
		if r.ReqPerS <= 0 || r.Errors != 0 || r.P50NS <= 0 || r.P99NS < r.P50NS || r.P50OverCrypto <= 0 {
			t.Errorf("%s %s: %+v", r.Store, r.Scenario, r)
		}
	}
}

// TestMaxRequests checks that -n stops a scenario long before -d.
func TestMaxRequests(t *testing.T) {
	start := time.Now()
	rep := runJSON(t, "-d", "1m", "-c", "3", "-n", "10")
	for _, r := range rep.Results {
		if r.Requests != 10 || r.Errors != 0 {
			t.Errorf("%s %s: %d requests, %d errors; want 10, 0", r.Store, r.Scenario, r.Requests, r.Errors)
		}
	}
	if el := time.Since(start); el > 30*time.Second {
		t.Errorf("took %v with -n 10", el)
	}
}

func TestFlags(t *testing.T) {
	for _, args := range [][]string{{"-c", "0"}, {"-d", "0s"}, {"-n", "0"}, {"-stores", "mysql"}, {"extra"}} {
		var out, errb bytes.Buffer
		if code := run(context.Background(), args, &out, &errb); code != 2 {
			t.Errorf("%q: exit %d, want 2", args, code)
		}
	}
}
