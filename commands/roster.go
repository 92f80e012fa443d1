package commands

import (
	"fmt"
	"strings"
	"time"

	"github.com/mpcbot/mpcbot/plivo"
)

// StateText describes a live participant's state in words: "muted · on
// hold · coaching (agents only)".
func StateText(p plivo.Participant) string {
	var s []string
	if p.Mute != nil && *p.Mute {
		s = append(s, "muted")
	} else {
		s = append(s, "unmuted")
	}
	if p.Hold != nil && *p.Hold {
		s = append(s, "on hold")
	}
	if p.IsSupervisor() {
		if p.CoachMode != nil && *p.CoachMode {
			s = append(s, "coaching (agents only)")
		} else {
			s = append(s, "heard by all")
		}
	}
	return strings.Join(s, " · ")
}

// RenderRosterText renders a roster as plain text for a terminal: every
// live member with role and state, then a count of exited entries.
func RenderRosterText(ro Roster) string {
	var b strings.Builder
	fmt.Fprintf(&b, "Participants of %s: %d live, %d exited\n", ro.MPC, len(ro.Live), len(ro.Exited))
	if len(ro.Live) == 0 {
		b.WriteString("  No one is on this call right now.\n")
	}
	for _, p := range ro.Live {
		fmt.Fprintf(&b, "  %-12s %-10s %s\n", p.MemberID, strings.ToLower(p.Role), StateText(p))
	}
	for _, p := range ro.Exited {
		left := ""
		if p.ExitTime != nil {
			left = " left " + *p.ExitTime
		}
		fmt.Fprintf(&b, "  %-12s %-10s exited%s\n", p.MemberID, strings.ToLower(p.Role), left)
	}
	return b.String()
}

// RenderCallsText renders the live calls as plain text for a terminal.
func RenderCallsText(l CallList, now time.Time) string {
	var b strings.Builder
	fmt.Fprintf(&b, "Live calls (%d):\n", len(l.Calls))
	if len(l.Calls) == 0 {
		b.WriteString("  No live calls right now.\n")
	}
	for _, c := range l.Calls {
		short := c.UUID
		if len(short) > 8 {
			short = short[:8]
		}
		state := "waiting to start"
		if c.Status == "active" {
			state = "running"
			switch d := now.Sub(c.Since); {
			case c.Since.IsZero():
			case d < time.Minute:
				state = "just started"
			default:
				state += " " + FormatDuration(d.Truncate(time.Minute))
			}
		}
		fmt.Fprintf(&b, "  %-24s %s  %s\n", c.Name, short, state)
	}
	if l.Truncated {
		b.WriteString("  (more live calls than mpcbot lists; /mpc list <name> shows any of them)\n")
	}
	b.WriteString("/mpc list <name> shows who is on a call; /mpc help shows every command.\n")
	return b.String()
}
