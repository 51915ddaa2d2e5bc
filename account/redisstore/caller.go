package redisstore

import (
	"context"
	"fmt"
	"sync"

	"github.com/redis/go-redis/v9"

	"github.com/hallpass/hallpass/account"
)

// maxHomes bounds the cache of account homes (about 100 bytes an entry).
const maxHomes = 1 << 17

// homeCache remembers where accounts live. An account's home never changes
// (it is the tag of the username the account was created with; a rename
// keeps it) and account ids are never reused, so a remembered home is
// never wrong: at worst the account is gone and its records read empty.
type homeCache struct {
	mu sync.RWMutex
	m  map[string]string // account id -> tag
}

func (c *homeCache) get(accountID string) (home, bool) {
	c.mu.RLock()
	tag, ok := c.m[accountID]
	c.mu.RUnlock()
	return home{tag: tag, acc: accountID}, ok
}

// put remembers h; a full cache drops an arbitrary entry first (map order).
func (c *homeCache) put(h home) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = make(map[string]string)
	}
	if len(c.m) >= maxHomes {
		for id := range c.m {
			delete(c.m, id)
			break
		}
	}
	c.m[h.acc] = h.tag
}

// GetCaller returns the account and its device in one MULTI/EXEC on the
// account's slot: one round trip once the account's home is known (the
// first call for an account reads its index first).
func (s *Store) GetCaller(ctx context.Context, accountID, deviceID string) (account.Account, account.Device, error) {
	if !account.ValidID(account.AccountPrefix, accountID) || !account.ValidID(account.DevicePrefix, deviceID) {
		return account.Account{}, account.Device{}, account.ErrNotFound
	}
	ctx, cancel, err := s.begin(ctx)
	if err != nil {
		return account.Account{}, account.Device{}, err
	}
	defer cancel()
	h, ok := s.homes.get(accountID)
	if !ok {
		if h, err = s.lookupAccount(ctx, accountID); err != nil {
			return account.Account{}, account.Device{}, err
		}
		s.homes.put(h)
	}
	return s.callerAt(ctx, h, deviceID)
}

// callerAt reads the account at h with its recovery codes and the device
// deviceID, which must be the account's.
func (s *Store) callerAt(ctx context.Context, h home, deviceID string) (account.Account, account.Device, error) {
	var accF, devF *redis.MapStringStringCmd
	var codes *redis.StringSliceCmd
	_, err := s.c.TxPipelined(ctx, func(p redis.Pipeliner) error {
		accF = p.HGetAll(ctx, s.accountKey(h))
		codes = p.SMembers(ctx, s.recoveryKey(h))
		devF = p.HGetAll(ctx, s.deviceKey(h.tag, deviceID))
		return nil
	})
	if err != nil {
		return account.Account{}, account.Device{}, unavailable(err)
	}
	acc, err := decodeAccountAt(h, accF.Val(), codes.Val())
	if err != nil {
		return account.Account{}, account.Device{}, err
	}
	if len(devF.Val()) == 0 {
		return account.Account{}, account.Device{}, account.ErrNotFound
	}
	dev, err := decDevice(devF.Val())
	if err != nil {
		return account.Account{}, account.Device{}, corrupt(err)
	}
	if dev.ID != deviceID {
		return account.Account{}, account.Device{}, corrupt(fmt.Errorf("%w: device id", errCorrupt))
	}
	if dev.AccountID != acc.ID {
		return account.Account{}, account.Device{}, account.ErrNotFound
	}
	return acc, dev, nil
}
