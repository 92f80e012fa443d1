package slacktest

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"strconv"
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
// names from the registered user and channel, TeamID the server's team.
type SlashCommand struct {
	Command     string
	Text        string
	UserID      string
	UserName    string
	ChannelID   string
	ChannelName string
	TeamID      string
}

// BlockAction describes a user clicking a button. Zero fields get defaults
// (user and channel as for SlashCommand). When MessageTS names a message the
// server holds, the payload's message object, thread_ts, block_id, value and
// button text come from it unless set here. ResponseURL is generated when empty.
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
}

// Ack is an acknowledgement received for an envelope.
type Ack struct {
	EnvelopeID string
	// Payload is the ack's "payload" member as sent (nil when absent).
	Payload json.RawMessage
	// Raw is the whole frame as sent.
	Raw json.RawMessage
	// At is when the ack arrived; Latency is measured from the latest delivery before it.
	At      time.Time
	Latency time.Duration
	// Late means the ack came after the ack deadline: the user saw an error.
	Late bool
	// Count is how many acks this envelope has received in total (WaitAck) or
	// the ordinal of this ack (EnvelopeRecord.Acks).
	Count        int
	ConnectionID int
	// Error is set when the ack payload was refused (e.g. "invalid_blocks") and so not shown.
	Error string
}

// Delivery is one write of an envelope to a connection.
type Delivery struct {
	At           time.Time
	ConnectionID int
	RetryAttempt int
}

// EnvelopeRecord is what the server knows about one envelope it sent.
type EnvelopeRecord struct {
	ID   string
	Type string
	// Frame is the latest JSON frame sent (or to be sent).
	Frame      json.RawMessage
	Deliveries []Delivery
	Acks       []Ack
	// TimedOut means a delivery was not acknowledged within the deadline.
	TimedOut bool
}

type envelope struct {
	id      string
	kind    string
	fields  map[string]json.RawMessage // nil when the frame is not a JSON object
	frame   []byte
	retries int
	// For rendering ack replies to slash commands.
	channel, user string
	deliveries    []Delivery
	acks          []Ack
}

func (e *envelope) buildFrame() {
	if e.fields == nil {
		return
	}
	if e.retries > 0 {
		e.fields["retry_attempt"] = json.RawMessage(strconv.Itoa(e.retries))
		e.fields["retry_reason"] = json.RawMessage(`"timeout"`)
	}
	// Keep the member order Slack uses: envelope_id, payload, type, accepts_response_payload, retries.
	var buf bytes.Buffer
	buf.WriteByte('{')
	first := true
	write := func(k string, v json.RawMessage) {
		if !first {
			buf.WriteByte(',')
		}
		first = false
		kb, _ := json.Marshal(k)
		buf.Write(kb)
		buf.WriteByte(':')
		buf.Write(v)
	}
	order := []string{"envelope_id", "payload", "type", "accepts_response_payload", "retry_attempt", "retry_reason"}
	seen := map[string]bool{}
	for _, k := range order {
		if v, ok := e.fields[k]; ok {
			write(k, v)
			seen[k] = true
		}
	}
	for k, v := range e.fields {
		if !seen[k] {
			write(k, v)
		}
	}
	buf.WriteByte('}')
	e.frame = buf.Bytes()
}

// lastDeliveryBefore returns the latest delivery at or before t.
func (e *envelope) lastDeliveryBefore(t time.Time) (Delivery, bool) {
	for i := len(e.deliveries) - 1; i >= 0; i-- {
		if !e.deliveries[i].At.After(t) {
			return e.deliveries[i], true
		}
	}
	return Delivery{}, false
}

// timedOutLocked reports whether some delivery went unacknowledged for longer
// than the deadline: the user saw an error then, whatever happened later.
func (e *envelope) timedOutLocked(now time.Time, deadline time.Duration) bool {
	for _, d := range e.deliveries {
		end := d.At.Add(deadline)
		if !now.After(end) {
			continue
		}
		acked := false
		for _, a := range e.acks {
			if !a.At.Before(d.At) && !a.At.After(end) {
				acked = true
				break
			}
		}
		if !acked {
			return true
		}
	}
	return false
}

func (e *envelope) record(now time.Time, deadline time.Duration) EnvelopeRecord {
	return EnvelopeRecord{
		ID: e.id, Type: e.kind, Frame: append(json.RawMessage(nil), e.frame...),
		Deliveries: append([]Delivery(nil), e.deliveries...),
		Acks:       append([]Ack(nil), e.acks...),
		TimedOut:   e.timedOutLocked(now, deadline),
	}
}

// SendSlashCommand delivers a slash_commands envelope shaped like Slack's
// (is_enterprise_install as the string "false", response_url pointing at this
// server, a trigger_id) to one live connection, or queues it until one
// connects. The user joins the channel if it exists. It returns the envelope id.
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
		cmd.UserID, cmd.UserName, cmd.Command, cmd.Text, s.cfg.appID, "false",
		s.hookURL(hook.id), s.triggerIDLocked(),
	}
	env := s.newEnvelopeLocked(id, TypeSlashCommands, payload, true)
	env.channel, env.user = cmd.ChannelID, cmd.UserID
	s.mu.Unlock()
	s.deliver(env)
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
	s.deliver(env)
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
	s.deliver(env)
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
		"api_app_id":            s.cfg.appID,
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
	s.deliver(env)
	return env.id
}

// Redeliver sends the envelope again with the same envelope_id, retry_attempt
// incremented and retry_reason "timeout", as Slack does when an ack is missing.
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
	s.deliver(env)
	return nil
}

func (s *Server) newEnvelopeLocked(id, kind string, payload any, acceptsResponse bool) *envelope {
	pb, _ := json.Marshal(payload)
	idb, _ := json.Marshal(id)
	kb, _ := json.Marshal(kind)
	env := &envelope{id: id, kind: kind, fields: map[string]json.RawMessage{
		"envelope_id": idb, "payload": pb, "type": kb,
		"accepts_response_payload": json.RawMessage(strconv.FormatBool(acceptsResponse)),
	}}
	env.buildFrame()
	s.envelopes[id] = env
	s.envelopeList = append(s.envelopeList, env)
	return env
}

// pickLocked chooses the next live, non-silent connection round-robin.
func (s *Server) pickLocked() *wsConn {
	var ready []*wsConn
	for _, c := range s.conns {
		if c.state == connLive && !c.silent.Load() {
			ready = append(ready, c)
		}
	}
	if len(ready) == 0 {
		return nil
	}
	s.rr++
	return ready[s.rr%len(ready)]
}

// deliver writes env to exactly one live connection, or queues it.
func (s *Server) deliver(env *envelope) {
	for {
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			return
		}
		c := s.pickLocked()
		if c == nil {
			s.pending = append(s.pending, env)
			s.notifyLocked()
			s.mu.Unlock()
			return
		}
		frame := env.frame
		// Record the delivery before writing so an ack can never beat it.
		d := Delivery{At: time.Now(), ConnectionID: c.id, RetryAttempt: env.retries}
		env.deliveries = append(env.deliveries, d)
		s.mu.Unlock()

		err := c.writeText(frame)

		s.mu.Lock()
		if err == nil {
			s.stats.Delivered++
			s.notifyLocked()
			s.mu.Unlock()
			return
		}
		for i := len(env.deliveries) - 1; i >= 0; i-- {
			if env.deliveries[i] == d {
				env.deliveries = append(env.deliveries[:i], env.deliveries[i+1:]...)
				break
			}
		}
		s.mu.Unlock()
		s.endConn(c, "write failed")
		c.close()
	}
}

// flushPending delivers queued envelopes (called when a connection goes live).
func (s *Server) flushPending() {
	s.mu.Lock()
	queued := s.pending
	s.pending = nil
	s.mu.Unlock()
	for _, env := range queued {
		s.deliver(env)
	}
}

// handleFrame processes one frame from the client: an ack.
func (s *Server) handleFrame(c *wsConn, data []byte) {
	now := time.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	defer s.notifyLocked()
	switch {
	case c.silent.Load():
		s.stats.IgnoredFrames++
		return
	case len(data) >= maxAckBytes:
		s.stats.DroppedAcks++
		return
	}
	var frame struct {
		EnvelopeID string          `json:"envelope_id"`
		Payload    json.RawMessage `json:"payload"`
	}
	if err := json.Unmarshal(data, &frame); err != nil || frame.EnvelopeID == "" {
		s.stats.BadFrames++
		return
	}
	env := s.envelopes[frame.EnvelopeID]
	if env == nil {
		s.stats.UnknownAcks++
		return
	}
	ack := Ack{
		EnvelopeID: env.id, Raw: append(json.RawMessage(nil), data...), At: now,
		ConnectionID: c.id, Count: len(env.acks) + 1,
	}
	if len(frame.Payload) > 0 && !bytes.Equal(frame.Payload, []byte("null")) {
		ack.Payload = append(json.RawMessage(nil), frame.Payload...)
	}
	if d, ok := env.lastDeliveryBefore(now); ok {
		ack.Latency = now.Sub(d.At)
		ack.Late = ack.Latency > s.cfg.ackTimeout
	}
	s.stats.Acks++
	if len(env.acks) > 0 {
		s.stats.DuplicateAcks++
	} else if !ack.Late && env.kind == TypeSlashCommands && ack.Payload != nil {
		ack.Error = s.renderAckLocked(env, ack.Payload, now)
	}
	env.acks = append(env.acks, ack)
}

// WaitAck waits for the first ack of envelopeID. It returns ErrAckTimeout as
// soon as the ack deadline passes without one (and, with the Ack, when the ack
// came late), ErrUnknownEnvelope for an id never sent, or the ctx error. The
// deadline runs from the latest delivery; a queued envelope waits for a connection.
func (s *Server) WaitAck(ctx context.Context, envelopeID string) (Ack, error) {
	for {
		s.mu.Lock()
		env := s.envelopes[envelopeID]
		if env == nil {
			s.mu.Unlock()
			return Ack{}, fmt.Errorf("wait ack %s: %w", envelopeID, ErrUnknownEnvelope)
		}
		if len(env.acks) > 0 {
			a := env.acks[0]
			a.Count = len(env.acks)
			s.mu.Unlock()
			if a.Late {
				return a, fmt.Errorf("wait ack %s: acked after %v: %w", envelopeID, a.Latency, ErrAckTimeout)
			}
			return a, nil
		}
		if s.closed {
			s.mu.Unlock()
			return Ack{}, ErrClosed
		}
		var timeout <-chan time.Time
		var timer *time.Timer
		if n := len(env.deliveries); n > 0 {
			left := time.Until(env.deliveries[n-1].At.Add(s.cfg.ackTimeout))
			if left <= 0 {
				s.mu.Unlock()
				return Ack{}, fmt.Errorf("wait ack %s: %w", envelopeID, ErrAckTimeout)
			}
			timer = time.NewTimer(left)
			timeout = timer.C
		}
		ch := s.changed
		s.mu.Unlock()
		select {
		case <-ch:
		case <-timeout:
		case <-ctx.Done():
		}
		if timer != nil {
			timer.Stop()
		}
		if err := ctx.Err(); err != nil {
			return Ack{}, fmt.Errorf("wait ack %s: %w", envelopeID, err)
		}
	}
}

// Envelope returns what the server knows about one envelope.
func (s *Server) Envelope(envelopeID string) (EnvelopeRecord, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	env := s.envelopes[envelopeID]
	if env == nil {
		return EnvelopeRecord{}, false
	}
	return env.record(time.Now(), s.cfg.ackTimeout), true
}

// Envelopes returns every tracked envelope in the order they were sent.
func (s *Server) Envelopes() []EnvelopeRecord {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := time.Now()
	out := make([]EnvelopeRecord, 0, len(s.envelopeList))
	for _, e := range s.envelopeList {
		out = append(out, e.record(now, s.cfg.ackTimeout))
	}
	return out
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
