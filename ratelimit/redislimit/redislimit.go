package redislimit

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/hallpass/hallpass/internal/redisclient"
	"github.com/hallpass/hallpass/internal/redispipe"
	"github.com/hallpass/hallpass/ratelimit"
)

// Defaults for Options.
const (
	DefaultPrefix    = "hallpass"
	DefaultOpTimeout = 2 * time.Second
)

// Options configure New. The zero value is useful.
type Options struct {
	// Prefix starts every key (default DefaultPrefix); no '{' or '}'.
	Prefix string
	// OpTimeout bounds every call, together with the caller's context
	// (default DefaultOpTimeout).
	OpTimeout time.Duration
	// HashKey keys the digest of limited keys (see the package doc). All
	// nodes sharing a budget must use the same HashKey.
	HashKey []byte
}

// Limiter is a ratelimit.Limiter on Redis.
type Limiter struct {
	c         redis.UniversalClient
	q         *redispipe.Pipe // pipelined with other callers' commands
	prefix    string
	opTimeout time.Duration
	hashKey   []byte
}

var (
	_ ratelimit.Limiter = (*Limiter)(nil)
	_ ratelimit.Peeker  = (*Limiter)(nil)
)

// New returns a Limiter on c. The caller owns c.
func New(c redis.UniversalClient, opts Options) (*Limiter, error) {
	prefix, err := redisclient.Check(c, opts.Prefix, DefaultPrefix)
	if err != nil {
		return nil, fmt.Errorf("redislimit: %w", err)
	}
	opts.Prefix = prefix
	if opts.OpTimeout < 0 {
		return nil, errors.New("redislimit: negative OpTimeout")
	}
	if opts.OpTimeout == 0 {
		opts.OpTimeout = DefaultOpTimeout
	}
	q, err := redispipe.New(c)
	if err != nil {
		return nil, fmt.Errorf("redislimit: %w", err)
	}
	return &Limiter{c: c, q: q, prefix: opts.Prefix, opTimeout: opts.OpTimeout, hashKey: append([]byte(nil), opts.HashKey...)}, nil
}

// gcra: KEYS[1] the key; ARGV now, interval, tau, all in microseconds.
// Returns {allowed, retry after µs, remaining}. Arithmetic stays below 2^53,
// exact in Lua's doubles. A tat beyond now+tau+interval, which no request
// leaves, means this node's clock is behind the one that wrote it (a step
// back, or skew): the key counts as spent now, as ratelimit.Memory does,
// so the Retry-After is at most one interval rather than the step.
var gcra = redis.NewScript(`
local now, interval, tau = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local tat = tonumber(redis.call('GET', KEYS[1]) or '0') or 0
if tat < now then tat = now end
if tat > now + tau + interval then
  tat = now + tau + interval
  redis.call('SET', KEYS[1], string.format('%.0f', tat), 'PX', math.ceil((tat - now) / 1000))
end
local ahead = tat - now
if ahead > tau then return {0, ahead - tau, 0} end
local new = tat + interval
redis.call('SET', KEYS[1], string.format('%.0f', new), 'PX', math.ceil((new - now) / 1000))
return {1, 0, math.floor((tau - ahead) / interval)}
`)

func (l *Limiter) key(key string, rule ratelimit.Rule) string {
	mac := hmac.New(sha256.New, l.hashKey)
	mac.Write([]byte(rule.String()))
	mac.Write([]byte{0})
	mac.Write([]byte(key))
	return l.prefix + ":rl:{" + hex.EncodeToString(mac.Sum(nil)[:16]) + "}"
}

// Allow counts one request under key against rule at now, if it fits.
func (l *Limiter) Allow(ctx context.Context, key string, rule ratelimit.Rule, now time.Time) (ratelimit.Decision, error) {
	if err := rule.Validate(); err != nil {
		return ratelimit.Decision{}, err
	}
	if rule.Unlimited() {
		return ratelimit.Decision{Allowed: true, Remaining: -1}, nil
	}
	if err := ctx.Err(); err != nil {
		return ratelimit.Decision{}, fmt.Errorf("%w: %w", ratelimit.ErrUnavailable, err)
	}
	ctx, cancel := context.WithTimeout(ctx, l.opTimeout)
	defer cancel()
	interval := rule.Interval().Microseconds()
	tau := interval * int64(rule.Limit-1)
	res, err := l.q.Run(ctx, gcra, []string{l.key(key, rule)},
		strconv.FormatInt(now.UnixMicro(), 10), strconv.FormatInt(interval, 10), strconv.FormatInt(tau, 10)).Int64Slice()
	if err != nil {
		return ratelimit.Decision{}, fmt.Errorf("%w: redislimit: %w", ratelimit.ErrUnavailable, err)
	}
	if len(res) != 3 {
		return ratelimit.Decision{}, fmt.Errorf("%w: redislimit: unexpected reply", ratelimit.ErrUnavailable)
	}
	return ratelimit.Decision{
		Allowed:    res[0] == 1,
		RetryAfter: time.Duration(res[1]) * time.Microsecond,
		Remaining:  int(res[2]),
	}, nil
}

// Peek returns the decision Allow would make and counts nothing: one GET,
// the same GCRA in Go, in the script's microseconds.
func (l *Limiter) Peek(ctx context.Context, key string, rule ratelimit.Rule, now time.Time) (ratelimit.Decision, error) {
	if err := rule.Validate(); err != nil {
		return ratelimit.Decision{}, err
	}
	if rule.Unlimited() {
		return ratelimit.Decision{Allowed: true, Remaining: -1}, nil
	}
	if err := ctx.Err(); err != nil {
		return ratelimit.Decision{}, fmt.Errorf("%w: %w", ratelimit.ErrUnavailable, err)
	}
	ctx, cancel := context.WithTimeout(ctx, l.opTimeout)
	defer cancel()
	var tat int64
	v, err := l.c.Get(ctx, l.key(key, rule)).Result()
	switch {
	case errors.Is(err, redis.Nil):
	case err != nil:
		return ratelimit.Decision{}, fmt.Errorf("%w: redislimit: %w", ratelimit.ErrUnavailable, err)
	default:
		if tat, err = strconv.ParseInt(v, 10, 64); err != nil {
			return ratelimit.Decision{}, fmt.Errorf("%w: redislimit: unexpected value", ratelimit.ErrUnavailable)
		}
	}
	nowU := now.UnixMicro()
	interval := rule.Interval().Microseconds()
	tau := interval * int64(rule.Limit-1)
	ahead := min(max(tat, nowU)-nowU, tau+interval) // as the script clamps
	if ahead > tau {
		return ratelimit.Decision{RetryAfter: time.Duration(ahead-tau) * time.Microsecond}, nil
	}
	return ratelimit.Decision{Allowed: true, Remaining: int((tau - ahead) / interval)}, nil
}
