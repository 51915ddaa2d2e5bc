package issuer

import (
	"context"
	"time"

	"github.com/hallpass/hallpass/ratelimit"
)

// NetsOf exposes netsOf to the external tests.
func NetsOf(ip string) (addr, net, site, wide string) {
	n := netsOf(ip)
	return n.addr, n.net, n.site, n.wide
}

// WithLimitDefaults returns cfg with the network budgets and the reserve
// filled as New fills them.
func (cfg Config) WithLimitDefaults() Config {
	cfg.limitDefaults()
	return cfg
}

// MarkSeen marks key as the signup circuit marks a network for window w
// and reports whether it was unseen.
func MarkSeen(l ratelimit.Limiter, key string, w time.Duration, now time.Time) (bool, error) {
	r := seenRule(w)
	d, err := l.Allow(context.Background(), key, r, now)
	return wasUnseen(d, r), err
}
