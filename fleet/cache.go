package fleet

import (
	"context"
	"time"

	"github.com/mpcbot/mpcbot/commands"
)

// Cache is the fleet's commands.Cache: GET and SET PX on Redis. A failure,
// or a degraded fleet, is a miss (Get) or a no-op (Set).
type Cache struct {
	f *Fleet
}

var _ commands.Cache = (*Cache)(nil)

// Get implements commands.Cache.
func (c *Cache) Get(ctx context.Context, key string) ([]byte, bool) {
	var value []byte
	err := c.f.do(ctx, "cache get", func(ctx context.Context) error {
		var err error
		value, err = c.f.rdb.Get(ctx, c.f.key("cache:"+key)).Bytes()
		return err
	})
	return value, err == nil
}

// Set implements commands.Cache.
func (c *Cache) Set(ctx context.Context, key string, value []byte, ttl time.Duration) {
	if ttl <= 0 {
		return
	}
	c.f.do(ctx, "cache set", func(ctx context.Context) error {
		return c.f.rdb.Set(ctx, c.f.key("cache:"+key), value, max(ttl, time.Millisecond)).Err()
	})
}
