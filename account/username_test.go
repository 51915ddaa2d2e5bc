package account

import (
	"errors"
	"strings"
	"testing"
)

func TestUsernamePolicy(t *testing.T) {
	p := DefaultUsernamePolicy()
	tests := []struct {
		name    string
		in      string
		wantKey string
		wantErr error
	}{
		{name: "plain", in: "alice", wantKey: "alice"},
		{name: "case mapped, display kept", in: "Alice", wantKey: "alice"},
		{name: "full width maps to ascii", in: "ａｌｉｃｅ", wantKey: "alice"},
		{name: "punctuation inside", in: "bob_1.x-y", wantKey: "bob_1.x-y"},
		{name: "one script non-latin", in: "Мария", wantKey: "мария"},
		{name: "japanese mix", in: "日本ひらがなカタカナ", wantKey: "日本ひらがなカタカナ"},
		{name: "NFC", in: "he\u0301llo", wantKey: "h\u00e9llo"},
		{name: "empty", in: "", wantErr: ErrUsernameLength},
		{name: "too short", in: "ab", wantErr: ErrUsernameLength},
		{name: "too long", in: strings.Repeat("a", 33), wantErr: ErrUsernameLength},
		{name: "max length", in: strings.Repeat("a", 32), wantKey: strings.Repeat("a", 32)},
		{name: "huge input", in: strings.Repeat("a", 1<<20), wantErr: ErrUsernameLength},
		{name: "invalid utf8", in: "ab\xffcd", wantErr: ErrUsernameLength},
		{name: "leading punctuation", in: "_bob", wantErr: ErrUsernameChars},
		{name: "trailing punctuation", in: "bob.", wantErr: ErrUsernameChars},
		{name: "double punctuation", in: "bo..b", wantErr: ErrUsernameChars},
		{name: "space", in: "bo b", wantErr: ErrUsernameChars},
		{name: "control char", in: "bo\x00b", wantErr: ErrUsernameChars},
		{name: "newline", in: "bob\n", wantErr: ErrUsernameChars},
		{name: "bidi override", in: "ab\u202ecd", wantErr: ErrUsernameChars},
		{name: "zero width joiner", in: "ab\u200dcd", wantErr: ErrUsernameChars},
		{name: "mixed script homoglyph", in: "p\u0430ypal", wantErr: ErrUsernameChars},
		{name: "symbol", in: "bob$", wantErr: ErrUsernameChars},
		{name: "emoji", in: "bob\U0001F600", wantErr: ErrUsernameChars},
		{name: "reserved", in: "admin", wantErr: ErrUsernameReserved},
		{name: "reserved case", in: "ADMIN", wantErr: ErrUsernameReserved},
		{name: "reserved width", in: "ｒｏｏｔ", wantErr: ErrUsernameReserved},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			u, err := p.Check(tc.in)
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) || !errors.Is(err, ErrUsernameInvalid) {
					t.Fatalf("Check = %+v, %v; want %v", u, err, tc.wantErr)
				}
				if len(tc.in) > 0 && len(tc.in) < 64 && strings.Contains(err.Error(), tc.in) {
					t.Fatal("error echoes the input")
				}
				return
			}
			if err != nil || u.Key != tc.wantKey {
				t.Fatalf("Check = %+v, %v; want key %q", u, err, tc.wantKey)
			}
		})
	}
}

func TestUsernameASCIIOnlyAndPolicyValidation(t *testing.T) {
	p := DefaultUsernamePolicy()
	p.ASCIIOnly = true
	if _, err := p.Check("héllo"); !errors.Is(err, ErrUsernameChars) {
		t.Fatalf("ASCIIOnly accepted a non-ASCII letter: %v", err)
	}
	if _, err := p.Check("hello"); err != nil {
		t.Fatal(err)
	}
	for name, bad := range map[string]UsernamePolicy{
		"min 0":        {MinLen: 0, MaxLen: 10},
		"max < min":    {MinLen: 5, MaxLen: 4},
		"max too big":  {MinLen: 1, MaxLen: 65},
		"letter punct": {MinLen: 1, MaxLen: 10, Punctuation: "a"},
		"space punct":  {MinLen: 1, MaxLen: 10, Punctuation: " "},
	} {
		if bad.Validate() == nil {
			t.Errorf("%s: Validate accepted", name)
		}
	}
	if DefaultUsernamePolicy().Validate() != nil {
		t.Fatal("default policy invalid")
	}
}

func TestIDs(t *testing.T) {
	id, err := NewID(AccountPrefix, nil)
	if err != nil || !ValidID(AccountPrefix, id) || ValidID(DevicePrefix, id) {
		t.Fatalf("NewID = %q, %v", id, err)
	}
	for _, bad := range []string{"", "acc_", "acc_short", id + "A", "dev_" + id[4:], "acc_" + strings.Repeat("!", 22)} {
		if ValidID(AccountPrefix, bad) {
			t.Errorf("ValidID(%q) = true", bad)
		}
	}
	if _, err := NewID(AccountPrefix, errReader{}); err == nil {
		t.Fatal("broken random source accepted")
	}
}

type errReader struct{}

func (errReader) Read([]byte) (int, error) { return 0, errors.New("no entropy") }

// FuzzUsernameCheck: Check never panics, accepted names are stable under a
// second mapping and within the policy's bounds.
func FuzzUsernameCheck(f *testing.F) {
	p := DefaultUsernamePolicy()
	f.Fuzz(func(t *testing.T, s string) {
		u, err := p.Check(s)
		if err != nil {
			return
		}
		again, err := p.Check(u.Key)
		if err != nil || again.Key != u.Key {
			t.Fatalf("mapped form not stable: %q -> %q (%v)", u.Key, again.Key, err)
		}
		if n := len([]rune(u.Key)); n < p.MinLen || n > p.MaxLen {
			t.Fatalf("length %d out of bounds", n)
		}
	})
}
