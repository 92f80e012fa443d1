package fleet

import (
	"context"
	"fmt"
	"slices"
	"sync"
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
// Reserve returned plus the wait) and by Redis's (the booked slot).
type sendLog struct {
	mu     sync.Mutex
	sends  []time.Time
	booked []time.Time
	maxRTT time.Duration
}

func (s *sendLog) hook(l *Limiter) {
	l.booked = func(slot time.Time) {
		s.mu.Lock()
		s.booked = append(s.booked, slot)
		s.mu.Unlock()
	}
}

// flood runs workers callers per limiter until stop, each reserving with a
// long maxWait and sleeping its wait, like plivo's client.
func (s *sendLog) flood(t *testing.T, limiters []plivo.Limiter, workers int, until time.Time) {
	var wg sync.WaitGroup
	for _, l := range limiters {
		for range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for time.Now().Before(until) {
					start := time.Now()
					wait, ok := l.Reserve(context.Background(), start, 10*time.Second)
					end := time.Now()
					if !ok {
						t.Errorf("refused with maxWait 10s (wait %v)", wait)
						return
					}
					s.mu.Lock()
					s.sends = append(s.sends, end.Add(wait))
					s.maxRTT = max(s.maxRTT, end.Sub(start))
					s.mu.Unlock()
					time.Sleep(wait)
				}
			}()
		}
	}
	wg.Wait()
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
	t.Parallel()
	const rate, burst = 200.0, 10
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
	log.flood(t, ls, 4, time.Now().Add(2*time.Second))
	sends, booked, maxRTT := log.snapshot()
	for _, f := range fs {
		if st := f.Status(); !st.Healthy {
			t.Fatalf("%s degraded during the flood: %s", f.ReplicaID(), st.Reason)
		}
	}
	if len(booked) != len(sends) {
		t.Fatalf("%d sends but %d shared bookings: some went to the fallback", len(sends), len(booked))
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
	t.Parallel()
	fs := openReplicas(t, 2, sharedRedis.URL(), func(c *Config) { c.Rate, c.Burst = 10, 5 })
	ctx := context.Background()
	now := time.Now()
	fs[0].Limiter().Pause(ctx, now, now.Add(400*time.Millisecond))
	var waits []time.Duration
	for range 3 {
		wait, ok := fs[1].Limiter().Reserve(ctx, time.Now(), time.Minute)
		if !ok {
			t.Fatal("refused with maxWait 1m")
		}
		waits = append(waits, wait+time.Since(now))
	}
	// Measured from the pause: ~400 ms, ~500 ms, ~600 ms.
	for i, w := range waits {
		want := 400*time.Millisecond + time.Duration(i)*100*time.Millisecond
		if w < want-20*time.Millisecond || w > want+50*time.Millisecond {
			t.Fatalf("after a 400ms pause by another replica, request %d may go at +%v, want ~%v (all: %v)", i, w, want, waits)
		}
	}
}

// TestReserveMeansWhatGCRAMeans compares the shared bucket with plivo.GCRA
// step by step: waits, refusals that book nothing, maxWait.
func TestReserveMeansWhatGCRAMeans(t *testing.T) {
	t.Parallel()
	f, _ := openFleet(t, func() Config {
		c := testConfig(t, sharedRedis.URL(), uniquePrefix(t))
		c.Rate, c.Burst = 10, 3 // interval 100 ms
		return c
	}())
	ctx := context.Background()
	l := f.Limiter()
	// A missing key is an empty bucket: the first request waits one
	// interval, and a refusal (maxWait below it) books nothing.
	if wait, ok := l.Reserve(ctx, time.Now(), 10*time.Millisecond); ok || !near(wait, 100*time.Millisecond) {
		t.Fatalf("first request on a missing key with maxWait 10ms: wait %v ok %v, want ~100ms refused", wait, ok)
	}
	start := time.Now()
	wait, ok := l.Reserve(ctx, time.Now(), time.Second)
	if !ok || !near(wait, 100*time.Millisecond) {
		t.Fatalf("first request on a missing key: wait %v ok %v, want ~100ms (empty bucket)", wait, ok)
	}
	wait, ok = l.Reserve(ctx, time.Now(), time.Second)
	if !ok || !near(wait+time.Since(start), 200*time.Millisecond) {
		t.Fatalf("second request: wait %v ok %v, want ~200ms after the first", wait, ok)
	}
	// Refill: after the bucket's full time (burst·interval) idle, a burst of
	// 3 goes at once (the key was kept: no empty-bucket penalty).
	time.Sleep(600 * time.Millisecond)
	for i := range 3 {
		if wait, ok := l.Reserve(ctx, time.Now(), time.Second); !ok || wait > 5*time.Millisecond {
			t.Fatalf("burst request %d after a refill: wait %v ok %v, want 0", i, wait, ok)
		}
	}
	if wait, ok := l.Reserve(ctx, time.Now(), 0); ok || !near(wait, 100*time.Millisecond) {
		t.Fatalf("over the burst with maxWait 0: wait %v ok %v, want ~100ms refused", wait, ok)
	}
}

func near(got, want time.Duration) bool {
	return got > want-25*time.Millisecond && got <= want+5*time.Millisecond
}

// TestRedisKilledMidFlood: three replicas flood; Redis is killed (each
// falls back to a drained local bucket at rate ÷ 3), then restarted empty
// (each rejoins the shared bucket, missing = empty). Over the whole run no
// window holds more than burst + rate·T (+ one round trip of jitter).
func TestRedisKilledMidFlood(t *testing.T) {
	t.Parallel()
	const rate, burst = 150.0, 9
	srv := newServer(t)
	fs := openReplicas(t, 3, srv.URL(), func(c *Config) { c.Rate, c.Burst = rate, burst })
	var log sendLog
	var ls []plivo.Limiter
	for _, f := range fs {
		log.hook(f.Limiter())
		ls = append(ls, f.Limiter())
	}
	start := time.Now()
	done := make(chan struct{})
	go func() {
		defer close(done)
		log.flood(t, ls, 3, start.Add(2400*time.Millisecond))
	}()
	time.Sleep(700 * time.Millisecond)
	if err := srv.Kill(); err != nil {
		t.Fatal(err)
	}
	killed := time.Now()
	waitFor(t, 2*time.Second, "every replica degraded", func() bool {
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
	waitFor(t, 3*time.Second, "every replica healthy again", func() bool {
		for _, f := range fs {
			if !f.Status().Healthy {
				return false
			}
		}
		return true
	})
	<-done
	sends, booked, maxRTT := log.snapshot()
	var during, after []time.Time
	for _, s := range sends {
		switch {
		case s.After(killed.Add(50*time.Millisecond)) && s.Before(restarted):
			during = append(during, s)
		}
	}
	for _, b := range booked {
		if b.After(restarted) {
			after = append(after, b)
		}
	}
	if len(after) == 0 {
		t.Fatal("no shared reservation after Redis came back")
	}
	t.Logf("%d sends; %d booked before the kill; %d sends while Redis was down (%.0f/s); %d booked after the restart; max round trip %v",
		len(sends), len(bookedBefore), len(during), float64(len(during))/restarted.Sub(killed).Seconds(), len(after), maxRTT)
	// One request of slack for the jitter of replies (the round trip that
	// met the kill took up to CallTimeout, and is no jitter of a send).
	checkBudget(t, "whole run", sends, rate, burst, 1)
	checkBudget(t, "while Redis was down", during, rate, burst, 1)
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
