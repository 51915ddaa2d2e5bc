package redistest

import (
	"strings"
	"testing"
)

func TestStartPersistentKeepsDataAcrossRestart(t *testing.T) {
	s := StartPersistent(t)
	if _, err := command(s.Addr(), "SET", "k", "v"); err != nil {
		t.Fatal(err)
	}
	s.Stop(t)
	s.Restart(t)
	if v, err := command(s.Addr(), "GET", "k"); err != nil || v != "v" {
		t.Fatalf("GET after restart = %q, %v; want the value kept", v, err)
	}
}

func TestRestartOfPlainServerLosesData(t *testing.T) {
	s := Start(t)
	if _, err := command(s.Addr(), "SET", "k", "v"); err != nil {
		t.Fatal(err)
	}
	s.Restart(t)
	// command reports the nil bulk reply ($-1) of a missing key as an error.
	if v, err := command(s.Addr(), "GET", "k"); err == nil || !strings.Contains(err.Error(), "$-1") {
		t.Fatalf("GET after restart = %q, %v; want the key gone", v, err)
	}
}

func TestStartCluster(t *testing.T) {
	c := StartCluster(t, 3)
	if len(c.Addrs()) != 3 {
		t.Fatalf("Addrs = %v", c.Addrs())
	}
	for _, a := range c.Addrs() {
		info, err := command(a, "CLUSTER", "INFO")
		if err != nil || !strings.Contains(info, "cluster_state:ok") || !strings.Contains(info, "cluster_size:3") {
			t.Fatalf("CLUSTER INFO on %s = %q, %v", a, info, err)
		}
	}
	// A key lands on one master; the others redirect.
	moved := 0
	for _, a := range c.Addrs() {
		if _, err := command(a, "SET", "hallpass:{rev}:x", "1"); err != nil {
			if !strings.HasPrefix(err.Error(), "MOVED") {
				t.Fatalf("SET on %s: %v", a, err)
			}
			moved++
		}
	}
	if moved != 2 {
		t.Fatalf("%d nodes redirected, want 2", moved)
	}
}
