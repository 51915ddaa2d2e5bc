package issuer_test

import (
	"fmt"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/hallpass/hallpass/issuer"
	"github.com/hallpass/hallpass/ratelimit"
)

// TestSignupRateLimits: per client address (believed from X-Forwarded-For
// only through a trusted proxy) and global; 429 with Retry-After. On Redis
// the budget is shared: a new issuer instance on the same Redis continues
// the count.
func TestSignupRateLimits(t *testing.T) {
	forEachBackend(t, func(t *testing.T, be backend) {
		e := newEnv(t, be, func(c *issuer.Config) {
			c.Limiter = be.limiter(t)
			c.SignupPerIP = ratelimit.Rule{Limit: 3, Per: time.Hour}
			c.SignupGlobal = ratelimit.Rule{Limit: 6, Per: time.Hour}
			c.TrustedProxies = append(c.TrustedProxies, mustPrefix(t, "127.0.0.0/8"))
		})
		n := 0
		signupFrom := func(ip string) resp {
			n++
			req := e.newDevice("EdDSA").signupReq(fmt.Sprintf("limited%d", n))
			req.Header.Set("X-Forwarded-For", ip)
			return e.do(req)
		}
		for i := range 3 {
			if r := signupFrom("203.0.113.1"); r.status != http.StatusCreated {
				t.Fatalf("signup %d: %d %s", i, r.status, r.body)
			}
		}
		r := signupFrom("203.0.113.1")
		if r.status != http.StatusTooManyRequests || r.code(t) != "rate_limited" {
			t.Fatalf("4th signup from one address: %d %s", r.status, r.body)
		}
		if ra, err := strconv.Atoi(r.header.Get("Retry-After")); err != nil || ra < 1 || ra > 3600 {
			t.Fatalf("Retry-After %q", r.header.Get("Retry-After"))
		}
		// Another address still has its budget, counted per /64 on IPv6.
		if r := signupFrom("2001:db8:1:2::1"); r.status != http.StatusCreated {
			t.Fatalf("other address: %d %s", r.status, r.body)
		}
		if be.name() == "redis" {
			e.restart() // a second node on the same Redis shares the budget
		}
		if r := signupFrom("2001:db8:1:2::2"); r.status != http.StatusCreated {
			t.Fatalf("same /64, 2nd: %d %s", r.status, r.body)
		}
		if r := signupFrom("203.0.113.1"); r.status != http.StatusTooManyRequests {
			t.Fatalf("limited address after restart: %d %s", r.status, r.body)
		}
		// Global budget: 6 created so far (3 + 1 + 1, plus this one).
		if r := signupFrom("198.51.100.9"); r.status != http.StatusCreated {
			t.Fatalf("6th signup: %d %s", r.status, r.body)
		}
		if r := signupFrom("198.51.100.10"); r.status != http.StatusTooManyRequests {
			t.Fatalf("global limit: %d %s", r.status, r.body)
		}
		if m := scrape(t, e); !contains(m, `hallpass_rate_limited_total{rule="signup_global"} 1`) {
			t.Errorf("rate-limit metric:\n%s", grep(m, "rate_limited"))
		}
	})
}
