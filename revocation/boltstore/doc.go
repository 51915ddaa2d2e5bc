// Package boltstore is a revocation.Store in an embedded bbolt file, for a
// single hallpass node (hallpass serve without Redis).
//
// Layout, in buckets prefixed "revocation_" so the file can be shared:
// entries (kind:id -> entry JSON), an expiry index (expiry µs + kind:id), and
// events (sequence -> entry JSON) whose bucket sequence is the stream's last
// position. A Cursor is that sequence in decimal.
//
// Each Add is one atomic step: drop up to 256 expired entries, keep the
// entry with the later Before, append an event, and trim the events to the
// latest Options.MaxEvents (default 100,000), recording the highest trimmed
// sequence so that Follow from an older cursor returns ErrCursorGone.
// Adds are group-committed (internal/boltcommit): the Adds queued while a commit is
// flushed share the next transaction and fsync (at most Options.MaxBatch),
// and each returns only once that transaction is committed. An Add that
// fails inside the transaction fails alone (the batch is rolled back and
// run again without it); one whose caller's context is done when its turn
// comes, or while it is queued, changes nothing. The Store owns the
// committer goroutine; Close stops it.
//
// Follow wakes at once on an Add made through the same Store and otherwise
// polls every 100 ms. What it trusts: the file (mode 0600) and the local
// clock (Options.Now) for expiry. Entries never contain a token, only ids.
package boltstore
