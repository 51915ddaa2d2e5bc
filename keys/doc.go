// Package keys holds hallpass's key types, their PASERK (version 4) forms
// and the signing-key ring: the most sensitive package of the project. It
// does no I/O: storage is in keys/filestore and keys/redisring, the ring
// an issuer serves while it changes in keys/live. Randomness comes from an
// io.Reader (crypto/rand when nil) and time from the caller.
//
// # What is secret
//
//   - SecretKey: an Ed25519 signing key. Whoever holds it can mint access
//     tokens that every verifier of the issuer accepts, for any account,
//     until the key is revoked.
//   - LocalKey: a 32-byte symmetric key that seals refresh tokens (PASETO
//     v4.local). Whoever holds it can read and forge refresh tokens.
//   - Pepper: a 32-byte server secret that keys the digests (HMAC-SHA-256)
//     of link and recovery codes. Whoever holds it and a copy of the
//     account store can test guesses against the stored digests offline.
//     Stored like a LocalKey, in a place of its own.
//   - WrappingKey (the "wrap key", --wrap-key-file) and the key-ring
//     passphrase (--passphrase-file): they open the wrapped secret and
//     local keys at rest, so they are worth exactly what they open.
//   - The plaintext PASERK forms k4.secret and k4.local, and whatever
//     UnsafeBytes returns.
//
// Secret types have unexported fields, are not comparable with == (use
// Equal, constant time), and print and log only their id: String,
// GoString, Format and LogValue never show key bytes. Errors never carry
// key material or the string that was parsed. Reading the raw bytes is
// spelled UnsafeBytes or PlaintextPASERK.
//
// # What is published
//
//   - PublicKey (PASERK k4.public) and its id, KeyID k4.pid: a hash of the
//     public key, the kid every token's footer names.
//   - KeySetDocument: the issuer's current, next and retired public keys
//     and the ids of revoked keys, served at /.well-known/hallpass/keys.
//     A verifier recomputes every kid from its key and refuses a mismatch.
//   - k4.lid and k4.sid ids: one-way hashes, safe to log; they identify a
//     local or secret key without revealing it.
//
// # At rest
//
// A secret or local key (or a pepper) is stored wrapped: k4.secret-wrap.pie and
// k4.local-wrap.pie under a WrappingKey, or k4.secret-pw and k4.local-pw
// under a passphrase (Argon2id; parameters read back are capped by
// Argon2Limits before any hashing). Every wrapped form is authenticated: a
// wrong wrap key, a wrong passphrase and an altered string all give
// ErrUnwrap, deliberately one error (the stores say which secret they were
// given). Plaintext k4.secret at rest is for development only. Every PASERK
// parser checks the version and type prefix and the exact length before
// using a byte.
//
// # The ring and what each state change means
//
// A Ring has exactly one current key, at most one next key, retired keys
// and revoked keys. Changes take the caller's time and are applied by
// whoever holds the store's secret (below).
//
//   - next: published, not signing yet, so that verifiers holding a cached
//     key set already know it when it starts to sign.
//   - current: the one key that signs new tokens.
//   - Rotate: next becomes current, current becomes retired, a new next
//     key is made. Routine: no token stops being valid. The next key must
//     have been in the ring MinNextAge (2 min, twice the key set's 60 s
//     max-age) so that verifiers following the key set know it before its
//     first token: a rotation sooner after the one before returns
//     ErrNextTooNew and leaves the ring unchanged. A next key made with
//     the current one (NewRing) was published with it, so a fresh ring
//     rotates at once. Two writers rotating at once through a store: one
//     rotates, the other gets ErrNextTooNew.
//   - retired: signs nothing more. Its secret is dropped when it retires
//     (RestoreRing drops one given, and the stores neither write nor open
//     it): the ring keeps only its public key, published until every token
//     it signed has expired, DefaultRetiredKeep (the longest access-token
//     lifetime, 60 min, plus verifier leeway, 30 s). Prune then drops it;
//     keys/live does so on every rotation and on a timer. Not an alarm.
//   - Revoke: an emergency. The key's secret is destroyed (not stored
//     again), its id is published under "revoked" and verifiers refuse
//     every token it signed as soon as they see the key set, valid or not.
//     Revoking the current key rotates first, so the ring always has a
//     signer; that rotation is not held back by MinNextAge (an emergency
//     withdrawal must not wait), so verifiers may meet the new current
//     key before they have fetched it. It cannot be undone.
//
// # Who may change the ring
//
// Only a holder of the store's secret (the wrap key or passphrase) can
// open a ring's secrets, so only they can rotate or revoke:
// `hallpass keys rotate|revoke` on the key directory, or a running issuer,
// which holds the opened ring and changes it through its store when an
// admin-key holder calls the admin API (keys/live). Whoever can only write
// to Redis cannot forge a key or change a status without the secret, but
// can delete the ring or put back an older copy. A key directory is
// weaker: only the secrets in ring.json are authenticated (by their
// wrapping), so whoever can write the file can also add a public key of
// their own, or mark a revoked key retired again, and it verifies. So
// keys/filestore refuses a ring file others may read or write, a directory
// others may write to, and a symbolic link (ErrInsecureDir); the owner
// and root remain trusted. On Redis, keys/redisring refuses an older copy (ErrRollback): a
// head MAC'd with the documents binds their versions to the counter, and
// each node keeps the highest versions and the revoked kids it has seen in
// a state file of its own, so a revoked key never comes back on a node
// that saw it revoked; a node that has seen nothing cannot tell a complete,
// consistent old copy from the truth. A key directory relies on its
// permissions and detects no older copy put back: protect the storage as
// well as the secret. Reading the
// public half (`hallpass keys list`, `export-public`) needs no secret.
//
// # Limits
//
// A SecretKey lives in process memory once opened; the Ring type does not
// guard against a compromised process. SecretKey implements crypto.Signer
// so that a KMS or HSM signer can take its place where one is accepted,
// but the Ring itself holds in-memory keys.
package keys
