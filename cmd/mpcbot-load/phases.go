package main

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/mpcbot/mpcbot/bot/slacktest"
	"github.com/mpcbot/mpcbot/plivo/plivotest"
)

// overloadedWord is in the ack payload of a command refused because the
// bot's queue is full (bot.overloadedText).
const overloadedWord = "overloaded"

// sendStats describes how well the open-loop schedule was kept.
type sendStats struct {
	Sent      int
	Elapsed   time.Duration
	MaxBehind time.Duration // the latest a send started after its slot
}

// rate returns the achieved send rate per second.
func (s sendStats) rate() float64 {
	if s.Elapsed <= 0 {
		return 0
	}
	return float64(s.Sent) / s.Elapsed.Seconds()
}

// userID returns the Slack user id of the i-th command's typist.
func userID(i int) string {
	return "U0L" + strings.ToUpper(strconv.FormatInt(int64(i), 36))
}

// changeText alternates mute and unmute of member.
func changeText(member string) func(i int) string {
	return func(i int) string {
		if i%2 == 0 {
			return "mute " + plivotest.SampleMPCName + " " + member
		}
		return "unmute " + plivotest.SampleMPCName + " " + member
	}
}

// sendOpenLoop types n commands at rate per second on a fixed schedule:
// command i is sent at start + i/rate whatever happened to the previous
// ones (an open loop: replies never slow the sender). Sends happen from
// one goroutine, so if a send itself takes longer than the interval the
// schedule slips; sendStats says by how much.
//
// onSent, if not nil, is called after each send (it must be quick).
func sendOpenLoop(ctx context.Context, s *slacktest.Server, n int, rate float64, text func(i int) string, onSent func(i int, c sentCommand)) ([]sentCommand, sendStats) {
	return sendOpenLoopFrom(ctx, time.Now(), s, n, rate, text, onSent)
}

// sendOpenLoopFrom is sendOpenLoop with the schedule starting at start.
func sendOpenLoopFrom(ctx context.Context, start time.Time, s *slacktest.Server, n int, rate float64, text func(i int) string, onSent func(i int, c sentCommand)) ([]sentCommand, sendStats) {
	cmds := make([]sentCommand, 0, n)
	var st sendStats
	interval := time.Duration(float64(time.Second) / rate)
	for i := range n {
		if ctx.Err() != nil {
			break
		}
		slot := start.Add(time.Duration(i) * interval)
		if d := time.Until(slot); d > 0 {
			time.Sleep(d)
		} else {
			st.MaxBehind = max(st.MaxBehind, -d)
		}
		c := sentCommand{UserID: userID(i), Text: text(i)}
		c.EnvelopeID = s.SendSlashCommand(slacktest.SlashCommand{UserID: c.UserID, Text: c.Text})
		c.Sent = time.Now()
		cmds = append(cmds, c)
		if onSent != nil {
			onSent(i, c)
		}
	}
	st.Sent = len(cmds)
	st.Elapsed = time.Since(start)
	return cmds, st
}

// ackStats is what the fake Slack saw of the acks of some commands.
type ackStats struct {
	Latency latencySummary
	// Missing counts commands never acked; Late those acked after Slack's 3 s deadline.
	Missing, Late int
	// delivered is each envelope's first delivery time.
	delivered map[string]time.Time
}

// collectAcks reads the first ack of every command from the fake.
func collectAcks(s *slacktest.Server, cmds []sentCommand) ackStats {
	records := map[string]slacktest.EnvelopeRecord{}
	for _, r := range s.Envelopes() {
		records[r.ID] = r
	}
	st := ackStats{delivered: map[string]time.Time{}}
	var lat []time.Duration
	for _, c := range cmds {
		r := records[c.EnvelopeID]
		if len(r.Deliveries) > 0 {
			st.delivered[c.EnvelopeID] = r.Deliveries[0].At
		}
		if len(r.Acks) == 0 {
			st.Missing++
			continue
		}
		if r.Acks[0].Late {
			st.Late++
		}
		lat = append(lat, r.Acks[0].Latency)
	}
	st.Latency = summarize(lat)
	return st
}

// waitAcks waits until every command is acked or limit passes.
func waitAcks(ctx context.Context, s *slacktest.Server, cmds []sentCommand, limit time.Duration) {
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		if collectAcks(s, cmds).Missing == 0 {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// waitOutcomes waits until every command has a visible outcome (or limit
// passes), then a little longer so that duplicates would show, and
// returns the tally.
func waitOutcomes(ctx context.Context, s *slacktest.Server, cmds []sentCommand, limit time.Duration) tally {
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		if observe(s, cmds).counts(cmds).None == 0 {
			break
		}
		time.Sleep(250 * time.Millisecond)
	}
	time.Sleep(time.Second)
	return observe(s, cmds)
}

// usage is the CPU the bot, this process (the fakes and the driver) and
// everything else on the machine used in a phase.
type usage struct {
	Wall, Bot, Driver, Others time.Duration
}

func (u usage) String() string {
	cores := func(d time.Duration) float64 {
		if u.Wall <= 0 {
			return 0
		}
		return d.Seconds() / u.Wall.Seconds()
	}
	return fmt.Sprintf("bot %.2f, fakes %.2f, other processes %.2f", cores(u.Bot), cores(u.Driver), cores(max(u.Others, 0)))
}

// meter measures CPU use from its creation to stop.
type meter struct {
	pids                  []int
	start                 time.Time
	bot0, driver0, total0 time.Duration
}

// newMeter starts measuring the CPU of the bot processes pids (summed),
// this process and the rest of the machine.
func newMeter(pids ...int) meter {
	return meter{pids: pids, start: time.Now(), bot0: botsCPU(pids), driver0: selfCPU(), total0: systemBusy()}
}

func botsCPU(pids []int) time.Duration {
	var sum time.Duration
	for _, pid := range pids {
		d, _ := cpuTime(pid)
		sum += d
	}
	return sum
}

func (m meter) stop() usage {
	u := usage{Wall: time.Since(m.start), Bot: botsCPU(m.pids) - m.bot0, Driver: selfCPU() - m.driver0}
	u.Others = systemBusy() - m.total0 - u.Bot - u.Driver
	return u
}

// waitQuiet waits, up to limit, until the processes other than the bots
// and this one use at most cores over a second; it returns how long it
// waited and whether the machine went quiet.
func waitQuiet(ctx context.Context, cores float64, limit time.Duration, pids []int) (time.Duration, bool) {
	start := time.Now()
	for time.Since(start) < limit {
		m := newMeter(pids...)
		if !sleepCtx(ctx, time.Second) {
			break
		}
		u := m.stop()
		if u.Others.Seconds()/u.Wall.Seconds() <= cores {
			return time.Since(start), true
		}
	}
	return time.Since(start), false
}

// settleIdle lets freshly started bots settle, then reads the first one's
// memory.
func settleIdle(w *world, d time.Duration) memory {
	time.Sleep(d)
	m, _ := readMemory(w.bot().pid())
	return m
}

// ackResult is one row of the ack-latency table.
type ackResult struct {
	// Run numbers repetitions of the same kind and rate (1, 2, …).
	Run       int
	Kind      string
	Rate      float64
	Replicas  int
	Redis     bool
	Send      sendStats
	Acks      ackStats
	Outcomes  outcomeCounts
	Idle, End memory
	CPU       usage
	LogLines  int
	// QuietWait is how long the phase waited for the rest of the machine
	// to go quiet (-quiet), and Quiet whether it did in time.
	QuietWait time.Duration
	Quiet     bool
	// Profile is where the CPU profile and execution trace written during
	// the sending start (-pprof): Profile+".cpu.pprof", Profile+".trace".
	Profile string
	Err     error
}

// ackSpec says which ack phase to run.
type ackSpec struct {
	kind     string
	rate     float64
	run      int
	replicas int  // bot processes (0 = 1)
	redis    bool // a fleet sharing a Redis
}

// runAckPhase sends commands of one kind at a fixed rate and measures
// their ack latency. The Plivo limiter and the simulator's account limit
// are out of the way, so every change goes all the way through (anchor,
// Plivo update, thread reply) and competes for the CPU with the acks.
func runAckPhase(ctx context.Context, o *options, spec ackSpec) ackResult {
	res := ackResult{Kind: spec.kind, Rate: spec.rate, Run: spec.run, Replicas: max(spec.replicas, 1), Redis: spec.redis}
	name := fmt.Sprintf("ack-%s-%g-%d", spec.kind, spec.rate, spec.run)
	if spec.redis {
		name = fmt.Sprintf("fleet-ack-%dx-%g-%d", res.Replicas, spec.rate, spec.run)
	}
	w, err := startWorld(ctx, o, worldConfig{
		name:     name,
		env:      map[string]string{"PLIVO_RATE": "100000", "PLIVO_BURST": "100000"},
		replicas: spec.replicas,
		redis:    spec.redis,
	})
	if err != nil {
		res.Err = err
		return res
	}
	defer w.closeFakes()
	res.Idle = settleIdle(w, o.settle)
	text := func(int) string { return "help" }
	if spec.kind == "change" {
		text = changeText(customer(w))
	}
	n := int(spec.rate * o.ackDuration.Seconds())
	if o.quiet > 0 {
		res.QuietWait, res.Quiet = waitQuiet(ctx, o.quiet, o.quietWait, w.pids())
	}
	profiled := make(chan error, 1)
	if w.pprofAddr != "" {
		base := filepath.Join(o.pprofDir, name)
		res.Profile = base
		go func() { profiled <- profiles(ctx, w.pprofAddr, o.ackDuration, base) }()
	} else {
		profiled <- nil
	}
	m := newMeter(w.pids()...)
	cmds, send := sendOpenLoop(ctx, w.slack, n, spec.rate, text, nil)
	res.Send = send
	waitAcks(ctx, w.slack, cmds, 10*time.Second)
	res.CPU = m.stop()
	t := waitOutcomes(ctx, w.slack, cmds, 2*time.Minute)
	res.Acks = collectAcks(w.slack, cmds)
	res.Outcomes = t.counts(cmds)
	res.End, _ = readMemory(w.bot().pid())
	if err := <-profiled; err != nil {
		res.Err = err
		res.Profile = ""
	}
	if err := w.stop(30 * time.Second); err != nil {
		res.Err = errors.Join(res.Err, err)
	}
	res.LogLines = w.logLines()
	return res
}

// customer returns the sample MPC's customer member id.
func customer(w *world) string {
	for _, p := range w.plivo.Participants(plivotest.SampleMPCName) {
		if p.Role == plivotest.RoleCustomer {
			return p.MemberID
		}
	}
	return "101"
}

// e2eResult is the end-to-end latency over the fakes.
type e2eResult struct {
	Rate     float64
	Send     sendStats
	Acks     ackStats
	E2E      latencySummary
	Threaded int
	Outcomes outcomeCounts
	Err      error
}

// runE2EPhase sends changes below the Plivo limit and measures the time
// from the envelope's delivery to the thread reply with the results.
func runE2EPhase(ctx context.Context, o *options) e2eResult {
	res := e2eResult{Rate: o.e2eRate}
	w, err := startWorld(ctx, o, worldConfig{
		name:         "e2e",
		env:          plivoEnv(o),
		accountLimit: accountLimitFor(o),
	})
	if err != nil {
		res.Err = err
		return res
	}
	defer w.closeFakes()
	settleIdle(w, o.settle)
	n := int(o.e2eRate * o.e2eDuration.Seconds())
	cmds, send := sendOpenLoop(ctx, w.slack, n, o.e2eRate, changeText(customer(w)), nil)
	res.Send = send
	t := waitOutcomes(ctx, w.slack, cmds, 2*time.Minute)
	res.Acks = collectAcks(w.slack, cmds)
	res.Outcomes = t.counts(cmds)
	var lat []time.Duration
	for _, c := range cmds {
		os := t.Outcomes[c.EnvelopeID]
		at, ok := res.Acks.delivered[c.EnvelopeID]
		if len(os) == 0 || os[0].Kind != "thread" || !ok {
			continue
		}
		res.Threaded++
		lat = append(lat, os[0].At.Sub(at))
	}
	res.E2E = summarize(lat)
	if err := w.stop(30 * time.Second); err != nil {
		res.Err = err
	}
	return res
}

func plivoEnv(o *options) map[string]string {
	return map[string]string{
		"PLIVO_RATE":  strconv.FormatFloat(o.plivoRate, 'g', -1, 64),
		"PLIVO_BURST": strconv.Itoa(o.plivoBurst),
	}
}

// accountLimitFor keeps Plivo's real account budget (300 per 5 s) in the
// simulator unless the configured limiter could exceed it, in which case
// the budget is turned off (the point is then the bot's own limiter).
func accountLimitFor(o *options) int {
	if float64(o.plivoBurst)+o.plivoRate*plivotest.DefaultAccountWindow.Seconds() > plivotest.DefaultAccountLimit {
		return 0
	}
	return plivotest.DefaultAccountLimit
}

// queueResult is the bounded queue filled to the brim, and beyond.
type queueResult struct {
	QueueSize, Extra int
	Send             sendStats
	Unacked          int
	Overloaded       int
	Gauge            float64
	GaugeOK          bool
	Idle, Full       memory
	Outcomes         outcomeCounts
	ShutdownTook     time.Duration
	Restarting       int
	Err              error
}

// runQueuePhase makes Plivo hang so that accepted commands pile up in the
// bot's bounded queue, sends queue size + extra commands, reads the bot's
// RSS with the queue full, checks the extra ones were refused visibly,
// then stops the bot (SIGTERM) and checks every command got one outcome.
func runQueuePhase(ctx context.Context, o *options) queueResult {
	res := queueResult{QueueSize: o.queueSize, Extra: o.queueExtra}
	w, err := startWorld(ctx, o, worldConfig{name: "queue", env: map[string]string{
		"PLIVO_RATE": "100000", "PLIVO_BURST": "100000",
		"PLIVO_TIMEOUT": "1h", "MPC_COMMAND_TIMEOUT": "1h",
		"MPC_QUEUE_SIZE": strconv.Itoa(o.queueSize), "SHUTDOWN_GRACE": "1s",
	}})
	if err != nil {
		res.Err = err
		return res
	}
	defer w.closeFakes()
	res.Idle = settleIdle(w, o.settle)
	w.plivo.SetDelay(time.Hour)
	n := o.queueSize + o.queueExtra
	cmds, send := sendOpenLoop(ctx, w.slack, n, o.queueSendRate, changeText(customer(w)), nil)
	res.Send = send
	waitAcks(ctx, w.slack, cmds, 30*time.Second)
	res.Unacked = collectAcks(w.slack, cmds).Missing
	res.Overloaded = tallyOutcomes(cmds, w.slack.Messages()).countText(cmds, overloadedWord)
	res.Gauge, res.GaugeOK = w.bot().metric(ctx, "mpcbot_command_queue")
	res.Full = settleIdle(w, o.settle)
	start := time.Now()
	if err := w.stop(2 * time.Minute); err != nil {
		res.Err = err
	}
	res.ShutdownTook = time.Since(start)
	t := waitOutcomes(ctx, w.slack, cmds, time.Minute)
	res.Outcomes = t.counts(cmds)
	res.Restarting = t.countText(cmds, "restarting")
	return res
}
