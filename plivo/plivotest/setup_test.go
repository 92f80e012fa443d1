package plivotest_test

import (
	"strings"
	"testing"
	"time"

	"github.com/mpcbot/mpcbot/plivo/plivotest"
)

// An MPC whose first participants join with start_mpc_on_enter false is
// initialized until Activate MPC (or a participant with start_mpc_on_enter)
// starts it.
func TestInitializedMPCAndActivate(t *testing.T) {
	t.Parallel()
	clock := newFakeClock(time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC))
	s := plivotest.NewServer(plivotest.WithClock(clock.Now))
	t.Cleanup(s.Close)
	id := s.AddWaitingParticipant("queue", "customer")
	get := func() map[string]any {
		t.Helper()
		r := do(t, s, call{method: "GET", path: "name_queue/"})
		if r.status != 200 {
			t.Fatalf("get: %d %s", r.status, r.raw)
		}
		return r.obj
	}
	if m := get(); m["status"] != "Initialized" || m["start_time"] != nil || m["creation_time"] != "2025-06-01 12:00:00+00:00" {
		t.Errorf("waiting MPC = %v", m)
	}
	p := do(t, s, call{method: "GET", path: "name_queue/Participant/" + id + "/"})
	if p.obj["start_mpc_on_enter"] != false || p.obj["mute"] != false {
		t.Errorf("waiting participant = %v", p.obj)
	}
	// Updates work on a waiting participant.
	if r := do(t, s, call{method: "POST", path: "name_queue/Participant/" + id + "/", body: `{"hold":true}`}); r.status != 200 {
		t.Errorf("update: %d %s", r.status, r.raw)
	}

	bad := []struct{ body, contentType string }{
		{`{"status":"ended"}`, ""},
		{`{"status":["active"]}`, ""}, // the Python SDK's bug
		{`{}`, ""},
		{`status=active`, "application/x-www-form-urlencoded"},
		{`[]`, ""},
	}
	for _, b := range bad {
		checkError(t, do(t, s, call{method: "POST", path: "name_queue/", body: b.body, contentType: b.contentType}), 400, "")
	}
	clock.Advance(time.Minute)
	r := do(t, s, call{method: "POST", path: "name_queue/", body: `{"status":"Active"}`})
	if r.status != 204 || len(r.raw) != 0 {
		t.Fatalf("activate: %d %q, want 204 without body", r.status, r.raw)
	}
	if m := get(); m["status"] != "Active" || m["start_time"] != "2025-06-01 12:01:00+00:00" {
		t.Errorf("activated MPC = %v", m)
	}
	checkError(t, do(t, s, call{method: "POST", path: "name_queue/", body: `{"status":"active"}`}), 404, "initialized")
	applied := 0
	for _, r := range s.Requests() {
		if r.Op == plivotest.OpActivateMPC && r.Applied {
			applied++
		}
	}
	if applied != 1 {
		t.Errorf("%d activations logged as applied, want 1", applied)
	}

	// A participant with start_mpc_on_enter starts a waiting MPC.
	s.AddWaitingParticipant("second", "customer")
	if s.ActivateMPC("nosuch") || s.ActivateMPC("queue") {
		t.Error("ActivateMPC of an unknown or active MPC reported true")
	}
	s.AddParticipant("second", "agent")
	r = do(t, s, call{method: "GET", path: "name_second/"})
	if r.obj["status"] != "Active" {
		t.Errorf("after an agent joined: %v", r.obj["status"])
	}
	s.AddWaitingParticipant("third", "customer")
	if !s.ActivateMPC("third") {
		t.Error("ActivateMPC of an initialized MPC reported false")
	}
}

func TestCreateMPC(t *testing.T) {
	t.Parallel()
	s := plivotest.NewServer(plivotest.WithSampleMPC())
	t.Cleanup(s.Close)
	const id = "AAAAAAAA-BBBB-4CCC-8DDD-EEEEEEEEEEEE"
	info, err := s.CreateMPC(plivotest.MPCSpec{Name: "old", UUID: id, Status: "ended", NoCreationTime: true, NotStarted: true, StayAlone: true})
	if err != nil || info.UUID != strings.ToLower(id) {
		t.Fatalf("CreateMPC = %+v, %v", info, err)
	}
	r := do(t, s, call{method: "GET", path: "uuid_" + info.UUID + "/"})
	want := map[string]any{"creation_time": nil, "start_time": nil, "stay_alone": true, "status": "Ended",
		"termination_cause": "Hangup API Triggered", "termination_cause_code": 3000.0}
	for k, v := range want {
		if r.obj[k] != v {
			t.Errorf("%s = %#v, want %#v", k, r.obj[k], v)
		}
	}
	errs := []plivotest.MPCSpec{
		{},
		{Name: plivotest.SampleMPCName}, // a live MPC has the name
		{Name: "x", Status: "initialized", UUID: id},           // uuid taken
		{Name: "x", UUID: "not-a-uuid"},                        // not a uuid
		{Name: "x", Status: "paused"},                          // unknown status
		{Name: plivotest.SampleMPCName, Status: "initialized"}, // live name again
	}
	for _, spec := range errs {
		if _, err := s.CreateMPC(spec); err == nil {
			t.Errorf("CreateMPC(%+v) succeeded", spec)
		}
	}
	// An ended MPC may reuse a live name.
	if _, err := s.CreateMPC(plivotest.MPCSpec{Name: plivotest.SampleMPCName, Status: "ended"}); err != nil {
		t.Errorf("ended MPC with a live name: %v", err)
	}
	if err := s.AddParticipantWithID(plivotest.SampleMPCName, "agent", "101"); err == nil {
		t.Error("AddParticipantWithID with a taken member id succeeded")
	}
	if err := s.AddParticipantWithID(plivotest.SampleMPCName, "agent", ""); err == nil {
		t.Error("AddParticipantWithID with no member id succeeded")
	}
	if err := s.AddParticipantWithID(plivotest.SampleMPCName, "boss", "7"); err == nil {
		t.Error("AddParticipantWithID with an unknown role succeeded")
	}
}

// The demo's calls: the sample MPC keeps its member ids.
func TestWithSampleCalls(t *testing.T) {
	t.Parallel()
	s := plivotest.NewServer(plivotest.WithSampleCalls(), plivotest.WithSampleMPC())
	t.Cleanup(s.Close)
	if st, ok := s.Participant(plivotest.SampleMPCName, supervisor); !ok || st.Role != "supervisor" {
		t.Errorf("sample supervisor = %+v, %v", st, ok)
	}
	r := do(t, s, call{method: "GET", path: ""})
	got := map[string]string{}
	for _, o := range r.obj["objects"].([]any) {
		m := o.(map[string]any)
		got[m["friendly_name"].(string)] = m["status"].(string)
	}
	want := map[string]string{plivotest.SampleMPCName: "Active", "mpc 1000": "Active", "billing-escalation": "Active",
		"onboarding-queue": "Initialized", "morning-huddle": "Ended"}
	for name, status := range want {
		if got[name] != status {
			t.Errorf("%s: status %q, want %q (all: %v)", name, got[name], status, got)
		}
	}
	if len(got) != len(want) {
		t.Errorf("MPCs %v, want %v", got, want)
	}
	if ps := s.Participants("billing-escalation"); len(ps) != 3 {
		t.Errorf("billing-escalation has %d participants, want 3", len(ps))
	}
}
