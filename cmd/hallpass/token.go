package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/hallpass/hallpass/token"
	"github.com/hallpass/hallpass/verifier"
)

func tokenGroup() group {
	return group{
		name:    "token",
		summary: "mint, verify and inspect access tokens offline (for testing and debugging)",
		cmds: []command{
			{tokenMintDoc, tokenMint},
			{tokenVerifyDoc, tokenVerify},
			{tokenInspectDoc, tokenInspect},
		},
	}
}

var (
	tokenMintDoc = cmdDoc{
		name:    "token mint",
		args:    "--dir DIR --iss URL --aud AUD --sub ACCOUNT (--wrap-key-file FILE | --passphrase-file FILE)",
		summary: "mint a v4.public access token with the ring's current key (for testing)",
		detail: `The token is bound (cnf.jkt) to --jkt, by default to a random value no
device key matches: it verifies offline but no DPoP proof can go with it.`,
		examples: []string{
			"hallpass token mint --dir data/keys --wrap-key-file wrap.key --iss https://auth.example.com --aud my-api --sub acc_demo --ttl 10m",
		},
	}
	tokenVerifyDoc = cmdDoc{
		name:    "token verify",
		args:    "--keyset FILE --iss URL --aud AUD (TOKEN | -)",
		summary: "verify a token offline against a key set",
		detail: `Prints the verified claims as JSON and exits 0, or prints one line with a
stable error code (invalid_token, token_expired, ...) and exits 1. The
token's DPoP binding is not checked: there is no request to prove.`,
		examples: []string{
			"hallpass keys export-public --dir data/keys --issuer https://auth.example.com > keyset.json",
			`hallpass token verify --keyset keyset.json --iss https://auth.example.com --aud my-api "$TOKEN"`,
			"hallpass token verify --keyset keyset.json --iss https://auth.example.com --aud my-api - < token.txt",
		},
	}
	tokenInspectDoc = cmdDoc{
		name:    "token inspect",
		args:    "(TOKEN | -)",
		summary: "print a token's header, footer and claims UNVERIFIED",
		detail:  "Nothing is checked: use it to read a token, never to trust one.",
		examples: []string{
			`hallpass token inspect "$TOKEN"`,
			"hallpass token inspect - < token.txt",
		},
	}
)

func randomID(prefix string) (string, error) {
	b := make([]byte, 16)
	if _, err := io.ReadFull(rand.Reader, b); err != nil {
		return "", err
	}
	return prefix + base64.RawURLEncoding.EncodeToString(b), nil
}

func tokenMint(ctx context.Context, args []string, e *env) error {
	fs := newFlagSet(tokenMintDoc, e)
	dir := fs.String("dir", "", "key ring directory")
	iss := fs.String("iss", "", "issuer URL (required)")
	aud := fs.String("aud", "", "audience (required)")
	sub := fs.String("sub", "", "subject: account id (required)")
	dev := fs.String("dev", "", "device id (default: a random dev_ id)")
	jkt := fs.String("jkt", "", "device key thumbprint for cnf.jkt (default: a random value no key matches)")
	ttl := fs.Duration("ttl", 10*time.Minute, "lifetime, 1m to 60m")
	var pf protFlags
	pf.register(fs, e)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *iss == "" || *aud == "" || *sub == "" {
		return fmt.Errorf("%w: --iss, --aud and --sub are required", errUsage)
	}
	var err error
	if *dev == "" {
		if *dev, err = randomID("dev_"); err != nil {
			return err
		}
	}
	if *jkt == "" {
		// A random 256-bit value: a token bound to no key anybody holds.
		b := make([]byte, 32)
		if _, err := io.ReadFull(rand.Reader, b); err != nil {
			return err
		}
		*jkt = base64.RawURLEncoding.EncodeToString(b)
	}
	st, err := openStore(*dir, &pf, e)
	if err != nil {
		return err
	}
	ring, err := st.Load(ctx)
	if err != nil {
		return fileRingErr(err, st)
	}
	m, err := token.NewMinter(token.Config{Issuer: *iss, Audience: *aud, TTL: *ttl, Now: time.Now, Rand: rand.Reader})
	if err != nil {
		return err
	}
	tok, _, err := m.Mint(ring.Current(), token.Subject{Account: *sub, Device: *dev, JKT: *jkt})
	if err != nil {
		return err
	}
	fmt.Fprintln(e.stdout, tok)
	return nil
}

// readTokenArg takes the token from the one positional argument, or from
// stdin when it is "-".
func readTokenArg(fs *flag.FlagSet, e *env) (string, error) {
	if fs.NArg() != 1 {
		return "", fmt.Errorf("%w: give the token as the one argument (or - for stdin)", errUsage)
	}
	t := fs.Arg(0)
	if t == "-" {
		b, err := io.ReadAll(io.LimitReader(e.stdin, 64<<10))
		if err != nil {
			return "", err
		}
		t = string(b)
	}
	return strings.TrimSpace(t), nil
}

func tokenVerify(ctx context.Context, args []string, e *env) error {
	fs := newFlagSet(tokenVerifyDoc, e)
	keyset := fs.String("keyset", "", "published key set JSON file (hallpass keys export-public)")
	iss := fs.String("iss", "", "expected issuer (required)")
	aud := fs.String("aud", "", "expected audience (required)")
	leeway := fs.Duration("leeway", 30*time.Second, "clock skew allowed for exp, nbf and iat")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if *keyset == "" || *iss == "" || *aud == "" {
		return fmt.Errorf("%w: --keyset, --iss and --aud are required", errUsage)
	}
	tainted, err := readTokenArg(fs, e)
	if err != nil {
		return err
	}
	data, err := os.ReadFile(*keyset)
	if err != nil {
		return err
	}
	ks, err := verifier.ParseKeySet(data, *iss)
	if err != nil {
		return err
	}
	v, err := verifier.New(ks, *iss, *aud, verifier.WithLeeway(*leeway))
	if err != nil {
		return err
	}
	claims, err := v.Verify(ctx, tainted)
	if err != nil {
		// One line, a stable code and the sentinel's fixed text: never the
		// token's content.
		fmt.Fprintf(e.stderr, "%s: %v\n", verifier.Code(err), err)
		return exitError{code: 1, silent: true, err: err}
	}
	return writeJSON(e, claims)
}

func tokenInspect(_ context.Context, args []string, e *env) error {
	fs := newFlagSet(tokenInspectDoc, e)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	tainted, err := readTokenArg(fs, e)
	if err != nil {
		return err
	}
	header, payload, footer, err := unsafeSplitPublic(tainted)
	if err != nil {
		return err
	}
	fmt.Fprintln(e.stdout, "UNVERIFIED: nothing below is checked; use 'hallpass token verify'.")
	fmt.Fprintf(e.stdout, "header: %s\n", header)
	fmt.Fprintf(e.stdout, "footer (UNVERIFIED): %s\n", prettyOrQuoted(footer))
	fmt.Fprintf(e.stdout, "claims (UNVERIFIED): %s\n", prettyOrQuoted(payload))
	return nil
}

// unsafeSplitPublic decodes a v4.public token without checking anything.
func unsafeSplitPublic(t string) (header string, payload, footer []byte, err error) {
	const h = "v4.public."
	if len(t) > 64<<10 || !strings.HasPrefix(t, h) {
		return "", nil, nil, errors.New("not a v4.public token")
	}
	parts := strings.Split(t[len(h):], ".")
	if len(parts) > 2 {
		return "", nil, nil, errors.New("not a v4.public token")
	}
	body, err := base64.RawURLEncoding.DecodeString(parts[0])
	if err != nil || len(body) < 64 {
		return "", nil, nil, errors.New("not a v4.public token")
	}
	if len(parts) == 2 {
		if footer, err = base64.RawURLEncoding.DecodeString(parts[1]); err != nil {
			return "", nil, nil, errors.New("not a v4.public token")
		}
	}
	return h, body[:len(body)-64], footer, nil
}

func prettyOrQuoted(b []byte) string {
	if len(b) == 0 {
		return "(none)"
	}
	var buf bytes.Buffer
	if json.Valid(b) && json.Indent(&buf, b, "", "  ") == nil {
		return buf.String()
	}
	return fmt.Sprintf("%q", b)
}
