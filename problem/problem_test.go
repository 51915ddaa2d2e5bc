package problem

import (
	"encoding/json"
	"net/http"
	"regexp"
	"testing"
)

func TestVocabulary(t *testing.T) {
	shape := regexp.MustCompile(`^[a-z][a-z0-9_]{2,40}$`)
	for _, c := range Codes() {
		info, ok := Lookup(c)
		if !ok {
			t.Fatalf("Codes lists %q but Lookup does not know it", c)
		}
		if !shape.MatchString(c) {
			t.Errorf("code %q has not the shape of a code", c)
		}
		if info.Status < 400 || info.Status > 599 || http.StatusText(info.Status) == "" {
			t.Errorf("%s: status %d", c, info.Status)
		}
		if info.Title == "" || info.Detail == "" {
			t.Errorf("%s: empty title or detail", c)
		}
	}
	if _, ok := Lookup("no_such_code"); ok {
		t.Error("Lookup found an unknown code")
	}
}

func TestNew(t *testing.T) {
	tests := []struct {
		name              string
		code              string
		status            int
		detail, rid       string
		wantCode, wantDet string
		wantRID           string
	}{
		{name: "default detail", code: TokenExpired, status: 401, wantCode: TokenExpired, wantDet: "The access token has expired; refresh it."},
		{name: "own detail", code: InvalidDPoPProof, status: 400, detail: "htu must be x", wantCode: InvalidDPoPProof, wantDet: "htu must be x"},
		{name: "request id only on 5xx", code: InvalidToken, status: 401, rid: "r1", wantCode: InvalidToken, wantDet: "The access token is missing, malformed, not signed by this issuer or not meant for this audience."},
		{name: "5xx keeps request id", code: Unavailable, status: 503, rid: "r2", wantCode: Unavailable, wantDet: "A backing service did not answer in time; nothing was changed. Retry later.", wantRID: "r2"},
		{name: "unknown code is internal", code: "bogus", status: 500, rid: "r3", wantCode: Internal, wantDet: "The server failed to handle the request.", wantRID: "r3"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := New(tt.code, tt.status, tt.detail, tt.rid)
			if d.Code != tt.wantCode || d.Detail != tt.wantDet || d.RequestID != tt.wantRID || d.Status != tt.status {
				t.Fatalf("New = %+v", d)
			}
			if d.Type != "urn:hallpass:problem:"+tt.wantCode {
				t.Fatalf("type %q", d.Type)
			}
			b, _ := json.Marshal(d)
			var back map[string]any
			if err := json.Unmarshal(b, &back); err != nil || back["code"] != tt.wantCode {
				t.Fatalf("json %s", b)
			}
		})
	}
}

func TestDPoPChallenge(t *testing.T) {
	if got := DPoPChallenge(""); got != `DPoP algs="ES256 EdDSA"` {
		t.Fatal(got)
	}
	if got := DPoPChallenge(TokenRevoked); got != `DPoP error="token_revoked", algs="ES256 EdDSA"` {
		t.Fatal(got)
	}
}
