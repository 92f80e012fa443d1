package fleet

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/mpcbot/mpcbot/commands"
	"github.com/mpcbot/mpcbot/commands/timerstest"
	"github.com/mpcbot/mpcbot/plivo"
)

func TestTimersConformance(t *testing.T) {
	t.Parallel()
	stores := []struct {
		name string
		make func(t *testing.T) commands.TimerStore
	}{
		{"redis", func(t *testing.T) commands.TimerStore {
			f, _ := openFleet(t, testConfig(t, sharedRedis.URL(), uniquePrefix(t)))
			return f.timers.shared
		}},
		{"fleet", func(t *testing.T) commands.TimerStore {
			f, _ := openFleet(t, testConfig(t, sharedRedis.URL(), uniquePrefix(t)))
			return f.Timers()
		}},
	}
	for _, s := range stores {
		t.Run(s.name, func(t *testing.T) {
			t.Parallel()
			timerstest.Run(t, s.make)
		})
	}
}

// TestTimersClaimedOnceAcrossReplicas: three replicas, three claimers each,
// claim as time advances; every timer is claimed exactly once.
func TestTimersClaimedOnceAcrossReplicas(t *testing.T) {
	t.Parallel()
	fs := openReplicas(t, 3, sharedRedis.URL(), nil)
	ctx := context.Background()
	const timers = 60
	base := timerstest.Base
	for i := range timers {
		tm := timerstest.NewTimer(t, fmt.Sprintf("t%02d", i), "hold test_mpc_1 1002", time.Duration(i%20)*time.Second)
		if err := fs[i%3].Timers().Add(ctx, tm); err != nil {
			t.Fatal(err)
		}
	}
	var mu sync.Mutex
	count := map[string]int{}
	var wg sync.WaitGroup
	for _, f := range fs {
		for range 3 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for step := range 25 {
					got, err := f.Timers().Claim(ctx, base.Add(time.Duration(step)*time.Second), time.Hour)
					if err != nil {
						t.Error(err)
						return
					}
					mu.Lock()
					for _, tm := range got {
						count[tm.ID]++
					}
					mu.Unlock()
				}
			}()
		}
	}
	wg.Wait()
	timerstest.CheckOnce(t, count, timers)
}

// TestTimersOutliveTheirReplica: a timer set by a replica that is gone is
// run by another; one whose claimer died is taken over after the lease.
func TestTimersOutliveTheirReplica(t *testing.T) {
	t.Parallel()
	fs := openReplicas(t, 3, sharedRedis.URL(), nil)
	ctx := context.Background()
	a := timerstest.NewTimer(t, "a", "hold test_mpc_1 1002", time.Minute)
	if err := fs[0].Timers().Add(ctx, a); err != nil {
		t.Fatal(err)
	}
	fs[0].Close()
	lease := 30 * time.Second
	got, err := fs[1].Timers().Claim(ctx, a.Due, lease)
	if err != nil || len(got) != 1 {
		t.Fatalf("another replica claims the gone replica's timer: %v, %v", got, err)
	}
	// fs[1] dies while running it: no Done.
	fs[1].Close()
	if got, _ := fs[2].Timers().Claim(ctx, a.Due.Add(lease-time.Millisecond), lease); len(got) != 0 {
		t.Fatalf("taken over before the lease lapsed: %v", got)
	}
	got, _ = fs[2].Timers().Claim(ctx, a.Due.Add(lease), lease)
	timerstest.Equal(t, "taken over after the lease", got, []commands.Timer{a})
	if err := fs[2].Timers().Done(ctx, "a"); err != nil {
		t.Fatal(err)
	}
	if got, _ := fs[2].Timers().Claim(ctx, a.Due.Add(time.Hour), lease); len(got) != 0 {
		t.Fatalf("claimed after Done: %v", got)
	}
}

// TestSupersedeIsAtomic: replicas supersede different fields of the same
// timers, and cancel some, all at once; no update is lost (every timer
// ends finished and removed) and no cancelled timer comes back.
func TestSupersedeIsAtomic(t *testing.T) {
	t.Parallel()
	fs := openReplicas(t, 3, sharedRedis.URL(), nil)
	ctx := context.Background()
	const timers = 12
	for i := range timers {
		tm := timerstest.NewTimer(t, fmt.Sprintf("t%02d", i), "mute,hold test_mpc_1 1001,1002,1003", time.Minute)
		if err := fs[0].Timers().Add(ctx, tm); err != nil {
			t.Fatal(err)
		}
	}
	mpc := mustMPC(t, "test_mpc_1")
	var wg sync.WaitGroup
	for i, field := range []plivo.Field{plivo.FieldMute, plivo.FieldHold} {
		for _, m := range []plivo.Member{"1001", "1002", "1003"} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if _, err := fs[i].Timers().Supersede(ctx, mpc, []plivo.Member{m}, []plivo.Field{field}); err != nil {
					t.Error(err)
				}
			}()
		}
	}
	cancelled := map[string]bool{}
	for i := 0; i < timers; i += 3 {
		id := fmt.Sprintf("t%02d", i)
		cancelled[id] = true
		wg.Add(1)
		go func() {
			defer wg.Done()
			fs[2].Timers().Cancel(ctx, id)
		}()
	}
	wg.Wait()
	pending, err := fs[2].Timers().Pending(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, tm := range pending {
		t.Errorf("timer %s still pending (cancelled %v) with %v", tm.ID, cancelled[tm.ID], tm.Pending)
	}
	for _, f := range fs {
		if !f.Status().Healthy {
			t.Fatalf("%s degraded: %s", f.ReplicaID(), f.Status().Reason)
		}
	}
}

// TestTimersAcrossAnOutage: a timer added while Redis refuses is kept in
// the process; once Redis is back, Pending, Claim, Supersede and Cancel
// cover both stores, each timer once; a Done that failed is retried, so the
// lease does not run the timer again.
func TestTimersAcrossAnOutage(t *testing.T) {
	t.Parallel()
	srv := newServer(t)
	cfg := testConfig(t, srv.URL(), uniquePrefix(t))
	f, _ := openFleet(t, cfg)
	admin := client(t, srv.URL())
	ctx := context.Background()
	shared := timerstest.NewTimer(t, "shared", "mute,hold test_mpc_1 1002,1004", time.Minute)
	local := timerstest.NewTimer(t, "local", "mute,hold test_mpc_1 1003", time.Minute)
	shared.Set = time.Now().Add(-time.Minute) // set before the change below
	if err := f.Timers().Add(ctx, shared); err != nil {
		t.Fatal(err)
	}
	restore := cutOff(t, srv)
	if err := f.Timers().Add(ctx, local); err != nil {
		t.Fatalf("Add with Redis refusing: %v", err)
	}
	if f.Status().Healthy {
		t.Fatal("healthy after a refused Add")
	}
	pending, _ := f.Timers().Pending(ctx)
	timerstest.Equal(t, "Pending while degraded", pending, []commands.Timer{local})
	only, _ := f.Timers().Local(ctx)
	timerstest.Equal(t, "Local (ends with the process)", only, []commands.Timer{local})
	if _, ok, err := f.Timers().Cancel(ctx, "shared"); ok || err == nil {
		t.Fatalf("Cancel of a timer on Redis while it refuses: ok %v, err %v; want an error, not 'not pending'", ok, err)
	}
	// A change made now supersedes the timer on Redis once it answers;
	// a timer set after the change is not touched by the replay.
	mpc := mustMPC(t, "test_mpc_1")
	if _, err := f.Timers().Supersede(ctx, mpc, []plivo.Member{"1004"}, []plivo.Field{plivo.FieldHold}); err != nil {
		t.Fatal(err)
	}
	restore()
	waitFor(t, 10*time.Second, "recovery", func() bool { return f.Status().Healthy })
	after := timerstest.NewTimer(t, "after", "hold test_mpc_1 1004", time.Minute)
	after.Set = time.Now().Add(time.Second)
	if err := f.Timers().Add(ctx, after); err != nil {
		t.Fatal(err)
	}
	if got, _ := f.Timers().Claim(ctx, shared.Due.Add(-time.Second), time.Minute); len(got) != 0 {
		t.Fatalf("claimed before due: %v", got)
	}
	if _, ok, err := f.Timers().Cancel(ctx, "after"); !ok || err != nil {
		t.Fatalf("the replayed change touched a timer set after it (Cancel: ok %v, err %v)", ok, err)
	}
	shared, _ = shared.Supersede([]plivo.Member{"1004"}, []plivo.Field{plivo.FieldHold})
	waitFor(t, 10*time.Second, "recovery", func() bool { return f.Status().Healthy })
	pending, _ = f.Timers().Pending(ctx)
	timerstest.Equal(t, "Pending after recovery (the change replayed)", pending, []commands.Timer{shared, local})

	sup, err := f.Timers().Supersede(ctx, mpc, []plivo.Member{plivo.AllMembers}, []plivo.Field{plivo.FieldMute})
	if err != nil || len(sup) != 2 {
		t.Fatalf("Supersede over both stores: %d timers, %v", len(sup), err)
	}
	shared, _ = shared.Supersede([]plivo.Member{plivo.AllMembers}, []plivo.Field{plivo.FieldMute})
	local, _ = local.Supersede([]plivo.Member{plivo.AllMembers}, []plivo.Field{plivo.FieldMute})
	lease := 10 * time.Second
	got, _ := f.Timers().Claim(ctx, shared.Due, lease)
	timerstest.Equal(t, "Claim over both stores", got, []commands.Timer{shared, local})

	restore = cutOff(t, srv)
	f.Timers().Done(ctx, "shared") // refused: kept for later
	f.timers.mu.Lock()
	later := f.timers.doneLater["shared"]
	f.timers.mu.Unlock()
	if !later {
		t.Fatal("a refused Done was not kept for later")
	}
	f.Timers().Done(ctx, "local")
	restore()
	waitFor(t, 10*time.Second, "recovery", func() bool { return f.Status().Healthy })
	if got, _ := f.Timers().Claim(ctx, shared.Due.Add(lease), lease); len(got) != 0 {
		t.Fatalf("after the lease, a timer whose Done failed during the outage ran again: %v", got)
	}
	if !f.Status().Healthy {
		t.Fatalf("degraded again: %s", f.Status().Reason)
	}
	if n, _ := admin.HLen(ctx, cfg.Prefix+"timers").Result(); n != 0 {
		t.Fatalf("%d timers left on Redis", n)
	}
	if _, ok, _ := f.Timers().Cancel(ctx, "local"); ok {
		t.Fatal("Cancel after Done found the timer")
	}
}

// TestTimersAddWithLostAnswer: an Add that timed out may still have
// reached Redis; the copy kept locally then gives way to Redis's, so the
// timer runs once.
func TestTimersAddWithLostAnswer(t *testing.T) {
	t.Parallel()
	f, _ := openFleet(t, testConfig(t, sharedRedis.URL(), uniquePrefix(t)))
	ctx := context.Background()
	a := timerstest.NewTimer(t, "a", "hold test_mpc_1 1002", time.Minute)
	// Both copies, as after an Add whose answer was lost.
	if err := f.timers.shared.Add(ctx, a); err != nil {
		t.Fatal(err)
	}
	if err := f.timers.local.Add(ctx, a); err != nil {
		t.Fatal(err)
	}
	pending, _ := f.Timers().Pending(ctx)
	timerstest.Equal(t, "Pending", pending, []commands.Timer{a})
	got, _ := f.Timers().Claim(ctx, a.Due, time.Minute)
	timerstest.Equal(t, "Claim", got, []commands.Timer{a})
	if only, _ := f.Timers().Local(ctx); len(only) != 0 {
		t.Fatalf("the local copy is still there: %v", only)
	}
}

// TestSupersedeReplayedOnceUnderConcurrency: a Supersede that Redis did not
// get is replayed once, in order, however many changes flush the queue at
// the same time (each change's Supersede flushes it first); none of them
// blocks or panics.
func TestSupersedeReplayedOnceUnderConcurrency(t *testing.T) {
	t.Parallel()
	srv := newServer(t)
	f, rec := openFleet(t, testConfig(t, srv.URL(), uniquePrefix(t)))
	ctx := context.Background()
	mpc := mustMPC(t, "test_mpc_1")
	restore := cutOff(t, srv)
	if _, err := f.Timers().Supersede(ctx, mpc, []plivo.Member{"1004"}, []plivo.Field{plivo.FieldHold}); err != nil {
		t.Fatal(err)
	}
	restore()
	waitFor(t, 10*time.Second, "recovery", func() bool { return f.Status().Healthy })
	// A timer set before the queued change: its replay supersedes it.
	timer := timerstest.NewTimer(t, "before", "hold test_mpc_1 1004", time.Minute)
	timer.Set = time.Now().Add(-time.Hour)
	if err := f.timers.shared.Add(ctx, timer); err != nil {
		t.Fatal(err)
	}
	const changes = 32
	var wg sync.WaitGroup
	panics := make(chan any, changes)
	start := make(chan struct{})
	for i := range changes {
		wg.Go(func() {
			defer func() {
				if r := recover(); r != nil {
					panics <- r
				}
			}()
			<-start
			cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			defer cancel()
			member := plivo.Member(fmt.Sprint(2000 + i))
			f.Timers().Supersede(cctx, mpc, []plivo.Member{member}, []plivo.Field{plivo.FieldMute})
		})
	}
	close(start)
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("concurrent Supersede calls did not return within 30 s (blocked)")
	}
	close(panics)
	for p := range panics {
		t.Errorf("Supersede panicked: %v", p)
	}
	f.timers.mu.Lock()
	left := len(f.timers.supersedeLater)
	f.timers.mu.Unlock()
	if left != 0 {
		t.Errorf("%d queued changes left after the flush", left)
	}
	if n := rec.count("a change made while redis did not answer superseded a timer"); n != 1 {
		t.Errorf("the queued change was replayed onto the timer %d times, want once", n)
	}
	if pending, _ := f.Timers().Pending(ctx); len(pending) != 0 {
		t.Errorf("pending %v, want the timer superseded (finished) by the replayed change", pending)
	}
}
