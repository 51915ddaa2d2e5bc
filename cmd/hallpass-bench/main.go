// Command hallpass-bench is a load generator for the hallpass issuer.
//
// It starts an issuer on a loopback listener (real HTTP over 127.0.0.1) on
// each store engine, bbolt on a temporary file and Redis on a private
// redis-server it starts on a free loopback port, and runs three scenarios
// with -c concurrent clients, each client with its own device key and a
// fresh DPoP proof per request (-proof-alg: ES256, the default, or EdDSA;
// the floor's proofs are of the same algorithm):
//
//   - signup:  POST /v1/accounts with a fresh username each time;
//   - refresh: POST /v1/token, each client rotating its own refresh chain;
//   - me:      GET /v1/me with the client's access token.
//
// Each scenario is held against its own floor, measured in the same run as
// throughput at the same concurrency: the cryptography the server cannot
// avoid for one request of that scenario, run by -c goroutines flat out on
// the server's CPUs (see Floor):
//
//   - signup, refresh: one proof verify + one Ed25519 signature (the
//     access token) + one refresh-token seal (PASETO v4.local);
//   - me: one access-token verify (Ed25519) + one proof verify.
//
// A scenario runs in -rounds rounds: a load window of -d/-rounds, then a
// floor window of -floor (the order alternates), and reports requests per
// second, the floor's operations per second, and the median over rounds of
// (req/s) / (floor ops/s), "of floor": 1 would be a server that does
// nothing but that cryptography. It also reports p50 and p99 latency as the
// client sees it (making the proof, the round trip, reading the body) and
// errors. A scenario also stops once -n requests have been started.
//
// # Pinning
//
// By default client, server and floor share the process and every CPU, so
// the client's work (a proof signature and an HTTP client per request)
// counts against the server. To measure the server alone, give it its own
// CPUs:
//
//	go run ./cmd/hallpass-bench -server-cpus 1 -load-cpus 0
//
// runs the issuer, its floor and redis-server (server_cpulist) pinned to CPU
// 1 in a child process (this binary re-executed), and the load generator
// pinned to CPU 0: the same split as
//
//	taskset -c 1 <server>   # and
//	taskset -c 0 <load>
//
// GOMAXPROCS follows the number of CPUs given, and is at least 2 on the
// server side, as in hallpass serve (internal/procs: with one processor the
// pinned core idles through every store flush); -gomaxprocs overrides it for
// the server side (in-process, for the whole process). Pinning needs Linux.
// On a shared or noisy machine, prefer more, shorter rounds: the median
// ratio survives a few spoiled ones.
//
// Usage:
//
//	go run ./cmd/hallpass-bench [-c 16] [-d 5s] [-rounds 5] [-floor 1s] [-n 200000]
//	    [-stores bolt,redis,cluster] [-redis-aof off,everysec,always] [-server-cpus LIST -load-cpus LIST] [-gomaxprocs N]
//	    [-token-cache=false] [-account-cache=false] [-cpuprofile FILE] [-json]
//	go run ./cmd/hallpass-bench -propagation [-n 1000] [-watchers 4] [-json]
//
// -redis-aof runs the Redis scenarios once per durability setting, each on
// a fresh redis-server: off (in memory, the default), everysec and always
// (appendonly yes with that appendfsync); results name the store redis,
// redis+aof-everysec, redis+aof-always (see redisaof.go). -stores cluster
// runs them on a fresh 3-master Redis Cluster (persistence off) through a
// cluster client (cluster.go). -account-cache=false opens the Redis
// account stores without their view cache (labels end in -noviews), and
// -token-cache=false the issuer without its verified-token cache (-nocache).
//
// -propagation measures how long an admin device revocation takes to reach
// revocation mirrors in other processes (see propagation.go).
//
//	go run ./cmd/hallpass-bench -memory [-accounts 200000,1000000] [-entries 200000,1000000] [-tokens 1000000]
//
// -memory measures the resident memory of accounts on bbolt and of live
// denylist entries in a revocation mirror (see memory.go).
//
//	go run ./cmd/hallpass-bench -gateway [-c 64] [-d 15s] [-rounds 3] [-server-cpus 1 -load-cpus 0] [-cpuprofile FILE]
//
// -gateway measures `hallpass gateway` (proxy and forward auth, token cache
// hit and miss) against its floor (see gateway.go).
//
// It talks only to loopback addresses and stops by itself; signup rate
// limits are off (the generator is the only client). Redis needs
// redis-server installed (`make test-deps`); -stores bolt runs without it.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"github.com/hallpass/hallpass/internal/procs"
	"io"
	"os"
	"os/signal"
	"runtime"
	"runtime/pprof"
	"slices"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// Report is the whole run (the -json output).
type Report struct {
	Clients     int    `json:"clients"`
	Duration    string `json:"duration"` // of load, per scenario
	Rounds      int    `json:"rounds"`
	FloorWindow string `json:"floor_window"` // per round
	MaxRequests int64  `json:"max_requests"`
	// GOMAXPROCS of the server side (issuer and floor), and of the load
	// generator; equal when they share the process.
	GOMAXPROCS     int      `json:"gomaxprocs"`
	LoadGOMAXPROCS int      `json:"load_gomaxprocs"`
	ServerCPUs     string   `json:"server_cpus,omitempty"` // empty: not pinned
	LoadCPUs       string   `json:"load_cpus,omitempty"`
	GoVersion      string   `json:"go_version"`
	ProofAlg       string   `json:"proof_alg"` // of every request's DPoP proof, and the floor's
	Results        []Result `json:"results"`
}

type options struct {
	clients    int
	duration   time.Duration
	rounds     int
	floor      time.Duration
	max        int64
	stores     []string
	json       bool
	redisBin   string
	redisAOF   []string // redisaof.go
	serverCPUs []int
	loadCPUs   []int
	gomaxprocs int
	cpuprofile string
	scenarios  []string // of the scenarios list (load.go), in its order
	// noAccountCache opens the Redis account stores without their view
	// cache (-account-cache=false).
	noAccountCache bool
	// noTokenCache starts the issuer without its verified-token cache, so
	// that every /v1/me verifies the token's signature (a cache miss).
	noTokenCache bool
	proofAlg     proofAlg // proofalg.go
}

func parseFlags(args []string, stderr io.Writer) (options, error) {
	var o options
	fs := flag.NewFlagSet("hallpass-bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.IntVar(&o.clients, "c", 16, "concurrent clients, and goroutines of the floor (1 to 1024)")
	fs.DurationVar(&o.duration, "d", 5*time.Second, "load time of each scenario, over all rounds (up to 10m)")
	fs.IntVar(&o.rounds, "rounds", 5, "rounds per scenario, each a load window of -d/-rounds and a floor window (1 to 100)")
	fs.DurationVar(&o.floor, "floor", 0, "floor window per round (default -d/-rounds, at most 1s)")
	fs.Int64Var(&o.max, "n", 200_000, "maximum requests of each scenario")
	stores := fs.String("stores", "bolt,redis", "comma-separated stores: bolt, redis, cluster (a 3-master Redis Cluster, persistence off)")
	fs.BoolVar(&o.json, "json", false, "print the report as JSON instead of a table")
	fs.StringVar(&o.redisBin, "redis-server", "", "redis-server binary (default: PATH, /usr/bin, /usr/sbin)")
	aof := fs.String("redis-aof", "off", "comma-separated Redis durability settings to run, each on a fresh redis-server: off (in memory), everysec, always (appendonly yes, appendfsync ...)")
	pin := fs.Bool("pin", false, "pin the server side to the last CPU this process may use and the load to the others, on any machine (Linux; instead of -server-cpus and -load-cpus)")
	serverCPUs := fs.String("server-cpus", "", "run the issuer, its floor and redis-server pinned to these CPUs (e.g. 1 or 2-3), in a child process (Linux)")
	loadCPUs := fs.String("load-cpus", "", "pin the load generator to these CPUs (e.g. 0); needs -server-cpus")
	fs.IntVar(&o.gomaxprocs, "gomaxprocs", 0, "GOMAXPROCS of the server side (default: the number of -server-cpus, else Go's default)")
	scen := fs.String("scenarios", strings.Join(scenarios, ","), "comma-separated scenarios to run: "+strings.Join(scenarios, ", "))
	alg := fs.String("proof-alg", string(algES256), "DPoP proof algorithm of the clients and the floor: ES256 (the issue's method) or EdDSA")
	tokenCache := fs.Bool("token-cache", true, "the issuer's verified-token cache (false: every /v1/me is a cache miss; results are labelled <store>-nocache)")
	accountCache := fs.Bool("account-cache", true, "the Redis account store's view cache, as `hallpass serve --account-cache` (false: /v1/me reads the account from Redis; results are labelled <store>-noviews)")
	fs.StringVar(&o.cpuprofile, "cpuprofile", "", "write a CPU profile of the server side to this file (with -server-cpus: FILE.bolt, FILE.redis), floor windows included")
	if err := parseArgs(fs, args); err != nil {
		return o, err
	}
	var err error
	if o.floor, err = loadWindows(o.clients, o.duration, o.rounds, o.floor, time.Second); err != nil {
		return o, err
	}
	switch {
	case o.max < 1:
		return o, errors.New("-n must be at least 1")
	case o.gomaxprocs < 0 || o.gomaxprocs > 1024:
		return o, errors.New("-gomaxprocs must be from 1 to 1024")
	}
	o.noTokenCache = !*tokenCache
	o.noAccountCache = !*accountCache
	var aerr error
	if o.proofAlg, aerr = parseProofAlg(*alg); aerr != nil {
		return o, aerr
	}
	if o.scenarios, err = parseScenarios(*scen); err != nil {
		return o, err
	}
	if *loadCPUs != "" && *serverCPUs == "" {
		return o, errors.New("-load-cpus needs -server-cpus (client and server share one process otherwise)")
	}
	if o.serverCPUs, o.loadCPUs, err = parsePinning(*pin, *serverCPUs, *loadCPUs); err != nil {
		return o, err
	}
	if o.redisAOF, err = parseAOF(*aof); err != nil {
		return o, err
	}
	o.stores, err = parseStores(*stores)
	return o, err
}

// parseStores parses the comma-separated -stores list, without repeats.
func parseStores(list string) ([]string, error) {
	var stores []string
	seen := map[string]bool{}
	for _, s := range strings.Split(list, ",") {
		s = strings.TrimSpace(s)
		if s != "bolt" && s != "redis" && s != "cluster" {
			return stores, fmt.Errorf("-stores: unknown store %q (bolt, redis, cluster)", s)
		}
		if !seen[s] {
			seen[s] = true
			stores = append(stores, s)
		}
	}
	return stores, nil
}

// run is main without the process: it returns the exit code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if isMode(args, "propagation") { // revocation propagation benchmark: propagation.go
		return runPropagation(ctx, args, stdout, stderr)
	}
	if isMode(args, "memory") { // resident memory of accounts and denylist entries: memory.go
		return runMemory(ctx, args, stdout, stderr)
	}
	if isMode(args, "gateway") { // hallpass gateway against its floor: gateway.go
		return runGatewayBench(ctx, args, stdout, stderr)
	}
	o, err := parseFlags(args, stderr)
	if err != nil {
		return flagsExit(stderr, err)
	}
	rep, err := bench(ctx, o, stderr)
	if err != nil {
		return failed(stderr, err)
	}
	return report(stdout, stderr, o.json, rep, func(w io.Writer) { printTable(w, rep) },
		slices.ContainsFunc(rep.Results, func(r Result) bool { return r.Errors > 0 }))
}

func bench(ctx context.Context, o options, progress io.Writer) (*Report, error) {
	if err := pinLoad(o.loadCPUs); err != nil {
		return nil, err
	}
	if o.serverCPUs == nil && o.gomaxprocs > 0 {
		runtime.GOMAXPROCS(o.gomaxprocs)
	}
	if o.serverCPUs == nil {
		procs.GC() // the issuer runs in this process, as in hallpass serve
	}
	if o.serverCPUs == nil && o.cpuprofile != "" {
		stop, err := startCPUProfile(o.cpuprofile)
		if err != nil {
			return nil, err
		}
		defer stop()
	}
	rep := &Report{
		Clients: o.clients, Duration: o.duration.String(), Rounds: o.rounds,
		FloorWindow: o.floor.String(), MaxRequests: o.max,
		LoadGOMAXPROCS: runtime.GOMAXPROCS(0), GoVersion: runtime.Version(),
		ServerCPUs: formatCPUList(o.serverCPUs), LoadCPUs: formatCPUList(o.loadCPUs),
		ProofAlg: o.proofAlg.String(),
	}
	for _, store := range o.stores {
		var (
			res   []Result
			procs int
			err   error
		)
		switch store {
		case "redis": // once per -redis-aof mode: redisaof.go
			res, procs, err = benchRedis(ctx, o, progress)
		case "cluster":
			res, procs, err = benchCluster(ctx, o, progress)
		default:
			res, procs, err = benchStore(ctx, o, serverSpec{Store: store, NoTokenCache: o.noTokenCache}, progress)
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", store, err)
		}
		rep.GOMAXPROCS = procs
		rep.Results = append(rep.Results, res...)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return rep, nil
}

// benchStore runs every scenario on one issuer over a fresh store, and
// returns the results and the server side's GOMAXPROCS.
func benchStore(ctx context.Context, o options, spec serverSpec, progress io.Writer) ([]Result, int, error) {
	var (
		be  backend
		err error
	)
	if o.serverCPUs != nil {
		cs := childSpec{serverSpec: spec, CPUs: o.serverCPUs, GOMAXPROCS: o.gomaxprocs, ProofAlg: o.proofAlg}
		if o.cpuprofile != "" {
			cs.CPUProfile = o.cpuprofile + "." + spec.label()
		}
		be, err = startChild(ctx, cs)
	} else {
		be, err = startInProcess(spec, o.proofAlg)
	}
	if err != nil {
		return nil, 0, err
	}
	defer be.close()
	t := newTarget(be.base(), o.clients, o.proofAlg)
	defer t.close()
	var out []Result
	for _, sc := range o.scenarios {
		if ctx.Err() != nil {
			break
		}
		fmt.Fprintf(progress, "hallpass-bench: %s %s (%d clients, %d rounds of %s load + %s floor, at most %d requests)\n",
			spec.label(), sc, o.clients, o.rounds, o.duration/time.Duration(o.rounds), o.floor, o.max)
		r, err := runScenario(ctx, t, be, spec.label(), sc, o)
		if err != nil {
			return nil, 0, fmt.Errorf("%s: %w", sc, err)
		}
		out = append(out, r)
	}
	return out, be.gomaxprocs(), nil
}

func printTable(w io.Writer, rep *Report) {
	fmt.Fprintf(w, "hallpass-bench: %d clients, per scenario %d rounds of %s load + %s floor (at most %d requests), loopback HTTP, %s\n",
		rep.Clients, rep.Rounds, durDiv(rep.Duration, rep.Rounds), rep.FloorWindow, rep.MaxRequests, rep.GoVersion)
	if rep.ServerCPUs != "" {
		load := "not pinned"
		if rep.LoadCPUs != "" {
			load = "CPUs " + rep.LoadCPUs
		}
		fmt.Fprintf(w, "server (issuer, floor, redis-server): CPUs %s, GOMAXPROCS %d; load: %s, GOMAXPROCS %d\n",
			rep.ServerCPUs, rep.GOMAXPROCS, load, rep.LoadGOMAXPROCS)
	} else {
		fmt.Fprintf(w, "client, server and floor share one process, GOMAXPROCS %d (not pinned: the client's work counts against the server)\n", rep.GOMAXPROCS)
	}
	fmt.Fprintf(w, "floor: %d goroutines on the server's CPUs doing, per op, signup and refresh: %s; me: %s; proofs: %s\n\n",
		rep.Clients, floorOps["signup"], floorOps["me"], rep.ProofAlg)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "store\tscenario\tC\trequests\terrors\treq/s\tp50\tp99\tfloor ops/s\tof floor\t")
	for _, r := range rep.Results {
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\t%.0f\t%s\t%s\t%.0f\t%.2f\t\n",
			r.Store, r.Scenario, r.Clients, r.Requests, r.Errors, r.ReqPerS,
			fmtDur(r.P50NS), fmtDur(r.P99NS), r.Floor.OpsPerSec, r.OfFloor)
	}
	tw.Flush()
	fmt.Fprintln(w, "\nof floor: median over rounds of (req/s) / (floor ops/s), each round beside its own floor window")
	for _, r := range rep.Results {
		if r.FirstError != "" {
			fmt.Fprintf(w, "%s %s: first error: %s\n", r.Store, r.Scenario, r.FirstError)
		}
	}
}

// startCPUProfile writes this process's CPU profile to path until stop.
func startCPUProfile(path string) (stop func(), err error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, err
	}
	return func() { pprof.StopCPUProfile(); f.Close() }, nil
}

// durDiv is d/n for a duration string d.
func durDiv(d string, n int) string {
	x, err := time.ParseDuration(d)
	if err != nil || n < 1 {
		return d
	}
	return (x / time.Duration(n)).String()
}

func fmtDur(ns int64) string {
	d := time.Duration(ns)
	switch {
	case d >= time.Millisecond:
		return fmt.Sprintf("%.2fms", float64(d)/float64(time.Millisecond))
	default:
		return fmt.Sprintf("%.0fµs", float64(d)/float64(time.Microsecond))
	}
}

// parseScenarios parses the -scenarios list: known names, no repeats,
// run in the order of scenarios whatever the order given.
func parseScenarios(list string) ([]string, error) {
	want := map[string]bool{}
	for name := range strings.SplitSeq(list, ",") {
		name = strings.TrimSpace(name)
		if !slices.Contains(scenarios, name) {
			return nil, fmt.Errorf("-scenarios: unknown scenario %q (known: %s)", name, strings.Join(scenarios, ", "))
		}
		if want[name] {
			return nil, fmt.Errorf("-scenarios: %q given twice", name)
		}
		want[name] = true
	}
	var out []string
	for _, sc := range scenarios {
		if want[sc] {
			out = append(out, sc)
		}
	}
	return out, nil
}
