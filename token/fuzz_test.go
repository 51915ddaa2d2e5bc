package token

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"testing"

	"github.com/hallpass/hallpass/keys"
)

// FuzzFooter feeds UnsafeParseFooterKid both whole tainted tokens and raw
// footer documents (wrapped into a token). Seeds: testdata/fuzz/FuzzFooter.
func FuzzFooter(f *testing.F) {
	kid := string(testSecretKey(f, 7).ID())
	f.Add(`{"kid":"` + kid + `"}`)
	f.Add(footerToken(`{"kid":"` + kid + `"}`))
	f.Add(`{"kid":"` + kid + `","kid":"` + kid + `"}`)
	f.Add(`{"x":[[[[{}]]]],"kid":"k4.pid.\u0041"}`)
	f.Fuzz(func(t *testing.T, s string) {
		checkFooter(t, s, nil)
		raw := []byte(s)
		wrapped := HeaderV4Public + "AAAA." + base64.RawURLEncoding.EncodeToString(raw)
		fw := checkFooter(t, wrapped, raw)
		fp, errp := ParseFooter(raw)
		if len(raw) > 0 && fp != fw {
			t.Fatalf("ParseFooter = %v, %v; UnsafeParseFooterKid = %v", fp, errp, fw)
		}
	})
}

// checkFooter runs UnsafeParseFooterKid and checks its result against
// encoding/json when the decoded footer (raw) is known.
func checkFooter(t *testing.T, tainted string, raw []byte) Footer {
	f, err := UnsafeParseFooterKid(tainted)
	if err != nil {
		if f != (Footer{}) {
			t.Fatal("footer returned with an error")
		}
		if !errors.Is(err, ErrFooter) && !errors.Is(err, ErrMalformed) {
			t.Fatalf("unexpected error class: %v", err)
		}
		return f
	}
	if _, err := keys.ParseKeyID(string(f.Kid), "pid"); err != nil {
		t.Fatalf("accepted a kid that is not a k4.pid: %q", f.Kid)
	}
	if raw != nil {
		if len(raw) > MaxFooterSize {
			t.Fatalf("accepted a %d-byte footer", len(raw))
		}
		var m map[string]any
		if err := json.Unmarshal(raw, &m); err != nil {
			t.Fatalf("accepted a footer encoding/json refuses: %v", err)
		}
		if len(m) != 1 || m["kid"] != string(f.Kid) {
			t.Fatalf("encoding/json reads %v, we read %q", m, f.Kid)
		}
	}
	return f
}

// FuzzParseClaims checks the strict claims parser against encoding/json:
// whatever it accepts is valid JSON that encoding/json reads the same way,
// and re-encodes to claims it accepts again. Seeds: testdata/fuzz/FuzzParseClaims.
func FuzzParseClaims(f *testing.F) {
	f.Add([]byte(validClaims))
	f.Add([]byte(validClaims[:len(validClaims)-1] + `,"x":[{"a":1,"b":[true,null,-1.5e3]}]}`))
	f.Add([]byte(`{"iss":"a","iss":"b"}`))
	f.Add([]byte(`{"\u0069ss":"\ud83d\ude00"}`))
	f.Fuzz(func(t *testing.T, payload []byte) {
		c, err := ParseClaims(payload)
		if err != nil {
			if c != nil || !errors.Is(err, ErrClaims) {
				t.Fatalf("ParseClaims = %v, %v", c, err)
			}
			return
		}
		if !json.Valid(payload) {
			t.Fatal("accepted invalid JSON")
		}
		var m map[string]any
		if err := json.Unmarshal(payload, &m); err != nil {
			t.Fatalf("encoding/json: %v", err)
		}
		cnf, _ := m["cnf"].(map[string]any)
		if m["iss"] != c.Issuer || m["aud"] != c.Audience || m["sub"] != c.Subject ||
			m["dev"] != c.Device || m["jti"] != c.ID || cnf["jkt"] != c.Confirmation.JKT {
			t.Fatalf("encoding/json reads %v, we read %+v", m, c)
		}
		again, err := ParseClaims(c.AppendJSON(nil))
		if err != nil || *again != *c {
			t.Fatalf("re-encoding: %+v, %v", again, err)
		}
	})
}
