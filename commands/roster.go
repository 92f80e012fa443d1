package commands

import (
	"fmt"
	"strings"

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
