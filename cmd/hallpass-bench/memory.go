package main

// The memory benchmark (-memory): what a million accounts on the embedded
// store and a million live denylist entries in a revocation mirror cost in
// resident memory.
//
//	go run ./cmd/hallpass-bench -memory [-accounts 200000,1000000] [-entries 200000,1000000] [-timeout 30m] [-json]
//
// Each figure comes from a fresh child process (this binary re-executed
// with memoryEnv), so that one fill does not inherit another's heap. The
// child reads VmRSS, VmHWM, RssAnon and RssFile from /proc/self/status and
// the live heap from runtime/metrics (after a GC) before and after the
// fill, and prints one JSON line.
//
//   - accounts:N opens account/boltstore (the issuer's embedded store, fsync
//     on, group commit) on a fresh file in the temporary directory and
//     creates N accounts, each with one device and its session, through
//     the store API directly (CreateAccount from 64 goroutines), not over
//     HTTP: the proof, token and HTTP work of a signup makes no memory that
//     lasts, and a million signups over HTTP would take too long here. It
//     then closes the store, reopens it and reads 10,000 random accounts,
//     the state of an issuer restarted on a full file.
//   - devices:N and tokens:N build a revocation.Mirror and apply N device
//     (or token) entries to it (Observe, the path a snapshot and the
//     stream take into the same maps), with ids shaped like real ones.
//
// Linux only (/proc/self/status); bounded by -timeout.

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"runtime/metrics"
	"strconv"
	"strings"
	"time"
)

// memoryEnv, when set to KIND:N, turns this process into a memory child:
// see runMemoryChild.
const memoryEnv = "HALLPASS_BENCH_MEMORY"

func init() {
	spec := os.Getenv(memoryEnv)
	if spec == "" {
		return
	}
	// In init, as the watcher does, so that the test binary can be a child
	// too before the testing package parses its flags.
	if err := runMemoryChild(context.Background(), spec, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "hallpass-bench memory:", err)
		os.Exit(1)
	}
	os.Exit(0)
}

type memOptions struct {
	accounts, devices, tokens []int
	timeout                   time.Duration
	json                      bool
}

func parseMemFlags(args []string, stderr io.Writer) (memOptions, error) {
	var o memOptions
	fs := modeFlagSet("memory", "run the memory benchmark", stderr)
	accounts := fs.String("accounts", "200000,1000000", "comma-separated account counts to fill bbolt with, each in a fresh process (0 or empty: none)")
	devices := fs.String("entries", "200000,1000000", "comma-separated device-entry counts to fill a revocation mirror with (0 or empty: none)")
	tokens := fs.String("tokens", "1000000", "comma-separated token-entry (jti) counts to fill a revocation mirror with (0 or empty: none)")
	fs.DurationVar(&o.timeout, "timeout", 30*time.Minute, "bound on the whole run (up to 1h; a million accounts took 12 minutes on a loaded 2-core machine)")
	fs.BoolVar(&o.json, "json", false, "print the report as JSON instead of a table")
	if err := parseArgs(fs, args); err != nil {
		return o, err
	}
	if o.timeout <= 0 || o.timeout > time.Hour {
		return o, errors.New("-timeout must be positive and at most 1h")
	}
	var err error
	if o.accounts, err = parseCounts(*accounts, "-accounts", 10_000_000); err != nil {
		return o, err
	}
	if o.devices, err = parseCounts(*devices, "-entries", 50_000_000); err != nil {
		return o, err
	}
	o.tokens, err = parseCounts(*tokens, "-tokens", 50_000_000)
	return o, err
}

// parseCounts parses a comma-separated list of counts from 1 to max; 0 and
// empty items are skipped.
func parseCounts(list, name string, max int) ([]int, error) {
	var out []int
	for _, f := range strings.Split(list, ",") {
		f = strings.TrimSpace(f)
		if f == "" || f == "0" {
			continue
		}
		n, err := strconv.Atoi(f)
		if err != nil || n < 1 || n > max {
			return nil, fmt.Errorf("%s: %q is not a count from 1 to %d", name, f, max)
		}
		out = append(out, n)
	}
	return out, nil
}

// MemoryReport is the -memory -json output.
type MemoryReport struct {
	Results    []MemoryResult `json:"results"`
	GoVersion  string         `json:"go_version"`
	GOMAXPROCS int            `json:"gomaxprocs"`
}

// MemoryResult is one child's figures. Sizes are bytes; deltas are after
// the fill minus before it.
type MemoryResult struct {
	Kind    string  `json:"kind"` // accounts (bbolt), devices, tokens (mirror)
	N       int     `json:"n"`
	Seconds float64 `json:"fill_seconds"`
	// Before and After are /proc/self/status and the live heap.
	Before, After MemSample
	// PeakRSS is VmHWM after the fill minus VmRSS before it.
	PeakRSS int64 `json:"peak_rss_delta"`
	// FileBytes is the bbolt file's size (accounts).
	FileBytes int64 `json:"file_bytes,omitempty"`
	// Reopened is accounts only: after closing the store, reopening it and
	// reading 10,000 random accounts.
	Reopened *MemSample `json:"reopened,omitempty"`
	// Len is what the mirror holds (devices, tokens).
	Len int `json:"len,omitempty"`
}

// MemSample is one reading.
type MemSample struct {
	RSS     int64 `json:"vm_rss"`
	HWM     int64 `json:"vm_hwm"`
	RSSAnon int64 `json:"rss_anon"`
	RSSFile int64 `json:"rss_file"`
	Heap    int64 `json:"heap_live"` // /gc/heap/live:bytes after runtime.GC
}

// sampleMemory collects garbage, then reads /proc/self/status and the
// live heap.
func sampleMemory() (MemSample, error) {
	runtime.GC()
	var s MemSample
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return s, fmt.Errorf("memory figures need Linux: %w", err)
	}
	defer f.Close()
	fields := map[string]*int64{"VmRSS:": &s.RSS, "VmHWM:": &s.HWM, "RssAnon:": &s.RSSAnon, "RssFile:": &s.RSSFile}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		parts := strings.Fields(sc.Text()) // "VmRSS:   12345 kB"
		if len(parts) == 3 && parts[2] == "kB" && fields[parts[0]] != nil {
			kb, err := strconv.ParseInt(parts[1], 10, 64)
			if err != nil {
				return s, fmt.Errorf("/proc/self/status: %q", sc.Text())
			}
			*fields[parts[0]] = kb << 10
		}
	}
	if err := sc.Err(); err != nil {
		return s, err
	}
	m := []metrics.Sample{{Name: "/gc/heap/live:bytes"}}
	metrics.Read(m)
	if m[0].Value.Kind() == metrics.KindUint64 {
		s.Heap = int64(m[0].Value.Uint64())
	}
	if s.RSS == 0 {
		return s, errors.New("/proc/self/status without VmRSS")
	}
	return s, nil
}

// runMemory is run for the -memory mode; it returns the exit code.
func runMemory(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	o, err := parseMemFlags(args, stderr)
	if err != nil {
		return flagsExit(stderr, err)
	}
	ctx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()
	rep := &MemoryReport{GoVersion: runtime.Version(), GOMAXPROCS: runtime.GOMAXPROCS(0)}
	for _, job := range o.jobs() {
		fmt.Fprintf(stderr, "hallpass-bench: memory: %s\n", job)
		r, err := memoryChild(ctx, job)
		if err != nil {
			return failed(stderr, fmt.Errorf("memory %s: %w", job, err))
		}
		rep.Results = append(rep.Results, r)
	}
	return report(stdout, stderr, o.json, rep, func(w io.Writer) { printMemory(w, rep) }, false)
}

// jobs are the children to run, as memoryEnv values.
func (o memOptions) jobs() []string {
	var out []string
	for _, n := range o.accounts {
		out = append(out, fmt.Sprintf("accounts:%d", n))
	}
	for _, n := range o.devices {
		out = append(out, fmt.Sprintf("devices:%d", n))
	}
	for _, n := range o.tokens {
		out = append(out, fmt.Sprintf("tokens:%d", n))
	}
	return out
}

// memoryChild runs this binary with memoryEnv=job and reads its one JSON
// line.
func memoryChild(ctx context.Context, job string) (MemoryResult, error) {
	var r MemoryResult
	self, err := os.Executable()
	if err != nil {
		return r, err
	}
	cmd := exec.CommandContext(ctx, self)
	cmd.Env = append(os.Environ(), memoryEnv+"="+job)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return r, fmt.Errorf("%v; stderr: %s", err, strings.TrimSpace(stderr.String()))
	}
	if err := json.Unmarshal(out, &r); err != nil {
		return r, fmt.Errorf("child output %q: %v", out, err)
	}
	return r, nil
}
