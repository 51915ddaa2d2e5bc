package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/hallpass/hallpass/revocation"
)

// listening is a server and the listener it serves.
type listening struct {
	srv *http.Server
	ln  net.Listener
}

// apiServer returns the server of an API handler (the issuer's public and
// admin APIs): every phase of a request is bounded.
func apiServer(h http.Handler, tlsConf *tls.Config, log *slog.Logger) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       15 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    32 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
		// A copy per server: net/http sets up HTTP/2 by writing into
		// its server's TLSConfig, and the listeners of one process
		// (public, admin, ops) share one configuration.
		TLSConfig: tlsConf.Clone(),
	}
}

// serveUntilDone serves every l until ctx ends (SIGINT, SIGTERM) or one
// fails, then shuts them all down: requests in flight get timeout to
// finish. An ended ctx is a clean exit.
// exitShutdownCut is the exit status of a server whose graceful shutdown
// had to cut requests in flight (0: clean, 1: an error).
const exitShutdownCut = 3

func serveUntilDone(ctx context.Context, log *slog.Logger, timeout time.Duration, name string, ls ...listening) error {
	errc := make(chan error, len(ls))
	for _, l := range ls {
		go func() {
			if l.srv.TLSConfig != nil {
				errc <- l.srv.ServeTLS(l.ln, "", "") // certificates from TLSConfig; enables HTTP/2
				return
			}
			errc <- l.srv.Serve(l.ln)
		}()
	}
	var serveErr error
	select {
	case err := <-errc:
		serveErr = fmt.Errorf("%s: %w", name, err)
	case <-ctx.Done():
	}
	log.Info("shutting down")
	sctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cut := false
	for _, l := range ls {
		if err := l.srv.Shutdown(sctx); err != nil {
			log.Warn("graceful shutdown incomplete; closing connections", slog.String("error", err.Error()))
			l.srv.Close()
			cut = true
		}
	}
	if serveErr != nil {
		return serveErr
	}
	if cut {
		// Requests in flight were cut: say so in the exit status.
		return exitError{code: exitShutdownCut, err: fmt.Errorf("%s: requests in flight were cut after --shutdown-timeout", name)}
	}
	for range ls {
		if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
			return fmt.Errorf("%s: %w", name, err)
		}
	}
	return nil
}

// startMirror starts a revocation mirror over st and gives its first
// snapshot up to wait, so that the first requests are not refused as
// stale; /readyz tells the rest. The caller closes the mirror.
func startMirror(ctx context.Context, st revocation.Store, opts revocation.MirrorOptions, wait time.Duration, fields map[string]string) (*revocation.Mirror, error) {
	m, err := revocation.NewMirror(st, opts)
	if err != nil {
		return nil, configErr(err, fields)
	}
	m.Start()
	select {
	case <-m.Synced():
	case <-time.After(wait):
		opts.Logger.Warn("the revocation mirror has not loaded its snapshot yet; requests that need it answer 503 until it does")
	case <-ctx.Done():
	}
	return m, nil
}

// parseTLSMin reads --tls-min: "1.3" (the default) or "1.2". Nothing
// older: TLS 1.0 and 1.1 are deprecated (RFC 8996).
func parseTLSMin(s string) (uint16, error) {
	switch s {
	case "", "1.3":
		return tls.VersionTLS13, nil
	case "1.2":
		return tls.VersionTLS12, nil
	}
	return 0, fmt.Errorf("%w: --tls-min must be 1.3 or 1.2", errUsage)
}

// serverTLSConfig loads the certificate chain and key for a listener that
// accepts TLS min and newer (Go's default cipher suites for 1.2; 1.3 suites
// are not configurable).
func serverTLSConfig(certFile, keyFile string, min uint16) (*tls.Config, error) {
	cert, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		return nil, fmt.Errorf("TLS key pair: %w", err)
	}
	return &tls.Config{MinVersion: min, Certificates: []tls.Certificate{cert}}, nil
}
