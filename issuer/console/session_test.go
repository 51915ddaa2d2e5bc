package console

import (
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"testing"
	"time"
)

type failingReader struct{}

func (failingReader) Read([]byte) (int, error) { return 0, errors.New("no entropy") }

func TestSessionsTable(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	newTable := func() *sessions {
		return &sessions{ttl: time.Hour, idle: 15 * time.Minute, max: 2, m: map[[sha256.Size]byte]*session{}}
	}
	tests := []struct {
		name string
		run  func(t *testing.T, tb *sessions)
	}{
		{name: "full: a sign-in ends the oldest", run: func(t *testing.T, tb *sessions) {
			a, _ := tb.add(rand.Reader, &session{keyID: "a"}, t0)
			b, _ := tb.add(rand.Reader, &session{keyID: "b"}, t0.Add(time.Second))
			c, _ := tb.add(rand.Reader, &session{keyID: "c"}, t0.Add(2*time.Second))
			now := t0.Add(3 * time.Second)
			if _, ok := tb.get(a, now); ok {
				t.Error("the oldest survived")
			}
			for _, id := range []string{b, c} {
				if _, ok := tb.get(id, now); !ok {
					t.Error("a newer one was dropped")
				}
			}
		}},
		{name: "expired ones go first", run: func(t *testing.T, tb *sessions) {
			tb.add(rand.Reader, &session{keyID: "a"}, t0)
			tb.add(rand.Reader, &session{keyID: "b"}, t0)
			tb.add(rand.Reader, &session{keyID: "c"}, t0.Add(time.Hour))
			if n := tb.len(); n != 1 {
				t.Errorf("%d sessions held, want 1", n)
			}
		}},
		{name: "a clock set back ends it", run: func(t *testing.T, tb *sessions) {
			id, _ := tb.add(rand.Reader, &session{keyID: "a"}, t0)
			if _, ok := tb.get(id, t0.Add(-time.Second)); ok {
				t.Error("a session from the future is live")
			}
		}},
		{name: "tokens are distinct and the CSRF token is set", run: func(t *testing.T, tb *sessions) {
			s := &session{keyID: "a"}
			id, _ := tb.add(rand.Reader, s, t0)
			if s.csrf == "" || s.csrf == id || len(id) != 43 {
				t.Errorf("id %d chars, csrf %q", len(id), s.csrf)
			}
		}},
		{name: "a broken random source fails the sign-in", run: func(t *testing.T, tb *sessions) {
			if _, err := tb.add(failingReader{}, &session{keyID: "a"}, t0); err == nil || tb.len() != 0 {
				t.Errorf("add: %v, %d held", err, tb.len())
			}
		}},
		{name: "an empty expected token never matches", run: func(t *testing.T, _ *sessions) {
			if sameToken("", "") || !sameToken("x", "x") || sameToken("x", "y") {
				t.Error("sameToken")
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { tt.run(t, newTable()) })
	}
}
