package dpop

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"strings"
	"testing"
	"time"
)

// Every attack is a proof that is valid except for one thing, and must be
// rejected for that thing.
func TestVerifyAttacks(t *testing.T) {
	p384, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	ecPt, _ := testEC.PublicKey.Bytes()
	ecX, ecY := b64.EncodeToString(ecPt[1:33]), b64.EncodeToString(ecPt[33:])
	edX := b64.EncodeToString(testEd.Public().(ed25519.PublicKey))
	p384Pt, _ := p384.PublicKey.Bytes()
	offCurve := append([]byte(nil), ecPt[33:]...)
	offCurve[31] ^= 1
	nonces, err := NewNonceSource(mustNonceKey(t), NonceOptions{Now: fixedNow})
	if err != nil {
		t.Fatal(err)
	}
	staleNonce, _ := NewNonceSource(mustNonceKey(t), NonceOptions{Now: func() time.Time { return testNow.Add(-time.Hour) }})

	type attack struct {
		name   string
		spec   func() *spec  // the proof; nil means the default ES256 proof
		proof  func() string // overrides spec
		req    func(*Request)
		opts   func(*Options)
		replay bool // verify once before, expecting success
		want   error
	}
	es := func(edit func(s *spec)) func() *spec {
		return func() *spec { s := newSpec(testEC); edit(s); return s }
	}
	ed := func(edit func(s *spec)) func() *spec {
		return func() *spec { s := newSpec(testEd); edit(s); return s }
	}
	htu := func(u string) func() *spec { return es(func(s *spec) { s.claims["htu"] = u }) }
	validHeader := func() string {
		b, _ := json.Marshal(map[string]any{"typ": "dpop+jwt", "alg": "ES256", "jwk": jwkOf(&testEC.PublicKey)})
		return string(b)
	}
	validClaims := func() string {
		return fmt.Sprintf(`{"jti":"raw-%d","htm":"POST","htu":%q,"iat":%d}`, time.Now().UnixNano(), testURL, testNow.Unix())
	}

	attacks := []attack{
		// Request binding.
		{name: "wrong method", spec: es(func(s *spec) { s.claims["htm"] = "GET" }), want: ErrMethod},
		{name: "method case", spec: es(func(s *spec) { s.claims["htm"] = "post" }), want: ErrMethod},
		{name: "htu other scheme", spec: htu("http://server.example.com/token"), want: ErrURL},
		{name: "htu other host", spec: htu("https://evil.example.com/token"), want: ErrURL},
		{name: "htu host suffix", spec: htu("https://server.example.com.evil.com/token"), want: ErrURL},
		{name: "htu other port", spec: htu("https://server.example.com:8443/token"), want: ErrURL},
		{name: "htu other path", spec: htu("https://server.example.com/admin"), want: ErrURL},
		{name: "htu trailing slash", spec: htu("https://server.example.com/token/"), want: ErrURL},
		{name: "htu prefix of URL", spec: htu("https://server.example.com/tok"), want: ErrURL},
		{name: "htu URL is its prefix", spec: htu("https://server.example.com/token/extra"), want: ErrURL},
		{name: "htu root", spec: htu("https://server.example.com/"), want: ErrURL},
		{name: "htu userinfo", spec: htu("https://user@server.example.com/token"), want: ErrURL},
		{name: "htu userinfo host confusion", spec: htu("https://server.example.com@evil.com/token"), want: ErrURL},
		{name: "htu encoded slash", spec: htu("https://server.example.com%2Ftoken"), want: ErrURL},
		{name: "htu relative", spec: htu("/token"), want: ErrURL},
		{name: "htu other scheme ws", spec: htu("wss://server.example.com/token"), want: ErrURL},
		{name: "htu encoded path slash", spec: htu("https://server.example.com/to%2Fken"), want: ErrURL},

		// Time window and replay.
		{name: "iat too old", spec: es(func(s *spec) { s.claims["iat"] = testNow.Add(-61 * time.Second).Unix() }), want: ErrTooOld},
		{name: "iat in the future", spec: es(func(s *spec) { s.claims["iat"] = testNow.Add(6 * time.Second).Unix() }), want: ErrFuture},
		{name: "iat far future", spec: es(func(s *spec) { s.claims["iat"] = int64(1) << 39 }), want: ErrFuture},
		{name: "replayed jti", replay: true, want: ErrReplay},

		// Token binding.
		{name: "ath missing", req: func(r *Request) { r.AccessToken = testToken }, want: ErrAccessTokenHash},
		{name: "ath of another token", spec: es(func(s *spec) { s.claims["ath"] = athOf("other") }),
			req: func(r *Request) { r.AccessToken = testToken }, want: ErrAccessTokenHash},
		{name: "ath padded", spec: es(func(s *spec) { s.claims["ath"] = athOf(testToken) + "=" }),
			req: func(r *Request) { r.AccessToken = testToken }, want: ErrAccessTokenHash},
		{name: "ath not a string", spec: es(func(s *spec) { s.claims["ath"] = 1 }),
			req: func(r *Request) { r.AccessToken = testToken }, want: ErrClaims},
		{name: "key of another device", req: func(r *Request) { r.JKT = mustThumb(&testEC2.PublicKey) }, want: ErrKeyMismatch},
		{name: "Ed25519 proof for EC binding", spec: ed(func(*spec) {}), req: func(r *Request) { r.JKT = testECJKT }, want: ErrKeyMismatch},

		// Algorithm.
		{name: "alg none", spec: es(func(s *spec) { s.header["alg"] = "none" }), want: ErrAlgorithm},
		{name: "alg none unsigned", spec: es(func(s *spec) {
			s.header["alg"] = "none"
			s.mangle = func(h, p, _ string) string { return h + "." + p + "." }
		}), want: ErrMalformed},
		{name: "alg HS256 keyed with jwk", proof: func() string {
			hdr := `{"typ":"dpop+jwt","alg":"HS256","jwk":` + string(jwkOf(&testEC.PublicKey)) + `}`
			input := b64.EncodeToString([]byte(hdr)) + "." + b64.EncodeToString([]byte(validClaims()))
			m := hmac.New(sha256.New, []byte(ecX))
			m.Write([]byte(input))
			return input + "." + b64.EncodeToString(m.Sum(nil))
		}, want: ErrAlgorithm},
		{name: "alg RS256 with RSA key", proof: func() string {
			jwk := fmt.Sprintf(`{"kty":"RSA","n":%q,"e":"AQAB"}`, b64.EncodeToString(rsaKey.N.Bytes()))
			hdr := `{"typ":"dpop+jwt","alg":"RS256","jwk":` + jwk + `}`
			input := b64.EncodeToString([]byte(hdr)) + "." + b64.EncodeToString([]byte(validClaims()))
			sum := sha256.Sum256([]byte(input))
			sig, err := rsa.SignPKCS1v15(nil, rsaKey, 5 /* crypto.SHA256 */, sum[:])
			if err != nil {
				t.Fatal(err)
			}
			return input + "." + b64.EncodeToString(sig)
		}, want: ErrAlgorithm},
		{name: "alg ES384", spec: es(func(s *spec) { s.header["alg"] = "ES384" }), want: ErrAlgorithm},
		{name: "alg lower case", spec: es(func(s *spec) { s.header["alg"] = "es256" }), want: ErrAlgorithm},
		{name: "alg missing", spec: es(func(s *spec) { delete(s.header, "alg") }), want: ErrAlgorithm},
		{name: "alg not a string", spec: es(func(s *spec) { s.header["alg"] = []string{"ES256"} }), want: ErrAlgorithm},
		{name: "alg member name case", spec: es(func(s *spec) { delete(s.header, "alg"); s.header["ALG"] = "ES256" }), want: ErrAlgorithm},
		{name: "EdDSA header with P-256 key", spec: es(func(s *spec) { s.header["alg"] = AlgEdDSA }), want: ErrKey},
		{name: "Ed25519 header with P-256 key", spec: es(func(s *spec) { s.header["alg"] = AlgEd25519 }), want: ErrKey},
		{name: "ES256 header with Ed25519 key", spec: ed(func(s *spec) { s.header["alg"] = AlgES256 }), want: ErrKey},

		// Key.
		{name: "jwk with private d", spec: es(func(s *spec) {
			s.header["jwk"] = map[string]string{"kty": "EC", "crv": "P-256", "x": ecX, "y": ecY, "d": b64.EncodeToString(ecPrivBytes(testEC))}
		}), want: ErrKey},
		{name: "OKP jwk with private d", spec: ed(func(s *spec) {
			s.header["jwk"] = map[string]string{"kty": "OKP", "crv": "Ed25519", "x": edX, "d": b64.EncodeToString(testEd.Seed())}
		}), want: ErrKey},
		{name: "oct jwk", spec: es(func(s *spec) {
			s.header["jwk"] = map[string]string{"kty": "oct", "k": b64.EncodeToString([]byte("secret"))}
		}), want: ErrKey},
		{name: "jwk P-384", spec: es(func(s *spec) {
			s.header["jwk"] = map[string]string{"kty": "EC", "crv": "P-384", "x": b64.EncodeToString(p384Pt[1:49]), "y": b64.EncodeToString(p384Pt[49:])}
		}), want: ErrKey},
		{name: "jwk P-256 point off the curve", spec: es(func(s *spec) {
			s.header["jwk"] = map[string]string{"kty": "EC", "crv": "P-256", "x": ecX, "y": b64.EncodeToString(offCurve)}
		}), want: ErrKey},
		{name: "jwk EC without y", spec: es(func(s *spec) {
			s.header["jwk"] = map[string]string{"kty": "EC", "crv": "P-256", "x": ecX}
		}), want: ErrKey},
		{name: "jwk x with padding", spec: es(func(s *spec) {
			s.header["jwk"] = map[string]string{"kty": "EC", "crv": "P-256", "x": ecX + "=", "y": ecY}
		}), want: ErrKey},
		{name: "jwk x as std base64", spec: es(func(s *spec) {
			x := strings.NewReplacer("-", "+", "_", "/").Replace(ecX)
			s.header["jwk"] = map[string]string{"kty": "EC", "crv": "P-256", "x": x, "y": ecY}
			if x == ecX {
				s.header["jwk"] = "not an object"
			}
		}), want: ErrKey},
		{name: "jwk Ed25519 small-order key", spec: ed(func(s *spec) {
			s.header["jwk"] = map[string]string{"kty": "OKP", "crv": "Ed25519", "x": b64.EncodeToString(bytesOf(weakEd25519[2]))}
		}), want: ErrKey},
		{name: "jwk X25519", spec: ed(func(s *spec) {
			s.header["jwk"] = map[string]string{"kty": "OKP", "crv": "X25519", "x": edX}
		}), want: ErrKey},
		{name: "jwk missing", spec: es(func(s *spec) { delete(s.header, "jwk") }), want: ErrKey},
		{name: "jwk not an object", spec: es(func(s *spec) { s.header["jwk"] = "x" }), want: ErrKey},

		// Header.
		{name: "typ missing", spec: es(func(s *spec) { delete(s.header, "typ") }), want: ErrType},
		{name: "typ JWT", spec: es(func(s *spec) { s.header["typ"] = "JWT" }), want: ErrType},
		{name: "typ case", spec: es(func(s *spec) { s.header["typ"] = "DPoP+jwt" }), want: ErrType},
		{name: "typ not a string", spec: es(func(s *spec) { s.header["typ"] = 1 }), want: ErrType},
		{name: "crit present", spec: es(func(s *spec) { s.header["crit"] = []string{"exp"}; s.header["exp"] = 1 }), want: ErrCritical},
		{name: "crit empty", spec: es(func(s *spec) { s.header["crit"] = []string{} }), want: ErrCritical},

		// Signature.
		{name: "signature over a different header", proof: func() string {
			s := newSpec(testEC)
			s.header["kid"] = "a"
			signed := s.build(t)
			s.header["kid"] = "b"
			other := s.build(t)
			return other[:strings.IndexByte(other, '.')] + signed[strings.IndexByte(signed, '.'):]
		}, want: ErrSignature},
		{name: "signature over different claims", proof: func() string {
			s := newSpec(testEd)
			signed := s.build(t)
			s.claims["htm"] = "DELETE"
			other := s.build(t)
			// other's header and claims with signed's signature.
			return other[:strings.LastIndexByte(other, '.')] + signed[strings.LastIndexByte(signed, '.'):]
		}, want: ErrSignature},
		{name: "signed by another key", spec: es(func(s *spec) { s.signer = testEC2 }), want: ErrSignature},
		{name: "Ed25519 signed by another key", spec: ed(func(s *spec) { s.signer = testEd2 }), want: ErrSignature},
		{name: "ES256 signature in ASN.1", spec: es(func(s *spec) {
			s.mangle = func(h, p, sig string) string {
				raw, _ := b64.DecodeString(sig)
				der, _ := encodeASN1(raw)
				return h + "." + p + "." + b64.EncodeToString(der)
			}
		}), want: ErrSignature},
		{name: "ES256 signature with s = 0", spec: es(func(s *spec) {
			s.mangle = func(h, p, sig string) string {
				raw, _ := b64.DecodeString(sig)
				clear(raw[32:])
				return h + "." + p + "." + b64.EncodeToString(raw)
			}
		}), want: ErrSignature},
		{name: "ES256 signature with s = n (malleated out of range)", spec: es(func(s *spec) {
			s.mangle = func(h, p, sig string) string {
				raw, _ := b64.DecodeString(sig)
				sv := new(big.Int).SetBytes(raw[32:])
				sv.Add(sv, elliptic.P256().Params().N)
				if sv.BitLen() > 256 {
					sv.Sub(sv, elliptic.P256().Params().N)
					sv.Sub(sv, elliptic.P256().Params().N) // negative: encode as zero
				}
				if sv.Sign() < 0 {
					clear(raw[32:])
				} else {
					sv.FillBytes(raw[32:])
				}
				return h + "." + p + "." + b64.EncodeToString(raw)
			}
		}), want: ErrSignature},
		{name: "Ed25519 signature truncated", spec: ed(func(s *spec) {
			s.mangle = func(h, p, sig string) string { return h + "." + p + "." + sig[:80] }
		}), want: ErrSignature},

		// Form.
		{name: "oversized proof", spec: es(func(s *spec) { s.claims["pad"] = strings.Repeat("a", DefaultMaxProofSize) }), want: ErrTooLarge},
		{name: "two parts", proof: func() string { p := newSpec(testEd).build(t); return p[:strings.LastIndexByte(p, '.')] }, want: ErrMalformed},
		{name: "four parts", proof: func() string { return newSpec(testEd).build(t) + ".AAAA" }, want: ErrMalformed},
		{name: "JSON serialization", proof: func() string { return `{"payload":"e30","protected":"e30","signature":"AA"}` }, want: ErrMalformed},
		{name: "empty", proof: func() string { return "" }, want: ErrMalformed},
		{name: "padded base64", spec: es(func(s *spec) {
			s.mangle = func(h, p, sig string) string { return h + "=." + p + "." + sig }
		}), want: ErrMalformed},
		{name: "whitespace in proof", spec: es(func(s *spec) {
			s.mangle = func(h, p, sig string) string { return h + "." + p + ".\n" + sig }
		}), want: ErrMalformed},
		{name: "header not JSON", proof: func() string {
			return signJWS(t, testEC, []byte(`typ=dpop+jwt`), []byte(validClaims()), nil)
		}, want: ErrMalformed},
		{name: "trailing data after header", proof: func() string {
			return signJWS(t, testEC, []byte(validHeader()+"{}"), []byte(validClaims()), nil)
		}, want: ErrMalformed},
		{name: "header invalid UTF-8", proof: func() string {
			return signJWS(t, testEC, []byte(strings.Replace(validHeader(), `"typ"`, "\"typ\",\"k\xff\":1,\"x\"", 1)), []byte(validClaims()), nil)
		}, want: ErrMalformed},

		// Duplicate members.
		{name: "duplicate alg in header", proof: func() string {
			h := strings.Replace(validHeader(), `"alg":"ES256"`, `"alg":"ES256","alg":"none"`, 1)
			return signJWS(t, testEC, []byte(h), []byte(validClaims()), nil)
		}, want: ErrDuplicateKey},
		{name: "duplicate typ escaped", proof: func() string {
			h := strings.Replace(validHeader(), `"typ":"dpop+jwt"`, `"typ":"dpop+jwt","t\u0079p":"JWT"`, 1)
			return signJWS(t, testEC, []byte(h), []byte(validClaims()), nil)
		}, want: ErrDuplicateKey},
		{name: "duplicate x in jwk", proof: func() string {
			h := strings.Replace(validHeader(), `"kty":"EC"`, fmt.Sprintf(`"kty":"EC","x":%q`, ecY), 1)
			return signJWS(t, testEC, []byte(h), []byte(validClaims()), nil)
		}, want: ErrDuplicateKey},
		{name: "duplicate htu in claims", proof: func() string {
			c := strings.Replace(validClaims(), `"htm"`, `"htu":"https://evil.example.com/","htm"`, 1)
			return signJWS(t, testEC, []byte(validHeader()), []byte(c), nil)
		}, want: ErrDuplicateKey},
		{name: "duplicate in nested claim", proof: func() string {
			c := strings.Replace(validClaims(), `"htm"`, `"x":{"a":1,"a":2},"htm"`, 1)
			return signJWS(t, testEC, []byte(validHeader()), []byte(c), nil)
		}, want: ErrDuplicateKey},

		// Claims.
		{name: "jti missing", spec: es(func(s *spec) { delete(s.claims, "jti") }), want: ErrClaims},
		{name: "jti empty", spec: es(func(s *spec) { s.claims["jti"] = "" }), want: ErrClaims},
		{name: "jti number", spec: es(func(s *spec) { s.claims["jti"] = 7 }), want: ErrClaims},
		{name: "htm missing", spec: es(func(s *spec) { delete(s.claims, "htm") }), want: ErrClaims},
		{name: "htu missing", spec: es(func(s *spec) { delete(s.claims, "htu") }), want: ErrClaims},
		{name: "iat missing", spec: es(func(s *spec) { delete(s.claims, "iat") }), want: ErrClaims},
		{name: "iat string", spec: es(func(s *spec) { s.claims["iat"] = fmt.Sprint(testNow.Unix()) }), want: ErrClaims},
		{name: "iat negative", spec: es(func(s *spec) { s.claims["iat"] = -1 }), want: ErrClaims},
		{name: "iat huge", spec: es(func(s *spec) { s.claims["iat"] = 1e300 }), want: ErrClaims},
		{name: "claims not an object", proof: func() string {
			return signJWS(t, testEC, []byte(validHeader()), []byte(`["jti"]`), nil)
		}, want: ErrMalformed},

		// Server nonce.
		{name: "nonce missing", opts: func(o *Options) { o.Nonces = nonces }, want: ErrNonceRequired},
		{name: "nonce forged", spec: es(func(s *spec) { s.claims["nonce"] = b64.EncodeToString(make([]byte, 32)) }),
			opts: func(o *Options) { o.Nonces = nonces }, want: ErrNonceInvalid},
		{name: "nonce stale", spec: es(func(s *spec) { s.claims["nonce"] = staleNonce.Issue() }),
			opts: func(o *Options) { o.Nonces = nonces }, want: ErrNonceInvalid},
		{name: "nonce from another key", spec: es(func(s *spec) {
			other, _ := NewNonceSource(mustNonceKey(t), NonceOptions{Now: fixedNow})
			s.claims["nonce"] = other.Issue()
		}), opts: func(o *Options) { o.Nonces = nonces }, want: ErrNonceInvalid},
		{name: "nonce not a string", spec: es(func(s *spec) { s.claims["nonce"] = 5 }),
			opts: func(o *Options) { o.Nonces = nonces }, want: ErrClaims},
	}

	for _, a := range attacks {
		t.Run(a.name, func(t *testing.T) {
			var proof string
			switch {
			case a.proof != nil:
				proof = a.proof()
			case a.spec != nil:
				proof = a.spec().build(t)
			default:
				proof = newSpec(testEC).build(t)
			}
			req := testReq()
			if a.req != nil {
				a.req(&req)
			}
			opts := testOpts(t)
			if a.opts != nil {
				a.opts(&opts)
			}
			if a.replay {
				if _, err := Verify(context.Background(), proof, req, opts); err != nil {
					t.Fatalf("first use rejected: %v", err)
				}
			}
			p, err := Verify(context.Background(), proof, req, opts)
			if !errors.Is(err, a.want) {
				t.Fatalf("err = %v, want %v", err, a.want)
			}
			if p != nil {
				t.Fatal("non-nil Proof with an error")
			}
			wantCode := CodeInvalidProof
			if errors.Is(a.want, ErrNonceRequired) || errors.Is(a.want, ErrNonceInvalid) {
				wantCode = CodeUseNonce
			}
			if got := ErrorCode(err); got != wantCode {
				t.Fatalf("ErrorCode = %q, want %q", got, wantCode)
			}
			// Nothing from the proof is echoed.
			assertNoEcho(t, err, proof)
		})
	}
}

// assertNoEcho fails if err's text contains any 6-byte run of the proof or
// of its decoded parts (beyond our fixed phrases).
func assertNoEcho(t *testing.T, err error, proof string) {
	t.Helper()
	msg := err.Error()
	texts := []string{proof}
	for _, part := range strings.Split(proof, ".") {
		if b, err := b64.DecodeString(part); err == nil {
			texts = append(texts, string(b))
		}
	}
	for _, s := range texts {
		for i := 0; i+6 <= len(s); i++ {
			run := s[i : i+6]
			if strings.Contains(msg, run) && !strings.Contains(fixedPhrases, run) {
				t.Fatalf("error %q echoes proof content %q", msg, run)
			}
		}
	}
}

// fixedPhrases are our error texts: a run found in them is not an echo even
// if the proof happens to contain it too ("server", "dpop+jwt").
var fixedPhrases = func() string {
	var b strings.Builder
	for _, e := range append(proofErrors, ErrNonceRequired, ErrNonceInvalid, ErrReplayCheck, ErrConfig) {
		b.WriteString(e.Error() + "\n")
	}
	return b.String() + "dpop+jwt Ed25519 ES256 EdDSA"
}()

func bytesOf(s string) []byte { return []byte(s) }

func encodeASN1(raw []byte) ([]byte, error) {
	return rawToDER(nil, raw), nil
}

func mustNonceKey(t testing.TB) *NonceKey {
	k, err := GenerateNonceKey(nil)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// ecPrivBytes is the raw scalar of a P-256 key, for a jwk "d" member.
func ecPrivBytes(k *ecdsa.PrivateKey) []byte {
	b, err := k.Bytes()
	if err != nil {
		panic(err)
	}
	return b
}
