package account

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"unicode"

	"github.com/hallpass/hallpass/account/uts39"
)

func TestUsernamePolicy(t *testing.T) {
	p := DefaultUsernamePolicy()
	tests := []struct {
		name       string
		in         string
		wantKey    string
		wantErr    error
		wantReason string
	}{
		// Keys are skeletons (lowercased and folded, see keyFolds): "i" is
		// folded into "l", Katakana "カ" has the Han prototype "力"; skeletons are NFD.
		{name: "plain", in: "alice", wantKey: "allce"},
		{name: "case mapped, display kept", in: "Alice", wantKey: "allce"},
		{name: "full width maps to ascii", in: "ａｌｉｃｅ", wantKey: "allce"},
		{name: "punctuation inside", in: "bob_1.x-y", wantKey: "bob_l.x-y"},
		{name: "one script non-latin", in: "Мария", wantKey: "mapия"},
		{name: "japanese mix", in: "日本ひらがなカタカナ", wantKey: "日本ひらか\u3099な力夕力ナ"},
		{name: "NFC", in: "he\u0301llo", wantKey: "he\u0301llo"},
		{name: "empty", in: "", wantErr: ErrUsernameLength, wantReason: UsernameTooShort},
		{name: "too short", in: "ab", wantErr: ErrUsernameLength, wantReason: UsernameTooShort},
		{name: "too long", in: strings.Repeat("a", 33), wantErr: ErrUsernameLength, wantReason: UsernameTooLong},
		{name: "max length", in: strings.Repeat("a", 32), wantKey: strings.Repeat("a", 32)},
		{name: "huge input", in: strings.Repeat("a", 1<<20), wantErr: ErrUsernameLength, wantReason: UsernameTooLong},
		// Was ErrUsernameLength: not UTF-8 is a character problem (a JSON
		// decoder turns it into U+FFFD, a symbol, refused the same way).
		{name: "invalid utf8", in: "ab\xffcd", wantErr: ErrUsernameChars, wantReason: UsernameDisallowedCharacter},
		{name: "leading punctuation", in: "_bob", wantErr: ErrUsernameChars, wantReason: UsernameMisplacedPunctuation},
		{name: "trailing punctuation", in: "bob.", wantErr: ErrUsernameChars, wantReason: UsernameMisplacedPunctuation},
		{name: "double punctuation", in: "bo..b", wantErr: ErrUsernameChars, wantReason: UsernameMisplacedPunctuation},
		{name: "space", in: "bo b", wantErr: ErrUsernameChars, wantReason: UsernameDisallowedCharacter},
		{name: "control char", in: "bo\x00b", wantErr: ErrUsernameChars, wantReason: UsernameDisallowedCharacter},
		{name: "newline", in: "bob\n", wantErr: ErrUsernameChars, wantReason: UsernameDisallowedCharacter},
		{name: "bidi override", in: "ab\u202ecd", wantErr: ErrUsernameChars, wantReason: UsernameDisallowedCharacter},
		{name: "zero width joiner", in: "ab\u200dcd", wantErr: ErrUsernameChars, wantReason: UsernameDisallowedCharacter},
		{name: "mixed script homoglyph", in: "p\u0430ypal", wantErr: ErrUsernameChars, wantReason: UsernameMixedScript},
		{name: "symbol", in: "bob$", wantErr: ErrUsernameChars, wantReason: UsernameDisallowedCharacter},
		{name: "emoji", in: "bob\U0001F600", wantErr: ErrUsernameChars, wantReason: UsernameDisallowedCharacter},
		{name: "reserved", in: "admin", wantErr: ErrUsernameReserved, wantReason: UsernameReserved},
		{name: "reserved case", in: "ADMIN", wantErr: ErrUsernameReserved, wantReason: UsernameReserved},
		{name: "reserved width", in: "ｒｏｏｔ", wantErr: ErrUsernameReserved, wantReason: UsernameReserved},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			u, err := p.Check(tc.in)
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) || !errors.Is(err, ErrUsernameInvalid) {
					t.Fatalf("Check = %+v, %v; want %v", u, err, tc.wantErr)
				}
				if got := UsernameReason(err); got != tc.wantReason {
					t.Fatalf("reason %q, want %q", got, tc.wantReason)
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

// Issue 11, finding 3: whole-script look-alikes passed next to the name
// they imitate ("аӏісе159" in Cyrillic beside "alice159") and reserved names
// could be taken in disguise ("admın", "ɑdmin", Cyrillic "арі" and
// "һеӏр"). Look-alikes now share a key, so a store refuses the second as
// taken, and a name that looks like a reserved one is refused.
func TestUsernameConfusables(t *testing.T) {
	p := DefaultUsernamePolicy()
	key := func(t *testing.T, s string) string {
		t.Helper()
		u, err := p.Check(s)
		if err != nil {
			t.Fatalf("Check(%+q): %v", s, err)
		}
		return u.Key
	}
	t.Run("same key", func(t *testing.T) {
		for _, group := range [][]string{
			{"alice159", "аӏісе159", "Alice159", "ALICE159", "AIice159", "a1ice159", "aIice159", "ａｌｉｃｅ159"},
			{"scope", "ѕсоре"},   // Cyrillic, the UTS #39 whole-script example
			{"paypa1", "раура1"}, // Cyrillic "раура", digit one
			{"bob", "b0b", "BOB", "B0B"},
			{"modern", "rnodern", "MODERN"},
			{"vova", "Vova"},
			{"вова", "Вова", "ВОВА", "ʙoʙa", "boba"}, // "ВОВА" looks like "BOBA"
			{"istanbul", "ıstanbul", "lstanbul", "Istanbul"},
			{"help9", "һеӏр9"},
		} {
			want := key(t, group[0])
			for _, s := range group[1:] {
				if got := key(t, s); got != want {
					t.Errorf("Check(%+q).Key = %+q, Check(%+q).Key = %+q; want equal", group[0], want, s, got)
				}
			}
		}
	})
	t.Run("different key", func(t *testing.T) {
		for _, pair := range [][2]string{{"alice", "alica"}, {"bob", "bobby"}, {"hello", "héllo"}, {"van", "nan"}, {"uno", "yno"}} {
			if key(t, pair[0]) == key(t, pair[1]) {
				t.Errorf("%+q and %+q share a key", pair[0], pair[1])
			}
		}
	})
	t.Run("reserved look-alikes", func(t *testing.T) {
		for _, s := range []string{"admın", "ɑdmin", "арі", "һеӏр", "adm1n", "ADMlN", "rnod", "r00t", "MОD"[:0] + "RNOD"} {
			_, err := p.Check(s)
			if !errors.Is(err, ErrUsernameReserved) || UsernameReason(err) != UsernameConfusable {
				t.Errorf("Check(%+q) = %v; want %s", s, err, UsernameConfusable)
			}
		}
		for _, s := range []string{"admin", "Admin", "ＡＤＭＩＮ", "api", "help"} {
			if _, err := p.Check(s); UsernameReason(err) != UsernameReserved {
				t.Errorf("Check(%+q) = %v; want %s", s, err, UsernameReserved)
			}
		}
	})
}

// A capital that looks like another letter than its small form would let
// two names with different keys look alike (Greek "Νίκος": "Ν" looks like
// Latin "N", "ν" like "v", so "ΝΙΚΟΣ" could pass for Latin "NIKOS" while
// keyed apart from it): such a name is shown in small letters. The common
// capitals keep their case.
func TestUsernameDisplay(t *testing.T) {
	p := DefaultUsernamePolicy()
	tests := []struct{ in, want string }{
		{"Alice", "Alice"},
		{"ALICE", "ALICE"},
		{"Ian", "Ian"},
		{"Mark", "Mark"},
		{"Вова", "Вова"},
		{"Максим", "Максим"},
		{"Галя", "Галя"},
		{"Юля", "Юля"},
		{"Μαρία", "Μαρία"},
		{"Νίκος", "νίκος"}, // "Ν" looks like Latin "N", "ν" like "v"
		{"ΥΨΙΛΟΝ", "υψιλον"},
		{"ǷYNN", "ƿynn"},
	}
	for _, tc := range tests {
		u, err := p.Check(tc.in)
		if err != nil || u.Display != tc.want {
			t.Errorf("Check(%+q) = %+q, %v; want display %+q", tc.in, u.Display, err, tc.want)
		}
	}
	// Every capital of the Latin-1, Latin Extended-A and Russian alphabets
	// keeps its case.
	for _, r := range "ABCDEFGHIJKLMNOPQRSTUVWXYZÀÁÂÃÄÅÆÇÈÉÊËÌÍÎÏÑÒÓÔÕÖØÙÚÛÜÝÞĀĂĄĆĈĊČĎĐĒĔĖĘĚĜĞĠĢĤĦĨĪĬĮĴĶĹĻĽŁŃŅŇŊŌŎŐŒŔŖŘŚŜŞŠŢŤŦŨŪŬŮŰŲŴŶŸŹŻŽАБВГДЕЁЖЗИЙКЛМНОПРСТУФХЦЧШЩЫЬЭЮЯ" {
		lower := string(unicode.ToLower(r))
		in := string(r) + lower + lower + lower
		if u, err := p.Check(in); err != nil || u.Display != in {
			t.Errorf("Check(%+q) = %+q, %v", in, u.Display, err)
		}
	}
}

// The highly restrictive profile: one script, or Latin with Han and kana,
// with Han and Bopomofo, or with Han and Hangul.
func TestUsernameScripts(t *testing.T) {
	p := DefaultUsernamePolicy()
	for _, s := range []string{"tanakaさん", "yamadaタロウ", "李alex", "kim김", "chenㄅㄆ", "スーパー", "Ελένη", "שלום", "مرحبا"} {
		if _, err := p.Check(s); err != nil {
			t.Errorf("Check(%+q): %v", s, err)
		}
	}
	for _, s := range []string{"paypаl", "bobσ", "김ㄅㄆ", "さん김", "ивanov", "alφa"} {
		if _, err := p.Check(s); UsernameReason(err) != UsernameMixedScript {
			t.Errorf("Check(%+q) = %v; want %s", s, err, UsernameMixedScript)
		}
	}
	// Letters of scripts UAX #31 does not recommend, and Common letters.
	for _, s := range []string{"ᏴᎪᎡᎡ", "ᚠᚢᚦ", "abcʻ", "ab〆c"} {
		if _, err := p.Check(s); UsernameReason(err) != UsernameDisallowedCharacter {
			t.Errorf("Check(%+q) = %v; want %s", s, err, UsernameDisallowedCharacter)
		}
	}
}

func TestUsernameError(t *testing.T) {
	_, err := DefaultUsernamePolicy().Check("ab")
	wrapped := fmt.Errorf("signup: %w", err)
	var ue *UsernameError
	if !errors.As(wrapped, &ue) || ue.Reason != UsernameTooShort {
		t.Fatalf("errors.As = %v", wrapped)
	}
	if !errors.Is(wrapped, ErrUsernameInvalid) || !errors.Is(wrapped, ErrUsernameLength) || errors.Is(wrapped, ErrUsernameChars) {
		t.Fatal("family")
	}
	if UsernameReason(wrapped) != UsernameTooShort || UsernameReason(nil) != "" || UsernameReason(ErrUsernameTaken) != "" {
		t.Fatal("UsernameReason")
	}
	if got := err.Error(); got != "account: username invalid: length out of bounds (too_short)" {
		t.Fatalf("Error() = %q", got)
	}
}

func TestUsernameKey(t *testing.T) {
	for _, s := range []string{"Alice159", "аӏісе159", "admın", "p\u0430ypal"} {
		k, err := UsernameKey(s)
		want := "allcel59"
		switch s {
		case "admın":
			want = "admln"
		case "p\u0430ypal":
			want = "paypal"
		}
		if err != nil || k != want {
			t.Errorf("UsernameKey(%+q) = %q, %v; want %q", s, k, err, want)
		}
	}
	if _, err := UsernameKey("bo\x00b"); UsernameReason(err) != UsernameDisallowedCharacter {
		t.Fatalf("control character: %v", err)
	}
}

func TestReportKeys(t *testing.T) {
	stored := []RegisteredName{
		{AccountID: "acc_3", Display: "аӏісе159", Key: "аӏісе159"},
		{AccountID: "acc_1", Display: "Alice159", Key: "alice159"},
		{AccountID: "acc_2", Display: "bob", Key: "bob"},
		{AccountID: "acc_4", Display: "admın", Key: "admın"},
		{AccountID: "acc_5", Display: "b0b", Key: "b0b"},
		{AccountID: "acc_6", Display: "carol", Key: "carol"},
		{AccountID: "acc_7", Display: "\x00", Key: "\x00"},
		{AccountID: "acc_8", Display: "aIice159", Key: "aiice159"},
	}
	rep := DefaultUsernamePolicy().ReportKeys(slices.Values(stored))
	if rep.Names != 8 || rep.Changed != 5 {
		t.Errorf("Names %d, Changed %d; want 8, 5", rep.Names, rep.Changed)
	}
	ids := func(ns []RegisteredName) (out []string) {
		for _, n := range ns {
			out = append(out, n.AccountID)
		}
		return out
	}
	if len(rep.Collisions) != 2 ||
		rep.Collisions[0].Key != "allcel59" || !slices.Equal(ids(rep.Collisions[0].Names), []string{"acc_1", "acc_3", "acc_8"}) ||
		rep.Collisions[1].Key != "bob" || !slices.Equal(ids(rep.Collisions[1].Names), []string{"acc_2", "acc_5"}) {
		t.Errorf("Collisions = %+v", rep.Collisions)
	}
	if len(rep.Refused) != 1 || rep.Refused[0].Name.AccountID != "acc_4" || rep.Refused[0].Reason != UsernameConfusable {
		t.Errorf("Refused = %+v", rep.Refused)
	}
	if !slices.Equal(ids(rep.Unmappable), []string{"acc_7"}) {
		t.Errorf("Unmappable = %+v", rep.Unmappable)
	}
	for _, n := range stored { // nothing was changed
		if n.Key == "" {
			t.Fatal("input modified")
		}
	}
}

// FuzzUsernameCheck: Check never panics; an accepted name is within the
// policy's bounds, checking its Display again gives the same name (the Key
// itself is a skeleton, not a name: it need not pass Check), and the Key
// is what the Display's own skeleton gives.
func FuzzUsernameCheck(f *testing.F) {
	p := DefaultUsernamePolicy()
	f.Fuzz(func(t *testing.T, s string) {
		u, err := p.Check(s)
		if err != nil {
			if UsernameReason(err) == "" {
				t.Fatalf("refusal without a reason: %v", err)
			}
			return
		}
		again, err := p.Check(u.Display)
		if err != nil || again != u {
			t.Fatalf("display not stable: %+q -> %+q (%v)", u, again, err)
		}
		if n := len([]rune(again.Display)); n < p.MinLen || n > p.MaxLen {
			t.Fatalf("length %d out of bounds", n)
		}
		if skeletonKey(u.Display) != u.Key {
			t.Fatalf("display %+q looks like key %+q, not %+q", u.Display, skeletonKey(u.Display), u.Key)
		}
	})
}

// FuzzUsernameSkeleton: no two accepted names with different keys share a
// skeleton, whether compared as displayed or as case-mapped; b is also
// tried with its case flipped letter by letter (mask), since displays keep
// the case the user typed.
func FuzzUsernameSkeleton(f *testing.F) {
	p := DefaultUsernamePolicy()
	f.Fuzz(func(t *testing.T, a, b string, mask uint64) {
		ua, err := p.Check(a)
		if err != nil {
			return
		}
		var flipped strings.Builder
		for i, r := range []rune(b) {
			if mask>>(uint(i)%64)&1 == 1 {
				if unicode.IsUpper(r) {
					r = unicode.ToLower(r)
				} else {
					r = unicode.ToUpper(r)
				}
			}
			flipped.WriteRune(r)
		}
		for _, b := range []string{b, flipped.String()} {
			ub, err := p.Check(b)
			if err != nil || ua.Key == ub.Key {
				continue
			}
			if uts39.Skeleton(ua.Display) == uts39.Skeleton(ub.Display) {
				t.Fatalf("displays %+q and %+q share a skeleton, keys %+q and %+q", ua.Display, ub.Display, ua.Key, ub.Key)
			}
			ma, _ := UsernameKey(ua.Display)
			mb, _ := UsernameKey(ub.Display)
			if ma != ua.Key || mb != ub.Key {
				t.Fatalf("UsernameKey disagrees with Check: %+q %+q", ma, mb)
			}
		}
	})
}

// TestReservedFormsStayPerPolicy: the remembered forms of reserved names
// serve every policy, and a policy refuses only its own reserved names.
func TestReservedFormsStayPerPolicy(t *testing.T) {
	a := DefaultUsernamePolicy()
	b := DefaultUsernamePolicy()
	b.Reserved = []string{"zebra"}
	for range 2 { // the second round reads the remembered forms
		if _, err := a.Check("zebra"); err != nil {
			t.Fatalf("default policy refused zebra: %v", err)
		}
		if _, err := b.Check("ᴢebra"); UsernameReason(err) != UsernameConfusable && UsernameReason(err) != UsernameReserved {
			t.Fatalf("policy reserving zebra: %v", err)
		}
		if _, err := b.Check("admin"); err != nil {
			t.Fatalf("policy without admin refused it: %v", err)
		}
		if _, err := a.Check("admin"); UsernameReason(err) != UsernameReserved {
			t.Fatalf("default policy: admin %v", err)
		}
	}
}

// BenchmarkUsernameCheck is one signup's username check with the default
// policy (21 reserved names).
func BenchmarkUsernameCheck(b *testing.B) {
	p := DefaultUsernamePolicy()
	for b.Loop() {
		if _, err := p.Check("bench_user_12345"); err != nil {
			b.Fatal(err)
		}
	}
}
