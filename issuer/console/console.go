package console

import (
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"time"
)

// Prefix is the path under which the console is served.
const Prefix = "/admin/"

// Defaults and bounds of Config.
const (
	DefaultSessionTTL  = time.Hour
	MaxSessionTTL      = 12 * time.Hour
	DefaultIdleTimeout = 15 * time.Minute
	DefaultMaxSessions = 1000
	maxForm            = 4 << 10
)

// Config configures a Console. Admin and Public are required; the zero
// value of every other field is a safe default.
type Config struct {
	// Admin is the admin API (issuer.Server.AdminHandler): every read
	// and action of the console is a call to it.
	Admin http.Handler
	// Public is the issuer's public handler (issuer.Server.Handler), for
	// the key set on the signing keys page.
	Public http.Handler
	// Logger receives sign-in, sign-out and refusal events (key ids,
	// never a key or a cookie). Nil: nothing is logged.
	Logger *slog.Logger
	// Now is the clock (time.Now when nil), read on every request.
	Now func() time.Time
	// Rand makes session ids and CSRF tokens (crypto/rand when nil).
	Rand io.Reader
	// SessionTTL ends a session this long after sign-in, whatever
	// happens (DefaultSessionTTL when zero; at most MaxSessionTTL).
	SessionTTL time.Duration
	// IdleTimeout ends a session this long after its last request
	// (DefaultIdleTimeout when zero; at most SessionTTL).
	IdleTimeout time.Duration
	// MaxSessions bounds the sessions held; past it a sign-in ends the
	// oldest (DefaultMaxSessions when zero).
	MaxSessions int
}

// Console serves the admin console under Prefix. Build one with New.
type Console struct {
	cfg      Config
	log      *slog.Logger
	sessions *sessions
	pages    pages
	mux      *http.ServeMux
	cop      *http.CrossOriginProtection
}

// New validates cfg and builds a Console.
func New(cfg Config) (*Console, error) {
	if cfg.Admin == nil || cfg.Public == nil {
		return nil, errors.New("console: Admin and Public handlers are required")
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Rand == nil {
		cfg.Rand = rand.Reader
	}
	if cfg.SessionTTL == 0 {
		cfg.SessionTTL = DefaultSessionTTL
	}
	if cfg.IdleTimeout == 0 {
		cfg.IdleTimeout = min(DefaultIdleTimeout, cfg.SessionTTL)
	}
	if cfg.MaxSessions == 0 {
		cfg.MaxSessions = DefaultMaxSessions
	}
	switch {
	case cfg.SessionTTL < 0 || cfg.SessionTTL > MaxSessionTTL:
		return nil, errors.New("console: SessionTTL must be positive and at most 12h")
	case cfg.IdleTimeout < 0 || cfg.IdleTimeout > cfg.SessionTTL:
		return nil, errors.New("console: IdleTimeout must be positive and at most SessionTTL")
	case cfg.MaxSessions < 0:
		return nil, errors.New("console: MaxSessions must not be negative")
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	pg, err := parsePages()
	if err != nil {
		return nil, err
	}
	c := &Console{
		cfg: cfg, log: log, pages: pg, cop: http.NewCrossOriginProtection(),
		sessions: &sessions{ttl: cfg.SessionTTL, idle: cfg.IdleTimeout, max: cfg.MaxSessions,
			m: map[[sha256.Size]byte]*session{}},
	}
	c.mux = c.routes()
	return c, nil
}

func (c *Console) routes() *http.ServeMux {
	m := http.NewServeMux()
	m.HandleFunc("GET /admin", func(w http.ResponseWriter, r *http.Request) { redirect(w, Prefix) })
	m.HandleFunc("GET /favicon.ico", http.NotFound) // never to the admin API: a refused key there costs budget
	m.HandleFunc("GET /admin/console.css", c.handleCSS)
	m.HandleFunc("GET /admin/login", c.handleLoginForm)
	m.HandleFunc("POST /admin/login", c.handleLogin)
	m.HandleFunc("POST /admin/logout", c.action(c.handleLogout))
	m.HandleFunc("GET /admin/{$}", c.page(c.handleHome))
	m.HandleFunc("GET /admin/search", c.page(c.handleSearch))
	m.HandleFunc("GET /admin/accounts/{id}", c.page(c.handleAccount))
	m.HandleFunc("POST /admin/accounts/{id}/ban", c.action(c.handleBan(true)))
	m.HandleFunc("POST /admin/accounts/{id}/unban", c.action(c.handleBan(false)))
	m.HandleFunc("POST /admin/accounts/{id}/recovery-code", c.action(c.handleSupportCode))
	m.HandleFunc("GET /admin/accounts/{id}/recovery-code", c.page(c.handleShowCode))
	m.HandleFunc("POST /admin/accounts/{id}/delete", c.action(c.handleDelete))
	m.HandleFunc("POST /admin/devices/{id}/sign-out", c.action(c.handleSignOutDevice))
	m.HandleFunc("GET /admin/revocations", c.page(c.handleRevocations))
	m.HandleFunc("GET /admin/keys", c.page(c.handleKeys))
	m.HandleFunc("GET /admin/audit", c.page(c.handleAudit))
	return m
}

// Mount serves the console's paths (/admin, /admin/... and /favicon.ico)
// from console and every other request from rest (the admin API).
func Mount(console *Console, rest http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if Owns(r.URL.Path) {
			console.ServeHTTP(w, r)
			return
		}
		rest.ServeHTTP(w, r)
	})
}

// Owns reports whether path is one of the console's.
func Owns(path string) bool {
	return path == "/admin" || strings.HasPrefix(path, Prefix) || path == "/favicon.ico"
}

// securityHeaders are sent with every answer of the console.
var securityHeaders = map[string]string{
	"Content-Security-Policy": "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; " +
		"frame-ancestors 'none'; base-uri 'none'",
	"Cache-Control":                "no-store",
	"Pragma":                       "no-cache",
	"X-Content-Type-Options":       "nosniff",
	"X-Frame-Options":              "DENY",
	"Referrer-Policy":              "no-referrer",
	"Cross-Origin-Opener-Policy":   "same-origin",
	"Cross-Origin-Resource-Policy": "same-origin",
}

// ServeHTTP sets the security headers, refuses an unsafe request from
// another origin and a load of a page by another origin that is not a
// top-level navigation (403), then routes.
func (c *Console) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	for k, v := range securityHeaders {
		h.Set(k, v)
	}
	if err := c.cop.Check(r); err != nil {
		c.log.LogAttrs(r.Context(), slog.LevelWarn, "console: cross-origin request refused",
			slog.String("event", "console_refused"), slog.String("reason", "cross_origin"),
			slog.String("method", r.Method), slog.String("path", r.URL.Path))
		c.forbidden(w, r)
		return
	}
	if crossSiteLoad(r) {
		c.refuse(w, r, "cross_site_load")
		return
	}
	c.mux.ServeHTTP(w, r)
}

// crossSiteLoad reports whether a page of another origin made the browser
// send r other than as a top-level navigation (an image, a frame, a fetch,
// a prefetch), per its Fetch Metadata. A page of the same site (another
// port of the console's host) gets the session cookie sent with such
// loads, SameSite=Strict notwithstanding, and every console page is an
// admin call with the operator's key, audited as the operator's: a page
// looping over images of /admin/revocations pushed the real records out
// of the audit. A request without Fetch Metadata (an older browser, curl)
// passes: the CSRF token still guards every change.
func crossSiteLoad(r *http.Request) bool {
	switch r.Header.Get("Sec-Fetch-Site") {
	case "", "same-origin", "none":
		return false
	}
	navigation := r.Header.Get("Sec-Fetch-Mode") == "navigate" && r.Header.Get("Sec-Fetch-Dest") == "document"
	return !navigation || r.Header.Get("Sec-Purpose") != ""
}

func redirect(w http.ResponseWriter, to string) {
	w.Header().Set("Location", to)
	w.WriteHeader(http.StatusSeeOther)
}
