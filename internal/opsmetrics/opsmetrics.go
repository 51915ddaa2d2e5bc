package opsmetrics

import (
	"errors"
	"math"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Mirror is what the revocation collectors read of a mirror;
// *revocation.Mirror is one.
type Mirror interface {
	LastHeard() time.Time
	MaxStaleness() time.Duration
	Len() int
}

// ErrConfig reports a missing input.
var ErrConfig = errors.New("opsmetrics: invalid configuration")

// Revocation returns the collectors of a revocation mirror's lag and size,
// ages read from now (nil: time.Now) at every scrape.
func Revocation(m Mirror, now func() time.Time) ([]prometheus.Collector, error) {
	if m == nil {
		return nil, ErrConfig
	}
	if now == nil {
		now = time.Now
	}
	return []prometheus.Collector{
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "hallpass_revocation_mirror_age_seconds",
			Help: "Seconds since the revocation mirror last heard from its store (+Inf before its first snapshot); past hallpass_revocation_mirror_max_staleness_seconds it refuses every token.",
		}, func() float64 { return age(now(), m.LastHeard()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "hallpass_revocation_mirror_max_staleness_seconds",
			Help: "How long the revocation mirror may go without hearing from its store before it fails closed (--revocation-max-staleness).",
		}, func() float64 { return m.MaxStaleness().Seconds() }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "hallpass_revocation_mirror_entries",
			Help: "Revocation entries the mirror holds, expired ones not yet swept included.",
		}, func() float64 { return float64(m.Len()) }),
	}, nil
}

// KeySetAge returns the collector of the key set's age: seconds from
// fetchedAt() to now (nil: time.Now) at every scrape.
func KeySetAge(fetchedAt func() time.Time, now func() time.Time) (prometheus.Collector, error) {
	if fetchedAt == nil {
		return nil, ErrConfig
	}
	if now == nil {
		now = time.Now
	}
	return prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "hallpass_key_set_age_seconds",
		Help: "Seconds since the key set in use was fetched from the issuer (+Inf if never).",
	}, func() float64 { return age(now(), fetchedAt()) }), nil
}

// age is now - t in seconds, +Inf for a zero t, 0 for a t in the future
// (a clock stepped back).
func age(now, t time.Time) float64 {
	if t.IsZero() {
		return math.Inf(1)
	}
	return max(0, now.Sub(t).Seconds())
}
