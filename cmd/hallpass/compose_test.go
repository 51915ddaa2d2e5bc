package main

// The deployment files (docker-compose.yml, the Dockerfile, deploy/) are
// checked here against the code they run, since no container engine is
// available to the tests: TestComposeFile reads them and checks every
// hallpass command line and variable against the binary's own flags;
// TestComposeTopology starts the same topology on loopback from those very
// commands, rewriting only addresses, ports and file paths.

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/hallpass/hallpass/deploy/upstream"
)

// The deployment files, from this package's directory.
const (
	repoRoot        = "../.."
	composeFile     = repoRoot + "/docker-compose.yml"
	dockerfile      = repoRoot + "/Dockerfile"
	prometheusFile  = repoRoot + "/deploy/prometheus/prometheus.yml"
	setupScript     = repoRoot + "/deploy/setup.sh"
	socketioMain    = repoRoot + "/socketio/example/main.go"
	hallpassImage   = "hallpass" // the Dockerfile stage of hallpass serve and gateway
	upstreamStage   = "upstream"
	socketioStage   = "socketio"
	composeCLIEnv   = "HALLPASS_COMPOSE_TEST_CLI"
	composeTestTime = 60 * time.Second
)

// composeDoc is the part of docker-compose.yml the tests read. Commands and
// environments must be in list and map form (what the tests can check
// token by token).
type composeDoc struct {
	Services map[string]composeService `yaml:"services"`
	Secrets  map[string]struct {
		File string `yaml:"file"`
	} `yaml:"secrets"`
}

type composeService struct {
	Image string `yaml:"image"`
	Build *struct {
		Context string `yaml:"context"`
		Target  string `yaml:"target"`
	} `yaml:"build"`
	User        string            `yaml:"user"`
	Command     []string          `yaml:"command"`
	Environment map[string]string `yaml:"environment"`
	Secrets     []string          `yaml:"secrets"`
	Ports       []string          `yaml:"ports"`
	Volumes     []string          `yaml:"volumes"`
	NetworkMode string            `yaml:"network_mode"`
	Networks    yaml.Node         `yaml:"networks"`
	DependsOn   map[string]struct {
		Condition string `yaml:"condition"`
	} `yaml:"depends_on"`
	Healthcheck *struct {
		Test    []string `yaml:"test"`
		Disable bool     `yaml:"disable"`
	} `yaml:"healthcheck"`
	ReadOnly bool     `yaml:"read_only"`
	CapDrop  []string `yaml:"cap_drop"`
	Tmpfs    []string `yaml:"tmpfs"`
}

// target is the Dockerfile stage a service runs ("" for a public image).
func (s composeService) target() string {
	if s.Build == nil {
		return ""
	}
	return s.Build.Target
}

// ipv4Addresses are the fixed addresses a service has on its networks.
func (s composeService) ipv4Addresses(t *testing.T) []string {
	t.Helper()
	if s.Networks.Kind != yaml.MappingNode {
		return nil
	}
	var nets map[string]struct {
		IPv4 string `yaml:"ipv4_address"`
	}
	if err := s.Networks.Decode(&nets); err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, n := range nets {
		if n.IPv4 != "" {
			out = append(out, n.IPv4)
		}
	}
	return out
}

// dockerStage is one stage of the Dockerfile.
type dockerStage struct {
	name, from  string
	env         map[string]string // its ENV lines and those of the stage it is built FROM
	user        string
	entrypoint  []string
	cmd         []string
	healthcheck []string // after CMD
	volumes     []string
	runs        []string
}

// deployment is everything the tests read, parsed.
type deployment struct {
	compose  composeDoc
	stages   map[string]*dockerStage
	order    []string // stage names, in file order
	makefile string
}

func loadDeployment(t *testing.T) *deployment {
	t.Helper()
	d := &deployment{stages: map[string]*dockerStage{}}
	raw, err := os.ReadFile(composeFile)
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(raw, &d.compose); err != nil {
		t.Fatalf("docker-compose.yml: %v (commands must be lists, environments maps)", err)
	}
	if len(d.compose.Services) == 0 {
		t.Fatal("docker-compose.yml has no services")
	}
	d.parseDockerfile(t)
	mk, err := os.ReadFile(repoRoot + "/Makefile")
	if err != nil {
		t.Fatal(err)
	}
	d.makefile = string(mk)
	return d
}

// parseDockerfile reads the instructions the tests check: FROM ... AS,
// ENV, USER, ENTRYPOINT, CMD, HEALTHCHECK, VOLUME and RUN.
func (d *deployment) parseDockerfile(t *testing.T) {
	t.Helper()
	raw, err := os.ReadFile(dockerfile)
	if err != nil {
		t.Fatal(err)
	}
	var lines []string
	var cont strings.Builder
	for _, l := range strings.Split(string(raw), "\n") {
		trimmed := strings.TrimSpace(l)
		if cont.Len() == 0 && (trimmed == "" || strings.HasPrefix(trimmed, "#")) {
			continue
		}
		if s, ok := strings.CutSuffix(trimmed, `\`); ok {
			cont.WriteString(s + " ")
			continue
		}
		cont.WriteString(trimmed)
		lines = append(lines, cont.String())
		cont.Reset()
	}
	jsonList := func(s string) []string {
		var v []string
		if err := json.Unmarshal([]byte(s), &v); err != nil {
			t.Fatalf("Dockerfile: %q is not in exec (JSON) form", s)
		}
		return v
	}
	var cur *dockerStage
	for _, l := range lines {
		instr, rest, _ := strings.Cut(l, " ")
		rest = strings.TrimSpace(rest)
		if strings.ToUpper(instr) == "FROM" {
			f := strings.Fields(rest)
			cur = &dockerStage{from: f[0], env: map[string]string{}}
			if len(f) == 3 && strings.EqualFold(f[1], "AS") {
				cur.name = f[2]
			}
			if parent, ok := d.stages[cur.from]; ok {
				for k, v := range parent.env {
					cur.env[k] = v
				}
			}
			d.stages[cur.name] = cur
			d.order = append(d.order, cur.name)
			continue
		}
		if cur == nil {
			continue // ARG before the first FROM
		}
		switch strings.ToUpper(instr) {
		case "ENV":
			for _, kv := range strings.Fields(rest) {
				k, v, ok := strings.Cut(kv, "=")
				if !ok {
					t.Fatalf("Dockerfile: ENV %q: write KEY=VALUE", rest)
				}
				cur.env[k] = v
			}
		case "USER":
			cur.user = rest
		case "ENTRYPOINT":
			cur.entrypoint = jsonList(rest)
		case "CMD":
			cur.cmd = jsonList(rest)
		case "VOLUME":
			cur.volumes = jsonList(rest)
		case "RUN":
			cur.runs = append(cur.runs, rest)
		case "HEALTHCHECK":
			_, c, ok := strings.Cut(rest, " CMD ")
			if !ok {
				t.Fatalf("Dockerfile: HEALTHCHECK %q: want CMD [...]", rest)
			}
			cur.healthcheck = jsonList(strings.TrimSpace(c))
		}
	}
}

// services returns the names of the services that run the Dockerfile
// stage target, sorted.
func (d *deployment) services(target string) []string {
	var out []string
	for name, s := range d.compose.Services {
		if s.target() == target {
			out = append(out, name)
		}
	}
	slices.Sort(out)
	return out
}

// serviceByImage returns the one service whose image starts with prefix.
func (d *deployment) serviceByImage(t *testing.T, prefix string) string {
	t.Helper()
	var found []string
	for name, s := range d.compose.Services {
		if strings.HasPrefix(s.Image, prefix) && s.Build == nil {
			found = append(found, name)
		}
	}
	if len(found) != 1 {
		t.Fatalf("services with image %s*: %q, want one", prefix, found)
	}
	return found[0]
}

// environ is what a service's process sees: the ENV of its image's stage,
// then its compose environment.
func (d *deployment) environ(name string) map[string]string {
	s := d.compose.Services[name]
	env := map[string]string{}
	if st, ok := d.stages[s.target()]; ok {
		for k, v := range st.env {
			env[k] = v
		}
	}
	for k, v := range s.Environment {
		env[k] = v
	}
	return env
}

// helpFlags returns the flags and variables `hallpass CMD -h` lists.
func helpFlags(t *testing.T, cmd ...string) (flags, vars map[string]bool) {
	t.Helper()
	r := runCmd(t, nil, append(cmd, "-h")...)
	if r.err != nil {
		t.Fatalf("hallpass %s -h: %v", strings.Join(cmd, " "), r.err)
	}
	flags, vars = map[string]bool{}, map[string]bool{}
	for _, m := range regexp.MustCompile(`(?m)^  --([a-z0-9-]+)`).FindAllStringSubmatch(r.stdout, -1) {
		flags[m[1]] = true
	}
	for _, m := range regexp.MustCompile(`\[(HALLPASS_[A-Z0-9_]+)\]`).FindAllStringSubmatch(r.stdout, -1) {
		vars[m[1]] = true
	}
	if len(flags) == 0 {
		t.Fatalf("hallpass %s -h lists no flags:\n%s", strings.Join(cmd, " "), r.stdout)
	}
	return flags, vars
}

// flagNames are the names of the flags in args (--name or --name=value).
func flagNames(args []string) []string {
	var out []string
	for _, a := range args {
		if strings.HasPrefix(a, "-") {
			name, _, _ := strings.Cut(strings.TrimLeft(a, "-"), "=")
			out = append(out, name)
		}
	}
	return out
}

// flagValue is the value of --name in args ("" if absent).
func flagValue(args []string, name string) string {
	for i, a := range args {
		for _, p := range []string{"-" + name, "--" + name} {
			if a == p && i+1 < len(args) {
				return args[i+1]
			}
			if v, ok := strings.CutPrefix(a, p+"="); ok {
				return v
			}
		}
	}
	return ""
}

// goFlagNames lists the flags a Go command-line program defines on fs
// (fs.String("name", ...), fs.DurationVar(&v, "name", ...)), read from its
// source: for the socket.io example, which lives in another module.
func goFlagNames(t *testing.T, path string) map[string]bool {
	t.Helper()
	f, err := parser.ParseFile(token.NewFileSet(), path, nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]bool{}
	ast.Inspect(f, func(n ast.Node) bool {
		call, ok := n.(*ast.CallExpr)
		if !ok {
			return true
		}
		sel, ok := call.Fun.(*ast.SelectorExpr)
		if !ok {
			return true
		}
		if x, ok := sel.X.(*ast.Ident); !ok || x.Name != "fs" {
			return true
		}
		arg := 0
		if strings.HasSuffix(sel.Sel.Name, "Var") {
			arg = 1
		}
		if len(call.Args) > arg {
			if lit, ok := call.Args[arg].(*ast.BasicLit); ok && lit.Kind == token.STRING {
				name, _ := strconv.Unquote(lit.Value)
				out[name] = true
			}
		}
		return true
	})
	if len(out) == 0 {
		t.Fatalf("%s: no flags found", path)
	}
	return out
}

// upstreamFlags lists the flags of the example upstream from its -h.
func upstreamFlags(t *testing.T) map[string]bool {
	t.Helper()
	var b bytes.Buffer
	if err := upstream.Run(context.Background(), []string{"-h"}, &b); !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("upstream -h: %v", err)
	}
	out := map[string]bool{}
	for _, m := range regexp.MustCompile(`(?m)^  -([a-z0-9-]+)`).FindAllStringSubmatch(b.String(), -1) {
		out[m[1]] = true
	}
	return out
}

// secretFlags are the flags and variables that name a secret file: their
// values must be Docker secrets, never a file of the image or inline.
var secretFlags = map[string]bool{
	"wrap-key-file": true, "passphrase-file": true, "admin-keys-file": true,
	"dpop-nonce-key-file": true, "rate-limit-key-file": true,
}

// TestComposeFile checks docker-compose.yml, the Dockerfile, the Makefile
// and deploy/prometheus/prometheus.yml against each other and against the
// code: flags and variables exist, secrets come from files, only the edge
// publishes ports, Prometheus scrapes real metrics listeners, the images
// are static and run as a non-root user. Then `docker-compose config -q`
// must accept the file (docker-compose is installed by make test-deps; the
// test fails without it).
func TestComposeFile(t *testing.T) {
	d := loadDeployment(t)
	svcs := d.compose.Services

	t.Run("dockerfile", func(t *testing.T) {
		last := d.stages[d.order[len(d.order)-1]]
		if last.name != hallpassImage {
			t.Errorf("the last (default) stage is %q, want %q", last.name, hallpassImage)
		}
		for _, name := range []string{hallpassImage, upstreamStage, socketioStage} {
			st, ok := d.stages[name]
			if !ok {
				t.Errorf("no stage %q", name)
				continue
			}
			if !strings.Contains(st.from, "distroless/static") && st.from != "scratch" {
				t.Errorf("stage %s is FROM %s, want distroless/static or scratch", name, st.from)
			}
			if u := strings.Split(st.user, ":")[0]; u == "" || u == "0" || u == "root" {
				t.Errorf("stage %s runs as %q, want a non-root user", name, st.user)
			}
			if len(st.entrypoint) != 1 || !strings.HasPrefix(st.entrypoint[0], "/usr/local/bin/") {
				t.Errorf("stage %s: ENTRYPOINT %q, want one binary in /usr/local/bin", name, st.entrypoint)
			}
		}
		hp := d.stages[hallpassImage]
		if hp == nil {
			return
		}
		if !slices.Contains(hp.volumes, "/data") || hp.env["HALLPASS_DATA"] != "/data" {
			t.Errorf("VOLUME %q, HALLPASS_DATA %q: want /data for both", hp.volumes, hp.env["HALLPASS_DATA"])
		}
		// The image's health check is `hallpass health` on the address
		// the image listens on.
		hc := hp.healthcheck
		if len(hc) < 3 || hc[0] != hp.entrypoint[0] || hc[1] != "health" {
			t.Fatalf("HEALTHCHECK %q, want %s health URL", hc, hp.entrypoint)
		}
		checkHallpassArgs(t, "Dockerfile HEALTHCHECK", hc[1:], nil)
		u, err := url.Parse(hc[len(hc)-1])
		if _, port, _ := net.SplitHostPort(hp.env["HALLPASS_LISTEN"]); err != nil || u.Port() != port {
			t.Errorf("HEALTHCHECK probes %s, the image listens on %s", hc[len(hc)-1], hp.env["HALLPASS_LISTEN"])
		}
		checkEnv(t, "Dockerfile", hp.env, "serve")
		// Static and -trimpath: the build stage builds with `make build`,
		// whose recipe says so, and every other go build says so too.
		runs := strings.Join(d.stages["build"].runs, "\n") + "\n" + strings.Join(d.stages["build-socketio"].runs, "\n")
		if !strings.Contains(runs, "make build") {
			t.Errorf("the build stage does not run make build:\n%s", runs)
		}
		for _, m := range regexp.MustCompile(`go (-C \S+ )?build[^&\n]*`).FindAllString(runs, -1) {
			if !strings.Contains(m, "-trimpath") {
				t.Errorf("Dockerfile: %q lacks -trimpath", m)
			}
		}
		if d.stages["build"].env["CGO_ENABLED"] != "0" {
			t.Error("the build stage does not set CGO_ENABLED=0")
		}
		recipe := regexp.MustCompile(`(?m)^build:\n\t(.*)$`).FindStringSubmatch(d.makefile)
		if recipe == nil || !strings.Contains(recipe[1], "CGO_ENABLED=0") || !strings.Contains(recipe[1], "-trimpath") {
			t.Errorf("make build: %q, want CGO_ENABLED=0 and -trimpath", recipe)
		}
	})

	t.Run("hallpass services", func(t *testing.T) {
		var serves []string
		for _, name := range d.services(hallpassImage) {
			s := svcs[name]
			if len(s.Command) == 0 {
				t.Errorf("%s: no command", name)
				continue
			}
			cmd := s.Command[0]
			if cmd != "serve" && cmd != "gateway" {
				t.Errorf("%s: command %q, want serve or gateway", name, cmd)
				continue
			}
			checkHallpassArgs(t, name, s.Command, d.environ(name))
			checkEnv(t, name, s.Environment, cmd)
			checkSecrets(t, d, name)
			if !s.ReadOnly || !slices.Contains(s.CapDrop, "ALL") {
				t.Errorf("%s: want read_only and cap_drop ALL", name)
			}
			if hc := s.Healthcheck; hc != nil && !hc.Disable {
				if len(hc.Test) < 4 || hc.Test[0] != "CMD" || hc.Test[1] != d.stages[hallpassImage].entrypoint[0] || hc.Test[2] != "health" {
					t.Errorf("%s: healthcheck %q, want [CMD, %s, health, ...]", name, hc.Test, d.stages[hallpassImage].entrypoint[0])
				} else {
					checkHallpassArgs(t, name+" healthcheck", hc.Test[2:], nil)
				}
			}
			if cmd == "serve" {
				serves = append(serves, name)
				c := parsedServe(t, name, d)
				if c.keyRing != "redis" || !strings.HasPrefix(c.store, "redis://") {
					t.Errorf("%s: --key-ring %q, store %q: want the redis ring on a redis:// store", name, c.keyRing, c.store)
				}
				if c.prot.wrapKeyFile == "" || c.adminKeysFile == "" {
					t.Errorf("%s: want --wrap-key-file and --admin-keys-file", name)
				}
				if c.guard.metricsListen == metricsOff {
					t.Errorf("%s: metrics off", name)
				}
				checkClientURL(t, name+" --public-url", c.publicURL)
			} else {
				c := parsedGateway(t, name, d)
				checkClientURL(t, name+" --keys-url", c.keysURL)
				checkClientURL(t, name+" --public-url", c.publicURL)
				if c.store == "" {
					t.Errorf("%s: no store: revocations would not reach the gateway", name)
				}
			}
		}
		if len(serves) != 2 {
			t.Errorf("hallpass serve nodes: %q, want two", serves)
		}
		// Every node must mint what the others and the gateway accept.
		var first *serveConfig
		for _, name := range serves {
			c := parsedServe(t, name, d)
			if first != nil && (c.publicURL != first.publicURL || c.store != first.store || c.audience != first.audience) {
				t.Errorf("%s: public URL, audience or store differ from the other node", name)
			}
			first = c
		}
	})

	t.Run("other services", func(t *testing.T) {
		// The edge faces the network: no root process, nothing written
		// but its /tmp, no capability.
		edge := svcs[d.serviceByImage(t, "nginx")] // either image
		if !strings.HasPrefix(edge.Image, "nginxinc/nginx-unprivileged:") || !edge.ReadOnly ||
			!slices.Equal(edge.CapDrop, []string{"ALL"}) || !slices.Equal(edge.Tmpfs, []string{"/tmp"}) {
			t.Errorf("edge: image %s, read_only %v, cap_drop %q, tmpfs %q; want nginx-unprivileged, read-only, ALL dropped, /tmp",
				edge.Image, edge.ReadOnly, edge.CapDrop, edge.Tmpfs)
		}
		redisSvc := d.serviceByImage(t, "redis:")
		if rc := svcs[redisSvc].Command; !slices.Contains(rc, "--appendonly") || flagValue(rc, "appendonly") != "yes" {
			t.Errorf("redis: command %q, want --appendonly yes", rc)
		}
		flags := upstreamFlags(t)
		for _, name := range d.services(upstreamStage) {
			for _, f := range flagNames(svcs[name].Command) {
				if !flags[f] {
					t.Errorf("%s: upstream has no flag --%s", name, f)
				}
			}
		}
		flags = goFlagNames(t, socketioMain)
		for _, name := range d.services(socketioStage) {
			args := svcs[name].Command
			for _, f := range flagNames(args) {
				if !flags[f] {
					t.Errorf("%s: the socket.io example has no flag --%s", name, f)
				}
			}
			checkClientURL(t, name+" --public-url", flagValue(args, "public-url"))
			// It is not started by TestComposeTopology: its issuer and
			// audience must be what the nodes mint.
			for _, node := range d.services(hallpassImage) {
				if svcs[node].Command[0] != "serve" {
					continue
				}
				c := parsedServe(t, node, d)
				aud := c.audience
				if aud == "" {
					aud = c.publicURL
				}
				if flagValue(args, "issuer") != c.publicURL || flagValue(args, "audience") != aud {
					t.Errorf("%s: --issuer %q --audience %q, but %s mints iss %q aud %q", name,
						flagValue(args, "issuer"), flagValue(args, "audience"), node, c.publicURL, aud)
				}
			}
		}
		for name, s := range svcs {
			for dep := range s.DependsOn {
				if _, ok := svcs[dep]; !ok {
					t.Errorf("%s depends on %s, which is not a service", name, dep)
				}
			}
			if owner, ok := strings.CutPrefix(s.NetworkMode, "service:"); ok {
				if _, ok := svcs[owner]; !ok {
					t.Errorf("%s: network_mode %s names no service", name, s.NetworkMode)
				}
			}
			for k := range s.Environment {
				if strings.Contains(k, "PASSWORD") || strings.HasSuffix(k, "_KEY") || strings.HasSuffix(k, "_SECRET") {
					t.Errorf("%s: %s holds a secret inline; mount a secret file", name, k)
				}
			}
			for _, v := range append(slices.Clone(s.Command), mapValues(s.Environment)...) {
				if u, err := url.Parse(v); err == nil && u.User != nil {
					t.Errorf("%s: a URL with credentials in the file: %s", name, u.Redacted())
				}
			}
		}
	})

	t.Run("published ports", func(t *testing.T) {
		published := map[string]bool{}
		for name, s := range svcs {
			for _, p := range s.Ports {
				parts := strings.Split(p, ":")
				if len(parts) != 3 || parts[0] != "127.0.0.1" {
					t.Errorf("%s publishes %q: want 127.0.0.1:HOST:CONTAINER", name, p)
					continue
				}
				published[name+":"+parts[2]] = true
			}
		}
		// The gateway and the issuer's public port, both on the edge (the
		// gateway shares its network namespace).
		gw := d.services(hallpassImage)
		gw = slices.DeleteFunc(gw, func(n string) bool { return svcs[n].Command[0] != "gateway" })
		if len(gw) != 1 {
			t.Fatalf("gateway services %q, want one", gw)
		}
		edge, ok := strings.CutPrefix(svcs[gw[0]].NetworkMode, "service:")
		if !ok {
			t.Fatalf("the gateway has no network_mode service:EDGE")
		}
		_, gwPort, _ := net.SplitHostPort(parsedGateway(t, gw[0], d).listen)
		want := map[string]bool{edge + ":" + gwPort: true, edge + ":" + edgeListenPort(t): true}
		if !mapsEqual(published, want) {
			t.Errorf("published %v, want only %v (the gateway and the issuer's public port)", published, want)
		}
		for _, name := range d.services(hallpassImage) {
			if svcs[name].Command[0] != "serve" {
				continue
			}
			c := parsedServe(t, name, d)
			for _, a := range []string{c.adminListen, c.guard.metricsListen} {
				if _, port, err := net.SplitHostPort(a); err == nil && published[name+":"+port] {
					t.Errorf("%s: %s is published", name, a)
				}
			}
		}
		if _, port, err := net.SplitHostPort(parsedGateway(t, gw[0], d).ops.metricsListen); err != nil || published[edge+":"+port] {
			t.Errorf("%s: the ops listener is off or published (%v)", gw[0], err)
		}
	})

	t.Run("prometheus", func(t *testing.T) {
		raw, err := os.ReadFile(prometheusFile)
		if err != nil {
			t.Fatal(err)
		}
		var prom struct {
			ScrapeConfigs []struct {
				Job           string `yaml:"job_name"`
				StaticConfigs []struct {
					Targets []string `yaml:"targets"`
				} `yaml:"static_configs"`
			} `yaml:"scrape_configs"`
		}
		if err := yaml.Unmarshal(raw, &prom); err != nil {
			t.Fatal(err)
		}
		scraped := map[string]bool{}
		for _, sc := range prom.ScrapeConfigs {
			for _, st := range sc.StaticConfigs {
				for _, target := range st.Targets {
					scraped[target] = true
				}
			}
		}
		promSvc := d.serviceByImage(t, "prom/prometheus:")
		if !slices.ContainsFunc(svcs[promSvc].Volumes, func(v string) bool {
			return strings.HasPrefix(v, "./deploy/prometheus/prometheus.yml:")
		}) {
			t.Errorf("%s does not mount deploy/prometheus/prometheus.yml", promSvc)
		}
		// Every hallpass serve node and the upstream, on their metrics
		// listeners; every target is a service.
		want := map[string]bool{}
		for name, port := range metricsPorts(t, d) {
			want[name+":"+port] = true
		}
		for target := range want {
			if !scraped[target] {
				t.Errorf("prometheus.yml does not scrape %s", target)
			}
		}
		for target := range scraped {
			host, _, err := net.SplitHostPort(target)
			if err != nil || (host != "localhost" && svcs[host].Image == "") {
				t.Errorf("prometheus.yml target %s is not a service", target)
			}
			if svcs[host].Build != nil && !want[target] {
				t.Errorf("prometheus.yml target %s is not a metrics listener of %s", target, host)
			}
		}
	})

	t.Run("dockerignore", func(t *testing.T) {
		checkDockerignore(t)
	})

	t.Run("docker-compose config", func(t *testing.T) {
		bin, err := exec.LookPath("docker-compose")
		if err != nil {
			t.Fatal("docker-compose is not installed: run `make test-deps` (scripts/ensure-compose.sh)")
		}
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		cmd := exec.CommandContext(ctx, bin, "-f", "docker-compose.yml", "config", "-q")
		cmd.Dir = repoRoot
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("docker-compose config -q: %v\n%s", err, out)
		}
	})
}

// checkHallpassArgs checks that every flag of a hallpass command line is
// one of its command's, and that its variables parse: the command line is
// parsed by the binary's own parser (nothing is started).
func checkHallpassArgs(t *testing.T, where string, args []string, environ map[string]string) {
	t.Helper()
	flags, _ := helpFlags(t, args[0])
	for _, f := range flagNames(args[1:]) {
		if !flags[f] {
			t.Errorf("%s: hallpass %s has no flag --%s", where, args[0], f)
		}
	}
	e := &env{stdout: io.Discard, stderr: io.Discard, getenv: func(k string) string { return environ[k] }}
	var err error
	switch args[0] {
	case "serve":
		_, err = parseServeFlags(args[1:], e)
	case "gateway":
		_, err = parseGatewayFlags(args[1:], e)
	case "health":
		fs := newFlagSet(healthDoc, e)
		fs.Duration("timeout", 0, "")
		if err = parseFlags(fs, args[1:]); err == nil && fs.NArg() == 1 {
			_, err = healthURL(fs.Arg(0))
		} else if err == nil {
			err = fmt.Errorf("want one URL, got %q", fs.Args())
		}
	}
	if err != nil {
		t.Errorf("%s: %q does not parse: %v", where, args, err)
	}
}

// checkEnv checks that every HALLPASS_* variable is one `hallpass cmd -h`
// lists: a misspelt variable is silently ignored by the binary.
func checkEnv(t *testing.T, where string, environ map[string]string, cmd string) {
	t.Helper()
	_, vars := helpFlags(t, cmd)
	for k := range environ {
		if strings.HasPrefix(k, "HALLPASS_") && !vars[k] {
			t.Errorf("%s: hallpass %s reads no variable %s", where, cmd, k)
		}
	}
}

// checkSecrets: every secret file a hallpass service names is a Docker
// secret (under /run/secrets, listed by the service, a file under
// deploy/secrets that deploy/setup.sh makes), never a path of the image or a
// value in the file.
func checkSecrets(t *testing.T, d *deployment, name string) {
	t.Helper()
	s := d.compose.Services[name]
	args := s.Command[1:]
	var paths []string
	for f := range secretFlags {
		if v := flagValue(args, f); v != "" {
			paths = append(paths, v)
		}
		if v := d.environ(name)["HALLPASS_"+strings.ToUpper(strings.ReplaceAll(f, "-", "_"))]; v != "" {
			paths = append(paths, v)
		}
	}
	if len(paths) > 0 && !s.ReadOnly {
		t.Errorf("%s: not read_only", name)
	}
	for _, p := range paths {
		secret, ok := strings.CutPrefix(p, "/run/secrets/")
		if !ok || !slices.Contains(s.Secrets, secret) {
			t.Errorf("%s: secret file %s is not one of its Docker secrets %q", name, p, s.Secrets)
			continue
		}
		file := d.compose.Secrets[secret].File
		if !strings.HasPrefix(file, "./deploy/secrets/") {
			t.Errorf("secret %s is %q, want a file under ./deploy/secrets (deploy/setup.sh)", secret, file)
		}
		script, _ := os.ReadFile(setupScript)
		if !strings.Contains(string(script), filepath.Base(file)) {
			t.Errorf("deploy/setup.sh does not make %s", file)
		}
	}
}

// checkClientURL: a URL the binary checks (public URL, key set) must be
// https, or http on a loopback host, in the file itself: the native run
// rewrites every address to loopback and would not notice.
func checkClientURL(t *testing.T, where, s string) {
	t.Helper()
	u, err := url.Parse(s)
	if err != nil || u.Host == "" {
		t.Errorf("%s: %q is not a URL", where, s)
		return
	}
	ip := net.ParseIP(u.Hostname())
	if u.Scheme != "https" && !(u.Scheme == "http" && (u.Hostname() == "localhost" || (ip != nil && ip.IsLoopback()))) {
		t.Errorf("%s: %s is neither https nor http to a loopback host", where, s)
	}
}

func parsedServe(t *testing.T, name string, d *deployment) *serveConfig {
	t.Helper()
	environ := d.environ(name)
	c, err := parseServeFlags(d.compose.Services[name].Command[1:], &env{stdout: io.Discard, stderr: io.Discard, getenv: func(k string) string { return environ[k] }})
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return c
}

func parsedGateway(t *testing.T, name string, d *deployment) *gatewayConfig {
	t.Helper()
	environ := d.environ(name)
	c, err := parseGatewayFlags(d.compose.Services[name].Command[1:], &env{stdout: io.Discard, stderr: io.Discard, getenv: func(k string) string { return environ[k] }})
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return c
}

// metricsPorts are the metrics listeners of the services built here: the
// serve nodes' --metrics-listen (or the admin listener), the gateway's
// (under the name of the service whose network namespace it shares, if
// any) and the upstream's.
func metricsPorts(t *testing.T, d *deployment) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, name := range d.services(hallpassImage) {
		s := d.compose.Services[name]
		if s.Command[0] == "gateway" {
			_, port, err := net.SplitHostPort(parsedGateway(t, name, d).ops.metricsListen)
			if err != nil {
				t.Fatalf("%s: --metrics-listen %q", name, parsedGateway(t, name, d).ops.metricsListen)
			}
			host, shared := strings.CutPrefix(s.NetworkMode, "service:")
			if !shared {
				host = name
			}
			out[host] = port
			continue
		}
		c := parsedServe(t, name, d)
		addr := c.guard.metricsListen
		if addr == metricsOnAdmin {
			addr = c.adminListen
		}
		_, port, err := net.SplitHostPort(addr)
		if err != nil {
			t.Fatalf("%s: metrics on %q", name, addr)
		}
		out[name] = port
	}
	for _, name := range d.services(upstreamStage) {
		if _, port, err := net.SplitHostPort(flagValue(d.compose.Services[name].Command, "metrics-listen")); err == nil {
			out[name] = port
		}
	}
	return out
}

// edgeListenPort is the port of the edge's nginx configuration.
func edgeListenPort(t *testing.T) string {
	t.Helper()
	conf, err := os.ReadFile(edgeConfPath(t))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^\s*listen\s+(\d+);`).FindAllStringSubmatch(string(conf), -1)
	if len(m) != 1 {
		t.Fatalf("edge.conf: %d listen lines, want one", len(m))
	}
	return m[0][1]
}

// edgeConfPath is the nginx configuration the edge service mounts.
func edgeConfPath(t *testing.T) string {
	t.Helper()
	d := loadDeployment(t)
	for _, v := range d.compose.Services[d.serviceByImage(t, "nginxinc/nginx-unprivileged:")].Volumes {
		src, dst, _ := strings.Cut(v, ":")
		if strings.HasPrefix(dst, "/etc/nginx/conf.d/") {
			return filepath.Join(repoRoot, src)
		}
	}
	t.Fatal("the edge mounts no configuration in /etc/nginx/conf.d")
	return ""
}

func mapValues(m map[string]string) []string {
	var out []string
	for _, v := range m {
		out = append(out, v)
	}
	return out
}

func mapsEqual(a, b map[string]bool) bool {
	if len(a) != len(b) {
		return false
	}
	for k := range a {
		if !b[k] {
			return false
		}
	}
	return true
}

// checkDockerignore: the build context keeps every file the images are
// built from and leaves out the secrets and node data deploy/setup.sh
// makes, the repository and local builds.
func checkDockerignore(t *testing.T) {
	t.Helper()
	raw, err := os.ReadFile(repoRoot + "/.dockerignore")
	if err != nil {
		t.Fatal(err)
	}
	var patterns []string
	for _, l := range strings.Split(string(raw), "\n") {
		if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "#") {
			if strings.HasPrefix(l, "!") {
				t.Fatalf(".dockerignore: exceptions (%s) are not understood by this test", l)
			}
			patterns = append(patterns, strings.TrimSuffix(l, "/"))
		}
	}
	ignored := func(rel string) bool {
		parts := strings.Split(rel, "/")
		for _, p := range patterns {
			anywhere, _ := strings.CutPrefix(p, "**/")
			for i := range parts {
				// A pattern matches the path or a directory above it; one
				// starting with **/ matches from any directory.
				for j := i + 1; j <= len(parts); j++ {
					if i > 0 && anywhere == p {
						break
					}
					if ok, _ := filepath.Match(anywhere, strings.Join(parts[i:j], "/")); ok {
						return true
					}
				}
			}
		}
		return false
	}
	for _, rel := range []string{"deploy/secrets/wrap.key", "deploy/data/issuer-1/redis-ring-state.json", ".git/config", "bin/hallpass", "x/y.key", ".env"} {
		if !ignored(rel) {
			t.Errorf(".dockerignore lets %s into the build context", rel)
		}
	}
	err = filepath.WalkDir(repoRoot, func(path string, de os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(repoRoot, path)
		if de.IsDir() {
			if rel == ".git" || de.Name() == "node_modules" {
				return filepath.SkipDir
			}
			return nil
		}
		needed := strings.HasSuffix(rel, ".go") || strings.HasSuffix(rel, "go.mod") || strings.HasSuffix(rel, "go.sum") ||
			rel == "Makefile" || strings.HasPrefix(rel, "docs/")
		if needed && ignored(rel) {
			t.Errorf(".dockerignore leaves %s out of the build context", rel)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
