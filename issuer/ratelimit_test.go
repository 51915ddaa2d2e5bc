package issuer_test

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hallpass/hallpass/issuer"
	"github.com/hallpass/hallpass/ratelimit"
)

// TestSignupRateLimits: per client address (believed from X-Forwarded-For
// only through a trusted proxy) and global; 429 with Retry-After. On Redis
// the budget is shared: a new issuer instance on the same Redis continues
// the count.
func TestSignupRateLimits(t *testing.T) {
	forEachBackend(t, func(t *testing.T, be backend) {
		e := newEnv(t, be, func(c *issuer.Config) {
			c.Limiter = be.limiter(t)
			c.SignupPerIP = ratelimit.Rule{Limit: 3, Per: time.Hour}
			c.SignupGlobal = ratelimit.Rule{Limit: 6, Per: time.Hour}
			c.TrustedProxies = append(c.TrustedProxies, mustPrefix(t, "127.0.0.0/8"))
		})
		n := 0
		signupFrom := func(ip string) resp {
			n++
			req := e.newDevice("EdDSA").signupReq(fmt.Sprintf("limited%d", n))
			req.Header.Set("X-Forwarded-For", ip)
			return e.do(req)
		}
		for i := range 3 {
			if r := signupFrom("203.0.113.1"); r.status != http.StatusCreated {
				t.Fatalf("signup %d: %d %s", i, r.status, r.body)
			}
		}
		r := signupFrom("203.0.113.1")
		if r.status != http.StatusTooManyRequests || r.code(t) != "rate_limited" {
			t.Fatalf("4th signup from one address: %d %s", r.status, r.body)
		}
		if ra, err := strconv.Atoi(r.header.Get("Retry-After")); err != nil || ra < 1 || ra > 3600 {
			t.Fatalf("Retry-After %q", r.header.Get("Retry-After"))
		}
		// Another address still has its budget, counted per /64 on IPv6.
		if r := signupFrom("2001:db8:1:2::1"); r.status != http.StatusCreated {
			t.Fatalf("other address: %d %s", r.status, r.body)
		}
		if be.name() == "redis" {
			e.restart() // a second node on the same Redis shares the budget
		}
		if r := signupFrom("2001:db8:1:2::2"); r.status != http.StatusCreated {
			t.Fatalf("same /64, 2nd: %d %s", r.status, r.body)
		}
		if r := signupFrom("203.0.113.1"); r.status != http.StatusTooManyRequests {
			t.Fatalf("limited address after restart: %d %s", r.status, r.body)
		}
		// Global budget: 6 created so far (3 + 1 + 1, plus this one).
		if r := signupFrom("198.51.100.9"); r.status != http.StatusCreated {
			t.Fatalf("6th signup: %d %s", r.status, r.body)
		}
		if r := signupFrom("198.51.100.10"); r.status != http.StatusTooManyRequests {
			t.Fatalf("global limit: %d %s", r.status, r.body)
		}
		if m := scrape(t, e); !contains(m, `hallpass_rate_limited_total{rule="signup_global"} 1`) {
			t.Errorf("rate-limit metric:\n%s", grep(m, "rate_limited"))
		}
	})
}

// drainRules are the default rules scaled down ten-fold and stretched to a
// day, so that nothing refills while a test runs: 3 per address, 100 in
// all. The network budgets and the reserve are left to their defaults
// (6 per /24 or /56, 12 per /48, a reserve of 25).
func drainRules(c *issuer.Config) {
	c.SignupPerIP = ratelimit.Rule{Limit: 3, Per: 24 * time.Hour}
	c.SignupGlobal = ratelimit.Rule{Limit: 100, Per: 24 * time.Hour}
	c.CodeRedeemPerIP = ratelimit.Rule{Limit: 3, Per: 24 * time.Hour}
}

// signupsFrom tries one signup per address in turn, perAddr rounds, and
// returns how many were created; anything but 201 or 429 fails the test.
func signupsFrom(t *testing.T, e *env, prefix string, addrs []string, perAddr int) int {
	t.Helper()
	created := 0
	for round := range perAddr {
		for i, ip := range addrs {
			req := e.newDevice("EdDSA").signupReq(fmt.Sprintf("%s%d_%d", prefix, i, round))
			req.Header.Set("X-Forwarded-For", ip)
			switch r := e.do(req); r.status {
			case http.StatusCreated:
				created++
			case http.StatusTooManyRequests:
			default:
				t.Fatalf("signup from %s: %d %s", ip, r.status, r.body)
			}
		}
	}
	return created
}

func signupOne(t *testing.T, e *env, name, ip string) resp {
	t.Helper()
	req := e.newDevice("EdDSA").signupReq(name)
	req.Header.Set("X-Forwarded-For", ip)
	return e.do(req)
}

// TestSignupBudgetsCannotBeDrained is the regression test of issue 11,
// finding 2. The reproduction, against the real binary with the defaults
// (30/h per address or /64, 1000/h global): one actor holding 34 /64s of a
// single IPv6 /56 (any home delegation), or 34 IPv4 addresses, drained the
// global budget in about 4 s, after which every new user got 429 for an
// hour. Here with the rules scaled down (3 and 100 a day): the /56 or /24
// now gets its own bounded share, and once many networks have spent the
// global budget, a network never seen in the window still signs up from
// the reserve, while the networks already seen (the attacker's among them)
// wait.
func TestSignupBudgetsCannotBeDrained(t *testing.T) {
	// Each case on each backend, on its own store and limiter.
	run := func(name string, fn func(t *testing.T, e *env)) {
		t.Run(name, func(t *testing.T) {
			forEachBackend(t, func(t *testing.T, be backend) {
				fn(t, newEnv(t, be, func(c *issuer.Config) {
					c.Limiter = be.limiter(t)
					drainRules(c)
					c.TrustedProxies = append(c.TrustedProxies, mustPrefix(t, "127.0.0.0/8"))
				}))
			})
		})
	}
	run("34 /64s of one /56", func(t *testing.T, e *env) {
		var addrs []string
		for i := range 34 {
			addrs = append(addrs, fmt.Sprintf("2001:db8:aa:bb%02x::1", i))
		}
		if n := signupsFrom(t, e, "sixfour", addrs, 3); n > 6 {
			t.Fatalf("one /56 created %d accounts, want at most its budget of 6", n)
		}
		if r := signupOne(t, e, "newcomer6", "2001:db8:cc:dd::1"); r.status != http.StatusCreated {
			t.Fatalf("new user on IPv6 after the /56: %d %s", r.status, r.body)
		}
		if r := signupOne(t, e, "newcomer4", "192.0.2.1"); r.status != http.StatusCreated {
			t.Fatalf("new user on IPv4 after the /56: %d %s", r.status, r.body)
		}
		if m := scrape(t, e); !contains(m, `hallpass_rate_limited_total{rule="signup_per_net"}`) {
			t.Errorf("no signup_per_net refusal:\n%s", grep(m, "rate_limited"))
		}
	})
	run("34 addresses of one /24", func(t *testing.T, e *env) {
		var addrs []string
		for i := range 34 {
			addrs = append(addrs, fmt.Sprintf("198.51.100.%d", i+1))
		}
		if n := signupsFrom(t, e, "four", addrs, 3); n > 6 {
			t.Fatalf("one /24 created %d accounts, want at most its budget of 6", n)
		}
		if r := signupOne(t, e, "newcomer", "203.0.113.9"); r.status != http.StatusCreated {
			t.Fatalf("new user after the /24: %d %s", r.status, r.body)
		}
	})
	run("6to4 and Teredo addresses of one /24", func(t *testing.T, e *env) {
		// Each IPv4 address of 198.51.100.0/24 is also a 6to4 /48 and, by
		// the Teredo server it names, any number of Teredo /48s: counted
		// as IPv6 they would be 34 networks and 34 reserve signups.
		var addrs []string
		for i := range 34 {
			x := byte(i + 1)
			switch i % 3 {
			case 0:
				addrs = append(addrs, fmt.Sprintf("2002:c633:64%02x::1", x))
			case 1:
				addrs = append(addrs, fmt.Sprintf("2001:0:%02x00:1:8000:63bf:39cc:9b%02x", i, ^x))
			default:
				addrs = append(addrs, fmt.Sprintf("198.51.100.%d", x))
			}
		}
		if n := signupsFrom(t, e, "tunnel", addrs, 3); n > 6 {
			t.Fatalf("one /24 through 6to4 and Teredo created %d accounts, want at most its budget of 6", n)
		}
	})
	run("one /48 gets a bounded share", func(t *testing.T, e *env) {
		var addrs []string
		for i := range 64 { // 16 /56s of four /64s each
			addrs = append(addrs, fmt.Sprintf("2001:db8:48:%02x%02x::1", i/4, i%4))
		}
		if n := signupsFrom(t, e, "site", addrs, 3); n > 12 {
			t.Fatalf("one /48 created %d accounts, want at most its budget of 12", n)
		}
	})
	run("the global budget keeps a reserve for new networks", func(t *testing.T, e *env) {
		// A player signed up from 192.0.2.0/24 before the attack.
		if r := signupOne(t, e, "before", "192.0.2.10"); r.status != http.StatusCreated {
			t.Fatalf("first signup: %d %s", r.status, r.body)
		}
		// 17 /24s, two addresses each, spend the other 99 of the global
		// budget (6 per /24 at most).
		var addrs []string
		for i := range 17 {
			addrs = append(addrs, fmt.Sprintf("100.64.%d.1", i), fmt.Sprintf("100.64.%d.2", i))
		}
		if n := signupsFrom(t, e, "drain", addrs, 3); n != 99 {
			t.Fatalf("the attacker's networks created %d, want the 99 left of the global budget", n)
		}
		// A network seen in the window waits for the global budget.
		r := signupOne(t, e, "seen", "192.0.2.11")
		if r.status != http.StatusTooManyRequests || r.code(t) != "rate_limited" {
			t.Fatalf("signup from a seen /24 with the global budget spent: %d %s", r.status, r.body)
		}
		if ra, err := strconv.Atoi(r.header.Get("Retry-After")); err != nil || ra < 1 {
			t.Fatalf("Retry-After %q", r.header.Get("Retry-After"))
		}
		// A new network gets in, from the reserve (25), IPv4 or IPv6.
		if r := signupOne(t, e, "fresh4", "203.0.113.50"); r.status != http.StatusCreated {
			t.Fatalf("new /24 with the global budget spent: %d %s", r.status, r.body)
		}
		if r := signupOne(t, e, "fresh6", "2001:db8:ee::1"); r.status != http.StatusCreated {
			t.Fatalf("new /48 with the global budget spent: %d %s", r.status, r.body)
		}
		// Once per window: the same /24 again is seen now.
		if r := signupOne(t, e, "fresh4again", "203.0.113.51"); r.status != http.StatusTooManyRequests {
			t.Fatalf("second reserve signup from one /24: %d %s", r.status, r.body)
		}
		// The attacker's networks cannot spend the reserve.
		if n := signupsFrom(t, e, "again", addrs[:4], 1); n != 0 {
			t.Fatalf("the attacker's seen networks created %d from the reserve", n)
		}
		// The reserve itself is bounded: 23 more new networks, then 429.
		var fresh []string
		for i := range 23 {
			fresh = append(fresh, fmt.Sprintf("172.16.%d.1", i))
		}
		if n := signupsFrom(t, e, "fresh", fresh, 1); n != 23 {
			t.Fatalf("%d of 23 new networks got in, want all", n)
		}
		if r := signupOne(t, e, "late", "172.17.0.1"); r.status != http.StatusTooManyRequests {
			t.Fatalf("new network with the reserve spent: %d %s", r.status, r.body)
		}
		m := scrape(t, e)
		for _, want := range []string{
			`hallpass_signup_reserve_admitted_total 25`,
			`hallpass_rate_limited_total{rule="signup_reserve"} 1`,
			`hallpass_rate_limited_total{rule="signup_global"}`,
		} {
			if !contains(m, want) {
				t.Errorf("metrics lack %s:\n%s", want, grep(m, "signup"))
			}
		}
		// A window later the global budget is back.
		e.clock.Advance(24 * time.Hour)
		if r := signupOne(t, e, "nextday", "192.0.2.12"); r.status != http.StatusCreated {
			t.Fatalf("the next day: %d %s", r.status, r.body)
		}
	})
}

// TestRedeemBudgetsNested: link- and recovery-code redemptions are
// budgeted per address and per network as signups are: 34 /64s of one /56,
// or 34 addresses of one /24, get the network's budget, not 34 addresses'
// worth of guesses.
func TestRedeemBudgetsNested(t *testing.T) {
	e := newEnv(t, &boltBackend{}, func(c *issuer.Config) {
		c.Limiter, _ = ratelimit.NewMemory(ratelimit.MemoryOptions{})
		drainRules(c)
		c.TrustedProxies = append(c.TrustedProxies, mustPrefix(t, "127.0.0.0/8"))
	})
	// Not refused by a budget: the request reached the code check (and
	// fails there, as it has no code).
	tries := func(path string, addrs []string) int {
		passed := 0
		for range 3 {
			for _, ip := range addrs {
				req, _ := http.NewRequest(http.MethodPost, e.url(path), strings.NewReader("{}"))
				req.Header.Set("Content-Type", "application/json")
				req.Header.Set("X-Forwarded-For", ip)
				if r := e.do(req); r.status != http.StatusTooManyRequests {
					passed++
				}
			}
		}
		return passed
	}
	var v6, v4 []string
	for i := range 34 {
		v6 = append(v6, fmt.Sprintf("2001:db8:aa:bb%02x::1", i))
		v4 = append(v4, fmt.Sprintf("198.51.100.%d", i+1))
	}
	for _, tc := range []struct {
		name  string
		path  string
		addrs []string
		other string
	}{
		{"link from one /56", issuer.PathLink, v6, "2001:db8:cc::1"},
		{"recover from one /24", issuer.PathRecover, v4, "203.0.113.1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if n := tries(tc.path, tc.addrs); n > 6 {
				t.Fatalf("%d redemption attempts passed the budgets, want at most 6", n)
			}
			if n := tries(tc.path, []string{tc.other}); n != 3 {
				t.Fatalf("another network: %d of 3 passed", n)
			}
		})
	}
	if m := scrape(t, e); !contains(m, `hallpass_rate_limited_total{rule="redeem_per_net"}`) {
		t.Errorf("no redeem_per_net refusal:\n%s", grep(m, "rate_limited"))
	}
}

func TestClientNetworks(t *testing.T) {
	for _, tc := range []struct {
		ip, addr, net, site, wide string
	}{
		{"203.0.113.7", "203.0.113.7", "203.0.113.0/24", "", "203.0.113.0/24"},
		{"::ffff:203.0.113.7", "203.0.113.7", "203.0.113.0/24", "", "203.0.113.0/24"},
		{"2001:db8:1:2:3:4:5:6", "2001:db8:1:2::/64", "2001:db8:1::/56", "2001:db8:1::/48", "2001:db8:1::/48"},
		{"2001:db8:1:ff02::1", "2001:db8:1:ff02::/64", "2001:db8:1:ff00::/56", "2001:db8:1::/48", "2001:db8:1::/48"},
		{"fe80::1%eth0", "fe80::/64", "fe80::/56", "fe80::/48", "fe80::/48"},
		{"not an address", "unknown", "unknown", "", "unknown"},
		// 6to4 (RFC 3056) and Teredo (RFC 4380) addresses are made from
		// the client's IPv4 address, which gives one IPv4 address a /48
		// (6to4) or any number of /48s (Teredo, one per server): they
		// count as that IPv4 address.
		{"2002:c633:6407::1", "198.51.100.7", "198.51.100.0/24", "", "198.51.100.0/24"},
		{"2002:c633:6407:ffff:1:2:3:4", "198.51.100.7", "198.51.100.0/24", "", "198.51.100.0/24"},
		{"2001:0:4136:e378:8000:63bf:39cc:9bf8", "198.51.100.7", "198.51.100.0/24", "", "198.51.100.0/24"},
		{"2001:0:cb00:7101:8000:63bf:39cc:9bf8", "198.51.100.7", "198.51.100.0/24", "", "198.51.100.0/24"},
		{"2001:db8:1:2::1", "2001:db8:1:2::/64", "2001:db8:1::/56", "2001:db8:1::/48", "2001:db8:1::/48"}, // not Teredo
	} {
		t.Run(tc.ip, func(t *testing.T) {
			addr, net, site, wide := issuer.NetsOf(tc.ip)
			if addr != tc.addr || net != tc.net || site != tc.site || wide != tc.wide {
				t.Fatalf("got %q %q %q %q, want %q %q %q %q", addr, net, site, wide, tc.addr, tc.net, tc.site, tc.wide)
			}
		})
	}
}

func TestLimitDefaults(t *testing.T) {
	r := func(n int, per time.Duration) ratelimit.Rule { return ratelimit.Rule{Limit: n, Per: per} }
	h := time.Hour
	for _, tc := range []struct {
		name                         string
		in                           issuer.Config
		net, site, reserve, rnet, rs ratelimit.Rule
	}{
		{
			name: "serve defaults",
			in:   issuer.Config{SignupPerIP: r(30, h), SignupGlobal: r(1000, h), CodeRedeemPerIP: r(30, h)},
			net:  r(60, h), site: r(120, h), reserve: r(250, h), rnet: r(60, h), rs: r(120, h),
		},
		{
			name: "zero takes the serve defaults",
			in:   issuer.Config{},
			net:  r(60, h), site: r(120, h), reserve: r(250, h), rnet: r(60, h), rs: r(120, h),
		},
		{
			name: "off stays off",
			in: issuer.Config{SignupPerIP: ratelimit.Disabled, SignupGlobal: ratelimit.Disabled,
				CodeRedeemPerIP: ratelimit.Disabled, RecoverPerAccount: ratelimit.Disabled},
			net: ratelimit.Disabled, site: ratelimit.Disabled, reserve: ratelimit.Off,
			rnet: ratelimit.Disabled, rs: ratelimit.Disabled,
		},
		{
			name: "set by name",
			in: issuer.Config{SignupPerIP: r(30, h), SignupGlobal: r(3, h), SignupPerNet: r(45, h),
				SignupPerSite: ratelimit.Disabled, SignupReserve: ratelimit.Disabled, CodeRedeemPerIP: r(1_000_000, h)},
			net: r(45, h), site: ratelimit.Disabled, reserve: ratelimit.Disabled,
			rnet: r(ratelimit.MaxLimit, h), rs: r(ratelimit.MaxLimit, h),
		},
		{
			name: "a small global budget keeps a reserve of one",
			in:   issuer.Config{SignupGlobal: r(3, h)},
			net:  r(60, h), site: r(120, h), reserve: r(1, h), rnet: r(60, h), rs: r(120, h),
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := tc.in.WithLimitDefaults()
			for _, c := range []struct {
				field     string
				got, want ratelimit.Rule
			}{
				{"SignupPerNet", got.SignupPerNet, tc.net},
				{"SignupPerSite", got.SignupPerSite, tc.site},
				{"SignupReserve", got.SignupReserve, tc.reserve},
				{"CodeRedeemPerNet", got.CodeRedeemPerNet, tc.rnet},
				{"CodeRedeemPerSite", got.CodeRedeemPerSite, tc.rs},
			} {
				if c.got != c.want {
					t.Errorf("%s = %v, want %v", c.field, c.got, c.want)
				}
			}
		})
	}
}

// TestLimitDefaultsTopLevel: with a zero Rule the budgets a Limiter
// enforces take hallpass serve's defaults, so none is left out by
// omission; ratelimit.Disabled (what "off" parses to) keeps one off.
func TestLimitDefaultsTopLevel(t *testing.T) {
	got := issuer.Config{}.WithLimitDefaults()
	off := issuer.Config{SignupPerIP: ratelimit.Disabled, SignupGlobal: ratelimit.Disabled,
		CodeRedeemPerIP: ratelimit.Disabled, RecoverPerAccount: ratelimit.Disabled, RenamePerAccount: ratelimit.Disabled}.WithLimitDefaults()
	for _, c := range []struct {
		field             string
		got, want, gotOff ratelimit.Rule
	}{
		{"SignupPerIP", got.SignupPerIP, issuer.DefaultSignupPerIP, off.SignupPerIP},
		{"SignupGlobal", got.SignupGlobal, issuer.DefaultSignupGlobal, off.SignupGlobal},
		{"CodeRedeemPerIP", got.CodeRedeemPerIP, issuer.DefaultCodeRedeemPerIP, off.CodeRedeemPerIP},
		{"RecoverPerAccount", got.RecoverPerAccount, issuer.DefaultRecoverPerAccount, off.RecoverPerAccount},
		{"RenamePerAccount", got.RenamePerAccount, issuer.DefaultRenamePerAccount, off.RenamePerAccount},
	} {
		if c.got != c.want || c.got.Unlimited() {
			t.Errorf("zero %s = %v, want %v", c.field, c.got, c.want)
		}
		if !c.gotOff.Unlimited() {
			t.Errorf("Disabled %s = %v, want off", c.field, c.gotOff)
		}
	}
	if r, err := ratelimit.ParseRule("off"); err != nil || r != ratelimit.Disabled {
		t.Errorf(`ParseRule("off") = %v, %v; want Disabled`, r, err)
	}
}

// TestSeenMarks: a network that signed up in the last window is seen,
// however its signups fell (a mark of 1 per window would forget a network
// that signed up 15 minutes ago because its mark dated from 65 minutes
// ago), and a network that stops is unseen again within two windows.
func TestSeenMarks(t *testing.T) {
	l, err := ratelimit.NewMemory(ratelimit.MemoryOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2030, 1, 2, 3, 0, 0, 0, time.UTC)
	mark := func(key string, at time.Duration) bool {
		t.Helper()
		unseen, err := issuer.MarkSeen(l, key, time.Hour, t0.Add(at))
		if err != nil {
			t.Fatal(err)
		}
		return unseen
	}
	if !mark("a", 0) {
		t.Fatal("a new network is seen")
	}
	if mark("a", 50*time.Minute) {
		t.Fatal("seen 50 minutes after its first signup: unseen")
	}
	if mark("a", 65*time.Minute) {
		t.Fatal("a signup 15 minutes ago, and the network counts as unseen")
	}
	// One signup: seen for the window, then unseen.
	mark("b", 0)
	if mark("b", 59*time.Minute) {
		t.Fatal("b unseen within its window")
	}
	mark("c", 0)
	if !mark("c", 61*time.Minute) {
		t.Fatal("c seen after its window")
	}
	// A network busy for hours is unseen two windows after it stops.
	var last time.Duration
	for at := time.Duration(0); at <= 5*time.Hour; at += 10 * time.Minute {
		mark("busy", at)
		last = at
	}
	if !mark("busy", last+2*time.Hour+time.Second) {
		t.Fatal("busy network still seen two windows after its last signup")
	}
}
