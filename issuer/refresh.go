package issuer

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/hallpass/hallpass/account"
	"github.com/hallpass/hallpass/dpop"
	"github.com/hallpass/hallpass/refresh"
	"github.com/hallpass/hallpass/revocation"
	"github.com/hallpass/hallpass/token"
)

type tokenResponse struct {
	AccessToken  string `json:"access_token"`
	TokenType    string `json:"token_type"`
	ExpiresIn    int64  `json:"expires_in"`
	RefreshToken string `json:"refresh_token"`
}

// successor is the pair kept (sealed) for the grace window, so that a
// retry of the previous refresh token gets exactly the same pair.
type successor struct {
	AccessToken  string `json:"at"`
	AccessExpiry int64  `json:"exp"` // Unix seconds
	RefreshToken string `json:"rt"`
}

// handleToken: POST /v1/token, grant_type=refresh_token.
//
// Order: body -> grant -> open the refresh token (authenticated
// encryption: only tokens this issuer sealed go further) -> load the
// session -> DPoP proof, bound to the session's key, BEFORE any state
// change: a refresh token stolen and presented with another key is refused
// and the real device's session is untouched -> mint the candidate
// successor pair and seal it -> one atomic store step decides advance,
// grace (same successor again) or reuse (session ended).
func (s *Server) handleToken(c echo.Context) error {
	body, err := readBodyForm(c)
	if err != nil {
		return err
	}
	f, err := body.decode("grant_type", "refresh_token")
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
	if len(c.Request().Header.Values(dpop.Header)) != 1 {
		// Refuse before any crypto or store work.
		return s.proofError(dpop.ErrMalformed, false)
	}

	rc, err := s.codec.Open(rt)
	if err != nil {
		return fail(http.StatusBadRequest, CodeInvalidGrant, err)
	}
	if !account.ValidID(account.DevicePrefix, rc.DeviceID) || rc.Counter == math.MaxUint64 {
		return fail(http.StatusBadRequest, CodeInvalidGrant, errors.New("refresh token with unusable claims"))
	}

	var sess account.Session
	if err := s.storeCall(c, "get_session", func(ctx context.Context) error {
		var err error
		sess, err = s.store.GetSession(ctx, rc.DeviceID)
		return err
	}); err != nil {
		if errors.Is(err, account.ErrNotFound) {
			return fail(http.StatusBadRequest, CodeInvalidGrant, err)
		}
		return storeErr(err)
	}

	// Binding: the proof must be signed by the session's key. dpop.Verify
	// checks it (ErrKeyMismatch) before it records the proof as seen.
	proof, err := s.verifyProof(c, PathToken, "", sess.JKT, true, false)
	if err != nil {
		var ae *apiError
		if errors.As(err, &ae) && errors.Is(ae.cause, dpop.ErrKeyMismatch) {
			s.log.LogAttrs(c.Request().Context(), slog.LevelWarn, "refresh token presented with another device key; refused, session untouched",
				attrRequestID(requestID(c)), slog.String("device_id", sess.DeviceID))
			return fail(http.StatusBadRequest, CodeInvalidGrant, ae.cause)
		}
		return err
	}
	if proof.JKT != sess.JKT { // dpop.Verify already guarantees this; defence in depth
		return fail(http.StatusBadRequest, CodeInvalidGrant, errors.New("proof key mismatch"))
	}

	if !sess.Ended.IsZero() {
		// Nothing to decide; spare the minting. The store would say
		// Rejected.
		s.metrics.refreshes.WithLabelValues(account.RefreshRejected.String()).Inc()
		return fail(http.StatusBadRequest, CodeInvalidGrant, account.ErrSessionEnded)
	}

	now := s.now().UTC()
	key := s.keys.Current()
	if key == nil {
		return errUnavailable(errors.New("no signing key loaded"))
	}
	access, claims, err := s.minter.Mint(key, token.Subject{Account: sess.AccountID, Device: sess.DeviceID, JKT: sess.JKT})
	if err != nil {
		return errInternal(err)
	}
	next, err := s.codec.Seal(refresh.Claims{DeviceID: sess.DeviceID, Counter: rc.Counter + 1, IssuedAt: now, ExpiresAt: sess.Expires})
	if err != nil {
		return errInternal(err)
	}
	cand := successor{AccessToken: access, AccessExpiry: claims.Expiry.Unix(), RefreshToken: next}
	blob, _ := json.Marshal(cand)
	sealed, err := s.codec.SealBlob(blob)
	if err != nil {
		return errInternal(err)
	}

	var res account.RefreshResult
	if err := s.storeCall(c, "refresh", func(ctx context.Context) error {
		var err error
		res, err = s.store.Refresh(ctx, account.RefreshRequest{
			DeviceID:  sess.DeviceID,
			Counter:   rc.Counter,
			Now:       now,
			Grace:     s.cfg.RefreshGrace,
			Idle:      s.cfg.RefreshIdle,
			Successor: sealed,
		})
		return err
	}); err != nil {
		if errors.Is(err, account.ErrNotFound) || errors.Is(err, account.ErrSessionEnded) {
			return fail(http.StatusBadRequest, CodeInvalidGrant, err)
		}
		return storeErr(err)
	}
	s.metrics.refreshes.WithLabelValues(res.Outcome.String()).Inc()

	var out successor
	switch res.Outcome {
	case account.RefreshAdvanced:
		out = cand
	case account.RefreshGrace:
		b, err := s.codec.OpenBlob(res.Successor)
		if err != nil {
			return errInternal(fmt.Errorf("stored successor: %w", err))
		}
		if err := json.Unmarshal(b, &out); err != nil || out.AccessToken == "" || out.RefreshToken == "" {
			return errInternal(errors.New("stored successor is malformed"))
		}
	case account.RefreshReused:
		s.metrics.reuse.Inc()
		// Audit: ids only, never the token.
		s.log.LogAttrs(c.Request().Context(), slog.LevelWarn, "refresh token reuse detected; device session ended",
			slog.String("event", "refresh_reuse"),
			attrRequestID(requestID(c)),
			slog.String("account_id", sess.AccountID),
			slog.String("device_id", sess.DeviceID),
			slog.Uint64("presented_counter", rc.Counter),
			slog.String("client_ip", c.RealIP()),
		)
		// The store ended the session; end it again so that the device is
		// marked revoked whatever the engine did (idempotent).
		// A device entry, so that mirrors refuse the access tokens the
		// thief (or the victim) still holds. Best effort: the answer is
		// invalid_grant whatever happens.
		if _, err := s.addEntry(c, revocation.KindDevice, sess.DeviceID, "refresh token reuse", now); err != nil {
			s.log.LogAttrs(c.Request().Context(), slog.LevelError, "adding the device revocation after reuse failed",
				attrRequestID(requestID(c)), slog.String("device_id", sess.DeviceID), attrErr(err))
		}
		if err := s.storeCall(c, "end_session", func(ctx context.Context) error {
			return s.store.EndSession(ctx, sess.DeviceID, now)
		}); err != nil {
			s.log.LogAttrs(c.Request().Context(), slog.LevelError, "ending the session after reuse failed",
				attrRequestID(requestID(c)), slog.String("device_id", sess.DeviceID), attrErr(err))
		}
		return fail(http.StatusBadRequest, CodeInvalidGrant, errors.New("refresh token reused"))
	default:
		return fail(http.StatusBadRequest, CodeInvalidGrant, errors.New("refresh rejected: session ended, expired, idle or account banned"))
	}
	s.setNonce(c)
	noStore(c)
	return c.JSON(http.StatusOK, tokenResponse{
		AccessToken:  out.AccessToken,
		TokenType:    "DPoP",
		ExpiresIn:    s.expiresIn(time.Unix(out.AccessExpiry, 0)),
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
