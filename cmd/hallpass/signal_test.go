package main

import (
	"bufio"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestProcessExitStatus runs the built binary: SIGINT (Ctrl-C) and SIGTERM
// stop serve gracefully with exit status 0, and a command's -h exits 0.
func TestProcessExitStatus(t *testing.T) {
	t.Parallel()
	bin := filepath.Join(t.TempDir(), "hallpass")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	for _, args := range [][]string{{"keys", "new-wrap-key", "-h"}, {"serve", "--help"}, {"help"}} {
		if out, err := exec.Command(bin, args...).CombinedOutput(); err != nil {
			t.Errorf("hallpass %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	if err := exec.Command(bin, "keys", "nope").Run(); err == nil {
		t.Error("an unknown command exits 0")
	}
	for _, sig := range []syscall.Signal{syscall.SIGINT, syscall.SIGTERM} {
		t.Run(sig.String(), func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			cmd := exec.CommandContext(ctx, bin, "serve", "--dev", "--data", t.TempDir(), "--listen", "127.0.0.1:0")
			stderr, err := cmd.StderrPipe()
			if err != nil {
				t.Fatal(err)
			}
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			sc := bufio.NewScanner(stderr)
			var logs []string
			for sc.Scan() {
				logs = append(logs, sc.Text())
				if strings.Contains(sc.Text(), "hallpass issuer listening") {
					break
				}
			}
			if err := cmd.Process.Signal(sig); err != nil {
				t.Fatal(err)
			}
			for sc.Scan() {
				logs = append(logs, sc.Text())
			}
			err = cmd.Wait()
			var ee *exec.ExitError
			if errors.As(err, &ee) || err != nil {
				t.Fatalf("serve after %v: %v, want exit status 0\n%s", sig, err, strings.Join(logs, "\n"))
			}
			if !strings.Contains(strings.Join(logs, "\n"), "shutting down") {
				t.Errorf("no graceful shutdown logged:\n%s", strings.Join(logs, "\n"))
			}
		})
	}
}

// TestMakeRunExecsBinary: `make run` runs the built binary itself, not `go
// run`: the go command exits 1 when interrupted whatever its child does, so
// Ctrl-C would end in "make: *** Error 1" although serve exits 0.
func TestMakeRunExecsBinary(t *testing.T) {
	b, err := os.ReadFile("../../Makefile")
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(b), "\nrun:")
	if !ok {
		t.Fatal("the Makefile has no run target")
	}
	recipe, _, _ := strings.Cut(rest, "\n\n")
	if strings.Contains(recipe, "$(GO) run") || strings.Contains(recipe, "go run") {
		t.Fatalf("make run uses go run:%s", recipe)
	}
	if !strings.Contains(recipe, "bin/hallpass serve --dev") {
		t.Fatalf("make run does not run bin/hallpass serve --dev:%s", recipe)
	}
}
