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
//     current -> Advanced (counter+1, Successor stored, GraceUntil =
//     Now+Grace, LastUsed of session and device = Now); Counter == current-1
//     and Now < GraceUntil -> Grace with the stored successor, nothing
//     changed; anything else -> Reused: the session ends at Now (its
//     successor is dropped) and the device is revoked at Now. Grace == 0
//     disables the grace window, Idle == 0 the idle limit; negative values, a
//     zero Now, an empty Successor are ErrInvalidRequest.
//   - EndSession ends the session and revokes the device at the first call's
//     time; later calls change nothing and return nil.
//   - A cancelled context yields an error that wraps context.Canceled and
//     changes nothing; a closed store yields errors wrapping
//     account.ErrUnavailable. Nothing panics.
//
// What it trusts: the engine under test only through the Store interface.
// Limits: it checks one process; cross-process locking (bbolt) and outages
// (Redis) are engine-specific tests.
package storetest
