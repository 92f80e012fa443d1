package commands_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"golang.org/x/time/rate"

	"github.com/mpcbot/mpcbot/commands"
	"github.com/mpcbot/mpcbot/plivo"
	"github.com/mpcbot/mpcbot/plivo/plivotest"
)

const sup = "USUP"

// fixture is a Service over a real plivo.Client talking to the simulator.
type fixture struct {
	sim *plivotest.Server
	pc  *plivo.Client
	svc *commands.Service
	// customer, agent, supervisor are the sample MPC's member ids.
	customer, agent, supervisor string
}

func newFixture(t *testing.T, confirmAbove int, r rate.Limit, burst int) fixture {
	t.Helper()
	sim := plivotest.NewServer(plivotest.WithSampleMPC())
	t.Cleanup(sim.Close)
	pc, err := plivo.New(plivo.Config{AuthID: sim.AuthID, AuthToken: sim.AuthToken, BaseURL: sim.URL, Rate: r, Burst: burst,
		BackoffBase: time.Millisecond, BackoffMax: 5 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	policy, err := commands.NewPolicy(commands.PolicyConfig{Supervisors: []string{sup}, Agents: []string{"UAGENT"}})
	if err != nil {
		t.Fatal(err)
	}
	f := fixture{sim: sim, pc: pc, svc: &commands.Service{Plivo: pc, Policy: policy, ConfirmAllAbove: confirmAbove, Timeout: 5 * time.Second}}
	for _, p := range sim.Participants(plivotest.SampleMPCName) {
		switch p.Role {
		case "customer":
			f.customer = p.MemberID
		case "agent":
			f.agent = p.MemberID
		case "supervisor":
			f.supervisor = p.MemberID
		}
	}
	return f
}

func parseChange(t *testing.T, text string) commands.Change {
	t.Helper()
	c, err := commands.Parse(text)
	if err != nil {
		t.Fatalf("Parse(%q): %v", text, err)
	}
	return c.(commands.Change)
}

func (f fixture) change(t *testing.T, user, text string) commands.Outcome {
	t.Helper()
	return f.svc.Change(context.Background(), commands.Requester{UserID: user, ChannelID: "C1"}, parseChange(t, text), commands.Typed)
}

func TestServiceChangeAppliesAndReports(t *testing.T) {
	f := newFixture(t, 5, 100, 100)
	o := f.change(t, sup, "mute,hold test_mpc_1 "+f.customer)
	if o.Status() != commands.StatusOK {
		t.Fatalf("status %s: %s", o.Status(), commands.RenderText(o))
	}
	st, _ := f.sim.Participant(plivotest.SampleMPCName, f.customer)
	if !st.Mute || !st.Hold {
		t.Fatalf("simulator state after mute,hold: %+v", st)
	}
	r := o.Results[0]
	if r.APIID == "" || len(r.Fields) != 2 || r.Fields[0].Action != commands.Mute || r.Fields[1].Action != commands.Hold {
		t.Fatalf("result = %+v", r)
	}
	for _, fr := range r.Fields {
		if !fr.OK || !strings.Contains(fr.Text, "succeeded") {
			t.Fatalf("field result %+v", fr)
		}
	}
	// Exactly one Plivo update carried both fields.
	ups := f.sim.AppliedUpdates()
	if len(ups) != 1 || !strings.Contains(string(ups[0].Body), `"mute":true`) || !strings.Contains(string(ups[0].Body), `"hold":true`) {
		t.Fatalf("applied updates = %+v", ups)
	}
}

// Several members: one Plivo call each; a failure for one does not hide
// the others.
func TestServiceSeveralMembers(t *testing.T) {
	f := newFixture(t, 5, 100, 100)
	o := f.change(t, sup, fmt.Sprintf("mute test_mpc_1 %s,999,%s", f.customer, f.agent))
	if o.Status() != commands.StatusPartial {
		t.Fatalf("status %s, want partial", o.Status())
	}
	if len(o.Results) != 3 || o.Results[1].Member != "999" || o.Results[1].Err == nil || plivo.KindOf(o.Results[1].Err) != plivo.NotFound {
		t.Fatalf("results = %+v", o.Results)
	}
	for _, i := range []int{0, 2} {
		if o.Results[i].Err != nil {
			t.Fatalf("member %s failed: %v", o.Results[i].Member, o.Results[i].Err)
		}
	}
	for _, id := range []string{f.customer, f.agent} {
		if st, _ := f.sim.Participant(plivotest.SampleMPCName, id); !st.Mute {
			t.Fatalf("member %s not muted", id)
		}
	}
	if n := len(f.sim.AppliedUpdates()); n != 2 {
		t.Fatalf("%d applied updates, want 2", n)
	}
	text := commands.RenderText(o)
	for _, want := range []string{"member 999:", "not found", "/mpc list test_mpc_1"} {
		if !strings.Contains(text, want) {
			t.Fatalf("rendered outcome lacks %q:\n%s", want, text)
		}
	}
}

// `all` asks for confirmation above the threshold, runs at or below it,
// and --yes skips the check.
func TestServiceConfirmAll(t *testing.T) {
	tests := []struct {
		threshold int
		text      string
		confirm   bool
	}{
		{5, "hold test_mpc_1 all", false}, // 3 live ≤ 5
		{3, "hold test_mpc_1 all", false}, // 3 live ≤ 3
		{2, "hold test_mpc_1 all", true},  // 3 live > 2
		{0, "hold test_mpc_1 all", true},  // 0 = always
		{0, "hold test_mpc_1 all --yes", false},
		{2, "hold test_mpc_1 all —yes", false},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%d/%s", tt.threshold, tt.text), func(t *testing.T) {
			f := newFixture(t, tt.threshold, 100, 100)
			o := f.change(t, sup, tt.text)
			if got := o.Confirm != nil; got != tt.confirm {
				t.Fatalf("confirm = %v, want %v (%s)", got, tt.confirm, commands.RenderText(o))
			}
			applied := len(f.sim.AppliedUpdates())
			if tt.confirm {
				if applied != 0 || o.Confirm.LiveMembers != 3 || !strings.Contains(o.ConfirmQuestion(), "3 live participants") {
					t.Fatalf("confirmation: applied %d, %+v %q", applied, o.Confirm, o.ConfirmQuestion())
				}
				return
			}
			if applied != 1 || o.Status() != commands.StatusOK {
				t.Fatalf("applied %d, status %s", applied, o.Status())
			}
		})
	}
}

func TestServiceRefusesBeforeCallingPlivo(t *testing.T) {
	f := newFixture(t, 5, 100, 100)
	for _, tt := range []struct{ user, text, code string }{
		{"USTRANGER", "hold test_mpc_1 all", commands.RefusedNotAllowed},
		{"UAGENT", "coach test_mpc_1 103", commands.RefusedCoachSupervisor},
	} {
		o := f.change(t, tt.user, tt.text)
		if o.Refusal == nil || o.Refusal.Code != tt.code || o.Status() != commands.StatusRefused {
			t.Fatalf("%s %q: %+v", tt.user, tt.text, o)
		}
	}
	if n := len(f.sim.Requests()); n != 0 {
		t.Fatalf("refused requests reached Plivo: %d requests", n)
	}
}

func TestServiceCoachWarnsForNonSupervisor(t *testing.T) {
	f := newFixture(t, 5, 100, 100)
	o := f.change(t, sup, "coach test_mpc_1 "+f.agent)
	if o.Status() != commands.StatusOK || len(o.Warnings) != 1 || !strings.Contains(o.Warnings[0], "not a supervisor") {
		t.Fatalf("outcome %s, warnings %q", o.Status(), o.Warnings)
	}
	o = f.change(t, sup, "uncoach test_mpc_1 "+f.supervisor)
	if len(o.Warnings) != 0 {
		t.Fatalf("warning for a supervisor: %q", o.Warnings)
	}
	if st, _ := f.sim.Participant(plivotest.SampleMPCName, f.supervisor); st.CoachMode {
		t.Fatal("supervisor still coaching after uncoach")
	}
}

// A Plivo failure is explained: not found, and busy when the limiter
// cannot grant a token before the deadline.
func TestServiceFailures(t *testing.T) {
	f := newFixture(t, 5, 100, 100)
	o := f.change(t, sup, "mute nosuchcall 101")
	if o.Status() != commands.StatusFailed || plivo.KindOf(o.Results[0].Err) != plivo.NotFound {
		t.Fatalf("unknown MPC: %s", commands.RenderText(o))
	}

	slow := newFixture(t, 5, 0.1, 1) // one token, then one every 10 s
	slow.svc.Timeout = 2 * time.Second
	if o := slow.change(t, sup, "mute test_mpc_1 "+slow.customer); o.Status() != commands.StatusOK {
		t.Fatalf("first call: %s", commands.RenderText(o))
	}
	o = slow.change(t, sup, "unmute test_mpc_1 "+slow.customer)
	if plivo.KindOf(o.Results[0].Err) != plivo.Busy {
		t.Fatalf("second call: %s", commands.RenderText(o))
	}
	if text := commands.RenderText(o); !strings.Contains(text, "busy, try again in") {
		t.Fatalf("busy not explained:\n%s", text)
	}
}

func TestServiceRoster(t *testing.T) {
	f := newFixture(t, 5, 100, 100)
	f.sim.RemoveParticipant(plivotest.SampleMPCName, f.customer)
	mpc, _ := plivo.MPCByName(plivotest.SampleMPCName)
	ro, err := f.svc.Roster(context.Background(), mpc)
	if err != nil {
		t.Fatal(err)
	}
	if len(ro.Live) != 2 || len(ro.Exited) != 1 || ro.Exited[0].MemberID != f.customer {
		t.Fatalf("roster = %d live, %d exited", len(ro.Live), len(ro.Exited))
	}
	if text := commands.RenderRosterText(ro); !strings.Contains(text, "2 live, 1 exited") {
		t.Fatalf("roster text:\n%s", text)
	}
}
