package filelock

import (
	"context"
	"errors"
	"fmt"
	"os"
	"syscall"
	"time"
)

// ErrTimeout: another process held the lock for the whole wait.
var ErrTimeout = errors.New("filelock: held by another process")

// retry is how often a held lock is tried again.
const retry = 20 * time.Millisecond

// Lock opens path (created with mode 0600 when missing) and takes an
// exclusive flock on it, trying again every 20 ms until it is free, wait
// has passed (ErrTimeout) or ctx ends (ctx's error). unlock releases the
// lock and closes the file; a process that dies loses its lock with it.
func Lock(ctx context.Context, path string, wait time.Duration) (unlock func(), err error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, fmt.Errorf("filelock: %w", err)
	}
	deadline := time.Now().Add(wait)
	for {
		err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
		switch {
		case err == nil:
			return func() {
				_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
				_ = f.Close()
			}, nil
		case !errors.Is(err, syscall.EWOULDBLOCK):
			_ = f.Close()
			return nil, fmt.Errorf("filelock: flock %s: %w", path, err)
		case time.Now().After(deadline):
			_ = f.Close()
			return nil, ErrTimeout
		}
		select {
		case <-ctx.Done():
			_ = f.Close()
			return nil, ctx.Err()
		case <-time.After(retry):
		}
	}
}
