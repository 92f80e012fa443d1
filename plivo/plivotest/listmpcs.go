package plivotest

import (
	"cmp"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Plivo's List MPC time windows: without an end_time filter it searches
// the last 7 days; with only one side of an end_time range given, 30 days
// from (or to) it.
const (
	defaultEndWindow = 7 * 24 * time.Hour
	oneSidedWindow   = 30 * 24 * time.Hour
)

// queryTimeRE is Plivo's format for time filters, UTC: YYYY-MM-DD HH:MM,
// optionally with :ss and .uuuuuu (the pattern the Python SDK checks).
var queryTimeRE = regexp.MustCompile(`^\d{4}-\d{2}-\d{2} \d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?$`)

// timeBound is one time filter, e.g. end_time__gte.
type timeBound struct {
	op string // "gt", "gte", "lt" or "lte"
	t  time.Time
}

func (b timeBound) admits(t time.Time) bool {
	switch b.op {
	case "gt":
		return t.After(b.t)
	case "gte":
		return !t.Before(b.t)
	case "lt":
		return t.Before(b.t)
	}
	return !t.After(b.t) // lte
}

func (b timeBound) lower() bool { return b.op == "gt" || b.op == "gte" }

// mpcFilter is a parsed List MPC query.
type mpcFilter struct {
	name    *string
	status  string // lower case; "" for any
	code    *int
	created []timeBound
	ended   []timeBound // empty: the default window applies to ended MPCs
	links   string      // the filters, encoded, for meta.next and previous
}

// parseMPCFilter reads List MPC's documented filters: friendly_name,
// status (initialized, active or ended, any case), termination_cause_code
// (an integer) and creation_time__/end_time__ gt, gte, lt, lte. Other
// parameters are ignored.
func parseMPCFilter(q url.Values) (mpcFilter, *apiError) {
	var f mpcFilter
	links := url.Values{}
	if q.Has("friendly_name") {
		name := q.Get("friendly_name")
		f.name = &name
		links.Set("friendly_name", name)
	}
	if q.Has("status") {
		f.status = strings.ToLower(q.Get("status"))
		switch f.status {
		case "initialized", "active", "ended":
		default:
			return f, &apiError{http.StatusBadRequest, fmt.Sprintf("status must be one of initialized, active or ended, got %q", q.Get("status"))}
		}
		links.Set("status", f.status)
	}
	if q.Has("termination_cause_code") {
		code, err := strconv.Atoi(q.Get("termination_cause_code"))
		if err != nil {
			return f, &apiError{http.StatusBadRequest, fmt.Sprintf("termination_cause_code must be an integer, got %q", q.Get("termination_cause_code"))}
		}
		f.code = &code
		links.Set("termination_cause_code", strconv.Itoa(code))
	}
	for _, field := range []struct {
		name string
		dst  *[]timeBound
	}{{"creation_time", &f.created}, {"end_time", &f.ended}} {
		for _, op := range []string{"gt", "gte", "lt", "lte"} {
			key := field.name + "__" + op
			if !q.Has(key) {
				continue
			}
			v := q.Get(key)
			t, ok := parseQueryTime(v)
			if !ok {
				return f, &apiError{http.StatusBadRequest, fmt.Sprintf("%s must be a UTC time formatted YYYY-MM-DD HH:MM[:ss[.uuuuuu]], got %q", key, v)}
			}
			*field.dst = append(*field.dst, timeBound{op, t})
			links.Set(key, v)
		}
	}
	f.ended = withOneSidedWindow(f.ended)
	f.links = links.Encode()
	return f, nil
}

func parseQueryTime(v string) (time.Time, bool) {
	if !queryTimeRE.MatchString(v) {
		return time.Time{}, false
	}
	for _, layout := range []string{"2006-01-02 15:04:05.999999", "2006-01-02 15:04:05", "2006-01-02 15:04"} {
		if t, err := time.Parse(layout, v); err == nil {
			return t, true
		}
	}
	return time.Time{}, false // e.g. month 13
}

// withOneSidedWindow adds the implicit other side of an end_time range
// given on one side only: 30 days from the latest lower bound, or to the
// earliest upper bound.
func withOneSidedWindow(bounds []timeBound) []timeBound {
	var lower, upper []timeBound
	for _, b := range bounds {
		if b.lower() {
			lower = append(lower, b)
		} else {
			upper = append(upper, b)
		}
	}
	byTime := func(a, b timeBound) int { return a.t.Compare(b.t) }
	switch {
	case len(lower) > 0 && len(upper) == 0:
		from := slices.MaxFunc(lower, byTime).t
		bounds = append(bounds, timeBound{"lte", from.Add(oneSidedWindow)})
	case len(upper) > 0 && len(lower) == 0:
		to := slices.MinFunc(upper, byTime).t
		bounds = append(bounds, timeBound{"gte", to.Add(-oneSidedWindow)})
	}
	return bounds
}

// matchLocked reports whether m passes the filter at now. Live MPCs have
// no end_time: an explicit end_time filter excludes them, and the default
// 7-day window applies to ended MPCs only. A null creation_time or
// termination_cause_code matches no filter on it.
func (f mpcFilter) matchLocked(m *mpc, now time.Time) bool {
	switch {
	case f.name != nil && m.name != *f.name:
		return false
	case f.status != "" && f.status != strings.ToLower(mpcStatus(m)):
		return false
	case f.code != nil && (!m.ended || m.code != *f.code):
		return false
	case len(f.created) > 0 && m.noCreated:
		return false
	}
	for _, b := range f.created {
		if !b.admits(m.created) {
			return false
		}
	}
	if !m.ended {
		return len(f.ended) == 0
	}
	if len(f.ended) == 0 {
		return !m.endTime.Before(now.Add(-defaultEndWindow))
	}
	for _, b := range f.ended {
		if !b.admits(m.endTime) {
			return false
		}
	}
	return true
}

// listMPCsLocked answers List MPCs: live MPCs first (newest creation
// first), then ended ones by end_time, latest first (the order of Plivo's
// fixtures); MPCs added later come first among equals.
func (s *Server) listMPCsLocked(q url.Values) response {
	limit, offset, aerr := parsePage(q)
	if aerr != nil {
		return aerr.response()
	}
	f, aerr := parseMPCFilter(q)
	if aerr != nil {
		return aerr.response()
	}
	now := s.now()
	var matched []*mpc
	for i := len(s.mpcs) - 1; i >= 0; i-- {
		if f.matchLocked(s.mpcs[i], now) {
			matched = append(matched, s.mpcs[i])
		}
	}
	slices.SortStableFunc(matched, func(a, b *mpc) int {
		if a.ended != b.ended {
			if a.ended {
				return 1
			}
			return -1
		}
		if a.ended {
			return b.endTime.Compare(a.endTime)
		}
		return cmp.Or(cmp.Compare(boolInt(a.noCreated), boolInt(b.noCreated)), b.created.Compare(a.created))
	})
	objects := make([]mpcJSON, 0, limit)
	for _, m := range window(matched, limit, offset) {
		objects = append(objects, s.mpcObject(m, "uuid_"+m.uuid))
	}
	base := accountPrefix + s.AuthID + "/MultiPartyCall/"
	return jsonResponse(http.StatusOK, struct {
		APIID   string    `json:"api_id"`
		Meta    page      `json:"meta"`
		Objects []mpcJSON `json:"objects"`
	}{newUUID(), pageMeta(base, len(matched), limit, offset, f.links), objects})
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}
