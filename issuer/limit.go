package issuer

import (
	"context"
	"errors"
	"time"
)

// Rule is a budget: N events per Per.
type Rule struct {
	N   int
	Per time.Duration
}

func (r Rule) validate() error {
	if r.N < 0 || r.Per < 0 || (r.N > 0) != (r.Per > 0) {
		return errors.New("issuer: invalid rate-limit rule")
	}
	return nil
}

// Limiter counts events per key.
type Limiter interface {
	Allow(ctx context.Context, key string, r Rule) (ok bool, retryAfter time.Duration, err error)
}

func (s *Server) checkSignupLimits(c interface{ RealIP() string }) error { return nil }
