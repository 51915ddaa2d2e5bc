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
