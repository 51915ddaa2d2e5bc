package main

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/hallpass/hallpass/internal/opsmetrics"
	"github.com/hallpass/hallpass/problem"
	"github.com/hallpass/hallpass/socketio/socketauth"
	"github.com/hallpass/hallpass/verifier"
)

// The ops listener (--metrics-listen): GET /healthz, /readyz and /metrics,
// never on --listen. 9102 follows the issuer's metrics (9100) and the
// gateway's ops listener (9101), as docker-compose.yml lays them out.
const (
	metricsOff           = "off"
	defaultMetricsListen = "127.0.0.1:9102"
)

// checkMetricsListen validates --metrics-listen against --listen.
func checkMetricsListen(metrics, listen string) error {
	if metrics == metricsOff {
		return nil
	}
	_, port, err := net.SplitHostPort(metrics)
	if err != nil {
		return errors.New("--metrics-listen: want host:port or off")
	}
	if metrics == listen && port != "0" {
		return errors.New("--metrics-listen must not be the socket.io listener (--listen)")
	}
	return nil
}

// socketMetrics counts handshakes and the sockets the guard dropped; it
// implements socketauth.Observer.
type socketMetrics struct {
	handshakes  *prometheus.CounterVec
	allowed     prometheus.Counter // handshakes{allowed,ok}, looked up once
	disconnects *prometheus.CounterVec
}

// newSocketMetrics registers the socket counters on reg, every expected
// series at 0 so that rate() and alert rules see it before the first event.
func newSocketMetrics(reg prometheus.Registerer) (*socketMetrics, error) {
	m := &socketMetrics{
		handshakes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hallpass_socket_handshakes_total",
			Help: "socket.io handshakes answered, by outcome (allowed, refused, error) and problem code (ok when allowed).",
		}, []string{"outcome", "code"}),
		disconnects: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "hallpass_socket_disconnects_total",
			Help: "Sockets the guard disconnected, by reason (token_expired, token_revoked, unavailable).",
		}, []string{"code"}),
	}
	for _, c := range []prometheus.Collector{m.handshakes, m.disconnects} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	m.allowed = m.handshakes.WithLabelValues(socketauth.OutcomeAllowed, opsmetrics.CodeOK)
	for _, oc := range [][2]string{
		{socketauth.OutcomeRefused, problem.InvalidToken}, {socketauth.OutcomeRefused, problem.InvalidDPoPProof},
		{socketauth.OutcomeRefused, problem.TokenExpired}, {socketauth.OutcomeRefused, problem.TokenRevoked},
		{socketauth.OutcomeError, problem.Unavailable},
	} {
		m.handshakes.WithLabelValues(oc[0], oc[1])
	}
	for _, r := range []string{socketauth.ReasonTokenExpired, socketauth.ReasonTokenRevoked, socketauth.ReasonUnavailable} {
		m.disconnects.WithLabelValues(r)
	}
	return m, nil
}

// Handshake implements socketauth.Observer.
func (m *socketMetrics) Handshake(outcome, code string) {
	if outcome == socketauth.OutcomeAllowed {
		m.allowed.Inc()
		return
	}
	m.handshakes.WithLabelValues(outcome, code).Inc()
}

// Disconnected implements socketauth.Observer.
func (m *socketMetrics) Disconnected(reason string) { m.disconnects.WithLabelValues(reason).Inc() }

// ops is the ops listener's registry and what /readyz reads.
type ops struct {
	reg          *prometheus.Registry
	socket       *socketMetrics
	keys         fetchedAt     // nil with --keys-file: a fixed set never goes stale
	keysMaxStale time.Duration // --keys-max-stale
	app          *app          // set by watch
	log          *slog.Logger
}

// fetchedAt is what ops reads of a followed key set; *remotekeys.KeySet
// is one.
type fetchedAt interface{ FetchedAt() time.Time }

// newOps builds the registry: Go and process metrics, the socket counters
// and, for a followed key set, its age.
func newOps(ks verifier.KeySource, keysMaxStale time.Duration, log *slog.Logger) (*ops, error) {
	o := &ops{reg: prometheus.NewRegistry(), keysMaxStale: keysMaxStale, log: log}
	o.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	var err error
	if o.socket, err = newSocketMetrics(o.reg); err != nil {
		return nil, err
	}
	if fa, ok := ks.(fetchedAt); ok {
		o.keys = fa
		age, err := opsmetrics.KeySetAge(fa.FetchedAt, nil)
		if err != nil {
			return nil, err
		}
		o.reg.MustRegister(age)
	}
	return o, nil
}

// watch registers what only exists once the app does: the live sockets and
// the revocation mirror's lag and size.
func (o *ops) watch(a *app) error {
	o.app = a
	o.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "hallpass_socket_connections",
		Help: "Authenticated sockets the guard watches (accepted handshakes whose socket has not gone).",
	}, func() float64 { return float64(a.guard.Len()) }))
	if a.mirror == nil {
		return nil
	}
	cs, err := opsmetrics.Revocation(a.mirror, nil)
	if err != nil {
		return err
	}
	o.reg.MustRegister(cs...)
	return nil
}

// Handler answers GET and HEAD /healthz, /readyz and /metrics, and 404 to
// anything else (opsmetrics.Handler, as the gateway's).
func (o *ops) Handler() http.Handler {
	return opsmetrics.Handler(o.reg, func(context.Context) []string { return o.notReady() }, o.log)
}

// notReady returns why new handshakes would be refused (fixed text and the
// process's own figures); none when ready.
func (o *ops) notReady() []string {
	var reasons []string
	if o.keys != nil {
		if why := opsmetrics.KeySetReason(o.keys.FetchedAt(), time.Now(), o.keysMaxStale); why != "" {
			reasons = append(reasons, why)
		}
	}
	if o.app != nil && o.app.mirror != nil {
		if why := opsmetrics.MirrorReason(o.app.mirror.Ready()); why != "" {
			reasons = append(reasons, why)
		}
	}
	return reasons
}

// serveBoth serves the socket.io listener and, when opsLn is set, o on the
// ops listener, until ctx is done or either fails; then it stops both.
func serveBoth(ctx context.Context, ln net.Listener, h http.Handler, opsLn net.Listener, o *ops, log *slog.Logger) error {
	if opsLn == nil {
		return serve(ctx, ln, h, log)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	errc := make(chan error, 1)
	go func() {
		err := serve(ctx, opsLn, o.Handler(), log)
		cancel()
		errc <- err
	}()
	err := serve(ctx, ln, h, log)
	cancel()
	return errors.Join(err, <-errc)
}
