package filelock_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/hallpass/hallpass/internal/filelock"
)

// TestLock: a held lock keeps a second taker out until its wait runs out
// (ErrTimeout) or its context ends; once released the next taker gets it.
// The lock file is made with mode 0600 and left in place.
func TestLock(t *testing.T) {
	path := filepath.Join(t.TempDir(), "x.lock")
	unlock, err := filelock.Lock(context.Background(), path, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("lock file: %v %v, want mode 0600", fi, err)
	}
	if _, err := filelock.Lock(context.Background(), path, 50*time.Millisecond); !errors.Is(err, filelock.ErrTimeout) {
		t.Fatalf("second taker: %v, want ErrTimeout", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := filelock.Lock(ctx, path, time.Minute); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("second taker, context ending: %v", err)
	}
	unlock()
	unlock2, err := filelock.Lock(context.Background(), path, 0)
	if err != nil {
		t.Fatalf("after unlock: %v", err)
	}
	unlock2()
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("lock file after unlock: %v", err)
	}
	if _, err := filelock.Lock(context.Background(), filepath.Join(t.TempDir(), "no", "dir"), time.Second); err == nil {
		t.Fatal("a lock file that cannot be made: no error")
	}
}
