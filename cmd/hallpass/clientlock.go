package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"time"

	"github.com/hallpass/hallpass/internal/filelock"
)

// stateLockWait bounds how long a client command waits for another one
// that uses the same state file; tests lower it.
var stateLockWait = time.Minute

// errStateLocked: another client command kept the state file past stateLockWait.
var errStateLocked = errors.New("the state file is in use by another hallpass client command")

// lockState takes the exclusive lock of the state file at path for one
// whole command, from loading the state to its last save: flock(2) on
// path+".lock" (mode 0600, left in place: removing it would let a waiting
// command lock a file nobody else sees). Without it, a command that loaded
// a refresh token while another one rotated it twice, or more than the
// server's grace window ago, presents a spent token: reuse, and the device
// is signed out. It waits up to stateLockWait or until ctx ends. With
// create unset and no state file, there is nothing to protect and no lock
// file is made.
func lockState(ctx context.Context, path string, create bool) (unlock func(), err error) {
	if _, err := os.Stat(path); !create && errors.Is(err, fs.ErrNotExist) {
		return func() {}, nil
	}
	unlock, err = filelock.Lock(ctx, path+".lock", stateLockWait)
	switch {
	case errors.Is(err, filelock.ErrTimeout):
		return nil, fmt.Errorf("%w (waited %v for %s)", errStateLocked, stateLockWait, path+".lock")
	case err != nil && ctx.Err() == nil:
		return nil, fmt.Errorf("state lock: %w", err)
	}
	return unlock, err
}
