package main

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/mpcbot/mpcbot/bot/slacktest"
	"github.com/mpcbot/mpcbot/plivo/plivotest"
)

// End-to-end tests of the app's Home tab: the live calls for an
// authorized user, the refusal for anyone else, Refresh, a call's roster,
// changes made there, and what the user sees when something fails.

// Opening the Home tab publishes the live calls for a supervisor or an
// agent, and the refusal a command gets for a stranger — without asking
// Plivo anything for them.
func TestPhoneHomeOpened(t *testing.T) {
	t.Parallel()
	h := startBot(t, withSampleCalls())
	tests := []struct {
		name, user string
		allowed    bool
	}{
		// The stranger first: before any lookup fills the calls cache, so
		// a lookup made for them would show at Plivo.
		{"stranger", strangerID, false},
		{"supervisor", supervisorID, true},
		{"agent", agentID, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := h.in(t)
			lookups := len(h.requestsOf(plivotest.OpListMPCs))
			id, v := h.openHome(tt.user)
			text := v.VisibleText()
			rec := h.auditFor(id)
			if !tt.allowed {
				if !strings.Contains(text, "You ("+tt.user+") are not allowed to use /mpc") || !strings.Contains(text, "MPC_AGENTS") {
					t.Errorf("stranger's Home view:\n%s", text)
				}
				if len(v.Buttons()) != 0 {
					t.Errorf("stranger's Home view has buttons: %+v", v.Buttons())
				}
				if n := len(h.requestsOf(plivotest.OpListMPCs)) - lookups; n != 0 {
					t.Errorf("%d List MPC requests for a stranger's Home tab", n)
				}
				if rec["status"] != "refused" || rec["source"] != "home" {
					t.Errorf("audit record %v", rec)
				}
				return
			}
			for _, want := range append([]string{"Live calls (4)", "[Refresh]", "tap Participants to act on a call"}, sampleLiveCalls...) {
				if !strings.Contains(text, want) {
					t.Errorf("Home view lacks %q:\n%s", want, text)
				}
			}
			if n := strings.Count(text, "[Participants]"); n != 4 {
				t.Errorf("%d Participants buttons, want 4:\n%s", n, text)
			}
			if rec["request"] != "home" || rec["status"] != "ok" || rec["source"] != "home" {
				t.Errorf("audit record %v", rec)
			}
		})
	}
}

// Refresh republishes the Home view with the calls as they are now (once
// the short cache has expired).
func TestPhoneHomeRefresh(t *testing.T) {
	t.Parallel()
	h := startBot(t, withSampleCalls())
	h.openHome(supervisorID)
	h.plivo.AddParticipant("late-shift", plivotest.RoleAgent)
	var v slacktest.HomeView
	retryEvery(t, waitFor, 250*time.Millisecond, "a refreshed Home view with the new call", func() bool {
		_, v = h.homeClickView(supervisorID, "Refresh", "|calls", anyView)
		return strings.Contains(v.VisibleText(), "📞 late-shift · ")
	})
	if !strings.Contains(v.VisibleText(), "Live calls (5)") {
		t.Fatalf("refreshed Home view:\n%s", v.VisibleText())
	}
}

// Participants shows the call's roster in the Home view, with buttons per
// member (Coach only for a supervisor viewer), its own Refresh, and a way
// back to all the live calls.
func TestPhoneHomeParticipants(t *testing.T) {
	t.Parallel()
	h := startBot(t, withSampleCalls())
	sup := h.member("supervisor")
	customer := h.member("customer")
	for _, user := range []string{supervisorID, agentID} {
		h.openHome(user)
		id, v := h.homeClickView(user, "Participants", "|list test_mpc_1", viewContains("Participants of test_mpc_1"))
		text := v.VisibleText()
		for _, want := range []string{"3 live · 0 exited", customer + " · customer · 🎙 unmuted", "[◀ All live calls]"} {
			if !strings.Contains(text, want) {
				t.Errorf("%s's Home roster lacks %q:\n%s", user, want, text)
			}
		}
		for _, b := range []struct{ label, suffix string }{
			{"Mute", "|mute test_mpc_1 " + customer}, {"Hold", "|hold test_mpc_1 " + customer},
			{"Hold 2m", "|hold test_mpc_1 " + customer + " for 2m"}, {"Refresh", "|list test_mpc_1"},
		} {
			h.button(v.Buttons(), text, b.label, b.suffix)
		}
		coach := hasButton(v.Buttons(), "Uncoach")
		if coach != (user == supervisorID) {
			t.Errorf("%s's Home roster: Uncoach on %s's row = %v", user, sup, coach)
		}
		if rec := h.auditFor(id); rec["request"] != "home_roster" || rec["status"] != "ok" {
			t.Errorf("audit record %v", rec)
		}
		h.homeClickView(user, "Refresh", "|list test_mpc_1", viewContains("Participants of test_mpc_1"))
		h.homeClickView(user, "◀ All live calls", "|calls", viewContains("Live calls (4)"))
	}
	if n := len(h.requestsOf(plivotest.OpUpdateParticipant)); n != 0 {
		t.Fatalf("browsing the Home tab made %d updates", n)
	}
}

// A change from the Home tab: the Home view is published again with the
// state read back from Plivo and a result line; the per-field results and
// the api_id go to the user's DM with the bot, as an anchor and its thread,
// where the follow-up buttons work; one audit record.
func TestPhoneHomeChange(t *testing.T) {
	t.Parallel()
	h := startBot(t, withSampleCalls())
	customer := h.member("customer")
	h.openHome(supervisorID)
	h.homeClickView(supervisorID, "Participants", "|list test_mpc_1", viewContains("Participants of test_mpc_1"))
	id, v := h.homeClickView(supervisorID, "Hold", "|hold test_mpc_1 "+customer, viewContains("details in your messages"))
	text := v.VisibleText()
	for _, want := range []string{
		"✅ hold member " + customer + " in test_mpc_1 · details in your messages with mpcbot",
		"Participants of test_mpc_1",
		customer + " · customer · 🎙 unmuted · ⏸ on hold",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("Home view after the change lacks %q:\n%s", want, text)
		}
	}
	h.button(v.Buttons(), text, "Unhold", "|unhold test_mpc_1 "+customer)
	if !h.participant(customer).Hold {
		t.Fatal("the customer is not on hold at Plivo")
	}
	if got := h.updatesOf(customer); fmt.Sprint(got) != "[hold=true]" {
		t.Fatalf("updates of %s: %v, want one hold", customer, got)
	}

	dm := h.slack.DMChannel(supervisorID)
	anchor, reply := h.anchorAndReply(time.Time{}, dm, "<@"+supervisorID+"> clicked: hold member "+customer+" in test_mpc_1")
	for _, want := range []string{"✅ hold member " + customer + " in test_mpc_1", "✅ hold: MPC: test_mpc_1 hold/unhold member(s) succeeded"} {
		if !strings.Contains(reply.Text, want) {
			t.Errorf("DM thread reply lacks %q:\n%s", want, reply.Text)
		}
	}
	ids := apiIDs(reply.Text)
	rec := h.changeAuditFor(id)
	if len(ids) != 1 || auditAPIID(rec, customer) != ids[0] {
		t.Errorf("api_ids in the DM %v, in the audit record %q", ids, auditAPIID(rec, customer))
	}
	if rec["source"] != "home" || rec["actions"] != "hold" || rec["status"] != "ok" || rec["user_id"] != supervisorID {
		t.Errorf("audit record %v", rec)
	}
	if recs := h.auditRecordsFor(id); len(recs) != 1 {
		t.Errorf("%d audit records for one change from the Home tab, want 1: %v", len(recs), recs)
	}

	// The DM thread's Undo works like any thread: results in that thread.
	h.clickWhere(supervisorID, reply, "Unhold "+customer, "|unhold test_mpc_1 "+customer)
	h.inThread(dm, anchor.TS, "✅ unhold member "+customer+" in test_mpc_1")
	if h.participant(customer).Hold {
		t.Fatal("the customer is still on hold after Unhold in the DM")
	}
	if n := len(h.slack.MessagesIn(channelID)); n != 0 {
		t.Fatalf("a change from the Home tab posted %d messages in a channel", n)
	}
}

// A change from the Home tab that Plivo refuses (the member left since the
// view was drawn): the Home view says it failed and shows the roster as it
// is now; the DM thread explains.
func TestPhoneHomeChangeFails(t *testing.T) {
	t.Parallel()
	h := startBot(t, withSampleCalls())
	customer := h.member("customer")
	h.openHome(supervisorID)
	h.homeClickView(supervisorID, "Participants", "|list test_mpc_1", viewContains("Participants of test_mpc_1"))
	h.plivo.RemoveParticipant(plivotest.SampleMPCName, customer)
	_, v := h.homeClickView(supervisorID, "Mute", "|mute test_mpc_1 "+customer, viewContains("details in your messages"))
	text := v.VisibleText()
	for _, want := range []string{"❌ mute member " + customer + " in test_mpc_1: failed · details in your messages with mpcbot", "2 live · 1 exited"} {
		if !strings.Contains(text, want) {
			t.Errorf("Home view after the failed change lacks %q:\n%s", want, text)
		}
	}
	_, reply := h.anchorAndReply(time.Time{}, h.slack.DMChannel(supervisorID), "clicked: mute member "+customer)
	for _, want := range []string{"❌ mute: not applied — not found", "HTTP 404", "api_id: "} {
		if !strings.Contains(reply.Text, want) {
			t.Errorf("DM thread reply lacks %q:\n%s", want, reply.Text)
		}
	}
}

// A stranger who crafts a click in the Home tab is refused there, and
// nothing reaches Plivo.
func TestPhoneHomeStrangerClick(t *testing.T) {
	t.Parallel()
	h := startBot(t)
	customer := h.member("customer")
	h.openHome(strangerID)
	prev := h.homeViewID(strangerID)
	id := h.slack.SendHomeAction(slacktest.HomeAction{UserID: strangerID, ActionID: "mpc.panel:1:0:0.0",
		Value: fmt.Sprintf("v1|%d|hold test_mpc_1 %s", time.Now().Unix(), customer)})
	if _, err := h.slack.WaitAck(h.ctx(), id); err != nil {
		t.Fatal(err)
	}
	v := h.nextHomeView(strangerID, prev, "the refusal of the crafted click", anyView)
	if !strings.Contains(v.VisibleText(), "not allowed to use /mpc") {
		t.Fatalf("stranger's Home view after the click:\n%s", v.VisibleText())
	}
	if rec := h.changeAuditFor(id); rec["status"] != "refused" || rec["source"] != "home" {
		t.Errorf("audit record %v", rec)
	}
	if recs := h.auditRecordsFor(id); len(recs) != 1 {
		t.Errorf("%d audit records for one refused click, want 1: %v", len(recs), recs)
	}
	if n := len(h.plivo.Requests()); n != 0 {
		t.Fatalf("a stranger's Home click made %d Plivo requests", n)
	}
}

// Every failure the Home view can meet ends in something the user sees:
// the Home tab turned off (a DM says so and how to fix it), a view Slack
// refuses as too large or invalid (a short view that fits; these are
// injected: mpcbot bounds its own views, but Slack's limits are not all
// documented), a short view refused too (a DM), Plivo refusing the lookup
// (the error in the view).
func TestPhoneHomeFailures(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		setup    func(h *harness)
		wantView string // in the Home view; "" when none is published
		wantDM   string // in the DM with the bot; "" when none
	}{
		{"home tab off", func(h *harness) { h.slack.SetHomeTab(false) }, "",
			"The mpcbot Home tab is not enabled for this app (Slack said not_enabled); an admin must turn it on (app manifest: features.app_home.home_tab_enabled)"},
		{"view too large", func(h *harness) { h.slack.FailNext("views.publish", 1, slacktest.Failure{Error: "view_too_large"}) },
			"mpcbot could not show this view (Slack refused it: view_too_large). Use /mpc calls or /mpc list <name> in a channel.", ""},
		{"view invalid", func(h *harness) { h.slack.FailNext("views.publish", 1, slacktest.Failure{Error: "invalid_arguments"}) },
			"mpcbot could not show this view (Slack refused it: invalid_arguments)", ""},
		{"short view refused too", func(h *harness) { h.slack.FailNext("views.publish", 2, slacktest.Failure{Error: "view_too_large"}) }, "",
			"I couldn't update your mpcbot Home tab (Slack said view_too_large). Use /mpc calls in a channel meanwhile."},
		{"plivo refuses", func(h *harness) { h.plivo.SetForbidden("geo permissions do not allow this request") },
			"❌ Plivo refused this request for the account: geo permissions do not allow this request (HTTP 403 Forbidden)", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h := startBot(t, withSampleCalls())
			tt.setup(h)
			id, err := h.slack.OpenHome(h.ctx(), agentID)
			if err != nil {
				t.Fatal(err)
			}
			h.auditFor(id)
			if tt.wantDM != "" {
				dm := h.slack.DMChannel(agentID)
				m := h.waitMessage(func(m slacktest.Message) bool { return m.Channel == dm }, "a DM about the Home tab")
				if !strings.Contains(m.Text, tt.wantDM) {
					t.Errorf("DM %q, want %q", m.Text, tt.wantDM)
				}
			}
			v, ok := h.slack.HomeView(agentID)
			switch {
			case tt.wantView == "" && ok:
				t.Errorf("a Home view was published:\n%s", v.VisibleText())
			case tt.wantView != "" && (!ok || !strings.Contains(v.VisibleText(), tt.wantView)):
				t.Errorf("Home view (published %v):\n%s\nwant %q", ok, v.VisibleText(), tt.wantView)
			}
			if tt.wantDM == "" {
				if ms := h.slack.MessagesIn(h.slack.DMChannel(agentID)); len(ms) != 0 {
					t.Errorf("an unexpected DM: %q", ms[0].Text)
				}
			}
		})
	}
}
