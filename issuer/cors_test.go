package issuer_test

import (
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/hallpass/hallpass/issuer"
)

// TestCORS: a configured origin gets a preflight that allows the DPoP and
// Authorization headers and exposes DPoP-Nonce and WWW-Authenticate; any
// other origin gets no CORS headers; credentials are never allowed; a
// wildcard or a URL with a path is refused at start.
func TestCORS(t *testing.T) {
	const page = "http://127.0.0.1:5173"
	e := newEnv(t, &boltBackend{}, func(c *issuer.Config) { c.CORSOrigins = []string{page} })
	preflight := func(origin, method string) resp {
		req, _ := http.NewRequest(http.MethodOptions, e.url(issuer.PathAccounts), nil)
		req.Header.Set("Origin", origin)
		req.Header.Set("Access-Control-Request-Method", method)
		req.Header.Set("Access-Control-Request-Headers", "dpop, content-type, authorization")
		return e.do(req)
	}
	r := preflight(page, http.MethodPost)
	allowHeaders := strings.ToLower(r.header.Get("Access-Control-Allow-Headers"))
	if r.status != http.StatusNoContent || r.header.Get("Access-Control-Allow-Origin") != page ||
		!strings.Contains(allowHeaders, "dpop") || !strings.Contains(allowHeaders, "authorization") {
		t.Fatalf("preflight from the page: %d %v", r.status, r.header)
	}
	if r.header.Get("Access-Control-Allow-Credentials") != "" {
		t.Fatal("credentials allowed")
	}
	if r := preflight("https://evil.example", http.MethodPost); r.header.Get("Access-Control-Allow-Origin") != "" {
		t.Fatalf("preflight from another origin allowed: %v", r.header)
	}
	d := e.newDevice("ES256")
	req := d.signupReq("corsuser")
	req.Header.Set("Origin", page)
	r = e.do(req)
	expose := r.header.Get("Access-Control-Expose-Headers")
	if r.status != http.StatusCreated || r.header.Get("Access-Control-Allow-Origin") != page || !strings.Contains(expose, "DPoP-Nonce") || !strings.Contains(expose, "WWW-Authenticate") {
		t.Fatalf("signup from the page: %d %v", r.status, r.header)
	}
	base := e.cfg
	base.PublicURL = e.hs.URL
	base.Refresh = mustCodec(t, e)
	if _, err := issuer.New(base); err != nil { // so that a refusal below is the origin's
		t.Fatalf("base config: %v", err)
	}
	for _, bad := range [][]string{{"*"}, {"https://game.example/path"}, {"game.example"}, {"https://game.example:443/"}} {
		cfg := base
		cfg.CORSOrigins = bad
		if _, err := issuer.New(cfg); err == nil {
			t.Errorf("CORSOrigins %q accepted", bad)
		}
	}
}

// TestCORSOriginsRefuseWildcards: Echo's CORS middleware reads '*' in an
// allowed origin as a wildcard ("https://*" allows every https page,
// "https://*.game.example" every subdomain), so an origin with '*' must
// be refused at start, as the other wildcards are; exact origins still
// match exactly (a subdomain, another scheme or port gets no CORS header).
func TestCORSOriginsRefuseWildcards(t *testing.T) {
	const page = "https://game.example"
	e := newEnv(t, &boltBackend{}, func(c *issuer.Config) { c.CORSOrigins = []string{page} })
	refused := []struct {
		name   string
		origin string
	}{
		{name: "any https origin", origin: "https://*"},
		{name: "subdomain wildcard", origin: "https://*.game.example"},
		{name: "wildcard label inside", origin: "https://game.*.example"},
		{name: "wildcard port", origin: "https://game.example:*"},
		{name: "bare wildcard", origin: "*"},
	}
	base := e.cfg
	base.PublicURL = e.hs.URL
	base.Refresh = mustCodec(t, e)
	if _, err := issuer.New(base); err != nil { // so that a refusal below is the origin's
		t.Fatalf("base config: %v", err)
	}
	for _, tc := range refused {
		t.Run(tc.name, func(t *testing.T) {
			cfg := base
			cfg.CORSOrigins = []string{page, tc.origin}
			if _, err := issuer.New(cfg); err == nil {
				t.Fatalf("CORSOrigins with %q accepted", tc.origin)
			}
		})
	}
	preflight := []struct {
		name   string
		origin string
		allow  bool
	}{
		{name: "the page", origin: page, allow: true},
		{name: "a subdomain", origin: "https://evil.game.example"},
		{name: "a suffix", origin: "https://game.example.evil"},
		{name: "http", origin: "http://game.example"},
		{name: "another port", origin: "https://game.example:8443"},
		{name: "null", origin: "null"},
	}
	for _, tc := range preflight {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodOptions, e.url(issuer.PathAccounts), nil)
			req.Header.Set("Origin", tc.origin)
			req.Header.Set("Access-Control-Request-Method", http.MethodPost)
			r := e.do(req)
			got := r.header.Get("Access-Control-Allow-Origin")
			if want := map[bool]string{true: tc.origin}[tc.allow]; got != want {
				t.Fatalf("Access-Control-Allow-Origin %q, want %q", got, want)
			}
			if !slices.Contains(r.header.Values("Vary"), "Origin") {
				t.Fatalf("no Vary: Origin: %v", r.header)
			}
		})
	}
}
