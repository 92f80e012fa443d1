// Package fleet owns the state that several replicas of mpcbot share on
// Redis: the Plivo rate budget (Limiter), the updates in flight (InFlight),
// claims of envelopes and taps (Claims), short caches (Cache), the timers of
// timed actions (Timers), and who is alive (presence).
//
// Redis is an aid, never a dependency: every call to it is bounded by
// Config.CallTimeout, and when it fails or is unreachable each piece falls
// back to per-process state (a local bucket at the fleet's rate divided by
// the replicas last seen, a local log, local claims, no cache, local timers).
// One Status says whether the fleet is healthy or degraded since when and
// why; it is logged once per transition, and a background probe brings the
// shared state back as soon as Redis answers again.
package fleet
