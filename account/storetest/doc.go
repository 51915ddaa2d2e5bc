// Package storetest is the conformance suite for account.Store engines. An
// engine's tests call [Run] with a [Factory]; every engine must pass the same
// suite, so the issuer behaves the same on bbolt and on Redis.
//
// The suite pins down what account.go leaves to prose:
//
//   - CreateAccount claims the username and stores the account, its first
//     device and session in one step: ErrUsernameTaken or ErrExists (an
//     account or device id in use) store nothing at all.
//   - Malformed records (ids failing account.ValidID, records that do not
//     point at each other, missing username key, JKT or expiry) are
//     ErrInvalidRequest; a malformed id passed to a getter names nothing and
//     is ErrNotFound.
//   - A zero LastUsed on a new device or session is stored as its Created.
//   - ListDevices returns every device of the account, revoked ones too,
//     ordered by Created then ID; an unknown account is ErrNotFound.
//   - Refresh, in this order: unknown device -> ErrNotFound; session ended,
//     device revoked, account banned, Now >= Expires, or (Idle > 0 and
//     Now - LastUsed > Idle) -> Rejected, nothing changed; Counter ==
//     current -> Advanced (counter+1, Successor and RetryDigest stored, the
//     latter replacing or clearing the previous one, GraceUntil = Now+Grace,
//     LastUsed of session and device = Now); Counter == current-1 and Now <
//     GraceUntil -> Grace with the stored successor whatever the digest,
//     nothing changed; Counter == current-1, Now >= GraceUntil and the
//     stored RetryDigest equals the request's (none never matches) ->
//     Retried with the stored successor, repeatably and across a reopen,
//     only LastUsed of session and device = Now; anything else -> Reused:
//     the session ends at Now (its successor and retry digest are dropped)
//     and the device is revoked at Now. Grace == 0 disables the grace
//     window, Idle == 0 the idle limit; negative values, a zero Now, an
//     empty Successor, a RetryDigest of another length than
//     account.RetryDigestSize are ErrInvalidRequest.
//   - EndSession ends the session and revokes the device at the first call's
//     time; later calls change nothing and return nil.
//   - Link codes: CreateLinkCode counts only codes live at now (expired
//     ones are dropped) against maxLive; a digest in use by any account is
//     ErrExists. Only an active device of the account makes a code (another
//     account's or an unknown device: ErrNotFound; one signed out:
//     ErrSessionEnded). RedeemLinkCode binds the device to the code's
//     account and works once, before Expires, while the device that made
//     the code is active; used, wrong, malformed and expired codes, and
//     codes whose maker was since signed out (EndSession, refresh reuse),
//     are one ErrNotFound; the account's other devices' codes still work. A banned account, an invalid device or a device
//     id in use refuse it and keep the code. Of 16 concurrent redemptions
//     exactly one succeeds. A redeemed code's record stays until it would
//     have expired: RedeemedLinkCode names the account and the device that
//     redeemed it until then (ErrNotFound at Expires, for a live, unknown or
//     malformed code, once its maker is signed out, after
//     EndAccountSessions or DeleteAccount; ErrBanned for a banned
//     account); it never counts as live, makes room under maxLive, and
//     never redeems again.
//   - Recovery codes: the account returns its salt and digests ordered by
//     byte value; SetRecoveryCodes replaces both; AddRecoveryCode adopts the
//     salt only when the account has none, and an existing digest is a
//     no-op even at maxCodes. UseRecoveryCode removes the digest; with
//     signOutOthers the other live sessions end at now (Refresh Rejected)
//     and their ids are returned, sorted, without the sessions ended
//     before. Refusals change nothing; of 16 concurrent uses exactly one
//     succeeds.
//   - DeleteAccount: afterwards every getter and every call on the account,
//     its devices and codes is ErrNotFound (Refresh ErrNotFound or
//     Rejected); the name is held for signups (their acc.Created is now)
//     and renames until holdUntil, exactly, then free.
//   - RenameAccount: reachable by id and the new name, the old name held as
//     after a deletion, even for its old owner; registered or held names
//     are ErrUsernameTaken; the own key is a no-op. Of renames and signups
//     racing for one name exactly one wins.
//   - Concurrent writes of which about half fail (a name taken, a device
//     id in use, a cancelled context, a missing account, a code used by a
//     concurrent call) fail alone: the failures change nothing and every
//     success is stored as if it had run alone (an engine that commits
//     concurrent writes together must keep a failure out of its batch).
//   - A cancelled context yields an error that wraps context.Canceled and
//     changes nothing; a closed store yields errors wrapping
//     account.ErrUnavailable. Nothing panics.
//
// What it trusts: the engine under test only through the Store interface.
// Limits: it checks one process; cross-process locking (bbolt) and outages
// (Redis) are engine-specific tests.
package storetest
