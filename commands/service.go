package commands

import (
	"context"
	"errors"
	"fmt"
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
}

// DefaultConfirmAllAbove is the default MPC_CONFIRM_ALL_ABOVE: a change to
// `all` in a call with more live members than this asks for confirmation.
const DefaultConfirmAllAbove = 5

// DefaultTimeout bounds one command, Plivo retries and limiter waits
// included.
const DefaultTimeout = 15 * time.Second

// Service carries out commands: it authorizes them, asks for confirmation
// where needed, calls Plivo (one call per member) and describes what
// happened as an Outcome.
type Service struct {
	Plivo  Plivo
	Policy *Policy
	// ConfirmAllAbove: a change to all members of a call with more live
	// members than this asks for confirmation first; 0 always asks.
	ConfirmAllAbove int
	// Timeout bounds one command (default DefaultTimeout).
	Timeout time.Duration
	// Now is the clock (default time.Now).
	Now func() time.Time
}

var errCountFailed = errors.New("count live participants")

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

// Authorize applies the policy; a nil Policy allows everything (the CLI).
func (s *Service) Authorize(ctx context.Context, r Requester, cmd Command) (*Refusal, error) {
	if s.Policy == nil {
		return nil, nil
	}
	return s.Policy.Authorize(ctx, r, cmd)
}

// Change authorizes and carries out c for r: Check, then Apply if ready.
// It always returns an Outcome describing exactly one visible result:
// refused, needs confirmation, failed, partly failed or done. authErr
// reports a user-group lookup failure met during authorization (for the
// log); access is never granted because of one.
func (s *Service) Change(ctx context.Context, r Requester, c Change, src Source) (o Outcome, authErr error) {
	o, ready, authErr := s.Check(ctx, r, c, src)
	if ready {
		o = s.Apply(ctx, o)
	}
	return o, authErr
}

// Check decides whether c may run now. ready is false when the Outcome is
// already final: refused, waiting for confirmation (an `all` change in a
// call with more live members than ConfirmAllAbove, not yet confirmed), or
// failed while counting the members. The bot posts its anchor message
// between Check and Apply.
func (s *Service) Check(ctx context.Context, r Requester, c Change, src Source) (o Outcome, ready bool, authErr error) {
	o = Outcome{Requester: r, Change: c, Source: src, Started: s.now()}
	defer func() { o.Duration = s.now().Sub(o.Started) }()

	refusal, authErr := s.Authorize(ctx, r, c)
	if refusal != nil {
		o.Refusal = refusal
		return o, false, authErr
	}
	if c.All() && !c.Confirmed {
		ctx, cancel := context.WithTimeout(ctx, s.timeout())
		defer cancel()
		live, err := s.countLive(ctx, c.MPC)
		if err != nil {
			// Explain prefers Plivo's own error (not found, busy…) when there is one.
			o.Err = fmt.Errorf("%w: %w", errCountFailed, err)
			return o, false, authErr
		}
		o.LiveMembers = live
		if live > s.ConfirmAllAbove || s.ConfirmAllAbove == 0 {
			o.Confirm = &Confirmation{LiveMembers: live, Threshold: s.ConfirmAllAbove}
			return o, false, authErr
		}
	}
	return o, true, authErr
}

// Apply carries out a change that Check found ready: one Plivo call per
// member, all within the command's Timeout. It fills in the Results (and
// warnings) of o.
func (s *Service) Apply(ctx context.Context, o Outcome) Outcome {
	ctx, cancel := context.WithTimeout(ctx, s.timeout())
	defer cancel()
	if o.Change.Coaching() {
		o.Warnings = s.coachWarnings(ctx, o.Change)
	}
	o.Results = s.update(ctx, o.Change)
	o.Duration = s.now().Sub(o.Started)
	return o
}

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
		wg.Add(1)
		go func() {
			defer wg.Done()
			res, err := s.Plivo.UpdateParticipant(ctx, c.MPC, m, u)
			results[i] = memberResult(c, m, res, err)
		}()
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
		ex := Explain(err, c)
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
