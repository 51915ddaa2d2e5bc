package redistest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// SentinelMaster is the name the Sentinel of [StartSentinel] watches its
// master under, for redis.FailoverOptions.MasterName.
const SentinelMaster = "hallpass"

// failoverTimeout bounds [Sentinel.Failover].
const failoverTimeout = 30 * time.Second

// Sentinel is a master with one replica, watched by one Redis Sentinel
// (quorum 1), each a process on its own loopback port, owned by a test.
type Sentinel struct {
	// Master and Replica are the servers as started; after a Failover the
	// replica is the master and the master its replica.
	Master, Replica *Server
	sentinel        *Process
}

// StartSentinel runs a master, a replica of it and a Sentinel watching it
// (down-after 2 s, failover timeout 10 s), and waits until the replica is
// in sync and the Sentinel knows it. Everything is killed in t.Cleanup.
func StartSentinel(t testing.TB) *Sentinel {
	t.Helper()
	master := start(t, false, []string{"--repl-diskless-sync-delay", "0"}) // the replica syncs at once
	replica := start(t, false, []string{"--replicaof", "127.0.0.1", portOf(master.Addr())})
	dir := t.TempDir()
	conf := filepath.Join(dir, "sentinel.conf")
	// known-replica spares the Sentinel finding the replica through the
	// master's INFO, which it reads every 10 s.
	body := fmt.Sprintf("sentinel monitor %s 127.0.0.1 %s 1\n"+
		"sentinel down-after-milliseconds %[1]s 2000\n"+
		"sentinel failover-timeout %[1]s 10000\n"+
		"sentinel known-replica %[1]s 127.0.0.1 %[3]s\n",
		SentinelMaster, portOf(master.Addr()), portOf(replica.Addr()))
	if err := os.WriteFile(conf, []byte(body), 0o600); err != nil {
		t.Fatalf("redistest: %v", err)
	}
	p, err := Launch(context.Background(), Options{Dir: dir, Config: conf, Extra: []string{"--sentinel"}})
	if err != nil {
		t.Fatalf("redistest: sentinel: %v", err)
	}
	t.Cleanup(p.kill)
	s := &Sentinel{Master: master, Replica: replica, sentinel: p}
	err = waitFor(failoverTimeout, func() error {
		if err := hasField(replica.Addr(), "replication", "master_link_status:up"); err != nil {
			return err
		}
		return hasField(p.Addr(), "sentinel", "slaves=1")
	})
	if err != nil {
		t.Fatalf("redistest: sentinel set-up: %v", err)
	}
	return s
}

// Addr is the Sentinel's host:port, for redis.FailoverOptions.SentinelAddrs.
func (s *Sentinel) Addr() string {
	return s.sentinel.Addr()
}

// Failover makes the Sentinel promote the replica (SENTINEL FAILOVER) and
// waits until the Sentinel names it as the master and it answers as one.
// Master and Replica swap. The Sentinel turns the old master into a
// replica of the new one a few seconds later (it reads the old master's
// INFO every 10 s at most); until then both answer as masters.
func (s *Sentinel) Failover(t testing.TB) {
	t.Helper()
	if _, err := command(s.Addr(), "SENTINEL", "FAILOVER", SentinelMaster); err != nil {
		t.Fatalf("redistest: SENTINEL FAILOVER: %v", err)
	}
	next := s.Replica
	err := waitFor(failoverTimeout, func() error {
		if err := hasField(s.Addr(), "sentinel", "address="+next.Addr()+","); err != nil {
			return err
		}
		return hasField(next.Addr(), "replication", "role:master")
	})
	if err != nil {
		t.Fatalf("redistest: failover: %v", err)
	}
	s.Master, s.Replica = next, s.Master
}

// hasField reports an error unless INFO section of the server at addr
// holds want.
func hasField(addr, section, want string) error {
	info, err := command(addr, "INFO", section)
	if err != nil {
		return err
	}
	if !strings.Contains(info, want) {
		return fmt.Errorf("%s: INFO %s has no %q", addr, section, want)
	}
	return nil
}

// waitFor calls f every 50 ms until it returns nil or timeout passes, and
// returns its last error then.
func waitFor(timeout time.Duration, f func() error) error {
	deadline := time.Now().Add(timeout)
	for {
		err := f()
		if err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not within %s: %w", timeout, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func portOf(addr string) string {
	i := strings.LastIndexByte(addr, ':')
	if i < 0 {
		panic(errors.New("redistest: no port in " + addr))
	}
	return addr[i+1:]
}
