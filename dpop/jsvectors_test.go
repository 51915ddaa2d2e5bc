package dpop_test

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/hallpass/hallpass/dpop"
)

// The DPoP vectors in testdata/vectors/dpop are shared with clients/js:
// cases.json says how each proof is made and verified and what must happen;
// go.json holds the proofs this package makes, js.json those the JavaScript
// client makes (regenerated there with `npm run vectors`). Both suites loop
// over both files, so a proof made by either implementation must verify
// (or fail for the stated reason) in both.

var updateDPoPVectors = flag.Bool("update-dpop-vectors", false, "rewrite testdata/vectors/dpop/go.json from cases.json")

const vectorsDir = "../testdata/vectors/dpop"

type vectorKey struct {
	Kty, Crv, X, Y, D, Alg, JKT string
}

type vectorMake struct {
	Method      string `json:"method"`
	URL         string `json:"url"`
	AccessToken string `json:"access_token"`
	Nonce       string `json:"nonce"`
	IAT         int64  `json:"iat"`
	JTI         string `json:"jti"`
}

type vectorVerify struct {
	Method      string `json:"method"`
	URL         string `json:"url"`
	AccessToken string `json:"access_token"`
	JKT         string `json:"jkt"` // a key name in keys.json, or "" for none bound
	Nonce       string `json:"nonce"`
	Now         int64  `json:"now"`
}

type vectorCase struct {
	Name    string       `json:"name"`
	Comment string       `json:"comment"`
	Key     string       `json:"key"`
	Make    vectorMake   `json:"make"`
	Tamper  string       `json:"tamper,omitempty"`
	Verify  vectorVerify `json:"verify"`
	Expect  string       `json:"expect"`
	Proof   string       `json:"proof,omitempty"`
}

type vectorFile struct {
	Comment string       `json:"comment"`
	Maker   string       `json:"maker,omitempty"`
	IAT     int64        `json:"iat,omitempty"`
	Cases   []vectorCase `json:"cases"`
}

// expectErrors names the errors the vectors may expect.
var expectErrors = map[string]error{
	"ErrMethod":          dpop.ErrMethod,
	"ErrURL":             dpop.ErrURL,
	"ErrTooOld":          dpop.ErrTooOld,
	"ErrFuture":          dpop.ErrFuture,
	"ErrAccessTokenHash": dpop.ErrAccessTokenHash,
	"ErrKeyMismatch":     dpop.ErrKeyMismatch,
	"ErrSignature":       dpop.ErrSignature,
	"ErrNonceRequired":   dpop.ErrNonceRequired,
	"ErrNonceInvalid":    dpop.ErrNonceInvalid,
}

func readVectorJSON(t *testing.T, name string, v any) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(vectorsDir, name))
	if err != nil {
		t.Fatal(err)
	}
	d := json.NewDecoder(bytes.NewReader(b))
	d.DisallowUnknownFields()
	if err := d.Decode(v); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
}

func vectorKeys(t *testing.T) map[string]vectorKey {
	t.Helper()
	var f struct {
		Comment string
		Keys    map[string]vectorKey
	}
	readVectorJSON(t, "keys.json", &f)
	return f.Keys
}

func decodeB64(t *testing.T, s string) []byte {
	t.Helper()
	b, err := base64.RawURLEncoding.Strict().DecodeString(s)
	if err != nil {
		t.Fatalf("bad base64url %q: %v", s, err)
	}
	return b
}

func (k vectorKey) public(t *testing.T) crypto.PublicKey {
	t.Helper()
	if k.Kty == "OKP" {
		return ed25519.PublicKey(decodeB64(t, k.X))
	}
	pt := append(append([]byte{4}, decodeB64(t, k.X)...), decodeB64(t, k.Y)...)
	pub, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), pt)
	if err != nil {
		t.Fatal(err)
	}
	return pub
}

func (k vectorKey) signer(t *testing.T) crypto.Signer {
	t.Helper()
	if k.Kty == "OKP" {
		return ed25519.NewKeyFromSeed(decodeB64(t, k.D))
	}
	priv, err := ecdsa.ParseRawPrivateKey(elliptic.P256(), decodeB64(t, k.D))
	if err != nil {
		t.Fatal(err)
	}
	return priv
}

// fixedNonce accepts one nonce, as a server that issued only that one.
type fixedNonce string

func (f fixedNonce) Check(n string) error {
	switch {
	case n == "":
		return dpop.ErrNonceRequired
	case n != string(f):
		return dpop.ErrNonceInvalid
	}
	return nil
}

// makeVectorProof makes the proof of c as this package does: NewProof with
// the case's clock, and randomness that starts with the case's jti.
func makeVectorProof(t *testing.T, keys map[string]vectorKey, c vectorCase) string {
	t.Helper()
	m := c.Make
	p, err := dpop.NewProofWithOptions(keys[c.Key].signer(t), m.Method, m.URL, m.AccessToken, m.Nonce, dpop.ProofOptions{
		Now:  func() time.Time { return time.Unix(m.IAT, 0) },
		Rand: io.MultiReader(bytes.NewReader(decodeB64(t, m.JTI)), rand.Reader),
	})
	if err != nil {
		t.Fatal(err)
	}
	if c.Tamper == "signature" {
		p = tamperSignature(p)
	}
	return p
}

// tamperSignature flips the first character of the signature between A and
// B: still strict base64url, no longer the signature.
func tamperSignature(p string) string {
	i := strings.LastIndexByte(p, '.') + 1
	c := byte('A')
	if p[i] == 'A' {
		c = 'B'
	}
	return p[:i] + string(c) + p[i+1:]
}

func TestSharedVectorKeys(t *testing.T) {
	for name, k := range vectorKeys(t) {
		got, err := dpop.Thumbprint(k.public(t))
		if err != nil || got != k.JKT {
			t.Errorf("%s: Thumbprint = %q, %v; keys.json says %q", name, got, err, k.JKT)
		}
		if k.D == "" {
			continue
		}
		if got, _ := dpop.Thumbprint(k.signer(t).Public()); got != k.JKT {
			t.Errorf("%s: the private key d does not belong to x/y", name)
		}
	}
}

// TestSharedVectorsGoCurrent checks that go.json is what this package makes
// from cases.json today: byte for byte for Ed25519 (deterministic), the
// same signing input (header and claims) for ES256, whose signatures are
// randomised. -update-dpop-vectors rewrites it.
func TestSharedVectorsGoCurrent(t *testing.T) {
	keys := vectorKeys(t)
	var cases vectorFile
	readVectorJSON(t, "cases.json", &cases)
	if *updateDPoPVectors {
		out := vectorFile{
			Comment: "Proofs made by the Go dpop package (NewProofWithOptions) for cases.json. Generated: go test ./dpop -run TestSharedVectorsGoCurrent -update-dpop-vectors",
			Maker:   "go",
		}
		for _, c := range cases.Cases {
			c.Proof = makeVectorProof(t, keys, c)
			out.Cases = append(out.Cases, c)
		}
		b, err := json.MarshalIndent(out, "", "  ")
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(vectorsDir, "go.json"), append(b, '\n'), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	var made vectorFile
	readVectorJSON(t, "go.json", &made)
	checkSameCases(t, "go.json", cases, made)
	for _, c := range made.Cases {
		t.Run(c.Name, func(t *testing.T) {
			now := makeVectorProof(t, keys, c)
			if keys[c.Key].Kty == "OKP" {
				if now != c.Proof {
					t.Fatalf("NewProof makes another proof than go.json holds (run with -update-dpop-vectors if the change is intended)")
				}
				return
			}
			if signingInput(now) != signingInput(c.Proof) {
				t.Fatalf("NewProof makes another header or claims than go.json holds (run with -update-dpop-vectors if the change is intended)")
			}
		})
	}
}

func signingInput(p string) string { return p[:strings.LastIndexByte(p, '.')] }

// checkSameCases makes sure a file of proofs was generated from the current
// cases.json.
func checkSameCases(t *testing.T, name string, want, got vectorFile) {
	t.Helper()
	if len(want.Cases) != len(got.Cases) {
		t.Fatalf("%s has %d cases, cases.json %d: regenerate it (see testdata/vectors/dpop/README.md)", name, len(got.Cases), len(want.Cases))
	}
	for i := range want.Cases {
		g := got.Cases[i]
		g.Proof = ""
		if !reflect.DeepEqual(want.Cases[i], g) {
			t.Fatalf("%s case %d (%s) differs from cases.json: regenerate it (see testdata/vectors/dpop/README.md)", name, i, want.Cases[i].Name)
		}
	}
}

// TestSharedVectors verifies every proof of go.json and js.json with
// Verify, as the case says, and expects the case's outcome.
func TestSharedVectors(t *testing.T) {
	keys := vectorKeys(t)
	var cases vectorFile
	readVectorJSON(t, "cases.json", &cases)
	for _, file := range []string{"go.json", "js.json"} {
		var f vectorFile
		readVectorJSON(t, file, &f)
		checkSameCases(t, file, cases, f)
		for _, c := range f.Cases {
			t.Run(file+"/"+c.Name, func(t *testing.T) {
				want := expectErrors[c.Expect]
				if want == nil && c.Expect != "ok" {
					t.Fatalf("unknown expectation %q", c.Expect)
				}
				v := c.Verify
				req := dpop.Request{Method: v.Method, URL: v.URL, AccessToken: v.AccessToken}
				if v.JKT != "" {
					req.JKT = keys[v.JKT].JKT
				}
				cache, err := dpop.NewMemoryReplayCache(dpop.MemoryReplayOptions{})
				if err != nil {
					t.Fatal(err)
				}
				opts := dpop.Options{Replay: cache, Now: func() time.Time { return time.Unix(v.Now, 0) }}
				if v.Nonce != "" {
					opts.Nonces = fixedNonce(v.Nonce)
				}
				p, err := dpop.Verify(context.Background(), c.Proof, req, opts)
				if want != nil {
					if !errors.Is(err, want) {
						t.Fatalf("Verify: %v, want %s (%s)", err, c.Expect, c.Comment)
					}
					return
				}
				if err != nil {
					t.Fatalf("Verify: %v (%s)", err, c.Comment)
				}
				k := keys[c.Key]
				if p.JKT != k.JKT || p.Algorithm != k.Alg || p.IssuedAt.Unix() != c.Make.IAT || p.JTI != c.Make.JTI {
					t.Fatalf("Proof = jkt %s alg %s iat %v jti %s; want the case's", p.JKT, p.Algorithm, p.IssuedAt, p.JTI)
				}
			})
		}
	}
}
