// Package boltcommit is group commit for bbolt: write operations queued by
// many goroutines share one transaction and one flush, and each caller is
// answered only once that transaction is on disk. account/boltstore and
// revocation/boltstore use it.
//
// bbolt serialises writers and every commit costs two fdatasyncs, so one
// transaction per request bounds a store by the disk's flush latency.
// Instead every operation is queued for one committer goroutine, which runs
// whatever is queued when it becomes free (at most MaxBatch operations,
// with no added delay) in one transaction, commits once and only then
// answers each caller: an acknowledged write is on disk.
//
// bbolt's own DB.Batch does not fit: it waits up to MaxBatchDelay (10 ms)
// for a batch to fill, adding that latency to every write at low load, and
// an operation that fails aborts the whole batch and is run again on its
// own (a second transaction for every refused signup). Here an operation
// reports whether it wrote anything; one refused before writing (a name
// taken, a code used, a limit reached) just drops out of the shared
// transaction. One that fails after writing (an I/O
// error, a corrupt record found midway) or panics makes the committer roll
// the transaction back and run the batch again without it; each rerun
// applies the batch anew, so a batch of n operations with k such failures
// costs k+1 passes and one commit. Either way it fails alone and changes
// nothing, and the others see the state it would have left: none of its
// writes.
//
// Each operation checks its caller's context when its turn comes, inside
// the transaction: a caller that gave up (its request already answered
// 503, "nothing changed") changes nothing. A caller whose context ends
// while its operation is still queued returns at once and the operation is
// skipped; once started, the caller waits for its commit.
//
// What it trusts: the operations (the store's own code) to report honestly
// whether they wrote before failing; a panic counts as having written.
package boltcommit
