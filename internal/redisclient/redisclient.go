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
// prefix with '{' or '}' (the engine adds its own hash tag). Errors carry
// no package prefix; callers add theirs.
func Check(c redis.UniversalClient, prefix, def string) (string, error) {
	if c == nil {
		return "", errors.New("nil client")
	}
	if !contextTimeoutEnabled(c) {
		return "", errors.New("the redis client needs ContextTimeoutEnabled: true, or operations could outlive their deadline")
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
