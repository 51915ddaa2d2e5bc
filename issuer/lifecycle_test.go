package issuer_test

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hallpass/hallpass/flow"
	"github.com/hallpass/hallpass/issuer"
	"github.com/hallpass/hallpass/ratelimit"
	"github.com/hallpass/hallpass/revocation"
)

// TestLinkDevice: a link code joins a second device to the account once;
// a used, wrong or expired code is one answer; both devices are listed and
// each can sign the other out.
func TestLinkDevice(t *testing.T) {
	forEachBackend(t, func(t *testing.T, be backend) {
		e := newEnv(t, be)
		phone := e.newDevice("ES256")
		phone.signup("linker")
		code := phone.linkCode()

		tablet := e.newDevice("EdDSA")
		r := tablet.link(code)
		tablet.keep(r)
		if tablet.accID != phone.accID || r.str(t, "username") != "linker" || tablet.devID == phone.devID {
			t.Fatalf("link joined %s", r.body)
		}
		if me := tablet.me(); me.status != http.StatusOK || me.str(t, "device_id") != tablet.devID {
			t.Fatalf("me on the linked device: %d %s", me.status, me.body)
		}
		if r := tablet.refresh(); r.status != http.StatusOK {
			t.Fatalf("refresh on the linked device: %d", r.status)
		}
		third := e.newDevice("EdDSA")
		for name, c := range map[string]string{"used": code, "wrong": "ABCD-EFGH-JKMN", "malformed": "nope"} {
			if r := third.link(c); r.status != http.StatusBadRequest || r.code(t) != issuer.CodeInvalidLinkCode {
				t.Fatalf("%s code: %d %s", name, r.status, r.body)
			}
		}
		expiring := phone.linkCode()
		e.clock.Advance(issuer.DefaultLinkCodeTTL + time.Second)
		if r := third.link(expiring); r.status != http.StatusBadRequest || r.code(t) != issuer.CodeInvalidLinkCode {
			t.Fatalf("expired code: %d %s", r.status, r.body)
		}
		e.clock.Advance(-issuer.DefaultLinkCodeTTL - time.Second)

		if devs, _ := phone.devices().json(t)["devices"].([]any); len(devs) != 2 {
			t.Fatalf("devices: %v", devs)
		}
		if r := tablet.revokeDevice(phone.devID); r.status != http.StatusNoContent {
			t.Fatalf("tablet signs the phone out: %d", r.status)
		}
		if r := phone.me(); r.status != http.StatusUnauthorized {
			t.Fatalf("signed-out phone: %d", r.status)
		}
		if r := phone.refreshWith(phone.rt); r.status != http.StatusBadRequest || r.code(t) != issuer.CodeInvalidGrant {
			t.Fatalf("signed-out phone refresh: %d %s", r.status, r.body)
		}
	})
}

// TestLinkCodeDiesWithItsDevice: a link code made on a device that is
// then signed out brings no device in. A thief on a stolen phone makes a
// code; the owner revokes the phone from the tablet (or the phone logs
// out, its refresh token is replayed, an admin revokes it); within the
// code's lifetime a new device's redemption gets invalid_link_code, the
// answer of an unknown code. The tablet's own code still works.
func TestLinkCodeDiesWithItsDevice(t *testing.T) {
	forEachBackend(t, func(t *testing.T, be backend) {
		a := newAdminEnv(t, be)
		endings := []struct {
			name string
			end  func(phone, tablet *device) resp
			want int
		}{
			{"revoked by the tablet", func(phone, tablet *device) resp { return tablet.revokeDevice(phone.devID) }, http.StatusNoContent},
			{"logged out", func(phone, _ *device) resp { return phone.logout() }, http.StatusNoContent},
			{"refresh token replayed", func(phone, _ *device) resp {
				old := phone.rt
				phone.refresh()
				a.clock.Advance(time.Minute)
				return phone.refreshWith(old)
			}, http.StatusBadRequest},
			{"revoked by an admin", func(phone, _ *device) resp {
				return a.call(http.MethodDelete, "/v1/admin/devices/"+phone.devID, nil)
			}, http.StatusNoContent},
		}
		for i, tc := range endings {
			phone := a.newDevice("ES256")
			phone.signup(fmt.Sprintf("stolen%d", i))
			tablet := a.newDevice("EdDSA")
			tablet.keep(tablet.link(phone.linkCode()))
			thiefCode, ownCode := phone.linkCode(), tablet.linkCode()
			if r := tc.end(phone, tablet); r.status != tc.want {
				t.Fatalf("%s: %d %s", tc.name, r.status, r.body)
			}
			if r := a.newDevice("EdDSA").link(thiefCode); r.status != http.StatusBadRequest || r.code(t) != issuer.CodeInvalidLinkCode {
				t.Fatalf("%s: the signed-out phone's code: %d %s", tc.name, r.status, r.body)
			}
			if r := a.newDevice("EdDSA").link(ownCode); r.status != http.StatusCreated {
				t.Fatalf("%s: the tablet's code: %d %s", tc.name, r.status, r.body)
			}
		}
	})
}

// TestLinkCodeLimit: at most MaxLinkCodes live codes per account.
func TestLinkCodeLimit(t *testing.T) {
	e := newEnv(t, &boltBackend{})
	d := e.newDevice("EdDSA")
	d.signup("manycodes")
	for range issuer.DefaultMaxLinkCodes {
		d.linkCode()
	}
	r := d.authJSON(http.MethodPost, issuer.PathLinkCodes, nil)
	if r.status != http.StatusTooManyRequests || r.header.Get("Retry-After") == "" {
		t.Fatalf("one code too many: %d %s", r.status, r.body)
	}
	// The flow's detail says what to do (it was dropped for the generic
	// rate_limited text, which speaks of addresses and attempts).
	if got := r.str(t, "detail"); !strings.Contains(got, "live link codes") {
		t.Fatalf("detail %q, want the flow's advice on live link codes", got)
	}
}

// TestLinkCodeDeviceLimit: past MaxDevices (live link codes counted) POST
// /v1/me/link-codes answers 409 device_limit with the flow's advice, on
// both stores; a device signed out makes room again.
func TestLinkCodeDeviceLimit(t *testing.T) {
	forEachBackend(t, func(t *testing.T, be backend) {
		e := newEnv(t, be, func(c *issuer.Config) { c.MaxDevices = 2 })
		d := e.newDevice("EdDSA")
		d.signup("twodevices")
		code := d.linkCode()
		r := d.authJSON(http.MethodPost, issuer.PathLinkCodes, nil)
		if r.status != http.StatusConflict || r.code(t) != "device_limit" || !strings.Contains(r.str(t, "detail"), "sign a device out") {
			t.Fatalf("a code past the device limit: %d %s", r.status, r.body)
		}
		other := e.newDevice("ES256")
		other.keep(other.link(code))
		if r := d.authJSON(http.MethodPost, issuer.PathLinkCodes, nil); r.status != http.StatusConflict {
			t.Fatalf("two devices: %d %s", r.status, r.body)
		}
		if r := d.authJSON(http.MethodDelete, issuer.PathMeDevices+"/"+other.devID, nil); r.status != http.StatusNoContent {
			t.Fatalf("signing the other device out: %d %s", r.status, r.body)
		}
		d.linkCode()
	})
}

// TestRecoverAfterEveryEnding: after a logout, a reuse detection and an
// admin sign-out, the account comes back on a new device with a recovery
// code, keeping its id and username; each code works once.
func TestRecoverAfterEveryEnding(t *testing.T) {
	forEachBackend(t, func(t *testing.T, be backend) {
		a := newAdminEnv(t, be)
		d := a.newDevice("ES256")
		d.signup("phoenix")
		codes := d.recoveryCodes()
		if me := d.me(); me.json(t)["recovery_codes_left"] != float64(10) {
			t.Fatalf("me: %s", me.body)
		}
		endings := []func(d *device){
			func(d *device) { d.logout() },
			func(d *device) { old := d.rt; d.refresh(); a.clock.Advance(time.Minute); d.refreshWith(old) },
			func(d *device) { a.call(http.MethodDelete, "/v1/admin/devices/"+d.devID, nil) },
		}
		for i, end := range endings {
			end(d)
			if r := d.refreshWith(d.rt); r.status != http.StatusBadRequest {
				t.Fatalf("ending %d: refresh %d", i, r.status)
			}
			n := a.newDevice("EdDSA")
			n.keep(n.recoverWith("phoenix", codes[i], nil, ""))
			if n.accID != d.accID {
				t.Fatalf("ending %d: recovered into %s, want %s", i, n.accID, d.accID)
			}
			if r := a.newDevice("EdDSA").recoverWith("phoenix", codes[i], nil, ""); r.status != http.StatusBadRequest || r.code(t) != issuer.CodeInvalidRecoveryCode {
				t.Fatalf("ending %d: a used code: %d %s", i, r.status, r.body)
			}
			d = n
		}
		if me := d.me(); me.json(t)["recovery_codes_left"] != float64(7) {
			t.Fatalf("me after three recoveries: %s", me.body)
		}
	})
}

// TestRecoverSignsOthersOut: recovering signs the other devices out by
// default, and keeps them when asked.
func TestRecoverSignsOthersOut(t *testing.T) {
	forEachBackend(t, func(t *testing.T, be backend) {
		var mirror *revocation.Mirror
		e := newEnv(t, be, withRevocation(t, be, &mirror, nil))
		d := e.newDevice("ES256")
		d.signup("lostphone")
		codes := d.recoveryCodes()
		keep := false
		kept := e.newDevice("EdDSA")
		kept.keep(kept.recoverWith("lostphone", codes[0], &keep, ""))
		if r := d.me(); r.status != http.StatusOK {
			t.Fatalf("sign_out_other_devices=false signed the phone out: %d", r.status)
		}
		fresh := e.newDevice("EdDSA")
		fresh.keep(fresh.recoverWith("lostphone", codes[1], nil, ""))
		for _, old := range []*device{d, kept} {
			if r := old.me(); r.status != http.StatusUnauthorized {
				t.Fatalf("old device still in: %d", r.status)
			}
			if r := old.refreshWith(old.rt); r.status != http.StatusBadRequest {
				t.Fatalf("old device refreshes: %d", r.status)
			}
			waitRevoked(t, mirror, old.access)
		}
		if r := fresh.me(); r.status != http.StatusOK {
			t.Fatalf("recovered device: %d", r.status)
		}
	})
}

// TestRecoverWrongCodeAndUnknownUserAlike: a wrong code and an unknown
// username get the same status and body.
func TestRecoverWrongCodeAndUnknownUserAlike(t *testing.T) {
	e := newEnv(t, &boltBackend{})
	d := e.newDevice("EdDSA")
	d.signup("realuser")
	d.recoveryCodes()
	wrong := e.newDevice("EdDSA").recoverWith("realuser", "ABCDE-FGHJK-MNPQR-STVWX", nil, "")
	unknown := e.newDevice("EdDSA").recoverWith("nosuchuser", "ABCDE-FGHJK-MNPQR-STVWX", nil, "")
	if wrong.status != http.StatusBadRequest || wrong.status != unknown.status || string(wrong.body) != string(unknown.body) {
		t.Fatalf("wrong code %d %s; unknown user %d %s", wrong.status, wrong.body, unknown.status, unknown.body)
	}
}

// TestRecoverGuessingLimited: the per-account budget stops guessing from
// one address with 429 and Retry-After, and the owner, from another
// address, still gets in.
func TestRecoverGuessingLimited(t *testing.T) {
	be := &boltBackend{}
	e := newEnv(t, be, func(c *issuer.Config) {
		c.Limiter = be.limiter(t)
		c.RecoverPerAccount = mustRule(t, "3/h")
		c.TrustedProxies = append(c.TrustedProxies, mustPrefix(t, "127.0.0.0/8"))
	})
	d := e.newDevice("EdDSA")
	d.signup("target")
	codes := d.recoveryCodes()
	for i := range 3 {
		if r := e.newDevice("EdDSA").recoverWith("target", "ABCDE-FGHJK-MNPQR-STVWX", nil, "198.51.100.7"); r.status != http.StatusBadRequest {
			t.Fatalf("guess %d: %d", i, r.status)
		}
	}
	r := e.newDevice("EdDSA").recoverWith("target", codes[0], nil, "198.51.100.7")
	if r.status != http.StatusTooManyRequests || r.header.Get("Retry-After") == "" {
		t.Fatalf("fourth try from the guessing address: %d %s", r.status, r.body)
	}
	owner := e.newDevice("EdDSA")
	owner.keep(owner.recoverWith("target", codes[0], nil, "203.0.113.9"))
}

// TestRenameLimited: every name an account leaves stays held, so renames
// have a per-account budget: past it 429 with Retry-After and the name
// unchanged; a rename to the account's own name (another case) spends
// nothing, and another account has its own budget. The budget refills.
func TestRenameLimited(t *testing.T) {
	forEachBackend(t, func(t *testing.T, be backend) {
		e := newEnv(t, be, func(c *issuer.Config) {
			c.Limiter = be.limiter(t)
			c.RenamePerAccount = mustRule(t, "2/d")
		})
		d := e.newDevice("EdDSA")
		d.signup("squatter")
		rename := func(d *device, name string) resp {
			return d.authJSON(http.MethodPatch, issuer.PathMe, map[string]string{"username": name})
		}
		for i, name := range []string{"squat_1", "SQUAT_1", "squat_2"} {
			if r := rename(d, name); r.status != http.StatusOK {
				t.Fatalf("rename %d to %s: %d %s", i, name, r.status, r.body)
			}
		}
		r := rename(d, "squat_3")
		if r.status != http.StatusTooManyRequests || r.code(t) != "rate_limited" || r.header.Get("Retry-After") == "" {
			t.Fatalf("third rename: %d %s", r.status, r.body)
		}
		if me := d.me(); me.str(t, "username") != "squat_2" {
			t.Fatalf("after the refused rename: %s", me.body)
		}
		other := e.newDevice("EdDSA")
		other.signup("bystander")
		if r := rename(other, "bystander_2"); r.status != http.StatusOK {
			t.Fatalf("another account's rename: %d %s", r.status, r.body)
		}
		e.clock.Advance(24 * time.Hour)
		d.refresh()
		if r := rename(d, "squat_3"); r.status != http.StatusOK {
			t.Fatalf("a day later: %d %s", r.status, r.body)
		}
	})
}

// TestConcurrentRedemptions: one link code or recovery code redeemed by
// 16 devices at once lets exactly one in.
func TestConcurrentRedemptions(t *testing.T) {
	forEachBackend(t, func(t *testing.T, be backend) {
		e := newEnv(t, be)
		d := e.newDevice("EdDSA")
		d.signup("racer")
		link := d.linkCode()
		recovery := d.recoveryCodes()[0]
		for name, try := range map[string]func(n *device) resp{
			"link":     func(n *device) resp { return n.link(link) },
			"recovery": func(n *device) resp { return n.recoverWith("racer", recovery, new(bool), "") },
		} {
			devs := make([]*device, 16)
			for i := range devs {
				devs[i] = e.newDevice("EdDSA")
			}
			var wg sync.WaitGroup
			var mu sync.Mutex
			won := 0
			for _, n := range devs {
				wg.Go(func() {
					r := try(n)
					mu.Lock()
					defer mu.Unlock()
					if r.status == http.StatusCreated {
						won++
					} else if r.status != http.StatusBadRequest {
						t.Errorf("%s: %d %s", name, r.status, r.body)
					}
				})
			}
			wg.Wait()
			if won != 1 {
				t.Fatalf("%s: %d devices joined, want exactly 1", name, won)
			}
		}
	})
}

// TestDeleteAndRename: deleting refuses every token at once and holds the
// name until the hold ends; renaming claims the new name and holds the old.
func TestDeleteAndRename(t *testing.T) {
	forEachBackend(t, func(t *testing.T, be backend) {
		var mirror *revocation.Mirror
		e := newEnv(t, be, withClockedRevocation(t, be, &mirror))
		d := e.newDevice("ES256")
		d.signup("oldname")
		r := d.authJSON(http.MethodPatch, issuer.PathMe, map[string]string{"username": "NewName"})
		if r.status != http.StatusOK || r.str(t, "username") != "NewName" {
			t.Fatalf("rename: %d %s", r.status, r.body)
		}
		if r := e.newDevice("EdDSA").signupRaw("oldname"); r.status != http.StatusConflict {
			t.Fatalf("old name during its hold: %d", r.status)
		}
		other := e.newDevice("EdDSA")
		other.signup("other")
		if r := other.authJSON(http.MethodPatch, issuer.PathMe, map[string]string{"username": "newname"}); r.status != http.StatusConflict || r.code(t) != issuer.CodeUsernameTaken {
			t.Fatalf("rename onto a taken name: %d %s", r.status, r.body)
		}
		if r := d.authJSON(http.MethodDelete, issuer.PathMe, nil); r.status != http.StatusNoContent {
			t.Fatalf("delete: %d %s", r.status, r.body)
		}
		if r := d.me(); r.status != http.StatusUnauthorized {
			t.Fatalf("me after delete: %d", r.status)
		}
		waitRevoked(t, mirror, d.access)
		if r := d.refreshWith(d.rt); r.status != http.StatusBadRequest {
			t.Fatalf("refresh after delete: %d", r.status)
		}
		if r := e.newDevice("EdDSA").signupRaw("newname"); r.status != http.StatusConflict {
			t.Fatalf("deleted name during its hold: %d", r.status)
		}
		e.clock.Advance(issuer.DefaultUsernameHold + time.Hour)
		for _, name := range []string{"newname", "oldname"} {
			n := e.newDevice("EdDSA")
			if r := n.signupRaw(name); r.status != http.StatusCreated {
				t.Fatalf("%s after its hold: %d %s", name, r.status, r.body)
			}
		}
	})
}

func (d *device) signupRaw(username string) resp { return d.e.do(d.signupReq(username)) }

// TestNoCodeOrPepperAtRest: no link code, recovery code or pepper is in
// the data file, in Redis (keys and values) or in the log; only digests
// are stored.
func TestNoCodeOrPepperAtRest(t *testing.T) {
	forEachBackend(t, func(t *testing.T, be backend) {
		e := newEnv(t, be)
		d := e.newDevice("EdDSA")
		d.signup("secretive")
		secrets := append(d.recoveryCodes(), d.linkCode())
		n := e.newDevice("EdDSA")
		n.keep(n.recoverWith("secretive", secrets[0], nil, ""))
		var stored string
		switch b := be.(type) {
		case *boltBackend:
			e.store.Close()
			raw, err := os.ReadFile(b.path)
			if err != nil {
				t.Fatal(err)
			}
			stored = string(raw)
		case *redisBackend:
			stored = redisDump(t, b)
		}
		if len(stored) < 100 {
			t.Fatalf("nothing stored? %d bytes", len(stored))
		}
		pepper := e.cfg.Pepper.(flow.StaticPepper)[0]
		for _, hay := range []string{stored, e.logs.String()} {
			if strings.Contains(hay, string(pepper)) {
				t.Fatal("the pepper is stored or logged")
			}
			for _, s := range secrets {
				if strings.Contains(hay, s) || strings.Contains(hay, strings.ReplaceAll(s, "-", "")) {
					t.Fatal("a code is stored or logged")
				}
			}
		}
	})
}

// redisDump is every key and value of the test's Redis, as text.
func redisDump(t *testing.T, b *redisBackend) string {
	t.Helper()
	ctx := context.Background()
	var sb strings.Builder
	iter := b.client.Scan(ctx, 0, "*", 1000).Iterator()
	for iter.Next(ctx) {
		k := iter.Val()
		sb.WriteString(k + "\n")
		sb.WriteString(redisValue(t, b, k) + "\n")
	}
	if err := iter.Err(); err != nil {
		t.Fatal(err)
	}
	return sb.String()
}

func mustRule(t testing.TB, s string) ratelimit.Rule {
	t.Helper()
	r, err := ratelimit.ParseRule(s)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// redisValue reads one key's value by its type (DUMP would compress).
func redisValue(t *testing.T, b *redisBackend, k string) string {
	t.Helper()
	ctx := context.Background()
	c := b.client
	typ, err := c.Type(ctx, k).Result()
	if err != nil {
		t.Fatal(err)
	}
	var v any
	switch typ {
	case "string":
		v, err = c.Get(ctx, k).Result()
	case "hash":
		v, err = c.HGetAll(ctx, k).Result()
	case "set":
		v, err = c.SMembers(ctx, k).Result()
	case "zset":
		v, err = c.ZRangeWithScores(ctx, k, 0, -1).Result()
	case "list":
		v, err = c.LRange(ctx, k, 0, -1).Result()
	case "stream":
		v, err = c.XRange(ctx, k, "-", "+").Result()
	case "none":
		return "" // expired meanwhile
	default:
		t.Fatalf("key %s of type %s", k, typ)
	}
	if err != nil {
		t.Fatal(err)
	}
	return fmt.Sprint(v)
}

// TestRevocationStaysRevoked: every path that adds a device or account
// entry ends the matching sessions: refresh answers invalid_grant at once
// and still after the entry has expired.
func TestRevocationStaysRevoked(t *testing.T) {
	forEachBackend(t, func(t *testing.T, be backend) {
		var mirror *revocation.Mirror
		a := newAdminEnv(t, be, withClockedRevocation(t, be, &mirror))
		paths := revocationPaths(t, a, mirror)
		devs := make([]*device, len(paths))
		for i, p := range paths {
			devs[i] = a.newDevice("EdDSA")
			devs[i].signup("stays" + string(rune('a'+i)))
			p.do(devs[i])
			if r := devs[i].refreshWith(devs[i].rt); r.status != http.StatusBadRequest || r.code(t) != issuer.CodeInvalidGrant {
				t.Fatalf("%s: refresh %d %s", p.name, r.status, r.body)
			}
		}
		a.clock.Advance(issuer.DefaultAccessTTL + issuer.DefaultLeeway + time.Hour)
		for i, p := range paths {
			if r := devs[i].refreshWith(devs[i].rt); r.status != http.StatusBadRequest || r.code(t) != issuer.CodeInvalidGrant {
				t.Fatalf("%s: refresh after the entry expired: %d %s", p.name, r.status, r.body)
			}
		}
	})
}

// revocationPath is one way a device's access tokens get refused: do
// revokes d's tokens (or its account's).
type revocationPath struct {
	name string
	do   func(d *device)
}

// revocationPaths are the ways a device or an account is revoked, on an
// admin env with a revocation store and mirror.
func revocationPaths(t *testing.T, a *adminEnv, mirror *revocation.Mirror) []revocationPath {
	return []revocationPath{
		{"logout", func(d *device) { d.logout() }},
		{"reuse", func(d *device) { old := d.rt; d.refresh(); a.clock.Advance(time.Minute); d.refreshWith(old) }},
		{"self-service sign-out", func(d *device) { d.revokeDevice(d.devID) }},
		{"admin device sign-out", func(d *device) { a.call(http.MethodDelete, "/v1/admin/devices/"+d.devID, nil) }},
		{"generic device entry", func(d *device) {
			a.call(http.MethodPost, issuer.PathAdminRevocations, map[string]string{"kind": "device", "id": d.devID})
		}},
		{"generic account entry", func(d *device) {
			a.call(http.MethodPost, issuer.PathAdminRevocations, map[string]string{"kind": "account", "id": d.accID})
		}},
		{"ban then unban", func(d *device) {
			a.call(http.MethodPost, "/v1/admin/accounts/"+d.accID+"/ban", nil)
			a.call(http.MethodPost, "/v1/admin/accounts/"+d.accID+"/unban", nil)
		}},
		{"deletion", func(d *device) { d.authJSON(http.MethodDelete, issuer.PathMe, nil) }},
		{"recovery signing out the other devices", func(d *device) {
			name, codes, yes := d.me().str(t, "username"), d.recoveryCodes(), true
			if r := a.newDevice("ES256").recoverWith(name, codes[0], &yes, ""); r.status != http.StatusCreated {
				t.Fatalf("recover: %d %s", r.status, r.body)
			}
		}},
		{"entry written elsewhere, sessions untouched", func(d *device) {
			// Only the entry (as a node that failed after writing it):
			// refresh asks the mirror and ends the session itself.
			en, err := revocation.NewEntry(revocation.KindDevice, d.devID, "test", a.clock.Now(), time.Hour)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := a.cfg.Revocations.Add(context.Background(), en); err != nil {
				t.Fatal(err)
			}
			waitRevoked(t, mirror, d.access)
		}},
	}
}

// TestUsernameReasonOnTheWire: a refused name says why, in a sub-code a
// game UI can show.
func TestUsernameReasonOnTheWire(t *testing.T) {
	e := newEnv(t, &boltBackend{})
	tests := []struct{ name, reason string }{
		{"a", "too_short"},
		{"admin", "reserved"},
		{"admın", "confusable"},
		{"\u0430lice", "mixed_script"}, // Cyrillic а, Latin lice
		{"bad name!", "disallowed_character"},
	}
	for _, tt := range tests {
		t.Run(tt.reason, func(t *testing.T) {
			r := e.newDevice("EdDSA").signupRaw(tt.name)
			if r.status != http.StatusBadRequest || r.code(t) != issuer.CodeUsernameInvalid {
				t.Fatalf("%q: %d %s", tt.name, r.status, r.body)
			}
			if got := r.str(t, "reason"); got != tt.reason {
				t.Fatalf("%q: reason %q, want %q", tt.name, got, tt.reason)
			}
		})
	}
	// A whole-script look-alike of a taken name is that name.
	e.newDevice("EdDSA").signup("alice159")
	if r := e.newDevice("EdDSA").signupRaw("аӏісе159"); r.status != http.StatusConflict || r.code(t) != issuer.CodeUsernameTaken {
		t.Fatalf("Cyrillic look-alike of a taken name: %d %s", r.status, r.body)
	}
}
