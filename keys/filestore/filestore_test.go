package filestore

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hallpass/hallpass/keys"
)

var fastParams = keys.Argon2Params{Memory: 64 << 10, Time: 1, Parallelism: 1}

func protectors(t *testing.T) map[string]func() Protector {
	t.Helper()
	w, err := keys.GenerateWrappingKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	return map[string]func() Protector{
		"password": func() Protector {
			p, err := PasswordWithParams([]byte("correct horse battery"), fastParams, keys.DefaultArgon2Limits)
			if err != nil {
				t.Fatal(err)
			}
			return p
		},
		"wrap-key":  func() Protector { p, _ := WrapKey(w); return p },
		"plaintext": func() Protector { return InsecurePlaintext(slog.New(slog.NewTextHandler(&bytes.Buffer{}, nil))) },
	}
}

func TestInitLoadRotateRevoke(t *testing.T) {
	ctx := context.Background()
	now := time.Date(2026, 11, 28, 10, 0, 0, 0, time.UTC)
	for name, prot := range protectors(t) {
		t.Run(name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "keys")
			st, _ := New(dir, prot(), nil)
			r, err := st.Init(ctx, now)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := st.Init(ctx, now); !errors.Is(err, ErrExists) {
				t.Fatalf("second Init = %v, want ErrExists", err)
			}
			fi, err := os.Stat(filepath.Join(dir, ringFile))
			if err != nil || fi.Mode().Perm() != 0o600 {
				t.Fatalf("ring file mode %v, %v", fi.Mode(), err)
			}
			raw, _ := os.ReadFile(filepath.Join(dir, ringFile))
			secret := r.Current().PlaintextPASERK()
			if (name != "plaintext") == bytes.Contains(raw, []byte(secret)) {
				t.Fatalf("plaintext secret present = %v for %s", bytes.Contains(raw, []byte(secret)), name)
			}
			loaded, err := st.Load(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if !loaded.Current().Equal(r.Current()) {
				t.Fatal("loaded current key differs")
			}
			oldKid := r.Current().ID()
			nextKid := r.KeySet("x").Keys[1].Kid
			r2, err := st.Update(ctx, func(r *keys.Ring) error { return r.Rotate(nil, now.Add(time.Hour)) })
			if err != nil {
				t.Fatal(err)
			}
			if r2.Current().ID() != nextKid {
				t.Fatal("rotate did not promote next")
			}
			pub, err := st.LoadPublic(ctx)
			if err != nil {
				t.Fatal(err)
			}
			doc := pub.KeySet("https://issuer.example")
			if len(doc.Keys) != 3 || doc.Keys[0].Status != keys.StatusCurrent || doc.Keys[2].Kid != oldKid || doc.Keys[2].Status != keys.StatusRetired {
				t.Fatalf("key set after rotate: %+v", doc)
			}
			if _, err := st.Update(ctx, func(r *keys.Ring) error { return r.Revoke(oldKid, nil, now.Add(2*time.Hour)) }); err != nil {
				t.Fatal(err)
			}
			pub, _ = st.LoadPublic(ctx)
			doc = pub.KeySet("https://issuer.example")
			if len(doc.Revoked) != 1 || doc.Revoked[0] != oldKid || len(doc.Keys) != 2 {
				t.Fatalf("key set after revoke: %+v", doc)
			}
			if _, err := st.Load(ctx); err != nil {
				t.Fatalf("load after revoke: %v", err)
			}
			// Refresh-token keys were created with the ring and rotate.
			lk, err := st.LoadLocal(ctx)
			if err != nil || len(lk) != 1 {
				t.Fatalf("LoadLocal = %d, %v", len(lk), err)
			}
			if err := st.RotateLocal(ctx, now.Add(time.Hour), 90*24*time.Hour); err != nil {
				t.Fatal(err)
			}
			lk2, err := st.LoadLocal(ctx)
			if err != nil || len(lk2) != 2 || !lk2[1].Key.Equal(lk[0].Key) || lk2[0].Key.Equal(lk[0].Key) {
				t.Fatalf("after RotateLocal: %d keys, %v", len(lk2), err)
			}
			if err := st.RotateLocal(ctx, now.Add(100*24*time.Hour), 90*24*time.Hour); err != nil {
				t.Fatal(err)
			}
			if lk3, _ := st.LoadLocal(ctx); len(lk3) != 2 {
				t.Fatalf("RotateLocal did not prune: %d keys", len(lk3))
			}
			// No temp files left behind.
			ents, _ := os.ReadDir(dir)
			for _, e := range ents {
				if strings.Contains(e.Name(), ".tmp-") {
					t.Fatalf("temp file left: %s", e.Name())
				}
			}
		})
	}
}

func TestWrongSecretOrProtection(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	p, _ := PasswordWithParams([]byte("correct horse battery"), fastParams, keys.DefaultArgon2Limits)
	st, _ := New(dir, p, nil)
	if _, err := st.Init(ctx, time.Now()); err != nil {
		t.Fatal(err)
	}
	wrong, _ := PasswordWithParams([]byte("wrong horse battery"), fastParams, keys.DefaultArgon2Limits)
	st2, _ := New(dir, wrong, nil)
	if _, err := st2.Load(ctx); !errors.Is(err, keys.ErrUnwrap) {
		t.Fatalf("wrong passphrase: %v", err)
	}
	w, _ := keys.GenerateWrappingKey(nil)
	wp, _ := WrapKey(w)
	st3, _ := New(dir, wp, nil)
	if _, err := st3.Load(ctx); !errors.Is(err, ErrProtection) {
		t.Fatalf("wrong protection: %v", err)
	}
	if _, err := PasswordWithParams([]byte("short"), fastParams, keys.DefaultArgon2Limits); err == nil {
		t.Fatal("short passphrase accepted")
	}
}

// TestWrongSecretNamed: a wrong passphrase and a wrong wrapping key are
// different mistakes with different fixes, so they give different errors
// (both still keys.ErrUnwrap), for the ring and for the refresh-token keys,
// and neither message carries the secret that was tried.
func TestWrongSecretNamed(t *testing.T) {
	ctx := context.Background()
	right, _ := keys.GenerateWrappingKey(nil)
	other, _ := keys.GenerateWrappingKey(nil)
	rightPW, _ := PasswordWithParams([]byte("correct horse battery"), fastParams, keys.DefaultArgon2Limits)
	wrongPW, _ := PasswordWithParams([]byte("wrong horse battery"), fastParams, keys.DefaultArgon2Limits)
	rightWK, _ := WrapKey(right)
	wrongWK, _ := WrapKey(other)
	for _, tc := range []struct {
		name         string
		made, opened Protector
		want, notIs  error
	}{
		{"passphrase", rightPW, wrongPW, ErrWrongPassphrase, ErrWrongWrapKey},
		{"wrap key", rightWK, wrongWK, ErrWrongWrapKey, ErrWrongPassphrase},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			st, _ := New(dir, tc.made, nil)
			if _, err := st.Init(ctx, time.Now()); err != nil {
				t.Fatal(err)
			}
			bad, _ := New(dir, tc.opened, nil)
			_, errRing := bad.Load(ctx)
			_, errLocal := bad.LoadLocal(ctx)
			for what, err := range map[string]error{"Load": errRing, "LoadLocal": errLocal} {
				if !errors.Is(err, tc.want) || !errors.Is(err, keys.ErrUnwrap) || errors.Is(err, tc.notIs) {
					t.Errorf("%s: %v, want %v and keys.ErrUnwrap", what, err, tc.want)
				}
				if strings.Contains(err.Error(), "wrong horse") || strings.Contains(err.Error(), "horse battery") {
					t.Errorf("%s: the error quotes the passphrase: %v", what, err)
				}
			}
		})
	}
}

func TestCorruptAndTampered(t *testing.T) {
	ctx := context.Background()
	w, _ := keys.GenerateWrappingKey(nil)
	wp, _ := WrapKey(w)
	cases := map[string]func(s string) string{
		"not json":      func(string) string { return "{" },
		"unknown field": func(s string) string { return strings.Replace(s, `"format": 1`, `"format": 1, "x": 2`, 1) },
		"bad format":    func(s string) string { return strings.Replace(s, `"format": 1`, `"format": 2`, 1) },
		"truncated":     func(s string) string { return s[:len(s)/2] },
		// A second document after the first (a botched hand edit, two
		// rings pasted together) was ignored: the file read as its first.
		"trailing data": func(s string) string { return s + s },
		"trailing text": func(s string) string { return s + "x\n" },
		"kid mismatch": func(s string) string {
			i := strings.Index(s, `"kid": "k4.pid.`) + len(`"kid": "k4.pid.`)
			b := []byte(s)
			if b[i] == 'A' {
				b[i] = 'B'
			} else {
				b[i] = 'A'
			}
			return string(b)
		},
	}
	for name, mutate := range cases {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			st, _ := New(dir, wp, nil)
			if _, err := st.Init(ctx, time.Now()); err != nil {
				t.Fatal(err)
			}
			path := filepath.Join(dir, ringFile)
			raw, _ := os.ReadFile(path)
			os.WriteFile(path, []byte(mutate(string(raw))), 0o600)
			if _, err := st.Load(ctx); !errors.Is(err, ErrCorrupt) {
				t.Fatalf("Load = %v, want ErrCorrupt", err)
			}
		})
	}
	st, _ := New(t.TempDir(), wp, nil)
	if _, err := st.Load(ctx); !errors.Is(err, ErrNotFound) {
		t.Fatalf("empty dir: %v", err)
	}
}

func TestWriterLock(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	w, _ := keys.GenerateWrappingKey(nil)
	wp, _ := WrapKey(w)
	st, _ := New(dir, wp, nil)
	if _, err := st.Init(ctx, time.Now()); err != nil {
		t.Fatal(err)
	}
	holding := make(chan struct{})
	release := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		st.Update(ctx, func(*keys.Ring) error {
			close(holding)
			<-release
			return nil
		})
	}()
	<-holding
	other, _ := New(dir, wp, nil)
	other.LockTimeout = 50 * time.Millisecond
	if _, err := other.Update(ctx, func(r *keys.Ring) error { return r.Rotate(nil, time.Now()) }); !errors.Is(err, ErrLocked) {
		t.Fatalf("concurrent writer: %v, want ErrLocked", err)
	}
	close(release)
	wg.Wait()
	// Rotations from many goroutines serialise: none is lost. The clock is
	// read under the lock and moves keys.MinNextAge a rotation, so each
	// promotes a next key old enough to sign.
	var wg2 sync.WaitGroup
	var ticks atomic.Int64
	t0 := time.Now()
	for i := 0; i < 5; i++ {
		wg2.Add(1)
		go func() {
			defer wg2.Done()
			s, _ := New(dir, wp, nil)
			if _, err := s.Update(ctx, func(r *keys.Ring) error {
				return r.Rotate(nil, t0.Add(time.Duration(ticks.Add(1))*keys.MinNextAge))
			}); err != nil {
				t.Error(err)
			}
		}()
	}
	wg2.Wait()
	r, _ := st.LoadPublic(ctx)
	if n := len(r.Entries()); n != 2+5 {
		t.Fatalf("after 5 rotations: %d keys, want 7", n)
	}
}

func TestFailedUpdateWritesNothing(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	st, _ := New(dir, InsecurePlaintext(slog.New(slog.NewTextHandler(&bytes.Buffer{}, nil))), nil)
	if _, err := st.Init(ctx, time.Now()); err != nil {
		t.Fatal(err)
	}
	before, _ := os.ReadFile(filepath.Join(dir, ringFile))
	boom := errors.New("boom")
	if _, err := st.Update(ctx, func(r *keys.Ring) error { r.Rotate(nil, time.Now()); return boom }); !errors.Is(err, boom) {
		t.Fatal(err)
	}
	after, _ := os.ReadFile(filepath.Join(dir, ringFile))
	if !bytes.Equal(before, after) {
		t.Fatal("failed update changed the file")
	}
	// A plaintext ring readable by others is refused.
	os.Chmod(filepath.Join(dir, ringFile), 0o644)
	if _, err := st.Load(ctx); !errors.Is(err, ErrInsecureDir) {
		t.Fatalf("world-readable plaintext ring: %v", err)
	}
}

func TestInsecurePlaintextWarns(t *testing.T) {
	var buf bytes.Buffer
	InsecurePlaintext(slog.New(slog.NewTextHandler(&buf, nil)))
	if !strings.Contains(buf.String(), "INSECURE") {
		t.Fatalf("no warning: %q", buf.String())
	}
}
