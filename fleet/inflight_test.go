package fleet

import (
	"context"
	"testing"
	"time"

	"github.com/mpcbot/mpcbot/plivo"
)

// sharedOnly is the Redis half of InFlight alone, so that the table below
// checks it without the local log answering for it.
type sharedOnly struct{ l *InFlight }

func (s sharedOnly) Begin(ctx context.Context, mpc plivo.MPC, member plivo.Member, fields []plivo.Field) plivo.InFlightID {
	id, err := s.l.sharedBegin(ctx, mpc, member, fields)
	if err != nil {
		panic(err)
	}
	return plivo.InFlightID(id)
}
func (s sharedOnly) Resent(ctx context.Context, id plivo.InFlightID) {
	s.l.sharedStamp(ctx, string(id), "sent")
}
func (s sharedOnly) End(ctx context.Context, id plivo.InFlightID) {
	s.l.sharedStamp(ctx, string(id), "done")
}
func (s sharedOnly) ChangedSince(ctx context.Context, id plivo.InFlightID, m plivo.Member, f plivo.Field) bool {
	changed, err := s.l.sharedChangedSince(ctx, string(id), m, f)
	return changed || err != nil
}

// inFlightCases is the table of plivo.LocalInFlight's semantics, run
// against every implementation.
func inFlightCases(t *testing.T) []struct {
	name  string
	setup func(l plivo.InFlight) (self plivo.InFlightID)
	want  bool
} {
	ctx := context.Background()
	mpc, other := mustMPC(t, "test_mpc_1"), mustMPC(t, "other")
	hold := []plivo.Field{plivo.FieldHold}
	return []struct {
		name  string
		setup func(l plivo.InFlight) (self plivo.InFlightID)
		want  bool
	}{
		{"alone", func(l plivo.InFlight) plivo.InFlightID { return l.Begin(ctx, mpc, "101", hold) }, false},
		{"later update of the same field", func(l plivo.InFlight) plivo.InFlightID {
			self := l.Begin(ctx, mpc, "101", hold)
			l.Begin(ctx, mpc, "101", hold)
			return self
		}, true},
		{"later update of all", func(l plivo.InFlight) plivo.InFlightID {
			self := l.Begin(ctx, mpc, "101", hold)
			l.Begin(ctx, mpc, plivo.AllMembers, hold)
			return self
		}, true},
		{"later update of two fields", func(l plivo.InFlight) plivo.InFlightID {
			self := l.Begin(ctx, mpc, "101", hold)
			l.Begin(ctx, mpc, "101", []plivo.Field{plivo.FieldMute, plivo.FieldHold})
			return self
		}, true},
		{"earlier update still unanswered", func(l plivo.InFlight) plivo.InFlightID {
			l.Begin(ctx, mpc, "101", hold)
			return l.Begin(ctx, mpc, "101", hold)
		}, true},
		{"earlier update answered before", func(l plivo.InFlight) plivo.InFlightID {
			e := l.Begin(ctx, mpc, "101", hold)
			l.End(ctx, e)
			return l.Begin(ctx, mpc, "101", hold)
		}, false},
		{"earlier update answered after self was sent", func(l plivo.InFlight) plivo.InFlightID {
			e := l.Begin(ctx, mpc, "101", hold)
			self := l.Begin(ctx, mpc, "101", hold)
			l.End(ctx, e)
			return self
		}, true},
		{"earlier update answered after self was resent", func(l plivo.InFlight) plivo.InFlightID {
			e := l.Begin(ctx, mpc, "101", hold)
			self := l.Begin(ctx, mpc, "101", hold)
			l.End(ctx, e)
			l.Resent(ctx, self)
			return self
		}, false},
		{"other field", func(l plivo.InFlight) plivo.InFlightID {
			self := l.Begin(ctx, mpc, "101", hold)
			l.Begin(ctx, mpc, "101", []plivo.Field{plivo.FieldMute})
			return self
		}, false},
		{"a field whose name contains another's", func(l plivo.InFlight) plivo.InFlightID {
			self := l.Begin(ctx, mpc, "101", hold)
			l.Begin(ctx, mpc, "101", []plivo.Field{plivo.FieldCoachMode})
			return self
		}, false},
		{"other member", func(l plivo.InFlight) plivo.InFlightID {
			self := l.Begin(ctx, mpc, "101", hold)
			l.Begin(ctx, mpc, "102", hold)
			return self
		}, false},
		{"other MPC", func(l plivo.InFlight) plivo.InFlightID {
			self := l.Begin(ctx, mpc, "101", hold)
			l.Begin(ctx, other, "101", hold)
			return self
		}, false},
		{"forgotten id", func(l plivo.InFlight) plivo.InFlightID { return "nope" }, true},
	}
}

func TestInFlightSemantics(t *testing.T) {
	t.Parallel()
	impls := []struct {
		name string
		make func(t *testing.T) plivo.InFlight
	}{
		{"local", func(*testing.T) plivo.InFlight { return plivo.NewLocalInFlight() }},
		{"redis", func(t *testing.T) plivo.InFlight {
			f, _ := openFleet(t, testConfig(t, sharedRedis.URL(), uniquePrefix(t)))
			return sharedOnly{f.InFlight()}
		}},
		{"fleet", func(t *testing.T) plivo.InFlight {
			f, _ := openFleet(t, testConfig(t, sharedRedis.URL(), uniquePrefix(t)))
			return f.InFlight()
		}},
	}
	for _, impl := range impls {
		t.Run(impl.name, func(t *testing.T) {
			t.Parallel()
			for _, tt := range inFlightCases(t) {
				t.Run(tt.name, func(t *testing.T) {
					t.Parallel()
					l := impl.make(t)
					self := tt.setup(l)
					if got := l.ChangedSince(context.Background(), self, "101", plivo.FieldHold); got != tt.want {
						t.Fatalf("ChangedSince = %v, want %v", got, tt.want)
					}
				})
			}
		})
	}
}

// TestInFlightAcrossReplicas: an update sent by another replica counts.
func TestInFlightAcrossReplicas(t *testing.T) {
	t.Parallel()
	fs := openReplicas(t, 2, sharedRedis.URL(), nil)
	ctx := context.Background()
	mpc := mustMPC(t, "test_mpc_1")
	hold := []plivo.Field{plivo.FieldHold}
	self := fs[0].InFlight().Begin(ctx, mpc, "101", hold)
	if fs[0].InFlight().ChangedSince(ctx, self, "101", plivo.FieldHold) {
		t.Fatal("changed with nothing else sent")
	}
	other := fs[1].InFlight().Begin(ctx, mpc, plivo.AllMembers, hold)
	if !fs[0].InFlight().ChangedSince(ctx, self, "101", plivo.FieldHold) {
		t.Fatal("an update of all sent by another replica after self does not count")
	}
	fs[1].InFlight().End(ctx, other)
	fs[0].InFlight().End(ctx, self)
	next := fs[0].InFlight().Begin(ctx, mpc, "101", hold)
	if fs[0].InFlight().ChangedSince(ctx, next, "101", plivo.FieldHold) {
		t.Fatal("updates answered before next was sent count")
	}
}

// TestInFlightDegradesToPerProcess: with Redis down, the local log still
// answers for this process's own updates; an id whose shared half cannot be
// read any more answers "changed" (the safe side).
func TestInFlightDegradesToPerProcess(t *testing.T) {
	t.Parallel()
	srv := newServer(t)
	f, _ := openFleet(t, testConfig(t, srv.URL(), uniquePrefix(t)))
	ctx := context.Background()
	mpc := mustMPC(t, "test_mpc_1")
	hold := []plivo.Field{plivo.FieldHold}
	before := f.InFlight().Begin(ctx, mpc, "101", hold)
	srv.Kill()
	if !f.InFlight().ChangedSince(ctx, before, "101", plivo.FieldHold) {
		t.Fatal("an update recorded on Redis, which is now unreachable, is not answered 'changed'")
	}
	waitFor(t, 2*time.Second, "degraded", func() bool { return !f.Status().Healthy })
	f.InFlight().End(ctx, before)
	self := f.InFlight().Begin(ctx, mpc, "102", hold)
	if f.InFlight().ChangedSince(ctx, self, "102", plivo.FieldHold) {
		t.Fatal("per process: changed with nothing else sent")
	}
	f.InFlight().Begin(ctx, mpc, "102", hold)
	if !f.InFlight().ChangedSince(ctx, self, "102", plivo.FieldHold) {
		t.Fatal("per process: a later local update does not count")
	}
}

// TestInFlightIDsSurviveARedisRestart: after Redis lost its data (and its
// clock), an update recorded before answers "changed" (unknown, the safe
// side) and never reads an entry made after the restart.
func TestInFlightIDsSurviveARedisRestart(t *testing.T) {
	t.Parallel()
	srv := newServer(t)
	f, _ := openFleet(t, testConfig(t, srv.URL(), uniquePrefix(t)))
	ctx := context.Background()
	mpc := mustMPC(t, "test_mpc_1")
	hold := []plivo.Field{plivo.FieldHold}
	before := f.InFlight().Begin(ctx, mpc, "101", hold)
	if err := srv.Restart(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 10*time.Second, "a shared Begin after the restart", func() bool {
		_, rid := splitID(f.InFlight().Begin(ctx, mpc, "102", hold))
		return rid != ""
	})
	if !f.InFlight().ChangedSince(ctx, before, "101", plivo.FieldHold) {
		t.Fatal("an update recorded before Redis lost its data is answered 'not changed'")
	}
}
