// Package storetest is the conformance suite every revocation.Store must
// pass: add, snapshot and follow; a later Before replaces an earlier one;
// follow wakes at once and resumes from a cursor; a trimmed stream yields
// ErrCursorGone; entries expire when they can no longer matter (fake clock)
// while key entries and the global epoch never do; the stored set stays
// bounded under a storm of short-lived revocations; concurrent adds are all
// followed exactly once.
//
// It is imported only by tests (revocation/boltstore, revocation/redisstore
// on a single Redis and on a 3-master Redis Cluster).
package storetest
