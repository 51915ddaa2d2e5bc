package boltstore

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

// Group commit. bbolt serialises writers and every commit costs two
// fdatasyncs, so one transaction per request bounds the store by the disk's
// flush latency. Instead, every write operation is queued for one
// committer goroutine, which runs whatever is queued when it becomes free
// (at most MaxBatch operations, with no added delay) in one transaction,
// commits once and only then answers each caller: an acknowledged write
// is on disk.
//
// bbolt's own DB.Batch does not fit: it waits up to MaxBatchDelay (10 ms)
// for a batch to fill, adding that latency to every write at low load, and
// an operation that fails aborts the whole batch and is run again on its
// own (a second transaction for every refused signup). Here every refusal
// (a name taken, a code used, a limit reached, a deadline passed) is
// decided before the operation writes anything, so such an operation just
// drops out of the shared transaction. Only one that fails after writing
// (an I/O error, a corrupt record found midway) or panics makes the
// committer roll the transaction back and run the batch again without it;
// each rerun applies the batch anew, so a batch of n operations with k
// such failures costs k+1 passes, and one commit. Either way it fails alone and changes nothing, and the
// others see the state it would have left: none of its writes.
//
// Each operation checks its caller's context when its turn comes, inside
// the transaction: a caller that gave up (its request already answered
// 503, "nothing changed") changes nothing. A caller whose context ends
// while its operation is still queued returns at once and the operation is
// skipped.

// txn is one operation's part of a transaction. All reads and writes of
// the store go through its methods; the writes mark it dirty, which is how
// the committer knows whether a failed operation left anything to undo.
type txn struct {
	tx    *bolt.Tx
	dirty bool
}

func (t *txn) get(bucket []byte, key string) []byte { return t.tx.Bucket(bucket).Get([]byte(key)) }

func (t *txn) has(bucket []byte, key string) bool { return t.get(bucket, key) != nil }

// scan calls fn with each key of bucket under prefix (the prefix removed)
// and its value, in key order, until fn returns false. The slices are valid
// only during the call.
func (t *txn) scan(bucket []byte, prefix string, fn func(suffix, v []byte) bool) {
	p := []byte(prefix)
	c := t.tx.Bucket(bucket).Cursor()
	for k, v := c.Seek(p); k != nil && len(k) >= len(p) && string(k[:len(p)]) == prefix; k, v = c.Next() {
		if !fn(k[len(p):], v) {
			return
		}
	}
}

func (t *txn) put(bucket []byte, key string, value []byte) error {
	t.dirty = true
	return t.tx.Bucket(bucket).Put([]byte(key), value)
}

func (t *txn) del(bucket []byte, key string) error {
	t.dirty = true
	return t.tx.Bucket(bucket).Delete([]byte(key))
}

// ensure creates bucket if it is missing.
func (t *txn) ensure(bucket []byte) error {
	if t.tx.Bucket(bucket) != nil {
		return nil
	}
	t.dirty = true
	_, err := t.tx.CreateBucket(bucket)
	return err
}

// Operation states: the caller may abandon a queued operation; once the
// committer has started it the caller waits for its answer.
const (
	opQueued int32 = iota
	opStarted
	opAbandoned
)

// op is one queued write operation.
type op struct {
	ctx   context.Context
	fn    func(*txn) error
	state atomic.Int32
	done  chan struct{} // closed once err (or panicked) is final
	// Owned by the committer until done is closed.
	err      error
	panicked any  // what fn panicked with, re-raised in the caller
	dropped  bool // failed after writing: left out of the reruns
}

// errRollback aborts a transaction so that a batch can run again without
// an operation that failed after writing.
var errRollback = errors.New("boltstore: roll back the batch")

func abandoned(err error) error {
	return fmt.Errorf("boltstore: abandoned before commit: %w", err)
}

// committer runs queued write operations in shared transactions. It owns
// one goroutine, started by newCommitter and stopped by close.
type committer struct {
	db       *bolt.DB
	maxBatch int

	mu     sync.Mutex
	cond   sync.Cond // signalled when queue grows or closed is set
	queue  []*op
	closed bool

	stopped chan struct{}
	// Counters for tests and benchmarks: operations taken from the
	// queue, transactions run (committed or failed) and the operations
	// they answered.
	taken, commits, ops atomic.Uint64
}

func newCommitter(db *bolt.DB, maxBatch int) *committer {
	c := &committer{db: db, maxBatch: maxBatch, stopped: make(chan struct{})}
	c.cond.L = &c.mu
	go c.loop()
	return c
}

// close runs what is queued, then stops the goroutine; later operations
// fail as on a closed database. Safe to call more than once.
func (c *committer) close() {
	c.mu.Lock()
	c.closed = true
	c.cond.Signal()
	c.mu.Unlock()
	<-c.stopped
}

// do queues fn and returns its error once the transaction that ran it has
// been committed (or has failed). A panic in fn is raised again here.
func (c *committer) do(ctx context.Context, fn func(*txn) error) error {
	o := &op{ctx: ctx, fn: fn, done: make(chan struct{})}
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return berrors.ErrDatabaseNotOpen
	}
	c.queue = append(c.queue, o)
	c.cond.Signal()
	c.mu.Unlock()
	select {
	case <-o.done:
	case <-ctx.Done():
		if o.state.CompareAndSwap(opQueued, opAbandoned) {
			return abandoned(ctx.Err())
		}
		<-o.done // already running: its outcome is the answer
	}
	if o.panicked != nil {
		panic(o.panicked)
	}
	return o.err
}

func (c *committer) loop() {
	defer close(c.stopped)
	var batch []*op
	for {
		c.mu.Lock()
		for len(c.queue) == 0 && !c.closed {
			c.cond.Wait()
		}
		if len(c.queue) == 0 {
			c.mu.Unlock()
			return
		}
		n := min(len(c.queue), c.maxBatch)
		batch = append(batch[:0], c.queue[:n]...)
		rest := copy(c.queue, c.queue[n:])
		clear(c.queue[rest:])
		c.queue = c.queue[:rest]
		c.taken.Add(uint64(n))
		c.mu.Unlock()

		c.run(batch)
		clear(batch)
	}
}

// run commits batch in one transaction and answers every operation in it.
func (c *committer) run(batch []*op) {
	var err error
	for {
		var bad *op
		err = c.db.Update(func(tx *bolt.Tx) error {
			t := &txn{tx: tx}
			for _, o := range batch {
				if o.dropped {
					continue
				}
				if !o.state.CompareAndSwap(opQueued, opStarted) && o.state.Load() != opStarted {
					continue // abandoned by its caller, who has its answer
				}
				o.err = nil
				// The caller's deadline, checked when this operation's turn
				// comes: past it, the operation changes nothing.
				if cerr := o.ctx.Err(); cerr != nil {
					o.err = abandoned(cerr)
					continue
				}
				t.dirty = false
				if o.err = call(o, t); o.err != nil && t.dirty {
					bad = o
					return errRollback
				}
			}
			return nil
		})
		if bad == nil {
			break
		}
		// Everything was rolled back, bad's writes with the rest: run
		// the others again without it. bad keeps its error.
		bad.dropped = true
	}
	c.commits.Add(1)
	for _, o := range batch {
		if o.state.Load() == opAbandoned {
			continue
		}
		if err != nil && o.panicked == nil {
			// Nothing was committed; every answer of this batch, even
			// a refusal, may rest on state that never reached the disk.
			o.err = err
		}
		c.ops.Add(1)
		close(o.done)
	}
}

// call runs o.fn, turning a panic into a failure that rolls back.
func call(o *op, t *txn) (err error) {
	defer func() {
		if r := recover(); r != nil {
			o.panicked = r
			t.dirty = true
			err = fmt.Errorf("boltstore: operation panicked")
		}
	}()
	return o.fn(t)
}
