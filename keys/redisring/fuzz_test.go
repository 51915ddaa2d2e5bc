package redisring_test

import (
	"context"
	"errors"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/hallpass/hallpass/internal/redistest"
	"github.com/hallpass/hallpass/keys"
	"github.com/hallpass/hallpass/keys/redisring"
)

// An authentic document (right MAC) holding plaintext secrets is refused:
// the store never accepts a key that was stored unwrapped.
func TestPlaintextSecretRefused(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	ctx := context.Background()
	w := wrapKey(t)
	s := newStore(t, srv.Addr(), w, redisring.Options{})
	// A ring at version 1, so that the plaintext one (version 1 too)
	// agrees with the head and the counter, and only its secrets are wrong.
	if _, err := s.Init(ctx, t0); err != nil {
		t.Fatal(err)
	}
	r, err := keys.NewRing(nil, t0)
	if err != nil {
		t.Fatal(err)
	}
	val, err := redisring.SealPlaintextRing(s, r)
	if err != nil {
		t.Fatal(err)
	}
	if err := newClient(t, srv.Addr()).Set(ctx, "hallpass:{keys}:ring", val, 0).Err(); err != nil {
		t.Fatal(err)
	}
	// Read by a node that has not seen the ring Init stored at the same
	// version: s itself refuses the replacement before opening it
	// (TestLostWriteReplaced).
	if _, err := newStore(t, srv.Addr(), w, redisring.Options{}).Load(ctx); !errors.Is(err, keys.ErrWrongType) {
		t.Fatalf("Load of a plaintext ring: %v, want keys.ErrWrongType", err)
	}
}

// Stored values come from Redis, which the store does not fully trust:
// the parsers must never panic and must authenticate before anything else.
func FuzzDecode(f *testing.F) {
	c := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", ContextTimeoutEnabled: true})
	defer c.Close()
	w, _ := keys.GenerateWrappingKey(nil)
	s, err := redisring.New(c, w, redisring.Options{})
	if err != nil {
		f.Fatal(err)
	}
	r, _ := keys.NewRing(nil, t0)
	plain, _ := redisring.SealPlaintextRing(s, r)
	f.Add(plain)
	f.Add(`{"mac":"","doc":{}}`)
	f.Add(`{"mac":"AAAA","doc":{"format":1,"kind":"ring","keys":[]}}`)
	f.Add(`not json`)
	head, _ := redisring.SealHead(s, 3, map[string]uint64{"ring": 3, "local": 1, "pepper": 2})
	f.Add(head)
	f.Fuzz(func(t *testing.T, val string) {
		if docs, err := redisring.DecodeHead(s, val); err == nil {
			for k := range docs {
				if k != "ring" && k != "local" && k != "pepper" {
					t.Fatalf("decoded a head naming %q", k)
				}
			}
		}
		if r, err := redisring.DecodeRing(s, val); err == nil && r.Current() == nil {
			t.Fatal("decoded a ring without a signing key")
		}
		if l, err := redisring.DecodeLocal(s, val); err == nil && len(l) == 0 {
			t.Fatal("decoded an empty local key list")
		}
	})
}
