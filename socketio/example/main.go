// Command socketio is a socket.io server, over TLS with --tls-cert, that
// accepts only clients holding a hallpass access token and its device key,
// follows the issuer's key set (rotation, key revocation), and drops a
// socket when its token expires or is revoked. See README.md.
package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/zishang520/socket.io/servers/socket/v3"

	"github.com/hallpass/hallpass/internal/redislog"
	"github.com/hallpass/hallpass/revocation"
	"github.com/hallpass/hallpass/revocation/boltstore"
	"github.com/hallpass/hallpass/revocation/redisstore"
	"github.com/hallpass/hallpass/socketio/socketauth"
	"github.com/hallpass/hallpass/verifier"
	"github.com/hallpass/hallpass/verifier/httpauth"
	"github.com/hallpass/hallpass/verifier/remotekeys"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "socketio:", err)
		os.Exit(1)
	}
}

// flags are the command line.
type flags struct {
	listen, publicURL, issuer, audience  string
	metricsListen                        string
	keysURL, keysFile, keysCA            string
	tlsCert, tlsKey                      string
	revocationRedis, revocationDB        string
	keysMaxStale, recheck, staleGrace    time.Duration
	revocationMaxStaleness, storeTimeout time.Duration
}

// parseFlags reads args. Every flag is declared here, on fs (the compose
// file test reads their names from this file).
func parseFlags(args []string, stderr io.Writer) (*flags, error) {
	f := &flags{}
	fs := flag.NewFlagSet("socketio", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&f.listen, "listen", "127.0.0.1:8090", "address to listen on")
	fs.StringVar(&f.metricsListen, "metrics-listen", defaultMetricsListen, "address of the ops listener: GET /healthz, /readyz and /metrics (no credential: keep it private; TLS with --tls-cert), or off; never --listen")
	fs.StringVar(&f.publicURL, "public-url", "", "origin clients use to reach this server, e.g. https://chat.example.com (default http://<listen>, https://<listen> with --tls-cert)")
	fs.StringVar(&f.tlsCert, "tls-cert", "", "PEM certificate chain: serve HTTPS and WSS (with --tls-key)")
	fs.StringVar(&f.tlsKey, "tls-key", "", "PEM private key of --tls-cert")
	fs.StringVar(&f.issuer, "issuer", "", "the issuer's URL, the tokens' iss (required)")
	fs.StringVar(&f.audience, "audience", "", "this service's name, the tokens' aud (required)")
	fs.StringVar(&f.keysURL, "keys-url", "", "the issuer's key set, followed for rotation and key revocation (default <issuer>"+remotekeys.WellKnownPath+"; https, or http to a loopback host)")
	fs.StringVar(&f.keysCA, "keys-ca", "", "PEM CA certificates to trust for --keys-url instead of the system roots")
	fs.DurationVar(&f.keysMaxStale, "keys-max-stale", remotekeys.DefaultMaxStale, "how long the last good key set is trusted while the issuer is unreachable; past it handshakes are refused (unavailable)")
	fs.StringVar(&f.keysFile, "keys-file", "", "a fixed key set file instead of --keys-url (no rotation, no key revocation until restart)")
	fs.StringVar(&f.revocationRedis, "revocation-redis", "", "redis:// URL of the issuer's store (hallpass serve --store) whose revocations to follow")
	fs.StringVar(&f.revocationDB, "revocation-db", "", "bolt revocation store to follow, on a single node (a file no other process has open)")
	fs.DurationVar(&f.revocationMaxStaleness, "revocation-max-staleness", revocation.DefaultMaxStaleness, "how long the revocation mirror may go without hearing from its store before it fails closed")
	fs.DurationVar(&f.storeTimeout, "store-timeout", redisstore.DefaultOpTimeout, "bound of one revocation store operation")
	fs.DurationVar(&f.recheck, "recheck", socketauth.DefaultRecheckEvery, "how often live sockets are re-checked against the revocation mirror and the key set")
	fs.DurationVar(&f.staleGrace, "stale-grace", 0, "let established sockets ride out a revocation store outage this long past --revocation-max-staleness (0: off; at most 1h). Risk: a revocation written during the outage misses them until the store is back or the grace ends; new handshakes are refused all along")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	if fs.NArg() != 0 {
		return nil, errors.New("no arguments expected")
	}
	return f, f.check()
}

// check validates the combinations.
func (f *flags) check() error {
	switch {
	case f.issuer == "" || f.audience == "":
		return errors.New("--issuer and --audience are required")
	case f.keysFile != "" && (f.keysURL != "" || f.keysCA != ""):
		return errors.New("--keys-file and --keys-url (or --keys-ca) are exclusive")
	case (f.tlsCert == "") != (f.tlsKey == ""):
		return errors.New("give both --tls-cert and --tls-key, or neither")
	case f.revocationRedis != "" && f.revocationDB != "":
		return errors.New("--revocation-redis and --revocation-db are exclusive")
	case f.staleGrace != 0 && f.revocationRedis == "" && f.revocationDB == "":
		return errors.New("--stale-grace needs a revocation store (--revocation-redis or --revocation-db)")
	}
	if err := checkMetricsListen(f.metricsListen, f.listen); err != nil {
		return err
	}
	if f.keysFile == "" && f.keysURL == "" {
		f.keysURL = strings.TrimRight(f.issuer, "/") + remotekeys.WellKnownPath
	}
	return nil
}

// run parses the flags, opens the key set and the revocation store, and
// serves until ctx is done.
func run(ctx context.Context, args []string, stderr io.Writer) error {
	f, err := parseFlags(args, stderr)
	if err != nil {
		return err
	}
	log := slog.New(slog.NewJSONHandler(stderr, nil))
	redislog.Install(log) // go-redis's own lines, as JSON too
	tlsConf, err := f.loadTLS()
	if err != nil {
		return err
	}
	ks, closeKeys, err := f.openKeys(ctx, log)
	if err != nil {
		return err
	}
	defer closeKeys()
	store, closeStore, err := f.openStore()
	if err != nil {
		return err
	}
	defer closeStore()
	o, obs, err := f.newOps(ks, log)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", f.listen)
	if err != nil {
		return err
	}
	if f.publicURL == "" {
		f.publicURL = scheme(tlsConf) + "://" + ln.Addr().String()
	}
	app, err := newApp(ctx, config{
		Keys: ks, Issuer: f.issuer, Audience: f.audience, PublicURL: f.publicURL, Store: store, MaxStaleness: f.revocationMaxStaleness,
		Recheck: f.recheck, StaleGrace: f.staleGrace, Logger: log, Observer: obs,
	})
	if err != nil {
		_ = ln.Close()
		return err
	}
	defer app.Close()
	opsLn, err := f.listenOps(o, app, tlsConf, log)
	if err != nil {
		_ = ln.Close()
		return err
	}
	if tlsConf != nil {
		ln = tls.NewListener(ln, tlsConf)
	}
	log.Info("socket.io server listening", "addr", ln.Addr().String(), "htu", f.publicURL+socketPath, "tls", tlsConf != nil)
	return serveBoth(ctx, ln, app.Handler(), opsLn, o, log)
}

// loadTLS returns the server's TLS configuration, or nil without
// --tls-cert.
func (f *flags) loadTLS() (*tls.Config, error) {
	if f.tlsCert == "" {
		return nil, nil
	}
	cert, err := tls.LoadX509KeyPair(f.tlsCert, f.tlsKey)
	if err != nil {
		return nil, fmt.Errorf("--tls-cert/--tls-key: %w", err)
	}
	return &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{cert}}, nil
}

// scheme is the URL scheme the server answers with tlsConf.
func scheme(tlsConf *tls.Config) string {
	if tlsConf != nil {
		return "https"
	}
	return "http"
}

// newOps builds the ops listener's metrics and the guard's Observer; both
// nil with --metrics-listen off.
func (f *flags) newOps(ks verifier.KeySource, log *slog.Logger) (*ops, socketauth.Observer, error) {
	if f.metricsListen == metricsOff {
		log.Info("ops listener off (--metrics-listen off): no /healthz, /readyz or /metrics")
		return nil, nil, nil
	}
	o, err := newOps(ks, f.keysMaxStale, log)
	if err != nil {
		return nil, nil, err
	}
	return o, o.socket, nil
}

// listenOps binds the ops listener (TLS with --tls-cert), once the app it
// reports on exists; nil with --metrics-listen off.
func (f *flags) listenOps(o *ops, a *app, tlsConf *tls.Config, log *slog.Logger) (net.Listener, error) {
	if o == nil {
		return nil, nil
	}
	if err := o.watch(a); err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", f.metricsListen)
	if err != nil {
		return nil, fmt.Errorf("--metrics-listen: %w", err)
	}
	log.Info("ops listener (healthz, readyz, metrics)", "addr", ln.Addr().String(), "tls", tlsConf != nil)
	if tlsConf != nil {
		ln = tls.NewListener(ln, tlsConf)
	}
	return ln, nil
}

// serve serves h on ln until ctx is done, then shuts down (5 s at most).
func serve(ctx context.Context, ln net.Listener, h http.Handler, log *slog.Logger) error {
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second, ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn)}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return srv.Shutdown(sctx)
}

// openKeys returns the key source: the issuer's key set followed through
// remotekeys (refresh, max-stale, revoked kids), or a fixed file.
func (f *flags) openKeys(ctx context.Context, log *slog.Logger) (verifier.KeySource, func(), error) {
	if f.keysFile != "" {
		doc, err := os.ReadFile(f.keysFile)
		if err != nil {
			return nil, nil, err
		}
		ks, err := verifier.ParseKeySet(doc, f.issuer)
		return ks, func() {}, err
	}
	client := &http.Client{}
	if f.keysCA != "" {
		pem, err := os.ReadFile(f.keysCA)
		if err != nil {
			return nil, nil, fmt.Errorf("--keys-ca: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, nil, errors.New("--keys-ca: no PEM certificate in the file")
		}
		client.Transport = &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}
	}
	ks, err := remotekeys.New(ctx, remotekeys.Config{
		Issuer: f.issuer, URL: f.keysURL, AllowHTTP: true, Client: client,
		MaxStale: f.keysMaxStale, Logger: log,
	})
	if err != nil {
		return nil, nil, fmt.Errorf("--keys-url: %w", err)
	}
	return ks, func() { _ = ks.Close() }, nil
}

// openStore opens the revocation store to follow, or none: without one, a
// revoked token keeps its socket until it expires (a revoked key still
// drops it, through the key set).
func (f *flags) openStore() (revocation.Store, func(), error) {
	switch {
	case f.revocationRedis != "":
		o, err := redis.ParseURL(f.revocationRedis)
		if err != nil {
			return nil, nil, errors.New("--revocation-redis: invalid redis:// URL")
		}
		o.ContextTimeoutEnabled = true
		rc := redis.NewClient(o)
		rs, err := redisstore.New(rc, redisstore.Options{OpTimeout: f.storeTimeout})
		if err != nil {
			_ = rc.Close()
			return nil, nil, err
		}
		return rs, func() { _ = rc.Close() }, nil
	case f.revocationDB != "":
		bs, err := boltstore.Open(f.revocationDB, boltstore.Options{})
		if err != nil {
			return nil, nil, err
		}
		return bs, func() { _ = bs.Close() }, nil
	}
	return nil, func() {}, nil
}

// socketPath is where socket.io is served, with the trailing slash that
// clients request: the proof's htu is PublicURL + socketPath.
const socketPath = "/socket.io/"

// config is what newApp needs; run builds it from flags, the test directly.
type config struct {
	Keys      verifier.KeySource
	Issuer    string
	Audience  string
	PublicURL string
	// Store, when set, is followed by a revocation mirror that checks
	// every handshake and re-checks every live socket.
	Store revocation.Store
	// MaxStaleness is the mirror's (default revocation.DefaultMaxStaleness).
	MaxStaleness time.Duration
	Recheck      time.Duration
	// StaleGrace: socketauth.Options.StaleGrace (0: off).
	StaleGrace time.Duration
	Logger     *slog.Logger
	// Observer, when set, is told every handshake and every socket the
	// guard drops (the ops listener's metrics).
	Observer socketauth.Observer
	// PingInterval and PingTimeout, when set, replace socket.io's (25 s
	// and 20 s): a client that vanishes without its close reaching the
	// server is dropped, and forgotten by the guard, only at the ping
	// timeout.
	PingInterval, PingTimeout time.Duration
}

// app is the socket.io server, its guard and its revocation mirror.
type app struct {
	io     *socket.Server
	guard  *socketauth.Guard
	mirror *revocation.Mirror
	h      http.Handler
}

// newApp builds the server. With a Store it waits (up to 5 s, or ctx) for
// the mirror's first snapshot, so that it never serves from an empty
// denylist.
func newApp(ctx context.Context, cfg config) (*app, error) {
	a := &app{}
	var vopts []verifier.Option
	gopts := socketauth.Options{RecheckEvery: cfg.Recheck, StaleGrace: cfg.StaleGrace, Keys: cfg.Keys, Logger: cfg.Logger, Observer: cfg.Observer}
	if cfg.Store != nil {
		m, err := startMirror(ctx, cfg)
		if err != nil {
			return nil, err
		}
		a.mirror = m
		vopts = append(vopts, verifier.WithRevocation(m))
		gopts.Revocation = m
	}
	v, err := verifier.New(cfg.Keys, cfg.Issuer, cfg.Audience, vopts...)
	if err != nil {
		a.Close()
		return nil, err
	}
	auth, err := httpauth.New(httpauth.Config{Verifier: v, PublicURL: cfg.PublicURL, Logger: cfg.Logger})
	if err != nil {
		a.Close()
		return nil, err
	}
	a.guard, err = socketauth.New(auth, socketPath, gopts)
	if err != nil {
		a.Close()
		return nil, err
	}

	a.io = socket.NewServer(nil, serverOptions(cfg))
	nsp := a.io.Of("/", nil)
	if err := a.guard.Attach(nsp); err != nil {
		a.Close()
		return nil, err
	}
	_ = nsp.On("connection", func(args ...any) {
		s := args[0].(*socket.Socket)
		// whoami answers with the identity the token proved.
		_ = s.On("whoami", func(args ...any) {
			ack, ok := args[len(args)-1].(socket.Ack)
			if !ok {
				return
			}
			c, ok := a.guard.Claims(s)
			if !ok {
				ack([]any{nil}, nil)
				return
			}
			ack([]any{map[string]any{"account": c.Subject, "device": c.Device, "expires": c.Expiry.Unix()}}, nil)
		})
	})
	mux := http.NewServeMux()
	mux.Handle(socketPath, a.io.ServeHandler(nil))
	a.h = mux
	return a, nil
}

// serverOptions are the socket.io server's options from cfg.
func serverOptions(cfg config) *socket.ServerOptions {
	o := socket.DefaultServerOptions()
	if cfg.PingInterval > 0 {
		o.SetPingInterval(cfg.PingInterval)
	}
	if cfg.PingTimeout > 0 {
		o.SetPingTimeout(cfg.PingTimeout)
	}
	return o
}

// startMirror starts a mirror of cfg.Store and waits (up to 5 s, or ctx)
// for its first snapshot.
func startMirror(ctx context.Context, cfg config) (*revocation.Mirror, error) {
	m, err := revocation.NewMirror(cfg.Store, revocation.MirrorOptions{MaxStaleness: cfg.MaxStaleness, Logger: cfg.Logger})
	if err != nil {
		return nil, err
	}
	m.Start()
	select {
	case <-m.Synced():
		return m, nil
	case <-ctx.Done():
		_ = m.Close()
		return nil, ctx.Err()
	case <-time.After(5 * time.Second):
		_ = m.Close()
		return nil, errors.New("revocation mirror: no snapshot after 5s")
	}
}

// Handler serves socket.io at socketPath.
func (a *app) Handler() http.Handler { return a.h }

// Close disconnects every socket, then stops the guard and the mirror.
func (a *app) Close() {
	if a.io != nil {
		done := make(chan struct{})
		a.io.Close(func(error) { close(done) })
		select {
		case <-done:
		case <-time.After(5 * time.Second):
		}
	}
	if a.guard != nil {
		_ = a.guard.Close()
	}
	if a.mirror != nil {
		_ = a.mirror.Close()
	}
}
