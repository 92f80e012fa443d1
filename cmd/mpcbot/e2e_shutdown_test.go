package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/mpcbot/mpcbot/bot/slacktest"
	"github.com/mpcbot/mpcbot/plivo/plivotest"
)

// SIGTERM (Run's context cancelled) while commands are in flight: no new
// envelope is taken, the commands in flight finish and are answered before
// Run returns, and Run returns nil (exit 0).
func TestFaultShutdownFinishesInFlight(t *testing.T) {
	t.Parallel()
	h := startBot(t, withEnv("SHUTDOWN_GRACE", "20s"))
	// Long enough that all three are still in flight when they have been
	// typed, even on a busy machine; well within SHUTDOWN_GRACE.
	h.plivo.SetDelay(4 * time.Second)
	members := []string{h.member("customer"), h.member("agent"), h.member("supervisor")}
	var ids []string
	for _, m := range members {
		id, _ := h.slash(supervisorID, channelID, "mute test_mpc_1 "+m)
		ids = append(ids, id)
	}
	if n := h.main.Bot.Pending(); n != len(members) {
		t.Fatalf("%d commands in flight, want %d", n, len(members))
	}
	h.cancel()
	h.waitStats("the bot's connection closed", func(st slacktest.Stats) bool { return st.LiveConnections == 0 })
	late := h.slack.SendSlashCommand(slacktest.SlashCommand{UserID: supervisorID, Text: "hold test_mpc_1 all"})
	if err := h.stop(); err != nil {
		t.Fatalf("Run returned %v, want nil (exit 0)", err)
	}
	// Everything in flight was answered before Run returned.
	for _, m := range members {
		anchors := 0
		for _, msg := range h.slack.MessagesIn(channelID) {
			if strings.Contains(msg.Text, "mute member "+m+" in test_mpc_1") {
				anchors++
				replies := h.slack.ThreadReplies(channelID, msg.TS)
				if len(replies) != 1 || !strings.Contains(replies[0].Text, "✅ mute") {
					t.Errorf("member %s: thread replies %+v, want one ✅", m, replies)
				}
			}
		}
		if anchors != 1 {
			t.Errorf("member %s: %d anchors, want 1", m, anchors)
		}
	}
	for _, id := range ids {
		if !strings.Contains(h.logs.String(), `"envelope_id":"`+id+`"`) {
			t.Errorf("no audit record for %s", id)
		}
	}
	if n := len(h.plivo.AppliedUpdates()); n != len(members) {
		t.Errorf("%d updates applied, want %d", n, len(members))
	}
	if env, _ := h.slack.Envelope(late); len(env.Acks) != 0 || len(env.Deliveries) != 0 {
		t.Errorf("a command typed after SIGTERM was taken: %+v", env)
	}
	for _, r := range h.plivo.Requests() {
		if strings.Contains(string(r.Body), "hold") {
			t.Errorf("a command typed after SIGTERM reached Plivo: %s", r.Body)
		}
	}
	if len(h.logLines("shutting down: finishing in-flight commands")) != 1 {
		t.Error("the drain was not logged")
	}
}

// SIGTERM with SHUTDOWN_GRACE shorter than Plivo takes: after the grace
// period the commands still running are stopped, their users are told
// (one reply each), nothing is applied, and Run returns nil.
func TestFaultShutdownGraceOver(t *testing.T) {
	t.Parallel()
	h := startBot(t, withEnv("SHUTDOWN_GRACE", "1s", "PLIVO_TIMEOUT", "30s", "MPC_COMMAND_TIMEOUT", "60s"))
	const plivoDelay = 10 * time.Second
	h.plivo.SetDelay(plivoDelay)
	members := []string{h.member("customer"), h.member("agent")}
	for _, m := range members {
		h.slash(supervisorID, channelID, "hold test_mpc_1 "+m)
	}
	// Both anchors are posted while Plivo is being asked.
	for _, m := range members {
		h.waitMessage(func(msg slacktest.Message) bool {
			return msg.ThreadTS == "" && strings.Contains(msg.Text, "hold member "+m+" in")
		}, "anchor for "+m)
	}
	stopped := time.Now()
	h.cancel()
	if err := h.stop(); err != nil {
		t.Fatalf("Run returned %v, want nil (exit 0)", err)
	}
	if took := time.Since(stopped); took >= plivoDelay {
		t.Errorf("Run took %v to return: it waited for Plivo beyond SHUTDOWN_GRACE", took)
	}
	for _, m := range members {
		for _, msg := range h.slack.MessagesIn(channelID) {
			if !strings.Contains(msg.Text, "hold member "+m+" in") {
				continue
			}
			replies := h.slack.ThreadReplies(channelID, msg.TS)
			if len(replies) != 1 || !strings.Contains(replies[0].Text, "❌ hold") ||
				!strings.Contains(replies[0].Text, "stopped before Plivo answered") {
				t.Errorf("member %s: thread replies %+v, want one ❌ saying the command was stopped", m, replies)
			}
		}
	}
	h.plivo.SetDelay(0)
	if n := len(h.plivo.AppliedUpdates()); n != 0 {
		t.Errorf("%d updates applied, want 0", n)
	}
	if len(h.logLines("shutdown grace period over")) != 1 {
		t.Error("the end of the grace period was not logged")
	}
}

// run (main without the process) returns 0 when its context is cancelled,
// like SIGTERM, after serving.
func TestRunExitsZeroOnSIGTERM(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{nil, {"run"}} {
		t.Run(fmt.Sprint(args), func(t *testing.T) {
			t.Parallel()
			slack := slacktest.NewServer(slacktest.WithPingInterval(500 * time.Millisecond))
			defer slack.Close()
			plivo := plivotest.NewServer(plivotest.WithSampleMPC())
			defer plivo.Close()
			env := map[string]string{
				"SLACK_APP_TOKEN": slack.AppToken(), "SLACK_BOT_TOKEN": slack.BotToken(), "SLACK_API_URL": slack.APIURL(),
				"PLIVO_AUTH_ID": plivo.AuthID, "PLIVO_AUTH_TOKEN": plivo.AuthToken, "PLIVO_API_URL": plivo.URL,
				"MPC_SUPERVISORS": supervisorID, "HTTP_ADDR": "127.0.0.1:0", "SHUTDOWN_GRACE": "5s",
			}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			var stderr syncBuffer
			code := make(chan int, 1)
			go func() { code <- run(ctx, args, env, strings.NewReader(""), io.Discard, &stderr) }()
			// Slack fails a command at once while the app has no connection:
			// type it once the bot is connected (both of its links).
			if err := slack.WaitConnections(ctxWithTimeout(t, waitFor), 2); err != nil {
				t.Fatalf("the bot did not connect: %v\n%s", err, stderr.String())
			}
			id := slack.SendSlashCommand(slacktest.SlashCommand{UserID: supervisorID, Text: "mute test_mpc_1 101"})
			if _, err := slack.WaitAck(ctxWithTimeout(t, waitFor), id); err != nil {
				t.Fatalf("the bot did not serve: %v\n%s", err, stderr.String())
			}
			cancel()
			select {
			case c := <-code:
				if c != exitOK {
					t.Fatalf("run returned %d, want 0\n%s", c, stderr.String())
				}
			case <-time.After(waitFor):
				t.Fatal("run did not return after cancellation")
			}
			if !strings.Contains(stderr.String(), `"msg":"mpcbot stopped"`) {
				t.Errorf("no stop record in the log:\n%s", stderr.String())
			}
			// The bot closed its connection (the fake notices a moment later).
			if _, err := slack.WaitStats(ctxWithTimeout(t, waitFor), func(st slacktest.Stats) bool { return st.LiveConnections == 0 }); err != nil {
				t.Errorf("the Socket Mode connection stayed open after run returned: %v", err)
			}
		})
	}
}
