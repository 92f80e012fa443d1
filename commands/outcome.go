package commands

import (
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"strings"
	"time"

	"github.com/mpcbot/mpcbot/plivo"
)

// Source says how a request reached mpcbot.
type Source string

// Sources of requests.
const (
	Typed   Source = "typed"  // a /mpc slash command
	Clicked Source = "button" // a button in a message
	CLI     Source = "cli"    // mpcbot exec or the demo console
)

// Outcome is everything that happened to one Change: plain data, rendered
// by pure functions (RenderText here, Block Kit in the bot package) and
// logged as the audit record.
type Outcome struct {
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
	// confirmation check of an `all` change; 0 when not counted.
	LiveMembers int
	// Warnings are things the user should know even on success.
	Warnings []string
	Started  time.Time
	Duration time.Duration
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

// Status values of an Outcome, used for logs, metrics and rendering.
const (
	StatusOK        = "ok"
	StatusPartial   = "partial"
	StatusFailed    = "failed"
	StatusRefused   = "refused"
	StatusConfirm   = "needs_confirmation"
	StatusCancelled = "cancelled"
)

// Status summarises the outcome: ok, partial, failed, refused or
// needs_confirmation.
func (o Outcome) Status() string {
	switch {
	case o.Refusal != nil:
		return StatusRefused
	case o.Confirm != nil:
		return StatusConfirm
	case o.Err != nil:
		return StatusFailed
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

// Explanation is what a user is told about an error: what happened, the
// details Plivo gave, and what to do next.
type Explanation struct {
	Summary string
	Detail  string
	Next    string
}

// Explain maps an error to user-facing text by its kind. It never includes
// raw Go error strings, so nothing internal (or secret) reaches a user.
func Explain(err error, c Change) Explanation {
	var pe *plivo.Error
	if !errors.As(err, &pe) {
		if errors.Is(err, errCountFailed) {
			return Explanation{Summary: "couldn't count the participants to decide whether to ask for confirmation",
				Next: "Try again, or add `--yes` to skip the check."}
		}
		return Explanation{Summary: "internal error", Next: "Try again; if it persists, tell the mpcbot admins (the log has details)."}
	}
	detail := pe.Message
	if pe.Status != 0 {
		detail = fmt.Sprintf("%s (HTTP %d %s)", pe.Message, pe.Status, http.StatusText(pe.Status))
	}
	if pe.Attempts > 1 {
		detail += fmt.Sprintf(", after %d attempts", pe.Attempts)
	}
	wait := retryIn(pe.RetryAfter)
	switch pe.Kind {
	case plivo.Busy:
		return Explanation{Summary: fmt.Sprintf("busy, try again in %d s", wait),
			Detail: "mpcbot's Plivo rate limit is fully used right now; nothing was sent to Plivo",
			Next:   fmt.Sprintf("Try again in %d s.", wait)}
	case plivo.Invalid:
		return Explanation{Summary: "Plivo rejected the request", Detail: detail,
			Next: "Check the command (`/mpc help`)."}
	case plivo.NotFound:
		return Explanation{Summary: "not found", Detail: detail,
			Next: fmt.Sprintf("Check the MPC name (names only match live calls; use `uuid:` for others) and the member id: `/mpc list %s` shows who is on the call.", quoteMPC(c.MPC))}
	case plivo.Unauthorized:
		return Explanation{Summary: "Plivo refused mpcbot's credentials", Detail: detail,
			Next: "An admin must check PLIVO_AUTH_ID and PLIVO_AUTH_TOKEN."}
	case plivo.RateLimited:
		next := "Try again in a few seconds."
		if pe.RetryAfter > 0 {
			next = fmt.Sprintf("Try again in %d s.", wait)
		}
		return Explanation{Summary: "Plivo is rate-limiting this account", Detail: detail, Next: next}
	case plivo.Unavailable:
		return Explanation{Summary: "Plivo did not answer in time or had an error", Detail: detail,
			Next: "The change may or may not have been applied; retrying is safe (`/mpc list` shows the state)."}
	case plivo.Canceled:
		return Explanation{Summary: "stopped before Plivo answered (mpcbot is shutting down or the request timed out)", Detail: detail,
			Next: "The change may or may not have been applied; check with `/mpc list` and retry."}
	}
	return Explanation{Summary: "unexpected answer from Plivo", Detail: detail,
		Next: "Try again; if it persists, tell the mpcbot admins."}
}

func retryIn(d time.Duration) int {
	s := int(math.Ceil(d.Seconds()))
	if s < 1 {
		s = 1
	}
	return s
}

// Line returns the field result as one line of text: "✅ mute: <Plivo's text>".
func (f FieldResult) Line() string {
	mark := "✅"
	if !f.OK {
		mark = "❌"
	}
	return fmt.Sprintf("%s %s: %s", mark, f.Action, f.Text)
}

// Headline returns a one-line summary of the outcome, e.g. "✅ hold all in
// test_mpc_1" or "❌ mute member 999 in test_mpc_1 failed".
func (o Outcome) Headline() string {
	switch o.Status() {
	case StatusOK:
		return "✅ " + o.Change.Describe()
	case StatusPartial:
		return "⚠️ " + o.Change.Describe() + ": partly failed"
	case StatusRefused:
		return "⛔ " + o.Change.Describe() + ": refused"
	case StatusConfirm:
		return "❓ " + o.Change.Describe() + ": needs confirmation"
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
	case o.Err != nil:
		ex := Explain(o.Err, o.Change)
		return appendExplanation(lines, "❌ ", ex)
	}
	many := len(o.Results) > 1
	for _, r := range o.Results {
		prefix := ""
		if many {
			lines = append(lines, "member "+string(r.Member)+":")
			prefix = "  "
		}
		for _, f := range r.Fields {
			lines = append(lines, prefix+f.Line())
		}
		if r.Err != nil {
			ex := Explain(r.Err, o.Change)
			if ex.Next != "" {
				lines = append(lines, prefix+"→ "+ex.Next)
			}
		}
		if r.APIID != "" {
			lines = append(lines, prefix+"api_id: "+r.APIID)
		}
	}
	for _, w := range o.Warnings {
		lines = append(lines, "⚠️ "+w)
	}
	return lines
}

func appendExplanation(lines []string, mark string, ex Explanation) []string {
	l := mark + ex.Summary
	if ex.Detail != "" {
		l += ": " + ex.Detail
	}
	lines = append(lines, l)
	if ex.Next != "" {
		lines = append(lines, "→ "+ex.Next)
	}
	return lines
}

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

func (c Change) actionPhrase() string {
	parts := make([]string, len(c.Actions))
	for i, a := range c.Actions {
		parts[i] = a.String()
	}
	return strings.Join(parts, " + ")
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
	line := fmt.Sprintf("%s %s by %s in %s via %s: %s", statusMark(o.Status()), o.Change.Describe(), o.Requester.UserID, where, o.Source, o.Status())
	if len(res) > 0 {
		line += " [" + strings.Join(res, ", ") + "]"
	}
	return line
}

func statusMark(status string) string {
	switch status {
	case StatusOK:
		return "✅"
	case StatusPartial:
		return "⚠️"
	case StatusRefused:
		return "⛔"
	case StatusConfirm:
		return "❓"
	}
	return "❌"
}

// LogAttrs returns the structured audit record of the outcome: who, where,
// what, the result of each field of each call, api_ids and latency.
func (o Outcome) LogAttrs() []slog.Attr {
	attrs := []slog.Attr{
		slog.String("user_id", o.Requester.UserID),
		slog.String("user_name", o.Requester.UserName),
		slog.String("channel_id", o.Requester.ChannelID),
		slog.String("source", string(o.Source)),
		slog.String("actions", o.Change.ActionsText()),
		slog.String("mpc", o.Change.MPC.String()),
		slog.String("members", o.Change.MembersText()),
		slog.String("status", o.Status()),
		slog.Duration("latency", o.Duration),
	}
	if o.Refusal != nil {
		attrs = append(attrs, slog.String("refusal", o.Refusal.Code))
	}
	if o.Confirm != nil {
		attrs = append(attrs, slog.Int("live_members", o.Confirm.LiveMembers))
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
