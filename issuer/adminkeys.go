package issuer

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"strings"
	"time"
)

// AdminKeyPrefix starts every admin key, so that a leaked one is easy to
// recognise (secret scanners, logs).
const AdminKeyPrefix = "hpadm_"

// adminKeyBytes is the size of the random part of an admin key (256 bits).
const adminKeyBytes = 32

// ErrAdminKeys: the admin keys file is malformed.
var ErrAdminKeys = errors.New("issuer: malformed admin keys file")

// NewAdminKey makes a random admin key (from rand, crypto/rand when nil)
// and the line to append to the admin keys file:
//
//	sha256:<hex digest of the key> <id> <created, RFC 3339>
//
// id names the key in audit records; it must be 1 to 64 characters of
// letters, digits, '.', '_' and '-', and not "-" alone (the who of a call
// made with no accepted key). Empty: "key-" and the first 12 hex
// digits of the digest. The key itself is returned once and stored
// nowhere.
func NewAdminKey(r io.Reader, id string, now time.Time) (key, line string, err error) {
	if id != "" && !validAdminKeyID(id) {
		return "", "", errors.New(`issuer: admin key id must be 1 to 64 letters, digits, '.', '_' or '-', and not "-"`)
	}
	if r == nil {
		r = rand.Reader
	}
	b := make([]byte, adminKeyBytes)
	if _, err := io.ReadFull(r, b); err != nil {
		return "", "", fmt.Errorf("issuer: random admin key: %w", err)
	}
	key = AdminKeyPrefix + base64.RawURLEncoding.EncodeToString(b)
	d := sha256.Sum256([]byte(key))
	if id == "" {
		id = "key-" + hex.EncodeToString(d[:6])
	}
	line = "sha256:" + hex.EncodeToString(d[:]) + " " + id + " " + now.UTC().Format(time.RFC3339)
	return key, line, nil
}

// validAdminKeyID refuses "-": audit records name a call made with no
// accepted key so, and such calls are only sampled; a key of that name
// would act unrecorded.
func validAdminKeyID(id string) bool {
	if len(id) < 1 || len(id) > 64 || id == auditWhoUnauthenticated {
		return false
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

type adminDigest struct {
	sum [sha256.Size]byte
	id  string
}

// parseAdminKeys reads digest lines; blank lines and lines starting with
// '#' are skipped. Any other malformed line fails the whole file (a typo
// must not silently drop a key, nor let a half-read file through).
func parseAdminKeys(b []byte) ([]adminDigest, error) {
	var out []adminDigest
	sc := bufio.NewScanner(bytes.NewReader(b))
	n := 0
	for sc.Scan() {
		n++
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		f := strings.Fields(line)
		if len(f) < 2 {
			return nil, fmt.Errorf("%w: line %d", ErrAdminKeys, n)
		}
		hx, ok := strings.CutPrefix(f[0], "sha256:")
		raw, err := hex.DecodeString(hx)
		if !ok || err != nil || len(raw) != sha256.Size || !validAdminKeyID(f[1]) {
			return nil, fmt.Errorf("%w: line %d", ErrAdminKeys, n)
		}
		var d adminDigest
		copy(d.sum[:], raw)
		d.id = f[1]
		out = append(out, d)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrAdminKeys, err)
	}
	return out, nil
}

// adminKeys authenticates admin keys against the digests in a file, read
// again on every admin request: `hallpass admin-key new` takes effect
// without a restart, and a removed line stops working at once, whatever
// the file's timestamps say (a cache keyed on modification time and size
// kept a key swapped for another of the same length when the time did not
// move: coarse timestamps, tools that preserve it). The file is a few
// lines and admin calls are few; one open, stat and read each.
type adminKeys struct {
	path string
}

// maxAdminKeysFile bounds the file read (about 10,000 keys).
const maxAdminKeysFile = 1 << 20

func (a *adminKeys) load() ([]adminDigest, error) {
	f, err := os.Open(a.path)
	if err != nil {
		return nil, fmt.Errorf("admin keys file: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat() // of the file read, not of whatever the path names later
	if err != nil {
		return nil, fmt.Errorf("admin keys file: %w", err)
	}
	if runtime.GOOS != "windows" && fi.Mode().Perm()&0o022 != 0 {
		// Whoever can write the file can add a key: refuse it.
		return nil, fmt.Errorf("admin keys file %s is writable by others (mode %v)", a.path, fi.Mode().Perm())
	}
	b, err := io.ReadAll(io.LimitReader(f, maxAdminKeysFile+1))
	if err != nil {
		return nil, fmt.Errorf("admin keys file: %w", err)
	}
	if len(b) > maxAdminKeysFile {
		return nil, fmt.Errorf("%w: larger than %d bytes", ErrAdminKeys, maxAdminKeysFile)
	}
	d, err := parseAdminKeys(b)
	if err != nil {
		return nil, err
	}
	return d, nil
}

// lookup returns the id of the key whose digest matches tainted. Every
// digest is compared, in constant time, whatever matched.
func (a *adminKeys) lookup(tainted string) (id string, ok bool, err error) {
	ds, err := a.load()
	if err != nil {
		return "", false, err
	}
	sum := sha256.Sum256([]byte(tainted))
	for _, d := range ds {
		if subtle.ConstantTimeCompare(sum[:], d.sum[:]) == 1 && !ok {
			id, ok = d.id, true
		}
	}
	return id, ok, nil
}
