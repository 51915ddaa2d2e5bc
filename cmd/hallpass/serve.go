package main

import (
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/hallpass/hallpass/dpop"
	"github.com/hallpass/hallpass/internal/procs"
	"github.com/hallpass/hallpass/issuer"
	"github.com/hallpass/hallpass/ratelimit"
	"github.com/hallpass/hallpass/revocation"
)

var serveDoc = cmdDoc{
	name:    "serve",
	args:    "[flags]",
	summary: "run the issuer (make run: serve --dev)",
	detail: `Every flag has a HALLPASS_* variable, named in brackets: the variable is
the default, the flag wins. SIGINT or SIGTERM stops the server gracefully,
with exit status 0. docs/configuration.md explains every setting.`,
	examples: []string{
		"hallpass serve --dev",
		"hallpass serve --wrap-key-file wrap.key --public-url https://auth.example.com --listen 0.0.0.0:8080",
		"hallpass serve --key-ring redis --store redis://127.0.0.1:6379/0 --wrap-key-file wrap.key --admin-keys-file admin-keys",
	},
}

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
	limitRedeem, limitRecover   string
	limitRename                 string
	guard                       guardFlags // serveguard.go: network budgets, --metrics-listen
	pprof                       pprofFlags // pprof.go: --pprof-listen
	maxConns, maxConnsPerIP     int
	corsOrigins                 string
	linkCodeTTL, usernameHold   time.Duration
	maxDevices                  int
	accessTTL, refreshTTL       time.Duration
	refreshIdle, refreshGrace   time.Duration
	storeTimeout                time.Duration
	tokenCache                  int
	accountCache                int
	shutdownTimeout             time.Duration
	dpopNonce                   bool
	nonceKeyFile                string
	limitKeyFile                string
	limitHashKey                []byte
	logLevel                    string
	adminListen, adminKeysFile  string
	keyRing                     string
	rotateEvery                 time.Duration // keyring.go
	revMaxStale                 time.Duration
	revFailOpen                 bool
	// adminBound, when set, receives the admin listener's address (tests).
	adminBound func(addr string)
	// keyClock, when set, is the clock of the served key ring (tests).
	keyClock func() time.Time
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
	fs := newFlagSet(serveDoc, e)
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
	fs.StringVar(&c.limitRedeem, "code-limit-per-ip", ee.str(e, "HALLPASS_CODE_LIMIT_PER_IP", "30/h"), "link- and recovery-code redemptions per client address, N/s|m|h|d, or off [HALLPASS_CODE_LIMIT_PER_IP]")
	c.guard.register(fs, e, &ee)
	fs.StringVar(&c.limitRecover, "recover-limit-per-account", ee.str(e, "HALLPASS_RECOVER_LIMIT_PER_ACCOUNT", "10/h"), "recovery attempts per username from one client address, N/s|m|h|d, or off [HALLPASS_RECOVER_LIMIT_PER_ACCOUNT]")
	fs.StringVar(&c.limitRename, "rename-limit-per-account", ee.str(e, "HALLPASS_RENAME_LIMIT_PER_ACCOUNT", "5/d"), "renames per account (each name left stays held for --username-hold), N/s|m|h|d, or off [HALLPASS_RENAME_LIMIT_PER_ACCOUNT]")
	fs.StringVar(&c.corsOrigins, "cors-origins", e.getenv("HALLPASS_CORS_ORIGINS"), "comma-separated browser origins (https://game.example) whose pages may call the API; no wildcard [HALLPASS_CORS_ORIGINS]")
	fs.IntVar(&c.maxConns, "max-connections", ee.integer(e, "HALLPASS_MAX_CONNECTIONS", defaultMaxConns), "open connections to the public listener in all; beyond it new ones are closed (0: no cap) [HALLPASS_MAX_CONNECTIONS]")
	fs.IntVar(&c.maxConnsPerIP, "max-connections-per-ip", ee.integer(e, "HALLPASS_MAX_CONNECTIONS_PER_IP", defaultMaxConnsPerIP), "open connections from one client address, an IPv6 /64 counting as one (trusted proxies excepted; 0: no cap) [HALLPASS_MAX_CONNECTIONS_PER_IP]")
	fs.IntVar(&c.maxDevices, "max-devices", ee.integer(e, "HALLPASS_MAX_DEVICES", issuer.DefaultMaxDevices), "active devices an account may have, its live link codes counted (1 to 1000); past it a link code answers 409 device_limit [HALLPASS_MAX_DEVICES]")
	fs.DurationVar(&c.linkCodeTTL, "link-code-ttl", ee.dur(e, "HALLPASS_LINK_CODE_TTL", issuer.DefaultLinkCodeTTL), "how long a link code lives, 1m to 1h [HALLPASS_LINK_CODE_TTL]")
	fs.DurationVar(&c.usernameHold, "username-hold", ee.dur(e, "HALLPASS_USERNAME_HOLD", issuer.DefaultUsernameHold), "how long a deleted or renamed account's username stays taken [HALLPASS_USERNAME_HOLD]")
	fs.DurationVar(&c.accessTTL, "access-ttl", ee.dur(e, "HALLPASS_ACCESS_TTL", issuer.DefaultAccessTTL), "access-token lifetime, 1m to 60m [HALLPASS_ACCESS_TTL]")
	fs.DurationVar(&c.refreshTTL, "refresh-ttl", ee.dur(e, "HALLPASS_REFRESH_TTL", issuer.DefaultRefreshTTL), "absolute lifetime of a device session [HALLPASS_REFRESH_TTL]")
	fs.DurationVar(&c.refreshIdle, "refresh-idle", ee.dur(e, "HALLPASS_REFRESH_IDLE", issuer.DefaultRefreshIdle), "a session unused this long ends [HALLPASS_REFRESH_IDLE]")
	fs.DurationVar(&c.refreshGrace, "refresh-grace", ee.dur(e, "HALLPASS_REFRESH_GRACE", issuer.DefaultRefreshGrace), "window in which the previous refresh token gets the same successor [HALLPASS_REFRESH_GRACE]")
	fs.DurationVar(&c.storeTimeout, "store-timeout", ee.dur(e, "HALLPASS_STORE_TIMEOUT", issuer.DefaultStoreTimeout), "bound on each store, replay-cache and rate-limit call; beyond it 503 [HALLPASS_STORE_TIMEOUT]")
	fs.IntVar(&c.tokenCache, "token-cache", ee.integer(e, "HALLPASS_TOKEN_CACHE", issuer.DefaultTokenCache), "verified access tokens remembered by the issuer's own verifier (a hit skips the signature check, never the revocation, state or proof checks); 0 turns it off [HALLPASS_TOKEN_CACHE]")
	fs.IntVar(&c.accountCache, "account-cache", ee.integer(e, "HALLPASS_ACCOUNT_CACHE", defaultAccountCache), "accounts whose views this node keeps for GET /v1/me, POST /v1/logout and GET /v1/me/devices, kept in step by Redis's invalidations (Redis stores: one node, Sentinel or Cluster; bbolt reads every time); 0 turns it off [HALLPASS_ACCOUNT_CACHE]")
	fs.DurationVar(&c.shutdownTimeout, "shutdown-timeout", ee.dur(e, "HALLPASS_SHUTDOWN_TIMEOUT", 15*time.Second), "how long a graceful shutdown waits for requests in flight [HALLPASS_SHUTDOWN_TIMEOUT]")
	fs.BoolVar(&c.dpopNonce, "dpop-nonce", ee.boolean(e, "HALLPASS_DPOP_NONCE"), "demand DPoP server nonces on signup and refresh [HALLPASS_DPOP_NONCE]")
	fs.StringVar(&c.nonceKeyFile, "dpop-nonce-key-file", e.getenv("HALLPASS_DPOP_NONCE_KEY_FILE"), "32-byte key shared by all nodes for DPoP nonces (default: random per process) [HALLPASS_DPOP_NONCE_KEY_FILE]")
	fs.StringVar(&c.limitKeyFile, "rate-limit-key-file", e.getenv("HALLPASS_RATE_LIMIT_KEY_FILE"), "32-byte key shared by all nodes that keys the Redis rate-limit digests of client addresses (default: plain SHA-256) [HALLPASS_RATE_LIMIT_KEY_FILE]")
	fs.StringVar(&c.keyRing, "key-ring", ee.str(e, "HALLPASS_KEY_RING", "files"), "where the key ring lives: files (--keys-dir) or redis (the --store Redis, secrets wrapped under --wrap-key-file, shared by every node) [HALLPASS_KEY_RING]")
	fs.DurationVar(&c.rotateEvery, "rotate-every", ee.dur(e, "HALLPASS_ROTATE_EVERY", 0), "rotate the signing key once it has signed this long, at least 1h (0: only hallpass admin rotate-keys) [HALLPASS_ROTATE_EVERY]")
	fs.StringVar(&c.adminListen, "admin-listen", ee.str(e, "HALLPASS_ADMIN_LISTEN", "127.0.0.1:9090"), "address of the admin API listener (only with --admin-keys-file) [HALLPASS_ADMIN_LISTEN]")
	fs.StringVar(&c.adminKeysFile, "admin-keys-file", e.getenv("HALLPASS_ADMIN_KEYS_FILE"), "admin key digests (hallpass admin-key new); unset: no admin API [HALLPASS_ADMIN_KEYS_FILE]")
	fs.DurationVar(&c.revMaxStale, "revocation-max-staleness", ee.dur(e, "HALLPASS_REVOCATION_MAX_STALENESS", revocation.DefaultMaxStaleness), "how long the revocation mirror may go without hearing from its store before it fails closed [HALLPASS_REVOCATION_MAX_STALENESS]")
	fs.BoolVar(&c.revFailOpen, "revocation-fail-open", ee.boolean(e, "HALLPASS_REVOCATION_FAIL_OPEN"), "accept tokens when the revocation mirror is stale, instead of refusing them (NOT recommended) [HALLPASS_REVOCATION_FAIL_OPEN]")
	c.pprof.register(fs, e)
	fs.StringVar(&c.logLevel, "log-level", ee.str(e, "HALLPASS_LOG_LEVEL", "info"), "debug, info, warn or error [HALLPASS_LOG_LEVEL]")
	if err := parseServerFlags(fs, args, &ee, "serve"); err != nil {
		return nil, err
	}
	return &c, nil
}

// tuneGC gives the collector room while the live heap is small
// (procs.GC), unless GOGC or GOMEMLIMIT is set (the serve and gateway
// commands).
func tuneGC(log *slog.Logger) {
	if procs.GC() {
		log.Info("GOGC follows the live heap: up to 400 while it is small, so at most 256 MiB more than Go's default (set GOGC or GOMEMLIMIT to choose)",
			slog.Int("max_gogc", procs.MaxGCPercent), slog.Int("headroom_mib", procs.Headroom>>20))
	}
}

// serve runs the server until ctx ends, then shuts down gracefully:
// in-flight requests get --shutdown-timeout to finish. ready, when not nil,
// receives the public URL once the listener is bound (tests).
func serve(ctx context.Context, c *serveConfig, e *env, ready chan<- string) error {
	log, tlsConf, err := serverLogTLS(e, c.logLevel, c.tlsCert, c.tlsKey, c.tlsMin)
	if err != nil {
		return err
	}
	raiseProcs(log)
	tuneGC(log)
	lim, err := c.resolve()
	if err != nil {
		return err
	}
	be, ks, err := openKeysAndBackend(ctx, c, e, log)
	if err != nil {
		return err
	}
	defer be.close()
	defer ks.ring.Close() // stops following other nodes before the stores close
	// The issuer's verifier checks the mirror on every authenticated
	// request and /readyz reports its staleness; it stops (deferred, so
	// after the HTTP servers) before the stores close.
	mirror, err := c.revocationMirror(ctx, be, log)
	if err != nil {
		return err
	}
	defer mirror.Close()
	ln, err := listenPublic(c.listen, &c.publicURL, tlsConf != nil)
	if err != nil {
		return err
	}
	ln = capConnections(ln, c.maxConns, c.maxConnsPerIP, lim.proxies, log)
	defer ln.Close()
	cfg, err := c.issuerConfig(be, ks, mirror, lim, log)
	if err != nil {
		return err
	}
	srv, err := issuer.New(cfg)
	if err != nil {
		return configErr(err, serveFieldFlags)
	}
	servers := []listening{{apiServer(srv.Handler(), tlsConf, log), ln}}
	log.Info("hallpass issuer listening", slog.String("addr", ln.Addr().String()),
		slog.String("public_url", srv.PublicURL()), slog.String("store", be.kind),
		slog.Bool("tls", tlsConf != nil), slog.Bool("dev", c.dev), slog.Bool("dpop_nonce", c.dpopNonce))
	side, err := c.listenSide(srv, tlsConf, log)
	if err != nil {
		return err
	}
	defer closeAll(side)
	if ready != nil {
		ready <- srv.PublicURL()
	}
	return serveUntilDone(ctx, log, c.shutdownTimeout, "serve", append(servers, side...)...)
}

// raiseProcs raises GOMAXPROCS to procs.Min (unless it is set) and logs it.
func raiseProcs(log *slog.Logger) {
	if before, after := procs.AtLeast(procs.Min); after != before {
		log.Info("GOMAXPROCS raised: one processor keeps serving while the other waits for a store flush (set GOMAXPROCS to choose)",
			slog.Int("from", before), slog.Int("to", after))
	}
}

// openKeysAndBackend opens the key ring and the stores, closing what it opened on an error.
func openKeysAndBackend(ctx context.Context, c *serveConfig, e *env, log *slog.Logger) (*backend, *servedKeys, error) {
	ks, err := openFileKeys(ctx, c, e, log) // nil with --key-ring redis
	if err != nil {
		return nil, nil, err
	}
	be, err := openBackend(ctx, c, log)
	if err != nil {
		if ks != nil {
			ks.ring.Close() // a file ring already follows its directory
		}
		return nil, nil, err
	}
	if ks == nil {
		if ks, err = openRedisKeys(ctx, c, be.redis, log); err != nil {
			be.close()
			return nil, nil, err
		}
	}
	return be, ks, nil
}

// listenSide binds the optional admin, metrics and pprof listeners, closing them all on an error.
func (c *serveConfig) listenSide(srv *issuer.Server, tlsConf *tls.Config, log *slog.Logger) ([]listening, error) {
	var side []listening
	admin, err := c.listenAdmin(srv, tlsConf, log)
	if err != nil {
		return nil, err
	}
	if admin != nil {
		side = append(side, *admin)
	}
	metrics, err := c.guard.listenMetrics(srv, admin != nil, tlsConf, log)
	if err != nil {
		closeAll(side)
		return nil, err
	}
	if metrics != nil {
		side = append(side, *metrics)
	}
	prof, err := c.pprof.listenPprof(log)
	if err != nil {
		closeAll(side)
		return nil, err
	}
	if prof != nil {
		side = append(side, *prof)
	}
	return side, nil
}

// serveLimits are the parsed flags that issuer.Config takes as values.
type serveLimits struct {
	proxies                []netip.Prefix
	signupPerIP, signupAll ratelimit.Rule
	redeemPerIP, recover   ratelimit.Rule
	rename                 ratelimit.Rule
}

// resolve fills the defaults that derive from --data and parses the flags
// that are not plain values.
func (c *serveConfig) resolve() (serveLimits, error) {
	var l serveLimits
	if c.keysDir == "" {
		c.keysDir = filepath.Join(c.data, "keys")
	}
	if c.store == "" {
		c.store = "bolt:" + filepath.Join(c.data, "hallpass.db")
	}
	var err error
	if l.proxies, err = parseCIDRs(c.trustedProxies); err != nil {
		return l, err
	}
	if l.signupPerIP, err = parseRule(c.limitPerIP, "--signup-limit-per-ip"); err != nil {
		return l, err
	}
	if l.signupAll, err = parseRule(c.limitGlobal, "--signup-limit-global"); err != nil {
		return l, err
	}
	if l.redeemPerIP, err = parseRule(c.limitRedeem, "--code-limit-per-ip"); err != nil {
		return l, err
	}
	if l.recover, err = parseRule(c.limitRecover, "--recover-limit-per-account"); err != nil {
		return l, err
	}
	if l.rename, err = parseRule(c.limitRename, "--rename-limit-per-account"); err != nil {
		return l, err
	}
	if err := c.guard.resolve(c.listen); err != nil {
		return l, err
	}
	if err := c.pprof.resolve(); err != nil {
		return l, err
	}
	if c.maxConns < 0 || c.maxConnsPerIP < 0 {
		return l, fmt.Errorf("%w: --max-connections and --max-connections-per-ip must not be negative", errUsage)
	}
	if c.accountCache < 0 {
		return l, fmt.Errorf("%w: --account-cache must not be negative", errUsage)
	}
	if c.revMaxStale < 0 {
		return l, fmt.Errorf("%w: --revocation-max-staleness must not be negative", errUsage)
	}
	if c.limitKeyFile != "" {
		k, err := loadWrapKey(c.limitKeyFile)
		if err != nil {
			return l, fmt.Errorf("--rate-limit-key-file: %w", err)
		}
		c.limitHashKey = k.UnsafeBytes()
	}
	return l, nil
}

// revocationMirror starts the mirror of the revocation store; the caller
// closes it.
func (c *serveConfig) revocationMirror(ctx context.Context, be *backend, log *slog.Logger) (*revocation.Mirror, error) {
	m, err := startMirror(ctx, be.revocations, revocation.MirrorOptions{
		MaxStaleness: c.revMaxStale, FailOpen: c.revFailOpen, Logger: log,
	}, c.storeTimeout, serveFieldFlags)
	if err == nil && c.revFailOpen {
		log.Warn("the revocation mirror FAILS OPEN: while it is stale, revoked tokens are accepted")
	}
	return m, err
}

// nonceSource is the DPoP nonce source of --dpop-nonce (nil without it).
func (c *serveConfig) nonceSource() (*dpop.NonceSource, error) {
	return newNonceSource(c.dpopNonce, c.nonceKeyFile)
}

// newNonceSource is the DPoP nonce source of --dpop-nonce and
// --dpop-nonce-key-file (serve, gateway): nil when not on.
func newNonceSource(on bool, keyFile string) (*dpop.NonceSource, error) {
	if !on {
		return nil, nil
	}
	nk, err := loadNonceKey(keyFile)
	if err != nil {
		return nil, err
	}
	return dpop.NewNonceSource(nk, dpop.NonceOptions{})
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

// issuerConfig assembles the issuer's configuration from the flags and
// what serve opened.
func (c *serveConfig) issuerConfig(be *backend, ks *servedKeys, mirror *revocation.Mirror, l serveLimits, log *slog.Logger) (issuer.Config, error) {
	nonces, err := c.nonceSource()
	if err != nil {
		return issuer.Config{}, err
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	reg.MustRegister(ks.metrics.collectors()...)
	reg.MustRegister(mirrorCollectors(mirror)...)      // gatewayops.go: the gateway's names
	reg.MustRegister(viewCacheCollectors(be.store)...) // backend.go
	return issuer.Config{
		PublicURL:         c.publicURL,
		Audience:          c.audience,
		Store:             be.store,
		Keys:              ks.ring,
		KeyManager:        ks.ring,
		Refresh:           ks.codec,
		Pepper:            ks.secrets,
		AccessTTL:         c.accessTTL,
		RefreshTTL:        c.refreshTTL,
		RefreshIdle:       c.refreshIdle,
		RefreshGrace:      c.refreshGrace,
		DPoP:              issuer.DPoPConfig{Replay: be.replay, Nonces: nonces},
		Limiter:           be.limiter,
		SignupPerIP:       l.signupPerIP,
		SignupGlobal:      l.signupAll,
		CodeRedeemPerIP:   l.redeemPerIP,
		SignupPerNet:      c.guard.perNet,
		SignupPerSite:     c.guard.perSite,
		SignupReserve:     c.guard.reserve,
		RecoverPerAccount: l.recover,
		RenamePerAccount:  l.rename,
		LinkCodeTTL:       c.linkCodeTTL,
		MaxDevices:        c.maxDevices,
		CORSOrigins:       splitList(c.corsOrigins),
		UsernameHold:      c.usernameHold,
		Logger:            log,
		Registry:          reg,
		TrustedProxies:    l.proxies,
		StoreTimeout:      c.storeTimeout,
		TokenCache:        c.tokenCache,
		NoTokenCache:      c.tokenCache == 0,
		Revocations:       be.revocations,
		RevocationMirror:  mirror,
		AdminKeysFile:     c.adminKeysFile,
		AuditSink:         be.audit,
	}, nil
}

// listenAdmin binds the admin API's own listener; nil without
// --admin-keys-file (no admin API).
func (c *serveConfig) listenAdmin(srv *issuer.Server, tlsConf *tls.Config, log *slog.Logger) (*listening, error) {
	if c.adminKeysFile == "" {
		log.Info("admin API disabled (no --admin-keys-file)")
		return nil, nil
	}
	if _, err := os.Stat(c.adminKeysFile); err != nil {
		return nil, fmt.Errorf("--admin-keys-file: %w (create it with hallpass admin-key new)", err)
	}
	ln, err := net.Listen("tcp", c.adminListen)
	if err != nil {
		return nil, fmt.Errorf("admin listen: %w", err)
	}
	log.Info("hallpass admin API listening", slog.String("addr", ln.Addr().String()), slog.Bool("tls", tlsConf != nil))
	if c.adminBound != nil {
		c.adminBound(ln.Addr().String())
	}
	h, err := withConsole(srv, c.guard.adminHandler(srv), log) // console.go
	if err != nil {
		ln.Close()
		return nil, err
	}
	return &listening{apiServer(h, tlsConf, log), ln}, nil
}
