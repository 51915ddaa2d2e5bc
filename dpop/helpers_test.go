package dpop

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/json"
	"os"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

const (
	testURL    = "https://server.example.com/token"
	testMethod = "POST"
	testToken  = "Kz~8mXK1EalYznwH-LC-1fBAo.4Ljp~zsPE_NeO.gxU"
)

var testNow = time.Unix(1_700_000_000, 0)

func fixedNow() time.Time { return testNow }

// Fixed keys, so fuzz seeds and thumbprints are stable.
var (
	testEC    = mustEC(0x11)
	testEC2   = mustEC(0x22)
	testEd    = ed25519.NewKeyFromSeed(bytes32(0x33))
	testEd2   = ed25519.NewKeyFromSeed(bytes32(0x44))
	testECJKT = mustThumb(&testEC.PublicKey)
	testEdJKT = mustThumb(testEd.Public())
)

func bytes32(b byte) []byte {
	s := make([]byte, 32)
	for i := range s {
		s[i] = b
	}
	return s
}

func mustEC(b byte) *ecdsa.PrivateKey {
	k, err := ecdsa.ParseRawPrivateKey(elliptic.P256(), bytes32(b))
	if err != nil {
		panic(err)
	}
	return k
}

func mustThumb(pub crypto.PublicKey) string {
	t, err := Thumbprint(pub)
	if err != nil {
		panic(err)
	}
	return t
}

func jwkOf(pub crypto.PublicKey) json.RawMessage {
	switch p := pub.(type) {
	case *ecdsa.PublicKey:
		k, err := ecJWK(p)
		if err != nil {
			panic(err)
		}
		return k.marshalJSON()
	case ed25519.PublicKey:
		return publicJWK{ed: p}.marshalJSON()
	}
	panic("unsupported key")
}

// spec describes a proof to hand-build. Header and claims are marshalled
// from maps unless the raw forms are set.
type spec struct {
	signer    crypto.Signer
	header    map[string]any
	claims    map[string]any
	rawHeader string
	rawClaims string
	// mangle, when set, edits the compact form after signing.
	mangle func(hdr, payload, sig string) string
}

var jtiCounter = 0

func newSpec(signer crypto.Signer) *spec {
	alg := AlgES256
	if _, ok := signer.Public().(ed25519.PublicKey); ok {
		alg = AlgEdDSA
	}
	jtiCounter++
	return &spec{
		signer: signer,
		header: map[string]any{"typ": "dpop+jwt", "alg": alg, "jwk": jwkOf(signer.Public())},
		claims: map[string]any{
			"jti": "jti-" + time.Duration(jtiCounter).String(),
			"htm": testMethod,
			"htu": testURL,
			"iat": testNow.Unix(),
		},
	}
}

func (s *spec) build(tb testing.TB) string {
	tb.Helper()
	hdr, claims := []byte(s.rawHeader), []byte(s.rawClaims)
	var err error
	if s.rawHeader == "" {
		if hdr, err = json.Marshal(s.header); err != nil {
			tb.Fatal(err)
		}
	}
	if s.rawClaims == "" {
		if claims, err = json.Marshal(s.claims); err != nil {
			tb.Fatal(err)
		}
	}
	return signJWS(tb, s.signer, hdr, claims, s.mangle)
}

// signJWS builds a compact JWS by hand: base64url(header) "."
// base64url(claims) "." base64url(signature), ES256 as r||s.
func signJWS(tb testing.TB, signer crypto.Signer, hdr, claims []byte, mangle func(h, p, s string) string) string {
	tb.Helper()
	h, p := b64.EncodeToString(hdr), b64.EncodeToString(claims)
	input := h + "." + p
	var sig []byte
	switch k := signer.(type) {
	case *ecdsa.PrivateKey:
		sum := sha256.Sum256([]byte(input))
		r, s, err := ecdsa.Sign(rand.Reader, k, sum[:])
		if err != nil {
			tb.Fatal(err)
		}
		sig = make([]byte, 64)
		r.FillBytes(sig[:32])
		s.FillBytes(sig[32:])
	case ed25519.PrivateKey:
		sig = ed25519.Sign(k, []byte(input))
	default:
		tb.Fatalf("unsupported signer %T", signer)
	}
	sg := b64.EncodeToString(sig)
	if mangle != nil {
		return mangle(h, p, sg)
	}
	return input + "." + sg
}

func newCache(tb testing.TB) *MemoryReplayCache {
	tb.Helper()
	c, err := NewMemoryReplayCache(MemoryReplayOptions{MaxEntries: 10_000, Shards: 4})
	if err != nil {
		tb.Fatal(err)
	}
	return c
}

func testOpts(tb testing.TB) Options {
	return Options{Replay: newCache(tb), Now: fixedNow}
}

func testReq() Request {
	return Request{Method: testMethod, URL: testURL}
}

func verify(tb testing.TB, proof string, req Request, opts Options) (*Proof, error) {
	tb.Helper()
	return Verify(context.Background(), proof, req, opts)
}

func readTestdata(tb testing.TB, name string) string {
	tb.Helper()
	b, err := os.ReadFile("testdata/" + name)
	if err != nil {
		tb.Fatal(err)
	}
	return string(b)
}
