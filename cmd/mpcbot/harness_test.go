package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mpcbot/mpcbot/bot/slacktest"
	"github.com/mpcbot/mpcbot/plivo/plivotest"
)

// Users and channels of the end-to-end workspace.
const (
	supervisorID = slacktest.DefaultUserID // U0SUPER1, member of the default channel
	agentID      = "U0AGENT1"
	strangerID   = "U0STRANGER1"
	channelID    = slacktest.DefaultChannelID // C0MPC: public, the bot is a member
	waitFor      = 15 * time.Second           // generous: CI machines are slow under -race
)

// harness runs the real mpcbot wiring (NewMain: config, Plivo client with
// its limiter, policy, bot, health server) against the fake Slack and the
// Plivo simulator.
type harness struct {
	t     *testing.T
	slack *slacktest.Server
	plivo *plivotest.Server
	main  *Main
	logs  *syncBuffer
	env   map[string]string

	cancel context.CancelFunc
	done   chan error
}

// harnessOption adjusts the environment or the fakes before the bot starts.
type harnessOption func(h *harness)

// withEnv sets environment variables for the bot.
func withEnv(kv ...string) harnessOption {
	return func(h *harness) {
		for i := 0; i+1 < len(kv); i += 2 {
			h.env[kv[i]] = kv[i+1]
		}
	}
}

// startBot starts the fakes and the bot, and waits until the bot is
// connected (Slack said hello).
func startBot(t *testing.T, opts ...harnessOption) *harness {
	t.Helper()
	return startBotWith(t, []slacktest.Option{slacktest.WithPingInterval(500 * time.Millisecond)}, opts...)
}

func startBotWith(t *testing.T, slackOpts []slacktest.Option, opts ...harnessOption) *harness {
	t.Helper()
	h := &harness{t: t, logs: &syncBuffer{}}
	h.slack = slacktest.NewServer(slackOpts...)
	t.Cleanup(h.slack.Close)
	h.plivo = plivotest.NewServer(plivotest.WithSampleMPC())
	t.Cleanup(h.plivo.Close)
	h.slack.AddUser(agentID, "agent")
	h.slack.AddUser(strangerID, "stranger")
	h.slack.JoinChannel(channelID, agentID)
	h.slack.JoinChannel(channelID, strangerID)
	h.env = map[string]string{
		"SLACK_APP_TOKEN":    h.slack.AppToken(),
		"SLACK_BOT_TOKEN":    h.slack.BotToken(),
		"SLACK_API_URL":      h.slack.APIURL(),
		"SLACK_PING_TIMEOUT": "3s",
		"PLIVO_AUTH_ID":      h.plivo.AuthID,
		"PLIVO_AUTH_TOKEN":   h.plivo.AuthToken,
		"PLIVO_API_URL":      h.plivo.URL,
		"MPC_SUPERVISORS":    supervisorID,
		"MPC_AGENTS":         agentID,
		"HTTP_ADDR":          "127.0.0.1:0",
		"LOG_LEVEL":          "debug",
		"LOG_FORMAT":         "json",
		"SHUTDOWN_GRACE":     "5s",
	}
	for _, o := range opts {
		o(h)
	}
	cfg, err := loadConfig(h.env, needSlack|needPlivo)
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	logger := newLogger(h.logs, cfg.LogLevel, cfg.LogFormat, cfg.secrets())
	h.main, err = NewMain(cfg, logger)
	if err != nil {
		t.Fatalf("NewMain: %v", err)
	}
	if err := h.main.Open(); err != nil {
		t.Fatalf("Open: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	h.cancel = cancel
	h.done = make(chan error, 1)
	go func() { h.done <- h.main.Run(ctx) }()
	t.Cleanup(func() {
		h.stop()
		_ = h.main.Close()
		if t.Failed() {
			t.Logf("bot log:\n%s", h.logs.String())
		}
	})
	h.waitConnected()
	return h
}

// stop cancels the bot's context (like SIGTERM) and waits for Run.
func (h *harness) stop() error {
	h.cancel()
	select {
	case err := <-h.done:
		h.done <- err // keep it for later callers
		return err
	case <-time.After(60 * time.Second):
		h.t.Fatal("the bot did not stop within 60 s")
		return nil
	}
}

func (h *harness) ctx() context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	h.t.Cleanup(cancel)
	return ctx
}

func (h *harness) waitConnected() {
	h.t.Helper()
	deadline := time.Now().Add(waitFor)
	for !h.main.Bot.Connected() {
		if time.Now().After(deadline) {
			h.t.Fatalf("the bot did not connect to the fake Slack within %s", waitFor)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// slash types a /mpc command and returns its envelope id and ack.
func (h *harness) slash(user, channel, text string) (string, slacktest.Ack) {
	h.t.Helper()
	id := h.slack.SendSlashCommand(slacktest.SlashCommand{UserID: user, ChannelID: channel, Text: text})
	ack, err := h.slack.WaitAck(h.ctx(), id)
	if err != nil {
		h.t.Fatalf("ack for %q: %v", text, err)
	}
	return id, ack
}

// anchorAndReply waits for the anchor a command posted in channel after
// since and the first reply in its thread.
func (h *harness) anchorAndReply(since time.Time, channel, contains string) (anchor, reply slacktest.Message) {
	h.t.Helper()
	anchor = h.waitMessage(func(m slacktest.Message) bool {
		return m.Method == "chat.postMessage" && m.Channel == channel && m.ThreadTS == "" &&
			strings.Contains(m.Text, contains) && !m.Time.Before(since)
	}, "anchor containing "+contains)
	reply = h.waitMessage(func(m slacktest.Message) bool {
		return m.Method == "chat.postMessage" && m.Channel == channel && m.ThreadTS == anchor.TS
	}, "thread reply under "+anchor.TS)
	return anchor, reply
}

// responseFor waits for a message sent through the response_url of an
// envelope.
func (h *harness) responseFor(envelopeID string) slacktest.Message {
	h.t.Helper()
	return h.waitMessage(func(m slacktest.Message) bool {
		return m.Method == "response_url" && m.EnvelopeID == envelopeID
	}, "response_url reply to "+envelopeID)
}

func (h *harness) waitMessage(match func(slacktest.Message) bool, what string) slacktest.Message {
	h.t.Helper()
	m, err := h.slack.WaitForMessage(h.ctx(), match)
	if err != nil {
		h.t.Fatalf("waiting for %s: %v\nmessages so far:\n%s", what, err, h.dumpMessages())
	}
	return m
}

func (h *harness) dumpMessages() string {
	var b strings.Builder
	for _, m := range h.slack.Messages() {
		fmt.Fprintf(&b, "- %s ch=%s ts=%s thread=%s env=%s: %q\n", m.Method, m.Channel, m.TS, m.ThreadTS, m.EnvelopeID, m.Text)
	}
	return b.String()
}

// click clicks a button (by its label) on a message the bot posted, as
// Slack would: the fake refuses buttons that are not on the message.
func (h *harness) click(user string, m slacktest.Message, label string) string {
	h.t.Helper()
	var labels []string
	for _, b := range m.Buttons() {
		if b.Text == label {
			id, err := h.slack.ClickButton(user, m.Channel, m.TS, b.ActionID)
			if err != nil {
				h.t.Fatalf("click %q: %v", label, err)
			}
			if _, err := h.slack.WaitAck(h.ctx(), id); err != nil {
				h.t.Fatalf("ack for click on %q: %v", label, err)
			}
			return id
		}
		labels = append(labels, b.Text)
	}
	h.t.Fatalf("no button %q on message %q (buttons: %q)", label, m.Text, labels)
	return ""
}

// auditRecords returns the audit log records written so far.
func (h *harness) auditRecords() []map[string]any {
	var out []map[string]any
	for _, line := range strings.Split(h.logs.String(), "\n") {
		if !strings.Contains(line, `"msg":"audit"`) {
			continue
		}
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err == nil {
			out = append(out, rec)
		}
	}
	return out
}

// auditFor waits for the audit record of an envelope.
func (h *harness) auditFor(envelopeID string) map[string]any {
	h.t.Helper()
	deadline := time.Now().Add(waitFor)
	for time.Now().Before(deadline) {
		for _, rec := range h.auditRecords() {
			if rec["envelope_id"] == envelopeID {
				return rec
			}
		}
		time.Sleep(5 * time.Millisecond)
	}
	h.t.Fatalf("no audit record for envelope %s", envelopeID)
	return nil
}

// get fetches a path from the health server.
func (h *harness) get(path string) (int, string) {
	h.t.Helper()
	resp, err := http.Get("http://" + h.main.Addr() + path)
	if err != nil {
		h.t.Fatalf("GET %s: %v", path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// updateRequests returns the Update Participant requests Plivo received
// after the first n requests of its log.
func (h *harness) updateRequests(n int) []plivotest.Request {
	var out []plivotest.Request
	for _, r := range h.plivo.Requests()[n:] {
		if r.Op == plivotest.OpUpdateParticipant {
			out = append(out, r)
		}
	}
	return out
}

// member returns the sample MPC's member id with a role.
func (h *harness) member(role string) string {
	for _, p := range h.plivo.Participants(plivotest.SampleMPCName) {
		if p.Role == role && p.Live {
			return p.MemberID
		}
	}
	h.t.Fatalf("no live %s in the sample MPC", role)
	return ""
}

// syncBuffer is a goroutine-safe log sink.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
