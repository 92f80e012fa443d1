package slacktest

import (
	"cmp"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"mime"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Failure is an injected Web API failure (see FailNext).
type Failure struct {
	// Status is the HTTP status: 429 (rate limited), a 5xx, or 0 for 200 with a Slack error.
	Status int
	// RetryAfter is the Retry-After header in seconds, sent with a 429 when positive.
	RetryAfter int
	// Error is the Slack error code for {"ok":false,"error":…}; a 429 defaults to "ratelimited".
	Error string
}

// Call is one Web API or response_url request, successful or not.
type Call struct {
	Method string
	Time   time.Time
	Status int
	// Error is the Slack error code ("" when ok).
	Error string
	// Params are the request's parameters, token removed.
	Params map[string]string
}

// FailNext makes the next n calls of method fail with f, after authentication.
// method is a Web API method ("chat.postMessage", "apps.connections.open") or
// "response_url".
func (s *Server) FailNext(method string, n int, f Failure) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for range n {
		s.failNext[method] = append(s.failNext[method], f)
	}
}

// FailAlways makes every call of method fail with f until ClearFailures.
func (s *Server) FailAlways(method string, f Failure) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.failAlways[method] = f
}

// ClearFailures removes every injected failure for method.
func (s *Server) ClearFailures(method string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.failNext, method)
	delete(s.failAlways, method)
}

func (s *Server) takeFailure(method string) (Failure, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if q := s.failNext[method]; len(q) > 0 {
		s.failNext[method] = q[1:]
		return q[0], true
	}
	f, ok := s.failAlways[method]
	return f, ok
}

// Calls returns every Web API and response_url request so far, in order.
func (s *Server) Calls() []Call {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.calls)
}

// CallCount returns how many times method was called, failures included.
func (s *Server) CallCount(method string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.countCallsLocked(method)
}

func (s *Server) countCallsLocked(method string) int { return s.callCounts[method] }

// maxBodyBytes bounds what the server reads of a request body.
const maxBodyBytes = 4 << 20

// params is a request's parameters from a form, a query or a JSON body.
type params struct {
	values map[string]string
	json   bool
}

func (p params) get(k string) string { return p.values[k] }

func (p params) flag(k string) bool {
	b, _ := strconv.ParseBool(p.values[k])
	return b
}

func parseParams(r *http.Request) (params, error) {
	p := params{values: map[string]string{}}
	ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if ct == "application/json" {
		p.json = true
		body, err := io.ReadAll(io.LimitReader(r.Body, maxBodyBytes))
		if err != nil {
			return p, fmt.Errorf("read body: %w", err)
		}
		if len(strings.TrimSpace(string(body))) == 0 {
			return p, nil
		}
		var obj map[string]json.RawMessage
		if err := json.Unmarshal(body, &obj); err != nil {
			return p, fmt.Errorf("decode JSON body: %w", err)
		}
		for k, v := range obj {
			var str string
			if json.Unmarshal(v, &str) == nil {
				p.values[k] = str
			} else if string(v) != "null" {
				p.values[k] = string(v)
			}
		}
		for k, v := range r.URL.Query() {
			if _, ok := p.values[k]; !ok && len(v) > 0 {
				p.values[k] = v[0]
			}
		}
		return p, nil
	}
	if err := r.ParseForm(); err != nil {
		return p, fmt.Errorf("parse form: %w", err)
	}
	for k, v := range r.Form {
		if len(v) > 0 {
			p.values[k] = v[0]
		}
	}
	return p, nil
}

func bearerToken(r *http.Request) string {
	h := r.Header.Get("Authorization")
	if after, ok := strings.CutPrefix(h, "Bearer "); ok {
		return strings.TrimSpace(after)
	}
	return ""
}

// apiResult is a Web API answer.
type apiResult struct {
	status     int
	body       map[string]any
	retryAfter int
}

func okResult(fields map[string]any) apiResult {
	body := map[string]any{"ok": true}
	maps.Copy(body, fields)
	return apiResult{status: http.StatusOK, body: body}
}

func slackError(code string, messages ...string) apiResult {
	body := map[string]any{"ok": false, "error": code}
	if len(messages) > 0 {
		body["response_metadata"] = map[string]any{"messages": messages}
		plain := make([]string, len(messages))
		for i, m := range messages {
			plain[i] = strings.TrimPrefix(m, "[ERROR] ")
		}
		body["errors"] = plain
	}
	return apiResult{status: http.StatusOK, body: body}
}

func failureResult(f Failure) apiResult {
	switch {
	case f.Status == http.StatusTooManyRequests:
		r := slackError(cmp.Or(f.Error, "ratelimited"))
		r.status, r.retryAfter = f.Status, f.RetryAfter
		return r
	case f.Status >= 300:
		return apiResult{status: f.Status}
	default:
		return slackError(cmp.Or(f.Error, "internal_error"))
	}
}

func (s *Server) writeResult(w http.ResponseWriter, method string, p params, res apiResult) {
	call := Call{Method: method, Time: time.Now(), Status: res.status, Params: maps.Clone(p.values)}
	delete(call.Params, "token")
	if res.body != nil && res.body["ok"] == false {
		call.Error, _ = res.body["error"].(string)
	} else if res.status != http.StatusOK {
		call.Error = http.StatusText(res.status)
	}
	s.mu.Lock()
	s.calls = append(s.calls, call)
	s.callCounts[method]++
	s.notifyLocked()
	s.mu.Unlock()

	if res.retryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(res.retryAfter))
	}
	if res.body == nil {
		// Slack answers 5xx with an HTML page; slack-go does not parse it.
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.WriteHeader(res.status)
		_, _ = io.WriteString(w, "<html><body>Slack is having trouble</body></html>")
		return
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(res.status)
	_ = json.NewEncoder(w).Encode(res.body)
}

// handleAPI serves /api/<method>.
func (s *Server) handleAPI(w http.ResponseWriter, r *http.Request) {
	method := strings.TrimPrefix(r.URL.Path, "/api/")
	p, err := parseParams(r)
	if err != nil {
		code := "invalid_form_data"
		if p.json {
			code = "invalid_json"
		}
		s.writeResult(w, method, p, slackError(code))
		return
	}
	if method == "apps.connections.open" {
		s.writeResult(w, method, p, s.handleOpen(r, p))
		return
	}
	var h func(params) apiResult
	switch method {
	case "chat.postMessage":
		h = s.chatPostMessage
	case "chat.postEphemeral":
		h = s.chatPostEphemeral
	case "chat.update":
		h = s.chatUpdate
	case "views.publish":
		h = s.viewsPublish
	case "bots.info":
		h = s.botsInfo
	case "users.info":
		h = s.usersInfo
	case "usergroups.users.list":
		h = s.userGroupsUsersList
	case "auth.test":
		h = s.authTest
	default:
		s.writeResult(w, method, p, slackError("unknown_method"))
		return
	}
	if code := s.authenticateBot(r, p); code != "" {
		s.writeResult(w, method, p, slackError(code))
		return
	}
	if f, failed := s.takeFailure(method); failed {
		s.writeResult(w, method, p, failureResult(f))
		return
	}
	s.writeResult(w, method, p, h(p))
}

// authenticateBot checks for the bot token: from the Authorization header, or
// the token parameter of a form (a JSON body must use the header).
func (s *Server) authenticateBot(r *http.Request, p params) string {
	tok := bearerToken(r)
	if tok == "" && !p.json {
		tok = p.get("token")
	}
	switch {
	case tok == "":
		return "not_authed"
	case tok == s.cfg.botToken:
		return ""
	case tok == s.cfg.appToken:
		return "not_allowed_token_type"
	default:
		return "invalid_auth"
	}
}

func (s *Server) usersInfo(p params) apiResult {
	s.mu.Lock()
	defer s.mu.Unlock()
	userObj := func(id string) (map[string]any, bool) {
		name, ok := s.users[id]
		if !ok {
			return nil, false
		}
		return map[string]any{
			"id": id, "team_id": s.cfg.teamID, "name": name, "real_name": name, "deleted": false,
			"is_bot":  id == s.cfg.botUserID,
			"profile": map[string]any{"real_name": name, "display_name": name},
		}, true
	}
	if list := p.get("users"); list != "" {
		var users []map[string]any
		for _, id := range strings.Split(list, ",") {
			u, ok := userObj(strings.TrimSpace(id))
			if !ok {
				return slackError("user_not_found")
			}
			users = append(users, u)
		}
		return okResult(map[string]any{"users": users})
	}
	u, ok := userObj(p.get("user"))
	if !ok {
		return slackError("user_not_found")
	}
	return okResult(map[string]any{"user": u})
}

func (s *Server) userGroupsUsersList(p params) apiResult {
	s.mu.Lock()
	defer s.mu.Unlock()
	id := p.get("usergroup")
	if id == "" {
		return slackError("invalid_arguments")
	}
	users, ok := s.groups[id]
	if !ok {
		return slackError("no_such_subteam")
	}
	return okResult(map[string]any{"users": append([]string{}, users...)})
}

func (s *Server) authTest(params) apiResult {
	return okResult(map[string]any{
		"url":  "https://" + s.cfg.teamDomain + ".slack.com/",
		"team": s.cfg.teamDomain, "user": s.cfg.botName, "team_id": s.cfg.teamID,
		"user_id": s.cfg.botUserID, "bot_id": s.cfg.botID, "app_id": s.cfg.appID,
		"is_enterprise_install": false,
	})
}

// botsInfo answers for the app's own bot only: the same bot id, user id and
// app id as auth.test, hello and every payload.
func (s *Server) botsInfo(p params) apiResult {
	switch p.get("bot") {
	case "":
		return slackError("missing_argument")
	case s.cfg.botID:
		return okResult(map[string]any{"bot": map[string]any{
			"id": s.cfg.botID, "deleted": false, "name": s.cfg.botName, "updated": 1700000000,
			"app_id": s.cfg.appID, "user_id": s.cfg.botUserID,
			"icons": map[string]any{"image_36": "https://a.slack-edge.com/bot_36.png"},
		}})
	default:
		return slackError("bot_not_found")
	}
}
