package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/hallpass/hallpass/account"
	"github.com/hallpass/hallpass/account/boltstore"
	"github.com/hallpass/hallpass/account/redisstore"
	"github.com/hallpass/hallpass/dpop"
	"github.com/hallpass/hallpass/dpop/redisreplay"
	"github.com/hallpass/hallpass/issuer"
	"github.com/hallpass/hallpass/issuer/redisaudit"
	"github.com/hallpass/hallpass/ratelimit"
	"github.com/hallpass/hallpass/ratelimit/redislimit"
	"github.com/hallpass/hallpass/revocation"
	revbolt "github.com/hallpass/hallpass/revocation/boltstore"
	revredis "github.com/hallpass/hallpass/revocation/redisstore"
)

// backend is the store and what shares its engine: the DPoP replay cache
// and the signup rate limiter (in memory for bolt; in Redis for Redis, so
// several nodes share one replay window and one budget).
type backend struct {
	kind    string
	store   account.Store
	replay  dpop.ReplayCache
	limiter ratelimit.Limiter
	// revocations is the revocation store on the same engine: bbolt
	// (revocation.db beside the account file) or Redis.
	revocations revocation.Store
	// audit receives admin audit records besides the log (Redis: a
	// stream; bbolt: the last 1000 in memory), read back by GET
	// /v1/admin/audit and the console.
	audit issuer.AuditSink
	redis redis.UniversalClient // nil on bbolt
	// failover is what a Sentinel client was made with (nil otherwise):
	// the account view cache opens its own client from it.
	failover *redis.FailoverOptions
	closers  []func() error
}

func (b *backend) close() {
	for i := len(b.closers) - 1; i >= 0; i-- {
		_ = b.closers[i]()
	}
}

// openBackend parses --store:
//
//	bolt:PATH                          embedded bbolt file
//	redis://[user:pass@]host:port/db   one Redis node (rediss:// for TLS)
//	redis+sentinel://[user:pass@]host:port/db?master_name=NAME&addr=host2:port
//	                                   Sentinel (rediss+sentinel:// for TLS)
//	redis+cluster://[user:pass@]host:port?addr=host2:port
//	                                   Cluster (rediss+cluster:// for TLS)
//
// Query parameters are go-redis options (dial_timeout, read_timeout,
// pool_size, ...). Errors never quote the URL: it may hold a password.
func openBackend(ctx context.Context, c *serveConfig, log *slog.Logger) (*backend, error) {
	if path, ok := strings.CutPrefix(c.store, "bolt:"); ok {
		b, err := openBoltBackend(path)
		if err != nil {
			return nil, err
		}
		if err := b.authenticateRevocations(c, log); err != nil { // keyring.go
			b.close()
			return nil, err
		}
		return b, nil
	}
	r, err := parseRedisStore(c.store)
	if err != nil {
		return nil, err
	}
	b := &backend{kind: r.kind, redis: r.client, failover: r.failover, closers: []func() error{r.client.Close}}
	err = b.openRedis(ctx, c, log)
	if err == nil {
		err = b.authenticateRevocations(c, log)
	}
	if err != nil {
		b.close()
		return nil, err
	}
	return b, nil
}

func openBoltBackend(path string) (*backend, error) {
	if path == "" {
		return nil, fmt.Errorf("%w: --store bolt: needs a path", errUsage)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("create store directory: %w", err)
	}
	st, err := boltstore.Open(path, boltstore.Options{})
	if err != nil {
		return nil, err
	}
	b := &backend{kind: "bolt", store: st, audit: &issuer.MemoryAudit{}, closers: []func() error{st.Close}}
	if b.replay, err = dpop.NewMemoryReplayCache(dpop.MemoryReplayOptions{}); err == nil {
		b.limiter, err = ratelimit.NewMemory(ratelimit.MemoryOptions{})
	}
	if err == nil {
		var rs *revbolt.Store
		rs, err = revbolt.Open(filepath.Join(filepath.Dir(path), "revocation.db"), revbolt.Options{})
		if err == nil {
			b.revocations = rs
			b.closers = append(b.closers, rs.Close)
		}
	}
	if err != nil {
		b.close()
		return nil, err
	}
	return b, nil
}

// openRedis opens every engine of b on its Redis client.
func (b *backend) openRedis(ctx context.Context, c *serveConfig, log *slog.Logger) error {
	st, err := redisstore.New(b.redis, storeOptions(b.kind, b.failover, c.accountCache))
	if err != nil {
		return err
	}
	b.store = st
	b.closers = append(b.closers, st.Close)
	pctx, cancel := context.WithTimeout(ctx, c.storeTimeout)
	defer cancel()
	if err := st.Ping(pctx); err != nil {
		// Not fatal: /readyz reports it and requests get 503 until Redis
		// answers.
		log.Warn("the Redis store does not answer yet", slog.String("error", err.Error()))
	}
	if b.replay, err = redisreplay.New(b.redis, redisreplay.Options{}); err != nil {
		return err
	}
	if b.limiter, err = redislimit.New(b.redis, redislimit.Options{HashKey: c.limitHashKey}); err != nil {
		return err
	}
	if b.revocations, err = revredis.New(b.redis, revredis.Options{}); err != nil {
		return err
	}
	b.audit, err = redisaudit.New(b.redis, redisaudit.Options{})
	return err
}

// defaultAccountCache is --account-cache's default: about 300 bytes an
// account.
const defaultAccountCache = 1 << 16

// storeOptions are the account store's options on a Redis of kind (see
// parseRedisStore): the view cache (--account-cache), on Sentinel with its
// own failover client made from failover.
func storeOptions(kind string, failover *redis.FailoverOptions, accountCache int) redisstore.Options {
	switch {
	case accountCache == 0:
	case kind == "redis" || kind == "redis-cluster":
		return redisstore.Options{ViewCache: accountCache}
	case kind == "redis-sentinel" && failover != nil:
		return redisstore.Options{ViewCache: accountCache, ViewCacheSentinel: failover}
	}
	return redisstore.Options{}
}

// redisStore is a parsed Redis --store: its client, its kind ("redis",
// "redis-sentinel", "redis-cluster") and, on Sentinel, the options the
// client was made with.
type redisStore struct {
	client   redis.UniversalClient
	kind     string
	failover *redis.FailoverOptions
}

// redisClient is parseRedisStore's client and kind.
func redisClient(s string) (redis.UniversalClient, string, error) {
	r, err := parseRedisStore(s)
	return r.client, r.kind, err
}

// replicaReads says why a store URL that reads from replicas is refused.
const replicaReads = "are refused: a replica behind its master answers reads with what the master has moved past (a revocation snapshot could miss entries for good)"

func parseRedisStore(s string) (redisStore, error) {
	scheme, rest, ok := strings.Cut(s, "://")
	if !ok {
		return redisStore{}, fmt.Errorf("%w: --store must be bolt:PATH or a redis URL (see docs/configuration.md)", errUsage)
	}
	base, variant, _ := strings.Cut(strings.ToLower(scheme), "+")
	if base != "redis" && base != "rediss" {
		return redisStore{}, fmt.Errorf("%w: --store must be bolt:PATH or a redis URL (see docs/configuration.md)", errUsage)
	}
	u := base + "://" + rest
	bad := func(kind string) error {
		return fmt.Errorf("%w: --store: malformed %s URL (the value is not shown: it may hold a password)", errUsage, kind)
	}
	switch variant {
	case "":
		o, err := redis.ParseURL(u)
		if err != nil {
			return redisStore{}, bad("redis")
		}
		o.ContextTimeoutEnabled = true
		return redisStore{client: redis.NewClient(o), kind: "redis"}, nil
	case "sentinel":
		o, err := redis.ParseFailoverURL(u)
		if err != nil || o.MasterName == "" {
			return redisStore{}, bad("redis+sentinel (needs master_name)")
		}
		if o.ReplicaOnly || o.UseDisconnectedReplicas || o.RouteByLatency || o.RouteRandomly {
			// A *redis.Client on a replica cannot be told from one on
			// the master (redisclient.Check): refuse it here.
			return redisStore{}, fmt.Errorf("%w: --store: replica_only, use_disconnected_replicas, route_by_latency and route_randomly %s", errUsage, replicaReads)
		}
		o.ContextTimeoutEnabled = true
		return redisStore{client: redis.NewFailoverClient(o), kind: "redis-sentinel", failover: o}, nil
	case "cluster":
		o, err := redis.ParseClusterURL(u)
		if err != nil {
			return redisStore{}, bad("redis+cluster")
		}
		if o.ReadOnly || o.RouteByLatency || o.RouteRandomly {
			return redisStore{}, fmt.Errorf("%w: --store: read_only, route_by_latency and route_randomly %s", errUsage, replicaReads)
		}
		o.ContextTimeoutEnabled = true
		return redisStore{client: redis.NewClusterClient(o), kind: "redis-cluster"}, nil
	}
	return redisStore{}, bad(scheme)
}

// viewCacheStats is what the account view cache collectors read;
// *redisstore.Store is one.
type viewCacheStats interface {
	ViewCacheStats() redisstore.ViewCacheStats
}

// viewCacheCollectors are the account view cache's counters
// (--account-cache), none for a store without one.
func viewCacheCollectors(st account.Store) []prometheus.Collector {
	vs, ok := st.(viewCacheStats)
	if !ok || vs.ViewCacheStats().Size == 0 {
		return nil
	}
	counter := func(name, help string, f func(redisstore.ViewCacheStats) uint64) prometheus.Collector {
		return prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: help},
			func() float64 { return float64(f(vs.ViewCacheStats())) })
	}
	gauge := func(name, help string, f func(redisstore.ViewCacheStats) int) prometheus.Collector {
		return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help},
			func() float64 { return float64(f(vs.ViewCacheStats())) })
	}
	return []prometheus.Collector{
		counter("hallpass_account_view_cache_hits_total", "Identity-route account reads answered from this node's account view cache.",
			func(s redisstore.ViewCacheStats) uint64 { return s.Hits }),
		counter("hallpass_account_view_cache_misses_total", "Identity-route account reads the account view cache did not hold (read from Redis).",
			func(s redisstore.ViewCacheStats) uint64 { return s.Misses }),
		counter("hallpass_account_view_cache_invalidations_total", "Accounts dropped from the view cache because Redis reported a change or this node made one.",
			func(s redisstore.ViewCacheStats) uint64 { return s.Invalidated }),
		counter("hallpass_account_view_cache_resets_total", "Times the view cache dropped everything one connection read: a new connection to Redis, a failed check, a server answering as a replica, a flush (on a Cluster one connection per master).",
			func(s redisstore.ViewCacheStats) uint64 { return s.Resets }),
		gauge("hallpass_account_view_cache_entries", "Accounts the view cache holds now.",
			func(s redisstore.ViewCacheStats) int { return s.Entries }),
		gauge("hallpass_account_view_cache_size", "The most accounts the view cache holds (--account-cache).",
			func(s redisstore.ViewCacheStats) int { return s.Size }),
	}
}
