package token

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"math/rand/v2"
	"reflect"
	"strings"
	"testing"

	paseto "aidanwoods.dev/go-paseto"
	"github.com/hallpass/hallpass/keys"
)

func TestPAE(t *testing.T) {
	// Known answers from the PASETO specification (Common.md, PAE).
	tests := []struct {
		name   string
		pieces [][]byte
		want   string
	}{
		{"none", nil, "\x00\x00\x00\x00\x00\x00\x00\x00"},
		{"one empty", [][]byte{{}}, "\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00"},
		{"test", [][]byte{[]byte("test")}, "\x01\x00\x00\x00\x00\x00\x00\x00\x04\x00\x00\x00\x00\x00\x00\x00test"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := PAE(tt.pieces...); string(got) != tt.want {
				t.Errorf("PAE = %q, want %q", got, tt.want)
			}
		})
	}
}

func goPasetoKeys(t testing.TB, sk *keys.SecretKey) (paseto.V4AsymmetricSecretKey, paseto.V4AsymmetricPublicKey) {
	t.Helper()
	pub, err := paseto.NewV4AsymmetricPublicKeyFromBytes(sk.PublicKey().Ed25519())
	if err != nil {
		t.Fatal(err)
	}
	// keys.SecretKey never exposes its bytes; rebuild the same key from its
	// PASERK for go-paseto.
	raw, err := base64.RawURLEncoding.DecodeString(strings.TrimPrefix(sk.PlaintextPASERK(), "k4.secret."))
	if err != nil {
		t.Fatal(err)
	}
	sec, err := paseto.NewV4AsymmetricSecretKeyFromBytes(raw)
	if err != nil {
		t.Fatal(err)
	}
	return sec, pub
}

func jsonEqual(t *testing.T, a, b []byte) bool {
	t.Helper()
	var x, y any
	if err := json.Unmarshal(a, &x); err != nil {
		t.Fatalf("unmarshal %q: %v", a, err)
	}
	if err := json.Unmarshal(b, &y); err != nil {
		t.Fatalf("unmarshal %q: %v", b, err)
	}
	return reflect.DeepEqual(x, y)
}

// TestCrossCheckGoPaseto checks our implementation against an independent
// one, both ways.
func TestCrossCheckGoPaseto(t *testing.T) {
	sk := testSecretKey(t, 7)
	gSec, gPub := goPasetoKeys(t, sk)
	m := testMinter(t, nil)
	minted, claims, err := m.Mint(sk, testSubject)
	if err != nil {
		t.Fatal(err)
	}
	payload, err := json.Marshal(claims)
	if err != nil {
		t.Fatal(err)
	}
	footer := Footer{Kid: sk.ID()}.AppendJSON(nil)

	t.Run("minted token parses with go-paseto", func(t *testing.T) {
		tok, err := paseto.MakeParser(nil).ParseV4Public(gPub, minted, nil)
		if err != nil {
			t.Fatalf("go-paseto: %v", err)
		}
		if !jsonEqual(t, tok.ClaimsJSON(), payload) {
			t.Errorf("claims = %s, want %s", tok.ClaimsJSON(), payload)
		}
		if string(tok.Footer()) != string(footer) {
			t.Errorf("footer = %s, want %s", tok.Footer(), footer)
		}
	})

	implicits := [][]byte{nil, []byte("bound-to-this")}
	for _, implicit := range implicits {
		t.Run("go-paseto token verifies here/implicit="+string(implicit), func(t *testing.T) {
			gt, err := paseto.NewTokenFromClaimsJSON(payload, footer)
			if err != nil {
				t.Fatal(err)
			}
			signed := gt.V4Sign(gSec, implicit)
			p, f, err := VerifyV4Public(sk.PublicKey(), signed, implicit)
			if err != nil {
				t.Fatalf("VerifyV4Public: %v", err)
			}
			if !jsonEqual(t, p, payload) || string(f) != string(footer) {
				t.Errorf("payload %s footer %s", p, f)
			}
			if _, err := ParseClaims(p); err != nil {
				t.Errorf("ParseClaims: %v", err)
			}
			fk, err := UnsafeParseFooterKid(signed)
			if err != nil || fk.Kid != sk.ID() {
				t.Errorf("UnsafeParseFooterKid = %v, %v", fk, err)
			}
		})
	}

	t.Run("random payloads, footers and assertions both ways", func(t *testing.T) {
		r := rand.New(rand.NewPCG(1, 2))
		for i := range 50 {
			p, err := json.Marshal(map[string]string{"r": base64.StdEncoding.EncodeToString(randBytes(r, r.IntN(300)))})
			if err != nil {
				t.Fatal(err)
			}
			f := randBytes(r, 1+r.IntN(40))
			imp := randBytes(r, r.IntN(40))
			ours, err := SignV4Public(sk, p, f, imp)
			if err != nil {
				t.Fatal(err)
			}
			gt, err := paseto.MakeParser(nil).ParseV4Public(gPub, ours, imp)
			if err != nil {
				t.Fatalf("%d: go-paseto rejects our token: %v", i, err)
			}
			if !jsonEqual(t, gt.ClaimsJSON(), p) || !bytes.Equal(gt.Footer(), f) {
				t.Fatalf("%d: go-paseto reads other data", i)
			}
			theirs := gt.V4Sign(gSec, imp)
			gp, gf, err := VerifyV4Public(sk.PublicKey(), theirs, imp)
			if err != nil || !jsonEqual(t, gp, p) || !bytes.Equal(gf, f) {
				t.Fatalf("%d: go-paseto's token: %v", i, err)
			}
		}
	})
}

func randBytes(r *rand.Rand, n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// flip returns s with one base64 character changed at index i to another
// alphabet character that changes the decoded bytes.
func flip(s string, i int) string {
	c := byte('A')
	if s[i] == 'A' {
		c = 'B'
	}
	return s[:i] + string(c) + s[i+1:]
}

func TestVerifyV4PublicRejects(t *testing.T) {
	sk := testSecretKey(t, 7)
	pk := sk.PublicKey()
	payload := []byte(`{"data":"a payload of a length that leaves base64 tail bits"}`)
	tok, err := SignV4Public(sk, payload, []byte(`{"kid":"x"}`), nil)
	if err != nil {
		t.Fatal(err)
	}
	noFooter, err := SignV4Public(sk, payload, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	body, footer, _ := strings.Cut(strings.TrimPrefix(tok, HeaderV4Public), ".")
	if len(body)%4 == 0 {
		t.Fatal("fixture: pick a payload whose encoding has tail bits")
	}
	// Set unused tail bits: stdlib's non-strict decoder would accept this.
	last := body[len(body)-1]
	tailBits := body[:len(body)-1] + string("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"[b64Rev[last]+1])
	other := testSecretKey(t, 8).PublicKey()

	tests := []struct {
		name    string
		key     keys.PublicKey
		tainted string
		want    error
	}{
		{"empty", pk, "", ErrMalformed},
		{"v4.local", pk, "v4.local." + body + "." + footer, ErrMalformed},
		{"v3.public", pk, "v3.public." + body, ErrMalformed},
		{"upper-case header", pk, "V4.PUBLIC." + body, ErrMalformed},
		{"header only", pk, HeaderV4Public, ErrInvalidSignature},
		{"empty footer segment", pk, noFooter + ".", ErrMalformed},
		{"extra segment", pk, tok + ".e30", ErrMalformed},
		{"truncated", pk, tok[:len(HeaderV4Public)+len(body)-1] + "." + footer, ErrInvalidSignature},
		{"too short", pk, HeaderV4Public + base64.RawURLEncoding.EncodeToString(make([]byte, 63)), ErrInvalidSignature},
		{"flipped signature", pk, HeaderV4Public + flip(body, len(body)-5) + "." + footer, ErrInvalidSignature},
		{"flipped payload", pk, HeaderV4Public + flip(body, 3) + "." + footer, ErrInvalidSignature},
		{"other footer", pk, HeaderV4Public + body + ".e30", ErrInvalidSignature},
		{"footer removed", pk, HeaderV4Public + body, ErrInvalidSignature},
		{"footer added", pk, noFooter + ".e30", ErrInvalidSignature},
		{"padding", pk, HeaderV4Public + body + "==." + footer, ErrInvalidSignature},
		{"line break", pk, HeaderV4Public + body[:10] + "\n" + body[10:] + "." + footer, ErrInvalidSignature},
		{"CR in footer", pk, HeaderV4Public + body + "." + footer[:2] + "\r" + footer[2:], ErrInvalidSignature},
		{"std alphabet", pk, HeaderV4Public + strings.NewReplacer("-", "+", "_", "/").Replace(body) + "." + footer, ErrInvalidSignature},
		{"tail bits", pk, HeaderV4Public + tailBits + "." + footer, ErrInvalidSignature},
		{"impossible length", pk, HeaderV4Public + body + "A." + footer, ErrInvalidSignature},
		{"wrong key", other, tok, ErrInvalidSignature},
		{"zero key", keys.PublicKey{}, tok, ErrInvalidKey},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.name == "std alphabet" && !strings.ContainsAny(body, "-_") {
				t.Fatal("fixture has no - or _: this case would test nothing")
			}
			p, f, err := VerifyV4Public(tt.key, tt.tainted, nil)
			if !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
			if p != nil || f != nil {
				t.Error("data returned with an error")
			}
			assertNoLeak(t, err, tt.tainted)
		})
	}
	t.Run("implicit assertion", func(t *testing.T) {
		bound, err := SignV4Public(sk, payload, nil, []byte("aud=x"))
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := VerifyV4Public(pk, bound, nil); !errors.Is(err, ErrInvalidSignature) {
			t.Errorf("missing implicit: %v", err)
		}
		if _, _, err := VerifyV4Public(pk, bound, []byte("aud=x")); err != nil {
			t.Errorf("right implicit: %v", err)
		}
	})
}

// assertNoLeak fails if the error text holds any 8-character piece of the
// token after its header.
func assertNoLeak(t *testing.T, err error, tainted string) {
	t.Helper()
	if err == nil {
		return
	}
	msg := err.Error()
	rest := strings.TrimPrefix(tainted, HeaderV4Public)
	for i := 0; i+8 <= len(rest); i++ {
		if strings.Contains(msg, rest[i:i+8]) {
			t.Fatalf("error %q quotes the token (%q)", msg, rest[i:i+8])
		}
	}
}

type fakeSigner struct {
	pub crypto.PublicKey
	sig []byte
	err error
}

func (s fakeSigner) Public() crypto.PublicKey { return s.pub }
func (s fakeSigner) Sign(io.Reader, []byte, crypto.SignerOpts) ([]byte, error) {
	return s.sig, s.err
}

func TestSignV4PublicRejects(t *testing.T) {
	ec, err := ecdsa.GenerateKey(elliptic.P256(), &countingReader{})
	if err != nil {
		t.Fatal(err)
	}
	edPub := testSecretKey(t, 7).PublicKey().Ed25519()
	boom := errors.New("kms down")
	tests := []struct {
		name   string
		signer crypto.Signer
		want   error
	}{
		{"nil", nil, ErrInvalidKey},
		{"ecdsa", ec, ErrInvalidKey},
		{"short ed25519 key", fakeSigner{pub: ed25519.PublicKey{1, 2}}, ErrInvalidKey},
		{"signer error", fakeSigner{pub: edPub, err: boom}, boom},
		{"short signature", fakeSigner{pub: edPub, sig: make([]byte, 63)}, ErrInvalidKey},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tok, err := SignV4Public(tt.signer, []byte("{}"), nil, nil)
			if !errors.Is(err, tt.want) || tok != "" {
				t.Fatalf("SignV4Public = %q, %v; want %v", tok, err, tt.want)
			}
		})
	}
}

// TestDecodeB64 compares the strict decoder with encoding/base64's strict
// mode, which differs only in skipping CR and LF.
func TestDecodeB64(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	const chars = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_+/=.\n\r \x00\xff"
	std := base64.RawURLEncoding.Strict()
	for i := range 20000 {
		var s string
		if i%2 == 0 {
			s = base64.RawURLEncoding.EncodeToString(randBytes(r, r.IntN(70)))
			if i%4 == 0 && len(s) > 0 { // perturb one character
				j := r.IntN(len(s))
				s = s[:j] + string(chars[r.IntN(len(chars))]) + s[j+1:]
			}
		} else {
			b := make([]byte, r.IntN(12))
			for j := range b {
				b[j] = chars[r.IntN(len(chars))]
			}
			s = string(b)
		}
		want, werr := std.DecodeString(s)
		if strings.ContainsAny(s, "\r\n") {
			werr = errors.New("CR/LF")
		}
		n, ok := decodedLen(len(s))
		var got []byte
		if ok {
			got = make([]byte, n)
			ok = decodeB64(got, s)
		}
		if ok != (werr == nil) || (ok && !bytes.Equal(got, want)) {
			t.Fatalf("%q: ours ok=%v %x, stdlib err=%v %x", s, ok, got, werr, want)
		}
	}
}
