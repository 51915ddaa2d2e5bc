package main

import (
	"context"
	"errors"
	"fmt"
	"io"

	"github.com/hallpass/hallpass/internal/redistest"
)

// benchCluster runs every scenario on a fresh Redis Cluster of
// clusterMasters masters, as -propagation -cluster has (persistence off,
// every node pinned with the server side when -server-cpus is given),
// and returns the results and the server side's
// GOMAXPROCS. The issuer reaches it through a go-redis cluster client, as
// `hallpass serve --store redis+cluster://` does.
func benchCluster(ctx context.Context, o options, progress io.Writer) ([]Result, int, error) {
	cp, err := redistest.LaunchCluster(ctx, redistest.Options{Bin: o.redisBin, Extra: pinArgs(o.serverCPUs)}, clusterMasters)
	if errors.Is(err, redistest.ErrNotFound) {
		return nil, 0, errNoRedis
	}
	if err != nil {
		return nil, 0, err
	}
	defer cp.Stop()
	spec := serverSpec{Store: "cluster", Cluster: cp.Addrs(), NoTokenCache: o.noTokenCache, NoAccountCache: o.noAccountCache}
	res, procs, err := benchStore(ctx, o, spec, progress)
	if err != nil {
		return nil, 0, fmt.Errorf("%s: %w", spec.label(), err)
	}
	return res, procs, nil
}
