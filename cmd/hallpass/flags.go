package main

import (
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/hallpass/hallpass/ratelimit"
)

// envErr collects malformed environment values: reported after flag
// parsing, so that `serve -h` still works.
type envErr struct{ errs []string }

func (ee *envErr) str(e *env, name, def string) string {
	if v := e.getenv(name); v != "" {
		return v
	}
	return def
}

func (ee *envErr) dur(e *env, name string, def time.Duration) time.Duration {
	v := e.getenv(name)
	if v == "" {
		return def
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		ee.errs = append(ee.errs, name+" is not a duration")
		return def
	}
	return d
}

func (ee *envErr) integer(e *env, name string, def int) int {
	v := e.getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 {
		ee.errs = append(ee.errs, name+" is not a whole number >= 0")
		return def
	}
	return n
}

func (ee *envErr) boolean(e *env, name string) bool {
	v := e.getenv(name)
	if v == "" {
		return false
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		ee.errs = append(ee.errs, name+" is not a boolean")
	}
	return b
}

// explained is an error said again for the command line: Error names what
// to fix (a flag, a file), Unwrap keeps the causes for errors.Is.
type explained struct {
	msg  string
	errs []error
}

func (x explained) Error() string   { return x.msg }
func (x explained) Unwrap() []error { return x.errs }

func explain(err error, msg string) error { return explained{msg: msg, errs: []error{err}} }

// Flags of the Config fields a library names in its errors, so that a
// refused configuration names what the operator typed, not a Go field.
var (
	serveFieldFlags = map[string]string{
		"PublicURL":         "--public-url",
		"Audience":          "--audience",
		"AccessTTL":         "--access-ttl",
		"RefreshTTL":        "--refresh-ttl",
		"RefreshIdle":       "--refresh-idle",
		"RefreshGrace":      "--refresh-grace",
		"StoreTimeout":      "--store-timeout",
		"TokenCache":        "--token-cache",
		"TrustedProxies":    "--trusted-proxies",
		"SignupPerIP":       "--signup-limit-per-ip",
		"SignupGlobal":      "--signup-limit-global",
		"CodeRedeemPerIP":   "--code-limit-per-ip",
		"SignupPerNet":      "--signup-limit-per-net",
		"SignupPerSite":     "--signup-limit-per-site",
		"SignupReserve":     "--signup-reserve",
		"RecoverPerAccount": "--recover-limit-per-account",
		"RenamePerAccount":  "--rename-limit-per-account",
		"LinkCodeTTL":       "--link-code-ttl",
		"MaxDevices":        "--max-devices",
		"UsernameHold":      "--username-hold",
		"CORSOrigins":       "--cors-origins",
		"AdminKeysFile":     "--admin-keys-file",
		"MaxStaleness":      "--revocation-max-staleness",
	}
	gatewayFieldFlags = map[string]string{
		"PublicURL":      "--public-url",
		"Upstream":       "--upstream",
		"Origins":        "--origins",
		"VerifyPath":     "--verify-path",
		"TrustedProxies": "--trusted-proxies",
		"MaxStaleness":   "--revocation-max-staleness",
	}
	goIdent   = regexp.MustCompile(`\b[A-Z][A-Za-z]*\b`)
	pkgPrefix = regexp.MustCompile(`^[a-z]+: (invalid configuration: )?`)
)

// configErr re-says a library's configuration error in flag terms:
// "issuer: AccessTTL must be whole seconds from 1m0s to 1h0m0s" becomes a
// usage error "--access-ttl must be whole seconds from 1m0s to 1h0m0s".
// An error that names no field is returned as a usage error unchanged.
func configErr(err error, fields map[string]string) error {
	named := false
	msg := goIdent.ReplaceAllStringFunc(err.Error(), func(w string) string {
		if f, ok := fields[w]; ok {
			named = true
			return f
		}
		return w
	})
	if !named {
		return fmt.Errorf("%w: %w", errUsage, err)
	}
	msg = pkgPrefix.ReplaceAllString(msg, "")
	return explained{msg: errUsage.Error() + ": " + msg, errs: []error{errUsage, err}}
}

// defaultPublicURL is http(s)://<listen>, with an unspecified host replaced
// by 127.0.0.1 (clients cannot use 0.0.0.0 in htu).
func defaultPublicURL(listen string, tlsOn bool) string {
	host, port, err := net.SplitHostPort(listen)
	if err != nil {
		host, port = listen, ""
	}
	if ip, err := netip.ParseAddr(host); host == "" || (err == nil && ip.IsUnspecified()) {
		host = "127.0.0.1"
	}
	scheme := "http"
	if tlsOn {
		scheme = "https"
	}
	u := url.URL{Scheme: scheme, Host: host}
	if port != "" {
		u.Host = net.JoinHostPort(host, port)
	}
	return u.String()
}

func parseCIDRs(s string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, f := range strings.Split(s, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		p, err := netip.ParsePrefix(f)
		if err != nil {
			a, aerr := netip.ParseAddr(f)
			if aerr != nil {
				return nil, fmt.Errorf("%w: --trusted-proxies: %q is not a CIDR or address", errUsage, f)
			}
			p = netip.PrefixFrom(a, a.BitLen())
		}
		if a := p.Addr(); a.Is4In6() && p.Bits() >= 96 {
			// Peers are matched unmapped (the issuer, the connection cap,
			// the gateway): ::ffff:10.0.0.0/104 means 10.0.0.0/8.
			p = netip.PrefixFrom(a.Unmap(), p.Bits()-96)
		}
		out = append(out, p.Masked())
	}
	return out, nil
}

// parseRule reads a signup limit: "N/unit", "N/Kunit" (s, m, h, d) or "off".
func parseRule(s, flagName string) (ratelimit.Rule, error) {
	r, err := ratelimit.ParseRule(s)
	if err != nil {
		return ratelimit.Rule{}, fmt.Errorf("%w: %s: want N/unit (units s, m, h, d; e.g. 30/h, 100/10m) or off", errUsage, flagName)
	}
	return r, nil
}

// splitList splits a comma-separated flag into its trimmed, non-empty
// items (nil for none).
func splitList(s string) []string {
	var out []string
	for _, item := range strings.Split(s, ",") {
		if item = strings.TrimSpace(item); item != "" {
			out = append(out, item)
		}
	}
	return out
}
