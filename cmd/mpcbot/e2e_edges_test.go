package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mpcbot/mpcbot/bot/slacktest"
	"github.com/mpcbot/mpcbot/plivo"
	"github.com/mpcbot/mpcbot/plivo/plivotest"
)

// What real Slack and Plivo do that the first fakes did not (issue 10),
// end to end through the real wiring: every command still ends in one
// visible outcome, and no secret reaches Slack or a log.

// A Plivo (or proxy) error body that echoes the request's headers and URL
// carries the Basic-auth value and the token: none of their forms reaches
// the thread, the audit record or the log.
func TestEdgeEchoedCredentialsNeverShown(t *testing.T) {
	t.Parallel()
	for _, mode := range []plivotest.EchoMode{plivotest.EchoInText, plivotest.EchoNested} {
		t.Run(fmt.Sprint(mode), func(t *testing.T) {
			t.Parallel()
			h := startBot(t)
			h.plivo.SetEchoHeaders(mode)
			id, _, reply := h.change(supervisorID, "mute test_mpc_1 999", "mute member 999")
			if !strings.Contains(reply.Text, "not found") {
				t.Fatalf("reply does not explain the 404:\n%s", reply.Text)
			}
			audit, _ := json.Marshal(h.auditFor(id))
			seen := h.logs.String() + h.dumpMessages() + allBlocks(h) + string(audit)
			for _, secret := range plivo.SecretForms(h.plivo.AuthID, h.plivo.AuthToken) {
				if strings.Contains(seen, secret) {
					t.Fatalf("a form of the Plivo credentials (%d chars) reached Slack or the log", len(secret))
				}
			}
		})
	}
}

// A double tap is the same person tapping twice: a stranger's refused tap
// of a button does not make a supervisor's tap of it "a second tap", while
// the supervisor tapping twice runs it once.
func TestEdgeDoubleTapIsPerUser(t *testing.T) {
	t.Parallel()
	h := startBot(t)
	customer := h.member("customer")
	_, _, reply := h.change(supervisorID, "hold test_mpc_1 "+customer, "hold member "+customer)
	before := len(h.plivo.AppliedUpdates())
	// The stranger is refused, and that takes nothing from the supervisor.
	refused := h.click(strangerID, reply, "Unhold "+customer)
	if m := h.responseFor(refused); !strings.Contains(m.Text, "not allowed") {
		t.Fatalf("stranger's tap: %q", m.Text)
	}
	first := h.click(supervisorID, reply, "Unhold "+customer)
	second := h.click(supervisorID, reply, "Unhold "+customer)
	h.auditFor(first)
	h.auditFor(second)
	if n := len(h.plivo.AppliedUpdates()) - before; n != 1 {
		t.Fatalf("%d Plivo updates for the supervisor's double tap after a stranger's tap, want 1", n)
	}
	statuses := map[any]int{}
	for _, id := range []string{first, second} {
		statuses[h.auditFor(id)["status"]]++
	}
	if statuses["ok"] != 1 || statuses["duplicate"] != 1 {
		t.Fatalf("audit statuses %v, want one ok and one duplicate", statuses)
	}
}

// A user group that Slack says no longer exists is dropped at once: its
// members are refused even though their last lookup succeeded.
func TestEdgeGoneUserGroupFailsClosed(t *testing.T) {
	t.Parallel()
	const group = "S0GONE1"
	h := startBot(t, withEnv("MPC_SUPERVISORS", group, "MPC_AGENTS", "", "MPC_GROUP_TTL", "200ms"), func(h *harness) {
		h.slack.SetUserGroup(group, supervisorID)
	})
	h.change(supervisorID, "mute test_mpc_1 "+h.member("customer"), "mute member")
	// The group is deleted in Slack: the next lookup answers no_such_subteam.
	h.slack.FailAlways("usergroups.users.list", slacktest.Failure{Error: "no_such_subteam"})
	waitUntil(t, waitFor, "the supervisor to be refused once the group is gone", func() bool {
		id, _ := h.slash(supervisorID, channelID, "list test_mpc_1")
		return strings.Contains(h.responseFor(id).Text, "not allowed")
	})
}

// mpcbot posts only to response_urls on Slack's hosts (and, in tests, the
// fake's, which SLACK_API_URL names): a payload naming another host gets
// nothing posted there, and the loss is logged with the envelope id.
func TestEdgeResponseURLOnlyToSlack(t *testing.T) {
	t.Parallel()
	var hits atomic.Int64
	elsewhere := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{"ok":true}`)
	}))
	t.Cleanup(elsewhere.Close)
	h := startBot(t)
	// A refused request answers through the response_url only.
	raw, _ := json.Marshal(map[string]any{
		"envelope_id": "e0000000-0000-4000-8000-00000000beef", "type": "slash_commands", "accepts_response_payload": true,
		"payload": map[string]any{"command": "/mpc", "text": "mute test_mpc_1 101", "user_id": strangerID, "user_name": "stranger",
			"channel_id": channelID, "team_id": slacktest.DefaultTeamID, "api_app_id": slacktest.DefaultAppID,
			"response_url": elsewhere.URL + "/commands/T0/1/x", "trigger_id": "1.2.3"},
	})
	id := h.slack.SendEnvelope(raw)
	if _, err := h.slack.WaitAck(h.ctx(), id); err != nil {
		t.Fatal(err)
	}
	h.auditFor(id)
	waitUntil(t, waitFor, "the lost reply to be logged", func() bool {
		for _, l := range h.logLines("reply lost: response_url failed") {
			if strings.Contains(l, id) && strings.Contains(l, "response_url_refused") {
				return true
			}
		}
		return false
	})
	if n := hits.Load(); n != 0 {
		t.Fatalf("%d requests to a response_url that is not Slack's", n)
	}
}

// Envelopes for another app (api_app_id that is not the one Slack said
// hello with) are acked and ignored, and logged once.
func TestEdgeForeignAppIgnored(t *testing.T) {
	t.Parallel()
	h := startBot(t)
	for range 3 {
		id := h.slack.SendSlashCommand(slacktest.SlashCommand{UserID: supervisorID, Text: "mute test_mpc_1 101", APIAppID: "A0SOMEONEELSE"})
		if _, err := h.slack.WaitAck(h.ctx(), id); err != nil {
			t.Fatalf("foreign envelope not acked: %v", err)
		}
	}
	h.waitLog("ignored envelopes for another Slack app (logged once per app)")
	h.mustServe() // the bot goes on serving its own app
	if n := len(h.logLines("ignored envelopes for another Slack app (logged once per app)")); n != 1 {
		t.Fatalf("%d log lines for the foreign app, want 1", n)
	}
	for _, r := range h.plivo.Requests() {
		if strings.Contains(r.Path, "/Participant/101/") && r.Method == http.MethodPost && strings.Contains(string(r.Body), "mute") {
			t.Fatalf("a foreign app's command reached Plivo: %s %s %s", r.Method, r.Path, r.Body)
		}
	}
}

// Oversized or odd Plivo data (an api_id and result strings of 60 000
// characters) still ends in a reply in the thread, bounded.
func TestEdgeOversizedPlivoAnswer(t *testing.T) {
	t.Parallel()
	h := startBot(t)
	h.plivo.SetOversized(60000)
	_, _, reply := h.change(supervisorID, "hold test_mpc_1 "+h.member("customer"), "hold member")
	if !strings.Contains(reply.Text, "hold") || len(reply.Text) > 4000 || len(reply.Blocks) > 20000 {
		t.Fatalf("reply of %d text bytes and %d block bytes:\n%.300s", len(reply.Text), len(reply.Blocks), reply.Text)
	}
}

// Slack refusing a reply's blocks after Plivo applied the change: the same
// reply goes again as plain text, in the same thread (not the same blocks
// elsewhere).
func TestEdgeInvalidBlocksRetriedAsPlainText(t *testing.T) {
	t.Parallel()
	h := startBot(t)
	customer := h.member("customer")
	_, anchor, reply := h.change(supervisorID, "hold test_mpc_1 "+customer, "hold member")
	since := time.Now()
	h.slack.FailNext("chat.postMessage", 1, slacktest.Failure{Error: "invalid_blocks"})
	id := h.click(supervisorID, reply, "Unhold "+customer)
	h.auditFor(id)
	plainReply := h.waitMessage(func(m slacktest.Message) bool {
		return m.Method == "chat.postMessage" && m.ThreadTS == anchor.TS && !m.Time.Before(since)
	}, "the plain-text reply in the thread")
	if len(plainReply.Blocks) != 0 || !strings.Contains(plainReply.Text, "✅ unhold") {
		t.Fatalf("reply after invalid_blocks: %d block bytes, text %q", len(plainReply.Blocks), plainReply.Text)
	}
	for _, m := range h.slack.Messages() {
		if m.Method == "response_url" && m.EnvelopeID == id {
			t.Fatalf("the refused blocks were sent through the response_url too: %q", m.Text)
		}
	}
}

// Slack's rate limit codes: rate_limited in an HTTP 200 and 429 with
// Retry-After are both retried; the reply arrives in the thread.
func TestEdgeSlackRateLimitCodes(t *testing.T) {
	t.Parallel()
	for _, f := range []slacktest.Failure{{Error: "rate_limited"}, {Status: http.StatusTooManyRequests, RetryAfter: 1}} {
		t.Run(fmt.Sprint(f.Status, f.Error), func(t *testing.T) {
			t.Parallel()
			h := startBot(t)
			h.slack.FailNext("chat.postMessage", 1, f)
			_, _, reply := h.change(supervisorID, "mute test_mpc_1 "+h.member("agent"), "mute member")
			if !strings.Contains(reply.Text, "✅ mute") {
				t.Fatalf("reply:\n%s", reply.Text)
			}
		})
	}
}

// Channels and threads that refuse the bot's post: the results come
// through the response_url with a note that says why there is no thread.
func TestEdgeRestrictedChannels(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, code string
		opt        slacktest.ChannelOption
	}{
		{"read-only", "restricted_action_read_only_channel", slacktest.ChannelReadOnly()},
		{"thread-only", "restricted_action_thread_only_channel", slacktest.ChannelThreadOnly()},
		{"archived", "is_archived", slacktest.ChannelArchived()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			const ch = "C0LIMITED"
			h := startBot(t, func(h *harness) {
				h.slack.AddChannel(ch, "limited", tt.opt, slacktest.ChannelMembers(supervisorID))
			})
			id, _ := h.slash(supervisorID, ch, "hold test_mpc_1 "+h.member("customer"))
			m := h.responseFor(id)
			if m.ResponseType != "in_channel" || !strings.Contains(m.Text, tt.code) || !strings.Contains(m.Text, "✅ hold") {
				t.Fatalf("results without a thread: %s %q", m.ResponseType, m.Text)
			}
		})
	}
	t.Run("locked thread", func(t *testing.T) {
		t.Parallel()
		h := startBot(t)
		customer := h.member("customer")
		_, anchor, reply := h.change(supervisorID, "hold test_mpc_1 "+customer, "hold member")
		if err := h.slack.LockThread(channelID, anchor.TS, true); err != nil {
			t.Fatal(err)
		}
		id := h.click(supervisorID, reply, "Unhold "+customer)
		m := h.responseFor(id)
		if !strings.Contains(m.Text, "restricted_action_thread_locked") || !strings.Contains(m.Text, "✅ unhold") {
			t.Fatalf("result from a locked thread: %q", m.Text)
		}
	})
}

// A channel panel that can no longer be edited (the edit window closed):
// the new state is posted as a new panel, and its block ids are fresh.
func TestEdgePanelUpdateFallsBackToNewMessage(t *testing.T) {
	t.Parallel()
	h := startBot(t)
	agent := h.member("agent")
	since := time.Now()
	h.slash(supervisorID, channelID, "list test_mpc_1 here")
	panel := h.waitMessage(func(m slacktest.Message) bool {
		return m.Method == "chat.postMessage" && m.ThreadTS == "" && strings.Contains(m.Text, "Participants of test_mpc_1") && !m.Time.Before(since)
	}, "channel panel")
	if err := h.slack.CloseEditWindow(channelID, panel.TS); err != nil {
		t.Fatal(err)
	}
	id, err := h.slack.ClickButton(supervisorID, channelID, panel.TS, buttonInRow(t, panel, agent, "Mute"))
	if err != nil {
		t.Fatal(err)
	}
	h.auditFor(id)
	fresh := h.waitMessage(func(m slacktest.Message) bool {
		return m.Method == "chat.postMessage" && m.TS != panel.TS && strings.Contains(m.Text, agent+" · agent · 🔇 muted")
	}, "a new panel with the agent muted")
	oldIDs, newIDs := blockIDs(panel), blockIDs(fresh)
	for id := range newIDs {
		if oldIDs[id] {
			t.Fatalf("the new panel reuses block id %q of the old one", id)
		}
	}
}

// A channel panel that came through the response_url (the bot is not in
// the channel) is refreshed with replace_original, never chat.update.
func TestEdgeResponseURLPanelReplacedInPlace(t *testing.T) {
	t.Parallel()
	const ch = "C0NOBOT"
	h := startBot(t, func(h *harness) {
		h.slack.AddChannel(ch, "nobot", slacktest.ChannelWithoutBot(), slacktest.ChannelMembers(supervisorID))
	})
	id, _ := h.slash(supervisorID, ch, "list test_mpc_1 here")
	panel := h.responseFor(id)
	if panel.ResponseType != "in_channel" || !strings.Contains(panel.Text, "not_in_channel") {
		t.Fatalf("panel through response_url: %s %q", panel.ResponseType, panel.Text)
	}
	agent := h.member("agent")
	cid, err := h.slack.ClickButton(supervisorID, ch, panel.TS, buttonInRow(t, panel, agent, "Mute"))
	if err != nil {
		t.Fatal(err)
	}
	replaced := h.waitMessage(func(m slacktest.Message) bool {
		return m.Method == "response_url" && m.EnvelopeID == cid && m.ReplaceOriginal
	}, "the panel replaced through the click's response_url")
	if !strings.Contains(replaced.Text, agent+" · agent · 🔇 muted") {
		t.Fatalf("replaced panel:\n%s", replaced.Text)
	}
	if n := h.slack.CallCount("chat.update"); n != 0 {
		t.Fatalf("%d chat.update calls for a panel the bot does not own", n)
	}
}

// Slack allows about one message per second per channel: ten supervisors
// acting in one channel within a few seconds each still get their result.
func TestEdgeTenSupervisorsOneChannel(t *testing.T) {
	t.Parallel()
	var sups []string
	for i := range 10 {
		sups = append(sups, fmt.Sprintf("U0SUP%02d", i))
	}
	h := startBotWith(t, []slacktest.Option{slacktest.WithPingInterval(500 * time.Millisecond), slacktest.WithChannelRateLimit(1, 3)},
		withEnv("MPC_SUPERVISORS", strings.Join(sups, ",")), func(h *harness) {
			for _, u := range sups {
				h.slack.AddUser(u, u)
				h.slack.JoinChannel(channelID, u)
			}
		})
	since := time.Now()
	var ids []string
	for i, u := range sups {
		action := "mute"
		if i%2 == 1 {
			action = "unmute"
		}
		id, _ := h.slash(u, channelID, action+" test_mpc_1 "+h.member("customer"))
		ids = append(ids, id)
	}
	deadline := 60 * time.Second
	waitUntil(t, deadline, "a result in a thread for each of the ten supervisors", func() bool {
		replies := 0
		for _, m := range h.slack.Messages() {
			if m.Method == "chat.postMessage" && m.ThreadTS != "" && !m.Time.Before(since) {
				replies++
			}
		}
		return replies == len(sups)
	})
	if n := failedCalls(h, "chat.postMessage"); n == 0 {
		t.Fatal("the channel's rate limit never applied: the test proves nothing")
	}
}

// Shutdown is bounded by SHUTDOWN_GRACE whatever Slack does: with Slack
// answering 503 and commands still running, the process stops within the
// grace and a small margin, and every notice it could not send is logged
// with its command.
func TestEdgeShutdownBoundedWhenSlackFails(t *testing.T) {
	t.Parallel()
	h := startBot(t, withEnv("SHUTDOWN_GRACE", "2s", "MPC_COMMAND_TIMEOUT", "30s"))
	h.plivo.SetDelay(20 * time.Second)
	var ids []string
	for range 20 {
		id, _ := h.slash(supervisorID, channelID, "mute test_mpc_1 "+h.member("agent"))
		ids = append(ids, id)
	}
	waitUntil(t, waitFor, "the commands to reach Plivo", func() bool { return len(h.plivo.Requests()) >= 1 })
	for _, m := range []string{"chat.postMessage", "response_url"} {
		h.slack.FailAlways(m, slacktest.Failure{Status: http.StatusServiceUnavailable})
	}
	start := time.Now()
	_ = h.stop()
	if took := time.Since(start); took > 2*time.Second+5*time.Second+2*time.Second {
		t.Fatalf("shutdown took %v with SHUTDOWN_GRACE=2s", took)
	}
	logged := strings.Join(h.logLines("reply lost: response_url failed"), "\n")
	for _, id := range ids {
		if !strings.Contains(logged, id) {
			t.Fatalf("no log line for the lost reply of %s", id)
		}
	}
}

// Plivo 403 (geo permissions, unverified account) is not "credentials
// rejected": the user sees Plivo's reason and /readyz stays ready.
func TestEdgePlivoForbidden(t *testing.T) {
	t.Parallel()
	h := startBot(t)
	h.plivo.SetForbidden("This account is not allowed to call this destination (geo permissions)")
	_, _, reply := h.change(supervisorID, "mute test_mpc_1 "+h.member("agent"), "mute member")
	if !strings.Contains(reply.Text, "geo permissions") || strings.Contains(reply.Text, "credentials") {
		t.Fatalf("403 reply:\n%s", reply.Text)
	}
	if code, body := h.get("/readyz"); code != http.StatusOK {
		t.Fatalf("/readyz after a 403: %d %q", code, body)
	}
}

// Slack turns a dotted call name into link markup before the bot sees it:
// "/mpc hold sales.eu all" arrives as <http://sales.eu|sales.eu>.
func TestEdgeLinkedCallName(t *testing.T) {
	t.Parallel()
	h := startBot(t, func(h *harness) {
		if _, err := h.plivo.CreateMPC(plivotest.MPCSpec{Name: "sales.eu"}); err != nil {
			t.Fatal(err)
		}
		h.plivo.AddParticipant("sales.eu", "customer")
	})
	_, _, reply := h.change(supervisorID, "hold <http://sales.eu|sales.eu> all", "hold all participants in sales.eu")
	if !strings.Contains(reply.Text, "✅ hold") {
		t.Fatalf("reply:\n%s", reply.Text)
	}
}

// blockIDs returns the block ids of a message.
func blockIDs(m slacktest.Message) map[string]bool {
	var blocks []struct {
		BlockID string `json:"block_id"`
	}
	_ = json.Unmarshal(m.Blocks, &blocks)
	ids := map[string]bool{}
	for _, b := range blocks {
		if b.BlockID != "" {
			ids[b.BlockID] = true
		}
	}
	return ids
}
