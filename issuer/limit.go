package issuer

import (
	"net/http"
	"net/netip"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/hallpass/hallpass/ratelimit"
)

// signupKeys are the limiter keys of the two signup budgets.
const (
	limitKeyIP     = "signup:ip:"
	limitKeyGlobal = "signup:global"
)

// checkSignupLimits counts one signup attempt against the per-address and
// the global budget. A refused attempt is 429 with Retry-After; a limiter
// that cannot answer (Redis down) fails closed with 503.
//
// IPv6 clients are counted per /64: one host usually holds a whole /64, so
// counting single addresses would let it take 2^64 budgets.
func (s *Server) checkSignupLimits(c echo.Context) error {
	if s.cfg.Limiter == nil {
		return nil
	}
	now := s.now()
	checks := [...]struct {
		name, key string
		rule      ratelimit.Rule
	}{
		{"signup_per_ip", limitKeyIP + clientKey(c.RealIP()), s.cfg.SignupPerIP},
		{"signup_global", limitKeyGlobal, s.cfg.SignupGlobal},
	}
	for _, ck := range checks {
		if ck.rule.Unlimited() {
			continue
		}
		ctx, cancel := s.storeCtx(c.Request().Context())
		d, err := s.cfg.Limiter.Allow(ctx, ck.key, ck.rule, now)
		cancel()
		if err != nil {
			return errUnavailable(err)
		}
		if !d.Allowed {
			s.metrics.rateLimited.WithLabelValues(ck.name).Inc()
			e := fail(http.StatusTooManyRequests, CodeRateLimited, nil)
			e.retryAfter = int((d.RetryAfter + time.Second - 1) / time.Second)
			if e.retryAfter < 1 {
				e.retryAfter = 1
			}
			return e
		}
	}
	return nil
}

// clientKey is the address a budget is kept for: an IPv4 address, or the
// /64 of an IPv6 address.
func clientKey(ip string) string {
	a, err := netip.ParseAddr(ip)
	if err != nil {
		return "unknown"
	}
	a = a.Unmap()
	if a.Is6() {
		p, _ := a.WithZone("").Prefix(64)
		return p.String()
	}
	return a.String()
}
