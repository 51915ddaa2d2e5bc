package httpauth_test

import (
	"context"
	"errors"
	"testing"

	"github.com/hallpass/hallpass/verifier/httpauth"
)

// FuzzAuthenticate: whatever the client sends, Authenticate does not panic
// and refuses with an *Error carrying a known code and status, or accepts
// with claims.
func FuzzAuthenticate(f *testing.F) {
	fx := newFixture(f, nil, nil)
	valid := fx.request()
	f.Add(valid.Method, valid.Path, valid.Authorization, valid.DPoP)
	f.Add("GET", "/things", "Bearer "+fx.token, "")
	f.Add("GET", "/", "DPoP  x", "a.b.c")
	f.Add("", "", "", "")
	f.Add("POST", "//x/../y", "DPoP v4.public.e30", "e30.e30.")
	codes := map[string]int{
		httpauth.CodeInvalidToken: 401, httpauth.CodeTokenExpired: 401, httpauth.CodeTokenRevoked: 401,
		httpauth.CodeInvalidDPoPProof: 401, httpauth.CodeUseDPoPNonce: 401,
		httpauth.CodeUnavailable: 503, httpauth.CodeInternal: 500, httpauth.CodeInvalidRequest: 400,
	}
	f.Fuzz(func(t *testing.T, method, path, authz, proof string) {
		c, err := fx.auth.Authenticate(context.Background(), httpauth.Request{Method: method, Path: path, Authorization: authz, DPoP: proof})
		if err == nil {
			if c == nil {
				t.Fatal("nil claims without an error")
			}
			return
		}
		var e *httpauth.Error
		if !errors.As(err, &e) {
			t.Fatalf("%T %v", err, err)
		}
		if st, ok := codes[e.Code]; !ok || st != e.Status {
			t.Fatalf("code %q status %d", e.Code, e.Status)
		}
	})
}
