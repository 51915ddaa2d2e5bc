package boltstore_test

import (
	"path/filepath"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/hallpass/hallpass/revocation"
	"github.com/hallpass/hallpass/revocation/boltstore"
	"github.com/hallpass/hallpass/revocation/storetest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T, cfg storetest.Config) revocation.Store {
		s, err := boltstore.Open(filepath.Join(t.TempDir(), "rev.db"), boltstore.Options{
			Now: cfg.Now, MaxEvents: cfg.MaxEvents, NoSync: true,
		})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	}, storetest.Options{StormSize: 10_000}) // a bbolt commit costs ~1 ms under -race; Redis runs 100,000
}

func TestReopenKeepsStream(t *testing.T) {
	ctx := t.Context()
	path := filepath.Join(t.TempDir(), "rev.db")
	s, err := boltstore.Open(path, boltstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	_, cur, _ := s.Snapshot(ctx)
	e, _ := revocation.NewEntry(revocation.KindKey, "k4.pid.x", "", storetest.NewClock(testNow).Now(), 1)
	if _, err := s.Add(ctx, e); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s, err = boltstore.Open(path, boltstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	evs, _, err := s.Follow(ctx, cur, 10, 0)
	if err != nil || len(evs) != 1 || evs[0].ID != "k4.pid.x" {
		t.Fatalf("Follow after reopen = %+v, %v", evs, err)
	}
}

var testNow = time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)
