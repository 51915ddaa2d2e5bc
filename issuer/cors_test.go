package issuer_test

import (
	"net/http"
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
	for _, bad := range [][]string{{"*"}, {"https://game.example/path"}, {"game.example"}, {"https://game.example:443/"}} {
		cfg := e.cfg
		cfg.CORSOrigins = bad
		if _, err := issuer.New(cfg); err == nil {
			t.Errorf("CORSOrigins %q accepted", bad)
		}
	}
}
