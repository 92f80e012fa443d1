package plivotest_test

import (
	"net/http"
	"reflect"
	"strings"
	"testing"

	"github.com/mpcbot/mpcbot/plivo/plivotest"
)

// Members of the sample MPC on a fresh server (WithSampleMPC adds them in
// this order).
const (
	customer   = "101"
	agent      = "102"
	supervisor = "103"
)

const sample = "name_" + plivotest.SampleMPCName + "/"

func TestSampleMPC(t *testing.T) {
	s := plivotest.NewServer(plivotest.WithSampleMPC())
	defer s.Close()
	want := []plivotest.ParticipantState{
		{MemberID: customer, Role: "customer", Live: true},
		{MemberID: agent, Role: "agent", Live: true},
		{MemberID: supervisor, Role: "supervisor", Live: true, CoachMode: true},
	}
	if got := s.Participants(plivotest.SampleMPCName); !reflect.DeepEqual(got, want) {
		t.Errorf("Participants = %+v, want %+v", got, want)
	}
	if len(s.AuthID) != 20 || !strings.HasPrefix(s.AuthID, "MA") {
		t.Errorf("AuthID = %q, want 20 characters starting with MA", s.AuthID)
	}
	if !strings.HasPrefix(s.URL, "http://127.0.0.1:") {
		t.Errorf("URL = %q, want http://127.0.0.1:<port>", s.URL)
	}
}

func TestUpdateParticipantRejects(t *testing.T) {
	tests := []struct {
		name        string
		path        string // relative to the MPC root
		body        string
		contentType string
		status      int
		errText     string
	}{
		{"text/plain body", sample + "Participant/101/", `{"mute":true}`, "text/plain", 400, plivotest.ErrTextContentType},
		{"form body", sample + "Participant/101/", `mute=true`, "application/x-www-form-urlencoded", 400, plivotest.ErrTextContentType},
		{"json but wrong content type", sample + "Participant/101/", `{"mute":true}`, "application/jsonx", 400, plivotest.ErrTextContentType},
		{"no body no content type", sample + "Participant/101/", ``, "", 400, plivotest.ErrTextContentType},
		{"empty json body", sample + "Participant/101/", ``, "application/json", 400, "JSON object"},
		{"not json", sample + "Participant/101/", `mute`, "", 400, "JSON object"},
		{"broken json", sample + "Participant/101/", `{"mute":`, "", 400, "not valid JSON"},
		{"json array", sample + "Participant/101/", `[{"mute":true}]`, "", 400, "JSON object"},
		{"json null", sample + "Participant/101/", `null`, "", 400, "JSON object"},
		{"mute as string", sample + "Participant/101/", `{"mute":"true"}`, "", 400, "mute must be a boolean"},
		{"mute as number", sample + "Participant/101/", `{"mute":1}`, "", 400, "mute must be a boolean"},
		{"mute null", sample + "Participant/101/", `{"mute":null}`, "", 400, "mute must be a boolean"},
		{"hold as string", sample + "Participant/101/", `{"hold":"yes"}`, "", 400, "hold must be a boolean"},
		{"coach_mode as number", sample + "Participant/103/", `{"coach_mode":0}`, "", 400, "coach_mode must be a boolean"},
		{"valid mute, bad hold", sample + "Participant/101/", `{"mute":true,"hold":[]}`, "", 400, "hold must be a boolean"},
		{"bad disable_state_change_sound", sample + "Participant/101/", `{"mute":true,"disable_state_change_sound":"x"}`, "", 400, "disable_state_change_sound must be a boolean"},
		{"no field", sample + "Participant/101/", `{}`, "", 400, "at least one of mute, hold or coach_mode"},
		{"only unknown fields", sample + "Participant/101/", `{"volume":true}`, "", 400, "at least one of mute, hold or coach_mode"},
		{"async callback", sample + "Participant/101/", `{"mute":true,"callback_url":"http://x/"}`, "", 400, "callback_url"},
		{"coach_mode for all", sample + "Participant/all/", `{"coach_mode":true}`, "", 400, plivotest.ErrTextCoachModeAll},
		{"coach_mode for ALL", sample + "Participant/ALL/", `{"coach_mode":false,"mute":true}`, "", 400, plivotest.ErrTextCoachModeAll},
		{"coach_mode for a list", sample + "Participant/102,103/", `{"coach_mode":false}`, "", 400, plivotest.ErrTextCoachModeAll},
		{"unknown MPC name", "name_nosuch/Participant/101/", `{"mute":true}`, "", 404, `MPC "nosuch" not found`},
		{"unknown MPC uuid", "uuid_00000000-0000-4000-8000-000000000000/Participant/101/", `{"mute":true}`, "", 404, `00000000-0000-4000-8000-000000000000`},
		{"MPC without prefix", plivotest.SampleMPCName + "/Participant/101/", `{"mute":true}`, "", 404, "name_"},
		{"unknown member", sample + "Participant/999/", `{"mute":true}`, "", 404, `member "999" not found`},
		{"non-digit member", sample + "Participant/abc/", `{"mute":true}`, "", 404, `member "abc" not found`},
		{"list with unknown member", sample + "Participant/101,999/", `{"mute":true}`, "", 404, `member "999" not found`},
		{"empty element in list", sample + "Participant/101,/", `{"mute":true}`, "", 404, `member "" not found`},
		{"member who left", sample + "Participant/104/", `{"mute":true}`, "", 404, `member "104" has left`},
		{"list with member who left", sample + "Participant/101,104/", `{"hold":true}`, "", 404, `member "104" has left`},
		{"member of another MPC", sample + "Participant/105/", `{"mute":true}`, "", 404, `member "105" not found`},
		{"ended MPC by name", "name_ended/Participant/106/", `{"mute":true}`, "", 404, `MPC "ended" not found`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := plivotest.NewServer(plivotest.WithSampleMPC())
			defer s.Close()
			left := s.AddParticipant(plivotest.SampleMPCName, "agent") // 104
			s.RemoveParticipant(plivotest.SampleMPCName, left)
			s.AddParticipant("other", "agent") // 105
			s.AddParticipant("ended", "agent") // 106
			s.EndMPC("ended")
			before := s.Participants(plivotest.SampleMPCName)

			r := do(t, s, call{method: http.MethodPost, path: tt.path, body: tt.body, contentType: tt.contentType})
			checkError(t, r, tt.status, tt.errText)

			if after := s.Participants(plivotest.SampleMPCName); !reflect.DeepEqual(after, before) {
				t.Errorf("state changed by a rejected request:\n before %+v\n after  %+v", before, after)
			}
			if u := s.AppliedUpdates(); len(u) != 0 {
				t.Errorf("AppliedUpdates = %+v, want none", u)
			}
			log := s.Requests()
			if len(log) != 1 || log[0].Status != tt.status || log[0].Applied || log[0].Fault {
				t.Errorf("log = %+v, want one unapplied request with status %d", log, tt.status)
			}
		})
	}
}

func TestUpdateParticipantApplies(t *testing.T) {
	type state = plivotest.ParticipantState
	live := func(id, role string, mute, hold, coach bool) state {
		return state{MemberID: id, Role: role, Live: true, Mute: mute, Hold: hold, CoachMode: coach}
	}
	const mpcPrefix = "MPC: " + plivotest.SampleMPCName + " "
	tests := []struct {
		name   string
		member string // member segment; "uuid" in path selects addressing by uuid
		byUUID bool
		body   string
		want   []state // customer, agent, supervisor, exited agent
		result map[string]string
	}{
		{
			name: "mute one", member: customer, body: `{"mute":true}`,
			want: []state{live(customer, "customer", true, false, false), live(agent, "agent", false, false, false),
				live(supervisor, "supervisor", false, false, true), {MemberID: "104", Role: "agent"}},
			result: map[string]string{"mute": mpcPrefix + "mute/unmute member(s) succeeded"},
		},
		{
			name: "hold all skips exited entries", member: "all", body: `{"hold":true,"mute":true}`,
			want: []state{live(customer, "customer", true, true, false), live(agent, "agent", true, true, false),
				live(supervisor, "supervisor", true, true, true), {MemberID: "104", Role: "agent"}},
			result: map[string]string{
				"mute": mpcPrefix + "mute/unmute member(s) succeeded",
				"hold": mpcPrefix + "hold/unhold member(s) succeeded",
			},
		},
		{
			name: "coach_mode off for the supervisor", member: supervisor, body: `{"coach_mode":false}`,
			want: []state{live(customer, "customer", false, false, false), live(agent, "agent", false, false, false),
				live(supervisor, "supervisor", false, false, false), {MemberID: "104", Role: "agent"}},
			result: map[string]string{"coach_mode": mpcPrefix + "coach_mode enable/disable succeeded"},
		},
		{
			name: "coach_mode on an agent is accepted and ignored", member: agent, body: `{"coach_mode":true}`,
			want: []state{live(customer, "customer", false, false, false), live(agent, "agent", false, false, false),
				live(supervisor, "supervisor", false, false, true), {MemberID: "104", Role: "agent"}},
			result: map[string]string{"coach_mode": mpcPrefix + "coach_mode enable/disable succeeded"},
		},
		{
			name: "all three fields by uuid name the MPC by friendly name", member: supervisor, byUUID: true,
			body: `{"mute":true,"hold":false,"coach_mode":false}`,
			want: []state{live(customer, "customer", false, false, false), live(agent, "agent", false, false, false),
				live(supervisor, "supervisor", true, false, false), {MemberID: "104", Role: "agent"}},
			result: map[string]string{
				"mute":       mpcPrefix + "mute/unmute member(s) succeeded",
				"hold":       mpcPrefix + "hold/unhold member(s) succeeded",
				"coach_mode": mpcPrefix + "coach_mode enable/disable succeeded",
			},
		},
		{
			name: "comma-separated list", member: customer + "," + agent, body: `{"mute":true}`,
			want: []state{live(customer, "customer", true, false, false), live(agent, "agent", true, false, false),
				live(supervisor, "supervisor", false, false, true), {MemberID: "104", Role: "agent"}},
			result: map[string]string{"mute": mpcPrefix + "mute/unmute member(s) succeeded"},
		},
		{
			name: "content type with charset, unknown keys ignored", member: agent,
			body: `{"hold":true,"disable_state_change_sound":true,"volume":3}`,
			want: []state{live(customer, "customer", false, false, false), live(agent, "agent", false, true, false),
				live(supervisor, "supervisor", false, false, true), {MemberID: "104", Role: "agent"}},
			result: map[string]string{"hold": mpcPrefix + "hold/unhold member(s) succeeded"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := plivotest.NewServer(plivotest.WithSampleMPC())
			defer s.Close()
			s.AddParticipant(plivotest.SampleMPCName, "agent")
			s.RemoveParticipant(plivotest.SampleMPCName, "104")
			mpc := sample
			if tt.byUUID {
				info, _ := s.MPC(plivotest.SampleMPCName)
				mpc = "uuid_" + info.UUID + "/"
			}
			r := do(t, s, call{method: http.MethodPost, path: mpc + "Participant/" + tt.member + "/", body: tt.body,
				contentType: "application/json; charset=utf-8"})
			if r.status != http.StatusOK {
				t.Fatalf("status = %d, want 200; body %s", r.status, r.raw)
			}
			if id, _ := r.obj["api_id"].(string); !uuidRE.MatchString(id) {
				t.Errorf("api_id = %v, want a uuid", r.obj["api_id"])
			}
			got := map[string]string{}
			for k, v := range r.obj {
				if k != "api_id" {
					got[k], _ = v.(string)
				}
			}
			if !reflect.DeepEqual(got, tt.result) {
				t.Errorf("results = %v, want %v", got, tt.result)
			}
			if st := s.Participants(plivotest.SampleMPCName); !reflect.DeepEqual(st, tt.want) {
				t.Errorf("state = %+v\nwant    %+v", st, tt.want)
			}
			applied := s.AppliedUpdates()
			if len(applied) != 1 || applied[0].Body == nil || string(applied[0].Body) != tt.body || applied[0].Op != plivotest.OpUpdateParticipant {
				t.Errorf("AppliedUpdates = %+v, want the one request", applied)
			}
		})
	}
}

// TestUpdateThenList checks that a change is visible through List and Get
// Participant over HTTP.
func TestUpdateThenList(t *testing.T) {
	s := plivotest.NewServer(plivotest.WithSampleMPC())
	defer s.Close()
	if r := do(t, s, call{method: http.MethodPost, path: sample + "Participant/" + agent + "/", body: `{"mute":true}`}); r.status != 200 {
		t.Fatalf("update: %d %s", r.status, r.raw)
	}
	list := do(t, s, call{method: http.MethodGet, path: sample + "Participant/"})
	objects, _ := list.obj["objects"].([]any)
	if len(objects) != 3 {
		t.Fatalf("objects = %d, want 3; body %s", len(objects), list.raw)
	}
	mutes := map[string]any{}
	for _, o := range objects {
		p := o.(map[string]any)
		mutes[p["member_id"].(string)] = p["mute"]
	}
	want := map[string]any{customer: false, agent: true, supervisor: false}
	if !reflect.DeepEqual(mutes, want) {
		t.Errorf("mute by member = %v, want %v", mutes, want)
	}
	get := do(t, s, call{method: http.MethodGet, path: sample + "Participant/" + agent + "/"})
	if get.status != 200 || get.obj["mute"] != true || get.obj["member_id"] != agent {
		t.Errorf("get participant = %d %s, want mute true", get.status, get.raw)
	}
}

func TestUpdateKnobs(t *testing.T) {
	tests := []struct {
		name     string
		status   int
		spelling string
		wantCode int
		wantMute string
	}{
		{"defaults", 0, "", 200, "MPC: test_mpc_1 mute/unmute member(s) succeeded"},
		{"202 and QA spelling", 202, "succeded", 202, "MPC: test_mpc_1 mute/unmute member(s) succeded"},
		{"invalid status ignored", 500, "", 200, "MPC: test_mpc_1 mute/unmute member(s) succeeded"},
		{"204 ignored", 204, "", 200, "MPC: test_mpc_1 mute/unmute member(s) succeeded"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := plivotest.NewServer(plivotest.WithSampleMPC())
			defer s.Close()
			if tt.status != 0 {
				s.SetUpdateStatus(tt.status)
			}
			if tt.spelling != "" {
				s.SetResultSpelling(tt.spelling)
			}
			r := do(t, s, call{method: http.MethodPost, path: sample + "Participant/101/", body: `{"mute":true}`})
			if r.status != tt.wantCode || r.obj["mute"] != tt.wantMute {
				t.Errorf("got %d %s, want %d with mute %q", r.status, r.raw, tt.wantCode, tt.wantMute)
			}
			// Errors keep their own status whatever the knob says.
			e := do(t, s, call{method: http.MethodPost, path: sample + "Participant/999/", body: `{"mute":true}`})
			checkError(t, e, 404, "999")
		})
	}
}
