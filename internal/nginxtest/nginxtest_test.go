package nginxtest

import (
	"io"
	"net/http"
	"net/http/httptest"
	"testing"
)

func TestStartProxies(t *testing.T) {
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "upstream "+r.URL.Path+" "+r.Header.Get("X-Test"))
	}))
	defer up.Close()
	s := Start(t, `
    server {
        listen @LISTEN@;
        location / {
            proxy_pass `+up.URL+`;
            proxy_set_header X-Test from-nginx;
        }
    }`)
	res, err := http.Get(s.URL() + "/hello")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	if res.StatusCode != 200 || string(b) != "upstream /hello from-nginx" {
		t.Fatalf("%d %q\n%s", res.StatusCode, b, s.ErrorLog())
	}
	if res.Header.Get("Server") == "" {
		t.Fatal("no Server header: not nginx?")
	}
}

func TestStartBadConfigFails(t *testing.T) {
	ft := &fakeT{TB: t}
	func() {
		defer func() { recover() }()
		Start(ft, "server { listen @LISTEN@; no_such_directive on; }")
	}()
	if !ft.failed {
		t.Fatal("a bad configuration did not fail the test")
	}
}

// fakeT records Fatal instead of stopping the real test.
type fakeT struct {
	testing.TB
	failed bool
}

func (f *fakeT) Fatal(args ...any)     { f.failed = true; panic("fatal") }
func (f *fakeT) Fatalf(string, ...any) { f.failed = true; panic("fatal") }
func (f *fakeT) Helper()               {}
