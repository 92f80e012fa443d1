package commands

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"
)

// GroupFetcher returns the user ids in a user group, from the source of
// truth (Slack's usergroups.users.list). An error that will not go away by
// trying again wraps ErrGroupGone.
type GroupFetcher func(ctx context.Context, groupID string) ([]string, error)

// ErrGroupGone marks a permanent user-group lookup failure: the group does
// not exist any more, or mpcbot may not read it (Slack's no_such_subteam,
// missing_scope, plan_upgrade_required, invalid_auth, …). A GroupFetcher
// wraps it (fmt.Errorf("…: %w", ErrGroupGone)); the cache then drops the
// group's last known members at once instead of serving them.
var ErrGroupGone = errors.New("user group gone or not readable")

// Defaults of GroupCacheConfig.
const (
	// DefaultGroupTTL is the default MPC_GROUP_TTL.
	DefaultGroupTTL = 5 * time.Minute
	// DefaultGroupMaxStale is the default MPC_GROUP_MAX_STALE.
	DefaultGroupMaxStale = time.Hour
	// DefaultGroupFetchTimeout bounds one usergroups.users.list lookup.
	DefaultGroupFetchTimeout = 10 * time.Second
)

// GroupCacheConfig configures a GroupCache.
type GroupCacheConfig struct {
	// TTL is how long a membership is used before it is refreshed
	// (MPC_GROUP_TTL); 0 means DefaultGroupTTL.
	TTL time.Duration
	// MaxStale is how long past its fetch a membership may still be used
	// while refreshes fail with transient errors (MPC_GROUP_MAX_STALE); 0
	// means DefaultGroupMaxStale. Older, it is dropped: its members are
	// refused until a lookup succeeds.
	MaxStale time.Duration
	// FetchTimeout bounds one lookup, which every caller waiting for the
	// group shares; 0 means DefaultGroupFetchTimeout.
	FetchTimeout time.Duration
	// Logger receives lookup failures and recoveries; nil discards them.
	Logger *slog.Logger
}

// GroupCache caches user-group membership for a TTL, failing closed with
// age. A membership older than the TTL is served at once while it is
// refreshed in the background. When a refresh fails with a transient error
// (a Slack outage) the last known membership keeps being used, for at most
// MaxStale past its fetch; a permanent error (ErrGroupGone) drops it at
// once. A caller with no usable membership waits for a lookup, and a
// failure then grants nothing. There is one lookup at a time per group:
// callers asking meanwhile wait for its answer.
type GroupCache struct {
	fetch  GroupFetcher
	cfg    GroupCacheConfig
	logger *slog.Logger
	now    func() time.Time

	mu      sync.Mutex
	entries map[string]*groupEntry
}

type groupEntry struct {
	members map[string]bool
	fetched time.Time // zero: no usable membership
	lastErr error
	lookup  *groupLookup // in flight, or nil
}

// groupLookup is one fetch of a group that any number of callers wait for.
type groupLookup struct {
	done    chan struct{}
	members map[string]bool // set before done is closed
	err     error
	waiting int // callers waiting, for tests
}

// NewGroupCache returns a cache over fetch configured by cfg.
func NewGroupCache(fetch GroupFetcher, cfg GroupCacheConfig) *GroupCache {
	if cfg.TTL <= 0 {
		cfg.TTL = DefaultGroupTTL
	}
	if cfg.MaxStale <= 0 {
		cfg.MaxStale = DefaultGroupMaxStale
	}
	if cfg.FetchTimeout <= 0 {
		cfg.FetchTimeout = DefaultGroupFetchTimeout
	}
	logger := cfg.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &GroupCache{fetch: fetch, cfg: cfg, logger: logger, now: time.Now, entries: map[string]*groupEntry{}}
}

// GroupMembers implements GroupMembers.
func (c *GroupCache) GroupMembers(ctx context.Context, groupID string) (map[string]bool, error) {
	c.mu.Lock()
	e := c.entry(groupID)
	if members := e.members; !e.fetched.IsZero() {
		age := c.now().Sub(e.fetched)
		if age < c.cfg.TTL {
			c.mu.Unlock()
			return members, nil
		}
		if age <= c.cfg.MaxStale {
			c.start(ctx, groupID, e)
			c.mu.Unlock()
			return members, nil
		}
	}
	l := c.start(ctx, groupID, e)
	l.waiting++
	c.mu.Unlock()
	return c.wait(ctx, groupID, l)
}

// Refresh looks every group up now (joining lookups in flight), keeping
// the last known membership of groups whose lookup fails transiently
// within MaxStale. It returns the first error.
func (c *GroupCache) Refresh(ctx context.Context, groupIDs []string) error {
	var first error
	for _, id := range groupIDs {
		c.mu.Lock()
		l := c.start(ctx, id, c.entry(id))
		l.waiting++
		c.mu.Unlock()
		if _, err := c.wait(ctx, id, l); err != nil && first == nil {
			first = err
		}
	}
	return first
}

// Run refreshes the groups every TTL until ctx ends.
func (c *GroupCache) Run(ctx context.Context, groupIDs []string) {
	if len(groupIDs) == 0 {
		return
	}
	_ = c.Refresh(ctx, groupIDs)
	t := time.NewTicker(c.cfg.TTL)
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

// entry returns the group's entry, creating it. c.mu is held.
func (c *GroupCache) entry(groupID string) *groupEntry {
	e := c.entries[groupID]
	if e == nil {
		e = &groupEntry{}
		c.entries[groupID] = e
	}
	return e
}

// start returns the group's lookup in flight, starting one if there is
// none. The lookup is not cancelled with ctx (others may wait for it); it
// is bounded by FetchTimeout. c.mu is held.
func (c *GroupCache) start(ctx context.Context, groupID string, e *groupEntry) *groupLookup {
	if e.lookup != nil {
		return e.lookup
	}
	l := &groupLookup{done: make(chan struct{})}
	e.lookup = l
	go func() {
		fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), c.cfg.FetchTimeout)
		defer cancel()
		ids, err := c.fetch(fctx, groupID)
		c.mu.Lock()
		defer c.mu.Unlock()
		l.members, l.err = c.settle(groupID, e, ids, err)
		e.lookup = nil
		close(l.done)
	}()
	return l
}

// wait waits for l's answer, or for ctx to end.
func (c *GroupCache) wait(ctx context.Context, groupID string, l *groupLookup) (map[string]bool, error) {
	defer func() {
		c.mu.Lock()
		l.waiting--
		c.mu.Unlock()
	}()
	select {
	case <-l.done:
		return l.members, l.err
	case <-ctx.Done():
		return nil, fmt.Errorf("resolve user group %s: %w", groupID, ctx.Err())
	}
}

// settle records the result of a lookup in e and returns what its callers
// are told. c.mu is held.
func (c *GroupCache) settle(groupID string, e *groupEntry, ids []string, err error) (map[string]bool, error) {
	now := c.now()
	if err == nil {
		members := make(map[string]bool, len(ids))
		for _, id := range ids {
			members[id] = true
		}
		if e.lastErr != nil {
			c.logger.Info("user group lookup recovered", "group", groupID, "members", len(members))
		}
		e.members, e.fetched, e.lastErr = members, now, nil
		return members, nil
	}
	e.lastErr = err
	age := now.Sub(e.fetched)
	switch {
	case errors.Is(err, ErrGroupGone):
		c.logger.Error("user group lookup failed for good: its members are refused until it succeeds",
			"group", groupID, "err", err)
	case e.fetched.IsZero():
		c.logger.Error("user group lookup failed and no membership is known: its members are refused until it succeeds",
			"group", groupID, "err", err)
	case age > c.cfg.MaxStale:
		c.logger.Error("user group lookup failed and the last known membership is too old: its members are refused until it succeeds",
			"group", groupID, "age", age.Round(time.Second), "max_stale", c.cfg.MaxStale, "err", err)
	default:
		c.logger.Warn("user group refresh failed; using the last known membership",
			"group", groupID, "members", len(e.members), "age", age.Round(time.Second), "err", err)
		return e.members, nil
	}
	e.members, e.fetched = nil, time.Time{}
	return nil, fmt.Errorf("resolve user group %s: %w", groupID, err)
}
