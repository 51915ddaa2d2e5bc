package main

import (
	"bufio"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/hallpass/hallpass/keys"
	"github.com/hallpass/hallpass/revocation"
	revredis "github.com/hallpass/hallpass/revocation/redisstore"
	"github.com/hallpass/hallpass/token"
)

const mirrorProcEnv = "HALLPASS_TEST_MIRROR_REDIS"

// TestMain runs the test binary as the mirror helper process when
// startMirrorProcess named a Redis in mirrorProcEnv, and runs the tests
// otherwise.
func TestMain(m *testing.M) {
	if addr := os.Getenv(mirrorProcEnv); addr != "" {
		os.Exit(mirrorProcessMain(addr, os.Stdin, os.Stdout))
	}
	os.Exit(m.Run())
}

// mirrorProcessMain is the helper process started by startMirrorProcess: it
// mirrors the denylist of the Redis at addr, says "synced" once it has, and
// answers each token read from in with "ok", "revoked" or "error". It
// returns the exit code.
func mirrorProcessMain(addr string, in io.Reader, out io.Writer) int {
	rc := redis.NewClient(&redis.Options{Addr: addr, ContextTimeoutEnabled: true})
	defer rc.Close()
	st, err := revredis.New(rc, revredis.Options{})
	if err != nil {
		fmt.Fprintln(out, "error", err)
		return 1
	}
	m, err := revocation.NewMirror(st, revocation.MirrorOptions{})
	if err != nil {
		fmt.Fprintln(out, "error", err)
		return 1
	}
	m.Start()
	defer m.Close()
	<-m.Synced()
	fmt.Fprintln(out, "synced")
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 8192), 8192)
	for sc.Scan() {
		c, kid, err := unsafeClaims(sc.Text())
		if err != nil {
			fmt.Fprintln(out, "error")
			continue
		}
		switch err := m.CheckRevoked(context.Background(), kid, c); {
		case err == nil:
			fmt.Fprintln(out, "ok")
		case errors.Is(err, revocation.ErrRevoked):
			fmt.Fprintln(out, "revoked")
		default:
			fmt.Fprintln(out, "error")
		}
	}
	return 0
}

// unsafeClaims reads a v4.public token's claims and kid WITHOUT verifying
// it: the tests only pass tokens the issuer minted.
func unsafeClaims(tok string) (*token.Claims, keys.KeyID, error) {
	parts := strings.Split(tok, ".")
	if len(parts) < 3 {
		return nil, "", errors.New("not a token")
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil || len(b) < 64 {
		return nil, "", errors.New("bad body")
	}
	c, err := token.ParseClaims(b[:len(b)-64])
	if err != nil {
		return nil, "", err
	}
	f, err := token.UnsafeParseFooterKid(tok)
	if err != nil {
		return nil, "", err
	}
	return c, f.Kid, nil
}

// mirrorProc is a verifier mirror in another process.
type mirrorProc struct {
	in  io.WriteCloser
	out *bufio.Scanner
}

func startMirrorProcess(t *testing.T, redisAddr string) *mirrorProc {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, os.Args[0]) // TestMain runs mirrorProcessMain
	cmd.Env = append(os.Environ(), mirrorProcEnv+"="+redisAddr)
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = io.Discard
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		in.Close()
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			cancel()
			<-done
		}
		cancel()
	})
	p := &mirrorProc{in: in, out: bufio.NewScanner(out)}
	if !p.out.Scan() || p.out.Text() != "synced" {
		t.Fatalf("mirror process: %q", p.out.Text())
	}
	return p
}

func (p *mirrorProc) check(t *testing.T, tok string) string {
	t.Helper()
	if _, err := io.WriteString(p.in, tok+"\n"); err != nil {
		t.Fatal(err)
	}
	if !p.out.Scan() {
		t.Fatal("mirror process ended")
	}
	return p.out.Text()
}

// waitVerdict polls the process until it answers want for tok.
func (p *mirrorProc) waitVerdict(t *testing.T, tok, want string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		got := p.check(t, tok)
		if got == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("mirror process says %q, want %q", got, want)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
