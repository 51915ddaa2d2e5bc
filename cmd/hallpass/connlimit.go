package main

import (
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"

	"github.com/hallpass/hallpass/issuer"
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
// connections in all, or beyond perIP from one address. An address counts
// as the issuer's per-address budgets count it (issuer.ClientKey): an IPv6
// host usually holds a whole /64, so its connections are counted per /64,
// or one host could open perIP connections from each of 2^64 addresses and
// hold every slot. Connections from trusted proxies count toward the total
// only: every client behind a proxy shares its address.
type capListener struct {
	net.Listener
	max, perIP int
	trusted    []netip.Prefix
	log        *slog.Logger

	mu      sync.Mutex
	open    int
	byIP    map[string]int // by issuer.ClientKey
	refused atomic.Uint64
}

// capConnections wraps ln; max or perIP 0 means no cap of that kind.
func capConnections(ln net.Listener, max, perIP int, trusted []netip.Prefix, log *slog.Logger) net.Listener {
	if max == 0 && perIP == 0 {
		return ln
	}
	return &capListener{Listener: ln, max: max, perIP: perIP, trusted: trusted, log: log, byIP: map[string]int{}}
}

func (l *capListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		if key, ok := l.admit(peerAddr(c)); ok {
			return &cappedConn{Conn: c, l: l, key: key}, nil
		}
		c.Close()
		if n := l.refused.Add(1); n&(n-1) == 0 { // log at 1, 2, 4, 8, ...
			l.log.Warn("connection refused: connection cap reached", slog.Uint64("refused_total", n))
		}
	}
}

// admit counts a new connection from ip, or refuses it. key is what the
// connection counts under per address, "" when it counts toward the total
// only (a trusted proxy, a peer without an address, no per-address cap):
// a trusted proxy may share a /64 with clients, so its connections must
// never give back their slots.
func (l *capListener) admit(ip netip.Addr) (key string, ok bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.perIP > 0 && ip.IsValid() && !l.isTrusted(ip) {
		key = issuer.ClientKey(ip)
	}
	if (l.max > 0 && l.open >= l.max) || (key != "" && l.byIP[key] >= l.perIP) {
		return "", false
	}
	l.open++
	if key != "" {
		l.byIP[key]++
	}
	return key, true
}

func (l *capListener) release(key string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.open--
	if key == "" {
		return
	}
	if n, ok := l.byIP[key]; ok {
		if n <= 1 {
			delete(l.byIP, key)
		} else {
			l.byIP[key] = n - 1
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

// peerAddr is the connection's peer address, unmapped and without a zone
// (netip.Prefix.Contains never matches a zoned address, so a trusted
// link-local proxy would otherwise be capped like a client).
func peerAddr(c net.Conn) netip.Addr {
	ap, err := netip.ParseAddrPort(c.RemoteAddr().String())
	if err != nil {
		return netip.Addr{}
	}
	return ap.Addr().Unmap().WithZone("")
}

// cappedConn gives its slot back once, on the first Close.
type cappedConn struct {
	net.Conn
	l    *capListener
	key  string // per address; "" for the total only
	once sync.Once
}

func (c *cappedConn) Close() error {
	c.once.Do(func() { c.l.release(c.key) })
	return c.Conn.Close()
}
