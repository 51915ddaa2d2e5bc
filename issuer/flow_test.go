package issuer_test

import (
	"context"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/hallpass/hallpass/account"
	"github.com/hallpass/hallpass/issuer"
)

// backends lists the engines every flow test runs on.
func backends(t *testing.T) []func(t testing.TB) backend {
	return []func(t testing.TB) backend{
		func(t testing.TB) backend { return &boltBackend{} },
		func(t testing.TB) backend { return newRedisBackend(t) },
	}
}

func forEachBackend(t *testing.T, fn func(t *testing.T, be backend)) {
	for _, mk := range backends(t) {
		be := mk(t)
		t.Run(be.name(), func(t *testing.T) {
			t.Parallel()
			fn(t, be)
		})
	}
}

func TestFlowSurvivesRestart(t *testing.T) {
	forEachBackend(t, func(t *testing.T, be backend) {
		e := newEnv(t, be)
		for _, alg := range []string{"EdDSA", "ES256"} {
			d := e.newDevice(alg)
			r := d.signup("Alice_" + alg)
			if got := r.str(t, "username"); got != "Alice_"+alg {
				t.Errorf("username %q", got)
			}
			if exp := r.json(t)["expires_in"].(float64); r.str(t, "token_type") != "DPoP" || exp < 598 || exp > 600 {
				t.Errorf("signup response %s", r.body)
			}
			if r.header.Get("Cache-Control") != "no-store" {
				t.Errorf("signup Cache-Control %q", r.header.Get("Cache-Control"))
			}
			checkMe(t, d)
			d.refresh()
			d.refresh()
			checkMe(t, d)

			e.restart()
			checkMe(t, d) // access token still valid: same ring, same store
			d.refresh()
			checkMe(t, d)
		}
	})
}

func checkMe(t *testing.T, d *device) {
	t.Helper()
	r := d.me()
	if r.status != http.StatusOK {
		t.Fatalf("/v1/me: status %d, body %s\nlogs:\n%s", r.status, r.body, grep(d.e.logs.String(), "refused"))
	}
	if r.str(t, "account_id") != d.accID || r.str(t, "device_id") != d.devID || r.str(t, "username") == "" {
		t.Fatalf("/v1/me: %s", r.body)
	}
}

func TestConcurrentRefreshSameSuccessor(t *testing.T) {
	forEachBackend(t, func(t *testing.T, be backend) {
		e := newEnv(t, be)
		d := e.newDevice("EdDSA")
		d.signup("racer")
		const n = 64
		reqs := make([]*http.Request, n)
		for i := range reqs {
			reqs[i] = d.refreshReq(d.rt)
		}
		res := make([]resp, n)
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				res[i] = e.do(reqs[i])
			}()
		}
		close(start)
		wg.Wait()
		first := res[0]
		for i, r := range res {
			if r.status != http.StatusOK {
				t.Fatalf("refresh %d: status %d, body %s", i, r.status, r.body)
			}
			if r.str(t, "access_token") != first.str(t, "access_token") || r.str(t, "refresh_token") != first.str(t, "refresh_token") {
				t.Fatalf("refresh %d got another successor", i)
			}
		}
		d.access, d.rt = first.str(t, "access_token"), first.str(t, "refresh_token")
		checkMe(t, d)
		d.refresh()
	})
}

func TestLostResponseRetriedWithinGrace(t *testing.T) {
	forEachBackend(t, func(t *testing.T, be backend) {
		e := newEnv(t, be)
		d := e.newDevice("ES256")
		d.signup("lossy")
		old := d.rt
		lost := d.refreshWith(old) // the client never saw this answer
		if lost.status != http.StatusOK {
			t.Fatalf("refresh: %d %s", lost.status, lost.body)
		}
		e.clock.Advance(20 * time.Second)
		again := d.refreshWith(old)
		if again.status != http.StatusOK {
			t.Fatalf("retry within grace: %d %s", again.status, again.body)
		}
		if again.str(t, "refresh_token") != lost.str(t, "refresh_token") || again.str(t, "access_token") != lost.str(t, "access_token") {
			t.Fatal("retry within grace got another pair")
		}
		if exp := again.json(t)["expires_in"].(float64); exp > 581 || exp < 560 {
			t.Errorf("expires_in on the replayed pair = %v, want about 580", exp)
		}
		d.access, d.rt = again.str(t, "access_token"), again.str(t, "refresh_token")
		d.refresh()
		checkMe(t, d)
	})
}

func TestReuseRevokesDevice(t *testing.T) {
	forEachBackend(t, func(t *testing.T, be backend) {
		e := newEnv(t, be)
		d := e.newDevice("EdDSA")
		d.signup("reuser")
		t0 := d.rt
		d.refresh()
		d.refresh()
		// t0 is two generations old: reuse.
		r := d.refreshWith(t0)
		if r.status != http.StatusBadRequest || r.code(t) != "invalid_grant" {
			t.Fatalf("reuse: %d %s", r.status, r.body)
		}
		if r := d.refreshWith(d.rt); r.status != http.StatusBadRequest || r.code(t) != "invalid_grant" {
			t.Fatalf("current token after reuse: %d %s", r.status, r.body)
		}
		if r := d.me(); r.status != http.StatusUnauthorized || r.code(t) != "token_revoked" {
			t.Fatalf("/v1/me after reuse: %d %s", r.status, r.body)
		}
		if !containsLog(e, `"event":"refresh_reuse"`) {
			t.Error("no audit line for the reuse")
		}
		dev, err := e.store.GetDevice(context.Background(), d.devID)
		if err != nil || dev.Active() {
			t.Fatalf("device after reuse: %+v, %v", dev, err)
		}
		if m := scrape(t, e); !contains(m, "hallpass_refresh_reuse_detected_total 1") || !contains(m, `hallpass_refreshes_total{outcome="reused"} 1`) {
			t.Errorf("reuse metrics missing:\n%s", m)
		}
	})
}

func TestReuseAfterGrace(t *testing.T) {
	e := newEnv(t, &boltBackend{})
	d := e.newDevice("EdDSA")
	d.signup("slowpoke")
	old := d.rt
	d.refresh()
	e.clock.Advance(31 * time.Second)
	if r := d.refreshWith(old); r.status != http.StatusBadRequest || r.code(t) != "invalid_grant" {
		t.Fatalf("previous token after grace: %d %s", r.status, r.body)
	}
	if r := d.refreshWith(d.rt); r.status != http.StatusBadRequest {
		t.Fatalf("session should be ended: %d %s", r.status, r.body)
	}
}

func TestStolenRefreshTokenOtherKey(t *testing.T) {
	forEachBackend(t, func(t *testing.T, be backend) {
		e := newEnv(t, be)
		d := e.newDevice("EdDSA")
		d.signup("victim")
		thief := e.newDevice("ES256")
		for range 3 {
			r := thief.refreshWith(d.rt)
			if r.status != http.StatusBadRequest || r.code(t) != "invalid_grant" {
				t.Fatalf("stolen refresh: %d %s", r.status, r.body)
			}
		}
		// The thief also cannot use the access token with its own key.
		if r := e.do(thief.authReq(http.MethodGet, "/v1/me", d.access)); r.status != http.StatusUnauthorized || r.code(t) != "invalid_dpop_proof" {
			t.Fatalf("stolen access token: %d %s", r.status, r.body)
		}
		sess, err := e.store.GetSession(context.Background(), d.devID)
		if err != nil || sess.Counter != 0 || !sess.Ended.IsZero() {
			t.Fatalf("session changed by the thief: %+v %v", sess, err)
		}
		d.refresh()
		checkMe(t, d)
	})
}

// TestLogout runs with the verified-token cache (the default: the logout
// itself puts the token in it, so the refusals after it are cache hits)
// and without it.
func TestLogout(t *testing.T) {
	t.Run("TokenCache", func(t *testing.T) { testLogout(t) })
	t.Run("NoTokenCache", func(t *testing.T) { testLogout(t, func(c *issuer.Config) { c.NoTokenCache = true }) })
}

func testLogout(t *testing.T, opts ...option) {
	forEachBackend(t, func(t *testing.T, be backend) {
		e := newEnv(t, be, opts...)
		d := e.newDevice("EdDSA")
		d.signup("leaver")
		other := e.newDevice("EdDSA")
		other.signup("stayer")
		if r := d.logout(); r.status != http.StatusNoContent {
			t.Fatalf("logout: %d %s", r.status, r.body)
		}
		if r := d.me(); r.status != http.StatusUnauthorized || r.code(t) != "token_revoked" {
			t.Fatalf("/v1/me after logout: %d %s", r.status, r.body)
		}
		if r := d.refreshWith(d.rt); r.status != http.StatusBadRequest || r.code(t) != "invalid_grant" {
			t.Fatalf("refresh after logout: %d %s", r.status, r.body)
		}
		if r := d.logout(); r.status != http.StatusUnauthorized {
			t.Fatalf("second logout: %d %s", r.status, r.body)
		}
		checkMe(t, other)
	})
}

func TestConcurrentSignupsOneAccountPerName(t *testing.T) {
	forEachBackend(t, func(t *testing.T, be backend) {
		e := newEnv(t, be)
		const names, per = 20, 10
		// Variants that map to one name: as typed, upper case, full width.
		// The 20 letters leave out i, l and o, whose skeletons (UTS #39)
		// meet those of 1, I and 0: names built from them would be one
		// name.
		const letters = "abcdefghjkmnpqrstuvw"
		variant := func(i, j int) string {
			base := []rune("user" + string(letters[i]) + "x")
			switch j % 3 {
			case 1:
				for k, r := range base {
					base[k] = r - 'a' + 'A'
				}
			case 2:
				for k, r := range base {
					base[k] = r - 'a' + 'ａ' // FULLWIDTH LATIN SMALL LETTER
				}
			}
			return string(base)
		}
		type result struct {
			status int
			name   int
		}
		reqs := make([]*http.Request, 0, names*per)
		idx := make([]int, 0, names*per)
		for i := range names {
			for j := range per {
				d := e.newDevice("EdDSA")
				reqs = append(reqs, d.signupReq(variant(i, j)))
				idx = append(idx, i)
			}
		}
		out := make([]result, len(reqs))
		var wg sync.WaitGroup
		start := make(chan struct{})
		for k := range reqs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				r := e.do(reqs[k])
				if r.status != http.StatusCreated && (r.status != http.StatusConflict || r.code(t) != "username_taken") {
					t.Errorf("signup: %d %s", r.status, r.body)
				}
				out[k] = result{r.status, idx[k]}
			}()
		}
		close(start)
		wg.Wait()
		created := make(map[int]int)
		total := 0
		for _, r := range out {
			if r.status == http.StatusCreated {
				created[r.name]++
				total++
			}
		}
		if total != names {
			t.Fatalf("%d accounts created, want %d", total, names)
		}
		for i := range names {
			if created[i] != 1 {
				t.Errorf("name %d: %d accounts", i, created[i])
			}
			name, err := account.DefaultUsernamePolicy().Check(variant(i, 0))
			if err != nil {
				t.Fatal(err)
			}
			if _, err := e.store.GetAccountByUsername(context.Background(), name.Key); err != nil {
				t.Errorf("name %d: %v", i, err)
			}
		}
		if m := scrape(t, e); !contains(m, "hallpass_signups_total 20") {
			t.Errorf("signup metric:\n%s", grep(m, "hallpass_signups_total"))
		}
	})
}

var _ = account.ErrNotFound
