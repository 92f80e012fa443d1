package main

import (
	"context"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/mpcbot/mpcbot/bot/slacktest"
	"github.com/mpcbot/mpcbot/commands"
)

// redeliverer makes the fake Slack deliver some envelopes a second time,
// as Slack does when it thinks an ack was lost: once the first ack is in,
// the same envelope goes to another connection — with several replicas,
// often another process. The bot must ack it and not answer it again.
type redeliverer struct {
	s     *slacktest.Server
	every int
	ctx   context.Context
	wg    sync.WaitGroup
	// done counts redeliveries sent; failed those that found no first
	// ack or no connection.
	done, failed atomic.Int64
}

func newRedeliverer(ctx context.Context, s *slacktest.Server, every int) *redeliverer {
	return &redeliverer{s: s, every: every, ctx: ctx}
}

// offer redelivers the i-th command's envelope if i is one of every
// `every` (none when every is 0), in the background.
func (r *redeliverer) offer(i int, envelopeID string) {
	if r.every <= 0 || i%r.every != r.every-1 {
		return
	}
	r.wg.Go(func() {
		ctx, cancel := context.WithTimeout(r.ctx, 10*time.Second)
		defer cancel()
		if _, err := r.s.WaitAck(ctx, envelopeID); err != nil {
			r.failed.Add(1)
			return
		}
		if err := r.s.Redeliver(envelopeID); err != nil {
			r.failed.Add(1)
			return
		}
		r.done.Add(1)
	})
}

// wait waits for the redeliveries in flight and returns how many were
// sent and how many could not be.
func (r *redeliverer) wait() (sent, failed int) {
	r.wg.Wait()
	return int(r.done.Load()), int(r.failed.Load())
}

// tapResult is what a user saw when tapping the same button twice.
type tapResult struct {
	// Pairs is how many buttons were tapped twice.
	Pairs int
	// Clean pairs ran once (one result in the thread) and told the other
	// tap "tapped twice".
	Clean int
	// BothRan pairs changed Plivo twice: a defect.
	BothRan int
	// Incomplete pairs had a tap with no outcome, or an unexpected one.
	Incomplete int
	// CrossReplica pairs had their two taps served by two different
	// replicas (from the audit logs): the double-tap check had to be
	// fleet-wide.
	CrossReplica int
	// Skipped is set when no result message with a button was found.
	Skipped string

	pairs []tapPair
}

type tapPair struct {
	channel, thread string
	first, second   string // envelope ids
	sent            time.Time
}

// tapRunPrefix starts the action id of a change button under a result
// (bot.actionRun).
const tapRunPrefix = "mpc.run"

// sendDoubleTaps taps a change button under up to n results twice, back
// to back, as the user who typed the command: the second tap may reach
// another replica than the first.
func sendDoubleTaps(ctx context.Context, s *slacktest.Server, cmds []sentCommand, n int) tapResult {
	var res tapResult
	if n <= 0 {
		return res
	}
	t := tallyOutcomes(cmds, s.Messages())
	owner := map[string]string{} // envelope id → user id
	for _, c := range cmds {
		owner[c.EnvelopeID] = c.UserID
	}
	type target struct {
		user, channel, ts, thread, action string
	}
	var targets []target
	used := map[string]bool{}
	for _, m := range s.Messages() {
		if len(targets) == n {
			break
		}
		if m.Method != "chat.postMessage" || m.ThreadTS == "" || used[m.ThreadTS] {
			continue
		}
		user := owner[t.anchorOwner[m.ThreadTS]]
		if user == "" {
			continue
		}
		for _, b := range m.Buttons() {
			if strings.HasPrefix(b.ActionID, tapRunPrefix+":") || b.ActionID == tapRunPrefix {
				targets = append(targets, target{user: user, channel: m.Channel, ts: m.TS, thread: m.ThreadTS, action: b.ActionID})
				used[m.ThreadTS] = true
				break
			}
		}
	}
	if len(targets) == 0 {
		res.Skipped = "no result with a change button to tap"
		return res
	}
	tick := time.NewTicker(50 * time.Millisecond) // 20 pairs per second
	defer tick.Stop()
	for _, tg := range targets {
		if ctx.Err() != nil {
			break
		}
		p := tapPair{channel: tg.channel, thread: tg.thread, sent: time.Now()}
		var err1, err2 error
		p.first, err1 = s.ClickButton(tg.user, tg.channel, tg.ts, tg.action)
		p.second, err2 = s.ClickButton(tg.user, tg.channel, tg.ts, tg.action)
		if err1 != nil || err2 != nil {
			res.Incomplete++
			continue
		}
		res.pairs = append(res.pairs, p)
		res.Pairs++
		<-tick.C
	}
	return res
}

// tapSeen is what a pair's user saw: results in the thread after the
// taps, answers through the taps' own envelopes (response_url, ack,
// dispatch_failed), and among those the "tapped twice" notices.
type tapSeen struct{ ran, notices, dupNotices int }

// seenTaps sorts msgs into what each pair's user saw.
func seenTaps(pairs []tapPair, msgs []slacktest.Message) []tapSeen {
	out := make([]tapSeen, len(pairs))
	for i, p := range pairs {
		for _, m := range msgs {
			switch {
			case m.Method == "chat.postMessage" && m.ThreadTS == p.thread && m.Time.After(p.sent):
				out[i].ran++
			case (m.Method == "response_url" || m.Method == "dispatch_failed" || m.Method == "ack") &&
				(m.EnvelopeID == p.first || m.EnvelopeID == p.second):
				out[i].notices++
				if strings.Contains(m.Text, commands.DuplicateText) {
					out[i].dupNotices++
				}
			}
		}
	}
	return out
}

// complete reports whether both taps of the pair were answered.
func (x tapSeen) complete() bool { return x.ran+x.notices >= 2 }

// judge waits (up to limit) until both taps of every pair have an
// outcome, then sorts the pairs: clean (one result in the thread, one
// "tapped twice"), both ran, or incomplete.
func (res *tapResult) judge(ctx context.Context, s *slacktest.Server, limit time.Duration) {
	if len(res.pairs) == 0 {
		return
	}
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		done := true
		for _, x := range seenTaps(res.pairs, s.Messages()) {
			done = done && x.complete()
		}
		if done {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	time.Sleep(time.Second) // let a late second answer show
	res.tally(seenTaps(res.pairs, s.Messages()))
}

// tally counts the pairs by what their users saw.
func (res *tapResult) tally(seen []tapSeen) {
	for _, x := range seen {
		switch {
		case x.ran >= 2:
			res.BothRan++
		case x.ran == 1 && x.notices == 1 && x.dupNotices == 1:
			res.Clean++
		default:
			res.Incomplete++
		}
	}
}

// countCrossReplica counts the pairs whose two taps were served by two
// different replicas, from the audit logs (see handledBy).
func (res *tapResult) countCrossReplica(handled map[string][]int) {
	res.CrossReplica = 0
	for _, p := range res.pairs {
		a, b := handled[p.first], handled[p.second]
		if len(a) == 1 && len(b) == 1 && a[0] != b[0] {
			res.CrossReplica++
		}
	}
}
