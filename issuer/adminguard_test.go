package issuer_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/hallpass/hallpass/issuer"
	"github.com/hallpass/hallpass/ratelimit"
)

// TestAdminJunkCannotFlushAudit is the regression test of issue 11,
// finding 6. The reproduction: about 100k unauthenticated requests to the
// admin listener, each appended to the capped audit stream (MAXLEN ~100000),
// pushed every real admin record out. Here 10k junk calls (no key, a wrong
// key, from 100 addresses) leave the sink (a MemoryAudit keeping 1000, and
// on Redis the stream too) with the real records and at most the sample of
// refused ones; every junk call is counted, and the record after the
// sample says how many were dropped. Failed authentication (a wrong key)
// is limited per address: past the budget the answer is 429 and the key
// is not looked at.
// Both results of hallpass_admin_refused_total are exported at 0 before
// the first refusal: a burst between two scrapes is then an increase
// Prometheus counts (deploy/prometheus/alerts.yml, HallpassAdminAuthFailures).
func TestAdminRefusedSeriesFromStart(t *testing.T) {
	forEachBackend(t, func(t *testing.T, be backend) {
		m := scrape(t, newAdminEnv(t, be).env)
		for _, want := range []string{
			`hallpass_admin_refused_total{result="rate_limited"} 0`,
			`hallpass_admin_refused_total{result="unauthorized"} 0`,
		} {
			if !contains(m, want) {
				t.Errorf("metrics lack %s:\n%s", want, grep(m, "admin_refused"))
			}
		}
	})
}

func TestAdminJunkCannotFlushAudit(t *testing.T) {
	forEachBackend(t, func(t *testing.T, be backend) {
		a := newAdminEnv(t, be)
		const junk, perMinute = 10_000, issuer.DefaultAuditRefusedPerMinute
		first := a.call(http.MethodGet, issuer.PathAdminRevocations, nil)
		if first.status != http.StatusOK {
			t.Fatalf("real call before: %d %s", first.status, first.body)
		}
		wrong, _, err := issuer.NewAdminKey(nil, "nobody", time.Now())
		if err != nil {
			t.Fatal(err)
		}
		h := a.srv.AdminHandler()
		start := a.clock.Now()
		codes := map[int]int{}
		for i := range junk {
			req := httptest.NewRequest(http.MethodGet, issuer.PathAdminRevocations, nil)
			req.RemoteAddr = fmt.Sprintf("10.9.%d.%d:4711", i%100/10, i%10)
			if i%2 == 1 {
				req.Header.Set("Authorization", "Bearer "+wrong)
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			codes[rec.Code]++
		}
		elapsed := a.clock.Now().Sub(start)
		if codes[http.StatusUnauthorized]+codes[http.StatusTooManyRequests] != junk || codes[http.StatusTooManyRequests] == 0 {
			t.Fatalf("junk answers %v, want only 401 and 429", codes)
		}
		// The budget is per address: 10 wrong keys each, then 429. The 50
		// addresses sending no key spend none (only a key can be a guess).
		if n := codes[http.StatusUnauthorized] - junk/2; n < 50*issuer.DefaultAdminAuthLimit.Limit || n > 100*issuer.DefaultAdminAuthLimit.Limit {
			t.Errorf("%d wrong keys answered 401, want about 10 per address", n)
		}
		// A blocked address gets 429 even with the right key (the key is
		// not looked at); another address is served.
		req := httptest.NewRequest(http.MethodGet, issuer.PathAdminRevocations, nil)
		req.RemoteAddr = "10.9.0.1:4711" // sent wrong keys
		req.Header.Set("Authorization", "Bearer "+a.key)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != http.StatusTooManyRequests || rec.Header().Get("Retry-After") == "" {
			t.Fatalf("right key from a blocked address: %d %v", rec.Code, rec.Header())
		}
		if r := a.call(http.MethodGet, issuer.PathAdminRevocations, nil); r.status != http.StatusOK {
			t.Fatalf("real call after: %d %s", r.status, r.body)
		}

		recs := a.audit.Records()
		var real, refused []issuer.AuditRecord
		for _, r := range recs {
			if r.Who == "-" {
				refused = append(refused, r)
			} else {
				real = append(real, r)
			}
		}
		if len(real) != 2 || real[0].RequestID != first.header.Get("X-Request-Id") || real[1].Who != "ops-alice" || real[1].Status != 200 {
			t.Fatalf("real records %+v, want both calls, the one before the junk first", real)
		}
		// The sample: perMinute per window; a slow run may span windows.
		windows := int(elapsed/time.Minute) + 2
		if len(refused) > perMinute*windows {
			t.Fatalf("%d refused calls recorded in %v, want at most %d a minute", len(refused), elapsed, perMinute)
		}
		if n := a.streamLen(t); n >= 0 && n != int64(len(recs)) {
			t.Fatalf("audit stream has %d records, memory %d", n, len(recs))
		}
		m := scrape(t, a.env)
		refusedTotal := junk + 1 // and the right key from the blocked address
		dropped := refusedTotal - len(refused)
		for _, want := range []string{
			fmt.Sprintf(`hallpass_admin_refused_total{result="rate_limited"} %d`, codes[http.StatusTooManyRequests]+1),
			fmt.Sprintf(`hallpass_admin_refused_total{result="unauthorized"} %d`, codes[http.StatusUnauthorized]),
			fmt.Sprintf(`hallpass_admin_audit_dropped_total %d`, dropped),
			`hallpass_rate_limited_total{rule="admin_auth"}`,
		} {
			if !contains(m, want) {
				t.Errorf("metrics lack %s:\n%s", want, grep(m, "admin"))
			}
		}
		// A minute later the next refused call is recorded and says how
		// many were dropped since the last one recorded.
		a.clock.Advance(time.Minute)
		if r := a.adminDo(http.MethodGet, issuer.PathAdminRevocations, "", nil); r.status != http.StatusUnauthorized {
			t.Fatalf("no key, a minute later: %d", r.status)
		}
		recs = a.audit.Records()
		last := recs[len(recs)-1]
		if last.Who != "-" || last.Dropped != dropped {
			t.Fatalf("record after the drops: %+v, want dropped=%d", last, dropped)
		}
		if !containsLog(a.env, fmt.Sprintf(`"dropped":%d`, dropped)) {
			t.Error("the audit log line does not say how many were dropped")
		}
		if rb, ok := be.(*redisBackend); ok {
			xs, err := rb.client.XRevRangeN(context.Background(), a.stream.Key(), "+", "-", 1).Result()
			if err != nil || len(xs) != 1 || xs[0].Values["dropped"] != fmt.Sprint(dropped) {
				t.Fatalf("last stream entry %+v %v", xs, err)
			}
		}
		// The junk reached the log only as the sample.
		if n := strings.Count(a.logs.String(), `"msg":"admin audit"`); n > len(refused)+4 {
			t.Errorf("%d audit log lines for %d records", n, len(refused)+3)
		}
	})
}

// TestAdminGuardSettings: the sample can be turned down to none and the
// failure budget off by name.
func TestAdminGuardSettings(t *testing.T) {
	a := newAdminEnv(t, &boltBackend{}, func(c *issuer.Config) {
		c.AuditRefusedPerMinute = -1
		c.AdminAuthLimit = ratelimit.Disabled
	})
	for range 50 {
		if r := a.adminDo(http.MethodGet, issuer.PathAdminRevocations, "", nil); r.status != http.StatusUnauthorized {
			t.Fatalf("no limit: %d", r.status)
		}
	}
	if r := a.call(http.MethodGet, issuer.PathAdminRevocations, nil); r.status != http.StatusOK {
		t.Fatalf("real call: %d", r.status)
	}
	if recs := a.audit.Records(); len(recs) != 1 || recs[0].Who != "ops-alice" {
		t.Fatalf("records %+v, want the real call only", recs)
	}
	if m := scrape(t, a.env); !contains(m, `hallpass_admin_audit_dropped_total 50`) {
		t.Errorf("dropped:\n%s", grep(m, "admin"))
	}
}

// TestAdminAuthBudgetSpentByKeysOnly: only a presented admin key that
// matches no line spends the address's budget of failed authentications.
// A page the operator's browser opens can make it send requests to the
// admin listener (an <img> of http://127.0.0.1:9090/, a no-cors fetch) but
// never an Authorization header; when a request without a key counted,
// any such page locked the operator's own address (loopback) out of the
// admin API and the console, 429 for every call, while it stayed open.
// A guesser has to send keys, so those still spend the budget.
func TestAdminAuthBudgetSpentByKeysOnly(t *testing.T) {
	wrong, _, err := issuer.NewAdminKey(nil, "nobody", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		authz  []string // the Authorization headers of the junk
		spends bool     // the junk spends the budget: the right key then gets 429
	}{
		// What a browser sends to a page it was made to open.
		{name: "no header"},
		// Credentials in a URL's userinfo.
		{name: "basic", authz: []string{"Basic dTpw"}},
		{name: "not an admin key", authz: []string{"Bearer abc"}},
		{name: "several headers", authz: []string{"Bearer " + wrong, "Bearer " + wrong}},
		{name: "wrong admin key", authz: []string{"Bearer " + wrong}, spends: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := newAdminEnv(t, &boltBackend{})
			h := a.srv.AdminHandler()
			send := func(authz []string) *httptest.ResponseRecorder {
				req := httptest.NewRequest(http.MethodGet, issuer.PathAdminRevocations, nil)
				req.RemoteAddr = "127.0.0.1:4711"
				req.Header["Authorization"] = authz
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, req)
				return rec
			}
			for range 3 * issuer.DefaultAdminAuthLimit.Limit {
				if rec := send(tt.authz); rec.Code != http.StatusUnauthorized && rec.Code != http.StatusTooManyRequests {
					t.Fatalf("junk: %d", rec.Code)
				}
			}
			want := http.StatusOK
			if tt.spends {
				want = http.StatusTooManyRequests
			}
			if rec := send([]string{"Bearer " + a.key}); rec.Code != want {
				t.Fatalf("the right key from the same address after the junk: %d, want %d", rec.Code, want)
			}
			if m := scrape(t, a.env); !contains(m, `hallpass_admin_refused_total{result="unauthorized"}`) {
				t.Errorf("refusals not counted:\n%s", grep(m, "admin_refused"))
			}
		})
	}
}

// TestEveryAdminRouteNeedsAKey walks every admin route (AdminRoutes, so a
// route added later is covered): without a key and with a wrong one it
// answers 401 with the Bearer challenge, does nothing, and is recorded
// under the route's template; on the public listener it does not exist,
// even with the right key.
func TestEveryAdminRouteNeedsAKey(t *testing.T) {
	a := newAdminEnv(t, &boltBackend{}, func(c *issuer.Config) {
		c.AuditRefusedPerMinute = 1000
		c.AdminAuthLimit = ratelimit.Disabled
	})
	wrong, _, err := issuer.NewAdminKey(nil, "nobody", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	params := strings.NewReplacer(":id", "acc_AAAAAAAAAAAAAAAAAAAAAA", ":name", "alice", ":kid", "k4.pid.AAAA")
	routes := a.srv.AdminRoutes()
	if len(routes) < 15 {
		t.Fatalf("only %d admin routes: %v", len(routes), routes)
	}
	for _, rt := range routes {
		method, path := rt[0], params.Replace(rt[1])
		for _, key := range []string{"", wrong} {
			before := len(a.audit.Records())
			r := a.adminDo(method, path, key, map[string]string{"kind": "all", "reason": "x"})
			if r.status != http.StatusUnauthorized || !strings.HasPrefix(r.header.Get("WWW-Authenticate"), "Bearer") {
				t.Errorf("%s %s (key %v): %d %q", method, path, key != "", r.status, r.header.Get("WWW-Authenticate"))
				continue
			}
			recs := a.audit.Records()[before:]
			if len(recs) != 1 || recs[0].Who != "-" || recs[0].Action != method+" "+rt[1] || recs[0].Status != 401 {
				t.Errorf("%s %s: audit %+v", method, path, recs)
			}
		}
		req, _ := http.NewRequest(method, a.url(path), nil)
		req.Header.Set("Authorization", "Bearer "+a.key)
		if r := a.do(req); r.status != http.StatusNotFound && r.status != http.StatusMethodNotAllowed {
			t.Errorf("public listener %s %s: %d", method, path, r.status)
		}
	}
	if r := a.call(http.MethodGet, issuer.PathAdminRevocations, nil); r.status != http.StatusOK || strings.Contains(string(r.body), `"kind":"all"`) {
		t.Fatalf("refused calls changed something: %d %s", r.status, r.body)
	}
}
