// Package upstream is the example application behind `hallpass gateway` in
// docker-compose.yml (the command is ./cmd/upstream): a service that knows
// nothing of tokens or proofs.
// It answers every request with the identity the gateway verified, as JSON:
//
//	{"account": "acc_...", "device": "dev_...", "method": "GET", "path": "/hello"}
//
// What it trusts: the X-Hallpass-Account and X-Hallpass-Device headers,
// which the gateway removes from every incoming request and sets only from
// verified claims. That holds only while the gateway is the sole way in:
// keep this listener on a private network (docker-compose.yml publishes no
// port of it). A request without X-Hallpass-Account did not come through
// the gateway and is refused (403).
//
// --metrics-listen serves GET /metrics (requests by status code) on a
// listener of its own, never on --listen, which the gateway exposes.
package upstream

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Identity headers set by the gateway (gateway.HeaderAccount and
// gateway.HeaderDevice; not imported, so that this example shows what an
// application needs: nothing of hallpass).
const (
	headerAccount = "X-Hallpass-Account"
	headerDevice  = "X-Hallpass-Device"
)

// Run parses the command line args (--listen, --metrics-listen), serves
// until ctx ends, then shuts down within 5 s. -h prints the flags and
// returns flag.ErrHelp.
func Run(ctx context.Context, args []string, stderr io.Writer) error {
	fs := flag.NewFlagSet("upstream", flag.ContinueOnError)
	fs.SetOutput(stderr)
	listen := fs.String("listen", "127.0.0.1:3000", "address the gateway forwards to")
	metricsListen := fs.String("metrics-listen", "", "address of a listener serving GET /metrics only (empty: none)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 0 {
		return errors.New("upstream takes no arguments")
	}
	log := slog.New(slog.NewJSONHandler(stderr, nil))
	reg := prometheus.NewRegistry()
	servers := []*http.Server{}
	lns := []net.Listener{}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return err
	}
	servers, lns = append(servers, newServer(newHandler(reg), log)), append(lns, ln)
	if *metricsListen != "" {
		if *metricsListen == *listen {
			ln.Close()
			return errors.New("--metrics-listen must not be --listen, which the gateway exposes")
		}
		mln, err := net.Listen("tcp", *metricsListen)
		if err != nil {
			ln.Close()
			return err
		}
		mux := http.NewServeMux()
		mux.Handle("GET /metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
		servers, lns = append(servers, newServer(mux, log)), append(lns, mln)
	}
	errc := make(chan error, len(servers))
	for i, s := range servers {
		log.Info("upstream listening", slog.String("addr", lns[i].Addr().String()))
		go func() { errc <- s.Serve(lns[i]) }()
	}
	var serveErr error
	select {
	case serveErr = <-errc:
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, s := range servers {
		_ = s.Shutdown(sctx)
	}
	if serveErr != nil && !errors.Is(serveErr, http.ErrServerClosed) {
		return serveErr
	}
	return nil
}

func newServer(h http.Handler, log *slog.Logger) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       15 * time.Second,
		WriteTimeout:      15 * time.Second,
		IdleTimeout:       120 * time.Second,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
}

// newHandler answers with the verified identity, and counts the answers
// in reg by status code.
func newHandler(reg prometheus.Registerer) http.Handler {
	requests := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "upstream_requests_total",
		Help: "Requests answered by the example upstream, by status code.",
	}, []string{"code"})
	reg.MustRegister(requests)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "no-store")
		account := r.Header.Get(headerAccount)
		if account == "" {
			requests.WithLabelValues(strconv.Itoa(http.StatusForbidden)).Inc()
			w.WriteHeader(http.StatusForbidden)
			json.NewEncoder(w).Encode(map[string]string{"error": "not_through_gateway"})
			return
		}
		requests.WithLabelValues(strconv.Itoa(http.StatusOK)).Inc()
		json.NewEncoder(w).Encode(map[string]string{
			"account": account,
			"device":  r.Header.Get(headerDevice),
			"method":  r.Method,
			"path":    r.URL.Path,
		})
	})
}
