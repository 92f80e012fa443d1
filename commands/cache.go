package commands

import (
	"context"
	"time"
)

// Cache holds short-lived shared answers (the live calls of the account)
// so that ten supervisors refreshing do not cost ten Plivo requests. With
// several replicas it is shared by all of them; every call is bounded and a
// failing store behaves as a miss (Get) or a no-op (Set).
type Cache interface {
	// Get returns the value stored under key, if present and not expired.
	Get(ctx context.Context, key string) ([]byte, bool)
	// Set stores value under key for ttl.
	Set(ctx context.Context, key string, value []byte, ttl time.Duration)
}
