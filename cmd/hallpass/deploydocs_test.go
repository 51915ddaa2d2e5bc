package main

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestDeployReadinessCommand runs the readiness check docs/deploy.md gives
// after `docker compose up -d` against an edge that answers /readyz with
// 200 and one that answers 503: it must say "ready" for the first only.
func TestDeployReadinessCommand(t *testing.T) {
	if _, err := exec.LookPath("curl"); err != nil {
		t.Fatal("the docs/deploy.md commands need curl")
	}
	raw, err := os.ReadFile(repoRoot + "/docs/deploy.md")
	if err != nil {
		t.Fatal(err)
	}
	line := regexp.MustCompile(`(?m)^curl .*http://127\.0\.0\.1:8080/readyz.*$`).FindString(string(raw))
	if line == "" {
		t.Fatal("docs/deploy.md has no readiness check of http://127.0.0.1:8080/readyz")
	}
	for _, tc := range []struct {
		name      string
		status    int
		wantReady bool
	}{
		{"ready", http.StatusOK, true},
		{"not ready", http.StatusServiceUnavailable, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.WriteHeader(tc.status)
				w.Write([]byte(`{"status":"` + tc.name + `"}`))
			}))
			defer srv.Close()
			cmd := strings.ReplaceAll(line, "http://127.0.0.1:8080", srv.URL)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			out, _ := exec.CommandContext(ctx, "sh", "-c", cmd).CombinedOutput()
			// The body ends in "}: a last word "ready" is the echo's.
			saysReady := strings.HasSuffix(strings.TrimSpace(string(out)), "ready")
			if saysReady != tc.wantReady {
				t.Errorf("%q against /readyz answering %d printed %q", line, tc.status, out)
			}
		})
	}
}
