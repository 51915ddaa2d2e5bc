package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"

	"github.com/hallpass/hallpass/client"
)

var clientCallDoc = cmdDoc{
	name:    "client call",
	args:    "--state FILE [-X METHOD] [--data BODY] [--origins ORIGIN,...] URL",
	summary: "call your own hallpass-protected service as this device (token and a fresh DPoP proof per request)",
	detail: `The access token goes only to the issuer's origin and to the origins named
in --origins (or HALLPASS_CLIENT_ORIGINS): a URL of any other origin is
refused before anything is sent. The response body goes to stdout, the
status line to stderr; the exit status is 0 for a 2xx answer.`,
	examples: []string{
		"hallpass client call --state alice.state --origins https://api.example.com https://api.example.com/v1/profile",
		"hallpass client call --state alice.state --origins http://127.0.0.1:9000 -X POST --data '{\"score\":42}' http://127.0.0.1:9000/scores",
	},
}

// clientCall: hallpass client call.
func clientCall(ctx context.Context, args []string, e *env) error {
	var method, data, origins string
	var target string
	flags := func(fs *flag.FlagSet) func() error {
		fs.StringVar(&method, "X", http.MethodGet, "request method")
		fs.StringVar(&data, "data", "", "request body (sent as application/json when it starts with { or [)")
		fs.StringVar(&origins, "origins", e.getenv("HALLPASS_CLIENT_ORIGINS"), "comma-separated origins (scheme://host[:port]) the token may be sent to besides the issuer [HALLPASS_CLIENT_ORIGINS]")
		return func() error {
			if fs.NArg() != 1 {
				return fmt.Errorf("%w: give exactly one URL", errUsage)
			}
			target = fs.Arg(0)
			if u, err := url.Parse(target); err != nil || u.Host == "" {
				return fmt.Errorf("%w: %q is not an absolute URL", errUsage, target)
			}
			return nil
		}
	}
	opts := func() []client.Option { return []client.Option{client.WithOrigins(splitList(origins)...)} }
	return runClientCmdWith(ctx, clientCallDoc, args, e, flags, opts, func(c *client.Client) error {
		return doCall(ctx, c, e, method, target, data)
	})
}

// doCall sends one request through the client and copies the answer out.
func doCall(ctx context.Context, c *client.Client, e *env, method, target, data string) error {
	var body io.Reader
	if data != "" {
		body = strings.NewReader(data)
	}
	req, err := http.NewRequestWithContext(ctx, strings.ToUpper(method), target, body)
	if err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	if strings.HasPrefix(strings.TrimSpace(data), "{") || strings.HasPrefix(strings.TrimSpace(data), "[") {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.HTTPClient().Do(req)
	if errors.Is(err, client.ErrOtherOrigin) {
		return fmt.Errorf("%w: %s is neither the issuer's origin nor one of --origins; nothing was sent", client.ErrOtherOrigin, req.URL.Scheme+"://"+req.URL.Host)
	}
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	fmt.Fprintln(e.stderr, resp.Proto, resp.Status)
	if _, err := io.Copy(e.stdout, io.LimitReader(resp.Body, 16<<20)); err != nil {
		return err
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return exitError{code: 1, silent: true, err: fmt.Errorf("HTTP %d", resp.StatusCode)}
	}
	return nil
}
