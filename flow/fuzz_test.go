package flow

import (
	"strings"
	"testing"
)

// FuzzNormalizeCode: the typed-code parser never panics, and what it
// accepts is exactly n Crockford symbols that parse again to themselves.
func FuzzNormalizeCode(f *testing.F) {
	for _, s := range []string{"ABCD-EFGH-JKMN", "abcd efgh jkmn", "ioL0-0000-0000", "ABCDE-FGHJK-MNPQR-STVWX", "", "----", "ÄBCD", "ABCD\x00EFGH-JKMN"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		for _, n := range []int{LinkCodeLen, RecoveryCodeLen} {
			got, err := normalizeCode(s, n)
			if err != nil {
				continue
			}
			if len(got) != n || strings.Trim(got, crockford) != "" {
				t.Fatalf("normalizeCode(%q) = %q", s, got)
			}
			if again, err := normalizeCode(got, n); err != nil || again != got {
				t.Fatalf("not idempotent: %q -> %q, %v", got, again, err)
			}
		}
	})
}
