package redisstore

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/hallpass/hallpass/internal/redisclient"
	"github.com/hallpass/hallpass/revocation"
)

// Defaults for Options.
const (
	DefaultPrefix    = "hallpass"
	DefaultOpTimeout = 2 * time.Second
	DefaultMaxEvents = 100_000
	// sweepBatch bounds the expired entries dropped per Add.
	sweepBatch = 256
	// scanBatch is the HSCAN page size of Snapshot.
	scanBatch = 1000
)

// Options configure New. The zero value is useful.
type Options struct {
	// Prefix starts every key (default DefaultPrefix). It must not contain
	// '{' or '}': every key carries the hash tag {rev} so that the scripts
	// run on Redis Cluster.
	Prefix string
	// OpTimeout bounds every operation, together with the caller's
	// context (default DefaultOpTimeout); Follow gets its block on top.
	OpTimeout time.Duration
	// MaxEvents is the stream's retention, trimmed exactly on every Add
	// (default DefaultMaxEvents). A mirror further behind reloads the
	// snapshot.
	MaxEvents int
	// Now is the clock used to drop expired entries (default time.Now).
	Now func() time.Time
	// Rand is the source of stream epochs (default crypto/rand).
	Rand io.Reader
}

// Store is a revocation.Store on Redis or Redis Cluster.
type Store struct {
	c         redis.UniversalClient
	opTimeout time.Duration
	maxEvents int
	now       func() time.Time
	rand      io.Reader

	kEntries, kBefore, kExpiry, kEvents, kEpoch, kSeq string
}

var _ revocation.Store = (*Store)(nil)

// New returns a Store on c. The caller owns c. c must be built with
// ContextTimeoutEnabled, or operations could outlive their deadline.
func New(c redis.UniversalClient, opts Options) (*Store, error) {
	prefix, err := redisclient.Check(c, opts.Prefix, DefaultPrefix)
	if err != nil {
		return nil, fmt.Errorf("redisstore: %w", err)
	}
	opts.Prefix = prefix
	if opts.OpTimeout < 0 || opts.MaxEvents < 0 {
		return nil, errors.New("redisstore: negative option")
	}
	if opts.OpTimeout == 0 {
		opts.OpTimeout = DefaultOpTimeout
	}
	if opts.MaxEvents == 0 {
		opts.MaxEvents = DefaultMaxEvents
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Rand == nil {
		opts.Rand = rand.Reader
	}
	p := opts.Prefix + ":{rev}:"
	return &Store{
		c: c, opTimeout: opts.OpTimeout, maxEvents: opts.MaxEvents, now: opts.Now, rand: opts.Rand,
		kEntries: p + "entries", kBefore: p + "before", kExpiry: p + "expiry", kEvents: p + "events", kEpoch: p + "epoch",
		kSeq: p + "seq",
	}, nil
}

// Keys returns the store's Redis keys (for operators and tests): entries
// hash, before hash, expiry sorted set, events stream, epoch string, event
// counter.
func (s *Store) Keys() []string {
	return []string{s.kEntries, s.kBefore, s.kExpiry, s.kEvents, s.kEpoch, s.kSeq}
}

func unavailable(err error) error {
	return fmt.Errorf("%w: redisstore: %w", revocation.ErrUnavailable, err)
}

// Ping reports whether Redis answers.
func (s *Store) Ping(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, s.opTimeout)
	defer cancel()
	if err := s.c.Ping(ctx).Err(); err != nil {
		return unavailable(err)
	}
	return nil
}

func (s *Store) newEpoch() (string, error) {
	b := make([]byte, 8)
	if _, err := io.ReadFull(s.rand, b); err != nil {
		return "", unavailable(fmt.Errorf("random epoch: %w", err))
	}
	return hex.EncodeToString(b), nil
}

// add drops expired entries, keeps the entry with the later Before, and
// appends the event, in one step. The event carries the stream's epoch
// ("p") and its number ("n": the stream's entries-added once it is
// appended), read from the stream itself (XINFO STREAM) in the same step,
// and a new stream starts at 1; and "q", the id it follows (the stream's
// last-generated-id, "0-0" for a new stream). The number is never taken from the counter
// key: a counter behind the stream (events appended by a node from before
// events were numbered, a counter restored from an older backup) would
// number events as if the ones it missed did not exist, and once those
// were trimmed the next events would seem to follow on from a cursor
// before them. The counter is still written, for nodes that INCR it. The
// number alone does not name the event: after a failover that lost the
// last events, the promoted replica numbers its next ones as the lost ones
// were, and with a clock behind the old master's gives them ids below a
// cursor that XREAD then passes over; "q" tells them apart.
// KEYS: entries, before, expiry, events, epoch, counter.
// ARGV: field, json, before µs, expires µs or +inf, now µs, maxlen, sweep
// limit, new epoch.
// Returns {0, kept json} or {1, stream id}.
var addScript = redis.NewScript(`
if redis.call('SET', KEYS[5], ARGV[8], 'NX') then redis.call('DEL', KEYS[6]) end
local epoch = redis.call('GET', KEYS[5])
local dead = redis.call('ZRANGEBYSCORE', KEYS[3], '-inf', ARGV[5], 'LIMIT', 0, tonumber(ARGV[7]))
if #dead > 0 then
  redis.call('HDEL', KEYS[1], unpack(dead))
  redis.call('HDEL', KEYS[2], unpack(dead))
  redis.call('ZREM', KEYS[3], unpack(dead))
end
local old = redis.call('HGET', KEYS[2], ARGV[1])
if old and tonumber(old) >= tonumber(ARGV[3]) then
  local kept = redis.call('HGET', KEYS[1], ARGV[1])
  if kept then return {0, kept} end
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('HSET', KEYS[2], ARGV[1], ARGV[3])
redis.call('ZADD', KEYS[3], ARGV[4], ARGV[1])
local n, prev = 1, '0-0'
if redis.call('EXISTS', KEYS[4]) == 1 then
  local info = redis.call('XINFO', 'STREAM', KEYS[4])
  for i = 1, #info, 2 do
    if info[i] == 'entries-added' then n = info[i + 1] + 1 end
    if info[i] == 'last-generated-id' then prev = info[i + 1] end
  end
end
redis.call('SET', KEYS[6], n)
local id = redis.call('XADD', KEYS[4], 'MAXLEN', ARGV[6], '*', 'e', ARGV[2], 'p', epoch, 'n', tostring(n), 'q', prev)
return {1, id}
`)

// position reads the stream's identity and counters. An epoch it creates
// drops the event counter of an earlier one (add starts it again).
// KEYS: epoch, events, counter. ARGV: new epoch ("" to not create one).
// Returns {epoch or "", last-generated-id, entries-added, length}.
var positionScript = redis.NewScript(`
if ARGV[1] ~= '' and redis.call('SET', KEYS[1], ARGV[1], 'NX') then redis.call('DEL', KEYS[3]) end
local epoch = redis.call('GET', KEYS[1]) or ''
local last, added, length = '0-0', 0, 0
if redis.call('EXISTS', KEYS[2]) == 1 then
  local info = redis.call('XINFO', 'STREAM', KEYS[2])
  for i = 1, #info, 2 do
    if info[i] == 'last-generated-id' then last = info[i + 1] end
    if info[i] == 'entries-added' then added = info[i + 1] end
    if info[i] == 'length' then length = info[i + 1] end
  end
end
return {epoch, last, tostring(added), tostring(length)}
`)

// Add implements revocation.Store.
func (s *Store) Add(ctx context.Context, e revocation.Entry) (revocation.Entry, error) {
	if err := e.Validate(); err != nil {
		return revocation.Entry{}, err
	}
	e.Before = revocation.CeilMicro(e.Before).UTC()
	e.Created = e.Created.Truncate(time.Microsecond).UTC()
	e.Expires = revocation.CeilMicro(e.Expires).UTC()
	val, err := json.Marshal(e)
	if err != nil {
		return revocation.Entry{}, err
	}
	epoch, err := s.newEpoch()
	if err != nil {
		return revocation.Entry{}, err
	}
	expires := "+inf"
	if !e.Expires.IsZero() {
		expires = strconv.FormatInt(e.Expires.UnixMicro(), 10)
	}
	ctx, cancel := context.WithTimeout(ctx, s.opTimeout)
	defer cancel()
	res, err := addScript.Run(ctx, s.c, []string{s.kEntries, s.kBefore, s.kExpiry, s.kEvents, s.kEpoch, s.kSeq},
		e.Key(), val, e.Before.UnixMicro(), expires, s.now().UnixMicro(), s.maxEvents, sweepBatch, epoch).Slice()
	if err != nil {
		return revocation.Entry{}, unavailable(err)
	}
	if len(res) != 2 {
		return revocation.Entry{}, unavailable(errors.New("unexpected script reply"))
	}
	if n, _ := res[0].(int64); n == 0 {
		kept, _ := res[1].(string)
		var o revocation.Entry
		if err := json.Unmarshal([]byte(kept), &o); err != nil {
			return revocation.Entry{}, unavailable(errors.New("corrupt entry"))
		}
		return o, nil
	}
	return e, nil
}

// A Cursor is "<epoch>/<stream id>/<n>", n being the number of events up to
// and including that id.
//
// The epoch is a random value stored beside the stream and created with it:
// if Redis loses its data (a restart without persistence, a FLUSHALL, a
// failover to an empty replica), the new stream gets a new epoch and old
// cursors are gone, even if its ids have grown past theirs.
//
// n detects trimming: the stream is only ever trimmed from its head and
// never XDEL'd, so the first entries-added - length events are gone, and a
// cursor is gone when n is below that. (Redis 7.0 does not update
// max-deleted-entry-id on trimming, so that field cannot be used.)
func makeCursor(epoch, id string, n uint64) revocation.Cursor {
	return revocation.Cursor(epoch + "/" + id + "/" + strconv.FormatUint(n, 10))
}

func splitCursor(c revocation.Cursor) (epoch, id string, n uint64, err error) {
	if c == "" {
		return "", "0-0", 0, nil
	}
	bad := fmt.Errorf("%w: malformed cursor", revocation.ErrCursorGone)
	parts := strings.Split(string(c), "/")
	if len(parts) != 3 || parts[0] == "" {
		return "", "", 0, bad
	}
	if _, _, err := parseID(parts[1]); err != nil {
		return "", "", 0, bad
	}
	if n, err = strconv.ParseUint(parts[2], 10, 64); err != nil {
		return "", "", 0, bad
	}
	return parts[0], parts[1], n, nil
}

func parseID(id string) (ms, seq uint64, err error) {
	a, b, ok := strings.Cut(id, "-")
	if !ok {
		return 0, 0, errors.New("bad stream id")
	}
	if ms, err = strconv.ParseUint(a, 10, 64); err != nil {
		return 0, 0, err
	}
	if seq, err = strconv.ParseUint(b, 10, 64); err != nil {
		return 0, 0, err
	}
	return ms, seq, nil
}

// idLess reports a < b for valid stream ids.
func idLess(a, b string) bool {
	am, as, _ := parseID(a)
	bm, bs, _ := parseID(b)
	return am < bm || am == bm && as < bs
}

type position struct {
	epoch, last   string
	added, length uint64
}

func (s *Store) position(ctx context.Context, create bool) (position, error) {
	epoch := ""
	if create {
		var err error
		if epoch, err = s.newEpoch(); err != nil {
			return position{}, err
		}
	}
	res, err := positionScript.Run(ctx, s.c, []string{s.kEpoch, s.kEvents, s.kSeq}, epoch).StringSlice()
	if err != nil {
		return position{}, unavailable(err)
	}
	if len(res) != 4 {
		return position{}, unavailable(errors.New("unexpected script reply"))
	}
	p := position{epoch: res[0], last: res[1]}
	var e1, e2 error
	p.added, e1 = strconv.ParseUint(res[2], 10, 64)
	p.length, e2 = strconv.ParseUint(res[3], 10, 64)
	if e1 != nil || e2 != nil || p.length > p.added {
		return position{}, unavailable(errors.New("unexpected stream counters"))
	}
	return p, nil
}

// Snapshot implements revocation.Store. It reads the stream position first,
// then scans the entries: an entry added in between is in the snapshot and
// again in Follow, which is harmless, and none is missed. OpTimeout bounds
// each round trip, not the whole scan, so that a large denylist (1,000
// round trips for 1,000,000 entries) still loads.
func (s *Store) Snapshot(ctx context.Context) ([]revocation.Entry, revocation.Cursor, error) {
	pctx, cancel := context.WithTimeout(ctx, s.opTimeout)
	pos, err := s.position(pctx, true)
	cancel()
	if err != nil {
		return nil, "", err
	}
	now := s.now()
	var out []revocation.Entry
	var cur uint64
	for {
		sctx, cancel := context.WithTimeout(ctx, s.opTimeout)
		kv, next, err := s.c.HScan(sctx, s.kEntries, cur, "", scanBatch).Result()
		cancel()
		if err != nil {
			return nil, "", unavailable(err)
		}
		for i := 1; i < len(kv); i += 2 {
			var e revocation.Entry
			if err := json.Unmarshal([]byte(kv[i]), &e); err != nil {
				return nil, "", unavailable(errors.New("corrupt entry"))
			}
			if !e.Expired(now) {
				out = append(out, e)
			}
		}
		if next == 0 {
			break
		}
		cur = next
	}
	// HSCAN may return an entry twice; keep one.
	out = dedup(out)
	return out, makeCursor(pos.epoch, pos.last, pos.added), nil
}

func dedup(es []revocation.Entry) []revocation.Entry {
	seen := make(map[string]int, len(es))
	out := es[:0]
	for _, e := range es {
		if i, ok := seen[e.Key()]; ok {
			if out[i].Before.Before(e.Before) {
				out[i] = e
			}
			continue
		}
		seen[e.Key()] = len(out)
		out = append(out, e)
	}
	return out
}

// Follow implements revocation.Store with XREAD BLOCK, which returns as soon
// as an event is added. Events that carry the cursor's epoch and number on
// from the cursor without a gap prove by themselves that the stream is the
// cursor's and that nothing after the cursor was trimmed: they are taken
// at once. Otherwise (no event within block, an event written before
// events were numbered, a gap) Follow reads the stream's position and
// checks that the stream is the one the cursor came from and that nothing
// after the cursor was trimmed: the stream is trimmed only from its head,
// so if nothing after the cursor is deleted now, nothing was when XREAD
// ran.
func (s *Store) Follow(ctx context.Context, cursor revocation.Cursor, max int, block time.Duration) ([]revocation.Entry, revocation.Cursor, error) {
	epoch, id, n, err := splitCursor(cursor)
	if err != nil {
		return nil, cursor, err
	}
	if max <= 0 {
		max = revocation.DefaultBatch
	}
	args := &redis.XReadArgs{Streams: []string{s.kEvents, id}, Count: int64(max), Block: -1}
	if block > 0 {
		args.Block = max64(block, time.Millisecond)
	}
	rctx, cancel := context.WithTimeout(ctx, s.opTimeout+max64(block, 0))
	defer cancel()
	streams, err := s.c.XRead(rctx, args).Result()
	if err != nil && !errors.Is(err, redis.Nil) {
		return nil, cursor, unavailable(err)
	}
	var msgs []redis.XMessage
	for _, st := range streams {
		msgs = append(msgs, st.Messages...)
	}
	out, err := decodeEvents(msgs)
	if err != nil {
		return nil, cursor, err
	}
	continuous, broken := numbered(msgs, epoch, id, n)
	if broken {
		return nil, cursor, fmt.Errorf("%w: an event of the cursor's epoch does not follow on from it", revocation.ErrCursorGone)
	}
	if len(out) > 0 && continuous {
		return out, makeCursor(epoch, msgs[len(msgs)-1].ID, n+uint64(len(out))), nil
	}
	pctx, cancel2 := context.WithTimeout(ctx, s.opTimeout)
	defer cancel2()
	pos, err := s.position(pctx, false)
	if err != nil {
		return nil, cursor, err
	}
	switch {
	case epoch != "" && pos.epoch != epoch:
		return nil, cursor, fmt.Errorf("%w: the stream was replaced (Redis lost its data)", revocation.ErrCursorGone)
	case n < pos.added-pos.length:
		return nil, cursor, fmt.Errorf("%w: events after the cursor were trimmed", revocation.ErrCursorGone)
	case idLess(pos.last, id) || n > pos.added:
		return nil, cursor, fmt.Errorf("%w: the cursor is ahead of the stream", revocation.ErrCursorGone)
	}
	if epoch == "" {
		epoch = pos.epoch
	}
	if len(out) == 0 && epoch == "" {
		return nil, cursor, nil
	}
	last := id
	if len(msgs) > 0 {
		last = msgs[len(msgs)-1].ID
	}
	return out, makeCursor(epoch, last, n+uint64(len(out))), nil
}

// decodeEvents decodes the entries of stream messages.
func decodeEvents(msgs []redis.XMessage) ([]revocation.Entry, error) {
	var out []revocation.Entry
	for _, m := range msgs {
		v, _ := m.Values["e"].(string)
		var e revocation.Entry
		if err := json.Unmarshal([]byte(v), &e); err != nil {
			return nil, unavailable(errors.New("corrupt event"))
		}
		out = append(out, e)
	}
	return out, nil
}

// numbered reports whether msgs carry the cursor's epoch, the numbers
// n+1, n+2, ... and each the id of the one before it (the cursor's id for
// the first), in order (continuous: then no event after the cursor is
// missing), and whether one carries the cursor's epoch but another number
// or another id before it than its place after the cursor (broken: events
// after the cursor were lost, such as a stream deleted under its epoch
// and written again, or a failover that lost the cursor's event, which
// the position alone cannot tell).
func numbered(msgs []redis.XMessage, epoch, id string, n uint64) (continuous, broken bool) {
	if epoch == "" {
		return false, false
	}
	continuous = true
	prev := id
	for i, m := range msgs {
		p, _ := m.Values["p"].(string)
		num, ok := m.Values["n"].(string)
		q, hasQ := m.Values["q"].(string)
		switch {
		case p != epoch || !ok:
			continuous = false
		case num != strconv.FormatUint(n+1+uint64(i), 10) || hasQ && q != prev:
			return false, true
		case !hasQ: // numbered by a node from before "q"
			continuous = false
		}
		prev = m.ID
	}
	return continuous, false
}

func max64(a, b time.Duration) time.Duration {
	if a > b {
		return a
	}
	return b
}

// Len is the number of stored entries, expired ones not yet swept included.
func (s *Store) Len() int {
	ctx, cancel := context.WithTimeout(context.Background(), s.opTimeout)
	defer cancel()
	n, err := s.c.HLen(ctx, s.kEntries).Result()
	if err != nil {
		return math.MaxInt
	}
	return int(n)
}
