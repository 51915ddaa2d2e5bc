// Package uts39 implements the two parts of Unicode Technical Standard #39
// (Unicode Security Mechanisms) that the username policy uses: the
// confusable skeleton (section 4) and the "Highly Restrictive" mixed-script
// rule (sections 5.1 and 5.2).
//
// # Data and versions
//
// The confusable mappings come from github.com/mtibben/confusables, which
// carries Unicode's confusables.txt of UTS #39 version 13.0.0 (dated
// 2020-02-13) as a Go table. Normalisation (NFD) is golang.org/x/text's,
// Unicode 15.0.0; scripts are the standard library's unicode.Scripts,
// Unicode 15.0.0. Characters added to Unicode after 13.0.0 have no
// confusable mapping here: they stand for themselves in a skeleton. A
// caller that accepts only letters of scripts older than that (every
// script the username policy lets through is) loses nothing in practice;
// one that needs newer data must regenerate the table.
//
// Script_Extensions is not in the standard library: a character's script
// set here is its Script property, with the Augmented Script Sets of
// section 5.1 (Han also counts as Hanb, Jpan and Kore; Hiragana and
// Katakana as Jpan; Hangul as Kore; Bopomofo as Hanb), and Common and
// Inherited characters count as every script, except for the few Japanese
// ones listed in scriptExtensions, whose Script_Extensions (Hiragana,
// Katakana) are used.
//
// # Limits
//
// A skeleton only says that two strings may be confused according to
// Unicode's data: strings that look alike in a given font but have no entry
// in confusables.txt have different skeletons. A skeleton is for comparing,
// never for display (it mixes scripts freely).
package uts39

import (
	"strings"
	"unicode"

	"github.com/mtibben/confusables"
	"golang.org/x/text/unicode/norm"
)

// ConfusablesVersion is the version of UTS #39 whose confusables.txt the
// skeleton uses.
const ConfusablesVersion = "13.0.0"

// Skeleton returns the UTS #39 skeleton of s: s in NFD, without
// Default_Ignorable_Code_Point characters, each character replaced by its
// prototype from confusables.txt, in NFD again. Two strings are confusable
// when their skeletons are equal. The mapping is case-sensitive (capital
// "I" and small "l" share the prototype "l"; small "i" is its own).
//
// Default_Ignorable_Code_Point is approximated from the standard library's
// tables: Other_Default_Ignorable_Code_Point, Variation_Selector, and the
// format characters (Cf) that are not Prepended_Concatenation_Mark or
// interlinear annotation or Egyptian hieroglyph format controls.
func Skeleton(s string) string {
	s = norm.NFD.String(s)
	if strings.IndexFunc(s, defaultIgnorable) >= 0 {
		s = strings.Map(func(r rune) rune {
			if defaultIgnorable(r) {
				return -1
			}
			return r
		}, s)
	}
	return confusables.Skeleton(s) // maps, then NFD
}

func defaultIgnorable(r rune) bool {
	switch {
	case r < 0xAD:
		return false
	case unicode.Is(unicode.Other_Default_Ignorable_Code_Point, r), unicode.Is(unicode.Variation_Selector, r):
		return true
	case !unicode.Is(unicode.Cf, r), unicode.Is(unicode.Prepended_Concatenation_Mark, r):
		return false
	case r >= 0xFFF9 && r <= 0xFFFB, r >= 0x13430 && r <= 0x1345F:
		return false
	}
	return true
}

// recommended are the scripts of UAX #31 (Unicode Identifiers and Syntax)
// Table 5, Recommended Scripts: the identifier profile of UTS #39 allows
// letters of these only (besides Common and Inherited).
var recommended = map[string]bool{
	"Arabic": true, "Armenian": true, "Bengali": true, "Bopomofo": true, "Cyrillic": true,
	"Devanagari": true, "Ethiopic": true, "Georgian": true, "Greek": true, "Gujarati": true,
	"Gurmukhi": true, "Han": true, "Hangul": true, "Hebrew": true, "Hiragana": true,
	"Kannada": true, "Katakana": true, "Khmer": true, "Lao": true, "Latin": true,
	"Malayalam": true, "Myanmar": true, "Oriya": true, "Sinhala": true, "Tamil": true,
	"Telugu": true, "Thaana": true, "Thai": true, "Tibetan": true,
}

// Recommended reports whether script (a name as Script returns it) is one
// of the Recommended Scripts of UAX #31 Table 5. Common and Inherited are
// not: they are no script of their own.
func Recommended(script string) bool { return recommended[script] }

// Script names used by the mixed-script rules (keys of unicode.Scripts).
const (
	latin    = "Latin"
	han      = "Han"
	hiragana = "Hiragana"
	katakana = "Katakana"
	hangul   = "Hangul"
	bopomofo = "Bopomofo"
)

// scriptExtensions are the Script_Extensions of Common or Inherited
// characters that Japanese names use (Unicode ScriptExtensions.txt): the
// prolonged sound mark, full and half width, and the kana voicing marks.
var scriptExtensions = map[rune][]string{
	0x3099: {hiragana, katakana},
	0x309A: {hiragana, katakana},
	0x309B: {hiragana, katakana},
	0x309C: {hiragana, katakana},
	0x30A0: {hiragana, katakana},
	0x30FC: {hiragana, katakana},
	0xFF70: {hiragana, katakana},
	0xFF9E: {hiragana, katakana},
	0xFF9F: {hiragana, katakana},
}

// Script returns the name of r's Script property (a key of
// unicode.Scripts), "Common" or "Inherited" included, or "" for an
// unassigned code point.
func Script(r rune) string {
	if r < 0x80 {
		if ('a' <= r && r <= 'z') || ('A' <= r && r <= 'Z') {
			return latin
		}
		return "Common"
	}
	for _, name := range frequentScripts {
		if unicode.Is(unicode.Scripts[name], r) {
			return name
		}
	}
	for name, t := range unicode.Scripts {
		if unicode.Is(t, r) {
			return name
		}
	}
	return ""
}

// frequentScripts are tried first by Script, for speed.
var frequentScripts = []string{latin, "Common", "Inherited", "Cyrillic", "Greek", han, hiragana, katakana, hangul, "Arabic"}

// scriptSet returns the scripts r counts as, or nil for every script
// (Common and Inherited, unless listed in scriptExtensions).
func scriptSet(r rune) []string {
	if x, ok := scriptExtensions[r]; ok {
		return x
	}
	switch s := Script(r); s {
	case "Common", "Inherited":
		return nil
	case "":
		return []string{"Unknown"}
	default:
		return []string{s}
	}
}

// augmented adds the Augmented Script Sets of UTS #39 section 5.1.
func augmented(scripts []string) map[string]bool {
	m := make(map[string]bool, len(scripts)+3)
	for _, s := range scripts {
		m[s] = true
		switch s {
		case han:
			m["Hanb"], m["Jpan"], m["Kore"] = true, true, true
		case hiragana, katakana:
			m["Jpan"] = true
		case hangul:
			m["Kore"] = true
		case bopomofo:
			m["Hanb"] = true
		}
	}
	return m
}

// highlyRestrictiveCovers are the multi-script sets UTS #39 section 5.2
// allows at the Highly Restrictive level.
var highlyRestrictiveCovers = [][]string{
	{latin, han, hiragana, katakana}, // Latn + Jpan
	{latin, han, bopomofo},           // Latn + Hanb
	{latin, han, hangul},             // Latn + Kore
}

// SingleScript reports whether the resolved script set of s (section 5.1)
// is not empty: all its characters, Common and Inherited aside, belong to
// one script, counting Han with Hiragana and Katakana (Japanese), with
// Hangul (Korean) or with Bopomofo as one.
func SingleScript(s string) bool {
	var resolved map[string]bool // nil: every script
	for _, r := range s {
		set := scriptSet(r)
		if set == nil {
			continue
		}
		a := augmented(set)
		if resolved == nil {
			resolved = a
			continue
		}
		for k := range resolved {
			if !a[k] {
				delete(resolved, k)
			}
		}
		if len(resolved) == 0 {
			return false
		}
	}
	return true
}

// HighlyRestrictive reports whether s passes the mixed-script rule of the
// "Highly Restrictive" level of UTS #39 section 5.2: s is single script, or
// every character (Common and Inherited aside) is in Latin + Han + Hiragana
// + Katakana, or every one in Latin + Han + Bopomofo, or every one in Latin
// + Han + Hangul. (That level also requires every character to be in the
// identifier profile; the caller's character rules stand in for it.)
func HighlyRestrictive(s string) bool {
	if SingleScript(s) {
		return true
	}
	for _, cover := range highlyRestrictiveCovers {
		if coveredBy(s, cover) {
			return true
		}
	}
	return false
}

func coveredBy(s string, cover []string) bool {
	for _, r := range s {
		set := scriptSet(r)
		if set == nil {
			continue
		}
		ok := false
		for _, x := range set {
			for _, c := range cover {
				ok = ok || x == c
			}
		}
		if !ok {
			return false
		}
	}
	return true
}
