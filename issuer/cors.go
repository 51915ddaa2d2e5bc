package issuer

import (
	"errors"
	"net/http"
	"net/url"
	"strings"

	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"

	"github.com/hallpass/hallpass/dpop"
)

// cors lets the browser pages of Config.CORSOrigins call the API: preflight
// for the API's methods with the Authorization and DPoP headers, and the
// DPoP-Nonce, WWW-Authenticate and Retry-After headers readable by the
// page. No credentials: tokens travel in headers, never in cookies, so
// Access-Control-Allow-Credentials is never sent. Nil without origins.
func (s *Server) cors() echo.MiddlewareFunc {
	if len(s.cfg.CORSOrigins) == 0 {
		return nil
	}
	return middleware.CORSWithConfig(middleware.CORSConfig{
		AllowOrigins:  s.cfg.CORSOrigins,
		AllowMethods:  []string{http.MethodGet, http.MethodPost, http.MethodPatch, http.MethodDelete},
		AllowHeaders:  []string{echo.HeaderAuthorization, dpop.Header, echo.HeaderContentType},
		ExposeHeaders: []string{dpop.NonceHeader, echo.HeaderWWWAuthenticate, echo.HeaderRetryAfter, headerRequestID},
		MaxAge:        600,
	})
}

var errCORSOrigin = errors.New("issuer: each CORSOrigins entry must be an origin, scheme://host[:port] (http or https, no path, no wildcard)")

// checkOrigins refuses anything but plain origins: a wildcard would let
// every site drive a user's tokens from its pages. url.Parse takes '*' in
// a host, and Echo's CORS middleware reads it as a wildcard ("https://*"
// matches every https origin), so it is refused here by name.
func checkOrigins(origins []string) error {
	for _, o := range origins {
		u, err := url.Parse(o)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.User != nil || strings.ContainsAny(u.Host, "*?") ||
			(u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" || u.Opaque != "" || o != u.Scheme+"://"+u.Host {
			return errCORSOrigin
		}
	}
	return nil
}
