package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/mpcbot/mpcbot/bot/slacktest"
)

// Slack Web API faults the bot must survive, end to end: the user still
// sees every answer, exactly once.

// Slack's Web API answering 429 with Retry-After or 5xx: the anchor and
// the thread reply (or the response_url reply) still arrive exactly once.
// Each case has its own bot and fake Slack, so a failure one case queued
// can never hit another's calls.
func TestFaultSlackWebAPI(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		setup func(h *harness, describe string) // injects the failure
		// failedCalls is how many failures must have been served.
		method      string
		failedCalls int
	}{
		{"anchor: 429 with Retry-After", func(h *harness, _ string) {
			h.slack.FailNext("chat.postMessage", 1, slacktest.Failure{Status: 429, RetryAfter: 1})
		}, "chat.postMessage", 1},
		{"anchor: 503 twice", func(h *harness, _ string) {
			h.slack.FailNext("chat.postMessage", 2, slacktest.Failure{Status: 503})
		}, "chat.postMessage", 2},
		{"anchor: internal_error", func(h *harness, _ string) {
			h.slack.FailNext("chat.postMessage", 1, slacktest.Failure{Error: "internal_error"})
		}, "chat.postMessage", 1},
		{"thread reply: 429 with Retry-After", func(h *harness, describe string) {
			failThreadReply(h, describe, slacktest.Failure{Status: 429, RetryAfter: 1})
		}, "chat.postMessage", 1},
		{"thread reply: 500", func(h *harness, describe string) {
			failThreadReply(h, describe, slacktest.Failure{Status: 500})
		}, "chat.postMessage", 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h := startBot(t)
			customer := h.member("customer")
			describe := "mute member " + customer + " in test_mpc_1"
			tt.setup(h, describe)
			_, _, reply := h.change(supervisorID, "mute test_mpc_1 "+customer, describe)
			if !strings.Contains(reply.Text, "✅ mute") {
				t.Fatalf("reply:\n%s", reply.Text)
			}
			if n := failedCalls(h, tt.method); n != tt.failedCalls {
				t.Fatalf("%d failed %s calls, want %d (the fault was not exercised)", n, tt.method, tt.failedCalls)
			}
		})
	}

	t.Run("response_url: 503 then 429", func(t *testing.T) {
		t.Parallel()
		h := startBot(t)
		h.slack.FailNext("response_url", 1, slacktest.Failure{Status: 503})
		h.slack.FailNext("response_url", 1, slacktest.Failure{Status: 429, RetryAfter: 1})
		id, _ := h.slash(strangerID, channelID, "hold test_mpc_1 all")
		h.auditFor(id)
		m := h.responseFor(id)
		if !strings.Contains(m.Text, "⛔") {
			t.Fatalf("refusal: %q", m.Text)
		}
		n := 0
		for _, m := range h.slack.Messages() {
			if m.EnvelopeID == id {
				n++
			}
		}
		if n != 1 {
			t.Fatalf("%d replies to the refused command, want 1", n)
		}
		if n := failedCalls(h, "response_url"); n != 2 {
			t.Fatalf("%d failed response_url calls, want 2", n)
		}
	})
}

// replyAfterAnchor is how long Plivo takes to answer in failThreadReply:
// the margin between the anchor being posted and the thread reply.
const replyAfterAnchor = 2 * time.Second

// failThreadReply makes the thread reply of the command described fail
// once: Plivo is slowed down so that the anchor is posted well before the
// reply, and the failure is queued as soon as the anchor is there.
func failThreadReply(h *harness, describe string, f slacktest.Failure) {
	h.plivo.SetDelay(replyAfterAnchor)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), waitFor)
		defer cancel()
		if _, err := h.slack.WaitForMessage(ctx, func(m slacktest.Message) bool {
			return m.ThreadTS == "" && strings.Contains(m.Text, describe)
		}); err == nil {
			h.slack.FailNext("chat.postMessage", 1, f)
		}
	}()
}
