package commands

import (
	"fmt"
)

// confirmRule is the one rule for asking before a change runs: a change to
// all members of a call with more live members than AllAbove (0: any call)
// is confirmed first, typed (a question with a Confirm button) or clicked
// (Slack's confirm dialog on the button).
type confirmRule struct {
	AllAbove int
}

// Ask reports whether c must be confirmed before it runs in a call with
// live members; live < 0 means the count is not known.
func (r confirmRule) ask(c Change, live int) bool {
	if !c.All() || c.Confirmed {
		return false
	}
	return r.AllAbove == 0 || live < 0 || live > r.AllAbove
}

// Prompt is a question asked before a button runs (Slack's confirm
// dialog): title, text, and the label of the button that goes ahead.
type Prompt struct {
	Title string
	Text  string
	Yes   string
}

// ButtonPrompt returns what a button that runs c must carry: the change
// (marked Confirmed when the dialog is the confirmation) and the dialog to
// show first, nil when none. live is the call's live member count when
// known (< 0 otherwise). Coach changes always warn that Plivo plays a beep.
func (r confirmRule) ButtonPrompt(c Change, live int) (Change, *Prompt) {
	var p *Prompt
	if r.ask(c, live) {
		c.Confirmed = true
		who := "every participant"
		if live > 0 {
			who = fmt.Sprintf("all %d live participants", live)
		}
		p = &Prompt{Title: "Change everyone?", Yes: "Yes, " + c.ActionsText(),
			Text: fmt.Sprintf("This will %s %s of %s.", c.actionPhrase(), who, c.MPC)}
	}
	if c.Coaching() {
		p = &Prompt{Title: "Coach mode", Yes: c.actionPhrase(),
			Text: "Plivo plays a beep on the call when coach mode changes."}
	}
	return c, p
}
