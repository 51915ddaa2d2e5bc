package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/hallpass/hallpass/dpop"
)

// gwWorld is what both gateways of a run share: the hallpass binary, the
// issuer, the upstream, the devices and the floor's inputs, all in this
// process but the binary.
type gwWorld struct {
	o       gwOptions
	bin     string
	flags   map[string]bool // of `hallpass gateway -h`
	issuer  string
	upURL   string
	upConns atomic.Int64 // upstream connections accepted
	env     *floorEnv
	devs    []*device
	rate    float64 // req/s of the last load window, to size proof pools
	closers []func()
}

func (w *gwWorld) close() {
	for i := len(w.closers) - 1; i >= 0; i-- {
		w.closers[i]()
	}
}

func (w *gwWorld) hasFlag(name string) bool { return w.flags[name] }

// newGwWorld builds (or takes) the binary, starts the issuer and the
// upstream here, and signs up one device per client.
func newGwWorld(ctx context.Context, o gwOptions, progress io.Writer) (*gwWorld, error) {
	w := &gwWorld{o: o, bin: o.bin, rate: 10_000}
	ok := false
	defer func() {
		if !ok {
			w.close()
		}
	}()
	if w.bin == "" {
		fmt.Fprintln(progress, "hallpass-bench: go build ./cmd/hallpass")
		if err := w.build(ctx); err != nil {
			return nil, err
		}
	}
	var err error
	if w.flags, err = gatewayFlags(ctx, w.bin); err != nil {
		return nil, err
	}
	if w.env, err = newFloorEnv(o.proofAlg); err != nil {
		return nil, err
	}
	base, stop, err := openServer(serverSpec{Store: "bolt"})
	if err != nil {
		return nil, err
	}
	w.issuer, w.closers = base, append(w.closers, stop)
	if err := w.startUpstream(); err != nil {
		return nil, err
	}
	t := newTarget(base, o.clients, o.proofAlg)
	defer t.close()
	var errs errorLog
	w.devs = setupDevices(ctx, t, "me", o.clients, &errs)
	if errs.first != nil {
		return nil, fmt.Errorf("sign-up: %w", errs.first)
	}
	ok = true
	return w, nil
}

// build compiles cmd/hallpass into a temporary directory.
func (w *gwWorld) build(ctx context.Context) error {
	dir, err := os.MkdirTemp("", "hallpass-bench-gw-")
	if err != nil {
		return err
	}
	w.closers = append(w.closers, func() { os.RemoveAll(dir) })
	w.bin = filepath.Join(dir, "hallpass")
	cmd := exec.CommandContext(ctx, "go", "build", "-trimpath", "-o", w.bin, "github.com/hallpass/hallpass/cmd/hallpass")
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build ./cmd/hallpass: %w\n%s", err, out)
	}
	return nil
}

// gatewayFlags lists the flags `bin gateway -h` prints, so that a binary
// from before a flag existed runs too.
func gatewayFlags(ctx context.Context, bin string) (map[string]bool, error) {
	out, _ := exec.CommandContext(ctx, bin, "gateway", "-h").CombinedOutput()
	flags := map[string]bool{}
	for _, m := range regexp.MustCompile(`(?m)^\s+--?([a-z][a-z0-9-]*)`).FindAllStringSubmatch(string(out), -1) {
		flags[m[1]] = true
	}
	if !flags["upstream"] {
		return nil, fmt.Errorf("%s gateway -h lists no --upstream:\n%s", bin, out)
	}
	return flags, nil
}

// startUpstream serves a minimal upstream ("ok") on loopback, counting the
// connections it accepts.
func (w *gwWorld) startUpstream() error {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	srv := &http.Server{
		Handler: http.HandlerFunc(func(rw http.ResponseWriter, _ *http.Request) {
			rw.Header().Set("Content-Type", "text/plain")
			_, _ = io.WriteString(rw, "ok\n")
		}),
		ReadHeaderTimeout: 5 * time.Second,
		ConnState: func(_ net.Conn, s http.ConnState) {
			if s == http.StateNew {
				w.upConns.Add(1)
			}
		},
	}
	go func() { _ = srv.Serve(ln) }()
	w.upURL = "http://" + ln.Addr().String()
	w.closers = append(w.closers, func() { srv.Close() })
	return nil
}

// gwProc is a running `hallpass gateway`.
type gwProc struct {
	cmd    *exec.Cmd
	url    string
	pprof  string // host:port, or empty
	stderr bytes.Buffer
	done   chan struct{}
}

// startGateway runs the gateway, pinned to the server CPUs, and waits
// until it accepts connections.
func (w *gwWorld) startGateway(ctx context.Context, cache string) (*gwProc, error) {
	port, err := freeLoopbackPort()
	if err != nil {
		return nil, err
	}
	g := &gwProc{url: "http://127.0.0.1:" + port, done: make(chan struct{})}
	args := []string{"gateway", "--listen", "127.0.0.1:" + port, "--public-url", g.url,
		"--keys-url", w.issuer + wellKnownKeysPath, "--upstream", w.upURL,
		"--trusted-proxies", "127.0.0.1/32", "--log-level", "warn"}
	if w.hasFlag("metrics-listen") {
		args = append(args, "--metrics-listen", "127.0.0.1:0") // served, as in production
	}
	if cache == "miss" && w.hasFlag("token-cache") {
		args = append(args, "--token-cache", "off")
	}
	if w.o.cpuprofile != "" && w.hasFlag("pprof-listen") {
		pp, err := freeLoopbackPort()
		if err != nil {
			return nil, err
		}
		g.pprof = "127.0.0.1:" + pp
		args = append(args, "--pprof-listen", g.pprof)
	}
	g.cmd = exec.Command(w.bin, args...)
	g.cmd.Env = gatewayEnv(len(w.o.serverCPUs))
	g.cmd.Stderr = &g.stderr
	ownGroup(g.cmd)
	if err := g.cmd.Start(); err != nil {
		return nil, err
	}
	go func() { _ = g.cmd.Wait(); close(g.done) }()
	if w.o.serverCPUs != nil {
		if err := pinProcess(g.cmd.Process.Pid, w.o.serverCPUs); err != nil {
			g.stop()
			return nil, err
		}
	}
	if err := g.waitListening(ctx, "127.0.0.1:"+port); err != nil {
		g.stop()
		return nil, err
	}
	return g, nil
}

// wellKnownKeysPath is where the issuer publishes its key set.
const wellKnownKeysPath = "/.well-known/hallpass/keys"

// gatewayEnv is the gateway's environment: this one without HALLPASS_*
// variables (the command line says everything), with GOMAXPROCS set to
// its CPUs when pinned (it is pinned after it starts).
func gatewayEnv(cpus int) []string {
	env := slices.DeleteFunc(os.Environ(), func(kv string) bool {
		return strings.HasPrefix(kv, "HALLPASS_") || strings.HasPrefix(kv, "GOMAXPROCS=")
	})
	if cpus > 0 {
		env = append(env, "GOMAXPROCS="+strconv.Itoa(cpus))
	}
	return env
}

func (g *gwProc) waitListening(ctx context.Context, addr string) error {
	deadline := time.Now().Add(30 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return nil
		}
		select {
		case <-g.done:
			return fmt.Errorf("gateway exited: %s", strings.TrimSpace(g.stderr.String()))
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("gateway not listening on %s after 30 s", addr)
		}
	}
}

// stop sends SIGTERM and kills the gateway if it has not exited in 10 s.
func (g *gwProc) stop() {
	_ = g.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-g.done:
	case <-time.After(10 * time.Second):
		killGroup(g.cmd)
		<-g.done
	}
}

// cpuSeconds is the gateway's user + system CPU time so far.
func (g *gwProc) cpuSeconds() float64 { return procCPUSeconds(g.cmd.Process.Pid) }

// procCPUSeconds is process pid's user + system CPU time so far (Linux; 0
// elsewhere).
func procCPUSeconds(pid int) float64 {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0
	}
	// Fields after the command name, which is in parentheses: state is
	// field 3, utime 14 and stime 15.
	_, rest, _ := bytes.Cut(b, []byte(") "))
	f := strings.Fields(string(rest))
	if len(f) < 13 {
		return 0
	}
	ut, _ := strconv.ParseFloat(f[11], 64)
	st, _ := strconv.ParseFloat(f[12], 64)
	return (ut + st) / 100 // USER_HZ, 100 on Linux
}

func freeLoopbackPort() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	_, port, err := net.SplitHostPort(ln.Addr().String())
	return port, err
}

// timeWait counts the machine's TCP sockets in TIME-WAIT (state 06 of
// /proc/net/tcp and tcp6, as `ss -tan state time-wait`); -1 when neither
// can be read.
func timeWait() int {
	n, read := 0, false
	for _, f := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		read = true
		for _, line := range strings.Split(string(b), "\n")[1:] {
			if f := strings.Fields(line); len(f) > 3 && f[3] == "06" {
				n++
			}
		}
	}
	if !read {
		return -1
	}
	return n
}

// benchGateway runs the proxy and verify scenarios on one gateway.
func (w *gwWorld) benchGateway(ctx context.Context, o gwOptions, cache string, progress io.Writer) ([]GatewayResult, error) {
	g, err := w.startGateway(ctx, cache)
	if err != nil {
		return nil, err
	}
	defer g.stop()
	t := newTarget(g.url, o.clients, o.proofAlg)
	defer t.close()
	var out []GatewayResult
	for _, mode := range []string{"proxy", "verify"} {
		fmt.Fprintf(progress, "hallpass-bench: gateway %s, token cache %s (%d clients, %d rounds of %s load + %s floor)\n",
			mode, cache, o.clients, o.rounds, o.duration/time.Duration(o.rounds), o.floor)
		r, err := w.scenario(ctx, g, t, mode, cache)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", mode, err)
		}
		out = append(out, r)
	}
	return out, nil
}

// scenario runs o.rounds rounds of a load window and a floor window (in
// alternating order) on g.
func (w *gwWorld) scenario(ctx context.Context, g *gwProc, t *target, mode, cache string) (GatewayResult, error) {
	o := w.o
	res := GatewayResult{Mode: mode, Cache: cache, Clients: o.clients}
	var (
		errs        errorLog
		all         []time.Duration
		load        time.Duration
		ratios      []float64
		cpu         float64
		conns0      = w.upConns.Load()
		window      = o.duration / time.Duration(o.rounds)
		profileDone = func() {}
	)
	for r := range o.rounds {
		var lat []time.Duration
		var el time.Duration
		var f Floor
		var err error
		pools := w.proofPools(g.url, window)
		if r == 0 { // round 0 starts with its load window
			profileDone = w.profile(g, mode, cache, window)
		}
		loadFn := func() {
			c0 := g.cpuSeconds()
			lat, el = w.loadWindow(ctx, t, g.url, mode, window, pools, &errs)
			cpu += g.cpuSeconds() - c0
		}
		if r%2 == 0 {
			loadFn()
			f, err = w.floor(ctx)
		} else if f, err = w.floor(ctx); err == nil {
			loadFn()
		}
		if err != nil {
			return res, err
		}
		res.Floor.Ops, res.Floor.Seconds = res.Floor.Ops+f.Ops, res.Floor.Seconds+f.Seconds
		all, load = append(all, lat...), load+el
		if len(lat) > 0 && el > 0 {
			w.rate = float64(len(lat)) / el.Seconds()
			ratios = append(ratios, w.rate/f.OpsPerSec)
		}
		profileDone()
	}
	res.summarize(all, load, ratios, &errs)
	res.GatewayCPU = cpu / max(load.Seconds(), 1e-9) / float64(max(1, len(o.serverCPUs)))
	res.cpuCost(cpu, int64(len(all)), float64(max(1, len(o.serverCPUs))))
	res.UpstreamConns = w.upConns.Load() - conns0
	res.TimeWait = timeWait()
	return res, ctx.Err()
}

// cpuCost sets the gateway's CPU per request and the floor's per
// operation, and their ratio: what the gateway's CPUs would do flat out,
// whatever the load side could send. The floor keeps its cpus CPUs busy
// for its whole window (as many goroutines as clients, flat out, proofs
// made beforehand), so its CPU per operation is its window times cpus
// over its operations.
func (res *GatewayResult) cpuCost(gwCPU float64, requests int64, cpus float64) {
	if requests > 0 && gwCPU > 0 {
		res.CPUPerReqUS = 1e6 * gwCPU / float64(requests)
	}
	if res.Floor.Ops > 0 {
		res.FloorCPUPerOpUS = 1e6 * res.Floor.Seconds * cpus / float64(res.Floor.Ops)
	}
	if res.CPUPerReqUS > 0 {
		res.OfFloorCPU = res.FloorCPUPerOpUS / res.CPUPerReqUS
	}
}

// summarize fills in the figures as Result.summarize does for the
// issuer's scenarios.
func (res *GatewayResult) summarize(all []time.Duration, load time.Duration, ratios []float64, errs *errorLog) {
	r := Result{Floor: res.Floor}
	r.summarize(all, load, ratios, errs)
	res.Requests, res.Errors, res.Seconds, res.ReqPerS = r.Requests, r.Errors, r.Seconds, r.ReqPerS
	res.P50NS, res.P99NS, res.Floor, res.OfFloor, res.Rounds = r.P50NS, r.P99NS, r.Floor, r.OfFloor, r.Rounds
	res.FirstError = r.FirstError
}

// floor measures the "me" floor with this process pinned, for the
// window, to the gateway's CPUs (which sit idle meanwhile).
func (w *gwWorld) floor(ctx context.Context) (Floor, error) {
	if w.o.serverCPUs != nil {
		back := w.o.loadCPUs
		if back == nil {
			back = allCPUs()
		}
		if err := pinProcess(os.Getpid(), w.o.serverCPUs); err != nil {
			return Floor{}, err
		}
		prev := runtime.GOMAXPROCS(len(w.o.serverCPUs))
		defer func() {
			_ = pinProcess(os.Getpid(), back)
			runtime.GOMAXPROCS(prev)
		}()
	}
	return w.env.measure(ctx, "me", w.o.clients, w.o.floor)
}

func allCPUs() []int {
	out := make([]int, runtime.NumCPU())
	for i := range out {
		out[i] = i
	}
	return out
}

// proofPools makes, outside the timed window, each device's proofs for
// GET base/hello, 1.5 times what the last window's rate needs: the load
// side then only sends them (a device that runs out makes its own).
func (w *gwWorld) proofPools(base string, window time.Duration) [][]string {
	per := int(1.5*w.rate*window.Seconds())/len(w.devs) + 16
	pools := make([][]string, len(w.devs))
	var wg sync.WaitGroup
	next := atomic.Int64{}
	for range runtime.GOMAXPROCS(0) {
		wg.Go(func() {
			for i := int(next.Add(1) - 1); i < len(w.devs); i = int(next.Add(1) - 1) {
				d := w.devs[i]
				for range per {
					p, err := dpop.NewProof(d.key, http.MethodGet, base+"/hello", d.access, "")
					if err != nil {
						break
					}
					pools[i] = append(pools[i], p)
				}
			}
		})
	}
	wg.Wait()
	return pools
}

// loadWindow has every device send mode's request in a loop for d, each
// with the next proof of its pool.
func (w *gwWorld) loadWindow(ctx context.Context, t *target, base, mode string, d time.Duration, pools [][]string, errs *errorLog) ([]time.Duration, time.Duration) {
	lats := make([][]time.Duration, len(w.devs))
	var wg sync.WaitGroup
	begin := time.Now()
	deadline := begin.Add(d)
	for i, dev := range w.devs {
		wg.Go(func() {
			pool := pools[i]
			for ctx.Err() == nil && time.Now().Before(deadline) {
				var proof string
				if len(pool) > 0 {
					proof, pool = pool[0], pool[1:]
				}
				t0 := time.Now()
				if err := gatewayCall(ctx, t, base, mode, dev, proof); err != nil {
					errs.fail(err)
					continue
				}
				lats[i] = append(lats[i], time.Since(t0))
			}
		})
	}
	wg.Wait()
	return slices.Concat(lats...), time.Since(begin)
}

// gatewayCall sends one request: GET /hello through the proxy, or the
// forward-auth question about it. An empty proof is made here.
func gatewayCall(ctx context.Context, t *target, base, mode string, d *device, proof string) error {
	if proof == "" {
		var err error
		if proof, err = dpop.NewProof(d.key, http.MethodGet, base+"/hello", d.access, ""); err != nil {
			return err
		}
	}
	u := base + "/hello"
	if mode == "verify" {
		u = base + "/v1/verify"
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "DPoP "+d.access)
	req.Header.Set("DPoP", proof)
	if mode == "verify" {
		req.Header.Set("X-Forwarded-Method", http.MethodGet)
		req.Header.Set("X-Forwarded-Uri", "/hello")
	}
	_, err = t.do(req, http.StatusOK)
	return err
}

// profile fetches a CPU profile of the gateway over the first load window
// when -cpuprofile is set; the returned func waits for it (once).
func (w *gwWorld) profile(g *gwProc, mode, cache string, window time.Duration) func() {
	if w.o.cpuprofile == "" || g.pprof == "" {
		return func() {}
	}
	secs := max(1, int(window.Seconds()))
	path := w.o.cpuprofile + "." + cache + "-" + mode
	done := make(chan error, 1)
	go func() {
		res, err := http.Get("http://" + g.pprof + "/debug/pprof/profile?seconds=" + strconv.Itoa(secs))
		if err != nil {
			done <- err
			return
		}
		defer res.Body.Close()
		b, err := io.ReadAll(res.Body)
		if err == nil && res.StatusCode != http.StatusOK {
			err = errors.New(res.Status)
		}
		if err == nil {
			err = os.WriteFile(path, b, 0o644)
		}
		done <- err
	}()
	var once sync.Once
	return func() {
		once.Do(func() {
			if err := <-done; err != nil {
				fmt.Fprintln(os.Stderr, "hallpass-bench: cpu profile:", err)
			}
		})
	}
}
