package account

import (
	"errors"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/secure/precis"
)

// Username errors. Every one of them wraps ErrUsernameInvalid except
// ErrUsernameTaken, so callers can map the family to one client error code.
var (
	ErrUsernameInvalid  = errors.New("account: username invalid")
	ErrUsernameLength   = fmt.Errorf("%w: length out of bounds", ErrUsernameInvalid)
	ErrUsernameChars    = fmt.Errorf("%w: characters not allowed", ErrUsernameInvalid)
	ErrUsernameReserved = fmt.Errorf("%w: name is reserved", ErrUsernameInvalid)
	ErrUsernameTaken    = errors.New("account: username taken")
)

// DefaultReserved are names nobody may register; compared on the mapped form.
var DefaultReserved = []string{
	"admin", "administrator", "root", "support", "system", "hallpass", "help",
	"security", "staff", "moderator", "mod", "official", "owner", "null",
	"undefined", "anonymous", "everyone", "me", "api", "www", "mail",
}

// UsernamePolicy decides which usernames may be registered. The zero value
// is not valid; start from DefaultUsernamePolicy.
type UsernamePolicy struct {
	// MinLen and MaxLen bound the length in characters of the mapped form.
	MinLen, MaxLen int
	// ASCIIOnly restricts letters to a-z. When false, letters of any one
	// Unicode script are allowed (Han, Hiragana and Katakana may mix), which
	// blocks most mixed-script look-alikes such as a Cyrillic "а" inside a
	// Latin name.
	ASCIIOnly bool
	// Punctuation lists the allowed non-alphanumeric characters; they may not
	// start or end a name, nor follow each other.
	Punctuation string
	// Reserved names (compared after mapping).
	Reserved []string
}

// DefaultUsernamePolicy: 3 to 32 characters, letters of one script, digits,
// '_', '.', '-'.
func DefaultUsernamePolicy() UsernamePolicy {
	return UsernamePolicy{MinLen: 3, MaxLen: 32, Punctuation: "_.-", Reserved: append([]string(nil), DefaultReserved...)}
}

// Validate checks the policy itself.
func (p UsernamePolicy) Validate() error {
	if p.MinLen < 1 || p.MaxLen < p.MinLen || p.MaxLen > 64 {
		return errors.New("account: username policy: need 1 <= MinLen <= MaxLen <= 64")
	}
	for _, r := range p.Punctuation {
		if unicode.IsLetter(r) || unicode.IsDigit(r) || unicode.IsSpace(r) || r > unicode.MaxASCII || !unicode.IsPrint(r) {
			return errors.New("account: username policy: Punctuation must be printable ASCII symbols")
		}
	}
	return nil
}

// Username is a checked username: Display is what the user typed (after
// PRECIS width mapping and NFC), Key is the RFC 8265 UsernameCaseMapped form
// that uniqueness is decided on.
type Username struct {
	Display string
	Key     string
}

var cjk = []*unicode.RangeTable{unicode.Han, unicode.Hiragana, unicode.Katakana}

// Check maps and validates a tainted username. Errors never contain the
// input.
func (p UsernamePolicy) Check(tainted string) (Username, error) {
	if len(tainted) > 4*p.MaxLen+16 || !utf8.ValidString(tainted) {
		return Username{}, ErrUsernameLength
	}
	key, err := precis.UsernameCaseMapped.String(tainted)
	if err != nil {
		return Username{}, ErrUsernameChars
	}
	display, err := precis.UsernameCasePreserved.String(tainted)
	if err != nil {
		return Username{}, ErrUsernameChars
	}
	n := utf8.RuneCountInString(key)
	if n < p.MinLen || n > p.MaxLen {
		return Username{}, ErrUsernameLength
	}
	var script *unicode.RangeTable
	prevPunct := true // a name may not start with punctuation
	for _, r := range key {
		isPunct := strings.ContainsRune(p.Punctuation, r)
		switch {
		case isPunct:
			if prevPunct {
				return Username{}, ErrUsernameChars
			}
		case r >= '0' && r <= '9':
		case unicode.IsLetter(r):
			if p.ASCIIOnly && (r < 'a' || r > 'z') {
				return Username{}, ErrUsernameChars
			}
			s := scriptOf(r)
			if s == nil {
				return Username{}, ErrUsernameChars
			}
			if script == nil {
				script = s
			} else if script != s && !(inTables(script, cjk) && inTables(s, cjk)) {
				return Username{}, ErrUsernameChars
			}
		default:
			// Digits of other scripts, marks, symbols, spaces, controls and
			// bidi controls (PRECIS already refuses most of these).
			return Username{}, ErrUsernameChars
		}
		prevPunct = isPunct
	}
	if prevPunct {
		return Username{}, ErrUsernameChars
	}
	for _, r := range p.Reserved {
		if rk, err := precis.UsernameCaseMapped.String(r); err == nil && rk == key {
			return Username{}, ErrUsernameReserved
		}
	}
	return Username{Display: display, Key: key}, nil
}

func inTables(t *unicode.RangeTable, ts []*unicode.RangeTable) bool {
	for _, x := range ts {
		if x == t {
			return true
		}
	}
	return false
}

// scriptOf returns the Unicode script table of a letter, or nil.
func scriptOf(r rune) *unicode.RangeTable {
	if unicode.Is(unicode.Latin, r) {
		return unicode.Latin
	}
	for _, t := range unicode.Scripts {
		if t != unicode.Common && t != unicode.Inherited && unicode.Is(t, r) {
			return t
		}
	}
	return nil
}
