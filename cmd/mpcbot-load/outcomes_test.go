package main

import (
	"testing"

	"github.com/mpcbot/mpcbot/bot/slacktest"
)

func TestTallyOutcomes(t *testing.T) {
	cmds := []sentCommand{
		{EnvelopeID: "e1", UserID: "U0L1"},
		{EnvelopeID: "e2", UserID: "U0L2"},
		{EnvelopeID: "e3", UserID: "U0L3"},
		{EnvelopeID: "e4", UserID: "U0L4"},
		{EnvelopeID: "e5", UserID: "U0L5"},
	}
	anchor := func(ts, user string) slacktest.Message {
		return slacktest.Message{Method: "chat.postMessage", Channel: "C0MPC", TS: ts, Text: "<@" + user + "> asked: mute member 101 in test_mpc_1"}
	}
	reply := func(thread, text string) slacktest.Message {
		return slacktest.Message{Method: "chat.postMessage", Channel: "C0MPC", TS: thread + "1", ThreadTS: thread, Text: text}
	}
	msgs := []slacktest.Message{
		anchor("1.000001", "U0L1"),
		{Method: "ack", EnvelopeID: "e2", Text: "mpcbot is overloaded right now"},
		anchor("1.000003", "U0L3"),
		reply("1.000001", "✅ mute: succeeded"),
		{Method: "response_url", EnvelopeID: "e4", Text: "busy, try again"},
		{Method: "response_url", EnvelopeID: "e4", Text: "a second answer"},
		{Method: "chat.update", Channel: "C0MPC", TS: "1.000001", Text: "edited"},
		{Method: "chat.postEphemeral", User: "U0L5", Text: "refused"},
		{Method: "response_url", EnvelopeID: "unknown", Text: "not ours"},
		reply("9.999999", "under no anchor of ours"),
		anchor("1.000009", "U0SOMEONE"),
	}
	tl := tallyOutcomes(cmds, msgs)
	tests := []struct {
		envelope  string
		outcomes  int
		firstKind string
		anchors   int
	}{
		{"e1", 1, "thread", 1},
		{"e2", 1, "ack", 0},
		{"e3", 0, "", 1}, // anchor posted, results never came
		{"e4", 2, "response_url", 0},
		{"e5", 1, "ephemeral", 0},
	}
	for _, tt := range tests {
		t.Run(tt.envelope, func(t *testing.T) {
			os := tl.Outcomes[tt.envelope]
			if len(os) != tt.outcomes {
				t.Fatalf("%d outcomes, want %d: %+v", len(os), tt.outcomes, os)
			}
			if tt.outcomes > 0 && os[0].Kind != tt.firstKind {
				t.Errorf("first outcome %q, want %q", os[0].Kind, tt.firstKind)
			}
			if tl.Anchors[tt.envelope] != tt.anchors {
				t.Errorf("%d anchors, want %d", tl.Anchors[tt.envelope], tt.anchors)
			}
		})
	}
	if tl.Stray != 3 {
		t.Errorf("%d stray messages, want 3", tl.Stray)
	}
	if got, want := tl.counts(cmds), (outcomeCounts{Commands: 5, None: 1, One: 3, Many: 1}); got != want {
		t.Errorf("counts %+v, want %+v", got, want)
	}
	if got := tl.countText(cmds, overloadedWord); got != 1 {
		t.Errorf("%d overloaded, want 1", got)
	}
}

func TestUserIDsAreValidAndDistinct(t *testing.T) {
	seen := map[string]bool{}
	for i := range 50000 {
		id := userID(i)
		if !anchorUser.MatchString("<@" + id + "> asked:") {
			t.Fatalf("user id %q does not look like a Slack user id", id)
		}
		if seen[id] {
			t.Fatalf("user id %q repeats", id)
		}
		seen[id] = true
	}
}
