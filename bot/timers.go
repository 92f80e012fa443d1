package bot

import (
	"context"
	"fmt"
	"log/slog"
	"strings"

	"github.com/slack-go/slack"

	"github.com/mpcbot/mpcbot/commands"
)

// timerSurface answers a timer's revert where the timed change was
// answered: in its thread, else through its response_url, else in the
// requester's DM with the bot.
type timerSurface struct {
	b *Bot
	t commands.Timer
}

// timerSurfaceOf returns where a timer's revert is answered; pass it to
// commands.Service.RunTimers.
func (b *Bot) timerSurfaceOf(t commands.Timer) commands.Surface { return timerSurface{b: b, t: t} }

// Begin implements commands.Surface.
func (timerSurface) Begin(context.Context, commands.Outcome) {}

// Answer implements commands.Surface.
func (s timerSurface) Answer(ctx context.Context, o commands.Outcome) commands.Place {
	rctx, cancel := s.b.replyContext(ctx)
	defer cancel()
	s.b.toPlace(rctx, s.t.Place, s.b.renderResult(o), "timer "+s.t.ID)
	return s.t.Place
}

// toPlace posts m where a change was answered: its thread (or DM thread),
// else its response_url, else the requester's DM.
func (b *Bot) toPlace(ctx context.Context, p commands.Place, m message, what string) {
	if p.ChannelID != "" {
		_, _, err := b.postFitting(ctx, p.ChannelID, p.ThreadTS, m)
		if err == nil {
			return
		}
		b.log.Warn("could not post in the thread of a change; trying elsewhere", "what", what, "err", slackErrorCode(err))
	}
	if p.ResponseURL != "" {
		err := b.respond(ctx, p.ResponseURL, responseEphemeral, false, m)
		if err != nil && blocksRefused(err) {
			err = b.respond(ctx, p.ResponseURL, responseEphemeral, false, plainText(m))
		}
		if err == nil {
			return
		}
		b.log.Warn("could not answer through the response_url of a change; trying a direct message", "what", what, "err", slackErrorCode(err))
	}
	if p.UserID != "" {
		if _, err := b.post(ctx, p.UserID, "", m); err == nil {
			return
		} else {
			b.log.Error("notice lost: no way left to reach the user", "what", what, "user_id", p.UserID, "err", slackErrorCode(err), "notice", truncate(m.Text, 200))
		}
	}
}

// TimerSuperseded implements commands.TimerNotifier: a later change took
// over some of a timer's member fields; its thread says so.
func (b *Bot) TimerSuperseded(ctx context.Context, s commands.Superseded, by commands.Outcome) {
	var lost []string
	for _, p := range s.Lost {
		lost = append(lost, fmt.Sprintf("%s of %s", p.Field, p.Member))
	}
	what := fmt.Sprintf("⏱ %s won't be put back: a later change (%s) decides now.", strings.Join(lost, ", "), by.Change.Describe())
	if s.Timer.Finished() {
		what += " The timer is off."
	}
	m := noticeBy(by.Requester.UserID, "changed it", what)
	b.goReply(func(ctx context.Context) { b.toPlace(ctx, s.Timer.Place, m, "timer "+s.Timer.ID) })
	b.log.Info("timer superseded", "timer_id", s.Timer.ID, "by_request", by.RequestID, "lost", strings.Join(lost, ","), "finished", s.Timer.Finished())
}

// TimerNotRun implements commands.TimerNotifier.
func (b *Bot) TimerNotRun(ctx context.Context, t commands.Timer, why string) {
	m := renderNotice(fmt.Sprintf("⏱ Not put back: %s. Run %s yourself when it is time (due %s UTC).",
		why, t.RevertCommands(), t.Due.UTC().Format("15:04:05")))
	rctx, cancel := b.replyContext(ctx)
	defer cancel()
	b.toPlace(rctx, t.Place, m, "timer "+t.ID)
}

// noticeBy renders a notice about something a user did: their mention in
// mrkdwn, the rest in plain text.
func noticeBy(userID, did, text string) message {
	who := fmt.Sprintf("<@%s> %s:", userID, did)
	return message{
		Text:   who + " " + textOf(text),
		Blocks: []slack.Block{slack.NewContextBlock("who", mrkdwn(who)), slack.NewSectionBlock(plain(text, maxSectionText), nil, nil)},
	}
}

// cancelTimer serves the Cancel timer button (and `/mpc cancel-timer`).
func (b *Bot) cancelTimer(ctx context.Context, j job, c commands.CancelTimer) {
	rctx, rcancel := b.replyContext(ctx)
	defer rcancel()
	res := b.svc.CancelTimer(ctx, j.requester, c.ID)
	switch {
	case res.Refusal != nil:
		b.tellRequester(rctx, j, renderRefusal(res.Refusal))
		b.auditOther(rctx, j.requester, j.source(), "cancel_timer", commands.StatusRefused, j.envelopeID, slog.String("timer_id", c.ID))
	case res.Err != nil:
		b.log.Error("cancelling a timer failed", "envelope_id", j.envelopeID, "timer_id", c.ID, "err", res.Err)
		b.tellRequester(rctx, j, renderNotice("❌ The timer could not be cancelled right now (mpcbot's timer store failed); try again in a few seconds."))
		b.auditOther(rctx, j.requester, j.source(), "cancel_timer", commands.StatusFailed, j.envelopeID, slog.String("timer_id", c.ID))
	case res.Timer == nil:
		b.tellRequester(rctx, j, renderNotice("ℹ️ That timer is no longer pending: it has already put things back, or was cancelled or superseded."))
		b.auditOther(rctx, j.requester, j.source(), "cancel_timer", commands.StatusSkipped, j.envelopeID, slog.String("timer_id", c.ID))
	default:
		t := *res.Timer
		text := fmt.Sprintf("⏱ Timer cancelled: %s stays as it is; nothing will be put back.", t.Change.Describe())
		b.toPlace(rctx, t.Place, noticeBy(j.requester.UserID, "cancelled the timer", text), "timer "+t.ID)
		if t.Place.ChannelID == "" || j.viewID != "" || j.kind == typedJob {
			b.tellRequester(rctx, j, renderNotice(text))
		}
		b.auditOther(rctx, j.requester, j.source(), "cancel_timer", commands.StatusCancelled, j.envelopeID, slog.String("timer_id", t.ID),
			slog.String("mpc", t.Change.MPC.String()), slog.String("members", t.Change.MembersText()))
	}
}
