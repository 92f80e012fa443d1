package slacktest

import (
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

// outcomeClosedByClient is the ConnectionInfo.Outcome of a link the client closed.
const outcomeClosedByClient = "closed by client"

// closeNormal is the close code sent after a disconnect message.
const closeNormal = websocket.CloseNormalClosure

// writeTimeout bounds every websocket write so a stuck client cannot block the server.
const writeTimeout = 5 * time.Second

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
	remote   string
	openedAt time.Time
	state    connState // guarded by Server.mu
	warned   bool      // a refresh warning was sent; guarded by Server.mu
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
		host: fmt.Sprintf("applink-fake-%d", s.nextConnID), remote: r.RemoteAddr,
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
	s.connLog = append(s.connLog, ConnectionInfo{ID: c.id, Host: c.host, RemoteAddr: c.remote, OpenedAt: now})
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
		c.closeWithFrame(closeNormal, "")
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
		c.closeWithFrame(closeNormal, "")
		return
	}

	ws.SetPongHandler(func(string) error {
		s.pongs.Add(1)
		s.notify()
		return nil
	})
	s.readLoop(c)
	s.endConn(c, outcomeClosedByClient)
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

// endConn unregisters c and records why it ended. It reports false if c had
// already ended.
func (s *Server) endConn(c *wsConn, outcome string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if c.state == connEnded {
		return false
	}
	if outcome == outcomeClosedByClient && c.warned {
		outcome += " after warning"
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
	return true
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

// takeLiveConns unregisters every live connection and returns those it ended.
func (s *Server) takeLiveConns(outcome string) []*wsConn {
	s.mu.Lock()
	live := s.liveConnsLocked()
	s.mu.Unlock()
	var taken []*wsConn
	for _, c := range live {
		if s.endConn(c, outcome) {
			taken = append(taken, c)
		}
	}
	return taken
}

// liveConnLocked returns the live connection with that id, or nil.
func (s *Server) liveConnLocked(id int) *wsConn {
	for _, c := range s.conns {
		if c.id == id && c.state == connLive {
			return c
		}
	}
	return nil
}

// disconnectConn ends c with a disconnect message of that reason and a close
// frame. It reports false (and sends nothing) if c had already ended.
func (s *Server) disconnectConn(c *wsConn, reason string) bool {
	if !s.endConn(c, "disconnect "+reason) {
		return false
	}
	_ = c.writeText(disconnectJSON(reason, c.host))
	c.closeWithFrame(closeNormal, "")
	return true
}
