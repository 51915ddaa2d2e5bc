package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"testing"
	"time"

	"github.com/hallpass/hallpass/internal/procs"
)

func runJSON(t *testing.T, args ...string) Report {
	t.Helper()
	var out, errb bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	code := run(ctx, append(args, "-stores", "bolt", "-json", "-floor", "50ms"), &out, &errb)
	var rep Report
	if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
		t.Fatalf("exit %d, output is not JSON: %v\nstdout: %s\nstderr: %s", code, err, out.Bytes(), errb.Bytes())
	}
	if code != 0 {
		t.Errorf("exit code %d; stderr: %s", code, errb.Bytes())
	}
	if want := wantResults(args); len(rep.Results) != want {
		t.Fatalf("%d results, want %d: %+v", len(rep.Results), want, rep.Results)
	}
	for _, r := range rep.Results {
		if r.Floor.Ops <= 0 || r.Floor.OpsPerSec <= 0 || r.FloorOps == "" {
			t.Errorf("%s %s: floor %+v %q: want it measured", r.Store, r.Scenario, r.Floor, r.FloorOps)
		}
	}
	return rep
}

// wantResults is the number of scenarios args run (-scenarios, default all).
func wantResults(args []string) int {
	if i := slices.Index(args, "-scenarios"); i >= 0 {
		sc, _ := parseScenarios(args[i+1])
		return len(sc)
	}
	return len(scenarios)
}

// TestNoTokenCache runs /v1/me with the issuer's token cache off: every
// request a cache miss, labelled so.
func TestNoTokenCache(t *testing.T) {
	rep := runJSON(t, "-d", "400ms", "-c", "2", "-rounds", "1", "-scenarios", "me", "-token-cache=false")
	if r := rep.Results[0]; r.Store != "bolt-nocache" || r.Scenario != "me" || r.ReqPerS <= 0 || r.Errors != 0 {
		t.Errorf("result %+v: want bolt-nocache me, requests served", r)
	}
}

// TestBolt runs every scenario for about a second on bbolt with 2 clients,
// in 2 rounds, each beside its own floor.
func TestBolt(t *testing.T) {
	rep := runJSON(t, "-d", "1s", "-c", "2", "-rounds", "2")
	for _, r := range rep.Results {
		if r.ReqPerS <= 0 || r.Errors != 0 || r.P50NS <= 0 || r.P99NS < r.P50NS || r.OfFloor <= 0 || r.Rounds != 2 {
			t.Errorf("%s %s: %+v", r.Store, r.Scenario, r)
		}
	}
	if rep.Results[0].FloorOps != rep.Results[1].FloorOps || rep.Results[0].FloorOps == rep.Results[2].FloorOps {
		t.Errorf("floors: signup %q, refresh %q, me %q: want signup = refresh != me",
			rep.Results[0].FloorOps, rep.Results[1].FloorOps, rep.Results[2].FloorOps)
	}
}

// TestPinned runs the server in its pinned child process (CPU 0, which
// every machine has) with the load pinned beside it.
func TestPinned(t *testing.T) {
	if !pinningSupported {
		var errb bytes.Buffer
		if code := run(context.Background(), []string{"-server-cpus", "0"}, &bytes.Buffer{}, &errb); code != 2 {
			t.Errorf("-server-cpus without pinning support: exit %d, want 2", code)
		}
		return
	}
	rep := runJSON(t, "-d", "400ms", "-c", "2", "-rounds", "2", "-server-cpus", "0", "-load-cpus", "0")
	// The server side runs with procs.Min processors on its one CPU, as
	// hallpass serve does.
	if rep.ServerCPUs != "0" || rep.LoadCPUs != "0" || rep.GOMAXPROCS != procs.Min || rep.LoadGOMAXPROCS != 1 {
		t.Errorf("report %+v: want server and load on CPU 0, GOMAXPROCS %d and 1", rep, procs.Min)
	}
	for _, r := range rep.Results {
		if r.ReqPerS <= 0 || r.Errors != 0 || r.OfFloor <= 0 {
			t.Errorf("%s %s: %+v", r.Store, r.Scenario, r)
		}
	}
}

// TestMaxRequests checks that -n stops a scenario long before -d (and
// that -cpuprofile writes a profile).
func TestMaxRequests(t *testing.T) {
	start := time.Now()
	prof := filepath.Join(t.TempDir(), "cpu.prof")
	rep := runJSON(t, "-d", "1m", "-c", "3", "-n", "10", "-cpuprofile", prof)
	if fi, err := os.Stat(prof); err != nil || fi.Size() == 0 {
		t.Errorf("-cpuprofile: %v, %v", fi, err)
	}
	for _, r := range rep.Results {
		if r.Requests != 10 || r.Errors != 0 || r.Rounds != 1 {
			t.Errorf("%s %s: %d requests, %d errors, %d rounds; want 10, 0, 1", r.Store, r.Scenario, r.Requests, r.Errors, r.Rounds)
		}
	}
	if el := time.Since(start); el > 30*time.Second {
		t.Errorf("took %v with -n 10", el)
	}
}

// TestFloorScenarios measures each scenario's floor briefly and refuses an
// unknown scenario.
func TestFloorScenarios(t *testing.T) {
	env, err := newFloorEnv(algES256)
	if err != nil {
		t.Fatal(err)
	}
	for _, sc := range scenarios {
		f, err := env.measure(context.Background(), sc, 2, 50*time.Millisecond)
		if err != nil {
			t.Fatalf("%s: %v", sc, err)
		}
		if f.Ops <= 0 || f.OpsPerSec <= 0 || f.Seconds <= 0 {
			t.Errorf("%s: %+v", sc, f)
		}
	}
	if _, err := env.measure(context.Background(), "nope", 1, time.Millisecond); err == nil {
		t.Error("unknown scenario: no error")
	}
}

func TestParseCPUList(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want []int
	}{
		{"1", []int{1}},
		{"0,2", []int{0, 2}},
		{"3-5,1,4", []int{1, 3, 4, 5}},
		{" 0 , 1 ", []int{0, 1}},
	} {
		got, err := parseCPUList(tt.in)
		if err != nil || !slices.Equal(got, tt.want) {
			t.Errorf("parseCPUList(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
		}
	}
	for _, bad := range []string{"", "a", "-1", "3-1", "1,,2", "1024", "0-1024"} {
		if got, err := parseCPUList(bad); err == nil {
			t.Errorf("parseCPUList(%q) = %v, want an error", bad, got)
		}
	}
}

func TestAutoPinning(t *testing.T) {
	for _, tt := range []struct {
		allowed      []int
		server, load []int
	}{
		{[]int{0, 1}, []int{1}, []int{0}},
		{[]int{0, 1, 2, 3}, []int{3}, []int{0, 1, 2}},
		{[]int{2, 5, 7}, []int{7}, []int{2, 5}},
	} {
		server, load, err := autoPinning(tt.allowed)
		if err != nil || !slices.Equal(server, tt.server) || !slices.Equal(load, tt.load) {
			t.Errorf("autoPinning(%v) = %v, %v, %v; want %v, %v", tt.allowed, server, load, err, tt.server, tt.load)
		}
	}
	for _, few := range [][]int{nil, {0}} {
		if s, l, err := autoPinning(few); err == nil {
			t.Errorf("autoPinning(%v) = %v, %v; want an error", few, s, l)
		}
	}
	for _, args := range [][]string{{"-server-cpus", "1"}, {"-load-cpus", "0"}} {
		if _, err := parseFlags(append([]string{"-pin"}, args...), &bytes.Buffer{}); err == nil {
			t.Errorf("-pin with %v: no error", args)
		}
	}
}

// TestPinFlag checks what -pin chooses on this machine: the last CPU this
// process may use for the server, the others for the load, or, with fewer
// than two (or without pinning support), an error.
func TestPinFlag(t *testing.T) {
	o, err := parseFlags([]string{"-pin"}, &bytes.Buffer{})
	allowed, aerr := allowedCPUs()
	switch {
	case !pinningSupported || len(allowed) < 2:
		if err == nil {
			t.Errorf("-pin with CPUs %v (%v): no error", allowed, aerr)
		}
	case aerr != nil || len(allowed) != runtime.NumCPU():
		t.Fatalf("allowedCPUs() = %v, %v; runtime.NumCPU() %d", allowed, aerr, runtime.NumCPU())
	case err != nil:
		t.Fatalf("-pin: %v", err)
	case !slices.Equal(o.serverCPUs, allowed[len(allowed)-1:]) || !slices.Equal(o.loadCPUs, allowed[:len(allowed)-1]):
		t.Errorf("-pin on CPUs %v: server %v, load %v", allowed, o.serverCPUs, o.loadCPUs)
	}
	g, gerr := parseGatewayBenchFlags([]string{"-gateway", "-pin"}, &bytes.Buffer{})
	if (gerr == nil) != (err == nil) || !slices.Equal(g.serverCPUs, o.serverCPUs) || !slices.Equal(g.loadCPUs, o.loadCPUs) {
		t.Errorf("gateway -pin: %v, %v, %v; want as the main bench: %v, %v, %v", g.serverCPUs, g.loadCPUs, gerr, o.serverCPUs, o.loadCPUs, err)
	}
}

func TestFlags(t *testing.T) {
	for _, args := range [][]string{
		{"-c", "0"}, {"-d", "0s"}, {"-n", "0"}, {"-stores", "mysql"}, {"extra"},
		{"-rounds", "0"}, {"-floor", "-1s"}, {"-gomaxprocs", "-1"},
		{"-server-cpus", "x"}, {"-load-cpus", "0"}, {"-server-cpus", "1", "-load-cpus", "9-8"},
		{"-scenarios", "me,me"}, {"-scenarios", "login"}, {"-scenarios", ""},
	} {
		var out, errb bytes.Buffer
		if code := run(context.Background(), args, &out, &errb); code != 2 {
			t.Errorf("%q: exit %d, want 2", args, code)
		}
	}
}
