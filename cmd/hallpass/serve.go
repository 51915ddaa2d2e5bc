package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/redis/go-redis/v9"

	"github.com/hallpass/hallpass/account"
	"github.com/hallpass/hallpass/account/boltstore"
	"github.com/hallpass/hallpass/account/redisstore"
	"github.com/hallpass/hallpass/dpop"
	"github.com/hallpass/hallpass/dpop/redisreplay"
	"github.com/hallpass/hallpass/issuer"
	"github.com/hallpass/hallpass/issuer/redisaudit"
	"github.com/hallpass/hallpass/keys"
	"github.com/hallpass/hallpass/keys/filestore"
	"github.com/hallpass/hallpass/keys/redisring"
	"github.com/hallpass/hallpass/ratelimit"
	"github.com/hallpass/hallpass/ratelimit/redislimit"
	"github.com/hallpass/hallpass/refresh"
	"github.com/hallpass/hallpass/revocation"
	revbolt "github.com/hallpass/hallpass/revocation/boltstore"
	revredis "github.com/hallpass/hallpass/revocation/redisstore"
)

// serveConfig is what `hallpass serve` reads from flags and HALLPASS_*
// variables (the variable is the default, the flag wins).
type serveConfig struct {
	listen, publicURL, audience string
	data, store, keysDir        string
	prot                        protFlags
	dev                         bool
	tlsCert, tlsKey             string
	tlsMin                      string
	trustedProxies              string
	limitPerIP, limitGlobal     string
	accessTTL, refreshTTL       time.Duration
	refreshIdle, refreshGrace   time.Duration
	storeTimeout                time.Duration
	shutdownTimeout             time.Duration
	dpopNonce                   bool
	nonceKeyFile                string
	limitKeyFile                string
	limitHashKey                []byte
	logLevel                    string
	adminListen, adminKeysFile  string
	keyRing                     string
	revMaxStale                 time.Duration
	revFailOpen                 bool
	// adminBound, when set, receives the admin listener's address (tests).
	adminBound func(addr string)
}

// envErr collects malformed environment values: reported after flag
// parsing, so that `serve -h` still works.
type envErr struct{ errs []string }

func (ee *envErr) str(e *env, name, def string) string {
	if v := e.getenv(name); v != "" {
		return v
	}
	return def
}

func (ee *envErr) dur(e *env, name string, def time.Duration) time.Duration {
	v := e.getenv(name)
	if v == "" {
		return def
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		ee.errs = append(ee.errs, name+" is not a duration")
		return def
	}
	return d
}

func (ee *envErr) boolean(e *env, name string) bool {
	v := e.getenv(name)
	if v == "" {
		return false
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		ee.errs = append(ee.errs, name+" is not a boolean")
	}
	return b
}

func runServe(ctx context.Context, args []string, e *env) error {
	c, err := parseServeFlags(args, e)
	if err != nil {
		return err
	}
	return serve(ctx, c, e, nil)
}

// parseServeFlags reads the flags, with HALLPASS_* variables as defaults.
func parseServeFlags(args []string, e *env) (*serveConfig, error) {
	fs := newFlagSet("serve", e)
	var c serveConfig
	var ee envErr
	fs.StringVar(&c.listen, "listen", ee.str(e, "HALLPASS_LISTEN", "127.0.0.1:8080"), "address to listen on [HALLPASS_LISTEN]")
	fs.StringVar(&c.publicURL, "public-url", e.getenv("HALLPASS_PUBLIC_URL"), "URL clients use to reach this server; DPoP htu and token iss derive from it (default http://<listen>) [HALLPASS_PUBLIC_URL]")
	fs.StringVar(&c.audience, "audience", e.getenv("HALLPASS_AUDIENCE"), "aud claim of access tokens (default: the public URL) [HALLPASS_AUDIENCE]")
	fs.StringVar(&c.data, "data", ee.str(e, "HALLPASS_DATA", "./data"), "data directory [HALLPASS_DATA]")
	fs.StringVar(&c.store, "store", e.getenv("HALLPASS_STORE"), "account store: bolt:PATH, redis://, rediss://, redis+sentinel://, redis+cluster:// (default bolt:<data>/hallpass.db) [HALLPASS_STORE]")
	fs.StringVar(&c.keysDir, "keys-dir", e.getenv("HALLPASS_KEYS_DIR"), "key ring directory (default <data>/keys) [HALLPASS_KEYS_DIR]")
	c.prot.register(fs, e)
	fs.BoolVar(&c.dev, "dev", ee.boolean(e, "HALLPASS_DEV"), "development mode: create a PLAINTEXT key ring when none exists [HALLPASS_DEV]")
	fs.StringVar(&c.tlsCert, "tls-cert", e.getenv("HALLPASS_TLS_CERT"), "TLS certificate chain file (PEM) [HALLPASS_TLS_CERT]")
	fs.StringVar(&c.tlsKey, "tls-key", e.getenv("HALLPASS_TLS_KEY"), "TLS private key file (PEM) [HALLPASS_TLS_KEY]")
	fs.StringVar(&c.tlsMin, "tls-min", ee.str(e, "HALLPASS_TLS_MIN", "1.3"), "lowest TLS version accepted with --tls-cert: 1.3, or 1.2 for older clients [HALLPASS_TLS_MIN]")
	fs.StringVar(&c.trustedProxies, "trusted-proxies", e.getenv("HALLPASS_TRUSTED_PROXIES"), "comma-separated CIDRs of proxies whose X-Forwarded-For is believed [HALLPASS_TRUSTED_PROXIES]")
	fs.StringVar(&c.limitPerIP, "signup-limit-per-ip", ee.str(e, "HALLPASS_SIGNUP_LIMIT_PER_IP", "30/h"), "signups per client address, N/s|m|h|d, or off [HALLPASS_SIGNUP_LIMIT_PER_IP]")
	fs.StringVar(&c.limitGlobal, "signup-limit-global", ee.str(e, "HALLPASS_SIGNUP_LIMIT_GLOBAL", "1000/h"), "signups in total, N/s|m|h|d, or off [HALLPASS_SIGNUP_LIMIT_GLOBAL]")
	fs.DurationVar(&c.accessTTL, "access-ttl", ee.dur(e, "HALLPASS_ACCESS_TTL", issuer.DefaultAccessTTL), "access-token lifetime, 1m to 60m [HALLPASS_ACCESS_TTL]")
	fs.DurationVar(&c.refreshTTL, "refresh-ttl", ee.dur(e, "HALLPASS_REFRESH_TTL", issuer.DefaultRefreshTTL), "absolute lifetime of a device session [HALLPASS_REFRESH_TTL]")
	fs.DurationVar(&c.refreshIdle, "refresh-idle", ee.dur(e, "HALLPASS_REFRESH_IDLE", issuer.DefaultRefreshIdle), "a session unused this long ends [HALLPASS_REFRESH_IDLE]")
	fs.DurationVar(&c.refreshGrace, "refresh-grace", ee.dur(e, "HALLPASS_REFRESH_GRACE", issuer.DefaultRefreshGrace), "window in which the previous refresh token gets the same successor [HALLPASS_REFRESH_GRACE]")
	fs.DurationVar(&c.storeTimeout, "store-timeout", ee.dur(e, "HALLPASS_STORE_TIMEOUT", issuer.DefaultStoreTimeout), "bound on each store, replay-cache and rate-limit call; beyond it 503 [HALLPASS_STORE_TIMEOUT]")
	fs.DurationVar(&c.shutdownTimeout, "shutdown-timeout", ee.dur(e, "HALLPASS_SHUTDOWN_TIMEOUT", 15*time.Second), "how long a graceful shutdown waits for requests in flight [HALLPASS_SHUTDOWN_TIMEOUT]")
	fs.BoolVar(&c.dpopNonce, "dpop-nonce", ee.boolean(e, "HALLPASS_DPOP_NONCE"), "demand DPoP server nonces on signup and refresh [HALLPASS_DPOP_NONCE]")
	fs.StringVar(&c.nonceKeyFile, "dpop-nonce-key-file", e.getenv("HALLPASS_DPOP_NONCE_KEY_FILE"), "32-byte key shared by all nodes for DPoP nonces (default: random per process) [HALLPASS_DPOP_NONCE_KEY_FILE]")
	fs.StringVar(&c.limitKeyFile, "rate-limit-key-file", e.getenv("HALLPASS_RATE_LIMIT_KEY_FILE"), "32-byte key shared by all nodes that keys the Redis rate-limit digests of client addresses (default: plain SHA-256) [HALLPASS_RATE_LIMIT_KEY_FILE]")
	fs.StringVar(&c.keyRing, "key-ring", ee.str(e, "HALLPASS_KEY_RING", "files"), "where the key ring lives: files (--keys-dir) or redis (the --store Redis, secrets wrapped under --wrap-key-file, shared by every node) [HALLPASS_KEY_RING]")
	fs.StringVar(&c.adminListen, "admin-listen", ee.str(e, "HALLPASS_ADMIN_LISTEN", "127.0.0.1:9090"), "address of the admin API listener (only with --admin-keys-file) [HALLPASS_ADMIN_LISTEN]")
	fs.StringVar(&c.adminKeysFile, "admin-keys-file", e.getenv("HALLPASS_ADMIN_KEYS_FILE"), "admin key digests (hallpass admin-key new); unset: no admin API [HALLPASS_ADMIN_KEYS_FILE]")
	fs.DurationVar(&c.revMaxStale, "revocation-max-staleness", ee.dur(e, "HALLPASS_REVOCATION_MAX_STALENESS", revocation.DefaultMaxStaleness), "how long the revocation mirror may go without hearing from its store before it fails closed [HALLPASS_REVOCATION_MAX_STALENESS]")
	fs.BoolVar(&c.revFailOpen, "revocation-fail-open", ee.boolean(e, "HALLPASS_REVOCATION_FAIL_OPEN"), "accept tokens when the revocation mirror is stale, instead of refusing them (NOT recommended) [HALLPASS_REVOCATION_FAIL_OPEN]")
	fs.StringVar(&c.logLevel, "log-level", ee.str(e, "HALLPASS_LOG_LEVEL", "info"), "debug, info, warn or error [HALLPASS_LOG_LEVEL]")
	if err := parseServerFlags(fs, args, &ee, "serve"); err != nil {
		return nil, err
	}
	return &c, nil
}

// serve runs the server until ctx ends, then shuts down gracefully:
// in-flight requests get --shutdown-timeout to finish. ready, when not nil,
// receives the public URL once the listener is bound (tests).
func serve(ctx context.Context, c *serveConfig, e *env, ready chan<- string) error {
	log, tlsMin, err := serverLogTLS(e, c.logLevel, c.tlsCert, c.tlsKey, c.tlsMin)
	if err != nil {
		return err
	}
	if c.keysDir == "" {
		c.keysDir = filepath.Join(c.data, "keys")
	}
	if c.store == "" {
		c.store = "bolt:" + filepath.Join(c.data, "hallpass.db")
	}
	proxies, err := parseCIDRs(c.trustedProxies)
	if err != nil {
		return err
	}
	perIP, err := parseRule(c.limitPerIP, "--signup-limit-per-ip")
	if err != nil {
		return err
	}
	global, err := parseRule(c.limitGlobal, "--signup-limit-global")
	if err != nil {
		return err
	}

	if c.limitKeyFile != "" {
		k, err := loadWrapKey(c.limitKeyFile)
		if err != nil {
			return fmt.Errorf("--rate-limit-key-file: %w", err)
		}
		c.limitHashKey = k.UnsafeBytes()
	}

	var live *liveRing
	var codec *refresh.Codec
	var keyManager issuer.KeyManager
	switch c.keyRing {
	case "files":
		ring, cd, keyStore, err := loadKeys(ctx, c, e, log)
		if err != nil {
			return err
		}
		live, codec = newLiveRing(ring), cd
		keyManager = ringKeyManager{store: keyStore, live: live}
	case "redis":
		if c.prot.wrapKeyFile == "" {
			return fmt.Errorf("%w: --key-ring redis needs --wrap-key-file (the key that wraps the secrets stored in Redis)", errUsage)
		}
	default:
		return fmt.Errorf("%w: --key-ring must be files or redis", errUsage)
	}

	be, err := openBackend(ctx, c, log)
	if err != nil {
		return err
	}
	defer be.close()

	if c.keyRing == "redis" {
		if be.redis == nil {
			return fmt.Errorf("%w: --key-ring redis needs a Redis --store", errUsage)
		}
		rk, err := openRedisKeys(ctx, c, be.redis, log)
		if err != nil {
			return err
		}
		live, codec = rk.live, rk.codec
		keyManager = ringKeyManager{store: rk.store, live: live}
		// Follow the other nodes' rotations; stopped before the stores close.
		wctx, stopWatch := context.WithCancel(ctx)
		watchDone := make(chan struct{})
		go func() {
			defer close(watchDone)
			_ = rk.store.Watch(wctx, rk.version, func(uint64) {
				if r, err := rk.store.Load(wctx); err == nil {
					live.p.Store(r)
				} else if wctx.Err() == nil {
					log.Warn("reloading the key ring from Redis failed", slog.String("error", err.Error()))
				}
			})
		}()
		defer func() { stopWatch(); <-watchDone }()
	}

	// The revocation mirror: the issuer's own verifier checks it on every
	// authenticated request, and /readyz reports its staleness. It stops
	// (deferred, so after the HTTP servers) before the stores close.
	var mirror *revocation.Mirror
	if be.revocations != nil {
		mirror, err = revocation.NewMirror(be.revocations, revocation.MirrorOptions{
			MaxStaleness: c.revMaxStale, FailOpen: c.revFailOpen, Logger: log,
		})
		if err != nil {
			return fmt.Errorf("%w: %v", errUsage, err)
		}
		mirror.Start()
		defer mirror.Close()
		// Give the first snapshot a moment, so that the first requests are
		// not refused as stale; /readyz tells the rest.
		select {
		case <-mirror.Synced():
		case <-time.After(c.storeTimeout):
			log.Warn("the revocation mirror has not loaded its snapshot yet; authenticated requests answer 503 until it does")
		case <-ctx.Done():
		}
		if c.revFailOpen {
			log.Warn("the revocation mirror FAILS OPEN: while it is stale, revoked tokens are accepted")
		}
	}

	var nonces *dpop.NonceSource
	if c.dpopNonce {
		nk, err := loadNonceKey(c.nonceKeyFile)
		if err != nil {
			return err
		}
		if nonces, err = dpop.NewNonceSource(nk, dpop.NonceOptions{}); err != nil {
			return err
		}
	}

	ln, err := listenPublic(c.listen, &c.publicURL, c.tlsCert != "")
	if err != nil {
		return err
	}
	defer ln.Close()

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	cfg := issuer.Config{
		PublicURL:      c.publicURL,
		Audience:       c.audience,
		Store:          be.store,
		Keys:           live,
		Refresh:        codec,
		AccessTTL:      c.accessTTL,
		RefreshTTL:     c.refreshTTL,
		RefreshIdle:    c.refreshIdle,
		RefreshGrace:   c.refreshGrace,
		DPoP:           issuer.DPoPConfig{Replay: be.replay, Nonces: nonces},
		Limiter:        be.limiter,
		SignupPerIP:    perIP,
		SignupGlobal:   global,
		Logger:         log,
		Registry:       reg,
		TrustedProxies: proxies,
		StoreTimeout:   c.storeTimeout,
		Revocations:    be.revocations,
		AdminKeysFile:  c.adminKeysFile,
		AuditSink:      be.audit,
		KeyManager:     keyManager,
	}
	if mirror != nil {
		cfg.RevocationMirror = mirror
	}
	srv, err := issuer.New(cfg)
	if err != nil {
		return err
	}

	hs := &http.Server{
		Handler:           srv.Handler(),
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       15 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    32 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	if c.tlsCert != "" {
		if hs.TLSConfig, err = serverTLSConfig(c.tlsCert, c.tlsKey, tlsMin); err != nil {
			return err
		}
	}
	log.Info("hallpass issuer listening", slog.String("addr", ln.Addr().String()),
		slog.String("public_url", srv.PublicURL()), slog.String("store", be.kind),
		slog.Bool("tls", c.tlsCert != ""), slog.Bool("dev", c.dev), slog.Bool("dpop_nonce", c.dpopNonce))

	// The admin API: its own listener and handler, only with a keys file.
	var as *http.Server
	var aln net.Listener
	if c.adminKeysFile != "" {
		if _, err := os.Stat(c.adminKeysFile); err != nil {
			return fmt.Errorf("--admin-keys-file: %w (create it with hallpass admin-key new)", err)
		}
		aln, err = net.Listen("tcp", c.adminListen)
		if err != nil {
			return fmt.Errorf("admin listen: %w", err)
		}
		defer aln.Close()
		as = &http.Server{
			Handler:           srv.AdminHandler(),
			ReadHeaderTimeout: 5 * time.Second,
			ReadTimeout:       15 * time.Second,
			WriteTimeout:      30 * time.Second,
			IdleTimeout:       120 * time.Second,
			MaxHeaderBytes:    32 << 10,
			ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
			TLSConfig:         hs.TLSConfig,
		}
		log.Info("hallpass admin API listening", slog.String("addr", aln.Addr().String()), slog.Bool("tls", as.TLSConfig != nil))
		if c.adminBound != nil {
			c.adminBound(aln.Addr().String())
		}
	} else {
		log.Info("admin API disabled (no --admin-keys-file)")
	}
	if ready != nil {
		ready <- srv.PublicURL()
	}

	errc := make(chan error, 2)
	run := func(h *http.Server, l net.Listener) {
		if h.TLSConfig != nil {
			errc <- h.ServeTLS(l, "", "") // certificates from TLSConfig; enables HTTP/2
			return
		}
		errc <- h.Serve(l)
	}
	servers := []*http.Server{hs}
	go run(hs, ln)
	if as != nil {
		servers = append(servers, as)
		go run(as, aln)
	}
	var serveErr error
	select {
	case err := <-errc:
		serveErr = fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	log.Info("shutting down")
	sctx, cancel := context.WithTimeout(context.Background(), c.shutdownTimeout)
	defer cancel()
	for _, h := range servers {
		if err := h.Shutdown(sctx); err != nil {
			log.Warn("graceful shutdown incomplete; closing connections", slog.String("error", err.Error()))
			h.Close()
		}
	}
	if serveErr != nil {
		return serveErr
	}
	for range servers {
		if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
			return fmt.Errorf("serve: %w", err)
		}
	}
	return nil
}

// liveRing is the served key source: the ring as last loaded or changed
// through the admin API, swapped atomically.
type liveRing struct{ p atomic.Pointer[keys.Ring] }

func newLiveRing(r *keys.Ring) *liveRing {
	l := &liveRing{}
	l.p.Store(r)
	return l
}

func (l *liveRing) Current() *keys.SecretKey { return l.p.Load().Current() }
func (l *liveRing) Lookup(kid keys.KeyID) (keys.PublicKey, keys.Status, bool) {
	return l.p.Load().Lookup(kid)
}
func (l *liveRing) KeySet(issuer string) keys.KeySetDocument {
	return l.p.Load().KeySet(issuer)
}

// ringKeyManager changes the ring through its store and serves the result
// at once. With the file store (under the store's writer lock) other nodes
// sharing the key directory see the change on their next restart; with
// redisring (optimistic, retried on a concurrent change) they see it
// through Watch.
type ringKeyManager struct {
	store ringUpdater
	live  *liveRing
}

// ringUpdater is what filestore.Store and redisring.Store both offer.
type ringUpdater interface {
	Update(ctx context.Context, fn func(*keys.Ring) error) (*keys.Ring, error)
}

func (m ringKeyManager) update(ctx context.Context, fn func(*keys.Ring) error) error {
	r, err := m.store.Update(ctx, fn)
	if err != nil {
		return err
	}
	m.live.p.Store(r)
	return nil
}

func (m ringKeyManager) Rotate(ctx context.Context) error {
	return m.update(ctx, func(r *keys.Ring) error { return r.Rotate(nil, time.Now()) })
}

func (m ringKeyManager) Revoke(ctx context.Context, kid keys.KeyID) error {
	return m.update(ctx, func(r *keys.Ring) error { return r.Revoke(kid, nil, time.Now()) })
}

// defaultPublicURL is http(s)://<listen>, with an unspecified host replaced
// by 127.0.0.1 (clients cannot use 0.0.0.0 in htu).
func defaultPublicURL(listen string, tlsOn bool) string {
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		host, port = listen, ""
	}
	if ip, err := netip.ParseAddr(host); host == "" || (err == nil && ip.IsUnspecified()) {
		host = "127.0.0.1"
	}
	scheme := "http"
	if tlsOn {
		scheme = "https"
	}
	u := url.URL{Scheme: scheme, Host: host}
	if port != "" {
		u.Host = net.JoinHostPort(host, port)
	}
	return u.String()
}

func parseCIDRs(s string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		p, err := netip.ParsePrefix(f)
		if err != nil {
			a, aerr := netip.ParseAddr(f)
			if aerr != nil {
				return nil, fmt.Errorf("%w: --trusted-proxies: %q is not a CIDR or address", errUsage, f)
			}
			p = netip.PrefixFrom(a, a.BitLen())
		}
		out = append(out, p.Masked())
	}
	return out, nil
}

// loadKeys opens the key ring and the refresh-token keys.
//
// Without --dev: a ring protected by --passphrase-file or --wrap-key-file
// must exist; a plaintext ring is refused. With --dev: when no protection
// is given, the ring is plaintext, and a missing ring is created, with a
// loud warning.
func loadKeys(ctx context.Context, c *serveConfig, e *env, log *slog.Logger) (*keys.Ring, *refresh.Codec, *filestore.Store, error) {
	protected := c.prot.passphraseFile != "" || c.prot.wrapKeyFile != ""
	if !c.dev && c.prot.insecure {
		return nil, nil, nil, fmt.Errorf("%w: --insecure-plaintext is only allowed with --dev", errUsage)
	}
	if !c.dev && !protected {
		return nil, nil, nil, fmt.Errorf("%w: give --passphrase-file or --wrap-key-file for the key ring (or --dev for a plaintext development ring)", errUsage)
	}
	if c.dev && !protected {
		c.prot.insecure = true
	}
	prot, err := c.prot.protector(&env{stdin: e.stdin, stdout: e.stdout, stderr: io.Discard, getenv: e.getenv})
	if err != nil {
		return nil, nil, nil, err
	}
	st, err := filestore.New(c.keysDir, prot, nil)
	if err != nil {
		return nil, nil, nil, err
	}
	created := false
	if !st.Exists() {
		if !c.dev {
			return nil, nil, nil, fmt.Errorf("no key ring in %s: create one with `hallpass keys init --dir %s --passphrase-file FILE` (or --wrap-key-file)", c.keysDir, c.keysDir)
		}
		if err := os.MkdirAll(c.data, 0o700); err != nil {
			return nil, nil, nil, fmt.Errorf("create data directory: %w", err)
		}
		if _, err := st.Init(ctx, time.Now()); err != nil && !errors.Is(err, filestore.ErrExists) {
			return nil, nil, nil, err
		}
		created = true
		log.Warn("DEVELOPMENT MODE: created a new key ring; its secret keys are stored IN PLAINTEXT. Never use --dev in production.",
			slog.String("keys_dir", c.keysDir))
	}
	if got, err := st.Protection(); err != nil {
		return nil, nil, nil, err
	} else if got == filestore.ProtectionPlaintext && !c.dev {
		return nil, nil, nil, fmt.Errorf("the key ring in %s is plaintext; refusing to start without --dev (re-create it with a passphrase or wrapping key)", c.keysDir)
	} else if got == filestore.ProtectionPlaintext && !created {
		log.Warn("DEVELOPMENT MODE: the key ring's secret keys are stored IN PLAINTEXT. Never use --dev in production.",
			slog.String("keys_dir", c.keysDir))
	}
	ring, err := st.Load(ctx)
	if err != nil {
		return nil, nil, nil, err
	}
	locals, err := st.LoadLocal(ctx)
	if errors.Is(err, filestore.ErrNotFound) {
		// A ring made before refresh-token keys existed: add them (same
		// protection, under the ring's lock).
		if err := st.RotateLocal(ctx, time.Now(), 0); err != nil {
			return nil, nil, nil, err
		}
		log.Warn("created refresh-token keys in the key ring directory", slog.String("keys_dir", c.keysDir))
		locals, err = st.LoadLocal(ctx)
	}
	if err != nil {
		return nil, nil, nil, err
	}
	prev := make([]*keys.LocalKey, 0, len(locals)-1)
	for _, l := range locals[1:] {
		prev = append(prev, l.Key)
	}
	codec, err := refresh.NewCodec(time.Now, locals[0].Key, prev...)
	if err != nil {
		return nil, nil, nil, err
	}
	return ring, codec, st, nil
}

func loadNonceKey(path string) (*dpop.NonceKey, error) {
	if path == "" {
		return dpop.GenerateNonceKey(nil)
	}
	w, err := loadWrapKey(path) // same accepted encodings: 32 bytes raw, base64url or hex
	if err != nil {
		return nil, fmt.Errorf("--dpop-nonce-key-file: %w", err)
	}
	return dpop.NewNonceKey(w.UnsafeBytes())
}

// backend is the store and what shares its engine: the DPoP replay cache
// and the signup rate limiter (in memory for bolt; in Redis for Redis, so
// several nodes share one replay window and one budget).
type backend struct {
	kind    string
	store   account.Store
	replay  dpop.ReplayCache
	limiter ratelimit.Limiter
	// revocations is the revocation store on the same engine: bbolt
	// (revocation.db beside the account file) or Redis.
	revocations revocation.Store
	// audit receives admin audit records besides the log (Redis: a
	// stream); nil on bbolt.
	audit   issuer.AuditSink
	redis   redis.UniversalClient // nil on bbolt
	closers []func() error
}

func (b *backend) close() {
	for i := len(b.closers) - 1; i >= 0; i-- {
		_ = b.closers[i]()
	}
}

// openBackend parses --store:
//
//	bolt:PATH                          embedded bbolt file
//	redis://[user:pass@]host:port/db   one Redis node (rediss:// for TLS)
//	redis+sentinel://[user:pass@]host:port/db?master_name=NAME&addr=host2:port
//	                                   Sentinel (rediss+sentinel:// for TLS)
//	redis+cluster://[user:pass@]host:port?addr=host2:port
//	                                   Cluster (rediss+cluster:// for TLS)
//
// Query parameters are go-redis options (dial_timeout, read_timeout,
// pool_size, ...). Errors never quote the URL: it may hold a password.
func openBackend(ctx context.Context, c *serveConfig, log *slog.Logger) (*backend, error) {
	s := c.store
	if path, ok := strings.CutPrefix(s, "bolt:"); ok {
		if path == "" {
			return nil, fmt.Errorf("%w: --store bolt: needs a path", errUsage)
		}
		if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
			return nil, fmt.Errorf("create store directory: %w", err)
		}
		st, err := boltstore.Open(path, boltstore.Options{})
		if err != nil {
			return nil, err
		}
		replay, err := dpop.NewMemoryReplayCache(dpop.MemoryReplayOptions{})
		if err != nil {
			st.Close()
			return nil, err
		}
		lim, err := ratelimit.NewMemory(ratelimit.MemoryOptions{})
		if err != nil {
			st.Close()
			return nil, err
		}
		rs, err := revbolt.Open(filepath.Join(filepath.Dir(path), "revocation.db"), revbolt.Options{})
		if err != nil {
			st.Close()
			return nil, err
		}
		return &backend{kind: "bolt", store: st, replay: replay, limiter: lim, revocations: rs,
			closers: []func() error{st.Close, rs.Close}}, nil
	}
	client, kind, err := redisClient(s)
	if err != nil {
		return nil, err
	}
	b := &backend{kind: kind, redis: client, closers: []func() error{client.Close}}
	st, err := redisstore.New(client, redisstore.Options{})
	if err != nil {
		b.close()
		return nil, err
	}
	b.store = st
	b.closers = append(b.closers, st.Close)
	if b.replay, err = redisreplay.New(client, redisreplay.Options{}); err != nil {
		b.close()
		return nil, err
	}
	if b.limiter, err = redislimit.New(client, redislimit.Options{HashKey: c.limitHashKey}); err != nil {
		b.close()
		return nil, err
	}
	if b.revocations, err = redisRevocations(client); err != nil {
		b.close()
		return nil, err
	}
	if b.audit, err = redisaudit.New(client, redisaudit.Options{}); err != nil {
		b.close()
		return nil, err
	}
	pctx, cancel := context.WithTimeout(ctx, c.storeTimeout)
	defer cancel()
	if err := st.Ping(pctx); err != nil {
		// Not fatal: /readyz reports it and requests get 503 until Redis
		// answers.
		log.Warn("the Redis store does not answer yet", slog.String("error", err.Error()))
	}
	return b, nil
}

func redisClient(s string) (redis.UniversalClient, string, error) {
	scheme, rest, ok := strings.Cut(s, "://")
	if !ok {
		return nil, "", fmt.Errorf("%w: --store must be bolt:PATH or a redis URL (see docs/configuration.md)", errUsage)
	}
	base, variant, _ := strings.Cut(strings.ToLower(scheme), "+")
	if base != "redis" && base != "rediss" {
		return nil, "", fmt.Errorf("%w: --store must be bolt:PATH or a redis URL (see docs/configuration.md)", errUsage)
	}
	u := base + "://" + rest
	bad := func(kind string) error {
		return fmt.Errorf("%w: --store: malformed %s URL (the value is not shown: it may hold a password)", errUsage, kind)
	}
	switch variant {
	case "":
		o, err := redis.ParseURL(u)
		if err != nil {
			return nil, "", bad("redis")
		}
		o.ContextTimeoutEnabled = true
		return redis.NewClient(o), "redis", nil
	case "sentinel":
		o, err := redis.ParseFailoverURL(u)
		if err != nil || o.MasterName == "" {
			return nil, "", bad("redis+sentinel (needs master_name)")
		}
		o.ContextTimeoutEnabled = true
		return redis.NewFailoverClient(o), "redis-sentinel", nil
	case "cluster":
		o, err := redis.ParseClusterURL(u)
		if err != nil {
			return nil, "", bad("redis+cluster")
		}
		o.ContextTimeoutEnabled = true
		return redis.NewClusterClient(o), "redis-cluster", nil
	}
	return nil, "", bad(scheme)
}

// parseRule reads a signup limit: "N/unit", "N/Kunit" (s, m, h, d) or "off".
func parseRule(s, flagName string) (ratelimit.Rule, error) {
	r, err := ratelimit.ParseRule(s)
	if err != nil {
		return ratelimit.Rule{}, fmt.Errorf("%w: %s: want N/unit (units s, m, h, d; e.g. 30/h, 100/10m) or off", errUsage, flagName)
	}
	return r, nil
}

// redisRevocations is the revocation store on the Redis client.
func redisRevocations(c redis.UniversalClient) (revocation.Store, error) {
	return revredis.New(c, revredis.Options{})
}

// redisKeys is the key ring kept in Redis (keys/redisring).
type redisKeys struct {
	store   *redisring.Store
	live    *liveRing
	codec   *refresh.Codec
	version uint64
}

// openRedisKeys loads the key ring from Redis, creating it when none
// exists (its secrets are wrapped under --wrap-key-file, never stored in
// plaintext, so no --dev is needed; concurrent first starts create one
// ring: Init is SET NX).
func openRedisKeys(ctx context.Context, c *serveConfig, client redis.UniversalClient, log *slog.Logger) (*redisKeys, error) {
	w, err := loadWrapKey(c.prot.wrapKeyFile)
	if err != nil {
		return nil, fmt.Errorf("--wrap-key-file: %w", err)
	}
	st, err := redisring.New(client, w, redisring.Options{})
	if err != nil {
		return nil, err
	}
	if _, err := st.Init(ctx, time.Now()); err == nil {
		log.Warn("created a new key ring in Redis", slog.String("key_ring", "redis"))
	} else if !errors.Is(err, redisring.ErrExists) {
		return nil, fmt.Errorf("key ring in Redis: %w", err)
	}
	ring, version, err := st.LoadVersion(ctx)
	if err != nil {
		return nil, fmt.Errorf("key ring in Redis: %w", err)
	}
	locals, err := st.LoadLocal(ctx)
	if errors.Is(err, redisring.ErrNotFound) {
		if err := st.RotateLocal(ctx, time.Now(), 0); err != nil {
			return nil, err
		}
		locals, err = st.LoadLocal(ctx)
	}
	if err != nil {
		return nil, fmt.Errorf("refresh-token keys in Redis: %w", err)
	}
	prev := make([]*keys.LocalKey, 0, len(locals))
	for _, l := range locals[1:] {
		prev = append(prev, l.Key)
	}
	codec, err := refresh.NewCodec(time.Now, locals[0].Key, prev...)
	if err != nil {
		return nil, err
	}
	return &redisKeys{store: st, live: newLiveRing(ring), codec: codec, version: version}, nil
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
