package main

import "context"

// runFleetPhases runs the phases with several replicas sharing one Redis,
// in order: fleet-ack, fleet-flood, refresh, outage.
func runFleetPhases(ctx context.Context, o *options, r *report, progress func(format string, a ...any)) {
	if o.phases["fleet-ack"] {
		// One replica and the fleet take turns, so that both see the same
		// machine (the load of other processes drifts).
		for run := 1; run <= o.ackRepeat && ctx.Err() == nil; run++ {
			for _, n := range fleetSizes(o.replicas) {
				progress("fleet ack latency: %d replica(s) with Redis, changes at %g/s for %s (run %d of %d) …", n, o.fleetAckRate, o.ackDuration, run, o.ackRepeat)
				r.fleetAcks = append(r.fleetAcks, runAckPhase(ctx, o, ackSpec{kind: "change", rate: o.fleetAckRate, run: run, replicas: n, redis: true}))
			}
		}
	}
	if o.phases["fleet-flood"] && ctx.Err() == nil {
		progress("fleet Plivo flood: %d replicas, changes at %g/s for %s against one budget of %g/s burst %d …", o.replicas, o.floodRate, o.floodDuration, o.plivoRate, o.plivoBurst)
		f := runFloodPhase(ctx, o, floodSpec{name: "fleet-flood", replicas: o.replicas, redis: true, duration: o.floodDuration,
			redeliver: o.redeliverEvery, taps: o.doubleTaps})
		r.fleetFlood = &f
	}
	if o.phases["refresh"] && ctx.Err() == nil {
		progress("refresh storm: %d replicas, one connection refreshed every %s for %s while changes flow at %g/s …", o.replicas, o.refreshEvery, o.refreshDuration, o.refreshRate)
		f := runRefreshPhase(ctx, o)
		r.refresh = &f
	}
	if o.phases["outage"] && ctx.Err() == nil {
		progress("Redis outage: %d replicas, changes at %g/s for %s, Redis killed after %s for %s …", o.replicas, o.floodRate, o.outageFlood, o.outageAfter, o.outageDown)
		f := runFloodPhase(ctx, o, floodSpec{name: "outage", replicas: o.replicas, redis: true, duration: o.outageFlood,
			outage: &outageSpec{after: o.outageAfter, down: o.outageDown}})
		r.outage = &f
	}
}

// fleetSizes are the fleet sizes fleet-ack compares: one replica, then n.
func fleetSizes(n int) []int {
	if n <= 1 {
		return []int{1}
	}
	return []int{1, n}
}
