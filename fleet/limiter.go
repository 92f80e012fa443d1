package fleet

import (
	"context"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
	"golang.org/x/time/rate"

	"github.com/mpcbot/mpcbot/plivo"
)

// reserveScript is plivo.GCRA.Reserve on Redis's clock, in microseconds.
// KEYS[1] holds the fleet's TAT. ARGV: interval, tolerance, maxWait, floor,
// extra. The TAT becomes at least TAT+extra and now+floor (both > 0 when a
// replica rejoins after a fallback, see Limiter). A missing key is an empty
// bucket (TAT = now + tolerance + interval): after Redis lost its data, the
// replicas have just been sending on their fallback buckets, and a full
// bucket would let a fresh burst through on top of that; the price is one
// interval once (the key has no expiry, so it is missing only on first use
// or after a loss, not after the bucket refilled). Returns {booked 0|1,
// wait, slot}: slot is when the request may be sent, on Redis's clock.
var reserveScript = redis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval, tol = tonumber(ARGV[1]), tonumber(ARGV[2])
local maxwait, floor, extra = tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
local stored = tonumber(redis.call('GET', KEYS[1]))
local tat = stored
if not tat then tat = now + tol + interval end
tat = tat + extra
if tat < now + floor then tat = now + floor end
if tat < now then tat = now end
local wait = tat - tol - now
if wait < 0 then wait = 0 end
if wait > 0 and wait >= maxwait then
  if tat ~= stored then redis.call('SET', KEYS[1], string.format('%.0f', tat)) end
  return {0, wait, now + wait}
end
redis.call('SET', KEYS[1], string.format('%.0f', tat + interval))
return {1, wait, now + wait}
`)

// pauseScript is plivo.GCRA.Pause on Redis's clock: KEYS[1] holds the TAT,
// KEYS[2] marks the running pause (its TTL is what is left of it, see
// PausedFor); ARGV: interval, tolerance, pause (µs from now).
var pauseScript = redis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval, tol, pause = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local tat = tonumber(redis.call('GET', KEYS[1]))
if not tat then tat = now + tol + interval end
if tat < now + pause + tol then tat = now + pause + tol end
redis.call('SET', KEYS[1], string.format('%.0f', tat))
local ms = math.ceil(pause / 1000)
if ms > redis.call('PTTL', KEYS[2]) then redis.call('SET', KEYS[2], 1, 'PX', ms) end
return 1
`)

// Limiter is the fleet's plivo.Limiter: one GCRA bucket on Redis, so that
// all replicas together never send more than burst + rate·T requests in any
// window T. Each Reserve is one script call that books a future slot (FIFO
// pacing, no polling). When Redis fails, the replica switches to a local
// bucket of rate ÷ replicas and burst ÷ replicas (at least 1), drained at
// the switch (after the latest slot this replica booked on the shared
// one); when Redis answers again, the first shared reservation starts the
// shared bucket drained after every slot this replica booked, carries a
// pause asked meanwhile, and charges it one interval for each slot still to
// be sent from the fallback, so neither switch adds a burst on top of what
// was sent or booked. The fallback books at most fallbackAhead ahead, so
// that after a blip of Redis the slots it already booked add little to the
// shared budget.
type Limiter struct {
	f                   *Fleet
	rate                rate.Limit
	burst               int
	interval, tolerance int64 // µs, interval rounded up

	mu          sync.Mutex
	local       *plivo.LocalLimiter // the fallback while in use; nil on the shared bucket
	pausedUntil time.Time           // the latest pause asked of this replica (its clock)
	horizon     time.Time           // the latest slot this replica booked (its clock)
	localSlots  []time.Time         // the slots booked on the fallback bucket (its clock)
	rejoining   bool                // a reservation is carrying localSlots to Redis

	// booked, when set (tests), is told every slot booked: on the shared
	// bucket by Redis's clock, on the fallback by the caller's.
	booked func(slot time.Time, shared bool)
}

var _ plivo.Limiter = (*Limiter)(nil)

func newLimiter(f *Fleet) *Limiter {
	g, _ := plivo.NewGCRA(f.cfg.Rate, f.cfg.Burst) // validated by Open
	interval := (g.Interval.Nanoseconds() + 999) / 1000
	return &Limiter{f: f, rate: f.cfg.Rate, burst: f.cfg.Burst,
		interval: interval, tolerance: int64(f.cfg.Burst-1) * interval}
}

// Reserve implements plivo.Limiter. On the shared bucket, now is ignored:
// Redis's clock decides. On the fallback bucket, a caller whose slot would
// be more than fallbackAhead away is held here, unbooked, and asks again
// when it is near (see fallbackAhead).
func (l *Limiter) Reserve(ctx context.Context, now time.Time, maxWait time.Duration) (time.Duration, bool) {
	for {
		wait, ok, hold := l.reserveOnce(ctx, now, maxWait)
		if hold <= 0 {
			return wait, ok
		}
		start := time.Now()
		timer := time.NewTimer(hold)
		select {
		case <-ctx.Done():
			timer.Stop()
			return 0, false
		case <-timer.C:
		}
		held := time.Since(start)
		now, maxWait = now.Add(held), maxWait-held
	}
}

// reserveOnce books a slot on the shared bucket, or on the fallback one
// when Redis fails; hold > 0 says the fallback's slot is too far ahead to
// book yet: ask again after hold.
func (l *Limiter) reserveOnce(ctx context.Context, now time.Time, maxWait time.Duration) (wait time.Duration, ok bool, hold time.Duration) {
	l.mu.Lock()
	rejoin := l.local != nil
	floor, extra, carry := int64(0), int64(0), false
	if rejoin {
		// Start after every slot this replica booked (Redis may have lost
		// the shared ones), with no burst, and not before a pause asked
		// meanwhile ends.
		floor = max(0, l.horizon.Sub(now).Microseconds()) + l.tolerance + l.interval
		if p := l.pausedUntil.Sub(now); p > 0 {
			floor = max(floor, p.Microseconds()+l.tolerance)
		}
		// And when the shared bucket is further ahead than that, the
		// slots still to be sent from the local bucket come on top: they
		// are charged to it, by one reservation only.
		if !l.rejoining {
			l.rejoining, carry = true, true
			for _, slot := range l.localSlots {
				if slot.After(now) {
					extra += l.interval
				}
			}
		}
	}
	l.mu.Unlock()

	var res []int64
	err := l.f.do(ctx, "limiter reserve", func(ctx context.Context) error {
		var err error
		res, err = reserveScript.Run(ctx, l.f.rdb, []string{l.f.key("limiter")},
			l.interval, l.tolerance, maxWait.Microseconds(), floor, extra).Int64Slice()
		return err
	})
	if carry {
		l.mu.Lock()
		l.rejoining = false
		if err == nil {
			l.localSlots = nil
		}
		l.mu.Unlock()
	}
	if err == nil && len(res) == 3 {
		wait, ok = time.Duration(res[1])*time.Microsecond, res[0] == 1
		l.mu.Lock()
		if rejoin {
			l.local = nil
			l.localSlots = nil
		}
		if ok {
			l.noteSlot(time.Now().Add(wait))
		}
		l.mu.Unlock()
		if l.booked != nil && ok {
			l.booked(time.UnixMicro(res[2]), true)
		}
		return wait, ok, 0
	}
	if err != nil && ctx.Err() != nil {
		// The caller gave up: not Redis's fault, nothing to send.
		return 0, false, 0
	}
	local := l.fallback(now)
	wait, ok = local.Reserve(ctx, now, min(maxWait, fallbackAhead))
	if ok {
		l.mu.Lock()
		l.noteSlot(now.Add(wait))
		l.localSlots = append(slices.DeleteFunc(l.localSlots, func(s time.Time) bool { return !s.After(now) }), now.Add(wait))
		l.mu.Unlock()
		if l.booked != nil {
			l.booked(now.Add(wait), false)
		}
		return wait, true, 0
	}
	if wait >= maxWait {
		return wait, false, 0
	}
	// Further ahead than the fallback books: nothing booked; ask again
	// (the shared bucket first: Redis may be back by then) when it is near.
	return wait, false, wait - fallbackAhead + time.Millisecond
}

// fallbackAhead bounds how far ahead a replica books slots on its fallback
// bucket. Slots booked there are sent even after Redis answers again, on
// top of the shared bucket the other replicas use; a caller whose slot
// would be further ahead waits unbooked and asks again when it is near.
// After a blip of Redis, a replica's fallback adds at most about
// fallbackAhead × its fallback rate to the fleet's budget.
const fallbackAhead = time.Second

// noteSlot records a booked slot; l.mu is held.
func (l *Limiter) noteSlot(slot time.Time) {
	if slot.After(l.horizon) {
		l.horizon = slot
	}
}

// Pause implements plivo.Limiter: the whole fleet waits until until. The
// pause is also kept locally, for the fallback bucket and for the shared
// one when this replica rejoins.
func (l *Limiter) Pause(ctx context.Context, now, until time.Time) {
	if !until.After(now) {
		return
	}
	l.mu.Lock()
	if until.After(l.pausedUntil) {
		l.pausedUntil = until
	}
	local := l.local
	l.mu.Unlock()
	if local != nil {
		local.Pause(ctx, now, until)
	}
	err := l.f.do(ctx, "limiter pause", func(ctx context.Context) error {
		return pauseScript.Run(ctx, l.f.rdb, []string{l.f.key("limiter"), l.f.key("limiter:pause")},
			l.interval, l.tolerance, until.Sub(now).Microseconds()).Err()
	})
	if err != nil && local == nil && ctx.Err() == nil {
		l.fallback(now) // created paused
	}
}

// PausedFor implements plivo.Limiter: what is left of the fleet's pause, by
// Redis's clock (one PTTL). On the fallback bucket, or when Redis does not
// answer, the pauses this replica knows of.
func (l *Limiter) PausedFor(ctx context.Context, now time.Time) time.Duration {
	l.mu.Lock()
	local, own := l.local, max(l.pausedUntil.Sub(now), 0)
	l.mu.Unlock()
	if local != nil {
		return max(local.PausedFor(ctx, now), own)
	}
	var left time.Duration
	err := l.f.do(ctx, "limiter paused", func(ctx context.Context) error {
		var err error
		left, err = l.f.rdb.PTTL(ctx, l.f.key("limiter:pause")).Result()
		return err
	})
	if err != nil {
		return own
	}
	return max(left, 0) // -2 (no key) and -1 (no TTL, never set so) are "none"
}

// fallback returns the local bucket, creating it at the switch from the
// shared one: drained at the latest slot this replica booked there (slots
// already booked are still to be sent), and paused if a pause is running.
func (l *Limiter) fallback(now time.Time) *plivo.LocalLimiter {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.local != nil {
		return l.local
	}
	n := l.f.replicaCount()
	r, b := l.rate/rate.Limit(n), max(1, l.burst/n)
	local, err := plivo.NewLocalLimiter(r, b)
	if err != nil { // unreachable: r > 0 and b >= 1
		panic(err)
	}
	local.Drain(latest(now, l.horizon))
	if l.pausedUntil.After(now) {
		local.Pause(context.Background(), now, l.pausedUntil)
	}
	l.local = local
	l.f.log.Info("fleet: limiter on a local bucket until redis answers",
		slog.Float64("rate", float64(r)), slog.Int("burst", b), slog.Int("replicas", n))
	return local
}

func latest(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}
