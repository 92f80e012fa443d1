package main

import (
	"encoding/json"
	"fmt"
	"math"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/mpcbot/mpcbot/bot/slacktest"
	"github.com/mpcbot/mpcbot/plivo"
	"github.com/mpcbot/mpcbot/plivo/plivotest"
)

// Helpers of the end-to-end tests of the phone-first features: the live
// calls view, the Home tab and timed changes.

// withSampleCalls gives the simulator the small contact centre of
// plivotest.WithSampleCalls: test_mpc_1 (members 101–103), two more active
// calls ("mpc 1000", "billing-escalation"), an initialized one
// ("onboarding-queue", a customer waiting) and one that ended.
func withSampleCalls() harnessOption { return withPlivo(plivotest.WithSampleCalls()) }

// sampleLiveCalls are the live calls of withSampleCalls, in the order the
// calls view lists them (active first, newest first).
var sampleLiveCalls = []string{plivotest.SampleMPCName, "billing-escalation", "mpc 1000", "onboarding-queue"}

// retryEvery polls cond like waitUntil, but every interval: for
// conditions whose check costs a user action (a click on Refresh).
func retryEvery(t testing.TB, within, interval time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("waited %v for %s", within, what)
		}
		time.Sleep(interval)
	}
}

// privateAnswer waits for what only the requester of an envelope sees: an
// ephemeral ack payload or a response_url reply.
func (h *harness) privateAnswer(envelopeID string) slacktest.Message {
	h.t.Helper()
	return h.waitMessage(func(m slacktest.Message) bool {
		return (m.Method == "response_url" || m.Method == "ack") && m.EnvelopeID == envelopeID
	}, "the private answer to "+envelopeID)
}

// clickWhere clicks, as user, the button of m with label whose value ends
// with valueSuffix ("" matches any), waits for the ack, and returns the
// click's envelope id. Labels repeat on a roster or calls view ("Hold" on
// every row): the value says which.
func (h *harness) clickWhere(user string, m slacktest.Message, label, valueSuffix string) string {
	h.t.Helper()
	b := h.button(m.Buttons(), m.VisibleText(), label, valueSuffix)
	id, err := h.slack.ClickButton(user, m.Channel, m.TS, b.ActionID)
	if err != nil {
		h.t.Fatalf("click %q: %v", label, err)
	}
	if _, err := h.slack.WaitAck(h.ctx(), id); err != nil {
		h.t.Fatalf("ack for click on %q: %v", label, err)
	}
	return id
}

// button finds the button with label whose value ends with valueSuffix.
func (h *harness) button(bs []slacktest.Button, visible, label, valueSuffix string) slacktest.Button {
	h.t.Helper()
	for _, b := range bs {
		if b.Text == label && strings.HasSuffix(b.Value, valueSuffix) {
			return b
		}
	}
	h.t.Fatalf("no button %q with a value ending in %q in:\n%s\nbuttons: %+v", label, valueSuffix, visible, bs)
	return slacktest.Button{}
}

// hasButton reports whether a button with label is among bs.
func hasButton(bs []slacktest.Button, label string) bool {
	for _, b := range bs {
		if b.Text == label {
			return true
		}
	}
	return false
}

// inThread waits for a bot post in the thread under anchorTS of channel
// whose text contains s.
func (h *harness) inThread(channel, anchorTS, s string) slacktest.Message {
	h.t.Helper()
	return h.waitMessage(func(m slacktest.Message) bool {
		return m.Method == "chat.postMessage" && m.Channel == channel && m.ThreadTS == anchorTS && strings.Contains(m.Text, s)
	}, fmt.Sprintf("a reply containing %q in the thread %s/%s", s, channel, anchorTS))
}

// threadTexts returns the texts of the replies in a thread.
func (h *harness) threadTexts(channel, anchorTS string) []string {
	var out []string
	for _, m := range h.slack.ThreadReplies(channel, anchorTS) {
		out = append(out, m.Text)
	}
	return out
}

// homeViewID returns the id of the user's current Home view ("" if none).
func (h *harness) homeViewID(user string) string {
	v, _ := h.slack.HomeView(user)
	return v.ID
}

// nextHomeView waits until a Home view other than prevID is the user's
// current one and cond holds for it.
func (h *harness) nextHomeView(user, prevID, what string, cond func(slacktest.HomeView) bool) slacktest.HomeView {
	h.t.Helper()
	v, err := h.slack.WaitHomeView(h.ctx(), user, func(v slacktest.HomeView) bool { return v.ID != prevID && cond(v) })
	if err != nil {
		cur, _ := h.slack.HomeView(user)
		h.t.Fatalf("waiting for %s on %s's Home tab: %v\ncurrent view:\n%s", what, user, err, cur.VisibleText())
	}
	return v
}

// anyView accepts any Home view.
func anyView(slacktest.HomeView) bool { return true }

// openHome opens the user's Home tab, as Slack does when they tap the
// app, and returns the view the bot published for it.
func (h *harness) openHome(user string) (string, slacktest.HomeView) {
	h.t.Helper()
	prev := h.homeViewID(user)
	id, err := h.slack.OpenHome(h.ctx(), user)
	if err != nil {
		h.t.Fatalf("open %s's Home tab: %v", user, err)
	}
	return id, h.nextHomeView(user, prev, "the view published when the Home tab opened", anyView)
}

// homeClick clicks, as user, the button with label (and a value ending in
// valueSuffix) in the user's current Home view, waits for the ack, and
// returns the click's envelope id.
func (h *harness) homeClick(user, label, valueSuffix string) string {
	h.t.Helper()
	v, ok := h.slack.HomeView(user)
	if !ok {
		h.t.Fatalf("%s has no Home view to click %q in", user, label)
	}
	b := h.button(v.Buttons(), v.VisibleText(), label, valueSuffix)
	id, err := h.slack.ClickHomeButton(user, b.ActionID, b.Value)
	if err != nil {
		h.t.Fatalf("click %q on %s's Home: %v", label, user, err)
	}
	if _, err := h.slack.WaitAck(h.ctx(), id); err != nil {
		h.t.Fatalf("ack for the Home click on %q: %v", label, err)
	}
	return id
}

// homeClickView clicks like homeClick and returns the view the bot
// published in answer, once cond holds for it.
func (h *harness) homeClickView(user, label, valueSuffix string, cond func(slacktest.HomeView) bool) (string, slacktest.HomeView) {
	h.t.Helper()
	prev := h.homeViewID(user)
	id := h.homeClick(user, label, valueSuffix)
	return id, h.nextHomeView(user, prev, "the view published after the click on "+label, cond)
}

// viewContains returns a Home view condition: its visible text has every s.
func viewContains(ss ...string) func(slacktest.HomeView) bool {
	return func(v slacktest.HomeView) bool {
		text := v.VisibleText()
		for _, s := range ss {
			if !strings.Contains(text, s) {
				return false
			}
		}
		return true
	}
}

// requestsOf returns the logged Plivo requests of an operation.
func (h *harness) requestsOf(op string) []plivotest.Request {
	var out []plivotest.Request
	for _, r := range h.plivo.Requests() {
		if r.Op == op {
			out = append(out, r)
		}
	}
	return out
}

// updatesOf returns the logged Update Participant requests for a member of
// the sample MPC, as "hold=true" style strings, in order.
func (h *harness) updatesOf(member string) []string {
	var out []string
	for _, r := range h.requestsOf(plivotest.OpUpdateParticipant) {
		if !strings.HasSuffix(r.Path, "/Participant/"+member+"/") {
			continue
		}
		var body map[string]bool
		if err := json.Unmarshal(r.Body, &body); err != nil {
			h.t.Fatalf("update body %s: %v", r.Body, err)
		}
		for _, f := range []string{"mute", "hold", "coach_mode"} {
			if v, ok := body[f]; ok {
				out = append(out, fmt.Sprintf("%s=%v", f, v))
			}
		}
	}
	return out
}

// participant returns the simulator's state of a sample MPC member.
func (h *harness) participant(member string) plivotest.ParticipantState {
	h.t.Helper()
	st, ok := h.plivo.Participant(plivotest.SampleMPCName, member)
	if !ok {
		h.t.Fatalf("no member %s in the sample MPC", member)
	}
	return st
}

// outsideUpdate changes a member of the sample MPC as Plivo's console or
// the contact centre's dialler would: straight at Plivo, not through
// mpcbot.
func (h *harness) outsideUpdate(member string, u plivo.ParticipantUpdate) {
	h.t.Helper()
	pc, err := plivo.New(plivo.Config{AuthID: h.plivo.AuthID, AuthToken: h.plivo.AuthToken, BaseURL: h.plivo.URL})
	if err != nil {
		h.t.Fatalf("a Plivo client outside mpcbot: %v", err)
	}
	mpc, err := plivo.MPCByName(plivotest.SampleMPCName)
	if err != nil {
		h.t.Fatal(err)
	}
	if _, err := pc.UpdateParticipant(h.ctx(), mpc, plivo.Member(member), u); err != nil {
		h.t.Fatalf("update member %s outside mpcbot: %v", member, err)
	}
}

// apiIDPattern finds the api_ids a reply quotes.
var apiIDPattern = regexp.MustCompile(`api_id: ([0-9a-f-]{36})`)

// apiIDs returns the api_ids quoted in a text, in order.
func apiIDs(text string) []string {
	var out []string
	for _, m := range apiIDPattern.FindAllStringSubmatch(text, -1) {
		out = append(out, m[1])
	}
	return out
}

// auditAPIID returns the api_id an audit record gives for a member.
func auditAPIID(rec map[string]any, member string) string {
	m, _ := rec["member_"+member].(map[string]any)
	id, _ := m["api_id"].(string)
	return id
}

// changeAuditFor waits for the audit record of the change (not of a view)
// made by a request: an envelope, or a timer's revert (its timer id).
func (h *harness) changeAuditFor(requestID string) map[string]any {
	h.t.Helper()
	var found map[string]any
	waitUntil(h.t, waitFor, "the audit record of the change "+requestID, func() bool {
		for _, rec := range h.auditRecords() {
			if rec["request_id"] == requestID {
				found = rec
				return true
			}
		}
		return false
	})
	return found
}

// timedChange types a timed change and returns its anchor, its reply, the
// timer's id (from the Cancel timer button) and when it is due (from the
// audit record).
func (h *harness) timedChange(user, text, describe string) (anchor, reply slacktest.Message, timerID string, due time.Time) {
	h.t.Helper()
	var id string
	id, anchor, reply = h.change(user, text, describe)
	b := h.button(reply.Buttons(), reply.VisibleText(), "Cancel timer", "")
	_, timerID, ok := strings.Cut(b.Value, "|cancel-timer ")
	if !ok {
		h.t.Fatalf("Cancel timer button value %q", b.Value)
	}
	rec := h.changeAuditFor(id)
	if rec["timer_id"] != timerID {
		h.t.Fatalf("audit timer_id %v, button names %s", rec["timer_id"], timerID)
	}
	due, err := time.Parse(time.RFC3339Nano, fmt.Sprint(rec["timer_due"]))
	if err != nil {
		h.t.Fatalf("audit timer_due %v: %v", rec["timer_due"], err)
	}
	return anchor, reply, timerID, due
}

// afterTimersDue returns once every timer due by t has been run: it sets a
// timed mute of the sample agent due at least a second after t (the timer
// loop ticks every 500 ms and finishes one tick's reverts before the next)
// and waits for its revert. Tests use it to show that a timer did not fire,
// without sleeping.
func (h *harness) afterTimersDue(t time.Time) {
	h.t.Helper()
	agent := h.member("agent")
	secs := max(1, int(math.Ceil(time.Until(t.Add(time.Second)).Seconds())))
	text := fmt.Sprintf("mute test_mpc_1 %s for %ds", agent, secs)
	anchor, _, timerID, _ := h.timedChange(supervisorID, text, "mute member "+agent+" in test_mpc_1 for")
	h.inThread(channelID, anchor.TS, "⏱ after ")
	h.changeAuditFor(timerID)
}

// auditRecordsOf returns the audit records that carry an envelope id or a
// request id equal to id.
func (h *harness) auditRecordsOf(id string) []map[string]any {
	var out []map[string]any
	for _, rec := range h.auditRecords() {
		if rec["envelope_id"] == id || rec["request_id"] == id {
			out = append(out, rec)
		}
	}
	return out
}
