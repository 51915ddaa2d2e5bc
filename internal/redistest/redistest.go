// Package redistest starts a private, throw-away redis-server for tests.
//
// Every call to [Start] runs a fresh redis-server bound to 127.0.0.1 on a free
// port, with persistence off (--save "" --appendonly no) and its own temporary
// directory, so tests never touch a shared Redis (in particular not the
// machine's instance on 6379) and never see each other's keys. The server is
// killed in t.Cleanup.
//
// Fault tests can [Server.Stop] the server (SIGKILL: the client sees the
// connection drop as in a crash) and [Server.Restart] it on the same port, so
// a client configured with [Server.Addr] reconnects without being rebuilt.
// Restart starts with an empty data set: nothing is persisted, unless the
// server came from [StartPersistent] (append-only file, fsync always).
//
// [StartCluster] runs a Redis Cluster of several masters on loopback ports.
//
// [Launch] is the core without a testing.TB (for cmd/hallpass-bench): it
// returns a [Process] the caller stops itself.
//
// The redis-server binary is looked up on PATH, then at /usr/bin/redis-server
// and /usr/sbin/redis-server. When it is missing the test fails (it is never
// skipped): a skipped Redis test would hide the part of the suite that checks
// the cluster-wide guarantees. Install it with `make test-deps`.
//
// Usage:
//
//	func TestStore(t *testing.T) {
//		srv := redistest.Start(t)
//		client := redis.NewClient(&redis.Options{Addr: srv.Addr()})
//		t.Cleanup(func() { client.Close() })
//		...
//		srv.Stop(t)    // Redis "crashes": calls now fail
//		srv.Restart(t) // back on the same address, empty
//	}
//
// The package does not import a Redis client, so any package can use it.
//
// What it trusts: nothing from the network; it talks RESP to the server it
// started, only on loopback. Servers are killed in t.Cleanup; a test binary
// that is itself killed (SIGKILL, timeout panic) can leave its servers
// running, since they are ordinary child processes.
package redistest

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
	"sync"
	"testing"
	"time"
)

// startTimeout bounds how long Start and Restart wait for PONG.
const startTimeout = 10 * time.Second

// binCandidates are tried after PATH.
var binCandidates = []string{"/usr/bin/redis-server", "/usr/sbin/redis-server"}

// ErrNotFound is returned (wrapped) by [Launch] when no redis-server binary is
// given and none is found.
var ErrNotFound = errors.New("redis-server not found on PATH, nor at " + binCandidates[0] + " or " + binCandidates[1])

// Options configure [Launch].
type Options struct {
	// Bin is the redis-server binary; empty: PATH, then /usr/bin and
	// /usr/sbin.
	Bin string
	// Dir is the server's working directory (log, append-only file); empty:
	// a fresh temporary directory, removed by [Process.Stop].
	Dir string
	// Persistent turns on an append-only file (fsync always) in Dir.
	Persistent bool
	// AppendFsync, when not empty, turns on an append-only file in Dir
	// with this appendfsync policy: "always", "everysec" (Redis's default
	// and the documented production setting) or "no". Persistent wins.
	AppendFsync string
	// Extra arguments for redis-server (cluster mode).
	Extra []string
	// Config, when not empty, is a configuration file given to
	// redis-server before every other argument (Sentinel needs one it can
	// rewrite).
	Config string
}

// Process is one redis-server started by [Launch], without a testing.TB:
// the non-testing core of [Server], also used by cmd/hallpass-bench.
type Process struct {
	bin    string
	dir    string
	ownDir bool // dir was created by Launch and is removed by Stop
	port   int
	// persistent: append-only file in dir, so a relaunch keeps the data.
	persistent bool
	// appendFsync: an append-only file with this policy (Options.AppendFsync).
	appendFsync string
	// extra arguments (cluster mode); config file first (Options.Config).
	extra  []string
	config string

	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan struct{} // closed when cmd has been reaped
}

// Launch runs a fresh redis-server on a free loopback port and waits until it
// answers PING, ctx is done, or start-up times out. The free port is found by
// binding :0 and closing it; another process may take it in between, so a few
// fresh ports are tried. The caller must call [Process.Stop].
func Launch(ctx context.Context, o Options) (*Process, error) {
	bin := o.Bin
	if bin == "" {
		var err error
		if bin, err = findBinary(); err != nil {
			return nil, err
		}
	}
	switch o.AppendFsync {
	case "", "always", "everysec", "no":
	default:
		return nil, fmt.Errorf("redistest: AppendFsync %q: want always, everysec or no", o.AppendFsync)
	}
	p := &Process{bin: bin, dir: o.Dir, persistent: o.Persistent, appendFsync: o.AppendFsync, extra: o.Extra, config: o.Config}
	if p.dir == "" {
		dir, err := os.MkdirTemp("", "redistest-")
		if err != nil {
			return nil, err
		}
		p.dir, p.ownDir = dir, true
	}
	var lastErr error
	for attempt := 0; attempt < 5; attempt++ {
		port, err := freePort()
		if err != nil {
			p.Stop()
			return nil, fmt.Errorf("finding a free port: %w", err)
		}
		p.port = port
		if lastErr = p.launch(ctx); lastErr == nil {
			return p, nil
		}
		if ctx.Err() != nil {
			break
		}
	}
	p.Stop()
	return nil, fmt.Errorf("redis-server did not start: %w", lastErr)
}

// Addr is the server's host:port, for redis.Options.Addr.
func (p *Process) Addr() string {
	return net.JoinHostPort("127.0.0.1", strconv.Itoa(p.port))
}

// Stop kills the server with SIGKILL, waits for it to exit, and removes its
// directory if Launch created it. Calling Stop twice does nothing more.
func (p *Process) Stop() {
	p.kill()
	if p.ownDir {
		_ = os.RemoveAll(p.dir)
	}
}

// Server is one redis-server process owned by a test.
type Server struct {
	p *Process
}

// Start runs a fresh redis-server on a free loopback port and waits until it
// answers PING. It is stopped in t.Cleanup. Start calls t.Fatal when
// redis-server is not installed or does not come up.
func Start(t testing.TB) *Server {
	t.Helper()
	return start(t, false, nil)
}

// StartPersistent is Start with an append-only file (--appendonly yes
// --appendfsync always) in the server's temporary directory, so that
// [Server.Restart] (and a Stop then Restart) keeps every acknowledged write,
// streams included.
func StartPersistent(t testing.TB) *Server {
	t.Helper()
	return start(t, true, nil)
}

func start(t testing.TB, persistent bool, extra []string) *Server {
	t.Helper()
	p, err := Launch(context.Background(), Options{Dir: t.TempDir(), Persistent: persistent, Extra: extra})
	if errors.Is(err, ErrNotFound) {
		t.Fatalf("redistest: %v; run `make test-deps` to install redis-server", err)
	}
	if err != nil {
		t.Fatalf("redistest: %v", err)
	}
	t.Cleanup(p.kill)
	return &Server{p: p}
}

// Addr is the server's host:port, for redis.Options.Addr.
func (s *Server) Addr() string {
	return s.p.Addr()
}

// URL is the server's redis:// URL selecting database 0, for redis.ParseURL.
func (s *Server) URL() string {
	return "redis://" + s.Addr() + "/0"
}

// Stop kills the server with SIGKILL and waits for it to exit, to simulate a
// crash or an outage. Calling Stop on a stopped server does nothing.
func (s *Server) Stop(t testing.TB) {
	t.Helper()
	s.p.kill()
}

// Restart starts the server again on the same port (with an empty data set,
// unless it came from StartPersistent) and waits until it answers PING. The running server, if any, is killed
// first.
func (s *Server) Restart(t testing.TB) {
	t.Helper()
	s.p.kill()
	var err error
	// The old socket may linger for a moment after SIGKILL.
	deadline := time.Now().Add(startTimeout)
	for {
		if err = s.p.launch(context.Background()); err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("redistest: restarting redis-server on port %d: %v", s.p.port, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func findBinary() (string, error) {
	if p, err := exec.LookPath("redis-server"); err == nil {
		return p, nil
	}
	for _, p := range binCandidates {
		if fi, err := os.Stat(p); err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", ErrNotFound
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// launch starts redis-server on p.port and waits for PONG; on failure the
// process is gone and the error carries the tail of its log.
func (p *Process) launch(ctx context.Context) error {
	logPath := filepath.Join(p.dir, "redis.log")
	appendonly := []string{"--appendonly", "no"}
	switch {
	case p.persistent:
		appendonly = []string{"--appendonly", "yes", "--appendfsync", "always"}
	case p.appendFsync != "":
		appendonly = []string{"--appendonly", "yes", "--appendfsync", p.appendFsync}
	}
	args := []string{
		"--port", strconv.Itoa(p.port),
		"--bind", "127.0.0.1",
		"--protected-mode", "yes",
		"--save", "",
	}
	args = append(args, appendonly...)
	args = append(args,
		"--dir", p.dir,
		"--logfile", logPath,
		"--daemonize", "no",
		"--databases", "16",
	)
	args = append(args, p.extra...)
	if p.config != "" {
		args = append([]string{p.config}, args...)
	}
	cmd := exec.Command(p.bin, args...)
	cmd.Dir = p.dir
	if err := cmd.Start(); err != nil {
		return err
	}
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait()
		close(exited)
	}()
	p.mu.Lock()
	p.cmd, p.exited = cmd, exited
	p.mu.Unlock()

	if err := waitPing(ctx, p.Addr(), exited); err != nil {
		p.kill()
		return fmt.Errorf("%w; log: %s", err, logTail(logPath))
	}
	return nil
}

func (p *Process) kill() {
	p.mu.Lock()
	cmd, exited := p.cmd, p.exited
	p.cmd, p.exited = nil, nil
	p.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Kill()
	<-exited
}

// waitPing polls addr with a raw RESP PING until it answers +PONG, the
// process exits, ctx is done, or startTimeout passes.
func waitPing(ctx context.Context, addr string, exited <-chan struct{}) error {
	deadline := time.Now().Add(startTimeout)
	var lastErr error
	for time.Now().Before(deadline) {
		select {
		case <-exited:
			return errors.New("redis-server exited during start-up")
		case <-ctx.Done():
			return ctx.Err()
		default:
		}
		if lastErr = ping(addr); lastErr == nil {
			return nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	return fmt.Errorf("no PONG from %s within %s: %v", addr, startTimeout, lastErr)
}

func ping(addr string) error {
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
		return "(no log: " + err.Error() + ")"
	}
	b = bytes.TrimSpace(b)
	if len(b) > 2000 {
		b = b[len(b)-2000:]
	}
	return string(b)
}
