package issuer_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/hallpass/hallpass/account"
	"github.com/hallpass/hallpass/issuer"
	"github.com/hallpass/hallpass/issuer/redisaudit"
	"github.com/hallpass/hallpass/keys"
	"github.com/hallpass/hallpass/revocation"
	"github.com/hallpass/hallpass/token"
)

// ringManager is the KeyManager of the tests: the in-memory ring itself.
type ringManager struct {
	ring *keys.Ring
	now  func() time.Time
}

func (m ringManager) Rotate(context.Context) error { return m.ring.Rotate(nil, m.now()) }
func (m ringManager) Revoke(_ context.Context, kid keys.KeyID) error {
	return m.ring.Revoke(kid, nil, m.now())
}

type adminEnv struct {
	*env
	key    string // a valid admin key
	audit  *issuer.MemoryAudit
	stream *redisaudit.Sink // on Redis
	mirror *revocation.Mirror
}

// teeAudit records to both sinks.
type teeAudit []issuer.AuditSink

func (t teeAudit) Record(ctx context.Context, r issuer.AuditRecord) error {
	for _, s := range t {
		if err := s.Record(ctx, r); err != nil {
			return err
		}
	}
	return nil
}

// streamLen is the length of the Redis audit stream (-1 off Redis).
func (a *adminEnv) streamLen(t *testing.T) int64 {
	t.Helper()
	rb, ok := a.be.(*redisBackend)
	if !ok {
		return -1
	}
	n, err := rb.client.XLen(context.Background(), a.stream.Key()).Result()
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func newAdminEnv(t *testing.T, be backend, opts ...option) *adminEnv {
	t.Helper()
	dir := t.TempDir()
	keysFile := filepath.Join(dir, "admin-keys")
	key, line, err := issuer.NewAdminKey(nil, "ops-alice", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keysFile, []byte("# admin keys\n"+line+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	a := &adminEnv{key: key, audit: &issuer.MemoryAudit{}}
	opts = append([]option{withRevocation(t, be, &a.mirror, nil), func(c *issuer.Config) {
		c.AdminKeysFile = keysFile
		c.AuditSink = a.audit
		if rb, ok := be.(*redisBackend); ok {
			// On Redis: the audit stream, beside the memory sink.
			rs, err := redisaudit.New(rb.client, redisaudit.Options{})
			if err != nil {
				t.Fatal(err)
			}
			a.stream = rs
			c.AuditSink = teeAudit{a.audit, rs}
		}
	}}, opts...)
	// The ring exists only once newEnv has made it: set the key manager
	// through a late option.
	var e *env
	opts = append(opts, func(c *issuer.Config) {
		c.KeyManager = lateRing{get: func() *env { return e }}
	})
	e = newEnv(t, be, opts...)
	a.env = e
	e.remember(key)
	return a
}

// lateRing resolves the env's ring when called.
type lateRing struct{ get func() *env }

func (l lateRing) Rotate(ctx context.Context) error {
	e := l.get()
	return ringManager{e.ring, e.clock.Now}.Rotate(ctx)
}
func (l lateRing) Revoke(ctx context.Context, kid keys.KeyID) error {
	e := l.get()
	return ringManager{e.ring, e.clock.Now}.Revoke(ctx, kid)
}

// adminDo calls the admin listener with the key (none when key is "").
func (a *adminEnv) adminDo(method, path, key string, body any) resp {
	a.t.Helper()
	var rd *bytes.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	} else {
		rd = bytes.NewReader(nil)
	}
	req, _ := http.NewRequest(method, a.adminHS.URL+path, rd)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	res, err := a.adminHS.Client().Do(req)
	if err != nil {
		a.t.Fatal(err)
	}
	defer res.Body.Close()
	var buf bytes.Buffer
	buf.ReadFrom(res.Body)
	return resp{status: res.StatusCode, header: res.Header, body: buf.Bytes()}
}

func (a *adminEnv) call(method, path string, body any) resp {
	return a.adminDo(method, path, a.key, body)
}

func TestAdminAuth(t *testing.T) {
	forEachBackend(t, testAdminAuth)
}

func testAdminAuth(t *testing.T, be backend) {
	a := newAdminEnv(t, be)
	other, _, err := issuer.NewAdminKey(nil, "elsewhere", time.Now()) // in no file of this server
	if err != nil {
		t.Fatal(err)
	}
	d := a.newDevice("EdDSA")
	d.signup("carol")
	path := "/v1/admin/accounts/" + d.accID
	for _, tc := range []struct {
		name string
		key  string
		auth string
	}{
		{name: "no key"},
		{name: "wrong key", key: a.key[:len(a.key)-2] + "xx"},
		{name: "key from another file", key: other},
		{name: "not bearer", auth: "Basic " + a.key},
		{name: "no prefix", key: strings.TrimPrefix(a.key, issuer.AdminKeyPrefix)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := len(a.audit.Records())
			req, _ := http.NewRequest(http.MethodGet, a.adminHS.URL+path, nil)
			if tc.key != "" {
				req.Header.Set("Authorization", "Bearer "+tc.key)
			}
			if tc.auth != "" {
				req.Header.Set("Authorization", tc.auth)
			}
			res, err := a.adminHS.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			res.Body.Close()
			if res.StatusCode != http.StatusUnauthorized || !strings.HasPrefix(res.Header.Get("WWW-Authenticate"), "Bearer") {
				t.Fatalf("status %d, challenge %q", res.StatusCode, res.Header.Get("WWW-Authenticate"))
			}
			recs := a.audit.Records()
			if len(recs) != before+1 || recs[len(recs)-1].Who != "-" || recs[len(recs)-1].Status != 401 {
				t.Fatalf("audit: %+v", recs[before:])
			}
			if n := a.streamLen(t); n >= 0 && n != int64(len(recs)) {
				t.Fatalf("audit stream has %d records, memory %d", n, len(recs))
			}
		})
	}
	// The admin routes do not exist on the public listener, even with a key.
	for _, p := range []string{path, "/v1/admin/revocations"} {
		req, _ := http.NewRequest(http.MethodGet, a.url(p), nil)
		req.Header.Set("Authorization", "Bearer "+a.key)
		if r := a.do(req); r.status != http.StatusNotFound {
			t.Fatalf("public %s: %d", p, r.status)
		}
	}
	// And the right key works.
	if r := a.call(http.MethodGet, path, nil); r.status != http.StatusOK || r.str(t, "username") != "carol" {
		t.Fatalf("with the key: %d %s", r.status, r.body)
	}
	if !containsLog(a.env, `"who":"ops-alice"`) || !containsLog(a.env, `"msg":"admin audit"`) {
		t.Fatal("no audit log line")
	}
}

func TestAdminAccounts(t *testing.T) {
	a := newAdminEnv(t, &boltBackend{})
	d := a.newDevice("EdDSA")
	d.signup("Dave")
	if r := a.call(http.MethodGet, "/v1/admin/accounts/by-username/DAVE", nil); r.status != http.StatusOK || r.str(t, "id") != d.accID {
		t.Fatalf("by username: %d %s", r.status, r.body)
	}
	if r := a.call(http.MethodGet, "/v1/admin/accounts/by-username/nobody", nil); r.status != http.StatusNotFound {
		t.Fatalf("unknown name: %d", r.status)
	}
	// A name is decoded from the path once: "Zo%C3%AB" is "Zoë", and
	// "D%2541VE" is "D%41VE" (no such name), never "DAVE".
	zoe := a.newDevice("EdDSA")
	zoe.signup("Zoë")
	for _, tc := range []struct {
		path string
		want int
	}{
		{"Zo%C3%AB", http.StatusOK},
		{"D%2541VE", http.StatusNotFound},
		{"D%41VE", http.StatusOK},
		{"Zo%c3%ab", http.StatusOK},         // not net/url's escaping: Echo routes on the raw path
		{"D%2541V%45", http.StatusNotFound}, // the same, "D%41VE" once decoded
	} {
		if r := a.call(http.MethodGet, "/v1/admin/accounts/by-username/"+tc.path, nil); r.status != tc.want {
			t.Errorf("by-username/%s: %d %s, want %d", tc.path, r.status, r.body, tc.want)
		}
	}
	if r := a.call(http.MethodGet, "/v1/admin/accounts/acc_AAAAAAAAAAAAAAAAAAAAAA", nil); r.status != http.StatusNotFound {
		t.Fatalf("unknown id: %d", r.status)
	}
	r := a.call(http.MethodGet, "/v1/admin/accounts/"+d.accID+"/devices", nil)
	if r.status != http.StatusOK || !bytes.Contains(r.body, []byte(d.devID)) {
		t.Fatalf("devices: %d %s", r.status, r.body)
	}
}

// TestAdminRevocations: each kind refuses the revoked token on /v1/me
// (token_revoked) and in the mirror; device and token revocation leave the
// account's other device working.
func TestAdminRevocations(t *testing.T) {
	type setup struct {
		a             *adminEnv
		victim, other *device
	}
	for _, tc := range []struct {
		name        string
		revoke      func(t *testing.T, s setup) resp
		otherWorks  bool
		refreshDies bool
	}{
		{name: "device", otherWorks: true, refreshDies: true, revoke: func(t *testing.T, s setup) resp {
			return s.a.call(http.MethodDelete, "/v1/admin/devices/"+s.victim.devID, nil)
		}},
		{name: "device entry", otherWorks: true, revoke: func(t *testing.T, s setup) resp {
			return s.a.call(http.MethodPost, issuer.PathAdminRevocations, map[string]string{"kind": "device", "id": s.victim.devID})
		}},
		{name: "token", otherWorks: true, revoke: func(t *testing.T, s setup) resp {
			c := claimsOf(t, s.victim.access)
			return s.a.call(http.MethodPost, issuer.PathAdminRevocations, map[string]string{"kind": "token", "id": c.ID})
		}},
		{name: "account", revoke: func(t *testing.T, s setup) resp {
			return s.a.call(http.MethodPost, issuer.PathAdminRevocations, map[string]string{"kind": "account", "id": s.victim.accID})
		}},
		{name: "ban", refreshDies: true, revoke: func(t *testing.T, s setup) resp {
			return s.a.call(http.MethodPost, "/v1/admin/accounts/"+s.victim.accID+"/ban", nil)
		}},
		{name: "all", revoke: func(t *testing.T, s setup) resp {
			return s.a.call(http.MethodPost, issuer.PathAdminRevocations, map[string]string{"kind": "all", "id": ""})
		}},
		{name: "key", revoke: func(t *testing.T, s setup) resp {
			kid := s.a.ring.Current().ID()
			return s.a.call(http.MethodPost, "/v1/admin/keys/"+string(kid)+"/revoke", nil)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			forEachBackend(t, func(t *testing.T, be backend) {
				a := newAdminEnv(t, be)
				victim := a.newDevice("ES256")
				victim.signup("erin")
				other := a.addDevice(victim)
				bystander := a.newDevice("EdDSA")
				bystander.signup("frank")
				for _, d := range []*device{victim, other, bystander} {
					if r := d.me(); r.status != http.StatusOK {
						t.Fatalf("before: %d", r.status)
					}
				}
				before := len(a.audit.Records())
				r := tc.revoke(t, setup{a, victim, other})
				if r.status/100 != 2 {
					t.Fatalf("revoke: %d %s", r.status, r.body)
				}
				if r.status == http.StatusCreated && r.json(t)["kind"] == nil {
					t.Fatalf("no entry in the answer: %s", r.body)
				}
				recs := a.audit.Records()
				if len(recs) != before+1 || recs[before].Who != "ops-alice" || recs[before].Result != "ok" {
					t.Fatalf("audit: %+v", recs[before:])
				}
				waitRevoked(t, a.mirror, victim.access)
				if r := victim.me(); r.status != http.StatusUnauthorized || r.code(t) != issuer.CodeTokenRevoked {
					t.Fatalf("victim /v1/me: %d %s", r.status, r.body)
				}
				wantOther := http.StatusUnauthorized
				if tc.otherWorks {
					wantOther = http.StatusOK
				}
				if r := other.me(); r.status != wantOther {
					t.Fatalf("other device of the account: %d, want %d (%s)", r.status, wantOther, r.body)
				}
				if tc.name != "all" && tc.name != "key" {
					if r := bystander.me(); r.status != http.StatusOK {
						t.Fatalf("another account: %d", r.status)
					}
				}
				if tc.refreshDies {
					if r := victim.refreshWith(victim.rt); r.status != http.StatusBadRequest {
						t.Fatalf("refresh after revoke: %d", r.status)
					}
				}
				if r := a.call(http.MethodGet, issuer.PathAdminRevocations, nil); r.status != http.StatusOK || len(r.json(t)["entries"].([]any)) == 0 {
					t.Fatalf("list: %d %s", r.status, r.body)
				}
				if n := a.streamLen(t); n >= 0 && n != int64(len(a.audit.Records())) {
					t.Fatalf("audit stream has %d records, memory %d", n, len(a.audit.Records()))
				}
			})
		})
	}
}

func claimsOf(t *testing.T, tok string) *token.Claims {
	t.Helper()
	c, err := token.ParseClaims(unsafePayload(t, tok))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestAdminBanUnban(t *testing.T) {
	a := newAdminEnv(t, &boltBackend{})
	d := a.newDevice("EdDSA")
	d.signup("gina")
	if r := a.call(http.MethodPost, "/v1/admin/accounts/"+d.accID+"/ban", nil); r.status != http.StatusOK || r.json(t)["banned"] != true {
		t.Fatalf("ban: %d %s", r.status, r.body)
	}
	if r := d.refreshWith(d.rt); r.status != http.StatusBadRequest {
		t.Fatalf("refresh while banned: %d", r.status)
	}
	if r := a.call(http.MethodPost, "/v1/admin/accounts/"+d.accID+"/unban", nil); r.status != http.StatusOK || r.json(t)["banned"] != false {
		t.Fatalf("unban: %d %s", r.status, r.body)
	}
}

func TestAdminKeys(t *testing.T) {
	a := newAdminEnv(t, &boltBackend{})
	old := a.ring.Current().ID()
	r := a.call(http.MethodPost, issuer.PathAdminKeysRotate, nil)
	if r.status != http.StatusOK || a.ring.Current().ID() == old {
		t.Fatalf("rotate: %d %s", r.status, r.body)
	}
	r = a.call(http.MethodPost, "/v1/admin/keys/"+string(old)+"/revoke", nil)
	if r.status != http.StatusOK || !bytes.Contains(r.body, []byte(`"revoked":["`+string(old))) {
		t.Fatalf("revoke: %d %s", r.status, r.body)
	}
	req, _ := http.NewRequest(http.MethodGet, a.url(issuer.PathKeys), nil)
	if r := a.do(req); !bytes.Contains(r.body, []byte(string(old))) || !strings.Contains(string(r.body), `"revoked":["`+string(old)) {
		t.Fatalf("published set: %s", r.body)
	}
	if r := a.call(http.MethodPost, "/v1/admin/keys/k4.pid.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA/revoke", nil); r.status != http.StatusNotFound {
		t.Fatalf("unknown kid: %d %s", r.status, r.body)
	}
	if r := a.call(http.MethodPost, issuer.PathAdminRevocations, map[string]string{"kind": "nope", "id": "x"}); r.status != http.StatusBadRequest {
		t.Fatalf("bad kind: %d", r.status)
	}
	if r := a.call(http.MethodGet, "/v1/admin/nothing", nil); r.status != http.StatusNotFound {
		t.Fatalf("unknown admin route: %d", r.status)
	}
	// Every call above was audited.
	if n := len(a.audit.Records()); n != 5 {
		t.Fatalf("%d audit records, want 5", n)
	}
}

// TestAdminRotateTooSoon: a second rotation before the next key made by
// the first has been published keys.MinNextAge is refused with 409 and
// leaves the ring as it was (it would put to signing a key no verifier
// has fetched); revoking the current key is not held back; once
// MinNextAge has passed, the rotation goes through.
func TestAdminRotateTooSoon(t *testing.T) {
	a := newAdminEnv(t, &boltBackend{})
	if r := a.call(http.MethodPost, issuer.PathAdminKeysRotate, nil); r.status != http.StatusOK {
		t.Fatalf("first rotate (a fresh ring): %d %s", r.status, r.body)
	}
	before := a.ring.Entries()
	r := a.call(http.MethodPost, issuer.PathAdminKeysRotate, nil)
	if r.status != http.StatusConflict || r.code(t) != issuer.CodeInvalidRequest {
		t.Fatalf("second rotate at once: %d %s, want 409 invalid_request", r.status, r.body)
	}
	if d := r.str(t, "detail"); !strings.Contains(d, "2 minutes") || !strings.Contains(d, "revoke the current key") {
		t.Fatalf("detail %q does not say when it may rotate", d)
	}
	if ra := r.header.Get("Retry-After"); ra != "120" {
		t.Fatalf("Retry-After %q, want 120", ra)
	}
	after := a.ring.Entries()
	if len(after) != len(before) || a.ring.Current().ID() != currentOf(before) {
		t.Fatalf("a refused rotation changed the ring: %d keys, was %d", len(after), len(before))
	}
	for i := range before {
		if after[i].ID() != before[i].ID() || after[i].Status != before[i].Status {
			t.Fatalf("a refused rotation changed key %s: %s, was %s", before[i].ID(), after[i].Status, before[i].Status)
		}
	}

	// Emergency withdrawal right after the rotation: not held back.
	cur := a.ring.Current().ID()
	if r := a.call(http.MethodPost, "/v1/admin/keys/"+string(cur)+"/revoke", nil); r.status != http.StatusOK {
		t.Fatalf("revoke the current key right after a rotation: %d %s", r.status, r.body)
	}
	if a.ring.Current().ID() == cur {
		t.Fatal("the revoked key still signs")
	}

	a.clock.Advance(keys.MinNextAge)
	old := a.ring.Current().ID()
	if r := a.call(http.MethodPost, issuer.PathAdminKeysRotate, nil); r.status != http.StatusOK || a.ring.Current().ID() == old {
		t.Fatalf("rotate after MinNextAge: %d %s", r.status, r.body)
	}
}

func currentOf(entries []keys.RingEntry) keys.KeyID {
	for _, e := range entries {
		if e.Status == keys.StatusCurrent {
			return e.ID()
		}
	}
	return ""
}

func TestAdminKeysFileReload(t *testing.T) {
	a := newAdminEnv(t, &boltBackend{})
	file := a.cfg.AdminKeysFile
	key2, line2, err := issuer.NewAdminKey(nil, "ops-bob", time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if r := a.adminDo(http.MethodGet, issuer.PathAdminRevocations, key2, nil); r.status != http.StatusUnauthorized {
		t.Fatalf("before append: %d", r.status)
	}
	f, err := os.OpenFile(file, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString(line2 + "\n")
	f.Close()
	// Make sure the modification time moves even on coarse clocks.
	os.Chtimes(file, time.Now().Add(time.Second), time.Now().Add(time.Second))
	if r := a.adminDo(http.MethodGet, issuer.PathAdminRevocations, key2, nil); r.status != http.StatusOK {
		t.Fatalf("after append: %d %s", r.status, r.body)
	}
}

// TestAdminKeysFileSwapSameStamp: a line replaced by another of the same
// length, with the file's modification time put back (coarse timestamps,
// tools that preserve it), takes effect at once: the removed key stops
// working and the new one works.
func TestAdminKeysFileSwapSameStamp(t *testing.T) {
	a := newAdminEnv(t, &boltBackend{})
	file := a.cfg.AdminKeysFile
	if r := a.call(http.MethodGet, issuer.PathAdminRevocations, nil); r.status != http.StatusOK {
		t.Fatalf("before: %d %s", r.status, r.body)
	}
	before, err := os.Stat(file)
	if err != nil {
		t.Fatal(err)
	}
	old, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	// The same id and time as the line it replaces: the same length.
	head, line, _ := strings.Cut(string(old), "sha256:")
	f := strings.Fields("sha256:" + line)
	if len(f) != 3 {
		t.Fatalf("admin keys file %q: want one key line of three fields", old)
	}
	at, err := time.Parse(time.RFC3339, f[2])
	if err != nil {
		t.Fatal(err)
	}
	key2, line2, err := issuer.NewAdminKey(nil, f[1], at)
	if err != nil {
		t.Fatal(err)
	}
	swapped := head + line2 + "\n"
	if len(swapped) != len(old) || swapped == string(old) {
		t.Fatalf("swapped file %q, old %q: want another key of the same length", swapped, old)
	}
	if err := os.WriteFile(file, []byte(swapped), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(file, before.ModTime(), before.ModTime()); err != nil {
		t.Fatal(err)
	}
	if r := a.call(http.MethodGet, issuer.PathAdminRevocations, nil); r.status != http.StatusUnauthorized {
		t.Errorf("removed key: %d, want 401", r.status)
	}
	if r := a.adminDo(http.MethodGet, issuer.PathAdminRevocations, key2, nil); r.status != http.StatusOK {
		t.Errorf("new key: %d %s", r.status, r.body)
	}
}

// joinAfterEnd is a store where a device joins the account right after its
// sessions are ended, as a recovery or a link redemption racing a ban
// would; joined gets that join's error.
type joinAfterEnd struct {
	account.Store
	joined chan error
}

func (s *joinAfterEnd) EndAccountSessions(ctx context.Context, accountID string, at time.Time) ([]string, error) {
	ended, err := s.Store.EndAccountSessions(ctx, accountID, at)
	devID, idErr := account.NewID(account.DevicePrefix, nil)
	if idErr != nil {
		return nil, idErr
	}
	dev := account.Device{ID: devID, AccountID: accountID, Name: "racer", JKT: "jkt-" + devID, Created: at, LastUsed: at}
	sess := account.Session{DeviceID: devID, AccountID: accountID, JKT: dev.JKT, Counter: 1, Created: at, LastUsed: at, Expires: at.Add(time.Hour)}
	s.joined <- s.Store.AddDevice(ctx, dev, sess)
	return ended, err
}

// TestAdminBanBeforeSessionsEnd: the ban is set before the sessions are
// ended, so a device joining after the end is refused (ErrBanned) instead
// of staying live through a later unban.
func TestAdminBanBeforeSessionsEnd(t *testing.T) {
	forEachBackend(t, func(t *testing.T, be backend) {
		a := newAdminEnv(t, be)
		d := a.newDevice("EdDSA")
		d.signup("hana")
		racing := &joinAfterEnd{Store: a.store, joined: make(chan error, 1)}
		a.cfg.Store, a.store = racing, racing
		a.start()
		if r := a.call(http.MethodPost, "/v1/admin/accounts/"+d.accID+"/ban", nil); r.status != http.StatusOK {
			t.Fatalf("ban: %d %s", r.status, r.body)
		}
		select {
		case err := <-racing.joined:
			if !errors.Is(err, account.ErrBanned) {
				t.Fatalf("a device joining after the sessions ended: %v, want ErrBanned", err)
			}
		default:
			t.Fatal("the ban did not end the account's sessions")
		}
	})
}

// TestAdminAccountDevicesBounded: the account's answer lists at most
// MaxAdminAccountDevices devices, the active ones first, then the most
// recently used, then the newest, and counts them all.
func TestAdminAccountDevicesBounded(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	dev := func(id string, created, used, revoked time.Duration) account.Device {
		d := account.Device{ID: id, Created: t0.Add(created), LastUsed: t0.Add(used)}
		if revoked > 0 {
			d.Revoked = t0.Add(revoked)
		}
		return d
	}
	devs := []account.Device{
		dev("out-recent", 0, 9*time.Hour, 10*time.Hour),
		dev("old-unused", 0, 0, 0),
		dev("used", 0, 5*time.Hour, 0),
		dev("new-unused", time.Hour, time.Hour, 0),
		dev("out-old", 0, time.Hour, 2*time.Hour),
	}
	tests := []struct {
		name string
		n    int
		want []string
	}{
		{name: "all", n: 10, want: []string{"used", "new-unused", "old-unused", "out-recent", "out-old"}},
		{name: "bounded", n: 2, want: []string{"used", "new-unused"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []string
			for _, d := range issuer.FirstDevices(append([]account.Device(nil), devs...), tt.n) {
				got = append(got, d.ID)
			}
			if strings.Join(got, " ") != strings.Join(tt.want, " ") {
				t.Errorf("got %v, want %v", got, tt.want)
			}
		})
	}
	a := newAdminEnv(t, &boltBackend{})
	d := a.newDevice("EdDSA")
	d.signup("grace")
	r := a.call(http.MethodGet, "/v1/admin/accounts/"+d.accID, nil)
	if r.status != http.StatusOK || r.json(t)["devices_total"] != float64(1) {
		t.Fatalf("account: %d %s", r.status, r.body)
	}
}

// TestAdminRevocationsLimit: the live entries come newest first, with
// their total; limit lists the newest ones only.
func TestAdminRevocationsLimit(t *testing.T) {
	a := newAdminEnv(t, &boltBackend{})
	var ids []string
	for range 3 {
		id, err := account.NewID(account.DevicePrefix, nil)
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
		if r := a.call(http.MethodPost, issuer.PathAdminRevocations, map[string]string{"kind": "device", "id": id}); r.status != http.StatusCreated {
			t.Fatalf("add: %d %s", r.status, r.body)
		}
		a.clock.Advance(time.Second)
	}
	tests := []struct {
		name   string
		query  string
		status int
		want   []string
	}{
		{name: "all", status: http.StatusOK, want: []string{ids[2], ids[1], ids[0]}},
		{name: "newest two", query: "?limit=2", status: http.StatusOK, want: []string{ids[2], ids[1]}},
		{name: "more than there are", query: "?limit=10", status: http.StatusOK, want: []string{ids[2], ids[1], ids[0]}},
		{name: "zero", query: "?limit=0", status: http.StatusBadRequest},
		{name: "not a number", query: "?limit=x", status: http.StatusBadRequest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := a.call(http.MethodGet, issuer.PathAdminRevocations+tt.query, nil)
			if r.status != tt.status {
				t.Fatalf("status %d, want %d: %s", r.status, tt.status, r.body)
			}
			if tt.status != http.StatusOK {
				return
			}
			var out struct {
				Entries []struct{ ID string }
				Total   int
			}
			if err := json.Unmarshal(r.body, &out); err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, e := range out.Entries {
				got = append(got, e.ID)
			}
			if strings.Join(got, " ") != strings.Join(tt.want, " ") || out.Total != 3 {
				t.Errorf("entries %v, total %d; want %v, 3", got, out.Total, tt.want)
			}
		})
	}
}
