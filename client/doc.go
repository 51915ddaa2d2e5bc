// Package client is the Go client of a hallpass issuer: "no-signup" login
// for apps. On first launch the app makes a device key, picks a username and
// calls Signup; from then on it calls the API through the Client, which
// signs a DPoP proof (RFC 9449) for every request, refreshes the access
// token before it expires, and saves every new token pair before using it.
//
// # What it does
//
//   - Device key: ECDSA P-256 (ES256) or Ed25519 (EdDSA) behind
//     crypto.Signer, so a non-exportable hardware key fits. The key never
//     leaves the device; the server knows only its thumbprint (jkt), to
//     which every token is bound.
//   - Requests: Do adds "Authorization: DPoP <access token>" and a fresh
//     proof (htm, htu, iat, a random jti, ath = hash of the token, and the
//     latest server nonce). A use_dpop_nonce answer is retried once with the
//     server's DPoP-Nonce; a 401 token_expired is refreshed once and retried
//     once. CallJSON wraps Do for JSON endpoints, so a new endpoint is one
//     call (see its documentation).
//   - Refresh: at most one refresh is in flight per Client; every caller
//     that needs one waits for it. Refresh tokens are single use: the server
//     rotates them, and treats an old one presented again after its grace
//     window (30 s by default) as theft and ends the device session. So a
//     refresh runs detached from the caller's context (a caller that gives
//     up does not abandon a rotated token), and a lost answer (network error,
//     timeout, 5xx) is retried with the SAME refresh token for up to
//     WithRefreshRetryWindow (20 s), within which the server returns the same
//     successor.
//   - Lost refresh answers: before it first presents a refresh token the
//     client makes a retry id (128 random bits) and saves it with the token
//     (State.RefreshRetryID); every attempt to redeem that token sends it
//     as retry_id: the retries above, a later call once the retry window
//     ran out, a restarted process loading the state, another process
//     sharing the store. The server answers a repeat of the request that
//     rotated the session, after its grace window too, with the same
//     successor refresh token and a new access token, so a lost answer no
//     longer signs the device out however late the device comes back
//     (within the session's idle and absolute limits). The id is dropped
//     when the new pair is saved. Only the request that rotated knows its
//     id, so a thief replaying the old token after the window is still
//     reuse. If the id cannot be saved the refresh goes ahead with it in
//     memory: this process's retries still send it, a restart does not.
//   - State: a StateStore keeps the ids and tokens. The successor of a
//     refresh is saved before anyone uses it; if saving fails the tokens
//     stay in memory (the refresh token is never dropped), the call reports
//     ErrPersist (Refresh, Signup) or logs it (automatic refresh in Do), and
//     the save is retried on the next call, unless another client sharing
//     the store saved newer tokens meanwhile: those are taken instead.
//   - Devices: Devices lists the account's devices (the current one
//     marked); RevokeDevice signs out another of them (its refresh token
//     stops working and its access tokens are refused by the issuer and by
//     verifiers that mirror the revocation list). Another account's device
//     is not_found, never revealed.
//   - Account life cycle: an account outlives any one device. A signed-in
//     device makes a link code (CreateLinkCode) that a new device, holding
//     no session, redeems with Link to join as a device of its own (its
//     own key, proved as at signup). CreateRecoveryCodes makes 10
//     single-use codes, shown once, with which Recover brings the account
//     back on a new device when none is left (lost, logged out, signed
//     out), keeping its id and username and, by default, signing every
//     other device out. Rename changes the username; DeleteAccount ends
//     every device's session and drops the local one. A device whose
//     session ended (ErrSessionEnded) returns the same ways, never by
//     signing up again, which would make a new account.
//
// # What it trusts
//
// The server URL given to New (https, or http on loopback only unless
// WithInsecureHTTP), the TLS configuration of the http.Client, and the
// StateStore. It sends the access token to the server's origin only
// (ErrOtherOrigin) and, by default, follows no redirects. Server error
// text is shown only through the stable code (APIError.Code, checked to be
// a short identifier); tokens, proofs and keys are never logged or put in
// errors, and State prints ids only.
//
// # FileStore: state at rest on a desktop or server
//
// FileStore keeps the State, device key included (PKCS#8), in one JSON file
// with mode 0600, written atomically. Its content is encrypted with
// XChaCha20-Poly1305 under a random data key, which is stored wrapped as a
// PASERK: k4.local-pw (Argon2id over a passphrase; 64 MiB, 3 passes) or
// k4.local-wrap.pie (a 32-byte wrapping key kept elsewhere, e.g. in a key
// file or the OS key store). The file shows no token, id or key in clear;
// a wrong passphrase or any change to the file gives ErrStateDecrypt.
//
// Limits: the protection is as good as the passphrase (offline guessing)
// or as the separation between the file and its wrapping key: a key file
// next to the state file only stops readers of the state file alone (a
// backup, a copy sent by mistake). The device key is exportable: anyone who
// opens the file can act as the device until the session is revoked.
//
// Several processes may share a file: a client re-reads it before a
// refresh and before each save of tokens, and takes another process's
// newer tokens instead of presenting or writing back its own (see
// FileStore for what is and is not guaranteed without a lock).
//
// # What a mobile app does instead
//
// An app does not export its device key and keeps the refresh token in the
// platform's protected storage; it implements StateStore over that storage
// and passes the hardware key's crypto.Signer to New.
//
//   - iOS: create the device key in the Secure Enclave (SecKeyCreateRandomKey
//     with kSecAttrTokenID = kSecAttrTokenIDSecureEnclave,
//     kSecAttrKeyTypeECSECPrimeRandom, 256 bits: P-256, so ES256;
//     kSecAttrIsPermanent; kSecAttrAccessControl from
//     SecAccessControlCreateWithFlags with
//     kSecAttrAccessibleAfterFirstUnlockThisDeviceOnly and .privateKeyUsage,
//     adding .biometryCurrentSet only if every refresh may prompt). The
//     private key cannot be read out; signing (SecKeyCreateSignature,
//     ecdsaSignatureMessageX962SHA256, DER like crypto.Signer) happens in
//     the enclave. Keep the
//     refresh token and the ids in the Keychain (kSecClassGenericPassword,
//     kSecAttrAccessibleAfterFirstUnlockThisDeviceOnly), which is
//     encrypted, survives app restarts, is usable by background refreshes
//     after the first unlock, and is neither synced to iCloud nor restored
//     to another device: a restored backup must come back through a link
//     code or a recovery code rather than clone the session.
//   - Android: create an EC P-256 key in the Android Keystore
//     (KeyGenParameterSpec with PURPOSE_SIGN, digest SHA-256,
//     setIsStrongBoxBacked(true) where the device has StrongBox, falling
//     back to the TEE on StrongBoxUnavailableException). Keep the refresh
//     token in EncryptedSharedPreferences or in a file encrypted with an
//     AES-GCM key from the same Keystore, excluded from backups
//     (android:allowBackup / dataExtractionRules).
//   - Web: a WebCrypto ECDSA P-256 key generated with extractable = false
//     and kept in IndexedDB; the browser signs without exposing it.
//
// Access tokens may live in memory only: they are short-lived (10 minutes
// by default), useless without the device key (every use needs a proof
// from it), and cheap to get again with one refresh at the next launch. A
// store may therefore leave State.AccessToken out; the client then refreshes
// on first use. Only the refresh token must be durable, and its successor
// must be written before the app relies on it: an app killed between
// receiving and saving it starts again from the old token and its saved
// retry id, which the server answers with the same successor (for any
// request within its 30-second grace window, for the one with that retry
// id after it). A store that does not keep State.RefreshRetryID has the
// grace window only.
//
// # Concurrency
//
// A Client is safe for concurrent use; at most one refresh is in flight
// per Client. Close waits for an in-flight refresh to be saved; call it
// before the process exits. Clients in one or more processes may share a
// StateStore: each re-reads it before it presents or saves tokens, adopts
// another client's newer tokens of the same session, is signed out
// (ErrNoSession) by a logout elsewhere, and refuses (ErrStateMismatch) to
// use or overwrite another identity's session saved there.
package client
