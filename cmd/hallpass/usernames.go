package main

import (
	"context"
	"fmt"
	"iter"
	"strings"

	"github.com/hallpass/hallpass/account"
	"github.com/hallpass/hallpass/account/boltstore"
	"github.com/hallpass/hallpass/account/redisstore"
)

func usernamesGroup() group {
	return group{
		name:    "usernames",
		summary: "maintenance of the registered usernames",
		cmds:    []command{{usernamesReportDoc, usernamesReport}},
	}
}

var usernamesReportDoc = cmdDoc{
	name:    "usernames report",
	args:    "--store bolt:PATH|redis://...",
	summary: "report which registered names the current username policy maps to other keys, or makes look alike",
	detail: `Reads every account of the store and computes each name's key under the
current policy (UTS #39 confusable skeletons): how many keys changed,
which names would collide (they look alike: someone has to decide, a rename
or keeping the old key), and which names the policy now refuses. It changes
and deletes nothing. A bolt store is locked by a running serve: stop it
first, or read a copy of the file.`,
	examples: []string{
		"hallpass usernames report --store bolt:./data/hallpass.db",
		"hallpass usernames report --store redis://127.0.0.1:6379/0",
	},
}

func usernamesReport(ctx context.Context, args []string, e *env) error {
	fs := newFlagSet(usernamesReportDoc, e)
	store := fs.String("store", e.getenv("HALLPASS_STORE"), "the account store, as serve's --store [HALLPASS_STORE]")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	l, closeStore, err := openLister(*store)
	if err != nil {
		return err
	}
	defer closeStore()
	var names []account.RegisteredName
	if err := l.Accounts(ctx, func(a account.Account) error {
		names = append(names, account.RegisteredName{AccountID: a.ID, Display: a.Username, Key: a.UsernameKey})
		return nil
	}); err != nil {
		return fmt.Errorf("reading the accounts: %w", err)
	}
	var seq iter.Seq[account.RegisteredName] = func(yield func(account.RegisteredName) bool) {
		for _, n := range names {
			if !yield(n) {
				return
			}
		}
	}
	return writeJSON(e, account.DefaultUsernamePolicy().ReportKeys(seq))
}

// openLister opens the account store named like serve's --store, read
// for a walk of its accounts.
func openLister(s string) (account.Lister, func(), error) {
	if path, ok := strings.CutPrefix(s, "bolt:"); ok {
		st, err := boltstore.Open(path, boltstore.Options{})
		if err != nil {
			return nil, nil, err
		}
		return st, func() { st.Close() }, nil
	}
	if s == "" {
		return nil, nil, fmt.Errorf("%w: give --store", errUsage)
	}
	c, _, err := redisClient(s)
	if err != nil {
		return nil, nil, err
	}
	st, err := redisstore.New(c, redisstore.Options{})
	if err != nil {
		c.Close()
		return nil, nil, err
	}
	return st, func() { st.Close(); c.Close() }, nil
}
