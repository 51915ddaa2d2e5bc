package redisring_test

import (
	"context"
	"errors"
	"log"
	"os"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/hallpass/hallpass/keys"
	"github.com/hallpass/hallpass/keys/redisring"
)

// Each issuer node opens the shared ring with the wrapping key from its own
// environment, rotates through Update, and reloads when another node
// rotated. (Not run: it needs a Redis server.)
func Example() {
	ctx, stop := context.WithCancel(context.Background())
	defer stop() // ends Watch
	w, err := keys.WrappingKeyFromBytes([]byte(os.Getenv("HALLPASS_WRAP_KEY_BYTES")))
	if err != nil {
		log.Fatal(err)
	}
	client := redis.NewClient(&redis.Options{Addr: "127.0.0.1:6379", ContextTimeoutEnabled: true})
	defer client.Close()
	store, err := redisring.New(client, w, redisring.Options{})
	if err != nil {
		log.Fatal(err)
	}
	if _, err := store.Init(ctx, time.Now()); err != nil && !errors.Is(err, redisring.ErrExists) {
		log.Fatal(err)
	}
	ring, version, err := store.LoadVersion(ctx)
	if err != nil {
		log.Fatal(err)
	}
	var current atomic.Pointer[keys.Ring] // what the signer uses
	current.Store(ring)

	// Scheduled rotation: safe when several nodes do it at once.
	if _, err := store.Update(ctx, func(r *keys.Ring) error { return r.Rotate(nil, time.Now()) }); err != nil {
		log.Fatal(err)
	}

	// Follow other nodes' rotations until ctx ends.
	go store.Watch(ctx, version, func(uint64) {
		if r, err := store.Load(ctx); err == nil {
			current.Store(r)
		}
	})
}
