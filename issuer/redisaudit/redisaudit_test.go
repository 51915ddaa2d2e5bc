package redisaudit_test

import (
	"context"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/hallpass/hallpass/internal/redistest"
	"github.com/hallpass/hallpass/issuer"
	"github.com/hallpass/hallpass/issuer/redisaudit"
)

func TestRecordAndTrim(t *testing.T) {
	srv := redistest.Start(t)
	c := redis.NewClient(&redis.Options{Addr: srv.Addr(), ContextTimeoutEnabled: true})
	t.Cleanup(func() { c.Close() })
	s, err := redisaudit.New(c, redisaudit.Options{MaxLen: 10})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	rec := issuer.AuditRecord{
		Time: time.Now(), Who: "ops", Action: "DELETE /v1/admin/devices/:id",
		Targets: map[string]string{"device_id": "dev_x"}, Status: 204, Result: "ok", RequestID: "r1", ClientIP: "127.0.0.1",
	}
	if err := s.Record(ctx, rec); err != nil {
		t.Fatal(err)
	}
	msgs, err := c.XRange(ctx, s.Key(), "-", "+").Result()
	if err != nil || len(msgs) != 1 {
		t.Fatalf("%v %v", msgs, err)
	}
	v := msgs[0].Values
	if v["who"] != "ops" || v["action"] != rec.Action || v["targets"] != `{"device_id":"dev_x"}` || v["status"] != "204" || v["result"] != "ok" {
		t.Fatalf("fields %v", v)
	}
	if _, ok := v["dropped"]; ok {
		t.Fatalf("dropped on a record that dropped nothing: %v", v)
	}
	// A sampled refused call says how many the node left out before it.
	refused := issuer.AuditRecord{Time: time.Now(), Who: "-", Action: "GET /v1/admin/revocations", Status: 401,
		Result: "unauthorized", RequestID: "r2", ClientIP: "10.0.0.1", Dropped: 9940}
	if err := s.Record(ctx, refused); err != nil {
		t.Fatal(err)
	}
	last, err := c.XRevRangeN(ctx, s.Key(), "+", "-", 1).Result()
	if err != nil || len(last) != 1 || last[0].Values["dropped"] != "9940" || last[0].Values["who"] != "-" {
		t.Fatalf("refused record %v %v", last, err)
	}
	for i := 0; i < 1000; i++ {
		if err := s.Record(ctx, rec); err != nil {
			t.Fatal(err)
		}
	}
	if n, _ := c.XLen(ctx, s.Key()).Result(); n > 200 {
		t.Fatalf("stream not trimmed: %d", n)
	}
	if _, err := redisaudit.New(c, redisaudit.Options{Prefix: "a{b}"}); err == nil {
		t.Fatal("braces accepted")
	}
}

// TestRecent reads records back newest first, with every field as
// written, as GET /v1/admin/audit and the console show them.
func TestRecent(t *testing.T) {
	srv := redistest.Start(t)
	c := redis.NewClient(&redis.Options{Addr: srv.Addr(), ContextTimeoutEnabled: true})
	t.Cleanup(func() { c.Close() })
	s, err := redisaudit.New(c, redisaudit.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	at := time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC)
	recs := []issuer.AuditRecord{
		{Time: at, Who: "ops", Action: "DELETE /v1/admin/devices/:id", Targets: map[string]string{"device_id": "dev_x"},
			Status: 204, Result: "ok", RequestID: "r1", ClientIP: "127.0.0.1"},
		{Time: at.Add(time.Second), Who: "-", Action: "GET /v1/admin/whoami", Status: 401, Result: "unauthorized",
			RequestID: "r2", ClientIP: "10.0.0.1", Dropped: 3},
	}
	for _, r := range recs {
		if err := s.Record(ctx, r); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		name string
		n    int
		want []issuer.AuditRecord
	}{
		{name: "all, newest first", n: 10, want: []issuer.AuditRecord{recs[1], recs[0]}},
		{name: "only the newest", n: 1, want: []issuer.AuditRecord{recs[1]}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := s.Recent(ctx, tt.n)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tt.want) {
				t.Fatalf("got %d records, want %d", len(got), len(tt.want))
			}
			for i := range got {
				g, w := got[i], tt.want[i]
				if !g.Time.Equal(w.Time) || g.Who != w.Who || g.Action != w.Action || g.Status != w.Status ||
					g.Result != w.Result || g.RequestID != w.RequestID || g.ClientIP != w.ClientIP ||
					g.Dropped != w.Dropped || len(g.Targets) != len(w.Targets) || g.Targets["device_id"] != w.Targets["device_id"] {
					t.Errorf("record %d = %+v, want %+v", i, g, w)
				}
			}
		})
	}
}
