package console_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hallpass/hallpass/account"
	"github.com/hallpass/hallpass/client"
	"github.com/hallpass/hallpass/issuer"
	"github.com/hallpass/hallpass/issuer/console"
	"github.com/hallpass/hallpass/ratelimit"
	"github.com/hallpass/hallpass/revocation"
)

// sessionCookie finds the session cookie among a response's Set-Cookie
// lines.
func sessionCookie(h http.Header) *http.Cookie {
	for _, line := range h.Values("Set-Cookie") {
		c, err := http.ParseSetCookie(line)
		if err == nil && strings.HasSuffix(c.Name, "hallpass-console") {
			return c
		}
	}
	return nil
}

func TestSignIn(t *testing.T) {
	tests := []struct {
		name   string
		tls    bool
		key    func(e *env) string
		status int
		cookie string // the session cookie's name; "" for none
		who    string // the audit record's who
	}{
		{name: "right key", key: func(e *env) string { return e.key }, status: http.StatusSeeOther, cookie: "hallpass-console", who: "ops-alice"},
		{name: "right key over TLS", tls: true, key: func(e *env) string { return e.key }, status: http.StatusSeeOther, cookie: "__Secure-hallpass-console", who: "ops-alice"},
		{name: "right key with spaces around", key: func(e *env) string { return " " + e.key + "\n" }, status: http.StatusSeeOther, cookie: "hallpass-console", who: "ops-alice"},
		{name: "wrong key", key: func(e *env) string { return e.key[:len(e.key)-2] + "xx" }, status: http.StatusUnauthorized, who: "-"},
		{name: "no key", key: func(*env) string { return "" }, status: http.StatusUnauthorized, who: "-"},
		{name: "not an admin key", key: func(*env) string { return "<script>" }, status: http.StatusUnauthorized, who: "-"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, envOptions{tls: tt.tls})
			b := e.browser()
			p := b.signIn(tt.key(e))
			if p.status != tt.status {
				t.Fatalf("status %d, want %d", p.status, tt.status)
			}
			c := sessionCookie(p.header)
			if tt.cookie == "" {
				if c != nil {
					t.Fatalf("a refused sign-in set a session cookie")
				}
				if !strings.Contains(p.body, "Sign-in refused.") {
					t.Errorf("no generic refusal in the page")
				}
				if got := b.get("/admin/"); got.status != http.StatusSeeOther || got.header.Get("Location") != "/admin/login" {
					t.Errorf("after a refused sign-in, /admin/ answers %d %q", got.status, got.header.Get("Location"))
				}
			} else {
				if c == nil || c.Name != tt.cookie {
					t.Fatalf("session cookie %+v, want %s", c, tt.cookie)
				}
				if !c.HttpOnly || c.SameSite != http.SameSiteStrictMode || c.Secure != tt.tls || c.Path != "/admin/" || c.Domain != "" {
					t.Errorf("cookie attributes %+v: want HttpOnly, SameSite=Strict, Path=/admin/, host-only, Secure=%v", c, tt.tls)
				}
				if strings.Contains(c.Value, e.key) || strings.Contains(c.Value, strings.TrimPrefix(e.key, issuer.AdminKeyPrefix)) {
					t.Errorf("the cookie holds the key")
				}
				home := b.get("/admin/")
				if home.status != http.StatusOK || !strings.Contains(home.body, `<code id="key-id">ops-alice</code>`) {
					t.Errorf("home %d: not signed in as ops-alice", home.status)
				}
				if strings.Contains(home.body, strings.TrimPrefix(e.key, issuer.AdminKeyPrefix)) {
					t.Errorf("the page shows the key")
				}
			}
			recs := e.audit.Records()
			if len(recs) == 0 || recs[0].Action != "GET "+issuer.PathAdminWhoami || recs[0].Who != tt.who {
				t.Errorf("audit %+v: want the whoami call by %q", recs, tt.who)
			}
		})
	}
}

// TestSignInRateLimited: wrong keys spend the admin API's budget of
// failed authentications of the address, and then even the right key is
// refused with 429 (its key not looked at), as on the admin API.
func TestSignInRateLimited(t *testing.T) {
	e := newEnv(t, envOptions{authLimit: ratelimit.Rule{Limit: 3, Per: time.Minute}})
	b := e.browser()
	for i := 0; i < 3; i++ {
		if p := b.signIn("hpadm_wrong"); p.status != http.StatusUnauthorized {
			t.Fatalf("attempt %d: %d", i, p.status)
		}
	}
	p := b.signIn(e.key)
	if p.status != http.StatusTooManyRequests || sessionCookie(p.header) != nil || p.header.Get("Retry-After") == "" {
		t.Fatalf("after the budget: %d, cookie %v, Retry-After %q", p.status, sessionCookie(p.header), p.header.Get("Retry-After"))
	}
	if status, _ := e.adminJSON(http.MethodGet, issuer.PathAdminWhoami); status != http.StatusTooManyRequests {
		t.Errorf("the admin API from the same address: %d, want 429 (one budget)", status)
	}
}

func TestSignInCSRF(t *testing.T) {
	tests := []struct {
		name string
		edit func(r *http.Request, form url.Values)
	}{
		{name: "no token", edit: func(_ *http.Request, f url.Values) { f.Del("csrf") }},
		{name: "wrong token", edit: func(_ *http.Request, f url.Values) { f.Set("csrf", altered(f.Get("csrf"))) }},
		{name: "no login cookie", edit: func(r *http.Request, _ url.Values) { r.Header.Set(noCookies, "1") }},
		{name: "cross-site", edit: func(r *http.Request, _ url.Values) { r.Header.Set("Sec-Fetch-Site", "cross-site") }},
		{name: "other origin", edit: func(r *http.Request, _ url.Values) {
			r.Header.Del("Sec-Fetch-Site")
			r.Header.Set("Origin", "http://evil.example")
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, envOptions{})
			b := e.browser()
			form := url.Values{"csrf": {b.get("/admin/login").csrf(t)}, "key": {e.key}}
			p := b.do(http.MethodPost, "/admin/login", nil, func(r *http.Request) {
				tt.edit(r, form)
				r.Body = http.NoBody
				enc := form.Encode()
				r.Body, r.ContentLength = readCloser(enc), int64(len(enc))
				r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			})
			if p.status != http.StatusForbidden || sessionCookie(p.header) != nil {
				t.Fatalf("status %d, cookie %v: want 403 and no session", p.status, sessionCookie(p.header))
			}
			if n := len(e.audit.Records()); n != 0 {
				t.Errorf("%d admin calls made for a refused sign-in", n)
			}
		})
	}
}

// altered changes the first character of a token (always: a token that
// starts with the replacement gets another one).
func altered(tok string) string {
	if tok[0] == 'x' {
		return "y" + tok[1:]
	}
	return "x" + tok[1:]
}

func readCloser(s string) io.ReadCloser { return io.NopCloser(strings.NewReader(s)) }

// accountOf reads an account as the admin API shows it.
func (e *env) accountOf(id string) (banned bool, active map[string]bool) {
	e.t.Helper()
	status, body := e.adminJSON(http.MethodGet, "/v1/admin/accounts/"+id)
	if status != http.StatusOK {
		e.t.Fatalf("account %s: %d", id, status)
	}
	var a struct {
		Banned  bool `json:"banned"`
		Devices []struct {
			ID     string `json:"id"`
			Active bool   `json:"active"`
		} `json:"devices"`
	}
	check(e.t, json.Unmarshal([]byte(body), &a))
	active = map[string]bool{}
	for _, d := range a.Devices {
		active[d.ID] = d.Active
	}
	return a.Banned, active
}

func session(t *testing.T, c *client.Client) (acc, dev string) {
	t.Helper()
	s, err := c.Session(context.Background())
	check(t, err)
	return s.AccountID, s.DeviceID
}

// TestActionsRefusedWithoutCSRF: every state-changing form refused (403,
// no admin call, nothing changed) without the session's token, with a
// wrong one, from another origin, without a session; and GET is not
// allowed on them.
func TestActionsRefusedWithoutCSRF(t *testing.T) {
	e := newEnv(t, envOptions{})
	acc, dev := session(t, e.device("mallory1", "phone"))
	b := e.signedIn()
	token := b.get("/admin/").csrf(t)
	actions := []string{
		"/admin/devices/" + dev + "/sign-out", "/admin/accounts/" + acc + "/ban", "/admin/accounts/" + acc + "/unban",
		"/admin/accounts/" + acc + "/recovery-code", "/admin/accounts/" + acc + "/delete", "/admin/logout",
	}
	variants := []struct {
		name string
		form url.Values
		edit func(*http.Request)
	}{
		{name: "no token", form: url.Values{"account": {acc}, "confirm": {"yes"}}},
		{name: "wrong token", form: url.Values{"csrf": {altered(token)}, "confirm": {"yes"}}},
		{name: "token of another session", form: url.Values{"csrf": {e.signedIn().get("/admin/").csrf(t)}, "confirm": {"yes"}}},
		{name: "cross-site with the token", form: url.Values{"csrf": {token}, "confirm": {"yes"}},
			edit: func(r *http.Request) { r.Header.Set("Sec-Fetch-Site", "cross-site") }},
		{name: "same-site, other origin, with the token", form: url.Values{"csrf": {token}, "confirm": {"yes"}},
			edit: func(r *http.Request) { r.Header.Set("Sec-Fetch-Site", "same-site") }},
		{name: "Origin of another site with the token", form: url.Values{"csrf": {token}, "confirm": {"yes"}},
			edit: func(r *http.Request) { r.Header.Del("Sec-Fetch-Site"); r.Header.Set("Origin", "http://127.0.0.2:1") }},
		{name: "no session with the token", form: url.Values{"csrf": {token}, "confirm": {"yes"}},
			edit: func(r *http.Request) { r.Header.Set(noCookies, "1") }},
	}
	before := len(e.audit.Records())
	for _, v := range variants {
		for _, path := range actions {
			t.Run(v.name+" "+path, func(t *testing.T) {
				p := b.do(http.MethodPost, path, v.form, v.edit)
				if p.status != http.StatusForbidden {
					t.Fatalf("status %d, want 403", p.status)
				}
				if p.header.Get("Content-Security-Policy") == "" {
					t.Errorf("refusal without the security headers")
				}
			})
		}
	}
	for _, path := range actions {
		want := http.StatusMethodNotAllowed
		if strings.HasSuffix(path, "/recovery-code") {
			want = http.StatusGone // the page that shows a code issued, once: none was
		}
		if p := b.get(path); p.status != want {
			t.Errorf("GET %s: %d, want %d", path, p.status, want)
		}
	}
	if recs := e.records(before); len(recs) != 0 {
		t.Fatalf("refused forms made admin calls: %+v", recs)
	}
	banned, active := e.accountOf(acc)
	if banned || !active[dev] {
		t.Fatalf("a refused form changed the account: banned %v, device active %v", banned, active[dev])
	}
	if p := b.get("/admin/"); p.status != http.StatusOK {
		t.Fatalf("the session did not survive the refused sign-out: %d", p.status)
	}
}

// auditedStep is one console action, what it must answer and the admin
// API call it must be audited as.
type auditedStep struct {
	name     string
	path     string
	form     url.Values
	status   int
	location string
	action   string // the admin API route audited; "" for no admin call
	target   [2]string
	check    func(t *testing.T, p page)
}

func auditedSteps(e *env, phone *client.Client, acc, dev string) []auditedStep {
	return []auditedStep{
		{name: "sign the device out", path: "/admin/devices/" + dev + "/sign-out", form: url.Values{"account": {acc}},
			status: http.StatusSeeOther, location: "/admin/accounts/" + acc + "?done=device_signed_out",
			action: "DELETE " + issuer.PathAdminDevice, target: [2]string{"device_id", dev}, check: func(t *testing.T, _ page) {
				if _, active := e.accountOf(acc); active[dev] {
					t.Error("device still active")
				}
				_, err := phone.Me(context.Background())
				var ae *client.APIError
				if err == nil || !errors.Is(err, client.ErrSessionEnded) && !errors.As(err, &ae) {
					t.Errorf("the signed-out device's next request: %v, want a refusal", err)
				}
			}},
		// Shown by the page it redirects to: TestSupportCodeShownOnce.
		{name: "support code", path: "/admin/accounts/" + acc + "/recovery-code", status: http.StatusSeeOther,
			location: "/admin/accounts/" + acc + "/recovery-code",
			action:   "POST " + issuer.PathAdminAccountRecovery, target: [2]string{"account_id", acc}},
		{name: "ban", path: "/admin/accounts/" + acc + "/ban", status: http.StatusSeeOther, location: "/admin/accounts/" + acc + "?done=banned",
			action: "POST " + issuer.PathAdminAccountBan, target: [2]string{"account_id", acc}, check: func(t *testing.T, _ page) {
				if banned, _ := e.accountOf(acc); !banned {
					t.Error("not banned")
				}
			}},
		{name: "unban", path: "/admin/accounts/" + acc + "/unban", status: http.StatusSeeOther, location: "/admin/accounts/" + acc + "?done=unbanned",
			action: "POST " + issuer.PathAdminAccountUnban, target: [2]string{"account_id", acc}, check: func(t *testing.T, _ page) {
				if banned, _ := e.accountOf(acc); banned {
					t.Error("still banned")
				}
			}},
		{name: "delete without confirming", path: "/admin/accounts/" + acc + "/delete", status: http.StatusBadRequest},
		{name: "delete", path: "/admin/accounts/" + acc + "/delete", form: url.Values{"confirm": {"yes"}},
			status: http.StatusSeeOther, location: "/admin/?done=account_deleted",
			action: "DELETE " + issuer.PathAdminAccount, target: [2]string{"account_id", acc}, check: func(t *testing.T, _ page) {
				if status, _ := e.adminJSON(http.MethodGet, "/v1/admin/accounts/"+acc); status != http.StatusNotFound {
					t.Errorf("account still there: %d", status)
				}
			}},
	}
}

// TestActionsAudited: each action does what the admin API does, through
// it, and is audited with the key's id and the API's route.
func TestActionsAudited(t *testing.T) {
	e := newEnv(t, envOptions{})
	phone := e.device("bob1", "phone")
	acc, dev := session(t, phone)
	b := e.signedIn()
	ap := b.get("/admin/accounts/" + acc)
	if ap.status != http.StatusOK || !strings.Contains(ap.body, dev) || !strings.Contains(ap.body, ">bob1<") {
		t.Fatalf("account page %d", ap.status)
	}
	token := ap.csrf(t)
	for _, s := range auditedSteps(e, phone, acc, dev) {
		t.Run(s.name, func(t *testing.T) {
			n := len(e.audit.Records())
			form := url.Values{"csrf": {token}}
			for k, v := range s.form {
				form[k] = v
			}
			p := b.do(http.MethodPost, s.path, form, nil)
			if p.status != s.status || p.header.Get("Location") != s.location {
				t.Fatalf("%d %q, want %d %q", p.status, p.header.Get("Location"), s.status, s.location)
			}
			recs := e.records(n)
			switch {
			case s.action == "" && len(recs) != 0:
				t.Fatalf("admin calls made: %+v", recs)
			case s.action == "":
				return
			case len(recs) == 0:
				t.Fatal("no audit record")
			}
			if r := recs[0]; r.Who != "ops-alice" || r.Action != s.action || r.Targets[s.target[0]] != s.target[1] || r.Result != "ok" {
				t.Errorf("audit %+v: want ops-alice, %s, %s=%s, ok", r, s.action, s.target[0], s.target[1])
			}
			if s.check != nil {
				s.check(t, p)
			}
		})
	}
}

// TestEscaping: what users and searchers type renders as text.
func TestEscaping(t *testing.T) {
	e := newEnv(t, envOptions{})
	acc, _ := session(t, e.device("carol1", `<script>alert("x")</script>`))
	raw, _ := e.rawAccount(`<script>alert("u")</script>`, `<img src=x onerror=alert(2)>`)
	b := e.signedIn()
	tests := []struct {
		name, path string
		status     int
		want       string
	}{
		{name: "device name", path: "/admin/accounts/" + acc, status: http.StatusOK,
			want: `&lt;script&gt;alert(&#34;x&#34;)&lt;/script&gt;`},
		{name: "username", path: "/admin/accounts/" + raw, status: http.StatusOK,
			want: `<td id="username">&lt;script&gt;alert(&#34;u&#34;)&lt;/script&gt;</td>`},
		{name: "username in the title", path: "/admin/accounts/" + raw, status: http.StatusOK,
			want: `<title>Account &lt;script&gt;alert(&#34;u&#34;)&lt;/script&gt; · hallpass admin</title>`},
		{name: "device name in an attribute-free cell", path: "/admin/accounts/" + raw, status: http.StatusOK,
			want: `<td class="name">&lt;img src=x onerror=alert(2)&gt;</td>`},
		{name: "search", path: "/admin/search?q=" + url.QueryEscape(`<script>alert(1)</script>`), status: http.StatusNotFound,
			want: `&lt;script&gt;alert(1)&lt;/script&gt;`},
		{name: "search for an attribute", path: "/admin/search?q=" + url.QueryEscape(`"><img src=x onerror=alert(1)>`),
			status: http.StatusNotFound, want: `&#34;&gt;&lt;img src=x onerror=alert(1)&gt;`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := b.get(tt.path)
			if p.status != tt.status {
				t.Fatalf("status %d, want %d", p.status, tt.status)
			}
			if !strings.Contains(p.body, tt.want) {
				t.Errorf("escaped text %q not in the page", tt.want)
			}
			if strings.Contains(p.body, "<script") || strings.Contains(p.body, "<img") {
				t.Errorf("markup from input reached the page unescaped")
			}
		})
	}
}

func TestPages(t *testing.T) {
	e := newEnv(t, envOptions{})
	acc, dev := session(t, e.device("dave1", "laptop"))
	b := e.signedIn()
	if p := b.do(http.MethodPost, "/admin/devices/"+dev+"/sign-out", url.Values{"csrf": {b.get("/admin/").csrf(t)}}, nil); p.status != http.StatusSeeOther {
		t.Fatalf("sign-out: %d", p.status)
	}
	tests := []struct {
		name, path string
		status     int
		location   string
		want       []string
	}{
		{name: "search by username, another case", path: "/admin/search?q=DAVE1", status: http.StatusSeeOther, location: "/admin/accounts/" + acc},
		{name: "search by id", path: "/admin/search?q=" + acc, status: http.StatusSeeOther, location: "/admin/accounts/" + acc},
		{name: "search for nothing", path: "/admin/search?q=", status: http.StatusSeeOther, location: "/admin/"},
		{name: "unknown account", path: "/admin/accounts/acc_AAAAAAAAAAAAAAAAAAAAAA", status: http.StatusNotFound},
		{name: "malformed account id", path: "/admin/accounts/..%2f..%2fv1", status: http.StatusNotFound},
		{name: "account", path: "/admin/accounts/" + acc, status: http.StatusOK, want: []string{"laptop", "signed out"}},
		{name: "revocations", path: "/admin/revocations", status: http.StatusOK, want: []string{"device", dev, "admin: device revoked"}},
		{name: "keys", path: "/admin/keys", status: http.StatusOK, want: []string{"k4.pid.", "current", "next"}},
		{name: "audit", path: "/admin/audit", status: http.StatusOK, want: []string{"ops-alice", "DELETE /v1/admin/devices/:id", "device_id=" + dev}},
		{name: "css", path: "/admin/console.css", status: http.StatusOK, want: []string{"body {"}},
		{name: "no slash", path: "/admin", status: http.StatusSeeOther, location: "/admin/"},
		{name: "favicon, never the admin API", path: "/favicon.ico", status: http.StatusNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n := len(e.audit.Records())
			p := b.get(tt.path)
			if p.status != tt.status || p.header.Get("Location") != tt.location {
				t.Fatalf("%d %q, want %d %q", p.status, p.header.Get("Location"), tt.status, tt.location)
			}
			for _, w := range tt.want {
				if !strings.Contains(p.body, w) {
					t.Errorf("%q not in the page", w)
				}
			}
			checkHeaders(t, p)
			for _, r := range e.records(n) {
				if r.Who != "ops-alice" {
					t.Errorf("a console page made an admin call audited as %q: %+v", r.Who, r)
				}
			}
		})
	}
}

func checkHeaders(t *testing.T, p page) {
	t.Helper()
	csp := p.header.Get("Content-Security-Policy")
	for _, d := range []string{"default-src 'none'", "form-action 'self'", "frame-ancestors 'none'", "style-src 'self'"} {
		if !strings.Contains(csp, d) {
			t.Errorf("CSP %q lacks %s", csp, d)
		}
	}
	if strings.Contains(csp, "script-src") || strings.Contains(csp, "unsafe") {
		t.Errorf("CSP %q allows scripts or unsafe sources", csp)
	}
	if p.header.Get("Cache-Control") != "no-store" || p.header.Get("X-Content-Type-Options") != "nosniff" ||
		p.header.Get("X-Frame-Options") != "DENY" || p.header.Get("Referrer-Policy") != "no-referrer" {
		t.Errorf("headers %v", p.header)
	}
}

// TestSessionEnds: sign-out, idle timeout, absolute lifetime, and the key
// withdrawn from the keys file all end a session.
func TestSessionEnds(t *testing.T) {
	tests := []struct {
		name  string
		end   func(e *env, b *browser)
		ended bool // the login page says the session ended
	}{
		{name: "sign-out", end: func(e *env, b *browser) {
			if p := b.do(http.MethodPost, "/admin/logout", url.Values{"csrf": {b.get("/admin/").csrf(e.t)}}, nil); p.status != http.StatusSeeOther {
				e.t.Fatalf("sign-out: %d", p.status)
			}
		}},
		{name: "idle", end: func(e *env, _ *browser) { e.clock.advance(console.DefaultIdleTimeout) }},
		{name: "lifetime", end: func(e *env, b *browser) {
			for i := 0; i < 6; i++ {
				e.clock.advance(console.DefaultSessionTTL / 6)
				if i < 5 {
					if p := b.get("/admin/"); p.status != http.StatusOK {
						e.t.Fatalf("session ended early, after %d steps", i+1)
					}
				}
			}
		}},
		{name: "key withdrawn", ended: true, end: func(e *env, _ *browser) {
			check(e.t, os.WriteFile(e.keysFile, []byte("# no key\n"), 0o600))
			later := time.Now().Add(2 * time.Second)
			check(e.t, os.Chtimes(e.keysFile, later, later))
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, envOptions{})
			b := e.signedIn()
			token := b.get("/admin/").csrf(t)
			tt.end(e, b)
			path := "/admin/revocations" // an admin call: the key is checked again
			p := b.get(path)
			want := "/admin/login"
			if tt.ended {
				want += "?ended"
			}
			if p.status != http.StatusSeeOther || p.header.Get("Location") != want {
				t.Fatalf("after the end: %d %q, want 303 %s", p.status, p.header.Get("Location"), want)
			}
			if p := b.do(http.MethodPost, "/admin/logout", url.Values{"csrf": {token}}, nil); p.status != http.StatusForbidden {
				t.Errorf("a form of the ended session: %d, want 403", p.status)
			}
		})
	}
}

// addDevices joins n devices named name to the account acc straight
// through the store, as n link-code redemptions would (the store has no
// bound on an account's devices).
func (e *env) addDevices(acc string, n int, name string) {
	e.t.Helper()
	now := time.Now()
	e.inParallel(n, func() error {
		dev, err := account.NewID(account.DevicePrefix, nil)
		if err != nil {
			return err
		}
		return e.store.AddDevice(context.Background(),
			account.Device{ID: dev, AccountID: acc, Name: name, JKT: "jkt-" + dev, Created: now},
			account.Session{DeviceID: dev, AccountID: acc, JKT: "jkt-" + dev, Created: now, Expires: now.Add(time.Hour)})
	})
}

// inParallel runs add n times on 64 goroutines and fails the test at the
// first error.
func (e *env) inParallel(n int, add func() error) {
	e.t.Helper()
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for w := range 64 {
		wg.Go(func() {
			for i := w; i < n; i += 64 {
				if err := add(); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	check(e.t, <-errs)
}

// TestAccountWithManyDevices: an account owner who links tens of
// thousands of devices (nothing bounds them) must not make the account's
// page unusable: its admin answer grew past what the console reads (4
// MiB) and the page was an internal error, without the ban button. The
// admin API now lists a bounded number of devices, the active ones first,
// with the total.
func TestAccountWithManyDevices(t *testing.T) {
	e := newEnv(t, envOptions{})
	phone := e.device("frank1", "phone")
	acc, first := session(t, phone)
	const n = 20_000
	e.addDevices(acc, n, strings.Repeat("x", 64))
	check(t, phone.Refresh(context.Background())) // the most recently used: listed
	b := e.signedIn()
	p := b.get("/admin/accounts/" + acc)
	if p.status != http.StatusOK {
		t.Fatalf("account page: %d", p.status)
	}
	for _, want := range []string{`id="ban"`, fmt.Sprintf(`id="devices-total">%d<`, n+1),
		fmt.Sprintf(`The first %d of %d`, issuer.MaxAdminAccountDevices, n+1)} {
		if !strings.Contains(p.body, want) {
			t.Errorf("%q not in the page", want)
		}
	}
	if !strings.Contains(p.body, first) {
		t.Errorf("the most recently used device is not listed")
	}
}

// addEntries adds n device entries straight to the revocation store, as
// n sign-outs would.
func (e *env) addEntries(n int) {
	e.t.Helper()
	e.inParallel(n, func() error {
		dev, err := account.NewID(account.DevicePrefix, nil)
		if err != nil {
			return err
		}
		en, err := revocation.NewEntry(revocation.KindDevice, dev, "logout", time.Now(), time.Hour)
		if err != nil {
			return err
		}
		_, err = e.revs.Add(context.Background(), en)
		return err
	})
}

// TestManyRevocations: every sign-out adds an entry that lives 65
// minutes, so a busy issuer holds tens of thousands; the admin API's
// answer listing them all grew past what the console reads (4 MiB) and
// the revocations page was an internal error. The console now asks for
// the newest 500 and says how many there are.
func TestManyRevocations(t *testing.T) {
	e := newEnv(t, envOptions{})
	const n = 25_000
	e.addEntries(n)
	acc, dev := session(t, e.device("gina1", "phone"))
	b := e.signedIn()
	if p := b.do(http.MethodPost, "/admin/devices/"+dev+"/sign-out", url.Values{"csrf": {b.get("/admin/").csrf(t)}, "account": {acc}}, nil); p.status != http.StatusSeeOther {
		t.Fatalf("sign-out: %d", p.status)
	}
	p := b.get("/admin/revocations")
	if p.status != http.StatusOK {
		t.Fatalf("revocations page: %d", p.status)
	}
	for _, want := range []string{dev, fmt.Sprintf(`The newest %d of %d`, 500, n+1)} {
		if !strings.Contains(p.body, want) {
			t.Errorf("%q not in the page", want)
		}
	}
}

// TestCrossSiteLoadsRefused: a page of the same site (another port of the
// console's host) gets the session cookie sent with every request it makes
// the browser send (SameSite=Strict stops only other sites). Its images,
// frames and fetches of console pages made admin calls with the
// operator's key, each audited as the operator's: a page looping over
// <img src=.../admin/revocations> pushed the real records out of the
// audit (bbolt keeps 1000) and named accounts the operator never looked
// at. Only the operator's own navigations reach a page now.
func TestCrossSiteLoadsRefused(t *testing.T) {
	e := newEnv(t, envOptions{})
	acc, _ := session(t, e.device("mallory2", "phone"))
	b := e.signedIn()
	paths := []string{"/admin/", "/admin/revocations", "/admin/audit", "/admin/keys", "/admin/accounts/" + acc,
		"/admin/search?q=mallory2", "/admin/login", "/admin/console.css"}
	tests := []struct {
		name            string
		site, mode, dst string
		purpose         string
		refused         bool
	}{
		{name: "same-site image", site: "same-site", mode: "no-cors", dst: "image", refused: true},
		{name: "cross-site image", site: "cross-site", mode: "no-cors", dst: "image", refused: true},
		{name: "same-site frame", site: "same-site", mode: "navigate", dst: "iframe", refused: true},
		{name: "same-site fetch", site: "same-site", mode: "cors", dst: "empty", refused: true},
		{name: "same-site prefetch", site: "same-site", mode: "navigate", dst: "document", purpose: "prefetch", refused: true},
		// A link the operator follows from another page of the site.
		{name: "same-site navigation", site: "same-site", mode: "navigate", dst: "document"},
		{name: "same-origin image", site: "same-origin", mode: "no-cors", dst: "image"},
		{name: "typed in", site: "none", mode: "navigate", dst: "document"},
		// Browsers without Fetch Metadata, curl.
		{name: "no metadata"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := len(e.audit.Records())
			for _, path := range paths {
				p := b.do(http.MethodGet, path, nil, func(r *http.Request) {
					for k, v := range map[string]string{"Sec-Fetch-Site": tt.site, "Sec-Fetch-Mode": tt.mode,
						"Sec-Fetch-Dest": tt.dst, "Sec-Purpose": tt.purpose} {
						if v != "" {
							r.Header.Set(k, v)
						}
					}
				})
				if refused := p.status == http.StatusForbidden; refused != tt.refused {
					t.Errorf("GET %s: %d, refused %v, want %v", path, p.status, refused, tt.refused)
				}
				if p.header.Get("Content-Security-Policy") == "" {
					t.Errorf("GET %s: no security headers", path)
				}
			}
			if recs := e.records(before); tt.refused && len(recs) != 0 {
				t.Errorf("refused loads made admin calls: %+v", recs)
			} else if !tt.refused && len(recs) == 0 {
				t.Errorf("no admin call audited")
			}
		})
	}
}

// TestSignInEndsThePreviousSession: a sign-in from a browser that still
// holds a session (a second tab's sign-in form, a session signed in with
// another key) ends that session. It stayed live, the admin key with it,
// until its idle timeout: whoever had copied its cookie kept acting with
// the key after the operator had signed in again. A refused sign-in ends
// nothing.
func TestSignInEndsThePreviousSession(t *testing.T) {
	tests := []struct {
		name  string
		key   func(e *env) string
		ended bool
	}{
		{name: "signed in again", key: func(e *env) string { return e.key }, ended: true},
		{name: "refused", key: func(e *env) string { return e.key[:len(e.key)-2] + "xx" }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, envOptions{})
			old := e.signedIn()
			var oldID string
			for _, c := range old.hc.Jar.Cookies(old.consoleURL()) {
				if c.Name == "hallpass-console" {
					oldID = c.Value
				}
			}
			if oldID == "" {
				t.Fatal("no session cookie")
			}
			// The same browser: the sign-in form of another tab, posted
			// with the session cookie it still holds.
			b := e.browser()
			form := b.get("/admin/login")
			p := b.do(http.MethodPost, "/admin/login", url.Values{"csrf": {form.csrf(t)}, "key": {tt.key(e)}},
				func(r *http.Request) { r.AddCookie(&http.Cookie{Name: "hallpass-console", Value: oldID}) })
			if p.status != http.StatusSeeOther && p.status != http.StatusUnauthorized {
				t.Fatalf("sign-in: %d", p.status)
			}
			home := old.get("/admin/")
			if ended := home.status == http.StatusSeeOther; ended != tt.ended {
				t.Fatalf("the previous session: %d, ended %v, want %v", home.status, ended, tt.ended)
			}
		})
	}
}

// TestSupportCodeShownOnce: the support code was the answer to the POST
// itself, so reloading the page (or going back to it) posted the form
// again and issued another code, each a valid recovery code for the
// account, one more left behind each time. The POST now redirects to a
// page that shows the code once; reloading it shows nothing and issues
// nothing.
func TestSupportCodeShownOnce(t *testing.T) {
	e := newEnv(t, envOptions{})
	acc, _ := session(t, e.device("dave1", "phone"))
	b := e.signedIn()
	codesLeft := func() int {
		_, body := e.adminJSON(http.MethodGet, "/v1/admin/accounts/"+acc)
		var a struct {
			N int `json:"recovery_codes_left"`
		}
		check(t, json.Unmarshal([]byte(body), &a))
		return a.N
	}
	before := codesLeft()
	token := b.get("/admin/accounts/" + acc).csrf(t)
	p := b.do(http.MethodPost, "/admin/accounts/"+acc+"/recovery-code", url.Values{"csrf": {token}}, nil)
	shown := "/admin/accounts/" + acc + "/recovery-code"
	if p.status != http.StatusSeeOther || p.header.Get("Location") != shown {
		t.Fatalf("issue: %d %q, want 303 %s", p.status, p.header.Get("Location"), shown)
	}
	codeRE := regexp.MustCompile(`<code id="code">([A-Z0-9-]{10,})</code>`)
	tests := []struct {
		name     string
		browser  *browser
		path     string
		wantCode bool
	}{
		{name: "another session", browser: e.signedIn(), path: shown},
		{name: "another account's page", browser: b, path: "/admin/accounts/acc_AAAAAAAAAAAAAAAAAAAAAA/recovery-code"},
		{name: "shown", browser: b, path: shown, wantCode: true},
		{name: "reloaded", browser: b, path: shown},
	}
	for _, tt := range tests {
		n := len(e.audit.Records())
		p := tt.browser.get(tt.path)
		if got := codeRE.MatchString(p.body); got != tt.wantCode {
			t.Errorf("%s: %d, code shown %v, want %v", tt.name, p.status, got, tt.wantCode)
		}
		if recs := e.records(n); len(recs) != 0 {
			t.Errorf("%s: admin calls %+v", tt.name, recs)
		}
	}
	if n := codesLeft(); n != before+1 {
		t.Fatalf("recovery codes left %d, want %d: one code issued", n, before+1)
	}
}
