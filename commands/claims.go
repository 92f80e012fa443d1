package commands

import (
	"context"
	"sync"
	"time"
)

// Claims remembers keys for a while so that one of several deliveries of
// the same request wins: a Socket Mode envelope Slack redelivers (maybe to
// another connection or replica), a second tap of the same button by the
// same person. With several replicas it is shared by all of them (on
// Redis); a store that cannot be reached falls back to the process's own
// memory, LocalClaims.
type Claims interface {
	// Claim records key for ttl and reports whether this caller is the
	// first to claim it within that time.
	Claim(ctx context.Context, key string, ttl time.Duration) (first bool)
}

// LocalClaims is the in-process Claims: an expiring set of keys.
type LocalClaims struct {
	mu      sync.Mutex
	expires map[string]time.Time
	swept   time.Time
	now     func() time.Time
}

// NewLocalClaims returns an empty in-process Claims.
func NewLocalClaims() *LocalClaims {
	return &LocalClaims{expires: map[string]time.Time{}, now: time.Now}
}

// Claim implements Claims.
func (c *LocalClaims) Claim(_ context.Context, key string, ttl time.Duration) bool {
	now := c.now()
	c.mu.Lock()
	defer c.mu.Unlock()
	if now.Sub(c.swept) > time.Second {
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
