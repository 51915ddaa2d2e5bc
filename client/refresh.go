package client

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"time"
)

// flight is one refresh in progress. Every caller that needs a refresh
// while it runs waits for it instead of sending its own: a second request
// with the same refresh token would only get the same successor (within the
// server's grace window) or, later, trip reuse detection.
type flight struct {
	done chan struct{}
	err  error // set before done is closed
}

// refresh makes sure the access token stale has been replaced. If another
// caller already replaced it, it returns at once; if a refresh is in
// flight, it waits for that one; otherwise it starts one.
//
// The refresh itself runs in its own goroutine, detached from ctx: once the
// request is sent the server has rotated the token, and the successor must
// be received and saved even if this caller gives up (the goroutine is
// bounded by the refresh retry window, and Close waits for it). A caller
// whose ctx ends stops waiting only.
func (c *Client) refresh(ctx context.Context, stale string) error {
	c.mu.Lock()
	st, err := c.stateLocked(ctx)
	if err != nil {
		c.mu.Unlock()
		return err
	}
	if !st.HasSession() {
		c.mu.Unlock()
		return ErrNoSession
	}
	f := c.flight
	if f == nil {
		if st.AccessToken != stale {
			c.mu.Unlock()
			return nil // someone else refreshed since the caller looked
		}
		if st, err = c.takeStored(ctx, stale); st == nil || err != nil {
			c.mu.Unlock()
			return err
		}
		if st, err = c.withRetryIDLocked(ctx, st); err != nil {
			c.mu.Unlock()
			return err
		}
		f = &flight{done: make(chan struct{})}
		c.flight = f
		c.wg.Add(1)
		go c.runRefresh(context.WithoutCancel(ctx), f, st)
	}
	c.mu.Unlock()
	select {
	case <-f.done:
		return f.err
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (c *Client) runRefresh(ctx context.Context, f *flight, st *State) {
	defer c.wg.Done()
	ctx, cancel := context.WithTimeout(ctx, c.opts.refreshWindow)
	defer cancel()
	tr, err := c.redeem(ctx, st.RefreshToken, st.RefreshRetryID)

	c.mu.Lock()
	switch {
	case err != nil:
	case c.state == nil || c.state.RefreshToken != st.RefreshToken:
		// A logout replaced the state while we were away: the session is
		// over, do not bring it back.
		err = ErrNoSession
	case c.storeMovedLocked():
		// Another process saved newer tokens while we were away (or ended
		// the session): ours are older and are neither saved nor used.
		if err = c.gone; err == nil && !c.state.HasSession() {
			err = ErrNoSession
		}
	default:
		ns := st.clone()
		ns.AccessToken = tr.AccessToken
		ns.AccessTokenExpiry = c.opts.now().Add(time.Duration(tr.ExpiresIn) * time.Second)
		ns.RefreshToken, ns.RefreshRetryID = tr.RefreshToken, "" // the new token has not been presented yet
		// Saved before anyone can use it; kept in memory if saving fails.
		err = c.saveLocked(ns)
	}
	f.err = err
	c.flight = nil
	c.mu.Unlock()
	close(f.done)
}

// takeStored, before a refresh, reads the store (reloadLocked): it
// returns the state whose refresh token to present, or nil and the error
// to return when no refresh is needed (another process saved a fresh
// access token) or possible (ErrNoSession, ErrStateMismatch). c.mu must be
// held.
func (c *Client) takeStored(ctx context.Context, stale string) (*State, error) {
	moved, err := c.reloadLocked(ctx, c.dirty)
	switch st := c.state; {
	case err != nil:
		return nil, err
	case !st.HasSession():
		return nil, ErrNoSession
	case moved && c.fresh(st) && st.AccessToken != stale:
		return nil, nil
	default:
		return st, nil
	}
}

// retryIDBytes is the entropy of a refresh retry id (the server takes 22
// to 64 base64url characters, at least 128 bits).
const retryIDBytes = 16

// withRetryIDLocked returns st with the retry id of its refresh token. A
// token without one (or with a malformed one, which the server would
// refuse) gets a new id, saved with it BEFORE the request is sent: a
// process that dies before the answer is saved then repeats the request
// with the same id after a restart, and the server answers with the same
// successor even after its grace window.
//
// If that save fails the refresh still goes ahead with the id in memory
// (used by every retry in this process; the save is retried on the next
// call, like any failed save): holding it back would leave the app
// without a fresh access token for as long as its storage fails, while the
// tokens of the refresh itself would be kept in memory anyway. What is
// lost is only the guarantee across a restart, as before retry ids. A
// random source that fails is an error: nothing is sent. c.mu must be
// held.
func (c *Client) withRetryIDLocked(ctx context.Context, st *State) (*State, error) {
	if validRetryID(st.RefreshRetryID) {
		return st, nil
	}
	b := make([]byte, retryIDBytes)
	if _, err := io.ReadFull(c.opts.rand, b); err != nil {
		return nil, fmt.Errorf("client: making a refresh retry id: %w", err)
	}
	ns := st.clone()
	ns.RefreshRetryID = base64.RawURLEncoding.EncodeToString(b)
	if err := c.saveLocked(ns); err != nil {
		c.opts.log.LogAttrs(ctx, slog.LevelWarn, "client: saving the refresh retry id failed; refreshing with it in memory",
			slog.String("error", err.Error()))
	}
	return c.state, nil
}

// validRetryID reports whether id is a retry id the server accepts:
// base64url without padding, 22 to 64 characters.
func validRetryID(id string) bool {
	if len(id) < 22 || len(id) > 64 {
		return false
	}
	for i := 0; i < len(id); i++ {
		switch b := id[i]; {
		case 'A' <= b && b <= 'Z', 'a' <= b && b <= 'z', '0' <= b && b <= '9', b == '-', b == '_':
		default:
			return false
		}
	}
	return true
}

// storeMovedLocked reports whether the store moved on since the refresh
// began (reloadLocked). A store that cannot be read is taken as unchanged:
// the new pair must be kept. c.mu must be held.
func (c *Client) storeMovedLocked() bool {
	ctx, cancel := context.WithTimeout(context.Background(), saveTimeout)
	defer cancel()
	moved, _ := c.reloadLocked(ctx, true)
	return moved
}

// redeem sends refreshToken to /v1/token, with retryID as retry_id. A lost
// response (transport error or timeout), a 5xx or a 429 is retried with the
// SAME refresh token and retry id until ctx (the retry window) ends: the
// server answers a repeated token with the same successor (within its grace
// window for any request, after it for one with the retry id that rotated
// the session), so the retry is safe, while a new token could only come
// from the lost response.
func (c *Client) redeem(ctx context.Context, refreshToken, retryID string) (*tokenResponse, error) {
	v := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {refreshToken}}
	if retryID != "" {
		v.Set("retry_id", retryID)
	}
	form := []byte(v.Encode())
	perAttempt := c.opts.refreshWindow * 2 / 5
	backoff := 100 * time.Millisecond
	for attempt := 1; ; attempt++ {
		actx, cancel := context.WithTimeout(ctx, perAttempt)
		b, err := c.exchange(actx, "/v1/token", "application/x-www-form-urlencoded", form)
		cancel()
		if err == nil {
			var tr tokenResponse
			if err := json.Unmarshal(b, &tr); err != nil {
				return nil, fmt.Errorf("%w: %v", ErrBadResponse, err)
			}
			if err := tr.check(); err != nil {
				return nil, err
			}
			return &tr, nil
		}
		wait := backoff
		var ae *APIError
		if errors.As(err, &ae) {
			if ae.Status < 500 && ae.Status != http.StatusTooManyRequests {
				return nil, err // a verdict: invalid_grant, invalid_dpop_proof, ...
			}
			wait = max(wait, ae.RetryAfter)
		}
		if deadline, ok := ctx.Deadline(); ctx.Err() != nil || ok && time.Until(deadline) < wait {
			return nil, fmt.Errorf("client: refresh failed after %d attempts: %w", attempt, err)
		}
		c.opts.log.LogAttrs(ctx, slog.LevelWarn, "client: refresh answer lost or refused for now; retrying with the same refresh token",
			slog.Int("attempt", attempt), slog.String("error", err.Error()))
		t := time.NewTimer(wait)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return nil, fmt.Errorf("client: refresh failed after %d attempts: %w", attempt, err)
		}
		backoff = min(backoff*2, 2*time.Second)
	}
}
