package plivotest_test

import (
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/mpcbot/mpcbot/plivo/plivotest"
)

// mpcSet is a server at 2025-06-10 12:00 UTC with MPCs in every state:
//
//	live-new      active, created 11:50
//	waiting       initialized, created 11:55
//	live-old      active, created 2025-06-01 (ten days ago: live calls have no window)
//	ended-today   ended 10:00, code 1000
//	ended-3d      ended 2025-06-07 12:00, code 3000
//	ended-8d      ended 2025-06-02 12:00 (outside the default 7 days), code 3000
//	ended-40d     ended 2025-05-01 12:00, code 2000
func mpcSet(t *testing.T) (*plivotest.Server, time.Time) {
	t.Helper()
	now := time.Date(2025, 6, 10, 12, 0, 0, 0, time.UTC)
	s := plivotest.NewServer(plivotest.WithClock(func() time.Time { return now }))
	t.Cleanup(s.Close)
	specs := []plivotest.MPCSpec{
		{Name: "live-old", Created: now.AddDate(0, 0, -9)},
		{Name: "ended-40d", Status: "ended", Created: now.AddDate(0, 0, -40).Add(-time.Hour), Ended: now.AddDate(0, 0, -40),
			TerminationCause: "Max Duration Reached", TerminationCauseCode: 2000},
		{Name: "ended-8d", Status: "ended", Created: now.AddDate(0, 0, -8).Add(-time.Hour), Ended: now.AddDate(0, 0, -8)},
		{Name: "ended-3d", Status: "ENDED", Created: now.AddDate(0, 0, -3).Add(-time.Hour), Ended: now.AddDate(0, 0, -3)},
		{Name: "ended-today", Status: "Ended", Created: now.Add(-3 * time.Hour), Ended: now.Add(-2 * time.Hour),
			TerminationCause: "No Active Participants", TerminationCauseCode: 1000},
		{Name: "live-new", Created: now.Add(-10 * time.Minute)},
		{Name: "waiting", Status: "initialized", Created: now.Add(-5 * time.Minute)},
	}
	for _, spec := range specs {
		if _, err := s.CreateMPC(spec); err != nil {
			t.Fatal(err)
		}
	}
	return s, now
}

func names(t *testing.T, r reply) []string {
	t.Helper()
	objects, ok := r.obj["objects"].([]any)
	if !ok {
		t.Fatalf("no objects: %s", r.raw)
	}
	out := []string{}
	for _, o := range objects {
		out = append(out, o.(map[string]any)["friendly_name"].(string))
	}
	return out
}

func TestListMPCsFilters(t *testing.T) {
	t.Parallel()
	s, _ := mpcSet(t)
	live := []string{"waiting", "live-new", "live-old"}
	tests := []struct {
		query string
		want  []string // nil: a 400
	}{
		{"", append(live, "ended-today", "ended-3d")},
		{"status=active", []string{"live-new", "live-old"}},
		{"status=initialized", []string{"waiting"}},
		{"status=Initialized", []string{"waiting"}},
		{"status=ended", []string{"ended-today", "ended-3d"}},
		// One side only: a 30-day window from (or to) it.
		{"status=ended&end_time__gte=2025-05-01 00:00", []string{"ended-40d"}},
		{"status=ended&end_time__gt=2025-05-01 12:00", []string{}},
		{"end_time__lt=2025-06-09 00:00", []string{"ended-3d", "ended-8d"}},
		{"end_time__lte=2025-05-31 12:00", []string{"ended-40d"}},
		{"end_time__gte=2025-05-01 00:00&end_time__lte=2025-06-10 12:00", []string{"ended-today", "ended-3d", "ended-8d", "ended-40d"}},
		{"end_time__gte=2025-06-02 12:00:00&end_time__lte=2025-06-07 12:00:00.000000", []string{"ended-3d", "ended-8d"}},
		{"end_time__gt=2025-06-02 12:00:00&end_time__lt=2025-06-07 12:00", []string{}},
		{"creation_time__gte=2025-06-10 09:00", []string{"waiting", "live-new", "ended-today"}},
		{"creation_time__gt=2025-06-10 09:00", []string{"waiting", "live-new"}},
		{"creation_time__lt=2025-06-05 00:00&status=active", []string{"live-old"}},
		{"termination_cause_code=1000", []string{"ended-today"}},
		{"termination_cause_code=3000&end_time__gte=2025-05-20 00:00", []string{"ended-3d", "ended-8d"}},
		{"friendly_name=live-new", []string{"live-new"}},
		{"friendly_name=ended-8d", []string{}},
		{"friendly_name=LIVE-NEW", []string{}},
		{"status=paused", nil},
		{"status=", nil},
		{"termination_cause_code=x", nil},
		{"end_time__gt=2025-06-01", nil},
		{"end_time__gt=2025-06-01T00:00", nil},
		{"end_time__lte=2025-13-01 00:00", nil},
		{"creation_time__gte=yesterday", nil},
		{"creation_time__gte=2025-06-01 00:00:00.1234567", nil},
		{"limit=21", nil},
		{"offset=-1", nil},
		{"sub_account=SA0000000000000000000&unknown=1", append(live, "ended-today", "ended-3d")}, // ignored
	}
	for _, tt := range tests {
		t.Run(tt.query, func(t *testing.T) {
			t.Parallel()
			q, err := url.ParseQuery(tt.query)
			if err != nil {
				t.Fatal(err)
			}
			r := do(t, s, call{method: "GET", path: "?" + q.Encode()})
			if tt.want == nil {
				checkError(t, r, 400, "")
				return
			}
			if r.status != 200 {
				t.Fatalf("status %d: %s", r.status, r.raw)
			}
			if got := names(t, r); strings.Join(got, ",") != strings.Join(tt.want, ",") {
				t.Errorf("MPCs %v, want %v", got, tt.want)
			}
			if meta := r.obj["meta"].(map[string]any); meta["count"] != float64(len(tt.want)) {
				t.Errorf("meta.count = %v, want %d", meta["count"], len(tt.want))
			}
		})
	}
}

// Paging over a filtered list keeps the filters in meta.next and
// meta.previous, and walking the next links visits every MPC once.
func TestListMPCsPagingKeepsFilters(t *testing.T) {
	t.Parallel()
	s := plivotest.NewServer()
	t.Cleanup(s.Close)
	for i := range 45 {
		s.AddParticipant(fmt.Sprintf("call %02d", i), plivotest.RoleAgent)
	}
	s.AddWaitingParticipant("queue", plivotest.RoleCustomer)
	base := "/v1/Account/" + s.AuthID + "/MultiPartyCall/"
	r := do(t, s, call{method: "GET", path: "?status=active&limit=20&offset=20"})
	meta := r.obj["meta"].(map[string]any)
	want := map[string]any{"count": 45.0, "limit": 20.0, "offset": 20.0,
		"next": base + "?limit=20&offset=40&status=active", "previous": base + "?limit=20&offset=0&status=active"}
	for k, v := range want {
		if meta[k] != v {
			t.Errorf("meta.%s = %v, want %v", k, meta[k], v)
		}
	}
	seen := map[string]bool{}
	path := base + "?status=active"
	for pages := 0; path != ""; pages++ {
		if pages > 5 {
			t.Fatal("too many pages")
		}
		r := do(t, s, call{method: "GET", path: path})
		for _, n := range names(t, r) {
			if seen[n] || n == "queue" {
				t.Errorf("%s listed twice or with the wrong status", n)
			}
			seen[n] = true
		}
		path, _ = r.obj["meta"].(map[string]any)["next"].(string)
	}
	if len(seen) != 45 {
		t.Errorf("%d MPCs seen, want 45", len(seen))
	}
}

// Objects of every status have the shape of Plivo's: Initialized has no
// start_time, ended ones carry their termination and duration.
func TestListMPCsObjects(t *testing.T) {
	t.Parallel()
	s, now := mpcSet(t)
	r := do(t, s, call{method: "GET", path: "?end_time__gte=2025-06-01+00:00"})
	byName := map[string]map[string]any{}
	for _, o := range r.obj["objects"].([]any) {
		m := o.(map[string]any)
		byName[m["friendly_name"].(string)] = m
	}
	stamp := func(t time.Time) string { return t.Format("2006-01-02 15:04:05+00:00") }
	tests := map[string]map[string]any{
		"ended-today": {"status": "Ended", "creation_time": stamp(now.Add(-3 * time.Hour)), "start_time": stamp(now.Add(-3 * time.Hour)),
			"end_time": stamp(now.Add(-2 * time.Hour)), "duration": 3600.0, "termination_cause": "No Active Participants",
			"termination_cause_code": 1000.0, "recording": nil},
		"ended-3d": {"status": "Ended", "termination_cause": "Hangup API Triggered", "termination_cause_code": 3000.0},
	}
	for name, want := range tests {
		got, ok := byName[name]
		if !ok {
			t.Fatalf("%s not listed: %s", name, r.raw)
		}
		for k, v := range want {
			if got[k] != v {
				t.Errorf("%s: %s = %#v, want %#v", name, k, got[k], v)
			}
		}
	}
	// Live calls are listed only without an end_time filter.
	r = do(t, s, call{method: "GET", path: "?status=initialized"})
	w := r.obj["objects"].([]any)[0].(map[string]any)
	if w["status"] != "Initialized" || w["start_time"] != nil || w["end_time"] != nil || w["recording"] != "not-recording" {
		t.Errorf("initialized MPC = %v", w)
	}
}
