package bot

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/mpcbot/mpcbot/commands"
)

// auditPoster posts one-line summaries of changes to the audit channel
// through its own bounded queue and goroutine, so that Slack rate limits
// or outages there never delay or lose a user's reply. A summary that
// cannot be queued or posted is logged (the slog audit record of the
// command exists either way).
type auditPoster struct {
	b       *Bot
	channel string
	queue   chan string

	closeOnce sync.Once
}

func newAuditPoster(b *Bot, channel string) *auditPoster {
	return &auditPoster{b: b, channel: channel, queue: make(chan string, defaultAuditQueueSize)}
}

// enqueue queues a summary without ever blocking.
func (a *auditPoster) enqueue(line string) {
	if a.channel == "" {
		return
	}
	select {
	case a.queue <- line:
	default:
		a.b.log.Warn("audit channel queue full; summary not posted (the audit log record has it)", "channel", a.channel, "summary", line)
	}
}

func (a *auditPoster) run(ctx context.Context) {
	for line := range a.queue {
		pctx, cancel := context.WithTimeout(a.b.replyBase, 30*time.Second)
		_, err := a.b.post(pctx, a.channel, "", renderNotice(line))
		cancel()
		if err != nil {
			a.b.log.Error("posting to the audit channel failed", "channel", a.channel, "err", slackErrorCode(err), "summary", line)
		}
	}
}

func (a *auditPoster) close() { a.closeOnce.Do(func() { close(a.queue) }) }

// Audit implements commands.Auditor: the audit record of a change, one
// structured log record always, and a summary in the audit channel when
// Plivo was called.
func (b *Bot) Audit(ctx context.Context, o commands.Outcome) {
	attrs := append(o.LogAttrs(), slog.String("envelope_id", o.RequestID))
	level := slog.LevelInfo
	if o.Status() == commands.StatusFailed || o.Status() == commands.StatusPartial {
		level = slog.LevelWarn
	}
	b.log.LogAttrs(ctx, level, "audit", attrs...)
	b.metrics.Command(string(o.Source), o.Change.ActionsText(), string(o.Status()))
	if len(o.Results) > 0 {
		b.audit.enqueue(o.Summary())
	}
}

// auditOther writes the audit record of a request that is not a change: a
// list, a usage error, a refused list, a stale or duplicate click.
func (b *Bot) auditOther(ctx context.Context, r commands.Requester, src commands.Source, what string, status commands.Status, envelopeID string, extra ...slog.Attr) {
	attrs := []slog.Attr{
		slog.String("user_id", r.UserID),
		slog.String("user_name", r.UserName),
		slog.String("channel_id", r.ChannelID),
		slog.String("source", string(src)),
		slog.String("request", what),
		slog.String("status", string(status)),
		slog.String("envelope_id", envelopeID),
	}
	b.log.LogAttrs(ctx, slog.LevelInfo, "audit", append(attrs, extra...)...)
	b.metrics.Command(string(src), what, string(status))
}
