package commands

import (
	"strings"

	"github.com/mpcbot/mpcbot/plivo"
)

// FollowUp is a next step offered with an answer: a button in Slack, a
// command to type in a terminal. Its Command goes through the same grammar
// and the same path as typed text when it runs.
type FollowUp struct {
	Label   string
	Command Command
	// Prompt, when set, is asked before the follow-up runs.
	Prompt *Prompt
	// Primary marks the step most users want next.
	Primary bool
}

// FollowUps returns the steps offered after a change: undo what was done
// (the inverse of every action, and of each one when there are several;
// "Undo now" for a timed change), retry what failed for a reason that may
// pass (never what Plivo refused), cancel a timer, and the roster.
func (s *Service) FollowUps(o Outcome) []FollowUp {
	c := o.Change
	var fs []FollowUp
	change := func(label string, ch Change, primary bool) {
		ch, prompt := s.rule().ButtonPrompt(ch, o.liveOrUnknown())
		fs = append(fs, FollowUp{Label: label, Command: ch, Prompt: prompt, Primary: primary})
	}
	var done, retry []plivo.Member
	for _, r := range o.Results {
		switch {
		case r.Err == nil:
			done = append(done, r.Member)
		case Explain(r.Err, c.MPC).Retry:
			retry = append(retry, r.Member)
		}
	}
	if len(done) > 0 {
		inv := c.Inverse().WithMembers(done...)
		label := inv.Title()
		if o.Timer != nil {
			label = "Undo now: " + strings.ToLower(label)
		}
		change(label, inv, true)
		if len(c.Actions) > 1 {
			for _, a := range c.Actions {
				single := Change{Actions: []Action{a.Inverse()}, MPC: c.MPC, Members: done}
				change(single.Title(), single, false)
			}
		}
	}
	if o.Timer != nil {
		fs = append(fs, FollowUp{Label: "Cancel timer", Command: CancelTimer{ID: o.Timer.ID}})
	}
	if o.Err != nil && Explain(o.Err, c.MPC).Retry {
		retry = c.Members
	}
	if len(retry) > 0 {
		again := c.WithMembers(retry...)
		again.For = c.For
		change("Retry", again, false)
	}
	fs = append(fs, FollowUp{Label: "Show participants", Command: List{MPC: c.MPC, Page: 1}})
	return fs
}

// Title returns a short label for the change: "Unhold all", "Mute 101".
func (c Change) Title() string {
	t := c.ActionsTitle()
	if c.All() {
		return t + " all"
	}
	return t + " " + c.MembersText()
}
