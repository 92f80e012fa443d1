package fleet

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/mpcbot/mpcbot/commands"
	"github.com/mpcbot/mpcbot/plivo"
)

// Timers is the fleet's commands.TimerStore. Timers live on Redis, so they
// survive the replica that set them and a due one is claimed by exactly one
// replica. While Redis is unreachable, new timers go to the process's own
// store (they end with the process, as without a fleet), and Claim, Cancel,
// Supersede and Pending keep covering both stores. What could not reach
// Redis is replayed when it answers again, before this replica claims
// anything there: a Done (so that the lease does not run the timer a second
// time) and a Supersede (so that a timer on Redis does not undo a person's
// later change; the replay touches only timers set before that change).
// Cancel of a timer that is not local fails while Redis does not answer.
type Timers struct {
	f      *Fleet
	shared *redisTimers
	local  *commands.LocalTimers

	mu             sync.Mutex
	doneLater      map[string]bool
	supersedeLater []laterSupersede

	// flushing is held by the one caller replaying supersedeLater, so
	// that an entry is replayed and removed once.
	flushing sync.Mutex
}

// laterSupersede is a Supersede that Redis did not get, made at at.
type laterSupersede struct {
	mpc     plivo.MPC
	members []plivo.Member
	fields  []plivo.Field
	at      time.Time
}

var _ commands.TimerStore = (*Timers)(nil)

// Add implements commands.TimerStore.
func (s *Timers) Add(ctx context.Context, t commands.Timer) error {
	err := s.shared.Add(ctx, t)
	if err == nil || errors.Is(err, errAlreadyPending) {
		return err
	}
	s.f.log.Warn("fleet: timer kept in this process only, the shared store failed", slog.String("timer", t.ID))
	return s.local.Add(ctx, t)
}

// Claim implements commands.TimerStore.
func (s *Timers) Claim(ctx context.Context, now time.Time, lease time.Duration) ([]commands.Timer, error) {
	s.flushDone(ctx)
	var out []commands.Timer
	if s.flushSupersede(ctx) {
		out, _ = s.shared.Claim(ctx, now, lease) // on failure: the local ones only
	}
	local, err := s.local.Claim(ctx, now, lease)
	if err != nil {
		return nil, err
	}
	if len(local) > 0 {
		// An Add whose answer was lost may have reached Redis after all:
		// then Redis's copy is the one that runs (once, fleet-wide).
		ids := make([]string, len(local))
		for i, t := range local {
			ids[i] = t.ID
		}
		if onRedis, err := s.shared.exist(ctx, ids); err == nil {
			for _, t := range local {
				if onRedis[t.ID] {
					s.local.Done(ctx, t.ID)
					continue
				}
				out = append(out, t)
			}
		} else {
			out = append(out, local...)
		}
	}
	commands.SortTimers(out)
	return out, nil
}

// Cancel implements commands.TimerStore.
func (s *Timers) Cancel(ctx context.Context, id string) (commands.Timer, bool, error) {
	t, ok, _ := s.local.Cancel(ctx, id)
	st, sok, err := s.shared.Cancel(ctx, id)
	switch {
	case sok:
		return st, true, nil
	case ok:
		return t, true, nil
	case err != nil:
		return commands.Timer{}, false, fmt.Errorf("fleet: cancel timer %s: the shared store did not answer: %w", id, err)
	}
	return commands.Timer{}, false, nil
}

// Supersede implements commands.TimerStore.
func (s *Timers) Supersede(ctx context.Context, mpc plivo.MPC, members []plivo.Member, fields []plivo.Field) ([]commands.Superseded, error) {
	at := time.Now()
	out, err := s.local.Supersede(ctx, mpc, members, fields)
	if err != nil {
		return nil, err
	}
	var shared []commands.Superseded
	flushed := s.flushSupersede(ctx)
	if flushed {
		shared, err = s.shared.Supersede(ctx, mpc, members, fields)
	}
	if !flushed || err != nil {
		s.mu.Lock()
		s.supersedeLater = append(s.supersedeLater, laterSupersede{mpc: mpc, members: members, fields: fields, at: at})
		s.mu.Unlock()
	}
	out = append(out, shared...)
	commands.SortSuperseded(out)
	return out, nil
}

// Done implements commands.TimerStore.
func (s *Timers) Done(ctx context.Context, id string) error {
	s.local.Done(ctx, id)
	if err := s.shared.Done(ctx, id); err != nil {
		s.mu.Lock()
		s.doneLater[id] = true
		s.mu.Unlock()
	}
	return nil
}

// Pending implements commands.TimerStore.
func (s *Timers) Pending(ctx context.Context) ([]commands.Timer, error) {
	out, err := s.local.Pending(ctx)
	if err != nil {
		return nil, err
	}
	shared, _ := s.shared.Pending(ctx) // on failure: the local ones only
	seen := map[string]bool{}
	for _, t := range out {
		seen[t.ID] = true
	}
	for _, t := range shared {
		if !seen[t.ID] {
			out = append(out, t)
		}
	}
	commands.SortTimers(out)
	return out, nil
}

// Local returns the timers kept in this process only (added while Redis
// did not answer): they end with the process, so a shutdown reports them.
func (s *Timers) Local(ctx context.Context) ([]commands.Timer, error) {
	return s.local.Pending(ctx)
}

// flushSupersede replays, in order, the Supersede calls Redis did not get,
// and reports whether none is left. Concurrent callers (every change and
// every timer tick flushes first) take turns: two replaying the same head
// would each remove one entry, dropping one never replayed.
func (s *Timers) flushSupersede(ctx context.Context) bool {
	s.flushing.Lock()
	defer s.flushing.Unlock()
	for {
		s.mu.Lock()
		if len(s.supersedeLater) == 0 {
			s.mu.Unlock()
			return true
		}
		next := s.supersedeLater[0]
		s.mu.Unlock()
		sup, err := s.shared.supersede(ctx, next.mpc, next.members, next.fields, next.at)
		if err != nil {
			return false
		}
		for _, x := range sup {
			s.f.log.Info("fleet: a change made while redis did not answer superseded a timer",
				slog.String("timer", x.Timer.ID), slog.Int("lost", len(x.Lost)), slog.Bool("finished", x.Timer.Finished()))
		}
		s.mu.Lock()
		s.supersedeLater = s.supersedeLater[1:]
		s.mu.Unlock()
	}
}

// flushDone retries the Done calls that failed, while Redis answers.
func (s *Timers) flushDone(ctx context.Context) {
	s.mu.Lock()
	ids := make([]string, 0, len(s.doneLater))
	for id := range s.doneLater {
		ids = append(ids, id)
	}
	s.mu.Unlock()
	for _, id := range ids {
		if s.shared.Done(ctx, id) != nil {
			return
		}
		s.mu.Lock()
		delete(s.doneLater, id)
		s.mu.Unlock()
	}
}
