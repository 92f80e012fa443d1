package plivotest

import (
	"bytes"
	"crypto/subtle"
	"encoding/json"
	"fmt"
	"math"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Error texts that clients and tests may want to match.
const (
	ErrTextNoCredentials   = "authentication credentials were not provided"
	ErrTextBadCredentials  = "authentication failed: invalid auth id or auth token"
	ErrTextWrongAccount    = "authentication failed: the auth id in the path is not the authenticated account"
	ErrTextTooManyRequests = "too many requests"
	ErrTextCoachModeAll    = "coach_mode can be updated only for a specific member_id"
	ErrTextNoField         = "nothing to update: give at least one of mute, hold or coach_mode"
	ErrTextContentType     = "Content-Type must be application/json"
)

// Pagination bounds of Plivo's list endpoints.
const (
	maxLimit     = 20
	defaultLimit = 20
)

// apiError is a Plivo-shaped error answer.
type apiError struct {
	status int
	text   string
}

func errorResponse(status int, text string) response {
	return response{status: status, body: errorBody(text)}
}

func (e *apiError) response() response { return errorResponse(e.status, e.text) }

func errorBody(text string) []byte {
	b, _ := json.Marshal(struct {
		APIID string `json:"api_id"`
		Error string `json:"error"`
	}{newUUID(), text})
	return b
}

func jsonResponse(status int, v any) response {
	b, err := json.Marshal(v)
	if err != nil {
		return errorResponse(http.StatusInternalServerError, "plivotest: encoding the response: "+err.Error())
	}
	return response{status: status, body: b}
}

// handle computes the normal answer to a request; it changes state for the
// operations that do. The checks run in this order: credentials, account id
// in the path, SetForbidden, account limit, path, method, request body, MPC,
// member.
func (s *Server) handle(r *http.Request, rt route, body []byte, readErr error, tooLarge bool) response {
	user, pass, ok := r.BasicAuth()
	if !ok {
		return s.authError(ErrTextNoCredentials)
	}
	if subtle.ConstantTimeCompare([]byte(user), []byte(s.AuthID)) != 1 ||
		subtle.ConstantTimeCompare([]byte(pass), []byte(s.AuthToken)) != 1 {
		return s.authError(ErrTextBadCredentials)
	}
	if rt.authID != "" && rt.authID != s.AuthID {
		return s.authError(ErrTextWrongAccount)
	}

	// Stateless parsing happens before taking the lock; its errors are
	// reported after the account limit and path checks.
	var upd update
	var bodyErr *apiError
	var query url.Values
	var queryErr error
	switch rt.op {
	case OpUpdateParticipant:
		upd, bodyErr = parseUpdate(r.Header.Get("Content-Type"), body, readErr, tooLarge, rt.member)
	case OpListParticipants, OpListMPCs:
		query, queryErr = url.ParseQuery(r.URL.RawQuery)
	case OpActivateMPC:
		bodyErr = parseActivate(r.Header.Get("Content-Type"), body, readErr, tooLarge)
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	if s.odd.forbidden != "" {
		return errorResponse(http.StatusForbidden, s.odd.forbidden)
	}
	if resp, limited := s.takeBudgetLocked(); limited {
		return resp
	}
	if rt.notFound != "" {
		return errorResponse(http.StatusNotFound, rt.notFound)
	}
	if rt.op == "" {
		resp := errorResponse(http.StatusMethodNotAllowed, fmt.Sprintf("method %s not allowed (allowed: %s)", r.Method, rt.allow))
		resp.header = map[string]string{"Allow": rt.allow}
		return resp
	}
	if queryErr != nil {
		return errorResponse(http.StatusBadRequest, "invalid query string: "+queryErr.Error())
	}
	switch rt.op {
	case OpListMPCs:
		return s.listMPCsLocked(query)
	case OpUpdateParticipant:
		if bodyErr != nil {
			return bodyErr.response()
		}
		return s.updateLocked(rt, upd)
	case OpAddParticipant:
		return errorResponse(http.StatusNotImplemented, "plivotest: Add Participant over HTTP is not simulated; use Server.AddParticipant")
	}

	if bodyErr != nil { // Activate MPC
		return bodyErr.response()
	}
	m, aerr := s.resolveLocked(rt.mpcSeg)
	if aerr != nil {
		return aerr.response()
	}
	switch rt.op {
	case OpGetMPC:
		return jsonResponse(http.StatusOK, struct {
			APIID string `json:"api_id"`
			mpcJSON
		}{newUUID(), s.mpcObject(m, rt.mpcSeg)})
	case OpActivateMPC:
		// Plivo: "Returns 404 Not Found if the MPC is not found for the
		// given name or UUID in the initiated state. Else, returns 204
		// without content."
		if !m.initialized || m.ended {
			return errorResponse(http.StatusNotFound, fmt.Sprintf("MPC %q is not in the initialized state", m.name))
		}
		m.start(s.now())
		return response{status: http.StatusNoContent, applied: true}
	case OpEndMPC:
		if m.ended {
			return errorResponse(http.StatusNotFound, fmt.Sprintf("MPC %q has already ended", m.name))
		}
		s.endLocked(m)
		return response{status: http.StatusNoContent, applied: true}
	case OpListParticipants:
		return s.listParticipantsLocked(m, rt.mpcSeg, query)
	case OpGetParticipant:
		id, err := url.PathUnescape(rt.member)
		if err != nil {
			return errorResponse(http.StatusBadRequest, "member_id in the path is not valid percent-encoding")
		}
		p, ok := m.byMember[id]
		if !ok {
			return errorResponse(http.StatusNotFound, memberNotFound(id, m))
		}
		return jsonResponse(http.StatusOK, struct {
			APIID string `json:"api_id"`
			participantJSON
		}{newUUID(), s.participantObject(m, p, rt.mpcSeg)})
	case OpKickParticipant:
		return s.kickLocked(m, rt.member)
	}
	return errorResponse(http.StatusInternalServerError, "plivotest: unhandled operation "+rt.op)
}

// takeBudgetLocked counts a request against the account limit, or answers
// 429 if the budget is spent.
func (s *Server) takeBudgetLocked() (response, bool) {
	if s.limit <= 0 {
		return response{}, false
	}
	now := s.now()
	if len(s.limitLog) == s.limit {
		oldest := s.limitLog[s.limitStart]
		if wait := oldest.Add(s.window).Sub(now); wait > 0 {
			resp := errorResponse(http.StatusTooManyRequests, ErrTextTooManyRequests)
			if s.limitRetryHint {
				secs := max(int(math.Ceil(wait.Seconds())), 1)
				resp.header = map[string]string{"Retry-After": strconv.Itoa(secs)}
			}
			return resp, true
		}
		s.limitLog[s.limitStart] = now
		s.limitStart = (s.limitStart + 1) % s.limit
		return response{}, false
	}
	s.limitLog = append(s.limitLog, now)
	return response{}, false
}

// resolveLocked finds the MPC an escaped {mpc} path segment addresses:
// name_<percent-encoded friendly name> matches live MPCs only, uuid_<uuid>
// matches any MPC.
func (s *Server) resolveLocked(seg string) (*mpc, *apiError) {
	if enc, ok := strings.CutPrefix(seg, "name_"); ok {
		name, err := url.PathUnescape(enc)
		if err != nil {
			return nil, &apiError{http.StatusBadRequest, "MPC name in the path is not valid percent-encoding"}
		}
		if name == "" {
			return nil, &apiError{http.StatusNotFound, "MPC name is empty"}
		}
		if m, ok := s.liveByName[name]; ok {
			return m, nil
		}
		for _, m := range s.mpcs {
			if m.name == name {
				return nil, &apiError{http.StatusNotFound, fmt.Sprintf("MPC %q not found: it has ended (ended MPCs can be found only by uuid)", name)}
			}
		}
		return nil, &apiError{http.StatusNotFound, fmt.Sprintf("MPC %q not found", name)}
	}
	if enc, ok := strings.CutPrefix(seg, "uuid_"); ok {
		id, err := url.PathUnescape(enc)
		if err != nil {
			return nil, &apiError{http.StatusBadRequest, "MPC uuid in the path is not valid percent-encoding"}
		}
		if m, ok := s.byUUID[strings.ToLower(id)]; ok {
			return m, nil
		}
		return nil, &apiError{http.StatusNotFound, fmt.Sprintf("MPC with uuid %q not found", id)}
	}
	return nil, &apiError{http.StatusNotFound, fmt.Sprintf("MPC %q not found: the MPC must be given as name_<friendly name> or uuid_<mpc uuid>", seg)}
}

func memberNotFound(id string, m *mpc) string {
	return fmt.Sprintf("member %q not found in MPC %q", id, m.name)
}

func memberLeft(id string, m *mpc) string {
	return fmt.Sprintf("member %q has left MPC %q", id, m.name)
}

// update is a parsed Update Participant request.
type update struct {
	mute, hold, coachMode *bool
	all                   bool
	ids                   []string
}

// parseUpdate validates an Update Participant request body and member
// segment without looking at state.
func parseUpdate(contentType string, body []byte, readErr error, tooLarge bool, memberSeg string) (update, *apiError) {
	var u update
	bad := func(format string, args ...any) (update, *apiError) {
		return update{}, &apiError{http.StatusBadRequest, fmt.Sprintf(format, args...)}
	}
	mediaType, _, err := mime.ParseMediaType(contentType)
	if err != nil || mediaType != "application/json" {
		return bad("%s (got %q)", ErrTextContentType, contentType)
	}
	switch {
	case readErr != nil:
		return bad("reading the request body: %v", readErr)
	case tooLarge:
		return bad("request body is larger than %d bytes", maxBodyBytes)
	}
	trimmed := bytes.TrimSpace(body)
	if len(trimmed) == 0 || trimmed[0] != '{' {
		return bad("request body must be a JSON object")
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(trimmed, &raw); err != nil {
		return bad("request body is not valid JSON: %v", err)
	}
	for _, key := range []string{"callback_url", "callback_method"} {
		if _, ok := raw[key]; ok {
			return bad("plivotest: %s (the asynchronous API) is not simulated", key)
		}
	}
	fields := []struct {
		key string
		dst **bool
	}{{"mute", &u.mute}, {"hold", &u.hold}, {"coach_mode", &u.coachMode}, {"disable_state_change_sound", nil}}
	for _, f := range fields {
		v, ok := raw[f.key]
		if !ok {
			continue
		}
		var b bool
		switch string(bytes.TrimSpace(v)) {
		case "true":
			b = true
		case "false":
			b = false
		default:
			return bad("%s must be a boolean (true or false), got %s", f.key, v)
		}
		if f.dst != nil {
			*f.dst = &b
		}
	}
	if u.mute == nil && u.hold == nil && u.coachMode == nil {
		return bad("%s", ErrTextNoField)
	}
	seg, err := url.PathUnescape(memberSeg)
	if err != nil {
		return bad("member_id in the path is not valid percent-encoding")
	}
	if strings.EqualFold(seg, "all") {
		u.all = true
	} else {
		u.ids = strings.Split(seg, ",")
	}
	if u.coachMode != nil && (u.all || len(u.ids) > 1) {
		return bad("%s", ErrTextCoachModeAll)
	}
	return u, nil
}

// parseActivate validates an Activate MPC body: a JSON object whose
// status is "active" (Plivo documents "Active"; any case).
func parseActivate(contentType string, body []byte, readErr error, tooLarge bool) *apiError {
	bad := func(format string, args ...any) *apiError {
		return &apiError{http.StatusBadRequest, fmt.Sprintf(format, args...)}
	}
	mediaType, _, err := mime.ParseMediaType(contentType)
	switch {
	case err != nil || mediaType != "application/json":
		return bad("%s (got %q)", ErrTextContentType, contentType)
	case readErr != nil:
		return bad("reading the request body: %v", readErr)
	case tooLarge:
		return bad("request body is larger than %d bytes", maxBodyBytes)
	}
	var req struct {
		Status json.RawMessage `json:"status"`
	}
	trimmed := bytes.TrimSpace(body)
	if len(trimmed) == 0 || trimmed[0] != '{' || json.Unmarshal(trimmed, &req) != nil {
		return bad("request body must be a JSON object")
	}
	var status string
	if err := json.Unmarshal(req.Status, &status); err != nil || !strings.EqualFold(status, "active") {
		return bad("status must be \"active\", got %s", req.Status)
	}
	return nil
}

// targetsLocked resolves the members an update or kick addresses: every
// live participant for "all", else each listed member, which must exist
// and be live.
func targetsLocked(m *mpc, all bool, ids []string) ([]*participant, *apiError) {
	if m.ended {
		return nil, &apiError{http.StatusNotFound, fmt.Sprintf("MPC %q has ended", m.name)}
	}
	var out []*participant
	if all {
		for _, p := range m.members {
			if !p.exited {
				out = append(out, p)
			}
		}
		return out, nil
	}
	for _, id := range ids {
		p, ok := m.byMember[id]
		switch {
		case !ok:
			return nil, &apiError{http.StatusNotFound, memberNotFound(id, m)}
		case p.exited:
			return nil, &apiError{http.StatusNotFound, memberLeft(id, m)}
		}
		out = append(out, p)
	}
	return out, nil
}

type updateJSON struct {
	APIID     string `json:"api_id"`
	CoachMode string `json:"coach_mode,omitempty"`
	Hold      string `json:"hold,omitempty"`
	Mute      string `json:"mute,omitempty"`
}

// updateLocked applies an Update Participant. coach_mode only changes
// supervisors ("always false for others"); for other roles it is accepted
// and ignored.
func (s *Server) updateLocked(rt route, u update) response {
	m, aerr := s.resolveLocked(rt.mpcSeg)
	if aerr != nil {
		return aerr.response()
	}
	targets, aerr := targetsLocked(m, u.all, u.ids)
	if aerr != nil {
		return aerr.response()
	}
	for _, p := range targets {
		if u.mute != nil {
			p.mute = *u.mute
		}
		if u.hold != nil {
			p.hold = *u.hold
		}
		if u.coachMode != nil && p.role == RoleSupervisor {
			p.coachMode = *u.coachMode
		}
	}
	out := updateJSON{APIID: newUUID()}
	if u.mute != nil {
		out.Mute = "MPC: " + m.name + " mute/unmute member(s) " + s.spelling
	}
	if u.hold != nil {
		out.Hold = "MPC: " + m.name + " hold/unhold member(s) " + s.spelling
	}
	if u.coachMode != nil {
		out.CoachMode = "MPC: " + m.name + " coach_mode enable/disable " + s.spelling
	}
	resp := jsonResponse(s.updateStatus, out)
	resp.applied = true
	return resp
}

// kickLocked removes the addressed members ("all", an id or a
// comma-separated list) from the MPC: 204 without a body, as documented.
func (s *Server) kickLocked(m *mpc, memberSeg string) response {
	seg, err := url.PathUnescape(memberSeg)
	if err != nil {
		return errorResponse(http.StatusBadRequest, "member_id in the path is not valid percent-encoding")
	}
	all := strings.EqualFold(seg, "all")
	var ids []string
	if !all {
		ids = strings.Split(seg, ",")
	}
	targets, aerr := targetsLocked(m, all, ids)
	if aerr != nil {
		return aerr.response()
	}
	now := s.now()
	for _, p := range targets {
		p.exit(now, ExitKicked)
	}
	return response{status: http.StatusNoContent, applied: true}
}

// page is the "meta" object of Plivo list responses.
type page struct {
	Count    int     `json:"count"`
	Limit    int     `json:"limit"`
	Next     *string `json:"next"`
	Offset   int     `json:"offset"`
	Previous *string `json:"previous"`
}

// parsePage reads limit (1–20, default 20) and offset (>= 0, default 0).
func parsePage(q url.Values) (limit, offset int, aerr *apiError) {
	limit, offset = defaultLimit, 0
	if v := q.Get("limit"); q.Has("limit") {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > maxLimit {
			return 0, 0, &apiError{http.StatusBadRequest, fmt.Sprintf("limit must be an integer from 1 to %d, got %q", maxLimit, v)}
		}
		limit = n
	}
	if v := q.Get("offset"); q.Has("offset") {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			return 0, 0, &apiError{http.StatusBadRequest, fmt.Sprintf("offset must be a non-negative integer, got %q", v)}
		}
		offset = n
	}
	return limit, offset, nil
}

// pageMeta builds meta for a list of count items; links are relative URLs
// like Plivo's ("/v1/Account/…/?limit=20&offset=20"), carrying extra (an
// encoded filter query, "" for none).
func pageMeta(base string, count, limit, offset int, extra string) page {
	link := func(off int) *string {
		l := base + "?limit=" + strconv.Itoa(limit) + "&offset=" + strconv.Itoa(off)
		if extra != "" {
			l += "&" + extra
		}
		return &l
	}
	p := page{Count: count, Limit: limit, Offset: offset}
	if offset+limit < count {
		p.Next = link(offset + limit)
	}
	if offset > 0 {
		p.Previous = link(max(offset-limit, 0))
	}
	return p
}

func window[T any](items []T, limit, offset int) []T {
	if offset >= len(items) {
		return []T{}
	}
	return items[offset:min(offset+limit, len(items))]
}

// listParticipantsLocked answers List Participants: one entry per join,
// newest first (as in Plivo's documentation example), exited entries
// included, optionally filtered by call_uuid.
func (s *Server) listParticipantsLocked(m *mpc, seg string, q url.Values) response {
	limit, offset, aerr := parsePage(q)
	if aerr != nil {
		return aerr.response()
	}
	callUUID := q.Get("call_uuid")
	var matched []*participant
	for i := len(m.members) - 1; i >= 0; i-- {
		p := m.members[i]
		if callUUID == "" || strings.EqualFold(p.callUUID, callUUID) {
			matched = append(matched, p)
		}
	}
	objects := make([]participantJSON, 0, limit)
	for _, p := range window(matched, limit, offset) {
		objects = append(objects, s.participantObject(m, p, seg))
	}
	extra := ""
	if callUUID != "" {
		extra = "call_uuid=" + url.QueryEscape(callUUID)
	}
	base := accountPrefix + s.AuthID + "/MultiPartyCall/" + seg + "/Participant/"
	return jsonResponse(http.StatusOK, struct {
		APIID   string            `json:"api_id"`
		Meta    page              `json:"meta"`
		Objects []participantJSON `json:"objects"`
	}{newUUID(), pageMeta(base, len(matched), limit, offset, extra), objects})
}

// participantJSON is Plivo's participant object, keys as in the official
// fixtures.
type participantJSON struct {
	BilledAmount    *string `json:"billed_amount"`
	BilledDuration  *int    `json:"billed_duration"`
	CallUUID        string  `json:"call_uuid"`
	CoachMode       *bool   `json:"coach_mode"`
	Duration        *int    `json:"duration"`
	EndMPCOnExit    bool    `json:"end_mpc_on_exit"`
	ExitCause       *string `json:"exit_cause"`
	ExitTime        *string `json:"exit_time"`
	Hold            *bool   `json:"hold"`
	JoinTime        string  `json:"join_time"`
	MemberAddress   string  `json:"member_address"`
	MemberID        string  `json:"member_id"`
	MPCUUID         string  `json:"mpc_uuid"`
	Mute            *bool   `json:"mute"`
	ResourceURI     string  `json:"resource_uri"`
	Role            string  `json:"role"`
	StartMPCOnEnter bool    `json:"start_mpc_on_enter"`
}

// participantObject renders p; resource_uri echoes the {mpc} segment the
// request used, as Plivo's responses do.
func (s *Server) participantObject(m *mpc, p *participant, seg string) participantJSON {
	o := participantJSON{
		CallUUID:        p.callUUID,
		JoinTime:        formatTime(p.joined),
		MemberAddress:   "sip:plivotest" + p.memberID + "@phone.plivo.com",
		MemberID:        p.memberID,
		MPCUUID:         m.uuid,
		ResourceURI:     accountPrefix + s.AuthID + "/MultiPartyCall/" + seg + "/Participant/" + p.memberID + "/",
		Role:            p.role,
		StartMPCOnEnter: p.startOnEnter,
	}
	if p.exited {
		o.BilledAmount, o.BilledDuration, o.Duration = billing(p.joined, p.exitTime)
		o.ExitCause = ptr(p.exitCause)
		o.ExitTime = ptr(formatTime(p.exitTime))
	} else {
		o.Mute, o.Hold, o.CoachMode = ptr(p.mute), ptr(p.hold), ptr(p.coachMode)
	}
	return o
}

// mpcJSON is Plivo's MPC object, keys as in the official fixtures.
type mpcJSON struct {
	BilledAmount         *string `json:"billed_amount"`
	BilledDuration       *int    `json:"billed_duration"`
	CreationTime         *string `json:"creation_time"`
	Duration             *int    `json:"duration"`
	EndTime              *string `json:"end_time"`
	FriendlyName         string  `json:"friendly_name"`
	MPCUUID              string  `json:"mpc_uuid"`
	Participants         string  `json:"participants"`
	Recording            *string `json:"recording"`
	ResourceURI          string  `json:"resource_uri"`
	StartTime            *string `json:"start_time"`
	Status               string  `json:"status"`
	StayAlone            bool    `json:"stay_alone"`
	SubAccount           *string `json:"sub_account"`
	TerminationCause     *string `json:"termination_cause"`
	TerminationCauseCode *int    `json:"termination_cause_code"`
}

// MPC statuses as Plivo answers them (List MPCs filters on them in lower
// case, any case accepted).
const (
	StatusInitialized = "Initialized"
	StatusActive      = "Active"
	StatusEnded       = "Ended"
)

func mpcStatus(m *mpc) string {
	switch {
	case m.ended:
		return StatusEnded
	case m.initialized:
		return StatusInitialized
	}
	return StatusActive
}

// mpcObject renders m; resource_uri and participants echo the {mpc}
// segment the request used. Live MPCs are "not-recording"; ended ones
// report recording null, as in the fixtures. duration runs from start_time
// (creation_time when it never started) to end_time.
func (s *Server) mpcObject(m *mpc, seg string) mpcJSON {
	uri := accountPrefix + s.AuthID + "/MultiPartyCall/" + seg + "/"
	o := mpcJSON{
		FriendlyName: m.name,
		MPCUUID:      m.uuid,
		Participants: uri + "Participant/",
		ResourceURI:  uri,
		Status:       mpcStatus(m),
		StayAlone:    m.stayAlone,
	}
	if !m.noCreated {
		o.CreationTime = ptr(formatTime(m.created))
	}
	if !m.noStart {
		o.StartTime = ptr(formatTime(m.started))
	}
	if m.ended {
		from := m.started
		if m.noStart {
			from = m.created
		}
		o.BilledAmount, o.BilledDuration, o.Duration = billing(from, m.endTime)
		o.EndTime = ptr(formatTime(m.endTime))
		o.TerminationCause = ptr(m.cause)
		o.TerminationCauseCode = ptr(m.code)
	} else {
		o.Recording = ptr("not-recording")
	}
	return o
}

// billing returns billed_amount, billed_duration and duration for a leg
// from start to end: whole minutes (at least one) at 0.005 per minute.
func billing(start, end time.Time) (*string, *int, *int) {
	secs := max(int(end.Sub(start)/time.Second), 0)
	minutes := max((secs+59)/60, 1)
	amount := fmt.Sprintf("%.5f", float64(minutes)*0.005)
	return &amount, ptr(minutes * 60), &secs
}

func formatTime(t time.Time) string { return t.UTC().Format(timeLayout) }

func ptr[T any](v T) *T { return &v }
