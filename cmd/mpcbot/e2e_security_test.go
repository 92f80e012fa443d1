package main

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/mpcbot/mpcbot/bot/slacktest"
	"github.com/mpcbot/mpcbot/commands"
	"github.com/mpcbot/mpcbot/plivo/plivotest"
)

// Every cell of the permission matrix, end to end: supervisor / agent /
// stranger × each action × typed / clicked × allowed / other channel.
func TestPermissionMatrix(t *testing.T) {
	t.Parallel()
	const other = "C0OTHER"
	bot := startBot(t, withEnv("MPC_CHANNELS", channelID))
	bot.slack.AddChannel(other, "elsewhere", slacktest.ChannelMembers(supervisorID, agentID, strangerID))
	customer, sup := bot.member("customer"), bot.member("supervisor")
	users := []struct{ name, id string }{{"supervisor", supervisorID}, {"agent", agentID}, {"stranger", strangerID}}
	for _, u := range users {
		for _, a := range commands.Actions {
			for _, how := range []string{"typed", "clicked"} {
				for _, ch := range []string{channelID, other} {
					target := customer
					if a.IsCoaching() {
						target = sup
					}
					text := fmt.Sprintf("%s test_mpc_1 %s", a, target)
					want := "ok"
					switch {
					case ch == other:
						want = commands.RefusedChannel
					case u.name == "stranger":
						want = commands.RefusedNotAllowed
					case u.name == "agent" && a.IsCoaching():
						want = commands.RefusedCoachSupervisor
					}
					t.Run(fmt.Sprintf("%s/%s/%s/%s", u.name, a, how, ch), func(t *testing.T) {
						h := bot.in(t)
						var id string
						if how == "typed" {
							id, _ = h.slash(u.id, ch, text)
						} else {
							ts := h.slack.AddUserMessage(ch, supervisorID, "a result with buttons")
							cmd, err := commands.Parse(text)
							if err != nil {
								t.Fatal(err)
							}
							id = h.slack.SendBlockAction(slacktest.BlockAction{UserID: u.id, ChannelID: ch, MessageTS: ts,
								ActionID: "mpc.run:0", Value: commands.EncodeButton(cmd, time.Now())})
							if _, err := h.slack.WaitAck(h.ctx(), id); err != nil {
								t.Fatal(err)
							}
						}
						rec := h.auditFor(id)
						if want == "ok" {
							if rec["status"] != "ok" {
								t.Fatalf("audit %v, want ok", rec)
							}
							return
						}
						if rec["status"] != "refused" || rec["refusal"] != want {
							t.Fatalf("audit %v, want refusal %s", rec, want)
						}
						m := h.responseFor(id)
						if !m.Ephemeral || m.User != u.id {
							t.Fatalf("refusal not ephemeral to %s: %+v", u.id, m)
						}
						fix := map[string]string{commands.RefusedChannel: "MPC_CHANNELS", commands.RefusedNotAllowed: "MPC_AGENTS",
							commands.RefusedCoachSupervisor: "MPC_SUPERVISORS"}[want]
						if !strings.Contains(m.Text, fix) {
							t.Fatalf("refusal %q does not name %s", m.Text, fix)
						}
					})
				}
			}
		}
	}
	// Refusals never reached Plivo: exactly the allowed cells did
	// (supervisor 6×2 + agent 4×2 in the allowed channel).
	if n := len(bot.updateRequests(0)); n != 20 {
		t.Fatalf("%d Plivo updates, want 20 (one per allowed cell)", n)
	}
}

// Access can be granted by user group (S…); the membership is cached and
// refreshed in the background, and a Slack outage keeps the last known
// membership (logged) instead of locking everyone out.
func TestUserGroupsWithSlackOutage(t *testing.T) {
	t.Parallel()
	const member, outsider = "U0GRPMEMBER", "U0OUTSIDER"
	h := startBot(t, withEnv("MPC_SUPERVISORS", "S0SUPERS", "MPC_AGENTS", "", "MPC_GROUP_TTL", "200ms"), func(h *harness) {
		h.slack.SetUserGroup("S0SUPERS", member)
		h.slack.AddUser(member, "grouped")
		h.slack.AddUser(outsider, "outsider")
		h.slack.JoinChannel(channelID, member)
		h.slack.JoinChannel(channelID, outsider)
	})
	allowed := func(user string) bool {
		t.Helper()
		id, _ := h.slash(user, channelID, "list test_mpc_1")
		return h.auditFor(id)["status"] == "ok"
	}
	if !allowed(member) {
		t.Fatal("group member refused")
	}
	if allowed(outsider) {
		t.Fatal("non-member allowed")
	}
	// Slack's usergroups API goes down; the cached entry expires.
	h.slack.FailUserGroups(1000)
	waitUntil(t, waitFor, "the outage to be logged (last known membership)", func() bool {
		if strings.Contains(h.logs.String(), "last known membership") {
			return true
		}
		allowed(member) // triggers refreshes of the stale entry
		return false
	})
	if !allowed(member) {
		t.Fatal("group member refused during a Slack outage (last known membership should be used)")
	}
	if allowed(outsider) {
		t.Fatal("outage granted access to a non-member")
	}
	if h.slack.CallCount("usergroups.users.list") < 3 {
		t.Fatalf("usergroups.users.list called %d times; the cache should refresh", h.slack.CallCount("usergroups.users.list"))
	}
}

// A group that cannot be resolved at all grants nothing, and says so.
func TestUserGroupNeverResolvedFailsClosed(t *testing.T) {
	t.Parallel()
	h := startBot(t, withEnv("MPC_SUPERVISORS", "S0SUPERS", "MPC_AGENTS", ""), func(h *harness) {
		h.slack.SetUserGroup("S0SUPERS", supervisorID)
		h.slack.FailUserGroups(1000)
	})
	id, _ := h.slash(supervisorID, channelID, "list test_mpc_1")
	if rec := h.auditFor(id); rec["status"] != "refused" {
		t.Fatalf("audit %v, want refused", rec)
	}
	if !strings.Contains(h.logs.String(), "user-group lookup failed") {
		t.Fatal("the failed lookup is not logged")
	}
}

// One audit record per command and per click with who, where, what,
// outcome per field, api_id, latency and envelope id; a one-line summary
// per change in MPC_AUDIT_CHANNEL; an audit channel that fails never
// costs the user their reply.
func TestAuditRecords(t *testing.T) {
	t.Parallel()
	const auditChannel = "C0AUDIT"
	h := startBot(t, withEnv("MPC_AUDIT_CHANNEL", auditChannel, "MPC_CONFIRM_ALL_ABOVE", "1"), func(h *harness) {
		h.slack.AddChannel(auditChannel, "mpc-audit")
	})
	customer := h.member("customer")
	tests := []struct {
		user, text string
		want       map[string]any
	}{
		{supervisorID, "mute,hold test_mpc_1 " + customer, map[string]any{"status": "ok", "actions": "mute,hold", "members": customer, "source": "typed"}},
		{supervisorID, "mute test_mpc_1 999", map[string]any{"status": "failed", "mpc": "test_mpc_1"}},
		{strangerID, "mute test_mpc_1 all", map[string]any{"status": "refused", "refusal": "not_allowed"}},
		{supervisorID, "hold test_mpc_1 all", map[string]any{"status": "needs_confirmation", "live_members": float64(3)}},
		{supervisorID, "hlod test_mpc_1 all", map[string]any{"status": "usage_error", "request": "usage_error"}},
		{supervisorID, "list test_mpc_1", map[string]any{"status": "ok", "request": "list"}},
	}
	for _, tt := range tests {
		id, _ := h.slash(tt.user, channelID, tt.text)
		rec := h.auditFor(id)
		for k, v := range tt.want {
			if rec[k] != v {
				t.Errorf("%q: audit[%s] = %v, want %v (record %v)", tt.text, k, rec[k], v, rec)
			}
		}
		for _, k := range []string{"user_id", "user_name", "channel_id", "envelope_id", "time"} {
			if rec[k] == nil || rec[k] == "" {
				t.Errorf("%q: audit record lacks %s: %v", tt.text, k, rec)
			}
		}
	}
	// The successful change has per-field results and the api_id.
	ok := h.auditRecords()[0]
	per, _ := ok["member_"+customer].(map[string]any)
	fields, _ := per["fields"].(map[string]any)
	if per["api_id"] == "" || per["api_id"] == nil || fields["mute"] != "ok" || fields["hold"] != "ok" || ok["latency"] == nil {
		t.Fatalf("per-member audit = %v", ok)
	}
	// Summaries in the audit channel for the two attempted changes.
	h.waitMessage(func(m slacktest.Message) bool {
		return m.Channel == auditChannel && strings.Contains(m.Text, "mute + hold member "+customer) && strings.Contains(m.Text, supervisorID)
	}, "audit summary of the change")
	h.waitMessage(func(m slacktest.Message) bool {
		return m.Channel == auditChannel && strings.Contains(m.Text, "999 failed (not_found)")
	}, "audit summary of the failure")
}

func TestAuditChannelFailureNeverCostsTheReply(t *testing.T) {
	t.Parallel()
	h := startBot(t, withEnv("MPC_AUDIT_CHANNEL", "C0NOBOTAUDIT"), func(h *harness) {
		h.slack.AddChannel("C0NOBOTAUDIT", "audit-nobot", slacktest.ChannelWithoutBot())
	})
	since := time.Now()
	h.slash(supervisorID, channelID, "mute test_mpc_1 all")
	h.anchorAndReply(since, channelID, "mute all")
	h.waitLog("posting to the audit channel failed")
}

// User text is echoed inert: names that look like mentions ping nobody.
func TestEscapingEndToEnd(t *testing.T) {
	t.Parallel()
	h := startBot(t)
	for _, name := range []string{"x<!channel>", "a&amp;b<!here>", "q<@U0AGENT1>"} {
		since := time.Now()
		h.slash(supervisorID, channelID, "mute "+name+" 101")
		anchor, reply := h.anchorAndReply(since, channelID, "mute member 101")
		for _, m := range []slacktest.Message{anchor, reply} {
			for _, mention := range m.Mentions() {
				if mention != "<@"+supervisorID+">" {
					t.Errorf("%q: message pings %s:\n%s", name, mention, m.Text)
				}
			}
		}
		if !strings.Contains(reply.Text, "&lt;") {
			t.Errorf("%q: the name is not shown escaped:\n%s", name, reply.Text)
		}
	}
	// A bare mention as the MPC is refused before anything happens.
	_, ack := h.slash(supervisorID, channelID, "mute <!channel> all")
	if !strings.Contains(string(ack.Payload), "Slack mention") {
		t.Fatalf("ack %s", ack.Payload)
	}
}

// Oversized and malformed envelopes, unknown envelope types and
// interaction types are logged and acked, never a crash; the bot keeps
// serving.
func TestHostileEnvelopes(t *testing.T) {
	t.Parallel()
	h := startBot(t)
	raws := []string{
		`{"envelope_id":"bad-1","type":"brand_new_type","payload":{},"accepts_response_payload":false}`,
		`{"envelope_id":"bad-2","type":"slash_commands","payload":"not an object","accepts_response_payload":true}`,
		`{"envelope_id":"bad-3","type":"interactive","payload":[1,2,3],"accepts_response_payload":false}`,
		`{"envelope_id":"bad-4","type":"interactive","payload":{"type":"view_submission","user":{"id":"U0SUPER1"},"view":{"callback_id":"x"}},"accepts_response_payload":true}`,
		`{"envelope_id":"bad-5","type":"events_api","payload":{"type":"event_callback","event":{"type":"app_mention","text":"hi"}},"accepts_response_payload":false,"retry_attempt":0,"retry_reason":""}`,
	}
	for _, raw := range raws {
		id := h.slack.SendEnvelope([]byte(raw))
		if _, err := h.slack.WaitAck(h.ctx(), id); err != nil {
			t.Errorf("envelope %s not acked: %v", raw[:40], err)
		}
	}
	// Not even JSON: nothing to ack, but the connection and bot survive.
	h.slack.SendEnvelope([]byte(`{{{ not json`))
	// A 100 KB slash command text.
	_, ack := h.slash(supervisorID, channelID, "mute "+strings.Repeat("x", 100_000)+" all")
	if !strings.Contains(string(ack.Payload), "characters long") {
		t.Fatalf("oversized command ack: %.200s", ack.Payload)
	}
	since := time.Now()
	h.slash(supervisorID, channelID, "hold test_mpc_1 all")
	h.anchorAndReply(since, channelID, "hold all participants")
	if n := len(h.updateRequests(0)); n != 1 {
		t.Fatalf("%d Plivo updates, want 1", n)
	}
}

// No token or auth secret appears in any log line, error or reply, at any
// log level: through successes, Slack and Plivo failures, a Plivo 401, and
// configuration errors.
func TestSecretsNeverLeak(t *testing.T) {
	t.Parallel()
	const plivoSecret = "plivo-secret-token-DO-NOT-LEAK-0123456789"
	var outputs []string
	secretsOf := func(h *harness) []string {
		return []string{h.env["SLACK_APP_TOKEN"], h.env["SLACK_BOT_TOKEN"], h.plivo.AuthToken, plivoSecret}
	}

	// A healthy bot at debug level through a success, a Plivo 404, retries and Slack failures.
	h := startBot(t)
	h.plivo.FailNext(1, plivoFault(429))
	h.slack.FailNext("chat.postMessage", 1, slacktest.Failure{Status: 500})
	since := time.Now()
	h.slash(supervisorID, channelID, "mute test_mpc_1 all")
	h.anchorAndReply(since, channelID, "mute all")
	for _, c := range []struct{ user, text string }{
		{supervisorID, "mute test_mpc_1 999"},
		{strangerID, "mute test_mpc_1 999"},
		{supervisorID, "list test_mpc_1"},
	} {
		id, _ := h.slash(c.user, channelID, c.text)
		h.auditFor(id) // written once the answer is sent
	}
	outputs = append(outputs, h.logs.String(), h.dumpMessages(), allBlocks(h))
	secrets := secretsOf(h)
	_ = h.stop()

	// A bot whose Plivo token is wrong: every call is a 401.
	h2 := startBot(t, withEnv("PLIVO_AUTH_TOKEN", plivoSecret))
	since = time.Now()
	h2.slash(supervisorID, channelID, "mute test_mpc_1 101")
	_, reply := h2.anchorAndReply(since, channelID, "mute member 101")
	if !strings.Contains(reply.Text, "Plivo refused mpcbot's credentials") {
		t.Fatalf("401 reply:\n%s", reply.Text)
	}
	if code, body := h2.get("/readyz"); code != 503 || !strings.Contains(body, "credentials rejected") {
		t.Fatalf("readyz after a 401: %d %q", code, body)
	}
	outputs = append(outputs, h2.logs.String(), h2.dumpMessages(), allBlocks(h2))
	secrets = append(secrets, secretsOf(h2)...)
	_ = h2.stop()

	// Configuration errors at every log level, and a valid configuration
	// whose Slack cannot be reached: it runs until it has failed to
	// connect twice (a failure, and the retry after it).
	unreachable := newDroppingServer(t)
	for _, level := range []string{"debug", "info", "warn", "error"} {
		for _, env := range []map[string]string{
			{"SLACK_APP_TOKEN": "xoxb-looks-like-a-bot-token-SECRET1", "SLACK_BOT_TOKEN": "xapp-swapped-SECRET2", "PLIVO_AUTH_ID": "MA1", "PLIVO_AUTH_TOKEN": plivoSecret},
			{"SLACK_APP_TOKEN": "xapp-SECRET3", "SLACK_BOT_TOKEN": "xoxb-SECRET4", "PLIVO_AUTH_ID": "MA1", "PLIVO_AUTH_TOKEN": plivoSecret, "PLIVO_RATE": "fast", "PLIVO_API_URL": "http://user:" + plivoSecret + "@example.com"},
			{"SLACK_APP_TOKEN": "xapp-SECRET5", "SLACK_BOT_TOKEN": "xoxb-SECRET6", "PLIVO_AUTH_ID": "MA1", "PLIVO_AUTH_TOKEN": plivoSecret, "SLACK_API_URL": unreachable.URL + "/api/", "HTTP_ADDR": "", "MPC_AGENTS": "*", "LOG_LEVEL": level},
		} {
			env["LOG_LEVEL"] = level
			var stdout, stderr syncBuffer
			ctx, cancel := context.WithCancel(context.Background())
			exit := make(chan int, 1)
			go func() { exit <- run(ctx, []string{"run"}, env, strings.NewReader(""), &stdout, &stderr) }()
			if env["SLACK_API_URL"] != "" {
				tried := unreachable.requests.Load()
				waitUntil(t, waitFor, "the bot to try the unreachable Slack twice", func() bool { return unreachable.requests.Load() >= tried+2 })
			}
			cancel()
			var code int
			select {
			case code = <-exit:
			case <-time.After(waitFor):
				t.Fatalf("run did not return within %v of being cancelled", waitFor)
			}
			if env["SLACK_API_URL"] == "" && code == 0 {
				t.Fatalf("bad configuration accepted: %v", env)
			}
			outputs = append(outputs, stdout.String(), stderr.String())
			for k, v := range env {
				if strings.Contains(k, "TOKEN") {
					secrets = append(secrets, v)
				}
			}
		}
	}
	for _, out := range outputs {
		for _, s := range secrets {
			if s != "" && strings.Contains(out, s) {
				t.Fatalf("secret %q leaked in output:\n%.2000s", s, out)
			}
		}
	}
}

func allBlocks(h *harness) string {
	var b strings.Builder
	for _, m := range h.slack.Messages() {
		b.Write(m.Blocks)
	}
	for _, c := range h.slack.Calls() {
		fmt.Fprintf(&b, "%v\n", c.Params)
	}
	return b.String()
}

func plivoFault(status int) plivotest.Fault { return plivotest.Fault{Status: status} }

// droppingServer is an HTTP server that closes every connection without
// an answer, like an unreachable host, and counts the requests.
type droppingServer struct {
	*httptest.Server
	requests atomic.Int64
}

func newDroppingServer(t *testing.T) *droppingServer {
	d := &droppingServer{}
	d.Server = httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {
		d.requests.Add(1)
		panic(http.ErrAbortHandler) // no response: the client sees the connection close
	}))
	t.Cleanup(d.Close)
	return d
}
