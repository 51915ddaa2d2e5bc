package main

import (
	"io"
	"log/slog"
	"net"
	"net/netip"
	"testing"
	"time"
)

// TestConnectionCaps: beyond the per-address cap a client's connection is
// closed at once; connections from a trusted proxy count only toward the
// total; a closed connection frees its slot. Reproduction before: 17k slow
// connections from one address were all held.
func TestConnectionCaps(t *testing.T) {
	tests := []struct {
		name         string
		max, perIP   int
		trusted      []netip.Prefix
		dial, wantOK int
	}{
		{name: "per address", max: 100, perIP: 3, dial: 6, wantOK: 3},
		{name: "in all", max: 4, perIP: 0, dial: 6, wantOK: 4},
		{name: "trusted proxy counts toward the total only", max: 5, perIP: 2, trusted: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}, dial: 7, wantOK: 5},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			raw, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			ln := capConnections(raw, tt.max, tt.perIP, tt.trusted, slog.New(slog.DiscardHandler))
			defer ln.Close()
			accepted := make(chan net.Conn, 100)
			go func() {
				for {
					c, err := ln.Accept()
					if err != nil {
						return
					}
					accepted <- c
				}
			}()
			var clients []net.Conn
			for range tt.dial {
				c, err := net.Dial("tcp", raw.Addr().String())
				if err != nil {
					t.Fatal(err)
				}
				defer c.Close()
				clients = append(clients, c)
			}
			if got := countAlive(clients); got != tt.wantOK {
				t.Fatalf("%d connections kept open, want %d", got, tt.wantOK)
			}
			// Closing one accepted connection frees a slot.
			(<-accepted).Close()
			c, err := net.Dial("tcp", raw.Addr().String())
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if countAlive([]net.Conn{c}) != 1 {
				t.Fatal("a freed slot was not given to the next connection")
			}
		})
	}
}

// countAlive counts connections the server has not closed: a read that
// times out means the connection is open.
func countAlive(cs []net.Conn) int {
	time.Sleep(100 * time.Millisecond)
	n := 0
	for _, c := range cs {
		c.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
		_, err := c.Read(make([]byte, 1))
		if ne, ok := err.(net.Error); ok && ne.Timeout() {
			n++
		} else if err != io.EOF && err != nil {
			continue
		}
	}
	return n
}

// TestConnectionCapByNetwork: the per-address cap counts an address as the
// issuer's per-address budgets do. Before, it counted single IPv6
// addresses: one host with a /64 opened 512 connections from each of as
// many addresses as it liked and held every slot of --max-connections.
func TestConnectionCapByNetwork(t *testing.T) {
	type step struct {
		addr  string
		want  bool
		close bool // close the connection admitted in this step at once
	}
	tests := []struct {
		name    string
		trusted []netip.Prefix
		steps   []step
	}{
		{name: "one IPv6 /64 shares one cap", steps: []step{
			{addr: "2001:db8:1:2::1", want: true}, {addr: "2001:db8:1:2::2", want: true},
			{addr: "2001:db8:1:2:ffff:ffff:ffff:ffff", want: false}, {addr: "2001:db8:1:3::1", want: true},
		}},
		{name: "an IPv4-mapped address counts as the IPv4 address", steps: []step{
			{addr: "203.0.113.7", want: true}, {addr: "::ffff:203.0.113.7", want: true},
			{addr: "203.0.113.7", want: false}, {addr: "203.0.113.8", want: true},
		}},
		{name: "a 6to4 address counts as the IPv4 address it is made from", steps: []step{
			{addr: "203.0.113.7", want: true}, {addr: "2002:cb00:7107::1", want: true},
			{addr: "2002:cb00:7107:ffff::1", want: false},
		}},
		{name: "a trusted proxy in a client's /64 gives back no slot of the client's", trusted: []netip.Prefix{netip.MustParsePrefix("2001:db8::1/128")},
			steps: []step{
				{addr: "2001:db8::2", want: true}, {addr: "2001:db8::3", want: true},
				{addr: "2001:db8::1", want: true, close: true}, {addr: "2001:db8::1", want: true, close: true},
				{addr: "2001:db8::4", want: false},
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := capConnections(nil, 100, 2, tt.trusted, slog.New(slog.DiscardHandler)).(*capListener)
			for i, s := range tt.steps {
				key, ok := l.admit(netip.MustParseAddr(s.addr))
				if ok != s.want {
					t.Fatalf("step %d: connection from %s admitted %v, want %v", i, s.addr, ok, s.want)
				}
				if ok && s.close {
					l.release(key)
				}
			}
		})
	}
}

// A zoned peer address loses its zone: netip.Prefix.Contains never matches
// a zoned address, so a trusted link-local proxy was capped as a client.
func TestPeerAddrDropsZone(t *testing.T) {
	c := addrConn{&net.TCPAddr{IP: net.ParseIP("fe80::1"), Port: 4711, Zone: "eth0"}}
	got := peerAddr(c)
	if got != netip.MustParseAddr("fe80::1") {
		t.Fatalf("peerAddr = %v, want fe80::1", got)
	}
	l := capConnections(nil, 100, 1, []netip.Prefix{netip.MustParsePrefix("fe80::/10")}, slog.New(slog.DiscardHandler)).(*capListener)
	for i := range 3 {
		if _, ok := l.admit(got); !ok {
			t.Fatalf("connection %d from the trusted link-local proxy refused", i)
		}
	}
}

type addrConn struct{ remote net.Addr }

func (addrConn) Read([]byte) (int, error)         { return 0, io.EOF }
func (addrConn) Write(b []byte) (int, error)      { return len(b), nil }
func (addrConn) Close() error                     { return nil }
func (addrConn) LocalAddr() net.Addr              { return nil }
func (c addrConn) RemoteAddr() net.Addr           { return c.remote }
func (addrConn) SetDeadline(time.Time) error      { return nil }
func (addrConn) SetReadDeadline(time.Time) error  { return nil }
func (addrConn) SetWriteDeadline(time.Time) error { return nil }
