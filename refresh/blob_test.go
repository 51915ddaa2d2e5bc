package refresh

import (
	"crypto/hmac"
	"crypto/sha256"
	"errors"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/chacha20poly1305"
)

// TestBlobLayout opens a sealed successor by hand, from the layout the
// package doc gives and an HKDF written out here from RFC 5869 (extract
// with an all-zero salt, one expand block), not through blob.go's code.
func TestBlobLayout(t *testing.T) {
	k := newKey(t)
	c, err := NewCodec(time.Now, k)
	if err != nil {
		t.Fatal(err)
	}
	plain := []byte(`{"access_token":"v4.public.x","refresh_token":"v4.local.y"}`)
	sealed, err := c.SealBlob(plain)
	if err != nil {
		t.Fatal(err)
	}
	raw := k.UnsafeBytes()
	prk := hmacSHA256(make([]byte, sha256.Size), raw)
	okm := hmacSHA256(prk, append([]byte(blobLabel), 1))
	aead, err := chacha20poly1305.NewX(okm)
	if err != nil {
		t.Fatal(err)
	}
	kid := string(k.ID())
	head := len(blobMagic) + 1 + len(kid)
	if string(sealed[:len(blobMagic)]) != blobMagic || int(sealed[len(blobMagic)]) != len(kid) || string(sealed[len(blobMagic)+1:head]) != kid {
		t.Fatalf("header %q, want %s, %d, %s", sealed[:head], blobMagic, len(kid), kid)
	}
	nonce := sealed[head : head+24]
	got, err := aead.Open(nil, nonce, sealed[head+24:], append(append([]byte{}, sealed[:head]...), implicitSuccessor...))
	if err != nil || string(got) != string(plain) {
		t.Fatalf("opened by hand: %q, %v", got, err)
	}
	if len(sealed) != head+24+len(plain)+16 {
		t.Fatalf("length %d, want %d", len(sealed), head+24+len(plain)+16)
	}
}

func hmacSHA256(key, msg []byte) []byte {
	m := hmac.New(sha256.New, key)
	m.Write(msg)
	return m.Sum(nil)
}

// TestBlobRejects: any change to a sealed successor, a blob under an
// unknown key, a refresh token, and truncations open as ErrInvalid; a blob
// sealed as v4.local (before hpsb1) still opens.
func TestBlobRejects(t *testing.T) {
	now := time.Now()
	c, _ := NewCodec(func() time.Time { return now }, newKey(t))
	other, _ := NewCodec(func() time.Time { return now }, newKey(t))
	blob, err := c.SealBlob([]byte(`{"a":"b"}`))
	if err != nil {
		t.Fatal(err)
	}
	for i := range blob {
		b := append([]byte(nil), blob...)
		b[i] ^= 0x40
		if _, err := c.OpenBlob(b); !errors.Is(err, ErrInvalid) {
			t.Fatalf("byte %d changed: %v, want ErrInvalid", i, err)
		}
	}
	for i := range blob {
		if _, err := c.OpenBlob(blob[:i]); !errors.Is(err, ErrInvalid) {
			t.Fatalf("cut to %d bytes: %v, want ErrInvalid", i, err)
		}
	}
	if _, err := other.OpenBlob(blob); !errors.Is(err, ErrInvalid) {
		t.Fatalf("another codec's key: %v", err)
	}
	tok, _ := c.Seal(Claims{DeviceID: "dev_x", Counter: 1, IssuedAt: now, ExpiresAt: now.Add(time.Hour)})
	if _, err := c.OpenBlob([]byte(tok)); !errors.Is(err, ErrInvalid) {
		t.Fatalf("refresh token as blob: %v", err)
	}
	if _, err := c.OpenBlob(append(blob, make([]byte, maxBlob)...)); !errors.Is(err, ErrInvalid) {
		t.Fatalf("oversized: %v", err)
	}
	legacy, err := c.seal([]byte(`{"a":"b"}`), implicitSuccessor)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := c.OpenBlob([]byte(legacy)); err != nil || string(got) != `{"a":"b"}` {
		t.Fatalf("v4.local blob: %q, %v", got, err)
	}
}

// TestBlobNonces: every seal draws a fresh nonce.
func TestBlobNonces(t *testing.T) {
	c, _ := NewCodec(time.Now, newKey(t))
	seen := map[string]bool{}
	for range 100 {
		b, err := c.SealBlob([]byte(`{}`))
		if err != nil {
			t.Fatal(err)
		}
		if seen[string(b)] {
			t.Fatal("two seals gave the same blob")
		}
		seen[string(b)] = true
	}
}

// benchBlob is a JSON object of the size of a successor pair.
var benchBlob = []byte(`{"a":"` + strings.Repeat("x", 900) + `"}`)

// BenchmarkSealBlob beside BenchmarkSealBlobV4Local: the successor seal
// before and after hpsb1.
func BenchmarkSealBlob(b *testing.B) {
	c, _ := NewCodec(time.Now, newKey(b))
	blob := benchBlob
	for b.Loop() {
		if _, err := c.SealBlob(blob); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkSealBlobV4Local(b *testing.B) {
	c, _ := NewCodec(time.Now, newKey(b))
	blob := benchBlob
	for b.Loop() {
		if _, err := c.seal(blob, implicitSuccessor); err != nil {
			b.Fatal(err)
		}
	}
}
