package plivo

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
)

// UpdateParticipant sets mute, hold and/or coach_mode of member (a member id
// or AllMembers) in mpc. Only the fields set in u are sent. The update is
// validated first (at least one field; no coach_mode for all members) and
// refused locally with an Invalid error, nothing sent.
//
// The steps:
//
//  1. Send the update (429s are retried after their Retry-After or a
//     backoff; every attempt takes a limiter token).
//  2. Plivo answered: its answer is the result (or the error).
//  3. The answer was lost (5xx, timeout, dropped connection), so Plivo may
//     or may not have applied it: read the state back (see readBack).
//     Applied: done, with a Confirmed result, and the update is not sent
//     twice. Not applied: send it again (step 1). Unreadable: back off and
//     read again; it is never resent blind.
//
// Everything is bounded by ctx's deadline (CallTimeout when ctx has none).
//
// On success the result carries Plivo's api_id, the HTTP status and, for
// each field sent, Plivo's result string (an excerpt, "" if Plivo sent
// none). Errors are *Error values.
func (c *Client) UpdateParticipant(ctx context.Context, mpc MPC, member Member, u ParticipantUpdate) (UpdateResult, error) {
	res, e := c.updateParticipant(ctx, mpc, member, u)
	if e != nil {
		return UpdateResult{}, e
	}
	return res, nil
}

func (c *Client) updateParticipant(ctx context.Context, mpc MPC, member Member, u ParticipantUpdate) (UpdateResult, *Error) {
	op := operation{name: "update_participant", mpc: mpc, member: member}
	member, e := c.checkTarget(&op, mpc, member, true)
	if e != nil {
		return UpdateResult{}, e
	}
	if err := u.Validate(member); err != nil {
		e, ok := AsError(err)
		if !ok {
			e = &Error{Kind: Invalid, Message: "invalid update", Err: err}
		}
		e.Op = op.String()
		return UpdateResult{}, e
	}
	body, err := jsonMarshal(u)
	if err != nil {
		return UpdateResult{}, &Error{Op: op.String(), Kind: Internal, Message: "could not encode the update", Err: err}
	}
	ctx, cancel := c.bound(ctx)
	defer cancel()
	x, e := c.newExchange(op, http.MethodPost, c.participantPath(mpc, member), "", body)
	if e != nil {
		return UpdateResult{}, e
	}
	x.keepUnknown = !c.blindResend
	sent := sentUpdate{mpc: mpc, member: member, update: u}
	sent.id = c.inFlight.Begin(ctx, mpc, member, u.Fields())
	defer c.inFlight.End(context.WithoutCancel(ctx), sent.id)

	for {
		resp, e := c.do(ctx, x)
		if e == nil {
			return c.updateResult(op, resp, u.Fields())
		}
		if !x.keepUnknown || !outcomeUnknown(e) {
			return UpdateResult{}, e
		}
		res, v, e := c.readBack(ctx, x, sent)
		switch v {
		case applied:
			c.log.LogAttrs(ctx, slog.LevelInfo, "plivo: update confirmed by reading the state back; not sent again",
				slog.String("mpc", mpc.String()), slog.String("member", string(member)))
			return res, nil
		case unreadable:
			return UpdateResult{}, e
		}
		c.inFlight.Resent(ctx, sent.id)
	}
}

// updateResult decodes Plivo's answer to an update.
func (c *Client) updateResult(op operation, resp *response, fields []Field) (UpdateResult, *Error) {
	result, err := c.decodeUpdate(resp, fields)
	if err != nil {
		return UpdateResult{}, &Error{Op: op.String(), Kind: Internal, Status: resp.status, APIID: result.APIID,
			Message:  fmt.Sprintf("Plivo accepted the update (HTTP %d) but its answer could not be read; the change was probably applied", resp.status),
			Attempts: resp.attempts, Err: err}
	}
	return result, nil
}
