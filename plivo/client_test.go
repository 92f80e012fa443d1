package plivo

import (
	"context"
	"encoding/json"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"golang.org/x/time/rate"
)

func TestNewValidatesConfig(t *testing.T) {
	ok := Config{AuthID: testAuthID, AuthToken: testAuthToken}
	tests := []struct {
		name    string
		mod     func(*Config)
		wantErr string // substring; "" = valid
	}{
		{"defaults", func(*Config) {}, ""},
		{"no auth id", func(c *Config) { c.AuthID = "" }, "auth id is empty"},
		{"no token", func(c *Config) { c.AuthToken = "" }, "auth token is empty"},
		{"control char in auth id", func(c *Config) { c.AuthID = "MA\nX" }, "control"},
		{"bad url", func(c *Config) { c.BaseURL = "http://[::1" + testAuthToken }, "does not parse"},
		{"ftp url", func(c *Config) { c.BaseURL = "ftp://api.plivo.com" }, "http or https"},
		{"no host", func(c *Config) { c.BaseURL = "https:///v1" }, "no host"},
		{"credentials in url", func(c *Config) { c.BaseURL = "https://MA:" + testAuthToken + "@api.plivo.com" }, "must not contain credentials"},
		{"query in url", func(c *Config) { c.BaseURL = "https://api.plivo.com/?x=" + testAuthToken }, "query or fragment"},
		{"negative rate", func(c *Config) { c.Rate = -1 }, "rate must be > 0"},
		{"NaN rate", func(c *Config) { c.Rate = rate.Limit(math.NaN()) }, "rate must be > 0"},
		{"negative burst", func(c *Config) { c.Burst = -1 }, "burst must be >= 1"},
		{"negative timeout", func(c *Config) { c.Timeout = -time.Second }, "timeout must be > 0"},
		{"backoff max below base", func(c *Config) { c.BackoffBase = time.Second; c.BackoffMax = time.Millisecond }, "below backoff base"},
		{"explicit values", func(c *Config) {
			c.BaseURL = "http://127.0.0.1:8080/prefix/"
			c.Rate, c.Burst, c.Timeout = 2.5, 3, time.Second
		}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := ok
			tt.mod(&cfg)
			c, err := New(cfg)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("New: %v", err)
				}
				if c.Credentials() != CredentialsUnknown {
					t.Errorf("new client credentials = %v, want unknown", c.Credentials())
				}
				return
			}
			if err == nil {
				t.Fatalf("New succeeded, want error containing %q", tt.wantErr)
			}
			if !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("error %q does not contain %q", err, tt.wantErr)
			}
			if strings.Contains(err.Error(), testAuthToken) {
				t.Errorf("error %q contains the auth token", err)
			}
		})
	}
}

func TestNewDefaults(t *testing.T) {
	c, err := New(Config{AuthID: testAuthID, AuthToken: testAuthToken})
	if err != nil {
		t.Fatal(err)
	}
	if got := c.base.String(); got != DefaultBaseURL {
		t.Errorf("base = %q, want %q", got, DefaultBaseURL)
	}
	want, _ := NewGCRA(DefaultRate, DefaultBurst)
	if l, ok := c.limiter.(*LocalLimiter); !ok || l.gcra != want {
		t.Errorf("limiter = %#v, want a local bucket %+v (rate %v, burst %d)", c.limiter, want, DefaultRate, DefaultBurst)
	}
	if _, ok := c.inFlight.(*LocalInFlight); !ok {
		t.Errorf("in-flight log = %T, want *LocalInFlight", c.inFlight)
	}
	if c.timeout != DefaultTimeout || c.backoffBase != DefaultBackoffBase || c.backoffMax != DefaultBackoffMax || c.callTimeout != DefaultCallTimeout {
		t.Errorf("durations = %v %v %v %v", c.timeout, c.backoffBase, c.backoffMax, c.callTimeout)
	}
}

func TestNewDoesNotFollowRedirects(t *testing.T) {
	other := sequenceServer(t, reply{status: 200, body: `{"mute":"x"}`})
	srv := sequenceServer(t, reply{status: http.StatusFound, header: map[string]string{"Location": other.URL + "/"}})
	c, _, _ := newTestClient(t, srv.URL, nil)
	_, err := c.UpdateParticipant(withTimeout(t, 5*time.Second), mustMPC(t, "m"), "1", ParticipantUpdate{Mute: ptr(true)})
	e := mustError(t, err, Other)
	if e.Status != http.StatusFound {
		t.Errorf("status = %d, want 302", e.Status)
	}
	if other.Count() != 0 {
		t.Errorf("the redirect was followed (%d requests elsewhere)", other.Count())
	}
}

func TestRequestURLEscaping(t *testing.T) {
	const acct = "/v1/Account/" + testAuthID + "/MultiPartyCall/"
	tests := []struct {
		name       string
		base       string // path appended to the server URL
		authID     string
		mpc        func(t *testing.T) MPC
		member     Member
		wantURI    string
		wantPath   string // decoded path as the server sees it
		wantPieces int    // path segments after splitting the decoded path on "/"
	}{
		{
			name: "plain name", mpc: func(t *testing.T) MPC { return mustMPC(t, "test_mpc_1") }, member: "209",
			wantURI: acct + "name_test_mpc_1/Participant/209/", wantPath: acct + "name_test_mpc_1/Participant/209/",
		},
		{
			name: "space", mpc: func(t *testing.T) MPC { return mustMPC(t, "mpc 1000") }, member: "all",
			wantURI: acct + "name_mpc%201000/Participant/all/", wantPath: acct + "name_mpc 1000/Participant/all/",
		},
		{
			name: "non-ASCII", mpc: func(t *testing.T) MPC { return mustMPC(t, "Östermalm Tikrīt") }, member: "7",
			wantURI:  acct + "name_%C3%96stermalm%20Tikr%C4%ABt/Participant/7/",
			wantPath: acct + "name_Östermalm Tikrīt/Participant/7/",
		},
		{
			name: "reserved characters", mpc: func(t *testing.T) MPC { return mustMPC(t, "a;b,c:d+e&f=g@h") }, member: "1",
			wantURI:  acct + "name_a%3Bb%2Cc:d+e&f=g@h/Participant/1/",
			wantPath: acct + "name_a;b,c:d+e&f=g@h/Participant/1/",
		},
		{
			name: "uuid", mpc: func(t *testing.T) MPC { return mustUUID(t, "18905D56-79C8-41D4-A840-25FEFF71070E") }, member: "49",
			wantURI:  acct + "uuid_18905d56-79c8-41d4-a840-25feff71070e/Participant/49/",
			wantPath: acct + "uuid_18905d56-79c8-41d4-a840-25feff71070e/Participant/49/",
		},
		{
			name: "member ALL normalised", mpc: func(t *testing.T) MPC { return mustMPC(t, "m") }, member: "ALL",
			wantURI: acct + "name_m/Participant/all/", wantPath: acct + "name_m/Participant/all/",
		},
		{
			name: "base URL with path prefix and trailing slash", base: "/proxy/plivo/",
			mpc: func(t *testing.T) MPC { return mustMPC(t, "m") }, member: "5",
			wantURI: "/proxy/plivo" + acct + "name_m/Participant/5/", wantPath: "/proxy/plivo" + acct + "name_m/Participant/5/",
			wantPieces: 10,
		},
		{
			name: "auth id escaped", authID: "MA/B C", mpc: func(t *testing.T) MPC { return mustMPC(t, "m") }, member: "5",
			wantURI:  "/v1/Account/MA%2FB%20C/MultiPartyCall/name_m/Participant/5/",
			wantPath: "/v1/Account/MA/B C/MultiPartyCall/name_m/Participant/5/", wantPieces: 9,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := sequenceServer(t, reply{status: 200, body: `{"api_id":"x","mute":"ok"}`})
			c, _, _ := newTestClient(t, srv.URL+tt.base, func(cfg *Config) {
				if tt.authID != "" {
					cfg.AuthID = tt.authID
				}
			})
			if _, err := c.UpdateParticipant(withTimeout(t, 5*time.Second), tt.mpc(t), tt.member, ParticipantUpdate{Mute: ptr(true)}); err != nil {
				t.Fatalf("UpdateParticipant: %v", err)
			}
			reqs := srv.Requests()
			if len(reqs) != 1 {
				t.Fatalf("%d requests, want 1", len(reqs))
			}
			r := reqs[0]
			if r.RequestURI != tt.wantURI {
				t.Errorf("request URI\n got %s\nwant %s", r.RequestURI, tt.wantURI)
			}
			if r.EscapedPath != tt.wantURI {
				t.Errorf("escaped path\n got %s\nwant %s", r.EscapedPath, tt.wantURI)
			}
			if r.Path != tt.wantPath {
				t.Errorf("decoded path\n got %s\nwant %s", r.Path, tt.wantPath)
			}
			if r.RawQuery != "" {
				t.Errorf("query %q, want none", r.RawQuery)
			}
			pieces := 8
			if tt.wantPieces != 0 {
				pieces = tt.wantPieces
			}
			if got := len(strings.Split(strings.TrimSuffix(r.Path, "/"), "/")); got != pieces {
				t.Errorf("decoded path has %d segments, want %d", got, pieces)
			}
		})
	}
}

func TestGetAndListURLs(t *testing.T) {
	srv := newTestServer(t, func(n int, w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/Participant/") {
			writeReply(w, r, reply{status: 200, body: `{"meta":{"next":null},"objects":[]}`})
			return
		}
		writeReply(w, r, reply{status: 200, body: `{"member_id":"3"}`})
	})
	c, _, _ := newTestClient(t, srv.URL, nil)
	ctx := withTimeout(t, 5*time.Second)
	mpc := mustMPC(t, "mpc 1000")
	if _, err := c.ListParticipants(ctx, mpc); err != nil {
		t.Fatal(err)
	}
	if _, err := c.GetParticipant(ctx, mpc, "3"); err != nil {
		t.Fatal(err)
	}
	want := []struct{ method, uri string }{
		{"GET", "/v1/Account/" + testAuthID + "/MultiPartyCall/name_mpc%201000/Participant/"},
		{"GET", "/v1/Account/" + testAuthID + "/MultiPartyCall/name_mpc%201000/Participant/3/"},
	}
	reqs := srv.Requests()
	if len(reqs) != len(want) {
		t.Fatalf("%d requests, want %d", len(reqs), len(want))
	}
	for i, w := range want {
		if reqs[i].Method != w.method || reqs[i].RequestURI != w.uri {
			t.Errorf("request %d = %s %s, want %s %s", i, reqs[i].Method, reqs[i].RequestURI, w.method, w.uri)
		}
		if len(reqs[i].Body) != 0 || reqs[i].Header.Get("Content-Type") != "" {
			t.Errorf("GET request %d has a body %q / content type %q", i, reqs[i].Body, reqs[i].Header.Get("Content-Type"))
		}
		if !reqs[i].BasicAuthOK || reqs[i].User != testAuthID || reqs[i].Pass != testAuthToken {
			t.Errorf("request %d basic auth = %v %q", i, reqs[i].BasicAuthOK, reqs[i].User)
		}
	}
}

func TestUpdateParticipantBody(t *testing.T) {
	tests := []struct {
		name     string
		update   ParticipantUpdate
		wantBody string
		fields   []Field
	}{
		{"mute", ParticipantUpdate{Mute: ptr(true)}, `{"mute":true}`, []Field{FieldMute}},
		{"unmute", ParticipantUpdate{Mute: ptr(false)}, `{"mute":false}`, []Field{FieldMute}},
		{"hold", ParticipantUpdate{Hold: ptr(true)}, `{"hold":true}`, []Field{FieldHold}},
		{"coach off", ParticipantUpdate{CoachMode: ptr(false)}, `{"coach_mode":false}`, []Field{FieldCoachMode}},
		{"mute+hold", ParticipantUpdate{Mute: ptr(true), Hold: ptr(false)}, `{"mute":true,"hold":false}`, []Field{FieldMute, FieldHold}},
		{"mute+coach", ParticipantUpdate{Mute: ptr(true), CoachMode: ptr(false)}, `{"mute":true,"coach_mode":false}`, []Field{FieldMute, FieldCoachMode}},
		{"hold+coach", ParticipantUpdate{Hold: ptr(false), CoachMode: ptr(true)}, `{"hold":false,"coach_mode":true}`, []Field{FieldHold, FieldCoachMode}},
		{"all three", ParticipantUpdate{Mute: ptr(false), Hold: ptr(true), CoachMode: ptr(true)}, `{"mute":false,"hold":true,"coach_mode":true}`, []Field{FieldMute, FieldHold, FieldCoachMode}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// The server answers a string for each field it received, as Plivo does.
			srv := newTestServer(t, func(n int, w http.ResponseWriter, r *http.Request) {
				var got map[string]bool
				_ = json.NewDecoder(r.Body).Decode(&got)
				out := map[string]string{"api_id": "api-1"}
				for k := range got {
					out[k] = "MPC: m " + k + " done"
				}
				w.WriteHeader(http.StatusAccepted)
				_ = json.NewEncoder(w).Encode(out)
			})
			c, _, _ := newTestClient(t, srv.URL, nil)
			res, err := c.UpdateParticipant(withTimeout(t, 5*time.Second), mustMPC(t, "m"), "12", tt.update)
			if err != nil {
				t.Fatalf("UpdateParticipant: %v", err)
			}
			reqs := srv.Requests()
			if len(reqs) != 1 {
				t.Fatalf("%d requests, want 1", len(reqs))
			}
			r := reqs[0]
			if string(r.Body) != tt.wantBody {
				t.Errorf("body = %s, want %s", r.Body, tt.wantBody)
			}
			var gotBody, wantBody map[string]any
			if err := json.Unmarshal(r.Body, &gotBody); err != nil {
				t.Fatalf("body is not JSON: %v", err)
			}
			_ = json.Unmarshal([]byte(tt.wantBody), &wantBody)
			if !reflect.DeepEqual(gotBody, wantBody) {
				t.Errorf("decoded body = %v, want %v", gotBody, wantBody)
			}
			if r.Method != http.MethodPost {
				t.Errorf("method = %s", r.Method)
			}
			for h, want := range map[string]string{"Content-Type": "application/json", "Accept": "application/json"} {
				if got := r.Header.Get(h); got != want {
					t.Errorf("%s = %q, want %q", h, got, want)
				}
			}
			if ua := r.Header.Get("User-Agent"); !strings.HasPrefix(ua, "mpcbot/") {
				t.Errorf("User-Agent = %q", ua)
			}
			if !r.BasicAuthOK || r.User != testAuthID || r.Pass != testAuthToken {
				t.Errorf("basic auth = %v %q", r.BasicAuthOK, r.User)
			}
			want := UpdateResult{APIID: "api-1", Status: http.StatusAccepted, Results: map[Field]string{}}
			for _, f := range tt.fields {
				want.Results[f] = "MPC: m " + string(f) + " done"
			}
			if !reflect.DeepEqual(res, want) {
				t.Errorf("result = %+v, want %+v", res, want)
			}
		})
	}
}

func TestUpdateParticipantResponses(t *testing.T) {
	both := ParticipantUpdate{Mute: ptr(true), Hold: ptr(true)}
	tests := []struct {
		name     string
		reply    reply
		wantKind Kind // Other = success
		want     UpdateResult
	}{
		{"200", reply{status: 200, body: `{"api_id":"a","mute":"m ok","hold":"h ok"}`}, Other,
			UpdateResult{APIID: "a", Status: 200, Results: map[Field]string{FieldMute: "m ok", FieldHold: "h ok"}}},
		{"202", reply{status: 202, body: `{"api_id":"a","mute":"m ok","hold":"h ok"}`}, Other,
			UpdateResult{APIID: "a", Status: 202, Results: map[Field]string{FieldMute: "m ok", FieldHold: "h ok"}}},
		{"missing field string is empty", reply{status: 200, body: `{"api_id":"a","mute":"m ok"}`}, Other,
			UpdateResult{APIID: "a", Status: 200, Results: map[Field]string{FieldMute: "m ok", FieldHold: ""}}},
		{"non-string values and extra keys", reply{status: 200, body: `{"api_id":7,"mute":true,"hold":null,"coach_mode":"not sent"}`}, Other,
			UpdateResult{Status: 200, Results: map[Field]string{FieldMute: "", FieldHold: ""}}},
		{"wording is not parsed", reply{status: 200, body: `{"mute":"MPC: x mute/unmute member(s) failed","hold":"succeded"}`}, Other,
			UpdateResult{Status: 200, Results: map[Field]string{FieldMute: "MPC: x mute/unmute member(s) failed", FieldHold: "succeded"}}},
		{"empty 200", reply{status: 200, body: ``}, Internal, UpdateResult{}},
		{"204", reply{status: 204}, Internal, UpdateResult{}},
		{"HTML 200", reply{status: 200, body: `<html>ok</html>`, header: map[string]string{"Content-Type": "text/html"}}, Internal, UpdateResult{}},
		{"JSON array 200", reply{status: 200, body: `[]`}, Internal, UpdateResult{}},
		{"truncated JSON 200", reply{status: 200, body: `{"mute":"x"`}, Internal, UpdateResult{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := sequenceServer(t, tt.reply)
			c, _, _ := newTestClient(t, srv.URL, nil)
			res, err := c.UpdateParticipant(withTimeout(t, 5*time.Second), mustMPC(t, "m"), "1", both)
			if srv.Count() != 1 {
				t.Errorf("%d requests, want 1 (success and undecodable answers are not retried)", srv.Count())
			}
			if tt.wantKind != Other {
				e := mustError(t, err, tt.wantKind)
				if e.Status != tt.reply.status || e.Attempts != 1 {
					t.Errorf("status %d attempts %d", e.Status, e.Attempts)
				}
				if !strings.Contains(e.Message, "probably applied") {
					t.Errorf("message %q should say the change was probably applied", e.Message)
				}
				return
			}
			if err != nil {
				t.Fatalf("UpdateParticipant: %v", err)
			}
			if !reflect.DeepEqual(res, tt.want) {
				t.Errorf("result = %#v, want %#v", res, tt.want)
			}
		})
	}
}

func readFixture(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "fixtures", name))
	if err != nil {
		t.Fatalf("read fixture: %v", err)
	}
	return string(b)
}

func TestUpdateFixture(t *testing.T) {
	srv := sequenceServer(t, reply{status: 202, body: readFixture(t, "go/mPCUpdateParticipantResponse.json")})
	c, _, _ := newTestClient(t, srv.URL, nil)
	res, err := c.UpdateParticipant(withTimeout(t, 5*time.Second), mustMPC(t, "TestMPCsample"), "all",
		ParticipantUpdate{Mute: ptr(true), Hold: ptr(false)})
	if err != nil {
		t.Fatal(err)
	}
	want := UpdateResult{APIID: "be5a333a-ee0f-11ea-b02e-0242ac110003", Status: 202, Results: map[Field]string{
		FieldMute: "MPC: TestMPCsample mute/unmute member(s) succeded",
		FieldHold: "MPC: TestMPCsample hold/unhold member(s) succeded",
	}}
	if !reflect.DeepEqual(res, want) {
		t.Errorf("result = %#v\nwant %#v", res, want)
	}
}

func TestParticipantFixtures(t *testing.T) {
	live209 := Participant{
		MemberID: "209", Role: "agent", CallUUID: "ceeac2c3-4d08-465f-87b8-c3c92225da23",
		MPCUUID: "b1e37275-b8e2-42cd-ae63-fffcc54a50b5", Mute: ptr(false), Hold: ptr(false), CoachMode: ptr(false),
		JoinTime:    ptr("2020-06-03 14:07:22+00:00"),
		ResourceURI: "/v1/Account/MAMDJMMTEZOWY0ZMQWM2/MultiPartyCall/name_thanos/Participant/209/",
	}
	exited49 := Participant{
		MemberID: "49", Role: "customer", CallUUID: "90de6710-9404-40d1-ba31-f26d2f7c533f",
		MPCUUID:  "18905d56-79c8-41d4-a840-25feff71070e",
		JoinTime: ptr("2020-07-09 07:24:37+00:00"), ExitTime: ptr("2020-07-09 07:25:07+00:00"),
		ExitCause:   ptr("Participant Call Hangup"),
		ResourceURI: "/v1/Account/MA123456789012345678/MultiPartyCall/uuid_18905d56-79c8-41d4-a840-25feff71070e/Participant/49/",
	}
	listed209 := live209
	listed209.MemberAddress = "sip:ajaydjv902035012689385@phone-qa.voice.plivodev.com"
	listed49 := exited49
	listed49.MemberAddress = "sip:ajaydjv902035012689385@phone-qa.voice.plivodev.com"
	ruby2132 := Participant{
		MemberID: "2132", Role: "agent", CallUUID: "426c1fb3-8f47-46e5-a916-51faa85ca90e",
		MPCUUID: "7503f05f-2d6e-4ab3-b9e6-3b0d81ae9087", Mute: ptr(false), Hold: ptr(false), CoachMode: ptr(false),
		JoinTime:    ptr("2020-09-03 17:24:12+00:00"),
		ResourceURI: "/v1/Account/MAMDJMMTEZOWY0ZMQWM2/MultiPartyCall/uuid_7503f05f-2d6e-4ab3-b9e6-3b0d81ae9087/Participant/2132/",
	}

	t.Run("list", func(t *testing.T) {
		tests := []struct {
			fixture  string
			want     []Participant
			wantLive []bool
		}{
			{"go/mPCListParticipantsResponse.json", []Participant{listed209}, []bool{true}},
			{"java/mpcParticipantsList.json", []Participant{listed49}, []bool{false}},
			{"ruby/multiPartyCallsListParticipantsResponse.json", []Participant{ruby2132}, []bool{true}},
		}
		for _, tt := range tests {
			t.Run(tt.fixture, func(t *testing.T) {
				srv := sequenceServer(t, reply{status: 200, body: readFixture(t, tt.fixture)})
				c, _, _ := newTestClient(t, srv.URL, nil)
				got, err := c.ListParticipants(withTimeout(t, 5*time.Second), mustMPC(t, "thanos"))
				if err != nil {
					t.Fatal(err)
				}
				if !reflect.DeepEqual(got, tt.want) {
					t.Errorf("participants =\n%s\nwant\n%s", dump(got), dump(tt.want))
				}
				for i, p := range got {
					if p.Live() != tt.wantLive[i] {
						t.Errorf("participant %s Live() = %v", p.MemberID, p.Live())
					}
				}
				if srv.Count() != 1 {
					t.Errorf("%d requests for a single page", srv.Count())
				}
			})
		}
	})

	t.Run("get", func(t *testing.T) {
		tests := []struct {
			fixture  string
			want     Participant
			wantLive bool
		}{
			{"go/mPCGetParticipantResponse.json", live209, true},
			{"java/mpcParticipantGet.json", exited49, false},
		}
		for _, tt := range tests {
			t.Run(tt.fixture, func(t *testing.T) {
				srv := sequenceServer(t, reply{status: 200, body: readFixture(t, tt.fixture)})
				c, _, _ := newTestClient(t, srv.URL, nil)
				got, err := c.GetParticipant(withTimeout(t, 5*time.Second), mustMPC(t, "thanos"), Member(tt.want.MemberID))
				if err != nil {
					t.Fatal(err)
				}
				if !reflect.DeepEqual(got, tt.want) {
					t.Errorf("participant =\n%s\nwant\n%s", dump(got), dump(tt.want))
				}
				if got.Live() != tt.wantLive {
					t.Errorf("Live() = %v, want %v", got.Live(), tt.wantLive)
				}
				if !tt.wantLive && (got.Mute != nil || got.Hold != nil || got.CoachMode != nil) {
					t.Errorf("exited participant has state %v %v %v", got.Mute, got.Hold, got.CoachMode)
				}
			})
		}
	})
}

func dump(v any) string {
	b, _ := json.MarshalIndent(v, "", "  ")
	return string(b)
}

func TestGetParticipantUndecodable(t *testing.T) {
	tests := []struct {
		name string
		body string
	}{
		{"empty", ""},
		{"null", "null"},
		{"wrong type", `{"member_id":209}`},
		{"HTML", "<html></html>"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := sequenceServer(t, reply{status: 200, body: tt.body})
			c, _, _ := newTestClient(t, srv.URL, nil)
			_, err := c.GetParticipant(withTimeout(t, 5*time.Second), mustMPC(t, "m"), "1")
			mustError(t, err, Internal)
		})
	}
}

func TestLocalRefusals(t *testing.T) {
	srv := sequenceServer(t, reply{status: 200, body: `{}`})
	c, _, _ := newTestClient(t, srv.URL, nil)
	ctx := withTimeout(t, 5*time.Second)
	mpc := mustMPC(t, "m")
	tests := []struct {
		name    string
		call    func() error
		wantMsg string
	}{
		{"empty update", func() error {
			_, err := c.UpdateParticipant(ctx, mpc, "1", ParticipantUpdate{})
			return err
		}, "nothing to update"},
		{"coach_mode for all", func() error {
			_, err := c.UpdateParticipant(ctx, mpc, AllMembers, ParticipantUpdate{CoachMode: ptr(true)})
			return err
		}, CoachAllRule},
		{"coach_mode for ALL with mute", func() error {
			_, err := c.UpdateParticipant(ctx, mpc, "ALL", ParticipantUpdate{Mute: ptr(true), CoachMode: ptr(false)})
			return err
		}, CoachAllRule},
		{"zero MPC update", func() error {
			_, err := c.UpdateParticipant(ctx, MPC{}, "1", ParticipantUpdate{Mute: ptr(true)})
			return err
		}, "no MPC"},
		{"zero MPC list", func() error {
			_, err := c.ListParticipants(ctx, MPC{})
			return err
		}, "no MPC"},
		{"path in member", func() error {
			_, err := c.UpdateParticipant(ctx, mpc, "../1", ParticipantUpdate{Mute: ptr(true)})
			return err
		}, "not a member id"},
		{"empty member", func() error {
			_, err := c.GetParticipant(ctx, mpc, "")
			return err
		}, "not a member id"},
		{"get all", func() error {
			_, err := c.GetParticipant(ctx, mpc, AllMembers)
			return err
		}, "not `all`"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.call()
			e := mustError(t, err, Invalid)
			if !strings.Contains(e.Message, tt.wantMsg) {
				t.Errorf("message %q does not contain %q", e.Message, tt.wantMsg)
			}
			if e.Op == "" {
				t.Errorf("error has no Op: %v", err)
			}
		})
	}
	if srv.Count() != 0 {
		t.Errorf("%d requests sent, want none", srv.Count())
	}
}

func TestCredentialsState(t *testing.T) {
	steps := []struct {
		status int
		want   CredentialState
	}{
		{401, CredentialsRejected},
		{200, CredentialsAccepted},
		{404, CredentialsAccepted},
		{400, CredentialsAccepted},
		{403, CredentialsAccepted}, // a refused request, not refused credentials
		{401, CredentialsRejected},
		{403, CredentialsRejected},
		{404, CredentialsRejected},
		{202, CredentialsAccepted},
	}
	var replies []reply
	for _, s := range steps {
		replies = append(replies, reply{status: s.status, body: `{"api_id":"x","mute":"ok","error":"e"}`})
	}
	srv := sequenceServer(t, replies...)
	c, _, _ := newTestClient(t, srv.URL, nil)
	if got := c.Credentials(); got != CredentialsUnknown {
		t.Fatalf("initial state %v", got)
	}
	for i, s := range steps {
		_, _ = c.UpdateParticipant(withTimeout(t, 5*time.Second), mustMPC(t, "m"), "1", ParticipantUpdate{Mute: ptr(true)})
		if got := c.Credentials(); got != s.want {
			t.Errorf("after step %d (HTTP %d): %v, want %v", i, s.status, got, s.want)
		}
	}
	if srv.Count() != len(steps) {
		t.Errorf("%d requests, want %d", srv.Count(), len(steps))
	}
	for _, s := range []CredentialState{CredentialsUnknown, CredentialsAccepted, CredentialsRejected} {
		if s.String() == "" || strings.HasPrefix(s.String(), "credential_state") {
			t.Errorf("state %d has no name", s)
		}
	}
}

func TestCanceledBeforeSending(t *testing.T) {
	srv := sequenceServer(t, reply{status: 200, body: `{"mute":"ok"}`})
	c, _, _ := newTestClient(t, srv.URL, nil)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := c.UpdateParticipant(ctx, mustMPC(t, "m"), "1", ParticipantUpdate{Mute: ptr(true)})
	e := mustError(t, err, Canceled)
	if e.Attempts != 0 || srv.Count() != 0 {
		t.Errorf("attempts %d, requests %d; want none", e.Attempts, srv.Count())
	}
}
