package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"net"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mpcbot/mpcbot/bot/slacktest"
	"github.com/mpcbot/mpcbot/commands"
	"github.com/mpcbot/mpcbot/plivo"
	"github.com/mpcbot/mpcbot/plivo/plivotest"
)

// Faults the bot must survive, end to end through the fakes: Socket Mode
// links that drop, are refreshed, fail to open, go silent or flap; Slack
// redeliveries; Plivo and Slack Web API errors; SIGTERM with commands in
// flight; and a long run mixing all of them.

// guardFlappingLog is the start of the reconnect guard's warning (bot/guard.go).
const guardFlappingLog = "Socket Mode keeps reconnecting"

// mustServe runs a fresh change on the sample MPC's customer (hold or
// unhold, whichever changes the state) and fails unless its ✅ result
// arrives in the anchor's thread: the bot is serving commands.
func (h *harness) mustServe() slacktest.Message {
	h.t.Helper()
	customer := h.member("customer")
	action := "hold"
	if st, _ := h.plivo.Participant(plivotest.SampleMPCName, customer); st.Hold {
		action = "unhold"
	}
	since := time.Now()
	id, _ := h.slash(supervisorID, channelID, action+" test_mpc_1 "+customer)
	anchor, reply := h.anchorAndReply(since, channelID, action+" member "+customer+" in test_mpc_1")
	want := fmt.Sprintf("✅ %s: MPC: test_mpc_1 hold/unhold member(s) succeeded", action)
	if !strings.Contains(reply.Text, want) {
		h.t.Fatalf("reply to %q lacks %q:\n%s", action, want, reply.Text)
	}
	h.auditFor(id)
	if n := len(h.slack.ThreadReplies(channelID, anchor.TS)); n != 1 {
		h.t.Fatalf("%d replies in the thread of %q, want exactly 1", n, anchor.Text)
	}
	return reply
}

// readyz returns the /readyz status code.
func (h *harness) readyz() int {
	h.t.Helper()
	code, _ := h.get("/readyz")
	return code
}

// waitReadyz polls /readyz until it answers want.
func (h *harness) waitReadyz(want int) {
	h.t.Helper()
	deadline := time.Now().Add(waitFor)
	for {
		code, body := h.get("/readyz")
		if code == want {
			return
		}
		if time.Now().After(deadline) {
			h.t.Fatalf("/readyz stayed %d (%q), want %d", code, body, want)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// waitStats waits until cond holds for the fake Slack's Socket Mode stats.
func (h *harness) waitStats(what string, cond func(slacktest.Stats) bool) slacktest.Stats {
	h.t.Helper()
	st, err := h.slack.WaitStats(h.ctx(), cond)
	if err != nil {
		h.t.Fatalf("waiting for %s: %v (stats %+v)", what, err, h.slack.Stats())
	}
	return st
}

// waitNewConnection waits until a connection opened after t is live and
// the bot has been greeted on it.
func (h *harness) waitNewConnection(t time.Time) slacktest.ConnectionInfo {
	h.t.Helper()
	ci, err := h.slack.WaitConnectionAfter(h.ctx(), t)
	if err != nil {
		h.t.Fatalf("no new connection after %s: %v\nconnections: %+v", t.Format(time.StampMilli), err, h.slack.Connections())
	}
	h.waitConnected()
	return ci
}

// logLines returns the log records whose message starts with msg.
func (h *harness) logLines(msg string) []string {
	var out []string
	for _, line := range strings.Split(h.logs.String(), "\n") {
		if strings.Contains(line, `"msg":"`+msg) {
			out = append(out, line)
		}
	}
	return out
}

// logInfoLines returns the log records at info level or above whose
// message starts with msg.
func (h *harness) logInfoLines(msg string) []string {
	var out []string
	for _, l := range h.logLines(msg) {
		if !strings.Contains(l, `"level":"DEBUG"`) {
			out = append(out, l)
		}
	}
	return out
}

// waitLog waits for a log record whose message starts with msg.
func (h *harness) waitLog(msg string) {
	h.t.Helper()
	deadline := time.Now().Add(waitFor)
	for len(h.logLines(msg)) == 0 {
		if time.Now().After(deadline) {
			h.t.Fatalf("no log record %q within %s", msg, waitFor)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// A socket dropped without a close frame: the bot reconnects and serves
// the next command. apps.connections.open fails while the link is down, so
// the outage lasts until the test ends it, and /readyz reports it.
func TestFaultSocketDropped(t *testing.T) {
	h := startBot(t)
	if code := h.readyz(); code != http.StatusOK {
		t.Fatalf("/readyz = %d while connected, want 200", code)
	}
	h.slack.FailAlways("apps.connections.open", slacktest.Failure{Status: http.StatusInternalServerError})
	before := h.slack.Stats()
	dropped := time.Now()
	if n := h.slack.DropConnections(); n != 1 {
		t.Fatalf("dropped %d connections, want 1", n)
	}
	h.waitReadyz(http.StatusServiceUnavailable)
	if _, body := h.get("/readyz"); !strings.Contains(body, "Socket Mode") {
		t.Errorf("/readyz body does not say what is wrong: %q", body)
	}
	// The bot keeps trying (with slack-go's backoff) while Slack fails.
	h.waitStats("two failed reconnects", func(st slacktest.Stats) bool { return st.OpenCalls >= before.OpenCalls+2 })
	if code := h.readyz(); code != http.StatusServiceUnavailable {
		t.Fatalf("/readyz = %d during the outage, want 503", code)
	}
	h.slack.ClearFailures("apps.connections.open")
	h.waitNewConnection(dropped)
	h.waitReadyz(http.StatusOK)
	h.mustServe()
}

// Slack's disconnect messages: the bot opens a new connection and serves
// the next command, whatever the reason.
func TestFaultDisconnectReasons(t *testing.T) {
	h := startBot(t)
	for _, reason := range []string{slacktest.ReasonRefreshRequested, slacktest.ReasonWarning, slacktest.ReasonLinkDisabled} {
		t.Run(reason, func(t *testing.T) {
			at := time.Now()
			if n := h.slack.Disconnect(reason); n != 1 {
				t.Fatalf("disconnected %d connections, want 1", n)
			}
			h.waitNewConnection(at)
			h.mustServe()
		})
	}
}

// apps.connections.open failing with an error, with HTTP 5xx, or rate
// limited with Retry-After: slack-go backs off (honouring Retry-After),
// the bot reconnects and serves. A command typed during the outage is
// delivered and served once the link is back.
func TestFaultConnectionsOpenFailing(t *testing.T) {
	h := startBot(t)
	tests := []struct {
		name    string
		failure slacktest.Failure
		n       int
		minGap  time.Duration // least time between two failed attempts
	}{
		{"slack error", slacktest.Failure{Error: "internal_error"}, 3, 50 * time.Millisecond},
		{"http 503", slacktest.Failure{Status: http.StatusServiceUnavailable}, 3, 50 * time.Millisecond},
		{"rate limited with Retry-After", slacktest.Failure{Status: http.StatusTooManyRequests, RetryAfter: 1}, 2, 900 * time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			calls := h.slack.CallCount("apps.connections.open")
			h.slack.FailNext("apps.connections.open", tt.n, tt.failure)
			at := time.Now()
			h.slack.DropConnections()
			// Typed while there is no connection: Slack holds it.
			since := time.Now()
			id := h.slack.SendSlashCommand(slacktest.SlashCommand{UserID: supervisorID, Text: "mute test_mpc_1 " + h.member("agent")})
			h.waitNewConnection(at)
			if _, err := h.slack.WaitAck(h.ctx(), id); err != nil {
				t.Fatalf("command typed during the outage: %v", err)
			}
			_, reply := h.anchorAndReply(since, channelID, "mute member "+h.member("agent"))
			if !strings.Contains(reply.Text, "✅ mute") {
				t.Fatalf("reply:\n%s", reply.Text)
			}
			var times []time.Time
			for _, c := range h.slack.Calls() {
				if c.Method == "apps.connections.open" {
					times = append(times, c.Time)
				}
			}
			times = times[calls:]
			if len(times) < tt.n+1 {
				t.Fatalf("%d apps.connections.open calls, want at least %d (failures, then success)", len(times), tt.n+1)
			}
			for i := 1; i <= tt.n; i++ {
				if gap := times[i].Sub(times[i-1]); gap < tt.minGap {
					t.Errorf("attempt %d came %v after a failure: no backoff (want ≥ %v)", i+1, gap, tt.minGap)
				}
			}
			// Unmute for the next case.
			since = time.Now()
			h.slash(supervisorID, channelID, "unmute test_mpc_1 "+h.member("agent"))
			h.anchorAndReply(since, channelID, "unmute member "+h.member("agent"))
		})
	}
}

// A connection that stays open but goes silent (no pings, nothing
// delivered, slack-go issue #1093): slack-go's ping watchdog
// (SLACK_PING_TIMEOUT) gives up on it and the bot connects again; the
// command typed meanwhile is served on the new connection.
func TestFaultSilentConnection(t *testing.T) {
	h := startBot(t, withEnv("SLACK_PING_TIMEOUT", "2s"))
	at := time.Now()
	if n := h.slack.SilenceConnections(); n != 1 {
		t.Fatalf("silenced %d connections, want 1", n)
	}
	since := time.Now()
	id := h.slack.SendSlashCommand(slacktest.SlashCommand{UserID: supervisorID, Text: "hold test_mpc_1 " + h.member("agent")})
	ci := h.waitNewConnection(at)
	if _, err := h.slack.WaitAck(h.ctx(), id); err != nil {
		t.Fatalf("command typed on the silent link: %v", err)
	}
	_, reply := h.anchorAndReply(since, channelID, "hold member "+h.member("agent"))
	if !strings.Contains(reply.Text, "✅ hold") {
		t.Fatalf("reply:\n%s", reply.Text)
	}
	env, _ := h.slack.Envelope(id)
	if len(env.Deliveries) != 1 || env.Deliveries[0].ConnectionID != ci.ID {
		t.Errorf("deliveries %+v, want one on the new connection %d", env.Deliveries, ci.ID)
	}
	// The silent connection was closed by the bot, not left open.
	h.waitStats("one live connection", func(st slacktest.Stats) bool { return st.LiveConnections == 1 })
}

// A link that is closed right after hello, over and over: the bot bounds
// its apps.connections.open rate (slack-go alone would make thousands of
// calls per second), logs the episode once, and is connected again soon
// after the link heals.
func TestFaultFlappingLink(t *testing.T) {
	h := startBot(t)
	const (
		flapFor = 2 * time.Second
		burst   = 3 // bot.DefaultReconnectBurst
		perSec  = 1 // bot.DefaultReconnectRate
	)
	h.slack.FlapAfterHello(true)
	before := h.slack.Stats()
	start := time.Now()
	h.slack.DropConnections()
	time.Sleep(flapFor) // the observation window, not an assertion
	st := h.slack.Stats()
	elapsed := time.Since(start)
	opens := st.OpenCalls - before.OpenCalls
	limit := burst + int(perSec*elapsed.Seconds()) + 2
	t.Logf("%d apps.connections.open calls and %d flapped connections in %v of flapping (bound %d)",
		opens, st.ConnectionsOpened-before.ConnectionsOpened, elapsed.Round(time.Millisecond), limit)
	if opens > limit {
		t.Fatalf("%d apps.connections.open calls in %v of flapping, want at most %d", opens, elapsed, limit)
	}
	if opens < 2 {
		t.Fatalf("only %d apps.connections.open calls in %v: the bot stopped trying", opens, elapsed)
	}
	if n := len(h.logLines(guardFlappingLog)); n != 1 {
		t.Errorf("the flapping was logged %d times, want once", n)
	}
	// Per-connection lines are logged at info until the guard first holds a
	// call back (the initial connection and the burst), then at debug.
	for _, msg := range []string{"Socket Mode connection lost", "Socket Mode connected"} {
		if n := len(h.logInfoLines(msg)); n > burst+1 {
			t.Errorf("%q logged at info %d times while flapping, want at most %d", msg, n, burst+1)
		}
	}

	healed := time.Now()
	h.slack.FlapAfterHello(false)
	ci := h.waitNewConnection(healed)
	if wait := ci.OpenedAt.Sub(healed); wait > waitFor {
		t.Fatalf("connected %v after the link healed, want within %v", wait, waitFor)
	}
	h.mustServe()
	h.waitLog("Socket Mode reconnects back to normal")
	if n := len(h.logLines(guardFlappingLog)); n != 1 {
		t.Errorf("the flapping was logged %d times in total, want once", n)
	}
}

// Slack redelivers an envelope (same envelope_id, retry_attempt 1): it is
// acked again, and there is no second Plivo call and no second reply —
// whether the first delivery is finished or still in flight, typed or
// clicked.
func TestFaultRedelivery(t *testing.T) {
	h := startBot(t)
	customer := h.member("customer")

	redeliver := func(t *testing.T, id string) {
		t.Helper()
		dups := h.slack.Stats().DuplicateAcks
		if err := h.slack.Redeliver(id); err != nil {
			t.Fatal(err)
		}
		h.waitStats("a second ack", func(st slacktest.Stats) bool { return st.DuplicateAcks > dups })
		env, _ := h.slack.Envelope(id)
		if len(env.Acks) != 2 {
			t.Fatalf("%d acks for the envelope, want 2", len(env.Acks))
		}
		if got := env.Deliveries[len(env.Deliveries)-1].RetryAttempt; got != 1 {
			t.Fatalf("retry_attempt %d, want 1", got)
		}
		if env.Acks[1].Late {
			t.Error("the second ack was late")
		}
		// The bot has decided what to do with it once it says it ignored
		// it, or once it wrote a second audit record (then the checks
		// below fail).
		deadline := time.Now().Add(waitFor)
		for !strings.Contains(h.logs.String(), `"msg":"ignored redelivered envelope","envelope_id":"`+id+`"`) {
			audits := 0
			for _, rec := range h.auditRecords() {
				if rec["envelope_id"] == id {
					audits++
				}
			}
			if audits > 1 {
				t.Errorf("the redelivered envelope was carried out again (%d audit records)", audits)
				time.Sleep(200 * time.Millisecond) // let its replies land, so the counts below show them
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("the bot did not recognise the redelivery of %s", id)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}

	t.Run("typed, after the reply", func(t *testing.T) {
		applied := len(h.plivo.AppliedUpdates())
		since := time.Now()
		id, _ := h.slash(supervisorID, channelID, "mute test_mpc_1 "+customer)
		anchor, _ := h.anchorAndReply(since, channelID, "mute member "+customer)
		h.auditFor(id)
		redeliver(t, id)
		if n := len(h.plivo.AppliedUpdates()) - applied; n != 1 {
			t.Errorf("%d Plivo updates applied, want 1", n)
		}
		if n := len(h.slack.ThreadReplies(channelID, anchor.TS)); n != 1 {
			t.Errorf("%d thread replies, want 1", n)
		}
		if n := countAnchors(h, "mute member "+customer+" in", since); n != 1 {
			t.Errorf("%d anchors, want 1", n)
		}
	})

	t.Run("typed, while Plivo is still answering", func(t *testing.T) {
		h.plivo.SetDelay(time.Second)
		defer h.plivo.SetDelay(0)
		applied := len(h.plivo.AppliedUpdates())
		since := time.Now()
		id, _ := h.slash(supervisorID, channelID, "unmute test_mpc_1 "+customer)
		redeliver(t, id)
		anchor, _ := h.anchorAndReply(since, channelID, "unmute member "+customer)
		h.auditFor(id)
		if n := len(h.plivo.AppliedUpdates()) - applied; n != 1 {
			t.Errorf("%d Plivo updates applied, want 1", n)
		}
		if n := len(h.slack.ThreadReplies(channelID, anchor.TS)); n != 1 {
			t.Errorf("%d thread replies, want 1", n)
		}
	})

	t.Run("clicked", func(t *testing.T) {
		since := time.Now()
		h.slash(supervisorID, channelID, "hold test_mpc_1 "+customer)
		anchor, reply := h.anchorAndReply(since, channelID, "hold member "+customer)
		applied := len(h.plivo.AppliedUpdates())
		id := h.click(supervisorID, reply, "Unhold "+customer)
		h.auditFor(id)
		redeliver(t, id)
		if n := len(h.plivo.AppliedUpdates()) - applied; n != 1 {
			t.Errorf("%d Plivo updates applied for the click, want 1", n)
		}
		if n := len(h.slack.ThreadReplies(channelID, anchor.TS)); n != 2 {
			t.Errorf("%d thread replies, want 2 (the command and the click)", n)
		}
	})
}

// countAnchors counts top-level bot messages in the default channel since
// a time whose text contains s.
func countAnchors(h *harness, s string, since time.Time) int {
	n := 0
	for _, m := range h.slack.Messages() {
		if m.Method == "chat.postMessage" && m.Channel == channelID && m.ThreadTS == "" && !m.Time.Before(since) && strings.Contains(m.Text, s) {
			n++
		}
	}
	return n
}

// ctxWithTimeout is a test-scoped context.
func ctxWithTimeout(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// change types a change and returns its anchor and its one thread reply,
// once the command is finished (its audit record written). It fails
// unless the thread holds exactly one reply.
func (h *harness) change(user, text, describe string) (id string, anchor, reply slacktest.Message) {
	h.t.Helper()
	since := time.Now()
	id, _ = h.slash(user, channelID, text)
	anchor, reply = h.anchorAndReply(since, channelID, describe)
	h.auditFor(id)
	if n := len(h.slack.ThreadReplies(channelID, anchor.TS)); n != 1 {
		h.t.Fatalf("%d replies in the thread of %q, want exactly 1", n, anchor.Text)
	}
	if n := countAnchors(h, describe, since); n != 1 {
		h.t.Fatalf("%d anchors for %q, want exactly 1", n, describe)
	}
	return id, anchor, reply
}

// Plivo failing in every way it can: each command ends in exactly one
// thread reply with ✅ or ❌ and the reason, and an update that was not
// applied by a failed attempt is applied once by its retry.
func TestFaultPlivo(t *testing.T) {
	h := startBot(t, withEnv("PLIVO_TIMEOUT", "1s", "MPC_COMMAND_TIMEOUT", "6s"))
	customer := h.member("customer")
	tests := []struct {
		name         string
		setup        func()
		want         []string // in the reply
		wantRequests int      // Plivo update requests for the command (0: at least 2); reads back come on top
		wantApplied  int
	}{
		{name: "429 with Retry-After", setup: func() { h.plivo.FailNext(1, plivotest.Fault{Status: 429, RetryAfter: "1"}) },
			want: []string{"✅"}, wantRequests: 2, wantApplied: 1},
		{name: "429 without Retry-After", setup: func() { h.plivo.FailNext(1, plivotest.Fault{Status: 429}) },
			want: []string{"✅"}, wantRequests: 2, wantApplied: 1},
		{name: "500", setup: func() { h.plivo.FailNext(1, plivotest.Fault{Status: 500}) },
			want: []string{"✅"}, wantRequests: 2, wantApplied: 1},
		{name: "502", setup: func() { h.plivo.FailNext(1, plivotest.Fault{Status: 502}) },
			want: []string{"✅"}, wantRequests: 2, wantApplied: 1},
		// The first 503 leaves the outcome unknown: the next two faults hit
		// the reads back, which are retried rather than resending blind;
		// the third read shows nothing applied, so the update is resent.
		{name: "503 three times", setup: func() { h.plivo.FailNext(3, plivotest.Fault{Status: 503}) },
			want: []string{"✅"}, wantRequests: 2, wantApplied: 1},
		{name: "timeout (no answer within PLIVO_TIMEOUT)", setup: func() { h.plivo.FailNext(1, plivotest.Fault{Delay: 3 * time.Second}) },
			want: []string{"✅"}, wantRequests: 2, wantApplied: 1},
		{name: "connection dropped without an answer", setup: func() { h.plivo.FailNext(1, plivotest.Fault{Drop: true}) },
			want: []string{"✅"}, wantRequests: 2, wantApplied: 1},
		{name: "slow but in time", setup: func() { h.plivo.SetDelay(400 * time.Millisecond) },
			want: []string{"✅"}, wantRequests: 1, wantApplied: 1},
		{name: "404 is not retried", setup: func() { h.plivo.FailNext(1, plivotest.Fault{Status: 404}) },
			want: []string{"❌", "not found", "HTTP 404"}, wantRequests: 1, wantApplied: 0},
		// Nothing answers: the update is sent once, then only read back
		// (never resent blind) until the deadline.
		{name: "no answer until the command's deadline", setup: func() { h.plivo.SetDelay(3 * time.Second) },
			want: []string{"❌", "Plivo did not answer in time or had an error", "may or may not have been applied"}, wantRequests: 1, wantApplied: 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			defer h.plivo.SetDelay(0)
			action := "hold"
			if st, _ := h.plivo.Participant(plivotest.SampleMPCName, customer); st.Hold {
				action = "unhold"
			}
			requests, applied := h.plivo.RequestCount(), len(h.plivo.AppliedUpdates())
			tt.setup()
			_, _, reply := h.change(supervisorID, action+" test_mpc_1 "+customer, action+" member "+customer+" in test_mpc_1")
			for _, w := range tt.want {
				if !strings.Contains(reply.Text, w) {
					t.Errorf("reply lacks %q:\n%s", w, reply.Text)
				}
			}
			// Wait for abandoned requests (timeouts) to reach the log.
			h.plivo.SetDelay(0)
			if n := h.plivo.PendingFaults(); n != 0 {
				t.Fatalf("%d injected faults left unused", n)
			}
			got := 0
			for _, r := range h.plivo.Requests()[requests:] {
				if r.Op == plivotest.OpUpdateParticipant {
					got++
				}
			}
			switch {
			case tt.wantRequests > 0 && got != tt.wantRequests:
				t.Errorf("%d Plivo requests, want %d", got, tt.wantRequests)
			case tt.wantRequests == 0 && got < 2:
				t.Errorf("%d Plivo requests, want retries", got)
			}
			if n := len(h.plivo.AppliedUpdates()) - applied; n != tt.wantApplied {
				t.Errorf("%d updates applied, want %d", n, tt.wantApplied)
			}
		})
	}

	// The ambiguous case: Plivo applied the change but the answer was lost
	// (503 after applying). The client reads the state back before
	// resending, sees the change in place, and does not send it again:
	// Plivo gets the update once, the user one ✅ saying how it was
	// confirmed.
	t.Run("applied but the answer was a 503", func(t *testing.T) {
		action := "hold"
		if st, _ := h.plivo.Participant(plivotest.SampleMPCName, customer); st.Hold {
			action = "unhold"
		}
		applied := len(h.plivo.AppliedUpdates())
		h.plivo.FailNext(1, plivotest.Fault{Status: 503, Apply: true})
		_, _, reply := h.change(supervisorID, action+" test_mpc_1 "+customer, action+" member "+customer+" in test_mpc_1")
		if !strings.Contains(reply.Text, "✅ "+action) || !strings.Contains(reply.Text, "reading the state back") {
			t.Fatalf("reply:\n%s", reply.Text)
		}
		if ups := h.plivo.AppliedUpdates()[applied:]; len(ups) != 1 {
			t.Fatalf("want the update applied exactly once, got %+v", ups)
		}
		if st, _ := h.plivo.Participant(plivotest.SampleMPCName, customer); st.Hold != (action == "hold") {
			t.Fatalf("customer hold = %v after %s", st.Hold, action)
		}
	})
}

// Plivo refusing connections (PLIVO_API_URL points at a closed port): the
// command ends in one ❌ reply saying Plivo could not be reached.
func TestFaultPlivoConnectionRefused(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := "http://" + ln.Addr().String()
	ln.Close()
	h := startBot(t, withEnv("PLIVO_API_URL", closed, "MPC_COMMAND_TIMEOUT", "3s"))
	_, _, reply := h.change(supervisorID, "mute test_mpc_1 101", "mute member 101 in test_mpc_1")
	for _, w := range []string{"❌ mute", "Plivo did not answer in time or had an error", "could not reach Plivo"} {
		if !strings.Contains(reply.Text, w) {
			t.Errorf("reply lacks %q:\n%s", w, reply.Text)
		}
	}
	if code, body := h.get("/readyz"); code != http.StatusOK {
		t.Errorf("/readyz = %d (%q): an unreachable Plivo is not a credentials problem", code, body)
	}
}

// Slack's Web API answering 429 with Retry-After or 5xx: the anchor and
// the thread reply (or the response_url reply) still arrive exactly once.
func TestFaultSlackWebAPI(t *testing.T) {
	h := startBot(t)
	customer := h.member("customer")
	tests := []struct {
		name  string
		setup func(describe string) // injects the failure
		// failedCalls is how many failures must have been served.
		method      string
		failedCalls int
	}{
		{"anchor: 429 with Retry-After", func(string) {
			h.slack.FailNext("chat.postMessage", 1, slacktest.Failure{Status: 429, RetryAfter: 1})
		}, "chat.postMessage", 1},
		{"anchor: 503 twice", func(string) {
			h.slack.FailNext("chat.postMessage", 2, slacktest.Failure{Status: 503})
		}, "chat.postMessage", 2},
		{"anchor: internal_error", func(string) {
			h.slack.FailNext("chat.postMessage", 1, slacktest.Failure{Error: "internal_error"})
		}, "chat.postMessage", 1},
		{"thread reply: 429 with Retry-After", func(describe string) {
			failThreadReply(h, describe, slacktest.Failure{Status: 429, RetryAfter: 1})
		}, "chat.postMessage", 1},
		{"thread reply: 500", func(describe string) {
			failThreadReply(h, describe, slacktest.Failure{Status: 500})
		}, "chat.postMessage", 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			defer h.plivo.SetDelay(0)
			action := "mute"
			if st, _ := h.plivo.Participant(plivotest.SampleMPCName, customer); st.Mute {
				action = "unmute"
			}
			describe := action + " member " + customer + " in test_mpc_1"
			failed := failedCalls(h, tt.method)
			tt.setup(describe)
			_, _, reply := h.change(supervisorID, action+" test_mpc_1 "+customer, describe)
			if !strings.Contains(reply.Text, "✅ "+action) {
				t.Fatalf("reply:\n%s", reply.Text)
			}
			if n := failedCalls(h, tt.method) - failed; n != tt.failedCalls {
				t.Fatalf("%d failed %s calls, want %d (the fault was not exercised)", n, tt.method, tt.failedCalls)
			}
		})
	}

	t.Run("response_url: 503 then 429", func(t *testing.T) {
		failed := failedCalls(h, "response_url")
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
		if n := failedCalls(h, "response_url") - failed; n != 2 {
			t.Fatalf("%d failed response_url calls, want 2", n)
		}
	})
}

// failThreadReply makes the thread reply of the command described fail
// once: Plivo is slowed down so that the anchor is posted well before the
// reply, and the failure is queued as soon as the anchor is there.
func failThreadReply(h *harness, describe string, f slacktest.Failure) {
	h.plivo.SetDelay(time.Second)
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

// failedCalls counts the calls of a method that Slack failed.
func failedCalls(h *harness, method string) int {
	n := 0
	for _, c := range h.slack.Calls() {
		if c.Method == method && c.Error != "" {
			n++
		}
	}
	return n
}

// SIGTERM (Run's context cancelled) while commands are in flight: no new
// envelope is taken, the commands in flight finish and are answered before
// Run returns, and Run returns nil (exit 0).
func TestFaultShutdownFinishesInFlight(t *testing.T) {
	h := startBot(t, withEnv("SHUTDOWN_GRACE", "20s"))
	h.plivo.SetDelay(1500 * time.Millisecond)
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
	for _, args := range [][]string{nil, {"run"}} {
		t.Run(fmt.Sprint(args), func(t *testing.T) {
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

// withPlivo replaces the harness's Plivo simulator by one with options
// (the sample MPC included).
func withPlivo(opts ...plivotest.Option) harnessOption {
	return func(h *harness) {
		h.plivo.Close()
		h.plivo = plivotest.NewServer(append([]plivotest.Option{plivotest.WithSampleMPC()}, opts...)...)
		h.t.Cleanup(h.plivo.Close)
		h.env["PLIVO_AUTH_ID"], h.env["PLIVO_AUTH_TOKEN"], h.env["PLIVO_API_URL"] = h.plivo.AuthID, h.plivo.AuthToken, h.plivo.URL
	}
}

// updateKey identifies an update: the participant path and the fields set.
func updateKey(path string, body []byte) string {
	var fields map[string]bool
	_ = json.Unmarshal(body, &fields)
	keys := slices.Sorted(maps.Keys(fields))
	var b strings.Builder
	b.WriteString(path[strings.Index(path, "/MultiPartyCall/"):])
	for _, k := range keys {
		fmt.Fprintf(&b, " %s=%v", k, fields[k])
	}
	return b.String()
}

// changeKeys returns the update keys a change makes when it succeeds.
func changeKeys(c commands.Change) []string {
	body, _ := json.Marshal(c.Update())
	var keys []string
	for _, m := range c.Members {
		keys = append(keys, updateKey("/MultiPartyCall/"+c.MPC.PathSegment()+"/Participant/"+string(m)+"/", body))
	}
	return keys
}

// loadCommand is one request of the mixed run and what must come of it.
type loadCommand struct {
	user   string
	typed  string          // typed text, or
	click  commands.Change // a clicked change
	ts     string          // the message clicked on (its thread gets the result)
	pairOf int             // a second tap of the click at this index, or -1
	want   string          // ok, refused, not_found, usage, list, duplicate
	keys   []string        // updates applied when ok
	anchor string          // exact text of a typed change's anchor
	id     string          // envelope id
}

// A thousand commands mixing every fault: Plivo 429 (with and without
// Retry-After), 5xx, timeouts, dropped connections and slow answers; Slack
// 429 and 5xx on posts and response_url; socket drops; redeliveries;
// double taps; several users, one unauthorised; typed and clicked. Every
// command ends in exactly one visible outcome, and Plivo never applies the
// same update twice: every applied update belongs to one distinct
// successful command.
func TestFaultMixedRun(t *testing.T) {
	total := 1000
	if testing.Short() {
		total = 200
	}
	h := startBot(t, withPlivo(plivotest.WithAccountLimit(100000, 5*time.Second)), withEnv(
		"PLIVO_RATE", "1000", "PLIVO_BURST", "1000", "PLIVO_TIMEOUT", "1s", "LOG_LEVEL", "info"))
	rng := rand.New(rand.NewPCG(5, 1000))

	// 60 calls of five: every change below is to a distinct (call, member
	// or all, fields), so an update applied twice would show.
	type target struct{ mpc, member, role string }
	var positive, negative []commands.Change
	for i := range 60 {
		name := fmt.Sprintf("load_mpc_%02d", i)
		h.plivo.AddMPC(name)
		mpc, _ := plivo.MPCByName(name)
		var members []target
		for _, role := range []string{plivotest.RoleCustomer, plivotest.RoleAgent, plivotest.RoleAgent, plivotest.RoleSupervisor, plivotest.RoleCustomer} {
			members = append(members, target{name, h.plivo.AddParticipant(name, role), role})
		}
		sets := [][]commands.Action{{commands.Mute}, {commands.Hold}, {commands.Mute, commands.Hold}}
		for _, m := range members {
			for _, s := range sets {
				c := commands.Change{Actions: s, MPC: mpc, Members: []plivo.Member{plivo.Member(m.member)}}
				positive = append(positive, c)
				negative = append(negative, c.Inverse())
			}
			if m.role == plivotest.RoleSupervisor {
				c := commands.Change{Actions: []commands.Action{commands.Coach}, MPC: mpc, Members: []plivo.Member{plivo.Member(m.member)}}
				positive = append(positive, c)
				negative = append(negative, c.Inverse())
			}
		}
		for _, s := range sets {
			c := commands.Change{Actions: s, MPC: mpc, Members: []plivo.Member{plivo.AllMembers}}
			positive = append(positive, c)
			negative = append(negative, c.Inverse())
		}
	}
	rng.Shuffle(len(positive), func(i, j int) { positive[i], positive[j] = positive[j], positive[i] })
	rng.Shuffle(len(negative), func(i, j int) { negative[i], negative[j] = negative[j], negative[i] })

	// The requests.
	cmds := make([]loadCommand, 0, total)
	users := []string{supervisorID, supervisorID, supervisorID, agentID, strangerID}
	wantFor := func(user string, c commands.Change) string {
		switch {
		case user == strangerID:
			return "refused"
		case user == agentID && c.Coaching():
			return "refused"
		}
		return "ok"
	}
	for len(cmds) < total {
		user := users[rng.IntN(len(users))]
		lc := loadCommand{user: user, pairOf: -1}
		switch r := rng.Float64(); {
		case r < 0.70:
			c := positive[0]
			positive = positive[1:]
			lc.typed, lc.want, lc.keys = c.Text(), wantFor(user, c), changeKeys(c)
			lc.anchor = fmt.Sprintf("<@%s> asked: %s", user, c.Describe())
		case r < 0.88:
			c := negative[0]
			negative = negative[1:]
			lc.click, lc.want, lc.keys = c, wantFor(user, c), changeKeys(c)
			if rng.IntN(10) == 0 && len(cmds)+1 < total {
				// A double tap: the same button twice.
				lc.user = supervisorID
				lc.want = "ok"
				cmds = append(cmds, lc)
				cmds = append(cmds, loadCommand{user: supervisorID, click: c, pairOf: len(cmds) - 1, want: "duplicate"})
				continue
			}
		case r < 0.93:
			mpc := fmt.Sprintf("load_mpc_%02d", rng.IntN(60))
			lc.typed, lc.want = fmt.Sprintf("mute %s %d", mpc, 900+len(cmds)), "not_found"
			if user == strangerID {
				lc.want = "refused"
			}
			c, _ := commands.Parse(lc.typed)
			lc.anchor = fmt.Sprintf("<@%s> asked: %s", user, c.(commands.Change).Describe())
		case r < 0.97:
			lc.typed, lc.want = fmt.Sprintf("list load_mpc_%02d", rng.IntN(60)), "list"
			if user == strangerID {
				lc.want = "refused"
			}
		default:
			lc.typed, lc.want = fmt.Sprintf("mtue load_mpc_%02d 101", rng.IntN(60)), "usage"
		}
		if lc.want != "ok" {
			lc.keys = nil
		}
		cmds = append(cmds, lc)
	}

	plivoFaults := []plivotest.Fault{
		{Status: 429, RetryAfter: "1"}, {Status: 429}, {Status: 500}, {Status: 502}, {Status: 503},
		{Delay: 1500 * time.Millisecond}, // longer than PLIVO_TIMEOUT: abandoned, not applied
		{Delay: 300 * time.Millisecond},  // slow but in time
		{Drop: true},
		// Applied, but the answer is lost: the client must confirm by
		// reading back, never send the same update again.
		{Status: 503, Apply: true}, {Status: 500, Apply: true}, {Drop: true, Apply: true},
		{Delay: 1500 * time.Millisecond, Apply: true},
	}
	slackFaults := []struct {
		method  string
		failure slacktest.Failure
	}{
		{"chat.postMessage", slacktest.Failure{Status: 429, RetryAfter: 1}},
		{"chat.postMessage", slacktest.Failure{Status: 503}},
		{"response_url", slacktest.Failure{Status: 502}},
	}

	const wave = 40
	waves := (total + wave - 1) / wave
	dropAfter := map[int]bool{waves / 3: true, 2 * waves / 3: true}
	redeliverAfter := map[int]bool{waves / 4: true, waves / 2: true}
	redelivered := map[string]bool{}
	start := time.Now()
	for w := 0; w*wave < total; w++ {
		batch := cmds[w*wave : min((w+1)*wave, total)]
		for i := range batch {
			lc := &batch[i]
			if rng.IntN(100) < 12 {
				h.plivo.FailNext(1, plivoFaults[rng.IntN(len(plivoFaults))])
			}
			if rng.IntN(100) < 3 {
				f := slackFaults[rng.IntN(len(slackFaults))]
				h.slack.FailNext(f.method, 1, f.failure)
			}
			switch {
			case lc.typed != "":
				lc.id = h.slack.SendSlashCommand(slacktest.SlashCommand{UserID: lc.user, ChannelID: channelID, Text: lc.typed})
			default:
				if lc.pairOf >= 0 {
					lc.ts = cmds[lc.pairOf].ts
				} else {
					lc.ts = h.slack.AddUserMessage(channelID, supervisorID, "results with buttons")
				}
				lc.id = h.slack.SendBlockAction(slacktest.BlockAction{UserID: lc.user, ChannelID: channelID, MessageTS: lc.ts,
					ActionID: "mpc.run:0", Value: commands.EncodeButton(lc.click, time.Now())})
			}
		}
		for _, lc := range batch {
			ack, err := h.slack.WaitAck(h.ctx(), lc.id)
			if err != nil {
				t.Fatalf("command %q (wave %d): %v", lc.typed, w, err)
			}
			if ack.Late {
				t.Errorf("command %q acked after %v (Slack showed an error)", lc.typed, ack.Latency)
			}
		}
		if redeliverAfter[w] {
			for range 2 {
				id := cmds[rng.IntN((w+1)*wave)].id
				if redelivered[id] {
					continue
				}
				redelivered[id] = true
				dups := h.slack.Stats().DuplicateAcks
				if err := h.slack.Redeliver(id); err != nil {
					t.Fatal(err)
				}
				h.waitStats("the redelivery acked", func(st slacktest.Stats) bool { return st.DuplicateAcks > dups })
			}
		}
		if dropAfter[w] {
			at := time.Now()
			h.slack.DropConnections()
			h.waitNewConnection(at)
		}
	}
	sent := time.Since(start)

	// Every command is finished once its audit record is written.
	pending := map[string]bool{}
	for _, lc := range cmds {
		pending[lc.id] = true
	}
	deadline := time.Now().Add(60 * time.Second)
	for len(pending) > 0 {
		for _, rec := range h.auditRecords() {
			if id, ok := rec["envelope_id"].(string); ok {
				delete(pending, id)
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d commands never finished, e.g. %v", len(pending), slices.Collect(maps.Keys(pending))[:1])
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Logf("%d commands sent in %v, all finished after %v; %d Plivo requests; Slack stats %+v",
		total, sent.Round(time.Millisecond), time.Since(start).Round(time.Millisecond), h.plivo.RequestCount(), h.slack.Stats())

	// What users saw.
	byEnvelope := map[string][]slacktest.Message{}
	for _, m := range h.slack.Messages() {
		if m.EnvelopeID != "" {
			byEnvelope[m.EnvelopeID] = append(byEnvelope[m.EnvelopeID], m)
		}
	}
	anchors := map[string][]slacktest.Message{}
	for _, m := range h.slack.MessagesIn(channelID) {
		if m.ThreadTS == "" {
			anchors[m.Text] = append(anchors[m.Text], m)
		}
	}
	wantMark := map[string]string{"ok": "✅", "refused": "⛔", "not_found": "❌", "usage": "❌", "list": "Participants of", "duplicate": "tapped that twice"}
	// Changes whose lost answer was settled by reading the state back: the
	// state was already right, so Plivo may have applied nothing for them.
	confirmedByRead := map[int]bool{}
	defer func() { t.Logf("%d changes settled by reading the state back", len(confirmedByRead)) }()
	for i, lc := range cmds {
		what := lc.typed
		if what == "" {
			what = "click " + lc.click.Text()
		}
		seen := byEnvelope[lc.id]
		switch {
		case lc.typed != "" && lc.anchor != "" && (lc.want == "ok" || lc.want == "not_found"):
			as := anchors[lc.anchor]
			if len(as) > 1 {
				t.Errorf("%d: %q: %d anchors", i, what, len(as))
			}
			for _, a := range as {
				seen = append(seen, h.slack.ThreadReplies(channelID, a.TS)...)
			}
		case lc.pairOf >= 0:
			continue // counted with the first tap
		case lc.typed == "":
			seen = append(seen, h.slack.ThreadReplies(channelID, lc.ts)...)
			if i+1 < len(cmds) && cmds[i+1].pairOf == i {
				seen = append(seen, byEnvelope[cmds[i+1].id]...)
				if len(seen) == 2 && !strings.Contains(seen[0].Text+seen[1].Text, wantMark["duplicate"]) {
					t.Errorf("%d: %q tapped twice: no notice for the second tap: %q", i, what, seen[1].Text)
				}
			}
		}
		want := 1
		if i+1 < len(cmds) && cmds[i+1].pairOf == i {
			want = 2
		}
		for _, m := range seen {
			if strings.Contains(m.Text, "reading the state back") {
				confirmedByRead[i] = true
			}
		}
		if len(seen) != want {
			var texts []string
			for _, m := range seen {
				texts = append(texts, m.Method+": "+m.Text)
			}
			t.Errorf("%d: %q by %s: %d visible outcomes, want %d: %q", i, what, lc.user, len(seen), want, texts)
			continue
		}
		if !strings.Contains(seen[0].Text, wantMark[lc.want]) && (want == 1 || !strings.Contains(seen[1].Text, wantMark[lc.want])) {
			t.Errorf("%d: %q by %s: want %s, saw %q", i, what, lc.user, lc.want, seen[0].Text)
		}
	}
	if st := h.slack.Stats(); st.AckTimeouts != 0 {
		t.Errorf("%d envelopes not acked in time", st.AckTimeouts)
	}

	// What Plivo applied: each update once, and only those of successful commands.
	applied := map[string]int{}
	for _, r := range h.plivo.AppliedUpdates() {
		applied[updateKey(r.Path, r.Body)]++
	}
	expected := map[string]bool{}  // applied by exactly one successful command
	mustApply := map[string]bool{} // …and not settled by reading back
	for i, lc := range cmds {
		for _, k := range lc.keys {
			expected[k] = true
			if !confirmedByRead[i] {
				mustApply[k] = true
			}
		}
	}
	for k, n := range applied {
		switch {
		case n > 1:
			t.Errorf("Plivo applied %s %d times", k, n)
		case !expected[k]:
			t.Errorf("Plivo applied %s, which no successful command asked for", k)
		}
	}
	for k := range mustApply {
		if applied[k] == 0 {
			t.Errorf("%s was never applied", k)
		}
	}
	t.Logf("%d distinct updates applied for %d successful changes", len(applied), len(expected))

	// The faults were really met, not just queued.
	statuses := map[int]int{}
	for _, r := range h.plivo.Requests() {
		if r.Fault {
			statuses[r.Status]++
		}
	}
	t.Logf("Plivo faults served by status (0 = no answer): %v; Slack failures: chat.postMessage %d, response_url %d",
		statuses, failedCalls(h, "chat.postMessage"), failedCalls(h, "response_url"))
	for _, st := range []int{0, 200, 429, 500, 502, 503} {
		if statuses[st] == 0 {
			t.Errorf("no Plivo fault answered with status %d: the mix did not exercise it", st)
		}
	}
	if failedCalls(h, "chat.postMessage") == 0 || failedCalls(h, "response_url") == 0 {
		t.Error("the Slack faults were not exercised")
	}
}
