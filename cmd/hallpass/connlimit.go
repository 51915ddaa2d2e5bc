package main

import (
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
)

// Default connection caps of a public listener. A mobile carrier's NAT can
// put thousands of players behind one address, so the per-address cap is
// generous; it stops one host from holding every connection with slow
// clients, not a crowd.
const (
	defaultMaxConns      = 10000
	defaultMaxConnsPerIP = 512
)

// capListener refuses (closes at once) a connection beyond max open
// connections in all, or beyond perIP from one address. Connections from
// trusted proxies count toward the total only: every client behind a proxy
// shares its address.
type capListener struct {
	net.Listener
	max, perIP int
	trusted    []netip.Prefix
	log        *slog.Logger

	mu      sync.Mutex
	open    int
	byIP    map[netip.Addr]int
	refused atomic.Uint64
}

// capConnections wraps ln; max or perIP 0 means no cap of that kind.
func capConnections(ln net.Listener, max, perIP int, trusted []netip.Prefix, log *slog.Logger) net.Listener {
	if max == 0 && perIP == 0 {
		return ln
	}
	return &capListener{Listener: ln, max: max, perIP: perIP, trusted: trusted, log: log, byIP: map[netip.Addr]int{}}
}

func (l *capListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		ip := peerAddr(c)
		if l.admit(ip) {
			return &cappedConn{Conn: c, l: l, ip: ip}, nil
		}
		c.Close()
		if n := l.refused.Add(1); n&(n-1) == 0 { // log at 1, 2, 4, 8, ...
			l.log.Warn("connection refused: connection cap reached", slog.Uint64("refused_total", n))
		}
	}
}

// admit counts a new connection from ip, or refuses it.
func (l *capListener) admit(ip netip.Addr) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	perIP := l.perIP > 0 && ip.IsValid() && !l.isTrusted(ip)
	if (l.max > 0 && l.open >= l.max) || (perIP && l.byIP[ip] >= l.perIP) {
		return false
	}
	l.open++
	if perIP {
		l.byIP[ip]++
	}
	return true
}

func (l *capListener) release(ip netip.Addr) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.open--
	if n, ok := l.byIP[ip]; ok {
		if n <= 1 {
			delete(l.byIP, ip)
		} else {
			l.byIP[ip] = n - 1
		}
	}
}

func (l *capListener) isTrusted(ip netip.Addr) bool {
	for _, p := range l.trusted {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}

func peerAddr(c net.Conn) netip.Addr {
	ap, err := netip.ParseAddrPort(c.RemoteAddr().String())
	if err != nil {
		return netip.Addr{}
	}
	return ap.Addr().Unmap()
}

// cappedConn gives its slot back once, on the first Close.
type cappedConn struct {
	net.Conn
	l    *capListener
	ip   netip.Addr
	once sync.Once
}

func (c *cappedConn) Close() error {
	c.once.Do(func() { c.l.release(c.ip) })
	return c.Conn.Close()
}
