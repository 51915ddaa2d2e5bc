package redisring

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/hallpass/hallpass/internal/redisclient"
	"github.com/hallpass/hallpass/keys"
)

// Errors. Messages never carry key material.
var (
	// ErrUnavailable: Redis could not be reached or did not answer in time.
	ErrUnavailable = errors.New("redisring: key ring store unavailable")
	// ErrNotFound: no ring (or no refresh-token keys) under the prefix.
	ErrNotFound = errors.New("redisring: no key ring in Redis")
	// ErrExists: Init found a ring already there.
	ErrExists = errors.New("redisring: a key ring already exists in Redis")
	// ErrConflict: Update or RotateLocal lost the race to other writers
	// MaxAttempts times in a row.
	ErrConflict = errors.New("redisring: too many concurrent writers to the key ring")
	// ErrCorrupt: a stored document is well authenticated but not valid,
	// or not a document of this package at all.
	ErrCorrupt = errors.New("redisring: stored key ring is corrupt")
	// ErrKeep: RotateLocal or PruneLocal was asked to keep replaced keys
	// for no time. Dropping them is a different act, with its own name:
	// ResetLocal.
	ErrKeep = errors.New("redisring: keep must be positive (ResetLocal drops every older refresh-token key)")
)

// Defaults for Options.
const (
	DefaultPrefix       = "hallpass"
	DefaultOpTimeout    = 2 * time.Second
	DefaultPollInterval = 5 * time.Second
	DefaultMaxAttempts  = 10
)

const (
	formatV1       = 1
	protectionWrap = "wrap-key"
	kindRing       = "ring"
	kindLocal      = "local"
	kindPepper     = "pepper"
	macLabel       = "hallpass/redisring/document-mac/v1"
	maxValueLen    = 1 << 20
)

// Options configure New. The zero value is useful.
type Options struct {
	// Prefix starts every key (default DefaultPrefix). It must not contain
	// '{' or '}', which would change the hash slot.
	Prefix string
	// OpTimeout bounds every operation, retries of Update included,
	// together with the caller's context (default DefaultOpTimeout).
	OpTimeout time.Duration
	// Rand is the source of new keys and wrapping nonces (default
	// crypto/rand).
	Rand io.Reader
	// PollInterval is how often Watch reads the version even when no
	// notification arrived (default DefaultPollInterval).
	PollInterval time.Duration
	// MaxAttempts bounds how often Update and RotateLocal retry after
	// losing a race to another writer (default DefaultMaxAttempts).
	MaxAttempts int
}

// Store keeps a keys.Ring and the refresh-token keys in Redis, shared by
// several issuer nodes. It is safe for concurrent use.
type Store struct {
	c           redis.UniversalClient
	w           *keys.WrappingKey
	macKey      []byte
	prefix      string
	opTimeout   time.Duration
	poll        time.Duration
	maxAttempts int
	rand        io.Reader
}

// New returns a Store on c whose secrets are wrapped under w. The caller
// owns c. c must be built with ContextTimeoutEnabled, or a deadline would
// not reach the socket.
//
// SECURITY: w is the only thing that keeps a copy of Redis from signing
// tokens. Give every issuer node the same w, from its environment or a
// file readable only by the service, never from Redis itself.
func New(c redis.UniversalClient, w *keys.WrappingKey, opts Options) (*Store, error) {
	if w == nil {
		return nil, errors.New("redisring: a wrapping key is required; plaintext key rings are not supported")
	}
	var zero [32]byte
	if wz, _ := keys.WrappingKeyFromBytes(zero[:]); w.Equal(wz) {
		return nil, errors.New("redisring: the wrapping key is all zeros")
	}
	prefix, err := redisclient.Check(c, opts.Prefix, DefaultPrefix)
	if err != nil {
		return nil, fmt.Errorf("redisring: %w", err)
	}
	opts.Prefix = prefix
	if opts.OpTimeout < 0 || opts.PollInterval < 0 || opts.MaxAttempts < 0 {
		return nil, errors.New("redisring: negative option")
	}
	if opts.OpTimeout == 0 {
		opts.OpTimeout = DefaultOpTimeout
	}
	if opts.PollInterval == 0 {
		opts.PollInterval = DefaultPollInterval
	}
	if opts.MaxAttempts == 0 {
		opts.MaxAttempts = DefaultMaxAttempts
	}
	if opts.Rand == nil {
		opts.Rand = rand.Reader
	}
	wb := w.UnsafeBytes()
	m := hmac.New(sha256.New, wb)
	clear(wb)
	m.Write([]byte(macLabel))
	return &Store{
		c: c, w: w, macKey: m.Sum(nil), prefix: opts.Prefix, opTimeout: opts.OpTimeout,
		poll: opts.PollInterval, maxAttempts: opts.MaxAttempts, rand: opts.Rand,
	}, nil
}

// Keys: all under one hash tag, so every script runs on Redis Cluster.
func (s *Store) key(name string) string { return s.prefix + ":{keys}:" + name }
func (s *Store) ringKey() string        { return s.key("ring") }
func (s *Store) localKey() string       { return s.key("local") }
func (s *Store) pepperKey() string      { return s.key("pepper") }
func (s *Store) versionKey() string     { return s.key("version") }
func (s *Store) channel() string        { return s.key("events") }

func (s *Store) begin(ctx context.Context) (context.Context, context.CancelFunc, error) {
	if err := ctx.Err(); err != nil {
		return nil, nil, unavailable(err)
	}
	ctx, cancel := context.WithTimeout(ctx, s.opTimeout)
	return ctx, cancel, nil
}

func unavailable(err error) error { return fmt.Errorf("%w: %w", ErrUnavailable, err) }

// Stored form. Each of ring and local is one string value, an envelope
// {"mac":..., "doc":{...}}: the MAC (HMAC-SHA256 under a key derived from
// the wrapping key) covers the exact bytes of doc, so statuses, times and
// the pairing of public and wrapped secret keys cannot be changed by
// whoever can write to Redis without the wrapping key.
type envelope struct {
	MAC string          `json:"mac"`
	Doc json.RawMessage `json:"doc"`
}

type document struct {
	Format     int     `json:"format"`
	Kind       string  `json:"kind"`
	Version    uint64  `json:"version"`
	Protection string  `json:"protection"`
	Keys       []entry `json:"keys"`
}

type entry struct {
	Kid       keys.KeyID  `json:"kid"`
	Status    keys.Status `json:"status"`
	Public    string      `json:"public,omitempty"`
	Secret    string      `json:"secret,omitempty"`
	Created   time.Time   `json:"created"`
	Activated *time.Time  `json:"activated,omitempty"`
	Retired   *time.Time  `json:"retired,omitempty"`
	Revoked   *time.Time  `json:"revoked,omitempty"`
}

func timePtr(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	t = t.UTC()
	return &t
}

func (s *Store) mac(doc []byte) []byte {
	m := hmac.New(sha256.New, s.macKey)
	m.Write(doc)
	return m.Sum(nil)
}

func (s *Store) seal(d *document) (string, error) {
	d.Format, d.Protection = formatV1, protectionWrap
	doc, err := json.Marshal(d)
	if err != nil {
		return "", err
	}
	b, err := json.Marshal(envelope{MAC: base64.RawURLEncoding.EncodeToString(s.mac(doc)), Doc: doc})
	if err != nil {
		return "", err
	}
	return string(b), nil
}

// open authenticates a stored value and checks it is a document of kind.
// A wrong wrapping key (hence a wrong MAC key) gives keys.ErrUnwrap.
func (s *Store) open(val, kind string) (*document, error) {
	if len(val) > maxValueLen {
		return nil, ErrCorrupt
	}
	var env envelope
	if err := json.Unmarshal([]byte(val), &env); err != nil || len(env.Doc) == 0 {
		return nil, ErrCorrupt
	}
	tag, err := base64.RawURLEncoding.DecodeString(env.MAC)
	if err != nil || !hmac.Equal(tag, s.mac(env.Doc)) {
		return nil, fmt.Errorf("redisring: the wrapping key does not open the stored %s document (wrong wrapping key, or the value was altered): %w", kind, keys.ErrUnwrap)
	}
	var d document
	dec := json.NewDecoder(strings.NewReader(string(env.Doc)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&d); err != nil || d.Format != formatV1 || d.Kind != kind || d.Protection != protectionWrap {
		return nil, ErrCorrupt
	}
	return &d, nil
}

func (s *Store) encodeRing(r *keys.Ring, version uint64) (string, error) {
	d := document{Kind: kindRing, Version: version}
	for _, e := range r.Entries() {
		de := entry{
			Kid: e.ID(), Status: e.Status, Public: e.Public.PASERK(), Created: e.Created.UTC(),
			Activated: timePtr(e.Activated), Retired: timePtr(e.Retired), Revoked: timePtr(e.Revoked),
		}
		// Only the current and the next key keep a secret: a retired or
		// revoked key's is not written (it never signs again).
		if e.Status == keys.StatusCurrent || e.Status == keys.StatusNext {
			if e.Secret == nil {
				return "", fmt.Errorf("redisring: key %s has no secret", e.ID())
			}
			sealed, err := keys.WrapSecretPIE(e.Secret, s.w, s.rand)
			if err != nil {
				return "", fmt.Errorf("redisring: wrap key %s: %w", e.ID(), err)
			}
			de.Secret = sealed
		}
		d.Keys = append(d.Keys, de)
	}
	return s.seal(&d)
}

func (s *Store) decodeRing(val string, secrets bool) (*keys.Ring, error) {
	d, err := s.open(val, kindRing)
	if err != nil {
		return nil, err
	}
	out := make([]keys.RingEntry, 0, len(d.Keys))
	for _, de := range d.Keys {
		pub, err := keys.ParsePublicKey(de.Public)
		if err != nil || pub.ID() != de.Kid {
			return nil, fmt.Errorf("%w: public key does not match its kid", ErrCorrupt)
		}
		e := keys.RingEntry{Public: pub, Status: de.Status, Created: de.Created}
		if de.Activated != nil {
			e.Activated = *de.Activated
		}
		if de.Retired != nil {
			e.Retired = *de.Retired
		}
		if de.Revoked != nil {
			e.Revoked = *de.Revoked
		}
		// A retired key's secret is not opened, even if an older ring
		// stored it: it never signs again (see keys.RestoreRing).
		if secrets && (de.Status == keys.StatusCurrent || de.Status == keys.StatusNext) {
			// UnwrapSecretPIE checks the k4.secret-wrap.pie prefix: a
			// plaintext k4.secret is refused (keys.ErrWrongType).
			sk, err := keys.UnwrapSecretPIE(de.Secret, s.w)
			if err != nil {
				return nil, fmt.Errorf("redisring: open secret key %s: %w", de.Kid, err)
			}
			e.Secret = sk
		}
		out = append(out, e)
	}
	if secrets {
		return keys.RestoreRing(out)
	}
	return keys.RestorePublicRing(out)
}

// encodeLocal stores a list of 32-byte symmetric keys, current first:
// the refresh-token keys (kindLocal) or the peppers (kindPepper).
func (s *Store) encodeLocal(kind string, list []keys.LocalKeyEntry, version uint64) (string, error) {
	d := document{Kind: kind, Version: version}
	for i, lk := range list {
		sealed, err := keys.WrapLocalPIE(lk.Key, s.w, s.rand)
		if err != nil {
			return "", fmt.Errorf("redisring: wrap local key: %w", err)
		}
		st := keys.StatusRetired
		if i == 0 {
			st = keys.StatusCurrent
		}
		d.Keys = append(d.Keys, entry{Kid: lk.Key.ID(), Status: st, Secret: sealed, Created: lk.Created.UTC(), Retired: timePtr(lk.Retired)})
	}
	return s.seal(&d)
}

func (s *Store) decodeLocal(val, kind string) ([]keys.LocalKeyEntry, error) {
	d, err := s.open(val, kind)
	if err != nil {
		return nil, err
	}
	out := make([]keys.LocalKeyEntry, 0, len(d.Keys))
	for i, de := range d.Keys {
		want := keys.StatusRetired
		if i == 0 {
			want = keys.StatusCurrent
		}
		if de.Status != want {
			return nil, fmt.Errorf("%w: local keys out of order", ErrCorrupt)
		}
		k, err := keys.UnwrapLocalPIE(de.Secret, s.w)
		if err != nil {
			return nil, fmt.Errorf("redisring: open %s key %s: %w", kind, de.Kid, err)
		}
		if k.ID() != de.Kid {
			return nil, fmt.Errorf("%w: local key does not match its kid", ErrCorrupt)
		}
		lk := keys.LocalKeyEntry{Key: k, Created: de.Created}
		if de.Retired != nil {
			lk.Retired = *de.Retired
		}
		out = append(out, lk)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%w: no local key", ErrCorrupt)
	}
	return out, nil
}

// read returns the value of key and the version, read in one atomic MGET
// (one slot). ok is false when key is absent.
func (s *Store) read(ctx context.Context, key string) (val string, ok bool, version uint64, err error) {
	vals, err := s.c.MGet(ctx, key, s.versionKey()).Result()
	if err != nil {
		return "", false, 0, unavailable(err)
	}
	if len(vals) != 2 {
		return "", false, 0, unavailable(errors.New("unexpected MGET reply"))
	}
	if v, isStr := vals[1].(string); isStr {
		if version, err = strconv.ParseUint(v, 10, 64); err != nil {
			return "", false, 0, fmt.Errorf("%w: version", ErrCorrupt)
		}
	}
	val, ok = vals[0].(string)
	return val, ok, version, nil
}

// Exists reports whether Redis holds a ring under the prefix.
func (s *Store) Exists(ctx context.Context) (bool, error) {
	ctx, cancel, err := s.begin(ctx)
	if err != nil {
		return false, err
	}
	defer cancel()
	n, err := s.c.Exists(ctx, s.ringKey()).Result()
	if err != nil {
		return false, unavailable(err)
	}
	return n == 1, nil
}

// Init creates a new ring (one current, one next key) and, unless they
// exist, the refresh-token keys and the pepper, in one atomic step. It
// refuses (ErrExists) when a ring exists: two nodes starting at once create
// one ring.
func (s *Store) Init(ctx context.Context, now time.Time) (*keys.Ring, error) {
	ctx, cancel, err := s.begin(ctx)
	if err != nil {
		return nil, err
	}
	defer cancel()
	r, err := keys.NewRing(s.rand, now)
	if err != nil {
		return nil, err
	}
	lk, err := keys.GenerateLocalKey(s.rand)
	if err != nil {
		return nil, err
	}
	pepper, err := keys.GeneratePepper(s.rand)
	if err != nil {
		return nil, err
	}
	for attempt := 0; ; attempt++ {
		_, exists, version, err := s.read(ctx, s.ringKey())
		if err != nil {
			return nil, err
		}
		if exists {
			return nil, ErrExists
		}
		ringVal, err := s.encodeRing(r, version+1)
		if err != nil {
			return nil, err
		}
		localVal, err := s.encodeLocal(kindLocal, []keys.LocalKeyEntry{{Key: lk, Created: now.UTC()}}, version+1)
		if err != nil {
			return nil, err
		}
		pepperVal, err := s.encodeLocal(kindPepper, []keys.LocalKeyEntry{{Key: pepper.UnsafeLocalKey(), Created: now.UTC()}}, version+1)
		if err != nil {
			return nil, err
		}
		res, err := initScript.Run(ctx, s.c, []string{s.ringKey(), s.localKey(), s.versionKey(), s.pepperKey()},
			strconv.FormatUint(version, 10), ringVal, localVal, s.channel(), pepperVal).Text()
		if err != nil {
			return nil, unavailable(err)
		}
		switch res {
		case "ok":
			return r, nil
		case "exists":
			return nil, ErrExists
		case "conflict":
			if attempt+1 >= s.maxAttempts {
				return nil, ErrConflict
			}
			if err := s.backoff(ctx, attempt); err != nil {
				return nil, err
			}
		default:
			return nil, unavailable(fmt.Errorf("unexpected script reply"))
		}
	}
}

// Load reads the ring and opens every secret key. A wrong wrapping key
// gives an error wrapping keys.ErrUnwrap.
func (s *Store) Load(ctx context.Context) (*keys.Ring, error) {
	r, _, err := s.LoadVersion(ctx)
	return r, err
}

// LoadVersion is Load that also returns the version the ring was read at,
// to pass to Changed or Watch.
func (s *Store) LoadVersion(ctx context.Context) (*keys.Ring, uint64, error) {
	ctx, cancel, err := s.begin(ctx)
	if err != nil {
		return nil, 0, err
	}
	defer cancel()
	return s.load(ctx, true)
}

func (s *Store) load(ctx context.Context, secrets bool) (*keys.Ring, uint64, error) {
	val, ok, version, err := s.read(ctx, s.ringKey())
	if err != nil {
		return nil, 0, err
	}
	if !ok {
		return nil, 0, ErrNotFound
	}
	r, err := s.decodeRing(val, secrets)
	if err != nil {
		return nil, 0, err
	}
	return r, version, nil
}

// LoadPublic reads the ring's public half; no secret is unwrapped. The
// document is still authenticated, so the wrapping key is still needed.
func (s *Store) LoadPublic(ctx context.Context) (*keys.Ring, error) {
	ctx, cancel, err := s.begin(ctx)
	if err != nil {
		return nil, err
	}
	defer cancel()
	r, _, err := s.load(ctx, false)
	return r, err
}

// Update loads the ring, applies fn and stores the result if no other
// writer stored a ring (or refresh keys) in between; otherwise it loads the
// newer ring and applies fn again, at most MaxAttempts times in all
// (ErrConflict). So two nodes rotating at once both rotate: neither key is
// lost. fn may run several times, each time on a fresh ring; if fn fails
// nothing is written and its error is returned.
func (s *Store) Update(ctx context.Context, fn func(*keys.Ring) error) (*keys.Ring, error) {
	ctx, cancel, err := s.begin(ctx)
	if err != nil {
		return nil, err
	}
	defer cancel()
	for attempt := 0; ; attempt++ {
		r, version, err := s.load(ctx, true)
		if err != nil {
			return nil, err
		}
		if err := fn(r); err != nil {
			return nil, err
		}
		val, err := s.encodeRing(r, version+1)
		if err != nil {
			return nil, err
		}
		ok, err := s.put(ctx, s.ringKey(), version, val)
		if err != nil {
			return nil, err
		}
		if ok {
			return r, nil
		}
		if attempt+1 >= s.maxAttempts {
			return nil, ErrConflict
		}
		if err := s.backoff(ctx, attempt); err != nil {
			return nil, err
		}
	}
}

// put stores val under key if the version is still version, bumps the
// version and notifies watchers. ok is false when another writer won.
func (s *Store) put(ctx context.Context, key string, version uint64, val string) (ok bool, err error) {
	res, err := putScript.Run(ctx, s.c, []string{key, s.versionKey()},
		strconv.FormatUint(version, 10), val, s.channel()).Text()
	if err != nil {
		return false, unavailable(err)
	}
	switch res {
	case "ok":
		return true, nil
	case "conflict":
		return false, nil
	}
	return false, unavailable(errors.New("unexpected script reply"))
}

// backoff waits a short, growing, jittered time before another attempt.
func (s *Store) backoff(ctx context.Context, attempt int) error {
	var b [1]byte
	_, _ = io.ReadFull(s.rand, b[:]) // jitter only; a zero byte is fine
	d := time.Duration(attempt+1)*2*time.Millisecond + time.Duration(b[0])*20*time.Microsecond
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return unavailable(ctx.Err())
	case <-t.C:
		return nil
	}
}

// LoadLocal returns the refresh-token keys, current first.
func (s *Store) LoadLocal(ctx context.Context) ([]keys.LocalKeyEntry, error) {
	return s.loadList(ctx, s.localKey(), kindLocal)
}

// LoadPeppers returns the peppers, current first.
func (s *Store) LoadPeppers(ctx context.Context) ([]keys.PepperEntry, error) {
	list, err := s.loadList(ctx, s.pepperKey(), kindPepper)
	if err != nil {
		return nil, err
	}
	out := make([]keys.PepperEntry, 0, len(list))
	for _, e := range list {
		p, err := keys.PepperFromLocalKey(e.Key)
		if err != nil {
			return nil, fmt.Errorf("%w: pepper", ErrCorrupt)
		}
		out = append(out, keys.PepperEntry{Pepper: p, Created: e.Created, Retired: e.Retired})
	}
	return out, nil
}

func (s *Store) loadList(ctx context.Context, key, kind string) ([]keys.LocalKeyEntry, error) {
	ctx, cancel, err := s.begin(ctx)
	if err != nil {
		return nil, err
	}
	defer cancel()
	val, ok, _, err := s.read(ctx, key)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, ErrNotFound
	}
	return s.decodeLocal(val, kind)
}

// changeList reads the list under key (none when absent), applies fn and
// stores its result with the same version check as Update, so concurrent
// changes each apply once: fn runs again on the newer list after losing a
// race, at most MaxAttempts times (ErrConflict). Nothing is written when
// fn says there is nothing to write.
func (s *Store) changeList(ctx context.Context, key, kind string, fn func(old []keys.LocalKeyEntry, exists bool) (next []keys.LocalKeyEntry, write bool, err error)) error {
	ctx, cancel, err := s.begin(ctx)
	if err != nil {
		return err
	}
	defer cancel()
	for attempt := 0; ; attempt++ {
		val, ok, version, err := s.read(ctx, key)
		if err != nil {
			return err
		}
		var old []keys.LocalKeyEntry
		if ok {
			if old, err = s.decodeLocal(val, kind); err != nil {
				return err
			}
		}
		next, write, err := fn(old, ok)
		if err != nil || !write {
			return err
		}
		enc, err := s.encodeLocal(kind, next, version+1)
		if err != nil {
			return err
		}
		won, err := s.put(ctx, key, version, enc)
		if err != nil {
			return err
		}
		if won {
			return nil
		}
		if attempt+1 >= s.maxAttempts {
			return ErrConflict
		}
		if err := s.backoff(ctx, attempt); err != nil {
			return err
		}
	}
}

// retire returns old behind a new current key k made at now: the old
// current key retires at now, and, when keep > 0, retired keys that
// stopped sealing more than keep ago are dropped.
func retire(old []keys.LocalKeyEntry, k *keys.LocalKey, now time.Time, keep time.Duration) []keys.LocalKeyEntry {
	list := []keys.LocalKeyEntry{{Key: k, Created: now}}
	for _, o := range old {
		if o.Retired.IsZero() {
			o.Retired = now
		}
		if keep > 0 && now.Sub(o.Retired) > keep {
			continue
		}
		list = append(list, o)
	}
	return list
}

// RotateLocal adds a new current refresh-token key (creating the list when
// missing): the replaced key stops sealing but still opens the tokens it
// sealed. Retired keys that stopped sealing more than keep ago are
// dropped; keep must be at least the refresh token's absolute lifetime
// (the issuer's RefreshTTL), so that no live token loses its key, and
// positive (ErrKeep). Concurrent rotations add one key each.
func (s *Store) RotateLocal(ctx context.Context, now time.Time, keep time.Duration) error {
	if keep <= 0 {
		return ErrKeep
	}
	now = now.UTC()
	return s.changeList(ctx, s.localKey(), kindLocal, func(old []keys.LocalKeyEntry, _ bool) ([]keys.LocalKeyEntry, bool, error) {
		k, err := keys.GenerateLocalKey(s.rand)
		if err != nil {
			return nil, false, err
		}
		return retire(old, k, now, keep), true, nil
	})
}

// ResetLocal replaces every refresh-token key by one new key.
//
// SECURITY: every refresh token sealed before stops opening, on every node
// as soon as it reloads the keys (within a round trip): every device
// session ends and each device must join again (a link or recovery code).
// For a real compromise.
func (s *Store) ResetLocal(ctx context.Context, now time.Time) error {
	now = now.UTC()
	return s.changeList(ctx, s.localKey(), kindLocal, func([]keys.LocalKeyEntry, bool) ([]keys.LocalKeyEntry, bool, error) {
		k, err := keys.GenerateLocalKey(s.rand)
		if err != nil {
			return nil, false, err
		}
		return []keys.LocalKeyEntry{{Key: k, Created: now}}, true, nil
	})
}

// PruneLocal drops the retired refresh-token keys that stopped sealing
// more than keep ago (keep > 0, as for RotateLocal) and returns how many;
// nothing is written when none is due.
func (s *Store) PruneLocal(ctx context.Context, now time.Time, keep time.Duration) (int, error) {
	if keep <= 0 {
		return 0, ErrKeep
	}
	n := 0
	err := s.changeList(ctx, s.localKey(), kindLocal, func(old []keys.LocalKeyEntry, exists bool) ([]keys.LocalKeyEntry, bool, error) {
		if !exists {
			return nil, false, ErrNotFound
		}
		n = 0
		kept := old[:1:1]
		for _, o := range old[1:] {
			if !o.Retired.IsZero() && now.Sub(o.Retired) > keep {
				n++
				continue
			}
			kept = append(kept, o)
		}
		return kept, n > 0, nil
	})
	if err != nil {
		return 0, err
	}
	return n, nil
}

// RotatePepper adds a new current pepper (creating the list when
// missing). Older peppers are kept for good: recovery codes digested under
// them must keep working.
func (s *Store) RotatePepper(ctx context.Context, now time.Time) error {
	now = now.UTC()
	return s.changeList(ctx, s.pepperKey(), kindPepper, func(old []keys.LocalKeyEntry, _ bool) ([]keys.LocalKeyEntry, bool, error) {
		p, err := keys.GeneratePepper(s.rand)
		if err != nil {
			return nil, false, err
		}
		return retire(old, p.UnsafeLocalKey(), now, 0), true, nil
	})
}

// EnsureSecrets creates the refresh-token keys and the pepper when either
// is missing (a ring made before they existed) and reports what it
// created. It changes nothing that exists; nodes starting at once create
// one of each (the version check of every write).
func (s *Store) EnsureSecrets(ctx context.Context, now time.Time) (localCreated, pepperCreated bool, err error) {
	now = now.UTC()
	for _, f := range []struct {
		key, kind string
		created   *bool
		gen       func() (*keys.LocalKey, error)
	}{
		{s.localKey(), kindLocal, &localCreated, func() (*keys.LocalKey, error) { return keys.GenerateLocalKey(s.rand) }},
		{s.pepperKey(), kindPepper, &pepperCreated, func() (*keys.LocalKey, error) {
			p, err := keys.GeneratePepper(s.rand)
			if err != nil {
				return nil, err
			}
			return p.UnsafeLocalKey(), nil
		}},
	} {
		err := s.changeList(ctx, f.key, f.kind, func(_ []keys.LocalKeyEntry, exists bool) ([]keys.LocalKeyEntry, bool, error) {
			*f.created = false
			if exists {
				return nil, false, nil
			}
			k, err := f.gen()
			if err != nil {
				return nil, false, err
			}
			*f.created = true
			return []keys.LocalKeyEntry{{Key: k, Created: now}}, true, nil
		})
		if err != nil {
			return false, false, err
		}
	}
	return localCreated, pepperCreated, nil
}

// Version returns the change counter of the ring, the refresh keys and the
// peppers: every write (Init, Update, RotateLocal, ResetLocal, PruneLocal,
// RotatePepper, EnsureSecrets) increments it. 0 means nothing was ever
// stored.
func (s *Store) Version(ctx context.Context) (uint64, error) {
	ctx, cancel, err := s.begin(ctx)
	if err != nil {
		return 0, err
	}
	defer cancel()
	return s.version(ctx)
}

func (s *Store) version(ctx context.Context) (uint64, error) {
	v, err := s.c.Get(ctx, s.versionKey()).Result()
	if errors.Is(err, redis.Nil) {
		return 0, nil
	}
	if err != nil {
		return 0, unavailable(err)
	}
	n, err := strconv.ParseUint(v, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%w: version", ErrCorrupt)
	}
	return n, nil
}

// Changed reports whether the version differs from since (one GET), and
// returns the current version. "Differs", not "is greater": a Redis that
// lost its data and was initialised again counts as a change.
func (s *Store) Changed(ctx context.Context, since uint64) (bool, uint64, error) {
	v, err := s.Version(ctx)
	if err != nil {
		return false, 0, err
	}
	return v != since, v, nil
}

// Watch calls fn with the new version each time the version differs from
// the last one seen (starting from since), until ctx ends; then it returns
// ctx.Err(). It listens to the notification every write publishes, so
// other nodes learn of a rotation within a round trip, and it also polls
// the version every PollInterval, because Pub/Sub drops messages sent
// while a subscriber is disconnected. Errors reading the version are
// skipped (the next notification or tick tries again). fn runs on Watch's
// goroutine, one call at a time; typically it calls Load.
func (s *Store) Watch(ctx context.Context, since uint64, fn func(version uint64)) error {
	sub := s.c.Subscribe(ctx, s.channel())
	defer sub.Close()
	msgs := sub.Channel()
	tick := time.NewTicker(s.poll)
	defer tick.Stop()
	last := since
	check := func() {
		changed, v, err := s.Changed(ctx, last)
		if err == nil && changed {
			last = v
			fn(v)
		}
	}
	check()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case _, ok := <-msgs:
			if !ok {
				msgs = nil // closed: rely on polling
			}
			check()
		case <-tick.C:
			check()
		}
	}
}
