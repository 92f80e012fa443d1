package slacktest

import (
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"time"
)

// AddUser adds or renames a user (users.info answers with the name).
func (s *Server) AddUser(id, name string) {
	s.mu.Lock()
	s.users[id] = name
	s.mu.Unlock()
}

// SetUserGroup sets the members of a user group ("S…") for usergroups.users.list.
func (s *Server) SetUserGroup(id string, userIDs ...string) {
	s.mu.Lock()
	s.groups[id] = slices.Clone(userIDs)
	s.mu.Unlock()
}

// FailUserGroups makes the next n usergroups.users.list calls fail with HTTP
// 503, like an outage of the user-group service.
func (s *Server) FailUserGroups(n int) {
	s.FailNext("usergroups.users.list", n, Failure{Status: 503})
}

// Message is one thing a user can see: a message posted, updated, shown
// ephemerally or sent through a response_url or an ack. Messages() returns one
// per call, in order; MessagesIn, ThreadReplies and Ephemerals return the
// current state (edits applied, deleted messages gone).
type Message struct {
	// Method is chat.postMessage, chat.postEphemeral, chat.update, response_url,
	// ack (a slash command ack payload), user (AddUserMessage) or
	// dispatch_failed (Slack's error to a user whose envelope found no
	// connection; ephemeral to that user).
	Method   string
	Channel  string
	TS       string
	ThreadTS string
	Text     string
	// Blocks is the blocks JSON array as sent (nil when none).
	Blocks json.RawMessage
	// User is who sees an ephemeral message, or the author of a user message.
	User      string
	Ephemeral bool
	// Broadcast is reply_broadcast: a thread reply also shown in the channel.
	Broadcast bool
	// Truncated means Slack cut the text at 40 000 characters (message_truncated).
	Truncated bool
	// ResponseURL is the id of the response_url used (the last path element).
	ResponseURL     string
	ResponseType    string
	ReplaceOriginal bool
	DeleteOriginal  bool
	// EnvelopeID is the envelope whose ack or response_url produced the message.
	EnvelopeID string
	// Edits counts updates applied (chat.update, replace_original).
	Edits int
	Time  time.Time
}

// Button is a button in a message's blocks.
type Button struct {
	ActionID, BlockID, Text, Value, Style string
}

type blockJSON struct {
	Type      string            `json:"type"`
	BlockID   string            `json:"block_id"`
	Text      *textJSON         `json:"text"`
	Fields    []textJSON        `json:"fields"`
	Elements  []json.RawMessage `json:"elements"`
	Accessory json.RawMessage   `json:"accessory"`
}

type textJSON struct {
	Type string `json:"type"`
	Text string `json:"text"`
}

type elementJSON struct {
	Type     string    `json:"type"`
	ActionID string    `json:"action_id"`
	Text     *textJSON `json:"text"`
	Value    string    `json:"value"`
	Style    string    `json:"style"`
	AltText  string    `json:"alt_text"`
}

func (m Message) blocks() []blockJSON {
	var bs []blockJSON
	_ = json.Unmarshal(m.Blocks, &bs)
	return bs
}

// Buttons returns the buttons in the message's actions blocks and section accessories.
func (m Message) Buttons() []Button {
	var out []Button
	add := func(blockID string, raw json.RawMessage) {
		var el elementJSON
		if json.Unmarshal(raw, &el) != nil || el.Type != "button" {
			return
		}
		b := Button{ActionID: el.ActionID, BlockID: blockID, Value: el.Value, Style: el.Style}
		if el.Text != nil {
			b.Text = el.Text.Text
		}
		out = append(out, b)
	}
	for _, b := range m.blocks() {
		for _, el := range b.Elements {
			if b.Type == "actions" {
				add(b.BlockID, el)
			}
		}
		if b.Type == "section" && len(b.Accessory) > 0 {
			add(b.BlockID, b.Accessory)
		}
	}
	return out
}

// VisibleText renders what a user reads: with blocks, their text one line per
// text item (buttons as "[label]"); without blocks, Text. Slack shows blocks
// instead of text when both are present.
func (m Message) VisibleText() string {
	bs := m.blocks()
	if len(bs) == 0 {
		return m.Text
	}
	var lines []string
	for _, b := range bs {
		if b.Text != nil {
			lines = append(lines, b.Text.Text)
		}
		for _, f := range b.Fields {
			lines = append(lines, f.Text)
		}
		var parts []string
		for _, raw := range append(slices.Clone(b.Elements), b.Accessory) {
			var kind struct {
				Type string `json:"type"`
			}
			if len(raw) == 0 || json.Unmarshal(raw, &kind) != nil {
				continue
			}
			switch kind.Type {
			case "button":
				var el elementJSON
				if json.Unmarshal(raw, &el) == nil && el.Text != nil {
					parts = append(parts, "["+el.Text.Text+"]")
				}
			case "plain_text", "mrkdwn":
				var t textJSON
				_ = json.Unmarshal(raw, &t)
				parts = append(parts, t.Text)
			case "rich_text_section":
				parts = append(parts, richText(raw))
			}
		}
		if len(parts) > 0 {
			lines = append(lines, strings.Join(parts, " "))
		}
	}
	return strings.Join(lines, "\n")
}

// mentionRE matches the mention tokens Slack turns into notifications.
var mentionRE = regexp.MustCompile(`<(?:!(?:channel|here|everyone)|!subteam\^[A-Z0-9]+|@[UW][A-Z0-9]+)(?:\|[^>]*)?>`)

// Mentions returns the notifying mention tokens (<!channel>, <!here>,
// <!everyone>, <!subteam^S…>, <@U…>) in the message's text and in its mrkdwn
// text objects, where Slack renders them as pings. plain_text objects are
// not searched: Slack does not parse mentions there. Order is not significant.
func (m Message) Mentions() []string {
	found := mentionRE.FindAllString(m.Text, -1)
	var walk func(v any)
	walk = func(v any) {
		switch x := v.(type) {
		case map[string]any:
			if x["type"] == "mrkdwn" {
				if t, ok := x["text"].(string); ok {
					found = append(found, mentionRE.FindAllString(t, -1)...)
				}
			}
			for _, e := range x {
				walk(e)
			}
		case []any:
			for _, e := range x {
				walk(e)
			}
		}
	}
	var blocks any
	if json.Unmarshal(m.Blocks, &blocks) == nil {
		walk(blocks)
	}
	return found
}

func richText(raw json.RawMessage) string {
	var sec struct {
		Elements []struct {
			Type, Text string
		} `json:"elements"`
	}
	_ = json.Unmarshal(raw, &sec)
	var b strings.Builder
	for _, e := range sec.Elements {
		b.WriteString(e.Text)
	}
	return b.String()
}

// stored is a message's current state.
type stored struct {
	msg     Message
	byBot   bool
	deleted bool
	// Thread and edit restrictions (see LockThread, SetNoReplies, CloseEditWindow).
	threadLocked, noReplies, editClosed bool
}

// nextTSLocked returns a unique, increasing Slack timestamp "1700000000.000100".
func (s *Server) nextTSLocked() string {
	us := time.Now().UnixMicro()
	if us <= s.lastTS {
		us = s.lastTS + 1
	}
	s.lastTS = us
	return fmt.Sprintf("%d.%06d", us/1_000_000, us%1_000_000)
}

// storeLocked keeps a new message and logs it.
func (s *Server) storeLocked(m Message, byBot bool) *stored {
	st := &stored{msg: m, byBot: byBot}
	s.store = append(s.store, st)
	s.index[m.Channel+"/"+m.TS] = st
	s.log = append(s.log, m)
	s.notifyLocked()
	return st
}

// AddUserMessage posts a message as a human user (not the bot), e.g. to check
// that the bot cannot edit it. It returns the message ts.
func (s *Server) AddUserMessage(channelID, userID, text string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	m := Message{Method: "user", Channel: channelID, TS: s.nextTSLocked(), Text: text, User: userID, Time: time.Now()}
	s.storeLocked(m, false)
	return m.TS
}

// messageObjectLocked renders a stored message as Slack's message object.
func (s *Server) messageObjectLocked(st *stored) map[string]any {
	m := st.msg
	obj := map[string]any{"type": "message", "text": m.Text, "ts": m.TS, "team": s.cfg.teamID}
	if st.byBot {
		obj["user"] = s.cfg.botUserID
		obj["bot_id"] = s.cfg.botID
		obj["app_id"] = s.cfg.appID
	} else {
		obj["user"] = m.User
	}
	if m.ThreadTS != "" {
		obj["thread_ts"] = m.ThreadTS
	}
	if len(m.Blocks) > 0 {
		obj["blocks"] = m.Blocks
	}
	return obj
}

// Messages returns every message-producing call so far, in order.
func (s *Server) Messages() []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.log)
}

// MessagesIn returns the channel's visible top-level messages (and broadcast
// replies) in ts order, with edits applied.
func (s *Server) MessagesIn(channelID string) []Message {
	return s.current(func(m Message) bool {
		return m.Channel == channelID && !m.Ephemeral && (m.ThreadTS == "" || m.Broadcast)
	})
}

// ThreadReplies returns the visible replies in the thread under ts, in order.
func (s *Server) ThreadReplies(channelID, ts string) []Message {
	return s.current(func(m Message) bool {
		return m.Channel == channelID && !m.Ephemeral && m.ThreadTS == ts && m.TS != ts
	})
}

// Ephemerals returns the ephemeral messages currently shown to the user, in order.
func (s *Server) Ephemerals(userID string) []Message {
	return s.current(func(m Message) bool { return m.Ephemeral && m.User == userID })
}

func (s *Server) current(keep func(Message) bool) []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Message
	for _, st := range s.store {
		if !st.deleted && keep(st.msg) {
			out = append(out, st.msg)
		}
	}
	slices.SortStableFunc(out, func(a, b Message) int { return strings.Compare(a.TS, b.TS) })
	return out
}

// WaitForMessage returns the first message in Messages() order that matches,
// waiting for one if none has been recorded yet.
func (s *Server) WaitForMessage(ctx context.Context, match func(Message) bool) (Message, error) {
	var found Message
	err := s.waitFor(ctx, func() bool {
		for _, m := range s.log {
			if match(m) {
				found = m
				return true
			}
		}
		return false
	})
	return found, err
}
