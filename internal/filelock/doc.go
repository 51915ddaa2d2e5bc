// Package filelock takes an exclusive, advisory flock(2) on a lock file,
// waiting a bounded time: the one place the key file store's writer lock
// and the CLI's state-file lock are taken.
//
// What it trusts: the kernel's flock, which is advisory (only processes
// that take the lock are kept out) and local to one machine (on NFS only
// where the kernel maps it to NFS locks). The lock file is created with
// mode 0600 and left in place: removing it would let a waiting process
// lock a file nobody else sees.
package filelock
