package main

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// An id that is a dot segment would move the call to another admin path
// (accounts/../ban is /v1/admin/ban): refused before any request.
func TestAdminDotSegmentID(t *testing.T) {
	var mu sync.Mutex
	var paths []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		paths = append(paths, r.Method+" "+r.URL.Path)
		mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		w.Write([]byte(`{}`))
	}))
	t.Cleanup(srv.Close)
	env := map[string]string{adminKeyEnv: "hpadm_test", adminURLEnv: srv.URL}
	tests := []struct {
		name string
		args []string
	}{
		{name: "ban", args: []string{"ban", "--account", ".."}},
		{name: "unban", args: []string{"unban", "--account", "."}},
		{name: "devices", args: []string{"devices", "--account", ".."}},
		{name: "revoke-device", args: []string{"revoke-device", "--device", ".."}},
		{name: "revoke-key", args: []string{"revoke-key", "--kid", ".."}},
		{name: "account-by-username", args: []string{"account-by-username", "--username", ".."}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			isUsage(t, runCmd(t, env, append([]string{"admin"}, tc.args...)...))
		})
	}
	mu.Lock()
	defer mu.Unlock()
	if len(paths) != 0 {
		t.Fatalf("requests sent: %q", paths)
	}
}

// Plain http goes only to a loopback address, checked on the address
// dialled (a name such as localhost resolves through /etc/hosts or DNS).
func TestAdminPlainHTTPDialsLoopbackOnly(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	t.Cleanup(srv.Close)
	tests := []struct {
		name, scheme, url string
		refused           bool
	}{
		{name: "loopback", scheme: "http", url: srv.URL},
		{name: "localhost", scheme: "http", url: strings.Replace(srv.URL, "127.0.0.1", "localhost", 1)},
		{name: "TEST-NET-1", scheme: "http", url: "http://192.0.2.1:9090/", refused: true},
		{name: "IPv6 documentation", scheme: "http", url: "http://[2001:db8::1]:9090/", refused: true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			req, err := http.NewRequestWithContext(ctx, http.MethodGet, tc.url, nil)
			if err != nil {
				t.Fatal(err)
			}
			res, err := adminHTTPClient(tc.scheme).Do(req)
			if err == nil {
				res.Body.Close()
			}
			if got := errors.Is(err, errNotLoopback); got != tc.refused {
				t.Fatalf("refused = %v (%v), want %v", got, err, tc.refused)
			}
			if !tc.refused && err != nil {
				t.Fatal(err)
			}
		})
	}
}
