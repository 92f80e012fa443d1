package bot

import (
	"sync"
	"time"
)

// expiringSet remembers keys for a while: envelope ids (Slack redelivers
// an envelope it thinks was not acked) and button clicks (double taps).
type expiringSet struct {
	ttl time.Duration

	mu    sync.Mutex
	seen  map[string]time.Time
	sweep time.Time
}

func newExpiringSet(ttl time.Duration) *expiringSet {
	return &expiringSet{ttl: ttl, seen: map[string]time.Time{}}
}

// Add records key at now and reports whether it was already present and
// not yet expired.
func (s *expiringSet) Add(key string, now time.Time) (duplicate bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if now.Sub(s.sweep) > s.ttl {
		for k, t := range s.seen {
			if now.Sub(t) > s.ttl {
				delete(s.seen, k)
			}
		}
		s.sweep = now
	}
	if t, ok := s.seen[key]; ok && now.Sub(t) <= s.ttl {
		return true
	}
	s.seen[key] = now
	return false
}
