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

// The secrets kept beside the ring, each list newest (current) first, in
// the same format and protection as ring.json; an entry's status is
// "current" or "retired" and its kid is the k4.lid of the stored key.
const (
	// localFile holds the refresh-token keys.
	localFile = "local.json"
	// pepperFile holds the peppers that key the digests of link and
	// recovery codes, each stored as a k4.local key (keys.Pepper).
	pepperFile = "pepper.json"
)

// ErrKeep: RotateLocal was asked to keep the replaced keys for no time.
// Dropping them is a different act, with its own name: ResetLocal.
var ErrKeep = errors.New("filestore: keep must be positive (ResetLocal drops every older refresh-token key)")

func (s *Store) exists(name string) bool {
	_, err := os.Stat(filepath.Join(s.dir, name))
	return err == nil
}

// LoadLocal returns the refresh-token keys, current first.
func (s *Store) LoadLocal(ctx context.Context) ([]keys.LocalKeyEntry, error) {
	return s.loadList(localFile, "refresh-token key")
}

// LoadPeppers returns the peppers, current first.
func (s *Store) LoadPeppers(ctx context.Context) ([]keys.PepperEntry, error) {
	list, err := s.loadList(pepperFile, "pepper")
	if err != nil {
		return nil, err
	}
	out := make([]keys.PepperEntry, 0, len(list))
	for _, e := range list {
		p, err := keys.PepperFromLocalKey(e.Key)
		if err != nil {
			return nil, fmt.Errorf("%w: pepper", ErrCorrupt)
		}
		out = append(out, keys.PepperEntry{Pepper: p, Created: e.Created, Retired: e.Retired})
	}
	return out, nil
}

// loadList reads and opens a list of 32-byte symmetric keys.
func (s *Store) loadList(name, what string) ([]keys.LocalKeyEntry, error) {
	if s.prot == nil {
		return nil, fmt.Errorf("filestore: loading the %ss needs a Protector", what)
	}
	ff, err := s.readFile(filepath.Join(s.dir, name))
	if err != nil {
		return nil, err
	}
	if ff.Protection != s.prot.Protection() {
		return nil, fmt.Errorf("%w: the %ss are protected by %s, not %s", ErrProtection, what, ff.Protection, s.prot.Protection())
	}
	out := make([]keys.LocalKeyEntry, 0, len(ff.Keys))
	for i, fe := range ff.Keys {
		want := keys.StatusRetired
		if i == 0 {
			want = keys.StatusCurrent
		}
		if fe.Status != want {
			return nil, fmt.Errorf("%w: %ss out of order", ErrCorrupt, what)
		}
		k, err := s.prot.OpenLocal(fe.Secret)
		if err != nil {
			return nil, s.openErr(what, fe.Kid, err)
		}
		if k.ID() != fe.Kid {
			return nil, fmt.Errorf("%w: %s does not match its kid", ErrCorrupt, what)
		}
		lk := keys.LocalKeyEntry{Key: k, Created: fe.Created}
		if fe.Retired != nil {
			lk.Retired = *fe.Retired
		}
		out = append(out, lk)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%w: no %s", ErrCorrupt, what)
	}
	return out, nil
}

// saveList seals every key of list (current first) and writes the file
// atomically.
func (s *Store) saveList(name string, list []keys.LocalKeyEntry) error {
	ff := fileFormat{Format: formatV1, Protection: s.prot.Protection()}
	for i, lk := range list {
		sealed, err := s.prot.SealLocal(lk.Key, s.rand)
		if err != nil {
			return fmt.Errorf("filestore: seal key %s: %w", lk.Key.ID(), err)
		}
		st := keys.StatusRetired
		if i == 0 {
			st = keys.StatusCurrent
		}
		ff.Keys = append(ff.Keys, fileEntry{Kid: lk.Key.ID(), Status: st, Secret: sealed, Created: lk.Created.UTC(), Retired: timePtr(lk.Retired)})
	}
	b, err := json.MarshalIndent(ff, "", "  ")
	if err != nil {
		return err
	}
	return writeAtomic(s.dir, name, append(b, '\n'))
}

// changeList loads the list in name under the writer lock (none when the
// file is missing), applies fn and writes its result unless fn says
// there is nothing to write.
func (s *Store) changeList(ctx context.Context, name, what string, fn func(old []keys.LocalKeyEntry) (next []keys.LocalKeyEntry, write bool, err error)) error {
	if s.prot == nil {
		return fmt.Errorf("filestore: changing the %ss needs a Protector", what)
	}
	unlock, err := s.lock(ctx)
	if err != nil {
		return err
	}
	defer unlock()
	return s.changeListLocked(name, what, fn)
}

func (s *Store) changeListLocked(name, what string, fn func(old []keys.LocalKeyEntry) ([]keys.LocalKeyEntry, bool, error)) error {
	var old []keys.LocalKeyEntry
	if s.exists(name) {
		var err error
		if old, err = s.loadList(name, what); err != nil {
			return err
		}
	}
	next, write, err := fn(old)
	if err != nil || !write {
		return err
	}
	return s.saveList(name, next)
}

// retire returns old behind a new current key k made at now: the old
// current key retires at now, and, when keep > 0, retired keys that
// stopped sealing more than keep ago are dropped.
func retire(old []keys.LocalKeyEntry, k *keys.LocalKey, now time.Time, keep time.Duration) []keys.LocalKeyEntry {
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
	return list
}

// RotateLocal adds a new current refresh-token key (creating the file when
// missing): the replaced key stops sealing but still opens the tokens it
// sealed. Retired keys that stopped sealing more than keep ago are
// dropped; keep must be at least the refresh token's absolute lifetime
// (the issuer's RefreshTTL), so that no live token loses its key, and
// positive (ErrKeep).
func (s *Store) RotateLocal(ctx context.Context, now time.Time, keep time.Duration) error {
	if keep <= 0 {
		return ErrKeep
	}
	k, err := keys.GenerateLocalKey(s.rand)
	if err != nil {
		return err
	}
	return s.changeList(ctx, localFile, "refresh-token key", func(old []keys.LocalKeyEntry) ([]keys.LocalKeyEntry, bool, error) {
		return retire(old, k, now.UTC(), keep), true, nil
	})
}

// ResetLocal replaces every refresh-token key by one new key.
//
// SECURITY: every refresh token sealed before stops opening, on every
// issuer as soon as it reloads the keys: every device session ends and each
// device must join again (a link or recovery code). For a real compromise.
func (s *Store) ResetLocal(ctx context.Context, now time.Time) error {
	k, err := keys.GenerateLocalKey(s.rand)
	if err != nil {
		return err
	}
	return s.changeList(ctx, localFile, "refresh-token key", func([]keys.LocalKeyEntry) ([]keys.LocalKeyEntry, bool, error) {
		return []keys.LocalKeyEntry{{Key: k, Created: now.UTC()}}, true, nil
	})
}

// PruneLocal drops the retired refresh-token keys that stopped sealing
// more than keep ago (keep > 0, as for RotateLocal) and returns how many;
// nothing is written when none is due.
func (s *Store) PruneLocal(ctx context.Context, now time.Time, keep time.Duration) (int, error) {
	if keep <= 0 {
		return 0, ErrKeep
	}
	n := 0
	err := s.changeList(ctx, localFile, "refresh-token key", func(old []keys.LocalKeyEntry) ([]keys.LocalKeyEntry, bool, error) {
		if len(old) == 0 {
			return nil, false, ErrNotFound
		}
		kept := old[:1:1]
		for _, o := range old[1:] {
			if !o.Retired.IsZero() && now.Sub(o.Retired) > keep {
				n++
				continue
			}
			kept = append(kept, o)
		}
		return kept, n > 0, nil
	})
	return n, err
}

// RotatePepper adds a new current pepper (creating the file when
// missing). Older peppers are kept for good: recovery codes digested under
// them must keep working.
func (s *Store) RotatePepper(ctx context.Context, now time.Time) error {
	p, err := keys.GeneratePepper(s.rand)
	if err != nil {
		return err
	}
	return s.changeList(ctx, pepperFile, "pepper", func(old []keys.LocalKeyEntry) ([]keys.LocalKeyEntry, bool, error) {
		return retire(old, p.UnsafeLocalKey(), now.UTC(), 0), true, nil
	})
}

// EnsureSecrets creates the refresh-token keys and the pepper when either
// is missing (a ring made before they existed), with the ring's
// protection, and reports what it created. It changes nothing that exists.
func (s *Store) EnsureSecrets(ctx context.Context, now time.Time) (localCreated, pepperCreated bool, err error) {
	if s.prot == nil {
		return false, false, errors.New("filestore: EnsureSecrets needs a Protector")
	}
	unlock, err := s.lock(ctx)
	if err != nil {
		return false, false, err
	}
	defer unlock()
	return s.ensureSecretsLocked(now)
}

func (s *Store) ensureSecretsLocked(now time.Time) (localCreated, pepperCreated bool, err error) {
	now = now.UTC()
	for _, f := range []struct {
		name, what string
		created    *bool
		gen        func() (*keys.LocalKey, error)
	}{
		{localFile, "refresh-token key", &localCreated, func() (*keys.LocalKey, error) { return keys.GenerateLocalKey(s.rand) }},
		{pepperFile, "pepper", &pepperCreated, func() (*keys.LocalKey, error) {
			p, err := keys.GeneratePepper(s.rand)
			if err != nil {
				return nil, err
			}
			return p.UnsafeLocalKey(), nil
		}},
	} {
		if s.exists(f.name) {
			continue
		}
		k, err := f.gen()
		if err != nil {
			return localCreated, pepperCreated, err
		}
		if err := s.saveList(f.name, []keys.LocalKeyEntry{{Key: k, Created: now}}); err != nil {
			return localCreated, pepperCreated, err
		}
		*f.created = true
	}
	return localCreated, pepperCreated, nil
}
