package boltcommit_test

import (
	"context"
	"errors"
	"path/filepath"
	"sync"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/hallpass/hallpass/internal/boltcommit"
)

var bucket = []byte("b")

func open(t *testing.T) (*bolt.DB, *boltcommit.Committer) {
	t.Helper()
	db, err := bolt.Open(filepath.Join(t.TempDir(), "c.db"), 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Update(func(tx *bolt.Tx) error { _, err := tx.CreateBucket(bucket); return err }); err != nil {
		t.Fatal(err)
	}
	c, err := boltcommit.New(db, 64)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close(); db.Close() })
	return db, c
}

func put(key string) boltcommit.Op {
	return func(tx *bolt.Tx) (bool, error) { return true, tx.Bucket(bucket).Put([]byte(key), []byte("v")) }
}

var errRefused = errors.New("refused")

// TestBatch: operations queued behind a held one share one transaction;
// a refusal that wrote nothing, a failure after writing, a panic and an
// abandoned caller each fail alone, and the others' writes are committed.
func TestBatch(t *testing.T) {
	db, c := open(t)
	hold, held := make(chan struct{}), make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		_ = c.Do(context.Background(), func(tx *bolt.Tx) (bool, error) { close(held); <-hold; return put("first")(tx) })
	})
	<-held
	ctx, cancel := context.WithCancel(context.Background())
	ops := map[string]boltcommit.Op{
		"a":       put("a"),
		"refused": func(*bolt.Tx) (bool, error) { return false, errRefused },
		"wrote then failed": boltcommit.MayHaveWritten(func(tx *bolt.Tx) error {
			_ = tx.Bucket(bucket).Put([]byte("half"), []byte("v"))
			return errRefused
		}),
		"b": put("b"),
	}
	errs := make(map[string]error)
	var mu sync.Mutex
	for name, op := range ops {
		wg.Go(func() {
			err := c.Do(context.Background(), op)
			mu.Lock()
			errs[name] = err
			mu.Unlock()
		})
	}
	abandoned := make(chan error, 1)
	go func() { abandoned <- c.Do(ctx, put("abandoned")) }()
	for c.Queued() < len(ops)+1 {
		time.Sleep(time.Millisecond)
	}
	cancel()
	if err := <-abandoned; !errors.Is(err, context.Canceled) {
		t.Fatalf("abandoned caller: %v", err)
	}
	before := c.Commits()
	close(hold)
	wg.Wait()
	if got := c.Commits() - before; got != 2 { // the held one's, then the batch's
		t.Fatalf("%d transactions, want 2", got)
	}
	for name, want := range map[string]error{"a": nil, "b": nil, "refused": errRefused, "wrote then failed": errRefused} {
		if !errors.Is(errs[name], want) {
			t.Errorf("%s: %v, want %v", name, errs[name], want)
		}
	}
	_ = db.View(func(tx *bolt.Tx) error {
		for key, want := range map[string]bool{"first": true, "a": true, "b": true, "half": false, "abandoned": false} {
			if got := tx.Bucket(bucket).Get([]byte(key)) != nil; got != want {
				t.Errorf("key %q stored = %v, want %v", key, got, want)
			}
		}
		return nil
	})
}

func TestPanicFailsAlone(t *testing.T) {
	db, c := open(t)
	func() {
		defer func() {
			if r := recover(); r != "boom" {
				t.Fatalf("recovered %v, want the operation's panic", r)
			}
		}()
		_ = c.Do(context.Background(), func(tx *bolt.Tx) (bool, error) {
			_ = tx.Bucket(bucket).Put([]byte("p"), []byte("v"))
			panic("boom")
		})
	}()
	if err := c.Do(context.Background(), put("after")); err != nil {
		t.Fatal(err)
	}
	_ = db.View(func(tx *bolt.Tx) error {
		if tx.Bucket(bucket).Get([]byte("p")) != nil || tx.Bucket(bucket).Get([]byte("after")) == nil {
			t.Error("the panicking operation's write was kept, or the next one's lost")
		}
		return nil
	})
}

func TestClosed(t *testing.T) {
	_, c := open(t)
	c.Close()
	c.Close()
	if err := c.Do(context.Background(), put("x")); err == nil {
		t.Fatal("Do after Close succeeded")
	}
	if _, err := boltcommit.New(nil, 1); err == nil {
		t.Fatal("New(nil) accepted")
	}
}
