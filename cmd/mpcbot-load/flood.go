package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"
)

// windowRow compares the busiest window of length T with the limiter's bound.
type windowRow struct {
	T     time.Duration
	Max   int
	Bound int
}

// floodSpec says which flood to run: one process with its own limiter, a
// fleet sharing one budget on Redis, or that fleet losing Redis midway.
type floodSpec struct {
	name     string
	replicas int // bot processes (0 = 1)
	redis    bool
	duration time.Duration
	// redeliver makes every n-th envelope arrive twice (0 = never).
	redeliver int
	// taps is how many buttons are tapped twice once the flood is over.
	taps int
	// outage, if set, kills Redis during the flood and restarts it.
	outage *outageSpec
}

// outageSpec is when Redis dies (after the sending starts) and for how long.
type outageSpec struct {
	after, down time.Duration
}

// floodResult is the Plivo request rate during a flood of changes.
type floodResult struct {
	Name      string
	Replicas  int
	Redis     bool
	CmdRate   float64
	Duration  time.Duration
	Send      sendStats
	Requests  int
	Status429 int
	Applied   int
	Span      time.Duration
	Windows   []windowRow
	Sustained float64
	// First is the first request's arrival.
	First time.Time
	// From and Until bound the part of the flood Sustained is measured over.
	From, Until time.Time
	Outcomes    outcomeCounts
	Busy        int
	// DispatchFailed and AckTimeouts count commands whose user saw Slack's
	// error (no connection open; no ack within 3 s).
	DispatchFailed, AckTimeouts int
	AccountCap                  int
	Redelivered                 int
	RedeliverFailed             int
	Taps                        tapResult
	// Spread says which replicas served the commands (from their audit logs).
	Spread spread
	// Anomalies are the commands a user would complain about.
	Anomalies anomalies
	Outage    *outageResult
	Err       error
}

// outageResult is what the fleet did while Redis was gone.
type outageResult struct {
	Spec     outageSpec
	Down, Up time.Time // when Redis was killed, and restarted
	// SawDegraded says, per replica, whether its /readyz reported Redis
	// degraded while Redis was down.
	SawDegraded []bool
	// Recovered is, per replica, how long after the restart its /readyz
	// said shared state again (negative: never within the phase).
	Recovered []time.Duration
	// Before, During and After are the sustained Plivo rates with Redis,
	// without it (from 1 s after the kill) and with it again (from 1 s
	// after the restart until the commands stopped).
	Before, During, After float64
	Err                   error
}

// runFloodPhase sends changes far faster than the Plivo limit and checks,
// from the simulator's request log — which sees every replica's requests —
// that the limiter kept every window within burst + rate × T and ran at its
// configured rate. In a fleet, some envelopes are redelivered (to another
// connection, often another replica) and buttons are tapped twice; with an
// outage, Redis is killed and restarted midway.
func runFloodPhase(ctx context.Context, o *options, spec floodSpec) floodResult {
	res := floodResult{Name: spec.name, Replicas: max(spec.replicas, 1), Redis: spec.redis, CmdRate: o.floodRate,
		Duration: spec.duration, AccountCap: accountLimitFor(o)}
	w, err := startWorld(ctx, o, worldConfig{name: spec.name, env: plivoEnv(o), accountLimit: res.AccountCap,
		replicas: spec.replicas, redis: spec.redis})
	if err != nil {
		res.Err = err
		return res
	}
	defer w.closeFakes()
	settleIdle(w, o.settle)
	n := int(o.floodRate * spec.duration.Seconds())
	redeliver := newRedeliverer(ctx, w.slack, spec.redeliver)

	var outage *outageRun
	if spec.outage != nil && w.redis != nil {
		outage = startOutage(ctx, w, *spec.outage)
	}
	cmds, send := sendOpenLoop(ctx, w.slack, n, o.floodRate, changeText(customer(w)), func(i int, c sentCommand) {
		redeliver.offer(i, c.EnvelopeID)
	})
	res.Send = send
	sendEnd := time.Now()
	if outage != nil {
		res.Outage = outage.wait()
	}
	res.Redelivered, res.RedeliverFailed = redeliver.wait()
	t := waitOutcomes(ctx, w.slack, cmds, 3*time.Minute)
	res.Outcomes = t.counts(cmds)
	res.Busy = t.countText(cmds, "busy")
	res.DispatchFailed = t.countKind(cmds, "dispatch_failed")
	res.AckTimeouts = t.countKind(cmds, "ack_timeout")
	// The Plivo log before the taps: they are not part of the flood.
	reqs := w.plivo.Requests()
	res.Taps = sendDoubleTaps(ctx, w.slack, cmds, spec.taps)
	res.Taps.judge(ctx, w.slack, 30*time.Second)

	times := make([]time.Time, 0, len(reqs))
	for _, r := range reqs {
		times = append(times, r.Time)
		if r.Status == 429 {
			res.Status429++
		}
		if r.Applied {
			res.Applied++
		}
	}
	sortTimes(times)
	res.Requests = len(times)
	if len(times) > 0 {
		res.Span = times[len(times)-1].Sub(times[0])
	}
	for _, T := range o.windows {
		res.Windows = append(res.Windows, windowRow{T: T, Max: maxInWindow(times, T), Bound: windowBound(o.plivoBurst, o.plivoRate, T)})
	}
	// Skip the initial burst and the refill that happens while it is
	// being spent; stop when the commands stop arriving (the limiter is
	// certainly saturated until then).
	if len(times) > 0 {
		res.First = times[0]
		res.From = times[0].Add(max(time.Second, 2*time.Duration(float64(o.plivoBurst)/o.plivoRate*float64(time.Second))))
		res.Until = sendEnd
		res.Sustained = sustainedRate(times, res.From, res.Until)
	}
	if out := res.Outage; out != nil && !out.Down.IsZero() {
		out.Before = sustainedRate(times, res.From, out.Down)
		if !out.Up.IsZero() {
			out.During = sustainedRate(times, out.Down.Add(time.Second), out.Up)
			out.After = sustainedRate(times, out.Up.Add(time.Second), sendEnd)
		}
	}
	res.Spread, res.Anomalies, res.Err = w.stopAndJudge(cmds, t, &res.Taps)
	return res
}

// stopAndJudge stops the fleet and, from the replicas' complete audit
// logs, says which replica served each command, counts the double taps
// served by two replicas and describes the commands without exactly one
// outcome.
func (w *world) stopAndJudge(cmds []sentCommand, t tally, taps *tapResult) (spread, anomalies, error) {
	err := w.stop(30 * time.Second)
	handled, herr := handledBy(w.logPaths())
	taps.countCrossReplica(handled)
	return spreadOf(handled, envelopeIDs(cmds), len(w.bots)), findAnomalies(w.slack, cmds, t, handled, maxExamples), errors.Join(err, herr)
}

// envelopeIDs lists the commands' envelope ids.
func envelopeIDs(cmds []sentCommand) []string {
	ids := make([]string, len(cmds))
	for i, c := range cmds {
		ids[i] = c.EnvelopeID
	}
	return ids
}

// outageRun kills Redis after spec.after, restarts it spec.down later, and
// meanwhile watches each replica's /readyz.
type outageRun struct {
	res  *outageResult
	done chan struct{}
}

func startOutage(ctx context.Context, w *world, spec outageSpec) *outageRun {
	n := len(w.bots)
	r := &outageRun{done: make(chan struct{}), res: &outageResult{Spec: spec,
		SawDegraded: make([]bool, n), Recovered: make([]time.Duration, n)}}
	for i := range r.res.Recovered {
		r.res.Recovered[i] = -1
	}
	go func() {
		defer close(r.done)
		res := r.res
		if !sleepCtx(ctx, spec.after) {
			return
		}
		if err := w.redis.Kill(); err != nil {
			res.Err = fmt.Errorf("killing Redis: %w", err)
			return
		}
		res.Down = time.Now()
		watch(ctx, w, time.Now().Add(spec.down), func(i int, degraded bool) bool {
			if degraded {
				res.SawDegraded[i] = true
			}
			return false
		})
		if err := w.redis.Restart(); err != nil {
			res.Err = fmt.Errorf("restarting Redis: %w", err)
			return
		}
		res.Up = time.Now()
		watch(ctx, w, time.Now().Add(30*time.Second), func(i int, degraded bool) bool {
			if !degraded && res.Recovered[i] < 0 {
				res.Recovered[i] = time.Since(res.Up)
			}
			for _, d := range res.Recovered {
				if d < 0 {
					return false
				}
			}
			return true
		})
	}()
	return r
}

func (r *outageRun) wait() *outageResult {
	<-r.done
	return r.res
}

// watch polls every replica's /readyz every 100 ms until until, ctx ends
// or seen returns true, telling seen whether the replica says Redis is
// degraded.
func watch(ctx context.Context, w *world, until time.Time, seen func(i int, degraded bool) bool) {
	for time.Now().Before(until) {
		var mu sync.Mutex
		stop := false
		var wg sync.WaitGroup
		for i, b := range w.bots {
			wg.Go(func() {
				rctx, cancel := context.WithTimeout(ctx, time.Second)
				defer cancel()
				_, body, err := b.get(rctx, "/readyz")
				if err != nil {
					return
				}
				mu.Lock()
				defer mu.Unlock()
				if seen(i, strings.Contains(body, "redis: degraded")) {
					stop = true
				}
			})
		}
		wg.Wait()
		if stop || !sleepCtx(ctx, 100*time.Millisecond) {
			return
		}
	}
}

// sleepCtx sleeps for d unless ctx ends first (then it returns false).
func sleepCtx(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
