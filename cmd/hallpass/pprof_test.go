package main

import (
	"context"
	"errors"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// startServePprof is startServeAdmin with --pprof-listen on a free
// loopback port; it returns the pprof listener's URL too.
func startServePprof(t *testing.T, args ...string) (rs *runningServer, adminURL, pprofURL string) {
	t.Helper()
	admin, prof := make(chan string, 1), make(chan string, 1)
	rs = startServeWith(t, nil, func(c *serveConfig) {
		c.adminBound = func(addr string) { admin <- addr }
		c.pprof.bound = func(addr string) { prof <- addr }
	}, append([]string{"--admin-listen", "127.0.0.1:0", "--pprof-listen", "127.0.0.1:0"}, args...)...)
	return rs, boundURL(t, admin, "admin"), boundURL(t, prof, "pprof")
}

// TestServePprofListen: --pprof-listen serves the profiles on a loopback
// listener of its own, and on no other listener.
func TestServePprofListen(t *testing.T) {
	t.Parallel()
	data := t.TempDir()
	keysFile := filepath.Join(data, "admin-keys")
	runCmd(t, nil, "admin-key", "new", "--keys-file", keysFile, "--id", "ops")
	rs, adminURL, pprofURL := startServePprof(t, "--dev", "--data", data, "--admin-keys-file", keysFile)
	waitReady(t, rs.url)
	for _, tc := range []struct {
		path, want string
	}{
		{"/debug/pprof/", "goroutine"},
		{"/debug/pprof/goroutine?debug=1", "goroutine profile:"},
		{"/debug/pprof/heap?debug=1", "heap profile:"},
		{"/debug/pprof/cmdline", "test"}, // os.Args of this test binary
	} {
		st, body := httpGet(t, pprofURL+tc.path)
		if st != http.StatusOK || !strings.Contains(body, tc.want) {
			t.Errorf("pprof listener %s: %d, want 200 with %q\n%.300s", tc.path, st, tc.want, body)
		}
	}
	// A one-second CPU profile: a gzipped protobuf.
	if st, body := httpGet(t, pprofURL+"/debug/pprof/profile?seconds=1"); st != http.StatusOK || !strings.HasPrefix(body, "\x1f\x8b") {
		t.Errorf("CPU profile: %d, %d bytes", st, len(body))
	}
	// Nothing else on the pprof listener, and no profiles anywhere else.
	for _, u := range []string{pprofURL + "/", pprofURL + "/healthz", pprofURL + "/metrics"} {
		if st, _ := httpGet(t, u); st != http.StatusNotFound {
			t.Errorf("%s: %d, want 404", u, st)
		}
	}
	for _, base := range []string{rs.url, adminURL} {
		for _, p := range []string{"/debug/pprof/", "/debug/pprof/goroutine?debug=1", "/debug/pprof/cmdline"} {
			if st, body := httpGet(t, base+p); st == http.StatusOK || strings.Contains(body, "goroutine") {
				t.Errorf("%s%s: %d: profiles served beside the API", base, p, st)
			}
		}
	}
	if !strings.Contains(rs.logs.String(), "profiles listening") {
		t.Errorf("no log line for the pprof listener:\n%s", rs.logs.String())
	}
}

// TestServePprofOffByDefault: without --pprof-listen there is no pprof
// listener, and the public and admin listeners do not serve profiles.
func TestServePprofOffByDefault(t *testing.T) {
	t.Parallel()
	data := t.TempDir()
	keysFile := filepath.Join(data, "admin-keys")
	runCmd(t, nil, "admin-key", "new", "--keys-file", keysFile)
	c, err := parseServeFlags([]string{"--dev"}, &env{getenv: func(string) string { return "" }})
	if err != nil {
		t.Fatal(err)
	}
	if c.pprof.listen != "" {
		t.Fatalf("--pprof-listen defaults to %q, want off", c.pprof.listen)
	}
	rs, adminURL := startServeAdmin(t, nil, "--dev", "--data", data, "--admin-keys-file", keysFile)
	waitReady(t, rs.url)
	for _, base := range []string{rs.url, adminURL} {
		if st, _ := httpGet(t, base+"/debug/pprof/"); st == http.StatusOK {
			t.Errorf("%s/debug/pprof/: 200 without --pprof-listen", base)
		}
	}
	if strings.Contains(rs.logs.String(), "profiles listening") {
		t.Errorf("a pprof listener without --pprof-listen:\n%s", rs.logs.String())
	}
}

// TestServePprofLoopbackOnly: an address that is not loopback (or all
// interfaces) is refused before anything starts, naming the flag; so is
// one given through HALLPASS_PPROF_LISTEN.
func TestServePprofLoopbackOnly(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		args    []string
		environ map[string]string
	}{
		{"all interfaces", []string{"--pprof-listen", ":6060"}, nil},
		{"0.0.0.0", []string{"--pprof-listen", "0.0.0.0:6060"}, nil},
		{"::", []string{"--pprof-listen", "[::]:6060"}, nil},
		{"private address", []string{"--pprof-listen", "10.0.0.5:6060"}, nil},
		{"public address", []string{"--pprof-listen", "192.0.2.1:6060"}, nil},
		{"a name", []string{"--pprof-listen", "example.com:6060"}, nil},
		{"no port", []string{"--pprof-listen", "127.0.0.1"}, nil},
		{"variable", nil, map[string]string{"HALLPASS_PPROF_LISTEN": "0.0.0.0:6060"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			e := &env{stdin: strings.NewReader(""), stdout: io.Discard, stderr: io.Discard, getenv: func(k string) string { return tc.environ[k] }}
			c, err := parseServeFlags(append([]string{"--dev", "--data", t.TempDir(), "--listen", "127.0.0.1:0"}, tc.args...), e)
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			err = serve(ctx, c, e, nil)
			if !errors.Is(err, errUsage) || !strings.Contains(err.Error(), "--pprof-listen") {
				t.Fatalf("serve: %v, want a usage error naming --pprof-listen", err)
			}
		})
	}
	for _, addr := range []string{"127.0.0.1:0", "[::1]:0", "localhost:0", "127.1.2.3:6060"} {
		p := pprofFlags{listen: addr}
		if err := p.resolve(); err != nil {
			t.Errorf("%s: %v", addr, err)
		}
	}
}
