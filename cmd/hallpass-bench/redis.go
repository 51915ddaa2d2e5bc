package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"time"
)

// redisStartTimeout bounds how long one start attempt waits for PONG.
const redisStartTimeout = 10 * time.Second

// redisProc is a private, throw-away redis-server on a free loopback port:
// persistence off, its own temporary directory, killed by stop. It follows
// internal/redistest, which takes a testing.TB and so is not used here.
type redisProc struct {
	cmd    *exec.Cmd
	exited chan struct{}
	dir    string
	port   int
}

// findRedis returns bin when set, else redis-server on PATH, else the
// usual Debian locations.
func findRedis(bin string) (string, error) {
	if bin != "" {
		return bin, nil
	}
	if p, err := exec.LookPath("redis-server"); err == nil {
		return p, nil
	}
	for _, p := range []string{"/usr/bin/redis-server", "/usr/sbin/redis-server"} {
		if fi, err := os.Stat(p); err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", errors.New("redis-server not found (run `make test-deps`, or pass -redis-server PATH, or -stores bolt)")
}

// startRedis runs redis-server bound to 127.0.0.1 and waits until it
// answers PING. A free port is found by binding :0 and closing it; another
// process may take it in between, so a few fresh ports are tried.
func startRedis(ctx context.Context, bin string) (*redisProc, error) {
	bin, err := findRedis(bin)
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "hallpass-bench-redis-")
	if err != nil {
		return nil, err
	}
	var lastErr error
	for attempt := 0; attempt < 5; attempt++ {
		port, err := freePort()
		if err != nil {
			os.RemoveAll(dir)
			return nil, err
		}
		p := &redisProc{dir: dir, port: port}
		if lastErr = p.launch(ctx, bin); lastErr == nil {
			return p, nil
		}
	}
	os.RemoveAll(dir)
	return nil, fmt.Errorf("redis-server did not start: %w", lastErr)
}

func (p *redisProc) addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(p.port)) }

func (p *redisProc) launch(ctx context.Context, bin string) error {
	logPath := filepath.Join(p.dir, "redis.log")
	cmd := exec.Command(bin,
		"--port", strconv.Itoa(p.port),
		"--bind", "127.0.0.1",
		"--protected-mode", "yes",
		"--save", "",
		"--appendonly", "no",
		"--dir", p.dir,
		"--logfile", logPath,
		"--daemonize", "no",
	)
	cmd.Dir = p.dir
	if err := cmd.Start(); err != nil {
		return err
	}
	p.cmd, p.exited = cmd, make(chan struct{})
	go func(exited chan struct{}) {
		_ = cmd.Wait()
		close(exited)
	}(p.exited)
	deadline := time.Now().Add(redisStartTimeout)
	var lastErr error
	for time.Now().Before(deadline) {
		select {
		case <-p.exited:
			p.cmd = nil
			return fmt.Errorf("redis-server exited during start-up; log: %s", logTail(logPath))
		case <-ctx.Done():
			p.kill()
			return ctx.Err()
		default:
		}
		if lastErr = rawPing(p.addr()); lastErr == nil {
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	p.kill()
	return fmt.Errorf("no PONG from %s within %s: %v; log: %s", p.addr(), redisStartTimeout, lastErr, logTail(logPath))
}

func (p *redisProc) kill() {
	if p.cmd == nil {
		return
	}
	_ = p.cmd.Process.Kill()
	<-p.exited
	p.cmd = nil
}

// stop kills the server and removes its directory.
func (p *redisProc) stop() {
	p.kill()
	os.RemoveAll(p.dir)
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// rawPing sends a RESP PING and expects +PONG.
func rawPing(addr string) error {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(time.Second))
	if _, err := c.Write([]byte("*1\r\n$4\r\nPING\r\n")); err != nil {
		return err
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return err
	}
	if line != "+PONG\r\n" {
		return fmt.Errorf("unexpected reply %q", line)
	}
	return nil
}

func logTail(path string) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return "(no log)"
	}
	b = bytes.TrimSpace(b)
	if len(b) > 1000 {
		b = b[len(b)-1000:]
	}
	return string(b)
}
