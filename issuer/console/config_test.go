package console_test

import (
	"net/http"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/hallpass/hallpass/issuer/console"
)

func TestNewValidates(t *testing.T) {
	h := http.NotFoundHandler()
	tests := []struct {
		name string
		cfg  console.Config
		ok   bool
	}{
		{name: "defaults", cfg: console.Config{Admin: h, Public: h}, ok: true},
		{name: "no admin handler", cfg: console.Config{Public: h}},
		{name: "no public handler", cfg: console.Config{Admin: h}},
		{name: "lifetime too long", cfg: console.Config{Admin: h, Public: h, SessionTTL: 13 * time.Hour}},
		{name: "negative lifetime", cfg: console.Config{Admin: h, Public: h, SessionTTL: -time.Second}},
		{name: "idle longer than the lifetime", cfg: console.Config{Admin: h, Public: h, SessionTTL: time.Minute, IdleTimeout: time.Hour}},
		{name: "short lifetime, default idle", cfg: console.Config{Admin: h, Public: h, SessionTTL: time.Minute}, ok: true},
		{name: "negative max sessions", cfg: console.Config{Admin: h, Public: h, MaxSessions: -1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := console.New(tt.cfg)
			if (err == nil) != tt.ok || (c != nil) != tt.ok {
				t.Fatalf("New: %v, want ok=%v", err, tt.ok)
			}
		})
	}
}

// TestDeps: the console reaches the store only through the admin API; it
// never depends on a storage engine.
func TestDeps(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "github.com/hallpass/hallpass/issuer/console").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	for _, dep := range strings.Fields(string(out)) {
		for _, banned := range []string{"github.com/redis/", "go.etcd.io/bbolt", "/boltstore", "/redisstore", "/redisaudit"} {
			if strings.Contains(dep, banned) {
				t.Errorf("console depends on %s", dep)
			}
		}
	}
}
