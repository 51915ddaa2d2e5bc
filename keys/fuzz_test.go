package keys

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// fuzzLimits keep each Argon2 run in the fuzzer at 64 KiB and one pass; any
// larger stored cost must end in ErrParams without hashing.
var fuzzLimits = Argon2Limits{MaxMemory: 64 << 10, MaxTime: 1, MaxParallelism: 1}

const fuzzCorpusDir = "testdata/fuzz/FuzzParsePASERK"

// fuzzWrapKey is the wrapping key of the official PIE vectors, so that their
// seeds open and the fuzzer starts from inputs that pass the tag.
var fuzzWrapKey = mustWrappingKey("707172737475767778797a7b7c7d7e7f808182838485868788898a8b8c8d8e8f")

func mustWrappingKey(h string) *WrappingKey {
	b := make([]byte, 32)
	for i := range b {
		v, err := strconv.ParseUint(h[2*i:2*i+2], 16, 8)
		if err != nil {
			panic(err)
		}
		b[i] = byte(v)
	}
	w, err := WrappingKeyFromBytes(b)
	if err != nil {
		panic(err)
	}
	return w
}

var fuzzPassword = []byte("correct horse battery staple")

// FuzzParsePASERK feeds one string to every decoder of untrusted PASERK
// text. None may panic; every failure must be one of the package sentinels
// and must not echo the input; every success must be canonical.
func FuzzParsePASERK(f *testing.F) {
	// Strings that pass the tag under fuzzWrapKey / fuzzPassword with costs
	// inside fuzzLimits; the committed corpus holds the official vectors.
	fx := newFixtures(f)
	for i, sk := range []*SecretKey{fx.sk} {
		pw, err := WrapSecretPassword(sk, fuzzPassword, testArgon2Small, testRand(byte(10+i)))
		if err != nil {
			f.Fatal(err)
		}
		pie, err := WrapSecretPIE(sk, fuzzWrapKey, testRand(byte(20+i)))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(pw)
		f.Add(pie)
	}
	lpw, err := WrapLocalPassword(fx.lk, fuzzPassword, testArgon2Small, testRand(30))
	if err != nil {
		f.Fatal(err)
	}
	lpie, err := WrapLocalPIE(fx.lk, fuzzWrapKey, testRand(31))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(lpw)
	f.Add(lpie)

	f.Fuzz(func(t *testing.T, s string) {
		check := func(what string, err error, canonical func() string) {
			t.Helper()
			if err != nil {
				if !errors.Is(err, ErrInvalidKey) && !errors.Is(err, ErrWrongType) &&
					!errors.Is(err, ErrMalformed) && !errors.Is(err, ErrUnwrap) && !errors.Is(err, ErrParams) {
					t.Fatalf("%s: non-sentinel error %v", what, err)
				}
				if b := body(s); len(b) >= 8 && strings.Contains(err.Error(), b) {
					t.Fatalf("%s: error echoes the input", what)
				}
				return
			}
			if got := canonical(); got != s {
				t.Fatalf("%s: accepted %q, re-encodes as %q", what, s, got)
			}
		}

		pk, err := ParsePublicKey(s)
		check("ParsePublicKey", err, func() string {
			if id, err := ParseKeyID(string(pk.ID()), "pid"); err != nil || id != pk.ID() {
				t.Fatalf("ID %q does not parse: %v", pk.ID(), err)
			}
			return pk.PASERK()
		})
		var pk2 PublicKey
		err = pk2.UnmarshalText([]byte(s))
		check("UnmarshalText", err, func() string {
			b, err := pk2.MarshalText()
			if err != nil {
				t.Fatal(err)
			}
			return string(b)
		})

		sk, err := ParseSecretKey(s)
		check("ParseSecretKey", err, func() string { return sk.PlaintextPASERK() })

		lk, err := ParseLocalKey(s)
		check("ParseLocalKey", err, func() string { return lk.PlaintextPASERK() })

		for _, kind := range []string{"pid", "sid", "lid", "xid", ""} {
			id, err := ParseKeyID(s, kind)
			check("ParseKeyID "+kind, err, func() string {
				raw, err := b64.DecodeString(body(string(id)))
				if err != nil || len(raw) != 33 {
					t.Fatalf("ParseKeyID accepted %q (%d bytes, %v)", id, len(raw), err)
				}
				return s[:strings.LastIndexByte(s, '.')+1] + b64.EncodeToString(raw)
			})
		}

		// Wrapped forms are randomised: a successful unwrap must give a key
		// that round-trips through its plaintext form and re-wraps.
		usk, err := UnwrapSecretPassword(s, fuzzPassword, fuzzLimits)
		check("UnwrapSecretPassword", err, func() string { checkSecret(t, usk); return s })
		ulk, err := UnwrapLocalPassword(s, fuzzPassword, fuzzLimits)
		check("UnwrapLocalPassword", err, func() string { checkLocal(t, ulk); return s })
		usk, err = UnwrapSecretPIE(s, fuzzWrapKey)
		check("UnwrapSecretPIE", err, func() string { checkSecret(t, usk); return s })
		ulk, err = UnwrapLocalPIE(s, fuzzWrapKey)
		check("UnwrapLocalPIE", err, func() string { checkLocal(t, ulk); return s })
	})
}

func checkSecret(t *testing.T, sk *SecretKey) {
	t.Helper()
	back, err := ParseSecretKey(sk.PlaintextPASERK())
	if err != nil || !back.Equal(sk) || back.ID() != sk.ID() {
		t.Fatalf("unwrapped secret key does not round-trip: %v", err)
	}
	pie, err := WrapSecretPIE(sk, fuzzWrapKey, nil)
	if err != nil {
		t.Fatal(err)
	}
	if again, err := UnwrapSecretPIE(pie, fuzzWrapKey); err != nil || !again.Equal(sk) {
		t.Fatalf("re-wrap: %v", err)
	}
}

func checkLocal(t *testing.T, lk *LocalKey) {
	t.Helper()
	back, err := ParseLocalKey(lk.PlaintextPASERK())
	if err != nil || !back.Equal(lk) || back.ID() != lk.ID() {
		t.Fatalf("unwrapped local key does not round-trip: %v", err)
	}
}

// TestFuzzCorpusHasVectors: every official vector string is a committed seed
// of FuzzParsePASERK, and every seed file is well formed.
func TestFuzzCorpusHasVectors(t *testing.T) {
	entries, err := os.ReadDir(fuzzCorpusDir)
	if err != nil {
		t.Fatal(err)
	}
	seeds := map[string]bool{}
	for _, e := range entries {
		b, err := os.ReadFile(filepath.Join(fuzzCorpusDir, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		lines := strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
		if len(lines) != 2 || lines[0] != "go test fuzz v1" ||
			!strings.HasPrefix(lines[1], "string(") || !strings.HasSuffix(lines[1], ")") {
			t.Fatalf("%s: not a one-string corpus file", e.Name())
		}
		v, err := strconv.Unquote(strings.TrimSuffix(strings.TrimPrefix(lines[1], "string("), ")"))
		if err != nil {
			t.Fatalf("%s: %v", e.Name(), err)
		}
		seeds[v] = true
	}
	n := 0
	for typ := range vectorCounts {
		for _, c := range loadVectors(t, typ) {
			if c.Paserk == nil {
				continue
			}
			n++
			if !seeds[*c.Paserk] {
				t.Errorf("vector %s is not a fuzz seed", c.Name)
			}
		}
	}
	if n == 0 {
		t.Fatal("no vector strings found")
	}
}
