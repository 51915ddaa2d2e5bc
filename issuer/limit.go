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
// the global budget.
//
// IPv6 clients are counted per /64: one host usually holds a whole /64, so
// counting single addresses would let it take 2^64 budgets.
func (s *Server) checkSignupLimits(c echo.Context) error {
	return s.checkLimits(c,
		limitCheck{"signup_per_ip", limitKeyIP + clientKey(c.RealIP()), s.cfg.SignupPerIP},
		limitCheck{"signup_global", limitKeyGlobal, s.cfg.SignupGlobal})
}

// checkRedeemLimit counts one link-code or recovery-code redemption
// attempt against the client address's budget (one budget for both, so
// guessing cannot switch between them to double its rate).
func (s *Server) checkRedeemLimit(c echo.Context) error {
	return s.checkLimits(c, limitCheck{"redeem_per_ip", "redeem:ip:" + clientKey(c.RealIP()), s.cfg.CodeRedeemPerIP})
}

// limitCheck is one budget: its metric label, limiter key and rule.
type limitCheck struct {
	name, key string
	rule      ratelimit.Rule
}

// checkLimits counts one attempt against each budget. A refused attempt is
// 429 with Retry-After; a limiter that cannot answer (Redis down) fails
// closed with 503.
func (s *Server) checkLimits(c echo.Context, checks ...limitCheck) error {
	if s.cfg.Limiter == nil {
		return nil
	}
	now := s.now()
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
			return errRateLimited(d.RetryAfter)
		}
	}
	return nil
}

// errRateLimited is 429 with Retry-After in whole seconds, at least 1.
func errRateLimited(after time.Duration) *apiError {
	e := fail(http.StatusTooManyRequests, CodeRateLimited, nil)
	e.retryAfter = max(int((after+time.Second-1)/time.Second), 1)
	return e
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
