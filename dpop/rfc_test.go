package dpop

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"errors"
	"strings"
	"testing"
	"time"
)

// The key and thumbprint of RFC 9449 sections 4.2 and 6.1.
const (
	rfcX   = "l8tFrhx-34tV3hRICRDY9zCkDlpBhF42UQUfWVAWBFs"
	rfcY   = "9VE4jf_Ok_o64zbTTlcuNJajHmt6v9TDVrU0CdvGRDA"
	rfcJKT = "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I"
)

func unfold(s string) string {
	s = strings.TrimPrefix(s, "DPoP: ")
	return strings.Join(strings.Fields(s), "")
}

func TestRFC9449Vectors(t *testing.T) {
	tests := []struct {
		file string
		req  Request
		iat  int64
		jti  string
	}{
		{
			file: "rfc9449/section4.1-dpop-header.txt",
			req:  Request{Method: "POST", URL: "https://server.example.com/token", JKT: rfcJKT},
			iat:  1562262616, jti: "-BwC3ESc6acc2lTc",
		},
		{
			file: "rfc9449/section5-refresh-dpop-header.txt",
			req:  Request{Method: "POST", URL: "https://server.example.com/token", JKT: rfcJKT},
			iat:  1562265296, jti: "-BwC3ESc6acc2lTc",
		},
		{
			file: "rfc9449/section7.1-resource-proof-unfolded.txt",
			req: Request{Method: "GET", URL: "https://resource.example.org/protectedresource",
				AccessToken: "Kz~8mXK1EalYznwH-LC-1fBAo.4Ljp~zsPE_NeO.gxU", JKT: rfcJKT},
			iat: 1562262618, jti: "e1j3V_bKic8-LAEB",
		},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			proof := unfold(readTestdata(t, tt.file))
			iat := time.Unix(tt.iat, 0)
			opts := Options{Replay: newCache(t), Now: func() time.Time { return iat }}
			p, err := verify(t, proof, tt.req, opts)
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			if p.JKT != rfcJKT || p.JTI != tt.jti || !p.IssuedAt.Equal(iat) || p.Algorithm != AlgES256 {
				t.Fatalf("Proof = %+v", p)
			}
			pub := p.PublicKey.(*ecdsa.PublicKey)
			pt, _ := pub.Bytes()
			if b64.EncodeToString(pt[1:33]) != rfcX || b64.EncodeToString(pt[33:]) != rfcY {
				t.Fatal("public key differs from RFC 9449 section 4.2")
			}
			if got, _ := Thumbprint(pub); got != rfcJKT {
				t.Fatalf("Thumbprint = %s, want %s", got, rfcJKT)
			}
			// The same proof again is a replay.
			if _, err := verify(t, proof, tt.req, opts); !errors.Is(err, ErrReplay) {
				t.Fatalf("second Verify: %v, want ErrReplay", err)
			}
			// With today's clock it is long expired.
			if _, err := verify(t, proof, tt.req, Options{Replay: newCache(t)}); !errors.Is(err, ErrTooOld) {
				t.Fatalf("Verify now: %v, want ErrTooOld", err)
			}
		})
	}
}

// RFC 8037 appendix A.3: the thumbprint of the example Ed25519 key.
func TestThumbprintRFC8037(t *testing.T) {
	x, err := b64.DecodeString("11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo")
	if err != nil {
		t.Fatal(err)
	}
	got, err := Thumbprint(ed25519.PublicKey(x))
	if err != nil {
		t.Fatal(err)
	}
	if want := "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k"; got != want {
		t.Fatalf("Thumbprint = %s, want %s", got, want)
	}
}
