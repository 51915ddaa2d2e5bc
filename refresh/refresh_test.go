package refresh

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/hallpass/hallpass/keys"
)

func newKey(t *testing.T) *keys.LocalKey {
	t.Helper()
	k, err := keys.GenerateLocalKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestSealOpen(t *testing.T) {
	now := time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	k1, k2 := newKey(t), newKey(t)
	c, err := NewCodec(clock, k1)
	if err != nil {
		t.Fatal(err)
	}
	in := Claims{DeviceID: "dev_x", Counter: 7, IssuedAt: now, ExpiresAt: now.Add(time.Hour)}
	tok, err := c.Seal(in)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(tok, "dev_x") {
		t.Fatal("token leaks its payload")
	}
	got, err := c.Open(tok)
	if err != nil || got != in {
		t.Fatalf("Open = %+v, %v; want %+v", got, err, in)
	}
	// After rotation the old token still opens; a codec without the key refuses.
	rotated, _ := NewCodec(clock, k2, k1)
	if _, err := rotated.Open(tok); err != nil {
		t.Fatalf("rotated Open: %v", err)
	}
	other, _ := NewCodec(clock, k2)
	if _, err := other.Open(tok); !errors.Is(err, ErrInvalid) {
		t.Fatalf("foreign key: %v", err)
	}
	// Expiry is read from the clock on every call.
	now = now.Add(time.Hour)
	if _, err := c.Open(tok); !errors.Is(err, ErrExpired) {
		t.Fatalf("expired: %v", err)
	}
}

func TestOpenRejects(t *testing.T) {
	now := time.Now()
	c, _ := NewCodec(func() time.Time { return now }, newKey(t))
	good, _ := c.Seal(Claims{DeviceID: "dev_x", Counter: 1, IssuedAt: now, ExpiresAt: now.Add(time.Hour)})
	blob, _ := c.SealBlob([]byte(`{"a":"b"}`))
	flip := []byte(good)
	flip[20] ^= 1
	for name, tok := range map[string]string{
		"empty":         "",
		"public header": "v4.public." + good[len("v4.local."):],
		"v3":            "v3.local." + good[len("v4.local."):],
		"flipped":       string(flip),
		"truncated":     good[:len(good)-10],
		"oversized":     good + strings.Repeat("A", MaxTokenSize),
		"blob as token": string(blob),
		"no footer":     good[:strings.LastIndex(good, ".")],
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := c.Open(tok); !errors.Is(err, ErrInvalid) {
				t.Fatalf("Open = %v, want ErrInvalid", err)
			}
		})
	}
	if _, err := c.OpenBlob([]byte(good)); !errors.Is(err, ErrInvalid) {
		t.Fatalf("token as blob: %v", err)
	}
	if b, err := c.OpenBlob(blob); err != nil || string(b) != `{"a":"b"}` {
		t.Fatalf("OpenBlob = %s, %v", b, err)
	}
}
