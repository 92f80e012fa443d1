package main

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// printer writes one line of the report.
type printer func(format string, a ...any)

// failed reports a flood that could not run or broke a hard property: a
// window over the bound, a command without exactly one outcome, a command
// served by two replicas, a double tap that ran twice or went unanswered.
func (f *floodResult) failed() bool {
	if f.Err != nil || f.Outcomes.One != f.Outcomes.Commands || f.Spread.Twice > 0 || f.Anomalies.Count > 0 ||
		f.Taps.BothRan > 0 || f.Taps.Incomplete > 0 {
		return true
	}
	if o := f.Outage; o != nil && o.Err != nil {
		return true
	}
	for _, w := range f.Windows {
		if w.Max > w.Bound {
			return true
		}
	}
	return false
}

// failed reports a refresh storm that could not run or in which a user saw
// dispatch_failed, or a command did not get exactly one outcome.
func (f *refreshResult) failed() bool {
	return f.Err != nil || f.DispatchFailed > 0 || f.Outcomes.One != f.Outcomes.Commands || f.Acks.Missing > 0 || f.Anomalies.Count > 0 ||
		f.Spread.Twice > 0 || f.Taps.BothRan > 0 || f.Taps.Incomplete > 0
}

// floodSection renders one flood: the request count, the busiest windows
// against the bound, the sustained rate, and for a fleet what each replica
// served and how redeliveries and double taps were answered.
func floodSection(p printer, o *options, f *floodResult) {
	if f.Err != nil && f.Send.Sent == 0 {
		p("failed: %s", oneLine(f.Err))
		p("")
		return
	}
	acct := "off"
	if f.AccountCap > 0 {
		acct = fmt.Sprintf("%d per 5 s (Plivo's)", f.AccountCap)
	}
	who := "one bot process"
	if f.Redis {
		who = fmt.Sprintf("%d replicas sharing the budget on Redis", f.Replicas)
	}
	p("%d changes at %.0f/s for %s from %s against PLIVO_RATE=%g, PLIVO_BURST=%d (simulator account budget: %s). Plivo saw %d requests over %s (%d applied, %d answered 429); %d commands were answered \"busy\" (the limiter had no token before their deadline).",
		f.Send.Sent, f.Send.rate(), f.Duration, who, o.plivoRate, o.plivoBurst, acct, f.Requests, f.Span.Round(time.Millisecond), f.Applied, f.Status429, f.Busy)
	p("")
	p("| window T | most requests in any T | bound burst + rate × T | within |")
	p("|---:|---:|---:|---|")
	for _, w := range f.Windows {
		p("| %s | %d | %d | %s |", w.T, w.Max, w.Bound, yes(w.Max <= w.Bound))
	}
	p("")
	p("Sustained rate from %s after the first request until the commands stopped (%s later): **%.3f/s** vs configured %g/s (%s). One outcome each: %s.",
		f.From.Sub(f.First).Round(time.Millisecond), f.Until.Sub(f.From).Round(time.Millisecond), f.Sustained, o.plivoRate,
		rateVerdict(f.Sustained, o.plivoRate), outcomeCell(f.Outcomes))
	if out := f.Outage; out != nil {
		p("")
		outageLines(p, o, f, out)
	}
	if f.Redis {
		p("")
		fleetChecks(p, f.Spread, f.Redelivered, f.RedeliverFailed, f.Taps, f.DispatchFailed, f.AckTimeouts)
	}
	anomalyLines(p, f.Anomalies)
	if f.Err != nil {
		p("")
		p("- %s", oneLine(f.Err))
	}
	p("")
}

// rateVerdict compares a measured rate with the configured one.
func rateVerdict(got, want float64) string {
	dev := 0.0
	if want > 0 {
		dev = (got - want) / want
	}
	return fmt.Sprintf("%+.2f %%; target within ±%.0f %%: %s", dev*100, targetRateError*100, yes(got > 0 && abs(dev) <= targetRateError))
}

// outageLines says what the fleet did while Redis was down.
func outageLines(p printer, o *options, f *floodResult, out *outageResult) {
	if out.Err != nil {
		p("Redis outage: **%s**.", oneLine(out.Err))
		return
	}
	if out.Down.IsZero() {
		p("Redis outage: not started (the phase was interrupted).")
		return
	}
	saw := 0
	for _, s := range out.SawDegraded {
		if s {
			saw++
		}
	}
	var back []string
	for i, d := range out.Recovered {
		if d < 0 {
			back = append(back, fmt.Sprintf("bot %d never", i+1))
			continue
		}
		back = append(back, fmt.Sprintf("bot %d %s", i+1, d.Round(10*time.Millisecond)))
	}
	p("Redis was killed %s after the flood started and restarted (empty) %s later. Replicas whose /readyz said degraded while it was down: %d of %d; shared state again after the restart: %s.",
		out.Down.Sub(f.Until.Add(-f.Send.Elapsed)).Round(100*time.Millisecond), out.Up.Sub(out.Down).Round(100*time.Millisecond), saw, len(out.SawDegraded), strings.Join(back, ", "))
	p("")
	p("| Plivo rate | with Redis, before | Redis down (from 1 s after the kill) | with Redis again (from 1 s after the restart) |")
	p("|---|---:|---:|---:|")
	p("| sustained, fleet-wide | %.3f/s | %.3f/s | %.3f/s |", out.Before, out.During, out.After)
	p("")
	p("While Redis is down each replica runs a local bucket of PLIVO_RATE ÷ replicas (burst ÷ replicas, at least 1), so the fleet's rate stays at or under %g/s; the windows above cover the whole flood, switches included.", o.plivoRate)
}

// fleetChecks says which replicas served the commands and how redeliveries
// and double taps were answered.
func fleetChecks(p printer, s spread, redelivered, redeliverFailed int, taps tapResult, dispatchFailed, ackTimeouts int) {
	per := make([]string, len(s.PerReplica))
	for i, n := range s.PerReplica {
		per[i] = fmt.Sprintf("bot %d: %d", i+1, n)
	}
	p("| fleet check | result |")
	p("|---|---|")
	if s.Unserved > 0 {
		per = append(per, fmt.Sprintf("by none: %d", s.Unserved))
	}
	p("| commands served per replica (audit records) | %s |", strings.Join(per, ", "))
	p("| commands served by two replicas | %d %s |", s.Twice, tick(s.Twice == 0))
	p("| envelopes delivered again once acked (to another connection) | %d (%d could not be) |", redelivered, redeliverFailed)
	p("| users who saw dispatch_failed / an ack later than 3 s | %d / %d |", dispatchFailed, ackTimeouts)
	switch {
	case taps.Skipped != "":
		p("| double taps | not run: %s |", taps.Skipped)
	case taps.Pairs > 0:
		p("| buttons tapped twice: ran once and said \"tapped twice\" / ran twice / incomplete | %d / %d %s / %d %s (of %d; %d pairs served by two different replicas) |",
			taps.Clean, taps.BothRan, tick(taps.BothRan == 0), taps.Incomplete, tick(taps.Incomplete == 0), taps.Pairs, taps.CrossReplica)
	}
}

// fleetMarkdown renders the fleet phases.
func (r *report) fleetMarkdown(p printer) {
	o := r.opts
	if len(r.fleetAcks) > 0 {
		r.fleetAckSection(p)
	}
	if f := r.fleetFlood; f != nil {
		p("## Fleet: Plivo request rate across %d replicas during a flood (one budget on Redis)", f.Replicas)
		p("")
		floodSection(p, o, f)
	}
	if f := r.refresh; f != nil {
		refreshSection(p, f)
	}
	if f := r.outage; f != nil {
		p("## Fleet: Redis killed during a flood (%d replicas)", f.Replicas)
		p("")
		floodSection(p, o, f)
	}
}

// fleetAckSection compares the ack latency of one replica and of the
// fleet, measured in turns in the same run.
func (r *report) fleetAckSection(p printer) {
	p("## Fleet: ack latency, one replica vs %d (both with Redis, same run, taking turns)", r.opts.replicas)
	p("")
	p("| replicas | rate | run | sent (achieved rate, max slip) | p50 | p90 | p99 | max | late / missing | one outcome each | CPU used (cores; bots summed) |")
	p("|---:|---:|---:|---|---:|---:|---:|---:|---|---|---|")
	for _, a := range r.fleetAcks {
		if a.Err != nil && a.Send.Sent == 0 {
			p("| %d | %g/s | %d | failed: %s | | | | | | | |", a.Replicas, a.Rate, a.Run, oneLine(a.Err))
			continue
		}
		p("| %d | %g/s | %d | %d (%.0f/s, %s) | %s | %s | %s | %s | %d / %d | %s | %s |",
			a.Replicas, a.Rate, a.Run, a.Send.Sent, a.Send.rate(), ms(a.Send.MaxBehind),
			ms(a.Acks.Latency.P50), ms(a.Acks.Latency.P90), ms(a.Acks.Latency.P99), ms(a.Acks.Latency.Max),
			a.Acks.Late, a.Acks.Missing, outcomeCell(a.Outcomes), cpuCell(a))
	}
	p("")
	one, fleet := p99sOf(r.fleetAcks, 1), p99sOf(r.fleetAcks, r.opts.replicas)
	if len(one) > 0 && len(fleet) > 0 && r.opts.replicas > 1 {
		m1, mN := summarize(one).P50, summarize(fleet).P50
		p("Median p99: one replica %s (range %s–%s), %d replicas %s (range %s–%s). Target: the fleet's no worse than one replica's: %s.",
			ms(m1), ms(slices.Min(one)), ms(slices.Max(one)), r.opts.replicas, ms(mN), ms(slices.Min(fleet)), ms(slices.Max(fleet)), yes(mN <= m1))
		p("")
	}
	for _, a := range r.fleetAcks {
		if a.Err != nil {
			p("- %d replica(s), run %d: %s", a.Replicas, a.Run, oneLine(a.Err))
		}
	}
}

// p99sOf returns the ack p99 of the fleet-ack runs with n replicas.
func p99sOf(rows []ackResult, n int) []time.Duration {
	var out []time.Duration
	for _, a := range rows {
		if a.Replicas == n && a.Err == nil && a.Acks.Latency.N > 0 {
			out = append(out, a.Acks.Latency.P99)
		}
	}
	return out
}

// refreshSection renders the refresh storm.
func refreshSection(p printer, f *refreshResult) {
	p("## Fleet: refresh storm (%d replicas, one connection refreshed every %s)", f.Replicas, f.Every)
	p("")
	if f.Err != nil && f.Send.Sent == 0 {
		p("failed: %s", oneLine(f.Err))
		p("")
		return
	}
	when := "at a random moment of each period"
	if f.Aligned {
		when = "aligned with the sender's schedule (-refresh-aligned: each refresh at the moment a command is sent)"
	}
	p("%d changes at %.0f/s for %s (Plivo limiter out of the way). %d refreshes %s (%d announced with a warning first, %d refresh_requested at once; %d found no connection); %d new connections opened. Fewest connections open at any moment (sampled every 10 ms): %d of %d.",
		f.Send.Sent, f.Send.rate(), f.Duration, f.Refreshes, when, f.Warned, f.Refreshes-f.Warned, f.RefreshErrors, f.ConnectionsOpened, f.MinOpen, f.Connections)
	p("")
	p("| dispatch_failed | acks later than 3 s / missing | ack p50 / p99 / max | one outcome each | CPU used (cores; bots summed) |")
	p("|---:|---|---|---|---|")
	p("| %d %s | %d / %d | %s / %s / %s | %s | %s |", f.DispatchFailed, tick(f.DispatchFailed == 0), f.Acks.Late, f.Acks.Missing,
		ms(f.Acks.Latency.P50), ms(f.Acks.Latency.P99), ms(f.Acks.Latency.Max), outcomeCell(f.Outcomes), f.CPU)
	p("")
	fleetChecks(p, f.Spread, f.Redelivered, f.RedeliverFailed, f.Taps, f.DispatchFailed, f.AckTimeouts)
	anomalyLines(p, f.Anomalies)
	if f.Err != nil {
		p("")
		p("- %s", oneLine(f.Err))
	}
	p("")
}
