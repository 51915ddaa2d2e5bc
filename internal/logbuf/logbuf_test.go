package logbuf_test

import (
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/hallpass/hallpass/internal/logbuf"
)

// TestConcurrentWrites: every line written from many goroutines is there,
// whole, and reading while they write is safe (go test -race).
func TestConcurrentWrites(t *testing.T) {
	var b logbuf.Buffer
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 100 {
				fmt.Fprintf(&b, "line %d %d\n", g, i)
				_ = b.String()
			}
		})
	}
	wg.Wait()
	if n := strings.Count(b.String(), "\n"); n != 800 {
		t.Fatalf("%d lines, want 800", n)
	}
}
