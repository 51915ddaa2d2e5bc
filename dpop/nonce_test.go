package dpop

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"
)

func TestNonceSteps(t *testing.T) {
	key := mustNonceKey(t)
	now := testNow.Truncate(time.Minute)
	src, err := NewNonceSource(key, NonceOptions{Step: time.Minute, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	n0 := src.Issue()
	if len(n0) != 43 {
		t.Fatalf("nonce length %d", len(n0))
	}
	tests := []struct {
		name  string
		at    time.Duration
		nonce string
		want  error
	}{
		{name: "same step", at: 59 * time.Second, nonce: n0},
		{name: "next step still accepts previous", at: time.Minute + 59*time.Second, nonce: n0},
		{name: "two steps later", at: 2 * time.Minute, nonce: n0, want: ErrNonceInvalid},
		{name: "before it was issued", at: -time.Second, nonce: n0, want: ErrNonceInvalid},
		{name: "empty", nonce: "", want: ErrNonceRequired},
		{name: "garbage", nonce: "not-a-nonce", want: ErrNonceInvalid},
		{name: "padded", nonce: n0 + "=", want: ErrNonceInvalid},
		{name: "bit flipped", nonce: flipLast(n0), want: ErrNonceInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			now = testNow.Truncate(time.Minute).Add(tt.at)
			err := src.Check(tt.nonce)
			if !errors.Is(err, tt.want) || (tt.want == nil) != (err == nil) {
				t.Fatalf("Check = %v, want %v", err, tt.want)
			}
			if err != nil && ErrorCode(err) != CodeUseNonce {
				t.Fatalf("ErrorCode = %q", ErrorCode(err))
			}
		})
	}
	// The nonce changes each step.
	now = testNow.Truncate(time.Minute).Add(time.Minute)
	if src.Issue() == n0 {
		t.Fatal("nonce did not rotate")
	}
}

// Any node holding the key checks nonces any other node issued.
func TestNonceStatelessAcrossNodes(t *testing.T) {
	secret := bytes.Repeat([]byte{7}, NonceKeySize)
	k1, _ := NewNonceKey(secret)
	k2, _ := NewNonceKey(secret)
	a, _ := NewNonceSource(k1, NonceOptions{Now: fixedNow})
	b, _ := NewNonceSource(k2, NonceOptions{Now: fixedNow})
	if err := b.Check(a.Issue()); err != nil {
		t.Fatal(err)
	}
}

func TestNonceKeyRotation(t *testing.T) {
	oldKey, newKey := mustNonceKey(t), mustNonceKey(t)
	oldSrc, _ := NewNonceSource(oldKey, NonceOptions{Now: fixedNow})
	issued := oldSrc.Issue()
	newSrc, _ := NewNonceSource(newKey, NonceOptions{Now: fixedNow})
	if err := newSrc.Check(issued); !errors.Is(err, ErrNonceInvalid) {
		t.Fatalf("unknown key accepted: %v", err)
	}
	rotated, _ := NewNonceSource(newKey, NonceOptions{Now: fixedNow, PreviousKeys: []*NonceKey{oldKey}})
	if err := rotated.Check(issued); err != nil {
		t.Fatalf("previous key refused: %v", err)
	}
	if rotated.Issue() == issued {
		t.Fatal("Issue used the previous key")
	}
}

func TestNonceKeySecrecy(t *testing.T) {
	secret := bytes.Repeat([]byte{0xab}, NonceKeySize)
	k, err := NewNonceKey(secret)
	if err != nil {
		t.Fatal(err)
	}
	var logged bytes.Buffer
	slog.New(slog.NewTextHandler(&logged, nil)).Info("x", "key", k)
	for _, s := range []string{k.String(), fmt.Sprint(k), fmt.Sprintf("%v %+v %s", k, k, k), logged.String()} {
		if strings.Contains(strings.ToLower(s), "abab") || strings.Contains(s, string(secret)) {
			t.Fatalf("secret printed: %q", s)
		}
		if !strings.Contains(s, k.ID()) {
			t.Fatalf("key id missing from %q", s)
		}
	}
	k2, _ := NewNonceKey(secret)
	if !k.Equal(k2) || k.Equal(mustNonceKey(t)) || k.Equal(nil) {
		t.Fatal("Equal is wrong")
	}
	if _, err := NewNonceKey(secret[:16]); !errors.Is(err, ErrConfig) {
		t.Fatalf("short key: %v", err)
	}
	if _, err := GenerateNonceKey(failingReader{}); err == nil {
		t.Fatal("broken randomness accepted")
	}
}

func TestNonceSourceConfig(t *testing.T) {
	k := mustNonceKey(t)
	for _, tt := range []struct {
		key  *NonceKey
		opts NonceOptions
	}{
		{key: nil},
		{key: k, opts: NonceOptions{Step: time.Millisecond}},
		{key: k, opts: NonceOptions{PreviousKeys: []*NonceKey{nil}}},
	} {
		if _, err := NewNonceSource(tt.key, tt.opts); !errors.Is(err, ErrConfig) {
			t.Errorf("NewNonceSource(%v, %+v) = %v", tt.key, tt.opts, err)
		}
	}
}

// The RFC 9449 section 8 flow: a proof without a nonce gets use_dpop_nonce
// and a nonce; the retry with it passes.
func TestNonceFlow(t *testing.T) {
	src, _ := NewNonceSource(mustNonceKey(t), NonceOptions{Now: fixedNow})
	opts := testOpts(t)
	opts.Nonces = src
	first, _ := NewProofWithOptions(testEd, testMethod, testURL, "", "", ProofOptions{Now: fixedNow})
	_, err := verify(t, first, testReq(), opts)
	if ErrorCode(err) != CodeUseNonce {
		t.Fatalf("first: %v", err)
	}
	retry, _ := NewProofWithOptions(testEd, testMethod, testURL, "", src.Issue(), ProofOptions{Now: fixedNow})
	if _, err := verify(t, retry, testReq(), opts); err != nil {
		t.Fatalf("retry: %v", err)
	}
	// The rejected first proof did not use a replay-cache entry.
	if n := opts.Replay.(*MemoryReplayCache).Len(); n != 1 {
		t.Fatalf("replay cache holds %d entries, want 1", n)
	}
}

func flipLast(s string) string {
	b := []byte(s)
	if b[len(b)-1] == 'A' {
		b[len(b)-1] = 'E'
	} else {
		b[len(b)-1] = 'A'
	}
	return string(b)
}
