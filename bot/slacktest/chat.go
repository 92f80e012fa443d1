package slacktest

import (
	"encoding/json"
	"fmt"
	"regexp"
	"strings"
	"time"
	"unicode/utf8"
)

var tsPattern = regexp.MustCompile(`^\d{1,10}\.\d{6}$`)

// Text limits: chat.postMessage (and replies through response_url or an
// ack) truncates text over 40 000 characters with a message_truncated
// warning; chat.update refuses text over 4 000 with msg_too_long.
var (
	postText   = textRule{max: 40000, truncate: true}
	updateText = textRule{max: 4000}
)

// textRule is how a method treats long text.
type textRule struct {
	max      int
	truncate bool
}

// content is a message's text and blocks after validation.
type content struct {
	text      string
	blocks    json.RawMessage
	truncated bool
}

// checkContent validates text, blocks and attachments the way chat.* do.
func checkContent(text, blocks, attachments string, rule textRule) (content, apiResult) {
	c := content{text: text}
	if utf8.RuneCountInString(text) > rule.max {
		if !rule.truncate {
			return c, slackError("msg_too_long")
		}
		c.text, c.truncated = string([]rune(text)[:rule.max]), true
	}
	hasBlocks := false
	if strings.TrimSpace(blocks) != "" {
		raw, n, code, msgs := validateBlocks(blocks, maxMessageBlocks, "/blocks")
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

// resolveChannelLocked turns a user id (U…, W…) into the app's DM with that
// user, as chat.postMessage does; other ids are returned unchanged.
func (s *Server) resolveChannelLocked(id string) (string, string) {
	if !strings.HasPrefix(id, "U") && !strings.HasPrefix(id, "W") {
		return id, ""
	}
	ch := s.dmChannelLocked(id)
	if ch == nil {
		return "", "channel_not_found"
	}
	return ch.id, ""
}

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

// threadParentLocked checks thread_ts: well formed, the ts of a visible
// top-level message in the channel, and a message that can have replies.
func (s *Server) threadParentLocked(channelID, threadTS string) (*stored, apiResult) {
	if !tsPattern.MatchString(threadTS) {
		return nil, slackError("invalid_thread_ts", fmt.Sprintf("[ERROR] %s is not a valid thread_ts", threadTS))
	}
	st := s.index[channelID+"/"+threadTS]
	if st == nil || st.deleted || st.msg.Ephemeral || st.msg.ThreadTS != "" {
		return nil, slackError("thread_not_found")
	}
	if st.noReplies {
		return nil, slackError("cannot_reply_to_message")
	}
	return st, apiResult{}
}

// checkPostLocked validates what a post to chID carries: its content
// (text, blocks) and, when set, its thread_ts. It returns the thread's
// parent (nil for a top-level post).
func (s *Server) checkPostLocked(chID string, p params) (content, *stored, apiResult) {
	c, bad := checkContent(p.get("text"), p.get("blocks"), p.get("attachments"), postText)
	if bad.body != nil {
		return c, nil, bad
	}
	thread := p.get("thread_ts")
	if thread == "" {
		return c, nil, apiResult{}
	}
	parent, bad := s.threadParentLocked(chID, thread)
	return c, parent, bad
}

func (s *Server) chatPostMessage(p params) apiResult {
	s.mu.Lock()
	defer s.mu.Unlock()
	chID, code := s.resolveChannelLocked(p.get("channel"))
	if code != "" {
		return slackError(code)
	}
	ch, code := s.channelForPostLocked(chID)
	if code != "" {
		return slackError(code)
	}
	if limited, ok := s.takePostTokenLocked(chID); !ok {
		return limited
	}
	if ch.readOnly {
		return slackError("restricted_action_read_only_channel")
	}
	c, parent, bad := s.checkPostLocked(chID, p)
	switch {
	case bad.body != nil:
		return bad
	case parent == nil && ch.threadOnly:
		return slackError("restricted_action_thread_only_channel")
	case parent != nil && parent.threadLocked:
		return slackError("restricted_action_thread_locked")
	}
	m := Message{
		Method: "chat.postMessage", Channel: chID, TS: s.nextTSLocked(),
		Text: c.text, Blocks: c.blocks, Truncated: c.truncated, Time: time.Now(),
	}
	if parent != nil {
		m.ThreadTS, m.Broadcast = parent.msg.TS, p.flag("reply_broadcast")
	}
	st := s.storeLocked(m, true)
	res := okResult(map[string]any{"channel": chID, "ts": m.TS, "message": s.messageObjectLocked(st)})
	if c.truncated {
		res.body["warning"] = "message_truncated"
		res.body["response_metadata"] = map[string]any{"warnings": []string{"message_truncated"}}
	}
	return res
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
	c, parent, bad := s.checkPostLocked(chID, p)
	if bad.body != nil {
		return bad
	}
	m := Message{
		Method: "chat.postEphemeral", Channel: chID, TS: s.nextTSLocked(),
		Text: c.text, Blocks: c.blocks, Truncated: c.truncated, User: user, Ephemeral: true, Time: time.Now(),
	}
	if parent != nil {
		m.ThreadTS = parent.msg.TS
	}
	s.storeLocked(m, true)
	return okResult(map[string]any{"message_ts": m.TS})
}

func (s *Server) chatUpdate(p params) apiResult {
	s.mu.Lock()
	defer s.mu.Unlock()
	chID, ts := p.get("channel"), p.get("ts")
	ch := s.channels[chID]
	if ch == nil {
		return slackError("channel_not_found")
	}
	if ch.archived {
		return slackError("is_inactive")
	}
	st := s.index[chID+"/"+ts]
	switch {
	case st == nil || st.deleted || st.msg.Ephemeral:
		return slackError("message_not_found")
	case !st.byBot:
		return slackError("cant_update_message")
	case st.editClosed:
		return slackError("edit_window_closed")
	}
	c, bad := checkContent(p.get("text"), p.get("blocks"), p.get("attachments"), updateText)
	if bad.body != nil {
		return bad
	}
	st.msg.Text, st.msg.Truncated = c.text, false
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
