package storetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hallpass/hallpass/account"
)

// Factory makes the stores the suite runs against.
type Factory interface {
	// New returns an empty store of its own (subtests run in parallel).
	// The factory closes it when t ends; closing it twice must be safe.
	New(t *testing.T) account.Store
	// Reopen closes old and returns a new store over the same data, as after
	// a process restart.
	Reopen(t *testing.T, old account.Store) account.Store
}

// Run runs the conformance suite against the engine made by f.
func Run(t *testing.T, f Factory) {
	tests := []struct {
		name string
		fn   func(t *testing.T, f Factory)
	}{
		{"CreateGet", testCreateGet},
		{"CreateInvalid", testCreateInvalid},
		{"UsernameTaken", testUsernameTaken},
		{"DuplicateIDs", testDuplicateIDs},
		{"ConcurrentSignups", testConcurrentSignups},
		{"AddDevice", testAddDevice},
		{"ListDevices", testListDevices},
		{"GetCaller", testGetCaller},
		{"RefreshAdvance", testRefreshAdvance},
		{"RefreshGrace", testRefreshGrace},
		{"RefreshReused", testRefreshReused},
		{"RefreshRetried", testRefreshRetried},
		{"RefreshRetryReused", testRefreshRetryReused},
		{"RefreshRejected", testRefreshRejected},
		{"RefreshBoundaries", testRefreshBoundaries},
		{"RefreshInvalid", testRefreshInvalid},
		{"RefreshConcurrent", testRefreshConcurrent},
		{"ConcurrentMixed", testConcurrentMixed},
		{"EndSession", testEndSession},
		{"SetBanned", testSetBanned},
		{"Reopen", testReopen},
		{"LinkCodeCreate", testLinkCodeCreate},
		{"LinkCodeInvalid", testLinkCodeInvalid},
		{"LinkCodeRedeem", testLinkCodeRedeem},
		{"LinkCodeRefused", testLinkCodeRefused},
		{"LinkCodeConcurrent", testLinkCodeConcurrent},
		{"LinkCodeSignOut", testLinkCodeSignOut},
		{"LinkCodeMaker", testLinkCodeMaker},
		{"LinkCodeMakerCreate", testLinkCodeMakerCreate},
		{"LinkCodeRedeemed", testLinkCodeRedeemed},
		{"LinkCodeRedeemedGone", testLinkCodeRedeemedGone},
		{"RecoverySet", testRecoverySet},
		{"RecoveryAdd", testRecoveryAdd},
		{"RecoveryUse", testRecoveryUse},
		{"RecoveryRefused", testRecoveryRefused},
		{"RecoveryConcurrent", testRecoveryConcurrent},
		{"EndAccountSessions", testEndAccountSessions},
		{"DeleteAccount", testDeleteAccount},
		{"DeleteHold", testDeleteHold},
		{"Rename", testRename},
		{"RenameHold", testRenameHold},
		{"RenameRace", testRenameRace},
		{"LifecycleReopen", testLifecycleReopen},
		{"Accounts", testAccounts},
		{"ContextCanceled", testContextCanceled},
		{"Closed", testClosed},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.fn(t, f)
		})
	}
}

// t0 has a nanosecond part and a non-UTC zone, so engines must keep full
// precision and compare instants, not representations.
var t0 = time.Date(2030, 1, 2, 3, 4, 5, 123456789, time.FixedZone("X", 3600))

const (
	grace = 30 * time.Second
	idle  = 30 * 24 * time.Hour
	life  = 90 * 24 * time.Hour
)

func ctxT(t *testing.T) context.Context { return t.Context() }

func newID(t *testing.T, prefix string) string {
	t.Helper()
	id, err := account.NewID(prefix, nil)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// fixture is one account with its first device and session.
type fixture struct {
	acc  account.Account
	dev  account.Device
	sess account.Session
}

func newFixture(t *testing.T, username string) fixture {
	t.Helper()
	accID, devID := newID(t, account.AccountPrefix), newID(t, account.DevicePrefix)
	jkt := "jkt-" + devID
	return fixture{
		acc: account.Account{ID: accID, Username: username, UsernameKey: strings.ToLower(username), Created: t0},
		dev: account.Device{ID: devID, AccountID: accID, Name: "phone of " + username, JKT: jkt, Created: t0, LastUsed: t0},
		sess: account.Session{DeviceID: devID, AccountID: accID, JKT: jkt, Counter: 1,
			Created: t0, LastUsed: t0, Expires: t0.Add(life)},
	}
}

func newDevice(t *testing.T, accID string, created time.Time) (account.Device, account.Session) {
	t.Helper()
	devID := newID(t, account.DevicePrefix)
	jkt := "jkt-" + devID
	return account.Device{ID: devID, AccountID: accID, Name: "tablet", JKT: jkt, Created: created, LastUsed: created},
		account.Session{DeviceID: devID, AccountID: accID, JKT: jkt, Counter: 1, Created: created, LastUsed: created, Expires: created.Add(life)}
}

func create(t *testing.T, s account.Store, fx fixture) {
	t.Helper()
	if err := s.CreateAccount(ctxT(t), fx.acc, fx.dev, fx.sess); err != nil {
		t.Fatalf("CreateAccount: %v", err)
	}
}

func wantErr(t *testing.T, what string, err, want error) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Fatalf("%s: got error %v, want %v", what, err, want)
	}
}

func equalAccount(a, b account.Account) bool {
	return a.ID == b.ID && a.Username == b.Username && a.UsernameKey == b.UsernameKey &&
		a.Created.Equal(b.Created) && a.Banned == b.Banned && bytes.Equal(a.RecoverySalt, b.RecoverySalt) &&
		slices.EqualFunc(a.RecoveryCodes, b.RecoveryCodes, bytes.Equal)
}

func equalDevice(a, b account.Device) bool {
	return a.ID == b.ID && a.AccountID == b.AccountID && a.Name == b.Name && a.JKT == b.JKT &&
		a.Created.Equal(b.Created) && a.LastUsed.Equal(b.LastUsed) && a.Revoked.Equal(b.Revoked)
}

func equalSession(a, b account.Session) bool {
	return a.DeviceID == b.DeviceID && a.AccountID == b.AccountID && a.JKT == b.JKT &&
		a.Counter == b.Counter && a.Created.Equal(b.Created) && a.LastUsed.Equal(b.LastUsed) &&
		a.Expires.Equal(b.Expires) && a.GraceUntil.Equal(b.GraceUntil) &&
		bytes.Equal(a.Successor, b.Successor) && bytes.Equal(a.RetryDigest, b.RetryDigest) && a.Ended.Equal(b.Ended)
}

func mustAccount(t *testing.T, s account.Store, id string, want account.Account) {
	t.Helper()
	got, err := s.GetAccount(ctxT(t), id)
	if err != nil {
		t.Fatalf("GetAccount: %v", err)
	}
	if !equalAccount(got, want) {
		t.Fatalf("GetAccount:\n got %+v\nwant %+v", got, want)
	}
}

func mustDevice(t *testing.T, s account.Store, want account.Device) {
	t.Helper()
	got, err := s.GetDevice(ctxT(t), want.ID)
	if err != nil {
		t.Fatalf("GetDevice: %v", err)
	}
	if !equalDevice(got, want) {
		t.Fatalf("GetDevice:\n got %+v\nwant %+v", got, want)
	}
}

func mustSession(t *testing.T, s account.Store, want account.Session) {
	t.Helper()
	got, err := s.GetSession(ctxT(t), want.DeviceID)
	if err != nil {
		t.Fatalf("GetSession: %v", err)
	}
	if !equalSession(got, want) {
		t.Fatalf("GetSession:\n got %+v\nwant %+v", got, want)
	}
}

// mustState checks the whole stored state of fx.
func mustState(t *testing.T, s account.Store, fx fixture) {
	t.Helper()
	mustAccount(t, s, fx.acc.ID, fx.acc)
	mustDevice(t, s, fx.dev)
	mustSession(t, s, fx.sess)
	mustCaller(t, s, fx)
}

// mustAbsent checks that nothing of fx was stored.
func mustAbsent(t *testing.T, s account.Store, accID, devID string) {
	t.Helper()
	ctx := ctxT(t)
	if accID != "" {
		_, err := s.GetAccount(ctx, accID)
		wantErr(t, "GetAccount of absent account", err, account.ErrNotFound)
		_, err = s.ListDevices(ctx, accID)
		wantErr(t, "ListDevices of absent account", err, account.ErrNotFound)
	}
	if devID != "" {
		_, err := s.GetDevice(ctx, devID)
		wantErr(t, "GetDevice of absent device", err, account.ErrNotFound)
		_, err = s.GetSession(ctx, devID)
		wantErr(t, "GetSession of absent device", err, account.ErrNotFound)
	}
}

func refresh(t *testing.T, s account.Store, req account.RefreshRequest) account.RefreshResult {
	t.Helper()
	res, err := s.Refresh(ctxT(t), req)
	if err != nil {
		t.Fatalf("Refresh(counter %d): %v", req.Counter, err)
	}
	return res
}

func req(devID string, counter uint64, now time.Time, succ string) account.RefreshRequest {
	return account.RefreshRequest{DeviceID: devID, Counter: counter, Now: now, Grace: grace, Idle: idle, Successor: []byte(succ)}
}

func wantOutcome(t *testing.T, res account.RefreshResult, want account.RefreshOutcome, succ string) {
	t.Helper()
	if res.Outcome != want {
		t.Fatalf("outcome %v, want %v", res.Outcome, want)
	}
	if (want == account.RefreshAdvanced || want == account.RefreshGrace || want == account.RefreshRetried) && string(res.Successor) != succ {
		t.Fatalf("%v: successor %q, want %q", want, res.Successor, succ)
	}
	if (want == account.RefreshReused || want == account.RefreshRejected) && len(res.Successor) != 0 {
		t.Fatalf("%v returned a successor", want)
	}
}

func testCreateGet(t *testing.T, f Factory) {
	s := f.New(t)
	ctx := ctxT(t)
	fx := newFixture(t, "Alice")
	create(t, s, fx)
	mustState(t, s, fx)
	got, err := s.GetAccountByUsername(ctx, "alice")
	if err != nil || !equalAccount(got, fx.acc) {
		t.Fatalf("GetAccountByUsername = %+v, %v", got, err)
	}
	devs, err := s.ListDevices(ctx, fx.acc.ID)
	if err != nil || len(devs) != 1 || !equalDevice(devs[0], fx.dev) {
		t.Fatalf("ListDevices = %+v, %v", devs, err)
	}
	if err := s.Ping(ctx); err != nil {
		t.Fatalf("Ping: %v", err)
	}

	// Unknown and malformed ids, unknown usernames.
	_, err = s.GetAccountByUsername(ctx, "bob")
	wantErr(t, "GetAccountByUsername(unknown)", err, account.ErrNotFound)
	_, err = s.GetAccountByUsername(ctx, "")
	wantErr(t, "GetAccountByUsername(empty)", err, account.ErrNotFound)
	mustAbsent(t, s, newID(t, account.AccountPrefix), newID(t, account.DevicePrefix))
	for _, junk := range []string{"", "acc_", "acc_{x}", fx.dev.ID, "acc_" + strings.Repeat("A", 200), "dev_../../x"} {
		if junk != fx.dev.ID {
			_, err = s.GetDevice(ctx, junk)
			wantErr(t, "GetDevice(junk)", err, account.ErrNotFound)
			_, err = s.GetSession(ctx, junk)
			wantErr(t, "GetSession(junk)", err, account.ErrNotFound)
			_, err = s.Refresh(ctx, req(junk, 1, t0, "x"))
			wantErr(t, "Refresh(junk)", err, account.ErrNotFound)
			wantErr(t, "EndSession(junk)", s.EndSession(ctx, junk, t0), account.ErrNotFound)
		}
		_, err = s.GetAccount(ctx, junk)
		wantErr(t, "GetAccount(junk)", err, account.ErrNotFound)
		_, err = s.ListDevices(ctx, junk)
		wantErr(t, "ListDevices(junk)", err, account.ErrNotFound)
		wantErr(t, "SetBanned(junk)", s.SetBanned(ctx, junk, true), account.ErrNotFound)
	}

	// A zero LastUsed is stored as Created.
	fx2 := newFixture(t, "Carol")
	fx2.dev.LastUsed, fx2.sess.LastUsed = time.Time{}, time.Time{}
	create(t, s, fx2)
	fx2.dev.LastUsed, fx2.sess.LastUsed = t0, t0
	mustState(t, s, fx2)
}

func testCreateInvalid(t *testing.T, f Factory) {
	s := f.New(t)
	ctx := ctxT(t)
	tests := []struct {
		name   string
		mutate func(*fixture)
	}{
		{"malformed account id", func(fx *fixture) {
			fx.acc.ID = "acc_short"
			fx.dev.AccountID = fx.acc.ID
			fx.sess.AccountID = fx.acc.ID
		}},
		{"account id with device prefix", func(fx *fixture) {
			fx.acc.ID = "dev_" + fx.acc.ID[4:]
			fx.dev.AccountID = fx.acc.ID
			fx.sess.AccountID = fx.acc.ID
		}},
		{"malformed device id", func(fx *fixture) { fx.dev.ID = "dev_{x}"; fx.sess.DeviceID = fx.dev.ID }},
		{"device of another account", func(fx *fixture) { fx.dev.AccountID = newID(t, account.AccountPrefix) }},
		{"session of another account", func(fx *fixture) { fx.sess.AccountID = newID(t, account.AccountPrefix) }},
		{"session of another device", func(fx *fixture) { fx.sess.DeviceID = newID(t, account.DevicePrefix) }},
		{"session jkt differs", func(fx *fixture) { fx.sess.JKT = "other" }},
		{"empty jkt", func(fx *fixture) { fx.sess.JKT, fx.dev.JKT = "", "" }},
		{"empty username key", func(fx *fixture) { fx.acc.UsernameKey = "" }},
		{"empty username", func(fx *fixture) { fx.acc.Username = "" }},
		{"zero expiry", func(fx *fixture) { fx.sess.Expires = time.Time{} }},
		{"zero created", func(fx *fixture) { fx.acc.Created = time.Time{} }},
		{"revoked device", func(fx *fixture) { fx.dev.Revoked = t0 }},
		{"ended session", func(fx *fixture) { fx.sess.Ended = t0 }},
	}
	for _, tc := range tests {
		fx := newFixture(t, "Dave")
		tc.mutate(&fx)
		err := s.CreateAccount(ctx, fx.acc, fx.dev, fx.sess)
		if !errors.Is(err, account.ErrInvalidRequest) {
			t.Errorf("%s: got %v, want ErrInvalidRequest", tc.name, err)
		}
	}
	if _, err := s.GetAccountByUsername(ctx, "dave"); !errors.Is(err, account.ErrNotFound) {
		t.Fatalf("an invalid create claimed the username: %v", err)
	}
	// The name is still free.
	create(t, s, newFixture(t, "Dave"))
}

func testUsernameTaken(t *testing.T, f Factory) {
	s := f.New(t)
	ctx := ctxT(t)
	first := newFixture(t, "Alice")
	create(t, s, first)
	second := newFixture(t, "ALICE") // same key "alice"
	err := s.CreateAccount(ctx, second.acc, second.dev, second.sess)
	wantErr(t, "CreateAccount(taken)", err, account.ErrUsernameTaken)
	mustAbsent(t, s, second.acc.ID, second.dev.ID)
	mustState(t, s, first)
	got, err := s.GetAccountByUsername(ctx, "alice")
	if err != nil || got.ID != first.acc.ID || got.Username != "Alice" {
		t.Fatalf("GetAccountByUsername = %+v, %v; want the first account", got, err)
	}
	// The loser's ids are free: a retry with another name succeeds.
	second.acc.Username, second.acc.UsernameKey = "Alice2", "alice2"
	create(t, s, second)
	mustState(t, s, second)
}

func testDuplicateIDs(t *testing.T, f Factory) {
	s := f.New(t)
	ctx := ctxT(t)
	first := newFixture(t, "Alice")
	create(t, s, first)

	// Same account id, another name and device.
	dup := newFixture(t, "Bob")
	dup.acc.ID, dup.dev.AccountID, dup.sess.AccountID = first.acc.ID, first.acc.ID, first.acc.ID
	wantErr(t, "CreateAccount(dup account id)", s.CreateAccount(ctx, dup.acc, dup.dev, dup.sess), account.ErrExists)
	_, err := s.GetAccountByUsername(ctx, "bob")
	wantErr(t, "name of a failed create", err, account.ErrNotFound)
	mustAbsent(t, s, "", dup.dev.ID)

	// Same account id and name (not a retry: another device).
	dup2 := newFixture(t, "Alice")
	dup2.acc.ID, dup2.dev.AccountID, dup2.sess.AccountID = first.acc.ID, first.acc.ID, first.acc.ID
	wantErr(t, "CreateAccount(dup account id, same name)", s.CreateAccount(ctx, dup2.acc, dup2.dev, dup2.sess), account.ErrExists)
	mustAbsent(t, s, "", dup2.dev.ID)

	// A new account whose device id is in use.
	dup3 := newFixture(t, "Carol")
	dup3.dev.ID, dup3.sess.DeviceID = first.dev.ID, first.dev.ID
	wantErr(t, "CreateAccount(dup device id)", s.CreateAccount(ctx, dup3.acc, dup3.dev, dup3.sess), account.ErrExists)
	_, err = s.GetAccountByUsername(ctx, "carol")
	wantErr(t, "name of a failed create", err, account.ErrNotFound)
	mustAbsent(t, s, dup3.acc.ID, "")
	mustState(t, s, first)

	// AddDevice with a device id in use, of the same or another account.
	other := newFixture(t, "Dan")
	create(t, s, other)
	for _, owner := range []fixture{first, other} {
		dev, sess := newDevice(t, owner.acc.ID, t0)
		dev.ID, sess.DeviceID = first.dev.ID, first.dev.ID
		wantErr(t, "AddDevice(dup device id)", s.AddDevice(ctx, dev, sess), account.ErrExists)
	}
	mustState(t, s, first)
	mustState(t, s, other)
	devs, err := s.ListDevices(ctx, other.acc.ID)
	if err != nil || len(devs) != 1 {
		t.Fatalf("ListDevices after failed AddDevice = %d devices, %v", len(devs), err)
	}

	// The names of the failed creates are free.
	create(t, s, newFixture(t, "Bob"))
	create(t, s, newFixture(t, "Carol"))
}

func testConcurrentSignups(t *testing.T, f Factory) {
	s := f.New(t)
	ctx := ctxT(t)
	const names, perName = 20, 10
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		winners = map[string]fixture{} // by username key
		losers  []fixture
		errs    []error
	)
	start := make(chan struct{})
	for i := range names * perName {
		fx := newFixture(t, fmt.Sprintf("User%02d", i%names))
		wg.Go(func() {
			<-start
			err := s.CreateAccount(ctx, fx.acc, fx.dev, fx.sess)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				if _, dup := winners[fx.acc.UsernameKey]; dup {
					errs = append(errs, fmt.Errorf("two accounts for %q", fx.acc.UsernameKey))
				}
				winners[fx.acc.UsernameKey] = fx
			case errors.Is(err, account.ErrUsernameTaken):
				losers = append(losers, fx)
			default:
				errs = append(errs, err)
			}
		})
	}
	close(start)
	wg.Wait()
	if len(errs) > 0 {
		t.Fatalf("unexpected errors: %v", errs)
	}
	if len(winners) != names || len(losers) != names*(perName-1) {
		t.Fatalf("%d accounts and %d ErrUsernameTaken, want %d and %d", len(winners), len(losers), names, names*(perName-1))
	}
	for key, fx := range winners {
		got, err := s.GetAccountByUsername(ctx, key)
		if err != nil || got.ID != fx.acc.ID {
			t.Fatalf("GetAccountByUsername(%q) = %+v, %v; want %s", key, got, err, fx.acc.ID)
		}
		mustState(t, s, fx)
	}
	for _, fx := range losers {
		mustAbsent(t, s, fx.acc.ID, fx.dev.ID)
	}
}

func testAddDevice(t *testing.T, f Factory) {
	s := f.New(t)
	ctx := ctxT(t)
	fx := newFixture(t, "Alice")
	create(t, s, fx)
	dev, sess := newDevice(t, fx.acc.ID, t0.Add(time.Minute))
	if err := s.AddDevice(ctx, dev, sess); err != nil {
		t.Fatalf("AddDevice: %v", err)
	}
	mustDevice(t, s, dev)
	mustSession(t, s, sess)
	wantOutcome(t, refresh(t, s, req(dev.ID, 1, t0.Add(time.Hour), "s2")), account.RefreshAdvanced, "s2")
	mustState(t, s, fx) // the first device is untouched

	// Missing account.
	dev2, sess2 := newDevice(t, newID(t, account.AccountPrefix), t0)
	wantErr(t, "AddDevice(missing account)", s.AddDevice(ctx, dev2, sess2), account.ErrNotFound)
	mustAbsent(t, s, "", dev2.ID)

	// Invalid records.
	dev3, sess3 := newDevice(t, fx.acc.ID, t0)
	sess3.JKT = "other"
	wantErr(t, "AddDevice(jkt mismatch)", s.AddDevice(ctx, dev3, sess3), account.ErrInvalidRequest)
	dev3, sess3 = newDevice(t, fx.acc.ID, t0)
	sess3.AccountID = newID(t, account.AccountPrefix)
	wantErr(t, "AddDevice(account mismatch)", s.AddDevice(ctx, dev3, sess3), account.ErrInvalidRequest)
	mustAbsent(t, s, "", dev3.ID)

	// Banned account.
	if err := s.SetBanned(ctx, fx.acc.ID, true); err != nil {
		t.Fatal(err)
	}
	dev4, sess4 := newDevice(t, fx.acc.ID, t0)
	wantErr(t, "AddDevice(banned)", s.AddDevice(ctx, dev4, sess4), account.ErrBanned)
	mustAbsent(t, s, "", dev4.ID)
	devs, err := s.ListDevices(ctx, fx.acc.ID)
	if err != nil || len(devs) != 2 {
		t.Fatalf("ListDevices = %d devices, %v; want 2", len(devs), err)
	}
	if err := s.SetBanned(ctx, fx.acc.ID, false); err != nil {
		t.Fatal(err)
	}
	if err := s.AddDevice(ctx, dev4, sess4); err != nil {
		t.Fatalf("AddDevice after unban: %v", err)
	}
}

func testListDevices(t *testing.T, f Factory) {
	s := f.New(t)
	ctx := ctxT(t)
	fx := newFixture(t, "Alice")
	create(t, s, fx)
	other := newFixture(t, "Bob")
	create(t, s, other)
	want := []account.Device{fx.dev}
	// Added out of order: the result is ordered by Created, then ID.
	for _, d := range []time.Duration{3 * time.Hour, time.Hour, 2 * time.Hour, time.Hour} {
		dev, sess := newDevice(t, fx.acc.ID, t0.Add(d))
		if err := s.AddDevice(ctx, dev, sess); err != nil {
			t.Fatal(err)
		}
		want = append(want, dev)
	}
	// A revoked device is still listed.
	if err := s.EndSession(ctx, want[2].ID, t0.Add(5*time.Hour)); err != nil {
		t.Fatal(err)
	}
	want[2].Revoked = t0.Add(5 * time.Hour)
	slices.SortFunc(want, func(a, b account.Device) int {
		if c := a.Created.Compare(b.Created); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	got, err := s.ListDevices(ctx, fx.acc.ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(want) {
		t.Fatalf("ListDevices: %d devices, want %d", len(got), len(want))
	}
	for i := range want {
		if !equalDevice(got[i], want[i]) {
			t.Fatalf("ListDevices[%d]:\n got %+v\nwant %+v", i, got[i], want[i])
		}
	}
	got, err = s.ListDevices(ctx, other.acc.ID)
	if err != nil || len(got) != 1 || got[0].ID != other.dev.ID {
		t.Fatalf("ListDevices(other) = %+v, %v", got, err)
	}
}

func testRefreshAdvance(t *testing.T, f Factory) {
	s := f.New(t)
	fx := newFixture(t, "Alice")
	create(t, s, fx)
	succ := "sealed\x00successor\xff" // binary-safe
	now := t0.Add(time.Hour)
	wantOutcome(t, refresh(t, s, req(fx.dev.ID, 1, now, succ)), account.RefreshAdvanced, succ)
	fx.sess.Counter, fx.sess.Successor, fx.sess.GraceUntil, fx.sess.LastUsed = 2, []byte(succ), now.Add(grace), now
	fx.dev.LastUsed = now
	mustState(t, s, fx)

	// And again with the successor's counter.
	now2 := now.Add(time.Hour)
	wantOutcome(t, refresh(t, s, req(fx.dev.ID, 2, now2, "s3")), account.RefreshAdvanced, "s3")
	fx.sess.Counter, fx.sess.Successor, fx.sess.GraceUntil, fx.sess.LastUsed = 3, []byte("s3"), now2.Add(grace), now2
	fx.dev.LastUsed = now2
	mustState(t, s, fx)
}

func testRefreshGrace(t *testing.T, f Factory) {
	s := f.New(t)
	fx := newFixture(t, "Alice")
	create(t, s, fx)
	now := t0.Add(time.Hour)
	refresh(t, s, req(fx.dev.ID, 1, now, "s2"))
	fx.sess.Counter, fx.sess.Successor, fx.sess.GraceUntil, fx.sess.LastUsed = 2, []byte("s2"), now.Add(grace), now
	fx.dev.LastUsed = now
	for _, d := range []time.Duration{0, time.Second, grace - time.Nanosecond} {
		res := refresh(t, s, req(fx.dev.ID, 1, now.Add(d), "other"))
		wantOutcome(t, res, account.RefreshGrace, "s2")
		mustState(t, s, fx) // nothing changed, LastUsed included
	}
	// The successor still advances normally after grace retries.
	wantOutcome(t, refresh(t, s, req(fx.dev.ID, 2, now.Add(time.Second), "s3")), account.RefreshAdvanced, "s3")
}

func testRefreshReused(t *testing.T, f Factory) {
	tests := []struct {
		name    string
		counter uint64 // current is 3 after two advances
		after   time.Duration
	}{
		{"previous after grace", 2, grace},
		{"previous long after grace", 2, time.Hour},
		{"older", 1, 0},
		{"older within grace", 1, time.Second},
		{"greater", 4, 0},
		{"much greater", 1 << 60, 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := f.New(t)
			fx := newFixture(t, "Alice")
			create(t, s, fx)
			now := t0.Add(time.Hour)
			refresh(t, s, req(fx.dev.ID, 1, now.Add(-time.Minute), "s2"))
			refresh(t, s, req(fx.dev.ID, 2, now, "s3"))
			at := now.Add(tc.after)
			wantOutcome(t, refresh(t, s, req(fx.dev.ID, tc.counter, at, "x")), account.RefreshReused, "")
			sess, err := s.GetSession(ctxT(t), fx.dev.ID)
			if err != nil {
				t.Fatal(err)
			}
			if !sess.Ended.Equal(at) || len(sess.Successor) != 0 || sess.Counter != 3 {
				t.Fatalf("session after reuse: %+v; want ended at %v, no successor, counter 3", sess, at)
			}
			dev, err := s.GetDevice(ctxT(t), fx.dev.ID)
			if err != nil {
				t.Fatal(err)
			}
			if !dev.Revoked.Equal(at) || dev.Active() {
				t.Fatalf("device after reuse: %+v; want revoked at %v", dev, at)
			}
			// The chain is dead: even the current token is rejected now.
			wantOutcome(t, refresh(t, s, req(fx.dev.ID, 3, at, "y")), account.RefreshRejected, "")
			wantOutcome(t, refresh(t, s, req(fx.dev.ID, 2, at, "y")), account.RefreshRejected, "")
			mustAccount(t, s, fx.acc.ID, fx.acc) // the account itself is untouched
		})
	}
}

func testRefreshRejected(t *testing.T, f Factory) {
	tests := []struct {
		name  string
		setup func(t *testing.T, s account.Store, fx fixture) // before the refresh
		now   time.Time
	}{
		{"ended", func(t *testing.T, s account.Store, fx fixture) {
			if err := s.EndSession(ctxT(t), fx.dev.ID, t0.Add(time.Minute)); err != nil {
				t.Fatal(err)
			}
		}, t0.Add(time.Hour)},
		{"expired", nil, t0.Add(life)},
		{"long expired", nil, t0.Add(life + time.Hour)},
		{"idle", nil, t0.Add(idle + time.Nanosecond)},
		{"banned", func(t *testing.T, s account.Store, fx fixture) {
			if err := s.SetBanned(ctxT(t), fx.acc.ID, true); err != nil {
				t.Fatal(err)
			}
		}, t0.Add(time.Hour)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := f.New(t)
			fx := newFixture(t, "Alice")
			create(t, s, fx)
			if tc.setup != nil {
				tc.setup(t, s, fx)
			}
			acc, _ := s.GetAccount(ctxT(t), fx.acc.ID)
			dev, _ := s.GetDevice(ctxT(t), fx.dev.ID)
			sess, _ := s.GetSession(ctxT(t), fx.dev.ID)
			before := fixture{acc, dev, sess}
			for _, c := range []uint64{1, 0, 2, 7} { // current, previous, greater...
				wantOutcome(t, refresh(t, s, req(fx.dev.ID, c, tc.now, "x")), account.RefreshRejected, "")
				mustState(t, s, before)
			}
		})
	}
}

func testRefreshBoundaries(t *testing.T, f Factory) {
	s := f.New(t)
	ctx := ctxT(t)
	// Just before expiry and exactly at the idle limit: still fine.
	fx := newFixture(t, "Alice")
	fx.sess.Expires = t0.Add(2 * idle)
	create(t, s, fx)
	wantOutcome(t, refresh(t, s, req(fx.dev.ID, 1, t0.Add(idle), "s2")), account.RefreshAdvanced, "s2")
	fx2 := newFixture(t, "Bob")
	create(t, s, fx2)
	wantOutcome(t, refresh(t, s, req(fx2.dev.ID, 1, t0.Add(life-time.Nanosecond), "s2")), account.RefreshRejected, "") // idle
	r := req(fx2.dev.ID, 1, t0.Add(life-time.Nanosecond), "s2")
	r.Idle = 0 // no idle limit
	wantOutcome(t, refresh(t, s, r), account.RefreshAdvanced, "s2")

	// Grace == 0: the previous token is reuse at once.
	fx3 := newFixture(t, "Carol")
	create(t, s, fx3)
	r = req(fx3.dev.ID, 1, t0.Add(time.Minute), "s2")
	r.Grace = 0
	wantOutcome(t, refresh(t, s, r), account.RefreshAdvanced, "s2")
	sess, err := s.GetSession(ctx, fx3.dev.ID)
	if err != nil || !sess.GraceUntil.Equal(t0.Add(time.Minute)) {
		t.Fatalf("GraceUntil with Grace 0 = %v, %v", sess.GraceUntil, err)
	}
	wantOutcome(t, refresh(t, s, r), account.RefreshReused, "")
}

func testRefreshInvalid(t *testing.T, f Factory) {
	s := f.New(t)
	ctx := ctxT(t)
	fx := newFixture(t, "Alice")
	create(t, s, fx)
	tests := []struct {
		name   string
		mutate func(*account.RefreshRequest)
	}{
		{"zero now", func(r *account.RefreshRequest) { r.Now = time.Time{} }},
		{"negative grace", func(r *account.RefreshRequest) { r.Grace = -time.Second }},
		{"negative idle", func(r *account.RefreshRequest) { r.Idle = -time.Second }},
		{"empty successor", func(r *account.RefreshRequest) { r.Successor = nil }},
		{"huge successor", func(r *account.RefreshRequest) { r.Successor = make([]byte, 1<<20) }},
		{"short retry digest", func(r *account.RefreshRequest) { r.RetryDigest = retryDigest(1)[:31] }},
		{"long retry digest", func(r *account.RefreshRequest) { r.RetryDigest = append(retryDigest(1), 1) }},
	}
	for _, tc := range tests {
		r := req(fx.dev.ID, 1, t0.Add(time.Hour), "s2")
		tc.mutate(&r)
		_, err := s.Refresh(ctx, r)
		if !errors.Is(err, account.ErrInvalidRequest) {
			t.Errorf("%s: got %v, want ErrInvalidRequest", tc.name, err)
		}
	}
	mustState(t, s, fx)
	_, err := s.Refresh(ctx, req(newID(t, account.DevicePrefix), 1, t0.Add(time.Hour), "s2"))
	wantErr(t, "Refresh(unknown device)", err, account.ErrNotFound)
}

func testRefreshConcurrent(t *testing.T, f Factory) {
	s := f.New(t)
	ctx := ctxT(t)
	fx := newFixture(t, "Alice")
	create(t, s, fx)
	const n = 64
	now := t0.Add(time.Hour)
	results := make([]account.RefreshResult, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			results[i], errs[i] = s.Refresh(ctx, req(fx.dev.ID, 1, now, fmt.Sprintf("successor-%02d", i)))
		})
	}
	close(start)
	wg.Wait()
	advanced := -1
	for i, res := range results {
		if errs[i] != nil {
			t.Fatalf("Refresh %d: %v", i, errs[i])
		}
		if res.Outcome == account.RefreshAdvanced {
			if advanced >= 0 {
				t.Fatalf("two Advanced outcomes: %d and %d", advanced, i)
			}
			advanced = i
		} else if res.Outcome != account.RefreshGrace {
			t.Fatalf("Refresh %d: outcome %v, want advanced or grace", i, res.Outcome)
		}
	}
	if advanced < 0 {
		t.Fatal("no Advanced outcome")
	}
	winner := results[advanced].Successor
	if string(winner) != fmt.Sprintf("successor-%02d", advanced) {
		t.Fatalf("the winner got %q, not its own successor", winner)
	}
	for i, res := range results {
		if !bytes.Equal(res.Successor, winner) {
			t.Fatalf("Refresh %d got %q, want the winner's %q", i, res.Successor, winner)
		}
	}
	sess, err := s.GetSession(ctx, fx.dev.ID)
	if err != nil || sess.Counter != 2 || !bytes.Equal(sess.Successor, winner) || !sess.Ended.IsZero() {
		t.Fatalf("session after concurrent refresh: %+v, %v", sess, err)
	}
}

func testEndSession(t *testing.T, f Factory) {
	s := f.New(t)
	ctx := ctxT(t)
	fx := newFixture(t, "Alice")
	create(t, s, fx)
	refresh(t, s, req(fx.dev.ID, 1, t0.Add(time.Minute), "s2"))
	at := t0.Add(time.Hour)
	if err := s.EndSession(ctx, fx.dev.ID, at); err != nil {
		t.Fatalf("EndSession: %v", err)
	}
	check := func() {
		t.Helper()
		sess, err := s.GetSession(ctx, fx.dev.ID)
		if err != nil || !sess.Ended.Equal(at) || len(sess.Successor) != 0 {
			t.Fatalf("session after EndSession: %+v, %v", sess, err)
		}
		dev, err := s.GetDevice(ctx, fx.dev.ID)
		if err != nil || !dev.Revoked.Equal(at) {
			t.Fatalf("device after EndSession: %+v, %v", dev, err)
		}
	}
	check()
	if err := s.EndSession(ctx, fx.dev.ID, at.Add(time.Hour)); err != nil {
		t.Fatalf("second EndSession: %v", err)
	}
	check() // the first time stays
	wantOutcome(t, refresh(t, s, req(fx.dev.ID, 2, at.Add(time.Minute), "s3")), account.RefreshRejected, "")
	check()
	wantErr(t, "EndSession(unknown)", s.EndSession(ctx, newID(t, account.DevicePrefix), at), account.ErrNotFound)
	wantErr(t, "EndSession(zero time)", s.EndSession(ctx, fx.dev.ID, time.Time{}), account.ErrInvalidRequest)
	mustAccount(t, s, fx.acc.ID, fx.acc)
}

func testSetBanned(t *testing.T, f Factory) {
	s := f.New(t)
	ctx := ctxT(t)
	fx := newFixture(t, "Alice")
	create(t, s, fx)
	for _, banned := range []bool{true, true, false, false, true} {
		if err := s.SetBanned(ctx, fx.acc.ID, banned); err != nil {
			t.Fatalf("SetBanned(%v): %v", banned, err)
		}
		fx.acc.Banned = banned
		mustAccount(t, s, fx.acc.ID, fx.acc)
		got, err := s.GetAccountByUsername(ctx, fx.acc.UsernameKey)
		if err != nil || got.Banned != banned {
			t.Fatalf("GetAccountByUsername after SetBanned(%v) = %+v, %v", banned, got, err)
		}
	}
	wantErr(t, "SetBanned(unknown)", s.SetBanned(ctx, newID(t, account.AccountPrefix), true), account.ErrNotFound)
	// Banning does not end sessions: unbanning restores refresh.
	wantOutcome(t, refresh(t, s, req(fx.dev.ID, 1, t0.Add(time.Hour), "s2")), account.RefreshRejected, "")
	if err := s.SetBanned(ctx, fx.acc.ID, false); err != nil {
		t.Fatal(err)
	}
	wantOutcome(t, refresh(t, s, req(fx.dev.ID, 1, t0.Add(time.Hour), "s2")), account.RefreshAdvanced, "s2")
}

func testReopen(t *testing.T, f Factory) {
	s := f.New(t)
	ctx := ctxT(t)
	a := newFixture(t, "Alice")
	b := newFixture(t, "Bob")
	c := newFixture(t, "Carol")
	for _, fx := range []fixture{a, b, c} {
		create(t, s, fx)
	}
	now := t0.Add(time.Hour)
	refresh(t, s, req(a.dev.ID, 1, now, "a2"))
	a.sess.Counter, a.sess.Successor, a.sess.GraceUntil, a.sess.LastUsed, a.dev.LastUsed = 2, []byte("a2"), now.Add(grace), now, now
	if err := s.EndSession(ctx, b.dev.ID, now); err != nil {
		t.Fatal(err)
	}
	b.sess.Ended, b.dev.Revoked = now, now
	if err := s.SetBanned(ctx, c.acc.ID, true); err != nil {
		t.Fatal(err)
	}
	c.acc.Banned = true
	dev, sess := newDevice(t, a.acc.ID, now)
	if err := s.AddDevice(ctx, dev, sess); err != nil {
		t.Fatal(err)
	}

	s = f.Reopen(t, s)
	for _, fx := range []fixture{a, b, c} {
		mustState(t, s, fx)
		got, err := s.GetAccountByUsername(ctx, fx.acc.UsernameKey)
		if err != nil || got.ID != fx.acc.ID {
			t.Fatalf("GetAccountByUsername(%q) after reopen = %+v, %v", fx.acc.UsernameKey, got, err)
		}
	}
	mustDevice(t, s, dev)
	mustSession(t, s, sess)
	devs, err := s.ListDevices(ctx, a.acc.ID)
	if err != nil || len(devs) != 2 {
		t.Fatalf("ListDevices after reopen = %d, %v", len(devs), err)
	}
	// The chain continues, and the name stays taken.
	wantOutcome(t, refresh(t, s, req(a.dev.ID, 1, now.Add(time.Second), "x")), account.RefreshGrace, "a2")
	wantOutcome(t, refresh(t, s, req(a.dev.ID, 2, now.Add(time.Second), "a3")), account.RefreshAdvanced, "a3")
	dup := newFixture(t, "ALICE")
	wantErr(t, "CreateAccount(taken) after reopen", s.CreateAccount(ctx, dup.acc, dup.dev, dup.sess), account.ErrUsernameTaken)
}

// calls exercises every Store method with valid-looking input.
func calls(fx fixture, extraDev account.Device, extraSess account.Session) map[string]func(context.Context, account.Store) error {
	m := map[string]func(context.Context, account.Store) error{
		"CreateAccount": func(ctx context.Context, s account.Store) error { return s.CreateAccount(ctx, fx.acc, fx.dev, fx.sess) },
		"AddDevice":     func(ctx context.Context, s account.Store) error { return s.AddDevice(ctx, extraDev, extraSess) },
		"GetAccount": func(ctx context.Context, s account.Store) error {
			_, err := s.GetAccount(ctx, fx.acc.ID)
			return err
		},
		"GetAccountByUsername": func(ctx context.Context, s account.Store) error {
			_, err := s.GetAccountByUsername(ctx, fx.acc.UsernameKey)
			return err
		},
		"GetDevice": func(ctx context.Context, s account.Store) error {
			_, err := s.GetDevice(ctx, fx.dev.ID)
			return err
		},
		"ListDevices": func(ctx context.Context, s account.Store) error {
			_, err := s.ListDevices(ctx, fx.acc.ID)
			return err
		},
		"GetSession": func(ctx context.Context, s account.Store) error {
			_, err := s.GetSession(ctx, fx.dev.ID)
			return err
		},
		"GetCaller": func(ctx context.Context, s account.Store) error {
			_, _, err := s.GetCaller(ctx, fx.acc.ID, fx.dev.ID)
			return err
		},
		"Refresh": func(ctx context.Context, s account.Store) error {
			_, err := s.Refresh(ctx, req(fx.dev.ID, 1, t0.Add(time.Hour), "s2"))
			return err
		},
		"EndSession": func(ctx context.Context, s account.Store) error {
			return s.EndSession(ctx, fx.dev.ID, t0.Add(time.Hour))
		},
		"SetBanned": func(ctx context.Context, s account.Store) error { return s.SetBanned(ctx, fx.acc.ID, true) },
		"Ping":      func(ctx context.Context, s account.Store) error { return s.Ping(ctx) },
	}
	maps.Copy(m, lifecycleCalls(fx, extraDev, extraSess))
	return m
}

// lifecycleCalls exercises every Lifecycle method of fx's account with
// valid input (the code digests are those lifecycleState stores).
func lifecycleCalls(fx fixture, extraDev account.Device, extraSess account.Session) map[string]func(context.Context, account.Store) error {
	id, later := fx.acc.ID, t0.Add(time.Hour)
	return map[string]func(context.Context, account.Store) error{
		"CreateLinkCode": func(ctx context.Context, s account.Store) error {
			return s.CreateLinkCode(ctx, newLink(fx, "l2", t0), 3, t0)
		},
		"CountLinkCodes": func(ctx context.Context, s account.Store) error {
			_, err := s.CountLinkCodes(ctx, id, t0)
			return err
		},
		"RedeemLinkCode": func(ctx context.Context, s account.Store) error {
			_, err := s.RedeemLinkCode(ctx, digest("l1"), t0, extraDev, extraSess)
			return err
		},
		"RedeemedLinkCode": func(ctx context.Context, s account.Store) error {
			_, _, err := s.RedeemedLinkCode(ctx, digest("l1"), t0)
			return err
		},
		"SetRecoveryCodes": func(ctx context.Context, s account.Store) error {
			return s.SetRecoveryCodes(ctx, id, salt2, digests("r9"))
		},
		"AddRecoveryCode": func(ctx context.Context, s account.Store) error {
			return s.AddRecoveryCode(ctx, id, salt1, digest("r9"), 9)
		},
		"UseRecoveryCode": func(ctx context.Context, s account.Store) error {
			_, err := s.UseRecoveryCode(ctx, id, digest("r1"), extraDev, extraSess, true, later)
			return err
		},
		"EndAccountSessions": func(ctx context.Context, s account.Store) error {
			_, err := s.EndAccountSessions(ctx, id, later)
			return err
		},
		"DeleteAccount": func(ctx context.Context, s account.Store) error {
			return s.DeleteAccount(ctx, id, later, later.Add(hold))
		},
		"RenameAccount": func(ctx context.Context, s account.Store) error {
			return s.RenameAccount(ctx, id, "Renamed", "renamed", later, later.Add(hold))
		},
	}
}

// lifecycleState gives fx's account a link code (digest "l1") and recovery
// codes ("r1") for lifecycleCalls to find.
func lifecycleState(t *testing.T, s account.Store, fx *fixture) {
	t.Helper()
	mustCreateLink(t, s, newLink(*fx, "l1", t0), 3)
	mustSetRecovery(t, s, fx, salt1, digests("r1"))
}

func testContextCanceled(t *testing.T, f Factory) {
	s := f.New(t)
	fx := newFixture(t, "Alice")
	create(t, s, fx)
	lifecycleState(t, s, &fx)
	fresh := newFixture(t, "Bob")
	dev, sess := newDevice(t, fx.acc.ID, t0)
	ctx, cancel := context.WithCancel(ctxT(t))
	cancel()
	// On fresh ids only the calls that would create something; the others
	// would be ErrNotFound anyway and are checked on fx below.
	for _, name := range []string{"CreateAccount", "AddDevice", "GetAccount", "GetAccountByUsername", "ListDevices", "Ping"} {
		if err := calls(fresh, dev, sess)[name](ctx, s); !errors.Is(err, context.Canceled) {
			t.Errorf("%s with a cancelled context: %v, want context.Canceled", name, err)
		}
	}
	for name, call := range calls(fx, dev, sess) {
		if name == "CreateAccount" || name == "AddDevice" {
			continue
		}
		if err := call(ctx, s); !errors.Is(err, context.Canceled) {
			t.Errorf("%s with a cancelled context: %v, want context.Canceled", name, err)
		}
	}
	// Nothing changed.
	mustAbsent(t, s, fresh.acc.ID, fresh.dev.ID)
	mustAbsent(t, s, "", dev.ID)
	mustState(t, s, fx)
	mustByName(t, s, fx.acc.UsernameKey, fx.acc.ID)
	mustCount(t, s, fx.acc.ID, t0, 1)
}

func testClosed(t *testing.T, f Factory) {
	s := f.New(t)
	fx := newFixture(t, "Alice")
	create(t, s, fx)
	lifecycleState(t, s, &fx)
	dev, sess := newDevice(t, fx.acc.ID, t0)
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	_ = s.Close() // a second Close must not panic; its error is the engine's choice
	for name, call := range calls(newFixture(t, "Bob"), dev, sess) {
		if err := call(ctxT(t), s); !errors.Is(err, account.ErrUnavailable) {
			t.Errorf("%s on a closed store: %v, want ErrUnavailable", name, err)
		}
	}
	for name, call := range calls(fx, dev, sess) {
		if err := call(ctxT(t), s); !errors.Is(err, account.ErrUnavailable) {
			t.Errorf("%s on a closed store: %v, want ErrUnavailable", name, err)
		}
	}
}

// testAccounts: Lister walks every live account once, deleted ones not.
func testAccounts(t *testing.T, f Factory) {
	s := f.New(t)
	l, ok := s.(account.Lister)
	if !ok {
		t.Fatal("the store does not implement account.Lister")
	}
	want := map[string]string{}
	for _, name := range []string{"Walker1", "Walker2", "Walker3"} {
		fx := newFixture(t, name)
		create(t, s, fx)
		want[fx.acc.ID] = name
	}
	gone := newFixture(t, "Walker4")
	create(t, s, gone)
	if err := s.DeleteAccount(ctxT(t), gone.acc.ID, t0, t0.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	if err := l.Accounts(ctxT(t), func(a account.Account) error {
		if _, dup := got[a.ID]; dup {
			t.Errorf("account %s walked twice", a.ID)
		}
		got[a.ID] = a.Username
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if len(got) != len(want) {
		t.Fatalf("walked %v, want %v", got, want)
	}
	for id, name := range want {
		if got[id] != name {
			t.Fatalf("walked %v, want %v", got, want)
		}
	}
	stop := errors.New("stop")
	if err := l.Accounts(ctxT(t), func(account.Account) error { return stop }); !errors.Is(err, stop) {
		t.Fatalf("an error from fn: %v, want it back", err)
	}
}
