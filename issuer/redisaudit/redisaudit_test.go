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
