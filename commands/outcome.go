package commands

import (
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/mpcbot/mpcbot/plivo"
)

// Source says how a request reached mpcbot: the surface a change started
// from.
type Source string

// Sources of requests.
const (
	Typed   Source = "typed"  // a /mpc slash command
	Clicked Source = "button" // a button under a result, in a thread
	Panel   Source = "panel"  // a button of a roster panel in a channel or ephemeral message
	Home    Source = "home"   // a button in the app's Home tab
	Revert  Source = "timer"  // a timed change put back when its time is up
	CLI     Source = "cli"    // mpcbot exec or the demo console
)

// Outcome is everything that happened to one Change: plain data, rendered
// by pure functions (RenderText here, Block Kit in the bot package) and
// logged as the audit record.
type Outcome struct {
	// RequestID identifies the request in logs (a Slack envelope id, a timer id).
	RequestID string
	Requester Requester
	Change    Change
	Source    Source
	// Refusal is set when the change was not attempted because policy
	// forbids it; Results is then empty.
	Refusal *Refusal
	// Confirm is set when the change was not attempted because it targets
	// all members of a call larger than the confirmation threshold.
	Confirm *Confirmation
	// Err is set when the change could not be attempted for another reason
	// (e.g. the participant count needed for the confirmation check failed).
	Err error
	// Results holds one entry per Plivo call, in member order.
	Results []MemberResult
	// LiveMembers is the number of live participants counted for the
	// confirmation check of an `all` change; -1 when not counted.
	LiveMembers int
	// Warnings are things the user should know even on success.
	Warnings []string
	// Duplicate is set when another delivery of the same request runs it
	// (a second tap of the same button by the same person).
	Duplicate bool
	// Notes are neutral facts about the request (e.g. what a timer skipped).
	Notes []string
	// Timer is set when the change is timed and will be put back.
	Timer *TimerInfo
	// Reverts is set when this change puts back a timed change.
	Reverts *Timer
	// FollowUps are the next steps offered with the answer.
	FollowUps []FollowUp
	Started   time.Time
	Duration  time.Duration
}

// TimerInfo says when a timed change will be put back.
type TimerInfo struct {
	ID  string
	Due time.Time
	For time.Duration
}

// Confirmation asks the requester to confirm a change to all members.
type Confirmation struct {
	LiveMembers int
	Threshold   int
}

// MemberResult is the answer to one Update Participant call.
type MemberResult struct {
	Member plivo.Member
	// APIID is Plivo's api_id for the call (success or failure), if any.
	APIID string
	// Fields has one entry per action sent, in display order.
	Fields []FieldResult
	// Err is the call's error (a *plivo.Error), nil on success.
	Err error
}

// FieldResult is the result of one field of one call.
type FieldResult struct {
	Action Action
	OK     bool
	// Text is Plivo's own result string for the field on success, or the
	// explanation of the failure.
	Text string
}

// Status summarises the outcome.
func (o Outcome) Status() Status {
	switch {
	case o.Refusal != nil:
		return StatusRefused
	case o.Confirm != nil:
		return StatusConfirm
	case o.Duplicate:
		return StatusDuplicate
	case o.Err != nil:
		return StatusFailed
	case len(o.Results) == 0 && o.Reverts != nil:
		return StatusSkipped
	}
	ok, failed := 0, 0
	for _, r := range o.Results {
		if r.Err == nil {
			ok++
		} else {
			failed++
		}
	}
	switch {
	case failed == 0 && ok > 0:
		return StatusOK
	case ok == 0:
		return StatusFailed
	}
	return StatusPartial
}

// liveOrUnknown returns the counted live members, or -1.
func (o Outcome) liveOrUnknown() int {
	if o.LiveMembers > 0 {
		return o.LiveMembers
	}
	return -1
}

// Done returns the members whose call succeeded.
func (o Outcome) Done() []plivo.Member {
	var ms []plivo.Member
	for _, r := range o.Results {
		if r.Err == nil {
			ms = append(ms, r.Member)
		}
	}
	return ms
}

// Line returns the field result as one line of text: "✅ mute: <Plivo's text>".
func (f FieldResult) line() string {
	mark := "✅"
	if !f.OK {
		mark = "❌"
	}
	return fmt.Sprintf("%s %s: %s", mark, f.Action, f.Text)
}

// Headline returns a one-line summary of the outcome, e.g. "✅ hold all in
// test_mpc_1" or "❌ mute member 999 in test_mpc_1 failed".
func (o Outcome) Headline() string {
	if o.Reverts != nil {
		return o.revertHeadline()
	}
	switch o.Status() {
	case StatusOK:
		return "✅ " + o.Change.Describe()
	case StatusPartial:
		return "⚠️ " + o.Change.Describe() + ": partly failed"
	case StatusRefused:
		return "⛔ " + o.Change.Describe() + ": refused"
	case StatusConfirm:
		return "❓ " + o.Change.Describe() + ": needs confirmation"
	case StatusDuplicate:
		return "ℹ️ " + o.Change.Describe() + ": tapped twice"
	}
	return "❌ " + o.Change.Describe() + ": failed"
}

// ResultLines returns the per-field result lines, grouped by member when
// there are several, followed by the api_id of each call and what to do
// next for failures. It is the notification text of the thread reply.
func (o Outcome) ResultLines() []string {
	var lines []string
	switch {
	case o.Refusal != nil:
		return []string{"⛔ " + o.Refusal.Reason, o.Refusal.Fix}
	case o.Confirm != nil:
		return []string{o.ConfirmQuestion()}
	case o.Duplicate:
		return []string{DuplicateText}
	case o.Err != nil:
		return append(Explain(o.Err, o.Change.MPC).Lines(), o.Notes...)
	}
	many := len(o.Results) > 1
	for _, r := range o.Results {
		prefix := ""
		if many {
			lines = append(lines, "member "+string(r.Member)+":")
			prefix = "  "
		}
		for _, f := range r.Fields {
			lines = append(lines, prefix+f.line())
		}
		if r.Err != nil {
			ex := Explain(r.Err, o.Change.MPC)
			if ex.Next != "" {
				lines = append(lines, prefix+"→ "+ex.Next)
			}
		}
		if r.APIID != "" {
			lines = append(lines, prefix+"api_id: "+r.APIID)
		}
	}
	if o.Timer != nil {
		lines = append(lines, o.timerLine())
	}
	for _, w := range o.Warnings {
		lines = append(lines, "⚠️ "+w)
	}
	return append(lines, o.Notes...)
}

// DuplicateText answers the second tap of the same button.
const DuplicateText = "You tapped that twice: it runs once, and the result is on its way."

// ConfirmQuestion asks the user to confirm a change to all members.
func (o Outcome) ConfirmQuestion() string {
	if o.Confirm == nil {
		return ""
	}
	q := fmt.Sprintf("This will %s — all %d live participants of %s. Confirm?", o.Change.actionPhrase(), o.Confirm.LiveMembers, o.Change.MPC)
	if o.Change.Coaching() {
		q += " Plivo plays a beep on the call."
	}
	return q
}

// RenderText renders the outcome as plain text for a terminal: the
// headline, then the result lines.
func RenderText(o Outcome) string {
	var b strings.Builder
	b.WriteString(o.Headline())
	b.WriteByte('\n')
	for _, l := range o.ResultLines() {
		b.WriteString("  ")
		b.WriteString(l)
		b.WriteByte('\n')
	}
	return b.String()
}

// Summary returns the one-line audit summary of a change, for the audit
// channel: who, where, what, and the result per member.
func (o Outcome) Summary() string {
	var res []string
	for _, r := range o.Results {
		s := string(r.Member) + " "
		if r.Err == nil {
			s += "ok"
		} else {
			s += "failed (" + plivo.KindOf(r.Err).String() + ")"
		}
		res = append(res, s)
	}
	where := o.Requester.ChannelID
	if where == "" {
		where = "-"
	}
	line := fmt.Sprintf("%s %s by %s in %s via %s: %s", o.Status().mark(), o.Change.Describe(), o.Requester.UserID, where, o.Source, o.Status())
	if len(res) > 0 {
		line += " [" + strings.Join(res, ", ") + "]"
	}
	return line
}

// LogAttrs returns the structured audit record of the outcome: who, where,
// what, the result of each field of each call, api_ids and latency.
func (o Outcome) LogAttrs() []slog.Attr {
	attrs := []slog.Attr{
		slog.String("request_id", o.RequestID),
		slog.String("user_id", o.Requester.UserID),
		slog.String("user_name", o.Requester.UserName),
		slog.String("channel_id", o.Requester.ChannelID),
		slog.String("source", string(o.Source)),
		slog.String("actions", o.Change.ActionsText()),
		slog.String("mpc", o.Change.MPC.String()),
		slog.String("members", o.Change.MembersText()),
		slog.String("status", string(o.Status())),
		slog.Duration("latency", o.Duration),
	}
	if o.Refusal != nil {
		attrs = append(attrs, slog.String("refusal", o.Refusal.Code))
	}
	if o.Confirm != nil {
		attrs = append(attrs, slog.Int("live_members", o.Confirm.LiveMembers))
	}
	if o.Timer != nil {
		attrs = append(attrs, slog.String("timer_id", o.Timer.ID), slog.Time("timer_due", o.Timer.Due))
	}
	if o.Reverts != nil {
		attrs = append(attrs, slog.String("reverts_timer", o.Reverts.ID))
	}
	if o.Err != nil {
		attrs = append(attrs, slog.String("error", o.Err.Error()))
	}
	for _, r := range o.Results {
		var fields []any
		for _, f := range r.Fields {
			v := "ok"
			if !f.OK {
				v = "failed"
			}
			fields = append(fields, slog.String(f.Action.String(), v))
		}
		group := []any{slog.String("api_id", r.APIID), slog.Group("fields", fields...)}
		if r.Err != nil {
			group = append(group, slog.String("kind", plivo.KindOf(r.Err).String()), slog.String("error", r.Err.Error()))
		}
		attrs = append(attrs, slog.Group("member_"+string(r.Member), group...))
	}
	return attrs
}
