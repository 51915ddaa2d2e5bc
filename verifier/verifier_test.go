package verifier

import (
	"context"
	"encoding/base64"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/hallpass/hallpass/keys"
	"github.com/hallpass/hallpass/token"
)

func TestVerify(t *testing.T) {
	sk := testKey(t, 7)
	other := testKey(t, 8)
	kid := sk.ID()
	okFooter := footerOf(kid)
	at := func(d time.Duration) string { return rfc3339(testNow.Add(d)) }
	signP := func(mut func(map[string]any)) string { return sign(t, sk, payloadOf(t, mut), okFooter) }
	valid := signP(nil)
	minted, _ := mint(t, sk, testNow)
	body := strings.SplitN(valid, ".", 4)[2]
	validPayload := payloadOf(t, nil)
	last := len(validPayload) - 1

	revokedSet, err := ParseKeySet(keySetJSON(t, testIss, []keys.PublishedKey{published(sk, keys.StatusCurrent)}, []keys.KeyID{kid}), testIss)
	if err != nil {
		t.Fatal(err)
	}
	revokedV, err := New(revokedSet, testIss, testAud, WithClock(func() time.Time { return testNow }))
	if err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name    string
		tainted string
		v       *Verifier // nil: newTestVerifier
		want    error     // nil: valid
	}{
		{"minted", minted, nil, nil},
		{"hand-signed", valid, nil, nil},
		{"unknown claim", sign(t, sk, validPayload[:last]+`,"scope":["read"]}`, okFooter), nil, nil},

		// Time rules, leeway 30 s.
		{"expired", signP(func(m map[string]any) {
			m["iat"], m["nbf"], m["exp"] = at(-20*time.Minute), at(-20*time.Minute), at(-31*time.Second)
		}), nil, ErrExpired},
		{"exp at the leeway edge", signP(func(m map[string]any) {
			m["iat"], m["nbf"], m["exp"] = at(-20*time.Minute), at(-20*time.Minute), at(-30*time.Second)
		}), nil, ErrExpired},
		{"exp inside the leeway", signP(func(m map[string]any) {
			m["iat"], m["nbf"], m["exp"] = at(-20*time.Minute), at(-20*time.Minute), at(-29*time.Second)
		}), nil, nil},
		{"nbf in the future", signP(func(m map[string]any) { m["nbf"] = at(31 * time.Second) }), nil, ErrNotYetValid},
		{"nbf at the leeway edge", signP(func(m map[string]any) { m["nbf"] = at(30 * time.Second) }), nil, nil},
		{"iat in the future", signP(func(m map[string]any) { m["iat"], m["nbf"] = at(31*time.Second), at(0) }), nil, ErrIssuedInFuture},
		{"iat at the leeway edge", signP(func(m map[string]any) { m["iat"], m["nbf"] = at(30*time.Second), at(0) }), nil, nil},
		{"expired beats wrong issuer", signP(func(m map[string]any) {
			m["iat"], m["nbf"], m["exp"], m["iss"] = at(-20*time.Minute), at(-20*time.Minute), at(-time.Minute), "https://evil.example"
		}), nil, ErrExpired},

		// Issuer and audience.
		{"wrong issuer", signP(func(m map[string]any) { m["iss"] = "https://evil.example" }), nil, ErrIssuer},
		{"issuer with trailing slash", signP(func(m map[string]any) { m["iss"] = testIss + "/" }), nil, ErrIssuer},
		{"wrong audience", signP(func(m map[string]any) { m["aud"] = "other.example" }), nil, ErrAudience},
		{"issuer checked before audience", signP(func(m map[string]any) { m["iss"], m["aud"] = "https://evil.example", "x" }), nil, ErrIssuer},
		{"audience as array", signP(func(m map[string]any) { m["aud"] = []string{testAud} }), nil, ErrInvalidClaims},

		// Claims: types and presence.
		{"iat as unix time", signP(func(m map[string]any) { m["iat"] = testNow.Unix() }), nil, ErrInvalidClaims},
		{"exp as number", signP(func(m map[string]any) { m["exp"] = 1e12 }), nil, ErrInvalidClaims},
		{"sub null", signP(func(m map[string]any) { m["sub"] = nil }), nil, ErrInvalidClaims},
		{"cnf as string", signP(func(m map[string]any) { m["cnf"] = testJKT }), nil, ErrInvalidClaims},
		{"jkt not a thumbprint", signP(func(m map[string]any) { m["cnf"] = map[string]any{"jkt": "abc"} }), nil, ErrInvalidClaims},
		{"cnf without jkt", signP(func(m map[string]any) { m["cnf"] = map[string]any{} }), nil, ErrInvalidClaims},
		{"lifetime over 60 min", signP(func(m map[string]any) { m["exp"] = at(61 * time.Minute) }), nil, ErrInvalidClaims},
		{"duplicate top-level claim", sign(t, sk, validPayload[:last]+`,"sub":"admin"}`, okFooter), nil, ErrInvalidClaims},
		{"duplicate via escape", sign(t, sk, validPayload[:last]+`,"\u0073ub":"admin"}`, okFooter), nil, ErrInvalidClaims},
		{"duplicate in cnf", sign(t, sk, strings.Replace(validPayload, `{"jkt":`, `{"jkt":"`+testJKT+`","jkt":`, 1), okFooter), nil, ErrInvalidClaims},
		{"duplicate deep in unknown claim", sign(t, sk, validPayload[:last]+`,"x":[{"a":1,"a":2}]}`, okFooter), nil, ErrInvalidClaims},
		{"payload array", sign(t, sk, `[`+validPayload+`]`, okFooter), nil, ErrInvalidClaims},
		{"payload string", sign(t, sk, `"x"`, okFooter), nil, ErrInvalidClaims},
		{"payload empty", sign(t, sk, ``, okFooter), nil, ErrInvalidClaims},
		{"payload not JSON", sign(t, sk, `this is a signed message`, okFooter), nil, ErrInvalidClaims},
		{"payload trailing data", sign(t, sk, validPayload+`{}`, okFooter), nil, ErrInvalidClaims},

		// Footer.
		{"footer missing", sign(t, sk, validPayload, ""), nil, ErrMalformed},
		{"footer oversized", sign(t, sk, validPayload, okFooter+strings.Repeat(" ", token.MaxFooterSize)), nil, ErrMalformed},
		{"footer deep", sign(t, sk, validPayload, `{"x":`+strings.Repeat("[", 50)+strings.Repeat("]", 50)+`,`+okFooter[1:]), nil, ErrMalformed},
		{"footer duplicate kid", sign(t, sk, validPayload, `{"kid":"`+string(kid)+`","kid":"`+string(kid)+`"}`), nil, ErrMalformed},
		{"footer extra member", sign(t, sk, validPayload, `{"kid":"`+string(kid)+`","wpk":"x"}`), nil, ErrMalformed},
		{"footer not JSON", sign(t, sk, validPayload, `arbitrary-string-that-isn't-json`), nil, ErrMalformed},
		{"footer kid not a k4.pid", sign(t, sk, validPayload, `{"kid":"zVhMiPBP9fRf2snEcT7gFTioeA9COcNy9DfgL1W60haN"}`), nil, ErrMalformed},
		{"footer bad base64", valid[:strings.LastIndexByte(valid, '.')] + ".!!!!", nil, ErrMalformed},

		// Keys.
		{"unknown kid", sign(t, other, validPayload, footerOf(other.ID())), nil, ErrUnknownKey},
		{"known kid, other signer", sign(t, other, validPayload, okFooter), nil, ErrInvalidSignature},
		{"revoked kid", valid, revokedV, ErrKeyRevoked},

		// Structure and signature.
		{"empty", "", nil, ErrMalformed},
		{"over the size limit", sign(t, sk, validPayload[:last]+`,"pad":"`+strings.Repeat("x", 3000)+`"}`, okFooter), nil, ErrTooLarge},
		{"size checked first", "v4.local." + strings.Repeat("A", 5000), nil, ErrTooLarge},
		{"v4.local", "v4.local." + strings.TrimPrefix(valid, token.HeaderV4Public), nil, ErrMalformed},
		{"v3.public", "v3.public." + strings.TrimPrefix(valid, token.HeaderV4Public), nil, ErrMalformed},
		{"v2.public", "v2.public." + strings.TrimPrefix(valid, token.HeaderV4Public), nil, ErrMalformed},
		{"leading space", " " + valid, nil, ErrMalformed},
		{"trailing newline", valid + "\n", nil, ErrMalformed},
		{"extra segment", valid + ".e30", nil, ErrMalformed},
		{"truncated body", token.HeaderV4Public + body[:len(body)-1] + "." + base64.RawURLEncoding.EncodeToString([]byte(okFooter)), nil, ErrInvalidSignature},
		{"short body", token.HeaderV4Public + "AAAA." + base64.RawURLEncoding.EncodeToString([]byte(okFooter)), nil, ErrInvalidSignature},
		{"flipped signature bit", token.HeaderV4Public + flipBit(t, body, len(body)-10) + "." + base64.RawURLEncoding.EncodeToString([]byte(okFooter)), nil, ErrInvalidSignature},
		{"flipped payload bit", token.HeaderV4Public + flipBit(t, body, 5) + "." + base64.RawURLEncoding.EncodeToString([]byte(okFooter)), nil, ErrInvalidSignature},
		{"padded base64", token.HeaderV4Public + body + "==." + base64.RawURLEncoding.EncodeToString([]byte(okFooter)), nil, ErrInvalidSignature},
		{"implicit assertion not ours", signImplicit(t, sk, validPayload, okFooter, "x"), nil, ErrInvalidSignature},
	}
	for _, name := range []string{"iss", "aud", "sub", "dev", "cnf", "iat", "nbf", "exp", "jti"} {
		tests = append(tests, struct {
			name    string
			tainted string
			v       *Verifier
			want    error
		}{"missing " + name, signP(func(m map[string]any) { delete(m, name) }), nil, ErrInvalidClaims})
	}
	for _, name := range []string{"iss", "aud", "sub", "dev", "jti"} {
		tests = append(tests, struct {
			name    string
			tainted string
			v       *Verifier
			want    error
		}{name + " wrong type", signP(func(m map[string]any) { m[name] = 42 }), nil, ErrInvalidClaims},
			struct {
				name    string
				tainted string
				v       *Verifier
				want    error
			}{name + " empty", signP(func(m map[string]any) { m[name] = "" }), nil, ErrInvalidClaims})
	}

	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := tt.v
			if v == nil {
				v = newTestVerifier(t)
			}
			c, err := v.Verify(context.Background(), tt.tainted)
			if tt.want == nil {
				if err != nil || c == nil {
					t.Fatalf("Verify = %v, %v", c, err)
				}
				if c.Subject != "acct_123" || c.Confirmation.JKT != testJKT {
					t.Errorf("claims = %+v", c)
				}
				return
			}
			if c != nil {
				t.Fatalf("claims returned with error %v", err)
			}
			if !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
			checkClassAndCode(t, err)
			assertNoLeak(t, err, tt.tainted)
		})
	}
}

func signImplicit(t *testing.T, sk *keys.SecretKey, payload, footer, implicit string) string {
	t.Helper()
	tok, err := token.SignV4Public(sk, []byte(payload), []byte(footer), []byte(implicit))
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// flipBit flips the lowest bit of the base64 character at i (never one of
// the unused tail bits).
func flipBit(t *testing.T, s string, i int) string {
	t.Helper()
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	j := strings.IndexByte(alphabet, s[i])
	if j < 0 || i == len(s)-1 {
		t.Fatal("flipBit: bad index")
	}
	return s[:i] + string(alphabet[j^1]) + s[i+1:]
}

// checkClassAndCode checks that err is in exactly one class and that Code
// gives the documented code.
func checkClassAndCode(t *testing.T, err error) {
	t.Helper()
	inv, rej := errors.Is(err, ErrTokenInvalid), errors.Is(err, ErrTokenRejected)
	if inv == rej {
		t.Errorf("%v: invalid=%v rejected=%v, want exactly one", err, inv, rej)
	}
	want := CodeInvalidToken
	switch {
	case errors.Is(err, ErrExpired):
		want = CodeTokenExpired
	case errors.Is(err, ErrRevoked), errors.Is(err, ErrKeyRevoked):
		want = CodeTokenRevoked
	case errors.Is(err, ErrBinding):
		want = CodeInvalidDPoPProof
	}
	if got := Code(err); got != want {
		t.Errorf("Code(%v) = %q, want %q", err, got, want)
	}
}

// assertNoLeak fails if the error text holds any 8-character piece of the
// token after its header, or any claim value or key id.
func assertNoLeak(t *testing.T, err error, tainted string) {
	t.Helper()
	msg := err.Error()
	rest := strings.TrimPrefix(tainted, token.HeaderV4Public)
	if len(rest) > 1024 {
		rest = rest[:1024]
	}
	for i := 0; i+8 <= len(rest); i++ {
		if w := rest[i : i+8]; strings.Contains(msg, w) && !strings.Contains(" "+token.HeaderV4Public, w) {
			t.Fatalf("error %q quotes the token (%q)", msg, rest[i:i+8])
		}
	}
	for _, s := range []string{"issuer.example", "evil", "acct_123", "dev_456", testJKT[:8], "AAECAwQF", "2026-", "k4.pid.", "admin", string(testKey(t, 7).ID())[7:15]} {
		if strings.Contains(msg, s) {
			t.Fatalf("error %q quotes %q", msg, s)
		}
	}
}

func TestClockReadPerCall(t *testing.T) {
	sk := testKey(t, 7)
	tok, _ := mint(t, sk, testNow)
	now := testNow
	ks, _ := NewStaticKeySet(sk.PublicKey())
	v, err := New(ks, testIss, testAud, WithClock(func() time.Time { return now }))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := v.Verify(context.Background(), tok); err != nil {
		t.Fatalf("fresh token: %v", err)
	}
	now = now.Add(10*time.Minute + 29*time.Second)
	if _, err := v.Verify(context.Background(), tok); err != nil {
		t.Fatalf("inside leeway: %v", err)
	}
	now = now.Add(time.Second)
	if _, err := v.Verify(context.Background(), tok); !errors.Is(err, ErrExpired) || Code(err) != CodeTokenExpired {
		t.Fatalf("after exp + leeway: %v", err)
	}

	t.Run("zero leeway", func(t *testing.T) {
		now := testNow.Add(10 * time.Minute)
		v, _ := New(ks, testIss, testAud, WithClock(func() time.Time { return now }), WithLeeway(0))
		if _, err := v.Verify(context.Background(), tok); !errors.Is(err, ErrExpired) {
			t.Fatalf("at exp: %v", err)
		}
		now = now.Add(-time.Nanosecond)
		if _, err := v.Verify(context.Background(), tok); err != nil {
			t.Fatalf("just before exp: %v", err)
		}
	})
}

type recordingKeys struct {
	KeySource
	calls int
	err   error
	key   *keys.PublicKey
}

func (r *recordingKeys) LookupKey(ctx context.Context, kid keys.KeyID) (keys.PublicKey, error) {
	r.calls++
	if r.err != nil {
		return keys.PublicKey{}, r.err
	}
	if r.key != nil {
		return *r.key, nil
	}
	return r.KeySource.LookupKey(ctx, kid)
}

type checkerFunc func(ctx context.Context, kid keys.KeyID, c *token.Claims) error

func (f checkerFunc) CheckRevoked(ctx context.Context, kid keys.KeyID, c *token.Claims) error {
	return f(ctx, kid, c)
}

type bindingFunc func(ctx context.Context, c *token.Claims) error

func (f bindingFunc) CheckBinding(ctx context.Context, c *token.Claims) error { return f(ctx, c) }

// secretError is a checker error whose text quotes token content, as a
// careless implementation might.
type secretError struct{ jti string }

func (e secretError) Error() string { return "denylisted jti " + e.jti }

func TestRevocationAndBinding(t *testing.T) {
	sk := testKey(t, 7)
	tok, minted := mint(t, sk, testNow)
	ctx := context.Background()

	t.Run("revocation sees kid and claims", func(t *testing.T) {
		var gotKid keys.KeyID
		var gotJTI string
		v := newTestVerifier(t, WithRevocation(checkerFunc(func(_ context.Context, kid keys.KeyID, c *token.Claims) error {
			gotKid, gotJTI = kid, c.ID
			return nil
		})))
		if _, err := v.Verify(ctx, tok); err != nil {
			t.Fatal(err)
		}
		if gotKid != sk.ID() || gotJTI != minted.ID {
			t.Errorf("checker saw %q %q", gotKid, gotJTI)
		}
	})
	t.Run("revoked", func(t *testing.T) {
		cause := secretError{minted.ID}
		v := newTestVerifier(t, WithRevocation(checkerFunc(func(context.Context, keys.KeyID, *token.Claims) error { return cause })))
		c, err := v.Verify(ctx, tok)
		if c != nil || !errors.Is(err, ErrRevoked) || !errors.Is(err, cause) || Code(err) != CodeTokenRevoked {
			t.Fatalf("Verify = %v, %v", c, err)
		}
		var se secretError
		if !errors.As(err, &se) {
			t.Error("cause not reachable with errors.As")
		}
		checkClassAndCode(t, err)
		assertNoLeak(t, err, tok)
		if strings.Contains(err.Error(), minted.ID) {
			t.Errorf("error %q quotes the checker's text", err)
		}
	})
	t.Run("revocation not consulted for an expired token", func(t *testing.T) {
		calls := 0
		v := newTestVerifier(t, WithClock(func() time.Time { return testNow.Add(time.Hour) }),
			WithRevocation(checkerFunc(func(context.Context, keys.KeyID, *token.Claims) error { calls++; return nil })))
		if _, err := v.Verify(ctx, tok); !errors.Is(err, ErrExpired) || calls != 0 {
			t.Fatalf("err = %v, calls = %d", err, calls)
		}
	})
	t.Run("bound: checker sees jkt", func(t *testing.T) {
		var jkt string
		c, err := newTestVerifier(t).VerifyBound(ctx, tok, bindingFunc(func(_ context.Context, c *token.Claims) error {
			jkt = c.Confirmation.JKT
			return nil
		}))
		if err != nil || c == nil || jkt != testJKT {
			t.Fatalf("VerifyBound = %v, %v (jkt %q)", c, err, jkt)
		}
	})
	t.Run("bound: nil checker", func(t *testing.T) {
		c, err := newTestVerifier(t).VerifyBound(ctx, tok, nil)
		if c != nil || !errors.Is(err, ErrBinding) || Code(err) != CodeInvalidDPoPProof {
			t.Fatalf("VerifyBound(nil) = %v, %v", c, err)
		}
	})
	t.Run("bound: proof fails", func(t *testing.T) {
		cause := secretError{testJKT}
		c, err := newTestVerifier(t).VerifyBound(ctx, tok, bindingFunc(func(context.Context, *token.Claims) error { return cause }))
		if c != nil || !errors.Is(err, ErrBinding) || !errors.Is(err, cause) {
			t.Fatalf("VerifyBound = %v, %v", c, err)
		}
		checkClassAndCode(t, err)
		assertNoLeak(t, err, tok)
	})
	t.Run("binding runs after revocation", func(t *testing.T) {
		calls := 0
		v := newTestVerifier(t, WithRevocation(checkerFunc(func(context.Context, keys.KeyID, *token.Claims) error { return errors.New("revoked") })))
		_, err := v.VerifyBound(ctx, tok, bindingFunc(func(context.Context, *token.Claims) error { calls++; return nil }))
		if !errors.Is(err, ErrRevoked) || calls != 0 {
			t.Fatalf("err = %v, binding calls = %d", err, calls)
		}
	})
	t.Run("binding not consulted for a wrong audience", func(t *testing.T) {
		ks, _ := NewStaticKeySet(sk.PublicKey())
		v, _ := New(ks, testIss, "other", WithClock(func() time.Time { return testNow }))
		calls := 0
		_, err := v.VerifyBound(ctx, tok, bindingFunc(func(context.Context, *token.Claims) error { calls++; return nil }))
		if !errors.Is(err, ErrAudience) || calls != 0 {
			t.Fatalf("err = %v, binding calls = %d", err, calls)
		}
	})
}

func TestKeyLookup(t *testing.T) {
	sk := testKey(t, 7)
	tok, _ := mint(t, sk, testNow)
	static, _ := NewStaticKeySet(sk.PublicKey())
	otherKey := testKey(t, 8).PublicKey()
	ctx := context.Background()
	outage := secretError{"fetch failed for " + string(sk.ID())}
	tests := []struct {
		name     string
		src      *recordingKeys
		tainted  string
		want     error
		code     string
		lookedUp int
	}{
		{"static hit", &recordingKeys{KeySource: static}, tok, nil, "", 1},
		{"not looked up for a bad header", &recordingKeys{KeySource: static}, "v4.local." + tok[10:], ErrMalformed, CodeInvalidToken, 0},
		{"not looked up for a bad footer", &recordingKeys{KeySource: static}, tok + "x", ErrMalformed, CodeInvalidToken, 0},
		{"wrapped unknown", &recordingKeys{err: errors.Join(errors.New("x"), ErrUnknownKey)}, tok, ErrUnknownKey, CodeInvalidToken, 1},
		{"wrapped revoked", &recordingKeys{err: errors.Join(errors.New("x"), ErrKeyRevoked)}, tok, ErrKeyRevoked, CodeTokenRevoked, 1},
		{"source outage", &recordingKeys{err: outage}, tok, ErrKeySource, CodeServerError, 1},
		{"source returns another key", &recordingKeys{key: &otherKey}, tok, ErrKeySource, CodeServerError, 1},
		{"source returns the zero key", &recordingKeys{key: &keys.PublicKey{}}, tok, ErrKeySource, CodeServerError, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, err := New(tt.src, testIss, testAud, WithClock(func() time.Time { return testNow }))
			if err != nil {
				t.Fatal(err)
			}
			c, err := v.Verify(ctx, tt.tainted)
			if tt.src.calls != tt.lookedUp {
				t.Errorf("LookupKey calls = %d, want %d", tt.src.calls, tt.lookedUp)
			}
			if tt.want == nil {
				if err != nil || c == nil {
					t.Fatalf("Verify = %v, %v", c, err)
				}
				return
			}
			if c != nil || !errors.Is(err, tt.want) || Code(err) != tt.code {
				t.Fatalf("Verify = %v, %v (code %q); want %v, %q", c, err, Code(err), tt.want, tt.code)
			}
			assertNoLeak(t, err, tt.tainted)
		})
	}
}

func TestNew(t *testing.T) {
	ks, _ := NewStaticKeySet(testKey(t, 7).PublicKey())
	var nilSet *StaticKeySet
	tests := []struct {
		name     string
		ks       KeySource
		iss, aud string
		opts     []Option
		ok       bool
	}{
		{"defaults", ks, testIss, testAud, nil, true},
		{"all options", ks, testIss, testAud, []Option{WithClock(time.Now), WithLeeway(0), WithMaxTokenSize(MaxTokenSize),
			WithRevocation(checkerFunc(func(context.Context, keys.KeyID, *token.Claims) error { return nil }))}, true},
		{"max leeway", ks, testIss, testAud, []Option{WithLeeway(MaxLeeway)}, true},
		{"nil key source", nil, testIss, testAud, nil, false},
		{"typed nil key set", nilSet, testIss, testAud, nil, false},
		{"no issuer", ks, "", testAud, nil, false},
		{"no audience", ks, testIss, "", nil, false},
		{"nil option", ks, testIss, testAud, []Option{nil}, false},
		{"nil clock", ks, testIss, testAud, []Option{WithClock(nil)}, false},
		{"negative leeway", ks, testIss, testAud, []Option{WithLeeway(-time.Second)}, false},
		{"leeway too large", ks, testIss, testAud, []Option{WithLeeway(MaxLeeway + time.Second)}, false},
		{"size too small", ks, testIss, testAud, []Option{WithMaxTokenSize(MinTokenSize - 1)}, false},
		{"size too large", ks, testIss, testAud, []Option{WithMaxTokenSize(MaxTokenSize + 1)}, false},
		{"nil revocation", ks, testIss, testAud, []Option{WithRevocation(nil)}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, err := New(tt.ks, tt.iss, tt.aud, tt.opts...)
			if tt.ok != (err == nil) || (v == nil) == (err == nil) {
				t.Fatalf("New = %v, %v", v, err)
			}
			if err != nil && (!errors.Is(err, ErrConfig) || Code(err) != CodeServerError) {
				t.Fatalf("err = %v", err)
			}
		})
	}
	v, _ := New(ks, testIss, testAud)
	if v.leeway != DefaultLeeway || v.maxSize != DefaultMaxTokenSize || v.now == nil || v.revocation != nil {
		t.Errorf("defaults: %+v", v)
	}
}

func TestMaxTokenSize(t *testing.T) {
	sk := testKey(t, 7)
	tok, _ := mint(t, sk, testNow)
	if _, err := newTestVerifier(t, WithMaxTokenSize(len(tok))).Verify(context.Background(), tok); err != nil {
		t.Errorf("at the limit: %v", err)
	}
	if _, err := newTestVerifier(t, WithMaxTokenSize(len(tok)-1)).Verify(context.Background(), tok); !errors.Is(err, ErrTooLarge) {
		t.Errorf("over the limit: %v", err)
	}
}

func TestCode(t *testing.T) {
	tests := []struct {
		err  error
		want string
	}{
		{nil, ""},
		{ErrTooLarge, CodeInvalidToken},
		{ErrMalformed, CodeInvalidToken},
		{ErrUnknownKey, CodeInvalidToken},
		{ErrInvalidSignature, CodeInvalidToken},
		{ErrInvalidClaims, CodeInvalidToken},
		{ErrNotYetValid, CodeInvalidToken},
		{ErrIssuedInFuture, CodeInvalidToken},
		{ErrIssuer, CodeInvalidToken},
		{ErrAudience, CodeInvalidToken},
		{ErrTokenInvalid, CodeInvalidToken},
		{ErrTokenRejected, CodeInvalidToken},
		{ErrExpired, CodeTokenExpired},
		{ErrRevoked, CodeTokenRevoked},
		{ErrKeyRevoked, CodeTokenRevoked},
		{ErrBinding, CodeInvalidDPoPProof},
		{ErrKeySource, CodeServerError},
		{ErrKeySet, CodeServerError},
		{ErrConfig, CodeServerError},
		{errors.New("other"), CodeServerError},
		{context.Canceled, CodeServerError},
		// The outermost sentinel decides.
		{&causeError{ErrBinding, ErrExpired}, CodeInvalidDPoPProof},
		{&causeError{ErrRevoked, ErrBinding}, CodeTokenRevoked},
		{&causeError{ErrKeySource, ErrKeyRevoked}, CodeServerError},
	}
	for _, tt := range tests {
		name := "nil"
		if tt.err != nil {
			name = tt.err.Error()
		}
		t.Run(name, func(t *testing.T) {
			if got := Code(tt.err); got != tt.want {
				t.Errorf("Code = %q, want %q", got, tt.want)
			}
			if got := Code(errors.Join(errors.New("wrapped"), tt.err)); tt.err != nil && got != tt.want {
				t.Errorf("Code(wrapped) = %q, want %q", got, tt.want)
			}
		})
	}
	for _, err := range []error{ErrTooLarge, ErrMalformed, ErrUnknownKey, ErrKeyRevoked, ErrInvalidSignature, ErrInvalidClaims,
		ErrExpired, ErrNotYetValid, ErrIssuedInFuture, ErrIssuer, ErrAudience, ErrRevoked, ErrBinding,
		ErrKeySource, ErrKeySet, ErrConfig, ErrTokenInvalid, ErrTokenRejected} {
		if !strings.HasPrefix(err.Error(), "verifier: ") {
			t.Errorf("%q lacks the package prefix", err)
		}
	}
}
