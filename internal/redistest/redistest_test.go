package redistest

import (
	"fmt"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestStartAnswersPing(t *testing.T) {
	s := Start(t)
	if err := ping(s.Addr()); err != nil {
		t.Fatalf("ping: %v", err)
	}
	if !strings.HasPrefix(s.Addr(), "127.0.0.1:") || strings.HasSuffix(s.Addr(), ":6379") {
		t.Fatalf("Addr() = %q, want a private loopback port", s.Addr())
	}
	if want := "redis://" + s.Addr() + "/0"; s.URL() != want {
		t.Fatalf("URL() = %q, want %q", s.URL(), want)
	}
}

func TestServersAreSeparate(t *testing.T) {
	a, b := Start(t), Start(t)
	if a.Addr() == b.Addr() {
		t.Fatalf("two servers share %s", a.Addr())
	}
}

func TestStopRestartSamePort(t *testing.T) {
	s := Start(t)
	addr := s.Addr()
	s.Stop(t)
	if err := ping(addr); err == nil {
		t.Fatal("server still answers after Stop")
	}
	s.Stop(t) // idempotent
	s.Restart(t)
	if s.Addr() != addr {
		t.Fatalf("Restart moved from %s to %s", addr, s.Addr())
	}
	if err := ping(addr); err != nil {
		t.Fatalf("ping after Restart: %v", err)
	}
	s.Restart(t) // restart of a running server
	if err := ping(addr); err != nil {
		t.Fatalf("ping after second Restart: %v", err)
	}
}

// fatalTB records Fatalf and ends the calling goroutine as testing.T does.
type fatalTB struct {
	testing.TB
	msg string
}

func (f *fatalTB) Helper() {}
func (f *fatalTB) Fatalf(format string, args ...any) {
	f.msg = fmt.Sprintf(format, args...)
	runtime.Goexit()
}

func TestMissingBinaryFailsWithHint(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	saved := binCandidates
	binCandidates = []string{"/nonexistent/redis-server", "/nonexistent/sbin/redis-server"}
	t.Cleanup(func() { binCandidates = saved })

	f := &fatalTB{TB: t}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		Start(f)
		t.Error("Start returned without failing")
	}()
	wg.Wait()
	if !strings.Contains(f.msg, "make test-deps") {
		t.Fatalf("failure message %q does not point to `make test-deps`", f.msg)
	}
}

func TestSentinelFailover(t *testing.T) {
	s := StartSentinel(t)
	oldMaster, oldReplica := s.Master.Addr(), s.Replica.Addr()
	if _, err := command(oldMaster, "SET", "k", "before"); err != nil {
		t.Fatal(err)
	}
	// Replication is asynchronous, and so is a Sentinel failover: wait
	// until the replica has the write.
	err := waitFor(5*time.Second, func() error {
		_, err := command(oldReplica, "GET", "k")
		return err
	})
	if err != nil {
		t.Fatalf("the replica never had the write: %v", err)
	}
	s.Failover(t)
	if s.Master.Addr() != oldReplica || s.Replica.Addr() != oldMaster {
		t.Fatalf("after failover master %s replica %s, want %s and %s", s.Master.Addr(), s.Replica.Addr(), oldReplica, oldMaster)
	}
	if got, err := command(s.Master.Addr(), "GET", "k"); err != nil || got != "before" {
		t.Fatalf("GET on the new master = %q, %v; want the write made before the failover", got, err)
	}
	if _, err := command(s.Master.Addr(), "SET", "k", "after"); err != nil {
		t.Fatalf("SET on the new master: %v", err)
	}
}
