package main

// The propagation benchmark (-propagation): how long after an admin
// revokes a device do verifier mirrors in other processes know it.
//
//	go run ./cmd/hallpass-bench -propagation [-n 1000] [-watchers 4] [-c 16] [-timeout 3m] [-json]
//	    [-cluster] [-rate 1000] [-mirrors-per-watcher 1]
//
// It starts a private redis-server on loopback, an issuer in this process
// on Redis with its admin API on a second loopback listener (a fresh admin
// key, its digest in a temporary keys file), and -watchers watcher
// processes: this binary re-executed with watcherEnv, each running a
// revocation.Mirror on the same Redis as `hallpass serve` does and
// printing one JSON line per entry it has applied (propagation_watch.go).
// It signs up -n accounts through the public API (one device each, a
// fresh key and DPoP proof each; -c at a time, not measured), then
// revokes the devices one at a time with DELETE /v1/admin/devices/{id},
// waiting for every watcher to print a revocation before making the next.
// A propagation time is from just before the admin call until a watcher's
// line is read from its stdout pipe; there are n x watchers of them. The
// admin call's own latency is reported beside them.
//
// -cluster runs it on a 3-master Redis Cluster instead of one
// redis-server, and -rate R revokes at R a second, open loop, instead of
// one by one (propagation_rate.go); -mirrors-per-watcher K runs K mirrors
// in each watcher process, each on its own Redis client (-watchers x K
// mirrors in all). Each watcher line also carries the
// watcher's wall clock when its mirror had applied the entry, so that the
// report splits the time into the admin call, the mirror and the pipe.
//
// Everything is on loopback and bounded by -timeout; the watchers are in
// their own process groups, killed on the way out, and also exit when
// their stdin (a pipe from this process) closes.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/hallpass/hallpass/account/redisstore"
	"github.com/hallpass/hallpass/dpop"
	"github.com/hallpass/hallpass/dpop/redisreplay"
	"github.com/hallpass/hallpass/issuer"
	"github.com/hallpass/hallpass/issuer/redisaudit"
	"github.com/hallpass/hallpass/keys"
	"github.com/hallpass/hallpass/refresh"
	revredis "github.com/hallpass/hallpass/revocation/redisstore"
)

// propagationGoal is the p99 target of revocation propagation
// (docs/revocation.md).
const propagationGoal = 50 * time.Millisecond

// perRevocationTimeout bounds the wait for every watcher to print one
// revocation.
const perRevocationTimeout = 5 * time.Second

type propOptions struct {
	n        int
	watchers int
	clients  int
	timeout  time.Duration
	json     bool
	redisBin string
	cluster  bool // propagation_rate.go
	rate     int  // revocations a second, open loop; 0: one by one
	perProc  int  // mirrors per watcher process
	// cpuprofile: a CPU profile of this process (issuer, admin load,
	// watcher pipes) over the revocations, not the set-up.
	cpuprofile string
}

func parsePropFlags(args []string, stderr io.Writer) (propOptions, error) {
	var o propOptions
	fs := modeFlagSet("propagation", "run the revocation propagation benchmark", stderr)
	fs.IntVar(&o.n, "n", 1000, "devices to sign up and revoke one by one (1 to 100000)")
	fs.IntVar(&o.watchers, "watchers", 4, "watcher processes, each a revocation mirror (1 to 64)")
	fs.IntVar(&o.clients, "c", 16, "concurrent signups while setting up, and with -rate the most admin calls in flight (1 to 1024)")
	fs.IntVar(&o.perProc, "mirrors-per-watcher", 1, "revocation mirrors in each watcher process, each on its own Redis client (1 to 64); -watchers x this = mirrors")
	fs.BoolVar(&o.cluster, "cluster", false, "run on a 3-master Redis Cluster instead of one redis-server")
	fs.IntVar(&o.rate, "rate", 0, "revoke at this many a second, open loop, without waiting for the watchers (0: one by one; at most 100000)")
	fs.DurationVar(&o.timeout, "timeout", 3*time.Minute, "bound on the whole run (up to 30m)")
	fs.BoolVar(&o.json, "json", false, "print the report as JSON instead of text")
	fs.StringVar(&o.redisBin, "redis-server", "", "redis-server binary (default: PATH, /usr/bin, /usr/sbin)")
	fs.StringVar(&o.cpuprofile, "cpuprofile", "", "write a CPU profile of this process (issuer, admin load) over the revocations to this file")
	if err := parseArgs(fs, args); err != nil {
		return o, err
	}
	switch {
	case o.n < 1 || o.n > 100_000:
		return o, errors.New("-n must be from 1 to 100000")
	case o.watchers < 1 || o.watchers > 64:
		return o, errors.New("-watchers must be from 1 to 64")
	case o.clients < 1 || o.clients > 1024:
		return o, errors.New("-c must be from 1 to 1024")
	case o.timeout <= 0 || o.timeout > 30*time.Minute:
		return o, errors.New("-timeout must be positive and at most 30m")
	case o.perProc < 1 || o.perProc > maxMirrorsPerWatcher:
		return o, fmt.Errorf("-mirrors-per-watcher must be from 1 to %d", maxMirrorsPerWatcher)
	case o.rate < 0 || o.rate > 100_000:
		return o, errors.New("-rate must be from 0 (one by one) to 100000")
	}
	return o, nil
}

// PropagationReport is the -propagation -json output. Times are in
// nanoseconds.
type PropagationReport struct {
	Devices      int     `json:"devices"`
	Watchers     int     `json:"watchers"`
	Setup        string  `json:"setup"` // how the devices were made
	SetupSeconds float64 `json:"setup_seconds"`
	Observations int     `json:"observations"` // watcher lines matched to a revocation
	Missed       int     `json:"missed"`       // (revocation, watcher) pairs never seen
	Errors       int     `json:"errors"`       // failed admin calls
	FirstError   string  `json:"first_error,omitempty"`
	P50NS        int64   `json:"propagation_p50_ns"`
	P99NS        int64   `json:"propagation_p99_ns"`
	MaxNS        int64   `json:"propagation_max_ns"`
	// Applied: from the admin call's start until the watcher's mirror had
	// applied the entry (the watcher's wall clock): the same, less the
	// pipe and this process's scheduling.
	AppliedP50NS int64 `json:"applied_p50_ns"`
	AppliedP99NS int64 `json:"applied_p99_ns"`
	AppliedMaxNS int64 `json:"applied_max_ns"`
	// LineFlushNS: the watchers wrote their lines this often (-rate:
	// rateLineFlush), not as they applied them, so the line-read figures
	// include up to that wait and the goal is judged on applied; 0: at once.
	LineFlushNS int64   `json:"line_flush_ns"`
	Cluster     bool    `json:"cluster"`        // 3-master Redis Cluster
	Rate        int     `json:"rate,omitempty"` // asked for, a second; 0: one by one
	RateInfo    *Rate   `json:"rate_info,omitempty"`
	AdminP50NS  int64   `json:"admin_p50_ns"`
	AdminP99NS  int64   `json:"admin_p99_ns"`
	AdminMaxNS  int64   `json:"admin_max_ns"`
	GoalNS      int64   `json:"goal_p99_ns"`
	GoalMet     bool    `json:"goal_met"`
	Seconds     float64 `json:"seconds"`
	GOMAXPROCS  int     `json:"gomaxprocs"`
	NumCPU      int     `json:"num_cpu"`
	GoVersion   string  `json:"go_version"`
	// Mirrors is Watchers x MirrorsPerWatcher; PerWatcher[w] is the
	// observations of mirror w (watcher w / MirrorsPerWatcher).
	Mirrors           int   `json:"mirrors"`
	MirrorsPerWatcher int   `json:"mirrors_per_watcher"`
	PerWatcher        []int `json:"per_watcher"`
}

// runPropagation is run for the -propagation mode; it returns the exit
// code: 1 when anything failed or a watcher missed a revocation.
func runPropagation(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	o, err := parsePropFlags(args, stderr)
	if err != nil {
		return flagsExit(stderr, err)
	}
	ctx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()
	rep, err := propagation(ctx, o, stderr)
	if err != nil {
		return failed(stderr, err)
	}
	return report(stdout, stderr, o.json, rep, func(w io.Writer) { printPropagation(w, rep) },
		rep.Missed > 0 || rep.Errors > 0)
}

func printPropagation(w io.Writer, r *PropagationReport) {
	fmt.Fprintf(w, "hallpass-bench propagation: %d devices revoked %s via DELETE /v1/admin/devices/{id}, %d mirrors in %d watcher processes (revocation.Mirror on %s), loopback, GOMAXPROCS %d, %d CPUs, %s\n",
		r.Devices, r.mode(), r.Mirrors, r.Watchers, r.redisKind(), r.GOMAXPROCS, r.NumCPU, r.GoVersion)
	fmt.Fprintf(w, "set-up: %s in %.1fs; run %.1fs\n", r.Setup, r.SetupSeconds, r.Seconds)
	fmt.Fprintf(w, "propagation (admin call start -> watcher line read), %d observations: p50 %s  p99 %s  max %s\n",
		r.Observations, fmtDur(r.P50NS), fmtDur(r.P99NS), fmtDur(r.MaxNS))
	if r.LineFlushNS > 0 {
		fmt.Fprintf(w, "watchers wrote their lines every %s (the line-read figures include that wait): the goal is judged on applied\n", fmtDur(r.LineFlushNS))
	}
	fmt.Fprintf(w, "applied (admin call start -> watcher's mirror has it, watcher's clock): p50 %s  p99 %s  max %s\n",
		fmtDur(r.AppliedP50NS), fmtDur(r.AppliedP99NS), fmtDur(r.AppliedMaxNS))
	fmt.Fprintf(w, "admin call alone, %d calls: p50 %s  p99 %s  max %s\n",
		r.Devices-r.Errors, fmtDur(r.AdminP50NS), fmtDur(r.AdminP99NS), fmtDur(r.AdminMaxNS))
	met := "met"
	if !r.GoalMet {
		met = "NOT met"
	}
	fmt.Fprintf(w, "goal p99 <= %s: %s; missed %d, admin errors %d, per watcher %v\n",
		fmtDur(r.GoalNS), met, r.Missed, r.Errors, r.PerWatcher)
	if r.FirstError != "" {
		fmt.Fprintf(w, "first error: %s\n", r.FirstError)
	}
}

// adminTarget is an issuer on Redis serving its public API and its admin
// API on two loopback listeners.
type adminTarget struct {
	*target
	adminBase string
	adminKey  string
}

// startAdminTarget builds the issuer as `hallpass serve` does on Redis
// (account store, replay cache, revocation store, audit stream on one
// client), without signup limits, with a fresh admin key.
func startAdminTarget(redisAddrs string, clients int) (_ *adminTarget, err error) {
	t := &target{}
	defer func() {
		if err != nil {
			t.close()
		}
	}()
	keysFile, adminKey, err := writeAdminKeys(t)
	if err != nil {
		return nil, err
	}
	cfg, err := openRedisBackends(t, redisAddrs, clients)
	if err != nil {
		return nil, err
	}
	cfg.AdminKeysFile = keysFile
	cfg.SignupLimitsOff = true // SECURITY: benchmark only: its devices sign up from one address
	adminBase, err := startAdminIssuer(t, cfg)
	if err != nil {
		return nil, err
	}
	t.client = adminClient(t, clients)
	return &adminTarget{target: t, adminBase: adminBase, adminKey: adminKey}, nil
}

// writeAdminKeys makes a fresh admin key and writes its keys-file line to
// a temporary directory that t's close removes. It returns the file's path
// and the key.
func writeAdminKeys(t *target) (keysFile, key string, err error) {
	dir, err := os.MkdirTemp("", "hallpass-bench-admin-")
	if err != nil {
		return "", "", err
	}
	t.closer = append(t.closer, func() { os.RemoveAll(dir) })
	key, line, err := issuer.NewAdminKey(nil, "bench", time.Now())
	if err != nil {
		return "", "", err
	}
	keysFile = filepath.Join(dir, "admin-keys")
	if err := os.WriteFile(keysFile, []byte(line+"\n"), 0o600); err != nil {
		return "", "", err
	}
	return keysFile, key, nil
}

// openRedisBackends returns an issuer config with its Redis-backed parts
// set (account store, replay cache, revocation store, audit stream), all on
// one client to redisAddrs (comma-separated: a cluster) that t's close
// closes.
func openRedisBackends(t *target, redisAddrs string, clients int) (issuer.Config, error) {
	rc := newBenchClient(redisAddrs, clients+8)
	t.closer = append(t.closer, func() { rc.Close() })
	st, err := redisstore.New(rc, redisstore.Options{})
	if err != nil {
		return issuer.Config{}, err
	}
	t.closer = append(t.closer, func() { st.Close() })
	replay, err := redisreplay.New(rc, redisreplay.Options{})
	if err != nil {
		return issuer.Config{}, err
	}
	revs, err := revredis.New(rc, revredis.Options{})
	if err != nil {
		return issuer.Config{}, err
	}
	audit, err := redisaudit.New(rc, redisaudit.Options{})
	if err != nil {
		return issuer.Config{}, err
	}
	return issuer.Config{
		Store:       st,
		DPoP:        issuer.DPoPConfig{Replay: replay},
		Revocations: revs,
		AuditSink:   audit,
	}, nil
}

// startAdminIssuer listens on two loopback ports, builds the issuer on cfg
// with fresh keys and serves its public API (t.base) on the first and its
// admin API on the second, whose base URL it returns.
func startAdminIssuer(t *target, cfg issuer.Config) (adminBase string, err error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	// Shutdown closes the listener once it is served; until then, so does
	// t's close (a second Close is harmless).
	t.closer = append(t.closer, func() { ln.Close() })
	aln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	t.closer = append(t.closer, func() { aln.Close() })
	t.base = "http://" + ln.Addr().String()
	ring, err := keys.NewRing(nil, time.Now())
	if err != nil {
		return "", err
	}
	lk, err := keys.GenerateLocalKey(nil)
	if err != nil {
		return "", err
	}
	codec, err := refresh.NewCodec(time.Now, lk)
	if err != nil {
		return "", err
	}
	cfg.PublicURL = t.base
	cfg.Keys = ring
	cfg.Refresh = codec
	cfg.Registry = prometheus.NewRegistry()
	cfg.StoreTimeout = 5 * time.Second
	srv, err := issuer.New(cfg)
	if err != nil {
		return "", err
	}
	serve(t, ln, srv.Handler())
	serve(t, aln, srv.AdminHandler())
	return "http://" + aln.Addr().String(), nil
}

// serve serves h on ln until t's close shuts it down.
func serve(t *target, ln net.Listener, h http.Handler) {
	hs := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	served := make(chan struct{})
	go func() {
		defer close(served)
		_ = hs.Serve(ln)
	}()
	t.closer = append(t.closer, func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if hs.Shutdown(ctx) != nil {
			hs.Close()
		}
		<-served
	})
}

// adminClient returns a loopback-only HTTP client with idle connections for
// clients signups and the admin calls; t's close closes them.
func adminClient(t *target, clients int) *http.Client {
	tr := &http.Transport{
		Proxy:               nil, // never leave loopback through a proxy
		DialContext:         loopbackDialer().DialContext,
		MaxIdleConns:        clients + 2,
		MaxIdleConnsPerHost: clients + 2,
		IdleConnTimeout:     30 * time.Second,
		DisableCompression:  true,
	}
	t.closer = append(t.closer, tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: requestTimeout}
}

// signupDevice signs up a fresh account with a fresh device key and proof
// and returns the device id.
func (t *target) signupDevice(ctx context.Context) (string, error) {
	d, err := newDevice(t.alg)
	if err != nil {
		return "", err
	}
	u := t.base + issuer.PathAccounts
	proof, err := dpop.NewProof(d.key, http.MethodPost, u, "", "")
	if err != nil {
		return "", err
	}
	body, _ := json.Marshal(map[string]string{"username": freshUsername(), "device_name": "bench"})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, bytes.NewReader(body))
	if err != nil {
		return "", err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("DPoP", proof)
	b, err := t.do(req, http.StatusCreated)
	if err != nil {
		return "", err
	}
	var r struct {
		DeviceID string `json:"device_id"`
	}
	if json.Unmarshal(b, &r) != nil || r.DeviceID == "" {
		return "", errors.New("signup response without device_id")
	}
	return r.DeviceID, nil
}

// revokeDevice calls DELETE /v1/admin/devices/{id}.
func (at *adminTarget) revokeDevice(ctx context.Context, id string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodDelete, at.adminBase+"/v1/admin/devices/"+id, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+at.adminKey)
	_, err = at.do(req, http.StatusNoContent)
	return err
}

// watcher is one watcher process and the lines read from it.
type watcher struct {
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	done   chan struct{} // closed when cmd.Wait returned
	stderr bytes.Buffer
}

// sighting is one watcher line, timestamped when read.
type sighting struct {
	w   int
	ev  watchEvent
	at  time.Time
	err error // the pipe ended or a line was not JSON
}

// startWatchers starts n watcher processes on redisAddr (host:port, or a
// cluster's nodes comma-separated) and waits for each
// to be ready. Their lines arrive on the returned channel. stop kills them
// all and waits for them.
func startWatchers(ctx context.Context, n, perProc int, flush time.Duration, redisAddr string) (<-chan sighting, func(), error) {
	self, err := os.Executable()
	if err != nil {
		return nil, nil, err
	}
	g := &watcherGroup{sights: make(chan sighting, 4096), quit: make(chan struct{})}
	for i := range n {
		if err := g.start(i, self, redisAddr, perProc, flush); err != nil {
			g.stop()
			return nil, nil, err
		}
	}
	if err := g.awaitReady(ctx, n); err != nil {
		return nil, nil, err
	}
	return g.sights, g.stop, nil
}

// watcherGroup is the watcher processes of a run and the goroutines reading
// their lines into sights.
type watcherGroup struct {
	ws      []*watcher
	sights  chan sighting
	readers sync.WaitGroup
	quit    chan struct{} // closed by stop: readers give up sending
}

// stop kills every watcher and waits for it and its reader.
func (g *watcherGroup) stop() {
	close(g.quit)
	for _, w := range g.ws {
		w.stdin.Close()
		killGroup(w.cmd)
	}
	for _, w := range g.ws {
		<-w.done
	}
	g.readers.Wait()
}

// start starts watcher i, this binary (self) re-executed on redisAddr, and
// a goroutine that reads its lines into g.sights.
func (g *watcherGroup) start(i int, self, redisAddr string, perProc int, flush time.Duration) error {
	cmd := exec.Command(self)
	cmd.Env = append(os.Environ(), watcherEnv+"="+redisAddr, watcherMirrorsEnv+"="+strconv.Itoa(perProc),
		watcherFlushEnv+"="+flush.String())
	ownGroup(cmd)
	w := &watcher{cmd: cmd, done: make(chan struct{})}
	cmd.Stderr = &w.stderr
	in, err := cmd.StdinPipe()
	if err != nil {
		return err
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		in.Close()
		return err
	}
	if err := cmd.Start(); err != nil {
		in.Close()
		return fmt.Errorf("start watcher: %w", err)
	}
	w.stdin = in
	g.ws = append(g.ws, w)
	g.readers.Go(func() {
		defer func() {
			_ = cmd.Wait()
			close(w.done)
		}()
		readLines(i, out, g.sights, g.quit)
	})
	return nil
}

// awaitReady waits for the ready lines of n watchers, for at most 30s. On
// failure it stops g: before reading a failed watcher's stderr, so that
// the stderr is whole.
func (g *watcherGroup) awaitReady(ctx context.Context, n int) error {
	ready := 0
	deadline := time.NewTimer(30 * time.Second)
	defer deadline.Stop()
	for ready < n {
		select {
		case s := <-g.sights:
			if s.err != nil {
				g.stop()
				return fmt.Errorf("watcher %d: %v; stderr: %s", s.w, s.err, tail(g.ws[s.w]))
			}
			if s.ev.Ready {
				ready++
			}
		case <-deadline.C:
			g.stop()
			return errors.New("watchers not ready within 30s")
		case <-ctx.Done():
			g.stop()
			return ctx.Err()
		}
	}
	return nil
}

func tail(w *watcher) string {
	select {
	case <-w.done:
		b := bytes.TrimSpace(w.stderr.Bytes())
		if len(b) > 500 {
			b = b[len(b)-500:]
		}
		return string(b)
	case <-time.After(2 * time.Second):
		return "(still running)"
	}
}

// readLines sends each line of r, timestamped as soon as it is read.
// It gives up when quit is closed.
func readLines(w int, r io.Reader, out chan<- sighting, quit <-chan struct{}) {
	send := func(s sighting) bool {
		select {
		case out <- s:
			return true
		case <-quit:
			return false
		}
	}
	buf := make([]byte, 0, 64<<10)
	chunk := make([]byte, 32<<10)
	for {
		k, err := r.Read(chunk)
		at := time.Now()
		buf = append(buf, chunk[:k]...)
		for {
			i := bytes.IndexByte(buf, '\n')
			if i < 0 {
				break
			}
			var ev watchEvent
			if jerr := json.Unmarshal(buf[:i], &ev); jerr != nil {
				if !send(sighting{w: w, err: fmt.Errorf("bad line %q", buf[:i])}) {
					return
				}
			} else if !send(sighting{w: w, ev: ev, at: at}) {
				return
			}
			buf = buf[i+1:]
		}
		if len(buf) > 1<<20 {
			send(sighting{w: w, err: errors.New("line too long")})
			return
		}
		if err != nil {
			send(sighting{w: w, err: fmt.Errorf("stdout ended: %v", err)})
			return
		}
	}
}

func propagation(ctx context.Context, o propOptions, progress io.Writer) (*PropagationReport, error) {
	begin := time.Now()
	rep := newPropagationReport(o)
	addrs, stopRedis, err := startPropagationRedis(ctx, o)
	if err != nil {
		return nil, err
	}
	defer stopRedis()
	at, err := startAdminTarget(addrs, o.clients)
	if err != nil {
		return nil, err
	}
	defer at.close()

	fmt.Fprintf(progress, "hallpass-bench: starting %d watcher processes\n", o.watchers)
	if o.rate > 0 {
		rep.LineFlushNS = int64(rateLineFlush)
	}
	sights, stopWatchers, err := startWatchers(ctx, o.watchers, o.perProc, time.Duration(rep.LineFlushNS), addrs)
	if err != nil {
		return nil, err
	}
	defer stopWatchers()

	fmt.Fprintf(progress, "hallpass-bench: signing up %d devices\n", o.n)
	setup := time.Now()
	ids, err := signupDevices(ctx, at, o.n, o.clients)
	if err != nil {
		return nil, err
	}
	rep.SetupSeconds = time.Since(setup).Seconds()

	fmt.Fprintf(progress, "hallpass-bench: revoking %d devices %s\n", o.n, rep.mode())
	tl := newTally(ids, o.watchers*o.perProc, o.perProc)
	var admins []time.Duration
	if o.cpuprofile != "" {
		stop, err := startCPUProfile(o.cpuprofile)
		if err != nil {
			return nil, err
		}
		defer stop()
	}
	if o.rate > 0 {
		admins, err = revokeAtRate(ctx, at, tl, sights, rep, o.clients, progress)
	} else {
		admins, err = revokeOneByOne(ctx, at, tl, sights, rep, progress)
	}
	if err != nil {
		return nil, err
	}
	rep.Seconds = time.Since(begin).Seconds()
	rep.summarize(tl, admins)
	return rep, nil
}

// signupDevices signs up n devices, clients at a time, and returns their
// ids.
func signupDevices(ctx context.Context, at *adminTarget, n, clients int) ([]string, error) {
	ids := make([]string, n)
	var next atomic.Int64
	var setupErr error
	var errOnce sync.Once
	var wg sync.WaitGroup
	for range min(clients, n) {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= n || ctx.Err() != nil {
					return
				}
				id, err := at.signupDevice(ctx)
				if err != nil {
					errOnce.Do(func() { setupErr = err })
					return
				}
				ids[i] = id
			}
		})
	}
	wg.Wait()
	if setupErr != nil {
		return nil, fmt.Errorf("set-up signup: %w", setupErr)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return ids, nil
}
