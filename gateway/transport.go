package gateway

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"sync"
	"time"
)

// Defaults of TransportOptions.
const (
	// DefaultUpstreamMaxIdle is how many idle connections to the upstream
	// are kept for reuse: more than the requests a gateway usually has in
	// flight, so that a busy gateway reuses its connections instead of
	// opening one per request (Go's default keeps 2 per host: the rest
	// close after one use and linger in TIME-WAIT).
	DefaultUpstreamMaxIdle = 1024
	// DefaultUpstreamIdleTimeout closes an upstream connection idle this
	// long; below the usual keep-alive timeouts of upstream servers
	// (nginx 75 s, Go's http.Server 120 s by hallpass default), so that
	// the gateway, not the upstream, closes an idle connection.
	DefaultUpstreamIdleTimeout = 60 * time.Second
	// DefaultUpstreamHeaderTimeout bounds the wait for the upstream's
	// response headers after the request was sent.
	DefaultUpstreamHeaderTimeout = 60 * time.Second
	// DefaultUpstreamDialTimeout bounds connecting to the upstream, and
	// the TLS handshake with it.
	DefaultUpstreamDialTimeout = 10 * time.Second
)

// TransportOptions size the transport to the upstream. The zero value
// selects every default.
type TransportOptions struct {
	// MaxIdle is how many idle connections are kept for reuse (all to
	// the one upstream host); at least the requests the gateway has in
	// flight at its busiest. Default DefaultUpstreamMaxIdle.
	MaxIdle int
	// IdleTimeout closes a connection idle this long. Default
	// DefaultUpstreamIdleTimeout.
	IdleTimeout time.Duration
	// ResponseHeaderTimeout bounds the wait for the upstream's response
	// headers (502 past it); not the body, which streams at the
	// upstream's pace. Default DefaultUpstreamHeaderTimeout.
	ResponseHeaderTimeout time.Duration
	// DialTimeout bounds connecting and the TLS handshake. Default
	// DefaultUpstreamDialTimeout.
	DialTimeout time.Duration
}

// NewTransport returns the transport Config.Transport defaults to:
// HTTP/1.1 keep-alive with up to o.MaxIdle idle connections to the
// upstream, HTTP/2 when an https upstream offers it (one multiplexed
// connection), no proxy from the environment (the upstream is reached
// directly), no transparent compression (the client's Accept-Encoding
// goes through as sent), and every phase before the body bounded.
func NewTransport(o TransportOptions) (*http.Transport, error) {
	if o.MaxIdle < 0 || o.IdleTimeout < 0 || o.ResponseHeaderTimeout < 0 || o.DialTimeout < 0 {
		return nil, fmt.Errorf("%w: %w", ErrConfig, errors.New("negative transport option"))
	}
	if o.MaxIdle == 0 {
		o.MaxIdle = DefaultUpstreamMaxIdle
	}
	if o.IdleTimeout == 0 {
		o.IdleTimeout = DefaultUpstreamIdleTimeout
	}
	if o.ResponseHeaderTimeout == 0 {
		o.ResponseHeaderTimeout = DefaultUpstreamHeaderTimeout
	}
	if o.DialTimeout == 0 {
		o.DialTimeout = DefaultUpstreamDialTimeout
	}
	d := &net.Dialer{Timeout: o.DialTimeout, KeepAlive: 30 * time.Second}
	return &http.Transport{
		DialContext:           d.DialContext,
		ForceAttemptHTTP2:     true, // a custom dialer turns it off otherwise
		MaxIdleConns:          o.MaxIdle,
		MaxIdleConnsPerHost:   o.MaxIdle,
		IdleConnTimeout:       o.IdleTimeout,
		TLSHandshakeTimeout:   o.DialTimeout,
		ResponseHeaderTimeout: o.ResponseHeaderTimeout,
		ExpectContinueTimeout: time.Second,
		DisableCompression:    true,
	}, nil
}

// copyBufferSize is the size of the buffers that relay response bodies,
// httputil.ReverseProxy's own default.
const copyBufferSize = 32 << 10

// bufferPool lends the proxy its copy buffers (httputil.BufferPool):
// without one, httputil.ReverseProxy allocates 32 KiB per request, which
// is most of a proxied request's garbage.
type bufferPool struct{ p sync.Pool }

func newBufferPool() *bufferPool {
	return &bufferPool{p: sync.Pool{New: func() any { b := make([]byte, copyBufferSize); return &b }}}
}

func (b *bufferPool) Get() []byte { return *(b.p.Get().(*[]byte)) }

func (b *bufferPool) Put(buf []byte) {
	if cap(buf) == copyBufferSize {
		buf = buf[:copyBufferSize]
		b.p.Put(&buf)
	}
}
