package issuer

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/hallpass/hallpass/account"
	"github.com/hallpass/hallpass/keys"
	"github.com/hallpass/hallpass/revocation"
)

// Admin route paths, served only by AdminHandler.
const (
	PathAdminRevocations      = "/v1/admin/revocations"
	PathAdminAccount          = "/v1/admin/accounts/:id"
	PathAdminAccountByName    = "/v1/admin/accounts/by-username/:name"
	PathAdminAccountDevices   = "/v1/admin/accounts/:id/devices"
	PathAdminAccountBan       = "/v1/admin/accounts/:id/ban"
	PathAdminAccountUnban     = "/v1/admin/accounts/:id/unban"
	PathAdminDevice           = "/v1/admin/devices/:id"
	PathAdminKeysRotate       = "/v1/admin/keys/rotate"
	PathAdminKeyRevoke        = "/v1/admin/keys/:kid/revoke"
	PathAdminAccountRecovery  = "/v1/admin/accounts/:id/recovery-codes"
	ctxAudit                  = "hallpass.audit"
	adminRealm                = `Bearer realm="hallpass-admin"`
	auditWhoUnauthenticated   = "-"
	adminReasonDeviceRevoked  = "admin: device revoked"
	adminReasonAccountBanned  = "admin: account banned"
	adminReasonKeyRevoked     = "admin: signing key revoked"
	adminReasonAccountDeleted = "admin: account deleted"
	maxAdminReason            = revocation.MaxReasonLen
	adminAuthorizationMaxSize = 256
)

// KeyManager changes the key ring for the admin API: through the ring's
// store (keys/filestore, keys/redisring), so that the change is durable and
// the other nodes see it, and so that the served KeySource reflects it at
// once (a revoked key is listed as revoked in the next key-set response).
type KeyManager interface {
	// Rotate promotes the next key, retires the current one and adds a
	// new next key: keys.ErrNextTooNew (answered 409) when the next key
	// has been in the ring less than keys.MinNextAge.
	Rotate(ctx context.Context) error
	// Revoke withdraws a key at once: keys.ErrKeyNotFound when the ring
	// has no such key; keys.ErrKeyRevoked when it was already revoked.
	Revoke(ctx context.Context, kid keys.KeyID) error
}

// AdminHandler returns the HTTP handler of the admin API, to serve on its
// own listener (never the public one: none of its routes exist on
// Handler). Every request needs "Authorization: Bearer <admin key>" whose
// SHA-256 digest is a line of Config.AdminKeysFile; without that file every
// request is refused with 401. Every request made with a valid key is
// audited; requests refused before a key was accepted are counted and
// sampled (Config.AuditRefusedPerMinute), and an address that keeps
// failing gets 429 (Config.AdminAuthLimit).
//
// SECURITY: an admin key can sign out any device, ban any account and
// revoke signing keys. Bind the admin listener to loopback or a private
// network, and keep the keys file readable by the server only.
func (s *Server) AdminHandler() http.Handler { return s.admin }

// AdminRoutes returns the method and path of every admin route.
func (s *Server) AdminRoutes() [][2]string { return routesOf(s.admin) }

func (s *Server) buildAdminEcho() *echo.Echo {
	e := s.newEcho(s.observe, s.limitBody, s.adminGate)

	e.POST(PathAdminRevocations, s.handleAdminRevoke)
	e.GET(PathAdminRevocations, s.handleAdminRevocations)
	e.GET(PathAdminAccountByName, s.handleAdminAccountByName)
	e.GET(PathAdminAccount, s.handleAdminAccount)
	e.DELETE(PathAdminAccount, s.handleAdminDeleteAccount)
	e.POST(PathAdminAccountRecovery, s.handleAdminSupportCode)
	e.GET(PathAdminAccountDevices, s.handleAdminAccountDevices)
	e.POST(PathAdminAccountBan, s.handleAdminBan(true))
	e.POST(PathAdminAccountUnban, s.handleAdminBan(false))
	e.DELETE(PathAdminDevice, s.handleAdminRevokeDevice)
	e.POST(PathAdminKeysRotate, s.handleAdminRotate)
	e.POST(PathAdminKeyRevoke, s.handleAdminRevokeKey)
	s.adminRefreshRoutes(e) // adminrefresh.go
	s.adminReadRoutes(e)    // adminread.go
	return e
}

// adminGate authenticates the admin key and audits the call, whatever its
// outcome (unknown routes and refused keys included). A client address
// past its budget of failed authentications gets 429 without its key
// being looked at. Only an admin key that matches no line spends the
// budget: a request without one cannot succeed, and a page in the
// operator's browser can send the listener requests but never an
// Authorization header, so counting them let any page lock the
// operator's own address out. Calls refused before a key was accepted are counted
// and only sampled into the audit record (auditRefused); calls made with
// a key are always recorded.
func (s *Server) adminGate(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		now := s.now()
		ip := c.RealIP()
		rec := &AuditRecord{
			Time:      now.UTC(),
			Who:       auditWhoUnauthenticated,
			Action:    c.Request().Method + " " + routeOf(c),
			RequestID: requestID(c),
			ClientIP:  ip,
		}
		if !isKnownMethod(c.Request().Method) {
			rec.Action = "OTHER " + routeOf(c)
		}
		c.Set(ctxAudit, rec)
		var err error
		if after, blocked := s.adminGuard.blocked(ip, now); blocked {
			err = s.refused("admin_auth", after)
		} else if who, aerr := s.adminAuth(c); aerr == nil {
			rec.Who = who
			err = next(c)
		} else {
			err = aerr
			if errors.Is(aerr, errUnknownAdminKey) {
				if after, ok := s.adminGuard.failed(ip, now); !ok {
					err = s.refused("admin_auth", after)
				}
			}
		}
		if err != nil {
			var ae *apiError
			if !errors.As(err, &ae) {
				ae = s.fromEchoError(err)
				err = ae
			}
			rec.Status, rec.Result = ae.status, ae.code
		} else {
			rec.Status, rec.Result = c.Response().Status, "ok"
		}
		if rec.Who == auditWhoUnauthenticated {
			s.auditRefused(c.Request().Context(), *rec)
		} else {
			s.audit(c.Request().Context(), *rec)
		}
		return err
	}
}

// audit writes the slog line, then hands the record to the sink.
func (s *Server) audit(ctx context.Context, r AuditRecord) {
	s.logAudit(ctx, r)
	if s.cfg.AuditSink == nil {
		return
	}
	sctx, cancel := s.storeCtx(context.WithoutCancel(ctx))
	defer cancel()
	if err := s.cfg.AuditSink.Record(sctx, r); err != nil {
		s.log.LogAttrs(ctx, slog.LevelError, "audit sink failed; the log line above is the record",
			attrRequestID(r.RequestID), attrErr(err))
	}
}

// target adds an id to the call's audit record.
func target(c echo.Context, k, v string) {
	if rec, ok := c.Get(ctxAudit).(*AuditRecord); ok {
		if rec.Targets == nil {
			rec.Targets = map[string]string{}
		}
		rec.Targets[k] = v
	}
}

// errUnknownAdminKey: a well-formed admin key that matches no line of the
// keys file, the only refusal that spends the address's budget.
var errUnknownAdminKey = errors.New("unknown admin key")

func errAdminAuth(cause error) *apiError {
	e := fail(http.StatusUnauthorized, CodeUnauthorized, cause)
	e.challenge = adminRealm
	return e
}

// adminAuth checks "Authorization: Bearer <admin key>" and returns the
// key's id.
func (s *Server) adminAuth(c echo.Context) (string, error) {
	if s.adminKeys == nil {
		return "", errAdminAuth(errors.New("admin API disabled: no admin keys file"))
	}
	authz := c.Request().Header.Values(echo.HeaderAuthorization)
	if len(authz) != 1 || len(authz[0]) > adminAuthorizationMaxSize {
		return "", errAdminAuth(errors.New("no or several Authorization headers"))
	}
	scheme, tainted, ok := strings.Cut(authz[0], " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || !strings.HasPrefix(tainted, AdminKeyPrefix) {
		return "", errAdminAuth(errors.New("not a Bearer admin key"))
	}
	id, ok, err := s.adminKeys.lookup(tainted)
	if err != nil {
		// Fail closed; the file is the operator's to fix.
		return "", errUnavailable(err)
	}
	if !ok {
		return "", errAdminAuth(errUnknownAdminKey)
	}
	return id, nil
}

// --- revocations ---

type entryView struct {
	Kind    revocation.Kind `json:"kind"`
	ID      string          `json:"id"`
	Before  time.Time       `json:"before"`
	Created time.Time       `json:"created"`
	Expires *time.Time      `json:"expires"` // null: never
	Reason  string          `json:"reason,omitempty"`
}

func viewEntry(e revocation.Entry) entryView {
	v := entryView{Kind: e.Kind, ID: e.ID, Before: e.Before.UTC(), Created: e.Created.UTC(), Reason: e.Reason}
	if !e.Expires.IsZero() {
		x := e.Expires.UTC()
		v.Expires = &x
	}
	return v
}

func (s *Server) requireRevStore() error {
	if s.revStore == nil {
		return errUnavailable(errors.New("no revocation store configured"))
	}
	return nil
}

// checkEntryID validates the id of an entry of kind.
func checkEntryID(kind revocation.Kind, id string) bool {
	switch kind {
	case revocation.KindDevice:
		return account.ValidID(account.DevicePrefix, id)
	case revocation.KindAccount:
		return account.ValidID(account.AccountPrefix, id)
	case revocation.KindAll:
		return id == ""
	case revocation.KindKey:
		_, err := keys.ParseKeyID(id, "pid")
		return err == nil
	case revocation.KindToken:
		return id != "" && len(id) <= revocation.MaxIDLen && validPrintable(id)
	}
	return false
}

func validPrintable(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x21 || s[i] > 0x7e {
			return false
		}
	}
	return true
}

// handleAdminRevoke: POST /v1/admin/revocations {"kind","id","reason"}.
func (s *Server) handleAdminRevoke(c echo.Context) error {
	if err := s.requireRevStore(); err != nil {
		return err
	}
	if mediaType(c) != echo.MIMEApplicationJSON {
		return fail(http.StatusUnsupportedMediaType, CodeUnsupportedMedia, nil)
	}
	b, err := readBody(c)
	if err != nil {
		return err
	}
	m, err := decodeStringObject(b, true, "kind", "id", "reason")
	if err != nil {
		return errInvalidRequest(err)
	}
	kind := revocation.Kind(m["kind"])
	if !checkEntryID(kind, m["id"]) || len(m["reason"]) > maxAdminReason {
		// Nothing of the refused body goes to the audit record.
		return errInvalidRequest(errors.New("unknown kind, or an id that does not fit it"))
	}
	target(c, "kind", string(kind))
	if m["id"] != "" {
		target(c, "id", m["id"])
	}
	e, err := s.flows.Revoke(c.Request().Context(), kind, m["id"], m["reason"])
	if err != nil {
		return flowError(err)
	}
	noStore(c)
	return c.JSON(http.StatusCreated, viewEntry(e))
}

type entriesResponse struct {
	Entries []entryView `json:"entries"`
	Total   int         `json:"total"` // live entries, listed or not
}

// handleAdminRevocations: GET /v1/admin/revocations?limit=N, the live
// entries, newest first; with limit, the newest N only (every sign-out adds
// an entry: a busy issuer holds tens of thousands).
func (s *Server) handleAdminRevocations(c echo.Context) error {
	if err := s.requireRevStore(); err != nil {
		return err
	}
	limit, err := queryLimit(c, -1, 0) // -1: every live entry
	if err != nil {
		return err
	}
	var es []revocation.Entry
	if err := s.storeCall(c, "revocation_snapshot", func(ctx context.Context) error {
		var err error
		es, _, err = s.revStore.Snapshot(ctx)
		return err
	}); err != nil {
		return storeErr(err)
	}
	now := s.now()
	live := slices.DeleteFunc(es, func(e revocation.Entry) bool { return e.Expired(now) })
	slices.SortStableFunc(live, func(a, b revocation.Entry) int { return b.Created.Compare(a.Created) })
	out := entriesResponse{Total: len(live)}
	if limit >= 0 {
		live = live[:min(limit, len(live))]
	}
	out.Entries = make([]entryView, 0, len(live))
	for _, e := range live {
		out.Entries = append(out.Entries, viewEntry(e))
	}
	noStore(c)
	return c.JSON(http.StatusOK, out)
}

// --- accounts and devices ---

type accountView struct {
	ID       string    `json:"id"`
	Username string    `json:"username"`
	Created  time.Time `json:"created"`
	Banned   bool      `json:"banned"`
}

func viewAccount(a account.Account) accountView {
	return accountView{ID: a.ID, Username: a.Username, Created: a.Created.UTC(), Banned: a.Banned}
}

var errNoSuchAccount = fail(http.StatusNotFound, CodeNotFound, account.ErrNotFound)

// getAccount loads the account named by the :id parameter.
func (s *Server) getAccount(c echo.Context) (account.Account, error) {
	id := c.Param("id")
	if !account.ValidID(account.AccountPrefix, id) {
		return account.Account{}, errNoSuchAccount
	}
	target(c, "account_id", id)
	var acc account.Account
	if err := s.storeCall(c, "get_account", func(ctx context.Context) error {
		var err error
		acc, err = s.store.GetAccount(ctx, id)
		return err
	}); err != nil {
		if errors.Is(err, account.ErrNotFound) {
			return account.Account{}, errNoSuchAccount
		}
		return account.Account{}, storeErr(err)
	}
	return acc, nil
}

// handleAdminAccountByName maps the name with the username policy (so
// "Alice" finds "alice") and looks the mapped form up. The name is decoded
// from the path once: Echo routes on the raw (still escaped) path only when
// net/url kept one, and on the decoded path otherwise.
func (s *Server) handleAdminAccountByName(c echo.Context) error {
	tainted := c.Param("name")
	if c.Request().URL.RawPath != "" {
		u, err := url.PathUnescape(tainted)
		if err != nil {
			return errNoSuchAccount
		}
		tainted = u
	}
	key, err := account.UsernameKey(tainted) // found even if the policy changed since
	if err != nil {
		return errNoSuchAccount
	}
	var acc account.Account
	if err := s.storeCall(c, "get_account_by_username", func(ctx context.Context) error {
		var err error
		acc, err = s.store.GetAccountByUsername(ctx, key)
		return err
	}); err != nil {
		if errors.Is(err, account.ErrNotFound) {
			return errNoSuchAccount
		}
		return storeErr(err)
	}
	target(c, "account_id", acc.ID)
	noStore(c)
	return c.JSON(http.StatusOK, viewAccount(acc))
}

func (s *Server) handleAdminAccountDevices(c echo.Context) error {
	acc, err := s.getAccount(c)
	if err != nil {
		return err
	}
	var devs []account.Device
	if err := s.storeCall(c, "list_devices", func(ctx context.Context) error {
		var err error
		devs, err = s.store.ListDevices(ctx, acc.ID)
		return err
	}); err != nil {
		return storeErr(err)
	}
	out := devicesResponse{Devices: make([]deviceView, 0, len(devs))}
	for _, d := range devs {
		out.Devices = append(out.Devices, viewDevice(d))
	}
	noStore(c)
	return c.JSON(http.StatusOK, out)
}

// handleAdminRevokeDevice: DELETE /v1/admin/devices/{id}: the session
// ends and a device entry denies the device's access tokens everywhere.
func (s *Server) handleAdminRevokeDevice(c echo.Context) error {
	id := c.Param("id")
	if !account.ValidID(account.DevicePrefix, id) {
		return fail(http.StatusNotFound, CodeNotFound, errors.New("malformed device id"))
	}
	target(c, "device_id", id)
	var dev account.Device
	if err := s.storeCall(c, "get_device", func(ctx context.Context) error {
		var err error
		dev, err = s.store.GetDevice(ctx, id)
		return err
	}); err != nil {
		if errors.Is(err, account.ErrNotFound) {
			return fail(http.StatusNotFound, CodeNotFound, err)
		}
		return storeErr(err)
	}
	target(c, "account_id", dev.AccountID)
	if err := s.revokeDevice(c, dev, adminReasonDeviceRevoked); err != nil {
		return err
	}
	noStore(c)
	return c.NoContent(http.StatusNoContent)
}

// handleAdminBan: POST .../ban bans the account (no refresh, no new
// device, no recovery from then on), then adds an account entry (every
// token of the account issued until now is denied everywhere) and ends
// every session of the account (so it stays out after the entry expires).
// The ban comes first: a device that joined between the sessions' end and
// the ban would have stayed live through an unban. A failure after the ban
// leaves the account banned, and the call can be retried. .../unban lifts
// the ban: the owner comes back through a recovery code (the sessions
// ended by the ban stay ended).
func (s *Server) handleAdminBan(banned bool) echo.HandlerFunc {
	return func(c echo.Context) error {
		acc, err := s.getAccount(c)
		if err != nil {
			return err
		}
		if err := s.storeCall(c, "set_banned", func(ctx context.Context) error {
			return s.store.SetBanned(ctx, acc.ID, banned)
		}); err != nil {
			if errors.Is(err, account.ErrNotFound) {
				return errNoSuchAccount
			}
			return storeErr(err)
		}
		if banned {
			if err := s.flows.EndAccount(c.Request().Context(), acc.ID, adminReasonAccountBanned); err != nil {
				return flowError(err)
			}
		}
		acc.Banned = banned
		noStore(c)
		return c.JSON(http.StatusOK, viewAccount(acc))
	}
}

// --- keys ---

func (s *Server) requireKeyManager() error {
	if s.cfg.KeyManager == nil {
		return errUnavailable(errors.New("no key manager configured"))
	}
	return nil
}

// keyCall runs a key-ring change under the store timeout.
func (s *Server) keyCall(c echo.Context, op string, fn func(ctx context.Context) error) error {
	return s.storeCall(c, op, fn)
}

// handleAdminRotate: POST /v1/admin/keys/rotate. A next key published
// less than keys.MinNextAge ago (a rotation just before, here or on another
// node) is not promoted: 409, the ring unchanged, Retry-After MinNextAge
// (an upper bound). Revoking the current key is not held back.
func (s *Server) handleAdminRotate(c echo.Context) error {
	if err := s.requireKeyManager(); err != nil {
		return err
	}
	if err := s.keyCall(c, "key_rotate", s.cfg.KeyManager.Rotate); err != nil {
		if errors.Is(err, keys.ErrNextTooNew) {
			return errNextTooNew(err)
		}
		return storeErr(err)
	}
	if cur := s.keys.Current(); cur != nil {
		target(c, "current_kid", string(cur.ID()))
	}
	noStore(c)
	return c.JSON(http.StatusOK, s.keys.KeySet(s.issuer))
}

// detailNextTooNew is the detail of the 409 to a rotation that came too
// soon after the one before.
var detailNextTooNew = fmt.Sprintf("the next signing key was published less than %[1]d minutes ago, so verifiers may not know it yet: "+
	"rotate again once %[1]d minutes have passed since the last rotation (Retry-After), or revoke the current key if it must stop signing now",
	int(keys.MinNextAge/time.Minute))

func errNextTooNew(cause error) *apiError {
	e := fail(http.StatusConflict, CodeInvalidRequest, cause)
	e.detail = detailNextTooNew
	e.retryAfter = int(keys.MinNextAge / time.Second)
	return e
}

// handleAdminRevokeKey: POST /v1/admin/keys/{kid}/revoke. The ring change
// comes first (the published key set lists the key as revoked, and this
// issuer refuses its tokens at once), then a key entry, so that mirrors
// refuse its tokens without refetching the key set. Revoking a revoked key
// again is 200 (the entry is added again, harmlessly).
func (s *Server) handleAdminRevokeKey(c echo.Context) error {
	if err := s.requireKeyManager(); err != nil {
		return err
	}
	kid, err := keys.ParseKeyID(c.Param("kid"), "pid")
	if err != nil {
		return fail(http.StatusNotFound, CodeNotFound, errors.New("malformed key id"))
	}
	target(c, "kid", string(kid))
	if err := s.keyCall(c, "key_revoke", func(ctx context.Context) error {
		return s.cfg.KeyManager.Revoke(ctx, kid)
	}); err != nil && !errors.Is(err, keys.ErrKeyRevoked) {
		if errors.Is(err, keys.ErrKeyNotFound) {
			return fail(http.StatusNotFound, CodeNotFound, err)
		}
		return storeErr(err)
	}
	if _, err := s.addEntry(c, revocation.KindKey, string(kid), adminReasonKeyRevoked); err != nil {
		return err
	}
	noStore(c)
	return c.JSON(http.StatusOK, s.keys.KeySet(s.issuer))
}
