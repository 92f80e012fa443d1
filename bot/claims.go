package bot

import (
	"context"
	"sync"
	"time"
)

// Claims remembers keys for a while so that one of several deliveries of
// the same thing wins: a Socket Mode envelope Slack redelivers (maybe to
// another connection or replica), a second tap of the same button by the
// same user. With several replicas it is shared by all of them; a store
// that cannot be reached falls back to the process's own memory.
type Claims interface {
	// Claim records key for ttl and reports whether this caller is the
	// first to claim it within that time.
	Claim(ctx context.Context, key string, ttl time.Duration) (first bool)
}

// localClaims is the in-process Claims.
type localClaims struct {
	mu      sync.Mutex
	expires map[string]time.Time
	swept   time.Time
	now     func() time.Time
}

// newLocalClaims returns an empty in-process Claims.
func newLocalClaims() *localClaims {
	return &localClaims{expires: map[string]time.Time{}, now: time.Now}
}

// Claim implements Claims.
func (c *localClaims) Claim(_ context.Context, key string, ttl time.Duration) bool {
	now := c.now()
	c.mu.Lock()
	defer c.mu.Unlock()
	if now.Sub(c.swept) > time.Minute {
		for k, exp := range c.expires {
			if !now.Before(exp) {
				delete(c.expires, k)
			}
		}
		c.swept = now
	}
	if exp, ok := c.expires[key]; ok && now.Before(exp) {
		return false
	}
	c.expires[key] = now.Add(ttl)
	return true
}
