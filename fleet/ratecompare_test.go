package fleet

// The shared limiter against go-redis/redis_rate (GCRA too, but allow/deny:
// a denied caller sleeps RetryAfter and asks again). Run:
//
//	go test ./fleet -run TestCompareFlood -v
//	go test ./fleet -run '^$' -bench 'Reserve|Allow|Flood' -count 6

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-redis/redis_rate/v10"
	"github.com/redis/go-redis/v9"

	"github.com/mpcbot/mpcbot/plivo"
)

// pollingLimiter is a plivo.Limiter on redis_rate: it polls Allow until
// allowed (sleeping RetryAfter in between) or maxWait would pass. It
// returns wait 0 once allowed: the caller already waited.
type pollingLimiter struct {
	rl     *redis_rate.Limiter
	key    string
	limit  redis_rate.Limit
	trips  *atomic.Int64
	errors *atomic.Int64
}

func newPollingLimiter(rdb *redis.Client, key string, rate, burst int) *pollingLimiter {
	return &pollingLimiter{rl: redis_rate.NewLimiter(rdb), key: key,
		limit: redis_rate.Limit{Rate: rate, Burst: burst, Period: time.Second},
		trips: &atomic.Int64{}, errors: &atomic.Int64{}}
}

func (p *pollingLimiter) Reserve(ctx context.Context, _ time.Time, maxWait time.Duration) (time.Duration, bool) {
	start := time.Now()
	for {
		p.trips.Add(1)
		res, err := p.rl.Allow(ctx, p.key, p.limit)
		if err != nil {
			p.errors.Add(1)
			return 0, false
		}
		if res.Allowed > 0 {
			return 0, true
		}
		waited := time.Since(start)
		if waited+res.RetryAfter >= maxWait {
			return waited + res.RetryAfter, false
		}
		time.Sleep(res.RetryAfter)
	}
}

func (p *pollingLimiter) Pause(context.Context, time.Time, time.Time) {}

func (p *pollingLimiter) PausedFor(context.Context, time.Time) time.Duration { return 0 }

// TestCompareFlood floods both limiters the same way (three replicas, eight
// callers each, 100/s, burst 10) and reports the busiest windows, the
// sustained rate and the Redis round trips per request. Both must respect
// burst + rate·T; the shared limiter must also hold the rate within 2 %
// with one round trip per request.
func TestCompareFlood(t *testing.T) {
	// Not parallel: it measures time.
	const rate, burst, replicas, workers = 100, 10, 3, 8
	const run = 1500 * time.Millisecond

	t.Run("fleet", func(t *testing.T) {
		fs := openReplicas(t, replicas, sharedRedis.URL(), func(c *Config) { c.Rate, c.Burst = rate, burst })
		var log sendLog
		var ls []plivo.Limiter
		for _, f := range fs {
			ls = append(ls, f.Limiter())
		}
		for _, f := range fs {
			log.hook(f.Limiter()) // one hook call per script call that booked
		}
		log.flood(t, ls, workers, until(time.Now().Add(run)))
		sends, booked, maxRTT := log.snapshot()
		report(t, &log, sends, rate, burst, maxRTT, float64(log.sharedCount())/float64(len(sends)))
		// The rate of the booked slots (Redis clock), free of reply jitter.
		if got := sustained(booked, burst); got < rate*0.98 || got > rate*1.02 {
			t.Errorf("sustained %.1f/s, want %d/s ±2%%", got, rate)
		}
	})
	t.Run("redis_rate", func(t *testing.T) {
		prefix := uniquePrefix(t)
		var ls []plivo.Limiter
		var all []*pollingLimiter
		for range replicas {
			p := newPollingLimiter(client(t, sharedRedis.URL()), prefix+"limiter", rate, burst)
			ls = append(ls, p)
			all = append(all, p)
		}
		var log sendLog
		log.flood(t, ls, workers, until(time.Now().Add(run)))
		sends, _, maxRTT := log.snapshot()
		var trips, errs int64
		for _, p := range all {
			trips += p.trips.Load()
			errs += p.errors.Load()
		}
		if errs > 0 {
			t.Fatalf("%d redis_rate errors", errs)
		}
		report(t, &log, sends, rate, burst, maxRTT, float64(trips)/float64(len(sends)))
	})
}

func report(t *testing.T, log *sendLog, sends []time.Time, rate float64, burst int, maxRTT time.Duration, tripsPerRequest float64) {
	t.Helper()
	// A caller sends up to one reply latency after the decision.
	checkBudget(t, "sends", sends, rate, burst, int(rate*maxRTT.Seconds())+1)
	p50, p99, worst := log.delayQuantiles()
	t.Logf("%d requests, sustained %.1f/s (configured %.0f/s), %.2f Redis round trips per request, delay ask→send p50 %v p99 %v max %v",
		len(sends), sustained(sends, burst), rate, tripsPerRequest, p50.Round(time.Millisecond), p99.Round(time.Millisecond), worst.Round(time.Millisecond))
}

// BenchmarkReserve is the cost of one decision of the shared limiter (one
// script call), at a rate that never makes a caller wait.
func BenchmarkReserve(b *testing.B) {
	f, _ := openFleet(b, func() Config {
		c := testConfig(b, sharedRedis.URL(), uniquePrefix(b))
		c.Rate, c.Burst = 1e7, 1000
		return c
	}())
	ctx := context.Background()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			f.Limiter().Reserve(ctx, time.Now(), time.Second)
		}
	})
	if !f.Status().Healthy {
		b.Fatal("degraded during the benchmark")
	}
}

// BenchmarkAllowRedisRate is the cost of one redis_rate decision, likewise.
func BenchmarkAllowRedisRate(b *testing.B) {
	rl := redis_rate.NewLimiter(client(b, sharedRedis.URL()))
	key := uniquePrefix(b) + "limiter"
	limit := redis_rate.Limit{Rate: 10_000_000, Burst: 1000, Period: time.Second}
	ctx := context.Background()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := rl.Allow(ctx, key, limit); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// benchFlood sends b.N requests through 3×4 callers at 500/s and reports
// the rate achieved and the Redis round trips per request.
func benchFlood(b *testing.B, limiters []plivo.Limiter, trips func() int64) {
	var log sendLog
	var left atomic.Int64
	left.Store(int64(b.N))
	b.ResetTimer()
	done := make(chan struct{})
	for _, l := range limiters {
		for range 4 {
			go func() {
				defer func() { done <- struct{}{} }()
				for left.Add(-1) >= 0 {
					wait, ok := l.Reserve(context.Background(), time.Now(), 10*time.Second)
					if !ok {
						b.Error("refused")
						return
					}
					end := time.Now()
					log.mu.Lock()
					log.sends = append(log.sends, end.Add(wait))
					log.mu.Unlock()
					time.Sleep(wait)
				}
			}()
		}
	}
	for range 4 * len(limiters) {
		<-done
	}
	b.StopTimer()
	sends, _, _ := log.snapshot()
	if len(sends) > 20 {
		b.ReportMetric(sustained(sends, 10), "req/s")
	}
	b.ReportMetric(float64(trips())/float64(b.N), "trips/req")
}

func BenchmarkFloodFleet(b *testing.B) {
	fs := openReplicas(b, 3, sharedRedis.URL(), func(c *Config) { c.Rate, c.Burst = 500, 10 })
	var trips atomic.Int64
	var ls []plivo.Limiter
	for _, f := range fs {
		f.Limiter().booked = func(time.Time, bool) { trips.Add(1) }
		ls = append(ls, f.Limiter())
	}
	benchFlood(b, ls, trips.Load)
}

func BenchmarkFloodRedisRate(b *testing.B) {
	prefix := uniquePrefix(b)
	var ls []plivo.Limiter
	var all []*pollingLimiter
	for range 3 {
		p := newPollingLimiter(client(b, sharedRedis.URL()), prefix+"limiter", 500, 10)
		ls = append(ls, p)
		all = append(all, p)
	}
	benchFlood(b, ls, func() int64 {
		var n int64
		for _, p := range all {
			n += p.trips.Load()
		}
		return n
	})
}
