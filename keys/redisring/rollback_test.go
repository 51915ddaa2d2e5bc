package redisring_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/hallpass/hallpass/internal/logbuf"
	"github.com/hallpass/hallpass/internal/redistest"
	"github.com/hallpass/hallpass/keys"
	"github.com/hallpass/hallpass/keys/redisring"
)

// alerts counts OnRollback calls by document and keeps the log.
type alerts struct {
	logbuf.Buffer // the log
	mu            sync.Mutex
	n             map[string]int
}

func (a *alerts) hook(doc string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.n[doc]++
}

func (a *alerts) count(doc string) int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.n[doc]
}

// node is an issuer node's store: its own client, its own state file.
func node(t *testing.T, addr string, w *keys.WrappingKey, state string, a *alerts) *redisring.Store {
	t.Helper()
	opts := redisring.Options{StateFile: state}
	if a != nil {
		opts.OnRollback = a.hook
		opts.Logger = slog.New(slog.NewTextHandler(a, nil))
	}
	return newStore(t, addr, w, opts)
}

// attacker reads and writes Redis directly: no wrapping key.
type attacker struct {
	t *testing.T
	c *redis.Client
}

func (a attacker) get(name string) string {
	a.t.Helper()
	v, err := a.c.Get(context.Background(), "hallpass:{keys}:"+name).Result()
	if err != nil {
		a.t.Fatal(err)
	}
	return v
}

func (a attacker) set(name, val string) {
	a.t.Helper()
	if err := a.c.Set(context.Background(), "hallpass:{keys}:"+name, val, 0).Err(); err != nil {
		a.t.Fatal(err)
	}
}

// headDocs reads the document versions the head names: a head is
// authenticated, not secret.
func (a attacker) headDocs() map[string]uint64 {
	a.t.Helper()
	var env struct {
		Doc struct {
			Docs map[string]uint64 `json:"docs"`
		} `json:"doc"`
	}
	if err := json.Unmarshal([]byte(a.get("head")), &env); err != nil {
		a.t.Fatal(err)
	}
	return env.Doc.Docs
}

func (a attacker) bump() {
	a.t.Helper()
	if err := a.c.Incr(context.Background(), "hallpass:{keys}:version").Err(); err != nil {
		a.t.Fatal(err)
	}
}

// TestRollbackRefused is issue 11, finding 1: someone with read/write
// access to Redis but no wrapping key writes back an older, authentic ring
// document and bumps the version counter. Before the fix every node loaded
// it: the revoked signing key was published as current again, the issuer
// signed with its supposedly destroyed secret, and a freshly started node
// served it too. Now the node that has seen the newer ring refuses it
// (after a restart too, from its state file) with an alert and a log line,
// and a node that has seen nothing refuses it as well, because the
// document disagrees with the stored head.
func TestRollbackRefused(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	ctx := context.Background()
	w := wrapKey(t)
	state := filepath.Join(t.TempDir(), "redisring.state")
	al := &alerts{n: map[string]int{}}
	a := node(t, srv.Addr(), w, state, al)
	first, err := a.Init(ctx, t0)
	if err != nil {
		t.Fatal(err)
	}
	evil := attacker{t, newClient(t, srv.Addr())}
	oldRing, oldHead, oldLocal := evil.get("ring"), evil.get("head"), evil.get("local")
	revoked := first.Current().ID()
	if _, err := a.Update(ctx, func(r *keys.Ring) error { return r.Revoke(revoked, nil, t0.Add(time.Minute)) }); err != nil {
		t.Fatal(err)
	}
	if err := a.RotateLocal(ctx, t0.Add(time.Minute), time.Hour); err != nil {
		t.Fatal(err)
	}

	// The attack: the old ring (revoked key current, its secret wrapped
	// inside) back in place, the counter bumped so that watchers reload.
	evil.set("ring", oldRing)
	evil.bump()
	if _, err := a.Load(ctx); !errors.Is(err, redisring.ErrRollback) {
		t.Fatalf("Load of the rolled-back ring: %v, want ErrRollback", err)
	}
	if al.count("ring") != 1 || !strings.Contains(al.String(), "key ring rollback refused") || !strings.Contains(al.String(), "document=ring") {
		t.Fatalf("no alert or log line: alerts %v, log %q", al.n, al.String())
	}
	if strings.Contains(al.String(), "k4.") {
		t.Fatalf("the log names a key: %q", al.String())
	}
	// The same node after a restart: its state file remembers.
	restarted := node(t, srv.Addr(), w, state, nil)
	if _, err := restarted.Load(ctx); !errors.Is(err, redisring.ErrRollback) {
		t.Fatalf("Load after a restart: %v, want ErrRollback", err)
	}
	// A node that has seen nothing: the document disagrees with the head.
	if _, err := node(t, srv.Addr(), w, "", nil).Load(ctx); !errors.Is(err, redisring.ErrRollback) {
		t.Fatalf("Load by a new node: %v, want ErrRollback", err)
	}
	// No writer builds on it either (an Update would otherwise launder
	// the old ring under a new version).
	if _, err := a.Update(ctx, func(r *keys.Ring) error { return r.Rotate(nil, t0.Add(2*time.Minute)) }); !errors.Is(err, redisring.ErrRollback) {
		t.Fatalf("Update on the rolled-back ring: %v, want ErrRollback", err)
	}

	// The same for the refresh-token keys.
	evil.set("local", oldLocal)
	if _, err := a.LoadLocal(ctx); !errors.Is(err, redisring.ErrRollback) || al.count("local") == 0 {
		t.Fatalf("LoadLocal of the rolled-back keys: %v (alerts %v), want ErrRollback", err, al.n)
	}

	// A consistent old snapshot (head and counter put back too) is what a
	// node that has seen nothing cannot tell from the truth; the node
	// that has seen the newer ring still refuses it.
	evil.set("head", oldHead)
	evil.set("version", "1")
	if _, err := restarted.Load(ctx); !errors.Is(err, redisring.ErrRollback) {
		t.Fatalf("Load of a consistent old snapshot by a node that saw newer: %v, want ErrRollback", err)
	}
	if r, err := node(t, srv.Addr(), w, "", nil).Load(ctx); err != nil || r.Current().ID() != revoked {
		t.Fatalf("a new node should load the consistent old snapshot (the documented limit): %v", err)
	}
}

// TestRollbackCases: each way a Redis writer without the wrapping key can
// try to turn the clock back, against a node that has seen the current
// ring (state in memory) and one that has seen nothing.
func TestRollbackCases(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		// attack changes Redis; it may use s, a store holding the
		// wrapping key, to seal what only such a writer could.
		attack   func(t *testing.T, ev attacker, s *redisring.Store, first *keys.Ring)
		load     func(s *redisring.Store) error
		seen     error // want, for the node that saw the current ring
		newNode  error // want, for a node that saw nothing
		alertDoc string
	}{
		{
			name:   "counter bumped only",
			attack: func(t *testing.T, ev attacker, _ *redisring.Store, _ *keys.Ring) { ev.bump() },
			load:   loadRing, seen: redisring.ErrRollback, newNode: redisring.ErrRollback, alertDoc: "ring",
		},
		{
			name: "counter lowered",
			attack: func(t *testing.T, ev attacker, _ *redisring.Store, _ *keys.Ring) {
				ev.set("version", "1")
			},
			load: loadRing, seen: redisring.ErrRollback, newNode: redisring.ErrRollback, alertDoc: "ring",
		},
		{
			name: "head deleted",
			attack: func(t *testing.T, ev attacker, _ *redisring.Store, _ *keys.Ring) {
				ev.c.Del(context.Background(), "hallpass:{keys}:head")
			},
			// A node that saw nothing takes it for a ring from before
			// heads: the limit of a node without state.
			load: loadRing, seen: redisring.ErrRollback, newNode: nil, alertDoc: "ring",
		},
		{
			name: "pepper deleted",
			attack: func(t *testing.T, ev attacker, _ *redisring.Store, _ *keys.Ring) {
				ev.c.Del(context.Background(), "hallpass:{keys}:pepper")
			},
			load: func(s *redisring.Store) error {
				_, _, err := s.EnsureSecrets(context.Background(), t0)
				return err
			},
			seen: redisring.ErrRollback, newNode: redisring.ErrRollback, alertDoc: "pepper",
		},
		{
			name: "ring that un-revokes a key, sealed at a newer version",
			attack: func(t *testing.T, ev attacker, s *redisring.Store, first *keys.Ring) {
				// Only a writer holding the wrapping key can do this (a
				// node that put back an old backup, or a bug): versions
				// and head agree, but the revoked key is the next key
				// again, its secret wrapped inside.
				v, _ := strconv.ParseUint(ev.get("version"), 10, 64)
				docs := ev.headDocs()
				docs["ring"] = v + 1
				ring, err := redisring.SealRing(s, first, v+1)
				if err != nil {
					t.Fatal(err)
				}
				head, _ := redisring.SealHead(s, v+1, docs)
				ev.set("ring", ring)
				ev.set("head", head)
				ev.set("version", strconv.FormatUint(v+1, 10))
			},
			// A node that saw nothing cannot know the key was revoked.
			load: loadRing, seen: redisring.ErrRollback, newNode: nil, alertDoc: "ring",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv := redistest.Start(t)
			ctx := context.Background()
			w := wrapKey(t)
			al := &alerts{n: map[string]int{}}
			s := node(t, srv.Addr(), w, "", al)
			first, err := s.Init(ctx, t0)
			if err != nil {
				t.Fatal(err)
			}
			revoked := first.Entries()[1].ID() // the next key
			if _, err := s.Update(ctx, func(r *keys.Ring) error { return r.Revoke(revoked, nil, t0) }); err != nil {
				t.Fatal(err)
			}
			tc.attack(t, attacker{t, newClient(t, srv.Addr())}, s, first)
			if err := tc.load(s); !errors.Is(err, tc.seen) || (tc.seen == nil) != (err == nil) {
				t.Errorf("node that saw the ring: %v, want %v", err, tc.seen)
			}
			if tc.seen != nil && al.count(tc.alertDoc) == 0 {
				t.Errorf("no alert for the %s document: %v", tc.alertDoc, al.n)
			}
			fresh := node(t, srv.Addr(), w, "", nil)
			if err := tc.load(fresh); !errors.Is(err, tc.newNode) || (tc.newNode == nil) != (err == nil) {
				t.Errorf("node that saw nothing: %v, want %v", err, tc.newNode)
			}
		})
	}
}

func loadRing(s *redisring.Store) error {
	_, err := s.Load(context.Background())
	return err
}

// TestStateFile: the node's state is a small file, 0600, authenticated
// under a key derived from the wrapping key and bound to the prefix.
func TestStateFile(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	ctx := context.Background()
	w := wrapKey(t)
	state := filepath.Join(t.TempDir(), "redisring.state")
	s := node(t, srv.Addr(), w, state, nil)
	r, err := s.Init(ctx, t0)
	if err != nil {
		t.Fatal(err)
	}
	kid := r.Entries()[1].ID()
	if _, err := s.Update(ctx, func(r *keys.Ring) error { return r.Revoke(kid, nil, t0) }); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(state)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("state file mode %v, want 0600", fi.Mode().Perm())
	}
	b, _ := os.ReadFile(state)
	for _, want := range []string{`"counter":2`, `"ring":2`, `"head":2`, string(kid), `"prefix":"hallpass"`} {
		if !bytes.Contains(b, []byte(want)) {
			t.Errorf("state file lacks %s: %s", want, b)
		}
	}
	for _, tc := range []struct {
		name   string
		w      *keys.WrappingKey
		prefix string
		edit   func([]byte) []byte
	}{
		{name: "other wrapping key", w: wrapKey(t)},
		{name: "other prefix", w: w, prefix: "other"},
		{name: "altered", w: w, edit: func(b []byte) []byte { return bytes.Replace(b, []byte(`"counter":2`), []byte(`"counter":1`), 1) }},
		{name: "not a state file", w: w, edit: func([]byte) []byte { return []byte("{}") }},
		{name: "no such directory", w: w, edit: nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "state")
			if tc.name == "no such directory" {
				path = filepath.Join(t.TempDir(), "missing", "state")
				if _, err := redisring.New(newClient(t, srv.Addr()), tc.w, redisring.Options{StateFile: path}); !errors.Is(err, redisring.ErrState) {
					t.Fatalf("New = %v, want ErrState", err)
				}
				return
			}
			data := b
			if tc.edit != nil {
				data = tc.edit(append([]byte(nil), b...))
			}
			if err := os.WriteFile(path, data, 0o600); err != nil {
				t.Fatal(err)
			}
			_, err := redisring.New(newClient(t, srv.Addr()), tc.w, redisring.Options{StateFile: path, Prefix: tc.prefix})
			if !errors.Is(err, redisring.ErrState) {
				t.Fatalf("New = %v, want ErrState", err)
			}
		})
	}
}

// pauseKey marks the context of the write that pauseHook holds up.
type pauseKey struct{}

// pauseHook holds a write up right after its compare-and-set script ran
// in Redis (its value is stored), before the Store has recorded it: it
// signals stored and waits for release. Only the first script call of a
// context carrying pauseKey that Redis answered is held.
type pauseHook struct {
	once             sync.Once
	stored, released chan struct{}
}

func (h *pauseHook) DialHook(next redis.DialHook) redis.DialHook { return next }
func (h *pauseHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}
func (h *pauseHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		err := next(ctx, cmd)
		if name := cmd.Name(); err == nil && ctx.Value(pauseKey{}) != nil && (name == "evalsha" || name == "eval") {
			h.once.Do(func() {
				close(h.stored)
				<-h.released
			})
		}
		return err
	}
}

// TestOwnWriteNotTakenForRollback: one node's store serves its ring and
// its refresh-token keys and peppers (keys/live follows all three through
// one Store), so two of its writes can overlap. When the second is stored
// and recorded while the first is between its compare-and-set and its
// record, the first one's version is below the node's counter by then.
// Before the fix that first write, already in Redis, was refused as a
// rollback: the caller got ErrRollback for a change that happened (an
// admin's key revocation answered 503, the node kept serving the old
// ring), and an alert went off for an attack that never was.
func TestOwnWriteNotTakenForRollback(t *testing.T) {
	t.Parallel()
	revokeNext := func(ctx context.Context, s *redisring.Store) error {
		_, err := s.Update(ctx, func(r *keys.Ring) error { return r.Revoke(r.Entries()[1].ID(), nil, t0) })
		return err
	}
	rotateRing := func(ctx context.Context, s *redisring.Store) error {
		_, err := s.Update(ctx, func(r *keys.Ring) error { return r.Rotate(nil, t0) })
		return err
	}
	rotateLocal := func(ctx context.Context, s *redisring.Store) error { return s.RotateLocal(ctx, t0, time.Hour) }
	rotatePepper := func(ctx context.Context, s *redisring.Store) error { return s.RotatePepper(ctx, t0) }
	for _, tc := range []struct {
		name          string
		held, overlap func(context.Context, *redisring.Store) error
	}{
		{name: "key revocation held, refresh-key rotation overlaps", held: revokeNext, overlap: rotateLocal},
		{name: "key revocation held, pepper rotation overlaps", held: revokeNext, overlap: rotatePepper},
		{name: "refresh-key rotation held, ring rotation overlaps", held: rotateLocal, overlap: rotateRing},
		{name: "ring rotation held, ring rotation overlaps", held: rotateRing, overlap: rotateRing},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv := redistest.Start(t)
			hook := &pauseHook{stored: make(chan struct{}), released: make(chan struct{})}
			c := newClient(t, srv.Addr())
			c.AddHook(hook)
			al := &alerts{n: map[string]int{}}
			s, err := redisring.New(c, wrapKey(t), redisring.Options{
				OpTimeout: 20 * time.Second, StateFile: filepath.Join(t.TempDir(), "state"),
				OnRollback: al.hook, Logger: slog.New(slog.NewTextHandler(al, nil)),
			})
			if err != nil {
				t.Fatal(err)
			}
			ctx := context.Background()
			if _, err := s.Init(ctx, t0); err != nil {
				t.Fatal(err)
			}
			held := make(chan error, 1)
			go func() { held <- tc.held(context.WithValue(ctx, pauseKey{}, true), s) }()
			select {
			case <-hook.stored:
			case err := <-held:
				t.Fatalf("the held write returned before it was stored: %v", err)
			}
			if err := tc.overlap(ctx, s); err != nil {
				t.Errorf("overlapping write: %v", err)
			}
			close(hook.released)
			if err := <-held; err != nil {
				t.Errorf("held write, stored in Redis: %v, want nil", err)
			}
			if len(al.n) != 0 || al.String() != "" {
				t.Errorf("rollback alerts %v, log %q; want none", al.n, al.String())
			}
			// Both writes are the node's own: it loads what it wrote.
			if _, err := s.Load(ctx); err != nil {
				t.Errorf("Load after both writes: %v", err)
			}
			if _, err := s.LoadLocal(ctx); err != nil {
				t.Errorf("LoadLocal after both writes: %v", err)
			}
		})
	}
}

// TestLostWriteReplaced: Redis loses the last write (a failover to a
// replica that missed it, a restart that lost the end of its append-only
// file) and a writer that has seen nothing (`hallpass keys rotate-refresh
// --store`, a new node) writes in its place. Its write lands at the very
// version the node saw, so before the fix the node took it for the lost
// one: a refresh-key list that ResetLocal had dropped came back, and a
// rotation the node had made was silently replaced. Now the node, which
// keeps the digest of the document it saw at that version (in its state
// file too), refuses the replacement; a node that has seen nothing still
// takes it (the documented limit).
func TestLostWriteReplaced(t *testing.T) {
	t.Parallel()
	later := t0.Add(time.Hour)
	tests := []struct {
		name, doc string
		change    func(ctx context.Context, s *redisring.Store) error
		load      func(ctx context.Context, s *redisring.Store) error
	}{
		{name: "ring rotated", doc: "ring",
			change: func(ctx context.Context, s *redisring.Store) error {
				_, err := s.Update(ctx, func(r *keys.Ring) error { return r.Rotate(nil, later) })
				return err
			},
			load: func(ctx context.Context, s *redisring.Store) error { _, err := s.Load(ctx); return err }},
		{name: "refresh keys reset", doc: "local",
			change: func(ctx context.Context, s *redisring.Store) error { return s.ResetLocal(ctx, later) },
			load:   func(ctx context.Context, s *redisring.Store) error { _, err := s.LoadLocal(ctx); return err }},
		{name: "refresh keys rotated", doc: "local",
			change: func(ctx context.Context, s *redisring.Store) error { return s.RotateLocal(ctx, later, time.Hour) },
			load:   func(ctx context.Context, s *redisring.Store) error { _, err := s.LoadLocal(ctx); return err }},
		{name: "pepper rotated", doc: "pepper",
			change: func(ctx context.Context, s *redisring.Store) error { return s.RotatePepper(ctx, later) },
			load:   func(ctx context.Context, s *redisring.Store) error { _, err := s.LoadPeppers(ctx); return err }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv := redistest.Start(t)
			ctx := context.Background()
			w := wrapKey(t)
			state := filepath.Join(t.TempDir(), "redisring.state")
			al := &alerts{n: map[string]int{}}
			a := node(t, srv.Addr(), w, state, al)
			if _, err := a.Init(ctx, t0); err != nil {
				t.Fatal(err)
			}
			redis := attacker{t, newClient(t, srv.Addr())}
			names := []string{"ring", "local", "pepper", "head", "version"}
			before := map[string]string{}
			for _, n := range names {
				before[n] = redis.get(n)
			}
			if err := tc.change(ctx, a); err != nil {
				t.Fatal(err)
			}
			for _, n := range names { // the write is lost
				redis.set(n, before[n])
			}
			if err := tc.load(ctx, a); !errors.Is(err, redisring.ErrRollback) {
				t.Fatalf("load after the lost write: %v, want ErrRollback", err)
			}
			refusals := al.count(tc.doc)
			if err := tc.change(ctx, node(t, srv.Addr(), w, "", nil)); err != nil {
				t.Fatalf("a writer that has seen nothing: %v", err)
			}
			if err := tc.load(ctx, a); !errors.Is(err, redisring.ErrRollback) || al.count(tc.doc) <= refusals {
				t.Fatalf("load of the replacement: %v (alerts %v), want ErrRollback", err, al.n)
			}
			if err := tc.load(ctx, node(t, srv.Addr(), w, state, nil)); !errors.Is(err, redisring.ErrRollback) {
				t.Fatalf("load of the replacement after a restart: %v, want ErrRollback", err)
			}
			if err := tc.load(ctx, node(t, srv.Addr(), w, "", nil)); err != nil {
				t.Fatalf("a node that has seen nothing: %v", err)
			}
		})
	}
}

// TestStateFileDigests: the digests sit beside the state, not in it, so a
// binary from before them (which refuses unknown fields in the state)
// still reads the file, and a file it wrote (no digests) still opens;
// altered digests do not.
func TestStateFileDigests(t *testing.T) {
	t.Parallel()
	srv := redistest.Start(t)
	ctx := context.Background()
	w := wrapKey(t)
	state := filepath.Join(t.TempDir(), "redisring.state")
	if _, err := node(t, srv.Addr(), w, state, nil).Init(ctx, t0); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(state)
	if err != nil {
		t.Fatal(err)
	}
	var top map[string]json.RawMessage
	if err := json.Unmarshal(b, &top); err != nil {
		t.Fatal(err)
	}
	if len(top["seen"]) == 0 || len(top["seen_mac"]) == 0 {
		t.Fatalf("no digests in the state file: %s", b)
	}
	var older struct { // the state as binaries before the digests read it
		Format  int               `json:"format"`
		Prefix  string            `json:"prefix"`
		Counter uint64            `json:"counter"`
		Docs    map[string]uint64 `json:"docs"`
		Revoked []keys.KeyID      `json:"revoked"`
	}
	dec := json.NewDecoder(bytes.NewReader(top["state"]))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&older); err != nil {
		t.Fatalf("an older binary could not read the state: %v", err)
	}
	tests := []struct {
		name string
		edit func(map[string]json.RawMessage)
		ok   bool
	}{
		{name: "written by an older binary", edit: func(m map[string]json.RawMessage) { delete(m, "seen"); delete(m, "seen_mac") }, ok: true},
		{name: "digests altered", edit: func(m map[string]json.RawMessage) {
			m["seen"] = json.RawMessage(strings.Replace(string(m["seen"]), `"version":1`, `"version":2`, 1))
		}},
		{name: "digest MAC removed", edit: func(m map[string]json.RawMessage) { delete(m, "seen_mac") }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m := maps.Clone(top)
			tc.edit(m)
			out, _ := json.Marshal(m)
			path := filepath.Join(t.TempDir(), "state")
			if err := os.WriteFile(path, out, 0o600); err != nil {
				t.Fatal(err)
			}
			s, err := redisring.New(newClient(t, srv.Addr()), w, redisring.Options{StateFile: path})
			switch {
			case tc.ok && err != nil:
				t.Fatalf("New = %v", err)
			case tc.ok:
				if _, err := s.Load(ctx); err != nil {
					t.Fatalf("Load = %v", err)
				}
			case !errors.Is(err, redisring.ErrState):
				t.Fatalf("New = %v, want ErrState", err)
			}
		})
	}
}
