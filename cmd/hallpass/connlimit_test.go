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
