package main

import (
	"bytes"
	"context"
	"encoding/json"
	"slices"
	"testing"
	"time"
)

// TestRedisAOF runs every scenario on Redis once per durability setting,
// each on a fresh redis-server, briefly. Needs redis-server (make
// test-deps).
func TestRedisAOF(t *testing.T) {
	var out, errb bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	code := run(ctx, []string{"-stores", "redis", "-redis-aof", "everysec,always,off,always", "-d", "300ms", "-rounds", "1",
		"-floor", "50ms", "-c", "2", "-json"}, &out, &errb)
	var rep Report
	if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
		t.Fatalf("exit %d, output is not JSON: %v\nstderr: %s", code, err, errb.Bytes())
	}
	if code != 0 {
		t.Errorf("exit code %d; stderr: %s", code, errb.Bytes())
	}
	var stores []string
	for _, r := range rep.Results {
		if r.ReqPerS <= 0 || r.Errors != 0 || r.Floor.OpsPerSec <= 0 {
			t.Errorf("%s %s: %+v", r.Store, r.Scenario, r)
		}
		if !slices.Contains(stores, r.Store) {
			stores = append(stores, r.Store)
		}
	}
	if want := []string{"redis+aof-everysec", "redis+aof-always", "redis"}; !slices.Equal(stores, want) {
		t.Errorf("stores %q, want %q", stores, want)
	}
	if len(rep.Results) != 3*len(scenarios) {
		t.Errorf("%d results, want %d", len(rep.Results), 3*len(scenarios))
	}
}

func TestParseAOF(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []string
	}{
		{"off", []string{"off"}},
		{"always, everysec,always", []string{"always", "everysec"}},
	} {
		got, err := parseAOF(tc.in)
		if err != nil || !slices.Equal(got, tc.want) {
			t.Errorf("parseAOF(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
	for _, bad := range []string{"", "no", "everysec,", "fsync"} {
		var errb bytes.Buffer
		if code := run(context.Background(), []string{"-redis-aof", bad}, &bytes.Buffer{}, &errb); code != 2 {
			t.Errorf("-redis-aof %q: exit %d, want 2", bad, code)
		}
	}
}

// TestCluster runs every scenario on a 3-master Redis Cluster, briefly,
// with and without the account store's view cache, each labelled.
func TestCluster(t *testing.T) {
	for _, tt := range []struct {
		args  []string
		label string
	}{
		{nil, "cluster"},
		{[]string{"-account-cache=false"}, "cluster-noviews"},
	} {
		var out, errb bytes.Buffer
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		args := append([]string{"-stores", "cluster", "-d", "300ms", "-rounds", "1", "-floor", "50ms", "-c", "2", "-json"}, tt.args...)
		code := run(ctx, args, &out, &errb)
		cancel()
		var rep Report
		if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
			t.Fatalf("exit %d, output is not JSON: %v\nstderr: %s", code, err, errb.Bytes())
		}
		if code != 0 {
			t.Errorf("exit code %d; stderr: %s", code, errb.Bytes())
		}
		if len(rep.Results) != len(scenarios) {
			t.Errorf("%d results, want %d", len(rep.Results), len(scenarios))
		}
		for _, r := range rep.Results {
			if r.Store != tt.label || r.ReqPerS <= 0 || r.Errors != 0 || r.Floor.OpsPerSec <= 0 {
				t.Errorf("%v: %s %s: %+v", tt.args, r.Store, r.Scenario, r)
			}
		}
	}
}
