package main

import (
	"context"
	"errors"

	"github.com/hallpass/hallpass/internal/redistest"
)

// startRedis runs a private, throw-away redis-server on a free loopback port
// (persistence off, its own temporary directory, removed by Stop) with
// internal/redistest, using bin when set.
func startRedis(ctx context.Context, bin string) (*redistest.Process, error) {
	p, err := redistest.Launch(ctx, redistest.Options{Bin: bin})
	if errors.Is(err, redistest.ErrNotFound) {
		return nil, errors.New("redis-server not found (run `make test-deps`, or pass -redis-server PATH, or -stores bolt)")
	}
	return p, err
}
