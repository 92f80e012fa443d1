package bot

import (
	"context"
	"log/slog"
	"strings"
	"time"

	"github.com/slack-go/slack"
	"github.com/slack-go/slack/slackevents"
	"github.com/slack-go/slack/socketmode"

	"github.com/mpcbot/mpcbot/commands"
)

// job is an accepted request waiting for a worker: a typed command, a
// button click (in a message or in the Home tab), or the Home tab opened.
type job struct {
	kind        jobKind
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
	viewID    string // a click in the Home tab
}

type jobKind int

const (
	typedJob jobKind = iota
	clickJob
	homeOpenedJob
)

func (j job) source() commands.Source {
	switch {
	case j.kind == typedJob:
		return commands.Typed
	case j.viewID != "":
		return commands.Home
	}
	prefix, _, _ := strings.Cut(j.actionID, ":")
	if prefix == actionPanel {
		return commands.Panel
	}
	return commands.Clicked
}

// describe names the request for the audit record of a request that is
// not a change.
func (j job) describe() string {
	switch j.kind {
	case clickJob:
		prefix, _, _ := strings.Cut(j.actionID, ":")
		return prefix
	case homeOpenedJob:
		return "home"
	}
	return commandName(j.cmd)
}

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

// seenOnThisProcess reports whether this process already took the
// envelope (Slack redelivers what it thinks was not acked). It is the
// quick, local check on the ack path; the fleet-wide one runs in the
// worker, off the ack path.
func (b *Bot) seenOnThisProcess(req *socketmode.Request, received time.Time) bool {
	if !b.envelopes.Add(req.EnvelopeID, received) {
		return false
	}
	b.log.Info("ignored redelivered envelope", "envelope_id", req.EnvelopeID, "retry_attempt", req.RetryAttempt)
	return true
}

// foreignApp reports (and logs once per app) an envelope for another app:
// Slack sends each app only its own, so this is a misrouted or crafted one.
func (b *Bot) foreignApp(appID, envelopeID string) bool {
	mine := b.appID.Load()
	if appID == "" || mine == nil || *mine == "" || appID == *mine {
		return false
	}
	if _, logged := b.foreignApps.LoadOrStore(appID, true); !logged {
		b.log.Warn("ignored envelopes for another Slack app (logged once per app)", "api_app_id", truncate(appID, 40), "envelope_id", envelopeID, "app_id", *mine)
	}
	b.metrics.SocketEvent("foreign_app")
	return true
}

func (b *Bot) onSlashCommand(conn *connection, evt socketmode.Event) {
	received := b.now()
	req := evt.Request
	sc, ok := evt.Data.(slack.SlashCommand)
	if !ok || req == nil {
		conn.ack(req, "slash_command", nil)
		return
	}
	if b.seenOnThisProcess(req, received) {
		conn.ack(req, "redelivered", nil)
		return
	}
	if b.foreignApp(sc.APIAppID, req.EnvelopeID) {
		conn.ack(req, "foreign_app", nil)
		return
	}
	r := commands.Requester{UserID: sc.UserID, UserName: sc.UserName, ChannelID: sc.ChannelID, ChannelName: sc.ChannelName}
	cmd, err := b.cfg.Grammar.Parse(sc.Text)
	if err != nil {
		problem := commands.Problem(err)
		conn.ack(req, "slash_command", ephemeralAck(renderUsageError(problem)))
		b.auditOther(context.Background(), r, commands.Typed, "usage_error", commands.StatusUsageError, req.EnvelopeID, slog.String("problem", problem))
		return
	}
	if _, ok := cmd.(commands.Help); ok {
		conn.ack(req, "slash_command", ephemeralAck(renderHelp()))
		b.auditOther(context.Background(), r, commands.Typed, "help", commands.StatusOK, req.EnvelopeID)
		return
	}
	if !b.reserve() {
		conn.ack(req, "slash_command", ephemeralAck(renderNotice(overloadedText)))
		b.auditOther(context.Background(), r, commands.Typed, commandName(cmd), commands.StatusOverloaded, req.EnvelopeID)
		return
	}
	// Queue first, ack last: the job's channel send wakes a worker, and
	// the goroutine woken last runs next. Acking last lets slack-go's
	// writer send the ack before the worker's rendering and HTTP calls
	// (measured with cmd/mpcbot-load -bot-cpus 1 -env GOMAXPROCS=1). The
	// ack is empty, so the order is invisible to the user.
	b.jobs <- job{kind: typedJob, envelopeID: req.EnvelopeID, received: received, requester: r, responseURL: sc.ResponseURL, cmd: cmd}
	conn.ack(req, "slash_command", nil)
}

func (b *Bot) onInteractive(conn *connection, evt socketmode.Event) {
	received := b.now()
	req := evt.Request
	conn.ack(req, "interactive", nil)
	if req == nil || b.seenOnThisProcess(req, received) {
		return
	}
	cb, ok := evt.Data.(slack.InteractionCallback)
	if !ok || cb.Type != slack.InteractionTypeBlockActions {
		b.log.Info("ignored interaction", "envelope_id", req.EnvelopeID, "type", truncate(string(cb.Type), 40))
		return
	}
	if b.foreignApp(cb.APIAppID, req.EnvelopeID) {
		return
	}
	channel := cb.Channel.ID
	if channel == "" {
		channel = cb.Container.ChannelID
	}
	viewID := ""
	if cb.Container.Type == "view" || cb.View.Type == slack.VTHomeTab {
		// A click in the Home tab: no channel (the channel allowlist does
		// not apply there) and no response_url.
		viewID = firstNonEmpty(cb.Container.ViewID, cb.View.ID)
		if viewID == "" {
			viewID = "home"
		}
		channel = ""
	} else if channel == "" {
		b.log.Warn("ignored a click with neither a channel nor a view", "envelope_id", req.EnvelopeID)
		return
	}
	r := commands.Requester{UserID: cb.User.ID, UserName: firstNonEmpty(cb.User.Name, cb.User.Username), ChannelID: channel}
	for _, a := range cb.ActionCallback.BlockActions {
		if a == nil {
			continue
		}
		prefix, _, _ := strings.Cut(a.ActionID, ":")
		if !knownAction(prefix) {
			b.log.Warn("unknown button action", "envelope_id", req.EnvelopeID, "action_id", truncate(a.ActionID, 80), "user_id", r.UserID)
			continue
		}
		j := job{
			kind: clickJob, envelopeID: req.EnvelopeID, received: received, requester: r,
			responseURL: cb.ResponseURL, actionID: a.ActionID, value: a.Value,
			messageTS: cb.Container.MessageTs, threadTS: cb.Container.ThreadTs, ephemeral: cb.Container.IsEphemeral,
			viewID: viewID,
		}
		if !b.reserve() {
			b.goReply(func(ctx context.Context) { b.tellRequester(ctx, j, renderNotice(overloadedText)) })
			b.auditOther(context.Background(), r, j.source(), prefix, commands.StatusOverloaded, req.EnvelopeID)
			continue
		}
		b.jobs <- j
	}
}

// onEventsAPI acks an Events API envelope and takes the Home tab opening.
func (b *Bot) onEventsAPI(conn *connection, evt socketmode.Event) {
	received := b.now()
	req := evt.Request
	conn.ack(req, "events_api", nil)
	if req == nil || b.seenOnThisProcess(req, received) {
		return
	}
	ev, ok := evt.Data.(slackevents.EventsAPIEvent)
	if !ok {
		return
	}
	if b.foreignApp(ev.APIAppID, req.EnvelopeID) {
		return
	}
	opened, ok := ev.InnerEvent.Data.(*slackevents.AppHomeOpenedEvent)
	if !ok || opened.Tab != "home" || opened.User == "" {
		return
	}
	if !b.reserve() {
		b.log.Warn("Home tab not published: overloaded", "user_id", opened.User)
		return
	}
	// The Home tab is not a channel: the channel allowlist does not apply.
	b.jobs <- job{kind: homeOpenedJob, envelopeID: req.EnvelopeID, received: received,
		requester: commands.Requester{UserID: opened.User}}
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
	case commands.CancelTimer:
		return "cancel_timer"
	case nil:
		return "none"
	}
	return strings.SplitN(cmd.Text(), " ", 2)[0]
}
