package slacktest

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
)

// Disconnect reasons Slack sends in a "disconnect" message.
const (
	ReasonWarning           = "warning"
	ReasonRefreshRequested  = "refresh_requested"
	ReasonLinkDisabled      = "link_disabled"
	ReasonTooManyWebsockets = "too_many_websockets"
)

// writeTimeout bounds every websocket write so a stuck client cannot block the server.
const writeTimeout = 5 * time.Second

// Stats counts what happened on the Socket Mode side. Read it with Server.Stats.
type Stats struct {
	// OpenCalls counts apps.connections.open calls, failed ones included.
	OpenCalls int
	// ConnectionsOpened counts websocket upgrades that succeeded.
	ConnectionsOpened int
	// RejectedUpgrades counts upgrade attempts with a missing, unknown or used ticket.
	RejectedUpgrades int
	// LiveConnections is the number of connections currently registered for delivery
	// (silenced ones included).
	LiveConnections int
	// Hellos counts hello messages sent.
	Hellos int
	// Pings and Pongs count websocket PINGs sent and PONGs received.
	Pings, Pongs int
	// Delivered counts envelope writes (redeliveries included); Queued is the
	// number waiting for a live connection.
	Delivered, Queued int
	// Acks counts acks for known envelopes; DuplicateAcks those after the first.
	Acks, DuplicateAcks int
	// UnknownAcks counts acks naming an envelope that was never sent.
	UnknownAcks int
	// DroppedAcks counts frames of 20 KB or more, which Slack silently drops.
	DroppedAcks int
	// IgnoredFrames counts frames that arrived on a silenced connection (lost, as on a dead link).
	IgnoredFrames int
	// BadFrames counts frames that were not JSON objects with an envelope_id.
	BadFrames int
	// AckTimeouts counts envelopes with a delivery not acknowledged within the
	// ack deadline (the user saw an error), redelivered ones included.
	AckTimeouts int
}

// ConnectionInfo describes one websocket connection (see Server.Connections).
type ConnectionInfo struct {
	ID       int
	OpenedAt time.Time
	// ClosedAt is zero while the connection is open.
	ClosedAt time.Time
	// Live means registered for delivery (not flapped, not over the limit, not ended).
	Live bool
	// Silent means the connection was silenced: no pings, no envelopes.
	Silent bool
	// Outcome says how the connection ended or why it never went live.
	Outcome string
}

type connState int

const (
	connHandshaking connState = iota
	connLive
	connEnded
)

type wsConn struct {
	id       int
	ws       *websocket.Conn
	host     string
	openedAt time.Time
	state    connState // guarded by Server.mu
	silent   atomic.Bool
	writeMu  sync.Mutex
	done     chan struct{}
	once     sync.Once
}

// writeText writes one text frame; writes are serialised (gorilla is not
// safe for concurrent writers) and bounded by writeTimeout.
func (c *wsConn) writeText(data []byte) error {
	c.writeMu.Lock()
	defer c.writeMu.Unlock()
	return c.writeTextLocked(data)
}

// writeTextLocked writes one text frame; the caller holds writeMu.
func (c *wsConn) writeTextLocked(data []byte) error {
	if err := c.ws.SetWriteDeadline(time.Now().Add(writeTimeout)); err != nil {
		return fmt.Errorf("set write deadline: %w", err)
	}
	if err := c.ws.WriteMessage(websocket.TextMessage, data); err != nil {
		return fmt.Errorf("write frame: %w", err)
	}
	return nil
}

// closeWithFrame sends a close frame and then closes the TCP connection.
func (c *wsConn) closeWithFrame(code int, text string) {
	c.writeMu.Lock()
	_ = c.ws.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(code, text), time.Now().Add(time.Second))
	c.writeMu.Unlock()
	c.close()
}

// close closes the TCP connection without a close frame.
func (c *wsConn) close() {
	c.once.Do(func() {
		_ = c.ws.Close()
		close(c.done)
	})
}

// handleOpen serves apps.connections.open.
func (s *Server) handleOpen(r *http.Request, p params) apiResult {
	tok := bearerToken(r)
	switch {
	case tok == "":
		// Slack wants the app token in the Authorization header; a form token is an error.
		return slackError("not_authed")
	case tok != s.cfg.appToken:
		return slackError("invalid_auth")
	}
	if f, ok := s.takeFailure("apps.connections.open"); ok {
		return failureResult(f)
	}
	s.mu.Lock()
	ticket := s.nextIDLocked()
	s.tickets[ticket] = true
	s.mu.Unlock()
	wsURL := fmt.Sprintf("ws%s/link/?ticket=%s&app_id=%s", s.baseURL[len("http"):], ticket, s.cfg.appID)
	return okResult(map[string]any{"url": wsURL})
}

// handleLink serves the websocket upgrade at /link/.
func (s *Server) handleLink(w http.ResponseWriter, r *http.Request) {
	ticket := r.URL.Query().Get("ticket")
	s.mu.Lock()
	valid := !s.closed && ticket != "" && s.tickets[ticket] && r.URL.Query().Get("app_id") == s.cfg.appID
	delete(s.tickets, ticket)
	if !valid {
		s.stats.RejectedUpgrades++
		s.notifyLocked()
	}
	s.mu.Unlock()
	if !valid {
		http.Error(w, "invalid or used ticket", http.StatusUnauthorized)
		return
	}
	ws, err := s.upgrader.Upgrade(w, r, nil)
	if err != nil {
		s.cfg.logger.Debug("slacktest: websocket upgrade failed", "err", err)
		return
	}

	now := time.Now()
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		_ = ws.Close()
		return
	}
	s.nextConnID++
	c := &wsConn{
		id: s.nextConnID, ws: ws, openedAt: now, done: make(chan struct{}),
		host: fmt.Sprintf("applink-fake-%d", s.nextConnID),
	}
	open := 0
	for _, o := range s.conns {
		if o.state != connEnded {
			open++
		}
	}
	tooMany := open >= s.cfg.maxConns
	flap := s.flap
	s.stats.ConnectionsOpened++
	s.connLog = append(s.connLog, ConnectionInfo{ID: c.id, OpenedAt: now})
	if !tooMany {
		s.conns = append(s.conns, c)
	}
	s.wg.Add(1)
	s.goroutines.Add(1)
	s.notifyLocked()
	s.mu.Unlock()
	defer s.wg.Done()
	defer s.goroutines.Add(-1)

	if tooMany {
		s.endConn(c, "too_many_websockets")
		_ = c.writeText(disconnectJSON(ReasonTooManyWebsockets, c.host))
		c.closeWithFrame(websocket.CloseNormalClosure, "")
		return
	}

	approx := 18060
	if r.URL.Query().Get("debug_reconnects") == "true" {
		approx = 360
	}
	// Hold the write lock from registration until hello is written, so that
	// hello is the first frame even if an envelope is delivered meanwhile.
	// Counters move before the write so a client never sees hello before Stats does.
	c.writeMu.Lock()
	s.mu.Lock()
	s.stats.Hellos++
	if !flap && !s.closed && c.state == connHandshaking {
		c.state = connLive
		c.silent.Store(s.silentNew)
		s.setConnLogLocked(c.id, func(ci *ConnectionInfo) { ci.Live = true; ci.Silent = c.silent.Load() })
		s.goTrackedLocked(func() { s.pingLoop(c) })
	}
	s.notifyLocked()
	s.mu.Unlock()
	hello, _ := json.Marshal(map[string]any{
		"type":            "hello",
		"num_connections": open + 1,
		"debug_info": map[string]any{
			"host": c.host, "build_number": 1, "approximate_connection_time": approx,
		},
		"connection_info": map[string]any{"app_id": s.cfg.appID},
	})
	err = c.writeTextLocked(hello)
	c.writeMu.Unlock()
	if err != nil {
		s.mu.Lock()
		s.stats.Hellos--
		s.mu.Unlock()
		s.endConn(c, "hello write failed")
		c.close()
		return
	}
	s.cfg.logger.Debug("slacktest: hello sent", "connection", c.id, "flap", flap)
	if flap {
		s.endConn(c, "flapped after hello")
		c.closeWithFrame(websocket.CloseNormalClosure, "")
		return
	}

	ws.SetPongHandler(func(string) error {
		s.pongs.Add(1)
		s.notify()
		return nil
	})
	s.flushPending()
	s.readLoop(c)
	s.endConn(c, "closed by client")
	c.close()
}

// readLoop reads the client's frames (acks) until the connection fails.
func (s *Server) readLoop(c *wsConn) {
	for {
		_, data, err := c.ws.ReadMessage()
		if err != nil {
			return
		}
		s.handleFrame(c, data)
	}
}

// pingLoop sends a websocket PING every PingInterval until the connection ends.
func (s *Server) pingLoop(c *wsConn) {
	t := time.NewTicker(s.cfg.pingInterval)
	defer t.Stop()
	for {
		select {
		case <-c.done:
			return
		case <-t.C:
			if c.silent.Load() {
				continue
			}
			c.writeMu.Lock()
			err := c.ws.WriteControl(websocket.PingMessage, []byte("Ping from "+c.host), time.Now().Add(writeTimeout))
			c.writeMu.Unlock()
			if err != nil {
				c.close()
				return
			}
			s.pings.Add(1)
			s.notify()
		}
	}
}

// endConn unregisters c (idempotent) and records why it ended.
func (s *Server) endConn(c *wsConn, outcome string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if c.state == connEnded {
		return
	}
	c.state = connEnded
	s.conns = slices.DeleteFunc(s.conns, func(o *wsConn) bool { return o == c })
	s.setConnLogLocked(c.id, func(ci *ConnectionInfo) {
		ci.Live = false
		ci.ClosedAt = time.Now()
		ci.Outcome = outcome
	})
	s.cfg.logger.Debug("slacktest: connection ended", "connection", c.id, "outcome", outcome)
	s.notifyLocked()
}

func (s *Server) setConnLogLocked(id int, f func(*ConnectionInfo)) {
	for i := len(s.connLog) - 1; i >= 0; i-- {
		if s.connLog[i].ID == id {
			f(&s.connLog[i])
			return
		}
	}
}

func disconnectJSON(reason, host string) []byte {
	b, _ := json.Marshal(map[string]any{
		"type": "disconnect", "reason": reason, "debug_info": map[string]any{"host": host},
	})
	return b
}

// liveConnsLocked returns the connections registered for delivery.
func (s *Server) liveConnsLocked() []*wsConn {
	var live []*wsConn
	for _, c := range s.conns {
		if c.state == connLive {
			live = append(live, c)
		}
	}
	return live
}

// takeLiveConns unregisters and returns every live connection.
func (s *Server) takeLiveConns(outcome string) []*wsConn {
	s.mu.Lock()
	live := s.liveConnsLocked()
	s.mu.Unlock()
	for _, c := range live {
		s.endConn(c, outcome)
	}
	return live
}

// Disconnect sends {"type":"disconnect","reason":reason,...} to every live
// connection and then closes it (close frame, then TCP). Known reasons:
// ReasonWarning, ReasonRefreshRequested, ReasonLinkDisabled,
// ReasonTooManyWebsockets. It returns the number of connections disconnected.
func (s *Server) Disconnect(reason string) int {
	live := s.takeLiveConns("disconnect " + reason)
	for _, c := range live {
		_ = c.writeText(disconnectJSON(reason, c.host))
		c.closeWithFrame(websocket.CloseNormalClosure, "")
	}
	return len(live)
}

// DropConnections closes every live connection's TCP socket without a close
// frame or disconnect message, like a network failure. It returns the number dropped.
func (s *Server) DropConnections() int {
	live := s.takeLiveConns("dropped")
	for _, c := range live {
		c.close()
	}
	return len(live)
}

// SilenceConnections makes every live connection go silent, like a half-open
// link (slack-go issue #1093): the TCP connection stays open, but no more
// PINGs or envelopes are sent on it and frames from the client are lost.
// Envelopes wait for a connection that is not silent. New connections are
// not affected (see SetSilent).
func (s *Server) SilenceConnections() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	live := s.liveConnsLocked()
	for _, c := range live {
		c.silent.Store(true)
		s.setConnLogLocked(c.id, func(ci *ConnectionInfo) { ci.Silent = true })
	}
	s.notifyLocked()
	return len(live)
}

// SetSilent makes every connection opened from now on silent (on) or normal (off).
// Connections that are already open keep their state.
func (s *Server) SetSilent(on bool) {
	s.mu.Lock()
	s.silentNew = on
	s.mu.Unlock()
}

// FlapAfterHello makes every new connection receive hello and then be closed
// at once (on), the flapping link after which slack-go v0.35.0 reconnects with
// no backoff. Count OpenCalls to check that a bot bounds its reconnect rate.
func (s *Server) FlapAfterHello(on bool) {
	s.mu.Lock()
	s.flap = on
	s.mu.Unlock()
}

// Stats returns a snapshot of the Socket Mode counters.
func (s *Server) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.statsLocked(time.Now())
}

func (s *Server) statsLocked(now time.Time) Stats {
	st := s.stats
	st.OpenCalls = s.countCallsLocked("apps.connections.open")
	st.LiveConnections = len(s.liveConnsLocked())
	st.Pings = int(s.pings.Load())
	st.Pongs = int(s.pongs.Load())
	st.Queued = len(s.pending)
	for _, e := range s.envelopeList {
		if e.timedOutLocked(now, s.cfg.ackTimeout) {
			st.AckTimeouts++
		}
	}
	return st
}

// Connections returns every websocket connection so far, in open order.
func (s *Server) Connections() []ConnectionInfo {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.connLog)
}

// WaitStats waits until cond holds for the current Stats and returns them.
func (s *Server) WaitStats(ctx context.Context, cond func(Stats) bool) (Stats, error) {
	var st Stats
	err := s.waitFor(ctx, func() bool {
		st = s.statsLocked(time.Now())
		return cond(st)
	})
	return st, err
}

// WaitConnections waits until at least n connections are live and not silent.
func (s *Server) WaitConnections(ctx context.Context, n int) error {
	return s.waitFor(ctx, func() bool {
		count := 0
		for _, c := range s.liveConnsLocked() {
			if !c.silent.Load() {
				count++
			}
		}
		return count >= n
	})
}

// WaitConnectionAfter waits until a connection opened after t is live and not
// silent, and returns it.
func (s *Server) WaitConnectionAfter(ctx context.Context, t time.Time) (ConnectionInfo, error) {
	var found ConnectionInfo
	err := s.waitFor(ctx, func() bool {
		for _, ci := range s.connLog {
			if ci.Live && !ci.Silent && ci.OpenedAt.After(t) {
				found = ci
				return true
			}
		}
		return false
	})
	return found, err
}
