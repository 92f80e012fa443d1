package main

import (
	"fmt"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/mpcbot/mpcbot/bot/slacktest"
	"github.com/mpcbot/mpcbot/plivo/plivotest"
)

// A button on a result goes through the same path as typed text and its
// results land in the same thread.
func TestButtonUndoInSameThread(t *testing.T) {
	t.Parallel()
	h := startBot(t)
	since := time.Now()
	h.slash(supervisorID, channelID, "hold test_mpc_1 all")
	anchor, reply := h.anchorAndReply(since, channelID, "hold all participants")
	h.click(supervisorID, reply, "Unhold all")
	undo := h.waitMessage(func(m slacktest.Message) bool {
		return m.Method == "chat.postMessage" && m.ThreadTS == anchor.TS && strings.Contains(m.Text, "✅ unhold all participants")
	}, "undo result in the thread")
	if !strings.Contains(undo.Text, "✅ unhold: MPC: test_mpc_1 hold/unhold member(s) succeeded") {
		t.Fatalf("undo reply:\n%s", undo.Text)
	}
	for _, p := range h.plivo.Participants(plivotest.SampleMPCName) {
		if p.Hold {
			t.Errorf("member %s still on hold after Unhold all", p.MemberID)
		}
	}
	// The click is audited as a click, by the clicking user.
	ups := h.updateRequests(0)
	if len(ups) != 2 {
		t.Fatalf("%d updates, want 2 (hold, unhold)", len(ups))
	}
}

// /mpc list shows the roster (ephemeral); a click on a row changes that
// member and the panel is replaced in place with the state read back.
func TestRosterPanelEphemeral(t *testing.T) {
	t.Parallel()
	h := startBot(t)
	customer := h.member("customer")
	id, _ := h.slash(supervisorID, channelID, "list test_mpc_1")
	panel := h.responseFor(id)
	if !panel.Ephemeral || panel.User != supervisorID {
		t.Fatalf("panel is not ephemeral to the requester: %+v", panel)
	}
	text := panel.VisibleText()
	for _, want := range []string{"Participants of test_mpc_1", "3 live", customer + " · customer · 🎙 unmuted"} {
		if !strings.Contains(text, want) {
			t.Fatalf("panel lacks %q:\n%s", want, text)
		}
	}
	// The sample supervisor joined in coach mode (Plivo's default): the
	// supervisor viewer gets Uncoach on that row, and nobody else's row
	// has a coach button.
	buttonInRow(t, panel, h.member("supervisor"), "Uncoach")
	if strings.Count(text, "coach]") != 1 {
		t.Fatalf("coach buttons on rows other than the supervisor's:\n%s", text)
	}
	// Click "Mute" on the customer's row (the first Mute button: rows are in roster order).
	row := buttonInRow(t, panel, customer, "Mute")
	cid, err := h.slack.ClickButton(supervisorID, panel.Channel, panel.TS, row)
	if err != nil {
		t.Fatal(err)
	}
	h.slack.WaitAck(h.ctx(), cid)
	replaced := h.waitMessage(func(m slacktest.Message) bool {
		return m.Method == "response_url" && m.EnvelopeID == cid && m.ReplaceOriginal
	}, "panel replaced in place")
	if !strings.Contains(replaced.VisibleText(), customer+" · customer · 🔇 muted") {
		t.Fatalf("replaced panel does not show the customer muted:\n%s", replaced.VisibleText())
	}
	if !strings.Contains(replaced.VisibleText(), "✅ mute: MPC: test_mpc_1 mute/unmute member(s) succeeded") {
		t.Fatalf("replaced panel does not show the per-field result:\n%s", replaced.VisibleText())
	}
	if st, _ := h.plivo.Participant(plivotest.SampleMPCName, customer); !st.Mute {
		t.Fatal("customer not muted in Plivo")
	}
	// Exactly one ephemeral panel is shown: replaced, not posted again.
	var panels int
	for _, m := range h.slack.Ephemerals(supervisorID) {
		if strings.Contains(m.Text, "Participants of test_mpc_1") {
			panels++
		}
	}
	if panels != 1 {
		t.Fatalf("%d roster panels shown, want 1 (updated in place)", panels)
	}
}

// buttonInRow returns the action id of the button with label in the
// actions block that follows the member's row.
func buttonInRow(t *testing.T, m slacktest.Message, member, label string) string {
	t.Helper()
	rows := rosterRows(m)
	for i, id := range rows {
		if id == member {
			for _, b := range m.Buttons() {
				// Block ids of a replaced panel carry a stamp: member.0~….
				row, _, _ := strings.Cut(b.BlockID, "~")
				if row == fmt.Sprintf("member.%d", i) && b.Text == label {
					return b.ActionID
				}
			}
		}
	}
	t.Fatalf("no %q button for member %s in %q", label, member, m.VisibleText())
	return ""
}

// rosterRow matches a member's line of a panel: "101 · customer · …".
var rosterRow = regexp.MustCompile(`^([0-9]+) · [a-z-]+ · `)

// rosterRows returns the member ids of the panel's rows, in order.
func rosterRows(m slacktest.Message) []string {
	var ids []string
	for _, line := range strings.Split(m.VisibleText(), "\n") {
		if row := rosterRow.FindStringSubmatch(line); row != nil {
			ids = append(ids, row[1])
		}
	}
	return ids
}

// `/mpc list … here` posts the panel in the channel; clicks update it with
// chat.update, and an agent sees no coach buttons in an ephemeral panel.
func TestRosterPanelInChannel(t *testing.T) {
	t.Parallel()
	h := startBot(t)
	agent := h.member("agent")
	since := time.Now()
	h.slash(supervisorID, channelID, "list test_mpc_1 here")
	panel := h.waitMessage(func(m slacktest.Message) bool {
		return m.Method == "chat.postMessage" && m.Channel == channelID && strings.Contains(m.Text, "Participants of test_mpc_1") && !m.Time.Before(since)
	}, "channel panel")
	// An agent clicks Hold on the agent's row of the shared panel.
	cid, err := h.slack.ClickButton(agentID, channelID, panel.TS, buttonInRow(t, panel, agent, "Hold"))
	if err != nil {
		t.Fatal(err)
	}
	h.slack.WaitAck(h.ctx(), cid)
	updated := h.waitMessage(func(m slacktest.Message) bool {
		return m.Method == "chat.update" && m.TS == panel.TS
	}, "chat.update of the panel")
	if !strings.Contains(updated.VisibleText(), agent+" · agent · 🎙 unmuted · ⏸ on hold") {
		t.Fatalf("updated panel:\n%s", updated.VisibleText())
	}
	if st, _ := h.plivo.Participant(plivotest.SampleMPCName, agent); !st.Hold {
		t.Fatal("agent not on hold")
	}

	// An agent's own ephemeral panel has no coach buttons.
	id, _ := h.slash(agentID, channelID, "list test_mpc_1")
	mine := h.responseFor(id)
	for _, b := range mine.Buttons() {
		if b.Text == "Coach" || b.Text == "Uncoach" {
			t.Fatalf("an agent's panel offers %q", b.Text)
		}
	}
}

// Several members: one Plivo call each, one result listing everyone, a
// failure for one member not hiding the others.
func TestSeveralMembersOneResult(t *testing.T) {
	t.Parallel()
	h := startBot(t)
	c, a := h.member("customer"), h.member("agent")
	since := time.Now()
	h.slash(supervisorID, channelID, fmt.Sprintf("mute test_mpc_1 %s,999,%s", c, a))
	_, reply := h.anchorAndReply(since, channelID, "mute members")
	if n := len(h.updateRequests(0)); n != 3 {
		t.Fatalf("%d Plivo calls, want 3", n)
	}
	for _, want := range []string{"member " + c + ":", "member 999:", "member " + a + ":", "HTTP 404", "partly failed"} {
		if !strings.Contains(reply.Text, want) {
			t.Errorf("reply lacks %q:\n%s", want, reply.Text)
		}
	}
	// Undo offers only the members that changed.
	var undo string
	for _, b := range reply.Buttons() {
		if strings.HasPrefix(b.Text, "Unmute") {
			undo = b.Value
		}
	}
	if !strings.HasSuffix(undo, fmt.Sprintf("unmute test_mpc_1 %s,%s", c, a)) {
		t.Fatalf("undo button value %q", undo)
	}
}

// A change to all in a call above MPC_CONFIRM_ALL_ABOVE asks first; the
// Confirm button shows the member count and runs it; Cancel changes
// nothing; --yes skips the question.
func TestConfirmAll(t *testing.T) {
	t.Parallel()
	h := startBot(t, withEnv("MPC_CONFIRM_ALL_ABOVE", "2"))
	id, _ := h.slash(supervisorID, channelID, "hold test_mpc_1 all")
	q := h.responseFor(id)
	if !q.Ephemeral || !strings.Contains(q.Text, "3 live participants") {
		t.Fatalf("confirmation question: %+v", q)
	}
	if n := len(h.updateRequests(0)); n != 0 {
		t.Fatalf("%d updates before confirmation", n)
	}
	var labels []string
	for _, b := range q.Buttons() {
		labels = append(labels, b.Text)
	}
	if len(labels) != 2 || labels[0] != "Confirm: hold 3" || labels[1] != "Cancel" {
		t.Fatalf("buttons %q", labels)
	}

	// Cancel: the question is replaced, nothing changes.
	cid := h.click(supervisorID, q, "Cancel")
	cancelled := h.waitMessage(func(m slacktest.Message) bool { return m.EnvelopeID == cid && m.ReplaceOriginal }, "cancel")
	if !strings.Contains(cancelled.Text, "Cancelled") || len(h.updateRequests(0)) != 0 {
		t.Fatalf("cancel: %q, %d updates", cancelled.Text, len(h.updateRequests(0)))
	}

	// Confirm: anchor + thread, and the question says where the results are.
	id, _ = h.slash(supervisorID, channelID, "hold test_mpc_1 all")
	q = h.responseFor(id)
	since := time.Now()
	cid = h.click(supervisorID, q, "Confirm: hold 3")
	_, reply := h.anchorAndReply(since, channelID, "hold all participants")
	if !strings.Contains(reply.Text, "✅ hold") {
		t.Fatalf("confirmed reply:\n%s", reply.Text)
	}
	done := h.waitMessage(func(m slacktest.Message) bool { return m.EnvelopeID == cid && m.ReplaceOriginal }, "question replaced")
	if !strings.Contains(done.Text, "Confirmed") {
		t.Fatalf("question replaced with %q", done.Text)
	}
	if n := len(h.updateRequests(0)); n != 1 {
		t.Fatalf("%d updates after confirmation, want 1", n)
	}

	// --yes: at once.
	since = time.Now()
	h.slash(supervisorID, channelID, "unhold test_mpc_1 all —yes")
	h.anchorAndReply(since, channelID, "unhold all participants")
}

// Two taps of the same button within the window make one Plivo call; the
// second tap is told so.
func TestDoubleTap(t *testing.T) {
	t.Parallel()
	h := startBot(t)
	customer := h.member("customer")
	since := time.Now()
	h.slash(supervisorID, channelID, "mute test_mpc_1 "+customer)
	_, reply := h.anchorAndReply(since, channelID, "mute member")
	before := len(h.plivo.Requests())
	h.click(supervisorID, reply, "Unmute "+customer)
	second := h.click(supervisorID, reply, "Unmute "+customer)
	note := h.responseFor(second)
	if !strings.Contains(note.Text, "tapped that twice") {
		t.Fatalf("second tap answered %q", note.Text)
	}
	h.waitMessage(func(m slacktest.Message) bool {
		return m.Method == "chat.postMessage" && m.ThreadTS == reply.ThreadTS && strings.Contains(m.Text, "✅ unmute")
	}, "result of the first tap")
	if n := len(h.updateRequests(before)); n != 1 {
		t.Fatalf("%d Plivo updates for a double tap, want 1", n)
	}
}

// Buttons are validated like typed text: stale, crafted or unknown ones
// are refused visibly (or, for unknown action ids, acked and logged), and
// never reach Plivo.
func TestButtonsRefused(t *testing.T) {
	t.Parallel()
	h := startBot(t, withEnv("MPC_BUTTON_MAX_AGE", "1h"))
	ts := h.slack.AddUserMessage(channelID, supervisorID, "a message with a button")
	old := time.Now().Add(-3 * time.Hour).Unix()
	now := time.Now().Unix()
	tests := []struct {
		name, actionID, value, want string
	}{
		{"stale", "mpc.run:0", fmt.Sprintf("v1|%d|unhold test_mpc_1 all", old), "3 hours old"},
		{"crafted path", "mpc.run:0", fmt.Sprintf("v1|%d|hold ../../x all", now), "not a valid MPC name"},
		{"crafted coach all", "mpc.run:0", fmt.Sprintf("v1|%d|coach test_mpc_1 all", now), "coach_mode can be updated only"},
		{"not ours", "mpc.run:0", "click_me_123", "not one mpcbot made"},
		{"mismatched action", "mpc.list:0", fmt.Sprintf("v1|%d|hold test_mpc_1 all", now), "does not match"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := h.in(t)
			id := h.slack.SendBlockAction(slacktest.BlockAction{UserID: supervisorID, ChannelID: channelID, MessageTS: ts, ActionID: tt.actionID, Value: tt.value})
			if _, err := h.slack.WaitAck(h.ctx(), id); err != nil {
				t.Fatal(err)
			}
			m := h.responseFor(id)
			if !m.Ephemeral || !strings.Contains(m.Text, tt.want) {
				t.Fatalf("answer %q (ephemeral %v), want %q", m.Text, m.Ephemeral, tt.want)
			}
		})
	}
	// An unknown action id is acked and logged; the bot keeps serving.
	id := h.slack.SendBlockAction(slacktest.BlockAction{UserID: supervisorID, ChannelID: channelID, MessageTS: ts, ActionID: "somebody.else", Value: "x"})
	if _, err := h.slack.WaitAck(h.ctx(), id); err != nil {
		t.Fatal(err)
	}
	if n := len(h.plivo.Requests()); n != 0 {
		t.Fatalf("refused buttons reached Plivo: %d requests", n)
	}
	since := time.Now()
	h.slash(supervisorID, channelID, "mute test_mpc_1 all")
	h.anchorAndReply(since, channelID, "mute all")
	if !strings.Contains(h.logs.String(), "unknown button action") {
		t.Fatal("unknown action id not logged")
	}
}

// Buttons are authorized at click time for the clicking user: an agent
// clicking a supervisor's Uncoach button is refused.
func TestButtonAuthorizedForClicker(t *testing.T) {
	t.Parallel()
	h := startBot(t)
	sup := h.member("supervisor")
	since := time.Now()
	h.slash(supervisorID, channelID, "uncoach test_mpc_1 "+sup)
	_, reply := h.anchorAndReply(since, channelID, "uncoach member")
	before := len(h.plivo.Requests())
	id := h.click(agentID, reply, "Coach "+sup)
	m := h.responseFor(id)
	if !m.Ephemeral || m.User != agentID || !strings.Contains(m.Text, "Only supervisors may coach") {
		t.Fatalf("agent's click answered %+v", m)
	}
	if n := len(h.plivo.Requests()) - before; n != 0 {
		t.Fatalf("the refused click made %d Plivo requests", n)
	}
}
