package keys

import (
	"errors"
	"testing"
	"time"
)

func statuses(r *Ring) map[Status]int {
	m := map[Status]int{}
	for _, e := range r.Entries() {
		m[e.Status]++
	}
	return m
}

func TestRingLifecycle(t *testing.T) {
	t0 := time.Date(2026, 11, 28, 0, 0, 0, 0, time.UTC)
	r, err := NewRing(nil, t0)
	if err != nil {
		t.Fatal(err)
	}
	if got := statuses(r); got[StatusCurrent] != 1 || got[StatusNext] != 1 || len(got) != 2 {
		t.Fatalf("new ring: %v", got)
	}
	cur := r.Current()
	next := r.Entries()[1]
	if err := r.Rotate(nil, t0.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if r.Current().ID() != next.ID() {
		t.Fatal("next was not promoted")
	}
	e := r.Entries()
	if e[2].ID() != cur.ID() || e[2].Status != StatusRetired || !e[2].Retired.Equal(t0.Add(time.Hour)) {
		t.Fatalf("old current not retired: %+v", e[2])
	}

	tests := []struct {
		name    string
		target  func(r *Ring) KeyID
		wantErr error
		check   func(t *testing.T, r *Ring, kid KeyID)
	}{
		{"revoke current keeps a signer", func(r *Ring) KeyID { return r.Current().ID() }, nil, func(t *testing.T, r *Ring, kid KeyID) {
			if r.Current() == nil || r.Current().ID() == kid {
				t.Fatal("no new current key")
			}
		}},
		{"revoke next makes a new next", func(r *Ring) KeyID { return r.Entries()[1].ID() }, nil, func(t *testing.T, r *Ring, kid KeyID) {
			if statuses(r)[StatusNext] != 1 {
				t.Fatal("no next key")
			}
		}},
		{"revoke retired", func(r *Ring) KeyID { return r.Entries()[2].ID() }, nil, nil},
		{"unknown", func(r *Ring) KeyID { return "k4.pid.unknown" }, ErrKeyNotFound, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rr, _ := RestoreRing(r.Entries())
			kid := tc.target(rr)
			err := rr.Revoke(kid, nil, t0.Add(2*time.Hour))
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("Revoke = %v, want %v", err, tc.wantErr)
			}
			if err != nil {
				return
			}
			doc := rr.KeySet("https://i.example")
			if len(doc.Revoked) != 1 || doc.Revoked[0] != kid {
				t.Fatalf("revoked list %v", doc.Revoked)
			}
			for _, k := range doc.Keys {
				if k.Kid == kid {
					t.Fatal("revoked key still published")
				}
			}
			for _, en := range rr.Entries() {
				if en.ID() == kid && en.Secret != nil {
					t.Fatal("revoked secret kept")
				}
			}
			if err := rr.Revoke(kid, nil, t0); !errors.Is(err, ErrKeyRevoked) {
				t.Fatalf("second revoke: %v", err)
			}
			if tc.check != nil {
				tc.check(t, rr, kid)
			}
			if _, err := RestoreRing(rr.Entries()); err != nil {
				t.Fatalf("ring invalid after revoke: %v", err)
			}
		})
	}

	if n := r.Prune(t0.Add(time.Hour+30*time.Minute), time.Hour); n != 0 {
		t.Fatalf("pruned a key still in use: %d", n)
	}
	if n := r.Prune(t0.Add(3*time.Hour), time.Hour); n != 1 {
		t.Fatalf("Prune = %d, want 1", n)
	}
}

func TestRestoreRingValidation(t *testing.T) {
	r, _ := NewRing(nil, time.Now())
	good := r.Entries()
	other, _ := GenerateSecretKey(nil)
	mut := func(f func(e []RingEntry) []RingEntry) []RingEntry {
		return f(append([]RingEntry(nil), good...))
	}
	for name, entries := range map[string][]RingEntry{
		"no current":     mut(func(e []RingEntry) []RingEntry { e[0].Status = StatusRetired; return e }),
		"two current":    mut(func(e []RingEntry) []RingEntry { e[1].Status = StatusCurrent; return e }),
		"duplicate":      mut(func(e []RingEntry) []RingEntry { return append(e, e[1]) }),
		"bad status":     mut(func(e []RingEntry) []RingEntry { e[1].Status = "bogus"; return e }),
		"secret missing": mut(func(e []RingEntry) []RingEntry { e[0].Secret = nil; return e }),
		"wrong secret":   mut(func(e []RingEntry) []RingEntry { e[0].Secret = other; return e }),
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := RestoreRing(entries); !errors.Is(err, ErrRingInvalid) {
				t.Fatalf("RestoreRing = %v, want ErrRingInvalid", err)
			}
		})
	}
}

func TestRingLookup(t *testing.T) {
	r, _ := NewRing(nil, time.Now())
	cur := r.Current()
	if pk, st, ok := r.Lookup(cur.ID()); !ok || st != StatusCurrent || !pk.Equal(cur.PublicKey()) {
		t.Fatalf("Lookup(current) = %v, %v, %v", pk, st, ok)
	}
	if err := r.Revoke(cur.ID(), nil, time.Now()); err != nil {
		t.Fatal(err)
	}
	if _, st, ok := r.Lookup(cur.ID()); !ok || st != StatusRevoked {
		t.Fatalf("Lookup(revoked) = %v, %v", st, ok)
	}
	if _, _, ok := r.Lookup("k4.pid.unknown"); ok {
		t.Fatal("unknown kid found")
	}
}

// TestRetiredSecretDropped: a retired key never signs again, so the ring
// keeps no secret for it, and a ring restored with one (stored before
// retired secrets were dropped) loses it. Regression test for issue 11,
// finding 5: five rotations left five retired keys with their secrets.
func TestRetiredSecretDropped(t *testing.T) {
	t0 := time.Date(2026, 11, 28, 0, 0, 0, 0, time.UTC)
	r, err := NewRing(nil, t0)
	if err != nil {
		t.Fatal(err)
	}
	old := r.Current()
	for i := range 5 {
		if err := r.Rotate(nil, t0.Add(time.Duration(i+1)*MinNextAge)); err != nil {
			t.Fatal(err)
		}
	}
	retired := 0
	for _, e := range r.Entries() {
		switch {
		case e.Status == StatusRetired:
			retired++
			if e.Secret != nil {
				t.Errorf("retired key %s keeps its secret", e.ID())
			}
		case e.Secret == nil:
			t.Errorf("%s key %s has no secret", e.Status, e.ID())
		}
	}
	if retired != 5 {
		t.Fatalf("%d retired keys, want 5", retired)
	}

	// A ring stored with a retired secret: restored without it.
	legacy := r.Entries()
	for i := range legacy {
		if legacy[i].ID() == old.ID() {
			legacy[i].Secret = old
		}
	}
	rr, err := RestoreRing(legacy)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range rr.Entries() {
		if e.Status == StatusRetired && e.Secret != nil {
			t.Fatalf("RestoreRing kept the secret of retired key %s", e.ID())
		}
	}
	if !rr.Activated().Equal(t0.Add(5 * MinNextAge)) {
		t.Errorf("Activated = %v", rr.Activated())
	}
}

// TestRotateNextTooNew: Rotate promotes a next key only once it has been
// in the ring MinNextAge, so a verifier following the key set knows it
// before its first token. Two rotations within a minute put to signing a
// key made by the first seconds before, which no verifier had fetched. A
// refused rotation leaves the ring as it was. A fresh ring (next made with
// current) rotates at once, and revoking the current key is not held back.
func TestRotateNextTooNew(t *testing.T) {
	t0 := time.Date(2026, 11, 28, 0, 0, 0, 0, time.UTC)
	t1 := t0.Add(time.Hour) // the first rotation
	rotated := func(t *testing.T) *Ring {
		r, err := NewRing(nil, t0)
		if err != nil {
			t.Fatal(err)
		}
		if err := r.Rotate(nil, t1); err != nil {
			t.Fatal(err)
		}
		return r
	}
	for _, tc := range []struct {
		name    string
		ring    func(t *testing.T) *Ring
		op      func(r *Ring) error
		wantErr error
	}{
		{name: "fresh ring rotates at once",
			ring: func(t *testing.T) *Ring { r, _ := NewRing(nil, t0); return r },
			op:   func(r *Ring) error { return r.Rotate(nil, t0) }},
		{name: "second rotation at once",
			ring:    rotated,
			op:      func(r *Ring) error { return r.Rotate(nil, t1) },
			wantErr: ErrNextTooNew},
		{name: "second rotation a minute later",
			ring:    rotated,
			op:      func(r *Ring) error { return r.Rotate(nil, t1.Add(time.Minute)) },
			wantErr: ErrNextTooNew},
		{name: "second rotation just before MinNextAge",
			ring:    rotated,
			op:      func(r *Ring) error { return r.Rotate(nil, t1.Add(MinNextAge-time.Nanosecond)) },
			wantErr: ErrNextTooNew},
		{name: "second rotation after MinNextAge",
			ring: rotated,
			op:   func(r *Ring) error { return r.Rotate(nil, t1.Add(MinNextAge)) }},
		{name: "restored ring keeps the rule",
			ring: func(t *testing.T) *Ring {
				r, err := RestoreRing(rotated(t).Entries())
				if err != nil {
					t.Fatal(err)
				}
				return r
			},
			op:      func(r *Ring) error { return r.Rotate(nil, t1.Add(time.Second)) },
			wantErr: ErrNextTooNew},
		{name: "next key replacing a revoked one",
			ring: func(t *testing.T) *Ring {
				r, _ := NewRing(nil, t0)
				if err := r.Revoke(r.Entries()[1].ID(), nil, t1); err != nil {
					t.Fatal(err)
				}
				return r
			},
			op:      func(r *Ring) error { return r.Rotate(nil, t1.Add(time.Minute)) },
			wantErr: ErrNextTooNew},
		{name: "revoking the current key right after a rotation",
			ring: rotated,
			op:   func(r *Ring) error { return r.Revoke(r.Current().ID(), nil, t1.Add(time.Second)) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := tc.ring(t)
			before := r.Entries()
			cur := r.Current().ID()
			err := tc.op(r)
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("got %v, want %v", err, tc.wantErr)
			}
			after := r.Entries()
			if err != nil {
				if len(after) != len(before) || r.Current().ID() != cur {
					t.Fatalf("a refused rotation changed the ring: %d keys, was %d", len(after), len(before))
				}
				for i := range before {
					if after[i].ID() != before[i].ID() || after[i].Status != before[i].Status {
						t.Fatalf("a refused rotation changed key %s: %s, was %s", before[i].ID(), after[i].Status, before[i].Status)
					}
				}
				return
			}
			if r.Current() == nil || r.Current().ID() == cur {
				t.Fatal("the current key did not change")
			}
			if _, err := RestoreRing(after); err != nil {
				t.Fatalf("ring invalid: %v", err)
			}
		})
	}
}

func TestPrunable(t *testing.T) {
	t0 := time.Date(2026, 11, 28, 0, 0, 0, 0, time.UTC)
	r, _ := NewRing(nil, t0)
	for i := range 3 {
		if err := r.Rotate(nil, t0.Add(time.Duration(i)*time.Hour)); err != nil {
			t.Fatal(err)
		}
	}
	// Retired at t0, t0+1h, t0+2h.
	now := t0.Add(2*time.Hour + DefaultRetiredKeep + time.Second)
	for _, tc := range []struct {
		name string
		now  time.Time
		want int
	}{
		{"none due", t0.Add(DefaultRetiredKeep), 0},
		{"first due", t0.Add(DefaultRetiredKeep + time.Second), 1},
		{"all due", now, 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := r.Prunable(tc.now, DefaultRetiredKeep); got != tc.want {
				t.Fatalf("Prunable = %d, want %d", got, tc.want)
			}
		})
	}
	if n := r.Prune(now, DefaultRetiredKeep); n != 3 || statuses(r)[StatusRetired] != 0 {
		t.Fatalf("Prune = %d, left %v", n, statuses(r))
	}
}
