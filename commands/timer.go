package commands

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/mpcbot/mpcbot/plivo"
)

// Pair is one field of one member (or of AllMembers) that a timer will put
// back.
type Pair struct {
	Member plivo.Member `json:"member"`
	Field  plivo.Field  `json:"field"`
}

// Place is where a change was answered, so that what follows it — a timer's
// revert, a notice that a timer was superseded or not run — goes to the same
// place. It is plain data a surface fills in and reads back.
type Place struct {
	// ChannelID and ThreadTS name the thread of the result; ThreadTS is
	// empty when the answer did not go in a thread.
	ChannelID string `json:"channel_id,omitempty"`
	ThreadTS  string `json:"thread_ts,omitempty"`
	// ResponseURL is the request's response_url, used when there is no
	// thread (it expires; a direct message to UserID is the last resort).
	ResponseURL string `json:"response_url,omitempty"`
	// UserID is the requester.
	UserID string `json:"user_id,omitempty"`
}

// Timer is the pending revert of a timed change ("hold 1002 for 2m"): at
// Due, the fields in Pending that nobody changed since are set back.
type Timer struct {
	// ID is unique (fleet-wide).
	ID string
	// Change is the change that was applied, for the members it succeeded
	// for; the revert is its inverse.
	Change Change
	// Requester asked for the timed change; Source is where it came from.
	Requester Requester
	Source    Source
	// Set is when the change was applied, Due when it is to be reverted.
	Set, Due time.Time
	// Place is where the change was answered; the revert is reported there.
	Place Place
	// Pending lists the member fields still to revert. A later change of one
	// of them through mpcbot removes it (see Supersede).
	Pending []Pair
	// Excluded lists members whose field a later change took over while a
	// pending pair of the same field targets AllMembers: the revert of
	// "all" skips them.
	Excluded []Pair
}

// NewTimer returns the timer of a timed change applied at set for the
// members it succeeded for.
func NewTimer(id string, c Change, r Requester, src Source, set time.Time, d time.Duration, place Place) Timer {
	t := Timer{ID: id, Change: c, Requester: r, Source: src, Set: set, Due: set.Add(d), Place: place}
	for _, m := range c.Members {
		for _, a := range c.Actions {
			t.Pending = append(t.Pending, Pair{Member: m, Field: a.Field})
		}
	}
	return t
}

// Finished reports whether nothing is left to revert.
func (t Timer) Finished() bool { return len(t.Pending) == 0 }

// Supersede records that a change of fields of members (or of AllMembers)
// in the timer's MPC was just made through mpcbot: a person's later
// decision wins, so those member fields are no longer reverted. It returns
// the updated timer and the pairs it lost (empty when the change does not
// touch it). The MPC must be compared by the caller (see SameMPC).
func (t Timer) Supersede(members []plivo.Member, fields []plivo.Field) (Timer, []Pair) {
	var lost []Pair
	pending := slices.Clone(t.Pending)
	excluded := slices.Clone(t.Excluded)
	for _, f := range fields {
		for _, m := range members {
			kept := pending[:0]
			for _, p := range pending {
				switch {
				case p.Field != f:
					kept = append(kept, p)
				case m.IsAll() || p.Member == m:
					lost = append(lost, p)
				case p.Member.IsAll():
					kept = append(kept, p)
					ex := Pair{Member: m, Field: f}
					if !slices.Contains(excluded, ex) {
						excluded = append(excluded, ex)
						lost = append(lost, ex)
					}
				default:
					kept = append(kept, p)
				}
			}
			pending = kept
		}
	}
	if len(lost) == 0 {
		return t, nil
	}
	t.Pending, t.Excluded = pending, excluded
	return t, lost
}

// SameMPC reports whether the timer is about mpc (by name or by uuid as it
// was typed).
func (t Timer) SameMPC(mpc plivo.MPC) bool { return t.Change.MPC.PathSegment() == mpc.PathSegment() }

// timerJSON is the stored form of a Timer: the change as its command text,
// which parses back to the same change.
type timerJSON struct {
	ID        string    `json:"id"`
	Change    string    `json:"change"`
	Requester Requester `json:"requester"`
	Source    Source    `json:"source"`
	Set       time.Time `json:"set"`
	Due       time.Time `json:"due"`
	Place     Place     `json:"place"`
	Pending   []Pair    `json:"pending"`
	Excluded  []Pair    `json:"excluded,omitempty"`
}

// MarshalJSON implements json.Marshaler.
func (t Timer) MarshalJSON() ([]byte, error) {
	return json.Marshal(timerJSON{ID: t.ID, Change: t.Change.Text(), Requester: t.Requester, Source: t.Source,
		Set: t.Set, Due: t.Due, Place: t.Place, Pending: t.Pending, Excluded: t.Excluded})
}

// UnmarshalJSON implements json.Unmarshaler.
func (t *Timer) UnmarshalJSON(data []byte) error {
	var j timerJSON
	if err := json.Unmarshal(data, &j); err != nil {
		return fmt.Errorf("decode timer: %w", err)
	}
	cmd, err := storedGrammar.Parse(j.Change)
	if err != nil {
		return fmt.Errorf("decode timer %s: change %q: %w", j.ID, j.Change, err)
	}
	c, ok := cmd.(Change)
	if !ok {
		return fmt.Errorf("decode timer %s: %q is not a change", j.ID, j.Change)
	}
	*t = Timer{ID: j.ID, Change: c, Requester: j.Requester, Source: j.Source, Set: j.Set, Due: j.Due,
		Place: j.Place, Pending: j.Pending, Excluded: j.Excluded}
	return nil
}

// Superseded is a timer that lost member fields to a later change.
type Superseded struct {
	// Timer is the timer after the change (Finished when nothing is left).
	Timer Timer
	// Lost lists the member fields it will no longer revert.
	Lost []Pair
}

// TimerStore keeps the pending timers. Without Redis it is the process's
// memory (timers end with the process, and are reported then); with Redis
// it is shared by the fleet and a due timer is run by exactly one replica,
// also after the replica that set it is gone. Every method is atomic with
// respect to the others.
type TimerStore interface {
	// Add stores a new pending timer.
	Add(ctx context.Context, t Timer) error
	// Supersede applies Timer.Supersede to every pending timer of mpc and
	// returns those that lost something; finished ones are removed.
	Supersede(ctx context.Context, mpc plivo.MPC, members []plivo.Member, fields []plivo.Field) ([]Superseded, error)
	// Cancel removes a pending timer and returns it; ok is false when it
	// is not pending (unknown, already run, cancelled or superseded).
	Cancel(ctx context.Context, id string) (t Timer, ok bool, err error)
	// Claim returns the timers due at now for the caller to run. A claimed
	// timer is not returned again unless it stays unfinished (Done not
	// called) for lease, e.g. because its replica died.
	Claim(ctx context.Context, now time.Time, lease time.Duration) ([]Timer, error)
	// Done removes a claimed timer for good.
	Done(ctx context.Context, id string) error
	// Pending returns every timer not yet run, claimed ones included.
	Pending(ctx context.Context) ([]Timer, error)
}
