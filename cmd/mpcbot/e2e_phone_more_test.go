package main

import (
	"strings"
	"testing"

	"github.com/mpcbot/mpcbot/bot/slacktest"
	"github.com/mpcbot/mpcbot/plivo/plivotest"
)

// The Home tab is a personal surface, not a channel: a channel allowlist
// (MPC_CHANNELS) does not hide the live calls from an authorized user,
// and changes from it still work; roles still apply.
func TestPhoneHomeWithChannelAllowlist(t *testing.T) {
	t.Parallel()
	h := startBot(t, withSampleCalls(), withEnv("MPC_CHANNELS", channelID))
	_, v := h.openHome(supervisorID)
	if text := v.VisibleText(); !strings.Contains(text, "Live calls (") || strings.Contains(text, "can't be used") {
		t.Fatalf("Home tab with MPC_CHANNELS set:\n%s", text)
	}
	_, v = h.openHome(strangerID)
	if !strings.Contains(v.VisibleText(), "not allowed") {
		t.Fatalf("a stranger's Home tab:\n%s", v.VisibleText())
	}
	// The allowlist still applies to channels.
	const other = "C0OTHER"
	h.slack.AddChannel(other, "other", slacktest.ChannelMembers(supervisorID))
	id, _ := h.slash(supervisorID, other, "calls")
	if m := h.responseFor(id); !strings.Contains(m.Text, "can't be used in this channel") {
		t.Fatalf("/mpc calls outside the allowlist: %q", m.Text)
	}
}

// A timed hold tapped on a roster panel can be cancelled from the panel:
// the replaced panel carries Cancel timer, and tapping it keeps the hold.
func TestPhonePanelTimedHoldCanBeCancelled(t *testing.T) {
	t.Parallel()
	h := startBot(t, withEnv("MPC_TIMED_DEFAULT", "1m"))
	customer := h.member("customer")
	id, _ := h.slash(supervisorID, channelID, "list test_mpc_1")
	panel := h.responseFor(id)
	cid := h.clickWhere(supervisorID, panel, "Hold 1m", "|hold test_mpc_1 "+customer+" for 1m")
	replaced := h.waitMessage(func(m slacktest.Message) bool {
		return m.Method == "response_url" && m.EnvelopeID == cid && m.ReplaceOriginal
	}, "the panel after Hold 1m")
	if !strings.Contains(replaced.VisibleText(), "[Cancel timer]") {
		t.Fatalf("the panel after a timed hold has no Cancel timer:\n%s", replaced.VisibleText())
	}
	cancel := h.click(supervisorID, replaced, "Cancel timer")
	if rec := h.auditFor(cancel); rec["status"] != "cancelled" {
		t.Fatalf("cancel from the panel: audit %v", rec)
	}
	if st, _ := h.plivo.Participant(plivotest.SampleMPCName, customer); !st.Hold {
		t.Fatal("the hold was undone by cancelling its timer")
	}
}
