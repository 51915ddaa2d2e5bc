// Package echoauth adapts verifier/httpauth to Echo v4: a middleware that
// authenticates each request with a hallpass access token and DPoP proof,
// and an accessor for the verified claims. Checks, errors and security
// notes are those of package httpauth.
package echoauth

import (
	"github.com/labstack/echo/v4"

	"github.com/hallpass/hallpass/dpop"
	"github.com/hallpass/hallpass/token"
	"github.com/hallpass/hallpass/verifier/httpauth"
)

// Middleware authenticates each request with a. A refused request is
// answered at once with httpauth.WriteProblem (problem+json, 401 with
// WWW-Authenticate, or 503/500) and the chain stops; it does not go
// through Echo's HTTPErrorHandler, so every integration answers alike.
func Middleware(a *httpauth.Authenticator) echo.MiddlewareFunc {
	if a == nil {
		panic("echoauth: nil Authenticator")
	}
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			r := c.Request()
			claims, err := a.AuthenticateHTTP(r)
			if err != nil {
				httpauth.WriteProblem(c.Response(), err)
				return nil
			}
			if n := a.NextNonce(); n != "" {
				c.Response().Header().Set(dpop.NonceHeader, n)
			}
			c.SetRequest(r.WithContext(httpauth.ContextWithClaims(r.Context(), claims)))
			return next(c)
		}
	}
}

// Claims returns the claims Middleware verified for this request.
func Claims(c echo.Context) (*token.Claims, bool) {
	return httpauth.ClaimsFromContext(c.Request().Context())
}
