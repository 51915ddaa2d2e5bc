package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/hallpass/hallpass/internal/redistest"
)

// The observability kit: alerting rules, their unit tests, the Grafana
// dashboard and the operator's runbook.
const (
	alertsFile     = repoRoot + "/deploy/prometheus/alerts.yml"
	alertsTestFile = repoRoot + "/deploy/prometheus/alerts_test.yml"
	dashboardFile  = repoRoot + "/deploy/grafana/hallpass.json"
	operationsDoc  = repoRoot + "/docs/operations.md"
)

// alertRule is one rule of alerts.yml.
type alertRule struct {
	Alert       string            `yaml:"alert"`
	Record      string            `yaml:"record"`
	Expr        string            `yaml:"expr"`
	For         string            `yaml:"for"`
	Labels      map[string]string `yaml:"labels"`
	Annotations map[string]string `yaml:"annotations"`
}

func loadAlertRules(t *testing.T) []alertRule {
	t.Helper()
	raw, err := os.ReadFile(alertsFile)
	if err != nil {
		t.Fatal(err)
	}
	var f struct {
		Groups []struct {
			Name  string      `yaml:"name"`
			Rules []alertRule `yaml:"rules"`
		} `yaml:"groups"`
	}
	if err := yaml.Unmarshal(raw, &f); err != nil {
		t.Fatal(err)
	}
	var out []alertRule
	for _, g := range f.Groups {
		out = append(out, g.Rules...)
	}
	if len(out) == 0 {
		t.Fatal("alerts.yml has no rules")
	}
	return out
}

// promtoolPath is promtool, which the tests need: without it they fail.
func promtoolPath(t *testing.T) string {
	t.Helper()
	bin, err := exec.LookPath("promtool")
	if err != nil {
		t.Fatal("promtool is not installed: run `make test-deps` (scripts/ensure-prometheus.sh, Debian package prometheus)")
	}
	return bin
}

// runPromtool runs promtool with args in dir and fails the test on a
// non-zero exit, with its output.
func runPromtool(t *testing.T, dir string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, promtoolPath(t), args...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// markdownAnchors are the anchors GitHub gives the headings of a Markdown
// document: lower case, punctuation but hyphens dropped, spaces to hyphens.
func markdownAnchors(t *testing.T, file string) map[string]bool {
	t.Helper()
	raw, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	drop := regexp.MustCompile(`[^a-z0-9 _-]`)
	out := map[string]bool{}
	inFence := false
	for _, line := range strings.Split(string(raw), "\n") {
		if strings.HasPrefix(line, "```") {
			inFence = !inFence
		}
		if inFence || !strings.HasPrefix(line, "#") {
			continue
		}
		h := strings.TrimSpace(strings.TrimLeft(line, "#"))
		h = drop.ReplaceAllString(strings.ToLower(h), "")
		out[strings.ReplaceAll(h, " ", "-")] = true
	}
	return out
}

// TestAlertRules: promtool accepts alerts.yml and the Prometheus
// configuration that loads it, the unit tests of alerts_test.yml pass (each
// alert fires on a synthetic failure, after its for and not before, and
// stays silent on healthy series), Compose mounts the rules where the
// configuration looks for them, and every alert carries what an operator
// needs: a severity, a summary, a description and a runbook section that
// exists.
func TestAlertRules(t *testing.T) {
	t.Parallel()
	rules := loadAlertRules(t)

	t.Run("promtool check rules", func(t *testing.T) {
		t.Parallel()
		out := runPromtool(t, repoRoot, "check", "rules", "deploy/prometheus/alerts.yml")
		if want := fmt.Sprintf("SUCCESS: %d rules found", len(rules)); !strings.Contains(out, want) {
			t.Fatalf("promtool check rules: want %q\n%s", want, out)
		}
	})

	t.Run("promtool check config", func(t *testing.T) {
		t.Parallel()
		// A relative rule file is read beside the configuration file,
		// here as in the container (/etc/prometheus), so the file is
		// checked as it is, rule files included.
		out := runPromtool(t, repoRoot, "check", "config", "deploy/prometheus/prometheus.yml")
		if !strings.Contains(out, "SUCCESS: 1 rule files found") || !strings.Contains(out, "Checking deploy/prometheus/alerts.yml") {
			t.Fatalf("prometheus.yml does not load alerts.yml:\n%s", out)
		}
	})

	t.Run("promtool test rules", func(t *testing.T) {
		t.Parallel()
		out := runPromtool(t, repoRoot, "test", "rules", "deploy/prometheus/alerts_test.yml")
		if !strings.Contains(out, "SUCCESS") {
			t.Fatalf("promtool test rules:\n%s", out)
		}
	})

	t.Run("compose mounts the rules", func(t *testing.T) {
		checkComposeMountsRules(t)
	})

	t.Run("every alert fires and stays silent in a test", func(t *testing.T) {
		raw, err := os.ReadFile(alertsTestFile)
		if err != nil {
			t.Fatal(err)
		}
		var f struct {
			RuleFiles []string `yaml:"rule_files"`
			Tests     []struct {
				Name  string `yaml:"name"`
				Cases []struct {
					Alertname string `yaml:"alertname"`
					ExpAlerts []any  `yaml:"exp_alerts"`
				} `yaml:"alert_rule_test"`
			} `yaml:"tests"`
		}
		if err := yaml.Unmarshal(raw, &f); err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(f.RuleFiles, []string{"alerts.yml"}) {
			t.Errorf("alerts_test.yml tests %q, want [alerts.yml]", f.RuleFiles)
		}
		fires, silent := map[string]bool{}, map[string]bool{}
		for _, tg := range f.Tests {
			for _, c := range tg.Cases {
				if len(c.ExpAlerts) > 0 {
					fires[c.Alertname] = true
				} else {
					silent[c.Alertname] = true
				}
			}
		}
		for _, r := range rules {
			if !fires[r.Alert] {
				t.Errorf("%s: no test case in which it fires", r.Alert)
			}
			if !silent[r.Alert] {
				t.Errorf("%s: no test case in which it stays silent", r.Alert)
			}
		}
	})

	t.Run("docs/deploy.md lists every alert", func(t *testing.T) {
		raw, err := os.ReadFile(repoRoot + "/docs/deploy.md")
		if err != nil {
			t.Fatal(err)
		}
		listed := map[string]bool{}
		for _, m := range regexp.MustCompile(`(?m)^\| \[(Hallpass\w+)\]\(operations\.md#(\w+)\)`).FindAllStringSubmatch(string(raw), -1) {
			if m[2] != strings.ToLower(m[1]) {
				t.Errorf("docs/deploy.md: %s links to #%s", m[1], m[2])
			}
			listed[m[1]] = true
		}
		for _, r := range rules {
			if !listed[r.Alert] {
				t.Errorf("docs/deploy.md: the alerts table lacks %s", r.Alert)
			}
			delete(listed, r.Alert)
		}
		for name := range listed {
			t.Errorf("docs/deploy.md lists %s, which alerts.yml does not define", name)
		}
	})

	t.Run("labels and annotations", func(t *testing.T) {
		anchors := markdownAnchors(t, operationsDoc)
		seen := map[string]bool{}
		for _, r := range rules {
			if r.Alert == "" {
				t.Errorf("a rule without an alert name (recording rule %q?): keep recording rules out of alerts.yml", r.Record)
				continue
			}
			if seen[r.Alert] {
				t.Errorf("%s: defined twice", r.Alert)
			}
			seen[r.Alert] = true
			if !strings.HasPrefix(r.Alert, "Hallpass") {
				t.Errorf("%s: want the Hallpass prefix", r.Alert)
			}
			if s := r.Labels["severity"]; s != "warning" && s != "critical" {
				t.Errorf("%s: severity %q, want warning or critical", r.Alert, s)
			}
			for _, a := range []string{"summary", "description", "runbook"} {
				if strings.TrimSpace(r.Annotations[a]) == "" {
					t.Errorf("%s: no %s annotation", r.Alert, a)
				}
			}
			want := "docs/operations.md#" + strings.ToLower(r.Alert)
			if rb := r.Annotations["runbook"]; rb != want {
				t.Errorf("%s: runbook %q, want %q", r.Alert, rb, want)
			} else if !anchors[strings.ToLower(r.Alert)] {
				t.Errorf("%s: docs/operations.md has no section %q", r.Alert, r.Alert)
			}
		}
	})
}

// checkComposeMountsRules: every rule file prometheus.yml names is mounted
// into the Prometheus container where the configuration, as the container
// reads it (--config.file), resolves it, from the file beside
// deploy/prometheus/prometheus.yml that promtool checked.
func checkComposeMountsRules(t *testing.T) {
	t.Helper()
	d := loadDeployment(t)
	promSvc := d.serviceByImage(t, "prom/prometheus:")
	svc := d.compose.Services[promSvc]
	configFile := flagValue(svc.Command, "config.file")
	if configFile == "" {
		t.Fatalf("%s: no --config.file", promSvc)
	}
	raw, err := os.ReadFile(prometheusFile)
	if err != nil {
		t.Fatal(err)
	}
	var prom struct {
		RuleFiles []string `yaml:"rule_files"`
	}
	if err := yaml.Unmarshal(raw, &prom); err != nil {
		t.Fatal(err)
	}
	if len(prom.RuleFiles) == 0 {
		t.Fatal("prometheus.yml loads no rule files")
	}
	mounts := map[string]string{} // container path -> source
	for _, v := range svc.Volumes {
		parts := strings.Split(v, ":")
		if len(parts) >= 2 {
			mounts[parts[1]] = parts[0]
		}
	}
	if mounts[configFile] != "./deploy/prometheus/prometheus.yml" {
		t.Fatalf("%s: %s is mounted from %q", promSvc, configFile, mounts[configFile])
	}
	for _, rf := range prom.RuleFiles {
		inContainer := rf
		if !path.IsAbs(rf) {
			inContainer = path.Join(path.Dir(configFile), rf)
		}
		local := "./" + path.Join("deploy/prometheus", rf)
		if path.IsAbs(rf) {
			t.Errorf("rule file %s: an absolute path is not checked here; make it relative to prometheus.yml", rf)
			continue
		}
		if mounts[inContainer] != local {
			t.Errorf("%s: %s (rule file %s) is mounted from %q, want %s", promSvc, inContainer, rf, mounts[inContainer], local)
		}
		if _, err := os.Stat(filepath.Join(repoRoot, local)); err != nil {
			t.Error(err)
		}
	}
}

// dashboard is the part of Grafana's dashboard JSON model the tests read.
type dashboard struct {
	Inputs []struct {
		Name     string `json:"name"`
		Type     string `json:"type"`
		PluginID string `json:"pluginId"`
	} `json:"__inputs"`
	UID        string           `json:"uid"`
	Title      string           `json:"title"`
	Panels     []dashboardPanel `json:"panels"`
	Templating struct {
		List []struct {
			Name       string          `json:"name"`
			Type       string          `json:"type"`
			Datasource *panelDS        `json:"datasource"`
			Query      json.RawMessage `json:"query"`
		} `json:"list"`
	} `json:"templating"`
}

type panelDS struct {
	Type string `json:"type"`
	UID  string `json:"uid"`
}

type dashboardPanel struct {
	ID         int      `json:"id"`
	Type       string   `json:"type"`
	Title      string   `json:"title"`
	Datasource *panelDS `json:"datasource"`
	GridPos    struct {
		H, W, X, Y int
	} `json:"gridPos"`
	Targets []struct {
		RefID      string   `json:"refId"`
		Expr       string   `json:"expr"`
		Datasource *panelDS `json:"datasource"`
	} `json:"targets"`
	Panels []dashboardPanel `json:"panels"` // a collapsed row's
}

func loadDashboard(t *testing.T) *dashboard {
	t.Helper()
	raw, err := os.ReadFile(dashboardFile)
	if err != nil {
		t.Fatal(err)
	}
	dec := json.NewDecoder(strings.NewReader(string(raw)))
	var d dashboard
	if err := dec.Decode(&d); err != nil {
		t.Fatalf("%s: %v", dashboardFile, err)
	}
	if _, err := dec.Token(); err != io.EOF {
		t.Fatalf("%s: data after the dashboard", dashboardFile)
	}
	return &d
}

// panels returns every panel, those of collapsed rows included.
func (d *dashboard) panels() []dashboardPanel {
	var out []dashboardPanel
	var walk func([]dashboardPanel)
	walk = func(ps []dashboardPanel) {
		for _, p := range ps {
			out = append(out, p)
			walk(p.Panels)
		}
	}
	walk(d.Panels)
	return out
}

// grafanaVars are the dashboard's variables as a Prometheus sees them once
// Grafana has substituted them.
var grafanaVars = strings.NewReplacer("$__rate_interval", "5m", "$__range", "1h", "$__interval", "1m", "$instance", ".*")

// exprs are the PromQL expressions of the dashboard, variables
// substituted, by where they are.
func (d *dashboard) exprs() map[string]string {
	out := map[string]string{}
	for _, p := range d.panels() {
		for _, tg := range p.Targets {
			out[fmt.Sprintf("panel %d %q target %s", p.ID, p.Title, tg.RefID)] = grafanaVars.Replace(tg.Expr)
		}
	}
	return out
}

// checkExprs writes the expressions of keys as recording rules and has
// promtool check them; the error carries promtool's output.
func checkExprs(t *testing.T, keys []string, exprs map[string]string) error {
	t.Helper()
	type rule struct {
		Record string `yaml:"record"`
		Expr   string `yaml:"expr"`
	}
	var rs []rule
	for i, k := range keys {
		rs = append(rs, rule{fmt.Sprintf("dashboard:expr_%d", i), exprs[k]})
	}
	b, err := yaml.Marshal(map[string]any{"groups": []any{map[string]any{"name": "dashboard", "rules": rs}}})
	if err != nil {
		t.Fatal(err)
	}
	f := filepath.Join(t.TempDir(), "dashboard-rules.yml")
	if err := os.WriteFile(f, b, 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if out, err := exec.CommandContext(ctx, promtoolPath(t), "check", "rules", f).CombinedOutput(); err != nil {
		return fmt.Errorf("%w\n%s", err, out)
	}
	return nil
}

// dsInput is the dashboard's data source: an input chosen at import.
const dsInput = "${DS_PROMETHEUS}"

// TestGrafanaDashboard: deploy/grafana/hallpass.json is one valid
// dashboard whose panels all query the Prometheus chosen at import
// (${DS_PROMETHEUS}), laid out without overlaps, with expressions
// Prometheus parses (promtool), covering what an operator watches. The
// metric names it uses are checked against real scrapes by
// TestObservabilityMetricsExist.
func TestGrafanaDashboard(t *testing.T) {
	t.Parallel()
	d := loadDashboard(t)
	if d.UID == "" || d.Title == "" {
		t.Errorf("uid %q, title %q: want both", d.UID, d.Title)
	}
	if len(d.Inputs) != 1 || d.Inputs[0].Name != "DS_PROMETHEUS" || d.Inputs[0].Type != "datasource" || d.Inputs[0].PluginID != "prometheus" {
		t.Errorf("__inputs %+v, want one: DS_PROMETHEUS, a prometheus datasource", d.Inputs)
	}
	checkDS := func(where string, ds *panelDS) {
		if ds == nil || ds.Type != "prometheus" || ds.UID != dsInput {
			t.Errorf("%s: datasource %+v, want prometheus %s", where, ds, dsInput)
		}
	}
	for _, v := range d.Templating.List {
		if v.Type == "query" {
			checkDS("variable "+v.Name, v.Datasource)
		}
	}
	ids := map[int]bool{}
	type rect struct {
		title      string
		x, y, w, h int
	}
	var placed []rect
	for _, p := range d.panels() {
		if ids[p.ID] || p.ID == 0 {
			t.Errorf("panel %q: id %d missing or not unique", p.Title, p.ID)
		}
		ids[p.ID] = true
		g := p.GridPos
		if g.W <= 0 || g.H <= 0 || g.X < 0 || g.Y < 0 || g.X+g.W > 24 {
			t.Errorf("panel %q: gridPos %+v outside the 24-column grid", p.Title, g)
		}
		for _, o := range placed {
			if g.X < o.x+o.w && o.x < g.X+g.W && g.Y < o.y+o.h && o.y < g.Y+g.H {
				t.Errorf("panels %q and %q overlap", p.Title, o.title)
			}
		}
		placed = append(placed, rect{p.Title, g.X, g.Y, g.W, g.H})
		if p.Type == "row" {
			continue
		}
		checkDS(fmt.Sprintf("panel %q", p.Title), p.Datasource)
		if len(p.Targets) == 0 {
			t.Errorf("panel %q: no query", p.Title)
		}
		for _, tg := range p.Targets {
			checkDS(fmt.Sprintf("panel %q target %s", p.Title, tg.RefID), tg.Datasource)
			if strings.TrimSpace(tg.Expr) == "" {
				t.Errorf("panel %q target %s: no expr", p.Title, tg.RefID)
			}
		}
	}

	exprs := d.exprs()
	t.Run("what an operator watches", func(t *testing.T) {
		all := strings.Join(slices.Collect(maps.Values(exprs)), "\n")
		for _, name := range []string{
			"hallpass_http_requests_total", "hallpass_http_request_duration_seconds_bucket",
			"hallpass_signups_total", "hallpass_refreshes_total", "hallpass_refresh_reuse_detected_total",
			"hallpass_rate_limited_total", "hallpass_store_operation_duration_seconds_bucket",
			"hallpass_revocation_mirror_age_seconds", "hallpass_key_set_age_seconds",
			"hallpass_gateway_requests_total", "hallpass_gateway_verify_duration_seconds_bucket",
			"hallpass_revocation_write_failures_total", "hallpass_key_ring_rollback_refused_total",
		} {
			if !regexp.MustCompile(`\b` + name + `\b`).MatchString(all) {
				t.Errorf("no panel shows %s", name)
			}
		}
	})

	t.Run("promtool parses every expression", func(t *testing.T) {
		// Each expression as a recording rule: promtool check rules
		// parses it as Prometheus would. All in one file first; on a
		// failure, one by one to name the panel.
		keys := slices.Sorted(maps.Keys(exprs))
		if err := checkExprs(t, keys, exprs); err != nil {
			for _, k := range keys {
				if err := checkExprs(t, []string{k}, exprs); err != nil {
					t.Errorf("%s: %s\n%v", k, exprs[k], err)
				}
			}
			t.Fatalf("promtool check rules on the dashboard's expressions: %v", err)
		}
	})
}

// exposition is the metric families of one scrape: name -> TYPE.
type exposition map[string]string

// scrapeMetrics fetches a /metrics URL in the text format and returns its
// families. A family appears once it has a series: a Vec with no label
// values yet is absent, so the tests drive the code paths first.
func scrapeMetrics(t *testing.T, u string) (exposition, string) {
	t.Helper()
	res, err := http.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil || res.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d %v", u, res.StatusCode, err)
	}
	fams := exposition{}
	for _, line := range strings.Split(string(body), "\n") {
		if f := strings.Fields(line); len(f) == 4 && f[0] == "#" && f[1] == "TYPE" {
			fams[f[2]] = f[3]
		}
	}
	if len(fams) == 0 {
		t.Fatalf("GET %s: no metric families", u)
	}
	return fams, string(body)
}

// lookup says whether a series name is exported and the TYPE of its
// family: the name's own, or that of the histogram whose _bucket, _sum or
// _count it is (family false).
func (e exposition) lookup(name string) (typ string, family, ok bool) {
	if typ, ok := e[name]; ok {
		return typ, true, true
	}
	for _, suf := range []string{"_bucket", "_sum", "_count"} {
		if base, cut := strings.CutSuffix(name, suf); cut {
			if typ := e[base]; typ == "histogram" || (typ == "summary" && suf != "_bucket") {
				return typ, false, true
			}
		}
	}
	return "", false, false
}

var hallpassName = regexp.MustCompile(`\bhallpass_[a-z0-9_]+\b`)

// TestObservabilityMetricsExist: every metric name the alerting rules and
// the dashboard use is on a real scrape of `hallpass serve` (Redis store,
// Redis key ring, admin listener) or `hallpass gateway`, with the type the
// query assumes, after a run that goes down the paths that create their
// series: signups, a refresh, a reused refresh token, a refused DPoP proof,
// a 429, an admin call without a key, requests allowed and refused by the
// gateway. An alert on a name no component exports would never fire.
func TestObservabilityMetricsExist(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	dir := t.TempDir()
	wrap := newWrapKeyFile(t, dir)
	keysFile := filepath.Join(dir, "admin-keys")
	runCmd(t, nil, "admin-key", "new", "--keys-file", keysFile, "--id", "ops")
	// Metrics on the admin listener (--metrics-listen admin, the default).
	rs, adminURL := startServeAdmin(t, nil, "--store", srv.URL(), "--key-ring", "redis", "--wrap-key-file", wrap,
		"--admin-keys-file", keysFile, "--data", filepath.Join(dir, "data"), "--signup-limit-per-ip", "1/h")
	waitReady(t, rs.url)
	up := echoHeaders(t)
	gw, gwOps := startGatewayOps(t, "--keys-url", rs.url+wellKnownKeys, "--upstream", up.URL, "--store", srv.URL())

	// Down the paths that create the series.
	d := newHTTPDevice(t, rs.url, nil)
	d.signup(t, "metrics")
	req, _ := http.NewRequest("GET", rs.url+"/v1/me", nil)
	req.Header.Set("Authorization", "DPoP "+d.access)
	req.Header.Set("DPoP", "not-a-proof")
	if res, err := http.DefaultClient.Do(req); err != nil {
		t.Fatal(err)
	} else if res.Body.Close(); res.StatusCode != http.StatusUnauthorized && res.StatusCode != http.StatusBadRequest {
		t.Fatalf("malformed proof: %d", res.StatusCode)
	}
	if st, _, body := d.call(t, nil, "GET", gw, "/x", nil); st != http.StatusOK {
		t.Fatalf("through the gateway: %d %s", st, body)
	}
	rt0 := d.rt
	d.refresh(t)
	d.refresh(t)
	form := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt0}}.Encode()
	if st, m := d.do(t, "POST", "/v1/token", "application/x-www-form-urlencoded", form, ""); st < 400 || st >= 500 {
		t.Fatalf("reused refresh token: %d %v", st, m)
	}
	// The device was signed out by the reuse; a new one, from the same
	// address, is over the per-address signup budget.
	if st, m := newHTTPDevice(t, rs.url, nil).do(t, "POST", "/v1/accounts", "application/json", `{"username":"second"}`, ""); st != http.StatusTooManyRequests {
		t.Fatalf("second signup from one address: %d %v", st, m)
	}
	if st, _ := httpGet(t, adminURL+"/v1/admin/revocations"); st != http.StatusUnauthorized {
		t.Fatalf("admin call without a key: %d", st)
	}
	// Another key's proof for d's token: refused by the gateway.
	other := newHTTPDevice(t, rs.url, nil)
	other.access = d.access
	if st, _, body := other.call(t, nil, "GET", gw, "/x", nil); st != http.StatusUnauthorized {
		t.Fatalf("gateway, a proof of the wrong key: %d %s", st, body)
	}

	issuer, issuerText := scrapeMetrics(t, adminURL+"/metrics")
	gateway, _ := scrapeMetrics(t, gwOps+"/metrics")
	sources := []struct {
		name string
		exp  exposition
	}{{"hallpass serve", issuer}, {"hallpass gateway", gateway}}

	// The series whose labels the alerts select on: the per-client signup
	// rule the 429 above was counted under matches the alert's pattern.
	for _, r := range loadAlertRules(t) {
		if r.Alert != "HallpassSignupRateLimitSpike" {
			continue
		}
		m := regexp.MustCompile(`rule=~"([^"]+)"`).FindStringSubmatch(r.Expr)
		if m == nil {
			t.Fatalf("%s: no rule=~ selector in %q", r.Alert, r.Expr)
		}
		re := regexp.MustCompile("^(?:" + m[1] + ")$")
		if !re.MatchString("signup_per_ip") || !strings.Contains(issuerText, `hallpass_rate_limited_total{rule="signup_per_ip"}`) {
			t.Errorf("%s selects rule=~%q; the issuer counted the per-address 429 as:\n%s", r.Alert, m[1],
				strings.Join(regexp.MustCompile(`(?m)^hallpass_rate_limited_total.*$`).FindAllString(issuerText, -1), "\n"))
		}
	}

	uses := map[string][]string{} // metric name -> where it is used
	for _, r := range loadAlertRules(t) {
		for _, n := range hallpassName.FindAllString(r.Expr, -1) {
			uses[n] = append(uses[n], "alert "+r.Alert)
		}
	}
	for where, expr := range loadDashboard(t).exprs() {
		for _, n := range hallpassName.FindAllString(expr, -1) {
			uses[n] = append(uses[n], "dashboard "+where)
		}
	}
	if len(uses) == 0 {
		t.Fatal("no hallpass metric names found in the alerts and the dashboard")
	}
	for _, name := range slices.Sorted(maps.Keys(uses)) {
		where := uses[name]
		sort.Strings(where)
		var found []string
		for _, s := range sources {
			typ, family, ok := s.exp.lookup(name)
			if !ok {
				continue
			}
			found = append(found, s.name)
			// What the query assumes of the name.
			switch {
			case strings.HasSuffix(name, "_bucket") && typ != "histogram":
				t.Errorf("%s: a %s on %s, used as a histogram's buckets by %q", name, typ, s.name, where)
			case strings.HasSuffix(name, "_total") && typ != "counter":
				t.Errorf("%s: a %s on %s, used as a counter by %q", name, typ, s.name, where)
			case typ == "histogram" && family:
				t.Errorf("%s: a histogram on %s, used by its bare name by %q", name, s.name, where)
			}
		}
		if len(found) == 0 {
			t.Errorf("%s is used by %q but no component exports it", name, where)
		}
	}
}
