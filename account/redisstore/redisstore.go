package redisstore

import (
	"cmp"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/hallpass/hallpass/account"
	"github.com/hallpass/hallpass/internal/redisclient"
	"github.com/hallpass/hallpass/internal/redispipe"
)

// Defaults for Options.
const (
	DefaultPrefix    = "hallpass"
	DefaultOpTimeout = 2 * time.Second
)

// Options configure New. The zero value is useful.
type Options struct {
	// Prefix starts every key (default DefaultPrefix). It must not contain
	// '{' or '}', which would change the hash slots.
	Prefix string
	// OpTimeout bounds every operation, together with the caller's
	// context (default DefaultOpTimeout).
	OpTimeout time.Duration
	// Rand is the source of operation ids (default crypto/rand).
	Rand io.Reader
	// ViewCache, above zero, lets GetAccountView answer from a cache of
	// up to that many accounts on this node, kept in step with Redis by
	// server-assisted client-side caching (see the package doc, "Account
	// views"). It needs Redis 7.0 or later and a *redis.Client of one node,
	// a Sentinel failover client together with ViewCacheSentinel, or a
	// *redis.ClusterClient; New refuses it with a Ring client. Zero:
	// GetAccountView reads Redis every time.
	ViewCache int
	// ViewCacheSentinel, when the client is a Sentinel failover client, is
	// the FailoverOptions it was made with: the view cache opens a
	// failover client of its own from them (one connection), which asks
	// the Sentinels for the master and leaves the old one when they
	// announce a failover, as the store's client does. New refuses
	// ViewCache on a failover client without it.
	ViewCacheSentinel *redis.FailoverOptions
	// ViewCachePoll is how often the cache's connection is read for
	// invalidations and checked (default DefaultViewCachePoll): a view
	// lags a change made on another node by at most about this long.
	ViewCachePoll time.Duration
}

// failoverAddr is the Addr in the options of go-redis's Sentinel failover
// clients (the address comes from the Sentinels at each dial).
const failoverAddr = "FailoverClient"

// Store is an account.Store on Redis.
type Store struct {
	c         redis.UniversalClient
	q         *redispipe.Pipe // single commands and scripts, pipelined with other callers'
	prefix    string
	opTimeout time.Duration
	rand      io.Reader
	closed    atomic.Bool
	homes     homeCache  // for GetCaller
	views     *viewCache // nil without Options.ViewCache
}

var _ account.Store = (*Store)(nil)

// New returns a Store on c. The caller owns c: Close does not close it, so
// one client can serve several stores. c must be built with
// ContextTimeoutEnabled (see the package doc).
func New(c redis.UniversalClient, opts Options) (*Store, error) {
	prefix, err := redisclient.Check(c, opts.Prefix, DefaultPrefix)
	if err != nil {
		return nil, fmt.Errorf("redisstore: %w", err)
	}
	opts.Prefix = prefix
	if opts.OpTimeout < 0 {
		return nil, errors.New("redisstore: negative OpTimeout")
	}
	if opts.OpTimeout == 0 {
		opts.OpTimeout = DefaultOpTimeout
	}
	if opts.Rand == nil {
		opts.Rand = rand.Reader
	}
	q, err := redispipe.New(c)
	if err != nil {
		return nil, fmt.Errorf("redisstore: %w", err)
	}
	s := &Store{c: c, q: q, prefix: opts.Prefix, opTimeout: opts.OpTimeout, rand: opts.Rand}
	if opts.ViewCache != 0 || opts.ViewCachePoll != 0 {
		if s.views, err = newViewCache(c, opts.ViewCacheSentinel, opts.ViewCache, opts.ViewCachePoll); err != nil {
			return nil, fmt.Errorf("redisstore: %w", err)
		}
	}
	return s, nil
}

// Close makes every later call fail with ErrUnavailable and stops the
// view cache. It does not close the client.
func (s *Store) Close() error {
	if s.closed.Swap(true) || s.views == nil {
		return nil
	}
	return s.views.close()
}

// Ping reports whether Redis answers.
func (s *Store) Ping(ctx context.Context) error {
	ctx, cancel, err := s.begin(ctx)
	if err != nil {
		return err
	}
	defer cancel()
	// A write, not PING: a Redis that answers but refuses writes
	// (stop-writes-on-bgsave-error, min-replicas-to-write, OOM) is not
	// ready.
	if err := s.c.Set(ctx, s.prefix+":{probe}:ping", time.Now().UTC().Format(time.RFC3339Nano), time.Minute).Err(); err != nil {
		return unavailable(err)
	}
	return nil
}

// begin checks the store and the context and bounds the operation.
func (s *Store) begin(ctx context.Context) (context.Context, context.CancelFunc, error) {
	if s.closed.Load() {
		return nil, nil, fmt.Errorf("%w: redisstore: closed", account.ErrUnavailable)
	}
	if err := ctx.Err(); err != nil {
		return nil, nil, unavailable(err)
	}
	ctx, cancel := context.WithTimeout(ctx, s.opTimeout)
	return ctx, cancel, nil
}

func unavailable(err error) error {
	return fmt.Errorf("%w: redisstore: %w", account.ErrUnavailable, err)
}

func corrupt(err error) error {
	return fmt.Errorf("%w: %w", account.ErrUnavailable, err)
}

// beginOp is begin for a write: it also draws the write's operation id.
func (s *Store) beginOp(ctx context.Context) (context.Context, context.CancelFunc, string, error) {
	ctx, cancel, err := s.begin(ctx)
	if err != nil {
		return nil, nil, "", err
	}
	op, err := s.newOp()
	if err != nil {
		cancel()
		return nil, nil, "", err
	}
	return ctx, cancel, op, nil
}

// beginAccountOp is beginOp for a write to an existing account: it also
// finds the account's home.
func (s *Store) beginAccountOp(ctx context.Context, accountID string) (context.Context, context.CancelFunc, string, home, error) {
	ctx, cancel, op, err := s.beginOp(ctx)
	if err != nil {
		return nil, nil, "", home{}, err
	}
	h, err := s.lookupAccount(ctx, accountID)
	if err != nil {
		cancel()
		return nil, nil, "", home{}, err
	}
	return ctx, cancel, op, h, nil
}

func (s *Store) newOp() (string, error) {
	b := make([]byte, 16)
	if _, err := io.ReadFull(s.rand, b); err != nil {
		return "", fmt.Errorf("%w: redisstore: random operation id: %w", account.ErrUnavailable, err)
	}
	return hex.EncodeToString(b), nil
}

// Keys. An account lives on the tag of the username key it was created
// with (its home); the account-level keys carry its id, so a renamed
// account and a newer one that took its first name share the slot without
// colliding. Ids tag their own index keys.

func nameTag(usernameKey string) string {
	h := sha256.Sum256([]byte(usernameKey))
	return "u:" + hex.EncodeToString(h[:16])
}

func (s *Store) key(tag, name string) string { return s.prefix + ":{" + tag + "}:" + name }
func (s *Store) locKey(id string) string     { return s.key(id, "loc") }
func (s *Store) nameKey(tag string) string   { return s.key(tag, "name") }
func (s *Store) accountKey(h home) string    { return s.key(h.tag, "account:"+h.acc) }
func (s *Store) devicesKey(h home) string    { return s.key(h.tag, "devices:"+h.acc) }
func (s *Store) recoveryKey(h home) string   { return s.key(h.tag, "recovery:"+h.acc) }
func (s *Store) linksKey(h home) string      { return s.key(h.tag, "links:"+h.acc) }
func (s *Store) tombKey(h home) string       { return s.key(h.tag, "tomb:"+h.acc) }
func (s *Store) linkKey(tag, hx string) string {
	return s.key(tag, "link:"+hx)
}
func (s *Store) deviceKey(tag, dev string) string {
	return s.key(tag, "device:"+dev)
}
func (s *Store) sessionKey(tag, dev string) string {
	return s.key(tag, "session:"+dev)
}

// linkLocID names the index of a link code digest (hex).
func linkLocID(hx string) string { return "lc:" + hx }

// home is where an account's records live: its tag and its id. Index keys
// hold it as "tag|id".
type home struct{ tag, acc string }

func (h home) String() string { return h.tag + "|" + h.acc }

// validTag reports whether tag is "u:" and 32 lowercase hex digits.
func validTag(tag string) bool {
	if len(tag) != 34 || !strings.HasPrefix(tag, "u:") {
		return false
	}
	_, err := hex.DecodeString(tag[2:])
	return err == nil && strings.ToLower(tag) == tag
}

func parseHome(v string) (home, error) {
	tag, acc, ok := strings.Cut(v, "|")
	if !ok || !validTag(tag) || !account.ValidID(account.AccountPrefix, acc) {
		return home{}, corrupt(fmt.Errorf("%w: index", errCorrupt))
	}
	return home{tag: tag, acc: acc}, nil
}

// lookup returns the home an account, device or link code index points at.
func (s *Store) lookup(ctx context.Context, id string) (home, error) {
	cmd := redis.NewStringCmd(ctx, "get", s.locKey(id))
	if err := s.q.Do(ctx, cmd); err != nil {
		return home{}, unavailable(err)
	}
	v, err := cmd.Result()
	if errors.Is(err, redis.Nil) {
		return home{}, account.ErrNotFound
	}
	if err != nil {
		return home{}, unavailable(err)
	}
	return parseHome(v)
}

// lookupAccount is lookup for an account id: the index must name it.
func (s *Store) lookupAccount(ctx context.Context, id string) (home, error) {
	h, err := s.lookup(ctx, id)
	if err == nil && h.acc != id {
		return home{}, corrupt(fmt.Errorf("%w: account index", errCorrupt))
	}
	return h, err
}

// claim points the index of id at h unless it points elsewhere; ttl > 0
// (ms) makes it expire. made reports whether this call created the index.
func (s *Store) claim(ctx context.Context, id string, h home, ttl int64) (made bool, err error) {
	cmd := s.claimCmd(ctx, id, h, ttl)
	if err := s.q.Do(ctx, cmd); err != nil {
		return false, unavailable(err)
	}
	return claimed(cmd, h)
}

// claimAll is claim (no expiry) for each of ids, sent together: the index
// keys live on their own cluster slots, so the claims are independent
// commands, and one wait serves them all. made lists the indexes this call
// created, also when err is not nil, so the caller can release them.
func (s *Store) claimAll(ctx context.Context, h home, ids ...string) (made []string, err error) {
	cmds := make([]redis.Cmder, len(ids))
	for i, id := range ids {
		cmds[i] = s.claimCmd(ctx, id, h, 0)
	}
	if derr := s.q.Do(ctx, cmds...); derr != nil {
		return nil, unavailable(derr)
	}
	for i, cmd := range cmds {
		ok, cerr := claimed(cmd.(*redis.StringCmd), h)
		if ok {
			made = append(made, ids[i])
		}
		err = cmp.Or(err, cerr)
	}
	return made, err
}

// claimCmd sets the index of id to h unless it exists, and returns the
// value it had: SET NX GET (Redis 7.0 and later), one command where a
// script did a GET and a SET. A home is never empty.
func (s *Store) claimCmd(ctx context.Context, id string, h home, ttl int64) *redis.StringCmd {
	args := []any{"set", s.locKey(id), h.String(), "nx", "get"}
	if ttl > 0 {
		args = append(args, "px", ttl)
	}
	return redis.NewStringCmd(ctx, args...)
}

// claimed reads a claimCmd's reply: made when the index did not exist
// (a nil reply), ErrExists when it points elsewhere.
func claimed(cmd *redis.StringCmd, h home) (made bool, err error) {
	prev, err := cmd.Result()
	switch {
	case errors.Is(err, redis.Nil):
		return true, nil
	case err != nil:
		return false, unavailable(err)
	case prev != h.String():
		return false, account.ErrExists
	}
	return false, nil
}

// release undoes index claims after the main step refused, or drops the
// indexes of records that are gone. Best effort: a failure leaves a
// dangling index, which names nothing.
func (s *Store) release(ctx context.Context, h home, ids ...string) {
	for _, id := range ids {
		_ = s.run(ctx, releaseLoc, []string{s.locKey(id)}, h.String()).Err()
	}
}

func scriptResult(res string) error {
	switch res {
	case "ok":
		return nil
	case "taken":
		return account.ErrUsernameTaken
	case "exists":
		return account.ErrExists
	case "notfound":
		return account.ErrNotFound
	case "banned":
		return account.ErrBanned
	case "toomany":
		return account.ErrTooMany
	case "ended":
		return account.ErrSessionEnded
	case "invalid":
		return invalid("recovery salt differs from the account's")
	}
	return corrupt(fmt.Errorf("redisstore: unexpected script reply %q", res))
}

// AddDevice stores another device and session of an existing, not banned
// account.
func (s *Store) AddDevice(ctx context.Context, dev account.Device, sess account.Session) error {
	if err := account.ValidateNewDevice(&dev, &sess); err != nil {
		return err
	}
	ctx, cancel, op, h, err := s.beginAccountOp(ctx, dev.AccountID)
	if err != nil {
		return err
	}
	defer cancel()
	made, err := s.claim(ctx, dev.ID, h, 0)
	if err != nil {
		return err
	}
	args := []any{op, dev.AccountID, dev.ID}
	args = append(args, deviceFields(dev, op)...)
	args = append(args, sessionFields(sess, op)...)
	keys := []string{s.accountKey(h), s.devicesKey(h), s.deviceKey(h.tag, dev.ID), s.sessionKey(h.tag, dev.ID)}
	res, err := s.run(ctx, addDevice, keys, args...).Text()
	if err != nil {
		return unavailable(err)
	}
	if err := scriptResult(res); err != nil {
		if made {
			s.release(ctx, h, dev.ID)
		}
		return err
	}
	return nil
}

// hmget is HMGET through the pipe.
func (s *Store) hmget(ctx context.Context, key string, fields ...string) ([]any, error) {
	args := make([]any, 0, 2+len(fields))
	args = append(args, "hmget", key)
	for _, f := range fields {
		args = append(args, f)
	}
	cmd := redis.NewSliceCmd(ctx, args...)
	if err := s.q.Do(ctx, cmd); err != nil {
		return nil, err
	}
	return cmd.Result()
}

func (s *Store) hgetall(ctx context.Context, key string) (map[string]string, error) {
	cmd := redis.NewMapStringStringCmd(ctx, "hgetall", key)
	if err := s.q.Do(ctx, cmd); err != nil {
		return nil, unavailable(err)
	}
	m, err := cmd.Result()
	if err != nil {
		return nil, unavailable(err)
	}
	if len(m) == 0 {
		return nil, account.ErrNotFound
	}
	return m, nil
}

// accountAt reads the account at h with its recovery codes. A record
// that is not there, or not h's, is ErrNotFound.
func (s *Store) accountAt(ctx context.Context, h home) (account.Account, error) {
	fields := redis.NewMapStringStringCmd(ctx, "hgetall", s.accountKey(h))
	codes := redis.NewStringSliceCmd(ctx, "smembers", s.recoveryKey(h))
	if err := s.q.Do(ctx, fields, codes); err != nil {
		return account.Account{}, unavailable(err)
	}
	if err := errors.Join(fields.Err(), codes.Err()); err != nil {
		return account.Account{}, unavailable(err)
	}
	return decodeAccountAt(h, fields.Val(), codes.Val())
}

// decodeAccountAt decodes the account record read at h (fields empty: no
// account) with its recovery codes.
func decodeAccountAt(h home, fields map[string]string, codes []string) (account.Account, error) {
	if len(fields) == 0 {
		return account.Account{}, account.ErrNotFound
	}
	acc, err := decAccount(fields, codes)
	if err != nil {
		return account.Account{}, corrupt(err)
	}
	if acc.ID != h.acc {
		return account.Account{}, corrupt(fmt.Errorf("%w: account id", errCorrupt))
	}
	return acc, nil
}

// GetAccount returns the account with id.
func (s *Store) GetAccount(ctx context.Context, id string) (account.Account, error) {
	return s.atAccountHome(ctx, id, s.accountAt)
}

// atAccountHome runs read, under the operation's bound, on the home of the
// account id (the index, or the home cache once known).
func (s *Store) atAccountHome(ctx context.Context, id string, read func(context.Context, home) (account.Account, error)) (account.Account, error) {
	if !account.ValidID(account.AccountPrefix, id) {
		return account.Account{}, account.ErrNotFound
	}
	ctx, cancel, err := s.begin(ctx)
	if err != nil {
		return account.Account{}, err
	}
	defer cancel()
	h, err := s.lookupHome(ctx, id)
	if err != nil {
		return account.Account{}, err
	}
	if h.acc != id {
		return account.Account{}, corrupt(fmt.Errorf("%w: account index", errCorrupt))
	}
	return read(ctx, h)
}

// GetAccountByUsername returns the account that holds usernameKey: its
// name record, then the account it names, which must carry the key (a
// rename in progress or cut short names nobody).
func (s *Store) GetAccountByUsername(ctx context.Context, usernameKey string) (account.Account, error) {
	if usernameKey == "" || len(usernameKey) > account.MaxField {
		return account.Account{}, account.ErrNotFound
	}
	ctx, cancel, err := s.begin(ctx)
	if err != nil {
		return account.Account{}, err
	}
	defer cancel()
	rec, err := s.hmget(ctx, s.nameKey(nameTag(usernameKey)), "account_id", "home", "until")
	if err != nil {
		return account.Account{}, unavailable(err)
	}
	accID, _ := rec[0].(string)
	tag, _ := rec[1].(string)
	until, _ := rec[2].(string)
	if accID == "" || until != zeroTime {
		return account.Account{}, account.ErrNotFound // free or held
	}
	if !validTag(tag) || !account.ValidID(account.AccountPrefix, accID) {
		return account.Account{}, corrupt(fmt.Errorf("%w: name record", errCorrupt))
	}
	acc, err := s.accountAt(ctx, home{tag: tag, acc: accID})
	if err != nil {
		return account.Account{}, err
	}
	if acc.UsernameKey != usernameKey {
		return account.Account{}, account.ErrNotFound
	}
	return acc, nil
}

// GetDevice returns the device with id.
func (s *Store) GetDevice(ctx context.Context, id string) (account.Device, error) {
	return getDeviceRecord(ctx, s, id, s.deviceKey, decDevice,
		func(d account.Device) string { return d.ID }, "device id")
}

// GetSession returns the session of the device.
func (s *Store) GetSession(ctx context.Context, deviceID string) (account.Session, error) {
	return getDeviceRecord(ctx, s, deviceID, s.sessionKey, decSession,
		func(sess account.Session) string { return sess.DeviceID }, "session id")
}

// getDeviceRecord reads the hash that key names for device id (its device
// or its session), decodes it with dec, and checks that idOf of the record
// is id: otherwise the store is corrupt (what names the field).
func getDeviceRecord[T any](ctx context.Context, s *Store, id string, key func(tag, dev string) string,
	dec func(map[string]string) (T, error), idOf func(T) string, what string) (T, error) {
	var zero T
	if !account.ValidID(account.DevicePrefix, id) {
		return zero, account.ErrNotFound
	}
	ctx, cancel, err := s.begin(ctx)
	if err != nil {
		return zero, err
	}
	defer cancel()
	h, err := s.lookupHome(ctx, id)
	if err != nil {
		return zero, err
	}
	m, err := s.hgetall(ctx, key(h.tag, id))
	if err != nil {
		return zero, err
	}
	v, err := dec(m)
	if err != nil {
		return zero, corrupt(err)
	}
	if idOf(v) != id {
		return zero, corrupt(fmt.Errorf("%w: %s", errCorrupt, what))
	}
	return v, nil
}

// ListDevices returns every device of the account, ordered by Created then
// ID.
func (s *Store) ListDevices(ctx context.Context, accountID string) ([]account.Device, error) {
	if !account.ValidID(account.AccountPrefix, accountID) {
		return nil, account.ErrNotFound
	}
	ctx, cancel, err := s.begin(ctx)
	if err != nil {
		return nil, err
	}
	defer cancel()
	h, err := s.lookupAccount(ctx, accountID)
	if err != nil {
		return nil, err
	}
	var idCmd *redis.StringCmd
	var membersCmd *redis.StringSliceCmd
	_, err = s.c.Pipelined(ctx, func(p redis.Pipeliner) error {
		idCmd = p.HGet(ctx, s.accountKey(h), "id")
		membersCmd = p.SMembers(ctx, s.devicesKey(h))
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return nil, unavailable(err)
	}
	if id, err := idCmd.Result(); errors.Is(err, redis.Nil) || id != accountID {
		return nil, account.ErrNotFound
	}
	ids := membersCmd.Val()
	cmds := make([]*redis.MapStringStringCmd, len(ids))
	if len(ids) > 0 {
		_, err = s.c.Pipelined(ctx, func(p redis.Pipeliner) error {
			for i, id := range ids {
				cmds[i] = p.HGetAll(ctx, s.deviceKey(h.tag, id))
			}
			return nil
		})
		if err != nil {
			return nil, unavailable(err)
		}
	}
	devs := make([]account.Device, 0, len(ids))
	for _, cmd := range cmds {
		dev, err := decDevice(cmd.Val())
		if err != nil {
			return nil, corrupt(err)
		}
		devs = append(devs, dev)
	}
	slices.SortFunc(devs, func(a, b account.Device) int {
		if c := a.Created.Compare(b.Created); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	return devs, nil
}

// Refresh applies the single-use rule in one script.
func (s *Store) Refresh(ctx context.Context, req account.RefreshRequest) (account.RefreshResult, error) {
	if !account.ValidID(account.DevicePrefix, req.DeviceID) {
		return account.RefreshResult{}, account.ErrNotFound
	}
	if err := account.ValidateRefresh(req); err != nil {
		return account.RefreshResult{}, err
	}
	ctx, cancel, op, err := s.beginOp(ctx)
	if err != nil {
		return account.RefreshResult{}, err
	}
	defer cancel()
	h, err := s.lookupHome(ctx, req.DeviceID)
	if err != nil {
		return account.RefreshResult{}, err
	}
	cutoff := ""
	if req.Idle > 0 {
		cutoff = encTime(req.Now.Add(-req.Idle))
	}
	keys := []string{s.accountKey(h), s.deviceKey(h.tag, req.DeviceID), s.sessionKey(h.tag, req.DeviceID)}
	reply, err := s.run(ctx, refresh, keys,
		op, strconv.FormatUint(req.Counter, 10), strconv.FormatUint(req.Counter+1, 10),
		encTime(req.Now), cutoff, encTime(req.Now.Add(req.Grace)), string(req.Successor), zeroTime, deadlineArg(ctx),
		hex.EncodeToString(req.RetryDigest)).Slice()
	if err != nil {
		return account.RefreshResult{}, unavailable(err)
	}
	outcome, _ := reply[0].(string)
	var succ []byte
	if len(reply) > 1 {
		str, _ := reply[1].(string)
		succ = []byte(str)
	}
	switch outcome {
	case "advanced":
		return account.RefreshResult{Outcome: account.RefreshAdvanced, Successor: succ}, nil
	case "grace":
		return account.RefreshResult{Outcome: account.RefreshGrace, Successor: succ}, nil
	case "retried":
		return account.RefreshResult{Outcome: account.RefreshRetried, Successor: succ}, nil
	case "reused":
		return account.RefreshResult{Outcome: account.RefreshReused}, nil
	case "rejected":
		return account.RefreshResult{Outcome: account.RefreshRejected}, nil
	case "notfound":
		return account.RefreshResult{}, account.ErrNotFound
	case "late":
		return account.RefreshResult{}, fmt.Errorf("%w: redisstore: the refresh reached Redis after its deadline; nothing changed", account.ErrUnavailable)
	}
	return account.RefreshResult{}, corrupt(fmt.Errorf("redisstore: unexpected refresh reply %q", outcome))
}

// deadlineArg is ctx's deadline in Unix microseconds, "" without one. It is
// compared with the Redis server's clock (TIME), so it assumes the clocks
// of the issuer and Redis agree within a fraction of the store timeout
// (NTP); a Redis clock behind only lets a late script through, as before.
func deadlineArg(ctx context.Context) string {
	dl, ok := ctx.Deadline()
	if !ok {
		return ""
	}
	return strconv.FormatInt(dl.UnixMicro(), 10)
}

// EndSession ends the device's session and revokes the device.
func (s *Store) EndSession(ctx context.Context, deviceID string, at time.Time) error {
	if !account.ValidID(account.DevicePrefix, deviceID) {
		return account.ErrNotFound
	}
	if at.IsZero() {
		return invalid("end time")
	}
	ctx, cancel, err := s.begin(ctx)
	if err != nil {
		return err
	}
	defer cancel()
	h, err := s.lookup(ctx, deviceID)
	if err != nil {
		return err
	}
	keys := []string{s.deviceKey(h.tag, deviceID), s.sessionKey(h.tag, deviceID)}
	res, err := s.run(ctx, endSession, keys, encTime(at), zeroTime).Text()
	if err != nil {
		return unavailable(err)
	}
	return scriptResult(res)
}

// SetBanned bans or unbans the account.
func (s *Store) SetBanned(ctx context.Context, accountID string, banned bool) error {
	if !account.ValidID(account.AccountPrefix, accountID) {
		return account.ErrNotFound
	}
	ctx, cancel, err := s.begin(ctx)
	if err != nil {
		return err
	}
	defer cancel()
	h, err := s.lookupAccount(ctx, accountID)
	if err != nil {
		return err
	}
	res, err := s.run(ctx, setBanned, []string{s.accountKey(h)}, accountID, flag(banned)).Text()
	if err != nil {
		return unavailable(err)
	}
	return scriptResult(res)
}

func isNil(err error) bool { return errors.Is(err, redis.Nil) }

func isUnavailable(err error) bool { return errors.Is(err, account.ErrUnavailable) }
