// Package nginxtest runs a real nginx for tests: one process per test, on a
// free loopback port, with its own temporary prefix and configuration, in
// the foreground (daemon off), killed in t.Cleanup.
//
// nginx must be installed (the Debian package nginx; scripts/ensure-nginx.sh,
// called by make test-deps, installs it). A missing nginx fails the test: it
// never skips, so that CI cannot pass without running the end-to-end tests.
package nginxtest

import (
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Listen is the placeholder for the listen address in a configuration given
// to Start: "listen @LISTEN@;" becomes "listen 127.0.0.1:PORT;".
const Listen = "@LISTEN@"

const startTimeout = 10 * time.Second

// Server is a running nginx owned by a test.
type Server struct {
	addr   string
	prefix string
}

// Addr is the loopback host:port nginx listens on.
func (s *Server) Addr() string { return s.addr }

// URL is http://Addr.
func (s *Server) URL() string { return "http://" + s.addr }

// ErrorLog returns nginx's error log so far (for failure messages).
func (s *Server) ErrorLog() string {
	b, _ := os.ReadFile(filepath.Join(s.prefix, "error.log"))
	return string(b)
}

// Binary finds nginx on PATH or in /usr/sbin (Debian installs it there,
// outside a normal user's PATH).
func Binary() (string, error) {
	if p, err := exec.LookPath("nginx"); err == nil {
		return p, nil
	}
	for _, p := range []string{"/usr/sbin/nginx", "/usr/local/sbin/nginx", "/usr/local/nginx/sbin/nginx"} {
		if fi, err := os.Stat(p); err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", errors.New("nginxtest: nginx not found; run scripts/ensure-nginx.sh (make test-deps)")
}

// Start runs nginx with httpBlock as the body of its http {} block. The
// block must contain a server with "listen @LISTEN@;" (see Listen); Start
// picks a free loopback port for it. Temporary paths, logs and the pid file
// live in a t.TempDir prefix; nginx runs as a single foreground process
// (daemon off, master_process off), so it never drops privileges to another
// user that could not read that prefix. Start waits until the port accepts
// connections and fails the test (with nginx's error log) otherwise.
func Start(t testing.TB, httpBlock string) *Server {
	t.Helper()
	bin, err := Binary()
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(httpBlock, Listen) {
		t.Fatalf("nginxtest: the configuration has no %s placeholder", Listen)
	}
	var lastErr error
	for range 3 { // a free port can be taken between probe and bind
		s, err := start(t, bin, httpBlock)
		if err == nil {
			return s
		}
		lastErr = err
		if !strings.Contains(err.Error(), "Address already in use") {
			break
		}
	}
	t.Fatal(lastErr)
	return nil
}

// start makes one attempt to run nginx on a freshly probed port.
func start(t testing.TB, bin, httpBlock string) (*Server, error) {
	prefix := t.TempDir()
	if err := makePrefix(prefix); err != nil {
		return nil, err
	}
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	s := &Server{addr: addr, prefix: prefix}
	confPath, err := writeConfig(prefix, addr, httpBlock)
	if err != nil {
		return nil, err
	}
	// -e: errors before the configuration is read go to the prefix too,
	// not to the package's /var/log/nginx.
	cmd := exec.Command(bin, "-p", prefix, "-c", confPath, "-e", filepath.Join(prefix, "error.log"))
	cmd.Dir = prefix
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("nginxtest: start %s: %w", bin, err)
	}
	if err := s.await(t, cmd); err != nil {
		return nil, err
	}
	return s, nil
}

// makePrefix creates the temporary and log directories nginx needs under prefix.
func makePrefix(prefix string) error {
	for _, d := range []string{"tmp/body", "tmp/proxy", "tmp/fastcgi", "tmp/uwsgi", "tmp/scgi", "logs"} {
		if err := os.MkdirAll(filepath.Join(prefix, d), 0o700); err != nil {
			return err
		}
	}
	return nil
}

// writeConfig writes prefix/nginx.conf wrapping httpBlock, listening on addr, and returns its path.
func writeConfig(prefix, addr, httpBlock string) (string, error) {
	conf := fmt.Sprintf(`daemon off;
master_process off;
worker_processes 1;
pid %[1]s/nginx.pid;
error_log %[1]s/error.log info;
events { worker_connections 256; }
http {
    access_log %[1]s/access.log;
    client_body_temp_path %[1]s/tmp/body;
    proxy_temp_path %[1]s/tmp/proxy;
    fastcgi_temp_path %[1]s/tmp/fastcgi;
    uwsgi_temp_path %[1]s/tmp/uwsgi;
    scgi_temp_path %[1]s/tmp/scgi;
%[2]s
}
`, prefix, strings.ReplaceAll(httpBlock, Listen, addr))
	confPath := filepath.Join(prefix, "nginx.conf")
	if err := os.WriteFile(confPath, []byte(conf), 0o600); err != nil {
		return "", err
	}
	return confPath, nil
}

// await waits until the started cmd accepts connections on s.addr, then leaves killing it to t.Cleanup.
func (s *Server) await(t testing.TB, cmd *exec.Cmd) error {
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	stop := func() {
		_ = cmd.Process.Kill()
		<-exited
	}
	deadline := time.Now().Add(startTimeout)
	for {
		select {
		case err := <-exited:
			exited <- err // for stop
			return fmt.Errorf("nginxtest: nginx exited (%v):\n%s", err, s.ErrorLog())
		default:
		}
		if c, err := net.DialTimeout("tcp", s.addr, 200*time.Millisecond); err == nil {
			c.Close()
			t.Cleanup(stop)
			return nil
		}
		if time.Now().After(deadline) {
			stop()
			return fmt.Errorf("nginxtest: nginx did not listen on %s within %v:\n%s", s.addr, startTimeout, s.ErrorLog())
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
