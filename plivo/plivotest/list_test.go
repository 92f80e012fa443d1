package plivotest_test

import (
	"fmt"
	"strconv"
	"strings"
	"testing"

	"github.com/mpcbot/mpcbot/plivo/plivotest"
)

// bigMPC builds an MPC with 10 live participants (member ids 101–110) and
// 150 exited entries (111–260), the most List Participants will ever hold
// for a real MPC with many rejoins.
func bigMPC(t *testing.T) *plivotest.Server {
	t.Helper()
	s := plivotest.NewServer()
	t.Cleanup(s.Close)
	for i := range 10 {
		s.AddParticipant("big", []string{"agent", "customer", "supervisor"}[i%3])
	}
	for range 150 {
		s.RemoveParticipant("big", s.AddParticipant("big", "customer"))
	}
	return s
}

func TestListParticipantsPages(t *testing.T) {
	s := bigMPC(t)
	base := "/v1/Account/" + s.AuthID + "/MultiPartyCall/name_big/Participant/"
	link := func(limit, offset int) any {
		return fmt.Sprintf("%s?limit=%d&offset=%d", base, limit, offset)
	}
	tests := []struct {
		query    string
		limit    int
		offset   int
		n        int
		first    int // member id of the first object (newest join first)
		next     any // nil = JSON null
		previous any
	}{
		{"", 20, 0, 20, 260, link(20, 20), nil},
		{"limit=20&offset=20", 20, 20, 20, 240, link(20, 40), link(20, 0)},
		{"limit=5&offset=3", 5, 3, 5, 257, link(5, 8), link(5, 0)},
		{"limit=1", 1, 0, 1, 260, link(1, 1), nil},
		{"offset=140", 20, 140, 20, 120, nil, link(20, 120)},
		{"offset=150", 20, 150, 10, 110, nil, link(20, 130)},
		{"limit=7&offset=159", 7, 159, 1, 101, nil, link(7, 152)},
		{"offset=160", 20, 160, 0, 0, nil, link(20, 140)},
		{"offset=1000", 20, 1000, 0, 0, nil, link(20, 980)},
	}
	for _, tt := range tests {
		t.Run(tt.query, func(t *testing.T) {
			r := do(t, s, call{method: "GET", path: "name_big/Participant/?" + tt.query})
			if r.status != 200 {
				t.Fatalf("status %d: %s", r.status, r.raw)
			}
			meta, _ := r.obj["meta"].(map[string]any)
			if got := strings.Join(keys(meta), ","); got != "count,limit,next,offset,previous" {
				t.Errorf("meta keys = %s", got)
			}
			want := map[string]any{"count": 160.0, "limit": float64(tt.limit), "offset": float64(tt.offset), "next": tt.next, "previous": tt.previous}
			for k, v := range want {
				if meta[k] != v {
					t.Errorf("meta.%s = %#v, want %#v", k, meta[k], v)
				}
			}
			objects, ok := r.obj["objects"].([]any)
			if !ok || len(objects) != tt.n {
				t.Fatalf("objects = %d (%T), want %d", len(objects), r.obj["objects"], tt.n)
			}
			for i, o := range objects {
				p := o.(map[string]any)
				wantID := strconv.Itoa(tt.first - i)
				if p["member_id"] != wantID {
					t.Errorf("objects[%d].member_id = %v, want %s", i, p["member_id"], wantID)
				}
				id, _ := strconv.Atoi(wantID)
				if exited := id > 110; exited != (p["exit_time"] != nil) || exited != (p["mute"] == nil) {
					t.Errorf("member %s: exit_time %v mute %v, want exited=%v", wantID, p["exit_time"], p["mute"], exited)
				}
			}
		})
	}
}

// TestListParticipantsFollowNext walks every page through the next links,
// as a client would.
func TestListParticipantsFollowNext(t *testing.T) {
	s := bigMPC(t)
	seen := map[string]bool{}
	live := 0
	path := "/v1/Account/" + s.AuthID + "/MultiPartyCall/name_big/Participant/?limit=15"
	for pages := 0; path != ""; pages++ {
		if pages > 20 {
			t.Fatal("too many pages")
		}
		r := do(t, s, call{method: "GET", path: path})
		if r.status != 200 {
			t.Fatalf("%s: %d %s", path, r.status, r.raw)
		}
		for _, o := range r.obj["objects"].([]any) {
			p := o.(map[string]any)
			id := p["member_id"].(string)
			if seen[id] {
				t.Errorf("member %s listed twice", id)
			}
			seen[id] = true
			if p["exit_time"] == nil {
				live++
			}
		}
		next, _ := r.obj["meta"].(map[string]any)["next"].(string)
		path = next
	}
	if len(seen) != 160 || live != 10 {
		t.Errorf("saw %d entries (%d live), want 160 (10 live)", len(seen), live)
	}
}

func TestListParticipantsQuery(t *testing.T) {
	s := bigMPC(t)
	one := do(t, s, call{method: "GET", path: "name_big/Participant/?limit=1&offset=30"})
	target := one.obj["objects"].([]any)[0].(map[string]any)
	callUUID := target["call_uuid"].(string)
	tests := []struct {
		query  string
		status int
		count  float64
		next   any
	}{
		{"call_uuid=" + callUUID, 200, 1, nil},
		{"call_uuid=" + strings.ToUpper(callUUID), 200, 1, nil},
		{"call_uuid=00000000-0000-4000-8000-000000000000", 200, 0, nil},
		{"limit=20&unknown=1", 200, 160, "/v1/Account/" + s.AuthID + "/MultiPartyCall/name_big/Participant/?limit=20&offset=20"},
		{"limit=0", 400, 0, nil},
		{"limit=21", 400, 0, nil},
		{"limit=-1", 400, 0, nil},
		{"limit=x", 400, 0, nil},
		{"limit=", 400, 0, nil},
		{"offset=-1", 400, 0, nil},
		{"offset=1.5", 400, 0, nil},
		{"offset=%zz", 400, 0, nil},
	}
	for _, tt := range tests {
		t.Run(tt.query, func(t *testing.T) {
			r := do(t, s, call{method: "GET", path: "name_big/Participant/?" + tt.query})
			if tt.status != 200 {
				checkError(t, r, tt.status, "")
				return
			}
			meta := r.obj["meta"].(map[string]any)
			if meta["count"] != tt.count || meta["next"] != tt.next {
				t.Errorf("meta = %v, want count %v next %v", meta, tt.count, tt.next)
			}
			if tt.count == 1 {
				got := r.obj["objects"].([]any)[0].(map[string]any)
				if got["member_id"] != target["member_id"] {
					t.Errorf("filtered member = %v, want %v", got["member_id"], target["member_id"])
				}
			}
		})
	}
	// A filtered list keeps its filter in the links.
	two := do(t, s, call{method: "GET", path: "name_big/Participant/?limit=1&call_uuid=" + callUUID})
	if prev := two.obj["meta"].(map[string]any)["previous"]; prev != nil {
		t.Errorf("previous = %v, want null", prev)
	}
	r := do(t, s, call{method: "GET", path: "name_big/Participant/?offset=1&limit=1&call_uuid=" + callUUID})
	wantPrev := "/v1/Account/" + s.AuthID + "/MultiPartyCall/name_big/Participant/?limit=1&offset=0&call_uuid=" + callUUID
	if prev := r.obj["meta"].(map[string]any)["previous"]; prev != wantPrev {
		t.Errorf("previous = %v, want %s", prev, wantPrev)
	}
}
