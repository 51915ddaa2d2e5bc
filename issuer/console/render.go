package console

import (
	"bytes"
	"context"
	"embed"
	"fmt"
	"html/template"
	"log/slog"
	"net/http"
	"time"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static/console.css
var css []byte

// pageNames are the templates/*.html pages; each is parsed with
// layout.html.
var pageNames = []string{"login", "home", "account", "code", "revocations", "keys", "audit", "error"}

type pages map[string]*template.Template

var funcs = template.FuncMap{
	"when": func(t time.Time) string {
		if t.IsZero() {
			return "never"
		}
		return t.UTC().Format("2006-01-02 15:04:05Z")
	},
	"whenp": func(t *time.Time) string {
		if t == nil {
			return "never"
		}
		return t.UTC().Format("2006-01-02 15:04:05Z")
	},
}

func parsePages() (pages, error) {
	p := pages{}
	for _, n := range pageNames {
		t, err := template.New(n).Funcs(funcs).ParseFS(templateFS, "templates/layout.html", "templates/"+n+".html")
		if err != nil {
			return nil, fmt.Errorf("console: template %s: %w", n, err)
		}
		p[n] = t
	}
	return p, nil
}

// view is what every page gets.
type view struct {
	Title     string
	KeyID     string // the signed-in key's id; "" on the sign-in page
	CSRF      string
	Flash     string
	Error     string
	Query     string // a search that found nothing
	RequestID string // the admin call that failed
	Body      any
}

func (c *Console) view(r *http.Request, s session, title string, body any) view {
	return view{Title: title, KeyID: s.keyID, CSRF: s.csrf, Flash: flashes[r.URL.Query().Get("done")], Body: body}
}

// render executes a page into a buffer first: a template error never
// leaves half a page.
func (c *Console) render(w http.ResponseWriter, status int, name string, v view) {
	var buf bytes.Buffer
	if err := c.pages[name].ExecuteTemplate(&buf, "layout", v); err != nil {
		c.log.LogAttrs(context.Background(), slog.LevelError, "console: template failed", slog.String("page", name), slog.String("error", err.Error()))
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	w.Write(buf.Bytes())
}

// answered reports whether the admin API answered 2xx, decoding the answer
// into out (when not nil); otherwise it has answered the browser. A key
// the admin API no longer accepts ends the session.
func (c *Console) answered(w http.ResponseWriter, r *http.Request, s session, a apiAnswer, out any) bool {
	if a.ok() {
		if out == nil {
			return true
		}
		if err := a.decode(out); err != nil {
			c.internal(w, r, err)
			return false
		}
		return true
	}
	switch a.status {
	case http.StatusUnauthorized:
		c.endSession(w, r)
		redirect(w, Prefix+"login?ended")
	case http.StatusNotFound:
		c.notFound(w, r, s)
	default:
		if a.retryAfter != "" {
			w.Header().Set("Retry-After", a.retryAfter)
		}
		v := c.view(r, s, "Refused", nil)
		v.Error = fmt.Sprintf("The admin API answered %d (%s). Nothing else was done.", a.status, a.code)
		v.RequestID = a.requestID
		c.render(w, a.status, "error", v)
	}
	return false
}

func (c *Console) notFound(w http.ResponseWriter, r *http.Request, s session) {
	v := c.view(r, s, "Not found", nil)
	v.Error = "No such account or device."
	c.render(w, http.StatusNotFound, "error", v)
}

func (c *Console) internal(w http.ResponseWriter, r *http.Request, err error) {
	msg := "no detail"
	if err != nil {
		msg = err.Error()
	}
	c.log.LogAttrs(r.Context(), slog.LevelError, "console: internal error", slog.String("error", msg))
	c.render(w, http.StatusInternalServerError, "error", view{Title: "Error", Error: "Internal error."})
}

func (c *Console) handleCSS(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "text/css; charset=utf-8")
	w.Write(css)
}
