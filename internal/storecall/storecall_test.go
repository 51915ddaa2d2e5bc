package storecall

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestRun(t *testing.T) {
	defer goleak.VerifyNone(t)
	boom := errors.New("boom")
	release := make(chan struct{})
	tests := []struct {
		name    string
		fn      func(ctx context.Context) error
		wantIs  error
		wantSub string
	}{
		{name: "ok", fn: func(context.Context) error { return nil }},
		{name: "error passes through", fn: func(context.Context) error { return boom }, wantIs: boom},
		{name: "hung call abandoned", fn: func(context.Context) error { <-release; return nil }, wantIs: context.DeadlineExceeded, wantSub: "store call op abandoned"},
		{name: "panic is an error", fn: func(context.Context) error { panic("kaput") }, wantSub: "panicked: kaput"},
		{name: "panic of another type shows the type only", fn: func(context.Context) error { panic(struct{ secret string }{"s3cret"}) }, wantSub: "panicked: struct"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := Run(context.Background(), 50*time.Millisecond, "op", tt.fn)
			if tt.wantIs == nil && tt.wantSub == "" {
				if err != nil {
					t.Fatalf("err = %v", err)
				}
				return
			}
			if err == nil {
				t.Fatal("no error")
			}
			if tt.wantIs != nil && !errors.Is(err, tt.wantIs) {
				t.Fatalf("err = %v, want %v", err, tt.wantIs)
			}
			if !strings.Contains(err.Error(), tt.wantSub) || strings.Contains(err.Error(), "s3cret") {
				t.Fatalf("err = %q", err)
			}
		})
	}
	close(release)
}
