package main

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/mpcbot/mpcbot/bot/slacktest"
)

// Socket Mode faults the bot must survive, end to end through the fakes:
// links that drop, are refreshed, fail to open, go silent or flap, and
// envelopes Slack delivers twice.

// guardFlappingLog is the start of the reconnect guard's warning (bot/guard.go).
const guardFlappingLog = "Socket Mode keeps reconnecting"

// A socket dropped without a close frame: the bot reconnects and serves
// the next command. apps.connections.open fails while the link is down, so
// the outage lasts until the test ends it, and /readyz reports it.
func TestFaultSocketDropped(t *testing.T) {
	t.Parallel()
	h := startBot(t)
	if code := h.readyz(); code != http.StatusOK {
		t.Fatalf("/readyz = %d while connected, want 200", code)
	}
	h.slack.FailAlways("apps.connections.open", slacktest.Failure{Status: http.StatusInternalServerError})
	before := h.slack.Stats()
	dropped := time.Now()
	if n := h.slack.DropConnections(); n != h.main.Config.SlackConnections {
		t.Fatalf("dropped %d connections, want all %d", n, h.main.Config.SlackConnections)
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

// Slack's disconnect messages to every link at once: the bot opens new
// connections and serves the next command, whatever the reason. One bot
// goes through all of them in turn.
func TestFaultDisconnectReasons(t *testing.T) {
	t.Parallel()
	bot := startBot(t)
	for _, reason := range []string{slacktest.ReasonRefreshRequested, slacktest.ReasonWarning, slacktest.ReasonLinkDisabled} {
		t.Run(reason, func(t *testing.T) {
			h := bot.in(t)
			at := time.Now()
			if n := h.slack.Disconnect(reason); n != h.main.Config.SlackConnections {
				t.Fatalf("disconnected %d connections, want all %d", n, h.main.Config.SlackConnections)
			}
			h.waitNewConnection(at)
			h.mustServe()
		})
	}
}

// apps.connections.open failing with an error, with HTTP 5xx, or rate
// limited with Retry-After: slack-go backs off (honouring Retry-After),
// the bot reconnects and serves. With its only link down, a command typed
// during the outage fails at once with dispatch_failed, as in Slack (which
// is why the bot keeps two connections by default); one typed after is
// served. One link, so that the backoff of one connection is what is
// measured.
func TestFaultConnectionsOpenFailing(t *testing.T) {
	t.Parallel()
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
			t.Parallel()
			h := startBot(t, withEnv("SLACK_CONNECTIONS", "1"))
			agent := h.member("agent")
			calls := h.slack.CallCount("apps.connections.open")
			h.slack.FailNext("apps.connections.open", tt.n, tt.failure)
			at := time.Now()
			h.slack.DropConnections()
			// Typed while there is no connection: Slack fails it at once.
			lost := h.slack.SendSlashCommand(slacktest.SlashCommand{UserID: supervisorID, Text: "mute test_mpc_1 " + agent})
			if _, err := h.slack.WaitAck(h.ctx(), lost); !errors.Is(err, slacktest.ErrDispatchFailed) {
				t.Fatalf("command typed with no connection open: %v, want dispatch_failed", err)
			}
			h.waitNewConnection(at)
			since := time.Now()
			h.slash(supervisorID, channelID, "mute test_mpc_1 "+agent)
			_, reply := h.anchorAndReply(since, channelID, "mute member "+agent)
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
		})
	}
}

// A connection that stays open but goes silent (no pings, nothing
// delivered, slack-go issue #1093): slack-go's ping watchdog
// (SLACK_PING_TIMEOUT) gives up on it and the bot connects again; the
// command typed meanwhile is served on the new connection.
func TestFaultSilentConnection(t *testing.T) {
	t.Parallel()
	h := startBot(t, withEnv("SLACK_PING_TIMEOUT", "2s", "SLACK_CONNECTIONS", "1"))
	at := time.Now()
	if n := h.slack.SilenceConnections(); n != 1 {
		t.Fatalf("silenced %d connections, want 1", n)
	}
	// Slack cannot tell a half-open link from a live one: an envelope sent
	// now is lost on it (the user sees an error after 3 s).
	lost := h.slack.SendSlashCommand(slacktest.SlashCommand{UserID: supervisorID, Text: "hold test_mpc_1 " + h.member("agent")})
	if _, err := h.slack.WaitAck(h.ctx(), lost); !errors.Is(err, slacktest.ErrAckTimeout) {
		t.Fatalf("command typed on the silent link: %v, want the ack timeout of a lost envelope", err)
	}
	// The bot notices the silence within SLACK_PING_TIMEOUT and replaces
	// the link; the next command is served on the new one.
	ci := h.waitNewConnection(at)
	id, _ := h.slash(supervisorID, channelID, "hold test_mpc_1 "+h.member("agent"))
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
	t.Parallel()
	h := startBot(t)
	const (
		burst  = 3 // bot.defaultReconnectBurst
		perSec = 1 // bot.defaultReconnectRate
		// Calls to wait for: well past the burst, so that the rate is what
		// is measured. A guard letting through more than twice perSec (or
		// no guard) gets there sooner than the bound below allows.
		enough = burst + 4
	)
	// bound is the most apps.connections.open calls a guard of burst and
	// rate lets through in d, with 2 to spare for calls in flight.
	bound := func(d time.Duration) int { return burst + int(perSec*d.Seconds()) + 2 }
	h.slack.FlapAfterHello(true)
	before := h.slack.Stats()
	start := time.Now()
	h.slack.DropConnections()
	// The bound must hold at every moment, not just at the end: each look
	// checks it, and the wait ends early when it is broken.
	var (
		st      slacktest.Stats
		opens   int
		elapsed time.Duration
	)
	waitUntil(t, waitFor, fmt.Sprintf("%d apps.connections.open calls while the link flaps (the bot stopped trying?)", enough), func() bool {
		st = h.slack.Stats()
		opens, elapsed = st.OpenCalls-before.OpenCalls, time.Since(start)
		return opens >= enough || opens > bound(elapsed)
	})
	t.Logf("%d apps.connections.open calls and %d flapped connections in %v of flapping (bound %d)",
		opens, st.ConnectionsOpened-before.ConnectionsOpened, elapsed.Round(time.Millisecond), bound(elapsed))
	if opens > bound(elapsed) {
		t.Fatalf("%d apps.connections.open calls in %v of flapping, want at most %d", opens, elapsed, bound(elapsed))
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
// clicked. One bot serves all three cases in turn.
func TestFaultRedelivery(t *testing.T) {
	t.Parallel()
	bot := startBot(t)
	customer := bot.member("customer")

	redeliver := func(h *harness, id string) {
		t := h.t
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
		// it, or once it wrote a second audit record. A second record comes
		// after that run's replies, so the counts below show them.
		ignored := `"msg":"ignored redelivered envelope","envelope_id":"` + id + `"`
		audits := 0
		waitUntil(t, waitFor, "the bot to recognise the redelivery of "+id, func() bool {
			audits = len(h.auditRecordsFor(id))
			return strings.Contains(h.logs.String(), ignored) || audits > 1
		})
		if audits > 1 {
			t.Errorf("the redelivered envelope was carried out again (%d audit records)", audits)
		}
	}

	t.Run("typed, after the reply", func(t *testing.T) {
		h := bot.in(t)
		applied := len(h.plivo.AppliedUpdates())
		since := time.Now()
		id, _ := h.slash(supervisorID, channelID, "mute test_mpc_1 "+customer)
		anchor, _ := h.anchorAndReply(since, channelID, "mute member "+customer)
		h.auditFor(id)
		redeliver(h, id)
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
		h := bot.in(t)
		h.plivo.SetDelay(time.Second)
		defer h.plivo.SetDelay(0)
		applied := len(h.plivo.AppliedUpdates())
		since := time.Now()
		id, _ := h.slash(supervisorID, channelID, "unmute test_mpc_1 "+customer)
		redeliver(h, id)
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
		h := bot.in(t)
		since := time.Now()
		h.slash(supervisorID, channelID, "hold test_mpc_1 "+customer)
		anchor, reply := h.anchorAndReply(since, channelID, "hold member "+customer)
		applied := len(h.plivo.AppliedUpdates())
		id := h.click(supervisorID, reply, "Unhold "+customer)
		h.auditFor(id)
		redeliver(h, id)
		if n := len(h.plivo.AppliedUpdates()) - applied; n != 1 {
			t.Errorf("%d Plivo updates applied for the click, want 1", n)
		}
		if n := len(h.slack.ThreadReplies(channelID, anchor.TS)); n != 2 {
			t.Errorf("%d thread replies, want 2 (the command and the click)", n)
		}
	})
}
