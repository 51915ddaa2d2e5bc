package keys

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
)

// Official PASERK vectors (paseto-standard/test-vectors), pinned by the
// checksums in testdata/vectors/paseto/SOURCES.md. When a checkout of the
// shared vector set sits at sharedVectorDir, TestVectorFilesProvenance also
// checks that the copies here are byte-identical to it; without it, only the
// checksums.
// k4.seal.json is deliberately not read: hallpass does not implement k4.seal.
const (
	vectorDir       = "../testdata/vectors/paseto"
	sharedVectorDir = "../../shared/vectors/paseto"
)

type vectorFile struct {
	Name  string       `json:"name"`
	Tests []vectorCase `json:"tests"`
}

type vectorCase struct {
	Name          string         `json:"name"`
	ExpectFail    bool           `json:"expect-fail"`
	Comment       string         `json:"comment"`
	Key           *string        `json:"key"`
	Paserk        *string        `json:"paserk"`
	SecretKeySeed string         `json:"secret-key-seed"`
	Seed          string         `json:"seed"`
	PublicKey     *string        `json:"public-key"`
	Unwrapped     *string        `json:"unwrapped"`
	WrappingKey   string         `json:"wrapping-key"`
	Password      string         `json:"password"`
	Options       *vectorOptions `json:"options"`
}

type vectorOptions struct {
	Memlimit   uint64 `json:"memlimit"`   // Argon2id memory in BYTES
	Opslimit   uint32 `json:"opslimit"`   // Argon2id passes
	Iterations uint32 `json:"iterations"` // PBKDF2 (k1/k3), only in wrong-version cases
}

// vectorCounts is the number of cases per file (SOURCES.md); a changed file
// must not silently drop cases.
var vectorCounts = map[string]int{
	"k4.public": 4, "k4.secret": 5, "k4.pid": 5, "k4.sid": 4, "k4.lid": 4, "k4.local": 5,
	"k4.local-wrap.pie": 4, "k4.secret-wrap.pie": 4, "k4.local-pw": 6, "k4.secret-pw": 6,
}

// vectorFailErr is the sentinel each expect-fail case must produce. A new
// expect-fail case without an entry fails the test, so it gets looked at.
var vectorFailErr = map[string]error{
	"k4.public-fail-1":          ErrInvalidKey, // 49-byte (P-384) key
	"k4.secret-fail-1":          ErrInvalidKey, // short key
	"k4.secret-fail-2":          ErrInvalidKey, // 49-byte (P-384) key
	"k4.pid-fail-1":             ErrInvalidKey, // short key
	"k4.pid-fail-2":             ErrInvalidKey, // 49-byte (P-384) key
	"k4.sid-fail-1":             ErrInvalidKey, // 49-byte (P-384) key
	"k4.lid-fail-1":             ErrMalformed,  // short key
	"k4.local-fail-1":           ErrMalformed,  // short PASERK
	"k4.local-fail-2":           ErrWrongType,  // k3.local
	"k4.local-wrap.pie-fail-1":  ErrUnwrap,     // bad tag
	"k4.local-wrap.pie-fail-2":  ErrWrongType,  // k3.local-wrap.pie
	"k4.secret-wrap.pie-fail-1": ErrMalformed,  // bad tag, but also non-canonical base64 (see TestVectorsTamperedCanonical)
	"k4.secret-wrap.pie-fail-2": ErrWrongType,  // k3.secret-wrap.pie
	"k4.local-pw-fail-1":        ErrUnwrap,     // wrong password
	"k4.local-pw-fail-2":        ErrUnwrap,     // bad tag
	"k4.local-pw-fail-3":        ErrWrongType,  // k3.local-pw
	"k4.secret-pw-fail-1":       ErrUnwrap,     // wrong password
	"k4.secret-pw-fail-2":       ErrMalformed,  // bad tag, but also non-canonical base64 (see TestVectorsTamperedCanonical)
	"k4.secret-pw-fail-3":       ErrWrongType,  // k3.secret-pw
}

func loadVectors(t *testing.T, typ string) []vectorCase {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(vectorDir, typ+".json"))
	if err != nil {
		t.Fatal(err)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields() // a new field may carry a new rule
	var f vectorFile
	if err := dec.Decode(&f); err != nil {
		t.Fatalf("%s: %v", typ, err)
	}
	if want := vectorCounts[typ]; len(f.Tests) != want {
		t.Fatalf("%s: %d cases, want %d", typ, len(f.Tests), want)
	}
	return f.Tests
}

func unhex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatalf("bad hex in vector: %v", err)
	}
	return b
}

func deref(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

// checkFail asserts that a failing vector failed with its expected sentinel.
func checkFail(t *testing.T, name string, err error) {
	t.Helper()
	want, ok := vectorFailErr[name]
	if !ok {
		t.Fatalf("no expected error recorded for expect-fail case %s (got %v)", name, err)
	}
	if !errors.Is(err, want) {
		t.Fatalf("err = %v, want %v", err, want)
	}
}

// runVectors runs fn for every case of a file as a subtest, and checks that
// expect-fail cases fail with the expected sentinel.
func runVectors(t *testing.T, typ string, parallel bool, fn func(t *testing.T, c vectorCase) error) {
	for _, c := range loadVectors(t, typ) {
		t.Run(c.Name, func(t *testing.T) {
			if parallel {
				t.Parallel()
			}
			err := fn(t, c)
			if c.ExpectFail {
				checkFail(t, c.Name, err)
			} else if err != nil {
				t.Fatalf("unexpected error: %v", err)
			}
		})
	}
}

func TestVectorsPublic(t *testing.T) {
	runVectors(t, "k4.public", false, func(t *testing.T, c vectorCase) error {
		pk, err := PublicKeyFromEd25519(unhex(t, deref(c.Key)))
		if err != nil {
			return err
		}
		if got := pk.PASERK(); got != deref(c.Paserk) {
			t.Errorf("PASERK() = %q, want %q", got, deref(c.Paserk))
		}
		parsed, err := ParsePublicKey(deref(c.Paserk))
		if err != nil {
			return err
		}
		if !parsed.Equal(pk) || !bytes.Equal(parsed.Ed25519(), unhex(t, deref(c.Key))) {
			t.Error("parsed key differs from the vector key")
		}
		text, err := parsed.MarshalText()
		if err != nil || string(text) != deref(c.Paserk) {
			t.Errorf("MarshalText = %q, %v", text, err)
		}
		return nil
	})
}

func TestVectorsSecret(t *testing.T) {
	runVectors(t, "k4.secret", false, func(t *testing.T, c vectorCase) error {
		sk, err := SecretKeyFromEd25519(unhex(t, deref(c.Key)))
		if err != nil {
			return err
		}
		if got := sk.PlaintextPASERK(); got != deref(c.Paserk) {
			t.Errorf("PlaintextPASERK() = %q, want %q", got, deref(c.Paserk))
		}
		fromSeed, err := SecretKeyFromEd25519(ed25519.NewKeyFromSeed(unhex(t, c.SecretKeySeed)))
		if err != nil || !fromSeed.Equal(sk) {
			t.Errorf("key from seed differs: %v", err)
		}
		if !bytes.Equal(sk.PublicKey().Ed25519(), unhex(t, deref(c.PublicKey))) {
			t.Error("public half differs from the vector")
		}
		parsed, err := ParseSecretKey(deref(c.Paserk))
		if err != nil {
			return err
		}
		if !parsed.Equal(sk) {
			t.Error("parsed key differs from the vector key")
		}
		return nil
	})
}

func TestVectorsPID(t *testing.T) {
	runVectors(t, "k4.pid", false, func(t *testing.T, c vectorCase) error {
		pk, err := PublicKeyFromEd25519(unhex(t, deref(c.Key)))
		if err != nil {
			return err
		}
		if got := pk.ID(); got != KeyID(deref(c.Paserk)) {
			t.Errorf("ID() = %q, want %q", got, deref(c.Paserk))
		}
		id, err := ParseKeyID(deref(c.Paserk), "pid")
		if err != nil {
			return err
		}
		if id != pk.ID() {
			t.Errorf("ParseKeyID = %q", id)
		}
		return nil
	})
}

func TestVectorsSID(t *testing.T) {
	runVectors(t, "k4.sid", false, func(t *testing.T, c vectorCase) error {
		sk, err := SecretKeyFromEd25519(unhex(t, deref(c.Key)))
		if err != nil {
			return err
		}
		if got := sk.SecretID(); got != KeyID(deref(c.Paserk)) {
			t.Errorf("SecretID() = %q, want %q", got, deref(c.Paserk))
		}
		if !bytes.Equal(sk.k.Seed(), unhex(t, c.Seed)) {
			t.Error("seed differs from the vector")
		}
		id, err := ParseKeyID(deref(c.Paserk), "sid")
		if err != nil {
			return err
		}
		if id != sk.SecretID() {
			t.Errorf("ParseKeyID = %q", id)
		}
		return nil
	})
}

func TestVectorsLID(t *testing.T) {
	runVectors(t, "k4.lid", false, func(t *testing.T, c vectorCase) error {
		// The only way to a LocalKey from raw bytes is its PASERK: a short key
		// fails there.
		lk, err := ParseLocalKey(prefixLocal + b64.EncodeToString(unhex(t, deref(c.Key))))
		if err != nil {
			return err
		}
		if got := lk.ID(); got != KeyID(deref(c.Paserk)) {
			t.Errorf("ID() = %q, want %q", got, deref(c.Paserk))
		}
		id, err := ParseKeyID(deref(c.Paserk), "lid")
		if err != nil {
			return err
		}
		if id != lk.ID() {
			t.Errorf("ParseKeyID = %q", id)
		}
		return nil
	})
}

func TestVectorsLocal(t *testing.T) {
	runVectors(t, "k4.local", false, func(t *testing.T, c vectorCase) error {
		lk, err := ParseLocalKey(deref(c.Paserk))
		if err != nil {
			return err
		}
		if !bytes.Equal(lk.UnsafeBytes(), unhex(t, deref(c.Key))) {
			t.Error("parsed key differs from the vector key")
		}
		if got := lk.PlaintextPASERK(); got != deref(c.Paserk) {
			t.Errorf("PlaintextPASERK() = %q, want %q", got, deref(c.Paserk))
		}
		return nil
	})
}

func TestVectorsLocalWrapPIE(t *testing.T) {
	runVectors(t, "k4.local-wrap.pie", false, func(t *testing.T, c vectorCase) error {
		w, err := WrappingKeyFromBytes(unhex(t, c.WrappingKey))
		if err != nil {
			t.Fatal(err)
		}
		lk, err := UnwrapLocalPIE(deref(c.Paserk), w)
		if err != nil {
			return err
		}
		if !bytes.Equal(lk.UnsafeBytes(), unhex(t, deref(c.Unwrapped))) {
			t.Fatal("unwrapped key differs from the vector")
		}
		s, err := WrapLocalPIE(lk, w, nil)
		if err != nil {
			t.Fatal(err)
		}
		if s == deref(c.Paserk) || !strings.HasPrefix(s, prefixLocalWrap) {
			t.Errorf("re-wrap gave %q: want a fresh nonce", s)
		}
		back, err := UnwrapLocalPIE(s, w)
		if err != nil || !back.Equal(lk) {
			t.Fatalf("round trip: %v", err)
		}
		return nil
	})
}

func TestVectorsSecretWrapPIE(t *testing.T) {
	runVectors(t, "k4.secret-wrap.pie", false, func(t *testing.T, c vectorCase) error {
		w, err := WrappingKeyFromBytes(unhex(t, c.WrappingKey))
		if err != nil {
			t.Fatal(err)
		}
		sk, err := UnwrapSecretPIE(deref(c.Paserk), w)
		if err != nil {
			return err
		}
		if !bytes.Equal(sk.k, unhex(t, deref(c.Unwrapped))) {
			t.Fatal("unwrapped key differs from the vector")
		}
		s, err := WrapSecretPIE(sk, w, nil)
		if err != nil {
			t.Fatal(err)
		}
		if s == deref(c.Paserk) || !strings.HasPrefix(s, prefixSecretWrap) {
			t.Errorf("re-wrap gave %q: want a fresh nonce", s)
		}
		back, err := UnwrapSecretPIE(s, w)
		if err != nil || !back.Equal(sk) {
			t.Fatalf("round trip: %v", err)
		}
		return nil
	})
}

// TestVectorsTamperedCanonical: two "bad tag" vectors were edited in their
// last base64 character and so set trailing bits; the strict decoder rejects
// them as ErrMalformed before any MAC is computed. Re-encoded canonically,
// they must still fail on the tag.
func TestVectorsTamperedCanonical(t *testing.T) {
	t.Parallel()
	canonical := func(t *testing.T, s, prefix string) string {
		t.Helper()
		body := strings.TrimPrefix(s, prefix)
		raw, err := b64.DecodeString(body) // lenient: ignores trailing bits
		if err != nil {
			t.Fatal(err)
		}
		c := prefix + b64.EncodeToString(raw)
		if c == s {
			t.Fatal("vector is already canonical; update vectorFailErr")
		}
		return c
	}
	for _, c := range loadVectors(t, "k4.secret-wrap.pie") {
		if c.Name != "k4.secret-wrap.pie-fail-1" {
			continue
		}
		w, err := WrappingKeyFromBytes(unhex(t, c.WrappingKey))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := UnwrapSecretPIE(canonical(t, deref(c.Paserk), prefixSecretWrap), w); !errors.Is(err, ErrUnwrap) {
			t.Errorf("%s canonical: err = %v, want ErrUnwrap", c.Name, err)
		}
	}
	for _, c := range loadVectors(t, "k4.secret-pw") {
		if c.Name != "k4.secret-pw-fail-2" {
			continue
		}
		if _, err := unwrapSecretPassword(canonical(t, deref(c.Paserk), prefixSecretPW), []byte(c.Password), DefaultArgon2Limits, vectorKDF.kdf); !errors.Is(err, ErrUnwrap) {
			t.Errorf("%s canonical: err = %v, want ErrUnwrap", c.Name, err)
		}
	}
}

// vectorParams returns the Argon2id costs of a pw vector and checks that the
// PASERK body encodes exactly them (memlimit in bytes, big-endian).
func vectorParams(t *testing.T, c vectorCase, prefix string) Argon2Params {
	t.Helper()
	p := Argon2Params{Memory: c.Options.Memlimit, Time: c.Options.Opslimit, Parallelism: 1}
	s := deref(c.Paserk)
	if !strings.HasPrefix(s, prefix) {
		return p // wrong-version case
	}
	raw, err := b64.DecodeString(strings.TrimPrefix(s, prefix))
	if err != nil || len(raw) < pwSaltLen+pwParamsLen {
		t.Fatalf("vector body: %v", err)
	}
	enc := raw[pwSaltLen : pwSaltLen+pwParamsLen]
	got := Argon2Params{
		Memory:      binary.BigEndian.Uint64(enc[0:8]),
		Time:        binary.BigEndian.Uint32(enc[8:12]),
		Parallelism: binary.BigEndian.Uint32(enc[12:16]),
	}
	if got != p {
		t.Fatalf("encoded params %+v, options say %+v", got, p)
	}
	return p
}

// Password vectors: the password is the literal string (even where it looks
// like hex). A 256 MiB Argon2id takes seconds under -race and several cases
// share password, salt and costs (a "bad tag" case reuses a good one's), so
// the vectors run in parallel through the real code with a memoising KDF:
// each distinct Argon2id input is computed once. Round trips use small
// costs, except one at a vector's own (64 MiB) costs.
var testArgon2Small = Argon2Params{Memory: 64 << 10, Time: 1, Parallelism: 1}

type kdfMemo struct {
	mu sync.Mutex
	m  map[string]*kdfEntry
}

type kdfEntry struct {
	once sync.Once
	k    []byte
}

var vectorKDF = &kdfMemo{m: map[string]*kdfEntry{}}

func (c *kdfMemo) kdf(password, salt []byte, p Argon2Params) []byte {
	key := fmt.Sprintf("%x|%x|%d|%d|%d", password, salt, p.Memory, p.Time, p.Parallelism)
	c.mu.Lock()
	e, ok := c.m[key]
	if !ok {
		e = &kdfEntry{}
		c.m[key] = e
	}
	c.mu.Unlock()
	e.once.Do(func() { e.k = argon2idKey(password, salt, p) })
	return bytes.Clone(e.k) // the caller wipes its copy
}

func TestVectorsLocalPW(t *testing.T) {
	runVectors(t, "k4.local-pw", true, func(t *testing.T, c vectorCase) error {
		p := vectorParams(t, c, prefixLocalPW)
		lk, err := unwrapLocalPassword(deref(c.Paserk), []byte(c.Password), DefaultArgon2Limits, vectorKDF.kdf)
		if err != nil {
			return err
		}
		if !bytes.Equal(lk.UnsafeBytes(), unhex(t, deref(c.Unwrapped))) {
			t.Fatal("unwrapped key differs from the vector")
		}
		rt := testArgon2Small
		if p.Memory <= 64<<20 {
			rt = p
			// The cheap vector also goes through the exported function.
			pub, err := UnwrapLocalPassword(deref(c.Paserk), []byte(c.Password), DefaultArgon2Limits)
			if err != nil || !pub.Equal(lk) {
				t.Fatalf("UnwrapLocalPassword: %v", err)
			}
		}
		s, err := WrapLocalPassword(lk, []byte(c.Password), rt, nil)
		if err != nil {
			t.Fatal(err)
		}
		back, err := UnwrapLocalPassword(s, []byte(c.Password), DefaultArgon2Limits)
		if err != nil || !back.Equal(lk) {
			t.Fatalf("round trip: %v", err)
		}
		vectorParams(t, vectorCase{Paserk: &s, Options: &vectorOptions{Memlimit: rt.Memory, Opslimit: rt.Time}}, prefixLocalPW)
		return nil
	})
}

func TestVectorsSecretPW(t *testing.T) {
	runVectors(t, "k4.secret-pw", true, func(t *testing.T, c vectorCase) error {
		p := vectorParams(t, c, prefixSecretPW)
		sk, err := unwrapSecretPassword(deref(c.Paserk), []byte(c.Password), DefaultArgon2Limits, vectorKDF.kdf)
		if err != nil {
			return err
		}
		if !bytes.Equal(sk.k, unhex(t, deref(c.Unwrapped))) {
			t.Fatal("unwrapped key differs from the vector")
		}
		rt := testArgon2Small
		if p.Memory <= 64<<20 {
			rt = p
			pub, err := UnwrapSecretPassword(deref(c.Paserk), []byte(c.Password), DefaultArgon2Limits)
			if err != nil || !pub.Equal(sk) {
				t.Fatalf("UnwrapSecretPassword: %v", err)
			}
		}
		s, err := WrapSecretPassword(sk, []byte(c.Password), rt, nil)
		if err != nil {
			t.Fatal(err)
		}
		back, err := UnwrapSecretPassword(s, []byte(c.Password), DefaultArgon2Limits)
		if err != nil || !back.Equal(sk) {
			t.Fatalf("round trip: %v", err)
		}
		vectorParams(t, vectorCase{Paserk: &s, Options: &vectorOptions{Memlimit: rt.Memory, Opslimit: rt.Time}}, prefixSecretPW)
		return nil
	})
}

// sourcesRow matches a file row of SOURCES.md's table:
// | name | source path | blob | commit | `sha256prefix…` |
var sourcesRow = regexp.MustCompile("(?m)^\\| ([^ |]+\\.json) \\|.*\\| `([0-9a-f]{16})…` \\|$")

// TestVectorFilesProvenance: every vector file is listed in SOURCES.md with
// the sha256 it was copied with, and is byte-identical to the shared copy
// when shared/ sits beside the checkout.
func TestVectorFilesProvenance(t *testing.T) {
	src, err := os.ReadFile(filepath.Join(vectorDir, "SOURCES.md"))
	if err != nil {
		t.Fatal(err)
	}
	listed := map[string]string{}
	for _, m := range sourcesRow.FindAllStringSubmatch(string(src), -1) {
		listed[m[1]] = m[2]
	}
	// Files the code depends on must be present, listed and unchanged.
	required := []string{"v4.json", "k4.seal.json"}
	for typ := range vectorCounts {
		required = append(required, typ+".json")
	}
	for _, name := range required {
		if _, ok := listed[name]; !ok {
			t.Errorf("%s is not listed in SOURCES.md", name)
		}
		if _, err := os.Stat(filepath.Join(vectorDir, name)); err != nil {
			t.Errorf("%s listed in SOURCES.md but missing: %v", name, err)
		}
	}

	// SOURCES.md records v1-v3 for provenance, but hallpass speaks v4 only
	// and they were not copied. Anything else listed must be present.
	notCopied := map[string]bool{"v1.json": true, "v2.json": true, "v3.json": true}
	for name := range listed {
		if _, err := os.Stat(filepath.Join(vectorDir, name)); err != nil && !notCopied[name] {
			t.Errorf("%s listed in SOURCES.md but missing: %v", name, err)
		}
	}

	entries, err := os.ReadDir(vectorDir)
	if err != nil {
		t.Fatal(err)
	}
	_, sharedErr := os.Stat(sharedVectorDir)
	haveShared := sharedErr == nil
	for _, e := range entries {
		name := e.Name()
		b, err := os.ReadFile(filepath.Join(vectorDir, name))
		if err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(b)
		if name != "SOURCES.md" {
			want, ok := listed[name]
			if !ok {
				t.Errorf("%s is not listed in SOURCES.md", name)
			} else if got := hex.EncodeToString(sum[:])[:16]; got != want {
				t.Errorf("%s: sha256 %s…, SOURCES.md says %s…", name, got, want)
			}
		}
		if haveShared {
			sb, err := os.ReadFile(filepath.Join(sharedVectorDir, name))
			if err != nil {
				t.Errorf("%s: no shared copy: %v", name, err)
				continue
			}
			if sha256.Sum256(sb) != sum {
				t.Errorf("%s differs from %s", name, filepath.Join(sharedVectorDir, name))
			}
		}
	}
	if haveShared {
		shared, err := os.ReadDir(sharedVectorDir)
		if err != nil {
			t.Fatal(err)
		}
		if len(shared) != len(entries) {
			t.Errorf("%d files in %s, %d in %s", len(shared), sharedVectorDir, len(entries), vectorDir)
		}
	} else {
		t.Logf("%s not present: only SOURCES.md checksums checked", sharedVectorDir)
	}
}
