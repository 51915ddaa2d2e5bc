package console

import (
	"log/slog"
	"net/http"
	"strings"

	"github.com/hallpass/hallpass/issuer"
)

// handlerFunc is a console handler that runs with a live session.
type handlerFunc func(w http.ResponseWriter, r *http.Request, s session)

// current returns the request's live session, if any.
func (c *Console) current(r *http.Request) (session, string, bool) {
	id := cookieValue(r, sessionCookieName(r))
	if id == "" {
		return session{}, "", false
	}
	s, ok := c.sessions.get(id, c.cfg.Now())
	return s, id, ok
}

// page wraps a GET handler: without a live session, to the sign-in page.
func (c *Console) page(fn handlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		s, _, ok := c.current(r)
		if !ok {
			redirect(w, Prefix+"login")
			return
		}
		fn(w, r, s)
	}
}

// action wraps a POST handler: a live session and its CSRF token in the
// form, or 403 and nothing done.
func (c *Console) action(fn handlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		s, _, ok := c.current(r)
		if !ok {
			c.refuse(w, r, "no_session")
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, maxForm)
		if err := r.ParseForm(); err != nil || !sameToken(s.csrf, r.PostForm.Get("csrf")) {
			c.refuse(w, r, "csrf")
			return
		}
		fn(w, r, s)
	}
}

// refuse answers 403 to a state change that cannot be allowed.
func (c *Console) refuse(w http.ResponseWriter, r *http.Request, reason string) {
	c.log.LogAttrs(r.Context(), slog.LevelWarn, "console: request refused",
		slog.String("event", "console_refused"), slog.String("reason", reason),
		slog.String("method", r.Method), slog.String("path", r.URL.Path))
	c.forbidden(w, r)
}

func (c *Console) forbidden(w http.ResponseWriter, r *http.Request) {
	c.render(w, http.StatusForbidden, "error", view{Title: "Refused",
		Error: "This request was refused: it did not come from a console page of this session. Nothing was changed."})
}

type loginView struct {
	Token string
	Ended bool
}

// handleLoginForm: GET /admin/login, with a fresh double-submit token.
func (c *Console) handleLoginForm(w http.ResponseWriter, r *http.Request) {
	if _, _, ok := c.current(r); ok {
		redirect(w, Prefix)
		return
	}
	c.loginForm(w, r, http.StatusOK, "", r.URL.Query().Has("ended"))
}

func (c *Console) loginForm(w http.ResponseWriter, r *http.Request, status int, msg string, ended bool) {
	tok, err := newToken(c.cfg.Rand)
	if err != nil {
		c.internal(w, r, err)
		return
	}
	setCookie(w, r, loginCookieName(r), tok, int(loginCookieTTL.Seconds()))
	c.render(w, status, "login", view{Title: "Sign in", Error: msg, Body: loginView{Token: tok, Ended: ended}})
}

// handleLogin: POST /admin/login. The key goes to GET /v1/admin/whoami, so
// a wrong one is refused, counted and sampled into the audit exactly as
// by the admin API; the answer never says more than "refused".
func (c *Console) handleLogin(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, maxForm)
	if err := r.ParseForm(); err != nil || !sameToken(cookieValue(r, loginCookieName(r)), r.PostForm.Get("csrf")) {
		c.refuse(w, r, "login_csrf")
		return
	}
	key := strings.TrimSpace(r.PostForm.Get("key"))
	a := call(r.Context(), c.cfg.Admin, r, key, http.MethodGet, issuer.PathAdminWhoami, nil)
	switch {
	case a.status == http.StatusTooManyRequests:
		if a.retryAfter != "" {
			w.Header().Set("Retry-After", a.retryAfter)
		}
		c.loginForm(w, r, a.status, "Too many failed sign-ins from this address. Try again later.", false)
		return
	case a.status == http.StatusUnauthorized:
		c.loginForm(w, r, a.status, "Sign-in refused.", false)
		return
	case !a.ok():
		c.loginForm(w, r, http.StatusServiceUnavailable, "The admin API cannot check keys now. Try again later.", false)
		return
	}
	var who struct {
		KeyID string `json:"key_id"`
	}
	if err := a.decode(&who); err != nil || who.KeyID == "" {
		c.internal(w, r, err)
		return
	}
	id, err := c.sessions.add(c.cfg.Rand, &session{key: key, keyID: who.KeyID}, c.cfg.Now())
	if err != nil {
		c.internal(w, r, err)
		return
	}
	if prev := cookieValue(r, sessionCookieName(r)); prev != "" {
		// The browser's previous session (another tab's form, another
		// key) ends: its key must not stay usable by a copy of its cookie.
		c.sessions.end(prev)
	}
	setCookie(w, r, loginCookieName(r), "", -1)
	setCookie(w, r, sessionCookieName(r), id, int(c.cfg.SessionTTL.Seconds()))
	c.log.LogAttrs(r.Context(), slog.LevelInfo, "console: signed in",
		slog.String("event", "console_sign_in"), slog.String("who", who.KeyID))
	redirect(w, Prefix)
}

// handleLogout: POST /admin/logout.
func (c *Console) handleLogout(w http.ResponseWriter, r *http.Request, s session) {
	c.endSession(w, r)
	c.log.LogAttrs(r.Context(), slog.LevelInfo, "console: signed out",
		slog.String("event", "console_sign_out"), slog.String("who", s.keyID))
	redirect(w, Prefix+"login")
}

func (c *Console) endSession(w http.ResponseWriter, r *http.Request) {
	if id := cookieValue(r, sessionCookieName(r)); id != "" {
		c.sessions.end(id)
	}
	setCookie(w, r, sessionCookieName(r), "", -1)
}
