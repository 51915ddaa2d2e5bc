package console

import (
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/hallpass/hallpass/account"
	"github.com/hallpass/hallpass/issuer"
)

// maxQuery bounds a search.
const maxQuery = 256

// revocationsShown is how many entries the revocations page lists, the
// newest: a busy issuer holds tens of thousands (every sign-out adds one).
const revocationsShown = 500

// flashes are the only messages a redirect can ask for (?done=...).
var flashes = map[string]string{
	"device_signed_out": "Device signed out: its session ended and its access tokens are refused everywhere.",
	"banned":            "Account banned: every session ended and every token refused.",
	"unbanned":          "Ban lifted: the owner comes back with a recovery code.",
	"account_deleted":   "Account deleted.",
}

// JSON shapes of the admin API's answers (docs/openapi-admin.yaml).
type (
	deviceJSON struct {
		ID       string     `json:"id"`
		Name     string     `json:"name"`
		Created  time.Time  `json:"created"`
		LastUsed time.Time  `json:"last_used"`
		Revoked  *time.Time `json:"revoked"`
		Active   bool       `json:"active"`
	}
	accountJSON struct {
		ID                string       `json:"id"`
		Username          string       `json:"username"`
		Created           time.Time    `json:"created"`
		Banned            bool         `json:"banned"`
		Devices           []deviceJSON `json:"devices"` // the first issuer.MaxAdminAccountDevices
		DevicesTotal      int          `json:"devices_total"`
		RecoveryCodesLeft int          `json:"recovery_codes_left"`
		LiveLinkCodes     int          `json:"live_link_codes"`
	}
	entryJSON struct {
		Kind    string     `json:"kind"`
		ID      string     `json:"id"`
		Before  time.Time  `json:"before"`
		Created time.Time  `json:"created"`
		Expires *time.Time `json:"expires"`
		Reason  string     `json:"reason"`
	}
	revocationsView struct {
		Entries []entryJSON `json:"entries"` // the newest revocationsShown
		Total   int         `json:"total"`
	}
	keySetJSON struct {
		Issuer string `json:"issuer"`
		Keys   []struct {
			Kid    string `json:"kid"`
			Status string `json:"status"`
		} `json:"keys"`
		Revoked []string `json:"revoked"`
	}
)

// admin calls the admin API with the session's key.
func (c *Console) admin(r *http.Request, s session, method, path string) apiAnswer {
	return call(r.Context(), c.cfg.Admin, r, s.key, method, path, nil)
}

// handleHome: GET /admin/, the search form.
func (c *Console) handleHome(w http.ResponseWriter, r *http.Request, s session) {
	c.render(w, http.StatusOK, "home", c.view(r, s, "Accounts", nil))
}

// handleSearch: GET /admin/search?q=, an account id or a username.
func (c *Console) handleSearch(w http.ResponseWriter, r *http.Request, s session) {
	q := strings.TrimSpace(r.URL.Query().Get("q"))
	if q == "" || len(q) > maxQuery {
		redirect(w, Prefix)
		return
	}
	path := "/v1/admin/accounts/by-username/" + url.PathEscape(q)
	if account.ValidID(account.AccountPrefix, q) {
		path = "/v1/admin/accounts/" + q
	}
	a := c.admin(r, s, http.MethodGet, path)
	if a.status == http.StatusNotFound {
		v := c.view(r, s, "Accounts", nil)
		v.Error, v.Query = "No account has this username or id: ", q
		c.render(w, http.StatusNotFound, "home", v)
		return
	}
	var acc accountJSON
	if !c.answered(w, r, s, a, &acc) {
		return
	}
	if !account.ValidID(account.AccountPrefix, acc.ID) {
		c.internal(w, r, nil)
		return
	}
	redirect(w, Prefix+"accounts/"+acc.ID)
}

// handleAccount: GET /admin/accounts/{id}: the account, its devices and
// the actions.
func (c *Console) handleAccount(w http.ResponseWriter, r *http.Request, s session) {
	id := r.PathValue("id")
	if !account.ValidID(account.AccountPrefix, id) {
		c.notFound(w, r, s)
		return
	}
	var acc accountJSON
	if !c.answered(w, r, s, c.admin(r, s, http.MethodGet, "/v1/admin/accounts/"+id), &acc) {
		return
	}
	c.render(w, http.StatusOK, "account", c.view(r, s, "Account "+acc.Username, acc))
}

// handleSignOutDevice: POST /admin/devices/{id}/sign-out, as DELETE
// /v1/admin/devices/{id}; back to the account (form field "account").
func (c *Console) handleSignOutDevice(w http.ResponseWriter, r *http.Request, s session) {
	id := r.PathValue("id")
	if !account.ValidID(account.DevicePrefix, id) {
		c.notFound(w, r, s)
		return
	}
	if !c.answered(w, r, s, c.admin(r, s, http.MethodDelete, "/v1/admin/devices/"+id), nil) {
		return
	}
	c.back(w, r.PostForm.Get("account"), "device_signed_out")
}

// handleBan: POST /admin/accounts/{id}/ban and .../unban.
func (c *Console) handleBan(ban bool) handlerFunc {
	verb, done := "unban", "unbanned"
	if ban {
		verb, done = "ban", "banned"
	}
	return func(w http.ResponseWriter, r *http.Request, s session) {
		id := r.PathValue("id")
		if !account.ValidID(account.AccountPrefix, id) {
			c.notFound(w, r, s)
			return
		}
		if !c.answered(w, r, s, c.admin(r, s, http.MethodPost, "/v1/admin/accounts/"+id+"/"+verb), nil) {
			return
		}
		c.back(w, id, done)
	}
}

type supportCodeView struct {
	AccountID string
	Code      string
}

// handleSupportCode: POST /admin/accounts/{id}/recovery-code. The code is
// kept in the session, never in a URL, and shown once by the page this
// redirects to (handleShowCode): a reload of that page issues no other.
func (c *Console) handleSupportCode(w http.ResponseWriter, r *http.Request, s session) {
	id := r.PathValue("id")
	if !account.ValidID(account.AccountPrefix, id) {
		c.notFound(w, r, s)
		return
	}
	var out struct {
		Code string `json:"code"`
	}
	if !c.answered(w, r, s, c.admin(r, s, http.MethodPost, "/v1/admin/accounts/"+id+"/recovery-codes"), &out) {
		return
	}
	c.sessions.stashCode(cookieValue(r, sessionCookieName(r)), supportCodeView{AccountID: id, Code: out.Code})
	redirect(w, Prefix+"accounts/"+id+"/recovery-code")
}

// handleShowCode: GET /admin/accounts/{id}/recovery-code, the support code
// just issued, once (no-store); then 410.
func (c *Console) handleShowCode(w http.ResponseWriter, r *http.Request, s session) {
	id := r.PathValue("id")
	v, ok := c.sessions.takeCode(cookieValue(r, sessionCookieName(r)), id)
	if !ok || !account.ValidID(account.AccountPrefix, id) {
		e := c.view(r, s, "Recovery code", nil)
		e.Error = "A support code is shown once, and this one was. If it was lost, issue another from the account's page (the first stays valid until used)."
		c.render(w, http.StatusGone, "error", e)
		return
	}
	c.render(w, http.StatusOK, "code", c.view(r, s, "Recovery code", v))
}

// handleDelete: POST /admin/accounts/{id}/delete with confirm=yes.
func (c *Console) handleDelete(w http.ResponseWriter, r *http.Request, s session) {
	id := r.PathValue("id")
	if !account.ValidID(account.AccountPrefix, id) {
		c.notFound(w, r, s)
		return
	}
	if r.PostForm.Get("confirm") != "yes" {
		v := c.view(r, s, "Not deleted", nil)
		v.Error = "Not deleted: tick the box to confirm the deletion."
		c.render(w, http.StatusBadRequest, "error", v)
		return
	}
	if !c.answered(w, r, s, c.admin(r, s, http.MethodDelete, "/v1/admin/accounts/"+id), nil) {
		return
	}
	redirect(w, Prefix+"?done=account_deleted")
}

// back redirects to an account's page (or home when accountID is not one)
// with a flash message.
func (c *Console) back(w http.ResponseWriter, accountID, done string) {
	if !account.ValidID(account.AccountPrefix, accountID) {
		redirect(w, Prefix+"?done="+done)
		return
	}
	redirect(w, Prefix+"accounts/"+accountID+"?done="+done)
}

// handleRevocations: GET /admin/revocations.
func (c *Console) handleRevocations(w http.ResponseWriter, r *http.Request, s session) {
	var out revocationsView
	path := issuer.PathAdminRevocations + "?limit=" + strconv.Itoa(revocationsShown)
	if !c.answered(w, r, s, c.admin(r, s, http.MethodGet, path), &out) {
		return
	}
	c.render(w, http.StatusOK, "revocations", c.view(r, s, "Revocations", out))
}

// handleKeys: GET /admin/keys, the public key set (no admin call: nothing
// in it is secret).
func (c *Console) handleKeys(w http.ResponseWriter, r *http.Request, s session) {
	var ks keySetJSON
	if !c.answered(w, r, s, call(r.Context(), c.cfg.Public, r, "", http.MethodGet, issuer.PathKeys, nil), &ks) {
		return
	}
	c.render(w, http.StatusOK, "keys", c.view(r, s, "Signing keys", ks))
}

// handleAudit: GET /admin/audit, the last 100 records.
func (c *Console) handleAudit(w http.ResponseWriter, r *http.Request, s session) {
	var out struct {
		Records []issuer.AuditRecord `json:"records"`
	}
	if !c.answered(w, r, s, c.admin(r, s, http.MethodGet, issuer.PathAdminAudit+"?limit=100"), &out) {
		return
	}
	c.render(w, http.StatusOK, "audit", c.view(r, s, "Audit", out.Records))
}
