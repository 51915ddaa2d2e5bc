package account

import (
	"cmp"
	"errors"
	"fmt"
	"iter"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"unicode"
	"unicode/utf8"

	"github.com/hallpass/hallpass/account/uts39"
	"golang.org/x/text/secure/precis"
)

// Username errors. Every one of them wraps ErrUsernameInvalid except
// ErrUsernameTaken, so callers can map the family to one client error code.
// Check returns a *UsernameError, which wraps one of ErrUsernameLength,
// ErrUsernameChars and ErrUsernameReserved and says why in its Reason.
var (
	ErrUsernameInvalid  = errors.New("account: username invalid")
	ErrUsernameLength   = fmt.Errorf("%w: length out of bounds", ErrUsernameInvalid)
	ErrUsernameChars    = fmt.Errorf("%w: characters not allowed", ErrUsernameInvalid)
	ErrUsernameReserved = fmt.Errorf("%w: name is reserved", ErrUsernameInvalid)
	ErrUsernameTaken    = errors.New("account: username taken")
)

// Reasons a username is refused: stable sub-codes a client can show, in the
// Reason of a *UsernameError (see UsernameReason). New reasons may be added;
// a client should treat one it does not know like UsernameDisallowedCharacter.
const (
	// UsernameTooShort: fewer than MinLen characters (after mapping).
	UsernameTooShort = "too_short" // ErrUsernameLength
	// UsernameTooLong: more than MaxLen characters (after mapping).
	UsernameTooLong = "too_long" // ErrUsernameLength
	// UsernameDisallowedCharacter: a character outside the identifier
	// profile (spaces, symbols, emoji, marks, controls, digits other than
	// 0-9, letters of a script that is not recommended for identifiers, a
	// non-ASCII letter under ASCIIOnly) or text that is not UTF-8.
	UsernameDisallowedCharacter = "disallowed_character" // ErrUsernameChars
	// UsernameMisplacedPunctuation: punctuation at the start or the end,
	// or two in a row.
	UsernameMisplacedPunctuation = "misplaced_punctuation" // ErrUsernameChars
	// UsernameMixedScript: letters of several scripts beyond what UTS #39
	// "Highly Restrictive" allows (such as a Cyrillic "а" in a Latin name).
	UsernameMixedScript = "mixed_script" // ErrUsernameChars
	// UsernameReserved: a reserved name (compared case- and
	// width-insensitively).
	UsernameReserved = "reserved" // ErrUsernameReserved
	// UsernameConfusable: looks like a reserved name ("admın", Cyrillic
	// "арі"): the same confusable skeleton, other characters.
	UsernameConfusable = "confusable" // ErrUsernameReserved
)

// UsernameError is a username refused by a UsernamePolicy. Its text never
// contains the name.
type UsernameError struct {
	// Reason is one of the Username* reason constants.
	Reason string
	err    error // ErrUsernameLength, ErrUsernameChars or ErrUsernameReserved
}

func (e *UsernameError) Error() string { return e.err.Error() + " (" + e.Reason + ")" }

// Unwrap returns the family: ErrUsernameLength, ErrUsernameChars or
// ErrUsernameReserved, each of which wraps ErrUsernameInvalid.
func (e *UsernameError) Unwrap() error { return e.err }

func refuse(family error, reason string) error { return &UsernameError{Reason: reason, err: family} }

// UsernameReason returns the reason sub-code of a username refused by
// UsernamePolicy.Check (anywhere in err's chain), or "" when err is not one.
func UsernameReason(err error) string {
	if ue, ok := errors.AsType[*UsernameError](err); ok {
		return ue.Reason
	}
	return ""
}

// DefaultReserved are names nobody may register, nor any name that looks
// like one (the same Key).
var DefaultReserved = []string{
	"admin", "administrator", "root", "support", "system", "hallpass", "help",
	"security", "staff", "moderator", "mod", "official", "owner", "null",
	"undefined", "anonymous", "everyone", "me", "api", "www", "mail",
}

// UsernamePolicy decides which usernames may be registered. The zero value
// is not valid; start from DefaultUsernamePolicy.
//
// Every policy applies the mixed-script rule of UTS #39 "Highly
// Restrictive": the letters of a name are of one script, or of Latin + Han +
// Hiragana + Katakana, Latin + Han + Bopomofo, or Latin + Han + Hangul; a
// Cyrillic "а" inside a Latin name is refused. Letters must be of a script
// that UAX #31 recommends for identifiers (Latin, Cyrillic, Greek, Arabic,
// Han, Hangul, ...; not Cherokee, Runic, Deseret, ...). Combining marks that
// NFC cannot compose into a letter are refused, so scripts that write vowels
// as separate marks (Devanagari, Thai, ...) cannot register yet.
type UsernamePolicy struct {
	// MinLen and MaxLen bound the length in characters of the mapped form.
	MinLen, MaxLen int
	// ASCIIOnly restricts letters to a-z.
	ASCIIOnly bool
	// Punctuation lists the allowed non-alphanumeric characters; they may not
	// start or end a name, nor follow each other.
	Punctuation string
	// Reserved names: a name with the same Key is refused, as reserved
	// when it is the same name, as confusable when it only looks like it.
	Reserved []string
}

// DefaultUsernamePolicy: 3 to 32 characters, letters (see UsernamePolicy),
// digits 0-9, '_', '.', '-'.
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

// Username is a checked username.
type Username struct {
	// Display is what other players see: the name as typed, after PRECIS
	// width mapping and NFC (RFC 8265 UsernameCasePreserved), or the
	// case-mapped name when its capitals would make it look like another
	// name: when a capital looks like another letter than its small form
	// does (Greek "Ν" looks like Latin "N", "ν" like "v"), the name is
	// shown in small letters.
	Display string
	// Key is what uniqueness is decided on (Account.UsernameKey): the UTS
	// #39 confusable skeleton of the case-mapped name, folded further (see
	// UsernameKey). Names that look alike share it: "alice159", "Alice159",
	// "ALICE159", "aIice159" and Cyrillic "аӏісе159" are one name. It is
	// not for display.
	Key string
}

// Check maps and validates a tainted username. A refusal is a
// *UsernameError (see UsernameReason); its text never contains the input.
func (p UsernamePolicy) Check(tainted string) (Username, error) {
	if len(tainted) > 4*p.MaxLen+16 {
		return Username{}, refuse(ErrUsernameLength, UsernameTooLong)
	}
	if !utf8.ValidString(tainted) {
		return Username{}, refuse(ErrUsernameChars, UsernameDisallowedCharacter)
	}
	mapped, err := precis.UsernameCaseMapped.String(tainted)
	if err != nil {
		return Username{}, refuse(ErrUsernameChars, UsernameDisallowedCharacter)
	}
	display, err := precis.UsernameCasePreserved.String(tainted)
	if err != nil {
		return Username{}, refuse(ErrUsernameChars, UsernameDisallowedCharacter)
	}
	switch n := utf8.RuneCountInString(mapped); {
	case n < p.MinLen:
		return Username{}, refuse(ErrUsernameLength, UsernameTooShort)
	case n > p.MaxLen:
		return Username{}, refuse(ErrUsernameLength, UsernameTooLong)
	}
	if err := p.checkChars(mapped); err != nil {
		return Username{}, err
	}
	if !uts39.HighlyRestrictive(mapped) {
		return Username{}, refuse(ErrUsernameChars, UsernameMixedScript)
	}
	key := skeletonKey(mapped)
	if len(key) > MaxField {
		return Username{}, refuse(ErrUsernameLength, UsernameTooLong)
	}
	for _, r := range p.Reserved {
		f := reservedFormOf(r)
		switch {
		case !f.ok:
		case f.mapped == mapped:
			return Username{}, refuse(ErrUsernameReserved, UsernameReserved)
		case f.key == key:
			return Username{}, refuse(ErrUsernameReserved, UsernameConfusable)
		}
	}
	return Username{Display: safeDisplay(display, mapped, key), Key: key}, nil
}

// reservedForm is a reserved name's case-mapped form and skeleton key.
type reservedForm struct {
	mapped, key string
	ok          bool // false: the name has no case-mapped form (it matches nothing)
}

// reservedForms remembers reservedForm by reserved name: they are the
// operator's few names, and computing them for every signup was most of
// Check's time (21 default names, each through PRECIS and the UTS #39
// skeleton). At most maxReservedForms are kept; beyond that they are
// computed each time, as before.
var (
	reservedForms     sync.Map // string -> reservedForm
	reservedFormCount atomic.Int64
)

const maxReservedForms = 4096

func reservedFormOf(r string) reservedForm {
	if f, ok := reservedForms.Load(r); ok {
		return f.(reservedForm)
	}
	var f reservedForm
	if rm, err := precis.UsernameCaseMapped.String(r); err == nil {
		f = reservedForm{mapped: rm, key: skeletonKey(rm), ok: true}
	}
	if reservedFormCount.Load() < maxReservedForms {
		if _, loaded := reservedForms.LoadOrStore(r, f); !loaded {
			reservedFormCount.Add(1)
		}
	}
	return f
}

// checkChars applies the character rules to the mapped form.
func (p UsernamePolicy) checkChars(mapped string) error {
	prevPunct := true // a name may not start with punctuation
	for _, r := range mapped {
		isPunct := strings.ContainsRune(p.Punctuation, r)
		switch {
		case isPunct:
			if prevPunct {
				return refuse(ErrUsernameChars, UsernameMisplacedPunctuation)
			}
		case r >= '0' && r <= '9':
		case unicode.IsLetter(r):
			if p.ASCIIOnly && (r < 'a' || r > 'z') {
				return refuse(ErrUsernameChars, UsernameDisallowedCharacter)
			}
			if !letterAllowed(r) {
				return refuse(ErrUsernameChars, UsernameDisallowedCharacter)
			}
		default:
			// Digits of other scripts, marks, symbols, spaces, controls and
			// bidi controls (PRECIS already refuses most of these).
			return refuse(ErrUsernameChars, UsernameDisallowedCharacter)
		}
		prevPunct = isPunct
	}
	if prevPunct {
		return refuse(ErrUsernameChars, UsernameMisplacedPunctuation)
	}
	return nil
}

// letterAllowed: a letter of a script recommended for identifiers, or the
// one Common letter Japanese names need (the prolonged sound mark "ー",
// whose Script_Extensions are Hiragana and Katakana).
func letterAllowed(r rune) bool {
	if r == 0x30FC {
		return true
	}
	return uts39.Recommended(uts39.Script(r))
}

// keyFolds are applied to the lowercased skeleton. Each merges look-alikes
// that the skeleton keeps apart but that case makes identical, so that a
// capitalised name can keep its capitals (see Username.Display): the
// skeleton maps capital "I" to "l" but "i" to itself, "m" to "rn" but "M"
// to itself, Cyrillic "в" to a small capital "ʙ" but "В" to "B", Greek "μ"
// to itself but "Μ" to "M", and so on. Folding only ever merges keys: names
// whose displays share a skeleton still share a key.
var keyFolds = strings.NewReplacer(
	"i", "l", // I, l, 1, Cyrillic і and ӏ, Turkish ı
	"rn", "m", // m, M
	// Cyrillic в/В, н/Н, т/Т, к/К, м/М, ь/Ь, и/И, я/Я, з/З, л/Л, г/Г, б/Б,
	// ю/Ю, ә/Ә; Greek κ/Κ, τ/Τ, ε/Ε, φ/Φ, δ/Δ, ζ/Ζ, λ/Λ, μ/Μ, χ/Χ.
	"ʙ", "b", "ʜ", "h", "ᴛ", "t", "ĸ", "k", "ʍ", "m", "ƅ", "b", "ᴎ", "и", "ᴙ", "я",
	"ɜ", "3", "ȝ", "3", "л", "ʌ", "γ", "r", "b\u0304", "6", "ю", "lo", "ǝ", "ə",
	"ꞓ", "e", "ɸ", "φ", "ẟ", "δ", "ζ", "z", "λ", "ʌ", "μ", "m", "χ", "x",
)

// skeletonKey is the key of a case-mapped name: its UTS #39 skeleton,
// lowercased (so "0", whose prototype is "O", meets "o"), with keyFolds.
func skeletonKey(mapped string) string {
	return keyFolds.Replace(strings.ToLower(uts39.Skeleton(mapped)))
}

// UsernameKey returns the Key that Check gives name, without applying any
// policy rule other than PRECIS mapping (which refuses what no policy
// could accept). Use it to find an account by a name someone typed, or to
// compute the key of a name registered under an older policy.
func UsernameKey(name string) (string, error) {
	mapped, err := precis.UsernameCaseMapped.String(name)
	if err != nil {
		return "", refuse(ErrUsernameChars, UsernameDisallowedCharacter)
	}
	return skeletonKey(mapped), nil
}

// safeDisplay returns display (a case variant of mapped) if its key, as
// its own skeleton sees it, is key, else mapped: equal skeletons of two
// displays then mean equal keys.
func safeDisplay(display, mapped, key string) string {
	if skeletonKey(display) == key {
		return display
	}
	return mapped
}

// RegisteredName is a username as a Store holds it (Account.ID,
// Account.Username, Account.UsernameKey).
type RegisteredName struct {
	AccountID, Display, Key string
}

// KeyCollision is a group of registered names that share one key under the
// current key scheme (Key): they look alike.
type KeyCollision struct {
	Key   string
	Names []RegisteredName // sorted by AccountID
}

// RefusedName is a registered name that the policy would refuse today.
type RefusedName struct {
	Name   RegisteredName
	Reason string // a Username* reason
}

// KeyReport is what moving registered names to the current key scheme
// would meet; see ReportKeys.
type KeyReport struct {
	// Names is the number of names read; Changed how many of them have a
	// key that differs from the one stored.
	Names, Changed int
	// Collisions are the groups of two or more names that would share a
	// key, sorted by key. A store cannot hold them under the new key as
	// they are: someone has to decide (a rename, or keep the old key for
	// them).
	Collisions []KeyCollision
	// Refused are names the policy would refuse if registered today
	// (sorted by AccountID). They stay registered: this is information.
	Refused []RefusedName
	// Unmappable are names whose key cannot be computed (neither the
	// display nor the stored key passes PRECIS); they keep their key.
	Unmappable []RegisteredName
}

// ReportKeys reads registered names (from a store scan) and reports, for a
// migration of the stores to the skeleton keys of UsernameKey, which names
// would collide and which the policy would refuse today. It changes and
// deletes nothing. Memory grows with the number of names.
func (p UsernamePolicy) ReportKeys(names iter.Seq[RegisteredName]) KeyReport {
	var rep KeyReport
	byKey := map[string][]RegisteredName{}
	for n := range names {
		rep.Names++
		key, err := UsernameKey(n.Display)
		if err != nil {
			if key, err = UsernameKey(n.Key); err != nil {
				rep.Unmappable = append(rep.Unmappable, n)
				continue
			}
		}
		if key != n.Key {
			rep.Changed++
		}
		byKey[key] = append(byKey[key], n)
		if _, err := p.Check(n.Display); err != nil {
			rep.Refused = append(rep.Refused, RefusedName{Name: n, Reason: UsernameReason(err)})
		}
	}
	for key, group := range byKey {
		if len(group) > 1 {
			slices.SortFunc(group, func(a, b RegisteredName) int { return cmp.Compare(a.AccountID, b.AccountID) })
			rep.Collisions = append(rep.Collisions, KeyCollision{Key: key, Names: group})
		}
	}
	slices.SortFunc(rep.Collisions, func(a, b KeyCollision) int { return cmp.Compare(a.Key, b.Key) })
	slices.SortFunc(rep.Refused, func(a, b RefusedName) int { return cmp.Compare(a.Name.AccountID, b.Name.AccountID) })
	slices.SortFunc(rep.Unmappable, func(a, b RegisteredName) int { return cmp.Compare(a.AccountID, b.AccountID) })
	return rep
}
