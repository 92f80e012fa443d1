package commands_test

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mpcbot/mpcbot/commands"
	"github.com/mpcbot/mpcbot/plivo"
	"github.com/mpcbot/mpcbot/plivo/plivotest"
)

// recorder is a Surface that keeps what Do showed on it, in order.
type recorder struct {
	mu      sync.Mutex
	events  []string
	answers []commands.Outcome
	place   commands.Place
}

func (r *recorder) Begin(_ context.Context, o commands.Outcome) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, "begin")
}

func (r *recorder) Answer(_ context.Context, o commands.Outcome) commands.Place {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, "answer:"+string(o.Status()))
	r.answers = append(r.answers, o)
	return r.place
}

func (r *recorder) last(t *testing.T) commands.Outcome {
	t.Helper()
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.answers) == 0 {
		t.Fatal("nothing answered")
	}
	return r.answers[len(r.answers)-1]
}

// notifier records superseded and abandoned timers.
type notifier struct {
	mu         sync.Mutex
	superseded []commands.Superseded
	notRun     []string
}

func (n *notifier) TimerSuperseded(_ context.Context, s commands.Superseded, _ commands.Outcome) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.superseded = append(n.superseded, s)
}

func (n *notifier) TimerNotRun(_ context.Context, t commands.Timer, why string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.notRun = append(n.notRun, t.ID+": "+why+": "+t.RevertCommands())
}

// clock is a settable clock for timers.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

type timedFixture struct {
	fixture
	clock  *clock
	notify *notifier
	mpc    plivo.MPC
}

func newTimedFixture(t *testing.T) timedFixture {
	f := newFixture(t, 5, 100, 100)
	c := &clock{now: time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC)}
	n := &notifier{}
	f.svc.Now = c.Now
	f.svc.Notify = n
	mpc, _ := plivo.MPCByName(plivotest.SampleMPCName)
	return timedFixture{fixture: f, clock: c, notify: n, mpc: mpc}
}

func (f timedFixture) timed(t *testing.T, user string, actions []commands.Action, members []plivo.Member, d time.Duration, place commands.Place) (commands.Outcome, *recorder) {
	t.Helper()
	rec := &recorder{place: place}
	c := commands.Change{Actions: actions, MPC: f.mpc, Members: members, For: d}
	o := f.svc.Do(context.Background(), commands.Request{ID: "req", Requester: commands.Requester{UserID: user, ChannelID: "C1"},
		Source: commands.Typed, Change: c}, rec)
	return o, rec
}

// runDue advances the clock past due and runs the due timers, answering
// every revert on rec.
func (f timedFixture) runDue(t *testing.T, d time.Duration) *recorder {
	t.Helper()
	f.clock.Add(d)
	rec := &recorder{}
	f.svc.RunDueTimers(context.Background(), func(commands.Timer) commands.Surface { return rec })
	return rec
}

func (f timedFixture) state(t *testing.T, member string) plivotest.ParticipantState {
	t.Helper()
	st, ok := f.sim.Participant(plivotest.SampleMPCName, member)
	if !ok {
		t.Fatalf("no member %s", member)
	}
	return st
}

func TestDoSurfaceOrder(t *testing.T) {
	t.Parallel()
	f := newTimedFixture(t)
	_, rec := f.timed(t, sup, []commands.Action{commands.Hold}, []plivo.Member{plivo.Member(f.customer)}, 0, commands.Place{})
	if got := strings.Join(rec.events, ","); got != "begin,answer:ok" {
		t.Fatalf("surface calls %q, want begin then one answer", got)
	}
	_, rec = f.timed(t, "USTRANGER", []commands.Action{commands.Hold}, []plivo.Member{plivo.Member(f.customer)}, 0, commands.Place{})
	if got := strings.Join(rec.events, ","); got != "answer:refused" {
		t.Fatalf("refused change: surface calls %q, want one answer and no begin", got)
	}
}

// A timed hold is put back when due, in the place it was answered, with
// Undo now and Cancel timer offered on the result.
func TestTimedHoldReverts(t *testing.T) {
	t.Parallel()
	f := newTimedFixture(t)
	place := commands.Place{ChannelID: "C1", ThreadTS: "1700000000.000100"}
	o, _ := f.timed(t, sup, []commands.Action{commands.Hold}, []plivo.Member{plivo.Member(f.customer)}, 2*time.Minute, place)
	if o.Status() != commands.StatusOK || o.Timer == nil || !o.Timer.Due.Equal(f.clock.Now().Add(2*time.Minute)) {
		t.Fatalf("timed hold: %s %+v", o.Status(), o.Timer)
	}
	labels := ""
	for _, fu := range o.FollowUps {
		labels += fu.Label + "|"
	}
	if !strings.Contains(labels, "Undo now") || !strings.Contains(labels, "Cancel timer") {
		t.Fatalf("follow-ups %q lack Undo now / Cancel timer", labels)
	}
	if !f.state(t, f.customer).Hold {
		t.Fatal("not on hold after the timed hold")
	}
	if rec := f.runDue(t, time.Minute); len(rec.answers) != 0 {
		t.Fatalf("a timer ran a minute early: %+v", rec.events)
	}
	rec := f.runDue(t, time.Minute)
	got := rec.last(t)
	if got.Status() != commands.StatusOK || got.Source != commands.Revert || got.Reverts == nil || got.Reverts.Place != place {
		t.Fatalf("revert: %s source %s %+v", got.Status(), got.Source, got.Reverts)
	}
	if head := got.Headline(); !strings.HasPrefix(head, "⏱ after 2m: ✅ unhold") {
		t.Fatalf("revert headline %q", head)
	}
	if f.state(t, f.customer).Hold {
		t.Fatal("still on hold after the timer")
	}
	if rec := f.runDue(t, time.Hour); len(rec.answers) != 0 {
		t.Fatal("a timer reverted twice")
	}
}

// A person's later decision wins: a later change of the same member field
// supersedes the timer (even one that sets the same value); a change made
// outside mpcbot is noticed when the timer reads the state; a member who
// left is skipped.
func TestTimedHoldSupersededSkippedLeft(t *testing.T) {
	t.Parallel()
	t.Run("superseded", func(t *testing.T) {
		t.Parallel()
		f := newTimedFixture(t)
		f.timed(t, sup, []commands.Action{commands.Mute, commands.Hold}, []plivo.Member{plivo.Member(f.customer)}, time.Minute, commands.Place{})
		f.svc.Change(context.Background(), commands.Requester{UserID: sup, ChannelID: "C1"},
			commands.Change{Actions: []commands.Action{commands.Hold}, MPC: f.mpc, Members: []plivo.Member{plivo.Member(f.customer)}}, commands.Typed)
		if len(f.notify.superseded) != 1 || len(f.notify.superseded[0].Lost) != 1 || f.notify.superseded[0].Lost[0].Field != plivo.FieldHold {
			t.Fatalf("superseded %+v, want hold of %s lost", f.notify.superseded, f.customer)
		}
		rec := f.runDue(t, time.Minute)
		got := rec.last(t)
		if got.Status() != commands.StatusOK || got.Change.ActionsText() != "unmute" {
			t.Fatalf("revert after a later hold: %s %q, want unmute only", got.Status(), got.Change.ActionsText())
		}
		if st := f.state(t, f.customer); st.Mute || !st.Hold {
			t.Fatalf("state %+v: mute put back, hold left as the later change set it", st)
		}
	})
	t.Run("changed outside mpcbot", func(t *testing.T) {
		t.Parallel()
		f := newTimedFixture(t)
		f.timed(t, sup, []commands.Action{commands.Hold}, []plivo.Member{plivo.Member(f.customer)}, time.Minute, commands.Place{})
		off := false
		if _, err := f.pc.UpdateParticipant(context.Background(), f.mpc, plivo.Member(f.customer), plivo.ParticipantUpdate{Hold: &off}); err != nil {
			t.Fatal(err)
		}
		before := len(f.sim.AppliedUpdates())
		got := f.runDue(t, time.Minute).last(t)
		if got.Status() != commands.StatusSkipped || !strings.Contains(strings.Join(got.ResultLines(), "\n"), "changed outside mpcbot") {
			t.Fatalf("revert: %s %q", got.Status(), got.ResultLines())
		}
		if after := len(f.sim.AppliedUpdates()); after != before {
			t.Fatalf("a skipped revert sent %d updates", after-before)
		}
	})
	t.Run("member left", func(t *testing.T) {
		t.Parallel()
		f := newTimedFixture(t)
		f.timed(t, sup, []commands.Action{commands.Hold}, []plivo.Member{plivo.Member(f.customer)}, time.Minute, commands.Place{})
		f.sim.RemoveParticipant(plivotest.SampleMPCName, f.customer)
		got := f.runDue(t, time.Minute).last(t)
		if got.Status() != commands.StatusSkipped || !strings.Contains(strings.Join(got.ResultLines(), "\n"), "has left the call") {
			t.Fatalf("revert: %s %q", got.Status(), got.ResultLines())
		}
	})
	t.Run("cancelled", func(t *testing.T) {
		t.Parallel()
		f := newTimedFixture(t)
		o, _ := f.timed(t, sup, []commands.Action{commands.Hold}, []plivo.Member{plivo.Member(f.customer)}, time.Minute, commands.Place{})
		if res := f.svc.CancelTimer(context.Background(), commands.Requester{UserID: "USTRANGER"}, o.Timer.ID); res.Refusal == nil {
			t.Fatalf("a stranger cancelled a timer: %+v", res)
		}
		res := f.svc.CancelTimer(context.Background(), commands.Requester{UserID: "UAGENT"}, o.Timer.ID)
		if res.Timer == nil || res.Timer.ID != o.Timer.ID {
			t.Fatalf("cancel: %+v", res)
		}
		if rec := f.runDue(t, time.Minute); len(rec.answers) != 0 {
			t.Fatal("a cancelled timer ran")
		}
		if !f.state(t, f.customer).Hold {
			t.Fatal("a cancelled timer put the hold back")
		}
		if again := f.svc.CancelTimer(context.Background(), commands.Requester{UserID: sup}, o.Timer.ID); again.Timer != nil {
			t.Fatal("cancelled twice")
		}
	})
	t.Run("abandoned on stop", func(t *testing.T) {
		t.Parallel()
		f := newTimedFixture(t)
		f.timed(t, sup, []commands.Action{commands.Hold}, []plivo.Member{plivo.Member(f.customer)}, time.Minute, commands.Place{})
		if n := f.svc.AbandonTimers(context.Background(), "mpcbot stopped"); n != 1 {
			t.Fatalf("abandoned %d timers, want 1", n)
		}
		if len(f.notify.notRun) != 1 || !strings.Contains(f.notify.notRun[0], "`/mpc unhold test_mpc_1 "+f.customer+"`") {
			t.Fatalf("not-run notices %q", f.notify.notRun)
		}
	})
}

// A timed change to all members puts back every live member whose field is
// still what the timer set, in one call when that is everyone; members a
// later change took over are left alone.
func TestTimedAllRevertsPerMember(t *testing.T) {
	t.Parallel()
	f := newTimedFixture(t)
	f.timed(t, sup, []commands.Action{commands.Mute}, []plivo.Member{plivo.AllMembers}, time.Minute, commands.Place{})
	f.svc.Change(context.Background(), commands.Requester{UserID: sup, ChannelID: "C1"},
		commands.Change{Actions: []commands.Action{commands.Unmute}, MPC: f.mpc, Members: []plivo.Member{plivo.Member(f.agent)}}, commands.Typed)
	got := f.runDue(t, time.Minute).last(t)
	if got.Status() != commands.StatusOK || got.Change.All() || len(got.Change.Members) != 2 {
		t.Fatalf("revert of all after one member was unmuted: %s members %v", got.Status(), got.Change.Members)
	}
	for _, m := range []string{f.customer, f.supervisor, f.agent} {
		if f.state(t, m).Mute {
			t.Fatalf("member %s still muted", m)
		}
	}
}
