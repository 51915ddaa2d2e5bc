package redistest

import (
	"context"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestLaunchAppendFsync: Options.AppendFsync turns the append-only file on
// with that policy; an unknown policy is refused.
func TestLaunchAppendFsync(t *testing.T) {
	for _, policy := range []string{"everysec", "always"} {
		t.Run(policy, func(t *testing.T) {
			p, err := Launch(context.Background(), Options{Dir: t.TempDir(), AppendFsync: policy})
			if err != nil {
				t.Fatal(err)
			}
			defer p.Stop()
			info, err := command(p.Addr(), "INFO", "persistence")
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(info, "aof_enabled:1\r\n") {
				t.Errorf("INFO persistence without aof_enabled:1:\n%s", info)
			}
			want := "$11\r\nappendfsync\r\n$" + strconv.Itoa(len(policy)) + "\r\n" + policy + "\r\n"
			if got := configGet(t, p.Addr(), "appendfsync"); got != "*2\r\n"+want {
				t.Errorf("CONFIG GET appendfsync: %q, want %q", got, "*2\r\n"+want)
			}
		})
	}
	if _, err := Launch(context.Background(), Options{AppendFsync: "sometimes"}); err == nil {
		t.Error("AppendFsync sometimes: no error")
	}
}

// configGet returns the raw RESP reply of CONFIG GET name (an array,
// which command does not read).
func configGet(t *testing.T, addr, name string) string {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Write([]byte("*3\r\n$6\r\nCONFIG\r\n$3\r\nGET\r\n$" + strconv.Itoa(len(name)) + "\r\n" + name + "\r\n")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 256)
	n, err := c.Read(buf)
	if err != nil {
		t.Fatal(err)
	}
	return string(buf[:n])
}

// TestLaunchClusterRefuses: no masters, or one directory for every node.
func TestLaunchClusterRefuses(t *testing.T) {
	for _, tc := range []struct {
		o       Options
		masters int
	}{
		{Options{}, 0},
		{Options{Dir: t.TempDir()}, 3},
	} {
		if c, err := LaunchCluster(context.Background(), tc.o, tc.masters); err == nil {
			c.Stop()
			t.Errorf("LaunchCluster(%+v, %d): no error", tc.o, tc.masters)
		}
	}
}
