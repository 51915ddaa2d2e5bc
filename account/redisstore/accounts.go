package redisstore

import (
	"context"
	"errors"
	"strings"
	"sync"

	"github.com/redis/go-redis/v9"

	"github.com/hallpass/hallpass/account"
)

var _ account.Lister = (*Store)(nil)

// Accounts calls fn for every account: a SCAN of the account records (on
// every master of a cluster), each read as GetAccount reads it. Accounts
// deleted meanwhile are skipped.
func (s *Store) Accounts(ctx context.Context, fn func(account.Account) error) error {
	var mu sync.Mutex
	scan := func(ctx context.Context, c redis.Cmdable) error {
		iter := c.Scan(ctx, 0, globEscape(s.prefix)+":{u:*}:account:*", 500).Iterator()
		for iter.Next(ctx) {
			h, ok := s.homeOf(iter.Val())
			if !ok {
				continue
			}
			acc, err := s.accountAt(ctx, h)
			if errors.Is(err, account.ErrNotFound) {
				continue
			}
			if err != nil {
				return err
			}
			mu.Lock()
			err = fn(acc)
			mu.Unlock()
			if err != nil {
				return err
			}
		}
		if err := iter.Err(); err != nil {
			return unavailable(err)
		}
		return nil
	}
	if cc, ok := s.c.(*redis.ClusterClient); ok {
		return cc.ForEachMaster(ctx, func(ctx context.Context, c *redis.Client) error { return scan(ctx, c) })
	}
	return scan(ctx, s.c)
}

// globEscape quotes the characters a SCAN pattern treats specially, so
// that the prefix matches only itself.
func globEscape(s string) string {
	var b strings.Builder
	for _, r := range s {
		if strings.ContainsRune(`*?[]\`, r) {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}

// homeOf parses P:{tag}:account:<acc>.
func (s *Store) homeOf(key string) (home, bool) {
	rest, ok := strings.CutPrefix(key, s.prefix+":{")
	if !ok {
		return home{}, false
	}
	tag, acc, ok := strings.Cut(rest, "}:account:")
	if !ok || !validTag(tag) || !account.ValidID(account.AccountPrefix, acc) {
		return home{}, false
	}
	return home{tag: tag, acc: acc}, true
}
