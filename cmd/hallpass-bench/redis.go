package main

import (
	"context"
	"errors"

	"github.com/hallpass/hallpass/internal/redistest"
)

// startRedis runs a private, throw-away redis-server on a free loopback port
// (persistence off, its own temporary directory, removed by Stop) with
// internal/redistest, using bin when set.
func startRedis(ctx context.Context, bin string) (*redistest.Process, error) {
	return startRedisOn(ctx, bin, nil, "")
}

// startRedisOn is startRedis with the server's threads pinned to cpus
// (server_cpulist and the like; none when empty): Redis counts as server
// side. appendFsync, when not empty, turns on the append-only file with
// that policy (always, everysec; see redisaof.go).
func startRedisOn(ctx context.Context, bin string, cpus []int, appendFsync string) (*redistest.Process, error) {
	o := redistest.Options{Bin: bin, AppendFsync: appendFsync, Extra: pinArgs(cpus)}
	p, err := redistest.Launch(ctx, o)
	if errors.Is(err, redistest.ErrNotFound) {
		return nil, errNoRedis
	}
	return p, err
}

var errNoRedis = errors.New("redis-server not found (run `make test-deps`, or pass -redis-server PATH, or -stores bolt)")

// pinArgs are redis-server's arguments that pin its threads to cpus
// (none when empty).
func pinArgs(cpus []int) []string {
	if len(cpus) == 0 {
		return nil
	}
	l := formatCPUList(cpus)
	return []string{"--server_cpulist", l, "--bio_cpulist", l, "--aof_rewrite_cpulist", l, "--bgsave_cpulist", l}
}
