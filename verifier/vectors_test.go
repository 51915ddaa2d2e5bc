package verifier

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/hallpass/hallpass/keys"
	"github.com/hallpass/hallpass/token"
)

// TestV4VectorsRejected runs the official PASETO v4 vectors through
// Verifier.Verify, trusting the vectors' public key: every expect-fail case
// is rejected, and so are the success cases, which are valid PASETO but not
// hallpass tokens (no footer kid that is a k4.pid). token's tests check that
// the success cases verify at the PASETO layer.
func TestV4VectorsRejected(t *testing.T) {
	data, err := os.ReadFile("../testdata/vectors/paseto/v4.json")
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Tests []struct {
			Name       string `json:"name"`
			ExpectFail bool   `json:"expect-fail"`
			PublicKey  string `json:"public-key"`
			Token      string `json:"token"`
		} `json:"tests"`
	}
	if err := json.Unmarshal(data, &doc); err != nil {
		t.Fatal(err)
	}
	var pk keys.PublicKey
	for _, v := range doc.Tests {
		if strings.HasPrefix(v.Name, "4-S-") {
			raw, err := hex.DecodeString(v.PublicKey)
			if err != nil {
				t.Fatal(err)
			}
			if pk, err = keys.PublicKeyFromEd25519(raw); err != nil {
				t.Fatal(err)
			}
			break
		}
	}
	ks, err := NewStaticKeySet(pk)
	if err != nil {
		t.Fatal(err)
	}
	v, err := New(ks, testIss, testAud, WithClock(func() time.Time { return time.Date(2021, 1, 1, 0, 0, 0, 0, time.UTC) }))
	if err != nil {
		t.Fatal(err)
	}
	var nF, nS int
	for _, vec := range doc.Tests {
		if !strings.HasPrefix(vec.Name, "4-F-") && !strings.HasPrefix(vec.Name, "4-S-") {
			continue
		}
		if strings.HasPrefix(vec.Name, "4-F-") {
			nF++
			if !vec.ExpectFail {
				t.Fatalf("%s is not expect-fail", vec.Name)
			}
		} else {
			nS++
		}
		t.Run(vec.Name, func(t *testing.T) {
			c, err := v.Verify(context.Background(), vec.Token)
			if err == nil || c != nil {
				t.Fatalf("accepted: %+v", c)
			}
			if !errors.Is(err, ErrTokenInvalid) || Code(err) != CodeInvalidToken {
				t.Fatalf("err = %v (code %s)", err, Code(err))
			}
			assertNoLeak(t, err, vec.Token)
			if strings.HasPrefix(vec.Name, "4-F-") {
				if _, _, err := token.VerifyV4Public(pk, vec.Token, nil); err == nil {
					t.Fatal("token.VerifyV4Public accepted it")
				}
			}
		})
	}
	if nF != 5 || nS != 3 {
		t.Fatalf("ran %d expect-fail and %d success vectors, want 5 and 3", nF, nS)
	}
}
