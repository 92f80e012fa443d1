package commands

import (
	"encoding/json"
	"slices"
	"testing"
	"time"

	"github.com/mpcbot/mpcbot/plivo"
)

func mustChange(t *testing.T, text string) Change {
	t.Helper()
	cmd, err := Parse(text)
	if err != nil {
		t.Fatalf("parse %q: %v", text, err)
	}
	c, ok := cmd.(Change)
	if !ok {
		t.Fatalf("%q is not a change", text)
	}
	return c
}

func TestNewTimerPendsEveryMemberField(t *testing.T) {
	t.Parallel()
	set := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	tm := NewTimer("x", mustChange(t, "mute,hold test_mpc_1 1001,1002"), Requester{UserID: "U1"}, Typed, set, 2*time.Minute, Place{})
	want := []Pair{{"1001", plivo.FieldMute}, {"1001", plivo.FieldHold}, {"1002", plivo.FieldMute}, {"1002", plivo.FieldHold}}
	if !slices.Equal(tm.Pending, want) {
		t.Fatalf("Pending = %v, want %v", tm.Pending, want)
	}
	if !tm.Due.Equal(set.Add(2*time.Minute)) || tm.Finished() {
		t.Fatalf("Due = %v, Finished = %v", tm.Due, tm.Finished())
	}
}

func TestTimerSupersede(t *testing.T) {
	t.Parallel()
	m := func(ids ...plivo.Member) []plivo.Member { return ids }
	f := func(fs ...plivo.Field) []plivo.Field { return fs }
	hold, mute := plivo.FieldHold, plivo.FieldMute
	all := plivo.AllMembers
	tests := []struct {
		name         string
		change       string
		members      []plivo.Member
		fields       []plivo.Field
		wantPending  []Pair
		wantExcluded []Pair
		wantLost     []Pair
	}{
		{"same member and field", "hold test_mpc_1 1002", m("1002"), f(hold),
			nil, nil, []Pair{{"1002", hold}}},
		{"other field", "hold test_mpc_1 1002", m("1002"), f(mute),
			[]Pair{{"1002", hold}}, nil, nil},
		{"other member", "hold test_mpc_1 1002", m("1003"), f(hold),
			[]Pair{{"1002", hold}}, nil, nil},
		{"one of two fields", "mute,hold test_mpc_1 1002", m("1002"), f(hold),
			[]Pair{{"1002", mute}}, nil, []Pair{{"1002", hold}}},
		{"a change of all takes every member", "hold test_mpc_1 1001,1002", m(all), f(hold),
			nil, nil, []Pair{{"1001", hold}, {"1002", hold}}},
		{"a change of all takes a timer of all", "hold test_mpc_1 all", m(all), f(hold),
			nil, nil, []Pair{{all, hold}}},
		{"a member change excludes it from a timer of all", "hold test_mpc_1 all", m("1002", "1003"), f(hold),
			[]Pair{{all, hold}}, []Pair{{"1002", hold}, {"1003", hold}}, []Pair{{"1002", hold}, {"1003", hold}}},
		{"several fields and members", "mute,hold test_mpc_1 1001,1002", m("1001", "1002"), f(mute),
			[]Pair{{"1001", hold}, {"1002", hold}}, nil, []Pair{{"1001", mute}, {"1002", mute}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			before := NewTimer("x", mustChange(t, tt.change), Requester{}, Typed, time.Unix(0, 0), time.Minute, Place{})
			pendingBefore := slices.Clone(before.Pending)
			after, lost := before.Supersede(tt.members, tt.fields)
			if !slices.Equal(after.Pending, tt.wantPending) || !slices.Equal(after.Excluded, tt.wantExcluded) || !slices.Equal(lost, tt.wantLost) {
				t.Fatalf("Supersede(%v, %v):\n pending  %v want %v\n excluded %v want %v\n lost     %v want %v",
					tt.members, tt.fields, after.Pending, tt.wantPending, after.Excluded, tt.wantExcluded, lost, tt.wantLost)
			}
			if after.Finished() != (len(tt.wantPending) == 0) {
				t.Fatalf("Finished = %v with pending %v", after.Finished(), after.Pending)
			}
			if !slices.Equal(before.Pending, pendingBefore) {
				t.Fatalf("Supersede changed the receiver's Pending: %v, was %v", before.Pending, pendingBefore)
			}
		})
	}
}

func TestTimerSupersedeExcludesOnce(t *testing.T) {
	t.Parallel()
	tm := NewTimer("x", mustChange(t, "hold test_mpc_1 all"), Requester{}, Typed, time.Unix(0, 0), time.Minute, Place{})
	tm, lost := tm.Supersede([]plivo.Member{"1002"}, []plivo.Field{plivo.FieldHold})
	if len(lost) != 1 {
		t.Fatalf("first change of 1002 lost %v", lost)
	}
	again, lost := tm.Supersede([]plivo.Member{"1002"}, []plivo.Field{plivo.FieldHold})
	if len(lost) != 0 || len(again.Excluded) != 1 {
		t.Fatalf("second change of 1002: lost %v, excluded %v; want nothing new", lost, again.Excluded)
	}
}

func TestTimerJSONRoundTrip(t *testing.T) {
	t.Parallel()
	set := time.Date(2030, 1, 1, 0, 0, 0, 123456789, time.UTC)
	tm := NewTimer("x", mustChange(t, "mute,hold \"mpc 1000\" all"), Requester{UserID: "U1", ChannelID: "C1"}, Clicked, set, time.Minute,
		Place{ChannelID: "C1", ThreadTS: "1.2", ResponseURL: "https://hooks.example/r", UserID: "U1"})
	tm, _ = tm.Supersede([]plivo.Member{"1002"}, []plivo.Field{plivo.FieldMute})
	b, err := json.Marshal(tm)
	if err != nil {
		t.Fatal(err)
	}
	var back Timer
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	b2, _ := json.Marshal(back)
	if string(b) != string(b2) || !back.Due.Equal(tm.Due) || back.Change.Text() != tm.Change.Text() || !slices.Equal(back.Excluded, tm.Excluded) {
		t.Fatalf("round trip changed the timer:\n %s\n %s", b, b2)
	}
	mpc, _ := plivo.MPCByName("mpc 1000")
	other, _ := plivo.MPCByName("mpc 1001")
	if !back.SameMPC(mpc) || back.SameMPC(other) {
		t.Fatal("SameMPC after a round trip")
	}
	for _, bad := range []string{`{"id":"x","change":"list test_mpc_1"}`, `{"id":"x","change":"frobnicate"}`, `[`} {
		if err := json.Unmarshal([]byte(bad), &back); err == nil {
			t.Errorf("Unmarshal(%s) succeeded", bad)
		}
	}
}
