package token

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"
)

const validClaims = `{"iss":"https://issuer.example","aud":"api.example","sub":"acct_123","dev":"dev_456",` +
	`"cnf":{"jkt":"` + testJKT + `"},"iat":"2026-03-01T12:00:00Z","nbf":"2026-03-01T12:00:00Z",` +
	`"exp":"2026-03-01T12:10:00Z","jti":"AAECAwQFBgcICQoLDA0ODw"}`

// with returns validClaims with one substitution (which must apply).
func with(t *testing.T, old, new string) string {
	t.Helper()
	if !strings.Contains(validClaims, old) {
		t.Fatalf("fixture: %q not in claims", old)
	}
	return strings.Replace(validClaims, old, new, 1)
}

// without drops the member named name from validClaims.
func without(t *testing.T, name string) string {
	t.Helper()
	var m map[string]json.RawMessage
	if err := json.Unmarshal([]byte(validClaims), &m); err != nil {
		t.Fatal(err)
	}
	delete(m, name)
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func nest(n int) string { return strings.Repeat("[", n) + strings.Repeat("]", n) }

func TestParseClaims(t *testing.T) {
	want := Claims{
		Issuer:       "https://issuer.example",
		Audience:     "api.example",
		Subject:      "acct_123",
		Device:       "dev_456",
		Confirmation: Confirmation{JKT: testJKT},
		IssuedAt:     testNow,
		NotBefore:    testNow,
		Expiry:       testNow.Add(10 * time.Minute),
		ID:           "AAECAwQFBgcICQoLDA0ODw",
	}
	last := len(validClaims) - 1
	tests := []struct {
		name    string
		payload string
		ok      bool
		check   func(*testing.T, *Claims)
	}{
		{"valid", validClaims, true, nil},
		{"white space", strings.NewReplacer(`,"`, " ,\n\t\"", `":`, "\"\r\n: ", "{", "{ ", "}", " }").Replace(validClaims) + "\n", true, nil},
		{"unknown claims ignored", validClaims[:last] + `,"scope":["a",{"b":[1,-2.5e+3,true,false,null]}],"n":0}`, true, nil},
		{"escaped value", with(t, `"acct_123"`, `"acct\u005f123"`), true, nil},
		{"escaped name", with(t, `"sub"`, `"s\u0075b"`), true, nil},
		{"order free", `{"jti":"AAECAwQFBgcICQoLDA0ODw","exp":"2026-03-01T12:10:00Z","nbf":"2026-03-01T12:00:00Z","iat":"2026-03-01T12:00:00Z","cnf":{"jkt":"` + testJKT + `"},"dev":"dev_456","sub":"acct_123","aud":"api.example","iss":"https://issuer.example"}`, true, nil},
		{"offset time", with(t, `"exp":"2026-03-01T12:10:00Z"`, `"exp":"2026-03-01T14:10:00+02:00"`), true, nil},
		{"fractional seconds", with(t, `"iat":"2026-03-01T12:00:00Z"`, `"iat":"2026-03-01T12:00:00.000+00:00"`), true, nil},
		{"extra cnf member", with(t, `{"jkt"`, `{"x5t#S256":"abc","jkt"`), true, nil},
		{"surrogate pair", with(t, `"dev_456"`, `"dev_456\ud83d\ude00"`), true, func(t *testing.T, c *Claims) {
			if c.Device != "dev_456😀" {
				t.Errorf("dev = %q", c.Device)
			}
		}},
		{"upper-case name is another claim", validClaims[:last] + `,"ISS":"https://evil.example","Sub":"root"}`, true, nil},
		{"many distinct members", validClaims[:last] + manyMembers(40) + `}`, true, nil},
		{"depth 16", validClaims[:last] + `,"x":` + nest(15) + `}`, true, nil},
		{"lifetime 60 min", with(t, `12:10:00Z`, `13:00:00Z`), true, nil},

		{"empty", ``, false, nil},
		{"white space only", "  \n", false, nil},
		{"array", `[` + validClaims + `]`, false, nil},
		{"string", `"x"`, false, nil},
		{"number", `1`, false, nil},
		{"null", `null`, false, nil},
		{"two objects", validClaims + validClaims, false, nil},
		{"trailing comma", validClaims + `,`, false, nil},
		{"trailing junk", validClaims + `x`, false, nil},
		{"truncated", validClaims[:last], false, nil},
		{"duplicate iss, same value", validClaims[:last] + `,"iss":"https://issuer.example"}`, false, nil},
		{"duplicate exp", validClaims[:last] + `,"exp":"2099-01-01T00:00:00Z"}`, false, nil},
		{"duplicate via escape", validClaims[:last] + `,"\u0069ss":"https://evil.example"}`, false, nil},
		{"duplicate jkt in cnf", with(t, `{"jkt"`, `{"jkt":"`+testJKT+`","jkt"`), false, nil},
		{"duplicate cnf", validClaims[:last] + `,"cnf":{"jkt":"` + testJKT + `"}}`, false, nil},
		{"duplicate deep in unknown claim", validClaims[:last] + `,"x":{"a":[{"b":1,"b":2}]}}`, false, nil},
		{"duplicate in unknown cnf member", with(t, `{"jkt"`, `{"k":{"a":1,"a":1},"jkt"`), false, nil},
		{"many distinct then duplicate", validClaims[:last] + manyMembers(40) + `,"m0":0}`, false, nil},
		{"depth 17", validClaims[:last] + `,"x":` + nest(16) + `}`, false, nil},
		{"very deep", validClaims[:last] + `,"x":` + nest(100000) + `}`, false, nil},

		{"aud array", with(t, `"aud":"api.example"`, `"aud":["api.example"]`), false, nil},
		{"iss number", with(t, `"iss":"https://issuer.example"`, `"iss":1`), false, nil},
		{"sub null", with(t, `"sub":"acct_123"`, `"sub":null`), false, nil},
		{"dev bool", with(t, `"dev":"dev_456"`, `"dev":true`), false, nil},
		{"cnf string", with(t, `"cnf":{"jkt":"`+testJKT+`"}`, `"cnf":"`+testJKT+`"`), false, nil},
		{"cnf null", with(t, `"cnf":{"jkt":"`+testJKT+`"}`, `"cnf":null`), false, nil},
		{"jkt number", with(t, `"jkt":"`+testJKT+`"`, `"jkt":1`), false, nil},
		{"iat unix", with(t, `"iat":"2026-03-01T12:00:00Z"`, `"iat":1772366400`), false, nil},
		{"nbf object", with(t, `"nbf":"2026-03-01T12:00:00Z"`, `"nbf":{}`), false, nil},
		{"exp null", with(t, `"exp":"2026-03-01T12:10:00Z"`, `"exp":null`), false, nil},
		{"jti number", with(t, `"jti":"AAECAwQFBgcICQoLDA0ODw"`, `"jti":7`), false, nil},
		{"iss empty", with(t, `"https://issuer.example"`, `""`), false, nil},
		{"aud empty", with(t, `"api.example"`, `""`), false, nil},
		{"sub empty", with(t, `"acct_123"`, `""`), false, nil},
		{"dev empty", with(t, `"dev_456"`, `""`), false, nil},
		{"jti empty", with(t, `"AAECAwQFBgcICQoLDA0ODw"`, `""`), false, nil},
		{"jti not base64url", with(t, `"AAECAwQFBgcICQoLDA0ODw"`, `"AAEC+wQF"`), false, nil},
		{"jti too long", with(t, `"AAECAwQFBgcICQoLDA0ODw"`, `"`+strings.Repeat("A", 65)+`"`), false, nil},
		{"jkt short", with(t, testJKT, testJKT[:42]), false, nil},
		{"jkt padded", with(t, testJKT, testJKT[:42]+"="), false, nil},
		{"jkt tail bits", with(t, testJKT, testJKT[:42]+"J"), false, nil},
		{"jkt std alphabet", with(t, testJKT, "+"+testJKT[1:]), false, nil},
		{"time without zone", with(t, `"2026-03-01T12:10:00Z"`, `"2026-03-01T12:10:00"`), false, nil},
		{"time with space", with(t, `"2026-03-01T12:10:00Z"`, `"2026-03-01 12:10:00Z"`), false, nil},
		{"time words", with(t, `"2026-03-01T12:10:00Z"`, `"tomorrow"`), false, nil},
		// time.Parse(time.RFC3339) accepts these (go.dev/issue/54580); RFC 3339
		// section 5.6 does not: time-secfrac is "." 1*DIGIT, time-hour and
		// the offset's hour are 00-23 in two digits, its minute 00-59.
		{"time comma fraction", with(t, `"2026-03-01T12:10:00Z"`, `"2026-03-01T12:10:00,5Z"`), false, nil},
		{"time one-digit hour", with(t, `"2026-03-01T12:00:00Z"`, `"2026-03-01T9:00:00-03:00"`), false, nil},
		{"time offset hour 24", with(t, `"2026-03-01T12:10:00Z"`, `"2026-03-02T12:10:00+24:00"`), false, nil},
		{"time offset minute 60", with(t, `"2026-03-01T12:10:00Z"`, `"2026-03-01T13:10:00+00:60"`), false, nil},
		{"time lower-case t and z", with(t, `"2026-03-01T12:10:00Z"`, `"2026-03-01t12:10:00z"`), false, nil},
		{"time empty fraction", with(t, `"2026-03-01T12:10:00Z"`, `"2026-03-01T12:10:00.Z"`), false, nil},
		{"time offset without colon", with(t, `"2026-03-01T12:10:00Z"`, `"2026-03-01T12:10:00+0000"`), false, nil},
		{"exp equals iat", with(t, `12:10:00Z`, `12:00:00Z`), false, nil},
		{"exp before nbf", with(t, `"nbf":"2026-03-01T12:00:00Z"`, `"nbf":"2026-03-01T12:20:00Z"`), false, nil},
		{"lifetime 61 min", with(t, `12:10:00Z`, `13:01:00Z`), false, nil},

		{"invalid UTF-8 in value", with(t, `"dev_456"`, "\"dev\xff\""), false, nil},
		{"invalid UTF-8 in name", validClaims[:last] + ",\"x\xc3\":1}", false, nil},
		{"UTF-8 surrogate", with(t, `"dev_456"`, "\"dev\xed\xa0\x80\""), false, nil},
		{"overlong UTF-8", with(t, `"dev_456"`, "\"dev\xc0\xaf\""), false, nil},
		{"lone high surrogate", with(t, `"dev_456"`, `"dev\ud800"`), false, nil},
		{"lone low surrogate", with(t, `"dev_456"`, `"dev\udc00"`), false, nil},
		{"reversed surrogates", with(t, `"dev_456"`, `"dev\udc00\ud800"`), false, nil},
		{"raw tab in string", with(t, `"dev_456"`, "\"dev\t456\""), false, nil},
		{"bad escape", with(t, `"dev_456"`, `"dev\x41"`), false, nil},
		{"short unicode escape", with(t, `"dev_456"`, `"dev\u41"`), false, nil},
		{"unterminated string", `{"iss":"abc`, false, nil},
		{"leading zero", validClaims[:last] + `,"n":01}`, false, nil},
		{"bare fraction", validClaims[:last] + `,"n":.5}`, false, nil},
		{"empty fraction", validClaims[:last] + `,"n":1.}`, false, nil},
		{"empty exponent", validClaims[:last] + `,"n":1e}`, false, nil},
		{"plus sign", validClaims[:last] + `,"n":+1}`, false, nil},
		{"lone minus", validClaims[:last] + `,"n":-}`, false, nil},
		{"NaN", validClaims[:last] + `,"n":NaN}`, false, nil},
		{"bad literal", validClaims[:last] + `,"n":tru}`, false, nil},
		{"trailing comma in object", validClaims[:last] + `,}`, false, nil},
		{"trailing comma in array", validClaims[:last] + `,"a":[1,]}`, false, nil},
		{"leading comma", `{,` + validClaims[1:], false, nil},
		{"missing colon", with(t, `"sub":`, `"sub" `), false, nil},
		{"single quotes", with(t, `"sub":"acct_123"`, `"sub":'acct_123'`), false, nil},
		{"comment", validClaims[:last] + `/* c */}`, false, nil},
	}
	for _, name := range claimNames {
		tests = append(tests, struct {
			name    string
			payload string
			ok      bool
			check   func(*testing.T, *Claims)
		}{"missing " + name, without(t, name), false, nil})
	}
	tests = append(tests, struct {
		name    string
		payload string
		ok      bool
		check   func(*testing.T, *Claims)
	}{"missing cnf.jkt", with(t, `{"jkt":"`+testJKT+`"}`, `{}`), false, nil},
		struct {
			name    string
			payload string
			ok      bool
			check   func(*testing.T, *Claims)
		}{"only upper-case iss", strings.Replace(validClaims, `"iss"`, `"ISS"`, 1), false, nil})

	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := ParseClaims([]byte(tt.payload))
			if !tt.ok {
				if err == nil || c != nil {
					t.Fatalf("accepted: %+v", c)
				}
				if !errors.Is(err, ErrClaims) {
					t.Fatalf("err = %v, want ErrClaims", err)
				}
				assertNoValueLeak(t, err, tt.payload)
				var u Claims
				if json.Unmarshal([]byte(tt.payload), &u) == nil {
					t.Fatal("json.Unmarshal accepted what ParseClaims refuses")
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseClaims: %v", err)
			}
			if !json.Valid([]byte(tt.payload)) {
				t.Fatal("accepted JSON that encoding/json calls invalid")
			}
			if tt.check != nil {
				tt.check(t, c)
				return
			}
			if c.Issuer != want.Issuer || c.Audience != want.Audience || c.Subject != want.Subject ||
				c.Device != want.Device || c.Confirmation != want.Confirmation || c.ID != want.ID ||
				!c.IssuedAt.Equal(want.IssuedAt) || !c.NotBefore.Equal(want.NotBefore) {
				t.Errorf("claims = %+v\nwant     %+v", c, want)
			}
			if c.Expiry.Location() != time.UTC || c.IssuedAt.Location() != time.UTC {
				t.Error("times not in UTC")
			}
		})
	}
}

func manyMembers(n int) string {
	var b strings.Builder
	for i := range n {
		b.WriteString(`,"m`)
		b.WriteString(strings.Repeat("x", i%3))
		b.WriteString(string(rune('0' + i%10)))
		b.WriteString(strings.Repeat("y", i/10))
		b.WriteString(`":0`)
	}
	return b.String()
}

// assertNoValueLeak fails if the error quotes a claim value.
func assertNoValueLeak(t *testing.T, err error, payload string) {
	t.Helper()
	msg := err.Error()
	for _, v := range []string{"https://", "issuer.example", "api.example", "acct_123", "dev_456", testJKT[:8], "AAECAwQF", "2026-03-01", "evil"} {
		if strings.Contains(msg, v) {
			t.Fatalf("error %q quotes the payload", msg)
		}
	}
}

func TestClaimsJSONRoundTrip(t *testing.T) {
	c := Claims{
		Issuer:       "https://issuer.example/tenant",
		Audience:     "api <&> example",
		Subject:      "acct \"quoted\" \\ back",
		Device:       "dév\u2028ice ✓",
		Confirmation: Confirmation{JKT: testJKT},
		IssuedAt:     testNow,
		NotBefore:    testNow,
		Expiry:       testNow.Add(time.Hour),
		ID:           "AAECAwQFBgcICQoLDA0ODw",
	}
	b, err := json.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	got, err := ParseClaims(b)
	if err != nil {
		t.Fatalf("ParseClaims(%s): %v", b, err)
	}
	if *got != c {
		t.Errorf("round trip:\n got %+v\nwant %+v", got, c)
	}
	// encoding/json reads our encoding the same way.
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	if m["sub"] != c.Subject || m["dev"] != c.Device || m["exp"] != "2026-03-01T13:00:00Z" {
		t.Errorf("encoding/json reads %v", m)
	}
	var u Claims
	if err := json.Unmarshal(b, &u); err != nil || u != c {
		t.Errorf("json.Unmarshal = %+v, %v", u, err)
	}
	// Control characters and invalid UTF-8 are escaped or replaced.
	if got := string(appendString(nil, "a\x00\x1f\x7f\xffb")); got != `"a\u0000\u001f`+"\x7f"+`\ufffdb"` {
		t.Errorf("appendString = %s", got)
	}
}
