// Package redislog routes go-redis's own log lines (pool, reconnection,
// client-side caching and sentinel messages that go-redis prints with its
// internal logger, outside any command's error) through a *slog.Logger,
// so that a hallpass server's log stays one JSON object a line.
//
// go-redis has one process-wide logger (redis.SetLogger); Install replaces
// it. Call it once from a command's run function, after the command's
// logger is built and before any Redis client is made. There is no per-client
// setting to use instead.
//
// What it trusts: go-redis's format strings. A line is logged at level Warn
// with the fixed message "redis: client log" and the formatted text in the
// attribute "detail"; go-redis formats addresses, durations and errors into
// it, never a command's arguments (the hallpass engines keep no secret in a
// key name anyway: Redis holds ids and digests).
package redislog
