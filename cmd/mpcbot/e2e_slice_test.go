package main

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/mpcbot/mpcbot/bot/slacktest"
	"github.com/mpcbot/mpcbot/plivo/plivotest"
)

// The vertical slice end to end: /mpc over Socket Mode → ack → anchor →
// rate-limited Plivo update → per-field results in the anchor's thread.
func TestSliceChanges(t *testing.T) {
	t.Parallel()
	bot := startBot(t)
	customer, supervisor := bot.member("customer"), bot.member("supervisor")
	tests := []struct {
		name, text, anchor string
		wantBody           []string // fields in the one Plivo request
		wantLines          []string // per-field lines in the thread reply
		check              func(t *testing.T)
	}{
		{
			name: "hold all", text: "hold test_mpc_1 all", anchor: "hold all participants in test_mpc_1",
			wantBody:  []string{`"hold":true`},
			wantLines: []string{"✅ hold: MPC: test_mpc_1 hold/unhold member(s) succeeded"},
			check: func(t *testing.T) {
				for _, p := range bot.plivo.Participants(plivotest.SampleMPCName) {
					if !p.Hold {
						t.Errorf("member %s not on hold", p.MemberID)
					}
				}
			},
		},
		{
			name: "mute one member", text: "mute test_mpc_1 " + customer, anchor: "mute member " + customer,
			wantBody:  []string{`"mute":true`},
			wantLines: []string{"✅ mute: MPC: test_mpc_1 mute/unmute member(s) succeeded"},
			check: func(t *testing.T) {
				if st, _ := bot.plivo.Participant(plivotest.SampleMPCName, customer); !st.Mute {
					t.Error("customer not muted")
				}
			},
		},
		{
			name: "uncoach then coach a supervisor", text: "uncoach test_mpc_1 " + supervisor, anchor: "uncoach member " + supervisor,
			wantBody:  []string{`"coach_mode":false`},
			wantLines: []string{"✅ uncoach: MPC: test_mpc_1 coach_mode enable/disable succeeded"},
			check: func(t *testing.T) {
				if st, _ := bot.plivo.Participant(plivotest.SampleMPCName, supervisor); st.CoachMode {
					t.Error("supervisor still in coach mode")
				}
			},
		},
		{
			name: "combined in one call", text: "unmute , unhold test_mpc_1 " + customer, anchor: "unmute + unhold member " + customer,
			wantBody: []string{`"mute":false`, `"hold":false`},
			wantLines: []string{
				"✅ unmute: MPC: test_mpc_1 mute/unmute member(s) succeeded",
				"✅ unhold: MPC: test_mpc_1 hold/unhold member(s) succeeded",
			},
			check: func(t *testing.T) {
				if st, _ := bot.plivo.Participant(plivotest.SampleMPCName, customer); st.Mute || st.Hold {
					t.Errorf("customer state %+v", st)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := bot.in(t)
			before := len(h.plivo.Requests())
			sent := time.Now()
			_, ack := h.slash(supervisorID, channelID, tt.text)
			if len(ack.Payload) != 0 && string(ack.Payload) != "{}" {
				t.Fatalf("a change was acked with a message: %s", ack.Payload)
			}
			if ack.Late {
				t.Fatal("ack arrived after Slack's 3 s deadline")
			}
			anchor, reply := h.anchorAndReply(sent, channelID, tt.anchor)
			if !strings.Contains(anchor.Text, "<@"+supervisorID+">") {
				t.Errorf("anchor does not say who asked: %q", anchor.Text)
			}
			reqs := h.updateRequests(before)
			if len(reqs) != 1 {
				t.Fatalf("%d Plivo updates, want exactly 1: %+v", len(reqs), reqs)
			}
			for _, f := range tt.wantBody {
				if !strings.Contains(string(reqs[0].Body), f) {
					t.Errorf("Plivo body %s lacks %s", reqs[0].Body, f)
				}
			}
			for _, l := range tt.wantLines {
				if !strings.Contains(reply.Text, l) {
					t.Errorf("thread reply text (the notification) lacks %q:\n%s", l, reply.Text)
				}
				if !strings.Contains(reply.VisibleText(), l) {
					t.Errorf("thread reply blocks lack %q", l)
				}
			}
			if !strings.Contains(reply.Text, "api_id: ") {
				t.Errorf("thread reply lacks Plivo's api_id:\n%s", reply.Text)
			}
			if len(reply.Buttons()) == 0 {
				t.Error("thread reply offers no buttons")
			}
			tt.check(t)
		})
	}
}

// The ack never waits for Plivo: with Plivo taking 2 s to answer, the ack
// arrives while the request is still in flight.
func TestSliceAckBeforePlivoAnswers(t *testing.T) {
	t.Parallel()
	h := startBot(t)
	const plivoDelay = 2 * time.Second
	h.plivo.SetDelay(plivoDelay)
	since := time.Now()
	_, ack := h.slash(supervisorID, channelID, "mute test_mpc_1 "+h.member("agent"))
	_, reply := h.anchorAndReply(since, channelID, "mute member")
	reqs := h.updateRequests(0)
	if len(reqs) != 1 {
		t.Fatalf("%d updates", len(reqs))
	}
	if !ack.At.Before(reqs[0].Time.Add(plivoDelay)) {
		t.Fatalf("ack at %v, after Plivo answered (request at %v + %v)", ack.At, reqs[0].Time, plivoDelay)
	}
	if !reply.Time.After(ack.At) {
		t.Fatal("reply before ack")
	}
}

// Usage errors, help and the coach-on-all refusal are ephemeral acks that
// show the correct usage; nothing reaches Plivo.
func TestSliceAckMessages(t *testing.T) {
	t.Parallel()
	h := startBot(t)
	tests := []struct {
		text string
		want []string
	}{
		{"help", []string{"controls live Plivo multiparty calls", "/mpc list"}},
		{"?", []string{"controls live Plivo multiparty calls"}},
		{"coach test_mpc_1 all", []string{"coach_mode can be updated only for a specific member_id", "Usage:"}},
		{"hlod test_mpc_1 all", []string{"Did you mean `hold`?", "Usage:"}},
		{"mute,unmute test_mpc_1 all", []string{"contradict", "Usage:"}},
		{"hold ../../Account all", []string{"not a valid MPC name", "Usage:"}},
	}
	for _, tt := range tests {
		_, ack := h.slash(supervisorID, channelID, tt.text)
		var p struct {
			ResponseType string `json:"response_type"`
			Text         string `json:"text"`
		}
		if err := json.Unmarshal(ack.Payload, &p); err != nil {
			t.Fatalf("%q: ack payload %s: %v", tt.text, ack.Payload, err)
		}
		if p.ResponseType != "ephemeral" {
			t.Errorf("%q: response_type %q, want ephemeral", tt.text, p.ResponseType)
		}
		for _, w := range tt.want {
			if !strings.Contains(p.Text, w) {
				t.Errorf("%q: ack text lacks %q:\n%s", tt.text, w, p.Text)
			}
		}
		if ack.Error != "" {
			t.Errorf("%q: Slack refused the ack payload: %s", tt.text, ack.Error)
		}
	}
	if n := len(h.plivo.Requests()); n != 0 {
		t.Fatalf("%d Plivo requests for commands that must not reach Plivo", n)
	}
}

func TestSliceUnauthorizedUser(t *testing.T) {
	t.Parallel()
	h := startBot(t)
	id, _ := h.slash(strangerID, channelID, "hold test_mpc_1 all")
	m := h.responseFor(id)
	if !m.Ephemeral || m.User != strangerID {
		t.Fatalf("refusal is not ephemeral to the requester: %+v", m)
	}
	for _, want := range []string{strangerID, "MPC_AGENTS", "MPC_SUPERVISORS"} {
		if !strings.Contains(m.Text, want) {
			t.Errorf("refusal lacks %q: %s", want, m.Text)
		}
	}
	if n := len(h.plivo.Requests()); n != 0 {
		t.Fatalf("a refused command reached Plivo (%d requests)", n)
	}
	if rec := h.auditFor(id); rec["status"] != "refused" || rec["refusal"] != "not_allowed" {
		t.Fatalf("audit record = %v", rec)
	}
}

func TestSlicePlivoFailures(t *testing.T) {
	t.Parallel()
	bot := startBot(t, withEnv("PLIVO_TIMEOUT", "2s"))
	customer := bot.member("customer")

	t.Run("404 unknown member", func(t *testing.T) {
		h := bot.in(t)
		since := time.Now()
		h.slash(supervisorID, channelID, "mute test_mpc_1 999")
		_, reply := h.anchorAndReply(since, channelID, "mute member 999")
		for _, want := range []string{"❌ mute", "999", "HTTP 404", "/mpc list test_mpc_1", "api_id: "} {
			if !strings.Contains(reply.Text, want) {
				t.Errorf("reply lacks %q:\n%s", want, reply.Text)
			}
		}
	})

	for _, tt := range []struct {
		name  string
		fault plivotest.Fault
	}{
		{"429 with Retry-After is retried", plivotest.Fault{Status: 429, RetryAfter: "1"}},
		{"500 is retried", plivotest.Fault{Status: 500}},
		{"503 on the update and on the read back is retried", plivotest.Fault{Status: 503}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			h := bot.in(t)
			h.plivo.ResetLog()
			n := 1
			if strings.Contains(tt.name, "read back") {
				n = 2
			}
			h.plivo.FailNext(n, tt.fault)
			since := time.Now()
			h.slash(supervisorID, channelID, "hold test_mpc_1 "+customer)
			_, reply := h.anchorAndReply(since, channelID, "hold member "+customer+" in test_mpc_1")
			if !strings.Contains(reply.Text, "✅ hold: MPC: test_mpc_1 hold/unhold member(s) succeeded") {
				t.Fatalf("reply after a retried %d:\n%s", tt.fault.Status, reply.Text)
			}
			// The update is sent twice (fault, then the retry); in between
			// the state is read back, to make sure the first one was not
			// applied after all.
			if got := len(h.updateRequests(0)); got != 2 {
				t.Errorf("%d Plivo updates, want 2 (fault then retry)", got)
			}
			if got := len(h.plivo.AppliedUpdates()); got != 1 {
				t.Errorf("%d applied updates, want 1", got)
			}
			// unhold again for the next case
			h.plivo.ResetLog()
			since = time.Now()
			h.slash(supervisorID, channelID, "unhold test_mpc_1 "+customer)
			h.anchorAndReply(since, channelID, "unhold member "+customer)
		})
	}
}

// Where the bot can't post (a private channel it is not in, a DM), the
// results come through the response_url, saying why there is no thread.
func TestSliceNoThreadFallback(t *testing.T) {
	t.Parallel()
	h := startBot(t)
	h.slack.AddChannel("G0PRIVATE", "secret", slacktest.ChannelPrivate(), slacktest.ChannelWithoutBot(), slacktest.ChannelMembers(supervisorID))
	h.slack.AddChannel("C0NOBOT", "public-nobot", slacktest.ChannelWithoutBot(), slacktest.ChannelMembers(supervisorID))
	for _, tt := range []struct{ channel, code string }{
		{"G0PRIVATE", "channel_not_found"},
		{"C0NOBOT", "not_in_channel"},
	} {
		id, _ := h.slash(supervisorID, tt.channel, "mute test_mpc_1 all")
		m := h.responseFor(id)
		if !strings.Contains(m.Text, "No thread") || !strings.Contains(m.Text, tt.code) {
			t.Errorf("%s: fallback does not say why there is no thread: %q", tt.channel, m.Text)
		}
		if !strings.Contains(m.Text, "✅ mute: MPC: test_mpc_1 mute/unmute member(s) succeeded") {
			t.Errorf("%s: fallback lacks the results: %q", tt.channel, m.Text)
		}
		if m.ResponseType != "in_channel" {
			t.Errorf("%s: response_type %q, want in_channel", tt.channel, m.ResponseType)
		}
	}
}
