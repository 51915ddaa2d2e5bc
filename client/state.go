package client

import (
	"context"
	"crypto"
	"fmt"
	"log/slog"
	"sync"
	"time"
)

// State is what a client must keep across restarts. The refresh token is
// the one secret that cannot be recovered: losing it (or keeping an old one)
// ends this device's session, and the device can only come back to the
// account as a new one, through a link code from another device or a
// recovery code.
type State struct {
	// ServerURL is the issuer's base URL, as given to New.
	ServerURL string
	AccountID string
	DeviceID  string
	Username  string
	// KeyThumbprint is the RFC 7638 thumbprint (jkt) of the device key the
	// tokens are bound to.
	KeyThumbprint string
	// AccessToken and AccessTokenExpiry may be left out by a store (an app
	// can keep them in memory only): the client refreshes when they are
	// missing. The expiry is measured on the client's clock.
	AccessToken       string
	AccessTokenExpiry time.Time
	// RefreshToken is "" after a logout.
	RefreshToken string
	// RefreshRetryID is the retry id of RefreshToken: 16 random bytes,
	// base64url without padding, made just before the client first
	// redeems that token and saved with it before the request is sent.
	// The client sends it as retry_id with every attempt to redeem that
	// token (in-process retries, later calls, a restarted process), and
	// the server answers a repeat of the request that rotated the session
	// with the same successor even after its grace window. It is "" for a
	// token not yet presented (and after a save of the new pair). A store
	// that drops it keeps working, but a refresh whose answer was lost
	// then survives a restart only within the grace window (30 s by
	// default): the device is signed out after that. Treat it like the
	// refresh token (never log it).
	RefreshRetryID string
	// DeviceKey is the client's signer, set on every Save. A store that
	// can export software keys (FileStore) persists it; a store for a
	// hardware key (Secure Enclave, Android Keystore) ignores it and keeps
	// only a reference to the key. Load may return it nil.
	DeviceKey crypto.Signer
}

// HasSession reports whether s holds a refresh token.
func (s *State) HasSession() bool { return s != nil && s.RefreshToken != "" }

// clone returns a shallow copy; State holds no mutable references but the
// signer, which is shared on purpose.
func (s *State) clone() *State {
	if s == nil {
		return nil
	}
	c := *s
	return &c
}

// String prints ids only, never tokens or the key.
func (s State) String() string {
	return fmt.Sprintf("client.State{account=%s device=%s session=%t}", s.AccountID, s.DeviceID, s.RefreshToken != "")
}

// GoString is String, so %#v does not print tokens either.
func (s State) GoString() string { return s.String() }

// LogValue logs ids only.
func (s State) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("account_id", s.AccountID),
		slog.String("device_id", s.DeviceID),
		slog.Bool("session", s.RefreshToken != ""),
	)
}

// StateStore persists a client's State. The client calls Load before its
// first request, and Save after every change (signup, link, recovery,
// each refresh, rename, logout, deletion) before it uses or returns the
// new tokens. It never modifies a
// State it passed to Save or got from Load, so a store may keep them.
//
// A store may be shared by several Clients or processes: the client calls
// Load again before it presents its refresh token and before each Save of
// tokens, and if the store then holds a refresh token it did not last see
// there (another client wrote since), it takes the stored state instead of
// its own older tokens. If that state has no session (a logout elsewhere)
// the client is signed out (ErrNoSession); if it is another account's,
// device's, key's or server's session, the client neither uses nor
// overwrites it and says ErrStateMismatch from then on (open a new Client
// for it). Load and Save need not be atomic together; see FileStore for
// what that leaves.
//
// Implementations must make Save atomic (a crash leaves the old state or
// the new one) and durable before returning nil, and must keep
// RefreshRetryID with RefreshToken. Before the client first presents a
// refresh token it saves the state with a new retry id; a repeat of that
// request with that id gets the successor from the server even after its
// grace window, so a refresh whose answer was lost (the app killed, the
// network gone) does not sign the device out, after a restart too. A
// store that drops the id, or whose save fails, leaves only the grace
// window (30 s by default) to a restarted process: a refresh token that
// was used but whose successor was not saved is then lost for good once
// that window has passed.
type StateStore interface {
	// Load returns the saved state, or nil and a nil error if there is
	// none.
	Load(ctx context.Context) (*State, error)
	Save(ctx context.Context, s *State) error
}

// MemoryStore is a StateStore in memory, for tests and for apps that keep
// state elsewhere. The zero value is ready to use.
type MemoryStore struct {
	mu sync.Mutex
	s  *State
}

// Load implements StateStore.
func (m *MemoryStore) Load(context.Context) (*State, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.s.clone(), nil
}

// Save implements StateStore.
func (m *MemoryStore) Save(_ context.Context, s *State) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.s = s.clone()
	return nil
}
