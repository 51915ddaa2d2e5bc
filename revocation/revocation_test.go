package revocation_test

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/hallpass/hallpass/revocation"
)

func TestNewEntry(t *testing.T) {
	now := time.Date(2026, 11, 28, 12, 0, 0, 1500, time.UTC) // 1.5 µs
	for _, tc := range []struct {
		name    string
		kind    revocation.Kind
		id      string
		reason  string
		expires bool
		wantErr bool
	}{
		{name: "token", kind: revocation.KindToken, id: "jti", expires: true},
		{name: "device", kind: revocation.KindDevice, id: "dev_1", expires: true},
		{name: "account", kind: revocation.KindAccount, id: "acc_1", expires: true},
		{name: "all", kind: revocation.KindAll},
		{name: "key", kind: revocation.KindKey, id: "k4.pid.x"},
		{name: "all with id", kind: revocation.KindAll, id: "x", wantErr: true},
		{name: "device without id", kind: revocation.KindDevice, wantErr: true},
		{name: "unknown kind", kind: "session", id: "x", wantErr: true},
		{name: "id with space", kind: revocation.KindDevice, id: "a b", wantErr: true},
		{name: "id too long", kind: revocation.KindDevice, id: strings.Repeat("a", revocation.MaxIDLen+1), wantErr: true},
		{name: "reason too long", kind: revocation.KindDevice, id: "d", reason: strings.Repeat("r", revocation.MaxReasonLen+1), wantErr: true},
		{name: "reason not UTF-8", kind: revocation.KindDevice, id: "d", reason: "\xff", wantErr: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e, err := revocation.NewEntry(tc.kind, tc.id, tc.reason, now, 10*time.Minute)
			if tc.wantErr {
				if !errors.Is(err, revocation.ErrInvalidEntry) {
					t.Fatalf("err = %v, want ErrInvalidEntry", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if want := now.Truncate(time.Microsecond).Add(time.Microsecond); !e.Before.Equal(want) {
				t.Fatalf("Before = %v, want %v (rounded up to the µs)", e.Before, want)
			}
			if got := !e.Expires.IsZero(); got != tc.expires {
				t.Fatalf("Expires = %v", e.Expires)
			}
			if tc.expires && !e.Expires.Equal(e.Before.Add(10*time.Minute)) {
				t.Fatalf("Expires = %v, want Before + ttl", e.Expires)
			}
		})
	}
	if _, err := revocation.NewEntry(revocation.KindDevice, "d", "", now, 0); !errors.Is(err, revocation.ErrInvalidEntry) {
		t.Fatalf("ttl 0: %v", err)
	}
}

func TestEntryTTL(t *testing.T) {
	if got := revocation.EntryTTL(revocation.DefaultMaxAccessLifetime, revocation.DefaultLeeway); got != 10*time.Minute+30*time.Second {
		t.Fatalf("EntryTTL = %v", got)
	}
}

// FuzzEntry: Validate never panics on an entry decoded from JSON (the admin
// API's input), and an entry it accepts survives a JSON round trip.
func FuzzEntry(f *testing.F) {
	f.Add(`{"kind":"device","id":"dev_1","before":"2026-11-28T12:00:00Z","created":"2026-11-28T12:00:00Z","expires":"2026-11-28T12:10:30Z"}`)
	f.Add(`{"kind":"all","id":"","before":"2026-11-28T12:00:00Z","created":"2026-11-28T12:00:00Z"}`)
	f.Add(`{"kind":"key","id":"k4.pid.x","created":"2026-11-28T12:00:00Z","reason":"leak"}`)
	f.Fuzz(func(t *testing.T, s string) {
		var e revocation.Entry
		if json.Unmarshal([]byte(s), &e) != nil {
			return
		}
		if e.Validate() != nil {
			return
		}
		b, err := json.Marshal(e)
		if err != nil {
			t.Fatal(err)
		}
		var back revocation.Entry
		if err := json.Unmarshal(b, &back); err != nil {
			t.Fatal(err)
		}
		if err := back.Validate(); err != nil || back.Key() != e.Key() || !back.Before.Equal(e.Before) || !back.Expires.Equal(e.Expires) {
			t.Fatalf("round trip changed %+v into %+v (%v)", e, back, err)
		}
	})
}
