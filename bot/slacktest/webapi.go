package slacktest

import (
	"cmp"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"mime"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
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
		body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
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

var tsPattern = regexp.MustCompile(`^\d{1,10}\.\d{6}$`)

// channelForPostLocked checks that the bot may post to the channel.
func (s *Server) channelForPostLocked(id string) (*channel, string) {
	ch := s.channels[id]
	if ch == nil {
		return nil, "channel_not_found"
	}
	if !ch.botMember {
		if ch.private || strings.HasPrefix(id, "D") || strings.HasPrefix(id, "G") {
			return nil, "channel_not_found"
		}
		if !s.cfg.chatWritePublic {
			return nil, "not_in_channel"
		}
	}
	if ch.archived {
		return nil, "is_archived"
	}
	return ch, ""
}

// checkThreadLocked checks thread_ts: well formed, and the ts of a visible
// top-level message in the channel.
func (s *Server) checkThreadLocked(channelID, threadTS string) apiResult {
	if !tsPattern.MatchString(threadTS) {
		return slackError("invalid_thread_ts", fmt.Sprintf("[ERROR] %s is not a valid thread_ts", threadTS))
	}
	st := s.index[channelID+"/"+threadTS]
	if st == nil || st.deleted || st.msg.Ephemeral || st.msg.ThreadTS != "" {
		return slackError("thread_not_found")
	}
	return apiResult{}
}

// content is a message's text and blocks after validation.
type content struct {
	text   string
	blocks json.RawMessage
}

// checkContent validates text, blocks and attachments the way chat.* do.
func checkContent(text, blocks, attachments string) (content, apiResult) {
	c := content{text: text}
	if utf8.RuneCountInString(text) > 40000 {
		return c, slackError("msg_too_long")
	}
	hasBlocks := false
	if strings.TrimSpace(blocks) != "" {
		raw, n, code, msgs := validateBlocks(blocks, 50)
		if code != "" {
			return c, slackError(code, msgs...)
		}
		if n > 0 {
			c.blocks, hasBlocks = raw, true
		}
	}
	hasAttachments := strings.TrimSpace(attachments) != "" && strings.TrimSpace(attachments) != "[]"
	if text == "" && !hasBlocks && !hasAttachments {
		return c, slackError("no_text")
	}
	return c, apiResult{}
}

// checkPostLocked validates what a post to chID carries: its content
// (text, blocks) and, when set, its thread_ts.
func (s *Server) checkPostLocked(chID string, p params) (content, string, apiResult) {
	c, bad := checkContent(p.get("text"), p.get("blocks"), p.get("attachments"))
	if bad.body != nil {
		return c, "", bad
	}
	thread := p.get("thread_ts")
	if thread != "" {
		if bad := s.checkThreadLocked(chID, thread); bad.body != nil {
			return c, "", bad
		}
	}
	return c, thread, apiResult{}
}

func (s *Server) chatPostMessage(p params) apiResult {
	s.mu.Lock()
	defer s.mu.Unlock()
	chID := p.get("channel")
	if _, code := s.channelForPostLocked(chID); code != "" {
		return slackError(code)
	}
	c, thread, bad := s.checkPostLocked(chID, p)
	if bad.body != nil {
		return bad
	}
	m := Message{
		Method: "chat.postMessage", Channel: chID, TS: s.nextTSLocked(), ThreadTS: thread,
		Text: c.text, Blocks: c.blocks, Broadcast: thread != "" && p.flag("reply_broadcast"), Time: time.Now(),
	}
	st := s.storeLocked(m, true)
	return okResult(map[string]any{"channel": chID, "ts": m.TS, "message": s.messageObjectLocked(st)})
}

func (s *Server) chatPostEphemeral(p params) apiResult {
	s.mu.Lock()
	defer s.mu.Unlock()
	chID, user := p.get("channel"), p.get("user")
	ch, code := s.channelForPostLocked(chID)
	if code != "" {
		return slackError(code)
	}
	if user == "" || !ch.members[user] {
		return slackError("user_not_in_channel")
	}
	c, thread, bad := s.checkPostLocked(chID, p)
	if bad.body != nil {
		return bad
	}
	m := Message{
		Method: "chat.postEphemeral", Channel: chID, TS: s.nextTSLocked(), ThreadTS: thread,
		Text: c.text, Blocks: c.blocks, User: user, Ephemeral: true, Time: time.Now(),
	}
	s.storeLocked(m, true)
	return okResult(map[string]any{"message_ts": m.TS})
}

func (s *Server) chatUpdate(p params) apiResult {
	s.mu.Lock()
	defer s.mu.Unlock()
	chID, ts := p.get("channel"), p.get("ts")
	if s.channels[chID] == nil {
		return slackError("channel_not_found")
	}
	st := s.index[chID+"/"+ts]
	if st == nil || st.deleted || st.msg.Ephemeral {
		return slackError("message_not_found")
	}
	if !st.byBot {
		return slackError("cant_update_message")
	}
	c, bad := checkContent(p.get("text"), p.get("blocks"), p.get("attachments"))
	if bad.body != nil {
		return bad
	}
	st.msg.Text = c.text
	if _, sent := p.values["blocks"]; sent {
		st.msg.Blocks = c.blocks
	}
	st.msg.Edits++
	logged := st.msg
	logged.Method, logged.Time = "chat.update", time.Now()
	s.log = append(s.log, logged)
	s.notifyLocked()
	return okResult(map[string]any{"channel": chID, "ts": ts, "text": c.text, "message": s.messageObjectLocked(st)})
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
		"user_id": s.cfg.botUserID, "bot_id": s.cfg.botID, "is_enterprise_install": false,
	})
}
