package client

import (
	"bytes"
	"context"
	"crypto"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/hallpass/hallpass/dpop"
)

// Defaults of the options.
const (
	// DefaultExpiryMargin: the client refreshes an access token this long
	// before its expiry, so that a token does not expire in flight and
	// small clock differences do not matter. Access tokens live 1 to 60
	// minutes (10 by default).
	DefaultExpiryMargin = 30 * time.Second
	// DefaultRefreshRetryWindow: how long the client keeps retrying one
	// refresh (same refresh token, same retry id) after a lost response,
	// a timeout or a 5xx. It stays below the server's grace window (30 s
	// by default), within which the server answers a repeated refresh
	// token with the same successor instead of treating it as reuse; a
	// later call (or a restarted process) repeats the request with the
	// same retry id, which the server answers the same way after the
	// window too.
	DefaultRefreshRetryWindow = 20 * time.Second
	// DefaultHTTPTimeout is the timeout of the default http.Client.
	DefaultHTTPTimeout = 30 * time.Second
)

// maxBody bounds any response body the client reads.
const maxBody = 1 << 20

// saveTimeout bounds one StateStore.Save. Saves run detached from the
// caller's context: once the server has issued tokens, a cancelled caller
// must not stop them from being saved.
const saveTimeout = 15 * time.Second

// ErrClosed: the client was closed.
var ErrClosed = errors.New("client: closed")

// Option configures New.
type Option func(*options)

type options struct {
	hc            *http.Client
	now           func() time.Time
	log           *slog.Logger
	margin        time.Duration
	refreshWindow time.Duration
	insecureHTTP  bool
	origins       []string  // more origins Do may send the token to
	rand          io.Reader // refresh retry ids; crypto/rand (tests: export_test.go)
}

// WithHTTPClient sets the HTTP client. The default has a 30 s timeout and
// does not follow redirects. SECURITY: a client that follows redirects
// sends the DPoP proof (and, to the same host, the access token) to the
// redirect target; the API never redirects.
func WithHTTPClient(hc *http.Client) Option { return func(o *options) { o.hc = hc } }

// WithOrigins lets Do (and HTTPClient) send the access token and a proof
// to services of these origins (scheme://host[:port]) besides the issuer:
// your own APIs that verify hallpass tokens. https, or http on a loopback
// host (any host with WithInsecureHTTP).
//
// SECURITY: the access token goes to every listed origin; list only
// services you run. A request for any other origin is refused
// (ErrOtherOrigin) and never carries the token.
func WithOrigins(origins ...string) Option {
	return func(o *options) { o.origins = append(o.origins, origins...) }
}

// WithClock sets the clock used for proof iat and token expiry. It is read
// on every use. Default time.Now.
func WithClock(now func() time.Time) Option { return func(o *options) { o.now = now } }

// WithLogger sets a logger for retries and save failures. It never gets
// tokens, proofs or keys. Default: discard.
func WithLogger(l *slog.Logger) Option { return func(o *options) { o.log = l } }

// WithExpiryMargin sets how long before expiry an access token is
// refreshed. Default DefaultExpiryMargin.
func WithExpiryMargin(d time.Duration) Option { return func(o *options) { o.margin = d } }

// WithRefreshRetryWindow sets how long one refresh is retried with the same
// refresh token. Keep it below the server's refresh grace window. Default
// DefaultRefreshRetryWindow.
func WithRefreshRetryWindow(d time.Duration) Option {
	return func(o *options) { o.refreshWindow = d }
}

// WithInsecureHTTP allows a plain http:// server URL on a host other than
// loopback. SECURITY: tokens and proofs then cross the network in clear;
// only for test networks.
func WithInsecureHTTP() Option { return func(o *options) { o.insecureHTTP = true } }

// Client talks to one hallpass issuer on behalf of one device. It is safe
// for concurrent use; at most one refresh is in flight at a time.
type Client struct {
	base   string // scheme://host[:port][/prefix], no trailing slash
	origin string // scheme://host[:port]
	key    crypto.Signer
	jkt    string
	store  StateStore
	opts   options

	mu     sync.Mutex
	loaded bool
	state  *State            // never modified in place; replaced on change
	dirty  bool              // state differs from what the store holds
	seen   string            // refresh token last read from or written to the store
	gone   error             // the store holds another identity's session (reloadLocked)
	nonce  map[string]string // latest DPoP-Nonce per origin
	flight *flight
	busy   bool // a signup or logout is running
	closed bool
	wg     sync.WaitGroup // refresh goroutines
}

// New returns a client for the issuer at serverURL, signing proofs with
// key (ECDSA P-256 or Ed25519, possibly a hardware key behind
// crypto.Signer) and keeping its state in store. It does no I/O: the state
// is loaded on first use, and must then belong to serverURL and key
// (ErrStateMismatch otherwise).
//
// serverURL must be https, or http on a loopback host (or with
// WithInsecureHTTP).
func New(serverURL string, key crypto.Signer, store StateStore, opts ...Option) (*Client, error) {
	jkt, err := thumbprint(key)
	if err != nil {
		return nil, err
	}
	if store == nil {
		return nil, errors.New("client: nil StateStore")
	}
	o := options{margin: DefaultExpiryMargin, refreshWindow: DefaultRefreshRetryWindow, rand: rand.Reader}
	for _, opt := range opts {
		opt(&o)
	}
	base, origin, err := normalizeServerURL(serverURL, o.insecureHTTP)
	if err != nil {
		return nil, err
	}
	if o.hc == nil {
		o.hc = &http.Client{
			Timeout:       DefaultHTTPTimeout,
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		}
	}
	if o.now == nil {
		o.now = time.Now
	}
	if o.log == nil {
		o.log = slog.New(slog.DiscardHandler)
	}
	if o.margin < 0 || o.refreshWindow <= 0 {
		return nil, errors.New("client: negative expiry margin or non-positive refresh retry window")
	}
	for i, extra := range o.origins {
		b, eo, err := normalizeServerURL(extra, o.insecureHTTP)
		if err != nil || b != eo {
			return nil, fmt.Errorf("client: WithOrigins: %q is not an origin (scheme://host[:port], https or loopback http)", extra)
		}
		o.origins[i] = eo
	}
	return &Client{base: base, origin: origin, key: key, jkt: jkt, store: store, opts: o, nonce: map[string]string{}}, nil
}

// Open returns a client for the session saved in store, using the server
// URL and device key saved with it: the usual start of a command-line tool
// whose store keeps the key (FileStore). ErrNoSession if the store is empty
// or holds no key.
func Open(ctx context.Context, store StateStore, opts ...Option) (*Client, error) {
	if store == nil {
		return nil, errors.New("client: nil StateStore")
	}
	st, err := store.Load(ctx)
	if err != nil {
		return nil, fmt.Errorf("client: loading state: %w", err)
	}
	if st == nil || st.DeviceKey == nil {
		return nil, ErrNoSession
	}
	return New(st.ServerURL, st.DeviceKey, store, opts...)
}

func normalizeServerURL(s string, insecure bool) (base, origin string, err error) {
	u, err := url.Parse(s)
	if err != nil || u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" || u.Opaque != "" {
		return "", "", errors.New("client: server URL must be an absolute http(s) URL without user info, query or fragment")
	}
	u.Scheme = strings.ToLower(u.Scheme)
	u.Host = strings.ToLower(u.Host)
	switch u.Scheme {
	case "https":
	case "http":
		if !insecure && !isLoopback(u.Hostname()) {
			return "", "", errors.New("client: plain http is allowed for loopback hosts only (see WithInsecureHTTP)")
		}
	default:
		return "", "", errors.New("client: server URL must be http or https")
	}
	u.Path = strings.TrimRight(u.Path, "/")
	u.RawPath = ""
	origin = u.Scheme + "://" + u.Host
	return origin + u.EscapedPath(), origin, nil
}

func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// ServerURL returns the normalised server URL.
func (c *Client) ServerURL() string { return c.base }

// KeyThumbprint returns the device key's jkt.
func (c *Client) KeyThumbprint() string { return c.jkt }

// Close waits for an in-flight refresh to finish and be saved, then makes
// every later call fail with ErrClosed. Tokens whose save failed earlier
// (ErrPersist) are saved once more, unless another process or Client
// saved newer ones to the store since (they are never written over): a process that exits with its newest
// refresh token in memory only starts next time from the spent one, which
// the server takes for reuse once its grace window is over. If that save
// fails too, Close returns ErrPersist.
func (c *Client) Close() error {
	c.mu.Lock()
	c.closed = true
	c.mu.Unlock()
	c.wg.Wait()
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.dirty || c.state == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), saveTimeout)
	defer cancel()
	if moved, _ := c.reloadLocked(ctx, c.dirty); moved {
		return nil // another process saved newer tokens: ours are not written over them
	}
	return c.saveLocked(c.state)
}

// stateLocked loads the state on first use and retries a failed save,
// unless the store moved on meanwhile (reloadLocked). c.mu must be held.
func (c *Client) stateLocked(ctx context.Context) (*State, error) {
	if c.closed {
		return nil, ErrClosed
	}
	if c.gone != nil {
		return nil, c.gone
	}
	if !c.loaded {
		stored, err := c.store.Load(ctx)
		if err != nil {
			return nil, fmt.Errorf("client: loading state: %w", err)
		}
		st, err := c.accept(stored)
		if err != nil {
			return nil, err
		}
		c.state, c.seen, c.loaded = st, "", true
		if stored != nil {
			c.seen = stored.RefreshToken
		}
	}
	if c.dirty && c.state != nil {
		if moved, err := c.reloadLocked(ctx, c.dirty); err != nil {
			return nil, err
		} else if !moved {
			if err := c.saveLocked(c.state); err != nil {
				c.opts.log.LogAttrs(ctx, slog.LevelWarn, "client: saving state failed again", slog.String("error", err.Error()))
			}
		}
	}
	return c.state, nil
}

// saveLocked makes st the state and saves it. The state is replaced even
// if the save fails, so the newest tokens are never dropped from memory;
// the save is retried on the next call. c.mu must be held.
func (c *Client) saveLocked(st *State) error {
	st = st.clone()
	st.ServerURL, st.KeyThumbprint, st.DeviceKey = c.base, c.jkt, c.key
	c.state = st
	ctx, cancel := context.WithTimeout(context.Background(), saveTimeout)
	defer cancel()
	if err := c.store.Save(ctx, st); err != nil {
		c.dirty = true
		return fmt.Errorf("%w: %w", ErrPersist, err)
	}
	c.dirty, c.seen = false, st.RefreshToken
	return nil
}

// Session describes the signed-in account and device. It holds no secret.
type Session struct {
	AccountID         string    `json:"account_id"`
	Username          string    `json:"username"`
	DeviceID          string    `json:"device_id"`
	AccessTokenExpiry time.Time `json:"access_token_expires_at,omitzero"`
}

// Session returns the current session from the state, without a request.
func (c *Client) Session(ctx context.Context) (*Session, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	st, err := c.stateLocked(ctx)
	if err != nil {
		return nil, err
	}
	if !st.HasSession() {
		return nil, ErrNoSession
	}
	return &Session{AccountID: st.AccountID, Username: st.Username, DeviceID: st.DeviceID, AccessTokenExpiry: st.AccessTokenExpiry}, nil
}

// tokenResponse is the body of a successful signup or refresh.
type tokenResponse struct {
	AccountID    string `json:"account_id"`
	Username     string `json:"username"`
	DeviceID     string `json:"device_id"`
	AccessToken  string `json:"access_token"`
	TokenType    string `json:"token_type"`
	ExpiresIn    int64  `json:"expires_in"`
	RefreshToken string `json:"refresh_token"`
}

func (t *tokenResponse) check() error {
	if !strings.EqualFold(t.TokenType, "DPoP") {
		return fmt.Errorf("%w: token_type is not DPoP", ErrBadResponse)
	}
	if t.AccessToken == "" || t.RefreshToken == "" || t.ExpiresIn <= 0 || t.ExpiresIn > 24*3600 {
		return fmt.Errorf("%w: missing token or bad expires_in", ErrBadResponse)
	}
	return nil
}

// Signup creates an account named username with this device and saves the
// session. deviceName is a label shown in device lists ("" lets the server
// choose). Errors from the server are *APIError, e.g. username_taken.
//
// If the account was created but the state could not be saved, Signup
// returns the Session together with an ErrPersist error; the tokens stay in
// memory and the next call retries the save.
func (c *Client) Signup(ctx context.Context, username, deviceName string) (*Session, error) {
	return c.join(ctx, "/v1/accounts", struct {
		Username   string `json:"username"`
		DeviceName string `json:"device_name,omitempty"`
	}{username, deviceName})
}

// join starts a session for this device's key at an unauthenticated
// endpoint that answers like signup (signup, link, recover): the client
// must hold no session, the request carries a proof of the device key
// (with the server's nonce when it asks for one), and the new session is
// saved before it is returned.
func (c *Client) join(ctx context.Context, path string, in any) (*Session, error) {
	c.mu.Lock()
	st, err := c.stateLocked(ctx)
	if err == nil && !st.HasSession() && !c.busy {
		// Another process may have signed in on the shared store since.
		if _, err = c.reloadLocked(ctx, c.dirty); err == nil {
			st = c.state
		}
	}
	if err == nil && st.HasSession() {
		err = ErrAlreadySignedUp
	}
	if err == nil && c.busy {
		err = errBusy
	}
	if err != nil {
		c.mu.Unlock()
		return nil, err
	}
	c.busy = true
	c.mu.Unlock()
	defer c.idle()

	body, err := json.Marshal(in)
	if err != nil {
		return nil, err
	}
	b, err := c.exchange(ctx, path, "application/json", body)
	if err != nil {
		return nil, err
	}
	var tr tokenResponse
	if err := json.Unmarshal(b, &tr); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadResponse, err)
	}
	if err := tr.check(); err != nil {
		return nil, err
	}
	if tr.AccountID == "" || tr.DeviceID == "" {
		return nil, fmt.Errorf("%w: missing account_id or device_id", ErrBadResponse)
	}
	ns := &State{
		AccountID:         tr.AccountID,
		DeviceID:          tr.DeviceID,
		Username:          tr.Username,
		AccessToken:       tr.AccessToken,
		AccessTokenExpiry: c.opts.now().Add(time.Duration(tr.ExpiresIn) * time.Second),
		RefreshToken:      tr.RefreshToken,
	}
	c.mu.Lock()
	err = c.saveLocked(ns)
	c.mu.Unlock()
	return &Session{AccountID: ns.AccountID, Username: ns.Username, DeviceID: ns.DeviceID, AccessTokenExpiry: ns.AccessTokenExpiry}, err
}

// errBusy: a call that starts or ends the session is already running.
var errBusy = errors.New("client: a signup, link, recovery, logout or deletion is already running")

// begin marks the start of a call that ends the session (logout,
// deletion); idle its end.
func (c *Client) begin() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.busy {
		return errBusy
	}
	c.busy = true
	return nil
}

func (c *Client) idle() {
	c.mu.Lock()
	c.busy = false
	c.mu.Unlock()
}

// Me is the answer of GET /v1/me.
type Me struct {
	AccountID string `json:"account_id"`
	Username  string `json:"username"`
	DeviceID  string `json:"device_id"`
	// RecoveryCodesLeft is how many unused recovery codes the account
	// holds (see CreateRecoveryCodes); 0 means a lost device can only be
	// replaced through a link code from another signed-in device.
	RecoveryCodesLeft int `json:"recovery_codes_left"`
}

// Me asks the server who this client is.
func (c *Client) Me(ctx context.Context) (*Me, error) {
	var m Me
	if err := c.CallJSON(ctx, http.MethodGet, "/v1/me", nil, &m); err != nil {
		return nil, err
	}
	return &m, nil
}

// Logout ends this device's session on the server and drops the tokens
// from the state (the account ids and the device key stay). If the server
// says the session had already ended, the tokens are dropped too and the
// error is returned. The account lives on: another of its devices, a link
// code from one, or a recovery code brings it back to a device.
func (c *Client) Logout(ctx context.Context) error {
	if err := c.begin(); err != nil {
		return err
	}
	defer c.idle()
	err := c.CallJSON(ctx, http.MethodPost, "/v1/logout", nil, nil)
	if err != nil && !sessionGone(err) {
		return err
	}
	if derr := c.dropSession(false); derr != nil {
		return errors.Join(err, derr)
	}
	return err
}

// sessionGone reports an answer that says this device's session is over
// already: its tokens are of no use any more.
func sessionGone(err error) bool {
	return errors.Is(err, ErrSessionEnded) || ErrorCode(err) == CodeTokenRevoked
}

// dropSession removes the tokens from the state, and the account's ids
// too when ids is set (the account is gone). The device key stays.
//
// It reads the store first: another process may have refreshed since (its
// newer tokens of this session are dead too, and are dropped), or the
// store may hold another identity's session, which it leaves alone.
func (c *Client) dropSession(ids bool) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), saveTimeout)
	defer cancel()
	if _, err := c.reloadLocked(ctx, c.dirty); err != nil && c.gone != nil {
		return nil // not ours to drop
	}
	if c.state == nil {
		return nil
	}
	ns := c.state.clone()
	ns.AccessToken, ns.AccessTokenExpiry, ns.RefreshToken, ns.RefreshRetryID = "", time.Time{}, "", ""
	if ids {
		ns.AccountID, ns.DeviceID, ns.Username = "", "", ""
	}
	return c.saveLocked(ns)
}

// NewRequest builds a request for path (starting with "/") on the server,
// to send with Do. A body from bytes.Reader, bytes.Buffer or strings.Reader
// can be resent, so Do may retry it after a nonce challenge or a refresh.
func (c *Client) NewRequest(ctx context.Context, method, path string, body io.Reader) (*http.Request, error) {
	if !strings.HasPrefix(path, "/") || strings.HasPrefix(path, "//") {
		return nil, errors.New("client: path must start with a single /")
	}
	return http.NewRequestWithContext(ctx, method, c.base+path, body)
}

// CallJSON sends in (if not nil) as JSON to path with Do and decodes a 2xx
// answer into out (if not nil). Any other answer is an *APIError. New
// endpoints are one call of it, e.g.
//
//	var devs struct{ Devices []Device `json:"devices"` }
//	err := c.CallJSON(ctx, "GET", "/v1/me/devices", nil, &devs)
func (c *Client) CallJSON(ctx context.Context, method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	req, err := c.NewRequest(ctx, method, path, body)
	if err != nil {
		return err
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json")
	resp, err := c.Do(ctx, req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if err != nil {
		return fmt.Errorf("client: reading response: %w", err)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return parseProblem(resp, b)
	}
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			return fmt.Errorf("%w: %v", ErrBadResponse, err)
		}
	}
	return nil
}

// Do sends req with "Authorization: DPoP <access token>" and a fresh proof
// bound to the token (ath). It refreshes first when the token is missing,
// expired or within the expiry margin; on a 401 token_expired it refreshes
// once and retries once; on use_dpop_nonce it retries once with the
// server's nonce. Retries need a body that can be resent (req.GetBody, as
// NewRequest sets), or none.
//
// req must be for the server URL's origin (ErrOtherOrigin otherwise). Like
// http.Client.Do, a non-2xx answer is not an error: the caller reads and
// closes the body (see CallJSON).
func (c *Client) Do(ctx context.Context, req *http.Request) (*http.Response, error) {
	origin, ok := c.allowedOrigin(req)
	if !ok {
		return nil, ErrOtherOrigin
	}
	canRetry := req.Body == nil || req.Body == http.NoBody || req.GetBody != nil
	refreshed, nonceRetried := false, false
	for attempt := 0; ; attempt++ {
		tok, err := c.accessToken(ctx)
		if err != nil {
			return nil, err
		}
		r := req.Clone(ctx)
		if attempt > 0 && req.GetBody != nil {
			if r.Body, err = req.GetBody(); err != nil {
				return nil, err
			}
		}
		nonce := c.currentNonce(origin)
		proof, err := c.proof(r.Method, r.URL.String(), tok, nonce)
		if err != nil {
			return nil, err
		}
		r.Header.Set("Authorization", "DPoP "+tok)
		r.Header.Set("DPoP", proof)
		resp, err := c.opts.hc.Do(r)
		if err != nil {
			return nil, err
		}
		c.noteNonce(origin, resp)
		if !canRetry || (resp.StatusCode != http.StatusUnauthorized && resp.StatusCode != http.StatusBadRequest) {
			return resp, nil
		}
		switch peekCode(resp) {
		case CodeUseDPoPNonce:
			if nonceRetried || c.currentNonce(origin) == nonce {
				return resp, nil
			}
			nonceRetried = true
		case CodeTokenExpired:
			if refreshed {
				return resp, nil
			}
			refreshed = true
			drain(resp)
			if err := c.refresh(ctx, tok); err != nil && !errors.Is(err, ErrPersist) {
				return nil, err
			}
			continue
		default:
			return resp, nil
		}
		drain(resp)
	}
}

// peekCode reads the error code of a 400/401 answer and puts the body back.
func peekCode(resp *http.Response) string {
	buf, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	resp.Body = struct {
		io.Reader
		io.Closer
	}{io.MultiReader(bytes.NewReader(buf), resp.Body), resp.Body}
	return parseProblem(resp, buf).Code
}

func drain(resp *http.Response) {
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxErrorBody))
	resp.Body.Close()
}

// Refresh redeems the refresh token now, even if the access token is still
// fresh, and saves the new pair. Concurrent calls (and automatic refreshes
// in Do) share one request.
func (c *Client) Refresh(ctx context.Context) error {
	c.mu.Lock()
	st, err := c.stateLocked(ctx)
	c.mu.Unlock()
	if err != nil {
		return err
	}
	if !st.HasSession() {
		return ErrNoSession
	}
	return c.refresh(ctx, st.AccessToken)
}

// accessToken returns an access token that is not within the expiry margin,
// refreshing first if needed.
func (c *Client) accessToken(ctx context.Context) (string, error) {
	c.mu.Lock()
	st, err := c.stateLocked(ctx)
	c.mu.Unlock()
	if err != nil {
		return "", err
	}
	if !st.HasSession() {
		return "", ErrNoSession
	}
	if c.fresh(st) {
		return st.AccessToken, nil
	}
	if err := c.refresh(ctx, st.AccessToken); err != nil {
		if !errors.Is(err, ErrPersist) {
			return "", err
		}
		// The new tokens are in memory; using them is safe, and the save
		// is retried on the next call.
		c.opts.log.LogAttrs(ctx, slog.LevelWarn, "client: refreshed tokens not saved", slog.String("error", err.Error()))
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.state.HasSession() || c.state.AccessToken == "" {
		return "", ErrNoSession
	}
	return c.state.AccessToken, nil
}

func (c *Client) currentNonce(origin string) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.nonce[origin]
}

// noteNonce remembers the latest DPoP-Nonce of origin (RFC 9449 section
// 8.2): each server issues its own.
func (c *Client) noteNonce(origin string, resp *http.Response) {
	n := resp.Header.Get("DPoP-Nonce")
	if n == "" || len(n) > 512 {
		return
	}
	for i := 0; i < len(n); i++ {
		// RFC 9449: nonce = 1*NQCHAR (%x21 / %x23-5B / %x5D-7E)
		if b := n[i]; b < 0x21 || b > 0x7e || b == '"' || b == '\\' {
			return
		}
	}
	c.mu.Lock()
	c.nonce[origin] = n
	c.mu.Unlock()
}

func (c *Client) proof(method, u, accessToken, nonce string) (string, error) {
	p, err := dpop.NewProofWithOptions(c.key, method, u, accessToken, nonce, dpop.ProofOptions{Now: c.opts.now})
	if err != nil {
		return "", fmt.Errorf("client: making DPoP proof: %w", err)
	}
	return p, nil
}

// exchange POSTs body to an unauthenticated endpoint (signup, token) with a
// proof without ath, retrying once on use_dpop_nonce. It returns the body
// of a 2xx answer, an *APIError, or a transport error.
func (c *Client) exchange(ctx context.Context, path, contentType string, body []byte) ([]byte, error) {
	u := c.base + path
	for try := 0; ; try++ {
		nonce := c.currentNonce(c.origin)
		proof, err := c.proof(http.MethodPost, u, "", nonce)
		if err != nil {
			return nil, err
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, bytes.NewReader(body))
		if err != nil {
			return nil, err
		}
		req.Header.Set("Content-Type", contentType)
		req.Header.Set("Accept", "application/json")
		req.Header.Set("DPoP", proof)
		resp, err := c.opts.hc.Do(req)
		if err != nil {
			return nil, err
		}
		c.noteNonce(c.origin, resp)
		b, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
		resp.Body.Close()
		if err != nil {
			return nil, fmt.Errorf("client: reading response: %w", err)
		}
		if resp.StatusCode >= 200 && resp.StatusCode <= 299 {
			return b, nil
		}
		pe := parseProblem(resp, b)
		if pe.Code == CodeUseDPoPNonce && try == 0 && c.currentNonce(c.origin) != nonce {
			continue
		}
		return nil, pe
	}
}

// allowedOrigin returns the origin of req when the access token may go
// there: the issuer's or one given to WithOrigins.
func (c *Client) allowedOrigin(req *http.Request) (string, bool) {
	if req.URL == nil || req.URL.User != nil {
		return "", false
	}
	o := strings.ToLower(req.URL.Scheme + "://" + req.URL.Host)
	if o == c.origin {
		return o, true
	}
	for _, allowed := range c.opts.origins {
		if o == allowed {
			return o, true
		}
	}
	return "", false
}

// HTTPClient returns an *http.Client whose requests go through Do: an
// access token and a fresh proof for the exact method and URL on each, a
// refresh when the token expired, one retry on use_dpop_nonce, and a
// refusal (ErrOtherOrigin, nothing sent) for any origin but the issuer's
// and those of WithOrigins. Redirects are not followed.
func (c *Client) HTTPClient() *http.Client {
	return &http.Client{
		Transport: roundTripper{c},
		CheckRedirect: func(*http.Request, []*http.Request) error {
			return http.ErrUseLastResponse
		},
	}
}

// roundTripper sends each request through Client.Do.
type roundTripper struct{ c *Client }

func (rt roundTripper) RoundTrip(req *http.Request) (*http.Response, error) {
	return rt.c.Do(req.Context(), req)
}
