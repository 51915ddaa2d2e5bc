// Package storecall bounds one call into a store (account, revocation, key
// ring, rate limiter) by a timeout that holds whatever the engine does with
// its context: bbolt checks a context only before a transaction and an
// fsync can stall, so the call runs on its own goroutine and is abandoned
// when the deadline passes.
//
// An abandoned call may still complete. Callers rely on every store step
// being atomic and safe to retry, and must not touch request state from fn
// after Run returned.
package storecall

import (
	"context"
	"fmt"
	"time"
)

// Run runs fn with a context bounded by timeout and returns its error, or,
// when the deadline passes first, an error wrapping context.DeadlineExceeded
// (or the parent's cancellation) that names op. A panic in fn is returned
// as an error (its value's text only for an error or a string, else its
// type: a panic must not drag request content into a log).
func Run(parent context.Context, timeout time.Duration, op string, fn func(ctx context.Context) error) error {
	ctx, cancel := context.WithTimeout(parent, timeout)
	defer cancel()
	done := make(chan error, 1)
	go func() {
		defer func() {
			if r := recover(); r != nil {
				done <- fmt.Errorf("store call %s panicked: %s", op, panicText(r))
			}
		}()
		done <- fn(ctx)
	}()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return fmt.Errorf("store call %s abandoned: %w", op, ctx.Err())
	}
}

func panicText(r any) string {
	switch v := r.(type) {
	case error:
		return v.Error()
	case string:
		return v
	}
	return fmt.Sprintf("%T", r)
}
