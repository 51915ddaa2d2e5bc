package boltstore

import (
	bolt "go.etcd.io/bbolt"

	"github.com/hallpass/hallpass/internal/boltcommit"
)

// Writes go through a group committer (internal/boltcommit, whose doc says
// why not bbolt's DB.Batch): the operations queued while a commit is
// flushed share the next transaction and its fsync, and each caller is
// answered once that transaction is on disk. Every refusal (a name taken,
// a code used, a limit reached) is decided before the operation writes, so
// it drops out of the shared transaction; txn tracks whether an operation
// wrote, which is what the committer needs to know of a failure.

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

// scanRing calls fn with at most limit keys of bucket and their values, in
// key order from the first key at or after from, going on from the first
// key of the bucket once it reaches the end, and never past from again.
// The slices are valid only during the call.
func (t *txn) scanRing(bucket []byte, from string, limit int, fn func(k, v []byte)) {
	c := t.tx.Bucket(bucket).Cursor()
	n := 0
	for k, v := c.Seek([]byte(from)); k != nil && n < limit; k, v = c.Next() {
		fn(k, v)
		n++
	}
	for k, v := c.First(); k != nil && n < limit && string(k) < from; k, v = c.Next() {
		fn(k, v)
		n++
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

// op adapts a store operation on a txn to the committer.
func op(fn func(*txn) error) boltcommit.Op {
	return func(tx *bolt.Tx) (bool, error) {
		t := &txn{tx: tx}
		err := fn(t)
		return t.dirty, err
	}
}
