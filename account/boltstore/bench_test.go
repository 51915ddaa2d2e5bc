package boltstore_test

import (
	"encoding/binary"
	"path/filepath"
	"runtime"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/hallpass/hallpass/account"
	"github.com/hallpass/hallpass/account/boltstore"
)

// benchParallelism: b.RunParallel runs this many goroutines per
// GOMAXPROCS, so that writes queue up as under load (64 on two cores, the
// issue's C=64).
const benchParallelism = 32

// BenchmarkCommitFloor is the floor of a store that commits each write on
// its own: one fsync'd bbolt transaction that writes one small record,
// back to back. A batched store's ns/op is per operation and may be far
// below it; a serial one cannot be.
func BenchmarkCommitFloor(b *testing.B) {
	db, err := bolt.Open(filepath.Join(b.TempDir(), "floor.db"), 0o600, nil)
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	bucket := []byte("b")
	if err := db.Update(func(tx *bolt.Tx) error { _, err := tx.CreateBucket(bucket); return err }); err != nil {
		b.Fatal(err)
	}
	val := make([]byte, 200)
	var i uint64
	for b.Loop() {
		i++
		err := db.Update(func(tx *bolt.Tx) error {
			return tx.Bucket(bucket).Put(binary.BigEndian.AppendUint64(nil, i), val)
		})
		if err != nil {
			b.Fatal(err)
		}
	}
}

// benchModes: group commit as shipped, and one operation per transaction
// (MaxBatch 1), as the store committed before.
var benchModes = []struct {
	name     string
	maxBatch int
}{{"batched", 0}, {"serial", 1}}

func openBench(b *testing.B, maxBatch int) *boltstore.Store {
	b.Helper()
	s, err := boltstore.Open(filepath.Join(b.TempDir(), "accounts.db"), boltstore.Options{MaxBatch: maxBatch})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	return s
}

// reportBatching adds the mean operations per commit since commits0.
func reportBatching(b *testing.B, s *boltstore.Store, commits0 uint64) {
	if n := boltstore.Commits(s) - commits0; n > 0 {
		b.ReportMetric(float64(b.N)/float64(n), "ops/commit")
	}
}

// benchAccount is a new account named after its id, with its first device
// and session.
func benchAccount(b *testing.B, now time.Time) (account.Account, account.Device, account.Session) {
	accID, err1 := account.NewID(account.AccountPrefix, nil)
	devID, err2 := account.NewID(account.DevicePrefix, nil)
	if err1 != nil || err2 != nil {
		b.Fatal(err1, err2)
	}
	return account.Account{ID: accID, Username: accID, UsernameKey: accID, Created: now},
		account.Device{ID: devID, AccountID: accID, Name: "phone", JKT: "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I", Created: now},
		account.Session{DeviceID: devID, AccountID: accID, JKT: "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I", Counter: 1, Created: now, Expires: now.Add(90 * 24 * time.Hour)}
}

// BenchmarkCreateAccountParallel: signups from many goroutines, fsync on.
func BenchmarkCreateAccountParallel(b *testing.B) {
	for _, mode := range benchModes {
		b.Run(mode.name, func(b *testing.B) {
			s := openBench(b, mode.maxBatch)
			now := time.Now().UTC()
			commits0 := boltstore.Commits(s)
			b.SetParallelism(benchParallelism)
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					acc, dev, sess := benchAccount(b, now)
					if err := s.CreateAccount(b.Context(), acc, dev, sess); err != nil {
						b.Error(err)
						return
					}
				}
			})
			reportBatching(b, s, commits0)
		})
	}
}

// BenchmarkRefreshParallel: advancing refreshes from many goroutines,
// each on its own session, fsync on.
func BenchmarkRefreshParallel(b *testing.B) {
	for _, mode := range benchModes {
		b.Run(mode.name, func(b *testing.B) {
			s := openBench(b, mode.maxBatch)
			now := time.Now().UTC()
			succ := make([]byte, 200) // about a sealed successor pair
			goroutines := benchParallelism * runtime.GOMAXPROCS(0)
			sessions := make(chan string, goroutines)
			for range goroutines {
				acc, dev, sess := benchAccount(b, now)
				if err := s.CreateAccount(b.Context(), acc, dev, sess); err != nil {
					b.Fatal(err)
				}
				sessions <- dev.ID
			}
			commits0 := boltstore.Commits(s)
			b.SetParallelism(benchParallelism)
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				devID := <-sessions
				counter := uint64(1)
				for pb.Next() {
					res, err := s.Refresh(b.Context(), account.RefreshRequest{DeviceID: devID, Counter: counter, Now: now, Successor: succ})
					if err != nil || res.Outcome != account.RefreshAdvanced {
						b.Error(res.Outcome, err)
						return
					}
					counter++
				}
			})
			reportBatching(b, s, commits0)
		})
	}
}
