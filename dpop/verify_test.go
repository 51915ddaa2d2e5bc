package dpop

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

func TestVerifyNewProof(t *testing.T) {
	tests := []struct {
		name     string
		signer   crypto.Signer
		fullName bool
		wantAlg  string
		wantJKT  string
	}{
		{name: "ES256", signer: testEC, wantAlg: AlgES256, wantJKT: testECJKT},
		{name: "EdDSA", signer: testEd, wantAlg: AlgEdDSA, wantJKT: testEdJKT},
		{name: "Ed25519", signer: testEd, fullName: true, wantAlg: AlgEd25519, wantJKT: testEdJKT},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			proof, err := NewProofWithOptions(tt.signer, "GET", "https://API.example.com:443/a/./b?q=1#f", testToken, "",
				ProofOptions{Now: fixedNow, FullySpecifiedAlg: tt.fullName})
			if err != nil {
				t.Fatal(err)
			}
			req := Request{Method: "GET", URL: "https://api.example.com/a/b", AccessToken: testToken, JKT: tt.wantJKT}
			p, err := verify(t, proof, req, testOpts(t))
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			if p.Algorithm != tt.wantAlg || p.JKT != tt.wantJKT || !p.IssuedAt.Equal(testNow) || len(p.JTI) != 22 {
				t.Fatalf("Proof = %+v", p)
			}
			if !tt.signer.Public().(interface{ Equal(crypto.PublicKey) bool }).Equal(p.PublicKey) {
				t.Fatal("PublicKey differs from the signer's")
			}
		})
	}
}

func TestNewProofClaims(t *testing.T) {
	proof, err := NewProofWithOptions(testEC, "POST", "https://server.example.com/token?x=1", "", "n0nce",
		ProofOptions{Now: fixedNow})
	if err != nil {
		t.Fatal(err)
	}
	parts := strings.Split(proof, ".")
	hdr, _ := b64.DecodeString(parts[0])
	claims, _ := b64.DecodeString(parts[1])
	sig, _ := b64.DecodeString(parts[2])
	if got, want := string(hdr), `{"typ":"dpop+jwt","alg":"ES256","jwk":`+string(jwkOf(&testEC.PublicKey))+`}`; got != want {
		t.Errorf("header = %s, want %s", got, want)
	}
	if !strings.Contains(string(claims), `"htu":"https://server.example.com/token","iat":1700000000,"nonce":"n0nce"}`) ||
		strings.Contains(string(claims), "ath") {
		t.Errorf("claims = %s", claims)
	}
	if len(sig) != 64 {
		t.Errorf("ES256 signature is %d bytes, want 64 (r||s, not ASN.1)", len(sig))
	}
}

func TestNewProofErrors(t *testing.T) {
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	tests := []struct {
		name   string
		signer crypto.Signer
		url    string
		opts   ProofOptions
	}{
		{name: "nil signer", signer: nil, url: testURL},
		{name: "P-384", signer: p384, url: testURL},
		{name: "userinfo", signer: testEd, url: "https://u:p@server.example.com/token"},
		{name: "relative URL", signer: testEd, url: "/token"},
		{name: "broken randomness", signer: testEd, url: testURL, opts: ProofOptions{Rand: failingReader{}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.signer == nil {
				if _, err := NewProof(nil, "POST", tt.url, "", ""); err == nil {
					t.Fatal("no error")
				}
				return
			}
			if _, err := NewProofWithOptions(tt.signer, "POST", tt.url, "", "", tt.opts); err == nil {
				t.Fatal("no error")
			}
		})
	}
}

type failingReader struct{}

func (failingReader) Read([]byte) (int, error) { return 0, errors.New("entropy source failed") }

// Proofs made by go-jose, an independent JOSE implementation.
func TestVerifyGoJoseProofs(t *testing.T) {
	tests := []struct {
		name string
		alg  jose.SignatureAlgorithm
		key  any
		jkt  string
	}{
		{name: "ES256", alg: jose.ES256, key: testEC, jkt: testECJKT},
		{name: "EdDSA", alg: jose.EdDSA, key: testEd, jkt: testEdJKT},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			signer, err := jose.NewSigner(jose.SigningKey{Algorithm: tt.alg, Key: tt.key},
				&jose.SignerOptions{EmbedJWK: true, ExtraHeaders: map[jose.HeaderKey]any{"typ": "dpop+jwt"}})
			if err != nil {
				t.Fatal(err)
			}
			obj, err := signer.Sign([]byte(`{"jti":"go-jose-1","htm":"POST","htu":"https://server.example.com/token","iat":1700000000}`))
			if err != nil {
				t.Fatal(err)
			}
			proof, err := obj.CompactSerialize()
			if err != nil {
				t.Fatal(err)
			}
			p, err := verify(t, proof, testReq(), testOpts(t))
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			// Our thumbprint agrees with go-jose's.
			jwk := jose.JSONWebKey{Key: p.PublicKey}
			sum, err := jwk.Thumbprint(crypto.SHA256)
			if err != nil {
				t.Fatal(err)
			}
			if got := b64.EncodeToString(sum); got != p.JKT || p.JKT != tt.jkt {
				t.Fatalf("JKT = %s, go-jose = %s, want %s", p.JKT, got, tt.jkt)
			}
		})
	}
}

// Our proofs verify with go-jose too.
func TestNewProofVerifiesWithGoJose(t *testing.T) {
	for _, signer := range []crypto.Signer{testEC, testEd} {
		proof, err := NewProof(signer, "POST", testURL, "", "")
		if err != nil {
			t.Fatal(err)
		}
		obj, err := jose.ParseSignedCompact(proof, []jose.SignatureAlgorithm{jose.ES256, jose.EdDSA})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := obj.Verify(obj.Signatures[0].Protected.JSONWebKey); err != nil {
			t.Fatalf("go-jose rejects our %T proof: %v", signer, err)
		}
	}
}

func TestVerifyHandBuilt(t *testing.T) {
	for _, signer := range []crypto.Signer{testEC, testEd} {
		s := newSpec(signer)
		s.header["kid"] = "ignored"
		s.claims["ath"] = athOf(testToken)
		s.claims["extra"] = map[string]any{"nested": []any{1, "two", nil, true}}
		s.claims["iat"] = 1_700_000_000.25 // NumericDate may be fractional
		req := testReq()
		req.AccessToken = testToken
		p, err := verify(t, s.build(t), req, testOpts(t))
		if err != nil {
			t.Fatalf("%T: %v", signer, err)
		}
		if want := testNow.Add(250 * time.Millisecond); !p.IssuedAt.Equal(want) {
			t.Fatalf("IssuedAt = %v, want %v", p.IssuedAt, want)
		}
	}
}

func TestVerifyWindowEdges(t *testing.T) {
	tests := []struct {
		name string
		iat  time.Time
		want error
	}{
		{name: "exactly max age", iat: testNow.Add(-DefaultMaxAge)},
		{name: "just past max age", iat: testNow.Add(-DefaultMaxAge - time.Second), want: ErrTooOld},
		{name: "exactly max future", iat: testNow.Add(DefaultMaxFuture)},
		{name: "just past max future", iat: testNow.Add(DefaultMaxFuture + time.Second), want: ErrFuture},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newSpec(testEd)
			s.claims["iat"] = tt.iat.Unix()
			_, err := verify(t, s.build(t), testReq(), testOpts(t))
			if !errors.Is(err, tt.want) || (tt.want == nil) != (err == nil) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
		})
	}
}

// The clock is read on every call, not once.
func TestVerifyReadsClockEachCall(t *testing.T) {
	now := testNow
	opts := testOpts(t)
	opts.Now = func() time.Time { return now }
	proof := newSpec(testEd).build(t)
	now = testNow.Add(2 * time.Minute)
	if _, err := verify(t, proof, testReq(), opts); !errors.Is(err, ErrTooOld) {
		t.Fatalf("err = %v, want ErrTooOld", err)
	}
}

func TestVerifyConfigErrors(t *testing.T) {
	proof := newSpec(testEd).build(t)
	tests := []struct {
		name string
		req  Request
		opts Options
	}{
		{name: "no replay cache", req: testReq(), opts: Options{Now: fixedNow}},
		{name: "negative max age", req: testReq(), opts: Options{Replay: newCache(t), MaxAge: -1}},
		{name: "empty method", req: Request{URL: testURL}, opts: testOpts(t)},
		{name: "relative URL", req: Request{Method: "POST", URL: "/token"}, opts: testOpts(t)},
		{name: "URL with userinfo", req: Request{Method: "POST", URL: "https://a@server.example.com/token"}, opts: testOpts(t)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := verify(t, proof, tt.req, tt.opts)
			if !errors.Is(err, ErrConfig) || errors.Is(err, ErrURL) || ErrorCode(err) != "" {
				t.Fatalf("err = %v (code %q), want ErrConfig only", err, ErrorCode(err))
			}
		})
	}
}

func TestThumbprintErrors(t *testing.T) {
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	for _, pub := range []crypto.PublicKey{nil, &p384.PublicKey, ed25519.PublicKey{1, 2}, (*ecdsa.PublicKey)(nil), "x"} {
		if _, err := Thumbprint(pub); !errors.Is(err, ErrKey) {
			t.Errorf("Thumbprint(%T) err = %v", pub, err)
		}
	}
}

func athOf(token string) string {
	sum := sha256.Sum256([]byte(token))
	return b64.EncodeToString(sum[:])
}
