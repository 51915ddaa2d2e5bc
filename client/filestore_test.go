package client_test

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	"github.com/hallpass/hallpass/client"
	"github.com/hallpass/hallpass/keys"
)

// cheap Argon2id costs for tests; production uses keys.DefaultArgon2Params.
var testArgon2 = keys.Argon2Params{Memory: 64 << 10, Time: 1, Parallelism: 1}

func passphraseStore(t *testing.T, path, pw string) *client.FileStore {
	t.Helper()
	p, err := client.PassphraseProtectionWithParams([]byte(pw), testArgon2)
	if err != nil {
		t.Fatal(err)
	}
	s, err := client.NewFileStore(path, p)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func wrapKeyStore(t *testing.T, path string, w *keys.WrappingKey) *client.FileStore {
	t.Helper()
	p, err := client.WrapKeyProtection(w)
	if err != nil {
		t.Fatal(err)
	}
	s, err := client.NewFileStore(path, p)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func sampleState(t *testing.T, alg client.Algorithm) *client.State {
	t.Helper()
	k, err := client.GenerateDeviceKey(alg)
	if err != nil {
		t.Fatal(err)
	}
	return &client.State{
		ServerURL: "https://login.example.com", AccountID: "acc_123", DeviceID: "dev_456", Username: "alice",
		AccessToken: "v4.public.access-token-SECRET", AccessTokenExpiry: time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC),
		RefreshToken: "v4.local.refresh-token-SECRET", DeviceKey: k,
	}
}

// secretForms lists encodings of the key's secret bytes that must not
// appear in the file.
func secretForms(t *testing.T, k crypto.Signer) [][]byte {
	t.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	var raw []byte
	switch k := k.(type) {
	case ed25519.PrivateKey:
		raw = k.Seed()
	case *ecdsa.PrivateKey:
		if raw, err = k.Bytes(); err != nil {
			t.Fatal(err)
		}
	}
	var out [][]byte
	for _, b := range [][]byte{der, raw} {
		out = append(out, b, []byte(base64.StdEncoding.EncodeToString(b)), []byte(base64.RawURLEncoding.EncodeToString(b)), []byte(hex.EncodeToString(b)))
	}
	return out
}

func TestFileStoreRoundTrip(t *testing.T) {
	w, err := keys.GenerateWrappingKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	for _, alg := range []client.Algorithm{client.ES256, client.EdDSA} {
		for _, prot := range []string{"passphrase", "wrapkey"} {
			t.Run(string(alg)+"/"+prot, func(t *testing.T) {
				path := filepath.Join(t.TempDir(), "state.json")
				open := func() *client.FileStore {
					if prot == "passphrase" {
						return passphraseStore(t, path, "correct horse battery staple")
					}
					return wrapKeyStore(t, path, w)
				}
				ctx := context.Background()
				if st, err := open().Load(ctx); st != nil || err != nil {
					t.Fatalf("Load of a missing file: %v, %v", st, err)
				}
				in := sampleState(t, alg)
				s := open()
				if err := s.Save(ctx, in); err != nil {
					t.Fatal(err)
				}
				// Save twice through one store (cached data key), then read
				// with a fresh store (unwraps again).
				in.RefreshToken = "v4.local.second-SECRET"
				if err := s.Save(ctx, in); err != nil {
					t.Fatal(err)
				}
				out, err := open().Load(ctx)
				if err != nil {
					t.Fatal(err)
				}
				if out.ServerURL != in.ServerURL || out.AccountID != in.AccountID || out.DeviceID != in.DeviceID ||
					out.Username != in.Username || out.AccessToken != in.AccessToken || out.RefreshToken != in.RefreshToken ||
					!out.AccessTokenExpiry.Equal(in.AccessTokenExpiry) {
					t.Fatalf("round trip: got %#v", out)
				}
				if !out.DeviceKey.Public().(interface{ Equal(crypto.PublicKey) bool }).Equal(in.DeviceKey.Public()) {
					t.Fatal("device key differs")
				}
				c, err := client.New(out.ServerURL, out.DeviceKey, &client.MemoryStore{})
				if err != nil {
					t.Fatal(err)
				}
				if out.KeyThumbprint != c.KeyThumbprint() {
					t.Fatal("thumbprint not recorded")
				}

				raw, err := os.ReadFile(path)
				if err != nil {
					t.Fatal(err)
				}
				for _, secret := range append(secretForms(t, in.DeviceKey), []byte("SECRET"), []byte("alice"), []byte("acc_123")) {
					if bytes.Contains(raw, secret) {
						t.Fatalf("state file contains plaintext %q", secret)
					}
				}
				if runtime.GOOS != "windows" {
					fi, err := os.Stat(path)
					if err != nil {
						t.Fatal(err)
					}
					if fi.Mode().Perm() != 0o600 {
						t.Fatalf("mode %v, want 0600", fi.Mode().Perm())
					}
				}
				ents, _ := os.ReadDir(filepath.Dir(path))
				if len(ents) != 1 {
					t.Fatalf("%d files in the directory, want only the state file", len(ents))
				}
			})
		}
	}
}

func TestFileStoreRefuses(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	path := filepath.Join(dir, "state.json")
	if err := passphraseStore(t, path, "right").Save(ctx, sampleState(t, client.ES256)); err != nil {
		t.Fatal(err)
	}
	w, _ := keys.GenerateWrappingKey(rand.Reader)

	t.Run("wrong passphrase", func(t *testing.T) {
		if _, err := passphraseStore(t, path, "wrong").Load(ctx); !errors.Is(err, client.ErrStateDecrypt) {
			t.Fatalf("Load: %v, want ErrStateDecrypt", err)
		}
	})
	t.Run("wrapping key for a passphrase file", func(t *testing.T) {
		if _, err := wrapKeyStore(t, path, w).Load(ctx); !errors.Is(err, client.ErrStateDecrypt) {
			t.Fatalf("Load: %v, want ErrStateDecrypt", err)
		}
	})
	t.Run("tampered", func(t *testing.T) {
		// Every single-bit change is refused or (unused low bits of the
		// last base64 character of a field) decodes to the same content.
		path := filepath.Join(t.TempDir(), "state.json")
		in := sampleState(t, client.EdDSA)
		if err := wrapKeyStore(t, path, w).Save(ctx, in); err != nil {
			t.Fatal(err)
		}
		raw, _ := os.ReadFile(path)
		p := filepath.Join(t.TempDir(), "s")
		refused := 0
		for i := range raw {
			mod := bytes.Clone(raw)
			mod[i] ^= 0x01
			os.WriteFile(p, mod, 0o600)
			st, err := wrapKeyStore(t, p, w).Load(ctx)
			if err == nil && (st == nil || st.RefreshToken != in.RefreshToken || st.AccountID != in.AccountID) {
				t.Fatalf("byte %d flipped: altered state accepted", i)
			}
			if err != nil {
				refused++
			}
		}
		if refused < len(raw)*9/10 {
			t.Fatalf("only %d of %d flips refused", refused, len(raw))
		}
	})
	t.Run("hardware key", func(t *testing.T) {
		st := sampleState(t, client.ES256)
		st.DeviceKey = opaqueSigner{st.DeviceKey}
		err := passphraseStore(t, filepath.Join(t.TempDir(), "s"), "x").Save(ctx, st)
		if !errors.Is(err, client.ErrUnsupportedKey) {
			t.Fatalf("Save: %v, want ErrUnsupportedKey", err)
		}
	})
	t.Run("empty passphrase", func(t *testing.T) {
		if _, err := client.PassphraseProtection(nil); err == nil {
			t.Fatal("empty passphrase accepted")
		}
	})
}

// opaqueSigner stands for a non-exportable (hardware) key.
type opaqueSigner struct{ k crypto.Signer }

func (o opaqueSigner) Public() crypto.PublicKey { return o.k.Public() }
func (o opaqueSigner) Sign(r io.Reader, d []byte, opts crypto.SignerOpts) ([]byte, error) {
	return o.k.Sign(r, d, opts)
}

// A hardware key works with the client itself; only FileStore cannot
// keep it.
func TestOpaqueSigner(t *testing.T) {
	k, _ := client.GenerateDeviceKey(client.ES256)
	h := newHarness(t, client.ES256, nil)
	c, err := client.New(h.api.URL, opaqueSigner{k}, &client.MemoryStore{}, client.WithClock(h.clock.Now))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Signup(context.Background(), "hw", ""); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Me(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// The client with a FileStore: a second process (a new client from Open)
// carries on with the saved session.
func TestFileStoreWithClient(t *testing.T) {
	path := filepath.Join(t.TempDir(), "state.json")
	h := newHarness(t, client.EdDSA, passphraseStore(t, path, "pw"))
	h.signup(t)
	c2, err := client.Open(context.Background(), passphraseStore(t, path, "pw"), client.WithClock(h.clock.Now))
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	h.clock.Advance(time.Hour)
	if _, err := c2.Me(context.Background()); err != nil {
		t.Fatal(err)
	}
	if st := saved(t, passphraseStore(t, path, "pw")); st.RefreshToken != h.api.device(t).cur {
		t.Fatal("refreshed state not saved to the file")
	}
}
