package issuer

import (
	"net/http"
	"net/netip"
	"time"

	"github.com/labstack/echo/v4"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/hallpass/hallpass/ratelimit"
)

// Limiter keys. The per-address keys ("signup:ip:", "redeem:ip:") are
// those of the budgets before they were nested, so an upgrade keeps the
// counts.
const (
	limitKeyIP      = "signup:ip:"
	limitKeyNet     = "signup:net:"
	limitKeySite    = "signup:site:"
	limitKeyGlobal  = "signup:global"
	limitKeyReserve = "signup:reserve"
	limitKeySeen    = "signup:seen:"
	redeemKeyIP     = "redeem:ip:"
	redeemKeyNet    = "redeem:net:"
	redeemKeySite   = "redeem:site:"
)

// Defaults of the budgets of Config that a zero Rule selects (with a
// Limiter); hallpass serve has the same. ratelimit.Disabled turns one off.
var (
	DefaultSignupPerIP       = ratelimit.Rule{Limit: 30, Per: time.Hour}
	DefaultSignupGlobal      = ratelimit.Rule{Limit: 1000, Per: time.Hour}
	DefaultCodeRedeemPerIP   = ratelimit.Rule{Limit: 30, Per: time.Hour}
	DefaultRecoverPerAccount = ratelimit.Rule{Limit: 10, Per: time.Hour}
	DefaultRenamePerAccount  = ratelimit.Rule{Limit: 5, Per: 24 * time.Hour}
)

// Factors of the derived network budgets and the reserve's share of the
// global budget (docs/ratelimits.md has the arithmetic).
const (
	netFactor      = 2 // IPv4 /24, IPv6 /56: twice one address's budget
	siteFactor     = 4 // IPv6 /48: four times
	reserveDivisor = 4 // the reserve: a quarter of the global budget
)

// clientNets are the nested networks of one client address whose budgets
// are counted, narrowest first: an IPv4 address and its /24, or an IPv6
// /64, its /56 and its /48. wide is the network the signup reserve knows
// (the /24 or the /48).
type clientNets struct {
	addr, net, site string // site is "" for IPv4
	wide            string
}

// netsOf returns the networks of a client address (c.RealIP()). A 6to4 or
// Teredo address counts as the IPv4 address it is made from. An address
// that does not parse shares one set of budgets with every other such
// address.
func netsOf(ip string) clientNets {
	a, err := netip.ParseAddr(ip)
	if err != nil {
		return clientNets{addr: "unknown", net: "unknown", wide: "unknown"}
	}
	a = embeddedIPv4(a.Unmap().WithZone(""))
	if a.Is4() {
		n := prefix(a, 24)
		return clientNets{addr: a.String(), net: n, wide: n}
	}
	site := prefix(a, 48)
	return clientNets{addr: prefix(a, 64), net: prefix(a, 56), site: site, wide: site}
}

// embeddedIPv4 returns the IPv4 address that a 6to4 address (RFC 3056,
// 2002:V4ADDR::/48) or a Teredo address (RFC 4380, 2001:0:SERVER:...,
// the client's address inverted in the last 32 bits) is made from, and
// any other address as it is. Replies to those addresses reach the
// client at that IPv4 address, and one IPv4 address makes a 6to4 /48 and
// a Teredo /48 for each server it names: counted as IPv6, one IPv4 /24
// would hold hundreds of /48s' budgets and reserve signups.
func embeddedIPv4(a netip.Addr) netip.Addr {
	if !a.Is6() {
		return a
	}
	b := a.As16()
	switch {
	case b[0] == 0x20 && b[1] == 0x02:
		return netip.AddrFrom4([4]byte{b[2], b[3], b[4], b[5]})
	case b[0] == 0x20 && b[1] == 0x01 && b[2] == 0 && b[3] == 0:
		return netip.AddrFrom4([4]byte{^b[12], ^b[13], ^b[14], ^b[15]})
	}
	return a
}

func prefix(a netip.Addr, bits int) string {
	p, _ := a.Prefix(bits)
	return p.String()
}

// clientKey is the address a budget is kept for: an IPv4 address, or the
// /64 of an IPv6 address.
func clientKey(ip string) string { return netsOf(ip).addr }

// ClientKey is what one client address counts as for the per-address
// budgets, for other per-address caps (hallpass serve's connection cap) to
// count alike: an IPv4 address (an IPv4-mapped, 6to4 or Teredo address as
// the IPv4 address it is made from), the /64 of any other IPv6 address
// (zone dropped), or "unknown" for anything that does not parse.
func ClientKey(ip netip.Addr) string { return clientKey(ip.String()) }

// nested are the checks of one per-address budget and the budgets of the
// networks around it.
func nested(name string, keys [3]string, n clientNets, perIP, perNet, perSite ratelimit.Rule) []limitCheck {
	out := []limitCheck{
		{name + "_per_ip", keys[0] + n.addr, perIP},
		{name + "_per_net", keys[1] + n.net, perNet},
	}
	if n.site != "" {
		out = append(out, limitCheck{name + "_per_site", keys[2] + n.site, perSite})
	}
	return out
}

// checkSignupLimits counts one signup attempt against the budgets of the
// client's address and networks, then against the global budget.
//
// IPv6 clients are counted per /64 (one host usually holds a whole /64, so
// counting single addresses would let it take 2^64 budgets), and the /56
// and /48 around it have budgets of their own, as an IPv4 address's /24
// does: one allocation gets a bounded share of the global budget.
func (s *Server) checkSignupLimits(c echo.Context) error {
	if s.cfg.Limiter == nil {
		return nil
	}
	now := s.now()
	n := netsOf(c.RealIP())
	keys := [3]string{limitKeyIP, limitKeyNet, limitKeySite}
	if err := s.checkLimits(c, now, nested("signup", keys, n, s.cfg.SignupPerIP, s.cfg.SignupPerNet, s.cfg.SignupPerSite)...); err != nil {
		return err
	}
	return s.checkSignupGlobal(c, now, n)
}

// checkSignupGlobal is the global budget as a circuit rather than a kill
// switch. An attempt it admits marks the client's wide network (/24 or
// /48) as seen for one window (the global rule's period). Once the budget
// is spent, an attempt is admitted only from a network not seen in the
// window, and only within the reserve (Config.SignupReserve); everyone
// else gets 429 until the global budget refills. So whoever spends the
// global budget from a set of networks cannot also spend the reserve from
// them: spending it too takes one more unseen network per reserve signup.
//
// The order makes the reserve cost what it should: the reserve is looked
// at first (Peeker), so that a new network is not marked while the reserve
// is empty; the mark is taken before the reserve is spent, so that
// concurrent attempts from one network spend at most one reserve signup.
func (s *Server) checkSignupGlobal(c echo.Context, now time.Time, n clientNets) error {
	global := s.cfg.SignupGlobal
	if global.Unlimited() {
		return nil
	}
	seen := limitCheck{"signup_seen", limitKeySeen + n.wide, seenRule(global.Per)}
	gd, err := s.allow(c, limitCheck{"signup_global", limitKeyGlobal, global}, now)
	if err != nil {
		return errUnavailable(err)
	}
	if gd.Allowed {
		// Whether the network was seen already does not matter here.
		if _, err := s.allow(c, seen, now); err != nil {
			return errUnavailable(err)
		}
		return nil
	}
	reserve := limitCheck{"signup_reserve", limitKeyReserve, s.cfg.SignupReserve}
	if reserve.rule.Unlimited() { // Disabled: no reserve
		return s.refused("signup_global", gd.RetryAfter)
	}
	if p, ok := s.cfg.Limiter.(ratelimit.Peeker); ok {
		ctx, cancel := s.storeCtx(c.Request().Context())
		rd, err := p.Peek(ctx, reserve.key, reserve.rule, now)
		cancel()
		if err != nil {
			return errUnavailable(err)
		}
		if !rd.Allowed {
			return s.refused("signup_reserve", min(gd.RetryAfter, rd.RetryAfter))
		}
	}
	sd, err := s.allow(c, seen, now)
	if err != nil {
		return errUnavailable(err)
	}
	if !wasUnseen(sd, seen.rule) {
		return s.refused("signup_global", gd.RetryAfter)
	}
	rd, err := s.allow(c, reserve, now)
	if err != nil {
		return errUnavailable(err)
	}
	if !rd.Allowed {
		return s.refused("signup_reserve", min(gd.RetryAfter, rd.RetryAfter))
	}
	s.limitMetrics.reserveAdmitted.Inc()
	return nil
}

// seenRule is the mark a network's signups leave, for a window w: a
// budget of 2 per 2w, so that each signup counted adds w to the mark. A
// network is then seen from a signup at t until at least t+w (an admitted
// signup moves the mark to at least t+w; a refused one finds it beyond
// t+w already) and at most t+2w: exactly "a signup in the last window",
// give or take one window the other way. A window too long for that (over
// half of ratelimit.MaxPer) falls back to 1 per w, seen for w from the
// first signup after the mark expired.
func seenRule(w time.Duration) ratelimit.Rule {
	if 2*w > ratelimit.MaxPer {
		return ratelimit.Rule{Limit: 1, Per: w}
	}
	return ratelimit.Rule{Limit: 2, Per: 2 * w}
}

// wasUnseen reports whether the decision that marked a network found it
// unmarked: only then does the whole budget remain after the mark.
func wasUnseen(d ratelimit.Decision, r ratelimit.Rule) bool {
	return d.Allowed && d.Remaining == r.Limit-1
}

// checkRedeemLimit counts one link-code or recovery-code redemption
// attempt against the budgets of the client's address and networks (one
// set for both kinds of code, so guessing cannot switch between them to
// double its rate).
func (s *Server) checkRedeemLimit(c echo.Context) error {
	if s.cfg.Limiter == nil {
		return nil
	}
	keys := [3]string{redeemKeyIP, redeemKeyNet, redeemKeySite}
	n := netsOf(c.RealIP())
	return s.checkLimits(c, s.now(), nested("redeem", keys, n, s.cfg.CodeRedeemPerIP, s.cfg.CodeRedeemPerNet, s.cfg.CodeRedeemPerSite)...)
}

// limitCheck is one budget: its metric label, limiter key and rule.
type limitCheck struct {
	name, key string
	rule      ratelimit.Rule
}

// checkLimits counts one attempt against each budget in turn, narrowest
// first. A refused attempt is 429 with Retry-After (the budgets before the
// refusing one have counted it); a limiter that cannot answer (Redis down)
// fails closed with 503.
func (s *Server) checkLimits(c echo.Context, now time.Time, checks ...limitCheck) error {
	if s.cfg.Limiter == nil {
		return nil
	}
	for _, ck := range checks {
		d, err := s.allow(c, ck, now)
		if err != nil {
			return errUnavailable(err)
		}
		if !d.Allowed {
			return s.refused(ck.name, d.RetryAfter)
		}
	}
	return nil
}

// allow asks the limiter about one budget under the store timeout.
func (s *Server) allow(c echo.Context, ck limitCheck, now time.Time) (ratelimit.Decision, error) {
	if ck.rule.Unlimited() {
		return ratelimit.Decision{Allowed: true, Remaining: -1}, nil
	}
	ctx, cancel := s.storeCtx(c.Request().Context())
	defer cancel()
	return s.cfg.Limiter.Allow(ctx, ck.key, ck.rule, now)
}

// refused counts a refusal by rule and returns its 429.
func (s *Server) refused(rule string, after time.Duration) error {
	s.metrics.rateLimited.WithLabelValues(rule).Inc()
	return errRateLimited(after)
}

// errRateLimited is 429 with Retry-After in whole seconds, at least 1.
func errRateLimited(after time.Duration) *apiError {
	e := fail(http.StatusTooManyRequests, CodeRateLimited, nil)
	e.retryAfter = max(int((after+time.Second-1)/time.Second), 1)
	return e
}

// limitDefaults fills the network budgets and the reserve left zero, from
// the budgets they nest in (docs/ratelimits.md).
func (cfg *Config) limitDefaults() {
	def := func(r *ratelimit.Rule, v ratelimit.Rule) {
		if *r == (ratelimit.Rule{}) {
			*r = v
		}
	}
	def(&cfg.SignupPerIP, DefaultSignupPerIP)
	def(&cfg.SignupGlobal, DefaultSignupGlobal)
	def(&cfg.CodeRedeemPerIP, DefaultCodeRedeemPerIP)
	def(&cfg.RecoverPerAccount, DefaultRecoverPerAccount)
	def(&cfg.RenamePerAccount, DefaultRenamePerAccount)
	def(&cfg.SignupPerNet, scaled(cfg.SignupPerIP, netFactor))
	def(&cfg.SignupPerSite, scaled(cfg.SignupPerIP, siteFactor))
	def(&cfg.CodeRedeemPerNet, scaled(cfg.CodeRedeemPerIP, netFactor))
	def(&cfg.CodeRedeemPerSite, scaled(cfg.CodeRedeemPerIP, siteFactor))
	if g := cfg.SignupGlobal; !g.Unlimited() {
		def(&cfg.SignupReserve, ratelimit.Rule{Limit: max(1, g.Limit/reserveDivisor), Per: g.Per})
	}
}

// scaled is r with k times its limit over the same period, within the
// package bounds; off stays off.
func scaled(r ratelimit.Rule, k int) ratelimit.Rule {
	if r.Unlimited() || r.Validate() != nil {
		return r // an invalid r is reported as itself
	}
	limit := min(r.Limit*k, ratelimit.MaxLimit, int(r.Per/ratelimit.MinInterval))
	return ratelimit.Rule{Limit: max(limit, r.Limit), Per: r.Per}
}

// limitMetrics are the collectors of the signup circuit.
type limitMetrics struct {
	reserveAdmitted prometheus.Counter
}

func newLimitMetrics(reg prometheus.Registerer) (*limitMetrics, error) {
	m := &limitMetrics{
		reserveAdmitted: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "hallpass_signup_reserve_admitted_total",
			Help: "Signup attempts admitted from the reserve for unseen networks while the global signup budget was spent.",
		}),
	}
	if err := reg.Register(m.reserveAdmitted); err != nil {
		return nil, err
	}
	return m, nil
}
