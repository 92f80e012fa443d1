// Package commands owns what a /mpc request means, independent of Slack: the
// grammar of typed text and button values, the request model (Change, List,
// Help), validation, the authorization policy, executing a change through
// a Plivo interface, and the Outcome of a change with its plain-text
// rendering. The bot package turns Slack payloads into calls of this
// package and Outcomes into Block Kit; the demo console and `mpcbot exec`
// use the same path with a text renderer.
package commands

import (
	"strings"

	"github.com/mpcbot/mpcbot/plivo"
)

// Action is one state change a user can ask for: a participant field and the
// value to set it to (mute = mute:true, unhold = hold:false, …).
type Action struct {
	Field plivo.Field
	Value bool
}

// The six actions of the grammar.
var (
	Mute    = Action{plivo.FieldMute, true}
	Unmute  = Action{plivo.FieldMute, false}
	Hold    = Action{plivo.FieldHold, true}
	Unhold  = Action{plivo.FieldHold, false}
	Coach   = Action{plivo.FieldCoachMode, true}
	Uncoach = Action{plivo.FieldCoachMode, false}
)

// Actions lists every action in display order.
var Actions = []Action{Mute, Unmute, Hold, Unhold, Coach, Uncoach}

var actionNames = map[Action]string{
	Mute: "mute", Unmute: "unmute", Hold: "hold", Unhold: "unhold", Coach: "coach", Uncoach: "uncoach",
}

// parseAction returns the action named s (case-insensitive).
func parseAction(s string) (Action, bool) {
	s = strings.ToLower(s)
	for a, name := range actionNames {
		if name == s {
			return a, true
		}
	}
	return Action{}, false
}

// String returns the action's name in the grammar, e.g. "unhold".
func (a Action) String() string {
	if name, ok := actionNames[a]; ok {
		return name
	}
	return "invalid"
}

// Inverse returns the action that undoes a (hold ↔ unhold, …).
func (a Action) Inverse() Action { return Action{a.Field, !a.Value} }

// IsCoaching reports whether the action changes coach mode, which only
// supervisors may do and which Plivo refuses for all members.
func (a Action) IsCoaching() bool { return a.Field == plivo.FieldCoachMode }

// Title returns the action as a button label ("Unhold").
func (a Action) Title() string {
	s := a.String()
	return strings.ToUpper(s[:1]) + s[1:]
}

// actionIndex orders actions for display: mute, hold, coach_mode.
func actionIndex(a Action) int {
	for i, f := range plivo.Fields {
		if f == a.Field {
			return i
		}
	}
	return len(plivo.Fields)
}
