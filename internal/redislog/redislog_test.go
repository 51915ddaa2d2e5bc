package redislog_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/hallpass/hallpass/internal/logbuf"
	"github.com/hallpass/hallpass/internal/redislog"
)

// TestInstall makes go-redis write one of its own log lines (it truncates a
// sub-millisecond expiry to 1 ms, and says so through its internal logger
// while it builds the command, before any network I/O) and checks that the
// line comes out of slog as one JSON object.
func TestInstall(t *testing.T) {
	var buf logbuf.Buffer
	redislog.Install(slog.New(slog.NewJSONHandler(&buf, nil)))
	// Nothing listens on port 1: the command fails, the log line is made
	// before.
	rc := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", DialTimeout: 100 * time.Millisecond, MaxRetries: -1, ContextTimeoutEnabled: true})
	defer rc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	_ = rc.Set(ctx, "k", "v", 500*time.Microsecond).Err()

	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) == 0 || lines[0] == "" {
		t.Fatal("go-redis logged nothing through slog")
	}
	// Every line is JSON (the pool may add its own dial failures), and
	// the truncation line is among them.
	found := false
	for _, l := range lines {
		var rec struct {
			Level, Msg, Detail string
		}
		if err := json.Unmarshal([]byte(l), &rec); err != nil {
			t.Fatalf("not a JSON line: %q: %v", l, err)
		}
		if rec.Level != "WARN" || rec.Msg != redislog.Message {
			t.Errorf("level %q msg %q, want WARN %q", rec.Level, rec.Msg, redislog.Message)
		}
		found = found || strings.Contains(rec.Detail, "truncating to 1ms")
	}
	if !found {
		t.Errorf("no line has go-redis's truncation message:\n%s", buf.String())
	}
}

func TestPrintf(t *testing.T) {
	tests := []struct {
		name   string
		format string
		args   []any
		detail string
	}{
		{name: "formatted", format: "redis: failed to close connection: %v", args: []any{"broken pipe"}, detail: "redis: failed to close connection: broken pipe"},
		{name: "trailing newline trimmed", format: "sentinel: new master=%q\n", args: []any{"m"}, detail: `sentinel: new master="m"`},
		{name: "no args", format: "plain", detail: "plain"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			redislog.New(slog.New(slog.NewJSONHandler(&buf, nil))).Printf(context.Background(), tc.format, tc.args...)
			var rec map[string]any
			if err := json.Unmarshal(buf.Bytes(), &rec); err != nil {
				t.Fatalf("not JSON: %q", buf.String())
			}
			if rec["detail"] != tc.detail || rec["msg"] != redislog.Message {
				t.Errorf("got %v, want detail %q", rec, tc.detail)
			}
		})
	}
	// A nil logger discards.
	redislog.New(nil).Printf(context.Background(), "x")
}
