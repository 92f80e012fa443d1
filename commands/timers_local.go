package commands

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/mpcbot/mpcbot/plivo"
)

// LocalTimers is the in-process TimerStore: the pending timers of one
// process, gone with it (a single process reports them on shutdown; a fleet
// uses the shared store and this one only while Redis is unreachable).
type LocalTimers struct {
	mu     sync.Mutex
	timers map[string]*localTimer
}

type localTimer struct {
	timer Timer
	// claimedUntil is when a claim of the timer lapses; zero: not claimed.
	claimedUntil time.Time
}

var _ TimerStore = (*LocalTimers)(nil)

// NewLocalTimers returns an empty in-process TimerStore.
func NewLocalTimers() *LocalTimers {
	return &LocalTimers{timers: map[string]*localTimer{}}
}

// Add implements TimerStore. Adding an id that is already pending is an
// error.
func (s *LocalTimers) Add(_ context.Context, t Timer) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.timers[t.ID]; ok {
		return fmt.Errorf("add timer %s: already pending", t.ID)
	}
	s.timers[t.ID] = &localTimer{timer: t}
	return nil
}

// Supersede implements TimerStore.
func (s *LocalTimers) Supersede(_ context.Context, mpc plivo.MPC, members []plivo.Member, fields []plivo.Field) ([]Superseded, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Superseded
	for id, lt := range s.timers {
		if !lt.timer.SameMPC(mpc) {
			continue
		}
		after, lost := lt.timer.Supersede(members, fields)
		if len(lost) == 0 {
			continue
		}
		if after.Finished() {
			delete(s.timers, id)
		} else {
			lt.timer = after
		}
		out = append(out, Superseded{Timer: after, Lost: lost})
	}
	SortSuperseded(out)
	return out, nil
}

// Cancel implements TimerStore.
func (s *LocalTimers) Cancel(_ context.Context, id string) (Timer, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	lt, ok := s.timers[id]
	if !ok {
		return Timer{}, false, nil
	}
	delete(s.timers, id)
	return lt.timer, true, nil
}

// Claim implements TimerStore.
func (s *LocalTimers) Claim(_ context.Context, now time.Time, lease time.Duration) ([]Timer, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Timer
	for _, lt := range s.timers {
		if lt.timer.Due.After(now) || lt.claimedUntil.After(now) {
			continue
		}
		lt.claimedUntil = now.Add(lease)
		out = append(out, lt.timer)
	}
	SortTimers(out)
	return out, nil
}

// Done implements TimerStore.
func (s *LocalTimers) Done(_ context.Context, id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.timers, id)
	return nil
}

// Pending implements TimerStore.
func (s *LocalTimers) Pending(context.Context) ([]Timer, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]Timer, 0, len(s.timers))
	for _, lt := range s.timers {
		out = append(out, lt.timer)
	}
	SortTimers(out)
	return out, nil
}

// SortTimers orders timers by due time, then id: the order every
// TimerStore returns them in.
func SortTimers(ts []Timer) {
	slices.SortFunc(ts, func(a, b Timer) int {
		if c := a.Due.Compare(b.Due); c != 0 {
			return c
		}
		return cmp.Compare(a.ID, b.ID)
	})
}

// SortSuperseded orders the result of Supersede like SortTimers.
func SortSuperseded(ss []Superseded) {
	slices.SortFunc(ss, func(a, b Superseded) int {
		if c := a.Timer.Due.Compare(b.Timer.Due); c != 0 {
			return c
		}
		return cmp.Compare(a.Timer.ID, b.Timer.ID)
	})
}

// Local implements ProcessTimers: every pending timer of this store ends
// with the process.
func (l *LocalTimers) Local(ctx context.Context) ([]Timer, error) { return l.Pending(ctx) }
