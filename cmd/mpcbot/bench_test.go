package main

import (
	"context"
	"io"
	"slices"
	"testing"
	"time"

	"github.com/mpcbot/mpcbot/bot/slacktest"
	"github.com/mpcbot/mpcbot/plivo/plivotest"
)

// BenchmarkSlashCommandAck measures how fast the real wiring (NewMain:
// config, Plivo client and limiter, policy, bot) acknowledges /mpc slash
// commands sent by the fake Slack over Socket Mode. The latency is the
// fake's Ack.Latency: from writing the envelope to the websocket to reading
// the ack frame. Commands are sent one after another (each waits for its
// ack, not for its reply), so the Plivo calls and Slack posts of earlier
// changes run in the background, as they would in production.
//
// "change" alternates mute and unmute of one member (an empty ack, then an
// anchor, a Plivo update and a thread reply); "help" is answered in the ack
// payload itself. The Plivo limiter is set high so that its queue does not
// dominate. Nothing is asserted about speed: the percentiles are reported
// as ack-p50-µs, ack-p99-µs and ack-max-µs.
//
//	go test -run XXX -bench BenchmarkSlashCommandAck -benchtime 2000x ./cmd/mpcbot
func BenchmarkSlashCommandAck(b *testing.B) {
	benchmarks := []struct {
		name        string
		text        func(i int, member string) string
		wantPayload bool
	}{
		{
			name: "change",
			text: func(i int, member string) string {
				if i%2 == 0 {
					return "mute " + plivotest.SampleMPCName + " " + member
				}
				return "unmute " + plivotest.SampleMPCName + " " + member
			},
		},
		{name: "help", text: func(int, string) string { return "help" }, wantPayload: true},
	}
	for _, bm := range benchmarks {
		b.Run(bm.name, func(b *testing.B) {
			bb := startBenchBot(b)
			member := bb.customer()
			latencies := make([]time.Duration, 0, b.N)
			for i := 0; b.Loop(); i++ {
				id := bb.slack.SendSlashCommand(slacktest.SlashCommand{UserID: supervisorID, ChannelID: channelID, Text: bm.text(i, member)})
				ctx, cancel := context.WithTimeout(context.Background(), waitFor)
				ack, err := bb.slack.WaitAck(ctx, id)
				cancel()
				if err != nil {
					b.Fatalf("command %d: no ack: %v", i, err)
				}
				hasPayload := len(ack.Payload) != 0 && string(ack.Payload) != "{}" && string(ack.Payload) != "null"
				if hasPayload != bm.wantPayload {
					b.Fatalf("command %d: ack payload %s, want a payload: %v", i, ack.Payload, bm.wantPayload)
				}
				latencies = append(latencies, ack.Latency)
			}
			b.StopTimer()
			bb.waitIdle()
			reportLatencies(b, "ack", latencies)
		})
	}
}

// reportLatencies reports the p50, p99 and maximum of latencies in
// microseconds, as <prefix>-p50-µs and so on.
func reportLatencies(b *testing.B, prefix string, latencies []time.Duration) {
	if len(latencies) == 0 {
		return
	}
	sorted := slices.Clone(latencies)
	slices.Sort(sorted)
	rank := func(p float64) time.Duration {
		// Nearest rank: the smallest value with at least p % of the values at or below it.
		i := int(float64(len(sorted))*p/100+0.999999) - 1
		return sorted[min(max(i, 0), len(sorted)-1)]
	}
	us := func(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }
	b.ReportMetric(us(rank(50)), prefix+"-p50-µs")
	b.ReportMetric(us(rank(99)), prefix+"-p99-µs")
	b.ReportMetric(us(sorted[len(sorted)-1]), prefix+"-max-µs")
}

// benchBot is the real wiring running against the fake Slack and the
// Plivo simulator, for benchmarks.
type benchBot struct {
	b      *testing.B
	slack  *slacktest.Server
	plivo  *plivotest.Server
	main   *Main
	cancel context.CancelFunc
	done   chan error
}

// startBenchBot starts the fakes and the bot with a Plivo limiter that
// never waits in practice and logs formatted (at info, as shipped) but
// discarded, and waits until the bot is connected.
func startBenchBot(b *testing.B) *benchBot {
	b.Helper()
	slack, err := slacktest.Start()
	if err != nil {
		b.Fatalf("fake Slack: %v", err)
	}
	b.Cleanup(slack.Close)
	sim, err := plivotest.Start(plivotest.WithSampleMPC(), plivotest.WithAccountLimit(0, 0), plivotest.WithLogLimit(1000))
	if err != nil {
		b.Fatalf("Plivo simulator: %v", err)
	}
	b.Cleanup(sim.Close)
	env := map[string]string{
		"SLACK_APP_TOKEN":  slack.AppToken(),
		"SLACK_BOT_TOKEN":  slack.BotToken(),
		"SLACK_API_URL":    slack.APIURL(),
		"PLIVO_AUTH_ID":    sim.AuthID,
		"PLIVO_AUTH_TOKEN": sim.AuthToken,
		"PLIVO_API_URL":    sim.URL,
		"PLIVO_RATE":       "100000",
		"PLIVO_BURST":      "100000",
		"MPC_SUPERVISORS":  supervisorID,
		"HTTP_ADDR":        "",
		"LOG_LEVEL":        "info",
		"SHUTDOWN_GRACE":   "5s",
	}
	cfg, err := loadConfig(env, needSlack|needPlivo)
	if err != nil {
		b.Fatalf("config: %v", err)
	}
	m, err := NewMain(cfg, newLogger(io.Discard, cfg.LogLevel, cfg.LogFormat, cfg.secrets()))
	if err != nil {
		b.Fatalf("NewMain: %v", err)
	}
	if err := m.Open(); err != nil {
		b.Fatalf("Open: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	bb := &benchBot{b: b, slack: slack, plivo: sim, main: m, cancel: cancel, done: make(chan error, 1)}
	go func() { bb.done <- m.Run(ctx) }()
	b.Cleanup(func() {
		cancel()
		select {
		case <-bb.done:
		case <-time.After(60 * time.Second):
			b.Error("the bot did not stop within 60 s")
		}
		_ = m.Close()
	})
	waitUntil(b, waitFor, "the bot to connect to the fake Slack", m.Bot.Connected)
	return bb
}

// customer returns the sample MPC's customer member id.
func (bb *benchBot) customer() string {
	for _, p := range bb.plivo.Participants(plivotest.SampleMPCName) {
		if p.Role == plivotest.RoleCustomer && p.Live {
			return p.MemberID
		}
	}
	bb.b.Fatal("no live customer in the sample MPC")
	return ""
}

// waitIdle waits until the bot has finished every accepted command, so
// that shutting down does not cut replies short.
func (bb *benchBot) waitIdle() {
	bb.b.Helper()
	waitUntil(bb.b, 60*time.Second, "the bot to finish every accepted command", func() bool { return bb.main.Bot.Pending() == 0 })
}
