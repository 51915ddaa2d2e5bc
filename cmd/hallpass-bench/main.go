// Command hallpass-bench is a load generator for the hallpass issuer.
//
// It starts an issuer in this process on a loopback listener (real HTTP
// over 127.0.0.1) on each store engine, bbolt on a temporary file and Redis
// on a private redis-server it starts on a free loopback port, and runs
// three scenarios with -c concurrent clients, each client with its own
// Ed25519 device key and a fresh DPoP proof per request:
//
//   - signup:  POST /v1/accounts with a fresh username each time;
//   - refresh: POST /v1/token, each client rotating its own refresh chain;
//   - me:      GET /v1/me with the client's access token.
//
// Each scenario stops after -d or after -n requests, whichever comes
// first. It reports, per store and scenario, successful requests per
// second, p50 and p99 latency as the client sees it (making the proof, the
// round trip, reading the body) and errors, beside the floor measured in
// the same run: one Ed25519 signature, one DPoP proof verification, one
// Redis PING round trip. p50/(sign+verify) is how many times a request
// costs the minimal crypto of one proof (client signs, server verifies);
// on Redis, p50/(sign+verify+rtt) adds one round trip to that floor.
// Client and server share the machine's CPUs.
//
// Usage:
//
//	go run ./cmd/hallpass-bench [-c 16] [-d 5s] [-n 200000] [-stores bolt,redis] [-json]
//	go run ./cmd/hallpass-bench -propagation [-n 1000] [-watchers 4] [-json]
//
// -propagation measures how long an admin device revocation takes to reach
// revocation mirrors in other processes (see propagation.go).
//
// It talks only to loopback addresses and stops by itself; signup rate
// limits are off (the generator is the only client). Redis needs
// redis-server installed (`make test-deps`); -stores bolt runs without it.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/hallpass/hallpass/internal/redistest"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// Report is the whole run (the -json output).
type Report struct {
	Clients     int      `json:"clients"`
	Duration    string   `json:"duration"`
	MaxRequests int64    `json:"max_requests"`
	GOMAXPROCS  int      `json:"gomaxprocs"`
	GoVersion   string   `json:"go_version"`
	Floor       Floor    `json:"floor"`
	Results     []Result `json:"results"`
}

type options struct {
	clients  int
	duration time.Duration
	max      int64
	stores   []string
	json     bool
	floor    time.Duration
	redisBin string
}

func parseFlags(args []string, stderr io.Writer) (options, error) {
	var o options
	fs := flag.NewFlagSet("hallpass-bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.IntVar(&o.clients, "c", 16, "concurrent clients (1 to 1024)")
	fs.DurationVar(&o.duration, "d", 5*time.Second, "duration of each scenario (up to 10m)")
	fs.Int64Var(&o.max, "n", 200_000, "maximum requests of each scenario")
	stores := fs.String("stores", "bolt,redis", "comma-separated stores: bolt, redis")
	fs.BoolVar(&o.json, "json", false, "print the report as JSON instead of a table")
	fs.DurationVar(&o.floor, "floor", 300*time.Millisecond, "time spent measuring each floor operation")
	fs.StringVar(&o.redisBin, "redis-server", "", "redis-server binary (default: PATH, /usr/bin, /usr/sbin)")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if fs.NArg() > 0 {
		return o, fmt.Errorf("unexpected arguments: %q", fs.Args())
	}
	switch {
	case o.clients < 1 || o.clients > 1024:
		return o, errors.New("-c must be from 1 to 1024")
	case o.duration <= 0 || o.duration > 10*time.Minute:
		return o, errors.New("-d must be positive and at most 10m")
	case o.max < 1:
		return o, errors.New("-n must be at least 1")
	case o.floor <= 0 || o.floor > 10*time.Second:
		return o, errors.New("-floor must be positive and at most 10s")
	}
	seen := map[string]bool{}
	for _, s := range strings.Split(*stores, ",") {
		s = strings.TrimSpace(s)
		if s != "bolt" && s != "redis" {
			return o, fmt.Errorf("-stores: unknown store %q (bolt, redis)", s)
		}
		if !seen[s] {
			seen[s] = true
			o.stores = append(o.stores, s)
		}
	}
	return o, nil
}

// run is main without the process: it returns the exit code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if isPropagation(args) { // revocation propagation benchmark: propagation.go
		return runPropagation(ctx, args, stdout, stderr)
	}
	o, err := parseFlags(args, stderr)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		fmt.Fprintln(stderr, "hallpass-bench:", err)
		return 2
	}
	rep, err := bench(ctx, o, stderr)
	if err != nil {
		fmt.Fprintln(stderr, "hallpass-bench:", err)
		return 1
	}
	if o.json {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(rep); err != nil {
			fmt.Fprintln(stderr, "hallpass-bench:", err)
			return 1
		}
	} else {
		printTable(stdout, rep)
	}
	for _, r := range rep.Results {
		if r.Errors > 0 {
			return 1
		}
	}
	return 0
}

func bench(ctx context.Context, o options, progress io.Writer) (*Report, error) {
	rep := &Report{
		Clients: o.clients, Duration: o.duration.String(), MaxRequests: o.max,
		GOMAXPROCS: runtime.GOMAXPROCS(0), GoVersion: runtime.Version(),
	}
	var rp *redistest.Process
	if contains(o.stores, "redis") {
		var err error
		if rp, err = startRedis(ctx, o.redisBin); err != nil {
			return nil, err
		}
		defer rp.Stop()
	}
	redisAddr := ""
	if rp != nil {
		redisAddr = rp.Addr()
	}
	fmt.Fprintln(progress, "hallpass-bench: measuring the floor")
	f, err := measureFloor(ctx, o.floor, redisAddr)
	if err != nil {
		return nil, err
	}
	rep.Floor = f

	for _, store := range o.stores {
		res, err := benchStore(ctx, o, store, redisAddr, progress)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", store, err)
		}
		rep.Results = append(rep.Results, res...)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	for i := range rep.Results {
		r := &rep.Results[i]
		if sv := f.SignNS + f.VerifyNS; sv > 0 {
			r.P50OverCrypto = float64(r.P50NS) / sv
		}
		if r.Store == "redis" && f.RedisPingNS > 0 {
			r.P50OverCryptoRTT = float64(r.P50NS) / (f.SignNS + f.VerifyNS + f.RedisPingNS)
		}
	}
	return rep, nil
}

// benchStore runs every scenario on one issuer over a fresh store.
func benchStore(ctx context.Context, o options, store, redisAddr string, progress io.Writer) ([]Result, error) {
	var (
		t   *target
		err error
	)
	switch store {
	case "bolt":
		st, rc, closeStore, e := openBolt()
		if e != nil {
			return nil, e
		}
		defer closeStore()
		t, err = startTarget(st, rc, o.clients)
	case "redis":
		st, rc, closeStore, e := openRedis(redisAddr)
		if e != nil {
			return nil, e
		}
		defer closeStore()
		t, err = startTarget(st, rc, o.clients)
	}
	if err != nil {
		return nil, err
	}
	defer t.close()
	var out []Result
	for _, sc := range scenarios {
		if ctx.Err() != nil {
			break
		}
		fmt.Fprintf(progress, "hallpass-bench: %s %s (%d clients, %s or %d requests)\n", store, sc, o.clients, o.duration, o.max)
		out = append(out, runScenario(ctx, t, store, sc, o.clients, o.duration, o.max))
	}
	return out, nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func printTable(w io.Writer, rep *Report) {
	f := rep.Floor
	fmt.Fprintf(w, "hallpass-bench: %d clients, each scenario %s or %d requests, loopback HTTP, GOMAXPROCS %d, %s\n",
		rep.Clients, rep.Duration, rep.MaxRequests, rep.GOMAXPROCS, rep.GoVersion)
	fmt.Fprintf(w, "floor: ed25519 sign %.0f ns/op, proof verify %.0f ns/op", f.SignNS, f.VerifyNS)
	if f.RedisPingNS > 0 {
		fmt.Fprintf(w, ", redis PING %.0f ns/op", f.RedisPingNS)
	}
	fmt.Fprintf(w, "; sign+verify %.0f ns\n\n", f.SignNS+f.VerifyNS)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "store\tscenario\trequests\terrors\treq/s\tp50\tp99\tp50/(sign+verify)\tp50/(sign+verify+rtt)\t")
	for _, r := range rep.Results {
		rtt := "-"
		if r.P50OverCryptoRTT > 0 {
			rtt = fmt.Sprintf("%.1fx", r.P50OverCryptoRTT)
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%.0f\t%s\t%s\t%.1fx\t%s\t\n",
			r.Store, r.Scenario, r.Requests, r.Errors, r.ReqPerS,
			fmtDur(r.P50NS), fmtDur(r.P99NS), r.P50OverCrypto, rtt)
	}
	tw.Flush()
	for _, r := range rep.Results {
		if r.FirstError != "" {
			fmt.Fprintf(w, "%s %s: first error: %s\n", r.Store, r.Scenario, r.FirstError)
		}
	}
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
