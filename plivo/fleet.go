package plivo

import (
	"context"
	"time"
)

// Limiter gates every HTTP attempt the client makes (retries and read-backs
// included). With one process it is a local token bucket (NewLocalLimiter);
// with several replicas it must be shared by all of them, so that the fleet
// as a whole never sends Plivo more than burst + rate·T requests in any
// window T. Implementations are safe for concurrent use and never block on
// anything but their own bookkeeping (a shared implementation bounds every
// call to its store and falls back to a local bucket when the store is
// unreachable).
type Limiter interface {
	// Reserve books one request. It returns how long the caller must wait
	// before sending it (0: send now). When that wait would not end before
	// maxWait, nothing is booked and ok is false; wait then says how long it
	// would have been (for "busy, try again in N s"). now is the caller's
	// clock; a shared implementation may use its store's clock instead.
	Reserve(ctx context.Context, now time.Time, maxWait time.Duration) (wait time.Duration, ok bool)
	// Pause makes every later reservation wait until at least until: Plivo
	// answered 429 with Retry-After, and the whole budget (the fleet's, for
	// a shared implementation) backs off, not one request. After the pause
	// the bucket resumes at its rate without a fresh burst.
	Pause(ctx context.Context, now, until time.Time)
	// PausedFor returns how long a pause asked by Pause (by any user of a
	// shared implementation) still runs after now; 0 when none does. A
	// request whose slot was booked before a pause began asks it before
	// sending, and books a new slot after the pause instead of sending
	// into it.
	PausedFor(ctx context.Context, now time.Time) time.Duration
}

// InFlightID identifies one update recorded in an InFlight log.
type InFlightID string

// InFlight records the Update Participant calls being sent, so that reading
// the state back after a lost answer can tell "not applied" from "changed
// again since by another update" (see UpdateParticipant). With several
// replicas it must be shared by all of them: the update that superseded this
// one may have been sent by another process. NewLocalInFlight is the
// in-process implementation.
type InFlight interface {
	// Begin records that an update of fields of member (a member id or
	// AllMembers) in mpc is being sent now, and returns its id.
	Begin(ctx context.Context, mpc MPC, member Member, fields []Field) InFlightID
	// Resent records that the update id is being sent again now.
	Resent(ctx context.Context, id InFlightID)
	// End records that the call for id returned (whatever its result).
	End(ctx context.Context, id InFlightID)
	// ChangedSince reports whether another update of field f of member in
	// id's MPC — sent to member itself or to AllMembers — may have been
	// applied by Plivo after id was last sent: one that was still in flight
	// then, or was sent later. Such an update is the latest word on that
	// field, so a read back must not compare it.
	ChangedSince(ctx context.Context, id InFlightID, member Member, f Field) bool
}
