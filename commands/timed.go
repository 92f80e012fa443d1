package commands

import (
	"context"
	"fmt"
	"runtime/debug"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/mpcbot/mpcbot/plivo"
)

// timerTick is how often RunTimers looks for due timers.
const timerTick = 500 * time.Millisecond

// timerLease is how long a claimed timer may take before another replica
// may claim it again (its replica died): the state read and the revert,
// each bounded by the command timeout.
func (s *Service) timerLease() time.Duration { return 3 * s.timeout() }

// RunTimers puts timed changes back when they are due, until ctx ends.
// surface returns where a timer's revert is answered (its thread).
func (s *Service) RunTimers(ctx context.Context, surface func(Timer) Surface) {
	s.init()
	tick := time.NewTicker(timerTick)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			s.RunDueTimers(ctx, surface)
		}
	}
}

// RunDueTimers claims the timers due now and puts them back; it returns
// how many it ran.
func (s *Service) RunDueTimers(ctx context.Context, surface func(Timer) Surface) int {
	s.init()
	due, err := s.Timers.Claim(ctx, s.now(), s.timerLease())
	if err != nil {
		s.Logger.Warn("could not claim due timers", "err", err)
	}
	var wg sync.WaitGroup
	for _, t := range due {
		wg.Go(func() {
			defer func() {
				if r := recover(); r != nil {
					s.Logger.Error("panic while putting a timer back", "timer_id", t.ID, "panic", fmt.Sprint(r), "stack", string(debug.Stack()))
				}
			}()
			s.revert(ctx, t, surface(t))
			if err := s.Timers.Done(context.WithoutCancel(ctx), t.ID); err != nil {
				s.Logger.Warn("could not mark a timer done", "timer_id", t.ID, "err", err)
			}
		})
	}
	wg.Wait()
	return len(due)
}

// revert puts back what is left of a due timer. It reads the members'
// state first: a field that is no longer what the timer set was changed
// outside mpcbot (Plivo's console, the dialler) and is left alone, a member
// who left is skipped; the rest is put back through Do.
func (s *Service) revert(ctx context.Context, t Timer, surface Surface) {
	base := Request{ID: t.ID, Requester: t.Requester, Source: Revert, Change: t.Change.Inverse(), Reverts: &t}
	rctx, cancel := context.WithTimeout(ctx, s.timeout())
	defer cancel()
	ps, err := s.Plivo.ListParticipants(rctx, t.Change.MPC)
	if err != nil {
		o := Outcome{RequestID: t.ID, Requester: t.Requester, Change: base.Change, Source: Revert, Reverts: &t,
			LiveMembers: -1, Started: s.now(), Err: fmt.Errorf("read the state before putting it back: %w", err),
			Notes: []string{"Not put back: " + t.RevertCommands()}}
		s.finish(ctx, o, surface)
		return
	}
	changes, notes := t.revertPlan(ps)
	if len(changes) == 0 {
		o := Outcome{RequestID: t.ID, Requester: t.Requester, Change: base.Change, Source: Revert, Reverts: &t,
			LiveMembers: -1, Started: s.now(), Notes: notes}
		s.finish(ctx, o, surface)
		return
	}
	for i, c := range changes {
		req := base
		req.Change = c
		if i == 0 {
			req.Notes = notes
		}
		s.Do(ctx, req, surface)
	}
}

// revertPlan decides, from the participants' state now, what to put back:
// the changes to make (grouped by member set) and a note for each member
// field left alone and why.
func (t Timer) revertPlan(ps []plivo.Participant) ([]Change, []string) {
	set := map[plivo.Field]bool{}
	for _, a := range t.Change.Actions {
		set[a.Field] = a.Value
	}
	live := map[plivo.Member]plivo.Participant{}
	var order []plivo.Member
	for _, p := range ps {
		if p.Live() {
			live[plivo.Member(p.MemberID)] = p
			order = append(order, plivo.Member(p.MemberID))
		}
	}
	actions := map[plivo.Member][]Action{}
	var notes []string
	noted := map[string]bool{}
	note := func(n string) {
		if !noted[n] {
			noted[n] = true
			notes = append(notes, n)
		}
	}
	still := func(p plivo.Participant, f plivo.Field) bool {
		v := fieldOf(p, f)
		return v != nil && *v == set[f]
	}
	for _, pair := range t.Pending {
		undo := Action{Field: pair.Field, Value: !set[pair.Field]}
		if !pair.Member.IsAll() {
			p, ok := live[pair.Member]
			switch {
			case !ok:
				note(fmt.Sprintf("member %s has left the call: nothing to put back.", pair.Member))
			case !still(p, pair.Field):
				note(fmt.Sprintf("member %s: %s was changed outside mpcbot since; left as it is.", pair.Member, pair.Field))
			default:
				actions[pair.Member] = append(actions[pair.Member], undo)
			}
			continue
		}
		var matching []plivo.Member
		everyone := true
		for _, m := range order {
			p := live[m]
			switch {
			case slices.Contains(t.Excluded, Pair{Member: m, Field: pair.Field}):
				everyone = false
			case pair.Field == plivo.FieldCoachMode && !p.IsSupervisor():
			case !still(p, pair.Field):
				everyone = false
				note(fmt.Sprintf("member %s: %s was changed outside mpcbot since; left as it is.", m, pair.Field))
			default:
				matching = append(matching, m)
			}
		}
		if everyone && len(matching) > 0 {
			actions[plivo.AllMembers] = append(actions[plivo.AllMembers], undo)
			continue
		}
		for _, m := range matching {
			actions[m] = append(actions[m], undo)
		}
	}
	// One change per distinct action set, members in roster order.
	byActions := map[string]*Change{}
	var keys []string
	members := make([]plivo.Member, 0, len(actions))
	for m := range actions {
		members = append(members, m)
	}
	sort.SliceStable(members, func(i, j int) bool { return members[i] < members[j] })
	for _, m := range members {
		as := sortActions(actions[m])
		c := Change{Actions: as, MPC: t.Change.MPC, Confirmed: true}
		k := c.ActionsText()
		if byActions[k] == nil {
			byActions[k] = &c
			keys = append(keys, k)
		}
		byActions[k].Members = append(byActions[k].Members, m)
	}
	changes := make([]Change, 0, len(keys))
	for _, k := range keys {
		changes = append(changes, *byActions[k])
	}
	return changes, notes
}

func fieldOf(p plivo.Participant, f plivo.Field) *bool {
	switch f {
	case plivo.FieldMute:
		return p.Mute
	case plivo.FieldHold:
		return p.Hold
	case plivo.FieldCoachMode:
		return p.CoachMode
	}
	return nil
}

// RevertCommands returns the commands that put back what the timer still
// would, to run by hand ("`/mpc unhold test_mpc_1 1002`").
func (t Timer) RevertCommands() string {
	byMember := map[plivo.Member][]Action{}
	var members []plivo.Member
	for _, p := range t.Pending {
		if byMember[p.Member] == nil {
			members = append(members, p.Member)
		}
		for _, a := range t.Change.Actions {
			if a.Field == p.Field {
				byMember[p.Member] = append(byMember[p.Member], a.Inverse())
			}
		}
	}
	var cmds []string
	for _, m := range members {
		c := Change{Actions: sortActions(byMember[m]), MPC: t.Change.MPC, Members: []plivo.Member{m}, Confirmed: m.IsAll()}
		cmds = append(cmds, "`/mpc "+c.Text()+"`")
	}
	if len(cmds) == 0 {
		return "nothing"
	}
	return strings.Join(cmds, " and ")
}

// For returns how long the timed change was set for.
func (t Timer) For() time.Duration { return t.Due.Sub(t.Set) }

// revertHeadline is the headline of a timer's revert: "⏱ after 2m: ✅
// unhold member 1002 in test_mpc_1".
func (o Outcome) revertHeadline() string {
	prefix := "⏱ after " + FormatDuration(o.Reverts.For()) + ": "
	switch o.Status() {
	case StatusOK:
		return prefix + "✅ " + o.Change.Describe()
	case StatusPartial:
		return prefix + "⚠️ " + o.Change.Describe() + ": partly failed"
	case StatusSkipped:
		return prefix + "nothing to put back for " + o.Reverts.Change.Describe()
	}
	return prefix + "❌ " + o.Change.Describe() + ": failed"
}

// timerLine says when a timed change is put back.
func (o Outcome) timerLine() string {
	inv := o.Change.Inverse().WithMembers(o.Done()...)
	return fmt.Sprintf("⏱ %s at %s UTC (in %s), unless someone changes it first.",
		inv.Describe(), o.Timer.Due.UTC().Format("15:04:05"), FormatDuration(o.Timer.For))
}

// CancelResult is the answer to a request to cancel a timer.
type CancelResult struct {
	// Timer is the cancelled timer (nil when none was pending).
	Timer *Timer
	// Refusal is set when the requester may not make the timer's change.
	Refusal *Refusal
	// Err is set when the timer store failed.
	Err error
}

// CancelTimer cancels a pending timer: its member fields stay as they are.
// Whoever may make the timer's change may cancel it.
func (s *Service) CancelTimer(ctx context.Context, r Requester, id string) CancelResult {
	s.init()
	pending, err := s.Timers.Pending(ctx)
	if err != nil {
		return CancelResult{Err: fmt.Errorf("list pending timers: %w", err)}
	}
	i := slices.IndexFunc(pending, func(t Timer) bool { return t.ID == id })
	if i < 0 {
		return CancelResult{}
	}
	refusal, authErr := s.Authorize(ctx, r, pending[i].Change)
	if authErr != nil {
		s.Logger.Warn("user-group lookup failed during authorization", "user_id", r.UserID, "err", authErr)
	}
	if refusal != nil {
		return CancelResult{Refusal: refusal}
	}
	t, ok, err := s.Timers.Cancel(ctx, id)
	if err != nil {
		return CancelResult{Err: fmt.Errorf("cancel timer %s: %w", id, err)}
	}
	if !ok {
		return CancelResult{}
	}
	return CancelResult{Timer: &t}
}

// ProcessTimers is implemented by a TimerStore that keeps some timers in
// this process only: they end with it (all of them without Redis; those
// set while Redis was unreachable with it).
type ProcessTimers interface {
	Local(ctx context.Context) ([]Timer, error)
}

// AbandonTimers tells the place of every timer that ends with this process
// that it will not run (why): called when the process stops. Timers kept in
// Redis are left to the other replicas.
func (s *Service) AbandonTimers(ctx context.Context, why string) int {
	s.init()
	local, ok := s.Timers.(ProcessTimers)
	if !ok {
		return 0
	}
	pending, err := local.Local(ctx)
	if err != nil {
		s.Logger.Warn("could not list pending timers", "err", err)
		return 0
	}
	for _, t := range pending {
		s.Logger.Warn("timer not run", "timer_id", t.ID, "why", why, "run_by_hand", t.RevertCommands())
		if s.Notify != nil {
			s.Notify.TimerNotRun(ctx, t, why)
		}
	}
	return len(pending)
}
