package main

import (
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/hallpass/hallpass/dpop"
	"github.com/hallpass/hallpass/dpop/redisreplay"
	"github.com/hallpass/hallpass/gateway"
	"github.com/hallpass/hallpass/revocation"
	revredis "github.com/hallpass/hallpass/revocation/redisstore"
	"github.com/hallpass/hallpass/verifier"
	"github.com/hallpass/hallpass/verifier/httpauth"
	"github.com/hallpass/hallpass/verifier/remotekeys"
)

// wellKnownKeys is where an issuer publishes its key set.
const wellKnownKeys = "/.well-known/hallpass/keys"

// Defaults of the gateway's server timeouts. There is no write timeout: a
// proxied response streams at the upstream's pace (downloads, server-sent
// events), and a WebSocket is closed at its token's expiry instead.
const (
	defaultGatewayReadHeaderTimeout = 10 * time.Second
	defaultGatewayReadTimeout       = 60 * time.Second
	defaultGatewayIdleTimeout       = 120 * time.Second
)

// gatewayConfig is what `hallpass gateway` reads from flags and
// HALLPASS_GATEWAY_* variables (the variable is the default, the flag
// wins). Its own prefix, so that an issuer and a gateway can share an
// environment.
type gatewayConfig struct {
	listen, publicURL, upstream string
	keysURL, issuer, audience   string
	keysCache                   string
	store                       string
	trustedProxies, origins     string
	verifyPath                  string
	stripAuthz                  bool
	dpopNonce                   bool
	nonceKeyFile                string
	nonces                      *dpop.NonceSource // resolve: --dpop-nonce's, nil without it
	tlsCert, tlsKey, tlsMin     string
	storeTimeout, revMaxStale   time.Duration
	keysMaxStale                time.Duration
	readHeaderTimeout           time.Duration
	readTimeout, idleTimeout    time.Duration
	shutdownTimeout             time.Duration
	logLevel                    string
	ops                         gatewayOps       // gatewayops.go: --metrics-listen, upstream transport, token cache
	keysHTTP                    bool             // --keys-url is plain http (tests, loopback)
	keysNow                     func() time.Time // the key set's clock (tests); nil: time.Now
}

var gatewayDoc = cmdDoc{
	name:    "gateway",
	args:    "--keys-url URL [flags]",
	summary: "verify requests at the edge: reverse proxy and forward-auth endpoint",
	detail: `Every flag has a HALLPASS_GATEWAY_* variable, named in brackets: the
variable is the default, the flag wins. SIGINT or SIGTERM stops the gateway
gracefully, with exit status 0. docs/gateway.md explains every setting.`,
	examples: []string{
		"hallpass gateway --keys-url https://auth.example.com" + wellKnownKeys + " --upstream http://127.0.0.1:3000",
		"hallpass gateway --keys-url https://auth.example.com" + wellKnownKeys + " --store redis://127.0.0.1:6379/0 --trusted-proxies 127.0.0.1",
	},
}

func runGateway(ctx context.Context, args []string, e *env) error {
	c, err := parseGatewayFlags(args, e)
	if err != nil {
		return err
	}
	return runGatewayServer(ctx, c, e, nil)
}

func parseGatewayFlags(args []string, e *env) (*gatewayConfig, error) {
	fs := newFlagSet(gatewayDoc, e)
	var c gatewayConfig
	var ee envErr
	p := "HALLPASS_GATEWAY_"
	fs.StringVar(&c.listen, "listen", ee.str(e, p+"LISTEN", "127.0.0.1:8081"), "address to listen on ["+p+"LISTEN]")
	fs.StringVar(&c.publicURL, "public-url", e.getenv(p+"PUBLIC_URL"), "URL clients use to reach the gateway (or the proxy in front of it); DPoP htu derives from it (default http://<listen>) ["+p+"PUBLIC_URL]")
	fs.StringVar(&c.upstream, "upstream", e.getenv(p+"UPSTREAM"), "URL verified requests are forwarded to; empty: forward-auth endpoint only ["+p+"UPSTREAM]")
	fs.StringVar(&c.keysURL, "keys-url", e.getenv(p+"KEYS_URL"), "the issuer's key set, https://ISSUER"+wellKnownKeys+" (required) ["+p+"KEYS_URL]")
	fs.StringVar(&c.issuer, "issuer", e.getenv(p+"ISSUER"), "expected iss of tokens (default: --keys-url without "+wellKnownKeys+") ["+p+"ISSUER]")
	fs.StringVar(&c.audience, "audience", e.getenv(p+"AUDIENCE"), "expected aud of tokens (default: the issuer URL, as hallpass serve mints by default) ["+p+"AUDIENCE]")
	fs.DurationVar(&c.keysMaxStale, "keys-max-stale", ee.dur(e, p+"KEYS_MAX_STALE", remotekeys.DefaultMaxStale), "how long the last good key set is trusted while the issuer is unreachable; past it requests answer 503 (at least 1m) ["+p+"KEYS_MAX_STALE]")
	fs.StringVar(&c.keysCache, "keys-cache-file", e.getenv(p+"KEYS_CACHE_FILE"), "last good key set, read when the issuer is unreachable at start ["+p+"KEYS_CACHE_FILE]")
	fs.StringVar(&c.store, "store", e.getenv(p+"STORE"), "Redis (redis://, rediss://, redis+sentinel://, redis+cluster://) shared with the issuer: DPoP replay cache and revocation mirror; empty: replay cache in memory, no revocation ["+p+"STORE]")
	fs.StringVar(&c.trustedProxies, "trusted-proxies", e.getenv(p+"TRUSTED_PROXIES"), "comma-separated CIDRs of proxies allowed to call the verify endpoint and whose X-Forwarded-For is kept ["+p+"TRUSTED_PROXIES]")
	fs.StringVar(&c.origins, "origins", e.getenv(p+"ORIGINS"), "comma-separated scheme://host[:port] a proxy may name in X-Forwarded-Proto/-Host (default: the origin of --public-url) ["+p+"ORIGINS]")
	fs.StringVar(&c.verifyPath, "verify-path", ee.str(e, p+"VERIFY_PATH", gateway.DefaultVerifyPath), "path of the forward-auth endpoint ["+p+"VERIFY_PATH]")
	fs.BoolVar(&c.stripAuthz, "strip-authorization", ee.boolean(e, p+"STRIP_AUTHORIZATION"), "remove the Authorization header from forwarded requests (the DPoP header is always removed) ["+p+"STRIP_AUTHORIZATION]")
	fs.BoolVar(&c.dpopNonce, "dpop-nonce", ee.boolean(e, p+"DPOP_NONCE"), "demand DPoP server nonces: a proof without a current one gets 401 use_dpop_nonce, every verified answer carries the next in DPoP-Nonce ["+p+"DPOP_NONCE]")
	fs.StringVar(&c.nonceKeyFile, "dpop-nonce-key-file", e.getenv(p+"DPOP_NONCE_KEY_FILE"), "32-byte key shared by all gateway nodes for DPoP nonces (default: random per process) ["+p+"DPOP_NONCE_KEY_FILE]")
	fs.StringVar(&c.tlsCert, "tls-cert", e.getenv(p+"TLS_CERT"), "TLS certificate chain file (PEM) ["+p+"TLS_CERT]")
	fs.StringVar(&c.tlsKey, "tls-key", e.getenv(p+"TLS_KEY"), "TLS private key file (PEM) ["+p+"TLS_KEY]")
	fs.StringVar(&c.tlsMin, "tls-min", ee.str(e, p+"TLS_MIN", "1.3"), "lowest TLS version accepted with --tls-cert: 1.3, or 1.2 for older clients ["+p+"TLS_MIN]")
	fs.DurationVar(&c.storeTimeout, "store-timeout", ee.dur(e, p+"STORE_TIMEOUT", 2*time.Second), "bound on each Redis call, and on the wait for the first revocation snapshot ["+p+"STORE_TIMEOUT]")
	fs.DurationVar(&c.revMaxStale, "revocation-max-staleness", ee.dur(e, p+"REVOCATION_MAX_STALENESS", revocation.DefaultMaxStaleness), "how long the revocation mirror may go without hearing from Redis before requests answer 503 ["+p+"REVOCATION_MAX_STALENESS]")
	fs.DurationVar(&c.readHeaderTimeout, "read-header-timeout", ee.dur(e, p+"READ_HEADER_TIMEOUT", defaultGatewayReadHeaderTimeout), "time a client has to send a request's headers ["+p+"READ_HEADER_TIMEOUT]")
	fs.DurationVar(&c.readTimeout, "read-timeout", ee.dur(e, p+"READ_TIMEOUT", defaultGatewayReadTimeout), "time a client has to send a whole request, body included (not a WebSocket's traffic) ["+p+"READ_TIMEOUT]")
	fs.DurationVar(&c.idleTimeout, "idle-timeout", ee.dur(e, p+"IDLE_TIMEOUT", defaultGatewayIdleTimeout), "how long an idle keep-alive connection stays open ["+p+"IDLE_TIMEOUT]")
	fs.DurationVar(&c.shutdownTimeout, "shutdown-timeout", ee.dur(e, p+"SHUTDOWN_TIMEOUT", 15*time.Second), "how long a graceful shutdown waits for requests in flight ["+p+"SHUTDOWN_TIMEOUT]")
	fs.StringVar(&c.logLevel, "log-level", ee.str(e, p+"LOG_LEVEL", "info"), "debug, info, warn or error ["+p+"LOG_LEVEL]")
	c.ops.register(fs, e, &ee, p)
	if err := parseServerFlags(fs, args, &ee, "gateway"); err != nil {
		return nil, err
	}
	return &c, nil
}

// runGatewayServer runs the gateway until ctx ends, then shuts down
// gracefully. ready, when not nil, receives the public URL once the
// listener is bound (tests).
func runGatewayServer(ctx context.Context, c *gatewayConfig, e *env, ready chan<- string) error {
	log, tlsConf, err := serverLogTLS(e, c.logLevel, c.tlsCert, c.tlsKey, c.tlsMin)
	if err != nil {
		return err
	}
	tuneGC(log)
	gcfg, err := c.resolve(log)
	if err != nil {
		return err
	}
	if err := c.ops.resolve(c.listen); err != nil {
		return err
	}
	if gcfg.Transport, err = c.ops.transport(); err != nil {
		return configErr(err, gatewayFieldFlags)
	}
	vs, closeVerifier, err := c.openVerifier(ctx, log)
	if err != nil {
		return err
	}
	defer closeVerifier()
	ln, err := listenPublic(c.listen, &c.publicURL, tlsConf != nil)
	if err != nil {
		return err
	}
	defer ln.Close()
	// Proxied WebSockets are re-checked against the key set and the
	// mirror the verifier asks.
	gcfg.Keys = vs.keys
	if vs.mirror != nil {
		gcfg.Revocation = vs.mirror
	}
	ops, obs, err := c.ops.listen(c, vs, tlsConf, log)
	if err != nil {
		return err
	}
	defer closeAll(ops)
	gcfg.Observer = obs
	gw, err := c.gateway(vs.v, vs.replay, gcfg)
	if err != nil {
		return err
	}
	servers := append([]listening{{c.publicServer(gw, tlsConf, log), ln}}, ops...)
	log.Info("hallpass gateway listening", slog.String("addr", ln.Addr().String()),
		slog.String("public_url", c.publicURL), slog.Bool("proxy", gcfg.Upstream != nil),
		slog.String("verify_path", c.verifyPath), slog.Bool("tls", tlsConf != nil),
		slog.Bool("token_cache", c.ops.tokenCacheSize > 0))
	if ready != nil {
		ready <- c.publicURL
	}
	return serveUntilDone(ctx, log, c.shutdownTimeout, "gateway", servers...)
}

// publicServer is the server of the public listener. Hijacked connections
// (WebSockets) leave its deadlines behind; the gateway closes them at
// their token's expiry.
func (c *gatewayConfig) publicServer(gw http.Handler, tlsConf *tls.Config, log *slog.Logger) *http.Server {
	return &http.Server{
		Handler:           gw,
		ReadHeaderTimeout: c.readHeaderTimeout,
		ReadTimeout:       c.readTimeout,
		IdleTimeout:       c.idleTimeout,
		MaxHeaderBytes:    32 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
		TLSConfig:         tlsConf,
	}
}

// verifying is what the gateway verifies with.
type verifying struct {
	v      *verifier.Verifier
	keys   *remotekeys.KeySet
	replay dpop.ReplayCache      // nil: in memory (httpauth's default)
	mirror *revocation.Mirror    // nil without --store
	redis  redis.UniversalClient // nil without --store
}

// openVerifier opens what the gateway verifies with: the issuer's key set
// (fetched now, or read from the cache file, then followed in the
// background, trusted for --keys-max-stale without a good fetch) and, with
// --store, the revocation mirror and the shared replay cache on Redis.
// closeAll stops them, the mirror before the client.
func (c *gatewayConfig) openVerifier(ctx context.Context, log *slog.Logger) (vs verifying, closeAll func(), err error) {
	var closers []func() error
	closeClosers := func() {
		for i := len(closers) - 1; i >= 0; i-- {
			_ = closers[i]()
		}
	}
	defer func() {
		if err != nil {
			closeClosers()
		}
	}()
	// The store is parsed before anything is fetched: a bad URL is a usage
	// error.
	var client redis.UniversalClient
	var kind string
	if c.store != "" {
		if client, kind, err = redisClient(c.store); err != nil {
			return vs, nil, err
		}
		closers = append(closers, client.Close)
	}
	ks, err := remotekeys.New(ctx, remotekeys.Config{
		Issuer: c.issuer, URL: c.keysURL, AllowHTTP: c.keysHTTP, CacheFile: c.keysCache,
		MaxStale: c.keysMaxStale, Now: c.keysNow, Logger: log,
	})
	if err != nil {
		return vs, nil, fmt.Errorf("key set: %w", err)
	}
	closers = append(closers, ks.Close)
	vs.keys, vs.redis = ks, client
	vopts := c.ops.verifierOptions()
	if client != nil {
		mirror, rc, err := c.onRedis(ctx, client, log)
		if err != nil {
			return vs, nil, err
		}
		closers = append(closers, mirror.Close)
		vs.mirror, vs.replay, vopts = mirror, rc, append(vopts, verifier.WithRevocation(mirror))
		log.Info("replay cache and revocation mirror on Redis", slog.String("store", kind))
	} else {
		log.Warn("no --store: the DPoP replay cache is in this process only, and revocations are not followed (tokens stay valid until they expire)")
	}
	if vs.v, err = verifier.New(ks, c.issuer, c.audience, vopts...); err != nil {
		return vs, nil, fmt.Errorf("%w: %v", errUsage, err)
	}
	return vs, closeClosers, nil
}

// resolve checks the flags and fills the defaults that derive from
// --keys-url, and returns the gateway's configuration but for the public
// URL (known once the listener is bound).
func (c *gatewayConfig) resolve(log *slog.Logger) (gateway.Config, error) {
	gc := gateway.Config{VerifyPath: c.verifyPath, StripAuthorization: c.stripAuthz, Logger: log}
	if c.keysURL == "" {
		return gc, fmt.Errorf("%w: --keys-url is required (https://ISSUER%s)", errUsage, wellKnownKeys)
	}
	ku, err := url.Parse(c.keysURL)
	if err != nil || ku.Host == "" || (ku.Scheme != "https" && ku.Scheme != "http") {
		return gc, fmt.Errorf("%w: --keys-url must be an https URL", errUsage)
	}
	c.keysHTTP = ku.Scheme == "http"
	if c.keysMaxStale < 2*remotekeys.DefaultMinRefresh {
		return gc, fmt.Errorf("%w: --keys-max-stale must be at least %v", errUsage, 2*remotekeys.DefaultMinRefresh)
	}
	for _, t := range []struct {
		name string
		d    time.Duration
	}{{"--read-header-timeout", c.readHeaderTimeout}, {"--read-timeout", c.readTimeout}, {"--idle-timeout", c.idleTimeout}} {
		if t.d <= 0 {
			return gc, fmt.Errorf("%w: %s must be positive", errUsage, t.name)
		}
	}
	if c.readHeaderTimeout > c.readTimeout {
		return gc, fmt.Errorf("%w: --read-header-timeout must not exceed --read-timeout", errUsage)
	}
	if c.issuer == "" {
		iss, ok := strings.CutSuffix(c.keysURL, wellKnownKeys)
		if !ok {
			return gc, fmt.Errorf("%w: --keys-url does not end in %s: give --issuer", errUsage, wellKnownKeys)
		}
		c.issuer = iss
	}
	if c.audience == "" {
		c.audience = c.issuer
	}
	if gc.TrustedProxies, err = parseCIDRs(c.trustedProxies); err != nil {
		return gc, err
	}
	if c.upstream != "" {
		if gc.Upstream, err = url.Parse(c.upstream); err != nil {
			return gc, fmt.Errorf("%w: --upstream is not a URL", errUsage)
		}
	}
	for _, o := range strings.Split(c.origins, ",") {
		if o = strings.TrimSpace(o); o != "" {
			gc.Origins = append(gc.Origins, o)
		}
	}
	// Read before anything is dialled: a key file others can read is
	// refused at once.
	c.nonces, err = newNonceSource(c.dpopNonce, c.nonceKeyFile)
	return gc, err
}

// onRedis starts what the gateway keeps on Redis: the revocation mirror
// (the caller closes it) and the shared DPoP replay cache.
func (c *gatewayConfig) onRedis(ctx context.Context, client redis.UniversalClient, log *slog.Logger) (*revocation.Mirror, dpop.ReplayCache, error) {
	rc, err := redisreplay.New(client, redisreplay.Options{})
	if err != nil {
		return nil, nil, err
	}
	rs, err := revredis.New(client, revredis.Options{OpTimeout: c.storeTimeout})
	if err != nil {
		return nil, nil, err
	}
	mirror, err := startMirror(ctx, rs, revocation.MirrorOptions{MaxStaleness: c.revMaxStale, Logger: log}, c.storeTimeout, gatewayFieldFlags)
	if err != nil {
		return nil, nil, err
	}
	return mirror, timeoutReplay{rc, c.storeTimeout}, nil
}

// gateway builds the handler: httpauth over v, then the proxy and the
// forward-auth endpoint.
func (c *gatewayConfig) gateway(v *verifier.Verifier, replay dpop.ReplayCache, gc gateway.Config) (*gateway.Gateway, error) {
	ac := httpauth.Config{Verifier: v, PublicURL: c.publicURL, Replay: replay, Logger: gc.Logger}
	if c.nonces != nil { // a nil *dpop.NonceSource is not a nil NonceSource
		ac.Nonces = c.nonces
	}
	auth, err := httpauth.New(ac)
	if err != nil {
		return nil, configErr(err, gatewayFieldFlags)
	}
	gc.PublicURL = c.publicURL
	gw, err := gateway.New(auth, gc)
	if err != nil {
		return nil, configErr(err, gatewayFieldFlags)
	}
	return gw, nil
}

// timeoutReplay bounds each replay-cache call: a Redis that does not answer
// makes the request fail (503), not hang.
type timeoutReplay struct {
	c dpop.ReplayCache
	d time.Duration
}

func (t timeoutReplay) Seen(ctx context.Context, key dpop.ReplayKey, now, expiresAt time.Time) (bool, error) {
	ctx, cancel := context.WithTimeout(ctx, t.d)
	defer cancel()
	return t.c.Seen(ctx, key, now, expiresAt)
}
