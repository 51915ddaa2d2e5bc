// Package console is the admin console of `hallpass serve`: a few
// server-rendered pages (html/template, no JavaScript) on the admin
// listener, under /admin/, to find an account by username or id, see its
// devices, sign a device out, ban or unban the account, issue a support
// recovery code, delete the account, and see the revocation entries, the
// signing keys and the last audit records.
//
// # The same code as the admin API
//
// The console is a thin HTML adapter over the admin API, called in
// process: every read and every action is a request to
// issuer.Server.AdminHandler with the signed-in admin key, so it goes
// through the same authentication, rate limit of failed keys, handlers,
// flows and audit as a call with curl (the audit record names the key's
// id and the API route, as for any admin call). The console adds no way
// to change state that the admin API lacks. The signing keys page reads
// the public key set (issuer.Server.Handler), which holds nothing secret.
//
// # What it trusts
//
// Only the admin API's verdict on a key: sign-in sends the typed key to
// GET /v1/admin/whoami; 200 names the key's id. Everything a browser
// sends is tainted: forms are size-limited, ids are checked before they
// reach a path, and every value is rendered by html/template, which
// escapes it for its context (a username or device name holding markup
// renders as text).
//
// # Sessions
//
// A sign-in makes a session held in this process's memory: a random id
// (256 bits) in a cookie (HttpOnly, SameSite=Strict, Path=/admin/, Secure
// and named __Secure-... when the request came over TLS), the admin key,
// its id and a CSRF token. The key stays in memory for the session's life
// and is never rendered, logged or put in a cookie; the map is keyed by
// the SHA-256 of the cookie value. A session ends at sign-out, when the
// browser signs in again, after Config.IdleTimeout without a request,
// after Config.SessionTTL whatever happens, when the process restarts,
// and as soon as the admin API refuses its key (its line removed from the
// keys file; the home and signing keys pages make no admin call and do
// not notice). Sessions are per node: behind a load balancer, pin the
// console to one node.
//
// # Cross-site requests
//
// Every state change is a POST (other methods get 405) and must carry the
// session's CSRF token (a synchronizer token, compared in constant time);
// the sign-in form carries a double-submit token bound to a short-lived
// cookie. Before that, net/http.CrossOriginProtection refuses unsafe
// requests whose Sec-Fetch-Site or Origin header says they come from
// another origin, and the console refuses any request a page of another
// origin made the browser send other than as a top-level navigation (an
// image, a frame, a fetch, a prefetch, per Sec-Fetch-Site, -Mode, -Dest
// and Sec-Purpose): a page of the same site (another port) gets the
// cookie sent with them, and every page is an admin call audited under
// the operator's key. A refused request gets 403 and changes nothing.
// Every page is sent with a Content-Security-Policy that allows no
// script, no frame ancestor and forms to this origin only,
// Cache-Control: no-store and X-Content-Type-Options: nosniff.
//
// # Limits
//
// Cookies are not isolated by port: a browser sends the console's cookie
// to /admin/ paths of every port of the admin listener's host. Serve the
// admin listener on a host name of its own, or on a host where nothing
// else answers under /admin/. The admin listener has no TLS of its own
// unless `hallpass serve` has --tls-cert; without TLS the cookie is not
// Secure: keep the listener on loopback or a private network.
package console
