package plivo

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
)

// pagedServer serves total participants (member ids 1..total) 20 per page,
// honouring ?offset=, with meta.next built by next (nil: no next page).
func pagedServer(t *testing.T, total int, next func(path string, offset, count int) *string, fail map[int]reply) *testServer {
	t.Helper()
	return newTestServer(t, func(n int, w http.ResponseWriter, r *http.Request) {
		if rep, ok := fail[n]; ok {
			writeReply(w, r, rep)
			return
		}
		offset, _ := strconv.Atoi(r.URL.Query().Get("offset"))
		var objects []map[string]any
		for i := offset; i < min(offset+20, total); i++ {
			objects = append(objects, map[string]any{
				"member_id": strconv.Itoa(i + 1), "role": "agent", "mute": false, "hold": false, "coach_mode": false,
				"exit_time": nil,
			})
		}
		if objects == nil {
			objects = []map[string]any{}
		}
		var nextURL *string
		if offset+20 < total {
			nextURL = next(r.URL.EscapedPath(), offset, len(objects))
		}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{
			"api_id":  fmt.Sprintf("page-%d", n),
			"meta":    map[string]any{"count": total, "limit": 20, "offset": offset, "next": nextURL, "previous": nil},
			"objects": objects,
		})
	})
}

func plivoNext(path string, offset, _ int) *string {
	s := fmt.Sprintf("%s?limit=20&offset=%d", path, offset+20)
	return &s
}

func TestListParticipantsPagination(t *testing.T) {
	tests := []struct {
		name      string
		total     int
		next      func(path string, offset, count int) *string
		wantQuery []string
	}{
		{"one page", 7, plivoNext, []string{""}},
		{"exactly one full page", 20, plivoNext, []string{""}},
		{"three pages via meta.next", 45, plivoNext, []string{"", "limit=20&offset=20", "limit=20&offset=40"}},
		{"next without offset: continue after the entries", 41, func(string, int, int) *string {
			s := "/v1/Account/X/MultiPartyCall/name_m/Participant/?page=next"
			return &s
		}, []string{"", "limit=20&offset=20", "limit=20&offset=40"}},
		{"next on another host is not followed", 25, func(_ string, offset, _ int) *string {
			s := fmt.Sprintf("https://evil.example/steal?offset=%d", offset+20)
			return &s
		}, []string{"", "limit=20&offset=20"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := pagedServer(t, tt.total, tt.next, nil)
			c, _, obs := newTestClient(t, srv.URL, nil)
			got, err := c.ListParticipants(withTimeout(t, 5*time.Second), mustMPC(t, "mpc 1000"))
			if err != nil {
				t.Fatalf("ListParticipants: %v", err)
			}
			if len(got) != tt.total {
				t.Fatalf("%d participants, want %d", len(got), tt.total)
			}
			for i, p := range got {
				if p.MemberID != strconv.Itoa(i+1) || !p.Live() {
					t.Fatalf("participant %d = %+v", i, p)
				}
			}
			reqs := srv.Requests()
			if len(reqs) != len(tt.wantQuery) {
				t.Fatalf("%d requests, want %d", len(reqs), len(tt.wantQuery))
			}
			for i, r := range reqs {
				if r.RawQuery != tt.wantQuery[i] {
					t.Errorf("request %d query %q, want %q", i, r.RawQuery, tt.wantQuery[i])
				}
				if r.EscapedPath != "/v1/Account/"+testAuthID+"/MultiPartyCall/name_mpc%201000/Participant/" {
					t.Errorf("request %d path %s", i, r.EscapedPath)
				}
			}
			// Every page went through the limiter.
			if got := len(obs.Waits()); got != len(reqs) {
				t.Errorf("%d limiter waits for %d pages", got, len(reqs))
			}
		})
	}
}

func TestListParticipantsFailures(t *testing.T) {
	tests := []struct {
		name     string
		srv      func(t *testing.T) *testServer
		wantKind Kind
		wantMsg  string
		wantReqs int
	}{
		{"404 on the first page", func(t *testing.T) *testServer {
			return sequenceServer(t, reply{status: 404, body: `{"api_id":"n","error":"MPC not found"}`})
		}, NotFound, "MPC not found", 1},
		{"404 on the second page", func(t *testing.T) *testServer {
			return pagedServer(t, 30, plivoNext, map[int]reply{1: {status: 404, body: `{"error":"gone"}`}})
		}, NotFound, "gone", 2},
		{"5xx on a page is retried", func(t *testing.T) *testServer {
			return pagedServer(t, 30, plivoNext, map[int]reply{1: {status: 503}})
		}, Other, "", 3},
		{"next does not advance", func(t *testing.T) *testServer {
			return pagedServer(t, 30, func(string, int, int) *string { s := "/x/?offset=0"; return &s }, nil)
		}, Internal, "does not advance", 1},
		{"endless list", func(t *testing.T) *testServer {
			return pagedServer(t, 1_000_000, plivoNext, nil)
		}, Internal, "longer than", maxParticipantPages},
		{"no objects key", func(t *testing.T) *testServer {
			return sequenceServer(t, reply{status: 200, body: `{"meta":{"next":null}}`})
		}, Internal, "participant list", 1},
		{"objects of the wrong type", func(t *testing.T) *testServer {
			return sequenceServer(t, reply{status: 200, body: `{"objects":{"member_id":"1"}}`})
		}, Internal, "participant list", 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := tt.srv(t)
			c, _, _ := newTestClient(t, srv.URL, nil)
			got, err := c.ListParticipants(withTimeout(t, 10*time.Second), mustMPC(t, "m"))
			if srv.Count() != tt.wantReqs {
				t.Errorf("%d requests, want %d", srv.Count(), tt.wantReqs)
			}
			if tt.wantKind == Other {
				if err != nil || len(got) != 30 {
					t.Fatalf("got %d participants, err %v", len(got), err)
				}
				return
			}
			e := mustError(t, err, tt.wantKind)
			if !strings.Contains(e.Message, tt.wantMsg) {
				t.Errorf("message %q does not contain %q", e.Message, tt.wantMsg)
			}
			if got != nil {
				t.Errorf("partial list returned with the error: %d entries", len(got))
			}
		})
	}
}
