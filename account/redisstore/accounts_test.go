package redisstore_test

import (
	"testing"

	"github.com/hallpass/hallpass/account"
	"github.com/hallpass/hallpass/account/redisstore"
	"github.com/hallpass/hallpass/internal/redistest"
)

// TestAccountsPrefixIsLiteral: Accounts finds the store's accounts
// whatever its Prefix, and no other store's. Reproduction before: the
// prefix went into the SCAN pattern as it was, so with glob characters
// in it ("hp[1]" matches "hp1", not itself) the walk listed nothing and
// a username report after a policy change saw no names.
func TestAccountsPrefixIsLiteral(t *testing.T) {
	t.Parallel()
	addr := redistest.Start(t).Addr()
	prefixes := []string{"hp[1]", "hp1", `hp\x`, "hp?"}
	ids := map[string]string{}
	stores := map[string]*redisstore.Store{}
	for _, p := range prefixes {
		s, err := redisstore.New(newClient(t, addr), redisstore.Options{Prefix: p})
		if err != nil {
			t.Fatal(err)
		}
		acc, dev, sess := fixture(t, "alice")
		mustNil(t, "CreateAccount", s.CreateAccount(t.Context(), acc, dev, sess))
		ids[p], stores[p] = acc.ID, s
	}
	for _, p := range prefixes {
		var got []string
		err := stores[p].Accounts(t.Context(), func(a account.Account) error {
			got = append(got, a.ID)
			return nil
		})
		if err != nil || len(got) != 1 || got[0] != ids[p] {
			t.Errorf("Accounts with prefix %q = %q, %v; want [%s]", p, got, err, ids[p])
		}
	}
}
