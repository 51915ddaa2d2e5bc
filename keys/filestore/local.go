package filestore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"time"

	"github.com/hallpass/hallpass/keys"
)

// localFile holds the symmetric refresh-token keys, newest (current) first,
// in the same format and protection as ring.json; an entry's status is
// "current" or "retired" and its kid is the k4.lid.
const localFile = "local.json"

func (s *Store) localPath() string { return filepath.Join(s.dir, localFile) }

func (s *Store) localExists() bool {
	_, err := os.Stat(s.localPath())
	return err == nil
}

// LoadLocal returns the refresh-token keys, current first.
func (s *Store) LoadLocal(ctx context.Context) ([]keys.LocalKeyEntry, error) {
	if s.prot == nil {
		return nil, errors.New("filestore: LoadLocal needs a Protector")
	}
	ff, err := s.readFile(s.localPath())
	if err != nil {
		return nil, err
	}
	if ff.Protection != s.prot.Protection() {
		return nil, fmt.Errorf("%w: the refresh-token keys are protected by %s, not %s", ErrProtection, ff.Protection, s.prot.Protection())
	}
	out := make([]keys.LocalKeyEntry, 0, len(ff.Keys))
	for i, fe := range ff.Keys {
		want := keys.StatusRetired
		if i == 0 {
			want = keys.StatusCurrent
		}
		if fe.Status != want {
			return nil, fmt.Errorf("%w: local keys out of order", ErrCorrupt)
		}
		k, err := s.prot.OpenLocal(fe.Secret)
		if err != nil {
			return nil, s.openErr("refresh-token key", fe.Kid, err)
		}
		if k.ID() != fe.Kid {
			return nil, fmt.Errorf("%w: local key does not match its kid", ErrCorrupt)
		}
		lk := keys.LocalKeyEntry{Key: k, Created: fe.Created}
		if fe.Retired != nil {
			lk.Retired = *fe.Retired
		}
		out = append(out, lk)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%w: no local key", ErrCorrupt)
	}
	return out, nil
}

// RotateLocal adds a new current refresh-token key (creating the file when
// missing) and drops retired keys older than keep, which must be at least
// the refresh token's absolute lifetime so no live token loses its key.
func (s *Store) RotateLocal(ctx context.Context, now time.Time, keep time.Duration) error {
	unlock, err := s.lock(ctx)
	if err != nil {
		return err
	}
	defer unlock()
	return s.rotateLocalLocked(now, keep)
}

func (s *Store) rotateLocalLocked(now time.Time, keep time.Duration) error {
	var old []keys.LocalKeyEntry
	if s.localExists() {
		var err error
		if old, err = s.LoadLocal(context.Background()); err != nil {
			return err
		}
	}
	k, err := keys.GenerateLocalKey(s.rand)
	if err != nil {
		return err
	}
	now = now.UTC()
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
	sort.SliceStable(list[1:], func(i, j int) bool { return list[1+i].Created.After(list[1+j].Created) })
	ff := fileFormat{Format: formatV1, Protection: s.prot.Protection()}
	for i, lk := range list {
		sealed, err := s.prot.SealLocal(lk.Key, s.rand)
		if err != nil {
			return fmt.Errorf("filestore: seal local key: %w", err)
		}
		st := keys.StatusRetired
		if i == 0 {
			st = keys.StatusCurrent
		}
		ff.Keys = append(ff.Keys, fileEntry{Kid: lk.Key.ID(), Status: st, Secret: sealed, Created: lk.Created, Retired: timePtr(lk.Retired)})
	}
	b, err := json.MarshalIndent(ff, "", "  ")
	if err != nil {
		return err
	}
	return writeAtomic(s.dir, localFile, append(b, '\n'))
}
