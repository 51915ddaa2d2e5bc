package main

import (
	"encoding/json"
	"io"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
)

// TestServeConsole: `hallpass serve` with an admin keys file serves the
// console on the admin listener only, beside the admin API, and on bbolt
// the audit route reads the records back (the console's audit page).
func TestServeConsole(t *testing.T) {
	t.Parallel()
	data := t.TempDir()
	keysFile := filepath.Join(data, "admin-keys")
	key := strings.TrimSpace(runCmd(t, nil, "admin-key", "new", "--keys-file", keysFile, "--id", "ops").stdout)
	rs, adminURL := startServeAdmin(t, nil, "--dev", "--data", data, "--admin-keys-file", keysFile)
	waitReady(t, rs.url)
	get := func(url, key string) (*http.Response, string) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, url, nil)
		if key != "" {
			req.Header.Set("Authorization", "Bearer "+key)
		}
		res, err := http.DefaultTransport.RoundTrip(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res, string(b)
	}
	tests := []struct {
		name   string
		url    string
		key    string
		status int
		check  func(t *testing.T, res *http.Response, body string)
	}{
		{name: "console sign-in page", url: adminURL + "/admin/login", status: http.StatusOK, check: func(t *testing.T, res *http.Response, body string) {
			if !strings.Contains(body, `name="key"`) || !strings.HasPrefix(res.Header.Get("Content-Security-Policy"), "default-src 'none'") {
				t.Errorf("not the console's sign-in page")
			}
		}},
		{name: "console needs a session", url: adminURL + "/admin/", status: http.StatusSeeOther},
		{name: "no console on the public listener", url: rs.url + "/admin/login", status: http.StatusNotFound},
		{name: "whoami", url: adminURL + "/v1/admin/whoami", key: key, status: http.StatusOK, check: func(t *testing.T, _ *http.Response, body string) {
			if !strings.Contains(body, `"key_id":"ops"`) {
				t.Errorf("whoami %s", body)
			}
		}},
		{name: "audit read back on bbolt", url: adminURL + "/v1/admin/audit", key: key, status: http.StatusOK, check: func(t *testing.T, _ *http.Response, body string) {
			var out struct {
				Records []struct {
					Who, Action string
				} `json:"records"`
			}
			if err := json.Unmarshal([]byte(body), &out); err != nil || len(out.Records) == 0 || out.Records[0].Action != "GET /v1/admin/whoami" || out.Records[0].Who != "ops" {
				t.Errorf("audit %s (%v)", body, err)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res, body := get(tt.url, tt.key)
			if res.StatusCode != tt.status {
				t.Fatalf("status %d, want %d: %s", res.StatusCode, tt.status, body)
			}
			if tt.check != nil {
				tt.check(t, res, body)
			}
		})
	}
}
