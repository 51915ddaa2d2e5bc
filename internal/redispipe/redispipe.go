// Package redispipe sends the Redis commands of hallpass's hot paths (the
// DPoP replay check, the account store's reads and scripts, the signup
// limiter) through go-redis's automatic pipeliner, so that the commands of
// concurrent requests share one write and one read on one connection
// instead of one round trip each.
//
// Why: on a loaded node most of a Redis command's cost is the system calls
// around it (a write and a read in the client, a read, an epoll wake-up and
// a write in redis-server), not the command. Pipelining the commands of
// concurrent requests makes that cost per batch. Measured on one pinned
// core with 64 clients (docs/performance.md): /v1/me on Redis went from
// 0.44 to about 0.7 of its crypto floor.
//
// Semantics are those of a plain call: each caller waits for its own
// commands' replies, commands keep their meaning (a batch is not a
// transaction; what needs atomicity is a Lua script, as before), and a
// caller's deadline is honoured: Do returns when its context ends, even if
// the batch is still on the wire. What it does not do is cancel a command
// already queued: like any timed-out call, a write may still be applied.
//
// The cost: batches go out one after the other on one connection (the
// pipeliner's ordered stream), so a batch held on the network holds the
// batches behind it until its connection's read timeout. Their callers
// answer at their own deadlines (503, nothing changed), as they would if
// Redis itself stalled, which it also does for everyone at once.
//
// go-redis marks its automatic pipeliner experimental: this package is the
// only place that uses it, and its tests (real redis-server: shared reads,
// per-command replies, NOSCRIPT, deadlines under CLIENT PAUSE, a cluster)
// hold the behaviour hallpass relies on, so an upgrade that changes it
// fails here first.
//
// # Trust
//
// None beyond the client's: the pipeliner shares the client's connections,
// options (TLS, ACL user) and retries.
package redispipe

import (
	"context"
	"errors"
	"fmt"

	"github.com/redis/go-redis/v9"
)

// Pipe queues commands on a client's deferred (async) autopipeliner. The
// client owns the pipeliner: it is shared by every Pipe of the client and
// closed with it.
type Pipe struct {
	ap *redis.AutoPipeliner
}

// New returns the Pipe of c.
func New(c redis.UniversalClient) (*Pipe, error) {
	if c == nil {
		return nil, errors.New("redispipe: nil client")
	}
	ap, err := c.AsyncAutoPipeline()
	if err != nil {
		return nil, fmt.Errorf("redispipe: %w", err)
	}
	return &Pipe{ap: ap}, nil
}

// Do queues cmds and waits until each has its reply or ctx ends. A nil
// error means every command completed: read each one's result (and its own
// error, redis.Nil included) from it. A non-nil error is ctx's: the
// commands may still be in flight, so the caller must not read them. With
// ctx already done nothing is sent (the pipeliner could still send it and
// answer before the wait looks at ctx).
func (p *Pipe) Do(ctx context.Context, cmds ...redis.Cmder) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	var buf [4]redis.AutoFuture
	fs := buf[:0]
	for _, c := range cmds {
		fs = append(fs, p.ap.Submit(ctx, c))
	}
	for _, f := range fs {
		if err := f.WaitContext(ctx); err != nil && ctx.Err() != nil {
			return ctx.Err()
		}
	}
	return nil
}

// Cmd runs one command built from args and returns it, its error set to
// ctx's when ctx ended first.
func (p *Pipe) Cmd(ctx context.Context, args ...any) *redis.Cmd {
	cmd := redis.NewCmd(ctx, args...)
	if err := p.Do(ctx, cmd); err != nil {
		return errCmd(ctx, err)
	}
	return cmd
}

// Run runs script with keys and args as EVALSHA, and as EVAL when Redis
// does not have the script yet (redis.Script.Run's fallback), through the
// pipeliner.
func (p *Pipe) Run(ctx context.Context, script *redis.Script, keys []string, args ...any) *redis.Cmd {
	return script.Run(ctx, scripter{p}, keys, args...)
}

func evalCmd(ctx context.Context, name, payload string, keys []string, args []any) *redis.Cmd {
	a := make([]any, 0, 3+len(keys)+len(args))
	a = append(a, name, payload, len(keys))
	for _, k := range keys {
		a = append(a, k)
	}
	a = append(a, args...)
	cmd := redis.NewCmd(ctx, a...)
	if len(keys) > 0 {
		cmd.SetFirstKeyPos(3) // the slot a cluster routes it by
	}
	return cmd
}

func errCmd(ctx context.Context, err error) *redis.Cmd {
	c := redis.NewCmd(ctx)
	c.SetErr(err)
	return c
}

// scripter is redis.Scripter over a Pipe, for redis.Script.Run.
type scripter struct{ p *Pipe }

func (s scripter) eval(ctx context.Context, name, payload string, keys []string, args []any) *redis.Cmd {
	cmd := evalCmd(ctx, name, payload, keys, args)
	if err := s.p.Do(ctx, cmd); err != nil {
		return errCmd(ctx, err)
	}
	return cmd
}

func (s scripter) Eval(ctx context.Context, script string, keys []string, args ...any) *redis.Cmd {
	return s.eval(ctx, "eval", script, keys, args)
}

func (s scripter) EvalSha(ctx context.Context, sha1 string, keys []string, args ...any) *redis.Cmd {
	return s.eval(ctx, "evalsha", sha1, keys, args)
}

func (s scripter) EvalRO(ctx context.Context, script string, keys []string, args ...any) *redis.Cmd {
	return s.eval(ctx, "eval_ro", script, keys, args)
}

func (s scripter) EvalShaRO(ctx context.Context, sha1 string, keys []string, args ...any) *redis.Cmd {
	return s.eval(ctx, "evalsha_ro", sha1, keys, args)
}

func (s scripter) ScriptExists(ctx context.Context, hashes ...string) *redis.BoolSliceCmd {
	return s.p.ap.ScriptExists(ctx, hashes...)
}

func (s scripter) ScriptLoad(ctx context.Context, script string) *redis.StringCmd {
	return s.p.ap.ScriptLoad(ctx, script)
}
