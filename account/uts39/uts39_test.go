package uts39

import "testing"

// Pairs published as confusable: the examples of UTS #39 and entries of its
// confusables.txt (source ; prototype), each given with the prototype its
// members must map to.
func TestSkeletonPublishedPairs(t *testing.T) {
	tests := []struct {
		name      string
		a, b      string
		skeleton  string
		reference string
	}{
		{name: "whole-script Cyrillic", a: "scope", b: "ѕсоре", skeleton: "scope", reference: "UTS #39 section 4 example"},
		{name: "single-script overlay", a: "so\u0337s", b: "søs", skeleton: "so\u0338s", reference: "UTS #39 section 4 example"},
		{name: "Cyrillic paypal", a: "paypal", b: "раураl", skeleton: "paypal", reference: "0440 ; 0070, 0430 ; 0061, 0443 ; 0079"},
		{name: "digit one, capital I", a: "1", b: "I", skeleton: "l", reference: "0031 ; 006C, 0049 ; 006C"},
		{name: "digit zero", a: "0", b: "O", skeleton: "O", reference: "0030 ; 004F"},
		{name: "rn", a: "m", b: "rn", skeleton: "rn", reference: "006D ; 0072 006E"},
		{name: "Latin alpha", a: "ɑ", b: "a", skeleton: "a", reference: "0251 ; 0061"},
		{name: "dotless i", a: "ı", b: "i", skeleton: "i", reference: "0131 ; 0069"},
		{name: "Cherokee", a: "Ꭺ", b: "A", skeleton: "A", reference: "13AA ; 0041"},
		{name: "script l", a: "ℓ", b: "l", skeleton: "l", reference: "2113 ; 006C"},
		{name: "katakana e", a: "エ", b: "工", skeleton: "工", reference: "30A8 ; 5DE5"},
		{name: "katakana ro", a: "ロ", b: "口", skeleton: "口", reference: "30ED ; 53E3"},
		{name: "minus", a: "\u2212", b: "-", skeleton: "-", reference: "2212 ; 002D"},
		{name: "Greek omicron", a: "ο", b: "o", skeleton: "o", reference: "03BF ; 006F"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			sa, sb := Skeleton(tc.a), Skeleton(tc.b)
			if sa != tc.skeleton || sb != tc.skeleton {
				t.Fatalf("Skeleton(%+q) = %+q, Skeleton(%+q) = %+q; want %+q (%s)", tc.a, sa, tc.b, sb, tc.skeleton, tc.reference)
			}
		})
	}
	for _, pair := range [][2]string{{"alice", "alica"}, {"l", "i"}, {"payPal", "paypal"}, {"pàypal", "paypal"}} {
		if Skeleton(pair[0]) == Skeleton(pair[1]) {
			t.Errorf("%+q and %+q share a skeleton", pair[0], pair[1])
		}
	}
}

func TestSkeletonDropsDefaultIgnorables(t *testing.T) {
	for _, s := range []string{"a\u00adb", "a\u200bb", "a\u200db", "a\ufe0fb", "a\u2060b", "a\u202eb"} {
		if got := Skeleton(s); got != "ab" {
			t.Errorf("Skeleton(%+q) = %+q; want \"ab\"", s, got)
		}
	}
	// Prepended concatenation marks and interlinear annotation characters
	// are format characters but not default ignorable.
	for _, s := range []string{"a\u0600b", "a\ufff9b"} {
		if got := Skeleton(s); got == "ab" {
			t.Errorf("Skeleton(%+q) dropped a character that is not default ignorable", s)
		}
	}
}

func TestHighlyRestrictive(t *testing.T) {
	tests := []struct {
		in     string
		single bool
		highly bool
	}{
		{in: "alice", single: true, highly: true},
		{in: "alice_159", single: true, highly: true}, // Common ignored
		{in: "мария", single: true, highly: true},
		{in: "日本ひらがなカタカナ", single: true, highly: true}, // Jpan
		{in: "李ㄅㄆ", single: true, highly: true},        // Hanb
		{in: "金김", single: true, highly: true},         // Kore
		{in: "tanakaさん", highly: true},                 // Latn + Jpan
		{in: "abcー", highly: true},                     // U+30FC counts as Hiragana/Katakana
		{in: "李alexㄅ", highly: true},                   // Latn + Hanb
		{in: "kim김", highly: true},                     // Latn + Kore
		{in: "p\u0430ypal"},                            // Latin + Cyrillic
		{in: "alφa"},                                   // Latin + Greek
		{in: "иー"},                                     // Cyrillic + kana mark
		{in: "さん김"},                                    // Jpan + Kore
		{in: "abcㄅ김"},                                  // Bopomofo + Hangul
		{in: "שלוםabc"},                                // Hebrew + Latin
	}
	for _, tc := range tests {
		if got := SingleScript(tc.in); got != tc.single {
			t.Errorf("SingleScript(%+q) = %v", tc.in, got)
		}
		if got := HighlyRestrictive(tc.in); got != tc.highly {
			t.Errorf("HighlyRestrictive(%+q) = %v", tc.in, got)
		}
	}
}

func TestScriptAndRecommended(t *testing.T) {
	for r, want := range map[rune]string{'a': "Latin", 'Z': "Latin", 'é': "Latin", '1': "Common", '_': "Common", 'я': "Cyrillic", 'ω': "Greek", '日': "Han", 'Ᏼ': "Cherokee", 0x0301: "Inherited", 0x0378: ""} {
		if got := Script(r); got != want {
			t.Errorf("Script(%U) = %q, want %q", r, got, want)
		}
	}
	for s, want := range map[string]bool{"Latin": true, "Cyrillic": true, "Han": true, "Thai": true, "Cherokee": false, "Runic": false, "Common": false, "Inherited": false, "": false} {
		if Recommended(s) != want {
			t.Errorf("Recommended(%q) = %v", s, !want)
		}
	}
}
