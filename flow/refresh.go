package flow

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"time"

	"github.com/hallpass/hallpass/account"
	"github.com/hallpass/hallpass/dpop"
	"github.com/hallpass/hallpass/refresh"
	"github.com/hallpass/hallpass/revocation"
)

// Meta is what the transport knows about a request for the security log:
// its request id and client address. Neither is trusted for a decision.
type Meta struct {
	RequestID string
	ClientIP  string
}

// RefreshRequest is a refresh-token grant.
type RefreshRequest struct {
	RefreshToken string // tainted
	// RetryID is the client's idempotency key for this refresh token
	// (tainted; "" for none): see ValidRetryID. A retry of the previous
	// refresh token after the grace window with the id of the request that
	// advanced the session gets that request's refresh token again.
	RetryID string
	Proof   Proof
	Meta    Meta
}

// Bounds of a retry id: 22 characters carry the 128 random bits a client
// must put in it.
const (
	MinRetryID = 22
	MaxRetryID = 64
)

// ValidRetryID reports whether s is a well-formed retry id: MinRetryID to
// MaxRetryID characters of the base64url alphabet, no padding.
func ValidRetryID(s string) bool {
	if len(s) < MinRetryID || len(s) > MaxRetryID {
		return false
	}
	for i := range len(s) {
		c := s[i]
		if !('A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// retryDigest is what the store keeps of a retry id: its SHA-256 digest,
// nil for none.
func retryDigest(id string) []byte {
	if id == "" {
		return nil
	}
	d := sha256.Sum256([]byte(id))
	return d[:]
}

// successor is the pair kept (sealed) for the grace window, so that a
// retry of the previous refresh token gets exactly the same pair.
type successor struct {
	AccessToken  string `json:"at"`
	AccessExpiry int64  `json:"exp"` // Unix seconds
	RefreshToken string `json:"rt"`
}

// Refresh rotates a device session's refresh token.
//
// Order: open the refresh token (authenticated encryption: only tokens this
// issuer sealed go further) -> load the session -> DPoP proof, bound to the
// session's key, BEFORE any state change: a refresh token stolen and
// presented with another key is refused and the real device's session is
// untouched -> mint the candidate successor pair and seal it -> one atomic
// store step decides advance, grace (the same successor again), retried
// (the previous token after the grace window with the retry id of the
// advance: the same refresh token, a fresh access token) or reuse (the
// session ends, and a device entry makes every mirror refuse its access
// tokens).
func (f *Flows) Refresh(ctx context.Context, req RefreshRequest) (Tokens, error) {
	if req.RetryID != "" && !ValidRetryID(req.RetryID) {
		return Tokens{}, &Error{Code: ErrInvalidRequest.Code, Detail: "retry_id must be 22 to 64 base64url characters.", Err: errors.New("retry_id malformed")}
	}
	if req.Proof.JWS == "" {
		// Refuse before any crypto or store work.
		return Tokens{}, proofError(dpop.ErrMalformed, f.cfg.PublicURL)
	}
	// One key set for the whole rotation: see refresh.Codec.Snapshot.
	codec := f.cfg.Refresh.Snapshot()
	sess, rc, err := f.openSession(ctx, codec, req.RefreshToken)
	if err != nil {
		return Tokens{}, err
	}
	if _, err := f.verifyProof(ctx, req.Proof, sess.JKT); err != nil {
		if errors.Is(err, dpop.ErrKeyMismatch) {
			f.log.LogAttrs(ctx, slog.LevelWarn, "refresh token presented with another device key; refused, session untouched",
				slog.String("request_id", req.Meta.RequestID), slog.String("device_id", sess.DeviceID))
			return Tokens{}, fail(ErrInvalidGrant, dpop.ErrKeyMismatch)
		}
		return Tokens{}, err
	}
	if !sess.Ended.IsZero() {
		// Nothing to decide; spare the minting. The store would say
		// Rejected.
		f.obs.Refreshed(account.RefreshRejected)
		f.sealEnded(ctx, req.Meta, sess)
		return Tokens{}, fail(ErrInvalidGrant, account.ErrSessionEnded)
	}
	if err := f.checkSession(ctx, sess, rc); err != nil {
		return Tokens{}, err
	}
	now := f.now().UTC()
	cand, sealed, err := f.candidate(codec, sess, rc.Counter+1, now)
	if err != nil {
		return Tokens{}, err
	}
	var res account.RefreshResult
	if err := f.call(ctx, "refresh", func(ctx context.Context) error {
		var err error
		res, err = f.cfg.Store.Refresh(ctx, account.RefreshRequest{
			DeviceID: sess.DeviceID, Counter: rc.Counter, Now: now,
			Grace: f.cfg.RefreshGrace, Idle: f.cfg.RefreshIdle, Successor: sealed,
			RetryDigest: retryDigest(req.RetryID),
		})
		return err
	}); err != nil {
		if errors.Is(err, account.ErrNotFound) || errors.Is(err, account.ErrSessionEnded) {
			return Tokens{}, fail(ErrInvalidGrant, err)
		}
		return Tokens{}, storeErr("refresh", err)
	}
	f.obs.Refreshed(res.Outcome)
	return f.decide(ctx, codec, req, sess, rc, res, cand, now)
}

// openSession opens the refresh token and loads its session.
func (f *Flows) openSession(ctx context.Context, codec *refresh.Codec, tainted string) (account.Session, refresh.Claims, error) {
	rc, err := codec.Open(tainted)
	if err != nil {
		return account.Session{}, rc, fail(ErrInvalidGrant, err)
	}
	if !account.ValidID(account.DevicePrefix, rc.DeviceID) || rc.Counter == math.MaxUint64 {
		return account.Session{}, rc, fail(ErrInvalidGrant, errors.New("refresh token with unusable claims"))
	}
	var sess account.Session
	if err := f.call(ctx, "get_session", func(ctx context.Context) error {
		var err error
		sess, err = f.cfg.Store.GetSession(ctx, rc.DeviceID)
		return err
	}); err != nil {
		// sess may still be written by an abandoned call: never read it
		// on error.
		if errors.Is(err, account.ErrNotFound) {
			return account.Session{}, rc, fail(ErrInvalidGrant, err)
		}
		return account.Session{}, rc, storeErr("get_session", err)
	}
	return sess, rc, nil
}

// candidate mints the successor pair and seals it for the store.
func (f *Flows) candidate(codec *refresh.Codec, sess account.Session, ctr uint64, now time.Time) (Tokens, []byte, error) {
	pair, err := f.mintPairWith(codec, sess, ctr, now)
	if err != nil {
		return Tokens{}, nil, err
	}
	blob, _ := json.Marshal(successor{AccessToken: pair.AccessToken, AccessExpiry: pair.AccessExpiry.Unix(), RefreshToken: pair.RefreshToken})
	sealed, err := codec.SealBlob(blob)
	if err != nil {
		return Tokens{}, nil, fail(ErrInternal, err)
	}
	return pair, sealed, nil
}

// decide turns the store's verdict into the answer.
func (f *Flows) decide(ctx context.Context, codec *refresh.Codec, req RefreshRequest, sess account.Session, rc refresh.Claims, res account.RefreshResult, cand Tokens, now time.Time) (Tokens, error) {
	switch res.Outcome {
	case account.RefreshAdvanced:
		return cand, nil
	case account.RefreshGrace:
		out, err := openSuccessor(codec, res.Successor)
		if err != nil {
			return Tokens{}, err
		}
		return Tokens{AccessToken: out.AccessToken, AccessExpiry: time.Unix(out.AccessExpiry, 0), RefreshToken: out.RefreshToken}, nil
	case account.RefreshRetried:
		return f.retriedAfterGrace(ctx, codec, req.Meta, sess, rc, res.Successor, cand)
	case account.RefreshReused:
		f.reused(ctx, req.Meta, sess, rc, now)
		return Tokens{}, fail(ErrInvalidGrant, errors.New("refresh token reused"))
	}
	return Tokens{}, fail(ErrInvalidGrant, errors.New("refresh rejected: session ended, expired, idle or account banned"))
}

// openSuccessor opens the sealed successor pair the store returned.
func openSuccessor(codec *refresh.Codec, sealed []byte) (successor, error) {
	b, err := codec.OpenBlob(sealed)
	if err != nil {
		return successor{}, fail(ErrInternal, fmt.Errorf("stored successor: %w", err))
	}
	var out successor
	if err := json.Unmarshal(b, &out); err != nil || out.AccessToken == "" || out.RefreshToken == "" {
		return successor{}, fail(ErrInternal, errors.New("stored successor is malformed"))
	}
	return out, nil
}

// retriedAfterGrace answers a retry after the grace window (the stored retry digest
// matched): the stored successor's refresh token, which the session still
// expects, with the candidate's access token (cand), minted under the
// current signing key before the store step, since the stored one may have
// expired. Minted before the step, like an advance's, it was issued before
// any sign-out's step that follows (sealIfLate). An audit line with ids
// only: never a token or the retry id.
func (f *Flows) retriedAfterGrace(ctx context.Context, codec *refresh.Codec, m Meta, sess account.Session, rc refresh.Claims, sealed []byte, cand Tokens) (Tokens, error) {
	out, err := openSuccessor(codec, sealed)
	if err != nil {
		return Tokens{}, err
	}
	f.log.LogAttrs(ctx, slog.LevelInfo, "refresh retried after the grace window with the retry id of the advance; stored refresh token returned",
		slog.String("event", "refresh_retried"), slog.String("request_id", m.RequestID),
		slog.String("account_id", sess.AccountID), slog.String("device_id", sess.DeviceID),
		slog.Uint64("presented_counter", rc.Counter), slog.String("client_ip", m.ClientIP))
	return Tokens{AccessToken: cand.AccessToken, AccessExpiry: cand.AccessExpiry, RefreshToken: out.RefreshToken}, nil
}

// reused handles a detected reuse: an audit line (ids only, never the
// token), a device entry so that mirrors refuse the access tokens the thief
// (or the victim) still holds, and the session ended again whatever the
// engine did (idempotent). The answer is invalid_grant whatever happens,
// so no client retries the entry: it is retried here (addEntryRetried,
// bounded by twice the store timeout), the answer waits for it, and a
// final failure is logged and counted (RevocationWriteObserver).
func (f *Flows) reused(ctx context.Context, m Meta, sess account.Session, rc refresh.Claims, now time.Time) {
	f.log.LogAttrs(ctx, slog.LevelWarn, "refresh token reuse detected; device session ended",
		slog.String("event", "refresh_reuse"), slog.String("request_id", m.RequestID),
		slog.String("account_id", sess.AccountID), slog.String("device_id", sess.DeviceID),
		slog.Uint64("presented_counter", rc.Counter), slog.String("client_ip", m.ClientIP))
	if _, n, err := f.addEntryRetried(ctx, revocation.KindDevice, sess.DeviceID, "refresh token reuse"); err != nil {
		f.log.LogAttrs(ctx, slog.LevelError, "adding the device revocation after reuse failed; the device's access tokens stay valid at verifiers until they expire",
			slog.String("event", "revocation_write_failed"), slog.String("request_id", m.RequestID),
			slog.String("device_id", sess.DeviceID), slog.Int("attempts", n), slog.String("error", err.Error()))
	}
	if err := f.call(ctx, "end_session", func(ctx context.Context) error {
		return f.cfg.Store.EndSession(ctx, sess.DeviceID, now)
	}); err != nil {
		f.log.LogAttrs(ctx, slog.LevelError, "ending the session after reuse failed",
			slog.String("request_id", m.RequestID), slog.String("device_id", sess.DeviceID), slog.String("error", err.Error()))
	}
}

// sealEnded writes a device entry for a session that ended less than
// Config.EntryTTL ago (its access tokens may still be live) when no entry
// in the issuer's mirror denies the tokens it was given (issued at its end
// at the latest). The step that ended it left none when its answer was
// lost: a reuse verdict committed as the store's deadline passed, so the
// client saw 503, retried, and met the ended session here, while the
// access tokens of the stolen session stayed valid at every verifier. The
// same holds when the entry after a reuse or a recovery failed. Only the
// session's key holder gets here (the proof was checked), and once the
// entry is in the mirror the next attempt finds it: one entry per such
// session. A mirror that cannot say (stale) writes nothing.
func (f *Flows) sealEnded(ctx context.Context, m Meta, sess account.Session) {
	if f.cfg.Revocations == nil || f.cfg.Sessions == nil || f.now().Sub(sess.Ended) >= f.cfg.EntryTTL {
		return
	}
	if err := f.cfg.Sessions.CheckSession(ctx, sess.DeviceID, sess.AccountID, sess.Ended); err != nil {
		return // denied already, or the mirror cannot vouch either way
	}
	if _, n, err := f.addEntryRetried(ctx, revocation.KindDevice, sess.DeviceID, "session ended without its entry"); err != nil {
		f.log.LogAttrs(ctx, slog.LevelError, "adding the device revocation of an ended session failed; its access tokens stay valid at verifiers until they expire",
			slog.String("event", "revocation_write_failed"), slog.String("request_id", m.RequestID),
			slog.String("device_id", sess.DeviceID), slog.Int("attempts", n), slog.String("error", err.Error()))
		return
	}
	f.log.LogAttrs(ctx, slog.LevelWarn, "ended session without a revocation entry met by a refresh; device entry written",
		slog.String("event", "ended_session_sealed"), slog.String("request_id", m.RequestID),
		slog.String("account_id", sess.AccountID), slog.String("device_id", sess.DeviceID))
}

// checkSession asks the revocation entries whether the session may still
// refresh. A device or account entry newer than the refresh token ends the
// session for good (so it stays ended after the entry expires) and answers
// invalid_grant; a mirror that cannot vouch answers unavailable.
func (f *Flows) checkSession(ctx context.Context, sess account.Session, rc refresh.Claims) error {
	if f.cfg.Sessions == nil {
		return nil
	}
	err := f.cfg.Sessions.CheckSession(ctx, sess.DeviceID, sess.AccountID, rc.IssuedAt)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, revocation.ErrStale):
		return fail(ErrUnavailable, err)
	}
	now := f.now().UTC()
	if cerr := f.call(ctx, "end_session", func(ctx context.Context) error {
		return f.cfg.Store.EndSession(ctx, sess.DeviceID, now)
	}); cerr != nil {
		return storeErr("end_session", cerr)
	}
	f.obs.Refreshed(account.RefreshRejected)
	return fail(ErrInvalidGrant, err)
}
