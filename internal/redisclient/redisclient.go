// Package redisclient holds the checks every hallpass Redis engine makes
// on the client and key prefix it is given, so that they stay one rule.
package redisclient

import (
	"errors"
	"strings"

	"github.com/redis/go-redis/v9"
)

// Check validates a client handed to a Redis engine and returns the key
// prefix to use: prefix, or def when prefix is empty. It refuses a nil
// client, a client built without ContextTimeoutEnabled (its calls could
// outlive their deadline, so a Redis outage would hang requests), and a
// prefix with '{' or '}' (the engine adds its own hash tag), and a
// cluster client that sends read commands to replicas (ReadOnly,
// RouteByLatency, RouteRandomly: the read_only, route_by_latency and
// route_randomly URL options). Replication is asynchronous: a read from a
// replica can miss writes its master acknowledged, while the engines'
// scripts, which go to the master, already count on them. A revocation
// snapshot would scan the entries on a replica and take its cursor from
// the master, and a mirror would skip for good the entries the replica had
// not yet received. Errors carry no package prefix; callers add theirs.
func Check(c redis.UniversalClient, prefix, def string) (string, error) {
	if c == nil {
		return "", errors.New("nil client")
	}
	if !contextTimeoutEnabled(c) {
		return "", errors.New("the redis client needs ContextTimeoutEnabled: true, or operations could outlive their deadline")
	}
	if readsReplicas(c) {
		return "", errors.New("the redis client reads from replicas (ReadOnly, RouteByLatency or RouteRandomly): a replica behind its master answers reads with what the master has moved past, so route every command to the masters")
	}
	if prefix == "" {
		prefix = def
	}
	if strings.ContainsAny(prefix, "{}") {
		return "", errors.New("option Prefix must not contain '{' or '}'")
	}
	return prefix, nil
}

// contextTimeoutEnabled reports the option for the go-redis client types.
// Any other UniversalClient implementation is refused: we cannot tell
// whether it honours deadlines, so we do not assume it does.
func contextTimeoutEnabled(c redis.UniversalClient) bool {
	switch c := c.(type) {
	case *redis.Client:
		return c.Options().ContextTimeoutEnabled
	case *redis.ClusterClient:
		return c.Options().ContextTimeoutEnabled
	case *redis.Ring:
		return c.Options().ContextTimeoutEnabled
	}
	return false
}

// readsReplicas reports whether a cluster client may send read commands
// to replicas. A Sentinel client built with ReplicaOnly cannot be told
// from its options; it fails on every write instead.
func readsReplicas(c redis.UniversalClient) bool {
	cc, ok := c.(*redis.ClusterClient)
	if !ok {
		return false
	}
	o := cc.Options()
	return o.ReadOnly || o.RouteByLatency || o.RouteRandomly
}
