package plivo

import (
	"context"
	"testing"
	"time"
)

// TestGCRANeverAboveBurstPlusRate floods the bucket from several callers'
// clocks and checks every window of 1 s, 5 s and 10 s of send times.
func TestGCRANeverAboveBurstPlusRate(t *testing.T) {
	t.Parallel()
	l, err := NewLocalLimiter(10, 10)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Unix(1_700_000_000, 0)
	var sends []time.Time
	// 2 000 requests arriving every 10 ms over 20 s: far above 10/s.
	for i := range 2000 {
		now := start.Add(time.Duration(i) * 10 * time.Millisecond)
		wait, ok := l.Reserve(context.Background(), now, time.Hour)
		if !ok {
			t.Fatalf("request %d refused with maxWait 1h", i)
		}
		sends = append(sends, now.Add(wait))
	}
	for _, window := range []time.Duration{time.Second, 5 * time.Second, 10 * time.Second} {
		limit := 10 + int(10*window.Seconds())
		busiest := 0
		for i := range sends {
			n := 0
			for j := i; j < len(sends) && sends[j].Sub(sends[i]) < window; j++ {
				n++
			}
			busiest = max(busiest, n)
		}
		if busiest > limit {
			t.Errorf("window %v: %d requests, limit burst+rate·T = %d", window, busiest, limit)
		}
		if busiest < limit-1 {
			t.Errorf("window %v: only %d requests, the bucket should let ~%d through", window, busiest, limit)
		}
	}
}

func TestGCRAMaxWaitAndPause(t *testing.T) {
	t.Parallel()
	now := time.Unix(1_700_000_000, 0)
	l, _ := NewLocalLimiter(10, 2)
	for i := range 2 {
		if wait, ok := l.Reserve(context.Background(), now, time.Second); !ok || wait != 0 {
			t.Fatalf("burst request %d: wait %v ok %v, want 0 true", i, wait, ok)
		}
	}
	if wait, ok := l.Reserve(context.Background(), now, 50*time.Millisecond); ok || wait != 100*time.Millisecond {
		t.Fatalf("over the burst with maxWait 50ms: wait %v ok %v, want 100ms false", wait, ok)
	}
	if wait, ok := l.Reserve(context.Background(), now, time.Second); !ok || wait != 100*time.Millisecond {
		t.Fatalf("over the burst with maxWait 1s: wait %v ok %v, want 100ms true (the refused one booked nothing)", wait, ok)
	}
	later := now.Add(10 * time.Second) // bucket full again
	l.Pause(context.Background(), later, later.Add(3*time.Second))
	var waits []time.Duration
	for range 3 {
		wait, ok := l.Reserve(context.Background(), later, time.Minute)
		if !ok {
			t.Fatal("refused during a pause with maxWait 1m")
		}
		waits = append(waits, wait)
	}
	want := []time.Duration{3 * time.Second, 3100 * time.Millisecond, 3200 * time.Millisecond}
	for i := range want {
		if waits[i] != want[i] {
			t.Fatalf("after a pause of 3s: waits %v, want %v (no burst when it ends)", waits, want)
		}
	}
}

func TestLocalInFlightChangedSince(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	mpc, _ := MPCByName("test_mpc_1")
	other, _ := MPCByName("other")
	hold := []Field{FieldHold}
	tests := []struct {
		name  string
		setup func(l *LocalInFlight) (self InFlightID)
		want  bool
	}{
		{"alone", func(l *LocalInFlight) InFlightID { return l.Begin(ctx, mpc, "101", hold) }, false},
		{"later update of the same field", func(l *LocalInFlight) InFlightID {
			self := l.Begin(ctx, mpc, "101", hold)
			l.Begin(ctx, mpc, "101", hold)
			return self
		}, true},
		{"later update of all", func(l *LocalInFlight) InFlightID {
			self := l.Begin(ctx, mpc, "101", hold)
			l.Begin(ctx, mpc, AllMembers, hold)
			return self
		}, true},
		{"earlier update still unanswered", func(l *LocalInFlight) InFlightID {
			l.Begin(ctx, mpc, "101", hold)
			return l.Begin(ctx, mpc, "101", hold)
		}, true},
		{"earlier update answered before", func(l *LocalInFlight) InFlightID {
			e := l.Begin(ctx, mpc, "101", hold)
			l.End(ctx, e)
			return l.Begin(ctx, mpc, "101", hold)
		}, false},
		{"earlier update answered after self was resent", func(l *LocalInFlight) InFlightID {
			e := l.Begin(ctx, mpc, "101", hold)
			self := l.Begin(ctx, mpc, "101", hold)
			l.End(ctx, e)
			l.Resent(ctx, self)
			return self
		}, false},
		{"other field", func(l *LocalInFlight) InFlightID {
			self := l.Begin(ctx, mpc, "101", hold)
			l.Begin(ctx, mpc, "101", []Field{FieldMute})
			return self
		}, false},
		{"other member", func(l *LocalInFlight) InFlightID {
			self := l.Begin(ctx, mpc, "101", hold)
			l.Begin(ctx, mpc, "102", hold)
			return self
		}, false},
		{"other MPC", func(l *LocalInFlight) InFlightID {
			self := l.Begin(ctx, mpc, "101", hold)
			l.Begin(ctx, other, "101", hold)
			return self
		}, false},
		{"forgotten id", func(l *LocalInFlight) InFlightID { return "nope" }, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l := NewLocalInFlight()
			self := tt.setup(l)
			if got := l.ChangedSince(ctx, self, "101", FieldHold); got != tt.want {
				t.Fatalf("ChangedSince = %v, want %v", got, tt.want)
			}
		})
	}
}
