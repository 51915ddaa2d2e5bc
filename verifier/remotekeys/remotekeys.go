package remotekeys

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hallpass/hallpass/keys"
	"github.com/hallpass/hallpass/verifier"
)

// WellKnownPath is where an issuer publishes its key set.
const WellKnownPath = "/.well-known/hallpass/keys"

// Defaults of Config.
const (
	DefaultCooldown     = 30 * time.Second
	DefaultMinRefresh   = 30 * time.Second
	DefaultMaxRefresh   = 1 * time.Hour
	DefaultRefresh      = 5 * time.Minute // without a max-age
	DefaultFetchTimeout = 10 * time.Second
	// DefaultMaxStale bounds how long a key set is trusted without a
	// successful fetch: a verifier cut off from its issuer for longer
	// fails closed rather than trusting a key the issuer may have revoked
	// since.
	DefaultMaxStale = 24 * time.Hour
)

// cacheFileSkew is how far in the future of Config.Now the cache file's
// modification time, or a set's fetch time, may be (coarse file times, a
// clock read a moment earlier, a small clock correction) and still count
// as its fetch time.
const cacheFileSkew = time.Minute

// Errors. Their text is fixed.
var (
	ErrConfig = errors.New("remotekeys: invalid configuration")
	// ErrFetch: the key set could not be fetched or was refused.
	ErrFetch = errors.New("remotekeys: key set fetch failed")
	// ErrStale: the last good key set is older than Config.MaxStale.
	ErrStale = errors.New("remotekeys: key set too old")
	// ErrCacheFile: the cache file is missing, unsafe or invalid.
	ErrCacheFile = errors.New("remotekeys: cache file unusable")
	// ErrClosed: the KeySet was closed.
	ErrClosed = errors.New("remotekeys: closed")
)

// Config configures a KeySet. Issuer is required; the zero value of every
// other field selects the documented default.
type Config struct {
	// Issuer is the issuer URL: tokens' iss and the document's "issuer".
	Issuer string
	// URL of the key set. Default Issuer + WellKnownPath.
	URL string
	// AllowHTTP permits an http URL on a loopback host (development,
	// tests). Any other http URL is refused.
	AllowHTTP bool
	// Client makes the requests. Default: http.DefaultTransport. Unless
	// Client has its own CheckRedirect, at most 3 redirects are followed,
	// each only to a URL that passes the scheme rule of URL.
	Client *http.Client
	// FetchTimeout bounds one fetch. Default 10 s.
	FetchTimeout time.Duration
	// MaxSize bounds the document. Default and maximum
	// verifier.MaxKeySetSize (64 KiB).
	MaxSize int64
	// MinRefresh and MaxRefresh bound the refresh interval taken from
	// Cache-Control max-age (DefaultRefresh without one). Defaults 30 s and
	// 1 h.
	MinRefresh, MaxRefresh time.Duration
	// Cooldown is the least time between two fetches caused by unknown
	// kids. Default 30 s.
	Cooldown time.Duration
	// CacheFile, when set, holds the last good document (written with
	// mode 0600 by atomic rename, its modification time the set's fetch
	// time; its directory must exist). It is refused when group- or
	// world-writable or owned by another user (unix).
	CacheFile string
	// MaxStale makes LookupKey fail with ErrStale (a verifier answers
	// 503) once the last good set (fetched: less the answer's Age, when a
	// shared cache answered; or read from CacheFile: its
	// modification time; a file stamped more than a minute in the future
	// of Now counts as older, and so does a set whose fetch time a clock
	// stepped back puts more than a minute ahead of Now) is older than
	// this: a revocation published
	// while this verifier could not reach the issuer is not ignored for
	// ever.
	// Default DefaultMaxStale (24 h); at least twice MinRefresh. The
	// refresh interval is held to at most half of what is left of it
	// after the answer's Age (MinRefresh at least), so a set that
	// refreshes does not go stale.
	MaxStale time.Duration
	// Now is the clock for ages and cooldowns. Default time.Now.
	Now func() time.Time
	// Logger receives fetch failures and refused documents. Default:
	// discard.
	Logger *slog.Logger
}

// KeySet is a verifier.KeySource following a remote key set. It is safe
// for concurrent use. Close it to stop its refresh goroutine.
type KeySet struct {
	cfg     Config
	url     string
	client  *http.Client
	log     *slog.Logger
	current atomic.Pointer[state]

	mu          sync.Mutex
	revoked     map[keys.KeyID]struct{} // every kid ever seen revoked; under mu
	flight      *flight                 // fetch in progress; under mu
	lastUnknown time.Time               // start of the last unknown-kid fetch; under mu
	fetches     atomic.Int64
	lastOK      atomic.Bool // the last fetch succeeded

	ctx    context.Context // cancelled by Close
	cancel context.CancelFunc
	wake   chan struct{} // a fetch finished: the loop reschedules
	wg     sync.WaitGroup
}

// state is an immutable snapshot.
type state struct {
	set     *verifier.StaticKeySet
	revoked map[keys.KeyID]struct{}
	fetched time.Time // when the issuer served it: now minus Age (or the cache file's mtime)
	got     time.Time // when this KeySet installed it: the refresh schedule starts here
	refresh time.Duration
}

type flight struct {
	done chan struct{}
	err  error
}

// New fetches the key set and starts the refresh goroutine. When the fetch
// fails and Config.CacheFile holds a good document, New starts from it and
// keeps trying the issuer in the background; with neither, it fails.
func New(ctx context.Context, cfg Config) (*KeySet, error) {
	if err := cfg.setDefaults(); err != nil {
		return nil, err
	}
	k := &KeySet{
		cfg:     cfg,
		url:     cfg.URL,
		log:     cfg.Logger,
		revoked: make(map[keys.KeyID]struct{}),
		wake:    make(chan struct{}, 1),
	}
	c := *cfg.Client
	if c.CheckRedirect == nil {
		c.CheckRedirect = func(req *http.Request, via []*http.Request) error {
			if len(via) >= 3 {
				return errors.New("too many redirects")
			}
			if err := checkURL(req.URL, cfg.AllowHTTP); err != nil {
				return err
			}
			return nil
		}
	}
	k.client = &c
	k.ctx, k.cancel = context.WithCancel(context.Background())

	// The cache file is read once, before the first fetch: its revoked
	// kids count from the start, and its set is the fallback.
	var cache cacheFile
	if cfg.CacheFile != "" {
		cache = k.readCacheFile()
		k.rememberCachedRevocations(ctx, cache)
	}
	err := k.fetch(ctx)
	if err != nil {
		if cfg.CacheFile == "" {
			k.cancel()
			return nil, err
		}
		if cerr := k.loadCacheFile(cache); cerr != nil {
			k.cancel()
			return nil, errors.Join(err, cerr)
		}
		k.log.LogAttrs(ctx, slog.LevelWarn, "remotekeys: issuer unreachable, starting from the cache file",
			slog.String("url", k.url), slog.String("err", err.Error()))
	}
	k.wg.Add(1)
	go k.loop(err != nil)
	return k, nil
}

func (cfg *Config) setDefaults() error {
	if cfg.Issuer == "" {
		return fmt.Errorf("%w: Issuer is required", ErrConfig)
	}
	if cfg.URL == "" {
		cfg.URL = strings.TrimRight(cfg.Issuer, "/") + WellKnownPath
	}
	u, err := url.Parse(cfg.URL)
	if err != nil {
		return fmt.Errorf("%w: URL does not parse", ErrConfig)
	}
	if err := checkURL(u, cfg.AllowHTTP); err != nil {
		return fmt.Errorf("%w: %w", ErrConfig, err)
	}
	if cfg.Client == nil {
		cfg.Client = &http.Client{}
	}
	if cfg.FetchTimeout == 0 {
		cfg.FetchTimeout = DefaultFetchTimeout
	}
	if cfg.MaxSize == 0 || cfg.MaxSize > verifier.MaxKeySetSize {
		cfg.MaxSize = verifier.MaxKeySetSize
	}
	if cfg.MinRefresh == 0 {
		cfg.MinRefresh = DefaultMinRefresh
	}
	if cfg.MaxRefresh == 0 {
		cfg.MaxRefresh = DefaultMaxRefresh
	}
	if cfg.Cooldown == 0 {
		cfg.Cooldown = DefaultCooldown
	}
	if cfg.MaxStale == 0 {
		cfg.MaxStale = DefaultMaxStale
	}
	if cfg.FetchTimeout < 0 || cfg.MaxSize < 0 || cfg.MinRefresh < 0 || cfg.MaxRefresh < cfg.MinRefresh ||
		cfg.Cooldown < 0 || cfg.MaxStale < 0 {
		return fmt.Errorf("%w: negative or inverted duration or size", ErrConfig)
	}
	if cfg.MaxStale < 2*cfg.MinRefresh {
		return fmt.Errorf("%w: MaxStale must be at least twice MinRefresh", ErrConfig)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	return nil
}

// checkURL: https, or http on a loopback host when allowed; no user info.
func checkURL(u *url.URL, allowHTTP bool) error {
	if u.Host == "" || u.User != nil || u.Opaque != "" {
		return errors.New("URL must be absolute, without user info")
	}
	switch u.Scheme {
	case "https":
		return nil
	case "http":
		h := u.Hostname()
		ip := net.ParseIP(h)
		if allowHTTP && (h == "localhost" || (ip != nil && ip.IsLoopback())) {
			return nil
		}
		return errors.New("http is allowed only for a loopback host, with AllowHTTP")
	}
	return errors.New("URL must be https")
}

// LookupKey implements verifier.KeySource.
func (k *KeySet) LookupKey(ctx context.Context, kid keys.KeyID) (keys.PublicKey, error) {
	st := k.current.Load()
	if err := k.checkStale(st); err != nil {
		return keys.PublicKey{}, err
	}
	if _, r := st.revoked[kid]; r {
		return keys.PublicKey{}, verifier.ErrKeyRevoked
	}
	pk, err := st.set.LookupKey(ctx, kid)
	if !errors.Is(err, verifier.ErrUnknownKey) {
		return pk, err
	}
	// Unknown kid: maybe the issuer rotated. Refetch, rate limited; join a
	// fetch already in flight.
	f := k.unknownKidFlight()
	if f == nil {
		return keys.PublicKey{}, verifier.ErrUnknownKey
	}
	select {
	case <-f.done:
	case <-ctx.Done():
		return keys.PublicKey{}, fmt.Errorf("%w: %w", verifier.ErrUnknownKey, ctx.Err())
	}
	st = k.current.Load()
	if _, r := st.revoked[kid]; r {
		return keys.PublicKey{}, verifier.ErrKeyRevoked
	}
	return st.set.LookupKey(ctx, kid)
}

// checkStale fails closed once st is older than MaxStale, or fetched more
// than cacheFileSkew after now: the clock stepped back since, and the set
// has no known age. Counted as fresh, a set read from the cache file while
// the issuer is unreachable (no next fetch to set a new time) was trusted
// for the step plus MaxStale. A fetch that succeeds sets a new time.
func (k *KeySet) checkStale(st *state) error {
	age := k.cfg.Now().Sub(st.fetched)
	if age > k.cfg.MaxStale || age < -cacheFileSkew {
		return ErrStale
	}
	return nil
}

// unknownKidFlight returns the fetch in flight, or starts one if the
// cooldown allows, or returns nil.
func (k *KeySet) unknownKidFlight() *flight {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.flight != nil {
		return k.flight
	}
	if k.ctx.Err() != nil {
		return nil
	}
	now := k.cfg.Now()
	// A clock stepped back (d < 0) ends the cooldown rather than
	// stretching it.
	if d := now.Sub(k.lastUnknown); !k.lastUnknown.IsZero() && d >= 0 && d < k.cfg.Cooldown {
		return nil
	}
	k.lastUnknown = now
	return k.startFlightLocked()
}

// startFlightLocked starts a fetch in a goroutine owned by k.
func (k *KeySet) startFlightLocked() *flight {
	f := &flight{done: make(chan struct{})}
	k.flight = f
	k.wg.Add(1)
	go func() {
		defer k.wg.Done()
		f.err = k.fetch(k.ctx)
		k.mu.Lock()
		k.flight = nil
		k.mu.Unlock()
		close(f.done)
		select {
		case k.wake <- struct{}{}:
		default:
		}
	}()
	return f
}

// Refresh fetches the key set now (joining a fetch in flight), whatever
// the cooldown. On failure the last good set stays in use.
func (k *KeySet) Refresh(ctx context.Context) error {
	k.mu.Lock()
	if k.ctx.Err() != nil {
		k.mu.Unlock()
		return ErrClosed
	}
	f := k.flight
	if f == nil {
		f = k.startFlightLocked()
	}
	k.mu.Unlock()
	select {
	case <-f.done:
		return f.err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Close stops the refresh goroutine and any fetch in flight, and waits for
// them. LookupKey keeps answering from the last good set.
func (k *KeySet) Close() error {
	k.mu.Lock()
	k.cancel()
	k.mu.Unlock()
	k.wg.Wait()
	return nil
}

// Fetches reports how many fetches were attempted (for tests and metrics).
func (k *KeySet) Fetches() int64 { return k.fetches.Load() }

// FetchedAt reports when the key set in use was fetched: zero when that is
// unknown (a cache file stamped in the future), which counts as stale.
func (k *KeySet) FetchedAt() time.Time { return k.current.Load().fetched }

// loop refreshes when the current set's refresh interval runs out, and
// retries failures with backoff (1 s doubling up to MinRefresh).
func (k *KeySet) loop(failing bool) {
	defer k.wg.Done()
	backoff := time.Second
	for {
		var wait time.Duration
		if failing {
			wait = min(backoff, k.cfg.MinRefresh)
			// Doubled only while below its bound: doubled on every
			// failure, it overflowed after 34 in a row (a negative, then
			// a zero wait) and the loop fetched without pause.
			if backoff < k.cfg.MinRefresh {
				backoff *= 2
			}
		} else {
			backoff = time.Second
			st := k.current.Load()
			wait = st.refresh - k.cfg.Now().Sub(st.got)
			if wait <= 0 || wait > st.refresh {
				wait = st.refresh
			}
		}
		t := time.NewTimer(wait)
		select {
		case <-k.ctx.Done():
			t.Stop()
			return
		case <-k.wake: // another fetch happened: reschedule from it
			t.Stop()
			failing = !k.lastOK.Load()
			continue
		case <-t.C:
		}
		k.mu.Lock()
		f := k.flight
		if f == nil && k.ctx.Err() == nil {
			f = k.startFlightLocked()
		}
		k.mu.Unlock()
		if f == nil {
			return
		}
		select {
		case <-f.done:
		case <-k.ctx.Done():
			return
		}
		// Drain the wake-up of our own fetch.
		select {
		case <-k.wake:
		default:
		}
		failing = f.err != nil
	}
}

// fetch GETs the key set and installs it.
func (k *KeySet) fetch(ctx context.Context) error {
	k.fetches.Add(1)
	ctx, cancel := context.WithTimeout(ctx, k.cfg.FetchTimeout)
	defer cancel()
	data, h, err := k.get(ctx)
	if err == nil {
		err = k.installResponse(data, h)
	}
	k.lastOK.Store(err == nil)
	if err != nil {
		k.log.LogAttrs(ctx, slog.LevelWarn, "remotekeys: key set fetch failed", slog.String("url", k.url), slog.String("err", err.Error()))
		return err
	}
	if k.cfg.CacheFile != "" {
		k.writeCacheFile(ctx, data)
	}
	return nil
}

// writeCacheFile writes the cache document of data. When that document
// cannot be made (the revoked kids would pass MaxSize), the file is
// removed rather than written without them: a process started from it
// would trust a key this one saw revoked.
func (k *KeySet) writeCacheFile(ctx context.Context, data []byte) {
	doc, err := k.cacheDocument(data)
	if err != nil {
		k.log.LogAttrs(ctx, slog.LevelWarn, "remotekeys: the cache file is removed: "+err.Error())
		if err := os.Remove(k.cfg.CacheFile); err != nil && !errors.Is(err, fs.ErrNotExist) {
			k.log.LogAttrs(ctx, slog.LevelError, "remotekeys: removing the cache file failed", slog.String("err", err.Error()))
		}
		return
	}
	if err := writeFileAtomic(k.cfg.CacheFile, doc, k.current.Load().fetched); err != nil {
		k.log.LogAttrs(ctx, slog.LevelWarn, "remotekeys: writing the cache file failed", slog.String("err", err.Error()))
	}
}

func (k *KeySet) get(ctx context.Context) ([]byte, http.Header, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, k.url, nil)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %w", ErrFetch, err)
	}
	req.Header.Set("Accept", "application/json")
	resp, err := k.client.Do(req)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %w", ErrFetch, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
		return nil, nil, fmt.Errorf("%w: status %d", ErrFetch, resp.StatusCode)
	}
	if resp.ContentLength > k.cfg.MaxSize {
		return nil, nil, fmt.Errorf("%w: document larger than %d bytes", ErrFetch, k.cfg.MaxSize)
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, k.cfg.MaxSize+1))
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %w", ErrFetch, err)
	}
	if int64(len(data)) > k.cfg.MaxSize {
		return nil, nil, fmt.Errorf("%w: document larger than %d bytes", ErrFetch, k.cfg.MaxSize)
	}
	return data, resp.Header, nil
}

// installResponse installs a fetched document. A shared cache may have
// answered for the issuer (the document is "public"), with a copy made Age
// seconds ago: the set is that old, and a copy older than MaxStale is
// refused, so a cache that keeps serving while the issuer is down does not
// keep the set fresh for ever.
func (k *KeySet) installResponse(data []byte, h http.Header) error {
	age := responseAge(h)
	if age > k.cfg.MaxStale {
		return fmt.Errorf("%w: the answer's Age is more than MaxStale", ErrFetch)
	}
	return k.install(data, k.cfg.Now().Add(-age), k.refreshInterval(h, age))
}

// responseAge reads the Age header (RFC 9111 section 5.1): delta-seconds,
// a value too large for 31 bits counting as 2^31. Of a list ("Age: 90000,
// 0", or several Age lines) the first member counts, as the RFC says:
// parsed whole, the list was invalid and a copy older than MaxStale counted
// as fresh. Absent or invalid: 0.
func responseAge(h http.Header) time.Duration {
	first, _, _ := strings.Cut(h.Get("Age"), ",")
	n, err := strconv.ParseUint(strings.TrimSpace(first), 10, 64)
	if err != nil && !errors.Is(err, strconv.ErrRange) {
		return 0
	}
	return time.Duration(min(n, 1<<31)) * time.Second
}

// refreshInterval reads max-age from Cache-Control, less the answer's age,
// bounded to [MinRefresh, MaxRefresh] and to half of what is left of
// MaxStale (MaxStale less age; MinRefresh at least), so a set refreshes
// before it goes stale whatever max-age a shared cache sends.
func (k *KeySet) refreshInterval(h http.Header, age time.Duration) time.Duration {
	d := DefaultRefresh
	for _, v := range h.Values("Cache-Control") {
		for _, dir := range strings.Split(v, ",") {
			name, val, _ := strings.Cut(strings.TrimSpace(dir), "=")
			switch strings.ToLower(name) {
			case "max-age":
				if n, err := strconv.ParseInt(strings.Trim(val, `"`), 10, 64); err == nil && n >= 0 && n < 1<<31 {
					d = time.Duration(n) * time.Second
				}
			case "no-store", "no-cache":
				d = 0
			}
		}
	}
	return min(max(d-age, k.cfg.MinRefresh), k.cfg.MaxRefresh, max((k.cfg.MaxStale-age)/2, k.cfg.MinRefresh))
}

// install parses data and makes it the current set. Revoked kids are
// remembered for the life of k.
func (k *KeySet) install(data []byte, fetched time.Time, refresh time.Duration) error {
	set, err := verifier.ParseKeySet(data, k.cfg.Issuer)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrFetch, err)
	}
	doc, err := revokedKids(data)
	if err != nil {
		return fmt.Errorf("%w: %w", ErrFetch, err)
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	for _, kid := range doc {
		k.revoked[kid] = struct{}{}
	}
	revoked := make(map[keys.KeyID]struct{}, len(k.revoked))
	for kid := range k.revoked {
		revoked[kid] = struct{}{}
	}
	k.current.Store(&state{set: set, revoked: revoked, fetched: fetched, got: k.cfg.Now(), refresh: refresh})
	return nil
}

// cacheFile is what readCacheFile read: the document and its
// modification time, or why there is none.
type cacheFile struct {
	data  []byte
	mtime time.Time
	err   error
}

// readCacheFile reads the cache file, refusing one that is not a regular
// file, is group- or world-writable, is owned by another user than this
// process (checkOwner), or is larger than MaxSize. The checks are made on
// the file it opened, the one it reads: checked by name and read by name
// again, a file swapped in between was read unchecked.
func (k *KeySet) readCacheFile() cacheFile {
	fail := func(err error) cacheFile { return cacheFile{err: fmt.Errorf("%w: %w", ErrCacheFile, err)} }
	named, err := os.Stat(k.cfg.CacheFile)
	if err != nil {
		return fail(err)
	}
	if !named.Mode().IsRegular() {
		// Before opening it: opening a FIFO would block.
		return fail(errors.New("not a regular file"))
	}
	f, err := os.Open(k.cfg.CacheFile)
	if err != nil {
		return fail(err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return fail(err)
	}
	if !os.SameFile(named, fi) || !fi.Mode().IsRegular() || fi.Mode().Perm()&0o022 != 0 {
		return fail(errors.New("not a regular file, or group- or world-writable"))
	}
	if err := checkOwner(fi, os.Geteuid()); err != nil {
		return fail(err)
	}
	data, err := io.ReadAll(io.LimitReader(f, k.cfg.MaxSize+1))
	if err != nil {
		return fail(err)
	}
	if int64(len(data)) > k.cfg.MaxSize {
		return fail(errors.New("too large"))
	}
	return cacheFile{data: data, mtime: fi.ModTime()}
}

// rememberCachedRevocations makes k refuse the kids that the cache file
// lists as revoked, before the first fetch: a revocation an earlier process
// saw is not forgotten when the first document fetched now (a stale issuer
// node, a cache in front of the issuer) lists the key again. An unusable
// file only loses them, with a warning: the fetch may still succeed.
func (k *KeySet) rememberCachedRevocations(ctx context.Context, cache cacheFile) {
	err := cache.err
	if err == nil {
		_, err = verifier.ParseKeySet(cache.data, k.cfg.Issuer)
	}
	var ids []keys.KeyID
	if err == nil {
		ids, err = revokedKids(cache.data)
	}
	if err != nil {
		if !errors.Is(err, fs.ErrNotExist) {
			k.log.LogAttrs(ctx, slog.LevelWarn, "remotekeys: the cache file is unusable; its revoked kids are not remembered",
				slog.String("err", err.Error()))
		}
		return
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	for _, kid := range ids {
		k.revoked[kid] = struct{}{}
	}
}

// cacheDocument is data with its "revoked" member replaced by every kid k
// refuses (sorted), so that the next process refuses them too, whatever
// document it reads first; an error when that cannot be made (it would
// pass MaxSize).
func (k *KeySet) cacheDocument(data []byte) ([]byte, error) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(data, &m); err != nil {
		return nil, err
	}
	raw, err := json.Marshal(slices.Sorted(maps.Keys(k.current.Load().revoked)))
	if err != nil {
		return nil, err
	}
	m["revoked"] = raw
	out, err := json.Marshal(m)
	if err != nil {
		return nil, err
	}
	if int64(len(out)) > k.cfg.MaxSize {
		return nil, fmt.Errorf("the document with every revoked kid would pass %d bytes", k.cfg.MaxSize)
	}
	return out, nil
}

// loadCacheFile installs the document of the cache file.
func (k *KeySet) loadCacheFile(cache cacheFile) error {
	if cache.err != nil {
		return cache.err
	}
	data, mtime := cache.data, cache.mtime
	fetched := mtime
	if mtime.Sub(k.cfg.Now()) > cacheFileSkew {
		// Stamped in the future of the clock (written while it ran ahead,
		// or restored from elsewhere): its age is unknown, so it is stale
		// until the issuer answers rather than trusted until the stamp
		// plus MaxStale.
		fetched = time.Time{}
	}
	if err := k.install(data, fetched, k.cfg.MinRefresh); err != nil {
		return fmt.Errorf("%w: %w", ErrCacheFile, err)
	}
	if k.checkStale(k.current.Load()) != nil {
		k.log.LogAttrs(context.Background(), slog.LevelWarn,
			"remotekeys: the cache file is older than MaxStale or stamped in the future; every lookup fails until the issuer answers",
			slog.Time("modified", mtime), slog.Duration("max_stale", k.cfg.MaxStale))
	}
	return nil
}

// writeFileAtomic writes data to path with mode 0600: a temporary file in
// the same directory, synced, stamped with mtime (the set's fetch time,
// which a shared cache's Age puts before the write: the file's age is the
// set's), then renamed over path.
func writeFileAtomic(path string, data []byte, mtime time.Time) (err error) {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			_ = os.Remove(f.Name())
		}
	}()
	if err = f.Chmod(0o600); err != nil {
		_ = f.Close()
		return err
	}
	if _, err = f.Write(data); err != nil {
		_ = f.Close()
		return err
	}
	if err = f.Sync(); err != nil {
		_ = f.Close()
		return err
	}
	if err = f.Close(); err != nil {
		return err
	}
	if err = os.Chtimes(f.Name(), time.Time{}, mtime); err != nil {
		return err
	}
	return os.Rename(f.Name(), path)
}

// revokedKids reads the "revoked" member of a document that ParseKeySet has
// accepted (one object, no duplicate names, revoked entries are k4.pid).
// A map keeps member names exact, unlike decoding into a struct.
func revokedKids(data []byte) ([]keys.KeyID, error) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(data, &m); err != nil {
		return nil, errors.New("invalid JSON")
	}
	raw, ok := m["revoked"]
	if !ok || string(raw) == "null" {
		return nil, nil
	}
	var ids []keys.KeyID
	if err := json.Unmarshal(raw, &ids); err != nil {
		return nil, errors.New("revoked is not a list of strings")
	}
	return ids, nil
}
