package bot

import (
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/slack-go/slack"

	"github.com/mpcbot/mpcbot/commands"
	"github.com/mpcbot/mpcbot/plivo"
)

// Message is a rendered Slack message: the notification text (what a phone's
// lock screen and screen readers read) and the Block Kit blocks.
type Message struct {
	Text   string
	Blocks []slack.Block
}

// Block Kit limits (docs.slack.dev reference, also enforced by the fake
// Slack in bot/slacktest).
const (
	maxBlocks          = 50
	maxSectionText     = 3000
	maxButtonText      = 75
	maxHeaderText      = 150
	maxActionsElements = 25
	maxContextElements = 10
)

// Action ids. A suffix ":<n>" keeps them unique within a message; routing
// uses the part before the first ':'.
const (
	actionRun     = "mpc.run"     // a change from a result message: results in the same thread
	actionPanel   = "mpc.panel"   // a change from a roster panel: panel refreshed in place
	actionConfirm = "mpc.confirm" // confirm a change to all members
	actionCancel  = "mpc.cancel"  // cancel a pending confirmation
	actionList    = "mpc.list"    // show, page or refresh a roster
)

// RosterPageSize is how many live members and how many exited entries one
// roster page shows (two blocks per live member keep a page far below
// Block Kit's 50 blocks; exited entries are one line each).
const (
	rosterLivePerPage   = 10
	rosterExitedPerPage = 25
)

// escape makes user text inert in mrkdwn: Slack's three control characters
// are entity-encoded, so "<!channel>" typed as an MPC name pings nobody.
func escape(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace(s)
}

func mrkdwn(text string) *slack.TextBlockObject {
	return slack.NewTextBlockObject(slack.MarkdownType, text, false, true)
}

func plain(text string, limit int) *slack.TextBlockObject {
	return slack.NewTextBlockObject(slack.PlainTextType, truncate(text, limit), true, false)
}

func truncate(s string, limit int) string {
	if utf8.RuneCountInString(s) <= limit {
		return s
	}
	r := []rune(s)
	return string(r[:limit-1]) + "…"
}

// sections splits escaped mrkdwn lines into section blocks of at most
// maxSectionText characters each, breaking only between lines.
func sections(lines []string) []slack.Block {
	var blocks []slack.Block
	var cur strings.Builder
	flush := func() {
		if cur.Len() > 0 {
			blocks = append(blocks, slack.NewSectionBlock(mrkdwn(cur.String()), nil, nil))
			cur.Reset()
		}
	}
	for _, l := range lines {
		l = truncate(l, maxSectionText)
		if cur.Len() > 0 && utf8.RuneCountInString(cur.String())+1+utf8.RuneCountInString(l) > maxSectionText {
			flush()
		}
		if cur.Len() > 0 {
			cur.WriteByte('\n')
		}
		cur.WriteString(l)
	}
	flush()
	return blocks
}

func escapeAll(lines []string) []string {
	out := make([]string, len(lines))
	for i, l := range lines {
		out[i] = escape(l)
	}
	return out
}

// button returns a button; id must already be unique in its message.
func button(actionID, label, value string) *slack.ButtonBlockElement {
	return slack.NewButtonBlockElement(actionID, value, plain(label, maxButtonText))
}

// actionRows packs buttons into actions blocks of at most 25 elements.
func actionRows(blockID string, buttons []slack.BlockElement) []slack.Block {
	var blocks []slack.Block
	for i := 0; i < len(buttons); i += maxActionsElements {
		end := min(i+maxActionsElements, len(buttons))
		id := blockID
		if i > 0 {
			id = fmt.Sprintf("%s.%d", blockID, i/maxActionsElements)
		}
		blocks = append(blocks, slack.NewActionBlock(id, buttons[i:end]...))
	}
	return blocks
}

// RenderHelp renders the help text.
func RenderHelp() Message {
	return Message{Text: commands.HelpText, Blocks: []slack.Block{slack.NewSectionBlock(mrkdwn(commands.HelpText), nil, nil)}}
}

// RenderUsageError renders a command that could not be understood, with
// the correct usage.
func RenderUsageError(problem string) Message {
	line := "❌ " + escape(problem)
	return Message{
		Text: line + "\n" + commands.Usage,
		Blocks: []slack.Block{
			slack.NewSectionBlock(mrkdwn(line), nil, nil),
			slack.NewContextBlock("usage", mrkdwn(commands.Usage)),
		},
	}
}

// RenderRefusal renders why a request was refused and what would change it.
func RenderRefusal(r *commands.Refusal) Message {
	line := "⛔ " + escape(r.Reason)
	return Message{
		Text: line + "\n" + escape(r.Fix),
		Blocks: []slack.Block{
			slack.NewSectionBlock(mrkdwn(line+"\n"+escape(r.Fix)), nil, nil),
		},
	}
}

// RenderNotice renders a one-line notice (overload, shutdown, double tap).
func RenderNotice(text string) Message {
	t := escape(text)
	return Message{Text: t, Blocks: []slack.Block{slack.NewSectionBlock(mrkdwn(t), nil, nil)}}
}

// RenderAnchor renders the channel message a thread of results hangs
// under: who asked for what.
func RenderAnchor(r commands.Requester, c commands.Change, src commands.Source) Message {
	verb := "asked"
	if src == commands.Clicked {
		verb = "clicked"
	}
	line := fmt.Sprintf("<@%s> %s: *%s*", r.UserID, verb, escape(c.Describe()))
	cmd := "`/mpc " + escape(c.Text()) + "`"
	return Message{
		Text: fmt.Sprintf("<@%s> %s: %s", r.UserID, verb, escape(c.Describe())),
		Blocks: []slack.Block{
			slack.NewSectionBlock(mrkdwn(line), nil, nil),
			slack.NewContextBlock("anchor", mrkdwn(cmd+" · results in the thread")),
		},
	}
}

// RenderResult renders the thread reply for an outcome: the headline, one
// line per field with Plivo's result and ✅/❌, api_ids, what to do next on
// failure, and follow-up buttons. issued stamps the buttons.
func RenderResult(o commands.Outcome, issued time.Time, confirmAllAbove int) Message {
	lines := escapeAll(o.ResultLines())
	head := escape(o.Headline())
	blocks := []slack.Block{slack.NewSectionBlock(mrkdwn("*"+head+"*"), nil, nil)}
	blocks = append(blocks, sections(lines)...)
	ctx := fmt.Sprintf("<@%s> · %s · %s", o.Requester.UserID, o.Source, o.Duration.Round(time.Millisecond))
	blocks = append(blocks, slack.NewContextBlock("meta", mrkdwn(ctx)))
	blocks = append(blocks, actionRows("next", followUps(o, issued, confirmAllAbove))...)
	return Message{Text: head + "\n" + strings.Join(lines, "\n"), Blocks: blocks}
}

// followUps returns the buttons offered after an outcome: undo (the
// inverse of every action, and of each one when there are several), retry
// after a failure that may pass next time, and the roster.
func followUps(o commands.Outcome, issued time.Time, confirmAllAbove int) []slack.BlockElement {
	c := o.Change
	var bs []slack.BlockElement
	add := func(b *slack.ButtonBlockElement) {
		b.ActionID = fmt.Sprintf("%s:%d", b.ActionID, len(bs))
		bs = append(bs, b)
	}
	// Undo only what was done; retry only what failed for a reason that
	// may pass (rate limits, outages), never what Plivo refused.
	var done, retry []plivo.Member
	for _, r := range o.Results {
		switch {
		case r.Err == nil:
			done = append(done, r.Member)
		case retryable(r.Err):
			retry = append(retry, r.Member)
		}
	}
	if len(done) > 0 {
		inv := c.Inverse().WithMembers(done...)
		add(changeButton(actionRun, inv, titleOf(inv), issued, o.LiveMembers, confirmAllAbove).WithStyle(slack.StylePrimary))
		if len(c.Actions) > 1 {
			for _, a := range c.Actions {
				single := commands.Change{Actions: []commands.Action{a.Inverse()}, MPC: c.MPC, Members: done}
				add(changeButton(actionRun, single, titleOf(single), issued, o.LiveMembers, confirmAllAbove))
			}
		}
	}
	if retryable(o.Err) {
		retry = c.Members
	}
	if len(retry) > 0 {
		again := c.WithMembers(retry...)
		add(changeButton(actionRun, again, "Retry", issued, o.LiveMembers, confirmAllAbove))
	}
	add(button(actionList, "Show participants", commands.EncodeButton(commands.List{MPC: c.MPC, Page: 1}, issued)))
	return bs
}

// actionsTitle returns the actions as a label: "Unmute + Unhold".
func actionsTitle(c commands.Change) string {
	parts := make([]string, len(c.Actions))
	for i, a := range c.Actions {
		parts[i] = a.Title()
	}
	return strings.Join(parts, " + ")
}

// titleOf returns a button label for a change: "Unhold all", "Mute 101".
func titleOf(c commands.Change) string {
	t := actionsTitle(c)
	if c.All() {
		return t + " all"
	}
	return t + " " + c.MembersText()
}

// changeButton returns a button that runs c. A change to all members gets
// Block Kit's confirm dialog (and --yes in its value, since the dialog is
// the confirmation) unless the call is known to be at or below the
// confirmation threshold; coach changes warn about Plivo's beep.
func changeButton(action string, c commands.Change, label string, issued time.Time, liveMembers, confirmAllAbove int) *slack.ButtonBlockElement {
	var confirm *slack.ConfirmationBlockObject
	if c.All() && !(liveMembers > 0 && liveMembers <= confirmAllAbove && confirmAllAbove > 0) {
		c.Confirmed = true
		who := "every participant"
		if liveMembers > 0 {
			who = fmt.Sprintf("all %d live participants", liveMembers)
		}
		confirm = slack.NewConfirmationBlockObject(plain("Change everyone?", 100),
			mrkdwn(fmt.Sprintf("This will %s %s of %s.", strings.ToLower(actionsTitle(c)), who, escape(truncate(c.MPC.String(), 40)))),
			plain("Yes, "+strings.ToLower(truncate(actionsTitle(c), 20)), 30), plain("Cancel", 30))
	}
	if c.Coaching() {
		text := "Plivo plays a beep on the call when coach mode changes."
		confirm = slack.NewConfirmationBlockObject(plain("Coach mode", 100), mrkdwn(text),
			plain(truncate(actionsTitle(c), 30), 30), plain("Cancel", 30))
	}
	b := button(action, label, commands.EncodeButton(c, issued))
	if confirm != nil {
		b = b.WithConfirm(confirm)
	}
	return b
}

// retryable reports whether a failure may pass if tried again.
func retryable(err error) bool {
	switch plivo.KindOf(err) {
	case plivo.RateLimited, plivo.Unavailable, plivo.Busy, plivo.Canceled:
		return true
	}
	return false
}

// RenderConfirm renders the question asked before changing all members of
// a large call, with a Confirm button that shows the member count.
// threadTS is the thread the results will go to ("" = a new anchor); it
// rides in the Confirm button's action id.
func RenderConfirm(o commands.Outcome, issued time.Time, threadTS string) Message {
	q := escape(o.ConfirmQuestion())
	c := o.Change
	c.Confirmed = true
	label := fmt.Sprintf("Confirm: %s %d", strings.ToLower(actionsTitle(c)), o.Confirm.LiveMembers)
	confirm := button(actionConfirm+":"+threadTS, label, commands.EncodeButton(c, issued)).WithStyle(slack.StyleDanger)
	cancel := button(actionCancel, "Cancel", commands.EncodeButton(o.Change, issued))
	hint := fmt.Sprintf("Changes to `all` in calls with more than %d live participants are confirmed first; add `--yes` to skip.", o.Confirm.Threshold)
	if o.Confirm.Threshold == 0 {
		hint = "Changes to `all` are always confirmed first (MPC_CONFIRM_ALL_ABOVE=0); add `--yes` to skip."
	}
	return Message{
		Text: "❓ " + q,
		Blocks: []slack.Block{
			slack.NewSectionBlock(mrkdwn("❓ "+q), nil, nil),
			slack.NewActionBlock("confirm", confirm, cancel),
			slack.NewContextBlock("hint", mrkdwn(hint)),
		},
	}
}

// RosterView says how to render a roster: which page, whether it is posted
// in the channel, what the viewer may do, and a note on top (the result of
// the last change made from the panel).
type RosterView struct {
	List commands.List
	// ViewerIsSupervisor shows Coach buttons on an ephemeral panel.
	ViewerIsSupervisor bool
	Note               []string
}

// RenderRoster renders a roster panel: live members first, each with its
// state and buttons; exited entries folded into a compact list; paged so
// that every page stays within Block Kit's limits, with Prev/Next buttons.
func RenderRoster(ro commands.Roster, v RosterView, issued time.Time) Message {
	pages := rosterPages(len(ro.Live), len(ro.Exited))
	page := min(max(v.List.Page, 1), pages)
	name := escape(ro.MPC.String())

	var blocks []slack.Block
	blocks = append(blocks, slack.NewHeaderBlock(plain("Participants of "+ro.MPC.String(), maxHeaderText)))
	summary := fmt.Sprintf("%d live · %d exited · as of %s UTC", len(ro.Live), len(ro.Exited), ro.Fetched.UTC().Format("15:04:05"))
	if pages > 1 {
		summary += fmt.Sprintf(" · page %d of %d", page, pages)
	}
	blocks = append(blocks, slack.NewContextBlock("summary", mrkdwn(summary)))
	if len(v.Note) > 0 {
		blocks = append(blocks, sections(escapeAll(v.Note))...)
	}
	text := []string{fmt.Sprintf("Participants of %s: %s", name, summary)}

	if len(ro.Live) == 0 {
		blocks = append(blocks, slack.NewSectionBlock(mrkdwn("No one is on this call right now."), nil, nil))
	}
	lo, hi := pageRange(page, rosterLivePerPage, len(ro.Live))
	for i, p := range ro.Live[lo:hi] {
		line := fmt.Sprintf("*%s* · %s · %s", escape(p.MemberID), escape(strings.ToLower(p.Role)), stateText(p))
		text = append(text, fmt.Sprintf("%s · %s · %s", p.MemberID, strings.ToLower(p.Role), stateText(p)))
		blocks = append(blocks, slack.NewSectionBlock(mrkdwn(line), nil, nil))
		blocks = append(blocks, slack.NewActionBlock(fmt.Sprintf("member.%d", lo+i), memberButtons(ro.MPC, p, v, lo+i, issued)...))
	}

	elo, ehi := pageRange(page, rosterExitedPerPage, len(ro.Exited))
	if len(ro.Exited) > 0 {
		blocks = append(blocks, slack.NewDividerBlock())
		var lines []string
		if ehi > elo {
			lines = append(lines, fmt.Sprintf("*Exited* (%d–%d of %d, earlier joins):", elo+1, ehi, len(ro.Exited)))
		} else {
			lines = append(lines, fmt.Sprintf("*Exited*: %d earlier entries (see page 1 and the following pages).", len(ro.Exited)))
		}
		for _, p := range ro.Exited[elo:ehi] {
			lines = append(lines, "• "+escape(exitedText(p)))
		}
		blocks = append(blocks, sections(lines)...)
	}

	var nav []slack.BlockElement
	list := v.List
	if page > 1 {
		list.Page = page - 1
		nav = append(nav, button(actionList+":prev", "◀ Previous", commands.EncodeButton(list, issued)))
	}
	list.Page = page
	nav = append(nav, button(actionList+":refresh", "Refresh", commands.EncodeButton(list, issued)))
	if page < pages {
		list.Page = page + 1
		nav = append(nav, button(actionList+":next", "Next ▶", commands.EncodeButton(list, issued)))
	}
	blocks = append(blocks, slack.NewActionBlock("nav", nav...))
	return Message{Text: strings.Join(text, "\n"), Blocks: blocks}
}

func rosterPages(live, exited int) int {
	p := max((live+rosterLivePerPage-1)/rosterLivePerPage, (exited+rosterExitedPerPage-1)/rosterExitedPerPage)
	return max(p, 1)
}

func pageRange(page, per, n int) (lo, hi int) {
	lo = min((page-1)*per, n)
	hi = min(lo+per, n)
	return lo, hi
}

func memberButtons(mpc plivo.MPC, p plivo.Participant, v RosterView, row int, issued time.Time) []slack.BlockElement {
	member := plivo.Member(p.MemberID)
	toggle := func(on bool, set, unset commands.Action) commands.Action {
		if on {
			return unset
		}
		return set
	}
	acts := []commands.Action{
		toggle(p.Mute != nil && *p.Mute, commands.Mute, commands.Unmute),
		toggle(p.Hold != nil && *p.Hold, commands.Hold, commands.Unhold),
	}
	if p.IsSupervisor() && (v.List.Here || v.ViewerIsSupervisor) {
		acts = append(acts, toggle(p.CoachMode != nil && *p.CoachMode, commands.Coach, commands.Uncoach))
	}
	// The action id carries the panel's page and placement so the click can
	// re-render the same view; the value carries the change.
	here := 0
	if v.List.Here {
		here = 1
	}
	var bs []slack.BlockElement
	for i, a := range acts {
		c := commands.Change{Actions: []commands.Action{a}, MPC: mpc, Members: []plivo.Member{member}}
		id := fmt.Sprintf("%s:%d:%d:%d.%d", actionPanel, v.List.Page, here, row, i)
		bs = append(bs, changeButton(id, c, a.Title(), issued, 0, 0))
	}
	return bs
}

// panelView decodes the page and placement from a panel button's action id.
func panelView(actionID string, c commands.Change) (commands.List, bool) {
	parts := strings.Split(actionID, ":")
	if len(parts) != 4 || parts[0] != actionPanel {
		return commands.List{}, false
	}
	page, err := strconv.Atoi(parts[1])
	if err != nil || page < 1 || page > 1000 {
		return commands.List{}, false
	}
	return commands.List{MPC: c.MPC, Page: page, Here: parts[2] == "1"}, true
}

func stateText(p plivo.Participant) string {
	icons := strings.NewReplacer("unmuted", "🎙 unmuted", "muted", "🔇 muted", "on hold", "⏸ on hold",
		"coaching (agents only)", "🎧 coaching (agents only)", "heard by all", "📢 heard by all")
	return icons.Replace(commands.StateText(p))
}

func exitedText(p plivo.Participant) string {
	s := p.MemberID + " " + strings.ToLower(p.Role)
	if p.ExitTime != nil {
		s += ", left " + *p.ExitTime
	}
	if p.ExitCause != nil && *p.ExitCause != "" {
		s += " (" + *p.ExitCause + ")"
	}
	return s
}
