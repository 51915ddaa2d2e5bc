package verifier

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/hallpass/hallpass/keys"
)

func published(sk *keys.SecretKey, st keys.Status) keys.PublishedKey {
	return keys.PublishedKey{Kid: sk.ID(), Key: sk.PublicKey().PASERK(), Status: st}
}

func keySetJSON(t testing.TB, iss string, ks []keys.PublishedKey, revoked []keys.KeyID) []byte {
	t.Helper()
	b, err := json.Marshal(keys.KeySetDocument{Issuer: iss, Keys: ks, Revoked: revoked})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestParseKeySet(t *testing.T) {
	cur, next, ret, rev, stranger := testKey(t, 1), testKey(t, 2), testKey(t, 3), testKey(t, 4), testKey(t, 5)
	good := keySetJSON(t, testIss, []keys.PublishedKey{
		published(cur, keys.StatusCurrent), published(next, keys.StatusNext), published(ret, keys.StatusRetired),
	}, []keys.KeyID{rev.ID()})
	goodStr := string(good)
	entry := func(kid keys.KeyID, key, status string) string {
		return `{"kid":"` + string(kid) + `","key":"` + key + `","status":"` + status + `"}`
	}
	doc := func(entries ...string) []byte {
		return []byte(`{"issuer":"` + testIss + `","keys":[` + strings.Join(entries, ",") + `],"revoked":[]}`)
	}
	curEntry := entry(cur.ID(), cur.PublicKey().PASERK(), "current")

	tests := []struct {
		name string
		data []byte
		iss  string
		ok   bool
	}{
		{"valid", good, testIss, true},
		{"revoked null", []byte(`{"issuer":"` + testIss + `","keys":[` + curEntry + `],"revoked":null}`), testIss, true},
		{"revoked absent", []byte(`{"issuer":"` + testIss + `","keys":[` + curEntry + `]}`), testIss, true},
		{"keys empty", doc(), testIss, true},
		{"unknown members ignored", []byte(`{"v":2,"issuer":"` + testIss + `","keys":[` + curEntry[:len(curEntry)-1] + `,"use":{"a":[1]}}],"x":null}`), testIss, true},

		{"issuer mismatch", good, "https://other.example", false},
		{"issuer prefix", good, testIss + "/", false},
		{"no expected issuer", good, "", false},
		{"kid of another key", doc(entry(next.ID(), cur.PublicKey().PASERK(), "current")), testIss, false},
		{"kid malformed", doc(entry("k4.pid.AAAA", cur.PublicKey().PASERK(), "current")), testIss, false},
		{"kid is a lid", doc(entry(keys.KeyID("k4.lid."+strings.TrimPrefix(string(cur.ID()), "k4.pid.")), cur.PublicKey().PASERK(), "current")), testIss, false},
		{"key is a secret", doc(entry(cur.ID(), cur.PlaintextPASERK(), "current")), testIss, false},
		{"key malformed", doc(entry(cur.ID(), "k4.public.AAAA", "current")), testIss, false},
		{"status revoked", doc(entry(cur.ID(), cur.PublicKey().PASERK(), "revoked")), testIss, false},
		{"status empty", doc(entry(cur.ID(), cur.PublicKey().PASERK(), "")), testIss, false},
		{"status upper-case", doc(entry(cur.ID(), cur.PublicKey().PASERK(), "CURRENT")), testIss, false},
		{"duplicate kid", doc(curEntry, entry(cur.ID(), cur.PublicKey().PASERK(), "retired")), testIss, false},
		{"revoked malformed", []byte(`{"issuer":"` + testIss + `","keys":[],"revoked":["k4.pid.x"]}`), testIss, false},
		{"revoked not strings", []byte(`{"issuer":"` + testIss + `","keys":[],"revoked":[1]}`), testIss, false},
		{"revoked string", []byte(`{"issuer":"` + testIss + `","keys":[],"revoked":"x"}`), testIss, false},
		{"duplicate issuer", []byte(`{"issuer":"` + testIss + `","issuer":"` + testIss + `","keys":[]}`), testIss, false},
		{"duplicate keys", []byte(`{"issuer":"` + testIss + `","keys":[],"keys":[` + curEntry + `]}`), testIss, false},
		{"duplicate member in entry", doc(curEntry[:len(curEntry)-1] + `,"status":"retired"}`), testIss, false},
		{"duplicate in unknown member", []byte(`{"issuer":"` + testIss + `","keys":[],"x":{"a":1,"a":2}}`), testIss, false},
		{"deep unknown member", []byte(`{"issuer":"` + testIss + `","keys":[],"x":` + strings.Repeat("[", 40) + strings.Repeat("]", 40) + `}`), testIss, false},
		{"case-folded issuer", []byte(`{"Issuer":"` + testIss + `","keys":[]}`), testIss, false},
		{"missing issuer", []byte(`{"keys":[]}`), testIss, false},
		{"missing keys", []byte(`{"issuer":"` + testIss + `"}`), testIss, false},
		{"missing status", doc(`{"kid":"` + string(cur.ID()) + `","key":"` + cur.PublicKey().PASERK() + `"}`), testIss, false},
		{"issuer number", []byte(`{"issuer":1,"keys":[]}`), testIss, false},
		{"keys object", []byte(`{"issuer":"` + testIss + `","keys":{}}`), testIss, false},
		{"entry array", doc(`[]`), testIss, false},
		{"kid number", doc(`{"kid":1,"key":"` + cur.PublicKey().PASERK() + `","status":"current"}`), testIss, false},
		{"not an object", []byte(`[]`), testIss, false},
		{"trailing data", append(append([]byte{}, good...), `{}`...), testIss, false},
		{"trailing junk", append(append([]byte{}, good...), `x`...), testIss, false},
		{"truncated", good[:len(good)-1], testIss, false},
		{"empty", nil, testIss, false},
		{"too large", []byte(goodStr[:len(goodStr)-1] + `,"pad":"` + strings.Repeat("x", MaxKeySetSize) + `"}`), testIss, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ks, err := ParseKeySet(tt.data, tt.iss)
			if !tt.ok {
				if err == nil || ks != nil {
					t.Fatalf("accepted")
				}
				if !errors.Is(err, ErrKeySet) {
					t.Fatalf("err = %v", err)
				}
				for _, s := range []string{"k4.pid.", "k4.lid.", "k4.public.", "k4.secret.", "issuer.example", "other.example"} {
					if strings.Contains(err.Error(), s) {
						t.Fatalf("error %q quotes the document", err)
					}
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseKeySet: %v", err)
			}
			if !strings.Contains(string(tt.data), string(cur.ID())) {
				return
			}
			if pk, err := ks.LookupKey(context.Background(), cur.ID()); err != nil || !pk.Equal(cur.PublicKey()) {
				t.Errorf("current key: %v, %v", pk, err)
			}
		})
	}

	t.Run("lookups", func(t *testing.T) {
		ks, err := ParseKeySet(good, testIss)
		if err != nil {
			t.Fatal(err)
		}
		for _, sk := range []*keys.SecretKey{cur, next, ret} {
			if pk, err := ks.LookupKey(context.Background(), sk.ID()); err != nil || !pk.Equal(sk.PublicKey()) {
				t.Errorf("LookupKey: %v", err)
			}
		}
		if _, err := ks.LookupKey(context.Background(), rev.ID()); err != ErrKeyRevoked {
			t.Errorf("revoked: %v", err)
		}
		if _, err := ks.LookupKey(context.Background(), stranger.ID()); err != ErrUnknownKey {
			t.Errorf("unknown: %v", err)
		}
	})
	t.Run("revoked wins over a listed key", func(t *testing.T) {
		ks, err := ParseKeySet(keySetJSON(t, testIss, []keys.PublishedKey{published(cur, keys.StatusCurrent)}, []keys.KeyID{cur.ID()}), testIss)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := ks.LookupKey(context.Background(), cur.ID()); err != ErrKeyRevoked {
			t.Errorf("err = %v", err)
		}
	})
}

// TestKeySetFromRing reads the document the key ring publishes, through a
// rotation and a revocation.
func TestKeySetFromRing(t *testing.T) {
	ring, err := keys.NewRing(&countingReader{}, testNow)
	if err != nil {
		t.Fatal(err)
	}
	first := ring.Current()
	tok, _ := mint(t, first, testNow)
	if err := ring.Rotate(&countingReader{n: 100}, testNow.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	load := func() *Verifier {
		data, err := json.Marshal(ring.KeySet(testIss))
		if err != nil {
			t.Fatal(err)
		}
		ks, err := ParseKeySet(data, testIss)
		if err != nil {
			t.Fatalf("ParseKeySet(ring.KeySet): %v", err)
		}
		v, err := New(ks, testIss, testAud, WithClock(func() time.Time { return testNow.Add(2 * time.Minute) }))
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	if _, err := load().Verify(context.Background(), tok); err != nil {
		t.Fatalf("token of a retired key: %v", err)
	}
	fresh, _ := mint(t, ring.Current(), testNow.Add(time.Minute))
	if _, err := load().Verify(context.Background(), fresh); err != nil {
		t.Fatalf("token of the current key: %v", err)
	}
	if err := ring.Revoke(first.ID(), &countingReader{n: 200}, testNow.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if _, err := load().Verify(context.Background(), tok); !errors.Is(err, ErrKeyRevoked) || Code(err) != CodeTokenRevoked {
		t.Fatalf("token of a revoked key: %v", err)
	}
}

func TestNewStaticKeySet(t *testing.T) {
	if _, err := NewStaticKeySet(testKey(t, 1).PublicKey(), keys.PublicKey{}); !errors.Is(err, ErrKeySet) {
		t.Errorf("zero key: %v", err)
	}
	ks, err := NewStaticKeySet()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ks.LookupKey(context.Background(), testKey(t, 1).ID()); err != ErrUnknownKey {
		t.Errorf("empty set: %v", err)
	}
}
