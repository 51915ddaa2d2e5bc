package boltstore

import bolt "go.etcd.io/bbolt"

// HoldWriter takes the database's writer lock until release is called, as
// a stalled disk holds a commit.
func HoldWriter(s *Store) (release func()) {
	held, done := make(chan struct{}), make(chan struct{})
	stop := make(chan struct{})
	go func() {
		defer close(done)
		_ = s.db.Update(func(*bolt.Tx) error {
			close(held)
			<-stop
			return nil
		})
	}()
	<-held
	return func() { close(stop); <-done }
}

// Queued is the number of Adds waiting for the committer.
func Queued(s *Store) int {
	return s.commit.Queued()
}

// Taken is the number of Adds the committer has taken from its queue.
func Taken(s *Store) uint64 { return s.commit.Taken() }

// Commits is the number of transactions the committer has run.
func Commits(s *Store) uint64 { return s.commit.Commits() }
