package fleet

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/mpcbot/mpcbot/plivo"
	"github.com/mpcbot/mpcbot/plivo/plivotest"
)

// PausedFor tells every replica what is left of a pause any of them asked,
// by Redis's clock; a shorter pause asked later does not shorten it; it
// ends by itself.
func TestPausedForIsTheFleets(t *testing.T) {
	t.Parallel()
	fs := openReplicas(t, 2, sharedRedis.URL(), func(c *Config) { c.Rate, c.Burst = 10, 5 })
	ctx := context.Background()
	if left := fs[1].Limiter().PausedFor(ctx, time.Now()); left != 0 {
		t.Fatalf("PausedFor before any pause = %v, want 0", left)
	}
	now := time.Now()
	fs[0].Limiter().Pause(ctx, now, now.Add(time.Second))
	fs[0].Limiter().Pause(ctx, now, now.Add(100*time.Millisecond))
	left := fs[1].Limiter().PausedFor(ctx, time.Now())
	// Redis set the pause after now, and it is read back after that: what
	// is left lies in (1 s − (time since now), 1 s], give or take Redis's
	// whole milliseconds (the script's frozen clock and PTTL's both truncate).
	if lo := time.Second - time.Since(now); left < lo-5*time.Millisecond || left > time.Second {
		t.Fatalf("another replica's 1 s pause (then a 100 ms one) has %v left, want in (%v, 1s]", left, lo)
	}
	waitFor(t, 5*time.Second, "the pause to end", func() bool { return fs[1].Limiter().PausedFor(ctx, time.Now()) == 0 })
	if !fs[0].Status().Healthy || !fs[1].Status().Healthy {
		t.Fatal("a replica degraded: the test measured nothing shared")
	}
}

// Two replicas share the budget through their own plivo.Clients. At 2
// requests/s with a burst of 1, replica a books slots for two updates and
// replica b one after them; a's first gets a 429 with Retry-After 2 and
// pauses the fleet. The other slots, booked before the pause, fall inside
// it: a's own second update and b's update (on another replica) each book
// again behind it, and nothing reaches Plivo during the pause.
func TestSlotsBookedBeforeTheFleetsPauseWaitForItsEnd(t *testing.T) {
	t.Parallel()
	fs := openReplicas(t, 2, sharedRedis.URL(), func(c *Config) { c.Rate, c.Burst = 2, 1 })
	srv := plivotest.NewServer(plivotest.WithSampleMPC())
	t.Cleanup(srv.Close)
	booked := make(chan string, 16)
	clients := map[string]*plivo.Client{}
	for i, name := range []string{"a", "b"} {
		fs[i].Limiter().booked = func(time.Time, bool) { booked <- name }
		c, err := plivo.New(plivo.Config{AuthID: srv.AuthID, AuthToken: srv.AuthToken, BaseURL: srv.URL, Limiter: fs[i].Limiter()})
		if err != nil {
			t.Fatal(err)
		}
		clients[name] = c
	}
	mpc, err := plivo.MPCByName(plivotest.SampleMPCName)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	srv.FailNext(1, plivotest.Fault{Status: 429, RetryAfter: "2"})
	updates := []struct {
		replica string
		member  plivo.Member
		update  plivo.ParticipantUpdate
	}{
		{"a", "101", plivo.ParticipantUpdate{Mute: ptr(true)}}, // the first slot: gets the 429
		{"a", "102", plivo.ParticipantUpdate{Hold: ptr(true)}},
		{"b", "102", plivo.ParticipantUpdate{Mute: ptr(true)}},
	}
	errs := make(chan error, len(updates))
	for _, u := range updates {
		go func() {
			_, err := clients[u.replica].UpdateParticipant(ctx, mpc, u.member, u.update)
			errs <- err
		}()
		// Book in this order, so the first slot is the first update's.
		select {
		case by := <-booked:
			if by != u.replica {
				t.Fatalf("replica %s booked, want %s", by, u.replica)
			}
		case <-ctx.Done():
			t.Fatal("no slot booked")
		}
	}
	for range updates {
		if err := <-errs; err != nil {
			t.Fatalf("update: %v", err)
		}
	}
	// 20 ms for the two clocks' rounding.
	got429, inside, ok := srv.SentDuringPause(2*time.Second - 20*time.Millisecond)
	if !ok {
		t.Fatalf("no 429 among %+v", srv.Requests())
	}
	for _, r := range inside {
		t.Errorf("%s %s reached Plivo %v after the 429, inside the fleet's 2 s pause", r.Method, r.Path, r.Time.Sub(got429))
	}
	if n := len(srv.AppliedUpdates()); n != len(updates) {
		t.Errorf("%d updates applied, want %d", n, len(updates))
	}
	if !fs[0].Status().Healthy || !fs[1].Status().Healthy {
		t.Fatal("a replica degraded: the test measured nothing shared")
	}
}

func ptr[T any](v T) *T { return &v }

// While Redis is down, a replica books slots on its fallback bucket at most
// fallbackAhead ahead: those are sent whatever happens, so after Redis is
// back they add to the shared budget. A caller whose slot is further away
// waits unbooked; once Redis answers, it books on the shared bucket.
func TestFallbackBooksOnlyNearSlots(t *testing.T) {
	t.Parallel()
	srv := newServer(t)
	fs := openReplicas(t, 2, srv.URL(), func(c *Config) { c.Rate, c.Burst = 4, 2 })
	f := fs[0]
	type booking struct {
		at, slot time.Time
		shared   bool
	}
	var mu sync.Mutex
	var bookings []booking
	f.Limiter().booked = func(slot time.Time, shared bool) {
		mu.Lock()
		bookings = append(bookings, booking{time.Now(), slot, shared})
		mu.Unlock()
	}
	count := func(shared bool) int {
		mu.Lock()
		defer mu.Unlock()
		n := 0
		for _, b := range bookings {
			if b.shared == shared {
				n++
			}
		}
		return n
	}
	if err := srv.Kill(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "degraded", func() bool { return !f.Status().Healthy })

	// 8 callers at once on a fallback of 2/s, burst 1, drained: their slots
	// are 0.5 s to 4 s away; only those within a second may be booked now.
	const callers = 8
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	results := make(chan bool, callers)
	for range callers {
		go func() {
			_, ok := f.Limiter().Reserve(ctx, time.Now(), 30*time.Second)
			results <- ok
		}()
	}
	waitFor(t, 5*time.Second, "fallback bookings", func() bool { return count(false) >= 2 })
	if err := srv.Restart(); err != nil {
		t.Fatal(err)
	}
	for range callers {
		if !<-results {
			t.Fatal("a caller was refused with 30 s to wait")
		}
	}
	mu.Lock()
	defer mu.Unlock()
	for _, b := range bookings {
		if ahead := b.slot.Sub(b.at); !b.shared && ahead > fallbackAhead+50*time.Millisecond {
			t.Errorf("a fallback slot booked %v ahead, want at most %v", ahead, fallbackAhead)
		}
	}
	shared := 0
	for _, b := range bookings {
		if b.shared {
			shared++
		}
	}
	if shared == 0 || len(bookings) != callers {
		t.Errorf("%d bookings, %d of them shared: want %d, the callers still waiting when Redis came back on the shared bucket", len(bookings), shared, callers)
	}
}

// When Redis answers again, each replica charges the shared bucket for the
// slots its fallback booked and has not sent yet: those go out anyway, so
// the fleet's next shared slots come after all of them, not only after one
// replica's (two replicas: the waits add up).
func TestRejoinChargesTheFallbacksPendingSlots(t *testing.T) {
	t.Parallel()
	srv := newServer(t)
	fs := openReplicas(t, 2, srv.URL(), func(c *Config) { c.Rate, c.Burst = 4, 2 })
	var mu sync.Mutex
	local := map[int][]time.Time{}
	for i, f := range fs {
		f.Limiter().booked = func(slot time.Time, shared bool) {
			if !shared {
				mu.Lock()
				local[i] = append(local[i], slot)
				mu.Unlock()
			}
		}
	}
	ctx := context.Background()
	rejoinTry := func(try int) bool {
		if err := srv.Kill(); err != nil {
			t.Fatal(err)
		}
		for _, f := range fs {
			waitFor(t, 5*time.Second, "degraded", func() bool { return !f.Status().Healthy })
			// Fallback 2/s, burst 1, drained: slots at +500 ms and +1 s.
			for range 2 {
				if _, ok := f.Limiter().Reserve(ctx, time.Now(), time.Minute); !ok {
					t.Fatal("refused on the fallback")
				}
			}
		}
		if err := srv.Restart(); err != nil {
			t.Fatal(err)
		}
		for _, f := range fs {
			waitFor(t, 5*time.Second, "healthy", func() bool { return f.Status().Healthy })
		}
		pending := func(i int, now time.Time) int {
			mu.Lock()
			defer mu.Unlock()
			n := 0
			for _, s := range local[i] {
				if s.After(now) {
					n++
				}
			}
			return n
		}
		const interval = 250 * time.Millisecond
		startA := time.Now()
		pa := pending(0, startA)
		mu.Lock()
		horizonA := slices.MaxFunc(local[0], time.Time.Compare)
		mu.Unlock()
		if _, ok := fs[0].Limiter().Reserve(ctx, startA, time.Minute); !ok {
			t.Fatal("refused on the shared bucket")
		}
		pb := pending(1, time.Now())
		waitB, ok := fs[1].Limiter().Reserve(ctx, time.Now(), time.Minute)
		endB := time.Now()
		if !ok {
			t.Fatal("refused on the shared bucket")
		}
		if pb == 0 {
			t.Logf("try %d not counted: B's fallback slots were all sent before it rejoined (a slow machine)", try)
			return false
		}
		// A starts the bucket drained (tolerance + one interval) after its
		// latest slot, or after now with its pending slots charged, whichever
		// is later, and books one interval; B's pending slots come on top, and
		// B waits for all that less the tolerance (one interval): at least
		// max(horizonA + 2 intervals, startA + (2+pa) intervals) + pb intervals
		// − endB (Redis's now for B is before endB).
		tatA := horizonA.Add(2 * interval)
		if t2 := startA.Add(interval * time.Duration(2+pa)); t2.After(tatA) {
			tatA = t2
		}
		want := tatA.Add(interval * time.Duration(pb)).Sub(endB)
		if waitB < want-10*time.Millisecond {
			t.Fatalf("B waits %v after rejoining with %d+%d fallback slots pending, want at least %v", waitB, pa, pb, want)
		}
		t.Logf("B waits %v (at least %v)", waitB, want)
		return true
	}
	for try := 1; try <= 3; try++ {
		mu.Lock()
		clear(local)
		mu.Unlock()
		if rejoinTry(try) {
			return
		}
	}
	t.Fatal("in each of 3 tries B's fallback slots were all sent before it rejoined: machine too slow for this test")
}
