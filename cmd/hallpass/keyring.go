package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/hallpass/hallpass/keys"
	"github.com/hallpass/hallpass/keys/filestore"
	"github.com/hallpass/hallpass/keys/live"
	"github.com/hallpass/hallpass/keys/redisring"
	"github.com/hallpass/hallpass/refresh"
)

// servedKeys are what the issuer signs and seals with: the signing-key
// ring, served and changed through its store, and the refresh-token codec.
type servedKeys struct {
	ring  *live.Ring
	codec *refresh.Codec
}

// openFileKeys opens the --key-ring files ring. With --key-ring redis it
// only checks that ring's flags and returns nil: that ring needs the store,
// opened later (openRedisKeys), while a file ring is opened first, so that
// a missing or unprotected ring fails before anything is created.
func openFileKeys(ctx context.Context, c *serveConfig, e *env, log *slog.Logger) (*servedKeys, error) {
	switch c.keyRing {
	case "files":
	case "redis":
		if c.prot.wrapKeyFile == "" {
			return nil, fmt.Errorf("%w: --key-ring redis needs --wrap-key-file (the key that wraps the secrets stored in Redis)", errUsage)
		}
		return nil, nil
	default:
		return nil, fmt.Errorf("%w: --key-ring must be files or redis", errUsage)
	}
	st, err := openFileRingStore(ctx, c, e, log)
	if err != nil {
		return nil, err
	}
	ring, err := live.Open(ctx, st, live.Options{Logger: log})
	if err != nil {
		return nil, fileRingErr(err, st)
	}
	codec, err := refreshCodec(ctx, st, filestore.ErrNotFound, log)
	if err != nil {
		return nil, fileRingErr(err, st)
	}
	return &servedKeys{ring: ring, codec: codec}, nil
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

// openRedisKeys loads the key ring from Redis, creating it when none
// exists (its secrets are wrapped under --wrap-key-file, never stored in
// plaintext, so no --dev is needed; concurrent first starts create one
// ring: Init is SET NX), and follows the other nodes' changes until the
// ring is closed.
func openRedisKeys(ctx context.Context, c *serveConfig, client redis.UniversalClient, log *slog.Logger) (*servedKeys, error) {
	if client == nil {
		return nil, fmt.Errorf("%w: --key-ring redis needs a Redis --store", errUsage)
	}
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
		return nil, redisRingErr(err)
	}
	ring, err := live.Follow(ctx, st, live.Options{Logger: log})
	if err != nil {
		return nil, redisRingErr(err)
	}
	codec, err := refreshCodec(ctx, st, redisring.ErrNotFound, log)
	if err != nil {
		ring.Close()
		return nil, redisRingErr(err)
	}
	return &servedKeys{ring: ring, codec: codec}, nil
}

// localKeyStore is what both ring stores offer for the refresh-token keys.
type localKeyStore interface {
	LoadLocal(ctx context.Context) ([]keys.LocalKeyEntry, error)
	RotateLocal(ctx context.Context, now time.Time, keep time.Duration) error
}

// refreshCodec builds the refresh-token codec from the stored keys, current
// first. A ring made before refresh-token keys existed (the store answers
// notFound) gets them, with the same protection.
func refreshCodec(ctx context.Context, st localKeyStore, notFound error, log *slog.Logger) (*refresh.Codec, error) {
	locals, err := st.LoadLocal(ctx)
	if errors.Is(err, notFound) {
		if err := st.RotateLocal(ctx, time.Now(), 0); err != nil {
			return nil, err
		}
		log.Warn("created refresh-token keys beside the key ring")
		locals, err = st.LoadLocal(ctx)
	}
	if err != nil {
		return nil, err
	}
	prev := make([]*keys.LocalKey, 0, len(locals)-1)
	for _, l := range locals[1:] {
		prev = append(prev, l.Key)
	}
	return refresh.NewCodec(time.Now, locals[0].Key, prev...)
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
