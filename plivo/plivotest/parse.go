package plivotest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
)

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
