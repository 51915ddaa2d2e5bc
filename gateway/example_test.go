package gateway_test

import (
	"fmt"
	"net/http/httptest"
	"net/netip"
	"net/url"

	"github.com/hallpass/hallpass/gateway"
	"github.com/hallpass/hallpass/verifier"
	"github.com/hallpass/hallpass/verifier/httpauth"
)

// A gateway in front of an application at 127.0.0.1:3000: requests are
// verified and forwarded with X-Hallpass-Account and X-Hallpass-Device;
// nginx at 10.0.0.2 may ask GET /v1/verify about the requests it serves.
func ExampleNew() {
	// In production: remotekeys.New(ctx, remotekeys.Config{Issuer: "https://auth.example"}).
	keySource, err := verifier.NewStaticKeySet()
	if err != nil {
		panic(err)
	}
	v, err := verifier.New(keySource, "https://auth.example", "https://auth.example")
	if err != nil {
		panic(err)
	}
	auth, err := httpauth.New(httpauth.Config{Verifier: v, PublicURL: "https://api.example"})
	if err != nil {
		panic(err)
	}
	upstream, _ := url.Parse("http://127.0.0.1:3000")
	gw, err := gateway.New(auth, gateway.Config{
		PublicURL:      "https://api.example",
		Upstream:       upstream,
		TrustedProxies: []netip.Prefix{netip.MustParsePrefix("10.0.0.2/32")},
	})
	if err != nil {
		panic(err)
	}

	// A request without a token never reaches the application.
	rec := httptest.NewRecorder()
	req := httptest.NewRequest("GET", "https://api.example/orders", nil)
	req.Header.Set("X-Hallpass-Account", "acct_admin") // forged: removed
	gw.ServeHTTP(rec, req)
	fmt.Println(rec.Code, rec.Header().Get("WWW-Authenticate"))

	// The verify endpoint answers configured proxies only.
	rec = httptest.NewRecorder()
	req = httptest.NewRequest("GET", "/v1/verify", nil)
	req.RemoteAddr = "192.0.2.7:40000"
	gw.ServeHTTP(rec, req)
	fmt.Println(rec.Code)
	// Output:
	// 401 DPoP algs="ES256 EdDSA"
	// 403
}
