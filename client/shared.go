package client

import (
	"context"
	"fmt"
	"log/slog"
	"time"
)

// A StateStore may be shared: several processes (or several Clients in one
// process) on one FileStore file. Each Client keeps its state in memory and
// remembers the refresh token it last read from the store or wrote to it
// (Client.seen). Another writer since shows as a stored refresh token that
// is neither that one nor the client's own; the client then takes the
// stored state (reloadLocked) instead of presenting or saving its own
// tokens, which are older: presenting them after the server's grace window
// is reuse and signs the device out, and writing them back would hand that
// fate to every other user of the store.

// adoptRetryIDLocked takes the retry id stored with the refresh token the
// client holds too: another process (or an earlier run) may have sent the
// token with it, and only that id makes a repeat of that request, after the
// server's grace window, a retry rather than reuse. A stored token without
// an id keeps the client's own (one whose save failed). c.mu must be held.
func (c *Client) adoptRetryIDLocked(stored *State) {
	if id := stored.RefreshRetryID; id != "" && id != c.state.RefreshRetryID {
		ns := c.state.clone()
		ns.RefreshRetryID = id
		c.state = ns
	}
}

// accept checks a state read from the store against this client: a
// session for another server URL or device key is ErrStateMismatch; a
// logged-out state of another key or server is nothing to keep (nil). It
// returns a copy bound to this client.
func (c *Client) accept(st *State) (*State, error) {
	if st == nil {
		return nil, nil
	}
	var mismatch error
	if b, _, err := normalizeServerURL(st.ServerURL, true); err != nil || b != c.base {
		mismatch = fmt.Errorf("%w: it is for another server URL", ErrStateMismatch)
	} else if st.KeyThumbprint != "" && st.KeyThumbprint != c.jkt {
		mismatch = fmt.Errorf("%w: it is bound to another device key", ErrStateMismatch)
	}
	switch {
	case mismatch != nil && st.HasSession():
		return nil, mismatch
	case mismatch != nil:
		return nil, nil
	}
	st = st.clone()
	st.ServerURL, st.KeyThumbprint, st.DeviceKey = c.base, c.jkt, c.key
	return st, nil
}

// fresh reports whether st's access token is outside the expiry margin.
func (c *Client) fresh(st *State) bool {
	return st.AccessToken != "" && c.opts.now().Before(st.AccessTokenExpiry.Add(-c.opts.margin))
}

// errOtherSession: the store now holds the session of another account or
// device than the one this client holds.
var errOtherSession = fmt.Errorf("%w: the store now holds another account's or device's session; open a new Client for it", ErrStateMismatch)

// reloadLocked reads the store again before the client presents its
// refresh token or writes its tokens. If the store holds the refresh token
// the client last saw there, or its own, nobody else wrote since and it
// returns false: the caller goes on from memory (with the retry id stored
// for its own token, if there is one: adoptRetryIDLocked). Otherwise another process
// or Client wrote since (a refresh, a logout), and the client's own tokens
// are older: they are dropped unsaved, and it returns true with c.state
// set from the store:
//   - the same account and device: the stored state, with its tokens (its
//     access token may be fresh, so that no refresh is needed);
//   - no session (a logout elsewhere): the stored ids without tokens;
//     callers then say ErrNoSession. A store with no state at all (a
//     removed file) is the same, unless keep is set (the client holds
//     tokens the store lacks, which may be the only copy of a live
//     session): then it goes on from memory, and the save writes them back;
//   - another account, device, key or server: nothing, and
//     ErrStateMismatch from now on (c.gone). The client never presents
//     another identity's tokens as its own.
//
// A store that cannot be read fails the caller, unless the client holds
// tokens the store lacks (keep: a refresh just answered, or a save failed
// with ErrPersist): then it goes on from memory, as before, and saves
// them. c.mu must be held.
func (c *Client) reloadLocked(ctx context.Context, keep bool) (bool, error) {
	stored, err := c.store.Load(ctx)
	if err != nil {
		if keep {
			c.opts.log.LogAttrs(ctx, slog.LevelWarn, "client: reloading state failed; going on from memory", slog.String("error", err.Error()))
			return false, nil
		}
		return false, fmt.Errorf("client: loading state: %w", err)
	}
	if stored == nil && keep {
		// No state at all, not a logout (which saves the ids without
		// tokens): a store that lost its file (a directory moved away).
		// Ours are the only copy of live tokens: keep them and save them.
		return false, nil
	}
	rt := ""
	if stored != nil {
		rt = stored.RefreshToken
	}
	mine := c.state
	if mine.HasSession() && rt == mine.RefreshToken {
		c.seen = rt // e.g. another process got the same successor in the grace window
		c.adoptRetryIDLocked(stored)
		return false, nil
	}
	if rt == c.seen {
		return false, nil
	}
	c.dirty = false
	st, err := c.accept(stored)
	if err == nil && st.HasSession() && mine.HasSession() && (st.AccountID != mine.AccountID || st.DeviceID != mine.DeviceID) {
		err = errOtherSession
	}
	if err != nil {
		c.state, c.gone = nil, err
		return true, err
	}
	if st.HasSession() && st.AccessToken == "" && mine.HasSession() && c.fresh(mine) {
		// A store that keeps no access token: ours outlives the rotation.
		st.AccessToken, st.AccessTokenExpiry = mine.AccessToken, mine.AccessTokenExpiry
	} else if !st.HasSession() && st != nil {
		st.AccessToken, st.AccessTokenExpiry = "", time.Time{}
	}
	c.state, c.seen = st, rt
	return true, nil
}
