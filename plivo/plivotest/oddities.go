package plivotest

import (
	"encoding/json"
	"net/http"
	"net/url"
	"slices"
	"strings"
)

// oddities are the knobs for real-world answers that are not Plivo's
// documented shape; see the setters below. Guarded by Server.mu.
type oddities struct {
	forbidden string
	authShape AuthErrorShape
	oversized int
	echo      EchoMode
}

// SetForbidden makes every authenticated request for this account get 403
// {"api_id","error": reason}, as Plivo answers when geo permissions block a
// request or the account is not verified yet; "" turns it off. It is
// checked after the credentials and the account id, before the account
// limit, and changes nothing.
func (s *Server) SetForbidden(reason string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.odd.forbidden = reason
}

// AuthErrorShape is the body of 401 answers (SetAuthErrorShape).
type AuthErrorShape int

// Bodies of 401 answers. Real ones may lack api_id or be a plain JSON
// string (plivo-api.md §4.1).
const (
	// AuthErrorPlivo is {"api_id","error"}, the default.
	AuthErrorPlivo AuthErrorShape = iota
	// AuthErrorNoAPIID is {"error": text}.
	AuthErrorNoAPIID
	// AuthErrorString is the text as one JSON string: "text".
	AuthErrorString
)

// SetAuthErrorShape sets the body of 401 answers.
func (s *Server) SetAuthErrorShape(shape AuthErrorShape) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.odd.authShape = shape
}

// SetOversized makes answers carry oversized, odd data: the api_id, the
// error text and Update Participant's result strings of every JSON answer
// get n runes of filler appended (a bidi override, a zero-width space, a
// bell, a newline and a tab, then 'x's). 0 turns it off. With
// AddParticipantWithID (a huge member_id) it covers what a client must
// bound before showing anything to a user.
func (s *Server) SetOversized(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.odd.oversized = max(n, 0)
}

// EchoMode is how error answers echo the request (SetEchoHeaders), as a
// debugging proxy in front of an API might. The echo includes the
// Authorization header and the URL with the credentials: the client must
// redact them.
type EchoMode int

// Echo modes.
const (
	// EchoOff: no echo (the default; the server never echoes credentials).
	EchoOff EchoMode = iota
	// EchoInText appends the request to the error text: {"api_id","error":
	// "<text> (request: POST http://id:token@host/path; headers: Accept: …;
	// Authorization: Basic …; …)"}, the credentials percent-encoded in the
	// URL as net/url does.
	EchoInText
	// EchoNested puts them in an object under "error" that has no message
	// key: {"api_id","error":{"code":"<text>","request":{"method":…,"url":…,"headers":{…}}}}.
	EchoNested
)

// SetEchoHeaders makes every error answer (status 400 and above, with a
// Plivo-shaped body) echo the request's headers as mode says.
func (s *Server) SetEchoHeaders(mode EchoMode) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.odd.echo = mode
}

// authError is the 401 answer with text, shaped by SetAuthErrorShape.
func (s *Server) authError(text string) response {
	s.mu.Lock()
	shape := s.odd.authShape
	s.mu.Unlock()
	resp := response{status: http.StatusUnauthorized}
	switch shape {
	case AuthErrorNoAPIID:
		resp.body, _ = json.Marshal(map[string]string{"error": text})
	case AuthErrorString:
		resp.body, _ = json.Marshal(text)
	default:
		resp.body = errorBody(text)
	}
	return resp
}

// oddLocked applies the echo and oversize knobs to an answer to r.
func (s *Server) oddLocked(resp response, r *http.Request) response {
	if s.odd.echo == EchoOff && s.odd.oversized == 0 {
		return resp
	}
	var obj map[string]any
	if json.Unmarshal(resp.body, &obj) != nil || obj == nil {
		return resp
	}
	if text, ok := obj["error"].(string); ok && resp.status >= 400 {
		switch s.odd.echo {
		case EchoInText:
			obj["error"] = text + " (request: " + r.Method + " " + requestURL(r) + "; headers: " + headerText(r.Header) + ")"
		case EchoNested:
			obj["error"] = map[string]any{"code": text, "request": map[string]any{
				"method": r.Method, "url": requestURL(r), "headers": r.Header,
			}}
		}
	}
	if n := s.odd.oversized; n > 0 {
		for _, key := range []string{"api_id", "error", "mute", "hold", "coach_mode"} {
			if v, ok := obj[key].(string); ok {
				obj[key] = v + filler(n)
			}
		}
	}
	body, err := json.Marshal(obj)
	if err != nil {
		return resp
	}
	resp.body = body
	return resp
}

// requestURL is r's URL as a proxy log might write it, with the basic
// auth credentials as userinfo: http://id:token@host/path?query.
func requestURL(r *http.Request) string {
	u := url.URL{Scheme: "http", Host: r.Host, Path: r.URL.Path, RawPath: r.URL.RawPath, RawQuery: r.URL.RawQuery}
	if user, pass, ok := r.BasicAuth(); ok {
		u.User = url.UserPassword(user, pass)
	}
	return u.String()
}

// headerText renders headers as "Name: value, value; Name: value", sorted.
func headerText(h http.Header) string {
	names := make([]string, 0, len(h))
	for name := range h {
		names = append(names, name)
	}
	slices.Sort(names)
	parts := make([]string, len(names))
	for i, name := range names {
		parts[i] = name + ": " + strings.Join(h[name], ", ")
	}
	return strings.Join(parts, "; ")
}

// filler returns n runes of odd text: invisible and control characters
// first, then 'x's.
func filler(n int) string {
	const odd = "\u202e\u200b\a\n\t"
	if n <= len(odd) {
		return string([]rune(odd)[:n])
	}
	return odd + strings.Repeat("x", n-len([]rune(odd)))
}
