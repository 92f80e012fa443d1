package plivo

import (
	"encoding/json"
	"fmt"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"
)

// byStatusServer answers List MPC with pages[status][offset/20], and 404
// for a page it does not have.
func byStatusServer(t *testing.T, pages map[string][]string) *testServer {
	t.Helper()
	return newTestServer(t, func(n int, w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		var offset int
		_, _ = fmt.Sscan(q.Get("offset"), &offset)
		list := pages[q.Get("status")]
		if offset%20 != 0 || offset/20 >= len(list) {
			writeReply(w, r, reply{status: 404, body: `{"error":"no such page"}`})
			return
		}
		writeReply(w, r, reply{status: 200, body: list[offset/20]})
	})
}

const (
	uuidA = "11111111-1111-4111-8111-111111111111"
	uuidB = "22222222-2222-4222-8222-222222222222"
	uuidC = "33333333-3333-4333-8333-333333333333"
)

func mpcObject(name, uuid, status string, created, started any) string {
	js := func(v any) string {
		if v == nil {
			return "null"
		}
		return fmt.Sprintf("%q", v)
	}
	return fmt.Sprintf(`{"friendly_name":%q,"mpc_uuid":%q,"status":%q,"creation_time":%s,"start_time":%s,"end_time":null}`,
		name, uuid, status, js(created), js(started))
}

func mpcPage(meta string, objects ...string) string {
	return `{"api_id":"x","meta":` + meta + `,"objects":[` + strings.Join(objects, ",") + `]}`
}

func TestLiveMPCsDecoding(t *testing.T) {
	t.Parallel()
	at := func(s string) time.Time {
		tm, err := time.Parse("2006-01-02 15:04:05-07:00", s)
		if err != nil {
			t.Fatal(err)
		}
		return tm
	}
	noMore := `{"count":1,"limit":20,"next":null,"offset":0,"previous":null}`
	empty := mpcPage(`{"count":0,"limit":20,"next":null,"offset":0,"previous":null}`)
	tests := []struct {
		name        string
		initialized string // page 0 of each status
		active      string
		want        []MPCSummary
		wantSkipped int
	}{
		{"active and initialized, status in any case, null start", mpcPage(noMore,
			mpcObject("waiting room", uuidA, "Initialized", "2020-06-03 10:48:43+00:00", nil)),
			mpcPage(noMore, mpcObject("mpc 1000", strings.ToUpper(uuidB), "ACTIVE", "2020-06-03 10:40:00+00:00", "2020-06-03 10:40:01+00:00")),
			[]MPCSummary{
				{Name: "mpc 1000", UUID: uuidB, Status: MPCActive, Created: at("2020-06-03 10:40:00+00:00"), Started: at("2020-06-03 10:40:01+00:00")},
				{Name: "waiting room", UUID: uuidA, Status: MPCInitialized, Created: at("2020-06-03 10:48:43+00:00")},
			}, 0},
		{"total_count instead of count, missing status takes the query's", empty,
			mpcPage(`{"total_count":1,"limit":20,"next":null,"offset":0}`, `{"friendly_name":"x","mpc_uuid":"`+uuidA+`"}`),
			[]MPCSummary{{Name: "x", UUID: uuidA, Status: MPCActive}}, 0},
		{"activated between the two queries: once, as active",
			mpcPage(noMore, mpcObject("x", uuidA, "initialized", "2020-06-03 10:00:00+00:00", nil)),
			mpcPage(noMore, mpcObject("x", uuidA, "active", "2020-06-03 10:00:00+00:00", "2020-06-03 10:01:00+00:00")),
			[]MPCSummary{{Name: "x", UUID: uuidA, Status: MPCActive, Created: at("2020-06-03 10:00:00+00:00"), Started: at("2020-06-03 10:01:00+00:00")}}, 0},
		{"newest first, null creation last", empty, mpcPage(noMore,
			mpcObject("old", uuidA, "active", "2020-06-03 09:00:00+00:00", nil),
			mpcObject("unknown", uuidC, "active", nil, nil),
			mpcObject("new", uuidB, "active", "2020-06-03 10:00:00+00:00", nil)),
			[]MPCSummary{
				{Name: "new", UUID: uuidB, Status: MPCActive, Created: at("2020-06-03 10:00:00+00:00")},
				{Name: "old", UUID: uuidA, Status: MPCActive, Created: at("2020-06-03 09:00:00+00:00")},
				{Name: "unknown", UUID: uuidC, Status: MPCActive},
			}, 0},
		{"rows that cannot be acted on are skipped", empty, mpcPage(noMore,
			mpcObject("bad uuid", "not-a-uuid", "active", nil, nil),
			mpcObject("ended meanwhile", uuidB, "ended", nil, nil),
			mpcObject("odd status", uuidC, "paused", nil, nil),
			`{"friendly_name":7,"mpc_uuid":"`+uuidC+`"}`,
			`"not an object"`,
			mpcObject("fine", uuidA, "Active", "yesterday", nil)),
			[]MPCSummary{{Name: "fine", UUID: uuidA, Status: MPCActive}}, 5},
		{"odd names are bounded and printable", empty, mpcPage(noMore,
			mpcObject("a\u202e\tb\n"+strings.Repeat("n", 500), uuidA, "active", nil, nil)),
			[]MPCSummary{{Name: "a b " + strings.Repeat("n", MaxNameLength-4) + "…", UUID: uuidA, Status: MPCActive}}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv := byStatusServer(t, map[string][]string{"initialized": {tt.initialized}, "active": {tt.active}})
			c, _, _ := newTestClient(t, srv.URL, nil)
			got, err := c.LiveMPCs(withTimeout(t, 5*time.Second))
			if err != nil {
				t.Fatalf("LiveMPCs: %v", err)
			}
			if !reflect.DeepEqual(got.MPCs, tt.want) || got.Skipped != tt.wantSkipped || got.Truncated {
				t.Errorf("got %+v\nwant MPCs %+v, skipped %d, not truncated", got, tt.want, tt.wantSkipped)
			}
			reqs := srv.Requests()
			wantQueries := []string{"limit=20&offset=0&status=initialized", "limit=20&offset=0&status=active"}
			if len(reqs) != 2 || reqs[0].RawQuery != wantQueries[0] || reqs[1].RawQuery != wantQueries[1] {
				t.Errorf("requests %+v, want the queries %q", reqs, wantQueries)
			}
			for _, r := range reqs {
				if r.Method != http.MethodGet || r.EscapedPath != "/v1/Account/"+testAuthID+"/MultiPartyCall/" {
					t.Errorf("request %s %s", r.Method, r.EscapedPath)
				}
			}
			for _, m := range got.MPCs {
				if m.MPC().UUID() != m.UUID {
					t.Errorf("MPC() = %v, want uuid %s", m.MPC(), m.UUID)
				}
			}
		})
	}
}

func TestLiveMPCsFailures(t *testing.T) {
	t.Parallel()
	ok := mpcPage(`{"count":0,"limit":20,"next":null,"offset":0}`)
	tests := []struct {
		name     string
		pages    map[string][]string
		wantKind Kind
		wantMsg  string
	}{
		{"an error answer", map[string][]string{}, NotFound, "no such page"},
		{"no objects", map[string][]string{"initialized": {`{"meta":{}}`}}, Internal, "list of initialized MPCs"},
		{"objects not an array", map[string][]string{"initialized": {ok}, "active": {`{"objects":{}}`}}, Internal, "list of active MPCs"},
		{"not JSON", map[string][]string{"initialized": {`<html>`}}, Internal, "list of initialized MPCs"},
		{"next does not advance", map[string][]string{"initialized": {mpcPage(`{"next":"/v1/x/?offset=0"}`, mpcObject("x", uuidA, "initialized", nil, nil))}},
			Internal, "does not advance"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv := byStatusServer(t, tt.pages)
			c, _, _ := newTestClient(t, srv.URL, nil)
			got, err := c.LiveMPCs(withTimeout(t, 5*time.Second))
			e := mustError(t, err, tt.wantKind)
			if !strings.Contains(e.Message, tt.wantMsg) || e.Op != "list mpcs" {
				t.Errorf("error %+v, want op %q and a message containing %q", e, "list mpcs", tt.wantMsg)
			}
			if got.MPCs != nil {
				t.Errorf("partial list with the error: %+v", got)
			}
		})
	}
}

// The pages of a status are followed through meta.next, at most
// maxLiveMPCPages of them.
func TestLiveMPCsPaging(t *testing.T) {
	t.Parallel()
	pagesOf := func(n int) []string {
		var pages []string
		for p := 0; p*20 < n || p == 0; p++ {
			var objects []string
			for i := p * 20; i < min(n, p*20+20); i++ {
				objects = append(objects, mpcObject(fmt.Sprintf("mpc %03d", i), fmt.Sprintf("00000000-0000-4000-8000-%012d", i), "active",
					time.Unix(1_600_000_000-int64(i), 0).UTC().Format("2006-01-02 15:04:05+00:00"), nil))
			}
			next := "null"
			if (p+1)*20 < n {
				next = fmt.Sprintf(`"/v1/Account/X/MultiPartyCall/?limit=20&offset=%d&status=active"`, (p+1)*20)
			}
			pages = append(pages, mpcPage(fmt.Sprintf(`{"count":%d,"limit":20,"next":%s,"offset":%d}`, n, next, p*20), objects...))
		}
		return pages
	}
	empty := mpcPage(`{"count":0,"limit":20,"next":null,"offset":0}`)
	tests := []struct {
		active        int
		wantListed    int
		wantRequests  int
		wantTruncated bool
	}{
		{0, 0, 2, false},
		{20, 20, 2, false},
		{45, 45, 4, false},
		{100, 100, 6, false},
		{101, 100, 6, true},
		{300, 100, 6, true},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.active), func(t *testing.T) {
			t.Parallel()
			srv := byStatusServer(t, map[string][]string{"initialized": {empty}, "active": pagesOf(tt.active)})
			c, _, obs := newTestClient(t, srv.URL, nil)
			got, err := c.LiveMPCs(withTimeout(t, 5*time.Second))
			if err != nil {
				t.Fatal(err)
			}
			if len(got.MPCs) != tt.wantListed || got.Truncated != tt.wantTruncated {
				t.Errorf("%d MPCs, truncated %v; want %d, %v", len(got.MPCs), got.Truncated, tt.wantListed, tt.wantTruncated)
			}
			for i, m := range got.MPCs {
				if want := fmt.Sprintf("mpc %03d", i); m.Name != want {
					t.Fatalf("MPC %d is %q, want %q (newest first, each once)", i, m.Name, want)
				}
			}
			if n := srv.Count(); n != tt.wantRequests {
				t.Errorf("%d requests, want %d", n, tt.wantRequests)
			}
			if n := len(obs.Waits()); n != srv.Count() {
				t.Errorf("%d limiter tokens for %d requests", n, srv.Count())
			}
		})
	}
}

// The official List MPC fixtures decode: meta's count, and every row (their
// MPCs have ended; read as if live) with its name, uuid and times.
func TestMPCSummaryFixtures(t *testing.T) {
	t.Parallel()
	c, _, _ := newTestClient(t, "http://127.0.0.1:1", nil)
	for _, file := range []string{"go/mPCListResponse.json", "dotnet/mpcListResponse.json", "ruby/multiPartyCallsListMpcResponse.json",
		"php/multiPartyCallsListResponse.json", "java/mpcList.json"} {
		t.Run(file, func(t *testing.T) {
			body := readFixture(t, file)
			list, err := decodePage[json.RawMessage]([]byte(body), "MPC list")
			if err != nil {
				t.Fatal(err)
			}
			var fix struct {
				Meta    map[string]any   `json:"meta"`
				Objects []map[string]any `json:"objects"`
			}
			if err := json.Unmarshal([]byte(body), &fix); err != nil {
				t.Fatal(err)
			}
			if n, ok := list.Meta.total(); !ok || float64(n) != fix.Meta["count"] {
				t.Errorf("meta count %d (%v), fixture %v", n, ok, fix.Meta["count"])
			}
			if next, more := nextOffset(list.Meta, len(*list.Objects), 0); more != (fix.Meta["next"] != nil) || (more && next != 20) {
				t.Errorf("next offset %d, %v; fixture next %v", next, more, fix.Meta["next"])
			}
			for i, raw := range *list.Objects {
				o := fix.Objects[i]
				if got, why := c.mpcSummary(raw, MPCActive); why != "status is not a live one: "+o["status"].(string) || got != (MPCSummary{}) {
					t.Errorf("row %d as listed: %+v, %q; want it skipped as ended", i, got, why)
				}
				live := strings.Replace(string(raw), `"status": "`+o["status"].(string)+`"`, `"status": "Active"`, 1)
				got, why := c.mpcSummary(json.RawMessage(live), MPCActive)
				if why != "" {
					t.Fatalf("row %d: skipped: %s", i, why)
				}
				want := MPCSummary{Name: o["friendly_name"].(string), UUID: o["mpc_uuid"].(string), Status: MPCActive}
				if s, ok := o["creation_time"].(string); ok {
					want.Created, _ = time.Parse("2006-01-02 15:04:05-07:00", s)
				}
				if s, ok := o["start_time"].(string); ok {
					want.Started, _ = time.Parse("2006-01-02 15:04:05-07:00", s)
				}
				if got != want || (o["creation_time"] != nil && got.Created.IsZero()) {
					t.Errorf("row %d = %+v, want %+v", i, got, want)
				}
			}
		})
	}
}
