package fleet

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mpcbot/mpcbot/commands"
	"github.com/mpcbot/mpcbot/fleet/redistest"
	"github.com/mpcbot/mpcbot/plivo"
)

// The parts satisfy the interfaces the rest of mpcbot uses.
var (
	_ plivo.Limiter       = (*Limiter)(nil)
	_ plivo.InFlight      = (*InFlight)(nil)
	_ commands.Claims     = (*Claims)(nil)
	_ commands.Cache      = (*Cache)(nil)
	_ commands.TimerStore = (*Timers)(nil)
)

func TestOpenRejectsBadConfig(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		cfg  Config
	}{
		{"no URL", Config{Rate: 10, Burst: 10}},
		{"bad scheme", Config{URL: "http://localhost", Rate: 10, Burst: 10}},
		{"no rate", Config{URL: sharedRedis.URL(), Burst: 10}},
		{"no burst", Config{URL: sharedRedis.URL(), Rate: 10}},
	}
	for _, tt := range tests {
		if f, err := Open(context.Background(), tt.cfg); err == nil {
			f.Close()
			t.Errorf("%s: Open succeeded", tt.name)
		}
	}
}

// TestOpenWithRedisDownThenUp: Redis down does not fail Open; the fleet
// starts degraded, serves from its fallbacks, logs the transition once
// however many calls fail, and recovers by itself when Redis comes up.
func TestOpenWithRedisDownThenUp(t *testing.T) {
	t.Parallel()
	srv := newServer(t)
	srv.Kill()
	f, logs := openFleet(t, testConfig(t, srv.URL(), uniquePrefix(t)))
	st := f.Status()
	if st.Healthy || st.Reason == "" || st.Since.IsZero() {
		t.Fatalf("Status with Redis down = %+v, want degraded with a reason", st)
	}
	ctx := context.Background()
	for i := range 50 {
		if _, ok := f.Limiter().Reserve(ctx, time.Now(), time.Minute); !ok {
			t.Fatal("limiter refused while degraded")
		}
		if !f.Claims().Claim(ctx, fmt.Sprintf("k%d", i), time.Minute) {
			t.Fatal("a new key was not first while degraded")
		}
		f.Cache().Set(ctx, "x", []byte("y"), time.Minute)
		if _, ok := f.Cache().Get(ctx, "x"); ok {
			t.Fatal("cache hit while degraded")
		}
	}
	if err := srv.Restart(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "recovery", func() bool { return f.Status().Healthy })
	if got := f.Status(); !got.Since.After(st.Since) || got.Reason != "" {
		t.Fatalf("Status after recovery = %+v", got)
	}
	f.Cache().Set(ctx, "x", []byte("y"), time.Minute)
	if v, ok := f.Cache().Get(ctx, "x"); !ok || string(v) != "y" {
		t.Fatalf("cache after recovery: %q %v", v, ok)
	}
	if n := logs.count("shared state degraded"); n != 1 {
		t.Errorf("%d degraded logs, want 1:\n%s", n, logs.all())
	}
	if n := logs.count("restored"); n != 1 {
		t.Errorf("%d restored logs, want 1:\n%s", n, logs.all())
	}
}

// TestPasswordNeverInStatusOrLogs: a wrong password degrades the fleet with
// a reason that does not contain it; the right one works.
func TestPasswordNeverInStatusOrLogs(t *testing.T) {
	t.Parallel()
	srv, err := redistest.Start(redistest.Options{Password: "right-pass-4711"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Close() })
	wrong := strings.Replace(srv.URL(), "right-pass-4711", "wrong-secret-0815", 1)
	f, logs := openFleet(t, testConfig(t, wrong, uniquePrefix(t)))
	st := f.Status()
	if st.Healthy {
		t.Fatal("healthy with a wrong password")
	}
	f.Claims().Claim(context.Background(), "k", time.Second)
	for _, where := range []string{st.Reason, logs.all()} {
		if strings.Contains(where, "wrong-secret-0815") {
			t.Fatalf("the password leaked: %s", where)
		}
	}
	if !strings.Contains(logs.all(), "WRONGPASS") && !strings.Contains(st.Reason, "WRONGPASS") {
		t.Logf("reason: %s", st.Reason)
	}
	right, _ := openFleet(t, testConfig(t, srv.URL(), uniquePrefix(t)))
	if st := right.Status(); !st.Healthy {
		t.Fatalf("degraded with the right password: %s", st.Reason)
	}
}

func TestPresence(t *testing.T) {
	t.Parallel()
	srv := newServer(t)
	fs := openReplicas(t, 3, srv.URL(), nil)
	if got := fmt.Sprint(fs[0].Replicas()); got != "[r0 r1 r2]" {
		t.Fatalf("Replicas() = %s", got)
	}
	fs[2].Close()
	waitFor(t, 2*time.Second, "r2 gone after Close", func() bool { return len(fs[0].Replicas()) == 2 })
	// Known while Redis is down: the last seen.
	srv.Kill()
	waitFor(t, 2*time.Second, "degraded", func() bool { return !fs[0].Status().Healthy })
	if got := fmt.Sprint(fs[0].Replicas()); got != "[r0 r1]" {
		t.Fatalf("Replicas() while Redis is down = %s, want the last seen [r0 r1]", got)
	}
}

func TestPresenceForgetsADeadReplica(t *testing.T) {
	t.Parallel()
	fs := openReplicas(t, 2, sharedRedis.URL(), nil)
	// r1 dies without Close: its heartbeat stops.
	fs[1].stop()
	<-fs[1].stopped
	waitFor(t, 3*time.Second, "r1 aged out", func() bool { return len(fs[0].Replicas()) == 1 })
}

// TestSlowRedisNeverHoldsACall: with Redis paused (CLIENT PAUSE), every
// call returns within about CallTimeout, the fleet degrades, and it
// recovers by itself when the pause ends.
func TestSlowRedisNeverHoldsACall(t *testing.T) {
	// Not parallel: it measures time.
	srv := newServer(t)
	cfg := testConfig(t, srv.URL(), uniquePrefix(t))
	cfg.CallTimeout = 50 * time.Millisecond
	cfg.Heartbeat = time.Hour // the calls, not the heartbeat, meet the pause
	f, logs := openFleet(t, cfg)
	ctx := context.Background()
	f.Cache().Set(ctx, "warm", []byte("1"), time.Minute) // connections open
	admin := client(t, srv.URL())
	if err := admin.Do(ctx, "CLIENT", "PAUSE", "800", "ALL").Err(); err != nil {
		t.Fatal(err)
	}
	paused := time.Now()
	calls := []func(i int){
		func(int) { f.Limiter().Reserve(ctx, time.Now(), time.Minute) },
		func(i int) { f.Claims().Claim(ctx, fmt.Sprint("c", i), time.Minute) },
		func(int) { f.Cache().Get(ctx, "warm") },
		func(int) { f.Cache().Set(ctx, "k", []byte("v"), time.Minute) },
		func(int) { f.InFlight().Begin(ctx, mustMPC(t, "m"), "101", []plivo.Field{plivo.FieldHold}) },
		func(i int) {
			f.Timers().Add(ctx, timerAt(t, fmt.Sprint("t", i), time.Now().Add(time.Minute)))
		},
		func(int) { f.Timers().Claim(ctx, time.Now(), time.Minute) },
		func(int) { f.Limiter().Pause(ctx, time.Now(), time.Now().Add(time.Millisecond)) },
	}
	var mu sync.Mutex
	var slowest time.Duration
	var wg sync.WaitGroup
	for i := range 24 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			start := time.Now()
			calls[i%len(calls)](i)
			d := time.Since(start)
			mu.Lock()
			slowest = max(slowest, d)
			mu.Unlock()
		}()
	}
	wg.Wait()
	if time.Since(paused) > 700*time.Millisecond {
		t.Fatal("the calls outlasted the pause; the test proves nothing")
	}
	t.Logf("slowest call during the pause: %v (bound %v)", slowest, cfg.CallTimeout)
	if slowest > cfg.CallTimeout+150*time.Millisecond {
		t.Errorf("a call took %v with Redis paused, bound %v", slowest, cfg.CallTimeout)
	}
	if f.Status().Healthy {
		t.Fatal("still healthy after calls timed out")
	}
	waitFor(t, 5*time.Second, "recovery after the pause", func() bool { return f.Status().Healthy })
	if n := logs.count("shared state degraded"); n != 1 {
		t.Errorf("%d degraded logs for one episode, want 1:\n%s", n, logs.all())
	}
}

func mustMPC(t testing.TB, name string) plivo.MPC {
	t.Helper()
	m, err := plivo.MPCByName(name)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func timerAt(t testing.TB, id string, due time.Time) commands.Timer {
	t.Helper()
	cmd, err := commands.Parse("hold test_mpc_1 1002")
	if err != nil {
		t.Fatal(err)
	}
	return commands.NewTimer(id, cmd.(commands.Change), commands.Requester{UserID: "U1"}, commands.Typed, due.Add(-time.Minute), time.Minute, commands.Place{})
}
