package dpop

import (
	"errors"
	"testing"
)

func TestNormalizeURL(t *testing.T) {
	tests := []struct {
		in   string
		want string // "" means error
	}{
		{in: "https://server.example.com/token", want: "https://server.example.com/token"},
		{in: "HTTPS://Server.Example.COM/token", want: "https://server.example.com/token"},
		{in: "https://server.example.com:443/token", want: "https://server.example.com/token"},
		{in: "https://server.example.com:0443/token", want: "https://server.example.com/token"},
		{in: "https://server.example.com:/token", want: "https://server.example.com/token"},
		{in: "http://server.example.com:80/token", want: "http://server.example.com/token"},
		{in: "http://server.example.com:443/token", want: "http://server.example.com:443/token"},
		{in: "https://server.example.com:80/token", want: "https://server.example.com:80/token"},
		{in: "https://server.example.com:8443/token", want: "https://server.example.com:8443/token"},
		{in: "https://server.example.com", want: "https://server.example.com/"},
		{in: "https://server.example.com?x#y", want: "https://server.example.com/"},
		{in: "https://server.example.com/token?x=1#frag", want: "https://server.example.com/token"},
		{in: "https://server.example.com/token#frag?x=1", want: "https://server.example.com/token"},
		{in: "https://server.example.com/%7Euser/%41b", want: "https://server.example.com/~user/Ab"},
		{in: "https://server.example.com/a%2fb", want: "https://server.example.com/a%2Fb"},
		{in: "https://server.example.com/a%2Fb", want: "https://server.example.com/a%2Fb"},
		{in: "https://server.example.com/caf\u00e9", want: "https://server.example.com/caf%C3%A9"},
		{in: "https://server.example.com/caf%c3%a9", want: "https://server.example.com/caf%C3%A9"},
		{in: "https://server.example.com/a/./b/../c", want: "https://server.example.com/a/c"},
		{in: "https://server.example.com/a/%2E%2E/c", want: "https://server.example.com/c"},
		{in: "https://server.example.com/../../etc", want: "https://server.example.com/etc"},
		{in: "https://server.example.com/a/..", want: "https://server.example.com/"},
		{in: "https://server.example.com/a/.", want: "https://server.example.com/a/"},
		{in: "https://server.example.com//a", want: "https://server.example.com//a"},
		{in: "https://server.example.com/token/", want: "https://server.example.com/token/"},
		{in: "https://server.example.com/a;b=c/d:e@f", want: "https://server.example.com/a;b=c/d:e@f"},
		{in: "https://server.example.com/a\"b", want: "https://server.example.com/a%22b"},
		{in: "https://%73erver.example.com/", want: "https://server.example.com/"},
		{in: "https://[2001:DB8::1]:8443/x", want: "https://[2001:db8::1]:8443/x"},
		{in: "https://[::1]/x", want: "https://[::1]/x"},
		{in: "https://127.0.0.1:443/x", want: "https://127.0.0.1/x"},

		{in: ""},
		{in: "/token"},
		{in: "server.example.com/token"},
		{in: "https:/token"},
		{in: "https:server.example.com/token"},
		{in: "ftp://server.example.com/token"},
		{in: "javascript://server.example.com/token"},
		{in: "https://user@server.example.com/token"},
		{in: "https://user:pass@server.example.com/token"},
		{in: "https://@server.example.com/token"},
		{in: "https:///token"},
		{in: "https://:443/token"},
		{in: "https://server.example.com:65536/token"},
		{in: "https://server.example.com:0/token"},
		{in: "https://server.example.com:-1/token"},
		{in: "https://server.example.com:44a/token"},
		{in: "https://server.example.com:443:443/token"},
		{in: "https://server example.com/token"},
		{in: "https://server.example.com/to ken"},
		{in: "https://server.example.com/to\tken"},
		{in: "https://server.example.com/\x00"},
		{in: "https://server.example.com/%zz"},
		{in: "https://server.example.com/%4"},
		{in: "https://serv%65r.example.com%2F/token"},
		{in: "https://server.example.com\\@evil/token"},
		{in: "https://[fe80::1%25eth0]/x"},
		{in: "https://[127.0.0.1]/x"},
		{in: "https://[::1/x"},
		{in: "https://[::1]x/x"},
		{in: "https://ser\u00e9ver.example.com/"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := normalizeURL(tt.in)
			if tt.want == "" {
				if err == nil || !errors.Is(err, ErrURL) {
					t.Fatalf("normalizeURL(%q) = %q, %v; want ErrURL", tt.in, got, err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("normalizeURL(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
			}
			// Idempotent.
			if again, err := normalizeURL(got); err != nil || again != got {
				t.Fatalf("normalizeURL(%q) = %q, %v; not idempotent", got, again, err)
			}
		})
	}
}

func TestRemoveDotSegmentsRFC3986(t *testing.T) {
	// RFC 3986 section 5.4 examples, path part only.
	tests := map[string]string{
		"/a/b/c/./../../g": "/a/g",
		"/b/c/./g":         "/b/c/g",
		"/b/c/g/":          "/b/c/g/",
		"/b/c/g/.":         "/b/c/g/",
		"/b/c/g/..":        "/b/c/",
		"/b/c/../../../g":  "/g",
		"/b/c/g.":          "/b/c/g.",
		"/b/c/.g":          "/b/c/.g",
		"/b/c/g..":         "/b/c/g..",
		"/b/c/..g":         "/b/c/..g",
		"/b/c/./../g":      "/b/g",
		"/b/c/./g/.":       "/b/c/g/",
		"/b/c/g/./h":       "/b/c/g/h",
		"/b/c/g/../h":      "/b/c/h",
		"/.":               "/",
		"/..":              "/",
		"/./":              "/",
	}
	for in, want := range tests {
		if got := removeDotSegments(in); got != want {
			t.Errorf("removeDotSegments(%q) = %q, want %q", in, got, want)
		}
	}
}

// Verify compares htu with the request URL after normalising both.
func TestVerifyHTUNormalised(t *testing.T) {
	s := newSpec(testEd)
	s.claims["htu"] = "HTTPS://SERVER.example.com:443/%74oken?query=ignored#frag"
	req := testReq()
	req.URL = "https://server.example.com/./token?other=1"
	if _, err := verify(t, s.build(t), req, testOpts(t)); err != nil {
		t.Fatalf("Verify: %v", err)
	}
}
