package boltstore_test

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hallpass/hallpass/account"
	"github.com/hallpass/hallpass/account/boltstore"
)

// flipCtx is a context whose Err turns to DeadlineExceeded when expire is
// called but whose Done never closes, so its caller cannot abandon a
// queued operation: only the check inside the transaction can refuse it.
type flipCtx struct {
	context.Context
	expired atomic.Bool
}

func (c *flipCtx) Err() error {
	if c.expired.Load() {
		return context.DeadlineExceeded
	}
	return nil
}

func (c *flipCtx) expire() { c.expired.Store(true) }

type fixture struct {
	acc  account.Account
	dev  account.Device
	sess account.Session
}

var bt0 = time.Date(2030, 1, 2, 3, 4, 5, 6, time.UTC)

func newFixture(t *testing.T, name string) fixture {
	t.Helper()
	accID, devID := mustID(t, account.AccountPrefix), mustID(t, account.DevicePrefix)
	return fixture{
		acc:  account.Account{ID: accID, Username: name, UsernameKey: name, Created: bt0},
		dev:  account.Device{ID: devID, AccountID: accID, Name: "phone", JKT: "jkt-" + devID, Created: bt0, LastUsed: bt0},
		sess: account.Session{DeviceID: devID, AccountID: accID, JKT: "jkt-" + devID, Counter: 1, Created: bt0, LastUsed: bt0, Expires: bt0.Add(time.Hour)},
	}
}

func (fx fixture) create(ctx context.Context, s *boltstore.Store) error {
	return s.CreateAccount(ctx, fx.acc, fx.dev, fx.sess)
}

func linkDigest(seed string) []byte {
	h := sha256.Sum256([]byte(seed))
	return h[:]
}

// TestBatchFailuresStayAlone queues operations that succeed and
// operations that fail in every way an operation can fail behind one
// stalled commit, so that they all share the next transaction, and checks
// that each failure fails alone: it changes nothing, and the others
// commit, seeing the state it would have left.
func TestBatchFailuresStayAlone(t *testing.T) {
	s, err := boltstore.Open(filepath.Join(t.TempDir(), "a.db"), boltstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	bg := context.Background()
	alice := newFixture(t, "alice")
	if err := alice.create(bg, s); err != nil {
		t.Fatal(err)
	}
	// Two link codes: x expires at +10 min, y at +15 min.
	for i, seed := range []string{"x", "y"} {
		created := bt0.Add(time.Duration(i) * 5 * time.Minute)
		lc := account.LinkCode{Digest: linkDigest(seed), AccountID: alice.acc.ID, DeviceID: alice.dev.ID, Created: created, Expires: created.Add(10 * time.Minute)}
		if err := s.CreateLinkCode(bg, lc, 5, created); err != nil {
			t.Fatal(err)
		}
	}

	release := boltstore.HoldWriter(s)
	released := false
	defer func() {
		if !released {
			release()
		}
	}()
	commits := boltstore.Commits(s)
	first := stallFirst(t, s)

	type result struct {
		err      error
		res      account.RefreshResult
		panicked any
	}
	var queued []chan result
	enqueue := func(fn func() (account.RefreshResult, error)) <-chan result {
		ch := make(chan result, 1)
		n := boltstore.Queued(s)
		go func() {
			var r result
			defer func() {
				r.panicked = recover()
				ch <- r
			}()
			r.res, r.err = fn()
		}()
		waitQueued(t, s, n+1)
		queued = append(queued, ch)
		return ch
	}
	noRes := func(err error) (account.RefreshResult, error) { return account.RefreshResult{}, err }

	bob, bobAgain, carol, dave, erin, frank := newFixture(t, "bob"), newFixture(t, "bob"), newFixture(t, "carol"),
		newFixture(t, "dave"), newFixture(t, "erin"), newFixture(t, "frank")
	later := &flipCtx{Context: bg}
	cancelled, cancel := context.WithCancel(bg)
	boom := errors.New("boom")

	rBob := enqueue(func() (account.RefreshResult, error) { return noRes(bob.create(bg, s)) })
	// The name bob's signup claimed earlier in the same transaction.
	rBobAgain := enqueue(func() (account.RefreshResult, error) { return noRes(bobAgain.create(bg, s)) })
	// Fails after writing: the transaction is rolled back and run again
	// without it.
	rDirty := enqueue(func() (account.RefreshResult, error) { return noRes(boltstore.WriteThen(bg, s, "dirty", boom, false)) })
	rCarol := enqueue(func() (account.RefreshResult, error) { return noRes(carol.create(bg, s)) })
	// Single use within one transaction: the second refresh with the
	// same token is the grace retry and gets the first one's successor.
	refreshReq := account.RefreshRequest{DeviceID: alice.dev.ID, Counter: 1, Now: bt0.Add(time.Minute), Grace: time.Minute, Successor: []byte("s2")}
	rAdvance := enqueue(func() (account.RefreshResult, error) { return s.Refresh(bg, refreshReq) })
	retry := refreshReq
	retry.Successor = []byte("s2-other")
	rGrace := enqueue(func() (account.RefreshResult, error) { return s.Refresh(bg, retry) })
	// Its caller's deadline passes while it waits: checked when its turn
	// comes, inside the transaction.
	rDave := enqueue(func() (account.RefreshResult, error) { return noRes(dave.create(later, s)) })
	// x has expired, y is live and maxLive is 1: ErrTooMany, and x is
	// not dropped by a refused create.
	z := account.LinkCode{Digest: linkDigest("z"), AccountID: alice.acc.ID, DeviceID: alice.dev.ID, Created: bt0.Add(12 * time.Minute), Expires: bt0.Add(20 * time.Minute)}
	rTooMany := enqueue(func() (account.RefreshResult, error) { return noRes(s.CreateLinkCode(bg, z, 1, z.Created)) })
	rPanic := enqueue(func() (account.RefreshResult, error) { return noRes(boltstore.WriteThen(bg, s, "panic", boom, true)) })
	rErin := enqueue(func() (account.RefreshResult, error) { return noRes(erin.create(bg, s)) })
	// Cancelled while queued: its caller returns at once, and the
	// committer skips it.
	rFrank := enqueue(func() (account.RefreshResult, error) { return noRes(frank.create(cancelled, s)) })

	later.expire()
	cancel()
	if r := <-rFrank; !errors.Is(r.err, context.Canceled) || !errors.Is(r.err, account.ErrUnavailable) {
		t.Fatalf("cancelled while queued: %v, want ErrUnavailable and context.Canceled before the commit", r.err)
	}
	release()
	released = true
	if err := <-first; err != nil {
		t.Fatalf("Ping: %v", err)
	}

	check := func(name string, ch <-chan result, want error) result {
		t.Helper()
		r := <-ch
		if r.panicked != nil {
			if want != nil {
				t.Fatalf("%s panicked: %v", name, r.panicked)
			}
			return r
		}
		if want == nil && r.err != nil || want != nil && !errors.Is(r.err, want) {
			t.Fatalf("%s: %v, want %v", name, r.err, want)
		}
		return r
	}
	check("bob", rBob, nil)
	check("bob again", rBobAgain, account.ErrUsernameTaken)
	if r := check("dirty", rDirty, boom); !errors.Is(r.err, account.ErrUnavailable) {
		t.Fatalf("an operation failing on an unexpected error: %v, want ErrUnavailable", r.err)
	}
	check("carol", rCarol, nil)
	if r := check("advance", rAdvance, nil); r.res.Outcome != account.RefreshAdvanced || string(r.res.Successor) != "s2" {
		t.Fatalf("first refresh: %v %q", r.res.Outcome, r.res.Successor)
	}
	if r := check("grace", rGrace, nil); r.res.Outcome != account.RefreshGrace || string(r.res.Successor) != "s2" {
		t.Fatalf("second refresh: %v %q, want grace s2", r.res.Outcome, r.res.Successor)
	}
	if r := check("dave", rDave, context.DeadlineExceeded); !errors.Is(r.err, account.ErrUnavailable) {
		t.Fatalf("deadline passed in the queue: %v, want ErrUnavailable", r.err)
	}
	check("too many", rTooMany, account.ErrTooMany)
	if r := <-rPanic; r.panicked != boom {
		t.Fatalf("panicking operation: panicked %v, err %v; want the panic raised in its caller", r.panicked, r.err)
	}
	check("erin", rErin, nil)
	if got := boltstore.Commits(s) - commits; got != 2 {
		t.Fatalf("%d commits, want 2: the stalled one and one for the %d queued operations", got, len(queued))
	}

	// The successes are stored, the failures left nothing.
	for _, fx := range []fixture{alice, bob, carol, erin} {
		got, err := s.GetAccountByUsername(bg, fx.acc.UsernameKey)
		if err != nil || got.ID != fx.acc.ID {
			t.Fatalf("%s: %+v, %v", fx.acc.Username, got, err)
		}
		if _, err := s.GetSession(bg, fx.dev.ID); err != nil {
			t.Fatalf("%s's session: %v", fx.acc.Username, err)
		}
	}
	for _, fx := range []fixture{bobAgain, dave, frank} {
		if _, err := s.GetAccount(bg, fx.acc.ID); !errors.Is(err, account.ErrNotFound) {
			t.Fatalf("failed signup %s stored: %v", fx.acc.ID, err)
		}
		if _, err := s.GetDevice(bg, fx.dev.ID); !errors.Is(err, account.ErrNotFound) {
			t.Fatalf("failed signup's device stored: %v", err)
		}
	}
	for _, key := range []string{"dirty", "panic"} {
		if boltstore.HasProbe(s, key) {
			t.Fatalf("the write of the failed operation %q survived", key)
		}
	}
	// The refused CreateLinkCode left the expired x in place.
	if n, err := s.CountLinkCodes(bg, alice.acc.ID, bt0.Add(time.Minute)); err != nil || n != 2 {
		t.Fatalf("link codes after a refused create: %d, %v; want 2", n, err)
	}
	sess, err := s.GetSession(bg, alice.dev.ID)
	if err != nil || sess.Counter != 2 || string(sess.Successor) != "s2" {
		t.Fatalf("alice's session: %+v, %v", sess, err)
	}
}

// stallFirst starts a write and waits until the committer has taken it:
// with the writer lock held, the committer waits there, and the writes
// queued meanwhile share the next transaction.
func stallFirst(t *testing.T, s *boltstore.Store) <-chan error {
	t.Helper()
	taken := boltstore.Taken(s)
	first := make(chan error, 1)
	go func() { first <- s.Ping(context.Background()) }()
	deadline := time.Now().Add(10 * time.Second)
	for boltstore.Taken(s) == taken {
		if time.Now().After(deadline) {
			t.Fatal("the committer did not take the first write")
		}
		time.Sleep(time.Millisecond)
	}
	waitQueued(t, s, 0)
	return first
}

// waitQueued waits until n write operations are queued.
func waitQueued(t *testing.T, s *boltstore.Store, n int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for boltstore.Queued(s) != n {
		if time.Now().After(deadline) {
			t.Fatalf("%d operations queued, want %d", boltstore.Queued(s), n)
		}
		time.Sleep(time.Millisecond)
	}
}

// TestCloseCommitsQueued: writes queued when Close is called are
// committed before the file closes, and later writes fail as unavailable.
func TestCloseCommitsQueued(t *testing.T) {
	path := filepath.Join(t.TempDir(), "a.db")
	s, err := boltstore.Open(path, boltstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	bg := context.Background()
	release := boltstore.HoldWriter(s)
	first := stallFirst(t, s)
	fxs := make([]fixture, 4)
	errs := make(chan error, len(fxs))
	for i := range fxs {
		fxs[i] = newFixture(t, fmt.Sprintf("user%d", i))
		go func() { errs <- fxs[i].create(bg, s) }()
	}
	waitQueued(t, s, len(fxs))
	closed := make(chan error, 1)
	go func() { closed <- s.Close() }()
	time.Sleep(50 * time.Millisecond) // Close is waiting for the queue
	release()
	if err := <-closed; err != nil {
		t.Fatalf("Close: %v", err)
	}
	for range fxs {
		if err := <-errs; err != nil {
			t.Fatalf("write queued before Close: %v", err)
		}
	}
	if err := <-first; err != nil {
		t.Fatal(err)
	}
	if err := newFixture(t, "late").create(bg, s); !errors.Is(err, account.ErrUnavailable) {
		t.Fatalf("write after Close: %v, want ErrUnavailable", err)
	}
	s, err = boltstore.Open(path, boltstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for _, fx := range fxs {
		if _, err := s.GetAccount(bg, fx.acc.ID); err != nil {
			t.Fatalf("%s after reopen: %v", fx.acc.Username, err)
		}
	}
}
