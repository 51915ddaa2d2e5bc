package dpop

import (
	"context"
	"crypto"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	jose "github.com/go-jose/go-jose/v4"
)

// The seed corpora live in testdata/fuzz/<target>/ so that plain `go test`
// runs them. DPOP_UPDATE_SEEDS=1 go test -run TestFuzzSeeds ./dpop
// regenerates them.

func fuzzOpts(t *testing.T) Options {
	return Options{Replay: newCache(t), Now: fixedNow}
}

// FuzzVerify feeds arbitrary proofs to Verify.
func FuzzVerify(f *testing.F) {
	f.Fuzz(func(t *testing.T, proof string) {
		req := testReq()
		p, err := Verify(context.Background(), proof, req, fuzzOpts(t))
		if err != nil {
			checkFuzzError(t, err, proof)
			return
		}
		checkAccepted(t, proof, p)
	})
}

// FuzzVerifySigned fuzzes the header and claims JSON but signs them with a
// real key, so that the fuzzer gets past the signature check into the claim
// and key parsing.
func FuzzVerifySigned(f *testing.F) {
	f.Fuzz(func(t *testing.T, header, claims []byte, ec bool) {
		var signer crypto.Signer = testEd
		if ec {
			signer = testEC
		}
		proof := signJWS(t, signer, header, claims, nil)
		req := testReq()
		req.AccessToken = testToken
		p, err := Verify(context.Background(), proof, req, fuzzOpts(t))
		if err != nil {
			checkFuzzError(t, err, proof)
			return
		}
		checkAccepted(t, proof, p)

		// encoding/json sees the same header and claims.
		var h, c map[string]any
		if err := json.Unmarshal(header, &h); err != nil {
			t.Fatalf("accepted header encoding/json rejects: %v", err)
		}
		if err := json.Unmarshal(claims, &c); err != nil {
			t.Fatalf("accepted claims encoding/json rejects: %v", err)
		}
		if h["typ"] != "dpop+jwt" || h["alg"] != p.Algorithm || h["crit"] != nil {
			t.Fatalf("accepted header %s", header)
		}
		if c["htm"] != testMethod || c["jti"] != p.JTI || c["ath"] != athOf(testToken) {
			t.Fatalf("accepted claims %s", claims)
		}
		if u, _ := c["htu"].(string); !strings.Contains(strings.ToLower(u), "server.example.com") {
			t.Fatalf("accepted htu %q", u)
		}
		// go-jose reads the same key from the jwk.
		raw, _ := json.Marshal(h["jwk"])
		var jwk jose.JSONWebKey
		if err := jwk.UnmarshalJSON(raw); err != nil {
			t.Fatalf("accepted jwk go-jose rejects: %v (%s)", err, raw)
		}
		sum, err := jwk.Thumbprint(crypto.SHA256)
		if err != nil || b64.EncodeToString(sum) != p.JKT {
			t.Fatalf("go-jose thumbprint differs: %v", err)
		}
	})
}

// FuzzJSONObject checks the strict JSON reader against encoding/json: what
// it accepts is valid JSON with the same string values.
func FuzzJSONObject(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) {
		got, err := readAll(data)
		if err != nil {
			if !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrDuplicateKey) {
				t.Fatalf("unexpected error kind: %v", err)
			}
			return
		}
		if !json.Valid(data) {
			t.Fatalf("accepted invalid JSON %q", data)
		}
		var m map[string]any
		if err := json.Unmarshal(data, &m); err != nil {
			t.Fatalf("encoding/json: %v", err)
		}
		for k, v := range got {
			if m[k] != v {
				t.Fatalf("member %q: we read %q, encoding/json %q", k, v, m[k])
			}
		}
	})
}

// FuzzNormalizeURL checks normalisation is idempotent and yields a plain
// absolute URL that net/url reads the same way.
func FuzzNormalizeURL(f *testing.F) {
	f.Fuzz(func(t *testing.T, s string) {
		n, err := normalizeURL(s)
		if err != nil {
			if !errors.Is(err, ErrURL) {
				t.Fatalf("unexpected error kind: %v", err)
			}
			return
		}
		again, err := normalizeURL(n)
		if err != nil || again != n {
			t.Fatalf("not idempotent: %q -> %q -> %q, %v", s, n, again, err)
		}
		if strings.ContainsAny(n, "?# \t\r\n\\") {
			t.Fatalf("normal form %q has a forbidden character", n)
		}
		rest := n[strings.Index(n, "//")+2:]
		if authority, _, _ := strings.Cut(rest, "/"); strings.ContainsAny(authority, "@%") {
			t.Fatalf("normal form %q has userinfo or escapes in the authority", n)
		}
		u, err := url.Parse(n)
		if err != nil {
			t.Fatalf("net/url rejects normal form %q: %v", n, err)
		}
		if u.User != nil || u.Opaque != "" || (u.Scheme != "http" && u.Scheme != "https") ||
			u.Host != strings.ToLower(u.Host) || u.Host == "" {
			t.Fatalf("net/url reads %q as %#v", n, u)
		}
		if !strings.HasPrefix(u.EscapedPath(), "/") {
			t.Fatalf("path of %q is %q", n, u.EscapedPath())
		}
	})
}

func checkFuzzError(t *testing.T, err error, proof string) {
	t.Helper()
	if ErrorCode(err) == "" {
		t.Fatalf("error without an RFC 9449 code: %v", err)
	}
	msg := err.Error()
	if len(msg) > 200 {
		t.Fatalf("long error text: %q", msg)
	}
	for i := 0; i+12 <= len(proof); i++ {
		if run := proof[i : i+12]; strings.Contains(msg, run) && !strings.Contains(fixedPhrases, run) {
			t.Fatalf("error %q echoes the proof", msg)
		}
	}
}

func checkAccepted(t *testing.T, proof string, p *Proof) {
	t.Helper()
	if jkt, err := Thumbprint(p.PublicKey); err != nil || jkt != p.JKT {
		t.Fatalf("JKT %s does not match the key: %v", p.JKT, err)
	}
	if p.JTI == "" || p.IssuedAt.IsZero() {
		t.Fatalf("accepted proof without jti or iat: %+v", p)
	}
	// go-jose agrees the signature is valid (it does not know "Ed25519").
	if p.Algorithm == AlgEd25519 {
		return
	}
	obj, err := jose.ParseSignedCompact(proof, []jose.SignatureAlgorithm{jose.ES256, jose.EdDSA})
	if err != nil {
		t.Fatalf("go-jose cannot parse an accepted proof: %v", err)
	}
	if _, err := obj.Verify(p.PublicKey); err != nil {
		t.Fatalf("go-jose rejects the signature of an accepted proof: %v", err)
	}
}

// seedCorpora returns the seeds of each target.
func seedCorpora(t *testing.T) map[string][][]any {
	good := func(signer crypto.Signer, edit func(*spec)) string {
		s := newSpec(signer)
		if edit != nil {
			edit(s)
		}
		return s.build(t)
	}
	withATH := func(s *spec) { s.claims["ath"] = athOf(testToken) }
	proofs := []string{
		good(testEC, nil),
		good(testEd, nil),
		good(testEd, func(s *spec) { s.header["alg"] = AlgEd25519 }),
		good(testEC, withATH),
		good(testEd, func(s *spec) { s.claims["nonce"] = "abc"; s.header["kid"] = "k1" }),
		good(testEC, func(s *spec) { s.header["crit"] = []string{"b64"} }),
		good(testEC, func(s *spec) { s.header["alg"] = "none" }),
		good(testEd, func(s *spec) {
			s.rawClaims = `{"jti":"a","jti":"b","htm":"POST","htu":"https://server.example.com/token","iat":1700000000}`
		}),
		good(testEC, func(s *spec) {
			s.rawHeader = `{"typ":"dpop+jwt","alg":"ES256","jwk":{"kty":"EC","crv":"P-256","x":"AA","y":"AA","d":"AA"}}`
		}),
		unfold(readTestdata(t, "rfc9449/section4.1-dpop-header.txt")),
		"e30.e30.AA",
		"",
	}
	var verify, signed [][]any
	for _, p := range proofs {
		verify = append(verify, []any{p})
	}
	hdr := func(signer crypto.Signer, alg string) []byte {
		b, _ := json.Marshal(map[string]any{"typ": "dpop+jwt", "alg": alg, "jwk": jwkOf(signer.Public())})
		return b
	}
	claims := func(extra string) []byte {
		return fmt.Appendf(nil, `{"jti":"j1","htm":"POST","htu":"https://server.example.com/token","iat":%d,"ath":%q%s}`,
			testNow.Unix(), athOf(testToken), extra)
	}
	signed = [][]any{
		{hdr(testEd, AlgEdDSA), claims(""), false},
		{hdr(testEd, AlgEd25519), claims(`,"nonce":"n","x":{"y":[1,2.5e3,null,true]}`), false},
		{hdr(testEC, AlgES256), claims(""), true},
		{hdr(testEC, AlgES256), []byte(`{"jti":"j","htm":"POST","htu":"HTTPS://Server.Example.com:443/./token?q","iat":1700000000.5,"ath":"` + athOf(testToken) + `"}`), true},
		{[]byte(`{"typ":"dpop+jwt","alg":"EdDSA","jwk":{"kty":"OKP","crv":"Ed25519","x":"` + b64.EncodeToString(testEd.Public().(ed25519.PublicKey)) + `","ext":true,"key_ops":["verify"]}}`), claims(""), false},
	}
	jsonSeeds := [][]any{
		{[]byte(`{}`)},
		{[]byte(`{"a":"b","c":[1,{"d":null}],"e":-1.5e-3}`)},
		{[]byte(`{"s":"\u00e9\ud83d\ude00\n\"\\"}`)},
		{[]byte(`{"a":1,"a":2}`)},
		{[]byte(`{"a":"\ud800"}`)},
		{[]byte("{\"a\":\"\xff\"}")},
	}
	urlSeeds := [][]any{
		{"https://server.example.com/token"},
		{"HTTPS://Server.Example.COM:0443/a/./b/../%7Ec?q=1#f"},
		{"http://[2001:db8::1]:8080/x%2fy"},
		{"https://user@host/"},
		{"https://h/caf\u00e9/%zz"},
	}
	return map[string][][]any{
		"FuzzVerify":       verify,
		"FuzzVerifySigned": signed,
		"FuzzJSONObject":   jsonSeeds,
		"FuzzNormalizeURL": urlSeeds,
	}
}

// TestFuzzSeeds keeps the seed corpora in place (and regenerates them with
// DPOP_UPDATE_SEEDS=1).
func TestFuzzSeeds(t *testing.T) {
	corpora := seedCorpora(t)
	for target, seeds := range corpora {
		dir := filepath.Join("testdata", "fuzz", target)
		if os.Getenv("DPOP_UPDATE_SEEDS") == "1" {
			if err := os.MkdirAll(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			for i, args := range seeds {
				var b strings.Builder
				b.WriteString("go test fuzz v1\n")
				for _, a := range args {
					switch v := a.(type) {
					case string:
						b.WriteString("string(" + strconv.Quote(v) + ")\n")
					case []byte:
						b.WriteString("[]byte(" + strconv.Quote(string(v)) + ")\n")
					case bool:
						b.WriteString("bool(" + strconv.FormatBool(v) + ")\n")
					}
				}
				name := fmt.Sprintf("seed-%02d-%x", i, sha256.Sum256([]byte(b.String())))[:24]
				if err := os.WriteFile(filepath.Join(dir, name), []byte(b.String()), 0o644); err != nil {
					t.Fatal(err)
				}
			}
		}
		entries, err := os.ReadDir(dir)
		if err != nil || len(entries) < len(seeds) {
			t.Fatalf("%s: %d seed files (%v); want at least %d: run DPOP_UPDATE_SEEDS=1 go test -run TestFuzzSeeds ./dpop",
				dir, len(entries), err, len(seeds))
		}
	}
}
