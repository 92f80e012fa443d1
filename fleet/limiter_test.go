package fleet

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mpcbot/mpcbot/plivo"
)

// busiest returns the largest number of times in any window [t, t+w).
func busiest(times []time.Time, w time.Duration) int {
	ts := slices.Clone(times)
	slices.SortFunc(ts, func(a, b time.Time) int { return a.Compare(b) })
	best, j := 0, 0
	for i := range ts {
		for j < len(ts) && ts[j].Sub(ts[i]) < w {
			j++
		}
		best = max(best, j-i)
	}
	return best
}

// sendLog records when callers would send, by the caller's clock (the time
// Reserve returned plus the wait), and the slots the limiter booked (on
// Redis's clock for the shared bucket, the caller's for the fallback: the
// machine has one clock): the limiter's decisions, free of reply jitter.
type sendLog struct {
	mu     sync.Mutex
	sends  []time.Time
	booked []time.Time
	shared int // how many of booked are on the shared bucket
	maxRTT time.Duration
	delays []time.Duration // from asking to sending
}

func (s *sendLog) hook(l *Limiter) {
	l.booked = func(slot time.Time, shared bool) {
		s.mu.Lock()
		s.booked = append(s.booked, slot)
		if shared {
			s.shared++
		}
		s.mu.Unlock()
	}
}

// flood runs workers callers per limiter until stop says so, each reserving
// with a long maxWait and sleeping its wait, like plivo's client.
func (s *sendLog) flood(t *testing.T, limiters []plivo.Limiter, workers int, stop func() bool) {
	var wg sync.WaitGroup
	for _, l := range limiters {
		for range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for !stop() {
					start := time.Now()
					wait, ok := l.Reserve(context.Background(), start, 10*time.Second)
					end := time.Now()
					if !ok {
						t.Errorf("refused with maxWait 10s (wait %v)", wait)
						return
					}
					s.mu.Lock()
					s.sends = append(s.sends, end.Add(wait))
					s.delays = append(s.delays, end.Add(wait).Sub(start))
					s.maxRTT = max(s.maxRTT, end.Sub(start))
					s.mu.Unlock()
					time.Sleep(wait)
				}
			}()
		}
	}
	wg.Wait()
}

// delayQuantiles returns the median, 99th percentile and largest delay
// between asking for a slot and sending.
func (s *sendLog) delayQuantiles() (p50, p99, worst time.Duration) {
	s.mu.Lock()
	d := slices.Clone(s.delays)
	s.mu.Unlock()
	if len(d) == 0 {
		return 0, 0, 0
	}
	slices.Sort(d)
	return d[len(d)/2], d[len(d)*99/100], d[len(d)-1]
}

// sharedCount returns how many slots were booked on the shared bucket.
func (s *sendLog) sharedCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.shared
}

func (s *sendLog) snapshot() (sends, booked []time.Time, maxRTT time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.sends), slices.Clone(s.booked), s.maxRTT
}

// checkBudget fails if any window of times holds more than burst + rate·T
// (+ slack) requests.
func checkBudget(t *testing.T, what string, times []time.Time, rate float64, burst, slack int) {
	t.Helper()
	for _, w := range []time.Duration{100 * time.Millisecond, 250 * time.Millisecond, 500 * time.Millisecond, time.Second} {
		limit := burst + int(rate*w.Seconds())
		got := busiest(times, w)
		t.Logf("%s: busiest %v window: %d requests (burst+rate·T = %d)", what, w, got, limit)
		if got > limit+slack {
			t.Errorf("%s: %d requests in a window of %v, above burst+rate·T = %d (+%d slack)", what, got, w, limit, slack)
		}
	}
}

// until returns a stop function for flood: stop at deadline.
func until(deadline time.Time) func() bool {
	return func() bool { return !time.Now().Before(deadline) }
}

// sustained is the rate of the sends after the first burst, per second.
func sustained(times []time.Time, burst int) float64 {
	ts := slices.Clone(times)
	slices.SortFunc(ts, func(a, b time.Time) int { return a.Compare(b) })
	if len(ts) <= burst+1 {
		return 0
	}
	ts = ts[burst:]
	return float64(len(ts)-1) / ts[len(ts)-1].Sub(ts[0]).Seconds()
}

// TestFleetBudgetUnderFlood: three replicas flood one shared bucket; the
// booked slots (Redis clock) never exceed burst + rate·T in any window, the
// callers' send times only by what one round trip can shift, and the
// sustained rate is the configured one within 2 %.
func TestFleetBudgetUnderFlood(t *testing.T) {
	// Not parallel: it measures time.
	const rate, burst = 100.0, 10
	fs := openReplicas(t, 3, sharedRedis.URL(), func(c *Config) { c.Rate, c.Burst = rate, burst })
	// Fill the bucket first (a new key is an empty bucket), so that the
	// flood starts with a full burst.
	if _, ok := fs[0].Limiter().Reserve(context.Background(), time.Now(), time.Second); !ok {
		t.Fatal("refused")
	}
	time.Sleep(time.Duration(burst+1) * time.Second / rate)
	var log sendLog
	var ls []plivo.Limiter
	for _, f := range fs {
		log.hook(f.Limiter())
		ls = append(ls, f.Limiter())
	}
	// 24 callers keep ~240 ms of slots booked ahead: the bucket stays
	// saturated even when a busy machine delays a caller that long.
	log.flood(t, ls, 8, until(time.Now().Add(2*time.Second)))
	sends, booked, maxRTT := log.snapshot()
	for _, f := range fs {
		if st := f.Status(); !st.Healthy {
			t.Fatalf("%s degraded during the flood: %s", f.ReplicaID(), st.Reason)
		}
	}
	if n := log.sharedCount(); n != len(sends) {
		t.Fatalf("%d sends but %d shared bookings: some went to the fallback", len(sends), n)
	}
	checkBudget(t, "booked slots", booked, rate, burst, 0)
	// A caller sends up to one reply latency after its slot.
	checkBudget(t, "callers' sends", sends, rate, burst, int(rate*maxRTT.Seconds())+1)
	got := sustained(booked, burst)
	t.Logf("%d requests, sustained %.1f/s (configured %.0f/s), max Reserve round trip %v", len(sends), got, rate, maxRTT)
	if got < rate*0.98 || got > rate*1.02 {
		t.Errorf("sustained rate %.1f/s, want %.0f/s ±2%%", got, rate)
	}
}

// TestPauseHoldsTheFleet: a 429 seen by one replica pauses all of them, and
// the bucket resumes at its rate, without a fresh burst.
func TestPauseHoldsTheFleet(t *testing.T) {
	// Not parallel: it measures time.
	fs := openReplicas(t, 2, sharedRedis.URL(), func(c *Config) { c.Rate, c.Burst = 10, 5 })
	ctx := context.Background()
	now := time.Now()
	fs[0].Limiter().Pause(ctx, now, now.Add(400*time.Millisecond))
	paused := time.Now()
	for i := range 3 {
		start := time.Now()
		wait, ok := fs[1].Limiter().Reserve(ctx, start, time.Minute)
		end := time.Now()
		if !ok {
			t.Fatal("refused with maxWait 1m")
		}
		// Redis ran the pause between now and paused, and answered this
		// request between start and end: its slot, on this clock, lies in
		// [now, paused+(end−start)] + 400 ms + i intervals (no burst).
		slot := end.Add(wait)
		offset := 400*time.Millisecond + time.Duration(i)*100*time.Millisecond
		lo, hi := now.Add(offset-time.Millisecond), paused.Add(offset+end.Sub(start)+time.Millisecond)
		if slot.Before(lo) || slot.After(hi) {
			t.Fatalf("after a 400ms pause by another replica, request %d may go at +%v, want within [+%v, +%v]",
				i, slot.Sub(now), lo.Sub(now), hi.Sub(now))
		}
	}
}

// TestReserveMeansWhatGCRAMeans checks the shared bucket against
// plivo.GCRA's meaning: a missing key is an empty bucket, a refusal books
// nothing, slots are one interval apart (exactly, on Redis's clock), an
// idle bucket refills to a burst, maxWait refuses. Its checks hold however
// slow the machine is.
func TestReserveMeansWhatGCRAMeans(t *testing.T) {
	t.Parallel()
	const interval = 250 * time.Millisecond
	f, _ := openFleet(t, func() Config {
		c := testConfig(t, sharedRedis.URL(), uniquePrefix(t))
		c.Rate, c.Burst = 4, 3
		return c
	}())
	var log sendLog
	log.hook(f.Limiter())
	ctx := context.Background()
	l := f.Limiter()
	if wait, ok := l.Reserve(ctx, time.Now(), 0); ok || wait != interval {
		t.Fatalf("first request on a missing key with maxWait 0: wait %v ok %v, want %v refused (an empty bucket)", wait, ok, interval)
	}
	if wait, ok := l.Reserve(ctx, time.Now(), time.Minute); !ok || wait <= 0 || wait > interval {
		t.Fatalf("next request: wait %v ok %v, want at most one interval (the refusal booked nothing)", wait, ok)
	}
	if _, ok := l.Reserve(ctx, time.Now(), time.Minute); !ok {
		t.Fatal("refused with maxWait 1m")
	}
	_, slots, _ := log.snapshot()
	if len(slots) != 2 || slots[1].Sub(slots[0]) != interval {
		t.Fatalf("slots %v, want two, one interval apart", slots)
	}
	// Idle until the bucket is full again (3 intervals after the last
	// slot, with a margin), then a burst of 3 goes at once.
	time.Sleep(time.Until(slots[1].Add(4 * interval)))
	burstStart := time.Now()
	for i := range 3 {
		if wait, ok := l.Reserve(ctx, time.Now(), time.Minute); !ok || wait != 0 {
			t.Fatalf("burst request %d after a refill: wait %v ok %v, want 0", i, wait, ok)
		}
	}
	wait, ok := l.Reserve(ctx, time.Now(), 0)
	elapsed := time.Since(burstStart)
	switch {
	case ok && elapsed < interval:
		t.Fatalf("a 4th request within %v of a burst of 3 was let through", elapsed)
	case !ok && (wait <= 0 || wait > interval):
		t.Fatalf("a 4th request after a burst of 3: wait %v refused, want at most one interval", wait)
	}
}

// TestRedisKilledMidFlood: three replicas flood; Redis is killed (each
// falls back to a drained local bucket at rate ÷ 3), then restarted empty
// (each rejoins the shared bucket, missing = empty). Over the whole run no
// window holds more than burst + rate·T (+ one round trip of jitter).
func TestRedisKilledMidFlood(t *testing.T) {
	// Not parallel: it measures time.
	const rate, burst = 150.0, 9
	srv := newServer(t)
	fs := openReplicas(t, 3, srv.URL(), func(c *Config) { c.Rate, c.Burst = rate, burst })
	var log sendLog
	var ls []plivo.Limiter
	for _, f := range fs {
		log.hook(f.Limiter())
		ls = append(ls, f.Limiter())
	}
	var stop atomic.Bool
	done := make(chan struct{})
	go func() {
		defer close(done)
		log.flood(t, ls, 4, stop.Load)
	}()
	time.Sleep(700 * time.Millisecond)
	if err := srv.Kill(); err != nil {
		t.Fatal(err)
	}
	killed := time.Now()
	waitFor(t, 5*time.Second, "every replica degraded", func() bool {
		for _, f := range fs {
			if f.Status().Healthy {
				return false
			}
		}
		return true
	})
	_, bookedBefore, _ := log.snapshot()
	time.Sleep(700 * time.Millisecond)
	if err := srv.Restart(); err != nil {
		t.Fatal(err)
	}
	restarted := time.Now()
	sharedAtRestart := log.sharedCount()
	waitFor(t, 10*time.Second, "every replica healthy again", func() bool {
		for _, f := range fs {
			if !f.Status().Healthy {
				return false
			}
		}
		return true
	})
	time.Sleep(700 * time.Millisecond) // back on the shared bucket
	stop.Store(true)
	<-done
	sends, booked, maxRTT := log.snapshot()
	var during []time.Time
	for _, b := range booked {
		if b.After(killed) && b.Before(restarted) {
			during = append(during, b)
		}
	}
	t.Logf("%d sends; %d booked before the kill; %d booked while Redis was down (%.0f/s); %d shared bookings after the restart; max round trip %v",
		len(sends), len(bookedBefore), len(during), float64(len(during))/restarted.Sub(killed).Seconds(), log.sharedCount()-sharedAtRestart, maxRTT)
	if len(during) == 0 || log.sharedCount() == sharedAtRestart {
		t.Fatal("want the fallback used while Redis was down, then the shared bucket again")
	}
	// The decisions, across both switches: one request of slack, because a
	// replica knows only its own latest shared slot when it falls back.
	checkBudget(t, "whole run", booked, rate, burst, 1)
	checkBudget(t, "while Redis was down", during, rate, burst, 0)
	// The fallback buckets together should still use most of the budget.
	if got := float64(len(during)) / restarted.Sub(killed).Seconds(); got < rate*0.5 {
		t.Errorf("while Redis was down the replicas sent %.0f/s together, want about %.0f/s", got, rate)
	}
}

// TestFallbackRateIsShared checks the arithmetic of the fallback: rate and
// burst divided by the replicas last seen, drained at the switch.
func TestFallbackRateIsShared(t *testing.T) {
	t.Parallel()
	srv := newServer(t)
	fs := openReplicas(t, 4, srv.URL(), func(c *Config) { c.Rate, c.Burst = 40, 8 })
	srv.Kill()
	f := fs[0]
	waitFor(t, 2*time.Second, "degraded", func() bool { return !f.Status().Healthy })
	ctx := context.Background()
	now := time.Now()
	var waits []time.Duration
	for range 4 {
		wait, ok := f.Limiter().Reserve(ctx, now, time.Minute)
		if !ok {
			t.Fatal("refused")
		}
		waits = append(waits, wait)
	}
	// 40/s ÷ 4 = 10/s, burst 8 ÷ 4 = 2, drained: 100, 200, 300, 400 ms.
	want := []time.Duration{100 * time.Millisecond, 200 * time.Millisecond, 300 * time.Millisecond, 400 * time.Millisecond}
	if !slices.Equal(waits, want) {
		t.Fatalf("fallback waits %v, want %v (rate ÷ 4, drained)", waits, want)
	}
	if got := fmt.Sprint(f.Replicas()); got != "[r0 r1 r2 r3]" {
		t.Fatalf("Replicas() while Redis is down = %s, want the last seen", got)
	}
}

// TestCancelledCallerKeepsTheSharedBucket: a caller whose context ended
// gets no slot, and does not switch the replica to its fallback.
func TestCancelledCallerKeepsTheSharedBucket(t *testing.T) {
	t.Parallel()
	f, _ := openFleet(t, testConfig(t, sharedRedis.URL(), uniquePrefix(t)))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, ok := f.Limiter().Reserve(ctx, time.Now(), time.Minute); ok {
		t.Fatal("a slot for a cancelled caller")
	}
	f.Limiter().Pause(ctx, time.Now(), time.Now().Add(time.Second))
	f.Limiter().mu.Lock()
	local := f.Limiter().local
	f.Limiter().mu.Unlock()
	if local != nil || !f.Status().Healthy {
		t.Fatalf("a cancelled caller switched the limiter to its fallback (status %+v)", f.Status())
	}
}
