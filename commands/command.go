package commands

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/mpcbot/mpcbot/plivo"
)

// Command is a parsed /mpc request: Help, Calls, List, Change or
// CancelTimer.
type Command interface {
	// Text returns the canonical command text (without "/mpc"), which
	// parses back to an equal command.
	Text() string
	isCommand()
}

// Help asks for the usage text.
type Help struct{}

// Calls asks for the live calls of the account (`/mpc` alone or
// `/mpc calls`).
type Calls struct {
	// Here posts the calls to the channel instead of only to the requester.
	Here bool
}

// CancelTimer asks to cancel the pending revert of a timed change (the
// "Cancel timer" button, or `/mpc cancel-timer <id>` typed).
type CancelTimer struct {
	// ID is the timer's id: 1 to maxTimerIDLength lowercase letters and
	// digits.
	ID string
}

// Change asks for one or more participant state changes in one MPC, applied
// to all members or to each listed member (one Plivo call per member).
type Change struct {
	// Actions are unique, non-contradictory and in display order.
	Actions []Action
	// MPC is the call to change.
	MPC plivo.MPC
	// Members is either [plivo.AllMembers] or one or more member ids.
	Members []plivo.Member
	// Confirmed is set by --yes or by the Confirm button: skip the
	// confirmation asked for `all` in large calls.
	Confirmed bool
	// For is how long until the change is undone by itself (`for 2m`): a
	// whole number of seconds, at least MinTimed; 0 means not timed.
	For time.Duration
}

// List asks for the roster of an MPC.
type List struct {
	MPC plivo.MPC
	// Here posts the roster to the channel instead of only to the requester.
	Here bool
	// Page is the 1-based page of the roster to show.
	Page int
}

func (Help) isCommand()        {}
func (Calls) isCommand()       {}
func (CancelTimer) isCommand() {}
func (Change) isCommand()      {}
func (List) isCommand()        {}

// Text implements Command.
func (Help) Text() string { return "help" }

// Text implements Command.
func (c Calls) Text() string {
	if c.Here {
		return "calls here"
	}
	return "calls"
}

// Text implements Command.
func (c CancelTimer) Text() string { return "cancel-timer " + c.ID }

// Text implements Command.
func (c Change) Text() string {
	var b strings.Builder
	b.WriteString(c.ActionsText())
	b.WriteByte(' ')
	b.WriteString(quoteMPC(c.MPC))
	b.WriteByte(' ')
	b.WriteString(c.MembersText())
	if c.For > 0 {
		b.WriteString(" for ")
		b.WriteString(FormatDuration(c.For))
	}
	if c.Confirmed {
		b.WriteString(" --yes")
	}
	return b.String()
}

// Text implements Command.
func (l List) Text() string {
	s := "list " + quoteMPC(l.MPC)
	if l.Here {
		s += " here"
	}
	if l.Page > 1 {
		s += fmt.Sprintf(" --page %d", l.Page)
	}
	return s
}

// ActionsText returns the actions joined by commas ("mute,hold").
func (c Change) ActionsText() string { return c.joinActions(Action.String, ",") }

// actionPhrase returns the actions for a sentence: "mute + hold".
func (c Change) actionPhrase() string { return c.joinActions(Action.String, " + ") }

// ActionsTitle returns the actions as a label: "Unmute + Unhold".
func (c Change) ActionsTitle() string { return c.joinActions(Action.Title, " + ") }

func (c Change) joinActions(name func(Action) string, sep string) string {
	names := make([]string, len(c.Actions))
	for i, a := range c.Actions {
		names[i] = name(a)
	}
	return strings.Join(names, sep)
}

// MembersText returns the members joined by commas ("all", "101,102").
func (c Change) MembersText() string {
	ids := make([]string, len(c.Members))
	for i, m := range c.Members {
		ids[i] = string(m)
	}
	return strings.Join(ids, ",")
}

// All reports whether the change targets every member.
func (c Change) All() bool { return len(c.Members) == 1 && c.Members[0].IsAll() }

// Coaching reports whether any action changes coach mode.
func (c Change) Coaching() bool {
	for _, a := range c.Actions {
		if a.IsCoaching() {
			return true
		}
	}
	return false
}

// Update returns the Plivo request body for the change.
func (c Change) Update() plivo.ParticipantUpdate {
	var u plivo.ParticipantUpdate
	for _, a := range c.Actions {
		u = u.Set(a.Field, a.Value)
	}
	return u
}

// Inverse returns the change that undoes c, for the same MPC and members;
// it is neither timed nor confirmed.
func (c Change) Inverse() Change {
	inv := Change{MPC: c.MPC, Members: c.Members}
	for _, a := range c.Actions {
		inv.Actions = append(inv.Actions, a.Inverse())
	}
	return inv
}

// WithMembers returns a copy of c for other members, neither timed nor
// confirmed.
func (c Change) WithMembers(members ...plivo.Member) Change {
	c.Members = members
	c.Confirmed = false
	c.For = 0
	return c
}

// Timed reports whether the change is undone by itself after For.
func (c Change) Timed() bool { return c.For > 0 }

// Describe returns a short human description ("mute + hold all
// participants in test_mpc_1", "hold member 1002 in test_mpc_1 for 2m").
func (c Change) Describe() string {
	who := "member " + c.MembersText()
	if c.All() {
		who = "all participants"
	} else if len(c.Members) > 1 {
		who = "members " + strings.Join(strings.Split(c.MembersText(), ","), ", ")
	}
	s := fmt.Sprintf("%s %s in %s", strings.ReplaceAll(c.ActionsText(), ",", " + "), who, c.MPC)
	if c.Timed() {
		s += " for " + FormatDuration(c.For)
	}
	return s
}

// sortActions orders actions for display and removes duplicates.
func sortActions(as []Action) []Action {
	seen := map[Action]bool{}
	var out []Action
	for _, a := range as {
		if !seen[a] {
			seen[a] = true
			out = append(out, a)
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return actionIndex(out[i]) < actionIndex(out[j]) })
	return out
}

// quoteMPC returns the MPC as typed in the grammar, quoting names that
// contain spaces or would otherwise not parse back as one token.
func quoteMPC(m plivo.MPC) string {
	s := m.String()
	if m.UUID() != "" {
		return s
	}
	if needsQuotes(s) {
		return `"` + s + `"`
	}
	return s
}

func needsQuotes(s string) bool {
	if strings.ContainsAny(s, " ,+\"") || strings.HasPrefix(strings.ToLower(s), "uuid:") {
		return true
	}
	if r := []rune(s); len(r) > 0 && (isOpenQuote(r[0]) || r[0] == '-' || isDash(r[0])) {
		return true
	}
	return false
}
