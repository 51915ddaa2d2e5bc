package console

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"
)

// Cookie names. Over TLS the session cookie carries the __Secure- prefix,
// which browsers accept only with the Secure attribute.
const (
	cookieSession       = "hallpass-console"
	cookieSessionSecure = "__Secure-hallpass-console"
	cookieLogin         = "hallpass-console-login"
	cookieLoginSecure   = "__Secure-hallpass-console-login"
	cookiePath          = Prefix
	loginCookieTTL      = 10 * time.Minute
	tokenBytes          = 32
)

// session is one signed-in browser.
type session struct {
	key     string // the admin key; never rendered, logged or sent back
	keyID   string
	csrf    string
	created time.Time
	seen    time.Time
	code    supportCodeView // a support code issued, until its page shows it
}

// sessions is the in-memory session table, keyed by the SHA-256 of the
// cookie value (a lookup never compares the secret itself).
type sessions struct {
	ttl, idle time.Duration
	max       int

	mu sync.Mutex
	m  map[[sha256.Size]byte]*session
}

// newToken returns 256 random bits, base64url.
func newToken(r io.Reader) (string, error) {
	b := make([]byte, tokenBytes)
	if _, err := io.ReadFull(r, b); err != nil {
		return "", fmt.Errorf("console: random: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// add stores s under a new id and returns the id (the cookie value).
// Expired sessions are dropped first; when the table is still full the
// oldest goes.
func (t *sessions) add(r io.Reader, s *session, now time.Time) (string, error) {
	id, err := newToken(r)
	if err != nil {
		return "", err
	}
	if s.csrf, err = newToken(r); err != nil {
		return "", err
	}
	s.created, s.seen = now, now
	t.mu.Lock()
	defer t.mu.Unlock()
	var oldest [sha256.Size]byte
	var oldestAt time.Time
	for k, v := range t.m {
		if t.expired(v, now) {
			delete(t.m, k)
		} else if oldestAt.IsZero() || v.created.Before(oldestAt) {
			oldest, oldestAt = k, v.created
		}
	}
	if len(t.m) >= t.max {
		delete(t.m, oldest)
	}
	t.m[sha256.Sum256([]byte(id))] = s
	return id, nil
}

func (t *sessions) expired(s *session, now time.Time) bool {
	return now.Sub(s.created) >= t.ttl || now.Sub(s.seen) >= t.idle || now.Before(s.created)
}

// get returns a copy of the live session of id and marks it seen; an
// expired one is dropped.
func (t *sessions) get(id string, now time.Time) (session, bool) {
	k := sha256.Sum256([]byte(id))
	t.mu.Lock()
	defer t.mu.Unlock()
	s, ok := t.m[k]
	if !ok {
		return session{}, false
	}
	if t.expired(s, now) {
		delete(t.m, k)
		return session{}, false
	}
	s.seen = now
	return *s, true
}

// stashCode keeps v for the live session of id until takeCode: the code
// is shown by the page an issuing POST redirects to, so that reloading
// that page issues no other code.
func (t *sessions) stashCode(id string, v supportCodeView) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if s, ok := t.m[sha256.Sum256([]byte(id))]; ok {
		s.code = v
	}
}

// takeCode returns the code stashed for the session of id and account
// accountID, and forgets it: it is shown once.
func (t *sessions) takeCode(id, accountID string) (supportCodeView, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	s, ok := t.m[sha256.Sum256([]byte(id))]
	if !ok || s.code.Code == "" || s.code.AccountID != accountID {
		return supportCodeView{}, false
	}
	v := s.code
	s.code = supportCodeView{}
	return v, true
}

// end drops the session of id, if any.
func (t *sessions) end(id string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.m, sha256.Sum256([]byte(id)))
}

// len is the number of sessions held, expired ones included.
func (t *sessions) len() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.m)
}

// sameToken compares a token from a form with the expected one in
// constant time; an empty expected token never matches.
func sameToken(expected, tainted string) bool {
	if expected == "" {
		return false
	}
	return subtle.ConstantTimeCompare([]byte(expected), []byte(tainted)) == 1
}

func sessionCookieName(r *http.Request) string {
	if r.TLS != nil {
		return cookieSessionSecure
	}
	return cookieSession
}

func loginCookieName(r *http.Request) string {
	if r.TLS != nil {
		return cookieLoginSecure
	}
	return cookieLogin
}

// setCookie sets (maxAge > 0) or clears (maxAge < 0) a console cookie:
// HttpOnly, SameSite=Strict, Path /admin/, Secure over TLS, host-only.
func setCookie(w http.ResponseWriter, r *http.Request, name, value string, maxAge int) {
	http.SetCookie(w, &http.Cookie{
		Name: name, Value: value, Path: cookiePath, MaxAge: maxAge,
		HttpOnly: true, Secure: r.TLS != nil, SameSite: http.SameSiteStrictMode,
	})
}

// cookieValue returns the value of the one cookie named name; "" when
// absent or sent more than once (a cookie planted from another path or
// subdomain must not shadow ours).
func cookieValue(r *http.Request, name string) string {
	var v string
	n := 0
	for _, c := range r.CookiesNamed(name) {
		v = c.Value
		n++
	}
	if n != 1 {
		return ""
	}
	return v
}
