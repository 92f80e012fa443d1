package main

import (
	"strings"
	"testing"
	"time"

	"github.com/mpcbot/mpcbot/bot/slacktest"
	"github.com/mpcbot/mpcbot/commands"
	"github.com/mpcbot/mpcbot/plivo/plivotest"
)

// End-to-end tests of the live calls view: `/mpc`, `/mpc calls [here]`, its
// Participants and Refresh buttons, and its cache.

// `/mpc` alone and `/mpc calls` show the live calls to the requester only:
// one row per live call (active ones first, newest first; the initialized
// one "waiting to start"; the ended one left out), each with a
// Participants button, a Refresh button, and the pointer to /mpc help.
func TestPhoneCallsView(t *testing.T) {
	t.Parallel()
	h := startBot(t, withSampleCalls())
	waiting, _ := h.plivo.MPC("onboarding-queue")
	tests := []struct {
		name, user, text string
	}{
		{"bare /mpc", supervisorID, ""},
		{"calls", supervisorID, "calls"},
		{"calls typed on a phone", supervisorID, "\u00a0Calls "},
		{"an agent", agentID, "calls"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := h.in(t)
			id, _ := h.slash(tt.user, channelID, tt.text)
			m := h.privateAnswer(id)
			if m.Method != "response_url" || !m.Ephemeral || m.User != tt.user {
				t.Fatalf("calls view is not shown to %s only: %s ephemeral=%v user=%s", tt.user, m.Method, m.Ephemeral, m.User)
			}
			text := m.VisibleText()
			last := -1
			for _, name := range sampleLiveCalls {
				i := strings.Index(text, "📞 "+name+" · ")
				if i < 0 || i < last {
					t.Fatalf("call %q missing or out of order in:\n%s", name, text)
				}
				last = i
			}
			for _, want := range []string{"Live calls (4)", "📞 onboarding-queue · " + waiting.UUID[:8] + " · waiting to start", "`/mpc help` shows every command"} {
				if !strings.Contains(text, want) {
					t.Errorf("calls view lacks %q:\n%s", want, text)
				}
			}
			if strings.Contains(text, "morning-huddle") {
				t.Errorf("the ended call is listed:\n%s", text)
			}
			if !strings.Contains(m.Text, "/mpc help shows every command") {
				t.Errorf("notification text lacks the help pointer: %q", m.Text)
			}
			// One Participants button per call, opening that call's roster
			// (the initialized call by uuid: its name finds live calls only
			// once it is active), and one Refresh.
			for _, suffix := range []string{"|list test_mpc_1", "|list billing-escalation", `|list "mpc 1000"`, "|list uuid:" + waiting.UUID} {
				h.button(m.Buttons(), text, "Participants", suffix)
			}
			if n := strings.Count(text, "[Participants]"); n != 4 {
				t.Errorf("%d Participants buttons, want 4:\n%s", n, text)
			}
			h.button(m.Buttons(), text, "Refresh", "|calls")
			if rec := h.auditFor(id); rec["request"] != "calls" || rec["status"] != "ok" || rec["calls"] != float64(4) {
				t.Errorf("audit record %v", rec)
			}
		})
	}
	if ms := h.slack.MessagesIn(channelID); len(ms) != 0 {
		t.Fatalf("the calls view was posted in the channel: %d messages", len(ms))
	}
}

// Participants opens the call's roster (for the requester only), an
// initialized call's roster too — by uuid — and a change on that roster
// reaches the call.
func TestPhoneCallsParticipants(t *testing.T) {
	t.Parallel()
	h := startBot(t, withSampleCalls())
	waiting, _ := h.plivo.MPC("onboarding-queue")
	id, _ := h.slash(supervisorID, channelID, "calls")
	calls := h.privateAnswer(id)

	cid := h.clickWhere(supervisorID, calls, "Participants", `|list "mpc 1000"`)
	roster := h.privateAnswer(cid)
	if !roster.Ephemeral || roster.User != supervisorID || !strings.Contains(roster.VisibleText(), "Participants of mpc 1000") ||
		!strings.Contains(roster.VisibleText(), "2 live") {
		t.Fatalf("roster of mpc 1000 (ephemeral %v to %s):\n%s", roster.Ephemeral, roster.User, roster.VisibleText())
	}

	cid = h.clickWhere(supervisorID, calls, "Participants", "|list uuid:"+waiting.UUID)
	roster = h.privateAnswer(cid)
	text := roster.VisibleText()
	if !strings.Contains(text, "Participants of uuid:"+waiting.UUID) || !strings.Contains(text, "1 live") || !strings.Contains(text, " · customer · 🎙 unmuted") {
		t.Fatalf("roster of the initialized call:\n%s", text)
	}
	customer := waitingCustomer(t, h)
	mid := h.clickWhere(supervisorID, roster, "Mute", "|mute uuid:"+waiting.UUID+" "+customer)
	panel := h.waitMessage(func(m slacktest.Message) bool {
		return m.Method == "response_url" && m.EnvelopeID == mid && m.ReplaceOriginal
	}, "the roster panel replaced after Mute")
	if !strings.Contains(panel.VisibleText(), customer+" · customer · 🔇 muted") || !strings.Contains(panel.VisibleText(), "✅ mute") {
		t.Fatalf("panel after Mute:\n%s", panel.VisibleText())
	}
	ups := h.requestsOf(plivotest.OpUpdateParticipant)
	if len(ups) != 1 || !strings.Contains(ups[0].Path, "/MultiPartyCall/uuid_"+waiting.UUID+"/Participant/"+customer+"/") {
		t.Fatalf("updates %+v, want one to the initialized call by uuid", ups)
	}
	for _, p := range h.plivo.Participants("onboarding-queue") {
		if p.MemberID == customer && !p.Mute {
			t.Fatal("the waiting customer is not muted at Plivo")
		}
	}
}

// waitingCustomer returns the member id of the customer waiting in the
// initialized sample call.
func waitingCustomer(t *testing.T, h *harness) string {
	t.Helper()
	for _, p := range h.plivo.Participants("onboarding-queue") {
		if p.Live && p.Role == plivotest.RoleCustomer {
			return p.MemberID
		}
	}
	t.Fatal("no customer waiting in onboarding-queue")
	return ""
}

// Refresh replaces the requester's view in place with the calls as they
// are now (once the short cache has expired): a new call shows, an ended
// one is gone.
func TestPhoneCallsRefresh(t *testing.T) {
	t.Parallel()
	h := startBot(t, withSampleCalls())
	id, _ := h.slash(supervisorID, channelID, "calls")
	view := h.privateAnswer(id)
	h.plivo.AddParticipant("late-shift", plivotest.RoleCustomer)
	h.plivo.EndMPC("mpc 1000")

	clicks := 0
	retryEvery(t, waitFor, 250*time.Millisecond, "a refreshed view with the new call and without the ended one", func() bool {
		clicks++
		cid := h.clickWhere(supervisorID, view, "Refresh", "|calls")
		view = h.waitMessage(func(m slacktest.Message) bool {
			return m.Method == "response_url" && m.EnvelopeID == cid
		}, "the refreshed calls view")
		if !view.ReplaceOriginal || !view.Ephemeral {
			t.Fatalf("Refresh did not replace the ephemeral view: replace=%v ephemeral=%v", view.ReplaceOriginal, view.Ephemeral)
		}
		text := view.VisibleText()
		return strings.Contains(text, "📞 late-shift · ") && !strings.Contains(text, "mpc 1000")
	})
	t.Logf("%d clicks on Refresh until the cache expired", clicks)
	if !strings.Contains(view.VisibleText(), "Live calls (4)") {
		t.Errorf("refreshed view:\n%s", view.VisibleText())
	}
	shown := 0
	for _, m := range h.slack.Ephemerals(supervisorID) {
		if strings.Contains(m.Text, "Live calls") {
			shown++
		}
	}
	if shown != 1 {
		t.Fatalf("%d calls views shown, want 1 (replaced in place)", shown)
	}
}

// `/mpc calls here` posts the view in the channel, where anyone allowed
// may use it: Refresh edits that message, Participants posts the roster in
// the channel. Where the bot is not a member, the view comes through the
// response_url, saying why.
func TestPhoneCallsHere(t *testing.T) {
	t.Parallel()
	h := startBot(t, withSampleCalls())
	since := time.Now()
	_, ack := h.slash(supervisorID, channelID, "calls here")
	if len(ack.Payload) != 0 {
		t.Errorf("ack carries a payload: %s", ack.Payload)
	}
	view := h.waitMessage(func(m slacktest.Message) bool {
		return m.Method == "chat.postMessage" && m.Channel == channelID && m.ThreadTS == "" && strings.Contains(m.Text, "Live calls (4)")
	}, "the calls view in the channel")
	h.button(view.Buttons(), view.VisibleText(), "Participants", "|list test_mpc_1 here")

	h.clickWhere(agentID, view, "Refresh", "|calls here")
	updated := h.waitMessage(func(m slacktest.Message) bool {
		return m.Method == "chat.update" && m.Channel == channelID && m.TS == view.TS
	}, "the channel's calls view updated in place")
	if !strings.Contains(updated.VisibleText(), "Live calls (4)") {
		t.Errorf("updated view:\n%s", updated.VisibleText())
	}

	h.clickWhere(agentID, view, "Participants", "|list test_mpc_1 here")
	h.waitMessage(func(m slacktest.Message) bool {
		return m.Method == "chat.postMessage" && m.Channel == channelID && m.ThreadTS == "" && strings.Contains(m.Text, "Participants of test_mpc_1")
	}, "the roster posted in the channel")
	if n := countAnchors(h, "Live calls", since); n != 1 {
		t.Errorf("%d calls views in the channel, want 1", n)
	}

	const noBot = "C0NOBOT"
	h.slack.AddChannel(noBot, "no-bot", slacktest.ChannelWithoutBot(), slacktest.ChannelMembers(supervisorID))
	id, _ := h.slash(supervisorID, noBot, "calls here")
	m := h.privateAnswer(id)
	if m.Method != "response_url" || m.ResponseType != "in_channel" || !strings.Contains(m.Text, "not a member of this channel") ||
		!strings.Contains(m.Text, "Live calls (4)") {
		t.Fatalf("calls view where the bot is not a member: %s %s %q", m.Method, m.ResponseType, m.Text)
	}
}

// With no live call the view says so, and still offers Refresh and help.
func TestPhoneCallsNone(t *testing.T) {
	t.Parallel()
	h := startBot(t)
	h.plivo.EndMPC(plivotest.SampleMPCName)
	id, _ := h.slash(supervisorID, channelID, "")
	m := h.privateAnswer(id)
	text := m.VisibleText()
	for _, want := range []string{"Live calls (0)", "No live calls right now.", "[Refresh]", "`/mpc help` shows every command"} {
		if !strings.Contains(text, want) {
			t.Errorf("empty calls view lacks %q:\n%s", want, text)
		}
	}
	if hasButton(m.Buttons(), "Participants") {
		t.Errorf("a Participants button with no live call:\n%s", text)
	}
	if rec := h.auditFor(id); rec["status"] != "ok" || rec["calls"] != float64(0) {
		t.Errorf("audit record %v", rec)
	}
}

// A stranger is refused — typed or on a view someone else posted in the
// channel — privately, and nothing is looked up at Plivo for them.
func TestPhoneCallsStrangerRefused(t *testing.T) {
	t.Parallel()
	h := startBot(t, withSampleCalls())
	for _, text := range []string{"", "calls", "calls here"} {
		id, _ := h.slash(strangerID, channelID, text)
		m := h.privateAnswer(id)
		if !m.Ephemeral || m.User != strangerID || !strings.Contains(m.Text, "You ("+strangerID+") are not allowed to use /mpc") ||
			!strings.Contains(m.Text, "MPC_AGENTS") {
			t.Errorf("%q by a stranger answered (ephemeral %v to %s): %q", text, m.Ephemeral, m.User, m.Text)
		}
		if rec := h.auditFor(id); rec["status"] != "refused" || rec["refusal"] != "not_allowed" {
			t.Errorf("%q: audit record %v", text, rec)
		}
	}
	if n := len(h.plivo.Requests()); n != 0 {
		t.Fatalf("%d Plivo requests for a stranger", n)
	}
	if ms := h.slack.MessagesIn(channelID); len(ms) != 0 {
		t.Fatalf("something was posted in the channel for a stranger: %q", ms[0].Text)
	}

	h.slash(supervisorID, channelID, "calls here")
	view := h.waitMessage(func(m slacktest.Message) bool {
		return m.Method == "chat.postMessage" && m.Channel == channelID && strings.Contains(m.Text, "Live calls (4)")
	}, "the supervisor's calls view in the channel")
	lookups := len(h.plivo.Requests())
	for _, b := range []struct{ label, suffix string }{{"Refresh", "|calls here"}, {"Participants", "|list test_mpc_1 here"}} {
		cid := h.clickWhere(strangerID, view, b.label, b.suffix)
		m := h.privateAnswer(cid)
		if !m.Ephemeral || m.User != strangerID || !strings.Contains(m.Text, "not allowed to use /mpc") {
			t.Errorf("a stranger's %s answered (ephemeral %v to %s): %q", b.label, m.Ephemeral, m.User, m.Text)
		}
		h.auditFor(cid)
	}
	if n := len(h.plivo.Requests()) - lookups; n != 0 {
		t.Errorf("a stranger's clicks made %d Plivo requests", n)
	}
	for _, m := range h.slack.Messages() {
		if m.Method == "chat.update" || strings.Contains(m.Text, "Participants of") {
			t.Errorf("a stranger's click changed the channel: %s %q", m.Method, m.Text)
		}
	}
}

// Ten people asking for the live calls within the cache's lifetime cost
// one lookup at Plivo. (A lookup is one List MPC request per live status,
// initialized and active; the first request tells how many.) Each asks
// after the previous one got its answer, so one lookup in flight cannot
// hide a missing cache. The bound allows one more lookup per TTL elapsed,
// so a slow machine cannot fail the test, while a missing cache makes ten
// lookups.
func TestPhoneCallsCache(t *testing.T) {
	t.Parallel()
	h := startBot(t, withSampleCalls())
	start := time.Now()
	var asOf []string
	perLookup := 0
	for i := range 10 {
		user, text := supervisorID, "calls"
		if i%2 == 1 {
			user, text = agentID, ""
		}
		id, _ := h.slash(user, channelID, text)
		m := h.privateAnswer(id)
		if !strings.Contains(m.Text, "Live calls (4)") {
			t.Fatalf("a calls view: %q", m.Text)
		}
		_, after, _ := strings.Cut(m.VisibleText(), "as of ")
		asOf = append(asOf, after)
		if i == 0 {
			perLookup = len(h.requestsOf(plivotest.OpListMPCs))
			if perLookup == 0 {
				t.Fatal("the calls view made no List MPC request")
			}
		}
	}
	elapsed := time.Since(start)
	lookups := len(h.requestsOf(plivotest.OpListMPCs)) / perLookup
	allowed := 1 + int(elapsed/commands.CallsCacheTTL)
	t.Logf("10 calls views in %v: %d lookup(s) of %d List MPC requests (allowed %d)", elapsed.Round(time.Millisecond), lookups, perLookup, allowed)
	if lookups > allowed {
		t.Fatalf("%d lookups at Plivo for 10 calls views in %v, want at most %d (cache TTL %v)", lookups, elapsed, allowed, commands.CallsCacheTTL)
	}
	if allowed == 1 {
		for _, a := range asOf[1:] {
			if a != asOf[0] {
				t.Fatalf("views within the TTL show different fetch times: %q", asOf)
			}
		}
	}
}
