package main

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/hallpass/hallpass/internal/logbuf"
)

// TestServerLogRoutesRedis: after serverLogTLS (serve and gateway), a line
// go-redis logs itself comes out on stderr as JSON, not as go-redis's
// plain "redis: ..." text.
func TestServerLogRoutesRedis(t *testing.T) {
	var stderr logbuf.Buffer
	if _, _, err := serverLogTLS(&env{stderr: &stderr}, "warn", "", "", "1.2"); err != nil {
		t.Fatal(err)
	}
	rc := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", DialTimeout: 50 * time.Millisecond, ContextTimeoutEnabled: true})
	defer rc.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	_ = rc.Set(ctx, "k", "v", 500*time.Microsecond).Err() // go-redis logs the truncation to 1 ms
	out := strings.TrimSpace(stderr.String())
	if !strings.Contains(out, "truncating to 1ms") {
		t.Fatalf("go-redis's line did not reach the server log:\n%s", out)
	}
	for _, l := range strings.Split(out, "\n") {
		if !json.Valid([]byte(l)) {
			t.Errorf("not a JSON line: %q", l)
		}
	}
}
