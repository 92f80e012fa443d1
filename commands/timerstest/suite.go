// Package timerstest is the conformance suite of commands.TimerStore: every
// store (the in-process one, the shared Redis one, the fleet's with its
// fallback) runs the same Run, so they all mean the same thing.
package timerstest

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/mpcbot/mpcbot/commands"
	"github.com/mpcbot/mpcbot/plivo"
)

// Base is the time the suite's timers are set at; stores must accept any
// time the caller passes (the suite never waits for wall time).
var Base = time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)

// NewTimer returns a timer of the change text (e.g. "hold test_mpc_1 1002"),
// set at Base and due after d.
func NewTimer(t testing.TB, id, change string, d time.Duration) commands.Timer {
	t.Helper()
	cmd, err := commands.Parse(change)
	if err != nil {
		t.Fatalf("parse %q: %v", change, err)
	}
	c, ok := cmd.(commands.Change)
	if !ok {
		t.Fatalf("%q is not a change", change)
	}
	r := commands.Requester{UserID: "U1", UserName: "sup", ChannelID: "C1", ChannelName: "ops"}
	place := commands.Place{ChannelID: "C1", ThreadTS: "1700000000.000100", UserID: "U1"}
	return commands.NewTimer(id, c, r, commands.Typed, Base, d, place)
}

// Run runs the conformance suite against fresh stores made by newStore.
// Subtests run in parallel, each with its own store.
func Run(t *testing.T, newStore func(t *testing.T) commands.TimerStore) {
	tests := []struct {
		name string
		run  func(t *testing.T, s commands.TimerStore)
	}{
		{"AddThenPending", testAddThenPending},
		{"AddTwiceFails", testAddTwiceFails},
		{"Cancel", testCancel},
		{"Supersede", nil}, // table below
		{"ClaimAtDueTime", testClaimAtDueTime},
		{"ClaimedIsPendingAndCancellable", testClaimedIsPendingAndCancellable},
		{"LeaseExpiryLetsAnotherClaimerTakeIt", testLeaseExpiry},
		{"SupersedeClaimed", testSupersedeClaimed},
		{"ConcurrentClaimsOnce", testConcurrentClaimsOnce},
		{"DoneUnknown", testDoneUnknown},
	}
	for _, tt := range tests {
		if tt.run == nil {
			t.Run(tt.name, func(t *testing.T) {
				t.Parallel()
				runSupersede(t, newStore)
			})
			continue
		}
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tt.run(t, newStore(t))
		})
	}
}

func testAddThenPending(t *testing.T, s commands.TimerStore) {
	ctx := context.Background()
	a := NewTimer(t, "a", "hold test_mpc_1 1002", 2*time.Minute)
	b := NewTimer(t, "b", "mute,hold \"mpc 1000\" 1001,1002", time.Minute)
	mustAdd(t, s, a, b)
	got, err := s.Pending(ctx)
	if err != nil {
		t.Fatal(err)
	}
	Equal(t, "Pending", got, []commands.Timer{b, a})
}

func testAddTwiceFails(t *testing.T, s commands.TimerStore) {
	ctx := context.Background()
	a := NewTimer(t, "a", "hold test_mpc_1 1002", time.Minute)
	mustAdd(t, s, a)
	other := NewTimer(t, "a", "mute test_mpc_1 1003", time.Minute)
	if err := s.Add(ctx, other); err == nil {
		t.Fatal("Add of an id already pending succeeded")
	}
	got, _ := s.Pending(ctx)
	Equal(t, "Pending after a refused Add", got, []commands.Timer{a})
}

func testCancel(t *testing.T, s commands.TimerStore) {
	ctx := context.Background()
	a := NewTimer(t, "a", "hold test_mpc_1 1002", time.Minute)
	b := NewTimer(t, "b", "mute test_mpc_1 1003", time.Minute)
	mustAdd(t, s, a, b)
	got, ok, err := s.Cancel(ctx, "a")
	if err != nil || !ok {
		t.Fatalf("Cancel(a) = ok %v, err %v; want it returned", ok, err)
	}
	Equal(t, "cancelled timer", []commands.Timer{got}, []commands.Timer{a})
	for _, id := range []string{"a", "unknown"} {
		if _, ok, err := s.Cancel(ctx, id); ok || err != nil {
			t.Fatalf("Cancel(%s) again = ok %v, err %v; want not pending, no error", id, ok, err)
		}
	}
	pending, _ := s.Pending(ctx)
	Equal(t, "Pending after Cancel", pending, []commands.Timer{b})
	claimed, err := s.Claim(ctx, Base.Add(time.Hour), time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	Equal(t, "Claim after Cancel", claimed, []commands.Timer{b})
}

// runSupersede checks that a store applies commands.Timer.Supersede (the
// one rule) to the pending timers of the MPC and only to them.
func runSupersede(t *testing.T, newStore func(t *testing.T) commands.TimerStore) {
	tests := []struct {
		name    string
		timers  []string // change texts, ids t0, t1, …
		mpc     string
		members []plivo.Member
		fields  []plivo.Field
		touched []int // indexes of the timers that lose something
	}{
		{"same member and field: finished and removed", []string{"hold test_mpc_1 1002"},
			"test_mpc_1", []plivo.Member{"1002"}, []plivo.Field{plivo.FieldHold}, []int{0}},
		{"one of two fields", []string{"mute,hold test_mpc_1 1002"},
			"test_mpc_1", []plivo.Member{"1002"}, []plivo.Field{plivo.FieldHold}, []int{0}},
		{"one of two members", []string{"hold test_mpc_1 1001,1002"},
			"test_mpc_1", []plivo.Member{"1001"}, []plivo.Field{plivo.FieldHold}, []int{0}},
		{"a change of all takes every member", []string{"hold test_mpc_1 1001,1002", "hold test_mpc_1 1003"},
			"test_mpc_1", []plivo.Member{plivo.AllMembers}, []plivo.Field{plivo.FieldHold}, []int{0, 1}},
		{"a member change excludes it from a timer of all", []string{"hold test_mpc_1 all"},
			"test_mpc_1", []plivo.Member{"1002"}, []plivo.Field{plivo.FieldHold}, []int{0}},
		{"another field: untouched", []string{"hold test_mpc_1 1002"},
			"test_mpc_1", []plivo.Member{"1002"}, []plivo.Field{plivo.FieldMute}, nil},
		{"another member: untouched", []string{"hold test_mpc_1 1002"},
			"test_mpc_1", []plivo.Member{"1003"}, []plivo.Field{plivo.FieldHold}, nil},
		{"another MPC: untouched", []string{"hold test_mpc_1 1002", "hold other 1002"},
			"other", []plivo.Member{"1002"}, []plivo.Field{plivo.FieldHold}, []int{1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			s := newStore(t)
			var timers []commands.Timer
			for i, text := range tt.timers {
				timers = append(timers, NewTimer(t, fmt.Sprintf("t%d", i), text, time.Duration(i+1)*time.Minute))
			}
			mustAdd(t, s, timers...)
			mpc, err := plivo.MPCByName(tt.mpc)
			if err != nil {
				t.Fatal(err)
			}
			got, err := s.Supersede(ctx, mpc, tt.members, tt.fields)
			if err != nil {
				t.Fatal(err)
			}
			// The expectation comes from the rule itself, applied here.
			var want []commands.Superseded
			var wantPending []commands.Timer
			for i, tm := range timers {
				after, lost := tm, []commands.Pair(nil)
				if tm.SameMPC(mpc) {
					after, lost = tm.Supersede(tt.members, tt.fields)
				}
				if len(lost) > 0 != slices.Contains(tt.touched, i) {
					t.Fatalf("test table: timer %d touched = %v by the rule", i, len(lost) > 0)
				}
				if len(lost) > 0 {
					want = append(want, commands.Superseded{Timer: after, Lost: lost})
				}
				if !after.Finished() {
					wantPending = append(wantPending, after)
				}
			}
			if len(got) != len(want) {
				t.Fatalf("Supersede returned %d timers, want %d", len(got), len(want))
			}
			slices.SortFunc(got, func(a, b commands.Superseded) int { return a.Timer.Due.Compare(b.Timer.Due) })
			for i := range want {
				Equal(t, "superseded timer", []commands.Timer{got[i].Timer}, []commands.Timer{want[i].Timer})
				if !slices.Equal(got[i].Lost, want[i].Lost) {
					t.Fatalf("timer %s lost %v, want %v", want[i].Timer.ID, got[i].Lost, want[i].Lost)
				}
			}
			pending, err := s.Pending(ctx)
			if err != nil {
				t.Fatal(err)
			}
			Equal(t, "Pending after Supersede", pending, wantPending)
			claimed, err := s.Claim(ctx, Base.Add(time.Hour), time.Minute)
			if err != nil {
				t.Fatal(err)
			}
			Equal(t, "Claim after Supersede", claimed, wantPending)
		})
	}
}

func testClaimAtDueTime(t *testing.T, s commands.TimerStore) {
	ctx := context.Background()
	a := NewTimer(t, "a", "hold test_mpc_1 1002", 2*time.Minute)
	b := NewTimer(t, "b", "mute test_mpc_1 1003", 5*time.Minute)
	mustAdd(t, s, a, b)
	lease := 30 * time.Second
	steps := []struct {
		at   time.Time
		want []commands.Timer
	}{
		{a.Due.Add(-time.Millisecond), nil},
		{a.Due, []commands.Timer{a}},
		{a.Due, nil},                                        // claimed: not again
		{a.Due.Add(lease - time.Millisecond), nil},          // still leased
		{b.Due.Add(-time.Millisecond), []commands.Timer{a}}, // a's lease lapsed, b not due
		{b.Due, []commands.Timer{b}},
	}
	for i, st := range steps {
		got, err := s.Claim(ctx, st.at, lease)
		if err != nil {
			t.Fatal(err)
		}
		Equal(t, fmt.Sprintf("step %d: Claim at due%+v", i, st.at.Sub(a.Due)), got, st.want)
	}
	if err := s.Done(ctx, "a"); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.Claim(ctx, b.Due.Add(time.Hour), lease); len(got) != 1 || got[0].ID != "b" {
		t.Fatalf("after Done(a), Claim an hour later = %v, want only b", ids(got))
	}
	if err := s.Done(ctx, "b"); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.Pending(ctx); len(got) != 0 {
		t.Fatalf("Pending after Done of every timer = %v", ids(got))
	}
}

func testClaimedIsPendingAndCancellable(t *testing.T, s commands.TimerStore) {
	ctx := context.Background()
	a := NewTimer(t, "a", "hold test_mpc_1 1002", time.Minute)
	mustAdd(t, s, a)
	if got, _ := s.Claim(ctx, a.Due, time.Minute); len(got) != 1 {
		t.Fatalf("Claim at due = %v", ids(got))
	}
	pending, _ := s.Pending(ctx)
	Equal(t, "Pending of a claimed timer", pending, []commands.Timer{a})
	if _, ok, err := s.Cancel(ctx, "a"); !ok || err != nil {
		t.Fatalf("Cancel of a claimed timer = ok %v, err %v", ok, err)
	}
	if got, _ := s.Claim(ctx, a.Due.Add(time.Hour), time.Minute); len(got) != 0 {
		t.Fatalf("a cancelled claimed timer was claimed again after its lease: %v", ids(got))
	}
}

func testLeaseExpiry(t *testing.T, s commands.TimerStore) {
	ctx := context.Background()
	a := NewTimer(t, "a", "hold test_mpc_1 1002", time.Minute)
	mustAdd(t, s, a)
	lease := 10 * time.Second
	if got, _ := s.Claim(ctx, a.Due, lease); len(got) != 1 {
		t.Fatalf("first claimer got %v", ids(got))
	}
	// The first claimer dies without Done: the timer stays unfinished.
	if got, _ := s.Claim(ctx, a.Due.Add(lease-time.Millisecond), lease); len(got) != 0 {
		t.Fatalf("claimed again before the lease lapsed: %v", ids(got))
	}
	got, err := s.Claim(ctx, a.Due.Add(lease), lease)
	if err != nil {
		t.Fatal(err)
	}
	Equal(t, "second claimer after the lease", got, []commands.Timer{a})
	if got, _ := s.Claim(ctx, a.Due.Add(lease+lease/2), lease); len(got) != 0 {
		t.Fatalf("the second claim has its own lease, yet a third claimer got %v", ids(got))
	}
}

func testSupersedeClaimed(t *testing.T, s commands.TimerStore) {
	ctx := context.Background()
	a := NewTimer(t, "a", "mute,hold test_mpc_1 1002", time.Minute)
	mustAdd(t, s, a)
	lease := 10 * time.Second
	if got, _ := s.Claim(ctx, a.Due, lease); len(got) != 1 {
		t.Fatalf("Claim at due = %v", ids(got))
	}
	mpc, _ := plivo.MPCByName("test_mpc_1")
	sup, err := s.Supersede(ctx, mpc, []plivo.Member{"1002"}, []plivo.Field{plivo.FieldMute})
	if err != nil || len(sup) != 1 {
		t.Fatalf("Supersede of a claimed timer = %v, %v", sup, err)
	}
	want, _ := a.Supersede([]plivo.Member{"1002"}, []plivo.Field{plivo.FieldMute})
	got, _ := s.Claim(ctx, a.Due.Add(lease), lease)
	Equal(t, "reclaimed after the lease", got, []commands.Timer{want})
}

func testConcurrentClaimsOnce(t *testing.T, s commands.TimerStore) {
	ctx := context.Background()
	const timers, claimers = 30, 6
	for i := range timers {
		mustAdd(t, s, NewTimer(t, fmt.Sprintf("t%02d", i), "hold test_mpc_1 1002", time.Duration(i)*time.Second))
	}
	var mu sync.Mutex
	count := map[string]int{}
	var wg sync.WaitGroup
	for c := range claimers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for step := range timers {
				now := Base.Add(time.Duration(step+c%2) * time.Second)
				got, err := s.Claim(ctx, now, time.Hour)
				if err != nil {
					t.Error(err)
					return
				}
				mu.Lock()
				for _, tm := range got {
					count[tm.ID]++
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	CheckOnce(t, count, timers)
}

// CheckOnce fails unless count holds n ids claimed exactly once each.
func CheckOnce(t testing.TB, count map[string]int, n int) {
	t.Helper()
	if len(count) != n {
		t.Errorf("%d of %d timers were claimed", len(count), n)
	}
	for id, c := range count {
		if c != 1 {
			t.Errorf("timer %s claimed %d times", id, c)
		}
	}
}

func testDoneUnknown(t *testing.T, s commands.TimerStore) {
	if err := s.Done(context.Background(), "unknown"); err != nil {
		t.Fatalf("Done of an unknown timer: %v", err)
	}
}

func mustAdd(t *testing.T, s commands.TimerStore, timers ...commands.Timer) {
	t.Helper()
	for _, tm := range timers {
		if err := s.Add(context.Background(), tm); err != nil {
			t.Fatalf("Add %s: %v", tm.ID, err)
		}
	}
}

// Equal fails unless got and want hold the same timers (compared by their
// stored form, so a store may return decoded copies), in any order.
func Equal(t testing.TB, what string, got, want []commands.Timer) {
	t.Helper()
	g, w := encode(t, got), encode(t, want)
	slices.Sort(g)
	slices.Sort(w)
	if !slices.Equal(g, w) {
		t.Fatalf("%s:\n got  %v\n want %v", what, g, w)
	}
}

func encode(t testing.TB, ts []commands.Timer) []string {
	t.Helper()
	out := make([]string, 0, len(ts))
	for _, tm := range ts {
		b, err := json.Marshal(tm)
		if err != nil {
			t.Fatalf("encode timer %s: %v", tm.ID, err)
		}
		out = append(out, string(b))
	}
	return out
}

func ids(ts []commands.Timer) []string {
	out := make([]string, len(ts))
	for i, tm := range ts {
		out[i] = tm.ID
	}
	return out
}
