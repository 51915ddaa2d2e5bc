package redisring

import (
	"context"
	"errors"
	"io"
	"maps"
	"strconv"
	"time"
)

// write is one optimistic change of the document of kind ("": the head
// alone): read everything in one MGET, admit it (refusing a rollback),
// let build make the new value at the next version, then store it with a
// new head only if the counter is unchanged, and record it as seen. A
// writer that lost the race reads again and rebuilds, at most MaxAttempts
// times (ErrConflict). Nothing is written when build says so or fails.
func (s *Store) write(ctx context.Context, kind string, replace bool, build func(o observation, version uint64) (val string, write bool, err error)) error {
	ctx, cancel, err := s.begin(ctx)
	if err != nil {
		return err
	}
	defer cancel()
	for attempt := 0; ; attempt++ {
		base := s.g.base()
		snap, err := s.read(ctx)
		if err != nil {
			return err
		}
		o, err := s.admit(base, snap, kind, replace)
		if err != nil {
			return err
		}
		version := snap.counter + 1
		val, write, err := build(o, version)
		if err != nil || !write {
			return err
		}
		var written []string
		if kind != "" {
			written = append(written, kind)
		}
		headVal, err := s.nextHead(o, snap, version, written...)
		if err != nil {
			return err
		}
		if kind == "" {
			val = headVal
		}
		won, err := s.put(ctx, s.docKey(kind), snap.counter, val, headVal)
		if err != nil {
			return err
		}
		if won {
			return s.record(base, version, headVal, kind, val)
		}
		if attempt+1 >= s.maxAttempts {
			return ErrConflict
		}
		if err := s.backoff(ctx, attempt); err != nil {
			return err
		}
	}
}

// nextHead is the head after a write at version of the documents written:
// the head read (o.head) with their versions set. A ring stored before
// heads existed has none: the versions of the other documents are then
// read from the documents themselves.
func (s *Store) nextHead(o observation, snap *snapshot, version uint64, written ...string) (string, error) {
	h := headDoc{Format: formatV1, Kind: kindHead, Version: version, Docs: map[string]uint64{}}
	if o.head != nil {
		h.Docs = maps.Clone(o.head.Docs)
	} else {
		for _, kind := range docKinds {
			val, ok := snap.vals[kind]
			if !ok {
				continue
			}
			d, err := s.open(val, kind)
			if err != nil {
				return "", err
			}
			h.Docs[kind] = d.Version
		}
	}
	for _, kind := range written {
		h.Docs[kind] = version
	}
	return s.sealRaw(&h)
}

// record admits what this node has just written: its versions become the
// node's high-water marks (and the kids a ring revokes stay revoked). It is
// checked against base, the state the write's read was admitted against,
// not the state now: another write of this node (the ring and the secrets
// beside it share one Store) may have been stored and recorded since, at a
// higher version, and this write, already in Redis, is no rollback.
func (s *Store) record(base *nodeState, version uint64, headVal, kind, val string) error {
	h, err := s.openHead(headVal)
	if err != nil {
		return err
	}
	o := observation{counter: version, head: h, kind: kind}
	if kind != "" {
		if o.doc, err = s.open(val, kind); err != nil {
			return err
		}
		o.raw = val
	}
	return s.g.admit(base, o)
}

// put stores val under key and the new head if the version is still
// version, bumps the version and notifies watchers. ok is false when
// another writer won.
func (s *Store) put(ctx context.Context, key string, version uint64, val, headVal string) (ok bool, err error) {
	res, err := putScript.Run(ctx, s.c, []string{key, s.versionKey(), s.headKey()},
		strconv.FormatUint(version, 10), val, s.channel(), headVal).Text()
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
