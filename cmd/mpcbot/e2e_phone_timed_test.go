package main

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mpcbot/mpcbot/bot/slacktest"
	"github.com/mpcbot/mpcbot/plivo"
	"github.com/mpcbot/mpcbot/plivo/plivotest"
)

// End-to-end tests of timed changes ("hold 101 for 2s"): applied at once,
// put back when due in the same thread, unless someone changed the field
// outside mpcbot, the member left, a later change through mpcbot took
// over, or the timer was cancelled; reported in its thread when mpcbot
// stops first.

// A timed hold is applied at once; its result says when it will be put
// back and offers Undo now and Cancel timer; when due, the unhold is
// reported in the same thread with its own api_id — not before it is due.
func TestPhoneTimedHoldReverts(t *testing.T) {
	t.Parallel()
	h := startBot(t)
	customer := h.member("customer")
	anchor, reply, timerID, due := h.timedChange(supervisorID, "hold test_mpc_1 "+customer+" for 2s", "hold member "+customer+" in test_mpc_1 for 2s")
	for _, want := range []string{
		"✅ hold: MPC: test_mpc_1 hold/unhold member(s) succeeded",
		fmt.Sprintf("⏱ unhold member %s in test_mpc_1 at %s UTC (in 2s), unless someone changes it first.", customer, due.UTC().Format("15:04:05")),
	} {
		if !strings.Contains(reply.Text, want) {
			t.Errorf("timed result lacks %q:\n%s", want, reply.Text)
		}
	}
	h.button(reply.Buttons(), reply.VisibleText(), "Undo now: unhold "+customer, "|unhold test_mpc_1 "+customer)
	h.button(reply.Buttons(), reply.VisibleText(), "Cancel timer", "|cancel-timer "+timerID)
	if !h.participant(customer).Hold {
		t.Fatal("the timed hold was not applied at once")
	}

	revert := h.inThread(channelID, anchor.TS, "⏱ after 2s: ")
	for _, want := range []string{"⏱ after 2s: ✅ unhold member " + customer + " in test_mpc_1", "✅ unhold: MPC: test_mpc_1 hold/unhold member(s) succeeded"} {
		if !strings.Contains(revert.Text, want) {
			t.Errorf("revert lacks %q:\n%s", want, revert.Text)
		}
	}
	rec := h.changeAuditFor(timerID)
	ids := apiIDs(revert.Text)
	if len(ids) != 1 || ids[0] != auditAPIID(rec, customer) || slices.Contains(apiIDs(reply.Text), ids[0]) {
		t.Errorf("revert api_ids %v; audit %q; the hold's %v", ids, auditAPIID(rec, customer), apiIDs(reply.Text))
	}
	if rec["source"] != "timer" || rec["status"] != "ok" || rec["reverts_timer"] != timerID || rec["user_id"] != supervisorID {
		t.Errorf("revert audit record %v", rec)
	}
	if h.participant(customer).Hold {
		t.Fatal("the customer is still on hold after the revert")
	}
	if got := h.updatesOf(customer); fmt.Sprint(got) != "[hold=true hold=false]" {
		t.Fatalf("updates of %s: %v", customer, got)
	}
	if unhold := h.requestsOf(plivotest.OpUpdateParticipant)[1]; unhold.Time.Before(due) {
		t.Fatalf("put back at %v, before it was due (%v)", unhold.Time, due)
	}
	if n := len(h.slack.ThreadReplies(channelID, anchor.TS)); n != 2 {
		t.Fatalf("%d replies in the thread, want 2: %q", n, h.threadTexts(channelID, anchor.TS))
	}

	// Its Cancel timer button now says there is nothing left to cancel.
	id := h.clickWhere(supervisorID, reply, "Cancel timer", "|cancel-timer "+timerID)
	if m := h.privateAnswer(id); !strings.Contains(m.Text, "That timer is no longer pending") {
		t.Fatalf("Cancel timer after the revert: %q", m.Text)
	}
}

// When due, a timer reads the state first: a field someone changed
// outside mpcbot (Plivo's console, the dialler) is left alone, a member who
// left is skipped; the thread says which and why.
func TestPhoneTimedSkipped(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name        string
		disturb     func(h *harness, member string)
		wantNote    string
		wantUpdates string
	}{
		{"changed outside mpcbot", func(h *harness, m string) { h.outsideUpdate(m, plivo.ParticipantUpdate{Hold: new(false)}) },
			"member %s: hold was changed outside mpcbot since; left as it is.", "[hold=true hold=false]"},
		{"member left", func(h *harness, m string) { h.plivo.RemoveParticipant(plivotest.SampleMPCName, m) },
			"member %s has left the call: nothing to put back.", "[hold=true]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h := startBot(t)
			customer := h.member("customer")
			anchor, _, timerID, _ := h.timedChange(supervisorID, "hold test_mpc_1 "+customer+" for 2s", "hold member "+customer+" in test_mpc_1 for 2s")
			tt.disturb(h, customer)
			revert := h.inThread(channelID, anchor.TS, "⏱ after 2s: ")
			for _, want := range []string{"⏱ after 2s: nothing to put back for hold member " + customer + " in test_mpc_1", fmt.Sprintf(tt.wantNote, customer)} {
				if !strings.Contains(revert.Text, want) {
					t.Errorf("revert lacks %q:\n%s", want, revert.Text)
				}
			}
			if rec := h.changeAuditFor(timerID); rec["status"] != "skipped" || rec["source"] != "timer" {
				t.Errorf("revert audit record %v", rec)
			}
			if got := fmt.Sprint(h.updatesOf(customer)); got != tt.wantUpdates {
				t.Fatalf("updates of %s: %v, want %s (mpcbot put nothing back)", customer, got, tt.wantUpdates)
			}
			if h.participant(customer).Hold {
				t.Fatal("the customer is on hold")
			}
		})
	}
}

// A later change of the same member's field through mpcbot — typed, on a
// roster panel, in the Home tab — supersedes the timer: its thread says so,
// naming who and what, and nothing is put back when it would have been due.
func TestPhoneTimedSuperseded(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		by      string
		act     func(h *harness, member string)
		byWhat  string // the later change as the notice names it
		updates string
	}{
		{"typed unhold", supervisorID, func(h *harness, m string) {
			h.change(supervisorID, "unhold test_mpc_1 "+m, "unhold member "+m+" in test_mpc_1")
		}, "unhold member %s in test_mpc_1", "[hold=true hold=false]"},
		{"typed hold without a timer", agentID, func(h *harness, m string) {
			h.change(agentID, "hold test_mpc_1 "+m, "hold member "+m+" in test_mpc_1")
		}, "hold member %s in test_mpc_1", "[hold=true hold=true]"},
		{"roster panel", supervisorID, func(h *harness, m string) {
			id, _ := h.slash(supervisorID, channelID, "list test_mpc_1")
			cid := h.clickWhere(supervisorID, h.privateAnswer(id), "Unhold", "|unhold test_mpc_1 "+m)
			h.waitMessage(func(msg slacktest.Message) bool { return msg.EnvelopeID == cid && msg.ReplaceOriginal }, "the panel after Unhold")
		}, "unhold member %s in test_mpc_1", "[hold=true hold=false]"},
		{"home tab", agentID, func(h *harness, m string) {
			h.openHome(agentID)
			h.homeClickView(agentID, "Participants", "|list test_mpc_1", viewContains("Participants of test_mpc_1"))
			h.homeClickView(agentID, "Unhold", "|unhold test_mpc_1 "+m, viewContains("details in your messages"))
		}, "unhold member %s in test_mpc_1", "[hold=true hold=false]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h := startBot(t)
			customer := h.member("customer")
			anchor, _, _, due := h.timedChange(supervisorID, "hold test_mpc_1 "+customer+" for 2s", "hold member "+customer+" in test_mpc_1 for 2s")
			tt.act(h, customer)
			notice := h.inThread(channelID, anchor.TS, "won't be put back")
			want := fmt.Sprintf("<@%s> changed it: ⏱ hold of %s won't be put back: a later change (%s) decides now. The timer is off.",
				tt.by, customer, fmt.Sprintf(tt.byWhat, customer))
			if notice.Text != want {
				t.Errorf("notice in the timer's thread:\n%s\nwant:\n%s", notice.Text, want)
			}
			h.afterTimersDue(due)
			assertNotPutBack(t, h, anchor, customer, tt.updates)
		})
	}
}

// assertNotPutBack checks, once the timer of the change under anchor
// would have been due, that it put nothing back: no "⏱ after" in its
// thread and exactly the updates expected of the member.
func assertNotPutBack(t *testing.T, h *harness, anchor slacktest.Message, member, updates string) {
	t.Helper()
	for _, text := range h.threadTexts(channelID, anchor.TS) {
		if strings.Contains(text, "⏱ after") {
			t.Errorf("the timer ran:\n%s", text)
		}
	}
	if got := fmt.Sprint(h.updatesOf(member)); got != updates {
		t.Errorf("updates of %s: %s, want %s", member, got, updates)
	}
}

// Undo now puts it back at once, in the same thread, and the timer is off.
func TestPhoneTimedUndoNow(t *testing.T) {
	t.Parallel()
	h := startBot(t)
	customer := h.member("customer")
	anchor, reply, _, due := h.timedChange(supervisorID, "hold test_mpc_1 "+customer+" for 2s", "hold member "+customer+" in test_mpc_1 for 2s")
	h.clickWhere(supervisorID, reply, "Undo now: unhold "+customer, "|unhold test_mpc_1 "+customer)
	undo := h.inThread(channelID, anchor.TS, "✅ unhold member "+customer+" in test_mpc_1")
	if !strings.Contains(undo.Text, "✅ unhold: MPC: test_mpc_1 hold/unhold member(s) succeeded") || len(apiIDs(undo.Text)) != 1 {
		t.Errorf("Undo now result:\n%s", undo.Text)
	}
	h.inThread(channelID, anchor.TS, "won't be put back: a later change (unhold member "+customer+" in test_mpc_1) decides now. The timer is off.")
	if h.participant(customer).Hold {
		t.Fatal("still on hold after Undo now")
	}
	h.afterTimersDue(due)
	assertNotPutBack(t, h, anchor, customer, "[hold=true hold=false]")
}

// Cancel timer keeps the change: a stranger may not, an agent may (they
// may hold); the thread says who cancelled it; a second tap says it is no
// longer pending; nothing is put back.
func TestPhoneTimedCancel(t *testing.T) {
	t.Parallel()
	h := startBot(t)
	customer := h.member("customer")
	anchor, reply, timerID, due := h.timedChange(supervisorID, "hold test_mpc_1 "+customer+" for 2s", "hold member "+customer+" in test_mpc_1 for 2s")

	id := h.clickWhere(strangerID, reply, "Cancel timer", "|cancel-timer "+timerID)
	if m := h.privateAnswer(id); m.User != strangerID || !strings.Contains(m.Text, "not allowed to use /mpc") {
		t.Fatalf("a stranger's Cancel timer answered %q to %s", m.Text, m.User)
	}
	if rec := h.auditFor(id); rec["request"] != "cancel_timer" || rec["status"] != "refused" {
		t.Errorf("audit record %v", rec)
	}

	id = h.clickWhere(agentID, reply, "Cancel timer", "|cancel-timer "+timerID)
	notice := h.inThread(channelID, anchor.TS, "cancelled the timer")
	want := fmt.Sprintf("<@%s> cancelled the timer: ⏱ Timer cancelled: hold member %s in test_mpc_1 stays as it is; nothing will be put back.", agentID, customer)
	if notice.Text != want {
		t.Errorf("cancel notice:\n%s\nwant:\n%s", notice.Text, want)
	}
	if rec := h.auditFor(id); rec["status"] != "cancelled" || rec["timer_id"] != timerID || rec["user_id"] != agentID {
		t.Errorf("audit record %v", rec)
	}

	id = h.clickWhere(supervisorID, reply, "Cancel timer", "|cancel-timer "+timerID)
	if m := h.privateAnswer(id); !strings.Contains(m.Text, "That timer is no longer pending") {
		t.Fatalf("a second Cancel timer answered %q", m.Text)
	}
	h.afterTimersDue(due)
	assertNotPutBack(t, h, anchor, customer, "[hold=true]")
	if !h.participant(customer).Hold {
		t.Fatal("the customer is no longer on hold after the timer was cancelled")
	}
}

// Roster rows offer the timed hold of MPC_TIMED_DEFAULT to members not on
// hold; tapped on an ephemeral panel, the panel shows the result and when
// it will be put back, and the revert comes to the same person through the
// click's response_url.
func TestPhoneTimedPanelButton(t *testing.T) {
	t.Parallel()
	h := startBot(t, withEnv("MPC_TIMED_DEFAULT", "2s"))
	customer := h.member("customer")
	id, _ := h.slash(supervisorID, channelID, "list test_mpc_1")
	panel := h.privateAnswer(id)
	if n := strings.Count(panel.VisibleText(), "[Hold 2s]"); n != 3 {
		t.Fatalf("%d Hold 2s buttons, want one per live member:\n%s", n, panel.VisibleText())
	}
	cid := h.clickWhere(supervisorID, panel, "Hold 2s", "|hold test_mpc_1 "+customer+" for 2s")
	replaced := h.waitMessage(func(m slacktest.Message) bool {
		return m.Method == "response_url" && m.EnvelopeID == cid && m.ReplaceOriginal
	}, "the panel after Hold 2s")
	text := replaced.VisibleText()
	for _, want := range []string{
		"✅ hold member " + customer + " in test_mpc_1 for 2s",
		"⏱ unhold member " + customer + " in test_mpc_1 at ",
		customer + " · customer · 🎙 unmuted · ⏸ on hold",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("panel after Hold 2s lacks %q:\n%s", want, text)
		}
	}
	if n := strings.Count(text, "[Hold 2s]"); n != 2 {
		t.Errorf("%d Hold 2s buttons after the customer's hold, want 2 (none on a member on hold):\n%s", n, text)
	}
	revert := h.waitMessage(func(m slacktest.Message) bool {
		return m.Method == "response_url" && m.EnvelopeID == cid && strings.Contains(m.Text, "⏱ after 2s")
	}, "the revert through the click's response_url")
	if !revert.Ephemeral || revert.User != supervisorID || revert.ReplaceOriginal ||
		!strings.Contains(revert.Text, "⏱ after 2s: ✅ unhold member "+customer+" in test_mpc_1") || len(apiIDs(revert.Text)) != 1 {
		t.Fatalf("revert (ephemeral %v to %s, replace %v):\n%s", revert.Ephemeral, revert.User, revert.ReplaceOriginal, revert.Text)
	}
	if got := fmt.Sprint(h.updatesOf(customer)); got != "[hold=true hold=false]" {
		t.Fatalf("updates of %s: %s", customer, got)
	}
}

// A timed hold from the Home tab: the Home view says when it will be put
// back; the DM thread carries Undo now and Cancel timer, and the revert.
func TestPhoneTimedFromHome(t *testing.T) {
	t.Parallel()
	h := startBot(t, withEnv("MPC_TIMED_DEFAULT", "2s"))
	customer := h.member("customer")
	h.openHome(supervisorID)
	h.homeClickView(supervisorID, "Participants", "|list test_mpc_1", viewContains("Participants of test_mpc_1"))
	_, v := h.homeClickView(supervisorID, "Hold 2s", "|hold test_mpc_1 "+customer+" for 2s", viewContains("details in your messages"))
	if !strings.Contains(v.VisibleText(), "✅ hold member "+customer+" in test_mpc_1 for 2s · details in your messages with mpcbot") {
		t.Errorf("Home view after Hold 2s:\n%s", v.VisibleText())
	}
	dm := h.slack.DMChannel(supervisorID)
	anchor, reply := h.anchorAndReply(time.Time{}, dm, "clicked: hold member "+customer+" in test_mpc_1 for 2s")
	if !strings.Contains(reply.Text, "⏱ unhold member "+customer+" in test_mpc_1 at ") {
		t.Errorf("DM result:\n%s", reply.Text)
	}
	for _, label := range []string{"Undo now: unhold " + customer, "Cancel timer"} {
		h.button(reply.Buttons(), reply.VisibleText(), label, "")
	}
	revert := h.inThread(dm, anchor.TS, "⏱ after 2s: ✅ unhold member "+customer+" in test_mpc_1")
	if len(apiIDs(revert.Text)) != 1 || h.participant(customer).Hold {
		t.Fatalf("revert in the DM thread:\n%s", revert.Text)
	}
}

// Without Redis, timers live in the process: when mpcbot stops first,
// each timer's thread (the channel thread, the DM thread of a Home change)
// says it will not be put back and what to run by hand; nothing is put
// back early.
func TestPhoneTimedShutdownReportsPending(t *testing.T) {
	t.Parallel()
	h := startBot(t, withEnv("MPC_TIMED_DEFAULT", "10m"))
	customer, agent := h.member("customer"), h.member("agent")
	anchor, _, _, due := h.timedChange(supervisorID, "hold test_mpc_1 "+customer+" for 10m", "hold member "+customer+" in test_mpc_1 for 10m")
	h.openHome(supervisorID)
	h.homeClickView(supervisorID, "Participants", "|list test_mpc_1", viewContains("Participants of test_mpc_1"))
	homeID, _ := h.homeClickView(supervisorID, "Hold 10m", "|hold test_mpc_1 "+agent+" for 10m", viewContains("details in your messages"))
	homeDue, err := time.Parse(time.RFC3339Nano, fmt.Sprint(h.changeAuditFor(homeID)["timer_due"]))
	if err != nil {
		t.Fatal(err)
	}
	dm := h.slack.DMChannel(supervisorID)
	dmAnchor, _ := h.anchorAndReply(time.Time{}, dm, "clicked: hold member "+agent)

	if err := h.stop(); err != nil {
		t.Fatalf("Run returned %v", err)
	}
	for _, c := range []struct {
		channel, ts, member string
		due                 time.Time
	}{{channelID, anchor.TS, customer, due}, {dm, dmAnchor.TS, agent, homeDue}} {
		want := fmt.Sprintf("⏱ Not put back: mpcbot stopped. Run `/mpc unhold test_mpc_1 %s` yourself when it is time (due %s UTC).",
			c.member, c.due.UTC().Format("15:04:05"))
		h.inThread(c.channel, c.ts, want)
		if got := fmt.Sprint(h.updatesOf(c.member)); got != "[hold=true]" || !h.participant(c.member).Hold {
			t.Errorf("member %s: updates %s, on hold %v", c.member, got, h.participant(c.member).Hold)
		}
	}
	if len(h.logLines("pending timers not run")) != 1 {
		t.Error("the abandoned timers were not logged")
	}
}

// Timed usage errors are ephemeral usage errors with the correct usage;
// nothing reaches Plivo. Exactly MPC_TIMED_MAX is allowed.
func TestPhoneTimedUsageErrors(t *testing.T) {
	t.Parallel()
	h := startBot(t, withEnv("MPC_TIMED_MAX", "1m", "MPC_TIMED_DEFAULT", "1m"))
	tests := []struct{ text, want string }{
		{"hold test_mpc_1 101 for 2m", "`2m` is longer than the maximum of 1m"},
		{"hold test_mpc_1 101 for 61s", "`61s` is longer than the maximum of 1m"},
		{"hold test_mpc_1 101 for 500ms", "`500ms` uses the unit `ms`, which is not allowed here"},
		{"hold test_mpc_1 101 for 0s", "`0s` is zero"},
		{"hold test_mpc_1 101 for -2m", "`-2m` is negative"},
		{"hold test_mpc_1 101 for 2", "`2` has no unit"},
		{"hold test_mpc_1 101 for 1.5s", "`1.5s` is not a whole number of seconds"},
		{"hold test_mpc_1 101 for", "`for` needs a duration"},
		{"hold test_mpc_1 101 2m", "to undo it after `2m`, write `for 2m`"},
	}
	for _, tt := range tests {
		t.Run(tt.text, func(t *testing.T) {
			h := h.in(t)
			id, ack := h.slash(supervisorID, channelID, tt.text)
			var p struct {
				ResponseType string `json:"response_type"`
				Text         string `json:"text"`
			}
			if err := json.Unmarshal(ack.Payload, &p); err != nil {
				t.Fatalf("ack payload %s: %v", ack.Payload, err)
			}
			if p.ResponseType != "ephemeral" || !strings.Contains(p.Text, tt.want) || !strings.Contains(p.Text, "[for <duration>]") {
				t.Errorf("ack (%s):\n%s\nwant %q and the usage", p.ResponseType, p.Text, tt.want)
			}
			if rec := h.auditFor(id); rec["status"] != "usage_error" {
				t.Errorf("audit record %v", rec)
			}
		})
	}
	if n := len(h.plivo.Requests()); n != 0 {
		t.Fatalf("%d Plivo requests for usage errors", n)
	}
	if ms := h.slack.MessagesIn(channelID); len(ms) != 0 {
		t.Fatalf("a usage error posted in the channel: %q", ms[0].Text)
	}
	h.timedChange(supervisorID, "hold test_mpc_1 101 for 1m", "hold member 101 in test_mpc_1 for 1m")
}
