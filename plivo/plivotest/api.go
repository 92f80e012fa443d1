package plivotest

import (
	"crypto/subtle"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"net/url"
	"strconv"
	"strings"
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
