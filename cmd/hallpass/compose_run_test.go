package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/hallpass/hallpass/client"
	"github.com/hallpass/hallpass/deploy/upstream"
	"github.com/hallpass/hallpass/internal/logbuf"
	"github.com/hallpass/hallpass/internal/nginxtest"
	"github.com/hallpass/hallpass/internal/redistest"
)

// TestComposeCLIHelper is not a test: deploy/setup.sh, run by
// TestComposeTopology, calls this test binary as its hallpass
// (HALLPASS_BIN), and with composeCLIEnv set it runs the command line after
// "--" and exits.
func TestComposeCLIHelper(t *testing.T) {
	if os.Getenv(composeCLIEnv) != "1" {
		return
	}
	args := os.Args
	for i, a := range args {
		if a == "--" {
			args = args[i+1:]
			break
		}
	}
	err := run(context.Background(), args, &env{stdin: os.Stdin, stdout: os.Stdout, stderr: os.Stderr, getenv: os.Getenv})
	os.Exit(exitStatus(os.Stderr, err))
}

// native is where the services of docker-compose.yml run here: every
// address a container would use, mapped to a loopback one, and every
// mounted path to a temporary one.
type native struct {
	d *deployment
	// netns is the service whose network namespace a service lives in
	// (itself, or X for network_mode service:X).
	netns map[string]string
	// alloc maps a network namespace and a container port to the loopback
	// host:port standing for it; listening holds the ports something in
	// that namespace really listens on.
	alloc     map[string]map[string]string
	listening map[string]map[string]bool
	// published maps a host port (published on 127.0.0.1) to the
	// namespace and container port behind it.
	published map[string][2]string
	// fixedIPs are the services' static addresses (read as loopback here).
	fixedIPs map[string]bool
	// dirs are the native directories of bind mounts and named volumes.
	dirs     map[string]string
	setupDir string
	tmp      string
}

var (
	endpointRE = regexp.MustCompile(`\b([a-z0-9][a-z0-9.-]*):(\d{2,5})\b`)
	ipv4RE     = regexp.MustCompile(`\b\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}\b`)
)

func newNative(t *testing.T, d *deployment, setupDir string) *native {
	t.Helper()
	n := &native{d: d, netns: map[string]string{}, alloc: map[string]map[string]string{},
		listening: map[string]map[string]bool{}, published: map[string][2]string{},
		fixedIPs: map[string]bool{}, dirs: map[string]string{}, setupDir: setupDir, tmp: t.TempDir()}
	for name, s := range d.compose.Services {
		n.netns[name] = name
		if owner, ok := strings.CutPrefix(s.NetworkMode, "service:"); ok {
			n.netns[name] = owner
		}
		for _, ip := range s.ipv4Addresses(t) {
			n.fixedIPs[ip] = true
		}
	}
	for name, s := range d.compose.Services {
		for _, p := range s.Ports {
			parts := strings.Split(p, ":") // 127.0.0.1:HOST:CONTAINER (TestComposeFile)
			if len(parts) == 3 {
				n.published[parts[1]] = [2]string{n.netns[name], parts[2]}
			}
		}
	}
	return n
}

// listen records that service listens on container port port (the
// address in the file is 0.0.0.0:port) at native, or at a free loopback
// port when native is empty.
func (n *native) listen(t *testing.T, service, port, native string) string {
	t.Helper()
	ns := n.netns[service]
	if n.alloc[ns] == nil {
		n.alloc[ns], n.listening[ns] = map[string]string{}, map[string]bool{}
	}
	if native == "" {
		native = n.alloc[ns][port]
	}
	if native == "" {
		native = net.JoinHostPort("127.0.0.1", strconv.Itoa(freePort(t)))
	}
	n.alloc[ns][port], n.listening[ns][port] = native, true
	return native
}

// reserve gives every 0.0.0.0:PORT of a value a loopback port, whether or
// not it is listened on (an image default a flag overrides, say).
func (n *native) reserve(t *testing.T, service string, values ...string) {
	t.Helper()
	ns := n.netns[service]
	if n.alloc[ns] == nil {
		n.alloc[ns], n.listening[ns] = map[string]string{}, map[string]bool{}
	}
	for _, v := range values {
		for _, m := range endpointRE.FindAllStringSubmatch(v, -1) {
			if m[1] == "0.0.0.0" && n.alloc[ns][m[2]] == "" {
				n.alloc[ns][m[2]] = net.JoinHostPort("127.0.0.1", strconv.Itoa(freePort(t)))
			}
		}
	}
}

// addr is the native address of host:port as service sees it.
func (n *native) addr(service, host, port string) (string, error) {
	ns := n.netns[service]
	switch {
	case host == "0.0.0.0":
		if a := n.alloc[ns][port]; a != "" {
			return a, nil
		}
	case host == "127.0.0.1" || host == "localhost":
		// Inside the namespace if something there listens on the port;
		// else the host's loopback, where ports are published.
		if n.listening[ns][port] {
			return n.alloc[ns][port], nil
		}
		if p, ok := n.published[port]; ok && n.listening[p[0]][p[1]] {
			return n.alloc[p[0]][p[1]], nil
		}
	default:
		if _, ok := n.d.compose.Services[host]; ok {
			other := n.netns[host]
			if n.listening[other][port] {
				return n.alloc[other][port], nil
			}
		}
	}
	return "", fmt.Errorf("%s: nothing stands for %s:%s here", service, host, port)
}

// rewrite maps a value of service's command line or environment: its
// addresses to loopback ones, a mounted path to a temporary one. Anything
// else is kept; an address or path it cannot map fails the test.
func (n *native) rewrite(t *testing.T, service, v string) string {
	t.Helper()
	var err error
	out := endpointRE.ReplaceAllStringFunc(v, func(m string) string {
		host, port, _ := net.SplitHostPort(m)
		a, aerr := n.addr(service, host, port)
		if aerr != nil {
			err = aerr
			return m
		}
		return a
	})
	out = ipv4RE.ReplaceAllStringFunc(out, func(ip string) string {
		if n.fixedIPs[ip] {
			return "127.0.0.1"
		}
		if p := net.ParseIP(ip); p == nil || !p.IsLoopback() {
			// Not even 0.0.0.0: everything here listens on loopback.
			err = fmt.Errorf("%s: address %s is no service's", service, ip)
		}
		return ip
	})
	if strings.HasPrefix(out, "/") {
		p, ok := n.path(t, service, out)
		if !ok {
			err = fmt.Errorf("%s: path %s is not mounted", service, out)
		}
		out = p
	}
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// path maps a path inside service's container to the native file: its
// Docker secrets and its volumes.
func (n *native) path(t *testing.T, service, p string) (string, bool) {
	t.Helper()
	s := n.d.compose.Services[service]
	if name, ok := strings.CutPrefix(p, "/run/secrets/"); ok && slices.Contains(s.Secrets, name) {
		return n.hostPath(t, n.d.compose.Secrets[name].File), true
	}
	for _, v := range s.Volumes {
		parts := strings.Split(v, ":")
		src, dst := parts[0], parts[1]
		if rest, ok := strings.CutPrefix(p, dst); ok && (rest == "" || rest[0] == '/') {
			return n.hostPath(t, src) + rest, true
		}
	}
	return p, false
}

// hostPath is the native place of a bind mount's source (./deploy/...,
// made by deploy/setup.sh in setupDir) or of a named volume.
func (n *native) hostPath(t *testing.T, src string) string {
	t.Helper()
	if rest, ok := strings.CutPrefix(src, "./deploy/"); ok {
		return filepath.Join(n.setupDir, rest)
	}
	if strings.HasPrefix(src, ".") || strings.HasPrefix(src, "/") {
		t.Fatalf("bind mount %s: only ./deploy/ sources are mapped", src)
	}
	if n.dirs[src] == "" {
		n.dirs[src] = filepath.Join(n.tmp, "volume-"+src)
		if err := os.MkdirAll(n.dirs[src], 0o700); err != nil {
			t.Fatal(err)
		}
	}
	return n.dirs[src]
}

func (n *native) args(t *testing.T, service string, args []string) []string {
	t.Helper()
	out := make([]string, len(args))
	for i, a := range args {
		out[i] = n.rewrite(t, service, a)
	}
	return out
}

func (n *native) environ(t *testing.T, service string) map[string]string {
	t.Helper()
	out := map[string]string{}
	for k, v := range n.d.environ(service) {
		out[k] = n.rewrite(t, service, v)
	}
	return out
}

// proc is a service running in this process.
type proc struct {
	name string
	logs *logbuf.Buffer
	done chan error
}

func startProc(ctx context.Context, name string, f func(ctx context.Context, stderr io.Writer) error) *proc {
	p := &proc{name: name, logs: &logbuf.Buffer{}, done: make(chan error, 1)}
	go func() { p.done <- f(ctx, p.logs) }()
	return p
}

// TestComposeTopology runs docker-compose.yml's topology on loopback from
// its own command lines and variables (with the image's ENV underneath):
// deploy/setup.sh makes the secrets, a real redis-server runs with the
// file's arguments, the two serve nodes, the gateway and the upstream run
// in this process, the edge is a real nginx with deploy/nginx/edge.conf.
// Only addresses, ports and paths are rewritten. Then: a device signs up
// on node 1 and calls the upstream through the gateway; node 1's admin API
// signs it out and the gateway refuses it; a device signed up on node 2
// calls through the gateway. Every health check of the file passes and
// every Prometheus target of deploy/prometheus/prometheus.yml that runs
// here serves metrics.
func TestComposeTopology(t *testing.T) {
	d := loadDeployment(t)
	svcs := d.compose.Services
	ctx, cancel := context.WithTimeout(context.Background(), composeTestTime)
	defer cancel()

	setupDir := filepath.Join(t.TempDir(), "deploy")
	runSetup(t, setupDir)
	n := newNative(t, d, setupDir)

	// Roles, by what the services run.
	var serves []string
	var gatewaySvc string
	for _, name := range d.services(hallpassImage) {
		switch svcs[name].Command[0] {
		case "serve":
			serves = append(serves, name)
		case "gateway":
			gatewaySvc = name
		}
	}
	ups := d.services(upstreamStage)
	redisSvc, edgeSvc := d.serviceByImage(t, "redis:"), d.serviceByImage(t, "nginxinc/nginx-unprivileged:")
	if len(serves) != 2 || gatewaySvc == "" || len(ups) != 1 {
		t.Fatalf("serve %q, gateway %q, upstream %q: want two, one, one", serves, gatewaySvc, ups)
	}

	// Redis, with the file's arguments (after redistest's own).
	rcmd := svcs[redisSvc].Command
	if len(rcmd) == 0 || rcmd[0] != "redis-server" {
		t.Fatalf("%s: command %q, want redis-server ...", redisSvc, rcmd)
	}
	rp, err := redistest.Launch(ctx, redistest.Options{Dir: t.TempDir(), Extra: rcmd[1:]})
	if err != nil {
		t.Fatalf("redis-server %q: %v (make test-deps installs it)", rcmd[1:], err)
	}
	t.Cleanup(rp.Stop)
	n.listen(t, redisSvc, "6379", rp.Addr())
	rc := redis.NewClient(&redis.Options{Addr: rp.Addr()})
	defer rc.Close()
	if v, err := rc.ConfigGet(ctx, "appendonly").Result(); err != nil || v["appendonly"] != "yes" {
		t.Errorf("redis appendonly = %v (%v), want yes", v, err)
	}

	// Where every service listens, from its parsed flags.
	for _, name := range append(append([]string{gatewaySvc}, serves...), d.services(socketioStage)...) {
		n.reserve(t, name, append(svcs[name].Command, mapValues(d.environ(name))...)...)
	}
	n.reserve(t, ups[0], svcs[ups[0]].Command...)
	portOf := func(addr string) string { _, p, _ := net.SplitHostPort(addr); return p }
	for _, name := range serves {
		c := parsedServe(t, name, d)
		for _, a := range []string{c.listen, c.adminListen, c.guard.metricsListen} {
			if p := portOf(a); p != "" {
				n.listen(t, name, p, "")
			}
		}
	}
	gwConf := parsedGateway(t, gatewaySvc, d)
	n.listen(t, gatewaySvc, portOf(gwConf.listen), "")
	n.listen(t, gatewaySvc, portOf(gwConf.ops.metricsListen), "")
	for _, f := range []string{"listen", "metrics-listen"} {
		if p := portOf(flagValue(svcs[ups[0]].Command, f)); p != "" {
			n.listen(t, ups[0], p, "")
		}
	}
	for _, name := range d.services(socketioStage) { // not started; the edge names it
		n.listen(t, name, portOf(flagValue(svcs[name].Command, "listen")), "")
	}

	// The edge: nginx with the mounted configuration, its addresses
	// rewritten, on the port nginxtest picks.
	conf, err := os.ReadFile(edgeConfPath(t))
	if err != nil {
		t.Fatal(err)
	}
	edgePort := edgeListenPort(t)
	text := strings.Replace(string(conf), "listen "+edgePort+";", "listen "+nginxtest.Listen+";", 1)
	text = endpointRE.ReplaceAllStringFunc(text, func(m string) string { return n.rewrite(t, edgeSvc, m) })
	edge := nginxtest.Start(t, text)
	n.listen(t, edgeSvc, edgePort, edge.Addr())

	// The serve nodes, then the upstream and the gateway, as depends_on
	// orders them.
	var procs []*proc
	for _, name := range serves {
		args, environ := n.args(t, name, svcs[name].Command), n.environ(t, name)
		procs = append(procs, startProc(ctx, name, func(ctx context.Context, stderr io.Writer) error {
			return run(ctx, args, &env{stdin: strings.NewReader(""), stdout: io.Discard, stderr: stderr, getenv: func(k string) string { return environ[k] }})
		}))
	}
	for i, name := range serves {
		waitHealthy(t, ctx, n, name, procs[i])
	}
	upArgs := n.args(t, ups[0], svcs[ups[0]].Command)
	procs = append(procs, startProc(ctx, ups[0], func(ctx context.Context, stderr io.Writer) error {
		return upstream.Run(ctx, upArgs, stderr)
	}))
	gwArgs, gwEnv := n.args(t, gatewaySvc, svcs[gatewaySvc].Command), n.environ(t, gatewaySvc)
	gw := startProc(ctx, gatewaySvc, func(ctx context.Context, stderr io.Writer) error {
		return run(ctx, gwArgs, &env{stdin: strings.NewReader(""), stdout: io.Discard, stderr: stderr, getenv: func(k string) string { return gwEnv[k] }})
	})
	procs = append(procs, gw)
	gwAddr, _ := n.addr(gatewaySvc, "0.0.0.0", portOf(parsedGateway(t, gatewaySvc, d).listen))
	upAddr, _ := n.addr(ups[0], "0.0.0.0", portOf(flagValue(svcs[ups[0]].Command, "listen")))
	waitListening(t, ctx, procs[len(procs)-2], upAddr)
	waitListening(t, ctx, gw, gwAddr)
	defer func() {
		if t.Failed() {
			for _, p := range procs {
				t.Logf("%s log:\n%s", p.name, p.logs.String())
			}
			t.Logf("edge error log:\n%s", edge.ErrorLog())
		}
	}()

	// What clients use: the nodes' public URL (the edge) and the
	// gateway's. The devices below talk to one node each: the edge's
	// address is dialled to that node.
	publicURL := n.rewrite(t, serves[0], parsedServe(t, serves[0], d).publicURL)
	gatewayURL := n.rewrite(t, gatewaySvc, parsedGateway(t, gatewaySvc, d).publicURL)
	edgeAddr := edge.Addr()
	nodeAddr := func(name string) string {
		a, err := n.addr(name, "0.0.0.0", portOf(parsedServe(t, name, d).listen))
		if err != nil {
			t.Fatal(err)
		}
		return a
	}
	device := func(node, username string) (*client.Client, *client.Session) {
		t.Helper()
		key, err := client.GenerateDeviceKey(client.EdDSA)
		if err != nil {
			t.Fatal(err)
		}
		target := nodeAddr(node)
		var dialer net.Dialer
		tr := &http.Transport{DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			if addr == edgeAddr {
				addr = target
			}
			return dialer.DialContext(ctx, network, addr)
		}}
		t.Cleanup(tr.CloseIdleConnections)
		hc := &http.Client{
			Timeout:       10 * time.Second,
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
			Transport:     tr,
		}
		c, err := client.New(publicURL, key, &client.MemoryStore{}, client.WithHTTPClient(hc), client.WithOrigins(gatewayURL))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		s, err := c.Signup(ctx, username, "compose-test")
		if err != nil {
			t.Fatalf("signup on %s: %v", node, err)
		}
		return c, s
	}
	call := func(c *client.Client) (int, map[string]string) {
		t.Helper()
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, gatewayURL+"/hello", nil)
		if err != nil {
			t.Fatal(err)
		}
		res, err := c.HTTPClient().Do(req)
		if err != nil {
			t.Fatalf("call through the gateway: %v", err)
		}
		defer res.Body.Close()
		var body map[string]string
		_ = json.NewDecoder(io.LimitReader(res.Body, 1<<16)).Decode(&body)
		return res.StatusCode, body
	}
	suffix := strconv.Itoa(int(time.Now().UnixNano() % 1e6))

	c1, s1 := device(serves[0], "compose"+suffix)
	if code, body := call(c1); code != http.StatusOK || body["account"] != s1.AccountID || body["device"] != s1.DeviceID {
		t.Fatalf("through the gateway: %d %v, want 200 with %s/%s", code, body, s1.AccountID, s1.DeviceID)
	}

	// Node 1's admin API, with the key deploy/setup.sh printed, signs the
	// device out; the gateway follows through Redis.
	adminKey, err := os.ReadFile(filepath.Join(setupDir, "secrets", "admin.key"))
	if err != nil {
		t.Fatal(err)
	}
	adminAddr, err := n.addr(serves[0], "0.0.0.0", portOf(parsedServe(t, serves[0], d).adminListen))
	if err != nil {
		t.Fatal(err)
	}
	r := runCmd(t, map[string]string{adminKeyEnv: strings.TrimSpace(string(adminKey))},
		"admin", "revoke-device", "--device", s1.DeviceID, "--admin-url", "http://"+adminAddr)
	if r.err != nil {
		t.Fatalf("admin revoke-device on %s: %v %s", serves[0], r.err, r.stderr)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		code, _ := call(c1)
		if code == http.StatusUnauthorized {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the gateway still answers %d for a signed-out device after 10 s", code)
		}
		time.Sleep(100 * time.Millisecond)
	}

	// A token minted by node 2 verifies at the gateway: one ring, one
	// public URL.
	c2, s2 := device(serves[1], "compose2"+suffix)
	if code, body := call(c2); code != http.StatusOK || body["account"] != s2.AccountID {
		t.Fatalf("node 2's token through the gateway: %d %v", code, body)
	}

	plainTr := &http.Transport{}
	defer plainTr.CloseIdleConnections()
	plain := &http.Client{Timeout: 10 * time.Second, Transport: plainTr}

	// Through the edge too: the key set and readiness.
	for _, path := range []string{"/readyz", wellKnownKeys} {
		res, err := plain.Get(publicURL + path)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != http.StatusOK {
			t.Errorf("edge %s: %d", path, res.StatusCode)
		}
	}

	// Prometheus: every target that runs here serves metrics.
	promSvc := d.serviceByImage(t, "prom/prometheus:")
	for name, port := range metricsPorts(t, d) {
		a, err := n.addr(promSvc, name, port)
		if err != nil {
			t.Fatal(err)
		}
		res, err := plain.Get("http://" + a + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(io.LimitReader(res.Body, 4<<20))
		res.Body.Close()
		if res.StatusCode != http.StatusOK || !regexp.MustCompile(`(?m)^(hallpass|upstream)_[a-z_]+_total`).Match(b) {
			t.Errorf("%s:%s/metrics: %d, no hallpass_ or upstream_ counter", name, port, res.StatusCode)
		}
	}

	// Every health check of the file passes, run as the container would:
	// the gateway's probes its /readyz on the ops listener.
	for _, name := range append(slices.Clone(serves), gatewaySvc) {
		runHealthcheck(t, n, name)
	}

	// SIGTERM: every process exits cleanly.
	cancel()
	for _, p := range procs {
		select {
		case err := <-p.done:
			if err != nil {
				t.Errorf("%s exited with %v", p.name, err)
			}
		case <-time.After(20 * time.Second):
			t.Errorf("%s did not stop within 20 s", p.name)
		}
	}
}

// runSetup runs deploy/setup.sh into dir with this test binary as its
// hallpass, and checks what it made.
func runSetup(t *testing.T, dir string) {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	shim := filepath.Join(t.TempDir(), "hallpass")
	script := fmt.Sprintf("#!/bin/sh\n%s=1 exec %q -test.run='^TestComposeCLIHelper$' -- \"$@\"\n", composeCLIEnv, self)
	if err := os.WriteFile(shim, []byte(script), 0o700); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for range 2 { // a second run keeps what the first made
		cmd := exec.CommandContext(ctx, "sh", setupScript)
		cmd.Env = append(os.Environ(), "HALLPASS_DEPLOY_DIR="+dir, "HALLPASS_BIN="+shim)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("deploy/setup.sh: %v\n%s", err, out)
		}
	}
	for _, f := range []string{"secrets/wrap.key", "secrets/rate-limit.key", "secrets/admin-keys", "secrets/admin.key", "data/issuer-1", "data/issuer-2"} {
		fi, err := os.Stat(filepath.Join(dir, f))
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm()&0o077 != 0 {
			t.Errorf("deploy/setup.sh made %s with mode %v", f, fi.Mode().Perm())
		}
	}
}

// healthArgs is a service's compose health check as a hallpass command
// line, addresses rewritten.
func healthArgs(t *testing.T, n *native, name string) []string {
	t.Helper()
	hc := n.d.compose.Services[name].Healthcheck
	if hc == nil || hc.Disable || len(hc.Test) < 3 {
		t.Fatalf("%s has no health check", name)
	}
	return n.args(t, name, hc.Test[2:]) // after CMD and the image's hallpass
}

func runHealthcheck(t *testing.T, n *native, name string) {
	t.Helper()
	r := runCmd(t, nil, healthArgs(t, n, name)...)
	if r.err != nil {
		t.Errorf("%s: health check: %v", name, r.err)
	}
}

// waitHealthy runs the service's health check until it passes.
func waitHealthy(t *testing.T, ctx context.Context, n *native, name string, p *proc) {
	t.Helper()
	args := healthArgs(t, n, name)
	for {
		var b strings.Builder
		err := run(ctx, args, &env{stdout: io.Discard, stderr: &b, getenv: func(string) string { return "" }})
		if err == nil {
			return
		}
		select {
		case perr := <-p.done:
			t.Fatalf("%s exited: %v\n%s", name, perr, p.logs.String())
		case <-ctx.Done():
			t.Fatalf("%s not healthy: %v\n%s", name, err, p.logs.String())
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// waitListening waits until addr accepts connections.
func waitListening(t *testing.T, ctx context.Context, p *proc, addr string) {
	t.Helper()
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return
		}
		select {
		case perr := <-p.done:
			t.Fatalf("%s exited: %v\n%s", p.name, perr, p.logs.String())
		case <-ctx.Done():
			t.Fatalf("%s does not listen on %s\n%s", p.name, addr, p.logs.String())
		case <-time.After(50 * time.Millisecond):
		}
	}
}
