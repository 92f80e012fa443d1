package bot

import (
	"context"
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
