package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/hallpass/hallpass/issuer"
	"github.com/hallpass/hallpass/keys"
	"github.com/hallpass/hallpass/keys/filestore"
	"github.com/hallpass/hallpass/keys/live"
	"github.com/hallpass/hallpass/keys/redisring"
	"github.com/hallpass/hallpass/refresh"
	"github.com/hallpass/hallpass/revocation"
)

// servedKeys are what the issuer signs and seals with, each served from
// the key ring's store and following its changes (made by this node, by
// other nodes, or by `hallpass keys` on the directory) without a restart.
type servedKeys struct {
	// ring is the signing-key ring and the issuer's KeyManager: Config.Keys
	// and Config.KeyManager.
	ring *keyRing
	// codec seals and opens refresh tokens: Config.Refresh.
	codec *refresh.Codec
	// secrets keys the digests of link and recovery codes (Digests): the
	// flow's Pepper.
	secrets *live.Secrets
	// metrics are the key ring's alert counters, registered beside the
	// issuer's (issuerConfig).
	metrics *keyMetrics
}

// keyMetrics count what the key ring's store refused.
type keyMetrics struct {
	// rollbacks: hallpass_key_ring_rollback_refused_total{document}, each
	// read of the Redis ring refused as a rollback (redisring.ErrRollback):
	// someone wrote an older or inconsistent key ring into Redis. Alert on
	// any increase.
	rollbacks *prometheus.CounterVec
}

func newKeyMetrics() *keyMetrics {
	m := &keyMetrics{rollbacks: prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "hallpass_key_ring_rollback_refused_total",
		Help: "Reads of the Redis key ring refused as a rollback (an older or inconsistent ring in Redis), by document (ring, local, pepper, head). Any increase is an alarm.",
	}, []string{"document"})}
	for _, d := range []string{"ring", "local", "pepper", "head"} {
		m.rollbacks.WithLabelValues(d) // exported at 0, so that an alert rule sees the series
	}
	return m
}

// collectors are registered with the issuer's metrics.
func (m *keyMetrics) collectors() []prometheus.Collector {
	return []prometheus.Collector{m.rollbacks}
}

// rollbackRefused is redisring.Options.OnRollback.
func (m *keyMetrics) rollbackRefused(document string) { m.rollbacks.WithLabelValues(document).Inc() }

// keyRing is the signing-key ring with the refresh-token keys beside it:
// the issuer's KeySource and KeyManager, which the admin API also asks to
// rotate the refresh-token keys or to end every session. Close stops
// following the store.
type keyRing struct {
	*live.Ring
	secrets *live.Secrets
}

// RotateRefresh makes a new refresh-token key; the replaced ones open
// tokens for --refresh-ttl more, then are pruned.
func (k *keyRing) RotateRefresh(ctx context.Context) error { return k.secrets.RotateRefresh(ctx) }

// EndAllSessions drops every refresh-token key but a new one: no
// outstanding refresh token opens any more.
func (k *keyRing) EndAllSessions(ctx context.Context) error { return k.secrets.EndAllSessions(ctx) }

// Close stops following the store.
func (k *keyRing) Close() error {
	k.secrets.Close()
	return k.Ring.Close()
}

// followStore serves the signing keys and the secrets of a ring store,
// following its changes until the ring is closed.
// The ring drops retired keys after keys.DefaultRetiredKeep (the longest
// access token plus leeway, whatever --access-ttl is now: tokens signed
// under a longer one may still be in flight) on every rotation and on its
// timer, and rotates every --rotate-every when set.
func followStore(ctx context.Context, c *serveConfig, st interface {
	live.Watcher
	live.SecretWatcher
}, m *keyMetrics, log *slog.Logger) (*servedKeys, error) {
	ring, err := live.Follow(ctx, st, live.Options{Logger: log, Now: c.keyClock, RotateEvery: c.rotateEvery})
	if err != nil {
		return nil, err
	}
	secrets, err := live.FollowSecrets(ctx, st, live.SecretsOptions{Logger: log, RefreshKeep: c.refreshKeep()})
	if err != nil {
		ring.Close()
		return nil, err
	}
	if c.rotateEvery > 0 {
		log.Info("the signing key rotates on schedule", slog.String("rotate_every", c.rotateEvery.String()))
	}
	return &servedKeys{ring: &keyRing{Ring: ring, secrets: secrets}, codec: secrets.Codec(), secrets: secrets, metrics: m}, nil
}

// checkRotateEvery validates --rotate-every before anything is opened.
func (c *serveConfig) checkRotateEvery() error {
	if c.rotateEvery < 0 || c.rotateEvery > 0 && c.rotateEvery < live.MinRotateEvery {
		return fmt.Errorf("%w: --rotate-every must be 0 (off) or at least %v: the next key is published one period before it signs, and verifiers refetch the key set at least hourly", errUsage, live.MinRotateEvery)
	}
	return nil
}

// refreshKeep is how long a replaced refresh-token key still opens
// tokens: the longest a refresh token lives.
func (c *serveConfig) refreshKeep() time.Duration {
	if c.refreshTTL <= 0 {
		return issuer.DefaultRefreshTTL
	}
	return c.refreshTTL
}

// openFileKeys opens the --key-ring files ring and follows the directory
// (another process's `hallpass keys rotate|rotate-refresh|rotate-pepper`
// is served within filestore.DefaultPollInterval). With --key-ring redis it
// only checks that ring's flags and returns nil: that ring needs the store,
// opened later (openRedisKeys), while a file ring is opened first, so that
// a missing or unprotected ring fails before anything is created.
func openFileKeys(ctx context.Context, c *serveConfig, e *env, log *slog.Logger) (*servedKeys, error) {
	if err := c.checkRotateEvery(); err != nil {
		return nil, err
	}
	switch c.keyRing {
	case "files":
	case "redis":
		if c.prot.wrapKeyFile == "" {
			return nil, fmt.Errorf("%w: --key-ring redis needs --wrap-key-file (the key that wraps the secrets stored in Redis)", errUsage)
		}
		// An unreadable, malformed or group-readable key is refused
		// before anything is dialled; openRedisKeys reads it again.
		if _, err := loadWrapKey(c.prot.wrapKeyFile); err != nil {
			return nil, fmt.Errorf("--wrap-key-file: %w", err)
		}
		return nil, nil
	default:
		return nil, fmt.Errorf("%w: --key-ring must be files or redis", errUsage)
	}
	st, err := openFileRingStore(ctx, c, e, log)
	if err != nil {
		return nil, err
	}
	ks, err := followStore(ctx, c, st, newKeyMetrics(), log)
	if err != nil {
		return nil, fileRingErr(err, st)
	}
	return ks, nil
}

// fileRingProtector applies serve's rules: without --dev, the ring must be
// protected by --passphrase-file or --wrap-key-file; with --dev and
// neither, it is plaintext.
func (c *serveConfig) fileRingProtector(e *env) (filestore.Protector, error) {
	protected := c.prot.passphraseFile != "" || c.prot.wrapKeyFile != ""
	if !c.dev && c.prot.insecure {
		return nil, fmt.Errorf("%w: --insecure-plaintext is only allowed with --dev", errUsage)
	}
	if !c.dev && !protected {
		return nil, fmt.Errorf("%w: give --passphrase-file or --wrap-key-file for the key ring (or --dev for a plaintext development ring)", errUsage)
	}
	if c.dev && !protected {
		c.prot.insecure = true
	}
	return c.prot.protector(&env{stdin: e.stdin, stdout: e.stdout, stderr: io.Discard, getenv: e.getenv})
}

// openFileRingStore returns the store of the ring in --keys-dir, creating
// a plaintext ring with --dev when there is none, and refusing a plaintext
// ring without --dev.
func openFileRingStore(ctx context.Context, c *serveConfig, e *env, log *slog.Logger) (*filestore.Store, error) {
	prot, err := c.fileRingProtector(e)
	if err != nil {
		return nil, err
	}
	st, err := filestore.New(c.keysDir, prot, nil)
	if err != nil {
		return nil, err
	}
	created, err := createDevRing(ctx, c, st, log)
	if err != nil {
		return nil, err
	}
	got, err := st.Protection()
	switch {
	case err != nil:
		return nil, fileRingErr(err, st)
	case got == filestore.ProtectionPlaintext && !c.dev:
		return nil, fmt.Errorf("the key ring in %s is plaintext; refusing to start without --dev (re-create it with a passphrase or wrapping key)", c.keysDir)
	case got == filestore.ProtectionPlaintext && !created:
		log.Warn("DEVELOPMENT MODE: the key ring's secret keys are stored IN PLAINTEXT. Never use --dev in production.",
			slog.String("keys_dir", c.keysDir))
	}
	return st, nil
}

// createDevRing creates the ring when there is none, with --dev only.
func createDevRing(ctx context.Context, c *serveConfig, st *filestore.Store, log *slog.Logger) (created bool, err error) {
	if st.Exists() {
		return false, nil
	}
	if !c.dev {
		return false, fmt.Errorf("no key ring in %s: create one with `hallpass keys init --dir %s --passphrase-file FILE` (or --wrap-key-file)", c.keysDir, c.keysDir)
	}
	if err := os.MkdirAll(c.data, 0o700); err != nil {
		return false, fmt.Errorf("create data directory: %w", err)
	}
	if _, err := st.Init(ctx, time.Now()); err != nil && !errors.Is(err, filestore.ErrExists) {
		return false, err
	}
	log.Warn("DEVELOPMENT MODE: created a new key ring; its secret keys are stored IN PLAINTEXT. Never use --dev in production.",
		slog.String("keys_dir", c.keysDir))
	return true, nil
}

// redisRingStateFile is where a node keeps what it has seen of the Redis
// key ring (redisring.Options.StateFile): in its own data directory, out
// of reach of whoever can write to Redis.
const redisRingStateFile = "redis-ring-state.json"

// openRedisKeys loads the key ring from Redis, creating it when none
// exists (its secrets are wrapped under --wrap-key-file, never stored in
// plaintext, so no --dev is needed; concurrent first starts create one
// ring: Init is SET NX), and follows the other nodes' changes until the
// ring is closed. A ring made before refresh-token keys or peppers existed
// gets them (live.FollowSecrets), under the same protection. The node's
// state file in --data makes it refuse a rolled-back ring, after a
// restart too; each refusal is logged and counted.
func openRedisKeys(ctx context.Context, c *serveConfig, client redis.UniversalClient, log *slog.Logger) (*servedKeys, error) {
	if client == nil {
		return nil, fmt.Errorf("%w: --key-ring redis needs a Redis --store", errUsage)
	}
	w, err := loadWrapKey(c.prot.wrapKeyFile)
	if err != nil {
		return nil, fmt.Errorf("--wrap-key-file: %w", err)
	}
	if err := os.MkdirAll(c.data, 0o700); err != nil {
		return nil, fmt.Errorf("create data directory: %w", err)
	}
	state := filepath.Join(c.data, redisRingStateFile)
	m := newKeyMetrics()
	st, err := redisring.New(client, w, redisring.Options{StateFile: state, Logger: log, OnRollback: m.rollbackRefused})
	if err != nil {
		return nil, redisStateErr(err, state)
	}
	if _, err := st.Init(ctx, time.Now()); err == nil {
		log.Warn("created a new key ring in Redis", slog.String("key_ring", "redis"))
	} else if !errors.Is(err, redisring.ErrExists) {
		return nil, redisStateErr(err, state)
	}
	ks, err := followStore(ctx, c, st, m, log)
	if err != nil {
		return nil, redisStateErr(err, state)
	}
	return ks, nil
}

// redisStateErr is redisRingErr that also says what to do when the ring in
// Redis is refused as a rollback, or the node's state file is.
func redisStateErr(err error, state string) error {
	switch {
	case errors.Is(err, redisring.ErrRollback):
		return explain(err, fmt.Sprintf("the key ring in Redis is older than, or inconsistent with, the one this node has seen (%s): refused as a rollback. "+
			"If Redis lost its data or was restored from a backup on purpose, check what it holds now, then remove that file on every node "+
			"(docs/configuration.md, key ring); otherwise someone wrote to Redis: find out who before anything else", state))
	case errors.Is(err, redisring.ErrState):
		return explain(err, fmt.Sprintf("--data: the key ring state file %s does not open under --wrap-key-file (another wrapping key, another ring, or the file was altered); remove it only if you know why", state))
	}
	return redisRingErr(err)
}

// fileRingErr names the flag to fix when the ring of st does not open: a
// wrong passphrase and a wrong wrapping key are different mistakes. It
// never shows the secret.
func fileRingErr(err error, st *filestore.Store) error {
	dir := st.Dir()
	switch {
	case errors.Is(err, filestore.ErrWrongPassphrase):
		return explain(err, fmt.Sprintf("--passphrase-file: the passphrase does not open the key ring in %s (not the passphrase it was made with, or the ring was altered)", dir))
	case errors.Is(err, filestore.ErrWrongWrapKey):
		return explain(err, fmt.Sprintf("--wrap-key-file: the wrapping key does not open the key ring in %s (not the key it was made with, or the ring was altered)", dir))
	case errors.Is(err, filestore.ErrNotFound):
		return explain(err, fmt.Sprintf("no key ring in %s: create one with `hallpass keys init --dir %s --wrap-key-file FILE` (or --passphrase-file)", dir, dir))
	case errors.Is(err, filestore.ErrProtection):
		got, perr := st.Protection()
		if perr != nil {
			return err
		}
		how := map[filestore.Protection]string{
			filestore.ProtectionPassword:  "protected by a passphrase: give --passphrase-file",
			filestore.ProtectionWrapKey:   "protected by a wrapping key: give --wrap-key-file",
			filestore.ProtectionPlaintext: "plaintext (development only): give --insecure-plaintext",
		}[got]
		return explain(err, fmt.Sprintf("the key ring in %s is %s", dir, how))
	}
	return err
}

// redisRingErr names the flag to fix when the ring in Redis does not open.
func redisRingErr(err error) error {
	if errors.Is(err, keys.ErrUnwrap) {
		return explain(err, "--wrap-key-file: the wrapping key does not open the key ring in Redis (not the key it was made with, or the stored ring was altered)")
	}
	return fmt.Errorf("key ring in Redis: %w", err)
}

// authenticateRevocations makes the key and all revocation entries carry a
// MAC under a key derived from --wrap-key-file (revocation.Authenticated):
// the issuer seals the ones it adds, and its mirror and admin API ignore
// any without a valid MAC, so whoever can write to the store cannot forge
// one (an all entry dated far ahead would refuse every token for good).
// Without a wrapping key (a passphrase-protected file ring) entries are not
// authenticated, which matters on a shared Redis store: said at start.
func (b *backend) authenticateRevocations(c *serveConfig, log *slog.Logger) error {
	if b.revocations == nil {
		return nil
	}
	if c.prot.wrapKeyFile == "" {
		if b.redis != nil {
			log.Warn("revocation entries in Redis are not authenticated (no --wrap-key-file): whoever can write to Redis can add key and all entries")
		}
		return nil
	}
	w, err := loadWrapKey(c.prot.wrapKeyFile)
	if err != nil {
		return fmt.Errorf("--wrap-key-file: %w", err)
	}
	a, err := revocation.NewEntryAuthenticator(w)
	if err != nil {
		return err
	}
	st, err := revocation.Authenticated(b.revocations, a, revocation.AuthOptions{Logger: log})
	if err != nil {
		return err
	}
	b.revocations = st
	return nil
}
