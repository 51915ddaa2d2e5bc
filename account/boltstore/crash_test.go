package boltstore_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hallpass/hallpass/account"
	"github.com/hallpass/hallpass/account/boltstore"
)

const crashChildEnv = "HALLPASS_TEST_BOLT_CRASH_CHILD"

// crashWriters is the number of goroutines of the child signing up at
// once, so that its commits are shared.
const crashWriters = 32

// crashChild signs up accounts on the store at path from crashWriters
// goroutines until it is killed, and writes "ok <account id> <device id>"
// for each signup acknowledged (CreateAccount returned nil). It returns
// the exit code.
func crashChild(path string, out io.Writer) int {
	s, err := boltstore.Open(path, boltstore.Options{})
	if err != nil {
		fmt.Fprintln(out, "error", err)
		return 1
	}
	var mu sync.Mutex // one write per line, so that a line is whole or absent
	var wg sync.WaitGroup
	for range crashWriters {
		wg.Go(func() {
			for {
				accID, err1 := account.NewID(account.AccountPrefix, nil)
				devID, err2 := account.NewID(account.DevicePrefix, nil)
				if err1 != nil || err2 != nil {
					return
				}
				now := time.Now().UTC()
				err := s.CreateAccount(context.Background(),
					account.Account{ID: accID, Username: accID, UsernameKey: accID, Created: now},
					account.Device{ID: devID, AccountID: accID, JKT: "jkt", Created: now},
					account.Session{DeviceID: devID, AccountID: accID, JKT: "jkt", Counter: 1, Created: now, Expires: now.Add(time.Hour)})
				mu.Lock()
				if err != nil {
					fmt.Fprintln(out, "error", err)
				} else {
					fmt.Fprintln(out, "ok", accID, devID)
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return 1
}

// TestCrashKeepsAcknowledged kills (SIGKILL) a process in the middle of
// group-committed signups and checks that every signup it acknowledged is
// in the file when it is opened again. It proves the ordering (no answer
// before its commit has been written); that the commit's fdatasync reaches
// the platter is bbolt's and the disk's part, which a process kill cannot
// test.
func TestCrashKeepsAcknowledged(t *testing.T) {
	path := filepath.Join(t.TempDir(), "crash.db")
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), crashChildEnv+"="+path)
	cmd.Stderr = os.Stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	killed := false
	defer func() {
		if !killed {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
		}
	}()

	// Kill after some hundreds of acknowledgements (or a few seconds on a
	// slow disk), then read what the child had written before it died:
	// those answers were given too.
	type ack struct{ acc, dev string }
	var acks []ack
	const killAfter = 500
	timer := time.AfterFunc(5*time.Second, func() { _ = cmd.Process.Kill() })
	defer timer.Stop()
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		switch {
		case len(f) == 3 && f[0] == "ok":
			acks = append(acks, ack{f[1], f[2]})
		default:
			t.Errorf("child: %s", sc.Text())
		}
		if len(acks) == killAfter {
			_ = cmd.Process.Kill()
		}
	}
	err = cmd.Wait()
	killed = true
	if err == nil || !strings.Contains(err.Error(), "killed") {
		t.Fatalf("child exit: %v, want killed", err)
	}
	if len(acks) == 0 {
		t.Fatal("the child acknowledged no signup")
	}

	s, err := boltstore.Open(path, boltstore.Options{})
	if err != nil {
		t.Fatalf("reopen after kill: %v", err)
	}
	defer s.Close()
	ctx := t.Context()
	for _, a := range acks {
		if _, err := s.GetAccount(ctx, a.acc); err != nil {
			t.Fatalf("acknowledged account %s after kill: %v", a.acc, err)
		}
		if _, err := s.GetSession(ctx, a.dev); err != nil {
			t.Fatalf("acknowledged session %s after kill: %v", a.dev, err)
		}
	}
	t.Logf("%d acknowledged signups, all found after SIGKILL", len(acks))
}
