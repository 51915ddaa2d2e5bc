package filestore

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/hallpass/hallpass/keys"
)

// DefaultPollInterval is how often Watch reads the ring's files.
const DefaultPollInterval = 2 * time.Second

// watched are the files whose change Version reports.
var watched = []string{ringFile, localFile, pepperFile}

// Version returns a fingerprint of the ring's files (ring.json, local.json
// and pepper.json): a hash of their contents, which differs after any
// write, because every write seals its secrets under fresh nonces. It is
// not a counter: compare it for equality only. 0 means none of the files
// exists.
func (s *Store) Version(ctx context.Context) (uint64, error) {
	h := sha256.New()
	found := false
	for _, name := range watched {
		b, err := readLimited(filepath.Join(s.dir, name))
		if errors.Is(err, fs.ErrNotExist) {
			fmt.Fprintf(h, "%s absent\n", name)
			continue
		}
		if err != nil {
			return 0, err
		}
		found = true
		fmt.Fprintf(h, "%s %d\n", name, len(b))
		h.Write(b)
	}
	if !found {
		return 0, nil
	}
	v := binary.BigEndian.Uint64(h.Sum(nil))
	if v == 0 {
		v = 1 // 0 means "nothing stored"
	}
	return v, nil
}

func readLimited(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxFileLen+1))
	if err != nil {
		return nil, fmt.Errorf("filestore: read: %w", err)
	}
	if len(b) > maxFileLen {
		return nil, ErrCorrupt
	}
	return b, nil
}

// LoadVersion is Load with the Version read just before it: a change made
// between the two is reported by the next Watch, so it is never missed
// (at worst the ring is read once more).
func (s *Store) LoadVersion(ctx context.Context) (*keys.Ring, uint64, error) {
	v, err := s.Version(ctx)
	if err != nil {
		return nil, 0, err
	}
	r, err := s.Load(ctx)
	if err != nil {
		return nil, 0, err
	}
	return r, v, nil
}

// Watch calls fn with the new Version each time it differs from the last
// one seen (starting from since), until ctx ends; then it returns
// ctx.Err(). It reads the files every PollInterval, so another process
// writing to the directory (`hallpass keys rotate`, another issuer) is
// seen within that time. Errors reading the files are skipped (the next
// tick tries again). fn runs on Watch's goroutine, one call at a time.
func (s *Store) Watch(ctx context.Context, since uint64, fn func(version uint64)) error {
	poll := s.PollInterval
	if poll <= 0 {
		poll = DefaultPollInterval
	}
	tick := time.NewTicker(poll)
	defer tick.Stop()
	last := since
	for {
		if v, err := s.Version(ctx); err == nil && v != last {
			last = v
			fn(v)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
	}
}
