package flow

import (
	"context"
	"errors"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/hallpass/hallpass/account"
	"github.com/hallpass/hallpass/refresh"
	"github.com/hallpass/hallpass/token"
)

// SignupRequest is a new account's first device.
type SignupRequest struct {
	// Username as the user typed it (tainted: it goes through the policy).
	Username string
	// DeviceName is optional, printable, at most Config.MaxDeviceName
	// characters.
	DeviceName string
	// Proof proves the device key the session is bound to.
	Proof Proof
}

// Tokens is what a signup or a refresh hands the device.
type Tokens struct {
	AccountID, Username, DeviceID string // signup only
	AccessToken                   string
	AccessExpiry                  time.Time
	RefreshToken                  string
}

// Signup creates an account with its first device and session.
//
// Order: username policy -> device name -> DPoP proof (with a server nonce
// when configured) -> ids and tokens -> one atomic CreateAccount. Nothing is
// stored before the last step, and the tokens are returned only after it
// succeeded. A session starts at counter 0: the first refresh token carries
// ctr 0; each refresh presents ctr n and receives ctr n+1.
//
// Rate limits are the transport's: they key on the client address.
func (f *Flows) Signup(ctx context.Context, req SignupRequest) (Tokens, error) {
	name, err := f.cfg.Usernames.Check(req.Username)
	if err != nil {
		return Tokens{}, fail(ErrUsernameInvalid, err)
	}
	if !ValidDeviceName(req.DeviceName, f.cfg.MaxDeviceName) {
		return Tokens{}, &Error{Code: ErrInvalidRequest.Code, Detail: "device_name must be printable text of at most the configured length.", Err: errors.New("device_name invalid")}
	}
	proof, err := f.verifyProof(ctx, req.Proof, "")
	if err != nil {
		return Tokens{}, err
	}
	accID, err := account.NewID(account.AccountPrefix, f.cfg.Rand)
	if err != nil {
		return Tokens{}, fail(ErrInternal, err)
	}
	devID, err := account.NewID(account.DevicePrefix, f.cfg.Rand)
	if err != nil {
		return Tokens{}, fail(ErrInternal, err)
	}
	now := f.now().UTC()
	sess := account.Session{DeviceID: devID, AccountID: accID, JKT: proof.JKT, Counter: 0, Created: now, LastUsed: now, Expires: now.Add(f.cfg.RefreshTTL)}
	out, err := f.mintPair(sess, 0, now)
	if err != nil {
		return Tokens{}, err
	}
	acc := account.Account{ID: accID, Username: name.Display, UsernameKey: name.Key, Created: now}
	dev := account.Device{ID: devID, AccountID: accID, Name: req.DeviceName, JKT: proof.JKT, Created: now, LastUsed: now}
	if err := f.call(ctx, "create_account", func(ctx context.Context) error {
		return f.cfg.Store.CreateAccount(ctx, acc, dev, sess)
	}); err != nil {
		if errors.Is(err, account.ErrUsernameTaken) {
			return f.signupRetried(ctx, name.Key, proof.JKT, now)
		}
		return Tokens{}, storeErr("create_account", err)
	}
	f.obs.SignedUp()
	out.AccountID, out.Username, out.DeviceID = accID, name.Display, devID
	return out, nil
}

// mintPair mints an access token for the session's device and a refresh
// token with counter ctr, expiring with the session.
func (f *Flows) mintPair(sess account.Session, ctr uint64, now time.Time) (Tokens, error) {
	return f.mintPairWith(f.cfg.Refresh, sess, ctr, now)
}

// mintAccess mints an access token for the session's account, device
// and key under the current signing key.
func (f *Flows) mintAccess(sess account.Session) (string, *token.Claims, error) {
	key, err := f.signingKey()
	if err != nil {
		return "", nil, err
	}
	access, claims, err := f.cfg.Minter.Mint(key, token.Subject{Account: sess.AccountID, Device: sess.DeviceID, JKT: sess.JKT})
	if err != nil {
		return "", nil, fail(ErrInternal, err)
	}
	return access, claims, nil
}

// mintPairWith is mintPair sealing with codec.
func (f *Flows) mintPairWith(codec *refresh.Codec, sess account.Session, ctr uint64, now time.Time) (Tokens, error) {
	access, claims, err := f.mintAccess(sess)
	if err != nil {
		return Tokens{}, err
	}
	rt, err := codec.Seal(refresh.Claims{DeviceID: sess.DeviceID, Counter: ctr, IssuedAt: now, ExpiresAt: sess.Expires})
	if err != nil {
		return Tokens{}, fail(ErrInternal, err)
	}
	return Tokens{AccessToken: access, AccessExpiry: claims.Expiry, RefreshToken: rt}, nil
}

// ValidDeviceName reports whether s is an acceptable device name: at most
// max characters of valid UTF-8, printable, no control, format (bidi
// overrides, zero-width joiners) or private-use characters, no line
// breaks or tabs, not only spaces. The empty name is allowed.
func ValidDeviceName(s string, max int) bool {
	if !utf8.ValidString(s) || utf8.RuneCountInString(s) > max {
		return false
	}
	blank := true
	for _, r := range s {
		if unicode.IsControl(r) || unicode.Is(unicode.Cf, r) || unicode.Is(unicode.Co, r) ||
			unicode.Is(unicode.Cs, r) || r == utf8.RuneError || r == '\u2028' || r == '\u2029' {
			return false
		}
		if !unicode.IsSpace(r) {
			blank = false
		}
		if unicode.IsSpace(r) && r != ' ' {
			return false
		}
	}
	return s == "" || !blank
}

// SignupRetryWindow is how long after a signup the same device may sign up
// again with the same username and get that account, not username_taken.
const SignupRetryWindow = 5 * time.Minute

// signupRetried answers a signup whose name is taken: when the name was
// taken by this very device key moments ago, and that account has only
// this device, never refreshed, it is the client's retry of a signup
// whose answer it lost (a 503 while the store was slow, a dropped
// connection), and it gets that account with a fresh pair. Anyone else
// gets username_taken. Only the holder of the device key can make the
// proof, so the answer goes to nobody else.
func (f *Flows) signupRetried(ctx context.Context, key, jkt string, now time.Time) (Tokens, error) {
	taken := fail(ErrUsernameTaken, nil)
	acc, err := read(ctx, f, "get_account_by_username", func(ctx context.Context) (account.Account, error) {
		return f.cfg.Store.GetAccountByUsername(ctx, key)
	})
	if err != nil || now.Sub(acc.Created) > SignupRetryWindow || acc.Banned {
		return Tokens{}, taken
	}
	devs, err := f.Devices(ctx, acc.ID)
	if err != nil || len(devs) != 1 || devs[0].JKT != jkt || !devs[0].Active() {
		return Tokens{}, taken
	}
	sess, err := read(ctx, f, "get_session", func(ctx context.Context) (account.Session, error) {
		return f.cfg.Store.GetSession(ctx, devs[0].ID)
	})
	if err != nil || sess.Counter != 0 || !sess.Ended.IsZero() || sess.JKT != jkt {
		return Tokens{}, taken
	}
	out, err := f.retryPair(ctx, acc, devs[0].ID, sess, taken)
	if err != nil {
		return Tokens{}, err
	}
	f.obs.SignedUp()
	return out, nil
}
