package slacktest

import (
	"context"
	"fmt"
	"slices"
	"time"
)

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
	// Delivered counts envelope writes (redeliveries included).
	Delivered int
	// Lost counts envelopes sent to a silenced connection: recorded as
	// delivered there, never written, so never acknowledged.
	Lost int
	// DispatchFailed counts envelopes (or redeliveries) sent while no
	// connection was open: Slack does not hold them, the user sees
	// dispatch_failed at once.
	DispatchFailed int
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
	ID int
	// Host is the debug_info.host sent in hello ("applink-fake-<ID>").
	Host string
	// RemoteAddr is the client's address (127.0.0.1:port), which tells
	// the connections of several bot processes apart.
	RemoteAddr string
	OpenedAt   time.Time
	// ClosedAt is zero while the connection is open.
	ClosedAt time.Time
	// Live means registered for delivery (not flapped, not over the limit, not ended).
	Live bool
	// Silent means the connection was silenced: no pings, envelopes sent to it are lost.
	Silent bool
	// Outcome says how the connection ended or why it never went live:
	// "disconnect <reason>", "dropped", "closed by client", "closed by client
	// after warning", "flapped after hello", "too_many_websockets", "write failed".
	Outcome string
}

// Disconnect sends {"type":"disconnect","reason":reason,...} to every live
// connection and then closes it (close frame, then TCP). Known reasons:
// ReasonWarning, ReasonRefreshRequested, ReasonLinkDisabled,
// ReasonTooManyWebsockets. It returns the number of connections disconnected.
func (s *Server) Disconnect(reason string) int {
	live := s.takeLiveConns("disconnect " + reason)
	for _, c := range live {
		_ = c.writeText(disconnectJSON(reason, c.host))
		c.closeWithFrame(closeNormal, "")
	}
	return len(live)
}

// RefreshConnection refreshes one open connection the way Slack does every
// few hours. Without warn it sends disconnect/refresh_requested and closes the
// link at once. With warn it sends disconnect/warning, keeps the link open
// (and delivering) for the refresh warning lead (WithRefreshWarningLead), then
// sends refresh_requested and closes it; a client that closes on the warning
// (slack-go does) ends it earlier, with Outcome "closed by client after
// warning". It returns ErrNoSuchConnection if id is not open.
func (s *Server) RefreshConnection(id int, warn bool) error {
	s.mu.Lock()
	c := s.liveConnLocked(id)
	if c == nil {
		s.mu.Unlock()
		return fmt.Errorf("refresh connection %d: %w", id, ErrNoSuchConnection)
	}
	if !warn {
		s.mu.Unlock()
		s.disconnectConn(c, ReasonRefreshRequested)
		return nil
	}
	c.warned = true
	s.mu.Unlock()
	_ = c.writeText(disconnectJSON(ReasonWarning, c.host))
	lead := s.cfg.refreshLead
	s.mu.Lock()
	s.goTrackedLocked(func() {
		t := time.NewTimer(lead)
		defer t.Stop()
		select {
		case <-c.done:
			return
		case <-t.C:
		}
		s.disconnectConn(c, ReasonRefreshRequested)
	})
	s.mu.Unlock()
	return nil
}

// RefreshRandomConnection refreshes one open connection chosen at random (see
// RefreshConnection) and returns it as it was before the refresh. It returns
// ErrNoSuchConnection when none is open.
func (s *Server) RefreshRandomConnection(warn bool) (ConnectionInfo, error) {
	s.mu.Lock()
	live := s.liveConnsLocked()
	if len(live) == 0 {
		s.mu.Unlock()
		return ConnectionInfo{}, fmt.Errorf("refresh a random connection: %w", ErrNoSuchConnection)
	}
	c := live[s.rng.IntN(len(live))]
	info := s.connInfoLocked(c.id)
	s.mu.Unlock()
	return info, s.RefreshConnection(c.id, warn)
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

// DropConnection closes one open connection's TCP socket without a close
// frame, like a network failure on one replica's link. It returns
// ErrNoSuchConnection if id is not open.
func (s *Server) DropConnection(id int) error {
	s.mu.Lock()
	c := s.liveConnLocked(id)
	s.mu.Unlock()
	if c == nil || !s.endConn(c, "dropped") {
		return fmt.Errorf("drop connection %d: %w", id, ErrNoSuchConnection)
	}
	c.close()
	return nil
}

// SilenceConnections makes every live connection go silent, like a half-open
// link (slack-go issue #1093): the TCP connection stays open, but no more
// PINGs are sent on it and frames from the client are lost. Slack cannot tell,
// so envelopes are still routed to it and lost (Delivery.Lost): the user sees
// the ack timeout. New connections are not affected (see SetSilent).
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

// OpenConnections returns the connections currently open for delivery
// (silenced ones included), in open order: pick one for RefreshConnection or
// DropConnection.
func (s *Server) OpenConnections() []ConnectionInfo {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []ConnectionInfo
	for _, c := range s.liveConnsLocked() {
		out = append(out, s.connInfoLocked(c.id))
	}
	return out
}

func (s *Server) connInfoLocked(id int) ConnectionInfo {
	for i := len(s.connLog) - 1; i >= 0; i-- {
		if s.connLog[i].ID == id {
			return s.connLog[i]
		}
	}
	return ConnectionInfo{}
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
