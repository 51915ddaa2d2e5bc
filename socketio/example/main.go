// Command socketio is a socket.io server that accepts only clients holding a
// hallpass access token and its device key, and drops them when the token
// expires or is revoked. See README.md.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/zishang520/socket.io/servers/socket/v3"

	"github.com/hallpass/hallpass/revocation"
	"github.com/hallpass/hallpass/revocation/boltstore"
	"github.com/hallpass/hallpass/revocation/redisstore"
	"github.com/hallpass/hallpass/socketio/socketauth"
	"github.com/hallpass/hallpass/verifier"
	"github.com/hallpass/hallpass/verifier/httpauth"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "socketio:", err)
		os.Exit(1)
	}
}

// run parses the flags, opens the key set and the revocation store, and
// serves until ctx is done.
func run(ctx context.Context, args []string, stderr io.Writer) error {
	fs := flag.NewFlagSet("socketio", flag.ContinueOnError)
	fs.SetOutput(stderr)
	listen := fs.String("listen", "127.0.0.1:8090", "address to listen on")
	publicURL := fs.String("public-url", "", "origin clients use to reach this server, e.g. https://chat.example.com (default http://<listen>)")
	issuer := fs.String("issuer", "", "the issuer's URL, the tokens' iss (required)")
	audience := fs.String("audience", "", "this service's name, the tokens' aud (required)")
	keysFile := fs.String("keys-file", "", "the issuer's key set, as served at /.well-known/hallpass/keys (required)")
	revocationRedis := fs.String("revocation-redis", "", "redis:// URL of the issuer's store (hallpass serve --store) whose revocations to follow")
	revocationDB := fs.String("revocation-db", "", "bolt revocation store to follow, on a single node (a file no other process has open)")
	recheck := fs.Duration("recheck", socketauth.DefaultRecheckEvery, "how often live sockets are re-checked against the revocation mirror")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *issuer == "" || *audience == "" || *keysFile == "" {
		return errors.New("--issuer, --audience and --keys-file are required")
	}
	doc, err := os.ReadFile(*keysFile)
	if err != nil {
		return err
	}
	ks, err := verifier.ParseKeySet(doc, *issuer)
	if err != nil {
		return err
	}
	if *revocationRedis != "" && *revocationDB != "" {
		return errors.New("--revocation-redis and --revocation-db are exclusive")
	}
	// Without a store, a revoked token keeps its socket until it expires.
	var store revocation.Store
	if *revocationRedis != "" {
		o, err := redis.ParseURL(*revocationRedis)
		if err != nil {
			return errors.New("--revocation-redis: invalid redis:// URL")
		}
		o.ContextTimeoutEnabled = true
		rc := redis.NewClient(o)
		defer rc.Close()
		rs, err := redisstore.New(rc, redisstore.Options{})
		if err != nil {
			return err
		}
		store = rs
	}
	if *revocationDB != "" {
		bs, err := boltstore.Open(*revocationDB, boltstore.Options{})
		if err != nil {
			return err
		}
		defer bs.Close()
		store = bs
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return err
	}
	if *publicURL == "" {
		*publicURL = "http://" + ln.Addr().String()
	}
	log := slog.New(slog.NewTextHandler(stderr, nil))
	app, err := newApp(ctx, config{
		Keys: ks, Issuer: *issuer, Audience: *audience, PublicURL: *publicURL,
		Store: store, Recheck: *recheck, Logger: log,
	})
	if err != nil {
		_ = ln.Close()
		return err
	}
	defer app.Close()
	srv := &http.Server{Handler: app.Handler(), ReadHeaderTimeout: 10 * time.Second}
	log.Info("socket.io server listening", "addr", ln.Addr().String(), "htu", *publicURL+socketPath)
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
	Store   revocation.Store
	Recheck time.Duration
	Logger  *slog.Logger
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
	var gopts socketauth.Options
	if cfg.Store != nil {
		m, err := revocation.NewMirror(cfg.Store, revocation.MirrorOptions{Logger: cfg.Logger})
		if err != nil {
			return nil, err
		}
		m.Start()
		a.mirror = m
		select {
		case <-m.Synced():
		case <-ctx.Done():
			_ = m.Close()
			return nil, ctx.Err()
		case <-time.After(5 * time.Second):
			_ = m.Close()
			return nil, errors.New("revocation mirror: no snapshot after 5s")
		}
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
	gopts.RecheckEvery = cfg.Recheck
	gopts.Logger = cfg.Logger
	a.guard, err = socketauth.New(auth, socketPath, gopts)
	if err != nil {
		a.Close()
		return nil, err
	}

	a.io = socket.NewServer(nil, nil)
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
