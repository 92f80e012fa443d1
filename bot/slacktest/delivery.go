package slacktest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"time"
)

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
	// Lost means the connection was silenced: the envelope was routed to it
	// but never reached the client, so the ack deadline ran out.
	Lost bool
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
	// DispatchFailed means a send or redelivery found no open connection:
	// the envelope was dropped and the user saw dispatch_failed.
	DispatchFailed bool
}

type envelope struct {
	id      string
	kind    string
	fields  map[string]json.RawMessage // nil when the frame is not a JSON object
	frame   []byte
	retries int
	// alwaysRetry puts retry_attempt and retry_reason in every frame (events_api).
	alwaysRetry bool
	// Who acted, where and how: for ack replies and dispatch_failed notices.
	channel, user, command string
	// hook is the slash command's response_url; its ack reply becomes the
	// message that replace_original acts on.
	hook *responseHook
	// dispatchFailed: some attempt found no connection; lastFailed: the latest one did.
	dispatchFailed, lastFailed bool
	deliveries                 []Delivery
	acks                       []Ack
}

func (e *envelope) buildFrame() {
	if e.fields == nil {
		return
	}
	if e.retries > 0 || e.alwaysRetry {
		reason := `""`
		if e.retries > 0 {
			reason = `"timeout"`
		}
		e.fields["retry_attempt"] = json.RawMessage(strconv.Itoa(e.retries))
		e.fields["retry_reason"] = json.RawMessage(reason)
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
		Deliveries:     append([]Delivery(nil), e.deliveries...),
		Acks:           append([]Ack(nil), e.acks...),
		TimedOut:       e.timedOutLocked(now, deadline),
		DispatchFailed: e.dispatchFailed,
	}
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

// pickLocked chooses a live connection at random, silenced ones included
// (Slack cannot tell a half-open link). A connection with id avoid is passed
// over when another one is open. It returns nil when none is open.
func (s *Server) pickLocked(avoid int) *wsConn {
	live := s.liveConnsLocked()
	if len(live) > 1 && avoid != 0 {
		live = slices.DeleteFunc(live, func(c *wsConn) bool { return c.id == avoid })
	}
	if len(live) == 0 {
		return nil
	}
	return live[s.rng.IntN(len(live))]
}

// deliver writes env to exactly one live connection chosen at random; a
// redelivery avoids the connection of the previous delivery when it can.
// With no connection open the envelope is dropped: dispatch_failed.
func (s *Server) deliver(env *envelope, redelivery bool) {
	avoid := 0
	for {
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			return
		}
		if redelivery && avoid == 0 && len(env.deliveries) > 0 {
			avoid = env.deliveries[len(env.deliveries)-1].ConnectionID
		}
		c := s.pickLocked(avoid)
		if c == nil {
			s.dispatchFailedLocked(env)
			s.mu.Unlock()
			return
		}
		env.lastFailed = false
		// Record the delivery before writing so an ack can never beat it.
		d := Delivery{At: time.Now(), ConnectionID: c.id, RetryAttempt: env.retries, Lost: c.silent.Load()}
		env.deliveries = append(env.deliveries, d)
		if d.Lost {
			s.stats.Lost++
			s.notifyLocked()
			s.mu.Unlock()
			return
		}
		frame := env.frame
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
				env.deliveries = slices.Delete(env.deliveries, i, i+1)
				break
			}
		}
		s.mu.Unlock()
		s.endConn(c, "write failed")
		c.close()
	}
}

// dispatchFailedLocked records that env found no open connection. Slack
// does not hold it: the user who typed the command or clicked sees
// dispatch_failed at once (shown as an ephemeral Message of Method
// "dispatch_failed"). Events are not shown to anyone; Slack retries them
// later, which a test does with Redeliver.
func (s *Server) dispatchFailedLocked(env *envelope) {
	s.stats.DispatchFailed++
	env.dispatchFailed, env.lastFailed = true, true
	defer s.notifyLocked()
	if env.user == "" || env.kind == TypeEventsAPI {
		return
	}
	text := "dispatch_failed"
	if env.command != "" {
		text = env.command + ` failed with the error "dispatch_failed"`
	}
	s.storeLocked(Message{
		Method: "dispatch_failed", Channel: env.channel, TS: s.nextTSLocked(), Text: text,
		User: env.user, Ephemeral: true, EnvelopeID: env.id, Time: time.Now(),
	}, false)
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
// came late), ErrDispatchFailed at once when the latest attempt found no
// connection, ErrUnknownEnvelope for an id never sent, or the ctx error. The
// deadline runs from the latest delivery.
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
		if env.lastFailed {
			s.mu.Unlock()
			return Ack{}, fmt.Errorf("wait ack %s: %w", envelopeID, ErrDispatchFailed)
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
