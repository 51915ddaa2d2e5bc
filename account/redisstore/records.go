package redisstore

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/hallpass/hallpass/account"
)

var errCorrupt = errors.New("redisstore: corrupt record")

func invalid(what string) error { return fmt.Errorf("%w: %s", account.ErrInvalidRequest, what) }

var (
	minTime = time.Time{}                                              // year 1, the zero time
	maxTime = time.Date(9999, 12, 31, 23, 59, 59, 999999999, time.UTC) // last fixed-width instant
)

// zeroTime is encTime(time.Time{}).
var zeroTime = encTime(time.Time{})

// encTime renders t as 23 digits, YYYYMMDDhhmmss then nanoseconds, in UTC:
// fixed width, so the Lua side can compare it exactly. Instants outside
// years 1..9999 are clamped (they only occur as "never" or "forever").
func encTime(t time.Time) string {
	t = t.UTC()
	if t.Before(minTime) {
		t = minTime
	}
	if t.After(maxTime) {
		t = maxTime
	}
	return t.Format("20060102150405") + fmt.Sprintf("%09d", t.Nanosecond())
}

func decTime(s string) (time.Time, error) {
	if len(s) != 23 {
		return time.Time{}, errCorrupt
	}
	t, err := time.ParseInLocation("20060102150405", s[:14], time.UTC)
	if err != nil {
		return time.Time{}, errCorrupt
	}
	ns, err := strconv.Atoi(s[14:])
	if err != nil || ns < 0 {
		return time.Time{}, errCorrupt
	}
	return t.Add(time.Duration(ns)), nil
}

// group renders field/value pairs as one Lua argument group (count first).
func group(kv ...any) []any { return append([]any{len(kv)}, kv...) }

func flag(b bool) string {
	if b {
		return "1"
	}
	return "0"
}

// accountFields: name_gen counts the account's renames (0 at creation);
// prev_* name the record of the name it left last (see names.go).
func accountFields(a account.Account, op string) []any {
	return group("id", a.ID, "username", a.Username, "username_key", a.UsernameKey,
		"created", encTime(a.Created), "banned", flag(a.Banned), "op", op,
		"recovery_salt", hex.EncodeToString(a.RecoverySalt), "name_gen", "0",
		"prev_tag", "", "prev_gen", "", "prev_until", zeroTime)
}

// hexDigests renders digests as the hex strings the store keeps.
func hexDigests(digests [][]byte) []any {
	out := make([]any, len(digests))
	for i, d := range digests {
		out[i] = hex.EncodeToString(d)
	}
	return out
}

func deviceFields(d account.Device, op string) []any {
	return group("id", d.ID, "account_id", d.AccountID, "name", d.Name, "jkt", d.JKT,
		"created", encTime(d.Created), "last_used", encTime(d.LastUsed), "revoked", encTime(d.Revoked), "op", op)
}

func sessionFields(s account.Session, op string) []any {
	return group("device_id", s.DeviceID, "account_id", s.AccountID, "jkt", s.JKT,
		"counter", strconv.FormatUint(s.Counter, 10), "created", encTime(s.Created),
		"last_used", encTime(s.LastUsed), "expires", encTime(s.Expires),
		"grace_until", encTime(s.GraceUntil), "successor", string(s.Successor),
		"retry_digest", hex.EncodeToString(s.RetryDigest), "retry_counter", strconv.FormatUint(s.Counter, 10), "ended", encTime(s.Ended), "op", op)
}

// decoder reads fields of one hash and remembers the first problem.
type decoder struct {
	m   map[string]string
	err error
}

func (d *decoder) str(k string) string {
	v, ok := d.m[k]
	if !ok && d.err == nil {
		d.err = fmt.Errorf("%w: field %s missing", errCorrupt, k)
	}
	return v
}

func (d *decoder) time(k string) time.Time {
	t, err := decTime(d.str(k))
	if err != nil && d.err == nil {
		d.err = fmt.Errorf("%w: field %s", errCorrupt, k)
	}
	return t
}

func (d *decoder) uint(k string) uint64 {
	n, err := strconv.ParseUint(d.str(k), 10, 64)
	if err != nil && d.err == nil {
		d.err = fmt.Errorf("%w: field %s", errCorrupt, k)
	}
	return n
}

// decAccount decodes an account hash and the members of its recovery set.
func decAccount(m map[string]string, codes []string) (account.Account, error) {
	d := decoder{m: m}
	a := account.Account{ID: d.str("id"), Username: d.str("username"), UsernameKey: d.str("username_key"),
		Created: d.time("created"), Banned: d.str("banned") == "1"}
	if d.err != nil {
		return a, d.err
	}
	salt, err := hex.DecodeString(m["recovery_salt"])
	if err != nil {
		return a, fmt.Errorf("%w: field recovery_salt", errCorrupt)
	}
	if len(salt) > 0 {
		a.RecoverySalt = salt
	}
	for _, c := range codes {
		b, err := hex.DecodeString(c)
		if err != nil {
			return a, fmt.Errorf("%w: recovery code", errCorrupt)
		}
		a.RecoveryCodes = append(a.RecoveryCodes, b)
	}
	slices.SortFunc(a.RecoveryCodes, bytes.Compare)
	return a, nil
}

func decDevice(m map[string]string) (account.Device, error) {
	d := decoder{m: m}
	dev := account.Device{ID: d.str("id"), AccountID: d.str("account_id"), Name: d.str("name"), JKT: d.str("jkt"),
		Created: d.time("created"), LastUsed: d.time("last_used"), Revoked: d.time("revoked")}
	return dev, d.err
}

func decSession(m map[string]string) (account.Session, error) {
	d := decoder{m: m}
	s := account.Session{DeviceID: d.str("device_id"), AccountID: d.str("account_id"), JKT: d.str("jkt"),
		Counter: d.uint("counter"), Created: d.time("created"), LastUsed: d.time("last_used"),
		Expires: d.time("expires"), GraceUntil: d.time("grace_until"), Ended: d.time("ended")}
	if succ := d.str("successor"); succ != "" {
		s.Successor = []byte(succ)
	}
	// Sessions stored before retry ids have no retry_digest: none; one
	// stored at another counter (left by a node before retry ids, which
	// advanced without it) is none too.
	if rd := m["retry_digest"]; rd != "" && m["retry_counter"] == m["counter"] {
		b, err := hex.DecodeString(rd)
		if err != nil {
			return s, fmt.Errorf("%w: field retry_digest", errCorrupt)
		}
		s.RetryDigest = b
	}
	return s, d.err
}

// minTTL is the smallest expiry sent to Redis: PX 0 is an error.
const minTTL = time.Millisecond

// ttlMillis is the Redis expiry, in ms, of a record that ends at end by
// the caller's clock: relative to the caller's now, so that an injected
// clock and Redis's own need not agree.
func ttlMillis(now, end time.Time) int64 {
	d := max(end.Sub(now), minTTL)
	return int64((d + time.Millisecond - 1) / time.Millisecond)
}
