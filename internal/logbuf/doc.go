// Package logbuf is a log sink for tests: a bytes.Buffer that a server's
// goroutines write to while the test reads it. It trusts nothing and holds
// only what it is given.
package logbuf
