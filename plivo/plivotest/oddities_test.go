package plivotest_test

import (
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/mpcbot/mpcbot/plivo/plivotest"
)

func TestForbidden(t *testing.T) {
	t.Parallel()
	s := plivotest.NewServer(plivotest.WithSampleMPC())
	t.Cleanup(s.Close)
	s.SetForbidden("geo permissions block this destination")
	checkError(t, do(t, s, muteCustomer), 403, "geo permissions block this destination")
	checkError(t, do(t, s, call{method: "GET", path: sample, noAuth: true}), 401, "") // credentials first
	if st, _ := s.Participant(plivotest.SampleMPCName, customer); st.Mute {
		t.Error("a forbidden update was applied")
	}
	s.SetForbidden("")
	if r := do(t, s, muteCustomer); r.status != 200 {
		t.Errorf("after SetForbidden(\"\"): %d %s", r.status, r.raw)
	}
}

func TestAuthErrorShapes(t *testing.T) {
	t.Parallel()
	tests := []struct {
		shape plivotest.AuthErrorShape
		want  string
	}{
		{plivotest.AuthErrorNoAPIID, `{"error":"` + plivotest.ErrTextNoCredentials + `"}`},
		{plivotest.AuthErrorString, `"` + plivotest.ErrTextNoCredentials + `"`},
	}
	for _, tt := range tests {
		s := plivotest.NewServer(plivotest.WithSampleMPC())
		t.Cleanup(s.Close)
		s.SetAuthErrorShape(tt.shape)
		r := do(t, s, call{method: "GET", path: sample, noAuth: true})
		if r.status != 401 || string(r.raw) != tt.want {
			t.Errorf("shape %d: %d %s, want 401 %s", tt.shape, r.status, r.raw, tt.want)
		}
		s.SetAuthErrorShape(plivotest.AuthErrorPlivo)
		checkError(t, do(t, s, call{method: "GET", path: sample, noAuth: true}), 401, plivotest.ErrTextNoCredentials)
	}
}

func TestOversized(t *testing.T) {
	t.Parallel()
	s := plivotest.NewServer(plivotest.WithSampleMPC())
	t.Cleanup(s.Close)
	s.SetOversized(60_000)
	r := do(t, s, call{method: "POST", path: sample + "Participant/" + customer + "/", body: `{"mute":true,"hold":false}`})
	if r.status != 200 {
		t.Fatalf("update: %d", r.status)
	}
	for _, k := range []string{"api_id", "mute", "hold"} {
		v, _ := r.obj[k].(string)
		if n := utf8.RuneCountInString(v); n < 60_000 || !strings.Contains(v, "\u202e") {
			t.Errorf("%s: %d runes, want 60 000 more with odd characters", k, n)
		}
	}
	if id := r.obj["api_id"].(string); !uuidRE.MatchString(id[:36]) {
		t.Errorf("api_id does not start with a uuid: %.50q", id)
	}
	e := do(t, s, call{method: "GET", path: "name_nosuch/"})
	if msg, _ := e.obj["error"].(string); e.status != 404 || !strings.HasPrefix(msg, `MPC "nosuch" not found`) || len(msg) < 60_000 {
		t.Errorf("error answer: %d %.80q", e.status, msg)
	}
	s.SetOversized(0)
	checkError(t, do(t, s, call{method: "GET", path: "name_nosuch/"}), 404, "not found")

	if err := s.AddParticipantWithID(plivotest.SampleMPCName, "agent", strings.Repeat("7", 60_000)); err != nil {
		t.Fatal(err)
	}
	list := do(t, s, call{method: "GET", path: sample + "Participant/"})
	first := list.obj["objects"].([]any)[0].(map[string]any)
	if id, _ := first["member_id"].(string); len(id) != 60_000 {
		t.Errorf("newest participant's member_id has %d characters, want 60 000", len(id))
	}
}

func TestEchoHeaders(t *testing.T) {
	t.Parallel()
	s := plivotest.NewServer(plivotest.WithSampleMPC(), plivotest.WithCredentials("MAECHOECHOECHOECHO00", "to/ken"))
	t.Cleanup(s.Close)
	basic := base64.StdEncoding.EncodeToString([]byte("MAECHOECHOECHOECHO00:to/ken"))

	s.SetEchoHeaders(plivotest.EchoInText)
	r := do(t, s, call{method: "GET", path: "name_nosuch/"})
	msg, _ := r.obj["error"].(string)
	for _, want := range []string{`MPC "nosuch" not found (request: GET http://MAECHOECHOECHOECHO00:to%2Fken@`, "Authorization: Basic " + basic} {
		if r.status != 404 || !strings.Contains(msg, want) {
			t.Errorf("in text: %d %q, want it to contain %q", r.status, msg, want)
		}
	}
	if ok := do(t, s, call{method: "GET", path: sample}); strings.Contains(string(ok.raw), basic) {
		t.Error("a success answer echoes the headers")
	}

	s.SetEchoHeaders(plivotest.EchoNested)
	r = do(t, s, call{method: "GET", path: "name_nosuch/"})
	var body struct {
		APIID string `json:"api_id"`
		Error struct {
			Code    string `json:"code"`
			Request struct {
				Headers map[string][]string `json:"headers"`
			} `json:"request"`
		} `json:"error"`
	}
	if err := json.Unmarshal(r.raw, &body); err != nil || body.Error.Code != `MPC "nosuch" not found` ||
		body.Error.Request.Headers["Authorization"][0] != "Basic "+basic || body.APIID == "" {
		t.Errorf("nested: %s (%v)", r.raw, err)
	}

	s.SetEchoHeaders(plivotest.EchoOff)
	checkError(t, do(t, s, call{method: "GET", path: "name_nosuch/"}), 404, "not found")
}
