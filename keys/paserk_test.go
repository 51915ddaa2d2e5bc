package keys

import (
	"bytes"
	"crypto/ed25519"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"strings"
	"testing"
	"time"
)

// fixtures holds one key of each kind and their wrapped forms, made with
// small Argon2 costs and a seeded random source.
type fixtures struct {
	sk       *SecretKey
	lk       *LocalKey
	wk       *WrappingKey
	password []byte
	params   Argon2Params

	secretPW, localPW, secretPIE, localPIE string
}

func testRand(seed byte) io.Reader {
	var s [32]byte
	s[0] = seed
	return rand.NewChaCha8(s)
}

func newFixtures(t testing.TB) *fixtures {
	t.Helper()
	f := &fixtures{password: []byte("correct horse battery staple"), params: testArgon2Small}
	var err error
	if f.sk, err = SecretKeyFromEd25519(ed25519.NewKeyFromSeed(bytes.Repeat([]byte{0x42}, 32))); err != nil {
		t.Fatal(err)
	}
	if f.lk, err = GenerateLocalKey(testRand(1)); err != nil {
		t.Fatal(err)
	}
	if f.wk, err = GenerateWrappingKey(testRand(2)); err != nil {
		t.Fatal(err)
	}
	if f.secretPW, err = WrapSecretPassword(f.sk, f.password, f.params, testRand(3)); err != nil {
		t.Fatal(err)
	}
	if f.localPW, err = WrapLocalPassword(f.lk, f.password, f.params, testRand(4)); err != nil {
		t.Fatal(err)
	}
	if f.secretPIE, err = WrapSecretPIE(f.sk, f.wk, testRand(5)); err != nil {
		t.Fatal(err)
	}
	if f.localPIE, err = WrapLocalPIE(f.lk, f.wk, testRand(6)); err != nil {
		t.Fatal(err)
	}
	return f
}

// decoder is one Parse*/Unwrap* entry point, reduced to "decode this string".
type decoder struct {
	name   string
	prefix string
	valid  string // a string it accepts
	decode func(s string) error
}

func (f *fixtures) decoders() []decoder {
	pub := f.sk.PublicKey()
	return []decoder{
		{"public", prefixPublic, pub.PASERK(), func(s string) error { _, err := ParsePublicKey(s); return err }},
		{"secret", prefixSecret, f.sk.PlaintextPASERK(), func(s string) error { _, err := ParseSecretKey(s); return err }},
		{"local", prefixLocal, f.lk.PlaintextPASERK(), func(s string) error { _, err := ParseLocalKey(s); return err }},
		{"pid", prefixPID, string(pub.ID()), func(s string) error { _, err := ParseKeyID(s, "pid"); return err }},
		{"sid", prefixSID, string(f.sk.SecretID()), func(s string) error { _, err := ParseKeyID(s, "sid"); return err }},
		{"lid", prefixLID, string(f.lk.ID()), func(s string) error { _, err := ParseKeyID(s, "lid"); return err }},
		{"secret-pw", prefixSecretPW, f.secretPW, func(s string) error {
			_, err := UnwrapSecretPassword(s, f.password, DefaultArgon2Limits)
			return err
		}},
		{"local-pw", prefixLocalPW, f.localPW, func(s string) error {
			_, err := UnwrapLocalPassword(s, f.password, DefaultArgon2Limits)
			return err
		}},
		{"secret-wrap.pie", prefixSecretWrap, f.secretPIE, func(s string) error { _, err := UnwrapSecretPIE(s, f.wk); return err }},
		{"local-wrap.pie", prefixLocalWrap, f.localPIE, func(s string) error { _, err := UnwrapLocalPIE(s, f.wk); return err }},
	}
}

// checkNoLeak fails if msg carries any 8-character piece of the PASERK body
// or of a secret.
func checkNoLeak(t *testing.T, msg string, secrets ...string) {
	t.Helper()
	for _, s := range secrets {
		for i := 0; i+8 <= len(s); i++ {
			if strings.Contains(msg, s[i:i+8]) {
				t.Fatalf("error message %q leaks input %q", msg, s[i:i+8])
			}
		}
	}
}

func body(s string) string {
	if i := strings.LastIndexByte(s, '.'); i >= 0 {
		return s[i+1:]
	}
	return s
}

// setTrailingBit returns s with a non-zero unused low bit in its last
// base64 character, or "" when the body length leaves no unused bits.
func setTrailingBit(s string) string {
	unused := map[int]int{2: 4, 3: 2}[len(body(s))%4] // chars mod 4 -> unused bits
	if unused == 0 {
		return ""
	}
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	last := strings.IndexByte(alphabet, s[len(s)-1])
	return s[:len(s)-1] + string(alphabet[last|1])
}

func TestDecodeRejects(t *testing.T) {
	f := newFixtures(t)
	for _, d := range f.decoders() {
		t.Run(d.name, func(t *testing.T) {
			if err := d.decode(d.valid); err != nil {
				t.Fatalf("valid input: %v", err)
			}
			k3 := "k3" + strings.TrimPrefix(d.valid, "k4")
			cases := []struct {
				name  string
				input string
				want  error
			}{
				{"empty", "", ErrWrongType},
				{"wrong version", k3, ErrWrongType},
				{"prefix without dot", strings.TrimSuffix(d.prefix, "."), ErrWrongType},
				{"upper case prefix", strings.ToUpper(d.prefix) + body(d.valid), ErrWrongType},
				{"leading space", " " + d.valid, ErrWrongType},
				{"prefix only", d.prefix, ErrMalformed},
				{"truncated by one", d.valid[:len(d.valid)-1], ErrMalformed},
				{"truncated by four", d.valid[:len(d.valid)-4], ErrMalformed},
				{"extended by four", d.valid + "AAAA", ErrMalformed},
				{"oversized", d.prefix + strings.Repeat("A", 4*maxPASERKLen), ErrMalformed},
				{"padding", d.valid + "=", ErrMalformed},
				{"standard alphabet", d.prefix + "+" + body(d.valid)[1:], ErrMalformed},
				{"trailing newline", d.valid + "\n", ErrMalformed},
				{"embedded CRLF", d.valid[:len(d.prefix)+4] + "\r\n" + d.valid[len(d.prefix)+4:], ErrMalformed},
				{"trailing space", d.valid + " ", ErrMalformed},
				{"NUL", d.valid[:len(d.valid)-1] + "\x00", ErrMalformed},
			}
			if nc := setTrailingBit(d.valid); nc != "" {
				cases = append(cases, struct {
					name  string
					input string
					want  error
				}{"non-canonical trailing bits", nc, ErrMalformed})
			}
			for _, others := range f.decoders() {
				if others.name != d.name {
					cases = append(cases, struct {
						name  string
						input string
						want  error
					}{"type " + others.name, others.valid, ErrWrongType})
				}
			}
			for _, tc := range cases {
				t.Run(tc.name, func(t *testing.T) {
					err := d.decode(tc.input)
					if !errors.Is(err, tc.want) {
						t.Fatalf("err = %v, want %v", err, tc.want)
					}
					checkNoLeak(t, err.Error(), body(tc.input), body(d.valid), string(f.password))
				})
			}
		})
	}
}

// TestCRLFRegression: encoding/base64 skips CR and LF even in Strict mode,
// so "k4.pid.<id>\n" used to parse and be returned with the newline.
func TestCRLFRegression(t *testing.T) {
	f := newFixtures(t)
	id := string(f.sk.ID())
	for _, s := range []string{id + "\n", id + "\r", id[:10] + "\n" + id[10:]} {
		if got, err := ParseKeyID(s, "pid"); !errors.Is(err, ErrMalformed) {
			t.Errorf("ParseKeyID(%q) = %q, %v; want ErrMalformed", s, got, err)
		}
	}
	pk := f.sk.PublicKey().PASERK()
	if _, err := ParsePublicKey(pk[:20] + "\r\n" + pk[20:]); !errors.Is(err, ErrMalformed) {
		t.Errorf("ParsePublicKey with CRLF: %v", err)
	}
}

// flip returns the PASERK s with one bit flipped at byte offset off of its
// decoded body (negative: from the end).
func flip(t *testing.T, s, prefix string, off int, bit byte) string {
	t.Helper()
	raw, err := b64.DecodeString(strings.TrimPrefix(s, prefix))
	if err != nil {
		t.Fatal(err)
	}
	if off < 0 {
		off += len(raw)
	}
	raw[off] ^= bit
	return prefix + b64.EncodeToString(raw)
}

func TestUnwrapTampered(t *testing.T) {
	f := newFixtures(t)
	pwNonce := pwSaltLen + pwParamsLen
	pwEDK := pwNonce + pwNonceLen
	type target struct {
		name   string
		valid  string
		prefix string
		decode func(s string) error
	}
	targets := []target{
		{"secret-pw", f.secretPW, prefixSecretPW, func(s string) error {
			_, err := UnwrapSecretPassword(s, f.password, DefaultArgon2Limits)
			return err
		}},
		{"local-pw", f.localPW, prefixLocalPW, func(s string) error {
			_, err := UnwrapLocalPassword(s, f.password, DefaultArgon2Limits)
			return err
		}},
		{"secret-wrap.pie", f.secretPIE, prefixSecretWrap, func(s string) error { _, err := UnwrapSecretPIE(s, f.wk); return err }},
		{"local-wrap.pie", f.localPIE, prefixLocalWrap, func(s string) error { _, err := UnwrapLocalPIE(s, f.wk); return err }},
	}
	for _, tg := range targets {
		var offsets map[string]int
		if strings.HasSuffix(tg.name, "-pw") {
			offsets = map[string]int{
				"salt first": 0, "salt last": pwSaltLen - 1,
				// Time 1 -> 3: still within limits, so only the tag can catch it.
				"time":        pwSaltLen + 8 + 3,
				"nonce first": pwNonce, "nonce last": pwEDK - 1,
				"ciphertext first": pwEDK, "ciphertext last": -pwTagLen - 1,
				"tag first": -pwTagLen, "tag last": -1,
			}
		} else {
			offsets = map[string]int{
				"tag first": 0, "tag last": pieTagLen - 1,
				"nonce first": pieTagLen, "nonce last": pieOverhead - 1,
				"ciphertext first": pieOverhead, "ciphertext last": -1,
			}
		}
		for part, off := range offsets {
			bits := []byte{0x01, 0x80}
			if part == "time" {
				bits = []byte{0x02, 0x08} // 1 -> 3, 1 -> 9: within the limits
			}
			for _, bit := range bits {
				t.Run(fmt.Sprintf("%s/%s/%#x", tg.name, part, bit), func(t *testing.T) {
					s := flip(t, tg.valid, tg.prefix, off, bit)
					err := tg.decode(s)
					if !errors.Is(err, ErrUnwrap) {
						t.Fatalf("err = %v, want ErrUnwrap", err)
					}
					checkNoLeak(t, err.Error(), body(s), string(f.password))
				})
			}
		}
	}
}

func TestUnwrapWrongSecret(t *testing.T) {
	f := newFixtures(t)
	otherWK, err := WrappingKeyFromBytes(bytes.Repeat([]byte{7}, 32))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		run  func() error
	}{
		{"secret-pw wrong password", func() error {
			_, err := UnwrapSecretPassword(f.secretPW, []byte("Correct horse battery staple"), DefaultArgon2Limits)
			return err
		}},
		{"secret-pw empty password", func() error {
			_, err := UnwrapSecretPassword(f.secretPW, nil, DefaultArgon2Limits)
			return err
		}},
		{"local-pw wrong password", func() error {
			_, err := UnwrapLocalPassword(f.localPW, []byte("correct horse battery stapl"), DefaultArgon2Limits)
			return err
		}},
		{"secret-pie wrong key", func() error { _, err := UnwrapSecretPIE(f.secretPIE, otherWK); return err }},
		{"local-pie wrong key", func() error { _, err := UnwrapLocalPIE(f.localPIE, otherWK); return err }},
		// The header is under the tag: a body wrapped under one header does
		// not open under another of the same length.
		{"pie header swap", func() error {
			s, err := wrapPIE(prefixLocalWrap, f.sk.k, f.wk, nil)
			if err != nil {
				return err
			}
			_, err = UnwrapSecretPIE(prefixSecretWrap+body(s), f.wk)
			return err
		}},
		{"pw header swap", func() error {
			s, err := wrapPassword(prefixLocalPW, f.sk.k, f.password, f.params, nil)
			if err != nil {
				return err
			}
			_, err = UnwrapSecretPassword(prefixSecretPW+body(s), f.password, DefaultArgon2Limits)
			return err
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.run()
			if !errors.Is(err, ErrUnwrap) {
				t.Fatalf("err = %v, want ErrUnwrap", err)
			}
			checkNoLeak(t, err.Error(), body(f.secretPW), body(f.localPW), body(f.secretPIE), body(f.localPIE), string(f.password))
		})
	}
}

// withParams rewrites the Argon2 costs stored in a pw PASERK (the tag then no
// longer matches; the costs must be rejected before it is even computed).
func withParams(t *testing.T, s, prefix string, p Argon2Params) string {
	t.Helper()
	raw, err := b64.DecodeString(strings.TrimPrefix(s, prefix))
	if err != nil {
		t.Fatal(err)
	}
	enc := raw[pwSaltLen : pwSaltLen+pwParamsLen]
	binary.BigEndian.PutUint64(enc[0:8], p.Memory)
	binary.BigEndian.PutUint32(enc[8:12], p.Time)
	binary.BigEndian.PutUint32(enc[12:16], p.Parallelism)
	return prefix + b64.EncodeToString(raw)
}

func TestUnwrapPasswordParams(t *testing.T) {
	f := newFixtures(t)
	small := Argon2Limits{MaxMemory: 32 << 10, MaxTime: 1, MaxParallelism: 1}
	tests := []struct {
		name   string
		params Argon2Params
		lim    Argon2Limits
		want   error
	}{
		{"memory above default limit", Argon2Params{Memory: 2 << 30, Time: 1, Parallelism: 1}, DefaultArgon2Limits, ErrParams},
		{"memory above zero-value limit", Argon2Params{Memory: 2 << 30, Time: 1, Parallelism: 1}, Argon2Limits{}, ErrParams},
		{"memory far above limit", Argon2Params{Memory: 1 << 62, Time: 1, Parallelism: 1}, DefaultArgon2Limits, ErrParams},
		{"memory max uint64", Argon2Params{Memory: ^uint64(0) &^ 1023, Time: 1, Parallelism: 1}, Argon2Limits{MaxMemory: ^uint64(0), MaxTime: ^uint32(0), MaxParallelism: ^uint32(0)}, ErrParams},
		{"time above limit", Argon2Params{Memory: 64 << 10, Time: 11, Parallelism: 1}, DefaultArgon2Limits, ErrParams},
		{"time max", Argon2Params{Memory: 64 << 10, Time: ^uint32(0), Parallelism: 1}, DefaultArgon2Limits, ErrParams},
		{"parallelism above limit", Argon2Params{Memory: 64 << 10, Time: 1, Parallelism: 17}, DefaultArgon2Limits, ErrParams},
		{"parallelism above uint8", Argon2Params{Memory: 64 << 20, Time: 1, Parallelism: 256}, Argon2Limits{MaxMemory: 1 << 40, MaxTime: 10, MaxParallelism: 1000}, ErrParams},
		{"custom limit memory", Argon2Params{Memory: 64 << 10, Time: 1, Parallelism: 1}, small, ErrParams},
		{"zero memory", Argon2Params{Memory: 0, Time: 1, Parallelism: 1}, DefaultArgon2Limits, ErrParams},
		{"memory below 8 KiB", Argon2Params{Memory: 4 << 10, Time: 1, Parallelism: 1}, DefaultArgon2Limits, ErrParams},
		{"memory below 8 KiB per lane", Argon2Params{Memory: 16 << 10, Time: 1, Parallelism: 4}, DefaultArgon2Limits, ErrParams},
		{"memory not whole KiB", Argon2Params{Memory: 64<<10 + 1, Time: 1, Parallelism: 1}, DefaultArgon2Limits, ErrParams},
		{"zero time", Argon2Params{Memory: 64 << 10, Time: 0, Parallelism: 1}, DefaultArgon2Limits, ErrParams},
		{"zero parallelism", Argon2Params{Memory: 64 << 10, Time: 1, Parallelism: 0}, DefaultArgon2Limits, ErrParams},
		// Within limits but not what was wrapped: the tag catches it.
		{"changed but allowed", Argon2Params{Memory: 128 << 10, Time: 1, Parallelism: 1}, DefaultArgon2Limits, ErrUnwrap},
		{"more lanes but allowed", Argon2Params{Memory: 64 << 10, Time: 1, Parallelism: 2}, DefaultArgon2Limits, ErrUnwrap},
	}
	for _, tc := range tests {
		for _, typ := range []struct {
			prefix, valid string
			unwrap        func(s string, lim Argon2Limits) error
		}{
			{prefixSecretPW, f.secretPW, func(s string, lim Argon2Limits) error {
				_, err := UnwrapSecretPassword(s, f.password, lim)
				return err
			}},
			{prefixLocalPW, f.localPW, func(s string, lim Argon2Limits) error {
				_, err := UnwrapLocalPassword(s, f.password, lim)
				return err
			}},
		} {
			t.Run(typ.prefix+tc.name, func(t *testing.T) {
				s := withParams(t, typ.valid, typ.prefix, tc.params)
				start := time.Now()
				err := typ.unwrap(s, tc.lim)
				if !errors.Is(err, tc.want) {
					t.Fatalf("err = %v, want %v", err, tc.want)
				}
				// Rejected costs must not be computed: a 2 GiB Argon2 run
				// would take seconds (and the 1<<62 one would never end).
				if tc.want == ErrParams && time.Since(start) > time.Second {
					t.Errorf("ErrParams took %v: Argon2 ran?", time.Since(start))
				}
				checkNoLeak(t, err.Error(), body(s), string(f.password))
			})
		}
	}

	// The limits themselves: the fixture's costs pass exact limits and the
	// zero value (defaults).
	exact := Argon2Limits{MaxMemory: f.params.Memory, MaxTime: f.params.Time, MaxParallelism: f.params.Parallelism}
	for _, lim := range []Argon2Limits{exact, {}} {
		if _, err := UnwrapLocalPassword(f.localPW, f.password, lim); err != nil {
			t.Errorf("limits %+v: %v", lim, err)
		}
	}
}

func TestWrapPasswordParams(t *testing.T) {
	f := newFixtures(t)
	bad := []Argon2Params{
		{Memory: 64<<10 + 512, Time: 1, Parallelism: 1},
		{Memory: 4 << 10, Time: 1, Parallelism: 1},
		{Memory: 64 << 10, Time: 0, Parallelism: 1},
		{Memory: 64 << 10, Time: 1, Parallelism: 0},
		{Memory: 64 << 20, Time: 1, Parallelism: 256},
		{Memory: 8 << 10, Time: 1, Parallelism: 2},
		{Memory: 1 << 62, Time: 1, Parallelism: 1},
	}
	for _, p := range bad {
		if _, err := WrapSecretPassword(f.sk, f.password, p, nil); !errors.Is(err, ErrParams) {
			t.Errorf("WrapSecretPassword(%+v): %v, want ErrParams", p, err)
		}
		if _, err := WrapLocalPassword(f.lk, f.password, p, nil); !errors.Is(err, ErrParams) {
			t.Errorf("WrapLocalPassword(%+v): %v, want ErrParams", p, err)
		}
	}

	// The zero value stands for DefaultArgon2Params, and the costs are
	// stored big-endian with memory in bytes.
	s, err := WrapLocalPassword(f.lk, f.password, Argon2Params{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := b64.DecodeString(strings.TrimPrefix(s, prefixLocalPW))
	if err != nil {
		t.Fatal(err)
	}
	want := make([]byte, 16)
	binary.BigEndian.PutUint64(want[0:8], DefaultArgon2Params.Memory)
	binary.BigEndian.PutUint32(want[8:12], DefaultArgon2Params.Time)
	binary.BigEndian.PutUint32(want[12:16], DefaultArgon2Params.Parallelism)
	if got := raw[pwSaltLen : pwSaltLen+pwParamsLen]; !bytes.Equal(got, want) {
		t.Errorf("stored params %x, want %x", got, want)
	}
	if DefaultArgon2Params.Memory < 19<<20 || DefaultArgon2Params.Time < 2 {
		t.Errorf("DefaultArgon2Params %+v below the OWASP minimum", DefaultArgon2Params)
	}
	if !DefaultArgon2Limits.allow(DefaultArgon2Params) {
		t.Error("DefaultArgon2Limits reject DefaultArgon2Params")
	}
}

func TestWrapRoundTripAndFreshness(t *testing.T) {
	f := newFixtures(t)
	seen := map[string]bool{}
	for i := range 3 {
		for name, s := range map[string]func() (string, error){
			"secret-pw":  func() (string, error) { return WrapSecretPassword(f.sk, f.password, f.params, nil) },
			"local-pw":   func() (string, error) { return WrapLocalPassword(f.lk, f.password, f.params, nil) },
			"secret-pie": func() (string, error) { return WrapSecretPIE(f.sk, f.wk, nil) },
			"local-pie":  func() (string, error) { return WrapLocalPIE(f.lk, f.wk, nil) },
		} {
			out, err := s()
			if err != nil {
				t.Fatalf("%s #%d: %v", name, i, err)
			}
			if seen[out] {
				t.Fatalf("%s: the same string twice: salt or nonce reused", name)
			}
			seen[out] = true
		}
	}
	sk, err := UnwrapSecretPassword(f.secretPW, f.password, DefaultArgon2Limits)
	if err != nil || !sk.Equal(f.sk) || sk.ID() != f.sk.ID() {
		t.Fatalf("secret-pw: %v", err)
	}
	lk, err := UnwrapLocalPassword(f.localPW, f.password, DefaultArgon2Limits)
	if err != nil || !lk.Equal(f.lk) || lk.ID() != f.lk.ID() {
		t.Fatalf("local-pw: %v", err)
	}
	sk, err = UnwrapSecretPIE(f.secretPIE, f.wk)
	if err != nil || !sk.Equal(f.sk) {
		t.Fatalf("secret-pie: %v", err)
	}
	lk, err = UnwrapLocalPIE(f.localPIE, f.wk)
	if err != nil || !lk.Equal(f.lk) {
		t.Fatalf("local-pie: %v", err)
	}
	// Empty passwords are the caller's policy; the format handles them.
	s, err := WrapLocalPassword(f.lk, nil, f.params, nil)
	if err != nil {
		t.Fatal(err)
	}
	if lk, err := UnwrapLocalPassword(s, []byte{}, DefaultArgon2Limits); err != nil || !lk.Equal(f.lk) {
		t.Fatalf("empty password: %v", err)
	}
}

// A wrapped Ed25519 key whose stored public half does not belong to its
// seed is authentic (the tag matches) but not a valid key.
func TestUnwrapSecretMismatchedPublicHalf(t *testing.T) {
	f := newFixtures(t)
	bad := bytes.Clone(f.sk.k)
	bad[63] ^= 1
	pie, err := wrapPIE(prefixSecretWrap, bad, f.wk, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := UnwrapSecretPIE(pie, f.wk); !errors.Is(err, ErrInvalidKey) {
		t.Errorf("pie: err = %v, want ErrInvalidKey", err)
	}
	pw, err := wrapPassword(prefixSecretPW, bad, f.password, f.params, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := UnwrapSecretPassword(pw, f.password, DefaultArgon2Limits); !errors.Is(err, ErrInvalidKey) {
		t.Errorf("pw: err = %v, want ErrInvalidKey", err)
	}
}

func TestWrapInvalidKeys(t *testing.T) {
	f := newFixtures(t)
	tests := []struct {
		name string
		run  func() error
	}{
		{"secret-pw nil key", func() error { _, err := WrapSecretPassword(nil, f.password, f.params, nil); return err }},
		{"secret-pw zero key", func() error { _, err := WrapSecretPassword(&SecretKey{}, f.password, f.params, nil); return err }},
		{"local-pw nil key", func() error { _, err := WrapLocalPassword(nil, f.password, f.params, nil); return err }},
		{"local-pw zero key", func() error { _, err := WrapLocalPassword(&LocalKey{}, f.password, f.params, nil); return err }},
		{"secret-pie nil key", func() error { _, err := WrapSecretPIE(nil, f.wk, nil); return err }},
		{"secret-pie zero key", func() error { _, err := WrapSecretPIE(&SecretKey{}, f.wk, nil); return err }},
		{"secret-pie nil wrapping key", func() error { _, err := WrapSecretPIE(f.sk, nil, nil); return err }},
		{"local-pie nil key", func() error { _, err := WrapLocalPIE(nil, f.wk, nil); return err }},
		{"local-pie zero key", func() error { _, err := WrapLocalPIE(&LocalKey{}, f.wk, nil); return err }},
		{"local-pie nil wrapping key", func() error { _, err := WrapLocalPIE(f.lk, nil, nil); return err }},
		{"unwrap secret-pie nil wrapping key", func() error { _, err := UnwrapSecretPIE(f.secretPIE, nil); return err }},
		{"unwrap local-pie nil wrapping key", func() error { _, err := UnwrapLocalPIE(f.localPIE, nil); return err }},
		{"short wrapping key", func() error { _, err := WrappingKeyFromBytes(make([]byte, 31)); return err }},
		{"long wrapping key", func() error { _, err := WrappingKeyFromBytes(make([]byte, 33)); return err }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.run(); !errors.Is(err, ErrInvalidKey) {
				t.Fatalf("err = %v, want ErrInvalidKey", err)
			}
		})
	}
}

var errBrokenRand = errors.New("test: entropy source failed")

type brokenReader struct{ after int } // serves `after` bytes, then fails

func (r *brokenReader) Read(p []byte) (int, error) {
	if r.after <= 0 {
		return 0, errBrokenRand
	}
	n := min(len(p), r.after)
	clear(p[:n])
	r.after -= n
	return n, nil
}

func TestBrokenRandom(t *testing.T) {
	f := newFixtures(t)
	ops := []struct {
		name string
		max  int // bytes the operation reads
		run  func(r io.Reader) error
	}{
		{"GenerateSecretKey", 32, func(r io.Reader) error { _, err := GenerateSecretKey(r); return err }},
		{"GenerateLocalKey", 32, func(r io.Reader) error { _, err := GenerateLocalKey(r); return err }},
		{"GenerateWrappingKey", 32, func(r io.Reader) error { _, err := GenerateWrappingKey(r); return err }},
		{"WrapSecretPassword", pwSaltLen + pwNonceLen, func(r io.Reader) error {
			_, err := WrapSecretPassword(f.sk, f.password, f.params, r)
			return err
		}},
		{"WrapLocalPassword", pwSaltLen + pwNonceLen, func(r io.Reader) error {
			_, err := WrapLocalPassword(f.lk, f.password, f.params, r)
			return err
		}},
		{"WrapSecretPIE", pieNonceLen, func(r io.Reader) error { _, err := WrapSecretPIE(f.sk, f.wk, r); return err }},
		{"WrapLocalPIE", pieNonceLen, func(r io.Reader) error { _, err := WrapLocalPIE(f.lk, f.wk, r); return err }},
	}
	for _, op := range ops {
		// Fail at the first byte, in the middle (e.g. after the salt) and
		// at the last one: never a result built on partial randomness.
		for _, after := range []int{0, 1, pwSaltLen, op.max - 1} {
			if after >= op.max {
				continue
			}
			t.Run(fmt.Sprintf("%s/after%d", op.name, after), func(t *testing.T) {
				err := op.run(&brokenReader{after: after})
				if err == nil {
					t.Fatal("no error from a failing random source")
				}
				if !errors.Is(err, errBrokenRand) && !errors.Is(err, io.ErrUnexpectedEOF) {
					t.Fatalf("err = %v, want the reader's error", err)
				}
			})
		}
		t.Run(op.name+"/enough", func(t *testing.T) {
			if err := op.run(&brokenReader{after: op.max}); err != nil {
				t.Fatalf("with exactly %d bytes: %v", op.max, err)
			}
		})
	}
}

// TestSecretsNotPrinted: every way of printing or logging a secret key shows
// its id and nothing of the key.
func TestSecretsNotPrinted(t *testing.T) {
	f := newFixtures(t)
	seed := f.sk.k.Seed()
	lraw := f.lk.UnsafeBytes()
	wraw := f.wk.UnsafeBytes()
	forbidden := []string{
		hex.EncodeToString(seed), hex.EncodeToString(lraw), hex.EncodeToString(wraw),
		b64.EncodeToString(seed), b64.EncodeToString(lraw), b64.EncodeToString(wraw),
		body(f.sk.PlaintextPASERK()), body(f.lk.PlaintextPASERK()),
		strings.TrimSuffix(fmt.Sprint(seed[:8]), "]"), // "[66 66 ...", as %d prints
		strings.TrimSuffix(fmt.Sprint(lraw[:8]), "]"),
		strings.TrimSuffix(fmt.Sprint(wraw[:8]), "]"),
		fmt.Sprintf("%x", seed[:8]), fmt.Sprintf("%x", lraw[:8]), fmt.Sprintf("%x", wraw[:8]),
	}
	skID, lkID := string(f.sk.ID()), string(f.lk.ID())
	values := []struct {
		name string
		v    any
		want string // exact %v output
	}{
		{"*SecretKey", f.sk, "keys.SecretKey(" + skID + ")"},
		{"SecretKey", *f.sk, "keys.SecretKey(" + skID + ")"},
		{"*LocalKey", f.lk, "keys.LocalKey(" + lkID + ")"},
		{"LocalKey", *f.lk, "keys.LocalKey(" + lkID + ")"},
		{"*WrappingKey", f.wk, "keys.WrappingKey(redacted)"},
		{"WrappingKey", *f.wk, "keys.WrappingKey(redacted)"},
	}
	for _, tc := range values {
		t.Run(tc.name, func(t *testing.T) {
			for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q"} {
				out := fmt.Sprintf(verb, tc.v)
				want := tc.want
				if verb == "%q" {
					want = fmt.Sprintf("%q", tc.want)
				}
				if out != want {
					t.Errorf("%s: %q, want %q", verb, out, want)
				}
			}
			for _, verb := range []string{"%x", "%X", "%d"} { // not Stringer verbs for all types
				checkPrinted(t, verb, fmt.Sprintf(verb, tc.v), forbidden)
			}
			var buf bytes.Buffer
			slog.New(slog.NewJSONHandler(&buf, nil)).Info("msg", "key", tc.v)
			slog.New(slog.NewTextHandler(&buf, nil)).Info("msg", "key", tc.v)
			checkPrinted(t, "slog", buf.String(), forbidden)
			if strings.Contains(tc.name, "SecretKey") && !strings.Contains(buf.String(), skID) {
				t.Errorf("slog output lacks the key id: %s", buf.String())
			}
		})
	}
	// Inside a struct and a slice, as a config or ring would hold them.
	type holder struct {
		Key   *SecretKey
		Local *LocalKey
		Wrap  *WrappingKey
		Keys  []*SecretKey
	}
	h := holder{f.sk, f.lk, f.wk, []*SecretKey{f.sk}}
	for _, verb := range []string{"%v", "%+v", "%#v"} {
		checkPrinted(t, "holder "+verb, fmt.Sprintf(verb, h), forbidden)
	}
}

func checkPrinted(t *testing.T, what, out string, forbidden []string) {
	t.Helper()
	for _, s := range forbidden {
		if strings.Contains(out, s) {
			t.Errorf("%s output %q contains key material", what, out)
		}
	}
}
