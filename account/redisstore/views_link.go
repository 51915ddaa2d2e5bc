package redisstore

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"
	"github.com/redis/go-redis/v9/push"
)

// viewLink is one connection of the view cache to one master, with
// tracking on: the misses routed to that master read through it, and
// Redis queues there the invalidations of what they read.
type viewLink struct {
	v    *viewCache
	rc   *redis.Client // one connection, RESP3, tracking on; replaced only under busy
	dial dialer
	busy chan struct{} // held while a miss or a check uses the connection
	// probe, in a Cluster, is the last account key read through the link
	// (under busy): each check reads it, and a redirection or a cluster
	// that is down means the link no longer speaks for its slots.
	probe   string
	cluster bool
	live    bool // guarded by v.mu

	stop, done chan struct{}
}

// dialer makes a link's client: one connection, RESP3, whose OnConnect
// and "invalidate" pushes go to l.
type dialer func(l *viewLink) (*redis.Client, error)

// nodeDialer makes a link's clients from o, the options of the store's
// client or of a Cluster node's: how to reach the server, not the
// client's runtime parts.
func nodeDialer(o redis.Options) dialer {
	o.Protocol = 3
	o.PushNotificationProcessor = nil // the store's own: the handler must not reach it
	o.MaintNotificationsConfig = &maintnotifications.Config{Mode: maintnotifications.ModeDisabled}
	o.ClientSideCache, o.ClientSideCacheConfig = nil, nil
	o.PoolSize, o.MaxActiveConns, o.MinIdleConns, o.MaxIdleConns = 1, 1, 0, 1
	o.ConnMaxIdleTime, o.ConnMaxLifetime = -1, 0
	return func(l *viewLink) (*redis.Client, error) {
		lo := o
		lo.OnConnect = l.onConnectAfter(o.OnConnect)
		return l.withHandler(redis.NewClient(&lo))
	}
}

// sentinelDialer makes a link's clients as failover clients of their own:
// each asks the Sentinels for the master when it dials and, like the
// store's client, drops its connection when they announce a new one.
func sentinelDialer(o redis.FailoverOptions) dialer {
	o.Protocol = 3
	o.PushNotificationProcessor = nil
	o.ReplicaOnly, o.UseDisconnectedReplicas = false, false
	o.PoolSize, o.MaxActiveConns, o.MinIdleConns, o.MaxIdleConns = 1, 1, 0, 1
	o.ConnMaxIdleTime, o.ConnMaxLifetime = -1, 0
	return func(l *viewLink) (*redis.Client, error) {
		lo := o
		lo.OnConnect = l.onConnectAfter(o.OnConnect)
		return l.withHandler(redis.NewFailoverClient(&lo))
	}
}

func (l *viewLink) onConnectAfter(prev func(context.Context, *redis.Conn) error) func(context.Context, *redis.Conn) error {
	return func(ctx context.Context, cn *redis.Conn) error {
		if prev != nil {
			if err := prev(ctx, cn); err != nil {
				return err
			}
		}
		return l.onConnect(ctx, cn)
	}
}

func (l *viewLink) withHandler(rc *redis.Client) (*redis.Client, error) {
	if err := rc.RegisterPushNotificationHandler("invalidate", l, true); err != nil {
		rc.Close()
		return nil, fmt.Errorf("view cache: %w", err)
	}
	return rc, nil
}

// errNotMaster: the link's connection reached a replica.
var errNotMaster = errors.New("view cache: the server is not a master")

// helloReply is what HELLO without arguments says of a connection.
type helloReply struct {
	proto      int64
	mode, role string // mode "sentinel": a failover client's connection to a Sentinel
}

// hello asks the server for its protocol, mode and role (HELLO without
// arguments changes nothing; every user may send it).
func hello(ctx context.Context, do func(ctx context.Context, args ...any) *redis.Cmd) (helloReply, error) {
	m, err := do(ctx, "hello").Result()
	if err != nil {
		return helloReply{}, err
	}
	reply, ok := m.(map[any]any)
	if !ok {
		return helloReply{}, fmt.Errorf("view cache: HELLO answered %T", m)
	}
	var h helloReply
	h.proto, _ = reply["proto"].(int64)
	h.mode, _ = reply["mode"].(string)
	h.role, _ = reply["role"].(string)
	return h, nil
}

// onConnect turns tracking on for a new connection, which must speak
// RESP3 (pushes in band) to a master, and starts the cache afresh: what
// was read on an earlier connection gets no more invalidations. A failover
// client's connections to its Sentinels pass through.
func (l *viewLink) onConnect(ctx context.Context, cn *redis.Conn) error {
	h, err := hello(ctx, cn.Do)
	switch {
	case err != nil:
		return fmt.Errorf("view cache: HELLO: %w", err)
	case h.mode == "sentinel":
		return nil
	case h.proto != 3:
		return fmt.Errorf("view cache: the connection speaks RESP%d, not RESP3", h.proto)
	case h.role != "master":
		return errNotMaster
	}
	if err := cn.Do(ctx, "client", "tracking", "on").Err(); err != nil {
		return fmt.Errorf("view cache: CLIENT TRACKING: %w", err)
	}
	l.v.mu.Lock()
	l.v.reset(l, true)
	l.v.mu.Unlock()
	return nil
}

// run checks the connection every poll until close (the first time at
// once when now is set): a HELLO, before whose
// reply every queued invalidation is handled. A failed check drops the
// cache and stops fills through l until a check or a new connection
// succeeds; while checks fail (Redis away: nothing is cached from it, so
// nothing can go stale) they back off to one a second, which keeps a
// Redis outage from filling the log with go-redis's dial errors.
func (l *viewLink) run(now bool) {
	defer close(l.done)
	poll := l.v.poll
	wait := poll
	t := time.NewTimer(wait)
	if now {
		t.Reset(0)
	}
	defer t.Stop()
	for {
		select {
		case <-l.stop:
			return
		case <-t.C:
		}
		if l.check() {
			wait = poll
		} else {
			wait = min(2*wait, max(poll, time.Second))
		}
		t.Reset(wait)
	}
}

// check asks the server on the link's connection (dialling one, and so
// turning tracking on, if there is none) for its role, and reports
// whether it answered as a master (in a Cluster, one still serving the
// probe's slot: a redirection fails this check and forgets the probe, so
// the next check can pass and the master's other slots are cached again;
// a cluster that is down keeps failing it). A replica (a master demoted by a failover) gets no more
// of the master's writes once its link breaks: the link then drops the
// client and dials again, which on Sentinel reaches the master the
// Sentinels name.
func (l *viewLink) check() bool {
	l.busy <- struct{}{}
	ctx, cancel := context.WithTimeout(context.Background(), max(l.v.poll, time.Second))
	h, err := hello(ctx, l.rc.Do)
	if err == nil && h.role != "master" {
		err = errNotMaster
		if rc, derr := l.dial(l); derr == nil {
			l.rc.Close()
			l.rc = rc
		}
	}
	if err == nil && l.cluster && l.probe != "" {
		err = l.rc.Exists(ctx, l.probe).Err() // MOVED, or CLUSTERDOWN
		if isRedirect(err) {
			l.probe = "" // that slot is served elsewhere: drop what this link read, once
		}
	}
	cancel()
	<-l.busy
	l.v.mu.Lock()
	defer l.v.mu.Unlock()
	switch {
	case err != nil && l.live:
		l.v.reset(l, false)
	case err == nil && !l.live:
		l.live = true // the same connection, still tracking: nothing was lost
	}
	return err == nil
}

// HandlePushNotification implements push.NotificationHandler for
// "invalidate": the keys changed, or nil for a flush of the database.
func (l *viewLink) HandlePushNotification(_ context.Context, _ push.NotificationHandlerContext, n []any) error {
	var keys []any
	if len(n) > 1 {
		keys, _ = n[1].([]any)
	}
	v := l.v
	v.mu.Lock()
	defer v.mu.Unlock()
	if keys == nil {
		v.reset(l, l.live)
		return nil
	}
	for _, k := range keys {
		s, _ := k.(string)
		id := viewKeyID(s)
		if id == "" {
			v.reset(l, l.live) // not a key the cache reads: trust nothing
			return nil
		}
		v.dropLocked(id)
	}
	return nil
}

// read reads an account record and its recovery codes on the link's
// connection, or errViewBusy when a miss or a check is using it.
func (l *viewLink) read(ctx context.Context, accountKey, recoveryKey string) (map[string]string, []string, error) {
	select {
	case l.busy <- struct{}{}:
	default:
		return nil, nil, errViewBusy
	}
	defer func() { <-l.busy }()
	fields, err := l.rc.HGetAll(ctx, accountKey).Result()
	if err != nil {
		return nil, nil, err
	}
	if l.cluster {
		l.probe = accountKey
	}
	codes, err := l.rc.SMembers(ctx, recoveryKey).Result()
	return fields, codes, err
}

func (l *viewLink) close() error {
	close(l.stop)
	<-l.done
	return l.rc.Close()
}
