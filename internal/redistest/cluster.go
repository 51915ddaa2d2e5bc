package redistest

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// clusterSlots is the number of hash slots of a Redis Cluster.
const clusterSlots = 16384

// Cluster is a Redis Cluster of masters without replicas, each a Server
// on its own loopback port, owned by a test.
type Cluster struct {
	Nodes []*Server
}

// StartCluster runs masters (at least 1; 3 is the smallest real cluster)
// redis-server processes with --cluster-enabled yes on free loopback ports,
// splits the 16384 slots evenly with CLUSTER ADDSLOTSRANGE, joins them with
// CLUSTER MEET, and waits until every node reports cluster_state:ok and
// knows every other node. The nodes are killed in t.Cleanup.
func StartCluster(t testing.TB, masters int) *Cluster {
	t.Helper()
	cp, err := LaunchCluster(context.Background(), Options{}, masters)
	if errors.Is(err, ErrNotFound) {
		t.Fatalf("redistest: %v; run `make test-deps` to install redis-server", err)
	}
	if err != nil {
		t.Fatalf("redistest: %v", err)
	}
	t.Cleanup(cp.Stop)
	c := &Cluster{}
	for _, p := range cp.Nodes {
		c.Nodes = append(c.Nodes, &Server{p: p})
	}
	return c
}

// Addrs are the nodes' host:port, for redis.ClusterOptions.Addrs.
func (c *Cluster) Addrs() []string {
	out := make([]string, len(c.Nodes))
	for i, n := range c.Nodes {
		out[i] = n.Addr()
	}
	return out
}

// ClusterProcess is a Redis Cluster started by [LaunchCluster], without a
// testing.TB: the non-testing core of [StartCluster], also used by
// cmd/hallpass-bench.
type ClusterProcess struct {
	Nodes []*Process
}

// LaunchCluster is [StartCluster] without a testing.TB: masters
// redis-server processes started as [Launch] does with o (each in its own
// temporary directory, so o.Dir must be empty), joined into one cluster.
// The caller must call [ClusterProcess.Stop].
func LaunchCluster(ctx context.Context, o Options, masters int) (*ClusterProcess, error) {
	if masters < 1 {
		return nil, fmt.Errorf("redistest: a cluster needs at least one master, got %d", masters)
	}
	if o.Dir != "" {
		return nil, errors.New("redistest: LaunchCluster gives each node its own directory: leave Options.Dir empty")
	}
	c := &ClusterProcess{}
	for range masters {
		no := o
		no.Extra = append(slices.Clone(o.Extra),
			"--cluster-enabled", "yes",
			"--cluster-config-file", "nodes.conf",
			"--cluster-node-timeout", "2000",
		)
		p, err := Launch(ctx, no)
		if err != nil {
			c.Stop()
			return nil, err
		}
		c.Nodes = append(c.Nodes, p)
	}
	if err := c.join(ctx); err != nil {
		c.Stop()
		return nil, err
	}
	return c, nil
}

// join splits the slots between the nodes, introduces them to the first
// one and waits until every node reports the whole cluster.
func (c *ClusterProcess) join(ctx context.Context) error {
	masters := len(c.Nodes)
	per := clusterSlots / masters
	for i, n := range c.Nodes {
		lo, hi := i*per, (i+1)*per-1
		if i == masters-1 {
			hi = clusterSlots - 1
		}
		if _, err := command(n.Addr(), "CLUSTER", "ADDSLOTSRANGE", strconv.Itoa(lo), strconv.Itoa(hi)); err != nil {
			return fmt.Errorf("CLUSTER ADDSLOTSRANGE on %s: %w", n.Addr(), err)
		}
	}
	for _, n := range c.Nodes[1:] {
		if _, err := command(c.Nodes[0].Addr(), "CLUSTER", "MEET", "127.0.0.1", strconv.Itoa(n.port)); err != nil {
			return fmt.Errorf("CLUSTER MEET: %w", err)
		}
	}
	deadline := time.Now().Add(startTimeout + 10*time.Second)
	for _, n := range c.Nodes {
		for {
			err := clusterReady(n.Addr(), masters)
			if err == nil {
				break
			}
			if time.Now().After(deadline) || ctx.Err() != nil {
				return fmt.Errorf("cluster not ready on %s: %w", n.Addr(), err)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	return nil
}

// Addrs are the nodes' host:port, for redis.ClusterOptions.Addrs.
func (c *ClusterProcess) Addrs() []string {
	out := make([]string, len(c.Nodes))
	for i, n := range c.Nodes {
		out[i] = n.Addr()
	}
	return out
}

// Stop stops every node (see [Process.Stop]).
func (c *ClusterProcess) Stop() {
	for _, n := range c.Nodes {
		n.Stop()
	}
}

func clusterReady(addr string, masters int) error {
	info, err := command(addr, "CLUSTER", "INFO")
	if err != nil {
		return err
	}
	if !strings.Contains(info, "cluster_state:ok") {
		return errors.New("cluster_state is not ok")
	}
	want := "cluster_known_nodes:" + strconv.Itoa(masters) + "\r\n"
	if !strings.Contains(info, want) {
		return errors.New("not every node is known yet")
	}
	return nil
}

// command sends one command in RESP and returns a simple, integer or bulk
// string reply; an error reply is an error.
func command(addr string, args ...string) (string, error) {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return "", err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	var b strings.Builder
	fmt.Fprintf(&b, "*%d\r\n", len(args))
	for _, a := range args {
		fmt.Fprintf(&b, "$%d\r\n%s\r\n", len(a), a)
	}
	if _, err := io.WriteString(c, b.String()); err != nil {
		return "", err
	}
	r := bufio.NewReader(c)
	line, err := r.ReadString('\n')
	if err != nil {
		return "", err
	}
	line = strings.TrimSuffix(line, "\r\n")
	if line == "" {
		return "", errors.New("empty reply")
	}
	switch line[0] {
	case '+', ':':
		return line[1:], nil
	case '-':
		return "", errors.New(line[1:])
	case '$':
		n, err := strconv.Atoi(line[1:])
		if err != nil || n < 0 {
			return "", fmt.Errorf("unexpected reply %q", line)
		}
		buf := make([]byte, n+2)
		if _, err := io.ReadFull(r, buf); err != nil {
			return "", err
		}
		return string(buf[:n]), nil
	}
	return "", fmt.Errorf("unexpected reply %q", line)
}
