package redisstore_test

import (
	"strings"
	"testing"
	"time"

	"github.com/hallpass/hallpass/account"
	"github.com/hallpass/hallpass/account/redisstore"
	"github.com/hallpass/hallpass/internal/redistest"
)

type zeroReader struct{}

func (zeroReader) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

// go-redis re-sends a command whose connection broke, so a script can run
// twice. With a constant operation id every call looks like a re-send of
// the previous one: the repeat must be answered as the first run was.
func TestRetriedWritesAreRecognised(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	s, err := redisstore.New(newClient(t, srv.Addr()), redisstore.Options{Rand: zeroReader{}})
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	acc, dev, sess := fixture(t, "alice")
	for i := range 2 {
		if err := s.CreateAccount(ctx, acc, dev, sess); err != nil {
			t.Fatalf("CreateAccount run %d: %v", i+1, err)
		}
	}
	dev2 := dev
	dev2.ID, _ = account.NewID(account.DevicePrefix, nil)
	sess2 := sess
	sess2.DeviceID = dev2.ID
	for i := range 2 {
		if err := s.AddDevice(ctx, dev2, sess2); err != nil {
			t.Fatalf("AddDevice run %d: %v", i+1, err)
		}
	}
	req := account.RefreshRequest{DeviceID: dev.ID, Counter: 1, Now: time.Now(), Successor: []byte("s2")} // Grace 0
	for i := range 2 {
		res, err := s.Refresh(ctx, req)
		if err != nil || res.Outcome != account.RefreshAdvanced || string(res.Successor) != "s2" {
			t.Fatalf("Refresh run %d: %v %q %v; want advanced s2", i+1, res.Outcome, res.Successor, err)
		}
	}
}

// The id indexes written before a create that then fails are removed, so
// a failed signup leaves nothing behind.
func TestFailedCreateLeavesNoIndex(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	c := newClient(t, srv.Addr())
	s, err := redisstore.New(c, redisstore.Options{Prefix: "hp"})
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	acc, dev, sess := fixture(t, "alice")
	if err := s.CreateAccount(ctx, acc, dev, sess); err != nil {
		t.Fatal(err)
	}
	acc2, dev2, sess2 := fixture(t, "alice")
	if err := s.CreateAccount(ctx, acc2, dev2, sess2); err == nil {
		t.Fatal("second alice created")
	}
	if err := s.SetBanned(ctx, acc.ID, true); err != nil {
		t.Fatal(err)
	}
	dev3, _ := account.NewID(account.DevicePrefix, nil)
	d3, s3 := dev, sess
	d3.ID, s3.DeviceID = dev3, dev3
	if err := s.AddDevice(ctx, d3, s3); err == nil {
		t.Fatal("AddDevice on a banned account succeeded")
	}
	for _, id := range []string{acc2.ID, dev2.ID, dev3} {
		if n := c.Exists(ctx, "hp:{"+id+"}:loc").Val(); n != 0 {
			t.Errorf("index of %s left behind", id)
		}
	}
	for _, id := range []string{acc.ID, dev.ID} {
		if n := c.Exists(ctx, "hp:{"+id+"}:loc").Val(); n != 1 {
			t.Errorf("index of %s missing", id)
		}
	}
	// No username and no raw token text in key names.
	keys := c.Keys(ctx, "*").Val()
	if len(keys) != 7 { // loc x2, name, account, devices, device, session
		t.Errorf("keys = %q", keys)
	}
	for _, k := range keys {
		if strings.Contains(k, "alice") || strings.Contains(k, "jkt") {
			t.Errorf("key %q carries user data", k)
		}
	}
}
