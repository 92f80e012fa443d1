package plivo

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
)

// maxParticipantPages bounds how many pages ListParticipants fetches (20
// entries each). An MPC has at most 10 live participants, but the list keeps
// one entry per join, so long calls with many rejoins can span a few pages;
// more than this means the server is misbehaving.
const maxParticipantPages = 50

// GetParticipant returns one participant of mpc by member id (not
// AllMembers). An exited participant is returned with Live() false.
func (c *Client) GetParticipant(ctx context.Context, mpc MPC, member Member) (Participant, error) {
	p, e := c.getParticipant(ctx, mpc, member, false)
	if e != nil {
		return Participant{}, e
	}
	return p, nil
}

// getParticipant reads one participant; once sends a single attempt.
func (c *Client) getParticipant(ctx context.Context, mpc MPC, member Member, once bool) (Participant, *Error) {
	op := operation{name: "get_participant", mpc: mpc, member: member}
	member, e := c.checkTarget(&op, mpc, member, false)
	if e != nil {
		return Participant{}, e
	}
	ctx, cancel := c.bound(ctx)
	defer cancel()
	x, e := c.newExchange(op, http.MethodGet, c.participantPath(mpc, member), "", nil)
	if e != nil {
		return Participant{}, e
	}
	x.once = once
	resp, e := c.do(ctx, x)
	if e != nil {
		return Participant{}, e
	}
	var p Participant
	if err := decodeJSON(resp.body, &p); err != nil {
		return Participant{}, &Error{Op: op.String(), Kind: Internal, Status: resp.status,
			Message: fmt.Sprintf("could not read Plivo's answer (HTTP %d)", resp.status), Attempts: resp.attempts, Err: err}
	}
	return c.tidyParticipant(p), nil
}

// ListParticipants returns every entry of mpc's participant list (one per
// join, exited ones included), following pagination for at most
// maxParticipantPages pages. Every page is a separate request through the
// rate limiter; the context's deadline bounds them all.
func (c *Client) ListParticipants(ctx context.Context, mpc MPC) ([]Participant, error) {
	ps, e := c.listParticipants(ctx, mpc, false)
	if e != nil {
		return nil, e
	}
	return ps, nil
}

// listParticipants reads the participant list; once sends a single attempt
// per page.
func (c *Client) listParticipants(ctx context.Context, mpc MPC, once bool) ([]Participant, *Error) {
	op := operation{name: "list_participants", mpc: mpc}
	if mpc.IsZero() {
		return nil, &Error{Op: op.String(), Kind: Invalid, Message: "no MPC given"}
	}
	ctx, cancel := c.bound(ctx)
	defer cancel()
	path := c.mpcPath(mpc) + "/Participant/"
	var all []Participant
	query := ""
	offset := 0
	for page := 1; ; page++ {
		if page > maxParticipantPages {
			return nil, &Error{Op: op.String(), Kind: Internal,
				Message: fmt.Sprintf("the participant list is longer than %d pages", maxParticipantPages)}
		}
		x, e := c.newExchange(op, http.MethodGet, path, query, nil)
		if e != nil {
			return nil, e
		}
		x.once = once
		resp, e := c.do(ctx, x)
		if e != nil {
			return nil, e
		}
		list, err := decodePage[Participant](resp.body, "participant list")
		if err != nil {
			return nil, &Error{Op: op.String(), Kind: Internal, Status: resp.status,
				Message:  fmt.Sprintf("could not read Plivo's participant list (HTTP %d, page %d)", resp.status, page),
				Attempts: resp.attempts, Err: err}
		}
		for _, p := range *list.Objects {
			all = append(all, c.tidyParticipant(p))
		}
		next, more := nextOffset(list.Meta, len(*list.Objects), offset)
		if !more {
			return all, nil
		}
		if next <= offset {
			return nil, &Error{Op: op.String(), Kind: Internal,
				Message: fmt.Sprintf("Plivo's participant list does not advance (offset %d after %d)", next, offset)}
		}
		offset = next
		query = url.Values{"limit": {"20"}, "offset": {fmt.Sprint(offset)}}.Encode()
	}
}

// tidyParticipant makes excerpts of the strings of a participant from
// Plivo. A member_id longer than MaxMemberIDLength is cut (ending in "…"),
// so it can be shown but never acted on: Participant.Member refuses it, as
// it refuses any member_id that is not digits.
func (c *Client) tidyParticipant(p Participant) Participant {
	p.MemberID = c.excerpt(p.MemberID, MaxMemberIDLength)
	p.Role = c.excerpt(p.Role, maxRoleRunes)
	p.CallUUID = c.excerpt(p.CallUUID, maxFieldRunes)
	p.MPCUUID = c.excerpt(p.MPCUUID, maxFieldRunes)
	p.MemberAddress = c.excerpt(p.MemberAddress, maxFieldRunes)
	p.ResourceURI = c.excerpt(p.ResourceURI, maxFieldRunes)
	for _, s := range []**string{&p.JoinTime, &p.ExitTime, &p.ExitCause} {
		if *s != nil {
			v := c.excerpt(**s, maxFieldRunes)
			*s = &v
		}
	}
	return p
}
