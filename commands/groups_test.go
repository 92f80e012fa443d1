package commands

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"
)

// fetchScript is a GroupFetcher whose answers a test controls.
type fetchScript struct {
	mu      sync.Mutex
	members []string
	err     error
	calls   int
}

func (f *fetchScript) fetch(context.Context, string) ([]string, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	return f.members, f.err
}

func (f *fetchScript) set(members []string, err error) {
	f.mu.Lock()
	f.members, f.err = members, err
	f.mu.Unlock()
}

func TestGroupCacheOutageUsesLastKnown(t *testing.T) {
	t.Parallel()
	var logs lockedBuffer
	src := &fetchScript{members: []string{"U1"}}
	c := NewGroupCache(src.fetch, GroupCacheConfig{TTL: time.Minute, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	clock := &fakeClock{now: time.Unix(1000, 0)}
	c.now = clock.Now

	p, err := NewPolicy(PolicyConfig{Supervisors: []string{"SGRP"}, Groups: c})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if r, err := p.Role(ctx, "U1"); r != Supervisor || err != nil {
		t.Fatalf("first lookup: %v, %v", r, err)
	}
	// Slack goes down and the entry expires: the refresh fails, the last
	// known membership is used, and the failure is logged.
	src.set(nil, errors.New("slack: 503"))
	clock.Add(2 * time.Minute)
	if err := c.Refresh(ctx, []string{"SGRP"}); err != nil {
		t.Fatalf("Refresh with a known membership should not fail: %v", err)
	}
	if r, _ := p.Role(ctx, "U1"); r != Supervisor {
		t.Fatalf("during outage role = %v, want supervisor (last known)", r)
	}
	if !strings.Contains(logs.String(), "last known membership") {
		t.Fatalf("outage not logged: %s", logs.String())
	}
	// Slack comes back with a new membership.
	src.set([]string{"U2"}, nil)
	if err := c.Refresh(ctx, []string{"SGRP"}); err != nil {
		t.Fatal(err)
	}
	if r, _ := p.Role(ctx, "U1"); r != Stranger {
		t.Fatalf("after refresh U1 role = %v, want stranger", r)
	}
	if r, _ := p.Role(ctx, "U2"); r != Supervisor {
		t.Fatalf("after refresh U2 role = %v, want supervisor", r)
	}
}

func TestGroupCacheNeverFetchedFailsClosed(t *testing.T) {
	t.Parallel()
	src := &fetchScript{err: errors.New("slack down")}
	c := NewGroupCache(src.fetch, GroupCacheConfig{TTL: time.Minute})
	p, err := NewPolicy(PolicyConfig{Supervisors: []string{"SGRP"}, Groups: c})
	if err != nil {
		t.Fatal(err)
	}
	ref, err := p.Authorize(context.Background(), Requester{UserID: "U1", ChannelID: "C1"}, List{MPC: name(t, "m"), Page: 1})
	if ref == nil || ref.Code != RefusedNotAllowed {
		t.Fatalf("refusal = %+v, want not_allowed", ref)
	}
	if err == nil {
		t.Fatal("the group lookup error was not reported for the log")
	}
}

func TestGroupCacheStaleServedWhileRefreshing(t *testing.T) {
	t.Parallel()
	src := &fetchScript{members: []string{"U1"}}
	c := NewGroupCache(src.fetch, GroupCacheConfig{TTL: time.Minute})
	clock := &fakeClock{now: time.Unix(1000, 0)}
	c.now = clock.Now
	ctx := context.Background()
	if m, err := c.GroupMembers(ctx, "S1"); err != nil || !m["U1"] {
		t.Fatalf("GroupMembers = %v, %v", m, err)
	}
	src.set([]string{"U2"}, nil)
	clock.Add(30 * time.Minute)
	// Stale: the old answer at once, a refresh in the background.
	if m, _ := c.GroupMembers(ctx, "S1"); !m["U1"] {
		t.Fatalf("stale read = %v, want the last known membership", m)
	}
	eventually(t, "the background refresh", func() bool {
		m, _ := c.GroupMembers(ctx, "S1")
		return m["U2"]
	})
}

// lockedBuffer is a log destination safe for concurrent use.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string { l.mu.Lock(); defer l.mu.Unlock(); return l.b.String() }

// fakeClock is a clock a test moves by hand.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }

func (c *fakeClock) Add(d time.Duration) { c.mu.Lock(); c.now = c.now.Add(d); c.mu.Unlock() }

// gate is a GroupFetcher that blocks every lookup until the test releases
// it, and counts lookups per group.
type gate struct {
	mu      sync.Mutex
	release chan struct{}
	members []string
	err     error
	calls   map[string]int
}

func newGate(members []string, err error) *gate {
	return &gate{release: make(chan struct{}), members: members, err: err, calls: map[string]int{}}
}

func (g *gate) fetch(ctx context.Context, id string) ([]string, error) {
	g.mu.Lock()
	g.calls[id]++
	g.mu.Unlock()
	select {
	case <-g.release:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	return g.members, g.err
}

func (g *gate) open() { close(g.release) }

func (g *gate) count(id string) int { g.mu.Lock(); defer g.mu.Unlock(); return g.calls[id] }

// eventually polls cond until it holds, failing the test after a deadline.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// waiting returns how many callers wait for the group's lookup in flight.
func (c *GroupCache) waitingFor(id string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e := c.entries[id]; e != nil && e.lookup != nil {
		return e.lookup.waiting
	}
	return 0
}

func TestGroupCacheSingleFlight(t *testing.T) {
	tests := []struct {
		name    string
		members []string
		err     error
	}{
		{"success", []string{"U1"}, nil},
		{"transient failure", nil, errors.New("slack: 503")},
		{"permanent failure", nil, fmt.Errorf("slack: no_such_subteam: %w", ErrGroupGone)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			src := newGate(tt.members, tt.err)
			c := NewGroupCache(src.fetch, GroupCacheConfig{TTL: time.Minute})
			const callers = 20
			type result struct {
				members map[string]bool
				err     error
			}
			results := make(chan result, callers)
			for range callers {
				go func() {
					m, err := c.GroupMembers(context.Background(), "S1")
					results <- result{m, err}
				}()
			}
			eventually(t, "every caller to wait for the one lookup", func() bool { return c.waitingFor("S1") == callers })
			src.open()
			for range callers {
				r := <-results
				if (r.err != nil) != (tt.err != nil) || r.members["U1"] != (tt.err == nil) {
					t.Fatalf("GroupMembers = %v, %v; want the lookup's answer (err %v)", r.members, r.err, tt.err)
				}
				if tt.err != nil && !errors.Is(r.err, tt.err) {
					t.Fatalf("error %v does not wrap the fetcher's %v", r.err, tt.err)
				}
			}
			if n := src.count("S1"); n != 1 {
				t.Fatalf("%d lookups for %d callers, want 1", n, callers)
			}
		})
	}
}

func TestGroupCacheCallerGivingUpLeavesLookupToOthers(t *testing.T) {
	t.Parallel()
	src := newGate([]string{"U1"}, nil)
	c := NewGroupCache(src.fetch, GroupCacheConfig{TTL: time.Minute})
	ctx, cancel := context.WithCancel(context.Background())
	first := make(chan error, 1)
	go func() {
		_, err := c.GroupMembers(ctx, "S1")
		first <- err
	}()
	eventually(t, "the first caller to wait", func() bool { return c.waitingFor("S1") == 1 })
	second := make(chan map[string]bool, 1)
	go func() {
		m, _ := c.GroupMembers(context.Background(), "S1")
		second <- m
	}()
	eventually(t, "the second caller to wait", func() bool { return c.waitingFor("S1") == 2 })
	cancel()
	if err := <-first; !errors.Is(err, context.Canceled) {
		t.Fatalf("the caller that gave up got %v, want context.Canceled", err)
	}
	src.open()
	if m := <-second; !m["U1"] {
		t.Fatalf("the caller that waited got %v; the lookup was cancelled with the first caller", m)
	}
	if n := src.count("S1"); n != 1 {
		t.Fatalf("%d lookups, want 1", n)
	}
}

func TestGroupCacheFailsClosedWithAge(t *testing.T) {
	transient := errors.New("slack: 503")
	gone := fmt.Errorf("slack: missing_scope: %w", ErrGroupGone)
	tests := []struct {
		name   string
		age    time.Duration // since the last successful fetch
		err    error         // of the refresh
		member bool          // U1 still counts as a member
	}{
		{"transient, just stale", 2 * time.Minute, transient, true},
		{"transient, at the maximum", time.Hour, transient, true},
		{"transient, past the maximum", time.Hour + time.Second, transient, false},
		{"permanent, just stale", 2 * time.Minute, gone, false},
		{"permanent, within the TTL", 0, gone, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var logs lockedBuffer
			src := &fetchScript{members: []string{"U1"}}
			clock := &fakeClock{now: time.Unix(1000, 0)}
			c := NewGroupCache(src.fetch, GroupCacheConfig{TTL: time.Minute, MaxStale: time.Hour,
				Logger: slog.New(slog.NewTextHandler(&logs, nil))})
			c.now = clock.Now
			ctx := context.Background()
			if err := c.Refresh(ctx, []string{"S1"}); err != nil {
				t.Fatal(err)
			}
			src.set(nil, tt.err)
			clock.Add(tt.age)
			err := c.Refresh(ctx, []string{"S1"})
			if (err == nil) != tt.member {
				t.Fatalf("Refresh = %v, want an error: %v", err, !tt.member)
			}
			m, err := c.GroupMembers(ctx, "S1")
			if m["U1"] != tt.member {
				t.Fatalf("GroupMembers = %v, %v; U1 a member: %v, want %v", m, err, m["U1"], tt.member)
			}
			if !tt.member && err == nil {
				t.Fatal("a dropped group answered without an error")
			}
			if !strings.Contains(logs.String(), "S1") {
				t.Fatalf("the failure was not logged: %s", logs.String())
			}
		})
	}
}

func TestGroupCacheTooOldIsNotServed(t *testing.T) {
	t.Parallel()
	src := newGate([]string{"U2"}, nil)
	clock := &fakeClock{now: time.Unix(1000, 0)}
	c := NewGroupCache(src.fetch, GroupCacheConfig{TTL: time.Minute, MaxStale: 10 * time.Minute})
	c.now = clock.Now
	// A membership fetched once, then nothing (the background refreshes hang).
	c.mu.Lock()
	e := c.entry("S1")
	e.members, e.fetched = map[string]bool{"U1": true}, clock.Now()
	c.mu.Unlock()

	clock.Add(5 * time.Minute) // stale but usable: served at once, refreshed behind
	if m, err := c.GroupMembers(context.Background(), "S1"); err != nil || !m["U1"] {
		t.Fatalf("stale read = %v, %v; want the last known membership", m, err)
	}
	clock.Add(6 * time.Minute) // past MaxStale: the caller waits for the lookup
	got := make(chan map[string]bool, 1)
	go func() {
		m, _ := c.GroupMembers(context.Background(), "S1")
		got <- m
	}()
	eventually(t, "the caller to wait for the lookup", func() bool { return c.waitingFor("S1") == 1 })
	select {
	case m := <-got:
		t.Fatalf("a membership past MaxStale was served: %v", m)
	default:
	}
	src.open()
	if m := <-got; m["U1"] || !m["U2"] {
		t.Fatalf("after the lookup = %v, want the new membership", m)
	}
	if n := src.count("S1"); n != 1 {
		t.Fatalf("%d lookups, want 1 (the background refresh and the waiting caller share it)", n)
	}
}
