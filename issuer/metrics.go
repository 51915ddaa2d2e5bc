package issuer

import (
	"time"

	"github.com/hallpass/hallpass/account"
	"github.com/hallpass/hallpass/flow"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the issuer's Prometheus collectors, registered on the
// Config's registry (never the global one).
type metrics struct {
	requests      *prometheus.CounterVec
	duration      *prometheus.HistogramVec
	signups       prometheus.Counter
	refreshes     *prometheus.CounterVec
	reuse         prometheus.Counter
	storeLatency  *prometheus.HistogramVec
	rateLimited   *prometheus.CounterVec
	proofFailures *prometheus.CounterVec
	revWriteFails prometheus.Counter
	stepFails     *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hallpass_http_requests_total",
			Help: "HTTP requests by route template, method and status code.",
		}, []string{"route", "method", "code"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "hallpass_http_request_duration_seconds",
			Help:    "HTTP request latency by route template.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5},
		}, []string{"route"}),
		signups: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "hallpass_signups_total",
			Help: "Accounts created.",
		}),
		refreshes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hallpass_refreshes_total",
			Help: "Refresh attempts that reached the store, by outcome (advanced, grace, retried, reused, rejected).",
		}, []string{"outcome"}),
		reuse: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "hallpass_refresh_reuse_detected_total",
			Help: "Refresh-token reuse detections; each revoked a device session.",
		}),
		storeLatency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "hallpass_store_operation_duration_seconds",
			Help:    "Account store latency by operation, errors included.",
			Buckets: []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5},
		}, []string{"op"}),
		rateLimited: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hallpass_rate_limited_total",
			Help: "Requests refused by a rate limit, by rule.",
		}, []string{"rule"}),
		proofFailures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hallpass_dpop_proof_failures_total",
			Help: "DPoP proofs refused, by error code.",
		}, []string{"code"}),
		revWriteFails: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "hallpass_revocation_write_failures_total",
			Help: "Revocation entries the issuer could not write to the revocation store (the entry after a refresh-token reuse counts once, after its retries); verifiers do not learn of them.",
		}),
		stepFails: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hallpass_signout_step_failures_total",
			Help: "Store steps after a revocation entry (end_session, end_account_sessions, delete_account) that still failed after their retries; the entry refuses the tokens, the client cannot repeat the call.",
		}, []string{"op"}),
	}
	// Every op from the start: a first failure between two scrapes would
	// otherwise be a new series' first sample, which increase() misses.
	for _, op := range signOutStepOps {
		m.stepFails.WithLabelValues(op)
	}
	for _, c := range []prometheus.Collector{m.requests, m.duration, m.signups, m.refreshes, m.reuse, m.storeLatency, m.rateLimited, m.proofFailures, m.revWriteFails, m.stepFails} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

func (m *metrics) observeStore(op string, start time.Time) {
	m.storeLatency.WithLabelValues(op).Observe(time.Since(start).Seconds())
}

// flowMetrics is the flows' flow.Observer.
type flowMetrics struct{ m *metrics }

func (f flowMetrics) StoreCall(op string, d time.Duration) {
	f.m.storeLatency.WithLabelValues(op).Observe(d.Seconds())
}
func (f flowMetrics) ProofRefused(code string) { f.m.proofFailures.WithLabelValues(code).Inc() }
func (f flowMetrics) SignedUp()                { f.m.signups.Inc() }
func (f flowMetrics) Refreshed(o account.RefreshOutcome) {
	f.m.refreshes.WithLabelValues(o.String()).Inc()
	if o == account.RefreshReused {
		f.m.reuse.Inc()
	}
}

// RevocationWriteFailed implements flow.RevocationWriteObserver.
func (f flowMetrics) RevocationWriteFailed() { f.m.revWriteFails.Inc() }

// signOutStepOps are the ops of flow.SignOutStepObserver.
var signOutStepOps = []string{"end_session", "end_account_sessions", "delete_account"}

// SignOutStepFailed implements flow.SignOutStepObserver.
func (f flowMetrics) SignOutStepFailed(op string) { f.m.stepFails.WithLabelValues(op).Inc() }

var (
	_ flow.RevocationWriteObserver = flowMetrics{}
	_ flow.SignOutStepObserver     = flowMetrics{}
)
