package main

import (
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"runtime"
	"strings"

	"github.com/hallpass/hallpass/keys"
)

// maxSecretFile bounds what is read of a secret file: a passphrase or a
// 32-byte key, with room for a newline and an encoding.
const maxSecretFile = 4096

// errSecretFileMode: a secret file that group or others may access.
var errSecretFileMode = errors.New("secret file accessible by other users")

// readSecret reads a secret file (--wrap-key-file, --passphrase-file,
// --dpop-nonce-key-file, --rate-limit-key-file, a client's FILE.key). Like
// ssh with a private key, it refuses a file that group or others may
// read, write or execute: such a key is no secret on a shared host, and
// one that others may write can be swapped (with --key-ring redis the wrap
// key is also the root of the ring's MACs). The mode is read from the
// open file, so a rename between check and read cannot slip another file
// in; a symbolic link is judged by its target. Windows has no such mode
// bits: there the file's ACL is the operator's to set.
func readSecret(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read secret file: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("read secret file: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("secret file %s is not a regular file", path)
	}
	if err := checkSecretMode(path, fi.Mode()); err != nil {
		return nil, err
	}
	b, err := io.ReadAll(io.LimitReader(f, maxSecretFile+1))
	if err != nil {
		return nil, fmt.Errorf("read secret file: %w", err)
	}
	if len(b) > maxSecretFile {
		clear(b)
		return nil, errors.New("secret file is larger than 4 KiB")
	}
	return b, nil
}

// checkSecretMode refuses a mode with any group or other bit set, and says
// the chmod that fixes it.
func checkSecretMode(path string, m fs.FileMode) error {
	if runtime.GOOS == "windows" || m.Perm()&0o077 == 0 {
		return nil
	}
	return explain(errSecretFileMode, fmt.Sprintf(
		"secret file %s is accessible by other users (mode %#o); make it readable by its owner only: chmod 600 %s",
		path, m.Perm(), shellQuote(path)))
}

// shellQuote quotes s for a POSIX shell when it needs it, so that the
// chmod of an error message can be pasted as is.
func shellQuote(s string) string {
	safe := s != ""
	for _, r := range s {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("/._-+,:@%=", r)) {
			safe = false
			break
		}
	}
	if safe {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// readSecretFile reads a small secret file (a passphrase) and trims one
// trailing newline.
func readSecretFile(path string) ([]byte, error) {
	b, err := readSecret(path)
	if err != nil {
		return nil, err
	}
	s := strings.TrimRight(string(b), "\r\n")
	clear(b)
	return []byte(s), nil
}

// loadWrapKey reads a 32-byte key file: 32 raw bytes, or 43 characters of
// base64url, or 64 hex digits, each optionally followed by a newline.
// --wrap-key-file, --dpop-nonce-key-file and --rate-limit-key-file all
// take this form.
func loadWrapKey(path string) (*keys.WrappingKey, error) {
	raw, err := readSecret(path)
	if err != nil {
		return nil, err
	}
	defer clear(raw)
	if len(raw) == 32 {
		return keys.WrappingKeyFromBytes(raw)
	}
	s := strings.TrimSpace(string(raw))
	if b, err := base64.RawURLEncoding.DecodeString(s); err == nil && len(b) == 32 {
		defer clear(b)
		return keys.WrappingKeyFromBytes(b)
	}
	if b, err := hex.DecodeString(s); err == nil && len(b) == 32 {
		defer clear(b)
		return keys.WrappingKeyFromBytes(b)
	}
	return nil, errors.New("wrap key file must hold 32 bytes (raw, base64url or hex)")
}

// writeNewSecretFile creates path with mode 0600 and writes data, synced.
// It never overwrites: an existing file (or a symbolic link, even a
// dangling one) is refused, so a key in use cannot be replaced by mistake.
// A failed write removes the file it created.
func writeNewSecretFile(path string, data []byte) (err error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		if errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("%s exists; refusing to overwrite it (a key in use would be lost)", path)
		}
		return err
	}
	defer func() {
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			_ = os.Remove(path)
		}
	}()
	// The umask only removes bits: 0600 stays 0600 or less. Chmod anyway,
	// in case the file system ignored the mode.
	if err = f.Chmod(0o600); err != nil {
		return err
	}
	if _, err = f.Write(data); err != nil {
		return err
	}
	return f.Sync()
}
