package ratelimit_test

import (
	"context"
	"fmt"
	"time"

	"github.com/hallpass/hallpass/ratelimit"
)

func Example() {
	rule, err := ratelimit.ParseRule("3/h") // e.g. --signup-limit-per-ip=3/h
	if err != nil {
		panic(err)
	}
	limiter, err := ratelimit.NewMemory(ratelimit.MemoryOptions{})
	if err != nil {
		panic(err)
	}
	now := time.Date(2030, 1, 1, 12, 0, 0, 0, time.UTC)
	for range 4 {
		d, _ := limiter.Allow(context.Background(), "198.51.100.7", rule, now)
		fmt.Println(d.Allowed, d.Remaining, d.RetryAfter)
	}
	// Output:
	// true 2 0s
	// true 1 0s
	// true 0 0s
	// false 0 20m0s
}
