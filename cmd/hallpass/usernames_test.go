package main

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/hallpass/hallpass/account"
	"github.com/hallpass/hallpass/account/boltstore"
)

// TestUsernamesReport: names registered under the earlier key scheme (the
// lower-cased name) that look alike under the UTS #39 skeletons are
// reported as one collision, and nothing is changed.
func TestUsernamesReport(t *testing.T) {
	path := filepath.Join(t.TempDir(), "hallpass.db")
	st, err := boltstore.Open(path, boltstore.Options{})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC()
	for _, name := range []string{"alice159", "аӏісе159", "bob"} { // the second is Cyrillic
		accID, _ := account.NewID(account.AccountPrefix, nil)
		devID, _ := account.NewID(account.DevicePrefix, nil)
		acc := account.Account{ID: accID, Username: name, UsernameKey: name, Created: now}
		dev := account.Device{ID: devID, AccountID: accID, JKT: "jkt", Created: now, LastUsed: now}
		sess := account.Session{DeviceID: devID, AccountID: accID, JKT: "jkt", Created: now, LastUsed: now, Expires: now.Add(time.Hour)}
		if err := st.CreateAccount(context.Background(), acc, dev, sess); err != nil {
			t.Fatal(err)
		}
	}
	st.Close()
	r := runCmd(t, nil, "usernames", "report", "--store", "bolt:"+path)
	if r.err != nil {
		t.Fatalf("report: %v\n%s", r.err, r.stderr)
	}
	rep := r.json(t)
	coll, _ := rep["Collisions"].([]any)
	if rep["Names"] != float64(3) || len(coll) != 1 {
		t.Fatalf("report %s", r.stdout)
	}
	if names, _ := coll[0].(map[string]any)["Names"].([]any); len(names) != 2 {
		t.Fatalf("collision %v", coll[0])
	}
}
