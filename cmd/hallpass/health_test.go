package main

import (
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// TestHealth: `hallpass health URL` succeeds only on a 2xx answer within
// the timeout, follows no redirect, sends no credentials, and fails with
// exit status 1 (Docker reserves 2) and one line otherwise.
func TestHealth(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	t.Cleanup(func() { close(release) })
	var sawAuth atomic.Bool
	mux := http.NewServeMux()
	mux.HandleFunc("/ok", func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "" || r.Header.Get("Cookie") != "" {
			sawAuth.Store(true)
		}
		w.Write([]byte("ok"))
	})
	mux.HandleFunc("/empty", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNoContent) })
	mux.HandleFunc("/down", func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusServiceUnavailable)
		w.Write([]byte("secret-ish body"))
	})
	mux.HandleFunc("/moved", func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, "/ok", http.StatusFound) })
	mux.HandleFunc("/slow", func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)

	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := "http://" + l.Addr().String() + "/healthz"
	l.Close()

	for _, tc := range []struct {
		name    string
		args    []string
		ok      bool
		usage   bool
		message string // in the error
		within  time.Duration
	}{
		{name: "200", args: []string{srv.URL + "/ok"}, ok: true},
		{name: "204", args: []string{srv.URL + "/empty"}, ok: true},
		{name: "503", args: []string{srv.URL + "/down"}, message: "answered 503 Service Unavailable"},
		{name: "404", args: []string{srv.URL + "/nope"}, message: "answered 404 Not Found"},
		{name: "redirect not followed", args: []string{srv.URL + "/moved"}, message: "answered 302 Found"},
		{name: "no answer in time", args: []string{"--timeout", "300ms", srv.URL + "/slow"}, message: "no answer within 300ms", within: 5 * time.Second},
		{name: "connection refused", args: []string{closed}, message: "connection refused"},
		{name: "no URL", args: nil, usage: true},
		{name: "two URLs", args: []string{srv.URL, srv.URL}, usage: true},
		{name: "flag after the URL", args: []string{srv.URL + "/ok", "--timeout", "1s"}, usage: true},
		{name: "relative", args: []string{"/healthz"}, usage: true},
		{name: "other scheme", args: []string{"ftp://127.0.0.1/healthz"}, usage: true},
		{name: "user info", args: []string{strings.Replace(srv.URL, "http://", "http://u:p@", 1) + "/ok"}, usage: true},
		{name: "zero timeout", args: []string{"--timeout", "0s", srv.URL + "/ok"}, usage: true},
		{name: "timeout too long", args: []string{"--timeout", "2m", srv.URL + "/ok"}, usage: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			start := time.Now()
			r := runCmd(t, nil, append([]string{"health"}, tc.args...)...)
			if tc.within > 0 && time.Since(start) > tc.within {
				t.Errorf("took %v, want under %v", time.Since(start), tc.within)
			}
			if r.stdout != "" {
				t.Errorf("stdout %q, want nothing", r.stdout)
			}
			var b strings.Builder
			code := exitStatus(&b, r.err)
			switch {
			case tc.ok:
				if r.err != nil || code != 0 {
					t.Fatalf("err %v (exit %d), want success", r.err, code)
				}
				return
			case code != 1:
				t.Fatalf("exit status %d, want 1", code)
			case tc.usage != errors.Is(r.err, errUsage):
				t.Fatalf("err %v, usage error %v", r.err, tc.usage)
			case !strings.Contains(r.err.Error(), tc.message):
				t.Fatalf("err %q, want it to say %q", r.err, tc.message)
			}
			if strings.Count(b.String(), "\n") != 1 || strings.Contains(b.String(), "secret-ish") {
				t.Errorf("printed %q, want one line without the body", b.String())
			}
		})
	}
	if sawAuth.Load() {
		t.Error("the probe sent credentials")
	}
}
