package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/hallpass/hallpass/internal/procs"
)

// backend is the server side of a run on one store: an issuer served on a
// loopback listener, and the floor, measured where the issuer runs (same
// process, same CPUs, same GOMAXPROCS).
type backend interface {
	base() string // http://127.0.0.1:PORT
	floor(ctx context.Context, scenario string, workers int, d time.Duration) (Floor, error)
	gomaxprocs() int
	close()
}

// serverSpec says which store the issuer runs on.
type serverSpec struct {
	Store   string   `json:"store"`             // bolt, redis, cluster
	Redis   string   `json:"redis,omitempty"`   // redis-server address, for redis
	AOF     string   `json:"aof,omitempty"`     // -redis-aof mode of that server (redisaof.go)
	Cluster []string `json:"cluster,omitempty"` // the masters' addresses, for cluster
	// NoAccountCache: the Redis account store without its view cache
	// (-account-cache=false).
	NoAccountCache bool `json:"no_account_cache,omitempty"`
	// NoTokenCache: the issuer verifies every token's signature (-token-cache=false).
	NoTokenCache bool `json:"no_token_cache,omitempty"`
}

// openServer opens the store of spec and serves an issuer on it.
func openServer(spec serverSpec) (base string, closeAll func(), err error) {
	var st storeHandles
	switch spec.Store {
	case "bolt":
		st, err = openBolt()
	case "redis":
		st, err = openRedis(redis.NewClient(&redis.Options{Addr: spec.Redis, ContextTimeoutEnabled: true}), !spec.NoAccountCache)
	case "cluster":
		st, err = openRedis(redis.NewClusterClient(&redis.ClusterOptions{Addrs: spec.Cluster, ContextTimeoutEnabled: true}), !spec.NoAccountCache)
	default:
		err = fmt.Errorf("unknown store %q", spec.Store)
	}
	if err != nil {
		return "", nil, err
	}
	base, stopServer, err := startServer(st, spec.NoTokenCache)
	if err != nil {
		st.close()
		return "", nil, err
	}
	return base, func() { stopServer(); st.close() }, nil
}

// inProcess is a backend in this process: client, server and floor share
// its CPUs.
type inProcess struct {
	url string
	env *floorEnv
	end func()
}

func startInProcess(spec serverSpec, alg proofAlg) (*inProcess, error) {
	env, err := newFloorEnv(alg)
	if err != nil {
		return nil, err
	}
	base, end, err := openServer(spec)
	if err != nil {
		return nil, err
	}
	return &inProcess{url: base, env: env, end: end}, nil
}

func (p *inProcess) base() string    { return p.url }
func (p *inProcess) gomaxprocs() int { return runtime.GOMAXPROCS(0) }
func (p *inProcess) close()          { p.end() }
func (p *inProcess) floor(ctx context.Context, scenario string, workers int, d time.Duration) (Floor, error) {
	return p.env.measure(ctx, scenario, workers, d)
}

// serverEnv, when set, turns this process (the bench binary, or its test
// binary) into a server child: see runServerChild. The bench re-executes
// itself with it for -server-cpus, so the issuer runs pinned in its own
// process without building anything.
const serverEnv = "HALLPASS_BENCH_SERVER"

// childSpec is the server child's configuration (JSON in serverEnv).
type childSpec struct {
	serverSpec
	CPUs       []int    `json:"cpus,omitempty"`
	GOMAXPROCS int      `json:"gomaxprocs,omitempty"`
	CPUProfile string   `json:"cpuprofile,omitempty"` // file for the child's CPU profile
	ProofAlg   proofAlg `json:"proof_alg,omitempty"`  // of the floor's proofs
}

// childHello is the child's first line; childFloor asks for one floor
// window and childAnswer is the reply.
type childHello struct {
	Base       string `json:"base,omitempty"`
	GOMAXPROCS int    `json:"gomaxprocs,omitempty"`
	Error      string `json:"error,omitempty"`
}

type childFloor struct {
	Scenario string  `json:"scenario"`
	Workers  int     `json:"workers"`
	Seconds  float64 `json:"seconds"`
}

type childAnswer struct {
	Floor Floor  `json:"floor"`
	Error string `json:"error,omitempty"`
}

func init() {
	spec := os.Getenv(serverEnv)
	if spec == "" {
		return
	}
	// In init, as the propagation watcher (propagation_watch.go), so that
	// the test binary becomes a server child before the testing package
	// parses its flags.
	if err := runServerChild(spec, os.Stdin, os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "hallpass-bench server:", err)
		os.Exit(1)
	}
	os.Exit(0)
}

// runServerChild pins this process, serves an issuer, prints a childHello
// line, then answers one childFloor per line read until stdin closes.
func runServerChild(specJSON string, stdin io.Reader, stdout io.Writer) error {
	var spec childSpec
	if err := json.Unmarshal([]byte(specJSON), &spec); err != nil {
		return fmt.Errorf("%s: %w", serverEnv, err)
	}
	enc := json.NewEncoder(stdout)
	hello := func(err error) error {
		_ = enc.Encode(childHello{Error: err.Error()})
		return err
	}
	if len(spec.CPUs) > 0 {
		if err := pinProcess(os.Getpid(), spec.CPUs); err != nil {
			return hello(err)
		}
		runtime.GOMAXPROCS(len(spec.CPUs))
		procs.AtLeast(procs.Min) // as hallpass serve does
	}
	procs.GC() // as hallpass serve and gateway do
	if spec.GOMAXPROCS > 0 {
		runtime.GOMAXPROCS(spec.GOMAXPROCS)
	}
	if spec.CPUProfile != "" {
		stop, err := startCPUProfile(spec.CPUProfile)
		if err != nil {
			return hello(err)
		}
		defer stop()
	}
	p, err := startInProcess(spec.serverSpec, spec.ProofAlg)
	if err != nil {
		return hello(err)
	}
	defer p.close()
	if err := enc.Encode(childHello{Base: p.base(), GOMAXPROCS: runtime.GOMAXPROCS(0)}); err != nil {
		return err
	}
	ctx := context.Background()
	sc := bufio.NewScanner(stdin)
	for sc.Scan() {
		var req childFloor
		var ans childAnswer
		if err := json.Unmarshal(sc.Bytes(), &req); err != nil {
			ans.Error = err.Error()
		} else if f, err := p.floor(ctx, req.Scenario, req.Workers, time.Duration(req.Seconds*float64(time.Second))); err != nil {
			ans.Error = err.Error()
		} else {
			ans.Floor = f
		}
		if err := enc.Encode(ans); err != nil {
			return err
		}
	}
	return sc.Err()
}

// child is a backend in a child process (this binary, re-executed with
// serverEnv), pinned to its own CPUs.
type child struct {
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	lines  chan []byte
	quit   chan struct{} // closed by close: lines are no longer read
	done   chan struct{} // closed once the child has exited
	stderr bytes.Buffer  // read only after done
	url    string
	procs  int
}

// startChild starts the server child and waits for its first line.
func startChild(ctx context.Context, spec childSpec) (*child, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	js, err := json.Marshal(spec)
	if err != nil {
		return nil, err
	}
	c := &child{cmd: exec.Command(self), lines: make(chan []byte, 1), quit: make(chan struct{}), done: make(chan struct{})}
	c.cmd.Env = append(os.Environ(), serverEnv+"="+string(js))
	c.cmd.Stderr = &c.stderr
	ownGroup(c.cmd)
	if c.stdin, err = c.cmd.StdinPipe(); err != nil {
		return nil, err
	}
	out, err := c.cmd.StdoutPipe()
	if err != nil {
		c.stdin.Close()
		return nil, err
	}
	if err := c.cmd.Start(); err != nil {
		c.stdin.Close()
		return nil, fmt.Errorf("start server child: %w", err)
	}
	go func() {
		defer close(c.done)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			select {
			case c.lines <- bytes.Clone(sc.Bytes()):
			case <-c.quit:
			}
		}
		_ = c.cmd.Wait()
	}()
	var hello childHello
	if err := c.read(ctx, 2*time.Minute, &hello); err != nil {
		c.close()
		return nil, err
	}
	if hello.Error != "" {
		c.close()
		return nil, fmt.Errorf("server child: %s", hello.Error)
	}
	c.url, c.procs = hello.Base, hello.GOMAXPROCS
	return c, nil
}

// read decodes the child's next line into v.
func (c *child) read(ctx context.Context, timeout time.Duration, v any) error {
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case line := <-c.lines:
		return json.Unmarshal(line, v)
	case <-c.done:
		select {
		case line := <-c.lines: // its last line, sent before it exited
			return json.Unmarshal(line, v)
		default:
		}
		return fmt.Errorf("server child exited: %s", strings.TrimSpace(c.stderr.String()))
	case <-t.C:
		return fmt.Errorf("server child: no answer within %s", timeout)
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (c *child) base() string    { return c.url }
func (c *child) gomaxprocs() int { return c.procs }

func (c *child) floor(ctx context.Context, scenario string, workers int, d time.Duration) (Floor, error) {
	req, _ := json.Marshal(childFloor{Scenario: scenario, Workers: workers, Seconds: d.Seconds()})
	if _, err := c.stdin.Write(append(req, '\n')); err != nil {
		return Floor{}, fmt.Errorf("server child: %w", err)
	}
	var ans childAnswer
	if err := c.read(ctx, d+2*time.Minute, &ans); err != nil {
		return Floor{}, err
	}
	if ans.Error != "" {
		return Floor{}, errors.New(ans.Error)
	}
	return ans.Floor, nil
}

// close closes the child's stdin (it shuts its server down and exits) and
// kills it if it has not exited within 10 s.
func (c *child) close() {
	c.stdin.Close()
	close(c.quit)
	select {
	case <-c.done:
	case <-time.After(10 * time.Second):
		killGroup(c.cmd)
		<-c.done
	}
}
