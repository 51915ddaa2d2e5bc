package main

import (
	"crypto/tls"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"

	"github.com/hallpass/hallpass/issuer"
	"github.com/hallpass/hallpass/ratelimit"
)

// Values of --metrics-listen besides an address.
const (
	metricsOnAdmin = "admin"
	metricsOff     = "off"
)

// guardFlags are the serve flags of the nested signup budgets and of where
// the metrics are served.
type guardFlags struct {
	limitNet, limitSite, limitReserve string
	metricsListen                     string

	// Parsed by resolve. A zero rule lets the issuer derive it.
	perNet, perSite, reserve ratelimit.Rule
	// metricsBound, when set, receives the metrics listener's address
	// (tests).
	metricsBound func(addr string)
}

func (g *guardFlags) register(fs *flag.FlagSet, e *env, ee *envErr) {
	fs.StringVar(&g.limitNet, "signup-limit-per-net", e.getenv("HALLPASS_SIGNUP_LIMIT_PER_NET"), "signups per IPv4 /24 and per IPv6 /56, N/s|m|h|d, or off (default: twice --signup-limit-per-ip) [HALLPASS_SIGNUP_LIMIT_PER_NET]")
	fs.StringVar(&g.limitSite, "signup-limit-per-site", e.getenv("HALLPASS_SIGNUP_LIMIT_PER_SITE"), "signups per IPv6 /48, N/s|m|h|d, or off (default: four times --signup-limit-per-ip) [HALLPASS_SIGNUP_LIMIT_PER_SITE]")
	fs.StringVar(&g.limitReserve, "signup-reserve", e.getenv("HALLPASS_SIGNUP_RESERVE"), "signups kept for networks (/24, /48) not seen in the window once --signup-limit-global is spent, N/s|m|h|d, or off (default: a quarter of --signup-limit-global) [HALLPASS_SIGNUP_RESERVE]")
	fs.StringVar(&g.metricsListen, "metrics-listen", ee.str(e, "HALLPASS_METRICS_LISTEN", metricsOnAdmin), "where GET /metrics is served: admin (on --admin-listen), off, or an address of its own; never on --listen [HALLPASS_METRICS_LISTEN]")
}

// resolve parses the rules and checks --metrics-listen against the public
// listener's address.
func (g *guardFlags) resolve(publicListen string) error {
	var err error
	if g.perNet, err = parseNetRule(g.limitNet, "--signup-limit-per-net"); err != nil {
		return err
	}
	if g.perSite, err = parseNetRule(g.limitSite, "--signup-limit-per-site"); err != nil {
		return err
	}
	if g.reserve, err = parseNetRule(g.limitReserve, "--signup-reserve"); err != nil {
		return err
	}
	m := g.metricsListen
	if m == metricsOnAdmin || m == metricsOff {
		return nil
	}
	_, port, err := net.SplitHostPort(m)
	if err != nil {
		return fmt.Errorf("%w: --metrics-listen: want admin, off or host:port", errUsage)
	}
	if m == publicListen && port != "0" {
		return fmt.Errorf("%w: --metrics-listen must not be the public listener (--listen)", errUsage)
	}
	return nil
}

// parseNetRule reads a rule whose empty value lets the issuer derive it
// and whose "off" must say so by name (ratelimit.Disabled).
func parseNetRule(s, flagName string) (ratelimit.Rule, error) {
	if strings.TrimSpace(s) == "" {
		return ratelimit.Rule{}, nil
	}
	r, err := parseRule(s, flagName)
	if err == nil && r.Unlimited() {
		r = ratelimit.Disabled
	}
	return r, err
}

// adminHandler is the admin listener's handler: the admin API, and GET
// /metrics beside it with --metrics-listen admin (without an admin key, so
// that Prometheus needs none; the admin listener is private).
func (g *guardFlags) adminHandler(srv *issuer.Server) http.Handler {
	if g.metricsListen != metricsOnAdmin {
		return srv.AdminHandler()
	}
	return withMetrics(srv.MetricsHandler(), srv.AdminHandler())
}

// withMetrics serves GET and HEAD /metrics from metrics, every other
// request from rest.
func withMetrics(metrics, rest http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == issuer.PathMetrics && (r.Method == http.MethodGet || r.Method == http.MethodHead) {
			metrics.ServeHTTP(w, r)
			return
		}
		rest.ServeHTTP(w, r)
	})
}

// listenMetrics binds the metrics' own listener when --metrics-listen is
// an address; nil otherwise. adminOn says whether the admin listener (and
// so the metrics with --metrics-listen admin) is served.
func (g *guardFlags) listenMetrics(srv *issuer.Server, adminOn bool, tlsConf *tls.Config, log *slog.Logger) (*listening, error) {
	switch g.metricsListen {
	case metricsOff:
		log.Info("metrics not served (--metrics-listen off)")
		return nil, nil
	case metricsOnAdmin:
		if adminOn {
			log.Info("metrics served on the admin listener", slog.String("path", issuer.PathMetrics))
		} else {
			log.Info("metrics not served: no admin listener (no --admin-keys-file); set --metrics-listen to an address")
		}
		return nil, nil
	}
	ln, err := net.Listen("tcp", g.metricsListen)
	if err != nil {
		return nil, fmt.Errorf("metrics listen: %w", err)
	}
	log.Info("metrics listening", slog.String("addr", ln.Addr().String()), slog.String("path", issuer.PathMetrics), slog.Bool("tls", tlsConf != nil))
	if g.metricsBound != nil {
		g.metricsBound(ln.Addr().String())
	}
	return &listening{apiServer(withMetrics(srv.MetricsHandler(), http.NotFoundHandler()), tlsConf, log), ln}, nil
}
