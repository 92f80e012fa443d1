package fleet

import (
	"context"
	"sync"
	"time"
)

// Claims is the fleet's bot.Claims: SET key NX PX ttl on Redis, so that one
// delivery wins across replicas. Every claim won is also recorded in the
// process's memory, which answers alone while Redis is unreachable; a key
// this process already holds is never first again, even if Redis lost it.
type Claims struct {
	f     *Fleet
	local *localClaims
}

// Claim implements bot.Claims.
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
	return c.local.claim(key, ttl, time.Now())
}

// localClaims is an expiring set of keys.
type localClaims struct {
	mu      sync.Mutex
	expires map[string]time.Time
	swept   time.Time
}

func newLocalClaims() *localClaims { return &localClaims{expires: map[string]time.Time{}} }

// claim records key until now+ttl and reports whether it was free.
func (s *localClaims) claim(key string, ttl time.Duration, now time.Time) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if now.Sub(s.swept) > time.Second {
		for k, exp := range s.expires {
			if !exp.After(now) {
				delete(s.expires, k)
			}
		}
		s.swept = now
	}
	if exp, ok := s.expires[key]; ok && exp.After(now) {
		return false
	}
	s.expires[key] = now.Add(ttl)
	return true
}
