package issuer

import (
	"testing"
	"unicode/utf8"

	"github.com/hallpass/hallpass/flow"
)

// FuzzDecodeBody: the request-body parsers never panic, and what they
// accept is allowed members only, as valid UTF-8.
func FuzzDecodeBody(f *testing.F) {
	for _, s := range []string{
		`{"username":"alice","device_name":"phone"}`,
		`{"username":"a","username":"b"}`,
		`{"grant_type":"refresh_token","refresh_token":"v4.local.x","extra":{"a":[1,2]}}`,
		`grant_type=refresh_token&refresh_token=v4.local.x&scope=a`,
		`["x"]`, `{"a":1} {}`, "{\"username\":\"\xff\"}", `%zz=1`, ``,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		allowed := []string{"username", "device_name", "grant_type", "refresh_token"}
		check := func(m map[string]string, err error) {
			if err != nil {
				return
			}
			for k, v := range m {
				if !contains(allowed, k) || !utf8.ValidString(v) {
					t.Fatalf("accepted member %q = %q", k, v)
				}
			}
		}
		check(decodeStringObject(b, true, allowed...))
		check(decodeStringObject(b, false, allowed...))
		check(decodeForm(b, allowed...))
		if s := string(b); flow.ValidDeviceName(s, 64) && (utf8.RuneCountInString(s) > 64 || !utf8.ValidString(s)) {
			t.Fatalf("device name accepted: %q", s)
		}
	})
}
