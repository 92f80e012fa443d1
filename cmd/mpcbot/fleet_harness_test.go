package main

import (
	"bytes"
	"context"
	"fmt"
	"maps"
	"runtime/pprof"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mpcbot/mpcbot/bot/slacktest"
	"github.com/mpcbot/mpcbot/fleet/redistest"
	"github.com/mpcbot/mpcbot/plivo/plivotest"
)

// fleetWorld is what the replicas of a fleet share: one fake Slack, one
// Plivo simulator and one real redis-server (REDIS_URL). Each test starts
// its own world.
//
// fleetSerial: the fleet tests do not call t.Parallel. The bot bounds
// every Redis call by REDIS_TIMEOUT (50 ms by default; 250 ms here), and a
// test process starved of CPU (-race, two cores, eight
// end-to-end tests at once) exceeds that now and then: the replica then
// degrades to per-process state, as designed, and the guarantees under test
// (one budget, exactly once) rightly stop holding. Serial tests run before
// the parallel ones, so the fleet tests have the machine to themselves.
// When one fails all the same, the failure log lists every degradation.
type fleetWorld struct {
	t     *testing.T
	slack *slacktest.Server
	plivo *plivotest.Server
	redis *redistest.Server
	// env is every replica's environment (a replica may add to it).
	env map[string]string

	mu sync.Mutex
	// owners maps a fake Slack connection id to the replica that opened it.
	owners   map[int]string
	replicas []*replica
	started  int // replicas started so far, in process or not
}

// replica is one mpcbot process of a fleet running in the test process: the
// real wiring (NewMain), with the harness's helpers (slash, anchorAndReply,
// auditFor, get, scrape…) reading its own log and health server.
type replica struct {
	*harness
	name string
}

// fleetConfig is how a fleet test's world differs from the default.
type fleetConfig struct {
	redis redistest.Options
	env   []string // key, value, …
}

// fleetOption adjusts a world before it starts.
type fleetOption func(*fleetConfig)

// withFleetEnv sets environment variables for every replica.
func withFleetEnv(kv ...string) fleetOption {
	return func(c *fleetConfig) { c.env = append(c.env, kv...) }
}

// withRedisPassword makes the redis-server require a password (then in
// REDIS_URL).
func withRedisPassword(pw string) fleetOption {
	return func(c *fleetConfig) { c.redis.Password = pw }
}

// startFleet starts the shared fakes and Redis; no replica yet.
func startFleet(t *testing.T, opts ...fleetOption) *fleetWorld {
	t.Helper()
	var cfg fleetConfig
	for _, o := range opts {
		o(&cfg)
	}
	w := &fleetWorld{t: t, owners: map[int]string{}}
	w.slack = slacktest.NewServer(slacktest.WithPingInterval(500 * time.Millisecond))
	t.Cleanup(w.slack.Close)
	w.plivo = plivotest.NewServer(plivotest.WithSampleMPC())
	t.Cleanup(w.plivo.Close)
	var err error
	w.redis, err = redistest.Start(cfg.redis)
	if err != nil {
		t.Fatalf("the fleet tests need a real redis-server: %v", err)
	}
	t.Cleanup(func() { w.redis.Close() })
	w.slack.AddUser(agentID, "agent")
	w.slack.AddUser(strangerID, "stranger")
	w.slack.JoinChannel(channelID, agentID)
	w.slack.JoinChannel(channelID, strangerID)
	w.env = map[string]string{
		"SLACK_APP_TOKEN":    w.slack.AppToken(),
		"SLACK_BOT_TOKEN":    w.slack.BotToken(),
		"SLACK_API_URL":      w.slack.APIURL(),
		"SLACK_PING_TIMEOUT": "10s",
		"PLIVO_AUTH_ID":      w.plivo.AuthID,
		"PLIVO_AUTH_TOKEN":   w.plivo.AuthToken,
		"PLIVO_API_URL":      w.plivo.URL,
		"MPC_SUPERVISORS":    supervisorID,
		"MPC_AGENTS":         agentID,
		"REDIS_URL":          w.redis.URL(),
		"REDIS_TIMEOUT":      "250ms", // room for a CPU-starved -race run (see fleetSerial)
		"HTTP_ADDR":          "127.0.0.1:0",
		"LOG_LEVEL":          "info", // debug costs CPU (see fleetSerial)
		"LOG_FORMAT":         "json",
		"SHUTDOWN_GRACE":     "5s",
	}
	for i := 0; i+1 < len(cfg.env); i += 2 {
		w.env[cfg.env[i]] = cfg.env[i+1]
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("Slack messages:\n%s", dumpMessagesOf(w.slack))
			t.Logf("Socket Mode stats %+v\nconnections %+v\nowners %v", w.slack.Stats(), w.slack.Connections(), w.ownerMap())
			t.Logf("degradations of the shared state (Redis calls over 50 ms on a busy machine, or a test's outage):\n%s", w.degradations())
		}
	})
	return w
}

// degradeMark counts the replicas' switches to per-process state so far.
func (w *fleetWorld) degradeMark() int {
	w.mu.Lock()
	rs := slices.Clone(w.replicas)
	w.mu.Unlock()
	n := 0
	for _, r := range rs {
		n += len(r.logLines("fleet: redis unreachable"))
	}
	return n
}

// degradedSince reports whether a replica switched to per-process state
// since the mark.
func (w *fleetWorld) degradedSince(mark int) bool { return w.degradeMark() > mark }

// degradations lists every replica's switches to per-process state.
func (w *fleetWorld) degradations() string {
	w.mu.Lock()
	rs := slices.Clone(w.replicas)
	w.mu.Unlock()
	var b strings.Builder
	for _, r := range rs {
		for _, l := range r.logLines("fleet: redis unreachable") {
			fmt.Fprintf(&b, "replica %s: %s\n", r.name, l)
		}
	}
	if b.Len() == 0 {
		return "(none)"
	}
	return b.String()
}

// startReplicas starts n replicas one after the other, named by the
// next letters (a, b, c… in a fresh world).
func (w *fleetWorld) startReplicas(n int) []*replica {
	w.t.Helper()
	var out []*replica
	for range n {
		w.mu.Lock()
		name := string(rune('a' + w.started))
		w.mu.Unlock()
		out = append(out, w.startReplica(name))
	}
	return out
}

// startReplica starts one replica in this process with the world's
// environment, waits until all its Socket Mode connections are open, and
// notes them as its own. It stops with the test.
func (w *fleetWorld) startReplica(name string) *replica {
	t := w.t
	t.Helper()
	w.mu.Lock()
	w.started++
	w.mu.Unlock()
	h := &harness{t: t, slack: w.slack, plivo: w.plivo, logs: &syncBuffer{}, env: maps.Clone(w.env)}
	before := openConnectionIDs(w.slack)
	cfg, err := loadConfig(h.env, needSlack|needPlivo)
	if err != nil {
		t.Fatalf("replica %s: config: %v", name, err)
	}
	logger := newLogger(h.logs, cfg.LogLevel, cfg.LogFormat, cfg.secrets())
	h.main, err = NewMain(cfg, logger)
	if err != nil {
		t.Fatalf("replica %s: NewMain: %v", name, err)
	}
	if err := h.main.Open(); err != nil {
		t.Fatalf("replica %s: Open: %v", name, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	h.cancel = cancel
	h.done = make(chan error, 1)
	go func() { h.done <- h.main.Run(ctx) }()
	t.Cleanup(func() {
		h.cancel()
		select {
		case err := <-h.done:
			h.done <- err
		case <-time.After(60 * time.Second):
			var dump bytes.Buffer
			_ = pprof.Lookup("goroutine").WriteTo(&dump, 1)
			t.Errorf("replica %s did not stop within 60 s; goroutines:\n%s", name, dump.String())
		}
		_ = h.main.Close()
		if t.Failed() {
			t.Logf("replica %s log:\n%s", name, h.logs.String())
		}
	})
	h.waitConnected()
	w.claimConnections(name, before, cfg.SlackConnections)
	r := &replica{harness: h, name: name}
	w.mu.Lock()
	w.replicas = append(w.replicas, r)
	w.mu.Unlock()
	return r
}

// closeReplica stops a replica the way SIGTERM does (it stops taking
// envelopes, finishes its commands) and leaves the fleet (Main.Close).
func (w *fleetWorld) closeReplica(r *replica) {
	w.t.Helper()
	if err := r.stop(); err != nil {
		w.t.Fatalf("replica %s stopped with %v", r.name, err)
	}
	if err := r.main.Close(); err != nil {
		w.t.Fatalf("replica %s: Close: %v", r.name, err)
	}
}

// replica returns the replica with that name.
func (w *fleetWorld) replica(name string) *replica {
	w.t.Helper()
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, r := range w.replicas {
		if r.name == name {
			return r
		}
	}
	w.t.Fatalf("no replica %q", name)
	return nil
}

// openConnectionIDs returns the ids of the fake's open connections.
func openConnectionIDs(s *slacktest.Server) map[int]bool {
	ids := map[int]bool{}
	for _, c := range s.OpenConnections() {
		ids[c.ID] = true
	}
	return ids
}

// claimConnections waits until want connections opened since before are
// open, and records them as name's. Replicas start one at a time, so the
// new connections are the new replica's.
func (w *fleetWorld) claimConnections(name string, before map[int]bool, want int) {
	w.t.Helper()
	var fresh []int
	waitUntil(w.t, waitFor, fmt.Sprintf("%d new Socket Mode connections of replica %s", want, name), func() bool {
		fresh = fresh[:0]
		for _, c := range w.slack.OpenConnections() {
			if !before[c.ID] {
				fresh = append(fresh, c.ID)
			}
		}
		return len(fresh) >= want
	})
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, id := range fresh {
		w.owners[id] = name
	}
}

// adopt records every open connection of unknown owner as name's: call it
// once name has reconnected, while no other replica does.
func (w *fleetWorld) adopt(name string) {
	open := w.slack.OpenConnections()
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, c := range open {
		if _, ok := w.owners[c.ID]; !ok {
			w.owners[c.ID] = name
		}
	}
}

// connection returns what the fake Slack knows of a connection.
func (w *fleetWorld) connection(id int) slacktest.ConnectionInfo {
	for _, c := range w.slack.Connections() {
		if c.ID == id {
			return c
		}
	}
	w.t.Fatalf("no connection %d", id)
	return slacktest.ConnectionInfo{}
}

// ownerOf names the replica that opened a fake Slack connection ("" when
// unknown: a reconnection after the replica started).
func (w *fleetWorld) ownerOf(connectionID int) string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.owners[connectionID]
}

func (w *fleetWorld) ownerMap() map[int]string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return maps.Clone(w.owners)
}

// deliveredTo returns the replica that received each delivery of an
// envelope, in order.
func (w *fleetWorld) deliveredTo(envelopeID string) []string {
	rec, _ := w.slack.Envelope(envelopeID)
	var out []string
	for _, d := range rec.Deliveries {
		out = append(out, w.ownerOf(d.ConnectionID))
	}
	return out
}

// waitDeliveries waits until an envelope has been delivered n times and
// acked n times, and returns the replica of each delivery.
func (w *fleetWorld) waitDeliveries(envelopeID string, n int) []string {
	w.t.Helper()
	waitUntil(w.t, waitFor, fmt.Sprintf("%d acked deliveries of %s", n, envelopeID), func() bool {
		rec, _ := w.slack.Envelope(envelopeID)
		return len(rec.Deliveries) >= n && len(rec.Acks) >= n
	})
	return w.deliveredTo(envelopeID)
}

// auditsOf returns the audit records of an envelope, by replica.
func (w *fleetWorld) auditsOf(envelopeID string) map[string][]map[string]any {
	w.mu.Lock()
	rs := slices.Clone(w.replicas)
	w.mu.Unlock()
	out := map[string][]map[string]any{}
	for _, r := range rs {
		if recs := r.auditRecordsFor(envelopeID); len(recs) > 0 {
			out[r.name] = recs
		}
	}
	return out
}

// auditOnce waits for the audit record of an envelope and fails unless the
// fleet wrote exactly one; it returns the record and the replica.
func (w *fleetWorld) auditOnce(envelopeID string) (map[string]any, string) {
	w.t.Helper()
	waitUntil(w.t, waitFor, "the audit record of envelope "+envelopeID, func() bool { return len(w.auditsOf(envelopeID)) > 0 })
	recs := w.auditsOf(envelopeID)
	n, who := 0, ""
	var rec map[string]any
	for name, rs := range recs {
		n += len(rs)
		who, rec = name, rs[0]
	}
	if n != 1 {
		w.t.Fatalf("%d audit records for envelope %s across the fleet (%v), want exactly 1", n, envelopeID, recs)
	}
	return rec, who
}

// dumpMessagesOf lists what the fake Slack shows, one message a line.
func dumpMessagesOf(s *slacktest.Server) string {
	var b strings.Builder
	for _, m := range s.Messages() {
		fmt.Fprintf(&b, "- %s ch=%s ts=%s thread=%s env=%s: %q\n", m.Method, m.Channel, m.TS, m.ThreadTS, m.EnvelopeID, m.Text)
	}
	return b.String()
}

// addMembers adds n agents to a new live MPC and returns their member ids:
// distinct targets, so that every command has its own anchor to look for.
func (w *fleetWorld) addMembers(mpc string, n int) []string {
	w.plivo.AddMPC(mpc)
	ids := make([]string, n)
	for i := range ids {
		ids[i] = w.plivo.AddParticipant(mpc, plivotest.RoleAgent)
	}
	return ids
}

// anchorsFor returns the anchors of a change in the default channel: the
// top-level messages "<@user> asked: <describe>" ("unhold …" is not
// "hold …").
func anchorsFor(s *slacktest.Server, describe string) []slacktest.Message {
	var out []slacktest.Message
	for _, m := range s.MessagesIn(channelID) {
		if m.Method == "chat.postMessage" && m.ThreadTS == "" && strings.HasSuffix(m.Text, ": "+describe) {
			out = append(out, m)
		}
	}
	return out
}

// busiestWindow returns the largest number of times in any window
// [t, t+w).
func busiestWindow(times []time.Time, w time.Duration) int {
	ts := slices.Clone(times)
	slices.SortFunc(ts, func(a, b time.Time) int { return a.Compare(b) })
	best, j := 0, 0
	for i := range ts {
		for j < len(ts) && ts[j].Sub(ts[i]) < w {
			j++
		}
		best = max(best, j-i)
	}
	return best
}

// plivoArrivals returns when each request reached the simulator (every
// operation: reads count against the account's budget too).
func plivoArrivals(p *plivotest.Server) []time.Time {
	var out []time.Time
	for _, r := range p.Requests() {
		out = append(out, r.Time)
	}
	return out
}

// checkFleetBudget fails if any window of the simulator's request log
// holds more than burst + rate·T requests (+ slack: the limiter books slots,
// the replicas send a little later, a busy machine may delay one sender
// more than the next). It returns the busiest count of the longest window.
func checkFleetBudget(t *testing.T, what string, times []time.Time, rate float64, burst, slack int, windows ...time.Duration) int {
	t.Helper()
	got := 0
	for _, w := range windows {
		limit := burst + int(rate*w.Seconds())
		got = busiestWindow(times, w)
		t.Logf("%s: busiest %v window: %d Plivo requests (burst + rate·T = %d)", what, w, got, limit)
		if got > limit+slack {
			t.Errorf("%s: %d Plivo requests in a window of %v, above burst + rate·T = %d (+%d slack)", what, got, w, limit, slack)
		}
	}
	return got
}
