package ratelimit

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Errors.
var (
	ErrInvalidRule = errors.New("ratelimit: invalid rule")
	// ErrUnavailable: a shared limiter could not reach its store. The
	// caller decides whether to fail open or closed.
	ErrUnavailable = errors.New("ratelimit: limiter unavailable")
)

// Bounds of a Rule with a limit.
const (
	MaxLimit = 1_000_000
	MinPer   = time.Millisecond
	MaxPer   = 400 * 24 * time.Hour
	// MinInterval bounds Per/Limit from below, so the shared limiter can
	// count in whole microseconds.
	MinInterval = time.Microsecond
)

// Rule allows Limit requests per Per. The zero Rule means no limit.
type Rule struct {
	Limit int
	Per   time.Duration
}

// Off is the rule without a limit.
var Off = Rule{}

// Disabled is Off said by name. Where a zero Rule selects a default (the
// nested network budgets of issuer.Config), Disabled turns the limit off;
// everywhere else it behaves exactly as Off. It prints as "off".
var Disabled = Rule{Per: -1}

// Unlimited reports whether r imposes no limit.
func (r Rule) Unlimited() bool { return r.Limit == 0 }

// Validate checks the rule against the package bounds.
func (r Rule) Validate() error {
	switch {
	case r.Limit == 0:
		return nil
	case r.Limit < 0 || r.Limit > MaxLimit:
		return fmt.Errorf("%w: limit must be 1 to %d", ErrInvalidRule, MaxLimit)
	case r.Per < MinPer || r.Per > MaxPer:
		return fmt.Errorf("%w: period must be %v to %v", ErrInvalidRule, MinPer, MaxPer)
	case r.Interval() < MinInterval:
		return fmt.Errorf("%w: more than one request per %v", ErrInvalidRule, MinInterval)
	}
	return nil
}

// Interval is the steady spacing of requests, Per/Limit (0 when unlimited).
func (r Rule) Interval() time.Duration {
	if r.Limit <= 0 {
		return 0
	}
	return r.Per / time.Duration(r.Limit)
}

var units = []struct {
	suffix string
	d      time.Duration
}{{"d", 24 * time.Hour}, {"h", time.Hour}, {"m", time.Minute}, {"s", time.Second}}

// String renders the rule as ParseRule reads it ("30/h", "100/10m", "off").
func (r Rule) String() string {
	if r.Unlimited() {
		return "off"
	}
	for _, u := range units {
		if r.Per >= u.d && r.Per%u.d == 0 {
			if n := r.Per / u.d; n != 1 {
				return strconv.Itoa(r.Limit) + "/" + strconv.FormatInt(int64(n), 10) + u.suffix
			}
			return strconv.Itoa(r.Limit) + "/" + u.suffix
		}
	}
	return strconv.Itoa(r.Limit) + "/" + r.Per.String()
}

// ParseRule reads "N/unit", "N/Kunit" (units s, m, h, d) or "off".
func ParseRule(s string) (Rule, error) {
	s = strings.TrimSpace(s)
	if strings.EqualFold(s, "off") {
		return Disabled, nil // said by name: where zero selects a default, still off
	}
	if len(s) > 32 {
		return Rule{}, fmt.Errorf("%w: too long", ErrInvalidRule)
	}
	count, per, ok := strings.Cut(s, "/")
	if !ok {
		return Rule{}, fmt.Errorf("%w: want N/unit such as 30/h, or off", ErrInvalidRule)
	}
	limit, err := strconv.Atoi(count)
	if err != nil || limit <= 0 || count[0] == '+' {
		return Rule{}, fmt.Errorf("%w: count must be a positive integer (off disables the limit)", ErrInvalidRule)
	}
	if per == "" {
		return Rule{}, fmt.Errorf("%w: missing unit", ErrInvalidRule)
	}
	var unit time.Duration
	for _, u := range units {
		if strings.HasSuffix(per, u.suffix) {
			unit = u.d
			per = strings.TrimSuffix(per, u.suffix)
			break
		}
	}
	if unit == 0 {
		return Rule{}, fmt.Errorf("%w: unit must be s, m, h or d", ErrInvalidRule)
	}
	n := int64(1)
	if per != "" {
		n, err = strconv.ParseInt(per, 10, 64)
		if err != nil || n <= 0 || per[0] == '+' || n > int64(MaxPer/unit) {
			return Rule{}, fmt.Errorf("%w: bad period multiplier", ErrInvalidRule)
		}
	}
	r := Rule{Limit: limit, Per: time.Duration(n) * unit}
	if err := r.Validate(); err != nil {
		return Rule{}, err
	}
	return r, nil
}

// Set implements flag.Value.
func (r *Rule) Set(s string) error {
	v, err := ParseRule(s)
	if err != nil {
		return err
	}
	*r = v
	return nil
}

// MarshalText renders the rule as String does.
func (r Rule) MarshalText() ([]byte, error) { return []byte(r.String()), nil }

// UnmarshalText reads the rule as ParseRule does.
func (r *Rule) UnmarshalText(b []byte) error { return r.Set(string(b)) }

// Decision is the answer for one request.
type Decision struct {
	Allowed bool
	// RetryAfter is how long until a refused request would be allowed (0
	// when allowed).
	RetryAfter time.Duration
	// Remaining is how many more requests would be allowed right now after
	// this one; -1 for an unlimited rule.
	Remaining int
}

// Limiter decides requests. Implementations are safe for concurrent use.
type Limiter interface {
	// Allow counts one request under key against rule at now, if it fits.
	Allow(ctx context.Context, key string, rule Rule, now time.Time) (Decision, error)
}

// Peeker is a Limiter that can also tell what Allow would decide, without
// counting anything. A peek is advice: a concurrent Allow may take the
// budget it saw, so a caller that must not overspend still calls Allow.
// [Memory] and ratelimit/redislimit implement it.
type Peeker interface {
	Limiter
	// Peek returns the decision Allow would make for key under rule at
	// now, and counts nothing.
	Peek(ctx context.Context, key string, rule Rule, now time.Time) (Decision, error)
}

// unlimited is the decision for Off.
var unlimited = Decision{Allowed: true, Remaining: -1}

// gcra decides one request with theoretical arrival time tat (0 for a new
// key), all in one time unit; it returns the decision and the new tat to
// keep: when allowed, and when refused with a tat beyond now+tau+interval,
// which no request leaves behind (each allowed one leaves at most that), so
// the clock has stepped back since: the key then counts as spent now, not
// as spent until the old clock's time, which would refuse it (and answer a
// Retry-After) for as long as the step. interval = Per/Limit,
// tau = (Limit-1)*interval.
func gcra(tat, now, interval, tau int64) (allowed bool, newTAT, retryAfter int64, remaining int) {
	if tat < now {
		tat = now
	}
	if spent := now + tau + interval; tat > spent {
		tat = spent
	}
	ahead := tat - now
	if ahead > tau {
		return false, tat, ahead - tau, 0
	}
	return true, tat + interval, 0, int((tau - ahead) / interval)
}
