package refresh

import (
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"aidanwoods.dev/go-paseto"

	"github.com/hallpass/hallpass/keys"
)

func newKey(t testing.TB) *keys.LocalKey {
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

// TestRekey: after Rekey the new current key seals; the keys given as
// previous still open what they sealed; a key left out no longer opens
// (that is how every session is ended at once); a failed Rekey changes
// nothing.
func TestRekey(t *testing.T) {
	now := time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	k1, k2, k3 := newKey(t), newKey(t), newKey(t)
	cl := Claims{DeviceID: "dev_x", Counter: 1, IssuedAt: now, ExpiresAt: now.Add(time.Hour)}
	c, err := NewCodec(clock, k1)
	if err != nil {
		t.Fatal(err)
	}
	old, _ := c.Seal(cl)
	oldBlob, _ := c.SealBlob([]byte(`{"a":1}`))
	for _, tc := range []struct {
		name          string
		current       *keys.LocalKey
		previous      []*keys.LocalKey
		wantErr       bool
		wantIDs       []keys.KeyID
		oldOpens      bool
		sealsUnderKid keys.KeyID
	}{
		{name: "rotate, keep old", current: k2, previous: []*keys.LocalKey{k1}, wantIDs: []keys.KeyID{k2.ID(), k1.ID()}, oldOpens: true, sealsUnderKid: k2.ID()},
		{name: "duplicate ids collapse", current: k2, previous: []*keys.LocalKey{k2, k1}, wantIDs: []keys.KeyID{k2.ID(), k1.ID()}, oldOpens: true, sealsUnderKid: k2.ID()},
		{name: "nil current refused", current: nil, wantErr: true, wantIDs: []keys.KeyID{k2.ID(), k1.ID()}, oldOpens: true, sealsUnderKid: k2.ID()},
		{name: "nil previous refused", current: k3, previous: []*keys.LocalKey{nil}, wantErr: true, wantIDs: []keys.KeyID{k2.ID(), k1.ID()}, oldOpens: true, sealsUnderKid: k2.ID()},
		{name: "end every session", current: k3, wantIDs: []keys.KeyID{k3.ID()}, oldOpens: false, sealsUnderKid: k3.ID()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := c.Rekey(tc.current, tc.previous...)
			if (err != nil) != tc.wantErr {
				t.Fatalf("Rekey = %v, want error %v", err, tc.wantErr)
			}
			if got := c.KeyIDs(); !slices.Equal(got, tc.wantIDs) {
				t.Fatalf("KeyIDs = %v, want %v", got, tc.wantIDs)
			}
			_, errTok := c.Open(old)
			_, errBlob := c.OpenBlob(oldBlob)
			if tc.oldOpens && (errTok != nil || errBlob != nil) {
				t.Fatalf("old token: %v, old blob: %v; want both to open", errTok, errBlob)
			}
			if !tc.oldOpens && (!errors.Is(errTok, ErrInvalid) || !errors.Is(errBlob, ErrInvalid)) {
				t.Fatalf("old token: %v, old blob: %v; want ErrInvalid", errTok, errBlob)
			}
			fresh, err := c.Seal(cl)
			if err != nil {
				t.Fatal(err)
			}
			if kid := footerKid(t, fresh); kid != tc.sealsUnderKid {
				t.Fatalf("sealed under %s, want %s", kid, tc.sealsUnderKid)
			}
			if _, err := c.Open(fresh); err != nil {
				t.Fatalf("fresh token: %v", err)
			}
		})
	}
}

func footerKid(t *testing.T, tok string) keys.KeyID {
	t.Helper()
	raw, err := paseto.NewParser().UnsafeParseFooter(paseto.V4Local, tok)
	if err != nil {
		t.Fatal(err)
	}
	var f footer
	if err := json.Unmarshal(raw, &f); err != nil {
		t.Fatal(err)
	}
	return f.Kid
}

// TestRekeyConcurrent: Seal and Open while the keys change (go test
// -race): every token sealed opens under the set that holds its key.
func TestRekeyConcurrent(t *testing.T) {
	now := time.Now()
	k1, k2 := newKey(t), newKey(t)
	c, _ := NewCodec(func() time.Time { return now }, k1, k2)
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				tok, err := c.Seal(Claims{DeviceID: "d", IssuedAt: now, ExpiresAt: now.Add(time.Hour)})
				if err != nil {
					t.Error(err)
					return
				}
				if _, err := c.Open(tok); err != nil {
					t.Error("a token sealed under k1 or k2 did not open:", err)
					return
				}
			}
		}()
	}
	for i := range 200 {
		if i%2 == 0 {
			c.Rekey(k1, k2)
		} else {
			c.Rekey(k2, k1)
		}
	}
	close(stop)
	wg.Wait()
}

// TestSnapshotIgnoresRekey: a snapshot keeps the keys it was taken with,
// so one refresh opens and seals under one key set even when the codec is
// rekeyed meanwhile (an end of every session must not let a token opened
// under a dropped key be resealed under the new one).
func TestSnapshotIgnoresRekey(t *testing.T) {
	old, err := keys.GenerateLocalKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	fresh, err := keys.GenerateLocalKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	c, err := NewCodec(time.Now, old)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := c.Seal(Claims{DeviceID: "dev_x", IssuedAt: time.Now(), ExpiresAt: time.Now().Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	snap := c.Snapshot()
	if err := c.Rekey(fresh); err != nil { // old dropped: every session ends
		t.Fatal(err)
	}
	if _, err := c.Open(tok); err == nil {
		t.Fatal("the rekeyed codec still opens a token of the dropped key")
	}
	if _, err := snap.Open(tok); err != nil {
		t.Fatalf("the snapshot lost its keys: %v", err)
	}
	next, err := snap.Seal(Claims{DeviceID: "dev_x", IssuedAt: time.Now(), ExpiresAt: time.Now().Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Open(next); err == nil {
		t.Fatal("the snapshot sealed under the new key set")
	}
}
