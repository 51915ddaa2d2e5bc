package main

import (
	"bytes"
	"context"
	"crypto"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/hallpass/hallpass/account"
	"github.com/hallpass/hallpass/account/boltstore"
	"github.com/hallpass/hallpass/account/redisstore"
	"github.com/hallpass/hallpass/dpop"
	"github.com/hallpass/hallpass/dpop/redisreplay"
	"github.com/hallpass/hallpass/internal/benchratio"
	"github.com/hallpass/hallpass/issuer"
	"github.com/hallpass/hallpass/keys"
	"github.com/hallpass/hallpass/refresh"
	"github.com/hallpass/hallpass/revocation"
	revbolt "github.com/hallpass/hallpass/revocation/boltstore"
	revredis "github.com/hallpass/hallpass/revocation/redisstore"
)

// Scenarios, in the order they run on each store.
var scenarios = []string{"signup", "refresh", "me"}

// requestTimeout bounds one HTTP request, so a stuck server cannot hang
// the run.
const requestTimeout = 10 * time.Second

// target is the client side of a run: an HTTP client of one issuer, and
// what its close undoes (in reverse order).
type target struct {
	base   string   // http://127.0.0.1:PORT
	alg    proofAlg // of its devices' keys
	client *http.Client
	closer []func()
}

func (t *target) close() {
	for i := len(t.closer) - 1; i >= 0; i-- {
		t.closer[i]()
	}
}

// newTarget returns a client of the issuer at base with up to clients
// connections.
func newTarget(base string, clients int, alg proofAlg) *target {
	tr := &http.Transport{
		Proxy:               nil, // never leave loopback through a proxy
		DialContext:         loopbackDialer().DialContext,
		MaxIdleConns:        clients,
		MaxIdleConnsPerHost: clients,
		MaxConnsPerHost:     clients,
		IdleConnTimeout:     30 * time.Second,
		DisableCompression:  true,
	}
	return &target{base: base, alg: alg, client: &http.Client{Transport: tr, Timeout: requestTimeout}, closer: []func(){tr.CloseIdleConnections}}
}

// storeHandles is an open store, its replay cache, its revocation store
// and what closes them.
type storeHandles struct {
	store       account.Store
	replay      dpop.ReplayCache
	revocations revocation.Store
	close       func()
}

// openBolt opens a store on a bbolt file in a fresh temporary directory,
// with the in-memory replay cache and a bbolt revocation store beside it
// (as `hallpass serve` on bolt).
func openBolt() (storeHandles, error) {
	dir, err := os.MkdirTemp("", "hallpass-bench-bolt-")
	if err != nil {
		return storeHandles{}, err
	}
	var h storeHandles
	closers := []func(){}
	done := func() {
		for i := len(closers) - 1; i >= 0; i-- {
			closers[i]()
		}
		os.RemoveAll(dir)
	}
	st, err := boltstore.Open(filepath.Join(dir, "hallpass.db"), boltstore.Options{})
	if err == nil {
		closers = append(closers, func() { st.Close() })
		h.store = st
		h.replay, err = dpop.NewMemoryReplayCache(dpop.MemoryReplayOptions{})
	}
	if err == nil {
		var rs *revbolt.Store
		if rs, err = revbolt.Open(filepath.Join(dir, "revocation.db"), revbolt.Options{}); err == nil {
			closers = append(closers, func() { rs.Close() })
			h.revocations = rs
		}
	}
	if err != nil {
		done()
		return storeHandles{}, err
	}
	h.close = done
	return h, nil
}

// openRedis opens a store, a replay cache and a revocation store on c, a
// client of one redis-server or of a Cluster (as `hallpass serve` on
// Redis), the store with its view cache when views is set; the handles
// close c.
func openRedis(c redis.UniversalClient, views bool) (storeHandles, error) {
	// The view cache on unless -account-cache=false, as `hallpass serve`
	// has it by default on a Redis store (--account-cache).
	var o redisstore.Options
	if views {
		o.ViewCache = 1 << 16
	}
	st, err := redisstore.New(c, o)
	if err != nil {
		c.Close()
		return storeHandles{}, err
	}
	h := storeHandles{store: st, close: func() { st.Close(); c.Close() }}
	if h.replay, err = redisreplay.New(c, redisreplay.Options{}); err == nil {
		h.revocations, err = revredis.New(c, revredis.Options{})
	}
	if err != nil {
		h.close()
		return storeHandles{}, err
	}
	return h, nil
}

// startServer builds an issuer on st, with a revocation mirror of
// st.revocations as `hallpass serve` runs, and serves it on 127.0.0.1:0;
// stop shuts both down. Signup limits are off (SignupLimitsOff): the load
// generator is the only client and would otherwise measure 429s.
func startServer(st storeHandles, noTokenCache bool) (base string, stop func(), err error) {
	mirror, err := revocation.NewMirror(st.revocations, revocation.MirrorOptions{})
	if err != nil {
		return "", nil, err
	}
	mirror.Start()
	select {
	case <-mirror.Synced():
	case <-time.After(10 * time.Second):
		mirror.Close()
		return "", nil, errors.New("the revocation mirror did not load")
	}
	base, stopIssuer, err := startIssuer(st, mirror, noTokenCache)
	if err != nil {
		mirror.Close()
		return "", nil, err
	}
	return base, func() { stopIssuer(); mirror.Close() }, nil
}

func startIssuer(st storeHandles, mirror *revocation.Mirror, noTokenCache bool) (base string, stop func(), err error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	base = "http://" + ln.Addr().String()
	ring, err := keys.NewRing(nil, time.Now())
	if err != nil {
		ln.Close()
		return "", nil, err
	}
	lk, err := keys.GenerateLocalKey(nil)
	if err != nil {
		ln.Close()
		return "", nil, err
	}
	codec, err := refresh.NewCodec(time.Now, lk)
	if err != nil {
		ln.Close()
		return "", nil, err
	}
	srv, err := issuer.New(issuer.Config{
		PublicURL:        base,
		Store:            st.store,
		Keys:             ring,
		Refresh:          codec,
		DPoP:             issuer.DPoPConfig{Replay: st.replay},
		Revocations:      st.revocations,
		RevocationMirror: mirror,
		Registry:         prometheus.NewRegistry(),
		StoreTimeout:     5 * time.Second,
		NoTokenCache:     noTokenCache,
		// SECURITY: benchmark only; a real issuer keeps its budgets.
		SignupLimitsOff: true,
	})
	if err != nil {
		ln.Close()
		return "", nil, err
	}
	hs := &http.Server{Handler: srv.Handler(), ReadHeaderTimeout: 5 * time.Second}
	served := make(chan struct{})
	go func() {
		defer close(served)
		_ = hs.Serve(ln)
	}()
	return base, func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if hs.Shutdown(ctx) != nil {
			hs.Close()
		}
		<-served
	}, nil
}

// loopbackDialer refuses to connect anywhere but a loopback address.
func loopbackDialer() *net.Dialer {
	return &net.Dialer{
		Timeout: 5 * time.Second,
		Control: func(network, address string, _ syscall.RawConn) error {
			host, _, err := net.SplitHostPort(address)
			if err != nil {
				return err
			}
			if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
				return fmt.Errorf("hallpass-bench: refusing non-loopback address %s", address)
			}
			return nil
		},
	}
}

// device is one simulated client: its own device key (of -proof-alg)
// and, after signup, its tokens.
type device struct {
	key    crypto.Signer
	access string
	rt     string
}

func newDevice(alg proofAlg) (*device, error) {
	k, err := alg.newKey()
	if err != nil {
		return nil, err
	}
	return &device{key: k}, nil
}

// do sends req and returns the body of a response with status want.
func (t *target) do(req *http.Request, want int) ([]byte, error) {
	res, err := t.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer res.Body.Close()
	body, err := io.ReadAll(io.LimitReader(res.Body, 1<<20))
	if err != nil {
		return nil, err
	}
	if res.StatusCode != want {
		var p struct {
			Code string `json:"code"`
		}
		_ = json.Unmarshal(body, &p)
		return nil, fmt.Errorf("%s %s: status %d %s", req.Method, req.URL.Path, res.StatusCode, p.Code)
	}
	return body, nil
}

type tokens struct {
	AccessToken  string `json:"access_token"`
	RefreshToken string `json:"refresh_token"`
}

func (d *device) keep(body []byte) error {
	var tk tokens
	if err := json.Unmarshal(body, &tk); err != nil {
		return fmt.Errorf("response is not JSON: %w", err)
	}
	if tk.AccessToken == "" || tk.RefreshToken == "" {
		return errors.New("response without tokens")
	}
	d.access, d.rt = tk.AccessToken, tk.RefreshToken
	return nil
}

// signup creates an account for username with a fresh proof and keeps its
// tokens.
func (t *target) signup(ctx context.Context, d *device, username string) error {
	u := t.base + issuer.PathAccounts
	proof, err := dpop.NewProof(d.key, http.MethodPost, u, "", "")
	if err != nil {
		return err
	}
	body, _ := json.Marshal(map[string]string{"username": username, "device_name": "bench"})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("DPoP", proof)
	b, err := t.do(req, http.StatusCreated)
	if err != nil {
		return err
	}
	return d.keep(b)
}

// refresh rotates the device's refresh token (its own chain), with a
// retry id of 128 random bits as the Go and JS clients send: the issuer
// stores its digest with the session.
func (t *target) refresh(ctx context.Context, d *device) error {
	u := t.base + issuer.PathToken
	proof, err := dpop.NewProof(d.key, http.MethodPost, u, "", "")
	if err != nil {
		return err
	}
	var id [16]byte
	if _, err := rand.Read(id[:]); err != nil {
		return err
	}
	form := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {d.rt}, "retry_id": {base64.RawURLEncoding.EncodeToString(id[:])}}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, strings.NewReader(form.Encode()))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("DPoP", proof)
	b, err := t.do(req, http.StatusOK)
	if err != nil {
		return err
	}
	return d.keep(b)
}

// me calls GET /v1/me with the access token and a fresh proof bound to it.
func (t *target) me(ctx context.Context, d *device) error {
	u := t.base + issuer.PathMe
	proof, err := dpop.NewProof(d.key, http.MethodGet, u, d.access, "")
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "DPoP "+d.access)
	req.Header.Set("DPoP", proof)
	b, err := t.do(req, http.StatusOK)
	if err != nil {
		return err
	}
	var who struct {
		AccountID string `json:"account_id"`
	}
	if json.Unmarshal(b, &who) != nil || who.AccountID == "" {
		return errors.New("GET /v1/me: response without account_id")
	}
	return nil
}

// Result is one scenario on one store.
type Result struct {
	Store    string  `json:"store"`
	Scenario string  `json:"scenario"`
	Clients  int     `json:"clients"`
	Requests int64   `json:"requests"`  // completed, successful or not
	Errors   int64   `json:"errors"`    // failed requests (and failed set-up signups)
	Seconds  float64 `json:"seconds"`   // under load, all rounds
	ReqPerS  float64 `json:"req_per_s"` // successful requests per second under load
	P50NS    int64   `json:"p50_ns"`    // of successful requests
	P99NS    int64   `json:"p99_ns"`
	// Floor is this scenario's floor over all its windows (see Floor),
	// FloorOps what one of its operations does.
	Floor    Floor  `json:"floor"`
	FloorOps string `json:"floor_ops"`
	// OfFloor is the median over rounds of (req/s) / (floor ops/s), each
	// round's load beside the floor window next to it: 1 would be a server
	// doing nothing but the floor's cryptography.
	OfFloor    float64 `json:"of_floor"`
	Rounds     int     `json:"rounds"` // rounds with requests
	FirstError string  `json:"first_error,omitempty"`
}

// usernames are fresh across the whole run.
var usernameSeq atomic.Int64

func freshUsername() string { return fmt.Sprintf("bench%d", usernameSeq.Add(1)) }

// errorLog counts failed requests and keeps the first.
type errorLog struct {
	n     atomic.Int64
	mu    sync.Mutex
	first error
}

func (l *errorLog) fail(err error) {
	l.n.Add(1)
	l.mu.Lock()
	if l.first == nil {
		l.first = err
	}
	l.mu.Unlock()
}

// runScenario runs one scenario with o.clients concurrent devices in
// o.rounds rounds. Each round is a load window of o.duration/o.rounds (or
// until o.max requests have been started over the whole scenario) and a
// floor window of o.floor on the backend with as many goroutines as
// clients; the order of the two alternates from round to round, so that a
// drift in the machine's load weighs on both alike. Devices of refresh and
// me sign up first, outside the measurement. Latency is what a client
// sees: making the proof, the HTTP round trip and reading the body.
func runScenario(ctx context.Context, t *target, be backend, store, scenario string, o options) (Result, error) {
	res := Result{Store: store, Scenario: scenario, Clients: o.clients, FloorOps: floorOps[scenario]}
	var errs errorLog
	devs := setupDevices(ctx, t, scenario, o.clients, &errs)

	var (
		started atomic.Int64
		all     []time.Duration
		load    time.Duration
		ratios  []float64
	)
	window := o.duration / time.Duration(o.rounds)
	for r := range o.rounds {
		if ctx.Err() != nil || started.Load() >= o.max {
			break
		}
		var (
			lat []time.Duration
			el  time.Duration
			f   Floor
			err error
		)
		if r%2 == 0 {
			lat, el = loadRound(ctx, t, devs, scenario, window, &started, o.max, &errs)
			f, err = be.floor(ctx, scenario, o.clients, o.floor)
		} else {
			f, err = be.floor(ctx, scenario, o.clients, o.floor)
			if err == nil {
				lat, el = loadRound(ctx, t, devs, scenario, window, &started, o.max, &errs)
			}
		}
		if err != nil {
			return res, err
		}
		res.Floor.Ops += f.Ops
		res.Floor.Seconds += f.Seconds
		all = append(all, lat...)
		load += el
		if len(lat) > 0 && el > 0 {
			ratios = append(ratios, float64(len(lat))/el.Seconds()/f.OpsPerSec)
		}
	}
	res.summarize(all, load, ratios, &errs)
	return res, nil
}

// setupDevices makes one device per client, each signed up unless the
// scenario is signup. A device that failed is left nil (and counted in
// errs).
func setupDevices(ctx context.Context, t *target, scenario string, clients int, errs *errorLog) []*device {
	devs := make([]*device, clients)
	var wg sync.WaitGroup
	for i := range devs {
		wg.Go(func() {
			dev, err := newDevice(t.alg)
			if err != nil {
				errs.fail(err)
				return
			}
			if scenario != "signup" {
				if err := t.signup(ctx, dev, freshUsername()); err != nil {
					errs.fail(fmt.Errorf("set-up: %w", err))
					return
				}
			}
			devs[i] = dev
		})
	}
	wg.Wait()
	return devs
}

// summarize fills in the figures from the latencies of all rounds (sorted
// here), the time under load, each round's ratio to its floor and the
// errors; res.Floor already holds the floor windows' sums.
func (res *Result) summarize(all []time.Duration, load time.Duration, ratios []float64, errs *errorLog) {
	slices.Sort(all)
	res.Errors = errs.n.Load()
	res.Requests = int64(len(all)) + res.Errors
	res.Seconds = load.Seconds()
	if res.Seconds > 0 {
		res.ReqPerS = float64(len(all)) / res.Seconds
	}
	if res.Floor.Seconds > 0 {
		res.Floor.OpsPerSec = float64(res.Floor.Ops) / res.Floor.Seconds
	}
	res.Rounds = len(ratios)
	res.OfFloor = benchratio.Median(ratios)
	res.P50NS = int64(percentile(all, 0.50))
	res.P99NS = int64(percentile(all, 0.99))
	if errs.first != nil {
		res.FirstError = errs.first.Error()
	}
}

// loadRound has every device send scenario's request in a loop for d, or
// until n requests have been started in all (counted by started). It
// returns the latency of each successful request and the time it took.
func loadRound(ctx context.Context, t *target, devs []*device, scenario string, d time.Duration, started *atomic.Int64, n int64, errs *errorLog) ([]time.Duration, time.Duration) {
	lats := make([][]time.Duration, len(devs))
	var wg sync.WaitGroup
	begin := time.Now()
	deadline := begin.Add(d)
	for i, dev := range devs {
		if dev == nil {
			continue
		}
		wg.Go(func() {
			var mine []time.Duration
			for ctx.Err() == nil && time.Now().Before(deadline) && started.Add(1) <= n {
				t0 := time.Now()
				var err error
				switch scenario {
				case "signup":
					err = t.signup(ctx, dev, freshUsername())
				case "refresh":
					err = t.refresh(ctx, dev)
				case "me":
					err = t.me(ctx, dev)
				}
				if err != nil {
					errs.fail(err)
					continue
				}
				mine = append(mine, time.Since(t0))
			}
			lats[i] = mine
		})
	}
	wg.Wait()
	return slices.Concat(lats...), time.Since(begin)
}

// percentile of sorted (nearest rank); 0 when empty.
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(float64(len(sorted))*p+0.999999) - 1
	return sorted[max(0, min(i, len(sorted)-1))]
}
