package plivo

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// GCRA is the generic cell rate algorithm behind every Limiter of mpcbot:
// a token bucket of rate r and burst b written as one number, the
// theoretical arrival time (TAT). A request arriving at t may be sent at
// max(t, TAT − τ), where τ = (b−1)/r, and moves TAT to max(TAT, t) + 1/r.
// In any window of length T at most b + r·T requests are sent. The shared
// (Redis) limiter runs the same arithmetic in a script; this type is the
// in-process form and the reference for it.
type GCRA struct {
	// Interval is 1/r; Tolerance is (b−1)/r.
	Interval, Tolerance time.Duration
	// TAT is the theoretical arrival time; the zero value is a full bucket.
	TAT time.Time
	// PausedUntil is the end of the latest pause (zero: none asked).
	PausedUntil time.Time
}

// NewGCRA returns the state of a full bucket of rate r and burst b.
func NewGCRA(r rate.Limit, burst int) (GCRA, error) {
	if !(r > 0) || burst < 1 {
		return GCRA{}, fmt.Errorf("plivo: limiter: rate must be > 0 and burst >= 1, got %v and %d", float64(r), burst)
	}
	interval := time.Duration(float64(time.Second) / float64(r))
	if interval <= 0 {
		interval = 1
	}
	return GCRA{Interval: interval, Tolerance: time.Duration(burst-1) * interval}, nil
}

// Reserve books one request arriving at now and returns how long it waits,
// unless that wait would not end before maxWait (then nothing is booked).
func (g *GCRA) Reserve(now time.Time, maxWait time.Duration) (time.Duration, bool) {
	tat := g.TAT
	if tat.Before(now) {
		tat = now
	}
	wait := max(tat.Add(-g.Tolerance).Sub(now), 0)
	if wait > 0 && wait >= maxWait {
		return wait, false
	}
	g.TAT = tat.Add(g.Interval)
	return wait, true
}

// Pause makes no request be sent before until, and the next ones paced at
// the rate from then on (no fresh burst).
func (g *GCRA) Pause(until time.Time) {
	if until.After(g.PausedUntil) {
		g.PausedUntil = until
	}
	if t := until.Add(g.Tolerance); t.After(g.TAT) {
		g.TAT = t
	}
}

// Drain empties the bucket at now: the next request waits one interval.
func (g *GCRA) Drain(now time.Time) {
	if t := now.Add(g.Tolerance + g.Interval); t.After(g.TAT) {
		g.TAT = t
	}
}

// LocalLimiter is the in-process Limiter: one GCRA bucket behind a mutex.
type LocalLimiter struct {
	mu   sync.Mutex
	gcra GCRA
}

// NewLocalLimiter returns a Limiter of rate r (requests per second) and
// burst b, starting full.
func NewLocalLimiter(r rate.Limit, burst int) (*LocalLimiter, error) {
	g, err := NewGCRA(r, burst)
	if err != nil {
		return nil, err
	}
	return &LocalLimiter{gcra: g}, nil
}

// Reserve implements Limiter.
func (l *LocalLimiter) Reserve(_ context.Context, now time.Time, maxWait time.Duration) (time.Duration, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.gcra.Reserve(now, maxWait)
}

// Pause implements Limiter.
func (l *LocalLimiter) Pause(_ context.Context, _, until time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.gcra.Pause(until)
}

// PausedFor implements Limiter.
func (l *LocalLimiter) PausedFor(_ context.Context, now time.Time) time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	return max(l.gcra.PausedUntil.Sub(now), 0)
}

// Drain empties the bucket at now, e.g. for a fallback bucket that must not
// add a burst on top of what the shared one just let through.
func (l *LocalLimiter) Drain(now time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.gcra.Drain(now)
}

// LocalInFlight is the in-process InFlight log. It orders events with a
// logical clock (a counter), not wall time, so the answer does not depend
// on clocks; entries are forgotten after inFlightMemory.
type LocalInFlight struct {
	mu      sync.Mutex
	clock   uint64
	seq     uint64
	entries map[InFlightID]*inFlightEntry
	pruned  time.Time
}

type inFlightEntry struct {
	mpc     string // PathSegment
	member  Member
	fields  []Field
	sent    uint64 // logical time of the latest send
	done    uint64 // logical time the call returned; 0 while in flight
	started time.Time
}

// inFlightMemory is how long updates are remembered: longer than any call
// (and so any read back) lasts.
const inFlightMemory = 2 * time.Minute

// NewLocalInFlight returns an empty in-process InFlight log.
func NewLocalInFlight() *LocalInFlight {
	return &LocalInFlight{entries: map[InFlightID]*inFlightEntry{}}
}

// Begin implements InFlight.
func (l *LocalInFlight) Begin(_ context.Context, mpc MPC, member Member, fields []Field) InFlightID {
	now := time.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	if now.Sub(l.pruned) > time.Second {
		for id, e := range l.entries {
			if now.Sub(e.started) > inFlightMemory {
				delete(l.entries, id)
			}
		}
		l.pruned = now
	}
	l.clock++
	l.seq++
	id := InFlightID(fmt.Sprintf("local-%d", l.seq))
	l.entries[id] = &inFlightEntry{mpc: mpc.PathSegment(), member: member, fields: slices.Clone(fields), sent: l.clock, started: now}
	return id
}

// Resent implements InFlight.
func (l *LocalInFlight) Resent(_ context.Context, id InFlightID) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if e := l.entries[id]; e != nil {
		l.clock++
		e.sent = l.clock
	}
}

// End implements InFlight.
func (l *LocalInFlight) End(_ context.Context, id InFlightID) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if e := l.entries[id]; e != nil {
		l.clock++
		e.done = l.clock
	}
}

// ChangedSince implements InFlight.
func (l *LocalInFlight) ChangedSince(_ context.Context, id InFlightID, member Member, f Field) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	self := l.entries[id]
	if self == nil {
		// Forgotten: be safe, assume something else may have changed it.
		return true
	}
	for oid, e := range l.entries {
		if oid == id || e.mpc != self.mpc || (e.done != 0 && e.done < self.sent) {
			continue
		}
		if e.member != member && !e.member.IsAll() {
			continue
		}
		if slices.Contains(e.fields, f) {
			return true
		}
	}
	return false
}
