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

// Group commit, as in account/boltstore (commit.go there, which explains
// why bbolt's DB.Batch does not fit): the Adds queued while a commit is
// being flushed share the next transaction and its fsync, and each caller
// is answered only once that transaction is committed. An Add refused
// inside the transaction (a corrupt record, an I/O error, a panic) has
// usually written already (the sweep), so any failure rolls the batch
// back and runs it again without the failed Add, which fails alone. A
// caller's context is checked when its Add's turn comes inside the
// transaction, and a caller whose context ends while its Add is queued
// returns at once and the Add is skipped.

// Operation states: the caller may abandon a queued operation; once the
// committer has started it the caller waits for its answer.
const (
	opQueued int32 = iota
	opStarted
	opAbandoned
)

type op struct {
	ctx   context.Context
	fn    func(*bolt.Tx) error
	state atomic.Int32
	done  chan struct{} // closed once err (or panicked) is final
	// Owned by the committer until done is closed.
	err      error
	panicked any
	dropped  bool // failed: left out of the reruns
}

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
	cond   sync.Cond
	queue  []*op
	closed bool

	stopped chan struct{}
	// For tests: operations taken from the queue, transactions run.
	taken, commits atomic.Uint64
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
func (c *committer) do(ctx context.Context, fn func(*bolt.Tx) error) error {
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
		<-o.done
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
			for _, o := range batch {
				if o.dropped {
					continue
				}
				if !o.state.CompareAndSwap(opQueued, opStarted) && o.state.Load() != opStarted {
					continue // abandoned by its caller
				}
				o.err = nil
				if cerr := o.ctx.Err(); cerr != nil {
					o.err = abandoned(cerr) // wrote nothing: fails alone
					continue
				}
				if o.err = call(o, tx); o.err != nil {
					bad = o
					return errRollback
				}
			}
			return nil
		})
		if bad == nil {
			break
		}
		bad.dropped = true
	}
	c.commits.Add(1)
	for _, o := range batch {
		if o.state.Load() == opAbandoned {
			continue
		}
		if err != nil && o.panicked == nil {
			o.err = err // nothing was committed
		}
		close(o.done)
	}
}

func call(o *op, tx *bolt.Tx) (err error) {
	defer func() {
		if r := recover(); r != nil {
			o.panicked = r
			err = fmt.Errorf("boltstore: operation panicked")
		}
	}()
	return o.fn(tx)
}
