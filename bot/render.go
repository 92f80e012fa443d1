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

// message is a rendered Slack message: the notification text (what a phone's
// lock screen and screen readers read) and the Block Kit blocks.
//
// Anything that came from a user or from Plivo (call names, member ids,
// roles, result strings, problems that quote the command) is rendered in
// plain_text objects, never inside mpcbot's own mrkdwn: plain_text shows it
// verbatim, so `*`, `_`, `~`, backticks or "<!channel>" in a call name can
// neither format nor ping. mrkdwn carries only what mpcbot writes itself
// (mentions by user id, the usage text). The notification text escapes
// Slack's control characters.
type message struct {
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
	maxConfirmText     = 300
	// maxLine bounds one echoed line (a result string, a member id): a
	// misbehaving Plivo cannot push a reply over Slack's limits.
	maxLine = 500
	// maxText bounds a message's notification text.
	maxText = 3900
)

// Action ids. A suffix ":<n>" keeps them unique within a message; routing
// uses the part before the first ':'.
const (
	actionRun     = "mpc.run"     // a change from a result message: results in the same thread
	actionPanel   = "mpc.panel"   // a change from a roster panel: panel refreshed in place
	actionConfirm = "mpc.confirm" // confirm a change to all members
	actionCancel  = "mpc.cancel"  // cancel a pending confirmation
	actionList    = "mpc.list"    // show, page or refresh a roster
	actionCalls   = "mpc.calls"   // refresh the live calls
	actionTimer   = "mpc.timer"   // cancel a timer
	actionHome    = "mpc.home"    // navigate the Home tab
)

// Roster paging: how many live members and how many exited entries one
// page shows (two blocks per live member keep a page far below Block Kit's
// 50 blocks; exited entries are one line each).
const (
	rosterLivePerPage   = 10
	rosterExitedPerPage = 25
)

// escape makes text inert in mrkdwn and in a message's notification text:
// Slack's three control characters are entity-encoded, so "<!channel>"
// typed as an MPC name pings nobody.
func escape(s string) string { return mrkdwnEscaper.Replace(s) }

// mrkdwnEscaper is built once: building a Replacer costs more than most
// of the replacements it does (BenchmarkReplyRender).
var mrkdwnEscaper = strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;")

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

// bound bounds every line.
func bound(lines []string) []string {
	out := make([]string, len(lines))
	for i, l := range lines {
		out[i] = truncate(l, maxLine)
	}
	return out
}

// textOf is the notification text of lines: escaped and bounded.
func textOf(lines ...string) string {
	return truncate(escape(strings.Join(lines, "\n")), maxText)
}

// plainSections splits lines into plain_text section blocks of at most
// maxSectionText characters each, breaking only between lines.
func plainSections(lines []string) []slack.Block {
	var blocks []slack.Block
	var cur []string
	size := 0
	flush := func() {
		if len(cur) > 0 {
			blocks = append(blocks, slack.NewSectionBlock(plain(strings.Join(cur, "\n"), maxSectionText), nil, nil))
			cur, size = nil, 0
		}
	}
	for _, l := range lines {
		l = truncate(l, maxSectionText)
		n := utf8.RuneCountInString(l)
		if len(cur) > 0 && size+1+n > maxSectionText {
			flush()
		}
		cur = append(cur, l)
		size += n + 1
	}
	flush()
	return blocks
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

// renderHelp renders the help text.
func renderHelp() message {
	return message{Text: commands.HelpText, Blocks: []slack.Block{slack.NewSectionBlock(mrkdwn(commands.HelpText), nil, nil)}}
}

// renderUsageError renders a command that could not be understood, with
// the correct usage.
func renderUsageError(problem string) message {
	line := "❌ " + problem
	return message{
		Text: textOf(line) + "\n" + commands.Usage,
		Blocks: []slack.Block{
			slack.NewSectionBlock(plain(line, maxSectionText), nil, nil),
			slack.NewContextBlock("usage", mrkdwn(commands.Usage)),
		},
	}
}

// renderRefusal renders why a request was refused and what would change it.
func renderRefusal(r *commands.Refusal) message {
	line := "⛔ " + r.Reason
	return message{
		Text:   textOf(line, r.Fix),
		Blocks: plainSections([]string{line, r.Fix}),
	}
}

// renderNotice renders a short notice (overload, shutdown, double tap).
func renderNotice(text string) message {
	return message{Text: textOf(text), Blocks: plainSections([]string{text})}
}

// renderAnchor renders the channel message a thread of results hangs
// under: who asked for what.
func renderAnchor(r commands.Requester, c commands.Change, src commands.Source) message {
	verb := "asked"
	if src != commands.Typed {
		verb = "clicked"
	}
	who := fmt.Sprintf("<@%s> %s:", r.UserID, verb)
	return message{
		Text: who + " " + textOf(c.Describe()),
		Blocks: []slack.Block{
			slack.NewContextBlock("who", mrkdwn(who)),
			slack.NewSectionBlock(plain(c.Describe(), maxSectionText), nil, nil),
			slack.NewContextBlock("anchor", plain("/mpc "+c.Text()+" · results in the thread", maxSectionText)),
		},
	}
}

// renderResult renders an outcome: the headline, one line per field with
// Plivo's result and ✅/❌, api_ids, what to do next on failure, and the
// follow-up buttons. issued stamps the buttons.
func renderResult(o commands.Outcome, issued time.Time) message {
	head := o.Headline()
	lines := bound(o.ResultLines())
	blocks := plainSections(append([]string{head}, lines...))
	meta := fmt.Sprintf("<@%s> · %s · %s", o.Requester.UserID, o.Source, o.Duration.Round(time.Millisecond))
	blocks = append(blocks, slack.NewContextBlock("meta", mrkdwn(meta)))
	blocks = append(blocks, actionRows("next", followUpButtons(o.FollowUps, issued, actionRun))...)
	return message{Text: textOf(append([]string{head}, lines...)...), Blocks: blocks}
}

// renderResult renders an outcome with buttons issued now.
func (b *Bot) renderResult(o commands.Outcome) message { return renderResult(o, b.now()) }

// followUpButtons renders the next steps as buttons; changes run with
// action changeAction (results in the same thread, or on the same panel).
func followUpButtons(fs []commands.FollowUp, issued time.Time, changeAction string) []slack.BlockElement {
	var bs []slack.BlockElement
	for _, f := range fs {
		action := actionList
		switch f.Command.(type) {
		case commands.Change:
			action = changeAction
		case commands.CancelTimer:
			action = actionTimer
		}
		btn := button(fmt.Sprintf("%s:%d", action, len(bs)), f.Label, commands.EncodeButton(f.Command, issued))
		if f.Primary {
			btn = btn.WithStyle(slack.StylePrimary)
		}
		if f.Prompt != nil {
			btn = btn.WithConfirm(confirmDialog(f.Prompt))
		}
		bs = append(bs, btn)
	}
	return bs
}

// confirmDialog renders a prompt as Slack's confirm dialog (all plain_text,
// within its limits).
func confirmDialog(p *commands.Prompt) *slack.ConfirmationBlockObject {
	return slack.NewConfirmationBlockObject(plain(p.Title, 100), plain(p.Text, maxConfirmText),
		plain(p.Yes, 30), plain("Cancel", 30))
}

// renderConfirm renders the question asked before changing all members of
// a large call, with a Confirm button that shows the member count.
// threadTS is the thread the results will go to ("" = a new anchor); it
// rides in the Confirm button's action id.
func renderConfirm(o commands.Outcome, issued time.Time, threadTS string) message {
	q := "❓ " + o.ConfirmQuestion()
	c := o.Change
	c.Confirmed = true
	label := fmt.Sprintf("Confirm: %s %d", strings.ToLower(c.ActionsTitle()), o.Confirm.LiveMembers)
	confirm := button(actionConfirm+":"+threadTS, label, commands.EncodeButton(c, issued)).WithStyle(slack.StyleDanger)
	cancel := button(actionCancel, "Cancel", commands.EncodeButton(o.Change, issued))
	hint := fmt.Sprintf("Changes to `all` in calls with more than %d live participants are confirmed first; add `--yes` to skip.", o.Confirm.Threshold)
	if o.Confirm.Threshold == 0 {
		hint = "Changes to `all` are always confirmed first (MPC_CONFIRM_ALL_ABOVE=0); add `--yes` to skip."
	}
	return message{
		Text: textOf(q),
		Blocks: []slack.Block{
			slack.NewSectionBlock(plain(q, maxSectionText), nil, nil),
			slack.NewActionBlock("confirm", confirm, cancel),
			slack.NewContextBlock("hint", mrkdwn(hint)),
		},
	}
}

// Placement of a roster panel, carried in its buttons' action ids so a
// click can refresh the panel the way it was delivered.
const (
	placedEphemeral   = 0 // only the requester sees it; replaced through the click's response_url
	placedByBot       = 1 // the bot posted it in the channel; replaced with chat.update
	placedResponseURL = 2 // in the channel through the response_url (the bot can't post there); replaced through the click's response_url
)

// rosterView says how to render a roster: which page, how it is placed,
// what the viewer may do, and a note on top (the result of the last change
// made from the panel).
type rosterView struct {
	List      commands.List
	Placement int
	// ViewerIsSupervisor shows Coach buttons on a panel only its viewer sees.
	ViewerIsSupervisor bool
	Note               []string
	// NoteActions are offered with the note (the Cancel timer of a timed
	// change made from the panel).
	NoteActions []commands.FollowUp
	// Prompt applies the confirmation rule to a row's button.
	Prompt func(c commands.Change, live int) (commands.Change, *commands.Prompt)
	// TimedHold is the timed hold offered on rows of members not on hold
	// (0: none).
	TimedHold time.Duration
}

// renderRoster renders a roster panel: live members first, each with its
// state and buttons; exited entries folded into a compact list; paged so
// that every page stays within Block Kit's limits, with Prev/Next buttons.
func renderRoster(ro commands.Roster, v rosterView, issued time.Time) message {
	blocks, text := rosterBlocks(ro, v, issued, actionPanel, actionList)
	return message{Text: truncate(strings.Join(text, "\n"), maxText), Blocks: blocks}
}

// rosterBlocks renders a roster's blocks and notification lines; rows run
// changes with changeAction and navigate with navAction.
func rosterBlocks(ro commands.Roster, v rosterView, issued time.Time, changeAction, navAction string) ([]slack.Block, []string) {
	pages := rosterPages(len(ro.Live), len(ro.Exited))
	page := min(max(v.List.Page, 1), pages)
	name := ro.MPC.String()

	var blocks []slack.Block
	blocks = append(blocks, slack.NewHeaderBlock(plain("Participants of "+name, maxHeaderText)))
	summary := fmt.Sprintf("%d live · %d exited · as of %s UTC", len(ro.Live), len(ro.Exited), ro.Fetched.UTC().Format("15:04:05"))
	if pages > 1 {
		summary += fmt.Sprintf(" · page %d of %d", page, pages)
	}
	blocks = append(blocks, slack.NewContextBlock("summary", plain(summary, maxSectionText)))
	if len(v.Note) > 0 {
		blocks = append(blocks, plainSections(bound(v.Note))...)
	}
	if bs := followUpButtons(v.NoteActions, issued, changeAction); len(bs) > 0 {
		blocks = append(blocks, slack.NewActionBlock("note.next", bs...))
	}
	text := []string{escape(fmt.Sprintf("Participants of %s: %s", name, summary))}

	if len(ro.Live) == 0 {
		blocks = append(blocks, slack.NewSectionBlock(plain("No one is on this call right now.", maxSectionText), nil, nil))
	}
	lo, hi := pageRange(page, rosterLivePerPage, len(ro.Live))
	for i, p := range ro.Live[lo:hi] {
		line := fmt.Sprintf("%s · %s · %s", truncate(p.MemberID, 40), truncate(strings.ToLower(p.Role), 40), stateText(p))
		text = append(text, escape(line))
		blocks = append(blocks, slack.NewSectionBlock(plain(line, maxSectionText), nil, nil))
		if bs := memberButtons(ro.MPC, p, v, lo+i, issued, changeAction); len(bs) > 0 {
			blocks = append(blocks, slack.NewActionBlock(fmt.Sprintf("member.%d", lo+i), bs...))
		}
	}

	elo, ehi := pageRange(page, rosterExitedPerPage, len(ro.Exited))
	if len(ro.Exited) > 0 {
		blocks = append(blocks, slack.NewDividerBlock())
		var lines []string
		if ehi > elo {
			lines = append(lines, fmt.Sprintf("Exited (%d–%d of %d, earlier joins):", elo+1, ehi, len(ro.Exited)))
		} else {
			lines = append(lines, fmt.Sprintf("Exited: %d earlier entries (see page 1 and the following pages).", len(ro.Exited)))
		}
		for _, p := range ro.Exited[elo:ehi] {
			lines = append(lines, "• "+truncate(exitedText(p), 200))
		}
		blocks = append(blocks, plainSections(lines)...)
	}

	var nav []slack.BlockElement
	list := v.List
	navID := func(what string) string { return fmt.Sprintf("%s:%s:%d", navAction, what, v.Placement) }
	if page > 1 {
		list.Page = page - 1
		nav = append(nav, button(navID("prev"), "◀ Previous", commands.EncodeButton(list, issued)))
	}
	list.Page = page
	nav = append(nav, button(navID("refresh"), "Refresh", commands.EncodeButton(list, issued)))
	if page < pages {
		list.Page = page + 1
		nav = append(nav, button(navID("next"), "Next ▶", commands.EncodeButton(list, issued)))
	}
	blocks = append(blocks, slack.NewActionBlock("nav", nav...))
	return blocks, text
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

// memberButtons returns a live member's buttons: mute/unmute, hold/unhold,
// the timed hold, and coach/uncoach on supervisor rows for supervisors. A
// member id that is not a valid member id (a misbehaving Plivo) gets none.
func memberButtons(mpc plivo.MPC, p plivo.Participant, v rosterView, row int, issued time.Time, changeAction string) []slack.BlockElement {
	member, err := p.Member()
	if err != nil || member.IsAll() {
		return nil
	}
	toggle := func(on bool, set, unset commands.Action) commands.Action {
		if on {
			return unset
		}
		return set
	}
	onHold := p.Hold != nil && *p.Hold
	type choice struct {
		a     commands.Action
		for_  time.Duration
		label string
	}
	choices := []choice{
		{a: toggle(p.Mute != nil && *p.Mute, commands.Mute, commands.Unmute)},
		{a: toggle(onHold, commands.Hold, commands.Unhold)},
	}
	if !onHold && v.TimedHold > 0 {
		choices = append(choices, choice{a: commands.Hold, for_: v.TimedHold, label: "Hold " + commands.FormatDuration(v.TimedHold)})
	}
	if p.IsSupervisor() && (v.List.Here || v.ViewerIsSupervisor) {
		choices = append(choices, choice{a: toggle(p.CoachMode != nil && *p.CoachMode, commands.Coach, commands.Uncoach)})
	}
	// The action id carries the panel's page and placement so the click can
	// re-render the same view; the value carries the change.
	var bs []slack.BlockElement
	for i, ch := range choices {
		c := commands.Change{Actions: []commands.Action{ch.a}, MPC: mpc, Members: []plivo.Member{member}, For: ch.for_}
		var prompt *commands.Prompt
		if v.Prompt != nil {
			c, prompt = v.Prompt(c, -1)
		}
		label := ch.label
		if label == "" {
			label = ch.a.Title()
		}
		btn := button(fmt.Sprintf("%s:%d:%d:%d.%d", changeAction, v.List.Page, v.Placement, row, i), label, commands.EncodeButton(c, issued))
		if prompt != nil {
			btn = btn.WithConfirm(confirmDialog(prompt))
		}
		bs = append(bs, btn)
	}
	return bs
}

// panelView decodes the page and placement from a panel button's action
// id: "<action>:<page>:<placement>:<row>.<n>".
func panelView(actionID string, c commands.Change) (rosterView, bool) {
	parts := strings.Split(actionID, ":")
	if len(parts) != 4 {
		return rosterView{}, false
	}
	page, err := strconv.Atoi(parts[1])
	if err != nil || page < 1 || page > 1000 {
		return rosterView{}, false
	}
	placement, err := strconv.Atoi(parts[2])
	if err != nil || placement < placedEphemeral || placement > placedResponseURL {
		return rosterView{}, false
	}
	return rosterView{List: commands.List{MPC: c.MPC, Page: page, Here: placement != placedEphemeral}, Placement: placement}, true
}

// navPlacement decodes the placement from a roster navigation button's
// action id: "mpc.list:<what>:<placement>" (older buttons have none).
func navPlacement(actionID string, l commands.List) int {
	parts := strings.Split(actionID, ":")
	if len(parts) == 3 {
		if p, err := strconv.Atoi(parts[2]); err == nil && p >= placedEphemeral && p <= placedResponseURL {
			return p
		}
	}
	if l.Here {
		return placedByBot
	}
	return placedEphemeral
}

func stateText(p plivo.Participant) string {
	return stateIcons.Replace(commands.StateText(p))
}

// stateIcons puts an icon before each state word of a roster row.
var stateIcons = strings.NewReplacer("unmuted", "🎙 unmuted", "muted", "🔇 muted", "on hold", "⏸ on hold",
	"coaching (agents only)", "🎧 coaching (agents only)", "heard by all", "📢 heard by all")

func exitedText(p plivo.Participant) string {
	s := truncate(p.MemberID, 40) + " " + truncate(strings.ToLower(p.Role), 40)
	if p.ExitTime != nil {
		s += ", left " + truncate(*p.ExitTime, 40)
	}
	if p.ExitCause != nil && *p.ExitCause != "" {
		s += " (" + truncate(*p.ExitCause, 80) + ")"
	}
	return s
}
