package token

import (
	"crypto/ed25519"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"strings"
	"testing"

	"github.com/hallpass/hallpass/keys"
)

// vector is one case of the official PASETO test vectors, kept
// byte-identical to their source in ../testdata/vectors/paseto/.
type vector struct {
	Name       string  `json:"name"`
	ExpectFail bool    `json:"expect-fail"`
	PublicKey  string  `json:"public-key"`
	SecretKey  string  `json:"secret-key"`
	Token      string  `json:"token"`
	Payload    *string `json:"payload"`
	Footer     string  `json:"footer"`
	Implicit   string  `json:"implicit-assertion"`
}

func loadV4Vectors(t testing.TB) []vector {
	t.Helper()
	data, err := os.ReadFile("../testdata/vectors/paseto/v4.json")
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Tests []vector `json:"tests"`
	}
	if err := json.Unmarshal(data, &doc); err != nil {
		t.Fatal(err)
	}
	if len(doc.Tests) != 17 {
		t.Fatalf("v4.json: %d tests, want 17", len(doc.Tests))
	}
	return doc.Tests
}

// vectorPublicKey is the v4.public key of the vectors (all 4-S cases share
// it); expect-fail cases that carry only a symmetric key are tried with it.
func vectorPublicKey(t testing.TB, vs []vector, v vector) keys.PublicKey {
	t.Helper()
	h := v.PublicKey
	if h == "" {
		for _, o := range vs {
			if strings.HasPrefix(o.Name, "4-S-") {
				h = o.PublicKey
				break
			}
		}
	}
	raw, err := hex.DecodeString(h)
	if err != nil {
		t.Fatal(err)
	}
	pk, err := keys.PublicKeyFromEd25519(raw)
	if err != nil {
		t.Fatal(err)
	}
	return pk
}

func TestV4Vectors(t *testing.T) {
	vs := loadV4Vectors(t)
	var nS, nF int
	for _, v := range vs {
		switch {
		case strings.HasPrefix(v.Name, "4-S-"):
			nS++
			t.Run(v.Name, func(t *testing.T) {
				pk := vectorPublicKey(t, vs, v)
				payload, footer, err := VerifyV4Public(pk, v.Token, []byte(v.Implicit))
				if err != nil {
					t.Fatalf("VerifyV4Public: %v", err)
				}
				if v.Payload == nil || string(payload) != *v.Payload {
					t.Errorf("payload = %q", payload)
				}
				if string(footer) != v.Footer {
					t.Errorf("footer = %q, want %q", footer, v.Footer)
				}
				if v.Footer == "" && footer != nil {
					t.Errorf("footer = %q, want nil", footer)
				}

				// Ed25519 is deterministic: signing reproduces the token.
				raw, err := hex.DecodeString(v.SecretKey)
				if err != nil {
					t.Fatal(err)
				}
				sk, err := keys.SecretKeyFromEd25519(ed25519.PrivateKey(raw))
				if err != nil {
					t.Fatal(err)
				}
				if !sk.PublicKey().Equal(pk) {
					t.Fatal("vector's secret and public keys differ")
				}
				tok, err := SignV4Public(sk, []byte(*v.Payload), []byte(v.Footer), []byte(v.Implicit))
				if err != nil {
					t.Fatalf("SignV4Public: %v", err)
				}
				if tok != v.Token {
					t.Errorf("SignV4Public = %s\nwant            %s", tok, v.Token)
				}

				// The wrong implicit assertion must fail.
				if _, _, err := VerifyV4Public(pk, v.Token, []byte(v.Implicit+"x")); !errors.Is(err, ErrInvalidSignature) {
					t.Errorf("wrong implicit assertion: err = %v", err)
				}
			})
		case strings.HasPrefix(v.Name, "4-F-"):
			nF++
			if !v.ExpectFail {
				t.Fatalf("%s: not expect-fail", v.Name)
			}
			t.Run(v.Name, func(t *testing.T) {
				pk := vectorPublicKey(t, vs, v)
				payload, footer, err := VerifyV4Public(pk, v.Token, []byte(v.Implicit))
				if err == nil {
					t.Fatal("accepted an expect-fail vector")
				}
				if payload != nil || footer != nil {
					t.Error("returned data with an error")
				}
				if !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrInvalidSignature) {
					t.Errorf("err = %v", err)
				}
			})
		}
	}
	if nS != 3 || nF != 5 {
		t.Fatalf("ran %d success and %d failure vectors, want 3 and 5", nS, nF)
	}
}
