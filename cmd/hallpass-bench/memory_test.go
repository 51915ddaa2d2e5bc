package main

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"
)

// TestMemory fills bbolt with 300 accounts and two mirrors with 20,000
// entries, each in a child process (this test binary re-executed), and
// checks the figures hang together.
func TestMemory(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var out, errb bytes.Buffer
	code := run(ctx, []string{"-memory", "-accounts", "300", "-entries", "20000", "-tokens", "20000", "-json"}, &out, &errb)
	if code != 0 {
		t.Fatalf("exit %d; stderr: %s", code, errb.Bytes())
	}
	var rep MemoryReport
	if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
		t.Fatalf("output is not JSON: %v\n%s", err, out.Bytes())
	}
	if len(rep.Results) != 3 {
		t.Fatalf("%d results, want 3: %+v", len(rep.Results), rep.Results)
	}
	for _, r := range rep.Results {
		if r.Before.RSS <= 0 || r.After.RSS <= 0 || r.After.HWM < r.After.RSS || r.Before.Heap <= 0 || r.After.Heap <= r.Before.Heap {
			t.Errorf("%s %d: samples %+v -> %+v", r.Kind, r.N, r.Before, r.After)
		}
	}
	acc, dev, tok := rep.Results[0], rep.Results[1], rep.Results[2]
	if acc.Kind != "accounts" || acc.N != 300 || acc.FileBytes <= 0 || acc.Reopened == nil || acc.Reopened.RSS <= 0 {
		t.Errorf("accounts: %+v", acc)
	}
	if dev.Kind != "devices" || dev.Len != 20000 || tok.Kind != "tokens" || tok.Len != 20000 {
		t.Errorf("mirrors: %+v, %+v", dev, tok)
	}
	// A device entry holds at least its id (30 bytes) and its slot.
	if per := (dev.After.Heap - dev.Before.Heap) / int64(dev.N); per < 40 || per > 2000 {
		t.Errorf("device entry: %d heap bytes each", per)
	}
	var table bytes.Buffer
	printMemory(&table, &rep)
	if !strings.Contains(table.String(), "mirror device entries") || !strings.Contains(table.String(), "bbolt accounts") {
		t.Errorf("table:\n%s", table.String())
	}
	t.Log("\n" + table.String())
}

func TestMemoryFlags(t *testing.T) {
	for _, args := range [][]string{
		{"-memory", "-accounts", "-1"},
		{"-memory", "-entries", "x"},
		{"-memory", "-accounts", "20000000"},
		{"-memory", "-timeout", "2h"},
		{"-memory", "extra"},
	} {
		var out, errb bytes.Buffer
		if code := run(context.Background(), args, &out, &errb); code != 2 {
			t.Errorf("%q: exit %d, want 2", args, code)
		}
	}
	if err := runMemoryChild(context.Background(), "nonsense", &bytes.Buffer{}); err == nil {
		t.Error("runMemoryChild(nonsense): no error")
	}
}
