package token

import (
	"encoding/base64"
	"errors"
	"strings"
	"testing"
)

func footerToken(footerJSON string) string {
	return HeaderV4Public + "AAAA." + base64.RawURLEncoding.EncodeToString([]byte(footerJSON))
}

func TestUnsafeParseFooterKid(t *testing.T) {
	kid := string(testSecretKey(t, 7).ID())
	lid := "k4.lid." + strings.TrimPrefix(kid, "k4.pid.")
	good := `{"kid":"` + kid + `"}`
	escaped := `{"kid":"k4.pid.\u00` + strings.ToLower(hexByte(kid[7])) + kid[8:] + `"}`
	deep := `{"x":` + strings.Repeat("[", 10) + strings.Repeat("]", 10) + `}`
	tests := []struct {
		name    string
		tainted string
		want    error // nil: the kid parses
	}{
		{"valid", footerToken(good), nil},
		{"white space", footerToken(" {\n\t\"kid\" : \"" + kid + "\"\r\n} "), nil},
		{"escaped kid", footerToken(escaped), nil},
		{"padded to the limit", footerToken(good + strings.Repeat(" ", MaxFooterSize-len(good))), nil},
		{"oversized", footerToken(good + strings.Repeat(" ", MaxFooterSize-len(good)+1)), ErrFooter},
		{"huge", footerToken(strings.Repeat("A", 1<<16)), ErrFooter},
		{"missing", HeaderV4Public + "AAAA", ErrFooter},
		{"empty object", footerToken(`{}`), ErrFooter},
		{"empty footer bytes", HeaderV4Public + "AAAA.A", ErrFooter},
		{"duplicate kid", footerToken(`{"kid":"` + kid + `","kid":"` + kid + `"}`), ErrFooter},
		{"duplicate kid via escape", footerToken(`{"kid":"` + kid + `","\u006bid":"` + kid + `"}`), ErrFooter},
		{"extra member after", footerToken(`{"kid":"` + kid + `","x":1}`), ErrFooter},
		{"extra member before", footerToken(`{"wpk":"x","kid":"` + kid + `"}`), ErrFooter},
		{"upper-case name", footerToken(`{"KID":"` + kid + `"}`), ErrFooter},
		{"deep", footerToken(deep), ErrFooter},
		{"deep kid", footerToken(`{"kid":{"a":{"b":{}}}}`), ErrFooter},
		{"kid number", footerToken(`{"kid":1}`), ErrFooter},
		{"kid null", footerToken(`{"kid":null}`), ErrFooter},
		{"kid array", footerToken(`{"kid":["` + kid + `"]}`), ErrFooter},
		{"kid is a lid", footerToken(`{"kid":"` + lid + `"}`), ErrFooter},
		{"kid is a public key", footerToken(`{"kid":"k4.public.AAAA"}`), ErrFooter},
		{"kid v3", footerToken(`{"kid":"k3.pid.` + kid[7:] + `"}`), ErrFooter},
		{"kid short", footerToken(`{"kid":"` + kid[:len(kid)-1] + `"}`), ErrFooter},
		{"kid of the official vectors", footerToken(`{"kid":"zVhMiPBP9fRf2snEcT7gFTioeA9COcNy9DfgL1W60haN"}`), ErrFooter},
		{"not JSON", footerToken(`arbitrary-string-that-isn't-json`), ErrFooter},
		{"array", footerToken(`["` + kid + `"]`), ErrFooter},
		{"trailing junk", footerToken(good + `x`), ErrFooter},
		{"two objects", footerToken(good + good), ErrFooter},
		{"invalid UTF-8", footerToken("{\"kid\":\"\xff\"}"), ErrFooter},
		{"bad base64", HeaderV4Public + "AAAA.@@@@", ErrFooter},
		{"line break in base64", footerToken(good)[:20] + "\n" + footerToken(good)[20:], ErrFooter},
		{"v4.local", "v4.local.AAAA." + base64.RawURLEncoding.EncodeToString([]byte(good)), ErrMalformed},
		{"empty footer segment", HeaderV4Public + "AAAA.", ErrMalformed},
		{"extra segment", footerToken(good) + ".e30", ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := UnsafeParseFooterKid(tt.tainted)
			if tt.want == nil {
				if err != nil {
					t.Fatalf("err = %v", err)
				}
				if string(f.Kid) != kid {
					t.Fatalf("kid = %q", f.Kid)
				}
				return
			}
			if !errors.Is(err, tt.want) || f != (Footer{}) {
				t.Fatalf("= %v, %v; want %v", f, err, tt.want)
			}
			assertNoLeak(t, err, tt.tainted)
			if strings.Contains(err.Error(), kid[7:15]) {
				t.Fatalf("error %q quotes the kid", err)
			}
		})
	}
}

func hexByte(c byte) string {
	const hex = "0123456789ABCDEF"
	return string([]byte{hex[c>>4], hex[c&0xf]})
}

func TestUnsafeFooter(t *testing.T) {
	got, err := UnsafeFooter(HeaderV4Public + "AAAA")
	if err != nil || got != nil {
		t.Errorf("no footer: %q, %v", got, err)
	}
	got, err = UnsafeFooter(footerToken("anything, not JSON"))
	if err != nil || string(got) != "anything, not JSON" {
		t.Errorf("footer: %q, %v", got, err)
	}
	if _, err := UnsafeFooter(footerToken(strings.Repeat("x", MaxFooterSize+1))); !errors.Is(err, ErrFooter) {
		t.Errorf("oversized: %v", err)
	}
	if _, err := UnsafeFooter("v2.public.AAAA.AAAA"); !errors.Is(err, ErrMalformed) {
		t.Errorf("v2: %v", err)
	}
}

func TestFooterAppendJSON(t *testing.T) {
	kid := testSecretKey(t, 7).ID()
	if got, want := string(Footer{Kid: kid}.AppendJSON(nil)), `{"kid":"`+string(kid)+`"}`; got != want {
		t.Errorf("AppendJSON = %s, want %s", got, want)
	}
	f, err := ParseFooter([]byte(`{"kid":"` + string(kid) + `"}`))
	if err != nil || f.Kid != kid {
		t.Errorf("ParseFooter = %v, %v", f, err)
	}
	if _, err := ParseFooter(make([]byte, MaxFooterSize+1)); !errors.Is(err, ErrFooter) {
		t.Errorf("ParseFooter oversized: %v", err)
	}
}
