package boltstore

import (
	"context"

	"github.com/hallpass/hallpass/account"
)

var _ account.Lister = (*Store)(nil)

// Accounts calls fn for every account, in one read transaction.
func (s *Store) Accounts(ctx context.Context, fn func(account.Account) error) error {
	return s.view(ctx, func(t *txn) error {
		return t.tx.Bucket(bucketAccounts).ForEach(func(_, raw []byte) error {
			if err := ctx.Err(); err != nil {
				return err
			}
			acc, err := decodeAccount(raw)
			if err != nil {
				return err
			}
			return fn(acc)
		})
	})
}
