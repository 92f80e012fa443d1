package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net/http"
	"runtime"
	"strconv"
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
	pollEvery    = 5 * time.Millisecond       // how often waitUntil looks again
)

// minParallel is how many tests may run at once unless -parallel says
// otherwise. go test's default is GOMAXPROCS, but these tests spend nearly
// all their time waiting on timers, fakes and sockets, not computing.
const minParallel = 8

// TestMain raises the default of -parallel to minParallel; an explicit
// -parallel is kept.
func TestMain(m *testing.M) {
	flag.Parse()
	explicit := false
	flag.Visit(func(f *flag.Flag) { explicit = explicit || f.Name == "test.parallel" })
	if !explicit && runtime.GOMAXPROCS(0) < minParallel {
		if err := flag.Set("test.parallel", strconv.Itoa(minParallel)); err != nil {
			panic(fmt.Sprintf("set -test.parallel: %v", err))
		}
	}
	m.Run()
}

// waitUntil polls cond until it returns true. If within passes first, it
// fails the test saying what it was waiting for. Call it from the test's
// own goroutine.
func waitUntil(t testing.TB, within time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("waited %v for %s", within, what)
		}
		time.Sleep(pollEvery)
	}
}

// ctxWithTimeout is a test-scoped context.
func ctxWithTimeout(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// harness runs the real mpcbot wiring (NewMain: config, Plivo client with
// its limiter, policy, bot, health server) against the fake Slack and the
// Plivo simulator. Every harness has its own fakes and ports, so tests that
// start their own can run in parallel.
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
		"SLACK_APP_TOKEN": h.slack.AppToken(),
		"SLACK_BOT_TOKEN": h.slack.BotToken(),
		"SLACK_API_URL":   h.slack.APIURL(),
		// The fake pings every 500 ms; 10 s without one is a dead link,
		// not a busy test machine. TestFaultSilentConnection sets its own.
		"SLACK_PING_TIMEOUT": "10s",
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
			t.Logf("Slack messages:\n%s", h.dumpMessages())
			t.Logf("Socket Mode stats %+v, connections %+v", h.slack.Stats(), h.slack.Connections())
			t.Logf("bot log:\n%s", h.logs.String())
		}
	})
	h.waitConnected()
	return h
}

// in returns the harness reporting to t: a subtest sharing its parent's
// bot uses it so that its failures stop the subtest, not the parent.
func (h *harness) in(t *testing.T) *harness {
	c := *h
	c.t = t
	return &c
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
	return ctxWithTimeout(h.t, waitFor)
}

func (h *harness) waitConnected() {
	h.t.Helper()
	waitUntil(h.t, waitFor, "the bot to open all its Socket Mode connections", func() bool {
		return h.main.Bot.OpenConnections() == h.main.Config.SlackConnections
	})
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

// failedCalls counts the calls of a Slack method that the fake failed.
func failedCalls(h *harness, method string) int {
	n := 0
	for _, c := range h.slack.Calls() {
		if c.Method == method && c.Error != "" {
			n++
		}
	}
	return n
}

// auditRecords returns the audit log records written so far.
func (h *harness) auditRecords() []map[string]any {
	return auditRecordsIn(h.logs.String())
}

// auditRecordsIn returns the audit records among JSON log lines.
func auditRecordsIn(log string) []map[string]any {
	var out []map[string]any
	for _, line := range strings.Split(log, "\n") {
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

// auditRecordsFor returns the audit records of an envelope.
func (h *harness) auditRecordsFor(envelopeID string) []map[string]any {
	var out []map[string]any
	for _, rec := range h.auditRecords() {
		if rec["envelope_id"] == envelopeID {
			out = append(out, rec)
		}
	}
	return out
}

// auditFor waits for the audit record of an envelope: the bot writes it
// once the request is finished and its answer sent.
func (h *harness) auditFor(envelopeID string) map[string]any {
	h.t.Helper()
	var recs []map[string]any
	waitUntil(h.t, waitFor, "the audit record of envelope "+envelopeID, func() bool {
		recs = h.auditRecordsFor(envelopeID)
		return len(recs) > 0
	})
	return recs[0]
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
	waitUntil(h.t, waitFor, fmt.Sprintf("a log record %q", msg), func() bool { return len(h.logLines(msg)) > 0 })
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

// readyz returns the /readyz status code.
func (h *harness) readyz() int {
	h.t.Helper()
	code, _ := h.get("/readyz")
	return code
}

// waitReadyz polls /readyz until it answers want.
func (h *harness) waitReadyz(want int) {
	h.t.Helper()
	waitUntil(h.t, waitFor, fmt.Sprintf("/readyz to answer %d", want), func() bool { return h.readyz() == want })
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
