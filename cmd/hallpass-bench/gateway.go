package main

// The gateway benchmark (-gateway): `hallpass gateway`, the real binary,
// pinned to -server-cpus, in front of a minimal upstream, with the issuer,
// the upstream and the load generator pinned to -load-cpus. Each request
// carries a fresh DPoP proof; the floor is the "me" floor (one Ed25519
// token verify + one proof verify), measured in this process pinned for
// the floor window to the gateway's CPUs, beside each load window.
//
// Two gateways run one after the other: with the verified-token cache
// (--token-cache, the default: every request after a device's first is a
// hit, so the token's signature is not checked again) and without
// (--token-cache off: every request is a miss). Each serves two
// scenarios: proxy (GET /hello, forwarded upstream) and verify (GET
// /v1/verify as nginx auth_request asks it, X-Forwarded-Method and
// X-Forwarded-Uri from a trusted proxy).
//
// Beside req/s and the ratio to the floor the report gives the gateway's
// own CPU use during the load windows (below 100% of its CPUs: the load
// side, not the gateway, was the bottleneck), the upstream connections the
// gateway opened, and the sockets in TIME-WAIT after each scenario.

import (
	"context"
	"fmt"
	"io"
	"runtime"
	"slices"
	"text/tabwriter"
	"time"
)

type gwOptions struct {
	clients    int
	duration   time.Duration // load per scenario, over all rounds
	rounds     int
	floor      time.Duration
	serverCPUs []int
	loadCPUs   []int
	bin        string // hallpass binary; empty: go build
	cpuprofile string
	json       bool
	proofAlg   proofAlg // proofalg.go
}

func parseGatewayBenchFlags(args []string, stderr io.Writer) (gwOptions, error) {
	var o gwOptions
	fs := modeFlagSet("gateway", "run the gateway benchmark", stderr)
	fs.IntVar(&o.clients, "c", 64, "concurrent clients, and goroutines of the floor (1 to 1024)")
	fs.DurationVar(&o.duration, "d", 15*time.Second, "load time of each scenario, over all rounds (up to 10m)")
	fs.IntVar(&o.rounds, "rounds", 3, "rounds per scenario, each a load window of -d/-rounds and a floor window (1 to 100)")
	fs.DurationVar(&o.floor, "floor", 0, "floor window per round (default -d/-rounds, at most 2s)")
	pin := fs.Bool("pin", false, "pin the server side to the last CPU this process may use and the load to the others, on any machine (Linux; instead of -server-cpus and -load-cpus)")
	serverCPUs := fs.String("server-cpus", "", "pin the gateway to these CPUs (e.g. 1); the floor is measured there too")
	loadCPUs := fs.String("load-cpus", "", "pin the load generator, the issuer and the upstream to these CPUs (e.g. 0)")
	fs.StringVar(&o.bin, "hallpass", "", "hallpass binary to run as the gateway (default: go build ./cmd/hallpass)")
	fs.StringVar(&o.cpuprofile, "cpuprofile", "", "fetch a CPU profile of the gateway (its --pprof-listen) over the first load window of each scenario: FILE.CACHE-MODE")
	fs.BoolVar(&o.json, "json", false, "print the report as JSON")
	alg := fs.String("proof-alg", string(algES256), "DPoP proof algorithm of the clients and the floor: ES256 or EdDSA")
	if err := parseArgs(fs, args); err != nil {
		return o, err
	}
	var err error
	if o.proofAlg, err = parseProofAlg(*alg); err != nil {
		return o, err
	}
	if o.floor, err = loadWindows(o.clients, o.duration, o.rounds, o.floor, 2*time.Second); err != nil {
		return o, err
	}
	o.serverCPUs, o.loadCPUs, err = parsePinning(*pin, *serverCPUs, *loadCPUs)
	return o, err
}

// GatewayReport is the gateway benchmark's whole run (the -json output).
type GatewayReport struct {
	Clients     int             `json:"clients"`
	Duration    string          `json:"duration"`
	Rounds      int             `json:"rounds"`
	FloorWindow string          `json:"floor_window"`
	ServerCPUs  string          `json:"server_cpus,omitempty"`
	LoadCPUs    string          `json:"load_cpus,omitempty"`
	GoVersion   string          `json:"go_version"`
	Binary      string          `json:"binary"`
	ProofAlg    string          `json:"proof_alg"` // of every request's DPoP proof, and the floor's
	Results     []GatewayResult `json:"results"`
}

// GatewayResult is one scenario (proxy or verify) on one gateway (token
// cache hit or miss).
type GatewayResult struct {
	Mode     string  `json:"mode"`  // proxy, verify
	Cache    string  `json:"cache"` // hit (--token-cache), miss (off)
	Clients  int     `json:"clients"`
	Requests int64   `json:"requests"`
	Errors   int64   `json:"errors"`
	Seconds  float64 `json:"seconds"`
	ReqPerS  float64 `json:"req_per_s"`
	P50NS    int64   `json:"p50_ns"`
	P99NS    int64   `json:"p99_ns"`
	Floor    Floor   `json:"floor"`
	OfFloor  float64 `json:"of_floor"` // median over rounds
	Rounds   int     `json:"rounds"`
	// GatewayCPU is the gateway's CPU time over the load windows' wall
	// time, divided by its CPUs: 1 is every CPU it has busy.
	GatewayCPU float64 `json:"gateway_cpu"`
	// CPUPerReqUS is the gateway's CPU time per request, FloorCPUPerOpUS
	// the floor's per operation (its window times the gateway's CPUs,
	// which it keeps busy, over its operations), in microseconds;
	// OfFloorCPU is their ratio, floor / gateway: the ratio to the floor
	// with the gateway's CPUs saturated, for when the load side, not the
	// gateway, is the bottleneck (GatewayCPU below 1).
	CPUPerReqUS     float64 `json:"cpu_per_req_us"`
	FloorCPUPerOpUS float64 `json:"floor_cpu_per_op_us"`
	OfFloorCPU      float64 `json:"of_floor_cpu"`
	// UpstreamConns are the upstream connections the gateway opened
	// during the scenario.
	UpstreamConns int64 `json:"upstream_conns"`
	// TimeWait is the machine's sockets in TIME-WAIT right after the
	// scenario (-1 where /proc/net/tcp cannot be read).
	TimeWait   int    `json:"time_wait"`
	FirstError string `json:"first_error,omitempty"`
}

// runGatewayBench is the -gateway mode of run.
func runGatewayBench(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	o, err := parseGatewayBenchFlags(args, stderr)
	if err != nil {
		return flagsExit(stderr, err)
	}
	rep, err := gatewayBench(ctx, o, stderr)
	if err != nil {
		return failed(stderr, err)
	}
	return report(stdout, stderr, o.json, rep, func(w io.Writer) { printGatewayTable(w, rep) },
		slices.ContainsFunc(rep.Results, func(r GatewayResult) bool { return r.Errors > 0 }))
}

// gatewayBench runs both gateways (cache hit, miss) and their scenarios.
func gatewayBench(ctx context.Context, o gwOptions, progress io.Writer) (*GatewayReport, error) {
	if err := pinLoad(o.loadCPUs); err != nil {
		return nil, err
	}
	w, err := newGwWorld(ctx, o, progress)
	if err != nil {
		return nil, err
	}
	defer w.close()
	rep := &GatewayReport{
		Clients: o.clients, Duration: o.duration.String(), Rounds: o.rounds, FloorWindow: o.floor.String(),
		ServerCPUs: formatCPUList(o.serverCPUs), LoadCPUs: formatCPUList(o.loadCPUs),
		GoVersion: runtime.Version(), Binary: w.bin, ProofAlg: o.proofAlg.String(),
	}
	caches := []string{"hit", "miss"}
	if !w.hasFlag("token-cache") {
		caches = []string{"miss"} // a gateway from before the cache: every request a miss
	}
	for _, cache := range caches {
		res, err := w.benchGateway(ctx, o, cache, progress)
		if err != nil {
			return nil, fmt.Errorf("cache %s: %w", cache, err)
		}
		rep.Results = append(rep.Results, res...)
	}
	return rep, ctx.Err()
}

func printGatewayTable(w io.Writer, rep *GatewayReport) {
	fmt.Fprintf(w, "hallpass-bench -gateway: %s, %d clients, per scenario %d rounds of %s load + %s floor, fresh %s proof per request, %s\n",
		rep.Binary, rep.Clients, rep.Rounds, durDiv(rep.Duration, rep.Rounds), rep.FloorWindow, rep.ProofAlg, rep.GoVersion)
	pin := "not pinned"
	if rep.ServerCPUs != "" {
		pin = "gateway and floor on CPUs " + rep.ServerCPUs
	}
	if rep.LoadCPUs != "" {
		pin += "; load, issuer and upstream on CPUs " + rep.LoadCPUs
	}
	fmt.Fprintf(w, "%s; floor: %s\n\n", pin, floorOps["me"])
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "mode\tcache\tC\trequests\terrors\treq/s\tp50\tp99\tfloor ops/s\tof floor\tgateway CPU\tCPU/req\tCPU/floor op\tof floor (CPU)\tupstream conns\tTIME-WAIT\t")
	for _, r := range rep.Results {
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\t%.0f\t%s\t%s\t%.0f\t%.2f\t%.0f%%\t%.0fµs\t%.0fµs\t%.2f\t%d\t%d\t\n",
			r.Mode, r.Cache, r.Clients, r.Requests, r.Errors, r.ReqPerS, fmtDur(r.P50NS), fmtDur(r.P99NS),
			r.Floor.OpsPerSec, r.OfFloor, 100*r.GatewayCPU, r.CPUPerReqUS, r.FloorCPUPerOpUS, r.OfFloorCPU, r.UpstreamConns, r.TimeWait)
	}
	tw.Flush()
	fmt.Fprintln(w, "\nof floor: median over rounds of (req/s) / (floor ops/s). gateway CPU below 100%: the load side was the bottleneck;")
	fmt.Fprintln(w, "of floor (CPU): floor CPU per op / gateway CPU per request, the ratio with the gateway's CPUs saturated")
	for _, r := range slices.Clone(rep.Results) {
		if r.FirstError != "" {
			fmt.Fprintf(w, "%s %s: first error: %s\n", r.Mode, r.Cache, r.FirstError)
		}
	}
}
