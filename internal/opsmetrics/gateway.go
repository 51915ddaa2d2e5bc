package opsmetrics

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/hallpass/hallpass/problem"
)

// CodeOK is the code label of allowed requests.
const CodeOK = "ok"

// Outcomes, as package gateway names them.
const (
	outcomeAllowed = "allowed"
	outcomeRefused = "refused"
	outcomeError   = "error"
)

// Gateway counts a gateway's requests and times their authentication; it
// implements gateway.Observer.
type Gateway struct {
	requests *prometheus.CounterVec
	allowed  prometheus.Counter // requests{allowed,ok}, looked up once
	verify   prometheus.Histogram
}

// NewGateway registers the gateway's request metrics on reg.
func NewGateway(reg prometheus.Registerer) (*Gateway, error) {
	if reg == nil {
		return nil, ErrConfig
	}
	g := &Gateway{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hallpass_gateway_requests_total",
			Help: "Requests the gateway answered, by outcome (allowed, refused, error) and problem code (ok when allowed).",
		}, []string{"outcome", "code"}),
		verify: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "hallpass_gateway_verify_duration_seconds",
			Help:    "Time spent authenticating one request: token, DPoP proof, revocation and replay checks, whatever the verdict.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5},
		}),
	}
	for _, c := range []prometheus.Collector{g.requests, g.verify} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	g.allowed = g.requests.WithLabelValues(outcomeAllowed, CodeOK)
	// Exported at 0 from the start, so that rate() and alert rules see
	// the series before the first refusal.
	for _, oc := range [][2]string{
		{outcomeRefused, problem.InvalidToken}, {outcomeRefused, problem.InvalidDPoPProof}, {outcomeRefused, problem.TokenExpired},
		{outcomeRefused, problem.TokenRevoked}, {outcomeError, problem.Unavailable}, {outcomeError, problem.BadGateway},
	} {
		g.requests.WithLabelValues(oc[0], oc[1])
	}
	return g, nil
}

// Request implements gateway.Observer.
func (g *Gateway) Request(outcome, code string) {
	if outcome == outcomeAllowed {
		g.allowed.Inc()
		return
	}
	g.requests.WithLabelValues(outcome, code).Inc()
}

// Authenticated implements gateway.Observer.
func (g *Gateway) Authenticated(d time.Duration) { g.verify.Observe(d.Seconds()) }
