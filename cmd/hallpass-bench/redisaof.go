package main

// -redis-aof: the Redis scenarios with Redis's append-only file on, so that
// signup and refresh on Redis can be stated for each durability setting:
//
//	off       no persistence (the default; Redis as a cache: a restart
//	          loses every account)
//	everysec  appendonly yes, appendfsync everysec: the documented
//	          production setting (docs/configuration.md); a crash of the
//	          machine loses up to about a second of acknowledged writes
//	always    appendonly yes, appendfsync always: Redis fsyncs the file
//	          before it answers a write (after each event-loop pass, so
//	          concurrent clients share a flush), nothing acknowledged is lost
//
// Several may be given (-redis-aof off,everysec,always): each gets its own
// fresh redis-server, in its own temporary directory on the machine's
// temporary file system (whose kind the report should name: on tmpfs an
// fsync costs nothing), and its own issuer, one after the other in the
// same run, each scenario beside its own floor.

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strings"
)

// aofModes are the -redis-aof values, in the order a report lists them.
var aofModes = []string{"off", "everysec", "always"}

// parseAOF parses the comma-separated -redis-aof list, without repeats.
func parseAOF(list string) ([]string, error) {
	var out []string
	for _, m := range strings.Split(list, ",") {
		m = strings.TrimSpace(m)
		if !slices.Contains(aofModes, m) {
			return nil, fmt.Errorf("-redis-aof: unknown mode %q (off, everysec, always)", m)
		}
		if !slices.Contains(out, m) {
			out = append(out, m)
		}
	}
	return out, nil
}

// appendFsync is redistest.Options.AppendFsync for a -redis-aof mode.
func appendFsync(mode string) string {
	if mode == "off" {
		return ""
	}
	return mode
}

// label is how a report names the store of spec: bolt, redis, or
// redis+aof-everysec and redis+aof-always.
func (s serverSpec) label() string {
	l := s.Store
	if s.Store == "redis" && s.AOF != "" && s.AOF != "off" {
		l = "redis+aof-" + s.AOF
	}
	if s.NoTokenCache {
		l += "-nocache"
	}
	if s.NoAccountCache && s.Store != "bolt" {
		l += "-noviews"
	}
	return l
}

// benchRedis runs every scenario on Redis once per -redis-aof mode, each
// on a fresh redis-server (pinned with the server side when -server-cpus
// is given), and returns the results and the server side's GOMAXPROCS.
func benchRedis(ctx context.Context, o options, progress io.Writer) ([]Result, int, error) {
	var (
		out   []Result
		procs int
	)
	for _, mode := range o.redisAOF {
		rp, err := startRedisOn(ctx, o.redisBin, o.serverCPUs, appendFsync(mode))
		if err != nil {
			return nil, 0, err
		}
		spec := serverSpec{Store: "redis", Redis: rp.Addr(), AOF: mode, NoTokenCache: o.noTokenCache, NoAccountCache: o.noAccountCache}
		res, p, err := benchStore(ctx, o, spec, progress)
		rp.Stop()
		if err != nil {
			return nil, 0, fmt.Errorf("%s: %w", spec.label(), err)
		}
		out, procs = append(out, res...), p
	}
	return out, procs, nil
}
