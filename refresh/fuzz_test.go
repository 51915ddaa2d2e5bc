package refresh

import (
	"errors"
	"testing"
	"time"

	"github.com/hallpass/hallpass/keys"
)

// FuzzOpen: Open never panics and accepts only what it sealed.
func FuzzOpen(f *testing.F) {
	k, err := keys.ParseLocalKey("k4.local.cHFyc3R1dnd4eXp7fH1-f4CBgoOEhYaHiImKi4yNjo8")
	if err != nil {
		f.Fatal(err)
	}
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	c, _ := NewCodec(func() time.Time { return now }, k)
	tok, _ := c.Seal(Claims{DeviceID: "dev_a", Counter: 3, IssuedAt: now, ExpiresAt: now.Add(time.Hour)})
	f.Add(tok)
	f.Fuzz(func(t *testing.T, s string) {
		cl, err := c.Open(s)
		if err != nil {
			if !errors.Is(err, ErrInvalid) && !errors.Is(err, ErrExpired) {
				t.Fatalf("unexpected error kind: %v", err)
			}
			return
		}
		if cl.DeviceID == "" {
			t.Fatal("accepted a token without a session id")
		}
	})
}

// FuzzOpenBlob: OpenBlob never panics and opens only what the codec sealed
// (a sealed successor, or one sealed as v4.local before hpsb1).
func FuzzOpenBlob(f *testing.F) {
	k, err := keys.ParseLocalKey("k4.local.cHFyc3R1dnd4eXp7fH1-f4CBgoOEhYaHiImKi4yNjo8")
	if err != nil {
		f.Fatal(err)
	}
	c, _ := NewCodec(time.Now, k)
	blob, _ := c.SealBlob([]byte(`{"a":"b"}`))
	legacy, _ := c.seal([]byte(`{"a":"b"}`), implicitSuccessor)
	f.Add(blob)
	f.Add([]byte(legacy))
	f.Add([]byte(blobMagic))
	f.Add(blob[:len(blob)-1])
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := c.OpenBlob(b)
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("unexpected error kind: %v", err)
			}
			return
		}
		if string(p) != `{"a":"b"}` {
			t.Fatalf("opened something the codec never sealed: %q", p)
		}
	})
}
