package slacktest

import (
	"encoding/json"
	"io"
	"mime"
	"net/http"
	"strings"
	"time"
)

// responseHook is one response_url handed out in an envelope.
type responseHook struct {
	id         string
	envelopeID string
	channel    string
	user       string
	created    time.Time
	uses       int
	// original is the message the hook's replace_original/delete_original act
	// on: the clicked message for a block action, else the last message sent
	// through the hook.
	original *stored
}

func (s *Server) newHookLocked(envelopeID, channelID, userID string, original *stored) *responseHook {
	h := &responseHook{
		id: s.nextIDLocked(), envelopeID: envelopeID, channel: channelID, user: userID,
		created: time.Now(), original: original,
	}
	s.hooks[h.id] = h
	return h
}

func (s *Server) hookURL(id string) string { return s.baseURL + "/response/" + id }

// responseBody is what slack-go (slack.Msg) and other clients POST to a response_url.
type responseBody struct {
	Text            string          `json:"text"`
	Blocks          json.RawMessage `json:"blocks"`
	Attachments     json.RawMessage `json:"attachments"`
	ResponseType    string          `json:"response_type"`
	ReplaceOriginal bool            `json:"replace_original"`
	DeleteOriginal  bool            `json:"delete_original"`
	ThreadTS        string          `json:"thread_ts"`
}

// handleResponseURL serves POST /response/<id>.
func (s *Server) handleResponseURL(w http.ResponseWriter, r *http.Request) {
	id := strings.TrimPrefix(r.URL.Path, "/response/")
	p := params{values: map[string]string{"response_url": id}}
	if r.Method != http.MethodPost {
		s.writeResult(w, "response_url", p, apiResult{status: http.StatusMethodNotAllowed})
		return
	}
	s.mu.Lock()
	hook := s.hooks[id]
	s.mu.Unlock()
	if hook == nil {
		s.writeResult(w, "response_url", p, notFound("invalid_url"))
		return
	}
	if f, failed := s.takeFailure("response_url"); failed {
		s.writeResult(w, "response_url", p, failureResult(f))
		return
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxBodyBytes))
	ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	var rb responseBody
	if err != nil || ct != "application/json" || json.Unmarshal(body, &rb) != nil {
		s.writeResult(w, "response_url", p, slackError("invalid_payload"))
		return
	}
	p.values["text"], p.values["response_type"] = rb.Text, rb.ResponseType
	s.writeResult(w, "response_url", p, s.respond(hook, rb))
}

func notFound(code string) apiResult {
	r := slackError(code)
	r.status = http.StatusNotFound
	return r
}

func rawString(raw json.RawMessage) string {
	if len(raw) == 0 || string(raw) == "null" {
		return ""
	}
	var str string
	if json.Unmarshal(raw, &str) == nil {
		return str
	}
	return string(raw)
}

// respond applies one response_url request.
func (s *Server) respond(h *responseHook, rb responseBody) apiResult {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := time.Now()
	switch {
	case now.Sub(h.created) > s.cfg.responseTTL:
		return notFound("expired_url")
	case h.uses >= s.cfg.responseUses:
		return notFound("used_url")
	}
	base := Message{
		Method: "response_url", ResponseURL: h.id, ResponseType: rb.ResponseType,
		ReplaceOriginal: rb.ReplaceOriginal, DeleteOriginal: rb.DeleteOriginal,
		EnvelopeID: h.envelopeID, Time: now,
	}
	target := h.original
	if target != nil && target.deleted {
		target = nil
	}
	if rb.DeleteOriginal {
		h.uses++
		if target != nil {
			target.deleted = true
			base.Channel, base.TS, base.ThreadTS, base.User, base.Ephemeral =
				target.msg.Channel, target.msg.TS, target.msg.ThreadTS, target.msg.User, target.msg.Ephemeral
		}
		s.log = append(s.log, base)
		s.notifyLocked()
		return okResult(nil)
	}
	c, bad := checkContent(rb.Text, rawString(rb.Blocks), rawString(rb.Attachments), postText)
	if bad.body != nil {
		return bad
	}
	if rb.ReplaceOriginal && target != nil {
		h.uses++
		target.msg.Text, target.msg.Blocks, target.msg.Truncated = c.text, c.blocks, c.truncated
		target.msg.Edits++
		logged := target.msg
		logged.Method, logged.Time = base.Method, now
		logged.ResponseURL, logged.ResponseType = base.ResponseURL, base.ResponseType
		logged.ReplaceOriginal, logged.EnvelopeID = true, base.EnvelopeID
		s.log = append(s.log, logged)
		s.notifyLocked()
		return okResult(nil)
	}
	m := base
	m.Channel, m.Text, m.Blocks, m.Truncated = h.channel, c.text, c.blocks, c.truncated
	if rb.ResponseType == "in_channel" {
		if rb.ThreadTS != "" {
			if _, bad := s.threadParentLocked(h.channel, rb.ThreadTS); bad.body != nil {
				return bad
			}
			m.ThreadTS = rb.ThreadTS
		}
	} else {
		// Ephemeral is the default visibility of a response_url reply.
		m.Ephemeral, m.User = true, h.user
	}
	h.uses++
	m.TS = s.nextTSLocked()
	h.original = s.storeLocked(m, true)
	return okResult(nil)
}

// renderAckLocked shows a slash command ack payload ({"text","blocks",
// "response_type"}) to the user like Slack does. It returns the error code when
// the payload is refused ("" when shown or empty).
func (s *Server) renderAckLocked(env *envelope, payload json.RawMessage, now time.Time) string {
	var rb responseBody
	if err := json.Unmarshal(payload, &rb); err != nil {
		return "invalid_payload"
	}
	text, blocks := rb.Text, rawString(rb.Blocks)
	if text == "" && strings.TrimSpace(blocks) == "" && rawString(rb.Attachments) == "" {
		return "" // an empty payload is a plain ack
	}
	c, bad := checkContent(text, blocks, rawString(rb.Attachments), postText)
	if bad.body != nil {
		code, _ := bad.body["error"].(string)
		return code
	}
	m := Message{
		Method: "ack", Channel: env.channel, TS: s.nextTSLocked(), Text: c.text, Blocks: c.blocks,
		Truncated: c.truncated, ResponseType: rb.ResponseType, EnvelopeID: env.id, Time: now,
	}
	if rb.ResponseType != "in_channel" {
		m.Ephemeral, m.User = true, env.user
	}
	st := s.storeLocked(m, true)
	if env.hook != nil {
		// The ack's reply is what the command's response_url replaces or deletes.
		env.hook.original = st
	}
	return ""
}
