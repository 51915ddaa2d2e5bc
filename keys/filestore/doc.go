// Package filestore keeps a keys.Ring in a directory on disk.
//
// Layout: DIR/ring.json (mode 0600) lists every key with its status and
// times, the public key as PASERK k4.public and the secret key wrapped as
// PASERK k4.secret-pw (Argon2id passphrase) or k4.secret-wrap.pie (32-byte
// wrapping key). Plaintext k4.secret is written only through the explicit
// InsecurePlaintext protector, which logs a warning. DIR/.lock serialises
// writers across processes with flock(2).
//
// What it trusts: the owner of DIR and its files (and root) and, for
// wrapped rings, the secrecy of the passphrase or wrapping key. Every
// secret read back is authenticated by its PASERK wrapping before use, and
// every public key must match its recorded kid, but the list itself (which
// keys, their statuses and times) is not authenticated: whoever can write
// ring.json can add a public key of their own or turn a revoked key back
// into a retired one, and verifiers accept it. So every read and every
// writer refuses, with ErrInsecureDir, a file with any group or other
// permission bit, a file that is a symbolic link or not a regular file, and
// a DIR that group or others may write to (they could rename another file
// over ring.json); group or other read of DIR itself is allowed. Nothing
// detects an older, authentic ring.json put back by the owner (a restored
// backup): it is served as it is. Readers need no lock: writes are atomic
// (temp file, fsync, rename, fsync of the directory), so a reader sees the
// old ring or the new one, never a torn file.
//
// DIR/local.json holds the refresh-token keys (keys.LocalKeyEntry) and
// DIR/pepper.json the peppers that key the digests of link and recovery
// codes (keys.PepperEntry, each stored as a k4.local key), both with the
// same protection as the ring. RotateLocal adds a refresh-token key and
// prunes retired ones older than its keep; ResetLocal drops every older
// one (every session ends); RotatePepper adds a pepper and keeps the older
// ones for good. A wrong passphrase gives ErrWrongPassphrase and a wrong
// wrapping key ErrWrongWrapKey, each wrapping keys.ErrUnwrap.
//
// Other processes' changes: Version is a fingerprint of the three files'
// contents and Watch polls it (Store.PollInterval, default 2 s), so
// keys/live can follow a directory that `hallpass keys` or another issuer
// on the same machine changes, without a restart.
//
// Limits: flock is advisory and local to one machine; several issuer nodes
// sharing one ring need a shared store (keys/redisring). keys/live serves
// a ring from this store and applies rotations through Update.
package filestore
