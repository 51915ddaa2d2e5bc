package issuer

import (
	"context"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"
)

const (
	headerRequestID = "X-Request-Id"
	ctxRequestID    = "hallpass.request_id"
	debugLevel      = slog.LevelDebug
)

// Log attributes. The access log and every other line go through these
// allow-listed fields only: never a header, a body, a token or a proof.
func attrRequestID(id string) slog.Attr  { return slog.String("request_id", id) }
func attrRoute(c echo.Context) slog.Attr { return slog.String("route", routeOf(c)) }
func attrCode(code string) slog.Attr     { return slog.String("code", code) }

// attrErr logs an error's text. Errors of this module and its dependencies
// carry fixed text by design (they never quote tokens or proofs); errors of
// the store may name ids, which are not secret.
func attrErr(err error) slog.Attr {
	if err == nil {
		return slog.String("error", "")
	}
	return slog.String("error", err.Error())
}

func levelFor(ae *apiError) slog.Level {
	if ae.status == http.StatusServiceUnavailable {
		return slog.LevelWarn
	}
	return slog.LevelError
}

// routeOf is the route template, bounded to the registered routes so that
// metrics labels cannot be blown up by random paths.
func routeOf(c echo.Context) string {
	if p := c.Path(); p != "" {
		return p
	}
	return "unmatched"
}

func requestID(c echo.Context) string {
	if v, ok := c.Get(ctxRequestID).(string); ok {
		return v
	}
	return ""
}

// newRequestID returns 96 random bits, base64url. If the random source
// fails, a counter keeps ids unique within the process: a request id is not
// a secret, and failing the request over it would be worse.
func (s *Server) newRequestID() string {
	var b [12]byte
	if _, err := io.ReadFull(s.rand, b[:]); err != nil {
		binary.BigEndian.PutUint64(b[:8], uint64(time.Now().UnixNano()))
		binary.BigEndian.PutUint32(b[8:], uint32(s.ridFallback.Add(1)))
	}
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// observe is the outermost middleware: request id, panic recovery, access
// log and request metrics. The request id is always made here, never taken
// from the client, so it can be trusted in logs.
func (s *Server) observe(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) (err error) {
		start := time.Now()
		rid := s.newRequestID()
		c.Set(ctxRequestID, rid)
		h := c.Response().Header()
		h.Set(headerRequestID, rid)
		h.Set("X-Content-Type-Options", "nosniff")
		func() {
			defer func() {
				if r := recover(); r != nil {
					if r == http.ErrAbortHandler {
						panic(r)
					}
					err = errInternal(fmt.Errorf("panic: %v", panicText(r)))
				}
			}()
			err = next(c)
		}()
		if err != nil {
			c.Error(err) // writes the problem response through errorHandler
		}
		status := c.Response().Status
		route := routeOf(c)
		method := c.Request().Method
		if !isKnownMethod(method) {
			method = "OTHER"
		}
		d := time.Since(start)
		s.metrics.requests.WithLabelValues(route, method, strconv.Itoa(status)).Inc()
		s.metrics.duration.WithLabelValues(route).Observe(d.Seconds())
		s.log.LogAttrs(c.Request().Context(), slog.LevelInfo, "request",
			slog.String("method", method),
			slog.String("route", route),
			slog.Int("status", status),
			slog.Float64("duration", d.Seconds()),
			attrRequestID(rid),
			slog.String("client_ip", c.RealIP()),
		)
		return nil
	}
}

// panicText keeps only the type of a panic value that is not an error or a
// string: a panic should never drag request content into a log.
func panicText(r any) string {
	switch v := r.(type) {
	case error:
		return v.Error()
	case string:
		return v
	}
	return fmt.Sprintf("%T", r)
}

func isKnownMethod(m string) bool {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodOptions, http.MethodConnect, http.MethodTrace:
		return true
	}
	return false
}

// limitBody refuses a declared Content-Length over the limit at once and
// caps what a handler can read of any other body.
func (s *Server) limitBody(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		r := c.Request()
		if r.ContentLength > s.maxBody {
			return fail(http.StatusRequestEntityTooLarge, CodeRequestTooLarge, nil)
		}
		r.Body = http.MaxBytesReader(c.Response(), r.Body, s.maxBody)
		return next(c)
	}
}

// readBody reads the whole (limited) body.
func readBody(c echo.Context) ([]byte, error) {
	b, err := io.ReadAll(c.Request().Body)
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return nil, fail(http.StatusRequestEntityTooLarge, CodeRequestTooLarge, nil)
		}
		return nil, errInvalidRequest(errors.New("reading the body failed"))
	}
	return b, nil
}

// mediaType returns the lowercased media type of the request without
// parameters.
func mediaType(c echo.Context) string {
	ct := c.Request().Header.Get(echo.HeaderContentType)
	if i := strings.IndexByte(ct, ';'); i >= 0 {
		ct = ct[:i]
	}
	return strings.ToLower(strings.TrimSpace(ct))
}

// ipExtractor returns the client address: the peer address, or, when the
// peer is a trusted proxy, the nearest untrusted address of
// X-Forwarded-For (walking from the right). With no trusted proxies,
// X-Forwarded-For is ignored entirely.
func ipExtractor(trusted []netip.Prefix) echo.IPExtractor {
	if len(trusted) == 0 {
		return echo.ExtractIPDirect()
	}
	opts := []echo.TrustOption{echo.TrustLoopback(false), echo.TrustLinkLocal(false), echo.TrustPrivateNet(false)}
	for _, p := range trusted {
		p = p.Masked()
		opts = append(opts, echo.TrustIPRange(&net.IPNet{
			IP:   net.IP(p.Addr().AsSlice()),
			Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen()),
		}))
	}
	return echo.ExtractIPFromXFFHeader(opts...)
}

// storeCtx bounds one store operation so that a store that does not answer
// turns into a quick 503 instead of a hung request.
func (s *Server) storeCtx(parent context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(parent, s.storeTimeout)
}
