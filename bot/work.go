package bot

import (
	"context"
	"fmt"
	"log/slog"
	"regexp"
	"runtime/debug"
	"strings"
	"time"

	"github.com/mpcbot/mpcbot/commands"
)

// work runs jobs until the queue is closed and drained.
func (b *Bot) work(ctx context.Context) {
	for j := range b.jobs {
		b.runJob(ctx, j)
		b.pending.Add(-1)
		b.metrics.Queue(b.Pending())
	}
}

const internalErrorText = "mpcbot hit an internal error while handling this; the admins can find it in the log. Check the call's state with `/mpc list <mpc>` before trying again."

// runJob serves one accepted request. A panic is recovered, logged with
// the envelope id and answered as an internal error: one command's bug
// never takes the process down.
func (b *Bot) runJob(workCtx context.Context, j job) {
	defer func() {
		if r := recover(); r != nil {
			b.log.Error("panic while handling a request", "envelope_id", j.envelopeID, "user_id", j.requester.UserID,
				"panic", fmt.Sprint(r), "stack", string(debug.Stack()))
			b.metrics.SocketEvent("panic")
			ctx, cancel := b.replyContext(workCtx)
			defer cancel()
			b.tellRequester(ctx, j, renderNotice(internalErrorText))
			b.auditOther(ctx, j.requester, j.source(), j.describe(), commands.StatusFailed, j.envelopeID, slog.String("error", "internal error (panic)"))
		}
	}()
	ctx, cancel := context.WithDeadline(workCtx, j.received.Add(b.cfg.CommandTimeout))
	defer cancel()
	// The fleet-wide check that no other replica took this envelope (Slack
	// may redeliver it to another connection): off the ack path.
	if !b.claims.Claim(ctx, "envelope:"+j.envelopeID, envelopeMemory) {
		b.log.Info("ignored an envelope another connection or replica took", "envelope_id", j.envelopeID)
		return
	}
	log := b.log.With("envelope_id", j.envelopeID, "user_id", j.requester.UserID)
	if ctx.Err() != nil {
		// Never started: too long in the queue, or shutting down.
		text := fmt.Sprintf("mpcbot was too busy to start this within %s; nothing was changed. Try again in a few seconds.", b.cfg.CommandTimeout)
		status := commands.StatusBusy
		if workCtx.Err() != nil {
			text, status = "mpcbot is restarting and did not start this request; nothing was changed. Try again in a minute.", commands.StatusShutdown
		}
		rctx, rcancel := b.replyContext(ctx)
		defer rcancel()
		b.tellRequester(rctx, j, renderNotice(text))
		b.auditOther(rctx, j.requester, j.source(), j.describe(), status, j.envelopeID)
		log.Warn("request not started", "status", status, "queued_for", b.now().Sub(j.received).Round(time.Millisecond))
		return
	}
	switch j.kind {
	case typedJob:
		b.typed(ctx, j)
	case clickJob:
		b.click(ctx, j)
	case homeOpenedJob:
		b.publishHome(ctx, j, homeState{})
	}
}

// typed serves a typed command that needs a worker.
func (b *Bot) typed(ctx context.Context, j job) {
	switch c := j.cmd.(type) {
	case commands.Change:
		b.svc.Do(ctx, b.request(j, c), b.anchorSurface(j))
	case commands.List:
		b.showRoster(ctx, j, c, false)
	case commands.Calls:
		b.showCalls(ctx, j, c, false)
	case commands.CancelTimer:
		b.cancelTimer(ctx, j, c)
	}
}

// request is the commands.Request of a job's change.
func (b *Bot) request(j job, c commands.Change) commands.Request {
	return commands.Request{ID: j.envelopeID, Requester: j.requester, Source: j.source(), Change: c}
}

// knownAction reports whether an action id prefix is one of mpcbot's.
func knownAction(prefix string) bool {
	switch prefix {
	case actionRun, actionPanel, actionConfirm, actionCancel, actionList, actionCalls, actionTimer, actionHome:
		return true
	}
	return false
}

// click serves a button: its value is a command in the grammar, decoded
// and checked like typed text, then run on the surface the button is on.
func (b *Bot) click(ctx context.Context, j job) {
	rctx, rcancel := b.replyContext(ctx)
	defer rcancel()
	prefix, rest, _ := strings.Cut(j.actionID, ":")
	if prefix == actionCancel {
		b.respondOrLog(rctx, j, responseEphemeral, true, renderNotice("Cancelled: nothing was changed."))
		b.auditOther(rctx, j.requester, j.source(), "cancel", commands.StatusCancelled, j.envelopeID)
		return
	}
	btn, err := b.cfg.Grammar.DecodeButton(j.value)
	if err != nil {
		problem := commands.Problem(err)
		b.tellRequester(rctx, j, renderUsageError(problem))
		b.auditOther(rctx, j.requester, j.source(), prefix, commands.StatusUsageError, j.envelopeID, slog.String("problem", problem))
		return
	}
	if ref := btn.Stale(b.now(), b.cfg.ButtonMaxAge); ref != nil {
		b.tellRequester(rctx, j, renderRefusal(ref))
		b.auditOther(rctx, j.requester, j.source(), prefix, commands.StatusRefused, j.envelopeID, slog.String("refusal", ref.Code))
		return
	}
	switch cmd := btn.Command.(type) {
	case commands.List:
		switch {
		case j.viewID != "" && (prefix == actionList || prefix == actionHome):
			b.publishHome(ctx, j, homeState{roster: &cmd})
			return
		case prefix == actionList:
			b.showRoster(ctx, j, cmd, navigates(rest))
			return
		}
	case commands.Calls:
		switch {
		case j.viewID != "":
			b.publishHome(ctx, j, homeState{})
			return
		case prefix == actionCalls:
			b.showCalls(ctx, j, cmd, true)
			return
		}
	case commands.CancelTimer:
		if prefix == actionTimer {
			b.cancelTimer(ctx, j, cmd)
			return
		}
	case commands.Change:
		req := b.request(j, cmd)
		req.Once = b.tapOnce(j)
		switch {
		case j.viewID != "" && (prefix == actionPanel || prefix == actionRun):
			l, _ := panelView(j.actionID, cmd)
			b.svc.Do(ctx, req, b.homeSurface(j, l))
			return
		case prefix == actionRun:
			b.svc.Do(ctx, req, b.threadSurface(j, firstNonEmpty(j.threadTS, j.messageTS)))
			return
		case prefix == actionConfirm:
			if !tsPattern.MatchString(rest) {
				rest = "" // not a thread ts: start a new anchor rather than trust it
			}
			b.svc.Do(ctx, req, b.confirmSurface(j, rest))
			return
		case prefix == actionPanel:
			if l, ok := panelView(j.actionID, cmd); ok {
				b.svc.Do(ctx, req, b.panelSurface(j, l))
				return
			}
		}
	}
	b.tellRequester(rctx, j, renderUsageError("this button does not match its action; run the command again"))
	b.auditOther(rctx, j.requester, j.source(), prefix, commands.StatusUsageError, j.envelopeID)
}

// navigates reports whether a list button pages or refreshes the panel it
// is in ("prev", "refresh", "next"), rather than showing a new one.
func navigates(rest string) bool {
	what, _, _ := strings.Cut(rest, ":")
	switch what {
	case "prev", "refresh", "next":
		return true
	}
	return false
}

// tapOnce returns the double-tap check of a click: the same person tapping
// the same button within DoubleTapWindow runs it once. It is asked only for
// a click that is going to run (authorized and confirmed), so a stranger's
// refused tap never blocks a supervisor's.
func (b *Bot) tapOnce(j job) func(context.Context) bool {
	key := strings.Join([]string{"tap", j.requester.UserID, j.requester.ChannelID, j.viewID, j.messageTS, j.actionID, j.value}, "|")
	return func(ctx context.Context) bool {
		return b.claims.Claim(ctx, key, b.cfg.DoubleTapWindow)
	}
}

// tsPattern matches a Slack message timestamp ("1700000000.000100").
var tsPattern = regexp.MustCompile(`^[0-9]{1,12}\.[0-9]{1,8}$`)
