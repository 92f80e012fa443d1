package commands

import (
	"context"
	"crypto/rand"
	"encoding/base32"
	"fmt"
	"log/slog"
	"runtime/debug"
	"strings"
	"sync"
	"time"

	"github.com/mpcbot/mpcbot/plivo"
)

// Plivo is the part of the Plivo client the commands need; *plivo.Client
// implements it.
type Plivo interface {
	UpdateParticipant(ctx context.Context, mpc plivo.MPC, member plivo.Member, u plivo.ParticipantUpdate) (plivo.UpdateResult, error)
	ListParticipants(ctx context.Context, mpc plivo.MPC) ([]plivo.Participant, error)
	LiveMPCs(ctx context.Context) (plivo.LiveMPCList, error)
}

// DefaultTimeout bounds one command, Plivo retries and limiter waits
// included.
const DefaultTimeout = 15 * time.Second

// Request is a change someone asked for: who, what, and from which
// surface. Where the answer goes is the Surface given with it.
type Request struct {
	// ID identifies the request in logs and the audit record (the Slack
	// envelope id, a timer id).
	ID        string
	Requester Requester
	Source    Source
	Change    Change
	// Reverts is set when the request puts back a timed change; Notes
	// are shown with its answer (e.g. what the timer skipped).
	Reverts *Timer
	Notes   []string
	// Once, if set, is asked once the change is authorized and confirmed,
	// right before it runs: false means another delivery of the same
	// request (a second tap of the same button by the same person) runs
	// it, and this one only says so.
	Once func(ctx context.Context) bool
}

// Surface is where a change came from and where its answer goes: a
// thread under an anchor message, a roster panel, the Home tab, a timer's
// thread, a terminal. Service.Do calls Begin (at most once) and then Answer
// (exactly once).
type Surface interface {
	// Begin is called when the change is authorized and confirmed, right
	// before Plivo is called. A surface that posts an anchor message starts
	// posting it here, without waiting for Slack.
	Begin(ctx context.Context, o Outcome)
	// Answer shows the outcome — refused, waiting for confirmation, failed
	// or done — and returns where it went, for what follows (a timer's
	// revert, notices).
	Answer(ctx context.Context, o Outcome) Place
}

// Auditor records the outcome of every change: the audit log record, the
// audit channel, metrics.
type Auditor interface {
	Audit(ctx context.Context, o Outcome)
}

// TimerNotifier tells the place a timed change was answered what became of
// its timer when that happens outside the timer's own revert.
type TimerNotifier interface {
	// TimerSuperseded: a later change (by) took over some of the timer's
	// member fields; they will not be put back.
	TimerSuperseded(ctx context.Context, s Superseded, by Outcome)
	// TimerNotRun: the timer will not run (mpcbot stopped, or it could
	// not be stored); why says so.
	TimerNotRun(ctx context.Context, t Timer, why string)
}

// Service carries out commands: every change, whatever surface it started
// from, travels Do — authorize, confirm, call Plivo (one call per member),
// supersede and set timers, answer, audit.
type Service struct {
	Plivo  Plivo
	Policy *Policy
	// ConfirmAllAbove: a change to all members of a call with more live
	// members than this asks for confirmation first; 0 always asks.
	ConfirmAllAbove int
	// Timeout bounds one command (default DefaultTimeout).
	Timeout time.Duration
	// Timers keeps the timers of timed changes (default: in this process).
	Timers TimerStore
	// Cache holds the live calls for a few seconds (default: in this
	// process; shared by the fleet on Redis).
	Cache Cache
	// Audit records every outcome (optional).
	Audit Auditor
	// Notify reports superseded or lost timers (optional).
	Notify TimerNotifier
	// Logger receives warnings (optional).
	Logger *slog.Logger
	// Now is the clock (default time.Now).
	Now func() time.Time

	initOnce    sync.Once
	callsFlight liveCallsFlight
}

func (s *Service) init() {
	s.initOnce.Do(func() {
		if s.Timers == nil {
			s.Timers = NewLocalTimers()
		}
		if s.Cache == nil {
			s.Cache = newLocalCache()
		}
		if s.Logger == nil {
			s.Logger = slog.New(slog.DiscardHandler)
		}
	})
}

func (s *Service) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

func (s *Service) timeout() time.Duration {
	if s.Timeout > 0 {
		return s.Timeout
	}
	return DefaultTimeout
}

func (s *Service) rule() confirmRule { return confirmRule{AllAbove: s.ConfirmAllAbove} }

// ButtonPrompt applies the confirmation rule to a button that runs c (see
// confirmRule.ButtonPrompt); live < 0 when the count is unknown.
func (s *Service) ButtonPrompt(c Change, live int) (Change, *Prompt) {
	return s.rule().ButtonPrompt(c, live)
}

// Authorize applies the policy; a nil Policy allows everything (the CLI).
func (s *Service) Authorize(ctx context.Context, r Requester, cmd Command) (*Refusal, error) {
	if s.Policy == nil {
		return nil, nil
	}
	return s.Policy.Authorize(ctx, r, cmd)
}

// Do carries a change from "who asked, what, from where" to Plivo and back
// to the surface, and returns what happened. It is the one path of every
// change: typed, clicked in a thread, on a panel or in the Home tab, put
// back by a timer, or run from a terminal.
//
//  1. authorize (a timer's revert was authorized when it was set);
//  2. the confirmation rule for `all` in a large call;
//  3. Begin on the surface, one Plivo call per member;
//  4. a person's later decision wins: the timers of the member fields just
//     changed are superseded; a timed change sets its own timer;
//  5. Answer on the surface, then the audit record.
func (s *Service) Do(ctx context.Context, req Request, surface Surface) Outcome {
	s.init()
	c := req.Change
	o := Outcome{RequestID: req.ID, Requester: req.Requester, Change: c, Source: req.Source,
		Reverts: req.Reverts, Notes: req.Notes, LiveMembers: -1, Started: s.now()}
	ctx, cancel := context.WithTimeout(ctx, s.timeout())
	defer cancel()

	if req.Source != Revert {
		refusal, authErr := s.Authorize(ctx, req.Requester, c)
		if authErr != nil {
			s.Logger.Warn("user-group lookup failed during authorization", "request_id", req.ID, "user_id", req.Requester.UserID, "err", authErr)
		}
		if refusal != nil {
			o.Refusal = refusal
			return s.finish(ctx, o, surface)
		}
	}
	if s.rule().ask(c, -1) {
		live, err := s.countLive(ctx, c.MPC)
		if err != nil {
			o.Err = fmt.Errorf("%w: %w", errCountFailed, err)
			return s.finish(ctx, o, surface)
		}
		o.LiveMembers = live
	}
	if s.rule().ask(c, o.LiveMembers) {
		o.Confirm = &Confirmation{LiveMembers: o.LiveMembers, Threshold: s.ConfirmAllAbove}
		return s.finish(ctx, o, surface)
	}

	if req.Once != nil && !req.Once(ctx) {
		o.Duplicate = true
		return s.finish(ctx, o, surface)
	}

	surface.Begin(ctx, o)
	if c.Coaching() {
		o.Warnings = s.coachWarnings(ctx, c)
	}
	o.Results = s.update(ctx, c)

	var timer *Timer
	if done := o.Done(); len(done) > 0 {
		if req.Source != Revert {
			s.supersede(ctx, o, done)
		}
		if c.For > 0 {
			applied := c.WithMembers(done...)
			applied.Confirmed = true
			t := NewTimer(newTimerID(), applied, req.Requester, req.Source, s.now(), c.For, Place{})
			timer = &t
			o.Timer = &TimerInfo{ID: t.ID, Due: t.Due, For: c.For}
		}
	}
	place := s.answer(ctx, &o, surface)
	if timer != nil {
		timer.Place = place
		if err := s.Timers.Add(context.WithoutCancel(ctx), *timer); err != nil {
			s.Logger.Error("timer not stored: it will not run", "timer_id", timer.ID, "err", err)
			if s.Notify != nil {
				s.Notify.TimerNotRun(context.WithoutCancel(ctx), *timer, "mpcbot could not store the timer")
			}
		}
	}
	s.audit(ctx, o)
	return o
}

// finish answers and audits an outcome that did not reach Plivo.
func (s *Service) finish(ctx context.Context, o Outcome, surface Surface) Outcome {
	s.answer(ctx, &o, surface)
	s.audit(ctx, o)
	return o
}

// answer computes the follow-ups and hands the outcome to the surface.
func (s *Service) answer(ctx context.Context, o *Outcome, surface Surface) Place {
	o.Duration = s.now().Sub(o.Started)
	if o.Refusal == nil && o.Confirm == nil && !o.Duplicate {
		o.FollowUps = s.FollowUps(*o)
	}
	return surface.Answer(context.WithoutCancel(ctx), *o)
}

func (s *Service) audit(ctx context.Context, o Outcome) {
	if s.Audit != nil {
		s.Audit.Audit(context.WithoutCancel(ctx), o)
	}
}

// supersede removes the member fields just changed from every pending timer
// of the MPC and tells those timers' places.
func (s *Service) supersede(ctx context.Context, o Outcome, done []plivo.Member) {
	var fields []plivo.Field
	for _, a := range o.Change.Actions {
		fields = append(fields, a.Field)
	}
	sups, err := s.Timers.Supersede(ctx, o.Change.MPC, done, fields)
	if err != nil {
		s.Logger.Warn("could not supersede the timers of a changed member", "request_id", o.RequestID, "err", err)
	}
	if s.Notify == nil {
		return
	}
	for _, sup := range sups {
		s.Notify.TimerSuperseded(context.WithoutCancel(ctx), sup, o)
	}
}

// Change runs c for r with no surface to show it on (the CLI, tests) and
// returns the outcome.
func (s *Service) Change(ctx context.Context, r Requester, c Change, src Source) Outcome {
	return s.Do(ctx, Request{Requester: r, Source: src, Change: c}, Discard{})
}

// Discard is a Surface that shows nothing: the caller reads the Outcome.
type Discard struct{}

// Begin implements Surface.
func (Discard) Begin(context.Context, Outcome) {}

// Answer implements Surface.
func (Discard) Answer(context.Context, Outcome) Place { return Place{} }

// countLive returns the number of live participants of the MPC.
func (s *Service) countLive(ctx context.Context, mpc plivo.MPC) (int, error) {
	ps, err := s.Plivo.ListParticipants(ctx, mpc)
	if err != nil {
		return 0, err
	}
	n := 0
	for _, p := range ps {
		if p.Live() {
			n++
		}
	}
	return n, nil
}

// coachWarnings looks up the roles of the members to be coached: Plivo
// accepts coach_mode for any participant but keeps it false for everyone
// but supervisors. A failed lookup yields no warning (the update itself
// reports any real problem).
func (s *Service) coachWarnings(ctx context.Context, c Change) []string {
	ps, err := s.Plivo.ListParticipants(ctx, c.MPC)
	if err != nil {
		return nil
	}
	live := map[string]plivo.Participant{}
	for _, p := range ps {
		if p.Live() {
			live[p.MemberID] = p
		}
	}
	var ws []string
	for _, m := range c.Members {
		if p, ok := live[string(m)]; ok && !p.IsSupervisor() {
			ws = append(ws, fmt.Sprintf("member %s is not a supervisor (role: %s): Plivo accepts coach mode for them but keeps it off.", m, strings.ToLower(p.Role)))
		}
	}
	return ws
}

// update makes one Plivo call per member, concurrently (the client's rate
// limiter orders them), and returns the results in member order.
func (s *Service) update(ctx context.Context, c Change) []MemberResult {
	u := c.Update()
	results := make([]MemberResult, len(c.Members))
	var wg sync.WaitGroup
	for i, m := range c.Members {
		wg.Go(func() {
			// A bug below must not take the process down: it becomes this
			// member's internal error, shown like any failure.
			defer func() {
				if r := recover(); r != nil {
					s.Logger.Error("panic while calling Plivo", "mpc", c.MPC.String(), "member", string(m), "panic", fmt.Sprint(r), "stack", string(debug.Stack()))
					results[i] = memberResult(c, m, plivo.UpdateResult{}, fmt.Errorf("internal error (panic): %v", r))
				}
			}()
			res, err := s.Plivo.UpdateParticipant(ctx, c.MPC, m, u)
			results[i] = memberResult(c, m, res, err)
		})
	}
	wg.Wait()
	return results
}

func memberResult(c Change, m plivo.Member, res plivo.UpdateResult, err error) MemberResult {
	r := MemberResult{Member: m, APIID: res.APIID, Err: err}
	if err != nil {
		if pe, ok := plivo.AsError(err); ok && pe.APIID != "" {
			r.APIID = pe.APIID
		}
		ex := Explain(err, c.MPC)
		text := "not applied — " + ex.Summary
		if ex.Detail != "" {
			text += ": " + ex.Detail
		}
		for _, a := range c.Actions {
			r.Fields = append(r.Fields, FieldResult{Action: a, Text: text})
		}
		return r
	}
	for _, a := range c.Actions {
		text, ok := res.Results[a.Field]
		if !ok || text == "" {
			text = "(Plivo returned no result for this field)"
		}
		r.Fields = append(r.Fields, FieldResult{Action: a, OK: ok && text != "", Text: text})
	}
	return r
}

// Roster is the participant list of an MPC split into live members and
// exited entries (one per earlier join).
type Roster struct {
	MPC     plivo.MPC
	Live    []plivo.Participant
	Exited  []plivo.Participant
	Fetched time.Time
}

// Roster fetches the MPC's participants. Authorize the List first.
func (s *Service) Roster(ctx context.Context, mpc plivo.MPC) (Roster, error) {
	ctx, cancel := context.WithTimeout(ctx, s.timeout())
	defer cancel()
	ps, err := s.Plivo.ListParticipants(ctx, mpc)
	if err != nil {
		return Roster{}, fmt.Errorf("list participants of %s: %w", mpc, err)
	}
	ro := Roster{MPC: mpc, Fetched: s.now()}
	for _, p := range ps {
		if p.Live() {
			ro.Live = append(ro.Live, p)
		} else {
			ro.Exited = append(ro.Exited, p)
		}
	}
	return ro, nil
}

// newTimerID returns a random timer id: 16 lowercase base32 characters.
func newTimerID() string {
	b := make([]byte, 10)
	_, _ = rand.Read(b)
	return strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(b))
}
