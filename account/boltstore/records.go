package boltstore

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/hallpass/hallpass/account"
)

// Stored accounts, devices and sessions are binary records: a format byte,
// then the fields in a fixed order, each string or byte string as a
// uvarint length and its bytes, each integer as a uvarint, each time as a
// flag byte (0: the zero time, which ends there; 1: set) followed by the
// Unix seconds (varint) and the nanoseconds (uvarint), in UTC. Decoding
// them costs a few allocations instead of a JSON parse, on every refresh.
//
// Records written before format 1 are JSON objects: their first byte is
// '{', which no format byte takes, so they still read; a write replaces
// them with the current format.
//
// Sessions are written in format 1, and their retry digest goes to the
// bucket "session_retry" (device id -> the session counter it was stored
// at, uvarint, then the digest), so that a binary from before retry ids,
// which reads format 1 only, still reads every session after a rollback;
// the counter keeps a digest left behind by such a binary's advance (it
// knows nothing of the bucket) from answering for a later token. Format 2
// (format 1 followed by the digest), which the first binaries with retry
// ids wrote, still reads; a write replaces it with format 1 and the entry.
const (
	formatJSON      = '{'
	formatV1        = 1
	formatSessionV2 = 2
)

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

func appendBytes(b, v []byte) []byte {
	b = binary.AppendUvarint(b, uint64(len(v)))
	return append(b, v...)
}

func appendTime(b []byte, t time.Time) []byte {
	if t.IsZero() {
		return append(b, 0)
	}
	b = append(b, 1)
	b = binary.AppendVarint(b, t.Unix())
	return binary.AppendUvarint(b, uint64(t.Nanosecond()))
}

func appendBool(b []byte, v bool) []byte {
	if v {
		return append(b, 1)
	}
	return append(b, 0)
}

func encodeAccount(a account.Account) []byte {
	n := 16 + len(a.ID) + len(a.Username) + len(a.UsernameKey) + 16 + len(a.RecoverySalt)
	for _, c := range a.RecoveryCodes {
		n += 2 + len(c)
	}
	b := make([]byte, 0, n)
	b = append(b, formatV1)
	b = appendString(b, a.ID)
	b = appendString(b, a.Username)
	b = appendString(b, a.UsernameKey)
	b = appendTime(b, a.Created)
	b = appendBool(b, a.Banned)
	b = appendBytes(b, a.RecoverySalt)
	b = binary.AppendUvarint(b, uint64(len(a.RecoveryCodes)))
	for _, c := range a.RecoveryCodes {
		b = appendBytes(b, c)
	}
	return b
}

func encodeDevice(d account.Device) []byte {
	b := make([]byte, 0, 8+len(d.ID)+len(d.AccountID)+len(d.Name)+len(d.JKT)+3*16)
	b = append(b, formatV1)
	b = appendString(b, d.ID)
	b = appendString(b, d.AccountID)
	b = appendString(b, d.Name)
	b = appendString(b, d.JKT)
	b = appendTime(b, d.Created)
	b = appendTime(b, d.LastUsed)
	return appendTime(b, d.Revoked)
}

func encodeSession(s account.Session) []byte {
	b := make([]byte, 0, 16+len(s.DeviceID)+len(s.AccountID)+len(s.JKT)+5*16+len(s.Successor))
	b = append(b, formatV1)
	b = appendString(b, s.DeviceID)
	b = appendString(b, s.AccountID)
	b = appendString(b, s.JKT)
	b = binary.AppendUvarint(b, s.Counter)
	b = appendTime(b, s.Created)
	b = appendTime(b, s.LastUsed)
	b = appendTime(b, s.Expires)
	b = appendTime(b, s.GraceUntil)
	b = appendTime(b, s.Ended)
	return appendBytes(b, s.Successor) // the retry digest: putSession
}

// encodeRetry is the "session_retry" entry of a session's retry digest.
func encodeRetry(s account.Session) []byte {
	b := binary.AppendUvarint(make([]byte, 0, binary.MaxVarintLen64+len(s.RetryDigest)), s.Counter)
	return append(b, s.RetryDigest...)
}

// retryDigestAt returns the digest of a "session_retry" entry if it was
// stored at the session counter ctr, nil otherwise (an entry that an
// older binary's advance left behind, or unreadable).
func retryDigestAt(raw []byte, ctr uint64) []byte {
	at, n := binary.Uvarint(raw)
	if n <= 0 || at != ctr || len(raw)-n != account.RetryDigestSize {
		return nil
	}
	return bytes.Clone(raw[n:])
}

// reader decodes one binary record; the first problem sticks and every
// later read returns a zero value.
type reader struct {
	b   []byte
	bad bool
}

func (r *reader) uvarint() uint64 {
	if r.bad {
		return 0
	}
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.bad = true
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *reader) varint() int64 {
	if r.bad {
		return 0
	}
	v, n := binary.Varint(r.b)
	if n <= 0 {
		r.bad = true
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *reader) byte() byte {
	if r.bad || len(r.b) == 0 {
		r.bad = true
		return 0
	}
	v := r.b[0]
	r.b = r.b[1:]
	return v
}

// raw returns the next length-prefixed field, aliasing the record (which
// bbolt owns only for the transaction): callers copy it.
func (r *reader) raw() []byte {
	n := r.uvarint()
	if r.bad || n > uint64(len(r.b)) {
		r.bad = true
		return nil
	}
	v := r.b[:n]
	r.b = r.b[n:]
	return v
}

func (r *reader) string() string { return string(r.raw()) }

// bytes copies the next byte string; empty is nil, as JSON's omitempty
// left it.
func (r *reader) bytes() []byte {
	v := r.raw()
	if len(v) == 0 {
		return nil
	}
	return bytes.Clone(v)
}

func (r *reader) bool() bool {
	switch r.byte() {
	case 0:
		return false
	case 1:
		return true
	}
	r.bad = true
	return false
}

func (r *reader) time() time.Time {
	switch r.byte() {
	case 0:
		return time.Time{}
	case 1:
	default:
		r.bad = true
		return time.Time{}
	}
	sec, nsec := r.varint(), r.uvarint()
	if nsec >= uint64(time.Second) {
		r.bad = true
	}
	if r.bad {
		return time.Time{}
	}
	t := time.Unix(sec, int64(nsec)).UTC()
	if t.IsZero() {
		r.bad = true // the zero time has its own flag: one encoding each
	}
	return t
}

// done reports whether the whole record decoded, with nothing left over.
func (r *reader) done(bucket []byte) error {
	if r.bad || len(r.b) != 0 {
		return fmt.Errorf("%w in %s", errCorrupt, bucket)
	}
	return nil
}

// open checks the format byte against the binary formats the record kind
// has (formats): legacy reports a JSON record, and r is positioned after
// the format byte, which it returns.
func open(raw []byte, bucket []byte, formats ...byte) (r reader, format byte, legacy bool, err error) {
	switch {
	case len(raw) == 0:
	case raw[0] == formatJSON:
		return reader{}, formatJSON, true, nil
	case slices.Contains(formats, raw[0]):
		return reader{b: raw[1:]}, raw[0], false, nil
	}
	return reader{}, 0, false, fmt.Errorf("%w in %s: unknown format", errCorrupt, bucket)
}

func decodeJSON[T any](raw []byte, bucket []byte) (T, error) {
	var v T
	if err := json.Unmarshal(raw, &v); err != nil {
		return v, fmt.Errorf("%w in %s", errCorrupt, bucket)
	}
	return v, nil
}

func decodeAccount(raw []byte) (account.Account, error) {
	r, _, legacy, err := open(raw, bucketAccounts, formatV1)
	if err != nil || legacy {
		if legacy {
			return decodeJSON[account.Account](raw, bucketAccounts)
		}
		return account.Account{}, err
	}
	a := account.Account{ID: r.string(), Username: r.string(), UsernameKey: r.string(), Created: r.time(),
		Banned: r.bool(), RecoverySalt: r.bytes()}
	n := r.uvarint()
	if n > uint64(len(r.b)) { // each code takes a byte at least
		r.bad = true
	}
	if !r.bad && n > 0 {
		a.RecoveryCodes = make([][]byte, n)
		for i := range a.RecoveryCodes {
			a.RecoveryCodes[i] = r.bytes()
		}
	}
	if err := r.done(bucketAccounts); err != nil {
		return account.Account{}, err
	}
	return a, nil
}

func decodeDevice(raw []byte) (account.Device, error) {
	r, _, legacy, err := open(raw, bucketDevices, formatV1)
	if err != nil || legacy {
		if legacy {
			return decodeJSON[account.Device](raw, bucketDevices)
		}
		return account.Device{}, err
	}
	d := account.Device{ID: r.string(), AccountID: r.string(), Name: r.string(), JKT: r.string(),
		Created: r.time(), LastUsed: r.time(), Revoked: r.time()}
	if err := r.done(bucketDevices); err != nil {
		return account.Device{}, err
	}
	return d, nil
}

func decodeSession(raw []byte) (account.Session, error) {
	r, format, legacy, err := open(raw, bucketSessions, formatV1, formatSessionV2)
	if err != nil || legacy {
		if legacy {
			return decodeJSON[account.Session](raw, bucketSessions)
		}
		return account.Session{}, err
	}
	s := account.Session{DeviceID: r.string(), AccountID: r.string(), JKT: r.string(), Counter: r.uvarint(),
		Created: r.time(), LastUsed: r.time(), Expires: r.time(), GraceUntil: r.time(), Ended: r.time(),
		Successor: r.bytes()}
	if format == formatSessionV2 {
		s.RetryDigest = r.bytes()
	}
	if err := r.done(bucketSessions); err != nil {
		return account.Session{}, err
	}
	return s, nil
}

// Typed access to the records of one transaction.

func getRecord[T any](t *txn, bucket []byte, key string, decode func([]byte) (T, error)) (T, error) {
	raw := t.get(bucket, key)
	if raw == nil {
		var zero T
		return zero, account.ErrNotFound
	}
	return decode(raw)
}

func getAccount(t *txn, id string) (account.Account, error) {
	return getRecord(t, bucketAccounts, id, decodeAccount)
}

func getDevice(t *txn, id string) (account.Device, error) {
	return getRecord(t, bucketDevices, id, decodeDevice)
}

func getSession(t *txn, deviceID string) (account.Session, error) {
	s, err := getRecord(t, bucketSessions, deviceID, decodeSession)
	if err == nil && s.RetryDigest == nil && s.Ended.IsZero() {
		s.RetryDigest = retryDigestAt(t.get(bucketSessionRetry, deviceID), s.Counter)
	}
	return s, err
}

func putAccount(t *txn, a account.Account) error {
	return t.put(bucketAccounts, a.ID, encodeAccount(a))
}

func putDeviceRecord(t *txn, d account.Device) error {
	return t.put(bucketDevices, d.ID, encodeDevice(d))
}

func putSession(t *txn, s account.Session) error {
	if err := t.put(bucketSessions, s.DeviceID, encodeSession(s)); err != nil {
		return err
	}
	if len(s.RetryDigest) == 0 {
		return t.del(bucketSessionRetry, s.DeviceID)
	}
	return t.put(bucketSessionRetry, s.DeviceID, encodeRetry(s))
}

// The rarer records (username holds, link codes) stay JSON.

func getJSON[T any](t *txn, bucket []byte, key string) (T, error) {
	raw := t.get(bucket, key)
	if raw == nil {
		var zero T
		return zero, account.ErrNotFound
	}
	return decodeJSON[T](raw, bucket)
}

func putJSON(t *txn, bucket []byte, key string, v any) error {
	raw, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return t.put(bucket, key, raw)
}
