package redisring

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"

	"github.com/hallpass/hallpass/keys"
)

// The node's state: what this node has seen of the ring in Redis, kept in
// memory and, with Options.StateFile, in a file on the node. Redis cannot
// vouch for itself (whoever writes to it can put back any older authentic
// value and set the counter), so the high-water marks live where a Redis
// writer cannot reach.
const (
	stateFormat   = 1
	stateMACLabel = "redisring/state-mac/v1" // HKDF purpose (keys.WrappingKey.UnsafeDeriveKey)
	seenMACPrefix = "redisring/seen/v1\x00"  // what the MAC of stateFile.Seen covers, before the prefix and the bytes
	maxStateLen   = 1 << 20
	kindHead      = "head"
)

// nodeState is the persisted form. Counter is the highest version counter
// read with its head; Docs the highest version accepted for each document
// kind (ring, local, pepper, head); Revoked every kid this node has seen
// revoked, sorted. A state is never changed once published: merge makes a
// new one.
type nodeState struct {
	Format  int               `json:"format"`
	Prefix  string            `json:"prefix"`
	Counter uint64            `json:"counter"`
	Docs    map[string]uint64 `json:"docs"`
	Revoked []keys.KeyID      `json:"revoked"`

	revoked map[keys.KeyID]bool
	// seen: the digest of the value of each document kind accepted at its
	// highest version, so that another value at that same version (a lost
	// write replaced by a writer that has seen nothing) is refused. Kept
	// beside the state in the file (stateFile.Seen), where binaries from
	// before it, which refuse unknown fields in the state, ignore it.
	seen map[string]seenDoc
}

// seenDoc is the digest (SHA-256, base64url) of a document's value at a
// version.
type seenDoc struct {
	Version uint64 `json:"version"`
	SHA256  string `json:"sha256"`
}

type stateFile struct {
	MAC   string          `json:"mac"`
	State json.RawMessage `json:"state"`
	// Seen is nodeState.seen, authenticated by SeenMAC (under the state's
	// MAC key, over seenMACPrefix, the prefix, a zero byte and Seen).
	Seen    json.RawMessage `json:"seen,omitempty"`
	SeenMAC string          `json:"seen_mac,omitempty"`
}

// digest is the seenDoc digest of a stored value.
func digest(val string) string {
	sum := sha256.Sum256([]byte(val))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// observation is one atomic read: the counter, the head and the document
// of kind, as found in Redis.
type observation struct {
	counter uint64
	head    *headDoc  // nil: no head stored
	kind    string    // "" when no document is read
	doc     *document // nil: absent
	raw     string    // the stored value of doc, for its digest
	// replace: the caller overwrites the document whatever it was
	// (ResetLocal), so it is not checked (doc is nil) and its absence is
	// no refusal.
	replace bool
}

// guard checks every read against the node's state and records what it
// accepts. It is safe for concurrent use.
type guard struct {
	mu         sync.Mutex
	path       string
	macKey     []byte
	st         *nodeState
	dirty      bool // st is not yet in the file
	log        *slog.Logger
	onRollback func(document string)
}

func newGuard(path, prefix string, w *keys.WrappingKey, log *slog.Logger, onRollback func(string)) (*guard, error) {
	mk, err := w.UnsafeDeriveKey(stateMACLabel)
	if err != nil {
		return nil, err
	}
	g := &guard{path: path, macKey: mk, log: log, onRollback: onRollback,
		st: &nodeState{Format: stateFormat, Prefix: prefix, Docs: map[string]uint64{}, revoked: map[keys.KeyID]bool{}, seen: map[string]seenDoc{}}}
	if path == "" {
		return g, nil
	}
	st, err := g.load(prefix)
	if errors.Is(err, fs.ErrNotExist) {
		// No state yet: the directory must be there for the first write.
		if fi, err := os.Stat(filepath.Dir(path)); err != nil || !fi.IsDir() {
			return nil, fmt.Errorf("%w: the directory of %s does not exist", ErrState, path)
		}
		return g, nil
	}
	if err != nil {
		return nil, err
	}
	g.st = st
	return g, nil
}

func (g *guard) mac(b []byte) []byte {
	m := hmac.New(sha256.New, g.macKey)
	m.Write(b)
	return m.Sum(nil)
}

// load reads the state file: authenticated under the wrapping key, for
// this prefix.
func (g *guard) load(prefix string) (*nodeState, error) {
	b, err := os.ReadFile(g.path)
	if err != nil {
		return nil, err
	}
	bad := func(why string) error { return fmt.Errorf("%w: %s %s", ErrState, g.path, why) }
	var f stateFile
	if len(b) > maxStateLen || json.Unmarshal(b, &f) != nil {
		return nil, bad("is not a key ring state file")
	}
	tag, err := base64.RawURLEncoding.DecodeString(f.MAC)
	if err != nil || !hmac.Equal(tag, g.mac(f.State)) {
		return nil, bad("does not verify under this wrapping key (another key, or the file was altered)")
	}
	var st nodeState
	dec := json.NewDecoder(strings.NewReader(string(f.State)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&st); err != nil || st.Format != stateFormat || st.Docs == nil {
		return nil, bad("is malformed")
	}
	if st.Prefix != prefix {
		return nil, bad("belongs to the ring under another prefix")
	}
	st.revoked = make(map[keys.KeyID]bool, len(st.Revoked))
	for _, k := range st.Revoked {
		st.revoked[k] = true
	}
	if st.seen, err = g.loadSeen(&f, prefix); err != nil {
		return nil, bad(err.Error())
	}
	return &st, nil
}

// loadSeen reads the digests kept beside the state: none in a file
// written by a binary from before them.
func (g *guard) loadSeen(f *stateFile, prefix string) (map[string]seenDoc, error) {
	seen := map[string]seenDoc{}
	if len(f.Seen) == 0 && f.SeenMAC == "" {
		return seen, nil
	}
	tag, err := base64.RawURLEncoding.DecodeString(f.SeenMAC)
	if err != nil || !hmac.Equal(tag, g.seenMAC(prefix, f.Seen)) {
		return nil, errors.New("has digests that do not verify under this wrapping key")
	}
	if err := json.Unmarshal(f.Seen, &seen); err != nil {
		return nil, errors.New("has malformed digests")
	}
	return seen, nil
}

func (g *guard) seenMAC(prefix string, b []byte) []byte {
	return g.mac([]byte(seenMACPrefix + prefix + "\x00" + string(b)))
}

// save writes the state file atomically (temp file, fsync, rename, fsync
// of the directory), mode 0600.
func (g *guard) save() error {
	body, err := json.Marshal(g.st)
	if err != nil {
		return err
	}
	f := stateFile{MAC: base64.RawURLEncoding.EncodeToString(g.mac(body)), State: body}
	if len(g.st.seen) > 0 {
		if f.Seen, err = json.Marshal(g.st.seen); err != nil {
			return err
		}
		f.SeenMAC = base64.RawURLEncoding.EncodeToString(g.seenMAC(g.st.Prefix, f.Seen))
	}
	b, err := json.Marshal(f)
	if err != nil {
		return err
	}
	return writeFileAtomic(g.path, append(b, '\n'))
}

func writeFileAtomic(path string, data []byte) error {
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name()) // after the rename: nothing left to remove
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return err
	}
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return err
	}
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// base is the state a read is checked against: taken before the read, so
// that a read that raced with a newer write by this node is not taken for
// a rollback (it returns what Redis held when it ran; the next change
// notification brings the newer value).
func (g *guard) base() *nodeState {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.st
}

// admit checks o against base and, when it passes, records it: in memory
// at once, in the file before admit returns. A refusal is ErrRollback,
// logged and reported to OnRollback; a state that cannot be written is an
// error too (fail closed), retried on the next admit.
func (g *guard) admit(base *nodeState, o observation) error {
	if why := check(base, o); why != "" {
		doc := o.kind
		if doc == "" {
			doc = kindHead
		}
		g.log.Error("key ring rollback refused: Redis holds a key ring older than, or inconsistent with, one this node has seen",
			slog.String("document", doc), slog.String("reason", why),
			slog.Uint64("counter", o.counter), slog.Uint64("seen_counter", base.Counter))
		if g.onRollback != nil {
			g.onRollback(doc)
		}
		return fmt.Errorf("%w (%s document: %s)", ErrRollback, doc, why)
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	if next := merge(g.st, o); next != nil {
		g.st, g.dirty = next, true
	}
	if g.dirty && g.path != "" {
		if err := g.save(); err != nil {
			return fmt.Errorf("%w: write %s: %w", ErrState, g.path, err)
		}
	}
	g.dirty = false
	return nil
}

// check returns why o must be refused against st, or "".
func check(st *nodeState, o observation) string {
	if o.counter < st.Counter {
		return "the version counter is below one this node has seen"
	}
	if o.head == nil && st.Docs[kindHead] > 0 {
		return "the head document was deleted"
	}
	if o.head != nil && o.head.Version != o.counter {
		return "the version counter disagrees with the head document"
	}
	if o.kind == "" {
		return ""
	}
	var want uint64
	if o.head != nil {
		want = o.head.Docs[o.kind]
	}
	if o.doc == nil {
		if !o.replace && (want > 0 || st.Docs[o.kind] > 0) {
			return "the document was deleted"
		}
		return ""
	}
	switch v := o.doc.Version; {
	case o.head != nil && v != want, v > o.counter:
		return "its version disagrees with the version counter"
	case v < st.Docs[o.kind]:
		return "it is older than one this node has seen"
	case o.raw != "" && st.seen[o.kind].Version == v && st.seen[o.kind].SHA256 != digest(o.raw):
		return "it differs from the one this node saw at the same version (a lost write replaced)"
	}
	if o.kind == kindRing {
		for _, e := range o.doc.Keys {
			if st.revoked[e.Kid] && e.Status != keys.StatusRevoked {
				return "it brings back a key this node has seen revoked"
			}
		}
	}
	return ""
}

// merge returns the state after o, or nil when o adds nothing.
func merge(st *nodeState, o observation) *nodeState {
	next := &nodeState{Format: stateFormat, Prefix: st.Prefix, Counter: max(st.Counter, o.counter),
		Docs: maps.Clone(st.Docs), revoked: st.revoked, Revoked: st.Revoked, seen: st.seen}
	newSeen := o.doc != nil && o.raw != "" && o.doc.Version >= st.Docs[o.kind] && st.seen[o.kind].Version < o.doc.Version
	if newSeen {
		next.seen = maps.Clone(st.seen)
		next.seen[o.kind] = seenDoc{Version: o.doc.Version, SHA256: digest(o.raw)}
	}
	if o.head != nil {
		next.Docs[kindHead] = max(next.Docs[kindHead], o.head.Version)
	}
	if o.doc != nil {
		next.Docs[o.kind] = max(next.Docs[o.kind], o.doc.Version)
	}
	var added []keys.KeyID
	if o.doc != nil && o.kind == kindRing {
		for _, e := range o.doc.Keys {
			if e.Status == keys.StatusRevoked && !st.revoked[e.Kid] {
				added = append(added, e.Kid)
			}
		}
	}
	if len(added) > 0 {
		next.revoked = maps.Clone(st.revoked)
		for _, k := range added {
			next.revoked[k] = true
		}
		next.Revoked = slices.Sorted(maps.Keys(next.revoked))
	}
	if len(added) == 0 && !newSeen && next.Counter == st.Counter && maps.Equal(next.Docs, st.Docs) {
		return nil
	}
	return next
}
