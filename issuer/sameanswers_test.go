package issuer_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/hallpass/hallpass/dpop"
	"github.com/hallpass/hallpass/issuer"
	"github.com/hallpass/hallpass/verifier"
	"github.com/hallpass/hallpass/verifier/httpauth"
)

// TestSameAnswersAsHTTPAuth: the issuer's own authenticated endpoints and
// any service protected by verifier/httpauth answer the same bad request
// with the same status, problem code and challenge, because they run the
// same code. The table is the shared one: each case builds the headers of
// a request to a given URL.
func TestSameAnswersAsHTTPAuth(t *testing.T) {
	e := newEnv(t, &boltBackend{})
	d := e.newDevice("ES256")
	d.signup("sameanswers")
	other := e.newDevice("Ed25519")

	ks, err := verifier.ParseKeySet(mustJSON(t, e.ring.KeySet(e.url(""))), e.url(""))
	if err != nil {
		t.Fatal(err)
	}
	v, err := verifier.New(ks, e.url(""), e.url(""), verifier.WithClock(e.clock.Now))
	if err != nil {
		t.Fatal(err)
	}
	svc := httptest.NewServer(nil)
	defer svc.Close()
	auth, err := httpauth.New(httpauth.Config{Verifier: v, PublicURL: svc.URL, Now: e.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	svc.Config.Handler = auth.Middleware(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNoContent) }))

	proof := func(dev *device, method, url, tok string) string {
		p, err := dpop.NewProofWithOptions(dev.key, method, url, tok, "", e.clock.ProofOpts())
		if err != nil {
			t.Fatal(err)
		}
		e.remember(p)
		return p
	}
	cases := []struct {
		name  string
		build func(url string) http.Header // url: the full URL the request goes to
		want  int
	}{
		{"no credentials", func(string) http.Header { return http.Header{} }, 401},
		{"scheme only", func(string) http.Header { return http.Header{"Authorization": {"DPoP"}} }, 401},
		{"tab inside the token", func(string) http.Header { return http.Header{"Authorization": {"DPoP a\tb"}} }, 401},
		{"unknown scheme", func(string) http.Header { return http.Header{"Authorization": {"Basic " + d.access}} }, 401},
		{"bearer not allowed", func(string) http.Header { return http.Header{"Authorization": {"Bearer " + d.access}} }, 401},
		{"two Authorization headers", func(string) http.Header {
			return http.Header{"Authorization": {"DPoP " + d.access, "DPoP " + d.access}}
		}, 401},
		{"garbage token", func(u string) http.Header {
			return http.Header{"Authorization": {"DPoP v4.public.eyJ"}, "Dpop": {proof(d, "GET", u, "v4.public.eyJ")}}
		}, 401},
		{"no proof", func(string) http.Header { return http.Header{"Authorization": {"DPoP " + d.access}} }, 401},
		{"two proofs", func(u string) http.Header {
			return http.Header{"Authorization": {"DPoP " + d.access}, "Dpop": {proof(d, "GET", u, d.access), proof(d, "GET", u, d.access)}}
		}, 401},
		{"proof for another URL", func(u string) http.Header {
			return http.Header{"Authorization": {"DPoP " + d.access}, "Dpop": {proof(d, "GET", u+"x", d.access)}}
		}, 401},
		{"proof for another method", func(u string) http.Header {
			return http.Header{"Authorization": {"DPoP " + d.access}, "Dpop": {proof(d, "POST", u, d.access)}}
		}, 401},
		{"proof without ath", func(u string) http.Header {
			return http.Header{"Authorization": {"DPoP " + d.access}, "Dpop": {proof(d, "GET", u, "")}}
		}, 401},
		{"proof by another key", func(u string) http.Header {
			return http.Header{"Authorization": {"DPoP " + d.access}, "Dpop": {proof(other, "GET", u, d.access)}}
		}, 401},
		{"good request", func(u string) http.Header {
			return http.Header{"Authorization": {"DPoP " + d.access}, "Dpop": {proof(d, "GET", u, d.access)}}
		}, 0},
	}
	type answer struct {
		status          int
		code, challenge string
	}
	ask := func(url string, h http.Header) answer {
		req, _ := http.NewRequest(http.MethodGet, url, nil)
		req.Header = h
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		var p struct{ Code string }
		_ = json.NewDecoder(res.Body).Decode(&p)
		return answer{res.StatusCode, p.Code, res.Header.Get("WWW-Authenticate")}
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			meURL, svcURL := e.url(issuer.PathMe), svc.URL+issuer.PathMe
			got, want := ask(meURL, tc.build(meURL)), ask(svcURL, tc.build(svcURL))
			if tc.want == 0 {
				if got.status != 200 || want.status != 204 {
					t.Fatalf("good request: issuer %d, service %d", got.status, want.status)
				}
				return
			}
			if got != want {
				t.Fatalf("issuer answered %+v, httpauth service %+v", got, want)
			}
			if got.status != tc.want || got.code == "" {
				t.Fatalf("answer %+v, want status %d with a code", got, tc.want)
			}
		})
	}
	// Expired: both refuse with token_expired once the clock passed exp.
	e.clock.Advance(issuer.DefaultAccessTTL + time.Hour)
	meURL, svcURL := e.url(issuer.PathMe), svc.URL+issuer.PathMe
	got := ask(meURL, http.Header{"Authorization": {"DPoP " + d.access}, "Dpop": {proof(d, "GET", meURL, d.access)}})
	want := ask(svcURL, http.Header{"Authorization": {"DPoP " + d.access}, "Dpop": {proof(d, "GET", svcURL, d.access)}})
	if got != want || got.code != issuer.CodeTokenExpired {
		t.Fatalf("expired: issuer %+v, service %+v", got, want)
	}
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
