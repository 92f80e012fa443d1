package fleet

import (
	"context"
	"time"

	"github.com/mpcbot/mpcbot/commands"
)

// Claims is the fleet's commands.Claims: SET key NX PX ttl on Redis, so that one
// delivery wins across replicas. Every claim won is also recorded in the
// process's memory, which answers alone while Redis is unreachable; a key
// this process already holds is never first again, even if Redis lost it.
type Claims struct {
	f     *Fleet
	local *commands.LocalClaims
}

// Claim implements commands.Claims.
func (c *Claims) Claim(ctx context.Context, key string, ttl time.Duration) bool {
	var shared bool
	err := c.f.do(ctx, "claim", func(ctx context.Context) error {
		var err error
		shared, err = c.f.rdb.SetNX(ctx, c.f.key("claim:"+key), 1, max(ttl, time.Millisecond)).Result()
		return err
	})
	if err == nil && !shared {
		return false // another delivery holds it; nothing recorded here
	}
	// First on Redis, or Redis unreachable: this process's memory decides
	// (and remembers the key for when Redis is gone or has lost it).
	return c.local.Claim(ctx, key, ttl)
}
