package httpauth_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/hallpass/hallpass/dpop"
	"github.com/hallpass/hallpass/internal/depcheck"
	"github.com/hallpass/hallpass/keys"
	"github.com/hallpass/hallpass/revocation"
	"github.com/hallpass/hallpass/token"
	"github.com/hallpass/hallpass/verifier"
	"github.com/hallpass/hallpass/verifier/httpauth"
)

const (
	testIss    = "https://id.example.com"
	testAud    = "api.example.com"
	testPublic = "https://api.example.com/base"
)

var testNow = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// fixture: one signing key, a device key, a token for it, and an
// Authenticator whose clocks read *now.
type fixture struct {
	t         testing.TB
	now       time.Time
	sk        *keys.SecretKey
	device    crypto.Signer
	token     string
	claims    *token.Claims
	auth      *httpauth.Authenticator
	logs      *bytes.Buffer
	cfg       httpauth.Config
	vopts     []verifier.Option
	keySource verifier.KeySource
}

func newFixture(t testing.TB, device crypto.Signer, mutate func(*fixture)) *fixture {
	t.Helper()
	f := &fixture{t: t, now: testNow, device: device, logs: new(bytes.Buffer)}
	var err error
	if f.sk, err = keys.GenerateSecretKey(nil); err != nil {
		t.Fatal(err)
	}
	if f.device == nil {
		_, f.device, _ = ed25519.GenerateKey(nil)
	}
	f.token, f.claims = f.mint(f.device, f.now)
	ks, err := verifier.NewStaticKeySet(f.sk.PublicKey())
	if err != nil {
		t.Fatal(err)
	}
	f.keySource = ks
	f.cfg = httpauth.Config{
		PublicURL: testPublic,
		Now:       func() time.Time { return f.now },
		Logger:    slog.New(slog.NewTextHandler(f.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}
	if mutate != nil {
		mutate(f)
	}
	v, err := verifier.New(f.keySource, testIss, testAud, append([]verifier.Option{verifier.WithClock(func() time.Time { return f.now })}, f.vopts...)...)
	if err != nil {
		t.Fatal(err)
	}
	f.cfg.Verifier = v
	if f.auth, err = httpauth.New(f.cfg); err != nil {
		t.Fatal(err)
	}
	return f
}

func (f *fixture) mint(device crypto.Signer, at time.Time) (string, *token.Claims) {
	f.t.Helper()
	jkt, err := dpop.Thumbprint(device.Public())
	if err != nil {
		f.t.Fatal(err)
	}
	m, err := token.NewMinter(token.Config{Issuer: testIss, Audience: testAud, Now: func() time.Time { return at }})
	if err != nil {
		f.t.Fatal(err)
	}
	tok, c, err := m.Mint(f.sk, token.Subject{Account: "acc_1", Device: "dev_1", JKT: jkt})
	if err != nil {
		f.t.Fatal(err)
	}
	return tok, c
}

func (f *fixture) proof(signer crypto.Signer, method, url, tok, nonce string) string {
	f.t.Helper()
	p, err := dpop.NewProofWithOptions(signer, method, url, tok, nonce, dpop.ProofOptions{Now: func() time.Time { return f.now }})
	if err != nil {
		f.t.Fatal(err)
	}
	return p
}

// request is a valid GET /base/things request.
func (f *fixture) request() httpauth.Request {
	return httpauth.Request{
		Method:        "GET",
		Path:          "/things",
		Authorization: "DPoP " + f.token,
		DPoP:          f.proof(f.device, "GET", testPublic+"/things", f.token, ""),
	}
}

func TestAuthenticate(t *testing.T) {
	ecKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	_, otherDevice, _ := ed25519.GenerateKey(nil)

	tests := []struct {
		name     string
		device   crypto.Signer
		mutate   func(*fixture)
		req      func(*fixture) httpauth.Request
		status   int
		code     string
		is       error // in the error chain
		noErrStr bool  // challenge without error=
	}{
		{name: "valid Ed25519", req: (*fixture).request, status: 200},
		{name: "valid ES256", device: ecKey, req: (*fixture).request, status: 200},
		{name: "scheme is case-insensitive", req: func(f *fixture) httpauth.Request {
			r := f.request()
			r.Authorization = "dpop " + f.token
			return r
		}, status: 200},
		{name: "full URL instead of path", req: func(f *fixture) httpauth.Request {
			r := f.request()
			r.Path, r.URL = "", "https://api.example.com/base/things?q=1"
			return r
		}, status: 200},
		{name: "query in path is ignored", req: func(f *fixture) httpauth.Request {
			r := f.request()
			r.DPoP = f.proof(f.device, "GET", testPublic+"/things?x=1", f.token, "")
			return r
		}, status: 200},
		{name: "no Authorization", req: func(f *fixture) httpauth.Request {
			r := f.request()
			r.Authorization = ""
			return r
		}, status: 401, code: "invalid_token", is: httpauth.ErrNoToken, noErrStr: true},
		{name: "Bearer refused by default", req: func(f *fixture) httpauth.Request {
			r := f.request()
			r.Authorization = "Bearer " + f.token
			return r
		}, status: 401, code: "invalid_token", is: httpauth.ErrBearer},
		{name: "Bearer allowed by AllowBearer", mutate: func(f *fixture) { f.cfg.AllowBearer = true }, req: func(f *fixture) httpauth.Request {
			return httpauth.Request{Method: "GET", Path: "/things", Authorization: "Bearer " + f.token}
		}, status: 200},
		{name: "Basic", req: func(f *fixture) httpauth.Request {
			r := f.request()
			r.Authorization = "Basic " + f.token
			return r
		}, status: 401, code: "invalid_token", is: httpauth.ErrAuthorization},
		{name: "no token after scheme", req: func(f *fixture) httpauth.Request {
			r := f.request()
			r.Authorization = "DPoP "
			return r
		}, status: 401, code: "invalid_token", is: httpauth.ErrAuthorization},
		{name: "two tokens", req: func(f *fixture) httpauth.Request {
			r := f.request()
			r.Authorization = "DPoP " + f.token + " " + f.token
			return r
		}, status: 401, code: "invalid_token", is: httpauth.ErrAuthorization},
		{name: "garbage token", req: func(f *fixture) httpauth.Request {
			r := f.request()
			r.Authorization = "DPoP v4.public.AAAA"
			return r
		}, status: 401, code: "invalid_token", is: verifier.ErrTokenInvalid},
		{name: "token of an unknown key", req: func(f *fixture) httpauth.Request {
			r := f.request()
			f.sk, _ = keys.GenerateSecretKey(nil)
			tok, _ := f.mint(f.device, f.now)
			r.Authorization = "DPoP " + tok
			r.DPoP = f.proof(f.device, "GET", testPublic+"/things", tok, "")
			return r
		}, status: 401, code: "invalid_token", is: verifier.ErrUnknownKey},
		{name: "expired token", req: func(f *fixture) httpauth.Request {
			r := f.request()
			f.now = f.claims.Expiry.Add(verifier.DefaultLeeway)
			r.DPoP = f.proof(f.device, "GET", testPublic+"/things", f.token, "")
			return r
		}, status: 401, code: "token_expired", is: verifier.ErrExpired},
		{name: "no proof", req: func(f *fixture) httpauth.Request {
			r := f.request()
			r.DPoP = ""
			return r
		}, status: 401, code: "invalid_dpop_proof", is: httpauth.ErrNoProof},
		{name: "proof of another device", req: func(f *fixture) httpauth.Request {
			r := f.request()
			r.DPoP = f.proof(otherDevice, "GET", testPublic+"/things", f.token, "")
			return r
		}, status: 401, code: "invalid_dpop_proof", is: dpop.ErrKeyMismatch},
		{name: "proof for another token", req: func(f *fixture) httpauth.Request {
			r := f.request()
			tok, _ := f.mint(f.device, f.now.Add(-time.Second))
			r.DPoP = f.proof(f.device, "GET", testPublic+"/things", tok, "")
			return r
		}, status: 401, code: "invalid_dpop_proof", is: dpop.ErrAccessTokenHash},
		{name: "proof without ath", req: func(f *fixture) httpauth.Request {
			r := f.request()
			r.DPoP = f.proof(f.device, "GET", testPublic+"/things", "", "")
			return r
		}, status: 401, code: "invalid_dpop_proof", is: dpop.ErrAccessTokenHash},
		{name: "proof for another method", req: func(f *fixture) httpauth.Request {
			r := f.request()
			r.Method = "POST"
			return r
		}, status: 401, code: "invalid_dpop_proof", is: dpop.ErrMethod},
		{name: "proof for another path", req: func(f *fixture) httpauth.Request {
			r := f.request()
			r.Path = "/admin"
			return r
		}, status: 401, code: "invalid_dpop_proof", is: dpop.ErrURL},
		{name: "proof for the internal URL, not the public one", req: func(f *fixture) httpauth.Request {
			r := f.request()
			r.DPoP = f.proof(f.device, "GET", "http://10.0.0.5:8080/things", f.token, "")
			return r
		}, status: 401, code: "invalid_dpop_proof", is: dpop.ErrURL},
		{name: "stale proof", req: func(f *fixture) httpauth.Request {
			r := f.request()
			f.now = f.now.Add(dpop.DefaultMaxAge + time.Second)
			return r
		}, status: 401, code: "invalid_dpop_proof", is: dpop.ErrTooOld},
		{name: "revoked token", mutate: func(f *fixture) {
			f.vopts = append(f.vopts, verifier.WithRevocation(revokeFunc(func() error { return revocation.ErrRevoked })))
		}, req: (*fixture).request, status: 401, code: "token_revoked", is: revocation.ErrRevoked},
		{name: "stale revocation mirror", mutate: func(f *fixture) {
			f.vopts = append(f.vopts, verifier.WithRevocation(revokeFunc(func() error { return fmt.Errorf("%w: test", revocation.ErrStale) })))
		}, req: (*fixture).request, status: 503, code: "unavailable", is: revocation.ErrStale},
		{name: "revocation check could not decide", mutate: func(f *fixture) {
			f.vopts = append(f.vopts, verifier.WithRevocation(revokeFunc(func() error { return fmt.Errorf("%w: store down", verifier.ErrRevocationUnavailable) })))
		}, req: (*fixture).request, status: 503, code: "unavailable", is: verifier.ErrRevocationUnavailable},
		{name: "key source down", mutate: func(f *fixture) {
			f.keySource = keySourceFunc(func() error { return errors.New("connection refused") })
		}, req: (*fixture).request, status: 503, code: "unavailable", is: verifier.ErrKeySource},
		{name: "replay cache down", mutate: func(f *fixture) {
			f.cfg.Replay = replayFunc(func() (bool, error) { return false, errors.New("redis down") })
		}, req: (*fixture).request, status: 503, code: "unavailable", is: dpop.ErrReplayCheck},
		{name: "path not absolute", req: func(f *fixture) httpauth.Request {
			r := f.request()
			r.Path = "things" // as received: net/http passes "*" on
			return r
		}, status: 400, code: "invalid_request", is: httpauth.ErrPath},
		{name: "neither path nor URL", req: func(f *fixture) httpauth.Request {
			r := f.request()
			r.Path = ""
			return r
		}, status: 500, code: "internal_error", is: httpauth.ErrConfig},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, tt.device, tt.mutate)
			req := tt.req(f)
			c, err := f.auth.Authenticate(context.Background(), req)
			if tt.status == 200 {
				if err != nil {
					t.Fatalf("Authenticate: %v (log: %s)", err, f.logs)
				}
				if c.Subject != "acc_1" || c.Device != "dev_1" {
					t.Fatalf("claims: %+v", c)
				}
				return
			}
			var e *httpauth.Error
			if !errors.As(err, &e) {
				t.Fatalf("err = %v, want *httpauth.Error", err)
			}
			if e.Status != tt.status || e.Code != tt.code {
				t.Fatalf("got %d %s, want %d %s (cause %v)", e.Status, e.Code, tt.status, tt.code, errors.Unwrap(err))
			}
			if tt.is != nil && !errors.Is(err, tt.is) {
				t.Fatalf("err %v does not match %v", err, tt.is)
			}
			if c != nil {
				t.Fatal("claims returned with an error")
			}
			switch ch := e.Challenge(); {
			case e.Status != 401 && ch != "":
				t.Fatalf("challenge on %d", e.Status)
			case e.Status == 401 && tt.noErrStr && ch != `DPoP algs="ES256 EdDSA"`:
				t.Fatalf("challenge %q", ch)
			case e.Status == 401 && !tt.noErrStr && ch != `DPoP error="`+tt.code+`", algs="ES256 EdDSA"`:
				t.Fatalf("challenge %q", ch)
			}
			if (e.Status >= 500) != (e.RequestID != "") {
				t.Fatalf("request id %q on %d", e.RequestID, e.Status)
			}
			// Nothing from the token or proof reaches the log.
			for _, secret := range []string{f.token[len(f.token)-20:], req.DPoP[max(0, len(req.DPoP)-20):]} {
				if secret != "" && strings.Contains(f.logs.String(), secret) {
					t.Fatalf("log quotes the request: %s", f.logs)
				}
			}
		})
	}
}

func TestReplayedProofRefused(t *testing.T) {
	f := newFixture(t, nil, nil)
	req := f.request()
	if _, err := f.auth.Authenticate(context.Background(), req); err != nil {
		t.Fatal(err)
	}
	_, err := f.auth.Authenticate(context.Background(), req)
	if !errors.Is(err, dpop.ErrReplay) || httpCode(err) != "invalid_dpop_proof" {
		t.Fatalf("replay: %v", err)
	}
}

func TestNonce(t *testing.T) {
	key, err := dpop.GenerateNonceKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	var nonces *dpop.NonceSource
	f := newFixture(t, nil, func(f *fixture) {
		nonces, err = dpop.NewNonceSource(key, dpop.NonceOptions{Now: func() time.Time { return f.now }})
		if err != nil {
			t.Fatal(err)
		}
		f.cfg.Nonces = nonces
	})
	_, err = f.auth.Authenticate(context.Background(), f.request())
	var e *httpauth.Error
	if !errors.As(err, &e) || e.Code != "use_dpop_nonce" || e.Status != 401 || e.Nonce == "" {
		t.Fatalf("without nonce: %v", err)
	}
	rec := httptest.NewRecorder()
	httpauth.WriteProblem(rec, err)
	if rec.Header().Get("DPoP-Nonce") != e.Nonce {
		t.Fatal("no DPoP-Nonce header")
	}
	req := f.request()
	req.DPoP = f.proof(f.device, "GET", testPublic+"/things", f.token, e.Nonce)
	if _, err := f.auth.Authenticate(context.Background(), req); err != nil {
		t.Fatalf("with nonce: %v", err)
	}
}

func TestMiddleware(t *testing.T) {
	f := newFixture(t, nil, nil)
	var got *token.Claims
	h := f.auth.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got, _ = httpauth.ClaimsFromContext(r.Context())
		w.WriteHeader(http.StatusNoContent)
	}))
	newReq := func(target string) *http.Request {
		r := httptest.NewRequest("GET", target, nil)
		r.Header.Set("Authorization", "DPoP "+f.token)
		r.Header.Set("DPoP", f.proof(f.device, "GET", testPublic+"/things", f.token, ""))
		// Client-controlled headers must not change the URL the proof is
		// checked against.
		r.Header.Set("X-Forwarded-Host", "evil.example")
		r.Header.Set("X-Forwarded-Proto", "http")
		r.Host = "evil.example"
		return r
	}

	t.Run("accepted", func(t *testing.T) {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, newReq("http://internal:8080/things?a=b"))
		if rec.Code != http.StatusNoContent || got == nil || got.Subject != "acc_1" {
			t.Fatalf("%d %v %s", rec.Code, got, f.logs)
		}
	})

	cases := []struct {
		name   string
		edit   func(r *http.Request)
		status int
		code   string
	}{
		{"two Authorization headers", func(r *http.Request) { r.Header.Add("Authorization", "DPoP "+f.token) }, 401, "invalid_token"},
		{"two DPoP headers", func(r *http.Request) { r.Header.Add("DPoP", r.Header.Get("DPoP")) }, 401, "invalid_dpop_proof"},
		{"token in query string only", func(r *http.Request) {
			r.Header.Del("Authorization")
			r.URL.RawQuery = "access_token=" + f.token
		}, 401, "invalid_token"},
		{"other path", func(r *http.Request) { r.URL.Path = "/other" }, 401, "invalid_dpop_proof"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got = nil
			r := newReq("http://internal:8080/things")
			tc.edit(r)
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, r)
			if got != nil {
				t.Fatal("handler ran")
			}
			if rec.Code != tc.status {
				t.Fatalf("status %d, want %d", rec.Code, tc.status)
			}
			checkProblem(t, rec, tc.status, tc.code)
		})
	}
}

func checkProblem(t *testing.T, rec *httptest.ResponseRecorder, status int, code string) {
	t.Helper()
	if ct := rec.Header().Get("Content-Type"); ct != "application/problem+json" {
		t.Fatalf("Content-Type %q", ct)
	}
	if rec.Header().Get("Cache-Control") != "no-store" {
		t.Fatal("no Cache-Control: no-store")
	}
	var p map[string]any
	if err := json.Unmarshal(rec.Body.Bytes(), &p); err != nil {
		t.Fatal(err)
	}
	if p["code"] != code || p["status"] != float64(status) || p["type"] != "urn:hallpass:problem:"+code || p["title"] == "" || p["detail"] == "" {
		t.Fatalf("problem %v", p)
	}
	if status == 401 && !strings.HasPrefix(rec.Header().Get("WWW-Authenticate"), "DPoP ") {
		t.Fatalf("WWW-Authenticate %q", rec.Header().Get("WWW-Authenticate"))
	}
}

func TestWriteProblem(t *testing.T) {
	t.Run("foreign error is a bare 500", func(t *testing.T) {
		rec := httptest.NewRecorder()
		httpauth.WriteProblem(rec, errors.New("secret detail"))
		checkProblem(t, rec, 500, "internal_error")
		if strings.Contains(rec.Body.String(), "secret") {
			t.Fatal("cause in the response")
		}
	})
	t.Run("503 has request id and Retry-After", func(t *testing.T) {
		f := newFixture(t, nil, func(f *fixture) {
			f.cfg.Replay = replayFunc(func() (bool, error) { return false, errors.New("redis down") })
		})
		_, err := f.auth.Authenticate(context.Background(), f.request())
		rec := httptest.NewRecorder()
		httpauth.WriteProblem(rec, err)
		checkProblem(t, rec, 503, "unavailable")
		var e *httpauth.Error
		errors.As(err, &e)
		if rec.Header().Get("Retry-After") != "1" || !strings.Contains(rec.Body.String(), `"request_id":"`+e.RequestID+`"`) {
			t.Fatalf("%v %s", rec.Header(), rec.Body)
		}
		if !strings.Contains(f.logs.String(), e.RequestID) || !strings.Contains(f.logs.String(), "level=ERROR") {
			t.Fatalf("log: %s", f.logs)
		}
	})
}

func TestNewConfig(t *testing.T) {
	ks, _ := verifier.NewStaticKeySet()
	v, err := verifier.New(ks, testIss, testAud)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		cfg httpauth.Config
		ok  bool
	}{
		{httpauth.Config{Verifier: v, PublicURL: "https://api.example.com"}, true},
		{httpauth.Config{Verifier: v, PublicURL: "https://api.example.com:8443/base/"}, true},
		{httpauth.Config{Verifier: v, PublicURL: "http://127.0.0.1:8080"}, true},
		{httpauth.Config{Verifier: v, PublicURL: "http://localhost"}, true},
		{httpauth.Config{Verifier: v, PublicURL: "http://api.internal", AllowHTTP: true}, true},
		{httpauth.Config{Verifier: v, PublicURL: "http://api.internal"}, false},
		{httpauth.Config{PublicURL: "https://api.example.com"}, false},
		{httpauth.Config{Verifier: v}, false},
		{httpauth.Config{Verifier: v, PublicURL: "api.example.com"}, false},
		{httpauth.Config{Verifier: v, PublicURL: "https://api.example.com?x"}, false},
		{httpauth.Config{Verifier: v, PublicURL: "https://u:p@api.example.com"}, false},
		{httpauth.Config{Verifier: v, PublicURL: "ftp://api.example.com"}, false},
		{httpauth.Config{Verifier: v, PublicURL: "https://api.example.com", MaxProofAge: -1}, false},
	} {
		_, err := httpauth.New(tc.cfg)
		if (err == nil) != tc.ok {
			t.Errorf("New(%q): %v", tc.cfg.PublicURL, err)
		}
		if err != nil && !errors.Is(err, httpauth.ErrConfig) {
			t.Errorf("New(%q): %v, want ErrConfig", tc.cfg.PublicURL, err)
		}
	}
}

func TestClaimsFromContext(t *testing.T) {
	if c, ok := httpauth.ClaimsFromContext(context.Background()); ok || c != nil {
		t.Fatal("claims in an empty context")
	}
	if _, ok := httpauth.ClaimsFromContext(httpauth.ContextWithClaims(context.Background(), nil)); ok {
		t.Fatal("nil claims reported present")
	}
}

// TestDependencies: httpauth serves plain net/http services and the
// gateway; no Echo, no Redis, no JOSE library.
func TestDependencies(t *testing.T) {
	depcheck.Allowed(t, "github.com/hallpass/hallpass/verifier/httpauth", func(dep string) bool {
		if strings.Contains(dep, "labstack/echo") || strings.Contains(dep, "redis") || strings.Contains(dep, "go-jose") {
			return false
		}
		return strings.HasPrefix(dep, "github.com/hallpass/hallpass/") || strings.HasPrefix(dep, "golang.org/x/") || strings.HasPrefix(dep, "aidanwoods.dev/")
	})
}

func httpCode(err error) string {
	var e *httpauth.Error
	if errors.As(err, &e) {
		return e.Code
	}
	return ""
}

type revokeFunc func() error

func (f revokeFunc) CheckRevoked(context.Context, keys.KeyID, *token.Claims) error { return f() }

type keySourceFunc func() error

func (f keySourceFunc) LookupKey(context.Context, keys.KeyID) (keys.PublicKey, error) {
	return keys.PublicKey{}, f()
}

type replayFunc func() (bool, error)

func (f replayFunc) Seen(context.Context, dpop.ReplayKey, time.Time, time.Time) (bool, error) {
	return f()
}

// TestDetailSaysWhatToFix: a refused proof's detail names the failed check,
// and an htu mismatch names the public URL the server is configured with
// (a proof made for http://localhost against a server configured as
// 127.0.0.1 is the usual cause), never anything from the request.
func TestDetailSaysWhatToFix(t *testing.T) {
	tests := []struct {
		name string
		req  func(f *fixture) httpauth.Request
		want string
	}{
		{"htu of another host", func(f *fixture) httpauth.Request {
			r := f.request()
			r.DPoP = f.proof(f.device, "GET", "https://other.example.com/base/things", f.token, "")
			return r
		}, "public URL is " + testPublic},
		{"htm of another method", func(f *fixture) httpauth.Request {
			r := f.request()
			r.DPoP = f.proof(f.device, "POST", testPublic+"/things", f.token, "")
			return r
		}, "htm does not match"},
		{"no proof", func(f *fixture) httpauth.Request {
			r := f.request()
			r.DPoP = ""
			return r
		}, "exactly one DPoP header"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, nil, nil)
			_, err := f.auth.Authenticate(context.Background(), tt.req(f))
			var e *httpauth.Error
			if !errors.As(err, &e) {
				t.Fatalf("err = %v", err)
			}
			if d := e.Problem().Detail; !strings.Contains(d, tt.want) || strings.Contains(d, "other.example.com") {
				t.Fatalf("detail %q, want it to contain %q and nothing from the request", d, tt.want)
			}
		})
	}
}

// TestDotSegmentsInPath: the request path is appended to the public URL's
// base path and the result normalised, so a dot segment in the path could
// climb out of the base: GET /../other on a service at
// https://api.example.com/base matched a proof made for
// https://api.example.com/other (another service on the same host taking
// the same tokens), and the path that reached the handler or upstream was
// not the one the proof named. A path with a dot segment, plain or
// percent-encoded, is refused before the token is looked at.
func TestDotSegmentsInPath(t *testing.T) {
	for _, path := range []string{
		"/../other", "/%2e%2E/other", "/x/../../other", "/./things", "/things/.", "/things/..",
		"/%2E/things", "/x/%2e./../things",
		// Upstreams that decode %2F or read a backslash as a separator
		// before resolving dots see these as the ones above.
		"/x%2F..%2F..%2Fother", "/x%2f%2e%2e%2f..%2fother", "/x%5C..%5C..%5Cother", "/x%5c..%5c..%5cother",
	} {
		t.Run(path, func(t *testing.T) {
			f := newFixture(t, nil, nil)
			r := f.request()
			r.Path = path
			// A proof for what the path normalises to under the base, and
			// one for what it climbs to.
			for _, htu := range []string{"https://api.example.com/other", testPublic + "/things"} {
				r.DPoP = f.proof(f.device, "GET", htu, f.token, "")
				_, err := f.auth.Authenticate(context.Background(), r)
				var e *httpauth.Error
				if !errors.As(err, &e) || e.Status != http.StatusBadRequest || e.Code != httpauth.CodeInvalidRequest || !errors.Is(err, httpauth.ErrPath) {
					t.Fatalf("htu %s: err = %v, want 400 invalid_request (ErrPath)", htu, err)
				}
			}
		})
	}
	// Dots inside a segment are ordinary characters.
	f := newFixture(t, nil, nil)
	r := f.request()
	r.Path = "/a..b/.well-known/x.json"
	r.DPoP = f.proof(f.device, "GET", testPublic+r.Path, f.token, "")
	if _, err := f.auth.Authenticate(context.Background(), r); err != nil {
		t.Fatalf("dots inside segments: %v", err)
	}
}

// TestAsteriskFormTarget: net/http hands "GET * HTTP/1.1" (asterisk form,
// RFC 9112 section 3.2.4, meant for OPTIONS only) to the handler with the
// path "*". With any Authorization header it was answered 500
// internal_error and logged at error level with a request id, as a
// misconfiguration: any client could fill the error log and the 5xx
// alerts. It is the client's malformed request: 400 invalid_request.
func TestAsteriskFormTarget(t *testing.T) {
	f := newFixture(t, nil, nil)
	srv := httptest.NewServer(f.auth.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t.Error("handler ran")
	})))
	t.Cleanup(srv.Close)
	for _, method := range []string{"GET", "POST", "DELETE"} {
		conn, err := net.Dial("tcp", srv.Listener.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(conn, "%s * HTTP/1.1\r\nHost: api.example.com\r\nAuthorization: DPoP %s\r\nDPoP: %s\r\nContent-Length: 0\r\n\r\n",
			method, f.token, f.proof(f.device, method, testPublic+"/things", f.token, ""))
		res, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(res.Body)
		conn.Close()
		if res.StatusCode != http.StatusBadRequest || !strings.Contains(string(body), `"invalid_request"`) {
			t.Fatalf("%s *: status %d: %s", method, res.StatusCode, body)
		}
	}
	if strings.Contains(f.logs.String(), "level=ERROR") {
		t.Fatalf("logged as a server failure:\n%s", f.logs)
	}
}
