package plivo

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
)

// verdict is what reading the state back after a lost answer showed.
type verdict int

const (
	unreadable verdict = iota // the read failed: try again later, never resend blind
	applied                   // the state is what the update asks for: done
	notApplied                // it is not: send the update again
)

// sentUpdate is an update whose answer may be lost, as recorded in InFlight.
type sentUpdate struct {
	mpc    MPC
	member Member
	update ParticipantUpdate
	id     InFlightID
}

// readBack is the step after an update's answer was lost (x.last): it
// waits (Retry-After of a 503, else the backoff), reads the state back and,
// while that read fails, backs off and reads again — all before ctx's
// deadline. It returns applied (with the Confirmed result) or notApplied;
// when the deadline comes first, unreadable with the lost answer's error
// (saying that reading the state back failed too, if a read was tried).
func (c *Client) readBack(ctx context.Context, x *exchange, sent sentUpdate) (UpdateResult, verdict, *Error) {
	lost := x.last
	deadline, _ := ctx.Deadline()
	wait := c.retryWait(x)
	for round := x.sent + 1; ; round++ {
		if !c.now().Add(wait).Before(deadline) {
			if round == x.sent+1 {
				return UpdateResult{}, unreadable, lost
			}
			e := *lost
			e.Message += "; reading the state back to check failed too"
			return UpdateResult{}, unreadable, &e
		}
		if err := c.sleep(ctx, wait); err != nil {
			return UpdateResult{}, unreadable, c.contextError(ctx, x.op, lost, x.sent)
		}
		if res, v := c.checkApplied(ctx, sent); v != unreadable {
			return res, v, nil
		}
		wait = c.backoff(round)
		c.log.LogAttrs(ctx, slog.LevelWarn, "plivo: could not read the state back; not resending blind",
			slog.String("op", x.op.name), slog.String("mpc", sent.mpc.String()), slog.String("member", string(sent.member)),
			slog.Duration("wait", wait))
	}
}

// checkApplied reads the member's state (or every live member's, for all)
// once, through the limiter, and reports whether it already is what the
// update asks for. A field that another update may have changed again
// since (InFlight.ChangedSince: sent later, or sent earlier and still
// unanswered) is not compared: that update is the latest word on it.
// Plivo keeps coach_mode false for non-supervisors, so coach_mode is only
// compared for supervisors. A member who has left, or an MPC or member that
// is not found, means notApplied: resending gets Plivo's own answer, and
// cannot apply the update twice.
func (c *Client) checkApplied(ctx context.Context, sent sentUpdate) (UpdateResult, verdict) {
	var ps []Participant
	if sent.member.IsAll() {
		all, e := c.listParticipants(ctx, sent.mpc, true)
		if e != nil {
			return UpdateResult{}, readFailed(e)
		}
		for _, p := range all {
			if p.Live() {
				ps = append(ps, p)
			}
		}
	} else {
		p, e := c.getParticipant(ctx, sent.mpc, sent.member, true)
		if e != nil {
			return UpdateResult{}, readFailed(e)
		}
		if !p.Live() {
			return UpdateResult{}, notApplied
		}
		ps = []Participant{p}
	}
	superseded := false
	for _, p := range ps {
		for _, f := range sent.update.Fields() {
			if c.inFlight.ChangedSince(ctx, sent.id, Member(p.MemberID), f) {
				superseded = true
				continue
			}
			if f == FieldCoachMode && !p.IsSupervisor() {
				continue
			}
			want, _ := sent.update.Get(f)
			if have := p.state(f); have == nil || *have != want {
				return UpdateResult{}, notApplied
			}
		}
	}
	return confirmedResult(sent.update, superseded), applied
}

// readFailed is the verdict of a read that got e: a 404 is a definite
// answer (nothing there to have applied the update to), anything else
// leaves the state unknown.
func readFailed(e *Error) verdict {
	if e.Kind == NotFound {
		return notApplied
	}
	return unreadable
}

// confirmedResult is the result of an update confirmed by reading the
// state back: mpcbot's explanation for each field instead of Plivo's
// strings.
func confirmedResult(u ParticipantUpdate, superseded bool) UpdateResult {
	res := UpdateResult{Status: http.StatusOK, Confirmed: true, Results: map[Field]string{}}
	for _, f := range u.Fields() {
		want, _ := u.Get(f)
		state := "off"
		if want {
			state = "on"
		}
		text := fmt.Sprintf("Plivo's answer was lost; reading the state back shows %s is %s, so the update was not sent again", f, state)
		if superseded {
			text = fmt.Sprintf("Plivo's answer was lost; reading the state back shows the change took effect (%s %s) or was followed by a newer change, so it was not sent again", f, state)
		}
		res.Results[f] = text
	}
	return res
}
