package console_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/hallpass/hallpass/account"
	"github.com/hallpass/hallpass/account/boltstore"
	"github.com/hallpass/hallpass/client"
	"github.com/hallpass/hallpass/dpop"
	"github.com/hallpass/hallpass/flow"
	"github.com/hallpass/hallpass/internal/logbuf"
	"github.com/hallpass/hallpass/issuer"
	"github.com/hallpass/hallpass/issuer/console"
	"github.com/hallpass/hallpass/keys"
	"github.com/hallpass/hallpass/ratelimit"
	"github.com/hallpass/hallpass/refresh"
	"github.com/hallpass/hallpass/revocation"
	revbolt "github.com/hallpass/hallpass/revocation/boltstore"
)

// clock is a settable clock, real time plus an offset.
type clock struct{ off atomic.Int64 }

func (c *clock) Now() time.Time          { return time.Now().Add(time.Duration(c.off.Load())) }
func (c *clock) advance(d time.Duration) { c.off.Add(int64(d)) }

// env is a real issuer (bbolt store, revocation store and mirror, an admin
// keys file) with its public handler on one test server and the admin
// handler, with the console mounted, on another.
type env struct {
	t        *testing.T
	key      string // the admin key "ops-alice"
	keysFile string
	audit    *issuer.MemoryAudit
	logs     *logbuf.Buffer
	clock    *clock
	srv      *issuer.Server
	store    account.Store
	revs     revocation.Store
	public   *httptest.Server
	admin    *httptest.Server
	// sessionCookies seen, to check they never reach the logs
	sessionCookies []string
}

type envOptions struct {
	tls       bool
	authLimit ratelimit.Rule
}

func newEnv(t *testing.T, o envOptions) *env {
	t.Helper()
	dir := t.TempDir()
	e := &env{t: t, keysFile: filepath.Join(dir, "admin-keys"), audit: &issuer.MemoryAudit{}, logs: &logbuf.Buffer{}, clock: &clock{}}
	key, line, err := issuer.NewAdminKey(nil, "ops-alice", time.Now())
	check(t, err)
	e.key = key
	check(t, os.WriteFile(e.keysFile, []byte(line+"\n"), 0o600))
	var handler atomic.Value
	e.public = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		handler.Load().(http.Handler).ServeHTTP(w, r)
	}))
	t.Cleanup(e.public.Close)
	e.srv, e.store, e.revs = newIssuer(t, e, dir, o)
	handler.Store(e.srv.Handler())
	con, err := console.New(console.Config{Admin: e.srv.AdminHandler(), Public: e.srv.Handler(), Now: e.clock.Now,
		Logger: slog.New(slog.NewJSONHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))})
	check(t, err)
	h := console.Mount(con, e.srv.AdminHandler())
	if o.tls {
		e.admin = httptest.NewTLSServer(h)
	} else {
		e.admin = httptest.NewServer(h)
	}
	t.Cleanup(e.admin.Close)
	t.Cleanup(e.checkLogs)
	return e
}

func newIssuer(t *testing.T, e *env, dir string, o envOptions) (*issuer.Server, account.Store, revocation.Store) {
	st, err := boltstore.Open(filepath.Join(dir, "hallpass.db"), boltstore.Options{})
	check(t, err)
	t.Cleanup(func() { st.Close() })
	rs, err := revbolt.Open(filepath.Join(dir, "revocation.db"), revbolt.Options{})
	check(t, err)
	t.Cleanup(func() { rs.Close() })
	m, err := revocation.NewMirror(rs, revocation.MirrorOptions{MaxStaleness: 5 * time.Second})
	check(t, err)
	m.Start()
	t.Cleanup(func() { m.Close() })
	select {
	case <-m.Synced():
	case <-time.After(10 * time.Second):
		t.Fatal("the revocation mirror did not sync")
	}
	ring, err := keys.NewRing(nil, time.Now())
	check(t, err)
	lk, err := keys.GenerateLocalKey(nil)
	check(t, err)
	codec, err := refresh.NewCodec(time.Now, lk)
	check(t, err)
	replay, err := dpop.NewMemoryReplayCache(dpop.MemoryReplayOptions{})
	check(t, err)
	pepper := make([]byte, 32)
	rand.Read(pepper)
	srv, err := issuer.New(issuer.Config{
		PublicURL: e.public.URL, Store: st, Keys: ring, Refresh: codec, Pepper: flow.StaticPepper{pepper},
		DPoP: issuer.DPoPConfig{Replay: replay}, Revocations: rs, RevocationMirror: m,
		AdminKeysFile: e.keysFile, AuditSink: e.audit, AdminAuthLimit: o.authLimit, SignupLimitsOff: true,
		Registry: prometheus.NewRegistry(), StoreTimeout: 30 * time.Second,
		Logger: slog.New(slog.NewJSONHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	})
	check(t, err)
	return srv, st, rs
}

// rawAccount writes an account with one device straight to the store,
// whatever the username policy says (as a name from an older policy, or
// a store written by another tool, would be).
func (e *env) rawAccount(username, deviceName string) (acc, dev string) {
	e.t.Helper()
	acc, err := account.NewID(account.AccountPrefix, nil)
	check(e.t, err)
	dev, err = account.NewID(account.DevicePrefix, nil)
	check(e.t, err)
	now := time.Now()
	check(e.t, e.store.CreateAccount(context.Background(),
		account.Account{ID: acc, Username: username, UsernameKey: "raw-" + acc, Created: now},
		account.Device{ID: dev, AccountID: acc, Name: deviceName, JKT: "jkt-" + dev, Created: now},
		account.Session{DeviceID: dev, AccountID: acc, JKT: "jkt-" + dev, Created: now, Expires: now.Add(time.Hour)}))
	return acc, dev
}

func check(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// checkLogs: neither the admin key nor a session cookie ever reaches the
// logs.
func (e *env) checkLogs() {
	logs := e.logs.String()
	if strings.Contains(logs, e.key) || strings.Contains(logs, strings.TrimPrefix(e.key, issuer.AdminKeyPrefix)) {
		e.t.Error("the admin key is in the logs")
	}
	for _, c := range e.sessionCookies {
		if strings.Contains(logs, c) {
			e.t.Error("a session cookie is in the logs")
		}
	}
}

// device signs up a new account with one device through the public API.
func (e *env) device(username, deviceName string) *client.Client {
	e.t.Helper()
	_, k, err := ed25519.GenerateKey(nil)
	check(e.t, err)
	c, err := client.New(e.public.URL, k, &client.MemoryStore{})
	check(e.t, err)
	_, err = c.Signup(context.Background(), username, deviceName)
	check(e.t, err)
	return c
}

// browser is a cookie-keeping HTTP client that does not follow redirects.
type browser struct {
	e     *env
	hc    *http.Client
	noJar *http.Client // for requests without the browser's cookies
	url   *url.URL
}

// noCookies, set by an edit, sends the request without the browser's
// cookies.
const noCookies = "X-Test-No-Cookies"

func (e *env) browser() *browser {
	jar, err := cookiejar.New(nil)
	check(e.t, err)
	noRedirect := func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	tr := e.admin.Client().Transport
	u, _ := url.Parse(e.admin.URL)
	return &browser{e: e, url: u,
		hc:    &http.Client{Transport: tr, Jar: jar, CheckRedirect: noRedirect},
		noJar: &http.Client{Transport: tr, CheckRedirect: noRedirect},
	}
}

type page struct {
	status int
	header http.Header
	body   string
}

var csrfField = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// csrf is the CSRF token of the page's forms.
func (p page) csrf(t testing.TB) string {
	t.Helper()
	m := csrfField.FindStringSubmatch(p.body)
	if m == nil {
		t.Fatalf("no CSRF token in the page (status %d)", p.status)
	}
	return m[1]
}

// do sends a request as a browser on a console page would (Sec-Fetch-Site
// same-origin, Origin of the console), changed by edit.
func (b *browser) do(method, path string, form url.Values, edit func(*http.Request)) page {
	b.e.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, b.e.admin.URL+path, body)
	check(b.e.t, err)
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	if method != http.MethodGet {
		req.Header.Set("Origin", b.e.admin.URL)
		req.Header.Set("Sec-Fetch-Site", "same-origin")
	}
	if edit != nil {
		edit(req)
	}
	hc := b.hc
	if req.Header.Get(noCookies) != "" {
		req.Header.Del(noCookies)
		hc = b.noJar
	}
	res, err := hc.Do(req)
	check(b.e.t, err)
	defer res.Body.Close()
	rb, _ := io.ReadAll(res.Body)
	return page{status: res.StatusCode, header: res.Header, body: string(rb)}
}

func (b *browser) get(path string) page { return b.do(http.MethodGet, path, nil, nil) }

// consoleURL is the URL whose cookies the browser sends to console pages:
// the jar gives none of the console's (Path=/admin/) for the bare origin.
func (b *browser) consoleURL() *url.URL {
	return b.url.ResolveReference(&url.URL{Path: "/admin/"})
}

// signIn signs in with key and returns the answer to the sign-in POST.
func (b *browser) signIn(key string) page {
	b.e.t.Helper()
	form := b.get("/admin/login")
	p := b.do(http.MethodPost, "/admin/login", url.Values{"csrf": {form.csrf(b.e.t)}, "key": {key}}, nil)
	for _, c := range b.hc.Jar.Cookies(b.consoleURL()) {
		if strings.Contains(c.Name, "hallpass-console") && !strings.Contains(c.Name, "login") {
			b.e.sessionCookies = append(b.e.sessionCookies, c.Value)
		}
	}
	return p
}

// signedIn is a browser signed in with the env's key.
func (e *env) signedIn() *browser {
	e.t.Helper()
	b := e.browser()
	n := len(e.sessionCookies)
	if p := b.signIn(e.key); p.status != http.StatusSeeOther || p.header.Get("Location") != "/admin/" {
		e.t.Fatalf("sign-in: %d %q", p.status, p.header.Get("Location"))
	}
	if len(e.sessionCookies) == n {
		e.t.Fatal("the session cookie was not collected: checkLogs would not look for it")
	}
	return b
}

// adminJSON calls the admin API as curl would.
func (e *env) adminJSON(method, path string) (int, string) {
	e.t.Helper()
	req, err := http.NewRequest(method, e.admin.URL+path, nil)
	check(e.t, err)
	req.Header.Set("Authorization", "Bearer "+e.key)
	res, err := e.admin.Client().Do(req)
	check(e.t, err)
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, string(b)
}

// records returns the audit records since n.
func (e *env) records(n int) []issuer.AuditRecord { return e.audit.Records()[n:] }
