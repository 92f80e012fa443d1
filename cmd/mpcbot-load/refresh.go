package main

import (
	"context"
	"math/rand/v2"
	"sync"
	"time"
)

// refreshResult is a refresh storm: connections refreshed one after
// another while commands flow.
type refreshResult struct {
	Replicas int
	Rate     float64
	Duration time.Duration
	Every    time.Duration
	Aligned  bool
	Send     sendStats
	// Refreshes counts refreshes done; Warned those announced with a
	// "warning" disconnect first (the others are refresh_requested at
	// once); RefreshErrors those that found no open connection.
	Refreshes, Warned, RefreshErrors int
	// MinOpen is the fewest Socket Mode connections open across the fleet
	// at any sample (every 10 ms), and Connections how many there should be.
	MinOpen, Connections int
	// ConnectionsOpened counts websocket upgrades during the storm.
	ConnectionsOpened int
	// DispatchFailed and AckTimeouts count commands whose user saw Slack's
	// error (no connection open; no ack within 3 s).
	DispatchFailed, AckTimeouts int
	Acks                        ackStats
	Outcomes                    outcomeCounts
	Redelivered                 int
	RedeliverFailed             int
	Taps                        tapResult
	Spread                      spread
	Anomalies                   anomalies
	CPU                         usage
	Err                         error
}

// runRefreshPhase runs the fleet (Redis, replicas) with the Plivo limiter
// out of the way and sends changes at o.refreshRate for o.refreshDuration
// while, every o.refreshEvery, one open connection somewhere in the fleet
// is refreshed — alternately with Slack's warning first and at once. No
// user may see dispatch_failed, and every command must get exactly one
// outcome. Some envelopes are redelivered and buttons tapped twice, as in
// the fleet flood.
func runRefreshPhase(ctx context.Context, o *options) refreshResult {
	res := refreshResult{Replicas: o.replicas, Rate: o.refreshRate, Duration: o.refreshDuration, Every: o.refreshEvery, Aligned: o.refreshAligned}
	wc := worldConfig{name: "refresh", env: map[string]string{"PLIVO_RATE": "100000", "PLIVO_BURST": "100000"},
		replicas: o.replicas, redis: true}
	w, err := startWorld(ctx, o, wc)
	if err != nil {
		res.Err = err
		return res
	}
	defer w.closeFakes()
	settleIdle(w, o.settle)
	res.Connections = len(w.bots) * connectionsPerBot(o, wc)
	opened0 := w.slack.Stats().ConnectionsOpened

	stormCtx, stopStorm := context.WithCancel(ctx)
	var storm sync.WaitGroup
	start := time.Now()
	storm.Go(func() { res.refresh(stormCtx, w, start, o.refreshEvery, o.refreshAligned) })
	storm.Go(func() { res.MinOpen = minOpen(stormCtx, w, res.Connections) })

	redeliver := newRedeliverer(ctx, w.slack, o.redeliverEvery)
	n := int(o.refreshRate * o.refreshDuration.Seconds())
	m := newMeter(w.pids()...)
	cmds, send := sendOpenLoopFrom(ctx, start, w.slack, n, o.refreshRate, changeText(customer(w)), func(i int, c sentCommand) {
		redeliver.offer(i, c.EnvelopeID)
	})
	res.Send = send
	stopStorm()
	storm.Wait()
	res.ConnectionsOpened = w.slack.Stats().ConnectionsOpened - opened0
	waitAcks(ctx, w.slack, cmds, 10*time.Second)
	res.CPU = m.stop()
	res.Redelivered, res.RedeliverFailed = redeliver.wait()
	t := waitOutcomes(ctx, w.slack, cmds, 2*time.Minute)
	res.Acks = collectAcks(w.slack, cmds)
	res.Outcomes = t.counts(cmds)
	res.DispatchFailed = t.countKind(cmds, "dispatch_failed")
	res.AckTimeouts = t.countKind(cmds, "ack_timeout")
	res.Taps = sendDoubleTaps(ctx, w.slack, cmds, o.doubleTaps)
	res.Taps.judge(ctx, w.slack, 30*time.Second)
	res.Spread, res.Anomalies, res.Err = w.stopAndJudge(cmds, t, &res.Taps)
	return res
}

// refresh refreshes a random open connection once in every period of
// length every, at a random moment of the period (so that refreshes do not
// line up with the sender's schedule), until ctx ends, alternating an
// immediate refresh and one announced with a warning.
//
// With aligned, the refreshes fall on whole periods from start instead —
// with a send rate that divides evenly, at the very moment a command is
// sent, which exposes the race between a delivery and a refresh.
func (res *refreshResult) refresh(ctx context.Context, w *world, start time.Time, every time.Duration, aligned bool) {
	for k := 1; ; k++ {
		at := start.Add(time.Duration(k) * every)
		if !aligned {
			at = at.Add(-rand.N(every))
		}
		if !sleepCtx(ctx, time.Until(at)) {
			return
		}
		warn := res.Refreshes%2 == 1
		if _, err := w.slack.RefreshRandomConnection(warn); err != nil {
			res.RefreshErrors++
			continue
		}
		res.Refreshes++
		if warn {
			res.Warned++
		}
	}
}

// minOpen samples the number of open connections every 10 ms until ctx
// ends and returns the fewest seen.
func minOpen(ctx context.Context, w *world, start int) int {
	least := start
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return least
		case <-tick.C:
		}
		least = min(least, len(w.slack.OpenConnections()))
	}
}
