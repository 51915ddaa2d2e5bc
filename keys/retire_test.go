package keys_test

import (
	"bytes"
	"testing"

	"github.com/hallpass/hallpass/keys"
	"github.com/hallpass/hallpass/token"
	"github.com/hallpass/hallpass/verifier"
)

// DefaultRetiredKeep is spelled out in keys (which imports neither token
// nor verifier); it must stay the longest token lifetime plus the
// verifier's default leeway.
func TestDefaultRetiredKeep(t *testing.T) {
	if want := token.MaxTTL + verifier.DefaultLeeway; keys.DefaultRetiredKeep != want {
		t.Fatalf("DefaultRetiredKeep = %v, want token.MaxTTL + verifier.DefaultLeeway = %v", keys.DefaultRetiredKeep, want)
	}
}

func TestUnsafeDeriveKey(t *testing.T) {
	w, err := keys.WrappingKeyFromBytes(bytes.Repeat([]byte{1}, 32))
	if err != nil {
		t.Fatal(err)
	}
	a, err := w.UnsafeDeriveKey("revocation/entry-mac/v1")
	if err != nil {
		t.Fatal(err)
	}
	a2, _ := w.UnsafeDeriveKey("revocation/entry-mac/v1")
	b, _ := w.UnsafeDeriveKey("redisring/state-mac/v1")
	switch {
	case len(a) != 32 || len(b) != 32:
		t.Fatalf("derived lengths %d, %d", len(a), len(b))
	case !bytes.Equal(a, a2):
		t.Fatal("derivation is not deterministic")
	case bytes.Equal(a, b):
		t.Fatal("two purposes gave one key")
	case bytes.Equal(a, w.UnsafeBytes()):
		t.Fatal("derived key is the wrapping key")
	}
	if _, err := w.UnsafeDeriveKey(""); err == nil {
		t.Fatal("empty purpose accepted")
	}
}
