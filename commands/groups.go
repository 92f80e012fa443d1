package commands

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"
)

// GroupFetcher returns the user ids in a user group, from the source of
// truth (Slack's usergroups.users.list).
type GroupFetcher func(ctx context.Context, groupID string) ([]string, error)

// GroupCache caches user-group membership for a TTL. A stale entry is
// served at once while it is refreshed in the background; when the refresh
// fails (a Slack outage), the last known membership keeps being used and
// the failure is logged. Only a group never fetched successfully makes a
// caller wait for the source, and a failure then grants nothing.
type GroupCache struct {
	fetch  GroupFetcher
	ttl    time.Duration
	logger *slog.Logger
	now    func() time.Time

	mu      sync.Mutex
	entries map[string]*groupEntry
}

type groupEntry struct {
	members    map[string]bool
	fetched    time.Time // zero if never fetched successfully
	refreshing bool
	lastErr    error
}

// NewGroupCache returns a cache over fetch. ttl ≤ 0 means 5 minutes.
func NewGroupCache(fetch GroupFetcher, ttl time.Duration, logger *slog.Logger) *GroupCache {
	if ttl <= 0 {
		ttl = 5 * time.Minute
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &GroupCache{fetch: fetch, ttl: ttl, logger: logger, now: time.Now, entries: map[string]*groupEntry{}}
}

// GroupMembers implements GroupMembers.
func (c *GroupCache) GroupMembers(ctx context.Context, groupID string) (map[string]bool, error) {
	c.mu.Lock()
	e, ok := c.entries[groupID]
	if ok && !e.fetched.IsZero() {
		members := e.members
		if c.now().Sub(e.fetched) >= c.ttl && !e.refreshing {
			e.refreshing = true
			go c.refresh(context.WithoutCancel(ctx), groupID)
		}
		c.mu.Unlock()
		return members, nil
	}
	c.mu.Unlock()
	return c.refresh(ctx, groupID)
}

// Refresh fetches every group now, keeping the last known membership of
// groups whose fetch fails. It returns the first error.
func (c *GroupCache) Refresh(ctx context.Context, groupIDs []string) error {
	var first error
	for _, id := range groupIDs {
		if _, err := c.refresh(ctx, id); err != nil && first == nil {
			first = err
		}
	}
	return first
}

// Run refreshes the groups every ttl until ctx ends.
func (c *GroupCache) Run(ctx context.Context, groupIDs []string) {
	if len(groupIDs) == 0 {
		return
	}
	_ = c.Refresh(ctx, groupIDs)
	t := time.NewTicker(c.ttl)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			_ = c.Refresh(ctx, groupIDs)
		}
	}
}

func (c *GroupCache) refresh(ctx context.Context, groupID string) (map[string]bool, error) {
	ids, err := c.fetch(ctx, groupID)
	c.mu.Lock()
	defer c.mu.Unlock()
	e := c.entries[groupID]
	if e == nil {
		e = &groupEntry{}
		c.entries[groupID] = e
	}
	e.refreshing = false
	if err != nil {
		e.lastErr = err
		if e.fetched.IsZero() {
			c.logger.Error("user group lookup failed and no membership is known: its members are refused until it succeeds",
				"group", groupID, "err", err)
			return nil, fmt.Errorf("resolve user group %s: %w", groupID, err)
		}
		c.logger.Warn("user group refresh failed; using the last known membership",
			"group", groupID, "members", len(e.members), "age", c.now().Sub(e.fetched).Round(time.Second), "err", err)
		return e.members, nil
	}
	members := make(map[string]bool, len(ids))
	for _, id := range ids {
		members[id] = true
	}
	if e.lastErr != nil {
		c.logger.Info("user group lookup recovered", "group", groupID, "members", len(members))
	}
	e.members, e.fetched, e.lastErr = members, c.now(), nil
	return members, nil
}
