package plivo_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mpcbot/mpcbot/plivo"
	"github.com/mpcbot/mpcbot/plivo/plivotest"
)

// countingLimiter is a Limiter that counts reservations and reports pauses.
type countingLimiter struct {
	plivo.Limiter
	mu       sync.Mutex
	reserves int
	paused   chan time.Duration // until − now of each pause
}

func newCountingLimiter(t *testing.T) *countingLimiter {
	t.Helper()
	local, err := plivo.NewLocalLimiter(1000, 1000)
	if err != nil {
		t.Fatal(err)
	}
	return &countingLimiter{Limiter: local, paused: make(chan time.Duration, 16)}
}

func (l *countingLimiter) Reserve(ctx context.Context, now time.Time, maxWait time.Duration) (time.Duration, bool) {
	l.mu.Lock()
	l.reserves++
	l.mu.Unlock()
	return l.Limiter.Reserve(ctx, now, maxWait)
}

func (l *countingLimiter) Pause(ctx context.Context, now, until time.Time) {
	l.Limiter.Pause(ctx, now, until)
	l.paused <- until.Sub(now)
}

func (l *countingLimiter) Reserves() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.reserves
}

// After a 429 with Retry-After 2 s, the whole budget backs off: another
// update, from the same client or from another replica sharing the limiter,
// does not reach Plivo before the pause ends.
func TestPauseAfter429HoldsBackEveryRequest(t *testing.T) {
	t.Parallel()
	for _, sameClient := range []bool{true, false} {
		name := map[bool]string{true: "same client", false: "another replica sharing the limiter"}[sameClient]
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			srv := plivotest.NewServer(plivotest.WithSampleMPC())
			t.Cleanup(srv.Close)
			limiter := newCountingLimiter(t)
			newClient := func() *plivo.Client {
				c, err := plivo.New(plivo.Config{AuthID: srv.AuthID, AuthToken: srv.AuthToken, BaseURL: srv.URL, Limiter: limiter})
				if err != nil {
					t.Fatal(err)
				}
				return c
			}
			a := newClient()
			b := a
			if !sameClient {
				b = newClient()
			}
			mpc := byName(t, plivotest.SampleMPCName)
			srv.FailNext(1, plivotest.Fault{Status: 429, RetryAfter: "2"})
			first := make(chan error, 1)
			go func() {
				_, err := a.UpdateParticipant(simCtx(t), mpc, "101", plivo.ParticipantUpdate{Mute: ptr(true)})
				first <- err
			}()
			select {
			case d := <-limiter.paused:
				if d != 2*time.Second {
					t.Errorf("paused for %v, want 2s", d)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("no pause after the 429")
			}
			// The limiter is paused now: this update must wait for the end.
			if _, err := b.UpdateParticipant(simCtx(t), mpc, "102", plivo.ParticipantUpdate{Hold: ptr(true)}); err != nil {
				t.Fatalf("second update: %v", err)
			}
			if err := <-first; err != nil {
				t.Fatalf("first update: %v", err)
			}
			var got429, second *plivotest.Request
			for _, r := range srv.Requests() {
				switch {
				case r.Status == 429:
					got429 = &r
				case strings.HasSuffix(r.Path, "/Participant/102/"):
					second = &r
				}
			}
			if got429 == nil || second == nil {
				t.Fatalf("requests %+v: want the 429 and the second update", srv.Requests())
			}
			if gap := second.Time.Sub(got429.Time); gap < 2*time.Second {
				t.Errorf("the second update reached Plivo %v after the 429, inside the 2 s pause", gap)
			}
			if n := len(srv.AppliedUpdates()); n != 2 {
				t.Errorf("%d updates applied, want 2", n)
			}
		})
	}
}

// Every attempt — the update, its read-backs and the resend — reserves
// through the configured Limiter.
func TestConfigLimiterGatesEveryRequest(t *testing.T) {
	t.Parallel()
	srv := plivotest.NewServer(plivotest.WithSampleMPC())
	t.Cleanup(srv.Close)
	limiter := newCountingLimiter(t)
	c, err := plivo.New(plivo.Config{AuthID: srv.AuthID, AuthToken: srv.AuthToken, BaseURL: srv.URL, Limiter: limiter})
	if err != nil {
		t.Fatal(err)
	}
	plivo.InstantWaits(c)
	srv.FailNext(1, plivotest.Fault{Status: 503}) // the update: lost, not applied
	srv.FailNext(1, plivotest.Fault{Status: 502}) // the first read back fails
	mpc := byName(t, plivotest.SampleMPCName)
	if _, err := c.UpdateParticipant(simCtx(t), mpc, "102", plivo.ParticipantUpdate{Hold: ptr(true)}); err != nil {
		t.Fatalf("UpdateParticipant: %v", err)
	}
	if _, err := c.ListParticipants(simCtx(t), mpc); err != nil {
		t.Fatal(err)
	}
	var ops []string
	for _, r := range srv.Requests() {
		ops = append(ops, r.Op)
	}
	want := []string{plivotest.OpUpdateParticipant, plivotest.OpGetParticipant, plivotest.OpGetParticipant,
		plivotest.OpUpdateParticipant, plivotest.OpListParticipants}
	if !slices.Equal(ops, want) {
		t.Errorf("requests %v, want %v", ops, want)
	}
	if n := limiter.Reserves(); n != len(ops) {
		t.Errorf("%d reservations for %d requests", n, len(ops))
	}
}

// refusingLimiter never has a token before the deadline.
type refusingLimiter struct{ wait time.Duration }

func (l refusingLimiter) Reserve(context.Context, time.Time, time.Duration) (time.Duration, bool) {
	return l.wait, false
}

func (refusingLimiter) Pause(context.Context, time.Time, time.Time) {}

func (refusingLimiter) PausedFor(context.Context, time.Time) time.Duration { return 0 }

func TestLimiterRefusalIsBusy(t *testing.T) {
	t.Parallel()
	srv := plivotest.NewServer(plivotest.WithSampleMPC())
	t.Cleanup(srv.Close)
	c, err := plivo.New(plivo.Config{AuthID: srv.AuthID, AuthToken: srv.AuthToken, BaseURL: srv.URL, Limiter: refusingLimiter{7 * time.Second}})
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.UpdateParticipant(simCtx(t), byName(t, plivotest.SampleMPCName), "101", plivo.ParticipantUpdate{Mute: ptr(true)})
	e, ok := plivo.AsError(err)
	if !ok || e.Kind != plivo.Busy || e.RetryAfter != 7*time.Second || e.Attempts != 0 {
		t.Fatalf("error %+v, want Busy with RetryAfter 7s and no attempt", err)
	}
	if n := srv.RequestCount(); n != 0 {
		t.Errorf("%d requests reached Plivo, want 0", n)
	}
}

// recordingInFlight is an InFlight that logs the calls it gets.
type recordingInFlight struct {
	plivo.InFlight
	mu    sync.Mutex
	calls []string
}

func (r *recordingInFlight) record(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls = append(r.calls, fmt.Sprintf(format, args...))
}

func (r *recordingInFlight) Begin(ctx context.Context, mpc plivo.MPC, member plivo.Member, fields []plivo.Field) plivo.InFlightID {
	id := r.InFlight.Begin(ctx, mpc, member, fields)
	r.record("begin %s %s %v", mpc, member, fields)
	return id
}

func (r *recordingInFlight) Resent(ctx context.Context, id plivo.InFlightID) {
	r.InFlight.Resent(ctx, id)
	r.record("resent")
}

func (r *recordingInFlight) End(ctx context.Context, id plivo.InFlightID) {
	r.InFlight.End(ctx, id)
	r.record("end")
}

func (r *recordingInFlight) ChangedSince(ctx context.Context, id plivo.InFlightID, member plivo.Member, f plivo.Field) bool {
	changed := r.InFlight.ChangedSince(ctx, id, member, f)
	r.record("changed since %s %s: %v", member, f, changed)
	return changed
}

func (r *recordingInFlight) Calls() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.calls)
}

// The read-back bookkeeping goes through the configured InFlight.
func TestConfigInFlightRecordsUpdates(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		faults []plivotest.Fault
		want   []string
	}{
		{"answered", nil, []string{"begin test_mpc_1 102 [hold]", "end"}},
		{"lost, applied: confirmed", []plivotest.Fault{{Status: 503, Apply: true}},
			[]string{"begin test_mpc_1 102 [hold]", "changed since 102 hold: false", "end"}},
		{"lost, not applied: resent", []plivotest.Fault{{Status: 503}},
			[]string{"begin test_mpc_1 102 [hold]", "changed since 102 hold: false", "resent", "end"}},
		{"refused", []plivotest.Fault{{Status: 404}}, []string{"begin test_mpc_1 102 [hold]", "end"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv := plivotest.NewServer(plivotest.WithSampleMPC())
			t.Cleanup(srv.Close)
			log := &recordingInFlight{InFlight: plivo.NewLocalInFlight()}
			c, err := plivo.New(plivo.Config{AuthID: srv.AuthID, AuthToken: srv.AuthToken, BaseURL: srv.URL, InFlight: log})
			if err != nil {
				t.Fatal(err)
			}
			plivo.InstantWaits(c)
			for _, f := range tt.faults {
				srv.FailNext(1, f)
			}
			_, _ = c.UpdateParticipant(simCtx(t), byName(t, plivotest.SampleMPCName), "102", plivo.ParticipantUpdate{Hold: ptr(true)})
			if got := log.Calls(); !slices.Equal(got, tt.want) {
				t.Errorf("calls\n got %q\nwant %q", got, tt.want)
			}
		})
	}
}

// Requests whose slots were booked before a 429's pause began do not go out
// inside the pause: each, after waiting for its slot, finds the pause
// running and books again behind it. At 2 requests/s with a burst of 1,
// three updates at once take the slots now, +500 ms and +1 s; the first
// gets 429 with Retry-After 2, so the other two slots fall in the pause.
func TestSlotsBookedBeforeAPauseWaitForItsEnd(t *testing.T) {
	t.Parallel()
	srv := plivotest.NewServer(plivotest.WithSampleMPC())
	t.Cleanup(srv.Close)
	limiter, err := plivo.NewLocalLimiter(2, 1)
	if err != nil {
		t.Fatal(err)
	}
	c, err := plivo.New(plivo.Config{AuthID: srv.AuthID, AuthToken: srv.AuthToken, BaseURL: srv.URL, Limiter: limiter})
	if err != nil {
		t.Fatal(err)
	}
	srv.FailNext(1, plivotest.Fault{Status: 429, RetryAfter: "2"})
	mpc := byName(t, plivotest.SampleMPCName)
	updates := []struct {
		member plivo.Member
		update plivo.ParticipantUpdate
	}{
		{"101", plivo.ParticipantUpdate{Mute: ptr(true)}},
		{"102", plivo.ParticipantUpdate{Hold: ptr(true)}},
		{"102", plivo.ParticipantUpdate{Mute: ptr(true)}},
	}
	errs := make(chan error, len(updates))
	for _, u := range updates {
		go func() {
			_, err := c.UpdateParticipant(simCtx(t), mpc, u.member, u.update)
			errs <- err
		}()
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
		t.Errorf("%s %s reached Plivo %v after the 429, inside the 2 s pause", r.Method, r.Path, r.Time.Sub(got429))
	}
	if n := len(srv.AppliedUpdates()); n != len(updates) {
		t.Errorf("%d updates applied, want %d", n, len(updates))
	}
}
