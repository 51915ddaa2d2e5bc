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
	"log/slog"
	"maps"
	"slices"
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
	// ErrRollback: Redis holds a document older than one this node has
	// seen, a document or counter that disagrees with the stored head, a
	// ring that brings back a key this node has seen revoked, or lacks a
	// document that existed: what an attacker who can write to Redis
	// without the wrapping key can do (put back older authentic values,
	// set the counter, delete). Nothing is loaded or written; the refusal
	// is logged and reported to Options.OnRollback.
	ErrRollback = errors.New("redisring: refused a key ring older than, or inconsistent with, what this node has seen (rollback)")
	// ErrState: the node's state file (Options.StateFile) cannot be read
	// or written, or does not verify under the wrapping key.
	ErrState = errors.New("redisring: key ring state file")
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
	// StateFile is where this node keeps what it has seen of the ring
	// (the highest version of each document and of the counter, and every
	// kid it has seen revoked), so that a rollback in Redis is refused
	// after a restart too. It must be on the node (its data directory),
	// out of reach of whoever can write to Redis, one per ring (prefix),
	// and used by one Store at a time. Its directory must exist. Empty:
	// the state is kept in memory only, and a restarted node trusts the
	// first consistent ring it reads.
	StateFile string
	// Logger receives refused rollbacks, at error level (default:
	// discarded). Nothing secret is logged.
	Logger *slog.Logger
	// OnRollback, when set, is called with the kind of document refused
	// (ring, local, pepper or head) each time a read is refused with
	// ErrRollback: the hook for an alert counter.
	OnRollback func(document string)
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
	g           *guard
}

// New returns a Store on c whose secrets are wrapped under w. The caller
// owns c. c must be built with ContextTimeoutEnabled, or a deadline would
// not reach the socket. With Options.StateFile, New reads the node's state
// from it (ErrState when it does not verify under w or names another
// prefix).
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
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	g, err := newGuard(opts.StateFile, opts.Prefix, w, opts.Logger, opts.OnRollback)
	if err != nil {
		return nil, err
	}
	wb := w.UnsafeBytes()
	m := hmac.New(sha256.New, wb)
	clear(wb)
	m.Write([]byte(macLabel))
	return &Store{
		c: c, w: w, macKey: m.Sum(nil), prefix: opts.Prefix, opTimeout: opts.OpTimeout,
		poll: opts.PollInterval, maxAttempts: opts.MaxAttempts, rand: opts.Rand, g: g,
	}, nil
}

// Keys: all under one hash tag, so every script runs on Redis Cluster.
func (s *Store) key(name string) string { return s.prefix + ":{keys}:" + name }
func (s *Store) ringKey() string        { return s.key("ring") }
func (s *Store) localKey() string       { return s.key("local") }
func (s *Store) pepperKey() string      { return s.key("pepper") }
func (s *Store) headKey() string        { return s.key("head") }
func (s *Store) versionKey() string     { return s.key("version") }
func (s *Store) channel() string        { return s.key("events") }

// docKinds are the documents, in the order read reads them.
var docKinds = []string{kindRing, kindLocal, kindPepper}

func (s *Store) docKey(kind string) string {
	switch kind {
	case kindRing:
		return s.ringKey()
	case kindLocal:
		return s.localKey()
	case kindPepper:
		return s.pepperKey()
	}
	return s.headKey()
}

func (s *Store) begin(ctx context.Context) (context.Context, context.CancelFunc, error) {
	if err := ctx.Err(); err != nil {
		return nil, nil, unavailable(err)
	}
	ctx, cancel := context.WithTimeout(ctx, s.opTimeout)
	return ctx, cancel, nil
}

func unavailable(err error) error { return fmt.Errorf("%w: %w", ErrUnavailable, err) }

// Stored form. Each of ring, local, pepper and head is one string value, an
// envelope {"mac":..., "doc":{...}}: the MAC (HMAC-SHA256 under a key
// derived from the wrapping key) covers the exact bytes of doc, so
// statuses, times, versions and the pairing of public and wrapped secret
// keys cannot be changed by whoever can write to Redis without the
// wrapping key.
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

// headDoc binds the documents to the version counter: every write stores
// it beside the document it writes, with Version the new counter value and
// Docs the version of each document as it now stands. A reader refuses a
// counter other than Version and a document whose version is not the one
// Docs names, so an older authentic document put back, a counter set by
// hand or a deleted document is refused even by a node that has seen
// nothing before.
type headDoc struct {
	Format  int               `json:"format"`
	Kind    string            `json:"kind"`
	Version uint64            `json:"version"`
	Docs    map[string]uint64 `json:"docs"`
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

func (s *Store) sealRaw(v any) (string, error) {
	doc, err := json.Marshal(v)
	if err != nil {
		return "", err
	}
	b, err := json.Marshal(envelope{MAC: base64.RawURLEncoding.EncodeToString(s.mac(doc)), Doc: doc})
	if err != nil {
		return "", err
	}
	return string(b), nil
}

func (s *Store) seal(d *document) (string, error) {
	d.Format, d.Protection = formatV1, protectionWrap
	return s.sealRaw(d)
}

// openRaw authenticates a stored value and returns its doc, decoded
// strictly into v. A wrong wrapping key (hence a wrong MAC key) gives
// keys.ErrUnwrap.
func (s *Store) openRaw(val, kind string, v any) error {
	if len(val) > maxValueLen {
		return ErrCorrupt
	}
	var env envelope
	if err := json.Unmarshal([]byte(val), &env); err != nil || len(env.Doc) == 0 {
		return ErrCorrupt
	}
	tag, err := base64.RawURLEncoding.DecodeString(env.MAC)
	if err != nil || !hmac.Equal(tag, s.mac(env.Doc)) {
		return fmt.Errorf("redisring: the wrapping key does not open the stored %s document (wrong wrapping key, or the value was altered): %w", kind, keys.ErrUnwrap)
	}
	dec := json.NewDecoder(strings.NewReader(string(env.Doc)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return ErrCorrupt
	}
	return nil
}

// open authenticates a stored value and checks it is a document of kind.
func (s *Store) open(val, kind string) (*document, error) {
	var d document
	if err := s.openRaw(val, kind, &d); err != nil {
		return nil, err
	}
	if d.Format != formatV1 || d.Kind != kind || d.Protection != protectionWrap {
		return nil, ErrCorrupt
	}
	return &d, nil
}

func (s *Store) openHead(val string) (*headDoc, error) {
	var h headDoc
	if err := s.openRaw(val, kindHead, &h); err != nil {
		return nil, err
	}
	if h.Format != formatV1 || h.Kind != kindHead || h.Docs == nil {
		return nil, ErrCorrupt
	}
	for k := range h.Docs {
		if k != kindRing && k != kindLocal && k != kindPepper {
			return nil, ErrCorrupt
		}
	}
	return &h, nil
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
	return s.ringFromDoc(d, secrets)
}

func (s *Store) ringFromDoc(d *document, secrets bool) (*keys.Ring, error) {
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
	return s.localFromDoc(d, kind)
}

func (s *Store) localFromDoc(d *document, kind string) ([]keys.LocalKeyEntry, error) {
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

// snapshot is one atomic read (MGET, one slot) of the documents, the head
// and the version counter. vals holds the values present, by kind.
type snapshot struct {
	counter uint64
	vals    map[string]string
}

func (s *Store) read(ctx context.Context) (*snapshot, error) {
	names := []string{s.ringKey(), s.localKey(), s.pepperKey(), s.headKey(), s.versionKey()}
	vals, err := s.c.MGet(ctx, names...).Result()
	if err != nil {
		return nil, unavailable(err)
	}
	if len(vals) != len(names) {
		return nil, unavailable(errors.New("unexpected MGET reply"))
	}
	snap := &snapshot{vals: map[string]string{}}
	if v, isStr := vals[4].(string); isStr {
		if snap.counter, err = strconv.ParseUint(v, 10, 64); err != nil {
			return nil, fmt.Errorf("%w: version", ErrCorrupt)
		}
	}
	for i, kind := range append(docKinds, kindHead) {
		if v, isStr := vals[i].(string); isStr {
			snap.vals[kind] = v
		}
	}
	return snap, nil
}

// admit authenticates the head and the document of kind ("" for none) in
// snap and checks them against base, the node's state taken before the
// read: ErrRollback when they are older than, or disagree with, what this
// node has seen. What passes is recorded as seen.
//
// replace says the caller overwrites the document whatever it holds
// (ResetLocal): it is then neither opened nor checked, only the head and
// the counter are.
func (s *Store) admit(base *nodeState, snap *snapshot, kind string, replace bool) (observation, error) {
	o := observation{counter: snap.counter, kind: kind, replace: replace}
	if v, ok := snap.vals[kindHead]; ok {
		h, err := s.openHead(v)
		if err != nil {
			return o, err
		}
		o.head = h
	}
	if v, ok := snap.vals[kind]; ok && kind != "" && !replace {
		d, err := s.open(v, kind)
		if err != nil {
			return o, err
		}
		o.doc, o.raw = d, v
	}
	return o, s.g.admit(base, o)
}

// readDoc reads and admits the document of kind: ErrNotFound when absent
// (and the node never saw it).
func (s *Store) readDoc(ctx context.Context, kind string) (*document, uint64, error) {
	base := s.g.base()
	snap, err := s.read(ctx)
	if err != nil {
		return nil, 0, err
	}
	o, err := s.admit(base, snap, kind, false)
	if err != nil {
		return nil, 0, err
	}
	if o.doc == nil {
		return nil, 0, ErrNotFound
	}
	return o.doc, snap.counter, nil
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
// one ring. It also refuses (ErrRollback) when this node, or the stored
// head, has seen a ring that is gone: a deleted ring is not silently
// replaced.
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
	fresh, err := s.freshSecrets(now)
	if err != nil {
		return nil, err
	}
	for attempt := 0; ; attempt++ {
		done, err := s.tryInit(ctx, r, fresh)
		if err != nil {
			return nil, err
		}
		if done {
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

// freshSecrets are the refresh-token key and the pepper Init stores when
// missing.
func (s *Store) freshSecrets(now time.Time) (map[string][]keys.LocalKeyEntry, error) {
	lk, err := keys.GenerateLocalKey(s.rand)
	if err != nil {
		return nil, err
	}
	pepper, err := keys.GeneratePepper(s.rand)
	if err != nil {
		return nil, err
	}
	return map[string][]keys.LocalKeyEntry{
		kindLocal:  {{Key: lk, Created: now.UTC()}},
		kindPepper: {{Key: pepper.UnsafeLocalKey(), Created: now.UTC()}},
	}, nil
}

// tryInit is one attempt of Init: done is false when another writer won.
func (s *Store) tryInit(ctx context.Context, r *keys.Ring, fresh map[string][]keys.LocalKeyEntry) (done bool, err error) {
	base := s.g.base()
	snap, err := s.read(ctx)
	if err != nil {
		return false, err
	}
	if _, exists := snap.vals[kindRing]; exists {
		return false, ErrExists
	}
	o, err := s.admit(base, snap, kindRing, false)
	if err != nil {
		return false, err
	}
	version := snap.counter + 1
	vals := map[string]string{}
	if vals[kindRing], err = s.encodeRing(r, version); err != nil {
		return false, err
	}
	for _, kind := range []string{kindLocal, kindPepper} {
		if _, exists := snap.vals[kind]; !exists {
			if vals[kind], err = s.encodeLocal(kind, fresh[kind], version); err != nil {
				return false, err
			}
		}
	}
	headVal, err := s.nextHead(o, snap, version, slices.Collect(maps.Keys(vals))...)
	if err != nil {
		return false, err
	}
	res, err := initScript.Run(ctx, s.c, []string{s.ringKey(), s.localKey(), s.versionKey(), s.pepperKey(), s.headKey()},
		strconv.FormatUint(version-1, 10), vals[kindRing], vals[kindLocal], s.channel(), vals[kindPepper], headVal).Text()
	if err != nil {
		return false, unavailable(err)
	}
	switch res {
	case "ok":
		for kind, val := range vals {
			if err := s.record(base, version, headVal, kind, val); err != nil {
				return true, err
			}
		}
		return true, nil
	case "exists":
		return false, ErrExists
	case "conflict":
		return false, nil
	}
	return false, unavailable(fmt.Errorf("unexpected script reply"))
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
	d, version, err := s.readDoc(ctx, kindRing)
	if err != nil {
		return nil, 0, err
	}
	r, err := s.ringFromDoc(d, secrets)
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
	var out *keys.Ring
	err := s.write(ctx, kindRing, false, func(o observation, version uint64) (string, bool, error) {
		if o.doc == nil {
			return "", false, ErrNotFound
		}
		r, err := s.ringFromDoc(o.doc, true)
		if err != nil {
			return "", false, err
		}
		if err := fn(r); err != nil {
			return "", false, err
		}
		val, err := s.encodeRing(r, version)
		out = r
		return val, true, err
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// LoadLocal returns the refresh-token keys, current first.
func (s *Store) LoadLocal(ctx context.Context) ([]keys.LocalKeyEntry, error) {
	return s.loadList(ctx, kindLocal)
}

// LoadPeppers returns the peppers, current first.
func (s *Store) LoadPeppers(ctx context.Context) ([]keys.PepperEntry, error) {
	list, err := s.loadList(ctx, kindPepper)
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

func (s *Store) loadList(ctx context.Context, kind string) ([]keys.LocalKeyEntry, error) {
	ctx, cancel, err := s.begin(ctx)
	if err != nil {
		return nil, err
	}
	defer cancel()
	d, _, err := s.readDoc(ctx, kind)
	if err != nil {
		return nil, err
	}
	return s.localFromDoc(d, kind)
}

// changeList reads the list of kind (none when absent), applies fn and
// stores its result with the same version check as Update, so concurrent
// changes each apply once: fn runs again on the newer list after losing a
// race, at most MaxAttempts times (ErrConflict). Nothing is written when
// fn says there is nothing to write. replace says the change keeps
// nothing of the stored list (ResetLocal), so a list that was deleted is
// replaced rather than refused.
func (s *Store) changeList(ctx context.Context, kind string, replace bool, fn func(old []keys.LocalKeyEntry, exists bool) (next []keys.LocalKeyEntry, write bool, err error)) error {
	return s.write(ctx, kind, replace, func(o observation, version uint64) (string, bool, error) {
		var old []keys.LocalKeyEntry
		if o.doc != nil && !replace {
			var err error
			if old, err = s.localFromDoc(o.doc, kind); err != nil {
				return "", false, err
			}
		}
		next, write, err := fn(old, o.doc != nil)
		if err != nil || !write {
			return "", false, err
		}
		val, err := s.encodeLocal(kind, next, version)
		return val, err == nil, err
	})
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
	return s.changeList(ctx, kindLocal, false, func(old []keys.LocalKeyEntry, _ bool) ([]keys.LocalKeyEntry, bool, error) {
		k, err := keys.GenerateLocalKey(s.rand)
		if err != nil {
			return nil, false, err
		}
		return retire(old, k, now, keep), true, nil
	})
}

// ResetLocal replaces every refresh-token key by one new key, also when
// the list was deleted from Redis (the way out after ErrRollback on the
// refresh-token keys).
//
// SECURITY: every refresh token sealed before stops opening, on every node
// as soon as it reloads the keys (within a round trip): every device
// session ends and each device must join again (a link or recovery code).
// For a real compromise.
func (s *Store) ResetLocal(ctx context.Context, now time.Time) error {
	now = now.UTC()
	return s.changeList(ctx, kindLocal, true, func([]keys.LocalKeyEntry, bool) ([]keys.LocalKeyEntry, bool, error) {
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
	err := s.changeList(ctx, kindLocal, false, func(old []keys.LocalKeyEntry, exists bool) ([]keys.LocalKeyEntry, bool, error) {
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
	return s.changeList(ctx, kindPepper, false, func(old []keys.LocalKeyEntry, _ bool) ([]keys.LocalKeyEntry, bool, error) {
		p, err := keys.GeneratePepper(s.rand)
		if err != nil {
			return nil, false, err
		}
		return retire(old, p.UnsafeLocalKey(), now, 0), true, nil
	})
}

// EnsureSecrets creates the refresh-token keys and the pepper when either
// is missing (a ring made before they existed), and the head when a ring
// made before heads existed has none, and reports what it created. It
// changes nothing that exists; nodes starting at once create one of each
// (the version check of every write). A list that existed and was deleted
// is not created again: ErrRollback (ResetLocal replaces deleted
// refresh-token keys; deleted peppers must be restored from a backup, or
// every recovery code made under them stops working).
func (s *Store) EnsureSecrets(ctx context.Context, now time.Time) (localCreated, pepperCreated bool, err error) {
	now = now.UTC()
	for _, f := range []struct {
		kind    string
		created *bool
		gen     func() (*keys.LocalKey, error)
	}{
		{kindLocal, &localCreated, func() (*keys.LocalKey, error) { return keys.GenerateLocalKey(s.rand) }},
		{kindPepper, &pepperCreated, func() (*keys.LocalKey, error) {
			p, err := keys.GeneratePepper(s.rand)
			if err != nil {
				return nil, err
			}
			return p.UnsafeLocalKey(), nil
		}},
	} {
		err := s.changeList(ctx, f.kind, false, func(_ []keys.LocalKeyEntry, exists bool) ([]keys.LocalKeyEntry, bool, error) {
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
	// A ring from before heads existed gets one (the write of a list above
	// makes one too).
	err = s.write(ctx, "", false, func(o observation, _ uint64) (string, bool, error) {
		return "", o.head == nil, nil
	})
	return localCreated, pepperCreated, err
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
