package bot

import (
	"context"
	"fmt"

	"github.com/slack-go/slack"

	"github.com/mpcbot/mpcbot/commands"
	"github.com/mpcbot/mpcbot/plivo"
)

// Slack's limits of a Home tab view.
const (
	maxHomeBlocks = 100
	maxHomeBytes  = 250_000
)

// homeState is what the Home tab shows: the live calls, or one call's
// roster; with notes on top (the result of the last change, a refusal).
type homeState struct {
	roster *commands.List
	note   []slack.Block
	// answers: the view answers another request (a change, a refusal, a
	// notice) whose own audit record covers it.
	answers bool
}

// publishHome shows the Home tab to the requester: the live calls (or a
// call's roster) for an authorized user, the refusal a command gets for
// anyone else. Every failure ends in something the user sees: the view
// itself, a smaller view, or a direct message.
func (b *Bot) publishHome(ctx context.Context, j job, st homeState) {
	rctx, cancel := b.replyContext(ctx)
	defer cancel()
	issued := b.now()
	var blocks []slack.Block
	status, what := commands.StatusOK, "home"
	refusal, authErr := b.svc.Authorize(ctx, j.requester, commands.Calls{})
	b.logAuthErr(authErr, j)
	switch {
	case refusal != nil:
		blocks = append(homeHeader(), renderRefusal(refusal).Blocks...)
		status = commands.StatusRefused
	case st.roster != nil:
		what = "home_roster"
		ro, err := b.svc.Roster(ctx, st.roster.MPC)
		if err != nil {
			blocks = append(homeHeader(), renderError(err, st.roster.MPC).Blocks...)
			status = commands.StatusFailed
			break
		}
		v := b.rosterView(ctx, j, *st.roster, placedEphemeral, nil)
		rb, _ := rosterBlocks(ro, v, issued, actionPanel, actionHome)
		blocks = append(homeHeader(), rb...)
		blocks = append(blocks, slack.NewActionBlock("home.back",
			button(actionHome+":calls", "◀ All live calls", commands.EncodeButton(commands.Calls{}, issued))))
	default:
		list, err := b.svc.LiveCalls(ctx)
		if err != nil {
			blocks = append(homeHeader(), renderError(err, plivo.MPC{}).Blocks...)
			status = commands.StatusFailed
			break
		}
		rows, _ := callBlocks(list, false, issued, actionHome, placedEphemeral)
		blocks = append(homeHeader(), slack.NewHeaderBlock(plain(fmt.Sprintf("Live calls (%d)", len(list.Calls)), maxHeaderText)))
		blocks = append(blocks, rows...)
		blocks = append(blocks,
			slack.NewActionBlock("home.nav", button(actionHome+":refresh", "Refresh", commands.EncodeButton(commands.Calls{}, issued))),
			slack.NewContextBlock("home.asof", plain(fmt.Sprintf("as of %s UTC · tap Participants to act on a call", list.Fetched.UTC().Format("15:04:05")), maxSectionText)))
	}
	if len(st.note) > 0 {
		blocks = append(blocks[:1:1], append(st.note, blocks[1:]...)...)
	}
	b.publish(rctx, j, freshBlockIDs(message{Blocks: blocks}, issued).Blocks)
	if !st.answers && (j.kind == homeOpenedJob || j.viewID != "") {
		b.auditOther(rctx, j.requester, commands.Home, what, status, j.envelopeID)
	}
}

func homeHeader() []slack.Block {
	return []slack.Block{slack.NewContextBlock("home.title", mrkdwn("*mpcbot* · live Plivo calls · `/mpc help` in any channel"))}
}

// publish sends a Home view. A view over Slack's limits or refused as
// invalid is replaced by a short one that fits; a hash conflict is
// published again; a Home tab that is off, or any other failure, is told
// in a direct message.
func (b *Bot) publish(ctx context.Context, j job, blocks []slack.Block) {
	if len(blocks) > maxHomeBlocks {
		blocks = append(blocks[:maxHomeBlocks-1:maxHomeBlocks-1], slack.NewContextBlock("home.cut",
			plain("This view is longer than Slack allows; use /mpc list <name> for the full roster.", maxSectionText)))
	}
	err := b.publishView(ctx, j.requester.UserID, blocks)
	if err != nil && (blocksRefused(err) || slackErrorCode(err) == "view_too_large") {
		b.log.Warn("Home view refused; publishing a short one", "user_id", j.requester.UserID, "err", slackErrorCode(err))
		err = b.publishView(ctx, j.requester.UserID, append(homeHeader(), slack.NewSectionBlock(plain(
			"mpcbot could not show this view (Slack refused it: "+slackErrorCode(err)+"). Use /mpc calls or /mpc list <name> in a channel.", maxSectionText), nil, nil)))
	}
	if err == nil {
		return
	}
	b.log.Warn("publishing the Home view failed; telling the user in a direct message", "user_id", j.requester.UserID, "err", slackErrorCode(err))
	text := "I couldn't update your mpcbot Home tab (Slack said " + slackErrorCode(err) + "). Use /mpc calls in a channel meanwhile."
	if slackErrorCode(err) == "not_enabled" {
		text = "The mpcbot Home tab is not enabled for this app (Slack said not_enabled); an admin must turn it on (app manifest: features.app_home.home_tab_enabled). Use /mpc calls in a channel meanwhile."
	}
	if _, err := b.post(ctx, j.requester.UserID, "", renderNotice(text)); err != nil {
		b.log.Error("reply lost: Home view and direct message both failed", "envelope_id", j.envelopeID, "user_id", j.requester.UserID, "err", slackErrorCode(err))
	}
}

// publishView calls views.publish, retrying a hash conflict once (another
// update won the race: this one is newer anyway, so it goes without hash).
func (b *Bot) publishView(ctx context.Context, userID string, blocks []slack.Block) error {
	req := slack.PublishViewContextRequest{UserID: userID, View: slack.HomeTabViewRequest{
		Type: slack.VTHomeTab, Blocks: slack.Blocks{BlockSet: blocks}, CallbackID: "mpcbot.home"}}
	return b.callSlack(ctx, "views.publish", func(ctx context.Context) error {
		_, err := b.api.PublishViewContext(ctx, req)
		return err
	})
}

// publishHomeNote shows m to a user who clicked in the Home tab (which has
// no response_url): on top of their Home view.
func (b *Bot) publishHomeNote(ctx context.Context, j job, m message) {
	b.publishHome(ctx, j, homeState{note: m.Blocks, answers: true})
}

// homeSurface answers a change made in the Home tab: the Home view is
// published again with the state read back from Plivo and the result on
// top, and the per-field results with api_ids go to the requester's DM with
// the bot, as an anchor and its thread, so the record is on every device.
type homeSurface struct {
	b        *Bot
	j        job
	v        rosterView
	anchored chan dmAnchor
}

type dmAnchor struct {
	channel, ts string
	err         error
}

func (b *Bot) homeSurface(j job, v rosterView) *homeSurface { return &homeSurface{b: b, j: j, v: v} }

// Begin implements commands.Surface: the DM anchor is posted while Plivo
// is called.
func (s *homeSurface) Begin(ctx context.Context, o commands.Outcome) {
	s.anchored = make(chan dmAnchor, 1)
	msg := renderAnchor(s.j.requester, o.Change, commands.Home)
	go func() {
		rctx, cancel := s.b.replyContext(ctx)
		defer cancel()
		ts, in, err := s.b.postFitting(rctx, s.j.requester.UserID, "", msg)
		s.anchored <- dmAnchor{in, ts, err}
	}()
}

// Answer implements commands.Surface.
func (s *homeSurface) Answer(ctx context.Context, o commands.Outcome) commands.Place {
	l := s.v.List
	if l.MPC.IsZero() {
		l = commands.List{MPC: o.Change.MPC, Page: 1}
	}
	place := commands.Place{UserID: s.j.requester.UserID}
	if !ran(o) {
		note := s.b.privateMessage(o, "")
		s.b.publishHome(ctx, s.j, homeState{roster: &l, note: note.Blocks, answers: true})
		return place
	}
	result := s.b.renderResult(o)
	headline := renderNotice(o.Headline() + " · details in your messages with mpcbot")
	s.b.publishHome(ctx, s.j, homeState{roster: &l, note: headline.Blocks, answers: true})
	a := <-s.anchored
	if a.err != nil {
		s.b.log.Warn("DM anchor not posted; posting the results alone", "envelope_id", s.j.envelopeID, "err", slackErrorCode(a.err))
		a.channel = s.j.requester.UserID
	}
	to := target{channel: firstNonEmpty(a.channel, s.j.requester.UserID), threadTS: a.ts, user: s.j.requester.UserID, envelopeID: s.j.envelopeID}
	got := s.b.deliver(ctx, to, result)
	if got.ChannelID == "" {
		s.b.log.Error("Home change results not delivered to the DM", "envelope_id", s.j.envelopeID, "user_id", s.j.requester.UserID)
	}
	return got
}
