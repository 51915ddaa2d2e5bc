package verifier

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	paseto "aidanwoods.dev/go-paseto"
	"github.com/hallpass/hallpass/token"
)

// FuzzVerify feeds tainted tokens to Verifier.Verify with a static key set
// and a fixed clock. Seeds (testdata/fuzz/FuzzVerify) include valid tokens
// of the trusted key at that clock. Whatever Verify accepts must be accepted
// by go-paseto too and carry our issuer and audience; whatever it refuses
// must be refused with one class, a known code and fixed text.
func FuzzVerify(f *testing.F) {
	sk := testKey(f, 7)
	tok, _ := mint(f, sk, testNow)
	f.Add(tok)
	f.Add(tok + "x")
	f.Add(sign(f, sk, payloadOf(f, nil), footerOf(sk.ID())))
	f.Add(sign(f, testKey(f, 8), payloadOf(f, nil), footerOf(sk.ID())))

	v := newTestVerifier(f)
	gPub, err := paseto.NewV4AsymmetricPublicKeyFromBytes(sk.PublicKey().Ed25519())
	if err != nil {
		f.Fatal(err)
	}
	ctx := context.Background()
	f.Fuzz(func(t *testing.T, tainted string) {
		c, err := v.Verify(ctx, tainted)
		if err != nil {
			if c != nil {
				t.Fatal("claims returned with an error")
			}
			checkFuzzError(t, err, tainted)
			return
		}
		if c == nil || c.Issuer != testIss || c.Audience != testAud || c.Subject == "" || c.Confirmation.JKT == "" {
			t.Fatalf("accepted with claims %+v", c)
		}
		if _, err := paseto.MakeParser(nil).ParseV4Public(gPub, tainted, nil); err != nil {
			t.Fatalf("accepted a token go-paseto refuses: %v", err)
		}
	})
}

// FuzzVerifyPayload signs arbitrary payloads with the trusted key and a
// correct footer, to reach the claim and rule checks behind the signature.
// Seeds: testdata/fuzz/FuzzVerifyPayload.
func FuzzVerifyPayload(f *testing.F) {
	f.Add([]byte(payloadOf(f, nil)))
	f.Add([]byte(payloadOf(f, func(m map[string]any) { m["exp"] = rfc3339(testNow.Add(-time.Hour)) })))
	f.Add([]byte(`{"iss":"a","iss":"b"}`))
	sk := testKey(f, 7)
	footer := []byte(footerOf(sk.ID()))
	v := newTestVerifier(f)
	ctx := context.Background()
	f.Fuzz(func(t *testing.T, payload []byte) {
		tok, err := token.SignV4Public(sk, payload, footer, nil)
		if err != nil {
			t.Fatal(err)
		}
		c, err := v.Verify(ctx, tok)
		if err != nil {
			if c != nil {
				t.Fatal("claims returned with an error")
			}
			checkFuzzError(t, err, tok)
			if len(tok) <= DefaultMaxTokenSize && !errors.Is(err, ErrInvalidClaims) && !errors.Is(err, ErrTokenRejected) {
				t.Fatalf("unexpected error for an authentic token: %v", err)
			}
			return
		}
		if !json.Valid(payload) {
			t.Fatal("accepted invalid JSON")
		}
		if c.Issuer != testIss || c.Audience != testAud ||
			!testNow.Before(c.Expiry.Add(DefaultLeeway)) || testNow.Add(DefaultLeeway).Before(c.NotBefore) ||
			c.IssuedAt.After(testNow.Add(DefaultLeeway)) {
			t.Fatalf("accepted claims breaking a rule: %+v", c)
		}
	})
}

func checkFuzzError(t *testing.T, err error, tainted string) {
	t.Helper()
	inv, rej := errors.Is(err, ErrTokenInvalid), errors.Is(err, ErrTokenRejected)
	if inv == rej {
		t.Fatalf("%v: invalid=%v rejected=%v", err, inv, rej)
	}
	switch Code(err) {
	case CodeInvalidToken, CodeTokenExpired, CodeTokenRevoked:
	default:
		t.Fatalf("code %q for %v", Code(err), err)
	}
	// Cheap leak check: no long piece of the token in the text.
	msg := err.Error()
	rest := strings.TrimPrefix(tainted, token.HeaderV4Public)
	for i := 0; i+12 <= len(rest) && i < 512; i += 4 {
		if strings.Contains(msg, rest[i:i+12]) {
			t.Fatalf("error %q quotes the token", msg)
		}
	}
}

// TestFuzzCorpusHasValidTokens keeps the committed seeds useful: some of
// them must pass every check, so that fuzzing starts from the deep paths.
func TestFuzzCorpusHasValidTokens(t *testing.T) {
	v := newTestVerifier(t)
	for _, name := range []string{"minted", "hand-signed", "unknown-claims"} {
		t.Run(name, func(t *testing.T) {
			b, err := os.ReadFile("testdata/fuzz/FuzzVerify/" + name)
			if err != nil {
				t.Fatal(err)
			}
			lines := strings.Split(string(b), "\n")
			if len(lines) < 2 || lines[0] != "go test fuzz v1" {
				t.Fatalf("not a corpus file: %q", b)
			}
			tok, err := strconv.Unquote(strings.TrimSuffix(strings.TrimPrefix(lines[1], "string("), ")"))
			if err != nil {
				t.Fatal(err)
			}
			if _, err := v.Verify(context.Background(), tok); err != nil {
				t.Fatalf("seed %s: %v", name, err)
			}
		})
	}
}
