package slacktest

import (
	"cmp"
	"encoding/json"
	"fmt"
	"time"
)

// Envelope types Slack sends over Socket Mode.
const (
	TypeSlashCommands = "slash_commands"
	TypeInteractive   = "interactive"
	TypeEventsAPI     = "events_api"
)

// SlashCommand describes a user typing a slash command. Zero fields get
// defaults: Command "/mpc", UserID DefaultUserID, ChannelID DefaultChannelID,
// names from the registered user and channel, TeamID the server's team,
// APIAppID the server's app (set another to send another app's envelope).
type SlashCommand struct {
	Command     string
	Text        string
	UserID      string
	UserName    string
	ChannelID   string
	ChannelName string
	TeamID      string
	APIAppID    string
}

// BlockAction describes a user clicking a button. Zero fields get defaults
// (user and channel as for SlashCommand). When MessageTS names a message the
// server holds, the payload's message object, thread_ts, block_id, value and
// button text come from it unless set here. ResponseURL is generated when
// empty. APIAppID is the server's app unless set (another app's envelope).
type BlockAction struct {
	UserID      string
	UserName    string
	ChannelID   string
	MessageTS   string
	ThreadTS    string
	IsEphemeral bool
	ActionID    string
	BlockID     string
	Value       string
	ButtonText  string
	ResponseURL string
	APIAppID    string
}

// SendSlashCommand delivers a slash_commands envelope shaped like Slack's
// (is_enterprise_install as the string "false", response_url pointing at this
// server, a trigger_id) to one live connection chosen at random. With none
// open it is dropped and the user sees dispatch_failed (see WaitAck). The
// user joins the channel if it exists. It returns the envelope id.
func (s *Server) SendSlashCommand(cmd SlashCommand) string {
	s.mu.Lock()
	if cmd.Command == "" {
		cmd.Command = "/mpc"
	}
	cmd.UserID, cmd.UserName = s.defaultUserLocked(cmd.UserID, cmd.UserName)
	cmd.ChannelID, cmd.ChannelName = s.defaultChannelLocked(cmd.ChannelID, cmd.ChannelName)
	if cmd.TeamID == "" {
		cmd.TeamID = s.cfg.teamID
	}
	s.joinLocked(cmd.ChannelID, cmd.UserID)
	id := newUUID()
	hook := s.newHookLocked(id, cmd.ChannelID, cmd.UserID, nil)
	payload := struct {
		Token               string `json:"token"`
		TeamID              string `json:"team_id"`
		TeamDomain          string `json:"team_domain"`
		ChannelID           string `json:"channel_id"`
		ChannelName         string `json:"channel_name"`
		UserID              string `json:"user_id"`
		UserName            string `json:"user_name"`
		Command             string `json:"command"`
		Text                string `json:"text"`
		APIAppID            string `json:"api_app_id"`
		IsEnterpriseInstall string `json:"is_enterprise_install"`
		ResponseURL         string `json:"response_url"`
		TriggerID           string `json:"trigger_id"`
	}{
		s.cfg.verificationToken, cmd.TeamID, s.cfg.teamDomain, cmd.ChannelID, cmd.ChannelName,
		cmd.UserID, cmd.UserName, cmd.Command, cmd.Text, cmp.Or(cmd.APIAppID, s.cfg.appID), "false",
		s.hookURL(hook.id), s.triggerIDLocked(),
	}
	env := s.newEnvelopeLocked(id, TypeSlashCommands, payload, true)
	env.channel, env.user, env.command, env.hook = cmd.ChannelID, cmd.UserID, cmd.Command, hook
	s.mu.Unlock()
	s.deliver(env, false)
	return id
}

// SendBlockAction delivers an interactive/block_actions envelope for a button
// click (container type "message", message_ts, channel_id, is_ephemeral,
// thread_ts when threaded, the message object for non-ephemeral messages, one
// button action) and returns the envelope id. See ClickButton for a version
// that checks the button exists.
func (s *Server) SendBlockAction(a BlockAction) string {
	s.mu.Lock()
	id := s.sendBlockActionLocked(a)
	env := s.envelopes[id]
	s.mu.Unlock()
	s.deliver(env, false)
	return id
}

// ClickButton clicks the button with actionID on the message (channel, ts) as
// user — a channel message, or an ephemeral message shown to that user. It
// fails with ErrNoSuchButton when the message or button does not exist.
func (s *Server) ClickButton(userID, channelID, messageTS, actionID string) (string, error) {
	s.mu.Lock()
	st := s.index[channelID+"/"+messageTS]
	if st == nil || st.deleted || (st.msg.Ephemeral && st.msg.User != userID) {
		s.mu.Unlock()
		return "", fmt.Errorf("click %s on %s/%s: %w", actionID, channelID, messageTS, ErrNoSuchButton)
	}
	var btn *Button
	for _, b := range st.msg.Buttons() {
		if b.ActionID == actionID {
			btn = &b
			break
		}
	}
	if btn == nil {
		s.mu.Unlock()
		return "", fmt.Errorf("click %s on %s/%s: %w", actionID, channelID, messageTS, ErrNoSuchButton)
	}
	id := s.sendBlockActionLocked(BlockAction{
		UserID: userID, ChannelID: channelID, MessageTS: messageTS, IsEphemeral: st.msg.Ephemeral,
		ActionID: btn.ActionID, BlockID: btn.BlockID, Value: btn.Value, ButtonText: btn.Text,
	})
	env := s.envelopes[id]
	s.mu.Unlock()
	s.deliver(env, false)
	return id, nil
}

func (s *Server) sendBlockActionLocked(a BlockAction) string {
	a.UserID, a.UserName = s.defaultUserLocked(a.UserID, a.UserName)
	var channelName string
	a.ChannelID, channelName = s.defaultChannelLocked(a.ChannelID, "")
	s.joinLocked(a.ChannelID, a.UserID)
	st := s.index[a.ChannelID+"/"+a.MessageTS]
	if st != nil && st.deleted {
		st = nil
	}
	var message map[string]any
	if st != nil {
		a.IsEphemeral = a.IsEphemeral || st.msg.Ephemeral
		if a.ThreadTS == "" {
			a.ThreadTS = st.msg.ThreadTS
		}
		for _, b := range st.msg.Buttons() {
			if b.ActionID == a.ActionID && (a.BlockID == "" || a.BlockID == b.BlockID) {
				a.BlockID = cmp.Or(a.BlockID, b.BlockID)
				a.Value = cmp.Or(a.Value, b.Value)
				a.ButtonText = cmp.Or(a.ButtonText, b.Text)
				break
			}
		}
		if !a.IsEphemeral {
			// Slack sends no message object for a click on an ephemeral message.
			message = s.messageObjectLocked(st)
		}
	} else if !a.IsEphemeral {
		message = map[string]any{"type": "message", "ts": a.MessageTS, "text": "", "user": s.cfg.botUserID, "bot_id": s.cfg.botID}
		if a.ThreadTS != "" {
			message["thread_ts"] = a.ThreadTS
		}
	}
	a.ButtonText = cmp.Or(a.ButtonText, a.ActionID)

	id := newUUID()
	if a.ResponseURL == "" {
		hook := s.newHookLocked(id, a.ChannelID, a.UserID, st)
		a.ResponseURL = s.hookURL(hook.id)
	}
	container := map[string]any{
		"type": "message", "message_ts": a.MessageTS, "channel_id": a.ChannelID, "is_ephemeral": a.IsEphemeral,
	}
	if a.ThreadTS != "" {
		container["thread_ts"] = a.ThreadTS
	}
	payload := map[string]any{
		"type":                  "block_actions",
		"user":                  map[string]any{"id": a.UserID, "username": a.UserName, "name": a.UserName, "team_id": s.cfg.teamID},
		"api_app_id":            cmp.Or(a.APIAppID, s.cfg.appID),
		"token":                 s.cfg.verificationToken,
		"container":             container,
		"trigger_id":            s.triggerIDLocked(),
		"team":                  map[string]any{"id": s.cfg.teamID, "domain": s.cfg.teamDomain},
		"enterprise":            nil,
		"is_enterprise_install": false,
		"channel":               map[string]any{"id": a.ChannelID, "name": channelName},
		"state":                 map[string]any{"values": map[string]any{}},
		"response_url":          a.ResponseURL,
		"actions": []map[string]any{{
			"action_id": a.ActionID, "block_id": a.BlockID,
			"text":  map[string]any{"type": "plain_text", "text": a.ButtonText, "emoji": true},
			"value": a.Value, "type": "button", "action_ts": s.actionTSLocked(),
		}},
	}
	if message != nil {
		payload["message"] = message
	}
	env := s.newEnvelopeLocked(id, TypeInteractive, payload, false)
	env.channel, env.user = a.ChannelID, a.UserID
	return id
}

// SendEnvelope delivers raw as one frame, unchanged, for malformed and
// unknown-type tests. If raw is a JSON object with an envelope_id its acks are
// tracked and it can be redelivered; the id (or "") is returned.
func (s *Server) SendEnvelope(raw []byte) string {
	env := &envelope{frame: append([]byte(nil), raw...)}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(raw, &fields); err == nil && fields != nil {
		var id, kind string
		_ = json.Unmarshal(fields["envelope_id"], &id)
		_ = json.Unmarshal(fields["type"], &kind)
		env.id, env.kind = id, kind
		if id != "" {
			env.fields = fields
		}
	}
	s.mu.Lock()
	if env.id != "" {
		if _, dup := s.envelopes[env.id]; !dup {
			s.envelopes[env.id] = env
			s.envelopeList = append(s.envelopeList, env)
		}
	}
	s.mu.Unlock()
	s.deliver(env, false)
	return env.id
}

// Redeliver sends the envelope again with the same envelope_id, retry_attempt
// incremented and retry_reason "timeout", as Slack does when an ack is missing,
// to a connection other than the previous delivery's when another is open.
// With none open the redelivery fails like a first send (dispatch_failed).
func (s *Server) Redeliver(envelopeID string) error {
	s.mu.Lock()
	env := s.envelopes[envelopeID]
	if env == nil {
		s.mu.Unlock()
		return fmt.Errorf("redeliver %s: %w", envelopeID, ErrUnknownEnvelope)
	}
	env.retries++
	env.buildFrame()
	s.mu.Unlock()
	s.deliver(env, true)
	return nil
}

// defaultUserLocked fills in the default user and its name.
func (s *Server) defaultUserLocked(id, name string) (string, string) {
	if id == "" {
		id = DefaultUserID
	}
	if name == "" {
		name = s.users[id]
	}
	if name == "" {
		name = "user-" + id
	}
	if _, ok := s.users[id]; !ok {
		s.users[id] = name
	}
	return id, name
}

// joinLocked makes the acting user a member of the channel (if the server knows
// it): a user can only invoke a command or click a button where they are a member.
func (s *Server) joinLocked(channelID, userID string) {
	if ch := s.channels[channelID]; ch != nil {
		ch.members[userID] = true
	}
}

// defaultChannelLocked fills in the default channel and its name.
func (s *Server) defaultChannelLocked(id, name string) (string, string) {
	if id == "" {
		id = DefaultChannelID
	}
	if ch := s.channels[id]; ch != nil && name == "" {
		name = ch.name
	}
	if name == "" {
		switch {
		case len(id) > 0 && id[0] == 'D':
			name = "directmessage"
		case len(id) > 0 && id[0] == 'G':
			name = "privategroup"
		}
	}
	return id, name
}

func (s *Server) triggerIDLocked() string {
	s.seq++
	return fmt.Sprintf("%d.%d.%s", time.Now().Unix(), s.seq, randomHex(16))
}

func (s *Server) actionTSLocked() string {
	now := time.Now()
	return fmt.Sprintf("%d.%06d", now.Unix(), now.Nanosecond()/1000)
}
