package keys

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
)

// TestPepperDigest: Digest is HMAC-SHA-256 under the pepper's 32 bytes (the
// semantics flow.StaticPepper has), checked against the standard library
// and a fixed vector, and the stored form round-trips.
func TestPepperDigest(t *testing.T) {
	raw := bytes.Repeat([]byte{0x07}, 32)
	var b [32]byte
	copy(b[:], raw)
	p, err := PepperFromLocalKey(newLocalKey(b))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		msg  []byte
	}{
		{"empty", nil},
		{"link code", []byte("hallpass link code\x00ABCD1234EFGH")},
		{"long", bytes.Repeat([]byte("x"), 1000)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := hmac.New(sha256.New, raw)
			m.Write(tc.msg)
			if got, want := p.Digest(tc.msg), m.Sum(nil); !bytes.Equal(got, want) {
				t.Fatalf("Digest = %x, want %x", got, want)
			}
		})
	}
	// Fixed vector, computed independently with
	// printf abc | openssl dgst -sha256 -mac HMAC -macopt hexkey:0707...07
	const want = "127da4ced6a839b8f6118bc244684d2663e70cb5ff0adeefca89d7e74d5a0525"
	if got := hex.EncodeToString(p.Digest([]byte("abc"))); got != want {
		t.Fatalf("Digest(abc) = %s, want %s", got, want)
	}

	again, err := PepperFromLocalKey(p.UnsafeLocalKey())
	if err != nil || !again.Equal(p) || again.ID() != p.ID() {
		t.Fatal("stored form does not round-trip")
	}
	other, _ := GeneratePepper(nil)
	if other.Equal(p) || p.Equal(nil) || (*Pepper)(nil).Equal(p) {
		t.Fatal("Equal")
	}
	if _, err := PepperFromLocalKey(nil); !errors.Is(err, ErrInvalidKey) {
		t.Fatalf("nil stored form: %v", err)
	}
	if _, err := GeneratePepper(&brokenReader{after: 5}); err == nil {
		t.Fatal("a broken random source made a pepper")
	}
}

// TestPepperNotPrinted: every way of printing or logging a pepper shows
// its id and nothing of its bytes.
func TestPepperNotPrinted(t *testing.T) {
	p, err := GeneratePepper(testRand(9))
	if err != nil {
		t.Fatal(err)
	}
	raw := p.UnsafeLocalKey().UnsafeBytes()
	forbidden := []string{
		hex.EncodeToString(raw), b64.EncodeToString(raw), body(p.UnsafeLocalKey().PlaintextPASERK()),
		strings.TrimSuffix(fmt.Sprint(raw[:8]), "]"), fmt.Sprintf("%x", raw[:8]),
	}
	want := "keys.Pepper(" + string(p.ID()) + ")"
	for _, v := range []any{p, *p, struct{ P *Pepper }{p}, []*Pepper{p}} {
		for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%X", "%d"} {
			out := fmt.Sprintf(verb, v)
			checkPrinted(t, verb, out, forbidden)
			if verb == "%v" && !strings.Contains(out, want) {
				t.Errorf("%%v = %q, want it to show %q", out, want)
			}
		}
		var buf bytes.Buffer
		slog.New(slog.NewJSONHandler(&buf, nil)).Info("msg", "pepper", v)
		slog.New(slog.NewTextHandler(&buf, nil)).Info("msg", "pepper", v)
		checkPrinted(t, "slog", buf.String(), forbidden)
	}
	if s := fmt.Sprint(Pepper{}); s != "keys.Pepper()" {
		t.Fatalf("zero Pepper prints %q", s)
	}
}
