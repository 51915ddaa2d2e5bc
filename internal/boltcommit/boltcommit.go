package boltcommit

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"

	bolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

// Op is one write operation: it runs inside a shared transaction and
// returns whether it wrote anything (when in doubt, true) and its error. A
// failure that wrote nothing leaves the transaction to the others; one
// that wrote rolls it back.
type Op func(tx *bolt.Tx) (wrote bool, err error)

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
	fn    Op
	state atomic.Int32
	done  chan struct{} // closed once err (or panicked) is final
	// Owned by the committer until done is closed.
	err      error
	panicked any  // what fn panicked with, re-raised in the caller
	dropped  bool // failed after writing: left out of the reruns
}

// errRollback aborts a transaction so that a batch can run again without
// an operation that failed after writing.
var errRollback = errors.New("boltcommit: roll back the batch")

func abandoned(err error) error {
	return fmt.Errorf("boltcommit: abandoned before commit: %w", err)
}

// Committer runs queued write operations in shared transactions. It owns
// one goroutine, started by New and stopped by Close.
type Committer struct {
	db       *bolt.DB
	maxBatch int

	mu     sync.Mutex
	cond   sync.Cond // signalled when queue grows or closed is set
	queue  []*op
	closed bool

	stopped chan struct{}
	// Operations taken from the queue, transactions run (committed or
	// failed) and the operations they answered.
	taken, commits, ops atomic.Uint64
}

// New starts a committer on db running at most maxBatch (at least 1)
// operations per transaction.
func New(db *bolt.DB, maxBatch int) (*Committer, error) {
	if db == nil || maxBatch < 1 {
		return nil, errors.New("boltcommit: a database and a MaxBatch of at least 1 are required")
	}
	c := &Committer{db: db, maxBatch: maxBatch, stopped: make(chan struct{})}
	c.cond.L = &c.mu
	go c.loop()
	return c, nil
}

// Close runs what is queued, then stops the goroutine; later operations
// fail as on a closed database. Safe to call more than once.
func (c *Committer) Close() {
	c.mu.Lock()
	c.closed = true
	c.cond.Signal()
	c.mu.Unlock()
	<-c.stopped
}

// Do queues fn and returns its error once the transaction that ran it has
// been committed (or has failed). A panic in fn is raised again here.
func (c *Committer) Do(ctx context.Context, fn Op) error {
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

// Queued is the number of operations waiting for the committer.
func (c *Committer) Queued() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.queue)
}

// Taken is the number of operations taken from the queue, Commits the
// number of transactions run (committed or failed), Ops the operations
// they answered.
func (c *Committer) Taken() uint64   { return c.taken.Load() }
func (c *Committer) Commits() uint64 { return c.commits.Load() }
func (c *Committer) Ops() uint64     { return c.ops.Load() }

func (c *Committer) loop() {
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
func (c *Committer) run(batch []*op) {
	var err error
	for {
		var bad *op
		err = c.db.Update(func(tx *bolt.Tx) error {
			bad = c.apply(batch, tx)
			if bad != nil {
				return errRollback
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

// apply runs the batch's operations in tx and returns the first one that
// failed after writing (the transaction must roll back), or nil.
func (c *Committer) apply(batch []*op, tx *bolt.Tx) *op {
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
		var wrote bool
		if wrote, o.err = call(o, tx); o.err != nil && wrote {
			return o
		}
	}
	return nil
}

// call runs o.fn, turning a panic into a failure that rolls back.
func call(o *op, tx *bolt.Tx) (wrote bool, err error) {
	defer func() {
		if r := recover(); r != nil {
			o.panicked = r
			wrote, err = true, errors.New("boltcommit: operation panicked")
		}
	}()
	return o.fn(tx)
}

// MayHaveWritten adapts an operation that cannot tell whether it wrote
// before failing: any failure of it rolls the transaction back (and the
// batch runs again without it).
func MayHaveWritten(fn func(tx *bolt.Tx) error) Op {
	return func(tx *bolt.Tx) (bool, error) {
		err := fn(tx)
		return err != nil, err
	}
}
