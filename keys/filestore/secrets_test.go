package filestore

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hallpass/hallpass/keys"
)

// TestRefreshKeyLifecycle: Init makes one refresh-token key and one pepper;
// RotateLocal adds a key and keeps the replaced one until keep has passed;
// PruneLocal drops it after keep and writes nothing before; ResetLocal
// leaves one key that none of the earlier ones equals; RotatePepper keeps
// every older pepper.
func TestRefreshKeyLifecycle(t *testing.T) {
	ctx := context.Background()
	t0 := time.Date(2026, 11, 28, 10, 0, 0, 0, time.UTC)
	const keep = 90 * 24 * time.Hour
	for name, prot := range protectors(t) {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			st, _ := New(dir, prot(), nil)
			if _, err := st.Init(ctx, t0); err != nil {
				t.Fatal(err)
			}
			first := loadLocal(t, st, 1)
			if err := st.RotateLocal(ctx, t0, 0); !errors.Is(err, ErrKeep) {
				t.Fatalf("RotateLocal(keep 0) = %v, want ErrKeep", err)
			}
			if _, err := st.PruneLocal(ctx, t0, -time.Second); !errors.Is(err, ErrKeep) {
				t.Fatalf("PruneLocal(keep < 0) = %v, want ErrKeep", err)
			}
			if err := st.RotateLocal(ctx, t0.Add(time.Hour), keep); err != nil {
				t.Fatal(err)
			}
			second := loadLocal(t, st, 2)
			if second[0].Key.Equal(first[0].Key) || !second[1].Key.Equal(first[0].Key) || !second[1].Retired.Equal(t0.Add(time.Hour)) {
				t.Fatal("RotateLocal: want a new current key and the old one retired at the rotation")
			}
			before, _ := os.ReadFile(filepath.Join(dir, localFile))
			for _, tc := range []struct {
				name    string
				at      time.Time
				dropped int
				left    int
			}{
				{"before keep", t0.Add(time.Hour + keep), 0, 2},
				{"after keep", t0.Add(time.Hour + keep + time.Second), 1, 1},
				{"nothing left to drop", t0.Add(2 * keep), 0, 1},
			} {
				n, err := st.PruneLocal(ctx, tc.at, keep)
				if err != nil || n != tc.dropped {
					t.Fatalf("%s: PruneLocal = %d, %v; want %d", tc.name, n, err, tc.dropped)
				}
				got := loadLocal(t, st, tc.left)
				if !got[0].Key.Equal(second[0].Key) {
					t.Fatalf("%s: the current key changed", tc.name)
				}
				if tc.name == "before keep" {
					if after, _ := os.ReadFile(filepath.Join(dir, localFile)); !bytes.Equal(before, after) {
						t.Fatal("PruneLocal wrote with nothing to drop")
					}
				}
			}
			if err := st.RotateLocal(ctx, t0.Add(2*time.Hour), keep); err != nil {
				t.Fatal(err)
			}
			if err := st.ResetLocal(ctx, t0.Add(3*time.Hour)); err != nil {
				t.Fatal(err)
			}
			reset := loadLocal(t, st, 1)
			for _, o := range append(first, second...) {
				if reset[0].Key.Equal(o.Key) {
					t.Fatal("ResetLocal kept an older key")
				}
			}

			p1 := loadPeppers(t, st, 1)
			for i := 1; i <= 3; i++ {
				if err := st.RotatePepper(ctx, t0.Add(time.Duration(i)*1000*24*time.Hour)); err != nil {
					t.Fatal(err)
				}
			}
			ps := loadPeppers(t, st, 4)
			if !ps[3].Pepper.Equal(p1[0].Pepper) || ps[0].Pepper.Equal(p1[0].Pepper) || !ps[0].Retired.IsZero() || ps[3].Retired.IsZero() {
				t.Fatal("RotatePepper: want a new current pepper and every older one kept")
			}
		})
	}
}

func loadLocal(t *testing.T, st *Store, n int) []keys.LocalKeyEntry {
	t.Helper()
	l, err := st.LoadLocal(context.Background())
	if err != nil || len(l) != n {
		t.Fatalf("LoadLocal = %d keys, %v; want %d", len(l), err, n)
	}
	return l
}

func loadPeppers(t *testing.T, st *Store, n int) []keys.PepperEntry {
	t.Helper()
	p, err := st.LoadPeppers(context.Background())
	if err != nil || len(p) != n {
		t.Fatalf("LoadPeppers = %d, %v; want %d", len(p), err, n)
	}
	return p
}

// TestEnsureSecrets: a ring made before refresh-token keys or peppers
// existed gets what it lacks, and nothing that exists is changed.
func TestEnsureSecrets(t *testing.T) {
	ctx := context.Background()
	w, _ := keys.GenerateWrappingKey(nil)
	prot, _ := WrapKey(w)
	for _, tc := range []struct {
		name                    string
		remove                  []string
		wantLocal, wantPepper   bool
		unchangedLocal, unchPep bool
	}{
		{name: "ring only", remove: []string{localFile, pepperFile}, wantLocal: true, wantPepper: true},
		{name: "no pepper", remove: []string{pepperFile}, wantPepper: true, unchangedLocal: true},
		{name: "no refresh keys", remove: []string{localFile}, wantLocal: true, unchPep: true},
		{name: "complete", unchangedLocal: true, unchPep: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			st, _ := New(dir, prot, nil)
			if _, err := st.Init(ctx, time.Now()); err != nil {
				t.Fatal(err)
			}
			for _, f := range tc.remove {
				os.Remove(filepath.Join(dir, f))
			}
			localBefore, _ := os.ReadFile(filepath.Join(dir, localFile))
			pepperBefore, _ := os.ReadFile(filepath.Join(dir, pepperFile))
			l, p, err := st.EnsureSecrets(ctx, time.Now())
			if err != nil || l != tc.wantLocal || p != tc.wantPepper {
				t.Fatalf("EnsureSecrets = %v, %v, %v; want %v, %v", l, p, err, tc.wantLocal, tc.wantPepper)
			}
			loadLocal(t, st, 1)
			loadPeppers(t, st, 1)
			localAfter, _ := os.ReadFile(filepath.Join(dir, localFile))
			pepperAfter, _ := os.ReadFile(filepath.Join(dir, pepperFile))
			if tc.unchangedLocal != bytes.Equal(localBefore, localAfter) || tc.unchPep != bytes.Equal(pepperBefore, pepperAfter) {
				t.Fatal("EnsureSecrets changed a file that existed, or did not write a missing one")
			}
			if l, p, err := st.EnsureSecrets(ctx, time.Now()); err != nil || l || p {
				t.Fatalf("second EnsureSecrets = %v, %v, %v; want nothing created", l, p, err)
			}
		})
	}
}

// TestNoSecretInFiles: no refresh-token key or pepper appears unwrapped in
// the directory's files, in any encoding, under a wrapping key or a
// passphrase; the plaintext development ring shows that the search finds
// them when they are there.
func TestNoSecretInFiles(t *testing.T) {
	ctx := context.Background()
	for name, prot := range protectors(t) {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			st, _ := New(dir, prot(), nil)
			if _, err := st.Init(ctx, time.Now()); err != nil {
				t.Fatal(err)
			}
			if err := st.RotateLocal(ctx, time.Now(), time.Hour); err != nil {
				t.Fatal(err)
			}
			if err := st.RotatePepper(ctx, time.Now()); err != nil {
				t.Fatal(err)
			}
			var raws [][]byte
			for _, l := range loadLocal(t, st, 2) {
				raws = append(raws, l.Key.UnsafeBytes())
			}
			for _, p := range loadPeppers(t, st, 2) {
				raws = append(raws, p.Pepper.UnsafeLocalKey().UnsafeBytes())
			}
			var all []byte
			ents, _ := os.ReadDir(dir)
			for _, e := range ents {
				b, _ := os.ReadFile(filepath.Join(dir, e.Name()))
				all = append(all, b...)
			}
			found := 0
			for _, raw := range raws {
				for _, enc := range encodings(raw) {
					if bytes.Contains(all, []byte(enc)) {
						found++
						break
					}
				}
			}
			if name == "plaintext" {
				if found != len(raws) {
					t.Fatalf("the search found %d of %d plaintext keys: it does not work", found, len(raws))
				}
				return
			}
			if found != 0 {
				t.Fatalf("%d secrets appear unwrapped in the ring's files", found)
			}
		})
	}
}

// encodings are the ways a key could be written out.
func encodings(raw []byte) []string {
	return []string{
		string(raw), hex.EncodeToString(raw), strings.ToUpper(hex.EncodeToString(raw)),
		base64.RawURLEncoding.EncodeToString(raw), base64.StdEncoding.EncodeToString(raw),
		base64.RawStdEncoding.EncodeToString(raw),
	}
}

// TestVersionWatch: two Store values on one directory (two processes)
// agree on the Version; a write through one is reported by the other's
// Watch, which stops when its context ends.
func TestVersionWatch(t *testing.T) {
	ctx := context.Background()
	w, _ := keys.GenerateWrappingKey(nil)
	prot, _ := WrapKey(w)
	dir := t.TempDir()
	a, _ := New(dir, prot, nil)
	b, _ := New(dir, prot, nil)
	if v, err := a.Version(ctx); err != nil || v != 0 {
		t.Fatalf("Version of an empty directory = %d, %v; want 0", v, err)
	}
	if _, err := a.Init(ctx, time.Now()); err != nil {
		t.Fatal(err)
	}
	_, va, err := a.LoadVersion(ctx)
	if err != nil || va == 0 {
		t.Fatalf("LoadVersion = %d, %v", va, err)
	}
	if vb, _ := b.Version(ctx); vb != va {
		t.Fatal("two stores on one directory disagree on the version")
	}
	b.PollInterval = 5 * time.Millisecond
	wctx, cancel := context.WithCancel(ctx)
	seen := make(chan uint64, 16)
	done := make(chan error, 1)
	go func() { done <- b.Watch(wctx, va, func(v uint64) { seen <- v }) }()
	for i, change := range []func() error{
		func() error { return a.RotateLocal(ctx, time.Now(), time.Hour) },
		func() error { return a.RotatePepper(ctx, time.Now()) },
		func() error {
			_, err := a.Update(ctx, func(r *keys.Ring) error { return r.Rotate(nil, time.Now()) })
			return err
		},
	} {
		if err := change(); err != nil {
			t.Fatal(err)
		}
		want, _ := a.Version(ctx)
		select {
		case v := <-seen:
			if v != want || v == va {
				t.Fatalf("change %d: Watch reported %d, want %d", i, v, want)
			}
			va = v
		case <-time.After(5 * time.Second):
			t.Fatalf("change %d not reported", i)
		}
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("Watch = %v, want context.Canceled", err)
	}
}
