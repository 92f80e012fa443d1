package bot

import (
	"context"

	"github.com/mpcbot/mpcbot/commands"
)

// The surfaces a change can start from in Slack. Each implements
// commands.Surface: commands.Service.Do carries the change to Plivo and
// back, and the surface shows the answer where its user will see it.

// anchorSurface answers a typed change: an anchor message in the channel
// (who asked for what) posted while Plivo is called, then the results in
// its thread — or through the response_url, saying why there is no thread.
type anchorSurface struct {
	b        *Bot
	j        job
	anchored chan anchorResult
}

type anchorResult struct {
	ts  string
	err error
}

func (b *Bot) anchorSurface(j job) *anchorSurface { return &anchorSurface{b: b, j: j} }

// Begin implements commands.Surface: it starts posting the anchor.
func (s *anchorSurface) Begin(ctx context.Context, o commands.Outcome) {
	s.anchored = make(chan anchorResult, 1)
	msg := renderAnchor(s.j.requester, o.Change, s.j.source())
	go func() {
		rctx, cancel := s.b.replyContext(ctx)
		defer cancel()
		ts, _, err := s.b.postFitting(rctx, s.j.requester.ChannelID, "", msg)
		s.anchored <- anchorResult{ts, err}
	}()
}

// Answer implements commands.Surface.
func (s *anchorSurface) Answer(ctx context.Context, o commands.Outcome) commands.Place {
	if s.anchored == nil {
		return s.b.answerPrivately(ctx, s.j, o, "")
	}
	a := <-s.anchored
	reply := s.b.renderResult(o)
	to := s.b.replyTarget(s.j)
	if a.err == nil {
		to.threadTS = a.ts
	} else {
		s.b.log.Info("anchor not posted; answering through response_url", "envelope_id", s.j.envelopeID,
			"channel_id", s.j.requester.ChannelID, "err", slackErrorCode(a.err))
		to.channel, to.note = "", noThreadNote(a.err, false)
	}
	return s.b.deliver(ctx, to, reply)
}

// threadSurface answers a change clicked under a result: in the same thread.
type threadSurface struct {
	b        *Bot
	j        job
	threadTS string
}

func (b *Bot) threadSurface(j job, threadTS string) *threadSurface {
	return &threadSurface{b: b, j: j, threadTS: threadTS}
}

// Begin implements commands.Surface.
func (s *threadSurface) Begin(context.Context, commands.Outcome) {}

// Answer implements commands.Surface.
func (s *threadSurface) Answer(ctx context.Context, o commands.Outcome) commands.Place {
	if !ran(o) {
		return s.b.answerPrivately(ctx, s.j, o, s.threadTS)
	}
	to := s.b.replyTarget(s.j)
	to.threadTS = s.threadTS
	return s.b.deliver(ctx, to, s.b.renderResult(o))
}

// confirmSurface answers the Confirm button of a question about all
// members: the results go where the question's change would have put them
// (a new anchor, or the thread it was asked in), and the question is
// replaced by what happened.
type confirmSurface struct {
	b     *Bot
	j     job
	inner commands.Surface
}

func (b *Bot) confirmSurface(j job, threadTS string) *confirmSurface {
	var inner commands.Surface = b.threadSurface(j, threadTS)
	if threadTS == "" {
		inner = b.anchorSurface(j)
	}
	return &confirmSurface{b: b, j: j, inner: inner}
}

// Begin implements commands.Surface.
func (s *confirmSurface) Begin(ctx context.Context, o commands.Outcome) { s.inner.Begin(ctx, o) }

// Answer implements commands.Surface.
func (s *confirmSurface) Answer(ctx context.Context, o commands.Outcome) commands.Place {
	if !ran(o) {
		// Refused now (e.g. access was revoked), a double tap, or failed:
		// replace the question.
		s.b.respondOrLog(ctx, s.j, responseEphemeral, true, s.b.privateMessage(o, ""))
		return commands.Place{ResponseURL: s.j.responseURL, UserID: s.j.requester.UserID}
	}
	place := s.inner.Answer(ctx, o)
	note := "Confirmed: " + o.Change.Describe() + "."
	if place.ThreadTS != "" {
		note = "Confirmed: " + o.Change.Describe() + ". The results are in the thread."
	}
	s.b.respondOrLog(ctx, s.j, responseEphemeral, true, renderNotice(note))
	return place
}

// ran reports whether the change reached Plivo (so its results are shown
// where results go, not privately).
func ran(o commands.Outcome) bool {
	return o.Refusal == nil && o.Confirm == nil && !o.Duplicate && (o.Err == nil || len(o.Results) > 0)
}

// answerPrivately shows an outcome only to the requester: a refusal, a
// question before changing everyone, a double tap, or a failure before
// Plivo was called. threadTS is the thread the confirmed change will go to.
func (b *Bot) answerPrivately(ctx context.Context, j job, o commands.Outcome, threadTS string) commands.Place {
	b.tellRequester(ctx, j, b.privateMessage(o, threadTS))
	return commands.Place{ResponseURL: j.responseURL, UserID: j.requester.UserID}
}

func (b *Bot) privateMessage(o commands.Outcome, threadTS string) message {
	switch {
	case o.Refusal != nil:
		return renderRefusal(o.Refusal)
	case o.Confirm != nil:
		return renderConfirm(o, b.now(), threadTS)
	case o.Duplicate:
		return renderNotice(commands.DuplicateText)
	}
	return b.renderResult(o)
}
