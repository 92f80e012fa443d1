package bot

import (
	"context"
	"fmt"
	"log/slog"
	"regexp"
	"strings"
	"time"

	"github.com/slack-go/slack"
	"github.com/slack-go/slack/socketmode"

	"github.com/mpcbot/mpcbot/commands"
	"github.com/mpcbot/mpcbot/plivo"
)

// job is an accepted request waiting for a worker: a typed change or list,
// or a button click.
type job struct {
	click       bool
	envelopeID  string
	received    time.Time
	requester   commands.Requester
	responseURL string

	// typed
	cmd commands.Command

	// click
	actionID  string
	value     string
	messageTS string
	threadTS  string
	ephemeral bool
	duplicate bool
}

func (j job) source() commands.Source {
	if j.click {
		return commands.Clicked
	}
	return commands.Typed
}

// tsPattern matches a Slack message timestamp ("1700000000.000100").
var tsPattern = regexp.MustCompile(`^[0-9]{1,12}\.[0-9]{1,8}$`)

const overloadedText = "mpcbot is overloaded right now and did not take this request; nothing was changed. Try again in a few seconds."

// reserve takes a queue slot; false when the queue is full.
func (b *Bot) reserve() bool {
	if n := b.pending.Add(1); n > int64(b.cfg.QueueSize) {
		b.pending.Add(-1)
		return false
	}
	b.metrics.Queue(b.Pending())
	return true
}

func (b *Bot) onSlashCommand(evt socketmode.Event) {
	received := b.now()
	req := evt.Request
	sc, ok := evt.Data.(slack.SlashCommand)
	if !ok || req == nil {
		b.ack(req, "slash_command", nil)
		return
	}
	if b.envelopes.Add(req.EnvelopeID, received) {
		// Slack redelivered an envelope we already have: ack it again and
		// do nothing else (no second Plivo call, no second reply).
		b.ack(req, "redelivered", nil)
		b.log.Info("ignored redelivered envelope", "envelope_id", req.EnvelopeID, "retry_attempt", req.RetryAttempt)
		return
	}
	r := commands.Requester{UserID: sc.UserID, UserName: sc.UserName, ChannelID: sc.ChannelID, ChannelName: sc.ChannelName}
	cmd, err := commands.Parse(sc.Text)
	if err != nil {
		problem := commands.Problem(err)
		b.ack(req, "slash_command", ephemeralAck(RenderUsageError(problem)))
		b.auditOther(context.Background(), r, commands.Typed, "usage_error", "usage_error", req.EnvelopeID, slog.String("problem", problem))
		return
	}
	if _, ok := cmd.(commands.Help); ok {
		b.ack(req, "slash_command", ephemeralAck(RenderHelp()))
		b.auditOther(context.Background(), r, commands.Typed, "help", "ok", req.EnvelopeID)
		return
	}
	if !b.reserve() {
		b.ack(req, "slash_command", ephemeralAck(RenderNotice(overloadedText)))
		b.auditOther(context.Background(), r, commands.Typed, commandName(cmd), "overloaded", req.EnvelopeID)
		return
	}
	b.ack(req, "slash_command", nil)
	b.jobs <- job{envelopeID: req.EnvelopeID, received: received, requester: r, responseURL: sc.ResponseURL, cmd: cmd}
}

func (b *Bot) onInteractive(evt socketmode.Event) {
	received := b.now()
	req := evt.Request
	b.ack(req, "interactive", nil)
	if req == nil {
		return
	}
	if b.envelopes.Add(req.EnvelopeID, received) {
		b.log.Info("ignored redelivered envelope", "envelope_id", req.EnvelopeID, "retry_attempt", req.RetryAttempt)
		return
	}
	cb, ok := evt.Data.(slack.InteractionCallback)
	if !ok || cb.Type != slack.InteractionTypeBlockActions {
		b.log.Info("ignored interaction", "envelope_id", req.EnvelopeID, "type", truncate(string(cb.Type), 40))
		return
	}
	channel := cb.Channel.ID
	if channel == "" {
		channel = cb.Container.ChannelID
	}
	r := commands.Requester{UserID: cb.User.ID, UserName: firstNonEmpty(cb.User.Name, cb.User.Username), ChannelID: channel}
	for _, a := range cb.ActionCallback.BlockActions {
		if a == nil {
			continue
		}
		prefix, _, _ := strings.Cut(a.ActionID, ":")
		switch prefix {
		case actionRun, actionPanel, actionConfirm, actionCancel, actionList:
		default:
			b.log.Warn("unknown button action", "envelope_id", req.EnvelopeID, "action_id", truncate(a.ActionID, 80), "user_id", r.UserID)
			continue
		}
		j := job{
			click: true, envelopeID: req.EnvelopeID, received: received, requester: r,
			responseURL: cb.ResponseURL, actionID: a.ActionID, value: a.Value,
			messageTS: cb.Container.MessageTs, threadTS: cb.Container.ThreadTs, ephemeral: cb.Container.IsEphemeral,
		}
		if prefix != actionList && prefix != actionCancel {
			j.duplicate = b.taps.Add(strings.Join([]string{channel, j.messageTS, a.ActionID, a.Value}, "|"), received)
		}
		if !b.reserve() {
			go func() {
				ctx, cancel := replyContext(context.Background())
				defer cancel()
				b.respondOrLog(ctx, j, slack.ResponseTypeEphemeral, false, RenderNotice(overloadedText))
			}()
			b.auditOther(context.Background(), r, commands.Clicked, prefix, "overloaded", req.EnvelopeID)
			continue
		}
		b.jobs <- j
	}
}

func firstNonEmpty(ss ...string) string {
	for _, s := range ss {
		if s != "" {
			return s
		}
	}
	return ""
}

func commandName(cmd commands.Command) string {
	switch c := cmd.(type) {
	case commands.Change:
		return c.ActionsText()
	case commands.List:
		return "list"
	}
	return "help"
}

// work runs jobs until the queue is closed and drained.
func (b *Bot) work(ctx context.Context) {
	for j := range b.jobs {
		b.runJob(ctx, j)
		b.pending.Add(-1)
		b.metrics.Queue(b.Pending())
	}
}

func (b *Bot) runJob(workCtx context.Context, j job) {
	ctx, cancel := context.WithDeadline(workCtx, j.received.Add(b.cfg.CommandTimeout))
	defer cancel()
	log := b.log.With("envelope_id", j.envelopeID, "user_id", j.requester.UserID)
	if ctx.Err() != nil {
		// Never started: too long in the queue, or shutting down.
		text := fmt.Sprintf("mpcbot was too busy to start this within %s; nothing was changed. Try again in a few seconds.", b.cfg.CommandTimeout)
		status := "busy"
		if workCtx.Err() != nil {
			text, status = "mpcbot is restarting and did not start this request; nothing was changed. Try again in a minute.", "shutdown"
		}
		rctx, rcancel := replyContext(ctx)
		defer rcancel()
		b.respondOrLog(rctx, j, slack.ResponseTypeEphemeral, false, RenderNotice(text))
		b.auditOther(rctx, j.requester, j.source(), j.describe(), status, j.envelopeID)
		log.Warn("request not started", "status", status, "queued_for", b.now().Sub(j.received).Round(time.Millisecond))
		return
	}
	if !j.click {
		switch c := j.cmd.(type) {
		case commands.Change:
			b.typedChange(ctx, j, c)
		case commands.List:
			b.showRoster(ctx, j, c, false)
		}
		return
	}
	b.click(ctx, j)
}

func (j job) describe() string {
	if j.click {
		prefix, _, _ := strings.Cut(j.actionID, ":")
		return prefix
	}
	return commandName(j.cmd)
}

// typedChange runs a /mpc change: check, then the anchor message and the
// Plivo calls side by side, then the results in the anchor's thread.
func (b *Bot) typedChange(ctx context.Context, j job, c commands.Change) {
	o, ready, authErr := b.svc.Check(ctx, j.requester, c, commands.Typed)
	b.logAuthErr(authErr, j)
	if !ready {
		b.notReady(ctx, j, o, "")
		return
	}
	b.applyWithAnchor(ctx, j, o, nil)
}

// applyWithAnchor applies a checked change while posting the anchor
// message, then posts the results in the anchor's thread. Where the
// channel refuses the bot, results go through the response_url instead,
// with the reason there is no thread. done, if set, runs after the reply
// with whether it went into a thread.
func (b *Bot) applyWithAnchor(ctx context.Context, j job, o commands.Outcome, done func(threaded bool, reply Message)) {
	rctx, rcancel := replyContext(ctx)
	defer rcancel()
	type anchor struct {
		ts  string
		err error
	}
	anchored := make(chan anchor, 1)
	msg := RenderAnchor(j.requester, o.Change, j.source())
	go func() {
		ts, err := b.post(rctx, j.requester.ChannelID, "", msg)
		anchored <- anchor{ts, err}
	}()
	o = b.svc.Apply(ctx, o)
	a := <-anchored
	reply := RenderResult(o, b.now(), b.cfg.ConfirmAllAbove)
	threaded := false
	if a.err == nil {
		_, err := b.post(rctx, j.requester.ChannelID, a.ts, reply)
		if err == nil {
			threaded = true
		} else {
			b.log.Warn("thread reply failed; answering through response_url", "envelope_id", j.envelopeID, "err", slackErrorCode(err))
			b.respondOrLog(rctx, j, slack.ResponseTypeInChannel, false, withNote(reply, "I couldn't reply in the thread (Slack said "+slackErrorCode(err)+"), so here are the results."))
		}
	} else {
		b.log.Info("anchor not posted; answering through response_url", "envelope_id", j.envelopeID, "channel_id", j.requester.ChannelID, "err", slackErrorCode(a.err))
		b.respondOrLog(rctx, j, slack.ResponseTypeInChannel, false, withNote(reply, noThreadNote(a.err)))
	}
	if done != nil {
		done(threaded, reply)
	}
	b.auditOutcome(rctx, o, j.envelopeID)
}

// noThreadNote says why a command's results came without a thread.
func noThreadNote(err error) string {
	code := slackErrorCode(err)
	switch code {
	case "not_in_channel":
		return "No thread: I'm not a member of this channel (Slack said not_in_channel). Invite me with `/invite @mpcbot` to get results in threads."
	case "channel_not_found":
		return "No thread: this is a DM or a private channel I'm not in (Slack said channel_not_found), so I can only answer here."
	}
	if cannotPost(err) {
		return "No thread: Slack doesn't let me post in this channel (" + code + "), so I can only answer here."
	}
	return "No thread: posting the request message failed (Slack said " + code + "), so here are the results."
}

// withNote puts a context line above a message.
func withNote(m Message, note string) Message {
	n := escape(note)
	return Message{
		Text:   n + "\n" + m.Text,
		Blocks: append([]slack.Block{slack.NewContextBlock("note", mrkdwn(n))}, m.Blocks...),
	}
}

// notReady answers a change that was not applied: refused, waiting for
// confirmation, or failed while counting the members. Only the requester
// sees it. threadTS is where confirmed results will go ("" = a new anchor).
func (b *Bot) notReady(ctx context.Context, j job, o commands.Outcome, threadTS string) {
	rctx, rcancel := replyContext(ctx)
	defer rcancel()
	var m Message
	switch {
	case o.Refusal != nil:
		m = RenderRefusal(o.Refusal)
	case o.Confirm != nil:
		m = RenderConfirm(o, b.now(), threadTS)
	default:
		m = RenderResult(o, b.now(), b.cfg.ConfirmAllAbove)
	}
	b.respondOrLog(rctx, j, slack.ResponseTypeEphemeral, false, m)
	b.auditOutcome(rctx, o, j.envelopeID)
}

// respondOrLog answers through the job's response_url; when even that
// fails, the loss is logged (there is no other way to reach the user).
func (b *Bot) respondOrLog(ctx context.Context, j job, responseType string, replace bool, m Message) {
	if err := b.respond(ctx, j.responseURL, responseType, replace, m); err != nil {
		b.log.Error("reply lost: response_url failed", "envelope_id", j.envelopeID, "user_id", j.requester.UserID, "err", slackErrorCode(err))
	}
}

func (b *Bot) logAuthErr(err error, j job) {
	if err != nil {
		b.log.Warn("user-group lookup failed during authorization", "envelope_id", j.envelopeID, "user_id", j.requester.UserID, "err", err)
	}
}

// showRoster answers /mpc list and the roster buttons. inPlace replaces
// the panel the button was in.
func (b *Bot) showRoster(ctx context.Context, j job, l commands.List, inPlace bool) {
	rctx, rcancel := replyContext(ctx)
	defer rcancel()
	refusal, authErr := b.svc.Authorize(ctx, j.requester, l)
	b.logAuthErr(authErr, j)
	if refusal != nil {
		b.respondOrLog(rctx, j, slack.ResponseTypeEphemeral, false, RenderRefusal(refusal))
		b.auditOther(rctx, j.requester, j.source(), "list", commands.StatusRefused, j.envelopeID, slog.String("refusal", refusal.Code), slog.String("mpc", l.MPC.String()))
		return
	}
	ro, err := b.svc.Roster(ctx, l.MPC)
	if err != nil {
		b.respondOrLog(rctx, j, slack.ResponseTypeEphemeral, false, RenderError(err, l.MPC))
		b.auditOther(rctx, j.requester, j.source(), "list", commands.StatusFailed, j.envelopeID, slog.String("mpc", l.MPC.String()), slog.String("error", err.Error()))
		return
	}
	m := RenderRoster(ro, b.rosterView(ctx, j, l, nil), b.now())
	b.deliverRoster(rctx, j, l, inPlace, m)
	b.auditOther(rctx, j.requester, j.source(), "list", commands.StatusOK, j.envelopeID, slog.String("mpc", l.MPC.String()), slog.Int("live", len(ro.Live)), slog.Int("exited", len(ro.Exited)))
}

func (b *Bot) rosterView(ctx context.Context, j job, l commands.List, note []string) RosterView {
	v := RosterView{List: l, Note: note}
	if b.svc.Policy != nil {
		role, _ := b.svc.Policy.Role(ctx, j.requester.UserID)
		v.ViewerIsSupervisor = role == commands.Supervisor
	}
	return v
}

// deliverRoster posts a panel where it belongs: in place of the panel a
// button was in, in the channel (`here`), or to the requester only.
func (b *Bot) deliverRoster(ctx context.Context, j job, l commands.List, inPlace bool, m Message) {
	switch {
	case inPlace && !j.ephemeral && j.messageTS != "":
		if err := b.update(ctx, j.requester.ChannelID, j.messageTS, m); err != nil {
			b.log.Warn("panel update failed; answering through response_url", "envelope_id", j.envelopeID, "err", slackErrorCode(err))
			b.respondOrLog(ctx, j, slack.ResponseTypeEphemeral, false, m)
		}
	case inPlace:
		b.respondOrLog(ctx, j, slack.ResponseTypeEphemeral, true, m)
	case l.Here:
		if _, err := b.post(ctx, j.requester.ChannelID, "", m); err != nil {
			b.respondOrLog(ctx, j, slack.ResponseTypeInChannel, false, withNote(m, noThreadNote(err)))
		}
	default:
		b.respondOrLog(ctx, j, slack.ResponseTypeEphemeral, false, m)
	}
}

// click serves a button.
func (b *Bot) click(ctx context.Context, j job) {
	rctx, rcancel := replyContext(ctx)
	defer rcancel()
	prefix, rest, _ := strings.Cut(j.actionID, ":")
	if prefix == actionCancel {
		b.respondOrLog(rctx, j, slack.ResponseTypeEphemeral, true, RenderNotice("Cancelled: nothing was changed."))
		b.auditOther(rctx, j.requester, commands.Clicked, "cancel", "cancelled", j.envelopeID)
		return
	}
	btn, err := commands.DecodeButton(j.value)
	if err != nil {
		problem := commands.Problem(err)
		b.respondOrLog(rctx, j, slack.ResponseTypeEphemeral, false, RenderUsageError(problem))
		b.auditOther(rctx, j.requester, commands.Clicked, prefix, "usage_error", j.envelopeID, slog.String("problem", problem))
		return
	}
	if ref := btn.Stale(b.now(), b.cfg.ButtonMaxAge); ref != nil {
		b.respondOrLog(rctx, j, slack.ResponseTypeEphemeral, false, RenderRefusal(ref))
		b.auditOther(rctx, j.requester, commands.Clicked, prefix, commands.StatusRefused, j.envelopeID, slog.String("refusal", ref.Code))
		return
	}
	if j.duplicate {
		b.respondOrLog(rctx, j, slack.ResponseTypeEphemeral, false, RenderNotice("You tapped that twice: it runs once, and the result is on its way."))
		b.auditOther(rctx, j.requester, commands.Clicked, prefix, "duplicate", j.envelopeID)
		return
	}
	switch cmd := btn.Command.(type) {
	case commands.List:
		if prefix != actionList {
			break
		}
		b.showRoster(ctx, j, cmd, rest != "show" && rest != "")
		return
	case commands.Change:
		switch prefix {
		case actionRun:
			b.clickedChange(ctx, j, cmd, firstNonEmpty(j.threadTS, j.messageTS))
			return
		case actionConfirm:
			if !tsPattern.MatchString(rest) {
				rest = "" // not a thread ts: start a new anchor rather than trust it
			}
			b.confirmedChange(ctx, j, cmd, rest)
			return
		case actionPanel:
			if l, ok := panelView(j.actionID, cmd); ok {
				b.panelChange(ctx, j, cmd, l)
				return
			}
		}
	}
	b.respondOrLog(rctx, j, slack.ResponseTypeEphemeral, false, RenderUsageError("this button does not match its action; run the command again"))
	b.auditOther(rctx, j.requester, commands.Clicked, prefix, "usage_error", j.envelopeID)
}

// clickedChange runs a change from a result message; its results go in
// the same thread.
func (b *Bot) clickedChange(ctx context.Context, j job, c commands.Change, threadTS string) {
	o, ready, authErr := b.svc.Check(ctx, j.requester, c, commands.Clicked)
	b.logAuthErr(authErr, j)
	if !ready {
		b.notReady(ctx, j, o, threadTS)
		return
	}
	b.applyInThread(ctx, j, o, threadTS, nil)
}

// applyInThread applies a checked change and posts its results in an
// existing thread (falling back to the response_url).
func (b *Bot) applyInThread(ctx context.Context, j job, o commands.Outcome, threadTS string, done func(threaded bool, reply Message)) {
	rctx, rcancel := replyContext(ctx)
	defer rcancel()
	o = b.svc.Apply(ctx, o)
	reply := RenderResult(o, b.now(), b.cfg.ConfirmAllAbove)
	threaded := false
	if _, err := b.post(rctx, j.requester.ChannelID, threadTS, reply); err == nil {
		threaded = true
	} else {
		b.respondOrLog(rctx, j, slack.ResponseTypeInChannel, false, withNote(reply, noThreadNote(err)))
	}
	if done != nil {
		done(threaded, reply)
	}
	b.auditOutcome(rctx, o, j.envelopeID)
}

// confirmedChange runs a change confirmed with the Confirm button, then
// replaces the question with what happened.
func (b *Bot) confirmedChange(ctx context.Context, j job, c commands.Change, threadTS string) {
	o, ready, authErr := b.svc.Check(ctx, j.requester, c, j.source())
	b.logAuthErr(authErr, j)
	rctx, rcancel := replyContext(ctx)
	defer rcancel()
	if !ready {
		// Refused now (e.g. access was revoked) or failed: replace the question.
		m := RenderResult(o, b.now(), b.cfg.ConfirmAllAbove)
		if o.Refusal != nil {
			m = RenderRefusal(o.Refusal)
		}
		b.respondOrLog(rctx, j, slack.ResponseTypeEphemeral, true, m)
		b.auditOutcome(rctx, o, j.envelopeID)
		return
	}
	done := func(threaded bool, reply Message) {
		if threaded {
			b.respondOrLog(rctx, j, slack.ResponseTypeEphemeral, true, RenderNotice("Confirmed: "+c.Describe()+". The results are in the thread."))
		} else {
			b.respondOrLog(rctx, j, slack.ResponseTypeEphemeral, true, RenderNotice("Confirmed: "+c.Describe()+"."))
		}
	}
	if threadTS == "" {
		b.applyWithAnchor(ctx, j, o, done)
		return
	}
	b.applyInThread(ctx, j, o, threadTS, done)
}

// panelChange runs a change from a roster panel and shows the panel again
// with the new state read back from Plivo, in place.
func (b *Bot) panelChange(ctx context.Context, j job, c commands.Change, l commands.List) {
	rctx, rcancel := replyContext(ctx)
	defer rcancel()
	o, ready, authErr := b.svc.Check(ctx, j.requester, c, commands.Clicked)
	b.logAuthErr(authErr, j)
	if !ready {
		b.notReady(ctx, j, o, "")
		return
	}
	o = b.svc.Apply(ctx, o)
	note := append([]string{o.Headline()}, o.ResultLines()...)
	ro, err := b.svc.Roster(ctx, l.MPC)
	if err != nil {
		// The change is reported even if the roster could not be re-read.
		b.respondOrLog(rctx, j, slack.ResponseTypeEphemeral, false, RenderResult(o, b.now(), b.cfg.ConfirmAllAbove))
	} else {
		b.deliverRoster(rctx, j, l, true, RenderRoster(ro, b.rosterView(ctx, j, l, note), b.now()))
	}
	b.auditOutcome(rctx, o, j.envelopeID)
}

// RenderError renders the error of a request that is not a change (a list).
func RenderError(err error, mpc plivo.MPC) Message {
	ex := commands.Explain(err, commands.Change{MPC: mpc})
	if plivo.KindOf(err) == plivo.NotFound {
		ex.Next = "Check the MPC name: names only match live calls (use `uuid:` for others)."
	}
	line := "❌ " + ex.Summary
	if ex.Detail != "" {
		line += ": " + ex.Detail
	}
	if ex.Next != "" {
		line += "\n→ " + ex.Next
	}
	return RenderNotice(line)
}
