package bot

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/slack-go/slack"

	"github.com/mpcbot/mpcbot/commands"
	"github.com/mpcbot/mpcbot/plivo"
)

// maxCallRows bounds the calls one view lists (one block each, within
// Block Kit's 50 blocks with the header, notes and buttons).
const maxCallRows = 40

// showCalls answers `/mpc`, `/mpc calls [here]` and the Refresh button of
// a calls view (inPlace).
func (b *Bot) showCalls(ctx context.Context, j job, c commands.Calls, inPlace bool) {
	rctx, rcancel := b.replyContext(ctx)
	defer rcancel()
	refusal, authErr := b.svc.Authorize(ctx, j.requester, c)
	b.logAuthErr(authErr, j)
	if refusal != nil {
		b.tellRequester(rctx, j, renderRefusal(refusal))
		b.auditOther(rctx, j.requester, j.source(), "calls", commands.StatusRefused, j.envelopeID, slog.String("refusal", refusal.Code))
		return
	}
	list, err := b.svc.LiveCalls(ctx)
	if err != nil {
		b.tellRequester(rctx, j, renderError(err, plivo.MPC{}))
		b.auditOther(rctx, j.requester, j.source(), "calls", commands.StatusFailed, j.envelopeID, slog.String("error", err.Error()))
		return
	}
	placement := placedEphemeral
	if c.Here {
		placement = placedByBot
	}
	if inPlace {
		placement = navPlacement(j.actionID, commands.List{Here: c.Here})
	}
	render := func(placement int) message { return renderCalls(list, c, placement, b.now()) }
	switch {
	case inPlace && placement == placedByBot && j.messageTS != "":
		m := freshBlockIDs(render(placedByBot), b.now())
		if err := b.update(rctx, j.requester.ChannelID, j.messageTS, m); err != nil {
			b.log.Warn("calls view update failed; posting a new one", "envelope_id", j.envelopeID, "err", slackErrorCode(err))
			if _, err := b.post(rctx, j.requester.ChannelID, "", m); err != nil {
				b.respondOrLog(rctx, j, responseEphemeral, false, render(placedEphemeral))
			}
		}
	case inPlace:
		b.respondOrLog(rctx, j, responseTypeOf(placement), true, freshBlockIDs(render(placement), b.now()))
	case placement == placedByBot:
		if _, err := b.post(rctx, j.requester.ChannelID, "", render(placedByBot)); err != nil {
			b.respondOrLog(rctx, j, responseInChannel, false, withNote(render(placedResponseURL), noThreadNote(err, false)))
		}
	default:
		b.tellRequester(rctx, j, render(placedEphemeral))
	}
	b.auditOther(rctx, j.requester, j.source(), "calls", commands.StatusOK, j.envelopeID, slog.Int("calls", len(list.Calls)))
}

// callMPC returns how to address a live call: by name while it is active
// (how people know it), by uuid otherwise.
func callMPC(c commands.LiveCall) (plivo.MPC, bool) {
	if c.Status == "active" && c.Name != "" {
		if m, err := plivo.MPCByName(c.Name); err == nil {
			return m, true
		}
	}
	m, err := plivo.MPCByUUID(c.UUID)
	return m, err == nil
}

// callLine describes a live call: "sales eu · 3f2a9c1d · running 12m".
func callLine(c commands.LiveCall, now time.Time) string {
	name := c.Name
	if name == "" {
		name = "(no name)"
	}
	short := c.UUID
	if len(short) > 8 {
		short = short[:8]
	}
	state := "running"
	switch d := now.Sub(c.Since); {
	case c.Status != "active":
		state = "waiting to start"
	case c.Since.IsZero():
	case d < time.Minute:
		state = "just started"
	default:
		state += " " + commands.FormatDuration(d.Truncate(time.Minute))
	}
	return fmt.Sprintf("📞 %s · %s · %s", truncate(name, 80), short, state)
}

// callBlocks renders the rows of a calls view with a Participants button
// each (opening the roster with action listAction), and its notification
// lines.
func callBlocks(l commands.CallList, here bool, issued time.Time, listAction string, placement int) ([]slack.Block, []string) {
	var blocks []slack.Block
	var text []string
	if len(l.Calls) == 0 {
		line := "No live calls right now."
		return []slack.Block{slack.NewSectionBlock(plain(line, maxSectionText), nil, nil)}, []string{line}
	}
	for i, c := range l.Calls {
		if i == maxCallRows {
			more := fmt.Sprintf("…and %d more live calls; `/mpc list <name>` shows any of them.", len(l.Calls)-maxCallRows)
			blocks = append(blocks, slack.NewContextBlock("more", plain(more, maxSectionText)))
			text = append(text, escape(more))
			break
		}
		line := callLine(c, issued)
		text = append(text, escape(line))
		var accessory *slack.Accessory
		if mpc, ok := callMPC(c); ok {
			v := commands.EncodeButton(commands.List{MPC: mpc, Here: here, Page: 1}, issued)
			accessory = slack.NewAccessory(button(fmt.Sprintf("%s:show:%d:%d", listAction, placement, i), "Participants", v))
		}
		blocks = append(blocks, slack.NewSectionBlock(plain(line, maxSectionText), nil, accessory, slack.SectionBlockOptionBlockID(fmt.Sprintf("call.%d", i))))
	}
	return blocks, text
}

// renderCalls renders the live calls view.
func renderCalls(l commands.CallList, c commands.Calls, placement int, issued time.Time) message {
	head := fmt.Sprintf("Live calls (%d)", len(l.Calls))
	blocks := []slack.Block{slack.NewHeaderBlock(plain(head, maxHeaderText))}
	rows, text := callBlocks(l, c.Here, issued, actionList, placement)
	blocks = append(blocks, rows...)
	asOf := fmt.Sprintf("as of %s UTC", l.Fetched.UTC().Format("15:04:05"))
	refresh := button(fmt.Sprintf("%s:refresh:%d", actionCalls, placement), "Refresh", commands.EncodeButton(c, issued))
	blocks = append(blocks,
		slack.NewActionBlock("nav", refresh),
		slack.NewContextBlock("help", mrkdwn(asOf+" · `/mpc help` shows every command")))
	return message{Text: truncate(escape(head)+"\n"+strings.Join(text, "\n")+"\n/mpc help shows every command", maxText), Blocks: blocks}
}
