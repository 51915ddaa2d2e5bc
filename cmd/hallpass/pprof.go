package main

import (
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"time"
)

// pprofWriteTimeout bounds one profile request: a CPU profile or trace
// (?seconds=N) must finish within it, since net/http/pprof refuses a
// duration past the server's WriteTimeout.
const pprofWriteTimeout = 5 * time.Minute

// pprofFlags is --pprof-listen: Go's runtime profiles (net/http/pprof) on a
// listener of their own, off by default.
//
// SECURITY: profiles show where the time goes and which code runs, and the
// goroutine dump shows stack traces with arguments; the CPU profile and the
// trace also cost CPU while they run. So the listener is loopback only (an
// operator reaches it with ssh -L or from the host), never the public or the
// admin listener, and it has no other handler.
type pprofFlags struct {
	listen string
	// bound, when set, receives the pprof listener's address (tests).
	bound func(addr string)
}

func (p *pprofFlags) register(fs *flag.FlagSet, e *env) {
	fs.StringVar(&p.listen, "pprof-listen", e.getenv("HALLPASS_PPROF_LISTEN"), "serve Go's profiles (net/http/pprof, /debug/pprof/) on this loopback address, e.g. 127.0.0.1:6060; unset: off [HALLPASS_PPROF_LISTEN]")
}

// resolve refuses any --pprof-listen address that is not loopback: an
// empty host (all interfaces), a name other than localhost, or an IP
// outside 127.0.0.0/8 and ::1.
func (p *pprofFlags) resolve() error {
	if p.listen == "" {
		return nil
	}
	host, _, err := net.SplitHostPort(p.listen)
	if err != nil {
		return fmt.Errorf("%w: --pprof-listen: want a loopback host:port such as 127.0.0.1:6060", errUsage)
	}
	if host == "localhost" {
		return nil
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("%w: --pprof-listen must be a loopback address (127.0.0.1, [::1] or localhost), not %q", errUsage, host)
	}
	return nil
}

// listenPprof binds the profiles' listener; nil without --pprof-listen. A
// name (localhost) must resolve to loopback too: the bound address is
// checked again.
func (p *pprofFlags) listenPprof(log *slog.Logger) (*listening, error) {
	if p.listen == "" {
		return nil, nil
	}
	ln, err := net.Listen("tcp", p.listen)
	if err != nil {
		return nil, fmt.Errorf("pprof listen: %w", err)
	}
	if a, ok := ln.Addr().(*net.TCPAddr); !ok || !a.IP.IsLoopback() {
		ln.Close()
		return nil, fmt.Errorf("%w: --pprof-listen bound %s, which is not loopback", errUsage, ln.Addr())
	}
	log.Warn("profiles listening (loopback only; turn off when done)", slog.String("addr", ln.Addr().String()), slog.String("path", "/debug/pprof/"))
	if p.bound != nil {
		p.bound(ln.Addr().String())
	}
	srv := &http.Server{
		Handler:           pprofHandler(),
		ReadHeaderTimeout: 5 * time.Second,
		WriteTimeout:      pprofWriteTimeout,
		IdleTimeout:       time.Minute,
		MaxHeaderBytes:    8 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	return &listening{srv, ln}, nil
}

// pprofHandler serves net/http/pprof under /debug/pprof/ on a mux of its
// own (not http.DefaultServeMux, where the package also registers itself
// and which no hallpass listener serves).
func pprofHandler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	return mux
}
