package issuer

import (
	"errors"
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/hallpass/hallpass/flow"
)

type tokenResponse struct {
	AccessToken  string `json:"access_token"`
	TokenType    string `json:"token_type"`
	ExpiresIn    int64  `json:"expires_in"`
	RefreshToken string `json:"refresh_token"`
}

// handleToken: POST /v1/token, grant_type=refresh_token with an optional
// retry_id: the body, the grant, then flow.Refresh (retry id, open, bind,
// mint, the atomic store step, grace, retried, reuse).
func (s *Server) handleToken(c echo.Context) error {
	body, err := readBodyForm(c)
	if err != nil {
		return err
	}
	f, err := body.decode("grant_type", "refresh_token", "retry_id")
	if err != nil {
		return errInvalidRequest(err)
	}
	grant, ok := f["grant_type"]
	if !ok || grant == "" {
		return errInvalidRequest(errors.New("grant_type missing"))
	}
	if grant != "refresh_token" {
		return fail(http.StatusBadRequest, CodeUnsupportedGrantType, nil)
	}
	rt, ok := f["refresh_token"]
	if !ok || rt == "" {
		return errInvalidRequest(errors.New("refresh_token missing"))
	}
	if id, ok := f["retry_id"]; ok && id == "" {
		return errInvalidRequest(errors.New("retry_id empty"))
	}
	out, err := s.flows.Refresh(c.Request().Context(), flow.RefreshRequest{
		RefreshToken: rt,
		RetryID:      f["retry_id"],
		Proof:        s.proofOf(c, PathToken),
		Meta:         flow.Meta{RequestID: requestID(c), ClientIP: c.RealIP()},
	})
	if err != nil {
		return flowError(err)
	}
	s.setNonce(c)
	noStore(c)
	return c.JSON(http.StatusOK, tokenResponse{
		AccessToken:  out.AccessToken,
		TokenType:    "DPoP",
		ExpiresIn:    s.expiresIn(out.AccessExpiry),
		RefreshToken: out.RefreshToken,
	})
}

// formBody is a token request body with its media type.
type formBody struct {
	json bool
	b    []byte
}

func (f formBody) decode(allowed ...string) (map[string]string, error) {
	if f.json {
		return decodeStringObject(f.b, false, allowed...)
	}
	return decodeForm(f.b, allowed...)
}

// readBodyForm accepts application/x-www-form-urlencoded (OAuth 2.0) and
// application/json.
func readBodyForm(c echo.Context) (formBody, error) {
	var isJSON bool
	switch mediaType(c) {
	case echo.MIMEApplicationForm:
	case echo.MIMEApplicationJSON:
		isJSON = true
	default:
		return formBody{}, fail(http.StatusUnsupportedMediaType, CodeUnsupportedMedia, nil)
	}
	b, err := readBody(c)
	if err != nil {
		return formBody{}, err
	}
	return formBody{json: isJSON, b: b}, nil
}
