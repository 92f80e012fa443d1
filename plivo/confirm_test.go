package plivo

import (
	"context"
	"strings"
	"testing"

	"github.com/mpcbot/mpcbot/plivo/plivotest"
)

// Reading the state back after a lost answer: a field that a later update
// from this client may have changed again is not held against the update
// (it would otherwise be resent and override the later change).
func TestConfirmAppliedIgnoresLaterUpdates(t *testing.T) {
	sim := plivotest.NewServer(plivotest.WithSampleMPC())
	t.Cleanup(sim.Close)
	c, err := New(Config{AuthID: sim.AuthID, AuthToken: sim.AuthToken, BaseURL: sim.URL, Rate: 1000, Burst: 1000})
	if err != nil {
		t.Fatal(err)
	}
	mpc, _ := MPCByName(plivotest.SampleMPCName)
	ctx := context.Background()
	mute := ParticipantUpdate{Mute: boolPtr(true)}
	var customer string
	for _, p := range sim.Participants(plivotest.SampleMPCName) {
		if p.Role == plivotest.RoleCustomer {
			customer = p.MemberID
		}
	}
	// "mute all" was applied, then the customer was unmuted by a later
	// update: the state is all muted but the customer.
	if _, err := c.UpdateParticipant(ctx, mpc, AllMembers, mute); err != nil {
		t.Fatal(err)
	}
	if _, err := c.UpdateParticipant(ctx, mpc, Member(customer), ParticipantUpdate{Mute: boolPtr(false)}); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name     string
		later    []Member // members of updates to mute sent after self
		inFlight []Member // …sent before self, not answered when self was sent
		finished []Member // …sent and answered before self was sent
		want     verdict
	}{
		{"no other update: the unmuted customer means not applied", nil, nil, nil, notApplied},
		{"a later update to the customer: applied", []Member{Member(customer)}, nil, nil, applied},
		{"a later update to all: applied", []Member{AllMembers}, nil, nil, applied},
		{"a later update to another member only: not applied", []Member{"999"}, nil, nil, notApplied},
		{"an earlier update still in flight (Plivo may apply it last): applied", nil, []Member{Member(customer)}, nil, applied},
		{"an earlier update already answered: not applied", nil, nil, []Member{Member(customer)}, notApplied},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			log := NewLocalInFlight()
			c.inFlight = log
			for _, m := range tt.finished {
				log.End(ctx, log.Begin(ctx, mpc, m, []Field{FieldMute}))
			}
			for _, m := range tt.inFlight {
				log.Begin(ctx, mpc, m, []Field{FieldMute})
			}
			self := log.Begin(ctx, mpc, AllMembers, mute.Fields())
			for _, m := range tt.later {
				log.Begin(ctx, mpc, m, []Field{FieldMute})
			}
			// An update to another MPC or another field never counts.
			other, _ := MPCByName("elsewhere")
			log.Begin(ctx, other, Member(customer), []Field{FieldMute})
			log.Begin(ctx, mpc, Member(customer), []Field{FieldHold})
			res, got := c.checkApplied(ctx, sentUpdate{mpc: mpc, member: AllMembers, update: mute, id: self})
			if got != tt.want {
				t.Fatalf("verdict = %v, want %v", got, tt.want)
			}
			if got == applied && (!res.Confirmed || !strings.Contains(res.Results[FieldMute], "newer change")) {
				t.Fatalf("result = %+v", res)
			}
		})
	}
}

func boolPtr(b bool) *bool { return &b }
