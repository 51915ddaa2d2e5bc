package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"
)

// Bounds of `hallpass health --timeout`.
const (
	defaultHealthTimeout = 5 * time.Second
	maxHealthTimeout     = time.Minute
	// maxHealthBody is how much of an answer is read (and thrown away) so
	// that the connection closes cleanly; a probe has no use for more.
	maxHealthBody = 64 << 10
)

var healthDoc = cmdDoc{
	name:    "health",
	args:    "[--timeout D] URL",
	summary: "probe a server: exit 0 when GET URL answers 2xx within the timeout (container health checks)",
	detail: `For a Docker HEALTHCHECK or a Kubernetes exec probe in an image without curl.
Sends one GET, with no credentials and no proxy, follows no redirect, and
exits 0 on a 2xx answer; anything else (another status, no answer within
--timeout, a refused connection, a certificate that does not verify) prints
one line on stderr and exits 1. The body is never printed.

Probe the issuer's /healthz (the process answers) or /readyz (signing key
loaded, store and revocation mirror fresh); docs/deploy.md shows both.`,
	examples: []string{
		"hallpass health http://127.0.0.1:8080/healthz",
		"hallpass health --timeout 2s http://127.0.0.1:8080/readyz",
	},
}

// runHealth: hallpass health.
func runHealth(ctx context.Context, args []string, e *env) error {
	fs := newFlagSet(healthDoc, e)
	timeout := fs.Duration("timeout", defaultHealthTimeout, "how long to wait for the whole answer, at most 1m")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return fmt.Errorf("%w: health takes one URL (flags go before it)", errUsage)
	}
	if *timeout <= 0 || *timeout > maxHealthTimeout {
		return fmt.Errorf("%w: --timeout must be more than 0 and at most %v", errUsage, maxHealthTimeout)
	}
	u, err := healthURL(fs.Arg(0))
	if err != nil {
		return err
	}
	return probe(ctx, u, *timeout)
}

// healthURL accepts an absolute http or https URL without user info: a
// probe carries no credentials.
func healthURL(s string) (*url.URL, error) {
	u, err := url.Parse(s)
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		return nil, fmt.Errorf("%w: health: want an absolute http(s) URL", errUsage)
	}
	if u.User != nil {
		return nil, fmt.Errorf("%w: health: the URL must not carry user info", errUsage)
	}
	return u, nil
}

// probe sends one GET and succeeds on a 2xx answer within timeout. No
// proxy from the environment: a probe is about the server named, and an
// HTTP_PROXY set for the application must not answer in its stead.
func probe(ctx context.Context, u *url.URL, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return fmt.Errorf("%w: health: %v", errUsage, err)
	}
	req.Header.Set("User-Agent", "hallpass-health")
	tr := &http.Transport{Proxy: nil, DisableKeepAlives: true, ResponseHeaderTimeout: timeout}
	defer tr.CloseIdleConnections()
	hc := &http.Client{
		Transport: tr,
		// A redirect is an answer, and not a 2xx one: a health endpoint
		// that redirects is misconfigured.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	res, err := hc.Do(req)
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) {
			return fmt.Errorf("health: %s: no answer within %v", u.Redacted(), timeout)
		}
		if inner := errors.Unwrap(err); inner != nil {
			err = inner // the *url.Error repeats the method and URL
		}
		return fmt.Errorf("health: %s: %w", u.Redacted(), err)
	}
	defer res.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(res.Body, maxHealthBody))
	if res.StatusCode/100 != 2 {
		// The code and its standard text, not the server's reason phrase.
		return fmt.Errorf("health: %s answered %d %s", u.Redacted(), res.StatusCode, http.StatusText(res.StatusCode))
	}
	return nil
}
