package issuer_test

import (
	"bytes"
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/hallpass/hallpass/dpop"
	"github.com/hallpass/hallpass/issuer"
	"github.com/hallpass/hallpass/keys"
	"github.com/hallpass/hallpass/token"
)

// TestBadInput sends malformed or hostile requests to every endpoint: each
// must get its documented 4xx status and code as problem+json, and never a
// 5xx.
func TestBadInput(t *testing.T) {
	e := newEnv(t, &boltBackend{})
	d := e.newDevice("EdDSA")
	d.signup("holder")
	taken := "holder"

	jsonReq := func(method, path, ct, body string) *http.Request {
		req, _ := http.NewRequest(method, e.url(path), strings.NewReader(body))
		if ct != "" {
			req.Header.Set("Content-Type", ct)
		}
		return req
	}
	signup := func(body string) func() *http.Request {
		return func() *http.Request {
			req := jsonReq(http.MethodPost, issuer.PathAccounts, "application/json", body)
			req.Header.Set("DPoP", e.newDevice("EdDSA").proof(http.MethodPost, issuer.PathAccounts, ""))
			return req
		}
	}
	signupName := func(name string) func() *http.Request {
		return signup(`{"username":` + quote(name) + `}`)
	}
	withProof := func(req *http.Request, proof string) *http.Request {
		req.Header.Set("DPoP", proof)
		return req
	}
	other := e.newDevice("ES256")
	tokenForm := func(form string) func() *http.Request {
		return func() *http.Request {
			return withProof(jsonReq(http.MethodPost, issuer.PathToken, "application/x-www-form-urlencoded", form),
				d.proof(http.MethodPost, issuer.PathToken, ""))
		}
	}
	me := func(authz, proof string) func() *http.Request {
		return func() *http.Request {
			req, _ := http.NewRequest(http.MethodGet, e.url(issuer.PathMe), nil)
			if authz != "" {
				req.Header.Set("Authorization", authz)
			}
			if proof != "" {
				req.Header.Set("DPoP", proof)
			}
			return req
		}
	}
	meWith := func(tok string) func() *http.Request {
		return func() *http.Request { return d.authReq(http.MethodGet, issuer.PathMe, tok) }
	}

	// A token for this device from another issuer (other key ring), and
	// one signed by this issuer's key but naming another issuer.
	otherRing, _ := keys.NewRing(nil, time.Now())
	foreign := mintWith(t, otherRing.Current(), "https://other.example", e.hs.URL, d)
	wrongIss := mintWith(t, e.ring.Current(), "https://other.example", e.hs.URL, d)
	wrongAud := mintWith(t, e.ring.Current(), e.hs.URL, "https://api.other.example", d)
	e.remember(foreign, wrongIss, wrongAud)

	// A proof that has been accepted once.
	usedSignup := e.newDevice("EdDSA")
	okReq := usedSignup.signupReq("first_use")
	replayedSignupProof := okReq.Header.Get("DPoP")
	if r := e.do(okReq); r.status != http.StatusCreated {
		t.Fatalf("signup: %d %s", r.status, r.body)
	}
	meReq := d.authReq(http.MethodGet, issuer.PathMe, d.access)
	replayedMeProof := meReq.Header.Get("DPoP")
	if r := e.do(meReq); r.status != http.StatusOK {
		t.Fatalf("me: %d %s", r.status, r.body)
	}

	big := `{"username":"` + strings.Repeat("a", 17<<10) + `"}`
	cases := []struct {
		name   string
		req    func() *http.Request
		status int
		code   string
	}{
		// POST /v1/accounts
		{"signup malformed JSON", signup(`{"username":`), 400, "invalid_request"},
		{"signup JSON array", signup(`["alice"]`), 400, "invalid_request"},
		{"signup trailing data", signup(`{"username":"alice1"} {}`), 400, "invalid_request"},
		{"signup unknown member", signup(`{"username":"alice2","admin":"true"}`), 400, "invalid_request"},
		{"signup duplicate member", signup(`{"username":"alice3","username":"admin"}`), 400, "invalid_request"},
		{"signup username not a string", signup(`{"username":42}`), 400, "invalid_request"},
		{"signup username missing", signup(`{"device_name":"x"}`), 400, "invalid_request"},
		{"signup invalid UTF-8", signup("{\"username\":\"ab\xff\"}"), 400, "invalid_request"},
		{"signup empty body", signup(``), 400, "invalid_request"},
		{"signup wrong content type", func() *http.Request {
			return withProof(jsonReq(http.MethodPost, issuer.PathAccounts, "text/plain", `{"username":"alice4"}`), d.proof(http.MethodPost, issuer.PathAccounts, ""))
		}, 415, "unsupported_media_type"},
		{"signup no content type", func() *http.Request {
			return withProof(jsonReq(http.MethodPost, issuer.PathAccounts, "", `{"username":"alice5"}`), d.proof(http.MethodPost, issuer.PathAccounts, ""))
		}, 415, "unsupported_media_type"},
		{"signup form body", func() *http.Request {
			return withProof(jsonReq(http.MethodPost, issuer.PathAccounts, "application/x-www-form-urlencoded", `username=alice6`), d.proof(http.MethodPost, issuer.PathAccounts, ""))
		}, 415, "unsupported_media_type"},
		{"signup oversized body", signup(big), 413, "request_too_large"},
		{"signup oversized body, chunked", func() *http.Request {
			req := signup(big)()
			req.ContentLength = -1
			req.Body = readerOnly(strings.NewReader(big))
			return req
		}, 413, "request_too_large"},
		{"username empty", signupName(""), 400, "username_invalid"},
		{"username too short", signupName("ab"), 400, "username_invalid"},
		{"username too long", signupName(strings.Repeat("a", 33)), 400, "username_invalid"},
		{"username huge", signupName(strings.Repeat("a", 4000)), 400, "username_invalid"},
		{"username control character", signupName("ab\x01cd"), 400, "username_invalid"},
		{"username newline", signupName("abc\ndef"), 400, "username_invalid"},
		{"username NUL", signupName("abc\x00def"), 400, "username_invalid"},
		{"username bidi override", signupName("abc\u202Edef"), 400, "username_invalid"},
		{"username zero-width joiner", signupName("abc\u200Ddef"), 400, "username_invalid"},
		{"username space", signupName("abc def"), 400, "username_invalid"},
		{"username mixed scripts", signupName("pаypal"), 400, "username_invalid"}, // Cyrillic а
		{"username leading punctuation", signupName(".alice"), 400, "username_invalid"},
		{"username reserved", signupName("admin"), 400, "username_invalid"},
		{"username reserved, other case", signupName("ADMIN"), 400, "username_invalid"},
		{"username reserved, full width", signupName("ａｄｍｉｎ"), 400, "username_invalid"},
		{"username taken", signupName(taken), 409, "username_taken"},
		{"username taken, other case", signupName(strings.ToUpper(taken)), 409, "username_taken"},
		{"device_name control character", signup(`{"username":"alice7","device_name":"my\u0007phone"}`), 400, "invalid_request"},
		{"device_name bidi override", signup(`{"username":"alice8","device_name":"my\u202ephone"}`), 400, "invalid_request"},
		{"device_name too long", signup(`{"username":"alice9","device_name":"` + strings.Repeat("x", 65) + `"}`), 400, "invalid_request"},
		{"signup no proof", func() *http.Request {
			return jsonReq(http.MethodPost, issuer.PathAccounts, "application/json", `{"username":"alice10"}`)
		}, 400, "invalid_dpop_proof"},
		{"signup garbage proof", func() *http.Request {
			return withProof(jsonReq(http.MethodPost, issuer.PathAccounts, "application/json", `{"username":"alice11"}`), "not.a.proof")
		}, 400, "invalid_dpop_proof"},
		{"signup two proofs", func() *http.Request {
			req := signup(`{"username":"alice12"}`)()
			req.Header.Add("DPoP", d.proof(http.MethodPost, issuer.PathAccounts, ""))
			return req
		}, 400, "invalid_dpop_proof"},
		{"signup replayed proof", func() *http.Request {
			return withProof(jsonReq(http.MethodPost, issuer.PathAccounts, "application/json", `{"username":"alice13"}`), replayedSignupProof)
		}, 400, "invalid_dpop_proof"},
		{"signup proof for another URL", func() *http.Request {
			return withProof(jsonReq(http.MethodPost, issuer.PathAccounts, "application/json", `{"username":"alice14"}`), d.proof(http.MethodPost, issuer.PathToken, ""))
		}, 400, "invalid_dpop_proof"},
		{"signup proof for another host", func() *http.Request {
			p, _ := dpop.NewProof(d.key, http.MethodPost, "https://evil.example"+issuer.PathAccounts, "", "")
			e.remember(p)
			return withProof(jsonReq(http.MethodPost, issuer.PathAccounts, "application/json", `{"username":"alice15"}`), p)
		}, 400, "invalid_dpop_proof"},
		{"signup proof for another method", func() *http.Request {
			return withProof(jsonReq(http.MethodPost, issuer.PathAccounts, "application/json", `{"username":"alice16"}`), d.proof(http.MethodGet, issuer.PathAccounts, ""))
		}, 400, "invalid_dpop_proof"},
		{"signup stale proof", func() *http.Request {
			p, _ := dpop.NewProofWithOptions(d.key, http.MethodPost, e.url(issuer.PathAccounts), "", "", dpop.ProofOptions{Now: func() time.Time { return e.clock.Now().Add(-5 * time.Minute) }})
			e.remember(p)
			return withProof(jsonReq(http.MethodPost, issuer.PathAccounts, "application/json", `{"username":"alice17"}`), p)
		}, 400, "invalid_dpop_proof"},
		{"signup GET", func() *http.Request { return jsonReq(http.MethodGet, issuer.PathAccounts, "", "") }, 405, "method_not_allowed"},

		// POST /v1/token
		{"token no grant_type", tokenForm("refresh_token=" + url.QueryEscape(d.rt)), 400, "invalid_request"},
		{"token password grant", tokenForm("grant_type=password&username=a&password=b"), 400, "unsupported_grant_type"},
		{"token client_credentials grant", tokenForm("grant_type=client_credentials"), 400, "unsupported_grant_type"},
		{"token no refresh_token", tokenForm("grant_type=refresh_token"), 400, "invalid_request"},
		{"token duplicate parameter", tokenForm("grant_type=refresh_token&grant_type=refresh_token&refresh_token=x"), 400, "invalid_request"},
		{"token bad form encoding", tokenForm("grant_type=refresh_token&refresh_token=%zz"), 400, "invalid_request"},
		{"token garbage refresh token", tokenForm("grant_type=refresh_token&refresh_token=v4.local.garbage"), 400, "invalid_grant"},
		{"token huge refresh token", tokenForm("grant_type=refresh_token&refresh_token=" + strings.Repeat("A", 4000)), 400, "invalid_grant"},
		{"token access token as refresh token", tokenForm("grant_type=refresh_token&refresh_token=" + url.QueryEscape(d.access)), 400, "invalid_grant"},
		{"token malformed JSON", func() *http.Request {
			return withProof(jsonReq(http.MethodPost, issuer.PathToken, "application/json", `{"grant_type":`), d.proof(http.MethodPost, issuer.PathToken, ""))
		}, 400, "invalid_request"},
		{"token JSON number", func() *http.Request {
			return withProof(jsonReq(http.MethodPost, issuer.PathToken, "application/json", `{"grant_type":"refresh_token","refresh_token":1}`), d.proof(http.MethodPost, issuer.PathToken, ""))
		}, 400, "invalid_request"},
		{"token wrong content type", func() *http.Request {
			return withProof(jsonReq(http.MethodPost, issuer.PathToken, "text/plain", "grant_type=refresh_token"), d.proof(http.MethodPost, issuer.PathToken, ""))
		}, 415, "unsupported_media_type"},
		{"token oversized body", func() *http.Request {
			return withProof(jsonReq(http.MethodPost, issuer.PathToken, "application/x-www-form-urlencoded", "grant_type=refresh_token&refresh_token="+strings.Repeat("A", 20<<10)), d.proof(http.MethodPost, issuer.PathToken, ""))
		}, 413, "request_too_large"},
		{"token no proof", func() *http.Request {
			return jsonReq(http.MethodPost, issuer.PathToken, "application/x-www-form-urlencoded", "grant_type=refresh_token&refresh_token="+url.QueryEscape(d.rt))
		}, 400, "invalid_dpop_proof"},
		{"token proof for another URL", func() *http.Request {
			return withProof(jsonReq(http.MethodPost, issuer.PathToken, "application/x-www-form-urlencoded", "grant_type=refresh_token&refresh_token="+url.QueryEscape(d.rt)), d.proof(http.MethodPost, issuer.PathAccounts, ""))
		}, 400, "invalid_dpop_proof"},
		{"token proof with another key", func() *http.Request {
			return withProof(jsonReq(http.MethodPost, issuer.PathToken, "application/x-www-form-urlencoded", "grant_type=refresh_token&refresh_token="+url.QueryEscape(d.rt)), other.proof(http.MethodPost, issuer.PathToken, ""))
		}, 400, "invalid_grant"},
		{"token GET", func() *http.Request { return jsonReq(http.MethodGet, issuer.PathToken, "", "") }, 405, "method_not_allowed"},

		// GET /v1/me
		{"me no credentials", me("", ""), 401, "invalid_token"},
		{"me Bearer scheme", me("Bearer "+d.access, d.proof(http.MethodGet, issuer.PathMe, d.access)), 401, "invalid_token"},
		{"me Basic scheme", me("Basic dXNlcjpwYXNz", ""), 401, "invalid_token"},
		{"me empty token", me("DPoP ", d.proof(http.MethodGet, issuer.PathMe, "")), 401, "invalid_token"},
		{"me garbage token", meWith("v4.public.garbage"), 401, "invalid_token"},
		{"me refresh token as access token", meWith(d.rt), 401, "invalid_token"},
		{"me oversized token", meWith("v4.public." + strings.Repeat("A", 5000)), 401, "invalid_token"},
		{"me token of another issuer", meWith(foreign), 401, "invalid_token"},
		{"me token naming another issuer", meWith(wrongIss), 401, "invalid_token"},
		{"me token for another audience", meWith(wrongAud), 401, "invalid_token"},
		{"me no proof", me("DPoP "+d.access, ""), 401, "invalid_dpop_proof"},
		{"me proof without ath", me("DPoP "+d.access, d.proof(http.MethodGet, issuer.PathMe, "")), 401, "invalid_dpop_proof"},
		{"me proof for another URL", me("DPoP "+d.access, d.proof(http.MethodGet, issuer.PathLogout, d.access)), 401, "invalid_dpop_proof"},
		{"me proof for another method", me("DPoP "+d.access, d.proof(http.MethodPost, issuer.PathMe, d.access)), 401, "invalid_dpop_proof"},
		{"me proof by another key", me("DPoP "+d.access, other.proof(http.MethodGet, issuer.PathMe, d.access)), 401, "invalid_dpop_proof"},
		{"me replayed proof", me("DPoP "+d.access, replayedMeProof), 401, "invalid_dpop_proof"},
		{"me POST", func() *http.Request { return d.authReq(http.MethodPost, issuer.PathMe, d.access) }, 405, "method_not_allowed"},

		// POST /v1/logout
		{"logout no credentials", func() *http.Request { return jsonReq(http.MethodPost, issuer.PathLogout, "", "") }, 401, "invalid_token"},
		{"logout proof for /v1/me", func() *http.Request {
			req := d.authReq(http.MethodPost, issuer.PathLogout, d.access)
			req.Header.Set("DPoP", d.proof(http.MethodGet, issuer.PathMe, d.access))
			return req
		}, 401, "invalid_dpop_proof"},
		{"logout oversized body", func() *http.Request {
			req := d.authReq(http.MethodPost, issuer.PathLogout, d.access)
			req.Body = readerOnly(strings.NewReader(strings.Repeat("x", 20<<10)))
			req.ContentLength = 20 << 10
			return req
		}, 413, "request_too_large"},
		{"logout GET", func() *http.Request { return jsonReq(http.MethodGet, issuer.PathLogout, "", "") }, 405, "method_not_allowed"},

		// Others
		{"keys POST", func() *http.Request { return jsonReq(http.MethodPost, issuer.PathKeys, "application/json", "{}") }, 405, "method_not_allowed"},
		{"unknown path", func() *http.Request { return jsonReq(http.MethodGet, "/v1/admin", "", "") }, 404, "not_found"},
		{"path traversal", func() *http.Request { return jsonReq(http.MethodGet, "/v1/../etc/passwd", "", "") }, 404, "not_found"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := e.do(tc.req())
			if r.status >= 500 {
				t.Fatalf("server error %d: %s", r.status, r.body)
			}
			if r.status != tc.status {
				t.Fatalf("status %d, want %d; body %s", r.status, tc.status, r.body)
			}
			if got := r.code(t); got != tc.code {
				t.Fatalf("code %q, want %q", got, tc.code)
			}
			p := r.json(t)
			if p["status"].(float64) != float64(tc.status) || p["type"] != "urn:hallpass:problem:"+tc.code || p["title"] == "" || p["detail"] == "" {
				t.Errorf("problem document %s", r.body)
			}
			if _, ok := p["request_id"]; ok {
				t.Errorf("request_id on a 4xx: %s", r.body)
			}
			if r.header.Get("X-Request-Id") == "" {
				t.Error("no X-Request-Id")
			}
			if tc.status == 401 {
				wa := r.header.Get("WWW-Authenticate")
				if !strings.HasPrefix(wa, "DPoP ") || !strings.Contains(wa, `algs="ES256 EdDSA"`) {
					t.Errorf("WWW-Authenticate %q", wa)
				}
				if tc.name != "me no credentials" && tc.name != "logout no credentials" && !strings.Contains(wa, `error="`+tc.code+`"`) {
					t.Errorf("WWW-Authenticate %q lacks the error", wa)
				}
			}
			if bytes.Contains(r.body, []byte("v4.")) {
				t.Errorf("response echoes a token: %s", r.body)
			}
		})
	}
	// The holder's session was never touched by any of it.
	sess, err := e.store.GetSession(context.Background(), d.devID)
	if err != nil || sess.Counter != 0 || !sess.Ended.IsZero() {
		t.Fatalf("session after the bad inputs: %+v %v", sess, err)
	}
	d.refresh()
	checkMe(t, d)
}

// TestTokenExpiry uses the injected clock: an access token past exp (plus
// leeway) is token_expired; a refresh token past the session's absolute
// lifetime is invalid_grant.
func TestTokenExpiry(t *testing.T) {
	e := newEnv(t, &boltBackend{})
	d := e.newDevice("EdDSA")
	d.signup("sleeper")
	e.clock.Advance(10*time.Minute + 31*time.Second)
	r := d.me()
	if r.status != http.StatusUnauthorized || r.code(t) != "token_expired" {
		t.Fatalf("expired token: %d %s", r.status, r.body)
	}
	if wa := r.header.Get("WWW-Authenticate"); !strings.Contains(wa, `error="token_expired"`) {
		t.Errorf("WWW-Authenticate %q", wa)
	}
	d.refresh()
	checkMe(t, d)

	// Idle longer than RefreshIdle (30 days): refused.
	e.clock.Advance(31 * 24 * time.Hour)
	if r := d.refreshWith(d.rt); r.status != http.StatusBadRequest || r.code(t) != "invalid_grant" {
		t.Fatalf("idle session: %d %s", r.status, r.body)
	}
	// Past the absolute lifetime (90 days): the token itself has expired.
	d2 := e.newDevice("EdDSA")
	d2.signup("sleeper2")
	for range 3 {
		e.clock.Advance(25 * 24 * time.Hour)
		d2.refresh()
	}
	e.clock.Advance(16 * 24 * time.Hour) // day 91
	if r := d2.refreshWith(d2.rt); r.status != http.StatusBadRequest || r.code(t) != "invalid_grant" {
		t.Fatalf("past absolute lifetime: %d %s", r.status, r.body)
	}
}

func mintWith(t *testing.T, key *keys.SecretKey, iss, aud string, d *device) string {
	t.Helper()
	m, err := token.NewMinter(token.Config{Issuer: iss, Audience: aud, Now: d.e.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	jkt, err := dpop.Thumbprint(d.key.Public())
	if err != nil {
		t.Fatal(err)
	}
	tok, _, err := m.Mint(key, token.Subject{Account: d.accID, Device: d.devID, JKT: jkt})
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func quote(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		switch {
		case r == '"' || r == '\\':
			b.WriteByte('\\')
			b.WriteRune(r)
		case r < 0x20:
			b.WriteString(`\u00`)
			b.WriteByte("0123456789abcdef"[r>>4])
			b.WriteByte("0123456789abcdef"[r&15])
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
	return b.String()
}

// readerOnly hides the concrete reader type so net/http cannot learn the
// length (the body is sent chunked).
type readerOnlyT struct{ r *strings.Reader }

func (r readerOnlyT) Read(p []byte) (int, error) { return r.r.Read(p) }
func (readerOnlyT) Close() error                 { return nil }

func readerOnly(r *strings.Reader) readerOnlyT { return readerOnlyT{r} }
