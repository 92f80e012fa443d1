package bot

import (
	"context"
	"log/slog"

	"github.com/mpcbot/mpcbot/commands"
	"github.com/mpcbot/mpcbot/plivo"
)

// showRoster answers /mpc list and the roster buttons. inPlace replaces
// the panel the button was in.
func (b *Bot) showRoster(ctx context.Context, j job, l commands.List, inPlace bool) {
	rctx, rcancel := b.replyContext(ctx)
	defer rcancel()
	refusal, authErr := b.svc.Authorize(ctx, j.requester, l)
	b.logAuthErr(authErr, j)
	if refusal != nil {
		b.tellRequester(rctx, j, renderRefusal(refusal))
		b.auditOther(rctx, j.requester, j.source(), "list", commands.StatusRefused, j.envelopeID, slog.String("refusal", refusal.Code), slog.String("mpc", l.MPC.String()))
		return
	}
	ro, err := b.svc.Roster(ctx, l.MPC)
	if err != nil {
		b.tellRequester(rctx, j, renderError(err, l.MPC))
		b.auditOther(rctx, j.requester, j.source(), "list", commands.StatusFailed, j.envelopeID, slog.String("mpc", l.MPC.String()), slog.String("error", err.Error()))
		return
	}
	placement := placedEphemeral
	if l.Here {
		placement = placedByBot
	}
	if inPlace {
		placement = navPlacement(j.actionID, l)
	}
	b.deliverRoster(rctx, j, ro, b.rosterView(ctx, j, l, placement, nil), inPlace)
	b.auditOther(rctx, j.requester, j.source(), "list", commands.StatusOK, j.envelopeID, slog.String("mpc", l.MPC.String()), slog.Int("live", len(ro.Live)), slog.Int("exited", len(ro.Exited)))
}

func (b *Bot) logAuthErr(err error, j job) {
	if err != nil {
		b.log.Warn("user-group lookup failed during authorization", "envelope_id", j.envelopeID, "user_id", j.requester.UserID, "err", err)
	}
}

// rosterView is how the requester of j sees a roster.
func (b *Bot) rosterView(ctx context.Context, j job, l commands.List, placement int, note []string) rosterView {
	v := rosterView{List: l, Placement: placement, Note: note, Prompt: b.svc.ButtonPrompt, TimedHold: b.cfg.TimedDefault}
	if b.svc.Policy != nil {
		role, _ := b.svc.Policy.Role(ctx, j.requester.UserID)
		v.ViewerIsSupervisor = role == commands.Supervisor
	}
	return v
}

// deliverRoster shows a panel where it belongs: in place of the panel a
// button was in (inPlace), in the channel (placement placedByBot, falling
// back to the response_url when the bot can't post there), or to the
// requester only.
func (b *Bot) deliverRoster(ctx context.Context, j job, ro commands.Roster, v rosterView, inPlace bool) {
	render := func(placement int) message {
		v.Placement = placement
		return renderRoster(ro, v, b.now())
	}
	switch {
	case inPlace && v.Placement == placedByBot && j.messageTS != "":
		m := freshBlockIDs(render(placedByBot), b.now())
		err := b.update(ctx, j.requester.ChannelID, j.messageTS, m)
		if err == nil {
			return
		}
		// The panel can't be edited (too old, too long, gone): post the
		// new state as a new panel instead.
		b.log.Warn("panel update failed; posting a new panel", "envelope_id", j.envelopeID, "err", slackErrorCode(err))
		if _, err := b.post(ctx, j.requester.ChannelID, "", m); err == nil {
			return
		}
		b.respondOrLog(ctx, j, responseEphemeral, false, render(placedEphemeral))
	case inPlace:
		// Ephemeral panels, and channel panels that came through the
		// response_url (the bot owns no ts to edit), are replaced through
		// the click's response_url.
		b.respondOrLog(ctx, j, responseTypeOf(v.Placement), true, freshBlockIDs(render(v.Placement), b.now()))
	case v.Placement == placedByBot:
		if _, err := b.post(ctx, j.requester.ChannelID, "", render(placedByBot)); err != nil {
			b.respondOrLog(ctx, j, responseInChannel, false, withNote(render(placedResponseURL), noThreadNote(err, false)))
		}
	default:
		b.tellRequester(ctx, j, render(placedEphemeral))
	}
}

func responseTypeOf(placement int) string {
	if placement == placedEphemeral {
		return responseEphemeral
	}
	return responseInChannel
}

// panelSurface answers a change clicked on a roster panel: the panel is
// shown again in place, with the new state read back from Plivo and the
// result on top.
type panelSurface struct {
	b *Bot
	j job
	v rosterView
}

func (b *Bot) panelSurface(j job, v rosterView) *panelSurface { return &panelSurface{b: b, j: j, v: v} }

// Begin implements commands.Surface.
func (s *panelSurface) Begin(context.Context, commands.Outcome) {}

// Answer implements commands.Surface.
func (s *panelSurface) Answer(ctx context.Context, o commands.Outcome) commands.Place {
	place := commands.Place{ResponseURL: s.j.responseURL, UserID: s.j.requester.UserID}
	if !ran(o) {
		return s.b.answerPrivately(ctx, s.j, o, "")
	}
	note := append([]string{o.Headline()}, o.ResultLines()...)
	ro, err := s.b.svc.Roster(ctx, o.Change.MPC)
	if err != nil {
		// The change is reported even if the roster could not be re-read.
		s.b.tellRequester(ctx, s.j, s.b.renderResult(o))
		return place
	}
	v := s.b.rosterView(ctx, s.j, s.v.List, s.v.Placement, note)
	// A timed change made here can be cancelled here (the rows' own
	// buttons undo it now).
	for _, f := range o.FollowUps {
		if _, ok := f.Command.(commands.CancelTimer); ok {
			v.NoteActions = append(v.NoteActions, f)
		}
	}
	s.b.deliverRoster(ctx, s.j, ro, v, true)
	return place
}

// renderError renders the error of a request that is not a change (a
// list, the live calls) from the one error table.
func renderError(err error, mpc plivo.MPC) message {
	lines := commands.Explain(err, mpc).Lines()
	return message{Text: textOf(lines...), Blocks: plainSections(bound(lines))}
}
