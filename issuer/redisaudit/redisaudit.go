// Package redisaudit is an issuer.AuditSink that appends every admin call
// to a Redis Stream shared by all issuer nodes, so that one XRANGE shows
// who did what, whatever node served the call.
//
// # Layout
//
// One stream, P:{audit}:admin (P is Options.Prefix, default "hallpass";
// the hash tag keeps it on one Cluster slot). Each entry has the fields
// time (RFC 3339, UTC, nanoseconds), who (the admin key's id, "-" when no
// key matched), action ("METHOD /route/template"), targets (a JSON object
// of ids), status, result ("ok" or the problem code), request_id and
// client_ip, and dropped on the record of a refused call after which the
// node left some out (issuer.AuditRecord.Dropped). Never a key, a token
// or a request body.
//
// Calls refused before an admin key was accepted reach the stream only as
// a sample (issuer.Config.AuditRefusedPerMinute, 60 a minute per node by
// default): junk sent to the admin listener cannot trim the real records
// away.
//
// # Retention
//
// XADD ... MAXLEN ~ Options.MaxLen (default 100000): Redis trims whole
// macro nodes, so the stream holds at least MaxLen entries and a little
// more. Ship the stream elsewhere (or keep the JSON log lines, which the
// issuer always writes) for longer retention.
package redisaudit

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/hallpass/hallpass/issuer"
)

// Defaults of Options.
const (
	DefaultPrefix = "hallpass"
	DefaultMaxLen = 100000
)

// Options configures a Sink. The zero value is usable.
type Options struct {
	// Prefix starts the stream's key (default DefaultPrefix); no braces.
	Prefix string
	// MaxLen is the approximate number of records kept (default
	// DefaultMaxLen).
	MaxLen int64
}

// Sink appends audit records to a Redis Stream.
type Sink struct {
	c      redis.UniversalClient
	key    string
	maxLen int64
}

var _ issuer.AuditSink = (*Sink)(nil)

// New returns a Sink writing through c (which the caller owns).
func New(c redis.UniversalClient, o Options) (*Sink, error) {
	if c == nil {
		return nil, errors.New("redisaudit: nil client")
	}
	if o.Prefix == "" {
		o.Prefix = DefaultPrefix
	}
	if strings.ContainsAny(o.Prefix, "{}") {
		return nil, errors.New("redisaudit: Prefix must not contain braces")
	}
	if o.MaxLen == 0 {
		o.MaxLen = DefaultMaxLen
	}
	if o.MaxLen < 1 {
		return nil, errors.New("redisaudit: MaxLen must be positive")
	}
	return &Sink{c: c, key: o.Prefix + ":{audit}:admin", maxLen: o.MaxLen}, nil
}

// Key is the stream's key.
func (s *Sink) Key() string { return s.key }

// Record implements issuer.AuditSink.
func (s *Sink) Record(ctx context.Context, r issuer.AuditRecord) error {
	targets, err := json.Marshal(r.Targets)
	if err != nil {
		return fmt.Errorf("redisaudit: %w", err)
	}
	values := []any{
		"time", r.Time.UTC().Format(time.RFC3339Nano),
		"who", r.Who,
		"action", r.Action,
		"targets", string(targets),
		"status", strconv.Itoa(r.Status),
		"result", r.Result,
		"request_id", r.RequestID,
		"client_ip", r.ClientIP,
	}
	if r.Dropped > 0 {
		values = append(values, "dropped", strconv.Itoa(r.Dropped))
	}
	err = s.c.XAdd(ctx, &redis.XAddArgs{
		Stream: s.key,
		MaxLen: s.maxLen,
		Approx: true,
		Values: values,
	}).Err()
	if err != nil {
		return fmt.Errorf("redisaudit: XADD: %w", err)
	}
	return nil
}

var _ issuer.AuditReader = (*Sink)(nil)

// Recent implements issuer.AuditReader: the last n entries of the stream,
// newest first (XREVRANGE). An entry whose fields do not parse is
// returned with what did (the stream is shared; a record is never
// dropped for one odd field).
func (s *Sink) Recent(ctx context.Context, n int) ([]issuer.AuditRecord, error) {
	msgs, err := s.c.XRevRangeN(ctx, s.key, "+", "-", int64(n)).Result()
	if err != nil {
		return nil, fmt.Errorf("redisaudit: XREVRANGE: %w", err)
	}
	out := make([]issuer.AuditRecord, 0, len(msgs))
	for _, m := range msgs {
		out = append(out, recordOf(m.Values))
	}
	return out, nil
}

func recordOf(v map[string]any) issuer.AuditRecord {
	str := func(k string) string { s, _ := v[k].(string); return s }
	r := issuer.AuditRecord{
		Who: str("who"), Action: str("action"), Result: str("result"),
		RequestID: str("request_id"), ClientIP: str("client_ip"),
	}
	r.Time, _ = time.Parse(time.RFC3339Nano, str("time"))
	r.Status, _ = strconv.Atoi(str("status"))
	r.Dropped, _ = strconv.Atoi(str("dropped"))
	if t := str("targets"); t != "" && t != "null" {
		_ = json.Unmarshal([]byte(t), &r.Targets)
	}
	return r
}
