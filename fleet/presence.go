package fleet

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/redis/go-redis/v9"
)

// heartbeatScript announces a replica on Redis's clock and returns the
// replicas alive: KEYS[1] is a sorted set of replica ids scored by when they
// were last seen (ms); ARGV: id, alive-for ms.
var heartbeatScript = redis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local alive = tonumber(ARGV[2])
redis.call('ZADD', KEYS[1], string.format('%.0f', now), ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', string.format('%.0f', now - alive))
redis.call('PEXPIRE', KEYS[1], alive * 2)
return redis.call('ZRANGE', KEYS[1], 0, -1)
`)

// Replicas returns the ids of the replicas last seen alive, this one
// included. It is cached from the latest heartbeat, so it is known (if
// perhaps stale) while Redis is down.
func (f *Fleet) Replicas() []string {
	f.replicasMu.Lock()
	defer f.replicasMu.Unlock()
	return slices.Clone(f.replicas)
}

// replicaCount is len(Replicas()), at least 1.
func (f *Fleet) replicaCount() int {
	f.replicasMu.Lock()
	defer f.replicasMu.Unlock()
	return max(1, len(f.replicas))
}

// heartbeat announces this replica and doubles as the probe: success
// restores a degraded fleet, failure degrades a healthy one. It bypasses
// do, which would not ask Redis while degraded.
func (f *Fleet) heartbeat(ctx context.Context) {
	cctx, cancel := context.WithTimeout(ctx, f.cfg.CallTimeout)
	defer cancel()
	ids, err := heartbeatScript.Run(cctx, f.rdb, []string{f.key("replicas")},
		f.cfg.ReplicaID, f.cfg.AliveFor.Milliseconds()).StringSlice()
	if err != nil {
		if ctx.Err() == nil {
			f.health.degrade(fmt.Errorf("fleet: heartbeat: %w", err))
		}
		return
	}
	if !slices.Contains(ids, f.cfg.ReplicaID) {
		ids = append(ids, f.cfg.ReplicaID)
	}
	slices.Sort(ids)
	f.replicasMu.Lock()
	f.replicas = ids
	f.replicasMu.Unlock()
	f.health.recover()
}

// run beats every Heartbeat while healthy and probes every ProbeInterval
// while degraded, until ctx ends.
func (f *Fleet) run(ctx context.Context) {
	defer close(f.stopped)
	tick := time.NewTicker(min(f.cfg.ProbeInterval, f.cfg.Heartbeat))
	defer tick.Stop()
	last := time.Now()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		if f.health.healthy() && time.Since(last) < f.cfg.Heartbeat {
			continue
		}
		f.heartbeat(ctx)
		last = time.Now()
	}
}
