package commands

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"time"
)

// LiveCall is one live call of the account, as the calls view shows it.
type LiveCall struct {
	Name   string    `json:"name"`
	UUID   string    `json:"uuid"`
	Status string    `json:"status"` // "active" or "initialized"
	Since  time.Time `json:"since"`  // started (or created); zero when unknown
}

// CallList is the account's live calls at Fetched.
type CallList struct {
	Calls []LiveCall `json:"calls"`
	// Truncated: Plivo had more live calls than mpcbot fetches.
	Truncated bool      `json:"truncated,omitempty"`
	Fetched   time.Time `json:"fetched"`
}

// CallsCacheTTL is how long the live calls are reused: ten supervisors
// refreshing cost one Plivo request, not ten.
const CallsCacheTTL = 3 * time.Second

const callsCacheKey = "mpcbot:calls:v1"

// liveCallsFlight makes one lookup at a time per process: callers that
// arrive while one runs wait for its answer.
type liveCallsFlight struct {
	mu   sync.Mutex
	wait chan struct{}
	list CallList
	err  error
}

// LiveCalls returns the live calls of the account from the short shared
// cache, or from Plivo (one lookup at a time). Authorize a Calls command
// first.
func (s *Service) LiveCalls(ctx context.Context) (CallList, error) {
	s.init()
	if raw, ok := s.Cache.Get(ctx, callsCacheKey); ok {
		var l CallList
		if json.Unmarshal(raw, &l) == nil {
			return l, nil
		}
	}
	f := &s.callsFlight
	f.mu.Lock()
	if f.wait != nil {
		wait := f.wait
		f.mu.Unlock()
		select {
		case <-wait:
		case <-ctx.Done():
			return CallList{}, ctx.Err()
		}
		f.mu.Lock()
		defer f.mu.Unlock()
		return f.list, f.err
	}
	f.wait = make(chan struct{})
	f.mu.Unlock()

	list, err := s.fetchLiveCalls(ctx)

	f.mu.Lock()
	f.list, f.err = list, err
	close(f.wait)
	f.wait = nil
	f.mu.Unlock()
	return list, err
}

func (s *Service) fetchLiveCalls(ctx context.Context) (CallList, error) {
	ctx, cancel := context.WithTimeout(ctx, s.timeout())
	defer cancel()
	mpcs, err := s.Plivo.LiveMPCs(ctx)
	if err != nil {
		return CallList{}, fmt.Errorf("list live calls: %w", err)
	}
	l := CallList{Truncated: mpcs.Truncated, Fetched: s.now()}
	for _, m := range mpcs.MPCs {
		since := m.Started
		if since.IsZero() {
			since = m.Created
		}
		l.Calls = append(l.Calls, LiveCall{Name: m.Name, UUID: m.UUID, Status: string(m.Status), Since: since})
	}
	if raw, err := json.Marshal(l); err == nil {
		s.Cache.Set(ctx, callsCacheKey, raw, CallsCacheTTL)
	}
	return l, nil
}

// localCache is the in-process Cache.
type localCache struct {
	mu      sync.Mutex
	entries map[string]cacheEntry
	now     func() time.Time
}

type cacheEntry struct {
	value   []byte
	expires time.Time
}

// newLocalCache returns an empty in-process Cache.
func newLocalCache() *localCache {
	return &localCache{entries: map[string]cacheEntry{}, now: time.Now}
}

// Get implements Cache.
func (c *localCache) Get(_ context.Context, key string) ([]byte, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.entries[key]
	if !ok || !c.now().Before(e.expires) {
		delete(c.entries, key)
		return nil, false
	}
	return e.value, true
}

// Set implements Cache.
func (c *localCache) Set(_ context.Context, key string, value []byte, ttl time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.entries[key] = cacheEntry{value: value, expires: c.now().Add(ttl)}
}
