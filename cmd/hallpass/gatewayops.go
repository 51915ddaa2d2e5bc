package main

import (
	"context"
	"crypto/tls"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/hallpass/hallpass/gateway"
	"github.com/hallpass/hallpass/internal/opsmetrics"
	"github.com/hallpass/hallpass/revocation"
	"github.com/hallpass/hallpass/verifier"
)

// Defaults of the gateway's operations flags.
const (
	// defaultGatewayMetricsListen is the gateway's ops listener: loopback,
	// beside the issuer's admin listener (9090) and
	// metrics (9100, as docker-compose.yml lays them out).
	defaultGatewayMetricsListen = "127.0.0.1:9101"
	// defaultGatewayTokenCache is how many verified tokens the gateway
	// remembers: a client sends the same token for minutes, so a hit
	// skips the Ed25519 check of all but its first request.
	defaultGatewayTokenCache = 65536
)

// gatewayOps are the gateway's operations flags: its ops listener
// (--metrics-listen), the upstream transport and the verified-token cache.
type gatewayOps struct {
	metricsListen  string
	upMaxIdle      int
	upIdle         time.Duration
	upHeader       time.Duration
	tokenCache     string
	tokenCacheSize int        // parsed: 0 off
	prof           pprofFlags // pprof.go: --pprof-listen, off by default
	// metricsBound, when set, receives the ops listener's address (tests).
	metricsBound func(addr string)
}

func (o *gatewayOps) register(fs *flag.FlagSet, e *env, ee *envErr, p string) {
	fs.StringVar(&o.metricsListen, "metrics-listen", ee.str(e, p+"METRICS_LISTEN", defaultGatewayMetricsListen), "address of the ops listener: GET /healthz, /readyz and /metrics (no credential: keep it private), or off; never on --listen ["+p+"METRICS_LISTEN]")
	fs.IntVar(&o.upMaxIdle, "upstream-max-idle", ee.integer(e, p+"UPSTREAM_MAX_IDLE", gateway.DefaultUpstreamMaxIdle), "idle upstream connections kept for reuse; at least the requests in flight at the busiest ["+p+"UPSTREAM_MAX_IDLE]")
	fs.DurationVar(&o.upIdle, "upstream-idle-timeout", ee.dur(e, p+"UPSTREAM_IDLE_TIMEOUT", gateway.DefaultUpstreamIdleTimeout), "an idle upstream connection is closed after this; keep it below the upstream's own keep-alive timeout ["+p+"UPSTREAM_IDLE_TIMEOUT]")
	fs.DurationVar(&o.upHeader, "upstream-header-timeout", ee.dur(e, p+"UPSTREAM_HEADER_TIMEOUT", gateway.DefaultUpstreamHeaderTimeout), "how long the upstream has to answer a forwarded request's headers before 502 (the body streams unbounded) ["+p+"UPSTREAM_HEADER_TIMEOUT]")
	fs.StringVar(&o.prof.listen, "pprof-listen", e.getenv(p+"PPROF_LISTEN"), "serve Go's profiles (net/http/pprof, /debug/pprof/) on this loopback address, e.g. 127.0.0.1:6061; unset: off ["+p+"PPROF_LISTEN]")
	fs.StringVar(&o.tokenCache, "token-cache", ee.str(e, p+"TOKEN_CACHE", strconv.Itoa(defaultGatewayTokenCache)), "verified tokens remembered, so that a token seen before skips its signature check (revocation, expiry and the proof are checked every time), or off ["+p+"TOKEN_CACHE]")
}

// resolve checks the flags; publicListen is --listen.
func (o *gatewayOps) resolve(publicListen string) error {
	if o.metricsListen != metricsOff {
		_, port, err := net.SplitHostPort(o.metricsListen)
		if err != nil {
			return fmt.Errorf("%w: --metrics-listen: want host:port or off", errUsage)
		}
		if o.metricsListen == publicListen && port != "0" {
			return fmt.Errorf("%w: --metrics-listen must not be the public listener (--listen)", errUsage)
		}
	}
	if err := o.prof.resolve(); err != nil {
		return err
	}
	if o.upMaxIdle < 1 || o.upIdle <= 0 || o.upHeader <= 0 {
		return fmt.Errorf("%w: --upstream-max-idle, --upstream-idle-timeout and --upstream-header-timeout must be positive", errUsage)
	}
	if o.tokenCache == metricsOff {
		return nil
	}
	n, err := strconv.Atoi(o.tokenCache)
	if err != nil || n < 1 || n > verifier.MaxTokenCacheEntries {
		return fmt.Errorf("%w: --token-cache: want off or a size from 1 to %d", errUsage, verifier.MaxTokenCacheEntries)
	}
	o.tokenCacheSize = n
	return nil
}

// verifierOptions are the verifier options of the token cache.
func (o *gatewayOps) verifierOptions() []verifier.Option {
	if o.tokenCacheSize == 0 {
		return nil
	}
	return []verifier.Option{verifier.WithTokenCache(o.tokenCacheSize)}
}

// transport is the upstream transport the flags size.
func (o *gatewayOps) transport() (*http.Transport, error) {
	return gateway.NewTransport(gateway.TransportOptions{
		MaxIdle: o.upMaxIdle, IdleTimeout: o.upIdle, ResponseHeaderTimeout: o.upHeader,
	})
}

// listen binds the ops listener and, with --pprof-listen, the profiles'
// listener; the caller closes them. The Observer is nil with
// --metrics-listen off.
func (o *gatewayOps) listen(c *gatewayConfig, vs verifying, tlsConf *tls.Config, log *slog.Logger) ([]listening, gateway.Observer, error) {
	var out []listening
	prof, err := o.prof.listenPprof(log)
	if err != nil {
		return nil, nil, err
	}
	if prof != nil {
		out = append(out, *prof)
	}
	ops, obs, err := o.listenOps(c, vs, tlsConf, log)
	if err != nil {
		closeAll(out)
		return nil, nil, err
	}
	if ops != nil {
		out = append(out, *ops)
	}
	return out, obs, nil
}

// closeAll closes the listeners of ls.
func closeAll(ls []listening) {
	for _, l := range ls {
		l.ln.Close()
	}
}

// listenOps binds the ops listener and returns it with the gateway's
// Observer; both nil with --metrics-listen off.
func (o *gatewayOps) listenOps(c *gatewayConfig, vs verifying, tlsConf *tls.Config, log *slog.Logger) (*listening, gateway.Observer, error) {
	if o.metricsListen == metricsOff {
		log.Info("ops listener off (--metrics-listen off): no /healthz, /readyz or /metrics")
		return nil, nil, nil
	}
	reg, obs, err := gatewayRegistry(c, vs)
	if err != nil {
		return nil, nil, err
	}
	ln, err := net.Listen("tcp", o.metricsListen)
	if err != nil {
		return nil, nil, fmt.Errorf("metrics listen: %w", err)
	}
	log.Info("ops listener (healthz, readyz, metrics)", slog.String("addr", ln.Addr().String()), slog.Bool("tls", tlsConf != nil))
	if o.metricsBound != nil {
		o.metricsBound(ln.Addr().String())
	}
	rd := &readiness{vs: vs, keysMaxStale: c.keysMaxStale, now: c.keysNow, timeout: c.storeTimeout, log: log}
	return &listening{apiServer(opsmetrics.Handler(reg, rd.check, log), tlsConf, log), ln}, obs, nil
}

// gatewayRegistry is the gateway's own registry: Go and process metrics,
// its request metrics (the returned Observer), the key set's age and the
// revocation mirror's lag.
func gatewayRegistry(c *gatewayConfig, vs verifying) (*prometheus.Registry, gateway.Observer, error) {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	obs, err := opsmetrics.NewGateway(reg)
	if err != nil {
		return nil, nil, err
	}
	age, err := opsmetrics.KeySetAge(vs.keys.FetchedAt, c.keysNow)
	if err != nil {
		return nil, nil, err
	}
	reg.MustRegister(age)
	if vs.mirror != nil {
		cs, err := opsmetrics.Revocation(vs.mirror, nil)
		if err != nil {
			return nil, nil, err
		}
		reg.MustRegister(cs...)
	}
	return reg, obs, nil
}

// readiness answers /readyz: ready when the key set is within
// --keys-max-stale, the revocation mirror within its staleness bound, and
// Redis answers a ping within --store-timeout (the last two with --store).
type readiness struct {
	vs           verifying
	keysMaxStale time.Duration
	now          func() time.Time // nil: time.Now
	timeout      time.Duration
	log          *slog.Logger
}

// check returns why the gateway is not ready (fixed text and the
// process's own figures, nothing from a request); none when it is.
func (rd *readiness) check(ctx context.Context) []string {
	var reasons []string
	now := time.Now
	if rd.now != nil {
		now = rd.now
	}
	if why := opsmetrics.KeySetReason(rd.vs.keys.FetchedAt(), now(), rd.keysMaxStale); why != "" {
		reasons = append(reasons, why)
	}
	if rd.vs.mirror != nil {
		if why := opsmetrics.MirrorReason(rd.vs.mirror.Ready()); why != "" {
			reasons = append(reasons, why)
		}
	}
	if rd.vs.redis != nil {
		ctx, cancel := context.WithTimeout(ctx, rd.timeout)
		defer cancel()
		if err := rd.vs.redis.Ping(ctx).Err(); err != nil {
			rd.log.Warn("readyz: Redis ping failed", slog.String("error", err.Error()))
			reasons = append(reasons, fmt.Sprintf("redis: no answer to a ping within %v (--store-timeout)", rd.timeout))
		}
	}
	return reasons
}

// mirrorCollectors are the revocation mirror's lag and size collectors,
// registered by `hallpass serve` beside the issuer's metrics under the
// gateway's names; none for a nil mirror.
func mirrorCollectors(m *revocation.Mirror) []prometheus.Collector {
	if m == nil {
		return nil
	}
	cs, err := opsmetrics.Revocation(m, nil)
	if err != nil {
		return nil // only for a nil mirror
	}
	return cs
}
