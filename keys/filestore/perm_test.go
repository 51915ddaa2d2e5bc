package filestore

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/hallpass/hallpass/keys"
)

// The ring's public keys and statuses are not authenticated (only the
// secrets are, by their wrapping): whoever can write ring.json, or replace
// it in its directory, can add a retired key of their own that verifies.
// So the store refuses files and a directory that others may change, a
// file others may read (a wrapped secret invites an offline guess), and a
// symbolic link (its target's directory is not checked), whatever the
// protection.
func TestInsecureFilesRefused(t *testing.T) {
	ctx := context.Background()
	now := time.Date(2026, 11, 28, 10, 0, 0, 0, time.UTC)
	w, err := keys.GenerateWrappingKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	prot, _ := WrapKey(w)
	tests := []struct {
		name   string
		change func(t *testing.T, dir string)
		ok     bool
	}{
		{name: "as written", change: func(*testing.T, string) {}, ok: true},
		{name: "directory readable by group", change: chmod("", 0o750), ok: true},
		{name: "read-only file", change: chmod(ringFile, 0o400), ok: true},
		{name: "ring readable by others", change: chmod(ringFile, 0o644)},
		{name: "ring writable by group", change: chmod(ringFile, 0o620)},
		{name: "refresh keys readable by group", change: chmod(localFile, 0o640)},
		{name: "pepper readable by others", change: chmod(pepperFile, 0o604)},
		{name: "directory writable by others", change: chmod("", 0o777)},
		{name: "directory writable by group", change: chmod("", 0o770)},
		{name: "ring is a symbolic link", change: func(t *testing.T, dir string) {
			other := filepath.Join(t.TempDir(), "ring.json")
			if err := os.Rename(filepath.Join(dir, ringFile), other); err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink(other, filepath.Join(dir, ringFile)); err != nil {
				t.Fatal(err)
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "keys")
			st, _ := New(dir, prot, nil)
			if _, err := st.Init(ctx, now); err != nil {
				t.Fatal(err)
			}
			tc.change(t, dir)
			t.Cleanup(func() { os.Chmod(dir, 0o700) })
			calls := map[string]func() error{
				"Load":        func() error { _, err := st.Load(ctx); return err },
				"LoadPublic":  func() error { _, err := st.LoadPublic(ctx); return err },
				"LoadLocal":   func() error { _, err := st.LoadLocal(ctx); return err },
				"LoadPeppers": func() error { _, err := st.LoadPeppers(ctx); return err },
				"Update": func() error {
					_, err := st.Update(ctx, func(*keys.Ring) error { return nil })
					return err
				},
			}
			refused := 0
			for name, call := range calls {
				err := call()
				switch {
				case tc.ok && err != nil:
					t.Errorf("%s: %v", name, err)
				case !tc.ok && err != nil && !errors.Is(err, ErrInsecureDir):
					t.Errorf("%s = %v, want ErrInsecureDir", name, err)
				case errors.Is(err, ErrInsecureDir):
					refused++
				}
			}
			if !tc.ok && refused == 0 {
				t.Fatal("nothing refused")
			}
		})
	}
}

// Init refuses a directory that others may write to: they could replace
// the ring it writes.
func TestInitRefusesOpenDirectory(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "keys")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o777); err != nil {
		t.Fatal(err)
	}
	w, _ := keys.GenerateWrappingKey(nil)
	prot, _ := WrapKey(w)
	st, _ := New(dir, prot, nil)
	if _, err := st.Init(context.Background(), time.Now()); !errors.Is(err, ErrInsecureDir) {
		t.Fatalf("Init = %v, want ErrInsecureDir", err)
	}
	if st.Exists() {
		t.Fatal("Init wrote a ring")
	}
}

func chmod(name string, mode os.FileMode) func(t *testing.T, dir string) {
	return func(t *testing.T, dir string) {
		t.Helper()
		if err := os.Chmod(filepath.Join(dir, name), mode); err != nil {
			t.Fatal(err)
		}
	}
}
