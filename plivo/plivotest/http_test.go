package plivotest_test

import (
	"net/url"
	"strings"
	"testing"

	"github.com/mpcbot/mpcbot/plivo/plivotest"
)

func TestAuthAndRouting(t *testing.T) {
	const wrongToken = "wrong-token-SHOULD-NEVER-BE-ECHOED-4242"
	tests := []struct {
		name    string
		c       call
		status  int
		errText string
		allow   string
	}{
		{"no credentials", call{method: "GET", path: sample, noAuth: true}, 401, plivotest.ErrTextNoCredentials, ""},
		{"wrong token", call{method: "GET", path: sample, pass: wrongToken}, 401, plivotest.ErrTextBadCredentials, ""},
		{"wrong auth id", call{method: "GET", path: sample, user: "MAWRONGWRONGWRONG000"}, 401, plivotest.ErrTextBadCredentials, ""},
		{"wrong token on update", call{method: "POST", path: sample + "Participant/101/", body: `{"mute":true}`, pass: wrongToken}, 401, plivotest.ErrTextBadCredentials, ""},
		{"no credentials on unknown path", call{method: "GET", path: "/nowhere/", noAuth: true}, 401, plivotest.ErrTextNoCredentials, ""},
		{"other account in path", call{method: "GET", path: "/v1/Account/MAOTHEROTHEROTHER000/MultiPartyCall/" + sample}, 401, plivotest.ErrTextWrongAccount, ""},
		{"no trailing slash on MPC", call{method: "GET", path: strings.TrimSuffix(sample, "/")}, 404, "end with '/'", ""},
		{"no trailing slash on update", call{method: "POST", path: sample + "Participant/101", body: `{"mute":true}`}, 404, "end with '/'", ""},
		{"no trailing slash on list", call{method: "GET", path: sample + "Participant"}, 404, "end with '/'", ""},
		{"unknown path", call{method: "GET", path: "/nowhere/"}, 404, "unknown path", ""},
		{"unknown API", call{method: "GET", path: "/v1/Account/" + plivotest.DefaultAuthID + "/Call/"}, 404, "unknown path", ""},
		{"unknown sub-resource", call{method: "GET", path: sample + "Record/"}, 404, "unknown path", ""},
		{"too deep", call{method: "GET", path: sample + "Participant/101/Mute/"}, 404, "unknown path", ""},
		{"empty segment", call{method: "GET", path: sample + "Participant//"}, 404, "empty path segment", ""},
		{"empty MPC name", call{method: "GET", path: "name_/"}, 404, "MPC name is empty", ""},
		{"PUT on participant", call{method: "PUT", path: sample + "Participant/101/", body: `{"mute":true}`}, 405, "PUT", "GET, POST, DELETE"},
		{"PATCH on participant list", call{method: "PATCH", path: sample + "Participant/"}, 405, "PATCH", "GET, POST"},
		{"POST to the MPC list (not an endpoint)", call{method: "POST", path: "", body: `{}`}, 405, "POST", "GET"},
		{"DELETE on the MPC list", call{method: "DELETE", path: ""}, 405, "DELETE", "GET"},
		{"add participant is not simulated", call{method: "POST", path: sample + "Participant/", body: `{"role":"agent"}`}, 501, "not simulated", ""},
		{"activate an active MPC", call{method: "POST", path: sample, body: `{"status":"active"}`}, 404, "initialized", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := plivotest.NewServer(plivotest.WithSampleMPC())
			defer s.Close()
			r := do(t, s, tt.c)
			checkError(t, r, tt.status, tt.errText)
			if got := r.header.Get("Allow"); got != tt.allow {
				t.Errorf("Allow = %q, want %q", got, tt.allow)
			}
			for _, secret := range []string{wrongToken, s.AuthToken} {
				if strings.Contains(string(r.raw), secret) {
					t.Errorf("body echoes a token: %s", r.raw)
				}
				for k, vs := range r.header {
					if strings.Contains(strings.Join(vs, " "), secret) {
						t.Errorf("header %s echoes a token", k)
					}
				}
			}
			if st, _ := s.Participant(plivotest.SampleMPCName, customer); st.Mute {
				t.Error("a rejected request changed state")
			}
		})
	}
}

func TestCredentialsOption(t *testing.T) {
	s, err := plivotest.Start(plivotest.WithSampleMPC(), plivotest.WithCredentials("MACUSTOMCUSTOMCUSTOM", "custom-token"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if s.AuthID != "MACUSTOMCUSTOMCUSTOM" || s.AuthToken != "custom-token" {
		t.Fatalf("credentials = %q/%q", s.AuthID, s.AuthToken)
	}
	if r := do(t, s, call{method: "GET", path: sample}); r.status != 200 {
		t.Errorf("with custom credentials: %d %s", r.status, r.raw)
	}
	r := do(t, s, call{method: "GET", path: sample, user: plivotest.DefaultAuthID, pass: plivotest.DefaultAuthToken})
	checkError(t, r, 401, "authentication failed")
}

// TestNames addresses MPCs whose friendly names need percent-encoding, and
// checks that an encoded '/' never splits a path segment.
func TestNames(t *testing.T) {
	tests := []struct {
		name   string // friendly name of the MPC to create
		seg    string // {mpc} path segment to send
		suffix string // rest of the path
		status int
		want   string // friendly_name in the answer, or error text
	}{
		{"mpc 1000", "name_" + url.PathEscape("mpc 1000"), "", 200, "mpc 1000"},
		{"Östermalm", "name_" + url.PathEscape("Östermalm"), "", 200, "Östermalm"},
		{"Gasteiz / Vitoria", "name_" + url.PathEscape("Gasteiz / Vitoria"), "", 200, "Gasteiz / Vitoria"},
		{"a/b", "name_a%2Fb", "", 200, "a/b"},
		{"a/b", "name_a%2fb", "", 200, "a/b"},
		// An MPC "a" exists too: "a%2FParticipant" must not reach a's participant list.
		{"a", "name_a%2FParticipant", "", 404, `MPC "a/Participant" not found`},
		{"a", "name_a%2FParticipant%2F", "", 404, `MPC "a/Participant/" not found`},
		// Decoded once only: %252F is the literal name "a%2Fb".
		{"a/b", "name_a%252Fb", "", 404, `MPC "a%2Fb" not found`},
		{"a%2Fb", "name_a%252Fb", "", 200, "a%2Fb"},
		{"mpc 1000", "name_mpc+1000", "", 404, `MPC "mpc+1000" not found`},
		{"mpc 1000", "name_MPC%201000", "", 404, `MPC "MPC 1000" not found`},
	}
	for _, tt := range tests {
		t.Run(tt.seg, func(t *testing.T) {
			s := plivotest.NewServer()
			defer s.Close()
			s.AddParticipant(tt.name, "agent")
			s.AddParticipant("a", "agent")
			r := do(t, s, call{method: "GET", path: tt.seg + "/" + tt.suffix})
			if tt.status != 200 {
				checkError(t, r, tt.status, tt.want)
				return
			}
			if r.status != 200 || r.obj["friendly_name"] != tt.want {
				t.Fatalf("got %d %s, want friendly_name %q", r.status, r.raw, tt.want)
			}
			wantURI := "/v1/Account/" + s.AuthID + "/MultiPartyCall/" + tt.seg + "/"
			if r.obj["resource_uri"] != wantURI {
				t.Errorf("resource_uri = %v, want %s (echoing the request's form)", r.obj["resource_uri"], wantURI)
			}
			// The participant list of the same MPC, and an update through it.
			list := do(t, s, call{method: "GET", path: tt.seg + "/Participant/"})
			objects, _ := list.obj["objects"].([]any)
			if list.status != 200 || len(objects) != 1 {
				t.Fatalf("list: %d %s", list.status, list.raw)
			}
			id := objects[0].(map[string]any)["member_id"].(string)
			up := do(t, s, call{method: "POST", path: tt.seg + "/Participant/" + id + "/", body: `{"mute":true}`})
			if want := "MPC: " + tt.want + " mute/unmute member(s) succeeded"; up.status != 200 || up.obj["mute"] != want {
				t.Errorf("update: %d %s, want mute %q", up.status, up.raw, want)
			}
			if st, _ := s.Participant(tt.want, id); !st.Mute {
				t.Errorf("participant %s of %q not muted", id, tt.want)
			}
			if got := s.Requests()[0].Path; !strings.Contains(got, tt.seg) {
				t.Errorf("logged path %q, want the escaped segment %q", got, tt.seg)
			}
		})
	}
}

func TestGetMPCAndParticipant(t *testing.T) {
	s := plivotest.NewServer(plivotest.WithSampleMPC())
	defer s.Close()
	s.RemoveParticipant(plivotest.SampleMPCName, customer)
	info := s.AddMPC("done")
	s.AddParticipant("done", "agent") // 104
	s.EndMPC("done")
	live, _ := s.MPC(plivotest.SampleMPCName)

	tests := []struct {
		name   string
		path   string
		status int
		check  map[string]any // expected values; nil value = JSON null
		err    string
	}{
		{"live MPC by name", sample, 200, map[string]any{"status": "Active", "friendly_name": plivotest.SampleMPCName, "mpc_uuid": live.UUID, "end_time": nil, "recording": "not-recording"}, ""},
		{"live MPC by uuid", "uuid_" + live.UUID + "/", 200, map[string]any{"status": "Active", "friendly_name": plivotest.SampleMPCName}, ""},
		{"live MPC by upper-case uuid", "uuid_" + strings.ToUpper(live.UUID) + "/", 200, map[string]any{"mpc_uuid": live.UUID}, ""},
		{"ended MPC by uuid", "uuid_" + info.UUID + "/", 200, map[string]any{"status": "Ended", "friendly_name": "done", "termination_cause": "Hangup API Triggered", "termination_cause_code": 3000.0, "recording": nil}, ""},
		{"ended MPC by name", "name_done/", 404, nil, `MPC "done" not found: it has ended`},
		{"unknown MPC", "name_nosuch/", 404, nil, `MPC "nosuch" not found`},
		{"live participant", sample + "Participant/" + agent + "/", 200, map[string]any{"member_id": agent, "role": "agent", "mute": false, "hold": false, "coach_mode": false, "exit_time": nil, "exit_cause": nil}, ""},
		{"supervisor", sample + "Participant/" + supervisor + "/", 200, map[string]any{"role": "supervisor", "coach_mode": true}, ""},
		{"exited participant", sample + "Participant/" + customer + "/", 200, map[string]any{"member_id": customer, "mute": nil, "hold": nil, "coach_mode": nil, "exit_cause": "Participant Call Hangup", "billed_amount": "0.00500", "billed_duration": 60.0}, ""},
		{"participant of an ended MPC by uuid", "uuid_" + info.UUID + "/Participant/104/", 200, map[string]any{"exit_cause": "Multiparty Call Ended", "mute": nil}, ""},
		{"unknown participant", sample + "Participant/999/", 404, nil, `member "999" not found in MPC "test_mpc_1"`},
		{"participant of another MPC", sample + "Participant/104/", 404, nil, `member "104" not found`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := do(t, s, call{method: "GET", path: tt.path})
			if tt.status != 200 {
				checkError(t, r, tt.status, tt.err)
				return
			}
			if r.status != 200 {
				t.Fatalf("status %d: %s", r.status, r.raw)
			}
			for k, want := range tt.check {
				if got, ok := r.obj[k]; !ok || got != want {
					t.Errorf("%s = %#v (present %v), want %#v", k, got, ok, want)
				}
			}
			if id, _ := r.obj["api_id"].(string); !uuidRE.MatchString(id) {
				t.Errorf("api_id = %v", r.obj["api_id"])
			}
		})
	}
}

func TestKickAndEnd(t *testing.T) {
	s := plivotest.NewServer(plivotest.WithSampleMPC())
	defer s.Close()
	r := do(t, s, call{method: "DELETE", path: sample + "Participant/" + customer + "/"})
	if r.status != 204 || len(r.raw) != 0 {
		t.Fatalf("kick: %d %q, want 204 without body", r.status, r.raw)
	}
	if st, _ := s.Participant(plivotest.SampleMPCName, customer); st.Live {
		t.Error("kicked participant still live")
	}
	checkError(t, do(t, s, call{method: "DELETE", path: sample + "Participant/" + customer + "/"}), 404, "has left")
	get := do(t, s, call{method: "GET", path: sample + "Participant/" + customer + "/"})
	if get.obj["exit_cause"] != plivotest.ExitKicked {
		t.Errorf("exit_cause = %v, want %q", get.obj["exit_cause"], plivotest.ExitKicked)
	}

	info, _ := s.MPC(plivotest.SampleMPCName)
	if r := do(t, s, call{method: "DELETE", path: sample}); r.status != 204 {
		t.Fatalf("end: %d %s", r.status, r.raw)
	}
	for _, p := range s.Participants(plivotest.SampleMPCName) {
		if p.Live {
			t.Errorf("participant %s live after End MPC", p.MemberID)
		}
	}
	checkError(t, do(t, s, call{method: "GET", path: sample}), 404, "has ended")
	checkError(t, do(t, s, call{method: "DELETE", path: "uuid_" + info.UUID + "/"}), 404, "already ended")
	checkError(t, do(t, s, call{method: "POST", path: "uuid_" + info.UUID + "/Participant/all/", body: `{"mute":true}`}), 404, "has ended")
	if n := len(s.AppliedUpdates()); n != 0 {
		t.Errorf("AppliedUpdates = %d, want 0 (kick and end are not updates)", n)
	}
	applied := 0
	for _, r := range s.Requests() {
		if r.Applied {
			applied++
		}
	}
	if applied != 2 {
		t.Errorf("applied requests = %d, want 2 (kick, end)", applied)
	}
}

func TestListMPCs(t *testing.T) {
	s := plivotest.NewServer()
	defer s.Close()
	s.AddMPC("one")
	s.AddMPC("two")
	s.EndMPC("one")
	tests := []struct {
		query  string
		status int
		names  []string
	}{
		{"", 200, []string{"two", "one"}},
		{"status=ended", 200, []string{"one"}},
		{"status=Active", 200, []string{"two"}},
		{"friendly_name=one", 200, []string{"one"}},
		{"status=bogus", 400, nil},
		{"limit=0", 400, nil},
		{"limit=1", 200, []string{"two"}},
		{"limit=1&offset=1", 200, []string{"one"}},
	}
	for _, tt := range tests {
		t.Run(tt.query, func(t *testing.T) {
			r := do(t, s, call{method: "GET", path: "?" + tt.query})
			if tt.status != 200 {
				checkError(t, r, tt.status, "")
				return
			}
			objects, _ := r.obj["objects"].([]any)
			var names []string
			for _, o := range objects {
				m := o.(map[string]any)
				names = append(names, m["friendly_name"].(string))
				if uri, _ := m["resource_uri"].(string); !strings.Contains(uri, "/uuid_"+m["mpc_uuid"].(string)+"/") {
					t.Errorf("resource_uri %q does not use the uuid", uri)
				}
			}
			if strings.Join(names, ",") != strings.Join(tt.names, ",") {
				t.Errorf("names = %v, want %v", names, tt.names)
			}
		})
	}
}

func TestSetupHelpers(t *testing.T) {
	s := plivotest.NewServer()
	defer s.Close()
	if id := s.AddParticipant("x", "Manager"); id != "" {
		t.Errorf("unknown role: id %q, want \"\"", id)
	}
	if id := s.AddParticipant("", "agent"); id != "" {
		t.Errorf("empty MPC name: id %q, want \"\"", id)
	}
	if info := s.AddMPC(""); info != (plivotest.MPCInfo{}) {
		t.Errorf("AddMPC(\"\") = %+v", info)
	}
	a := s.AddMPC("x")
	if b := s.AddMPC("x"); b != a {
		t.Errorf("AddMPC twice = %+v and %+v, want the same live MPC", a, b)
	}
	if !uuidRE.MatchString(a.UUID) {
		t.Errorf("UUID %q", a.UUID)
	}
	ids := []string{s.AddParticipant("x", "SUPERVISOR"), s.AddParticipant("y", "Customer")}
	if ids[0] != "101" || ids[1] != "102" {
		t.Errorf("member ids = %v, want 101 102 (unique per server)", ids)
	}
	if st, ok := s.Participant("x", "101"); !ok || st.Role != "supervisor" || !st.CoachMode {
		t.Errorf("supervisor = %+v %v", st, ok)
	}
	s.EndMPC("x")
	c := s.AddMPC("x")
	if c.UUID == a.UUID {
		t.Error("a new MPC after the end reused the UUID")
	}
	if got, _ := s.MPC("x"); got != c {
		t.Errorf("MPC(x) = %+v, want the live one %+v", got, c)
	}
	if _, ok := s.Participant("nosuch", "101"); ok {
		t.Error("Participant of an unknown MPC found")
	}
	if p := s.Participants("nosuch"); p != nil {
		t.Errorf("Participants(nosuch) = %v", p)
	}
	s.RemoveParticipant("nosuch", "1") // ignored, no panic
}
