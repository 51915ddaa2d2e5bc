package client

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
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
	tr, err := c.redeem(ctx, st.RefreshToken)

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
		ns.RefreshToken = tr.RefreshToken
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

// storeMovedLocked reports whether the store moved on since the refresh
// began (reloadLocked). A store that cannot be read is taken as unchanged:
// the new pair must be kept. c.mu must be held.
func (c *Client) storeMovedLocked() bool {
	ctx, cancel := context.WithTimeout(context.Background(), saveTimeout)
	defer cancel()
	moved, _ := c.reloadLocked(ctx, true)
	return moved
}

// redeem sends refreshToken to /v1/token. A lost response (transport error
// or timeout), a 5xx or a 429 is retried with the SAME refresh token until
// ctx (the retry window) ends: within the server's grace window a repeated
// token gets the same successor, so the retry is safe, while a new token
// could only come from the lost response.
func (c *Client) redeem(ctx context.Context, refreshToken string) (*tokenResponse, error) {
	form := []byte(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {refreshToken}}.Encode())
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
