package flow

import (
	"bytes"
	"crypto/rand"
	"errors"
	"regexp"
	"testing"
)

func TestNewCodeShape(t *testing.T) {
	tests := []struct {
		n, group int
		shape    string
	}{
		{LinkCodeLen, linkCodeGroup, `^[0-9A-HJKMNP-TV-Z]{4}-[0-9A-HJKMNP-TV-Z]{4}-[0-9A-HJKMNP-TV-Z]{4}$`},
		{RecoveryCodeLen, recoveryGroup, `^([0-9A-HJKMNP-TV-Z]{5}-){3}[0-9A-HJKMNP-TV-Z]{5}$`},
	}
	for _, tt := range tests {
		re := regexp.MustCompile(tt.shape)
		seen := map[string]bool{}
		for range 200 {
			c, err := newCode(rand.Reader, tt.n, tt.group)
			if err != nil {
				t.Fatal(err)
			}
			if !re.MatchString(c) || seen[c] {
				t.Fatalf("code %q: shape or repeat", c)
			}
			seen[c] = true
			canon, err := normalizeCode(c, tt.n)
			if err != nil || len(canon) != tt.n {
				t.Fatalf("normalize(%q) = %q, %v", c, canon, err)
			}
		}
	}
	// A failing random source is an error, never a weak code.
	if _, err := newCode(bytes.NewReader(make([]byte, 3)), LinkCodeLen, linkCodeGroup); err == nil {
		t.Fatal("short random source accepted")
	}
}

func TestNormalizeCode(t *testing.T) {
	tests := []struct {
		in, want string
		err      bool
	}{
		{in: "ABCD-EFGH-JKMN", want: "ABCDEFGHJKMN"},
		{in: "abcd efgh jkmn", want: "ABCDEFGHJKMN"},
		{in: "ioL0-0000-0000", want: "101000000000"},
		{in: "ABCD-EFGH-JKM", err: true},   // too short
		{in: "ABCD-EFGH-JKMNP", err: true}, // too long
		{in: "ABCD-EFGH-JKMU", err: true},  // U is not a symbol
		{in: "ABCD_EFGH_JKMN", err: true},  // other separators
		{in: "ÄBCD-EFGH-JKMN", err: true},  // non-ASCII
		{in: string(make([]byte, 100)), err: true},
	}
	for _, tt := range tests {
		got, err := normalizeCode(tt.in, LinkCodeLen)
		if (err != nil) != tt.err || got != tt.want && !tt.err {
			t.Errorf("normalizeCode(%q) = %q, %v", tt.in, got, err)
		}
		if tt.err && !errors.Is(err, errCodeShape) {
			t.Errorf("normalizeCode(%q) error %v", tt.in, err)
		}
	}
}

func TestPepperDigests(t *testing.T) {
	p := StaticPepper{[]byte("current pepper 32 bytes long....."), []byte("older pepper")}
	d := p.Digests(linkMessage("ABCDEFGHJKMN"))
	if len(d) != 2 || len(d[0]) != 32 || bytes.Equal(d[0], d[1]) {
		t.Fatalf("digests %x", d)
	}
	// The kinds are separated, and a recovery digest depends on the salt.
	if bytes.Equal(p.Digests(recoveryMessage(nil, "ABCDEFGHJKMN"))[0], d[0]) {
		t.Fatal("a link code and a recovery code share a digest")
	}
	if bytes.Equal(p.Digests(recoveryMessage([]byte("a"), "X"))[0], p.Digests(recoveryMessage([]byte("b"), "X"))[0]) {
		t.Fatal("the salt does not change the digest")
	}
}
