package bot

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"sync/atomic"

	"github.com/slack-go/slack"
	"github.com/slack-go/slack/socketmode"
)

// connection is one of the process's Socket Mode links: its own slack-go
// client (which reconnects it) and its own event loop. Slack spreads
// envelopes over every open connection of the app, so while one is being
// refreshed the others keep serving.
type connection struct {
	b   *Bot
	id  int
	smc *socketmode.Client
	up  atomic.Bool // Slack said hello and the link has not dropped since
}

func (b *Bot) newConnection(id int) *connection {
	return &connection{b: b, id: id, smc: socketmode.New(b.api,
		socketmode.OptionPingInterval(b.cfg.PingTimeout),
		socketmode.OptionLog(slogAdapter{b.cfg.Logger}),
	)}
}

// eventLoop handles the connection's events until ctx ends: then it takes
// no new envelope, even one that arrived together with the cancellation
// (Slack redelivers what is not acked, to another connection).
func (c *connection) eventLoop(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case evt := <-c.smc.Events:
			if ctx.Err() != nil {
				return
			}
			c.handle(evt)
		}
	}
}

// handle is called for every event of the connection, in order. It must be
// quick: it acks and enqueues, never waits on the network.
func (c *connection) handle(evt socketmode.Event) {
	b := c.b
	switch evt.Type {
	case socketmode.EventTypeConnecting:
		if c.up.Swap(false) {
			b.log.Log(context.Background(), b.connectionLogLevel(), "Socket Mode connection lost; reconnecting",
				"connection", c.id, "open_connections", b.OpenConnections())
		}
		b.metrics.SocketEvent("connecting")
	case socketmode.EventTypeConnectionError:
		c.up.Store(false)
		b.metrics.SocketEvent("connection_error")
		if ce, ok := evt.Data.(*slack.ConnectionErrorEvent); ok {
			b.log.Warn("Socket Mode connection failed; slack-go retries", "connection", c.id, "attempt", ce.Attempt, "backoff", ce.Backoff, "err", ce.Error())
		}
	case socketmode.EventTypeConnected:
		b.metrics.SocketEvent("connected")
	case socketmode.EventTypeHello:
		if evt.Request != nil && evt.Request.ConnectionInfo.AppID != "" {
			id := evt.Request.ConnectionInfo.AppID
			b.appID.Store(&id)
		}
		if !c.up.Swap(true) {
			b.log.Log(context.Background(), b.connectionLogLevel(), "Socket Mode connected",
				"connection", c.id, "open_connections", b.OpenConnections())
		}
		b.guard.linkUp()
		b.metrics.SocketEvent("hello")
	case socketmode.EventTypeInvalidAuth:
		b.log.Error("Slack refused SLACK_APP_TOKEN (invalid_auth)")
	case socketmode.EventTypeSlashCommand:
		b.onSlashCommand(c, evt)
	case socketmode.EventTypeInteractive:
		b.onInteractive(c, evt)
	case socketmode.EventTypeEventsAPI:
		b.onEventsAPI(c, evt)
	case socketmode.EventTypeErrorBadMessage:
		c.onBadMessage(evt)
	case socketmode.EventTypeIncomingError:
		b.log.Warn("unreadable Socket Mode frame", "connection", c.id, "err", errString(evt.Data))
	case socketmode.EventTypeErrorWriteFailed:
		b.log.Warn("writing to the Socket Mode connection failed", "connection", c.id, "err", errString(evt.Data))
	default:
		if evt.Request != nil && evt.Request.EnvelopeID != "" {
			c.ack(evt.Request, "unknown", nil)
		}
		b.log.Info("ignored Socket Mode event", "type", string(evt.Type))
	}
}

// connectionLogLevel is the level of per-connection log lines: debug
// during a reconnect storm, which the guard logs once, info otherwise.
func (b *Bot) connectionLogLevel() slog.Level {
	if b.guard.Flapping() {
		return slog.LevelDebug
	}
	return slog.LevelInfo
}

func errString(v any) string {
	if err, ok := v.(error); ok {
		return err.Error()
	}
	return fmt.Sprint(v)
}

// onBadMessage acks an envelope slack-go could not parse (unknown type,
// malformed payload) if it carries an envelope id, so Slack does not show
// the user an error or redeliver it, and logs it.
func (c *connection) onBadMessage(evt socketmode.Event) {
	bad, _ := evt.Data.(*socketmode.ErrorBadMessage)
	if bad == nil {
		c.b.log.Warn("unusable Socket Mode envelope", "connection", c.id)
		return
	}
	var env struct {
		EnvelopeID string `json:"envelope_id"`
		Type       string `json:"type"`
	}
	_ = json.Unmarshal(bad.Message, &env)
	c.b.log.Warn("unusable Socket Mode envelope", "envelope_id", truncate(env.EnvelopeID, 128), "type", truncate(env.Type, 40),
		"bytes", len(bad.Message), "err", errString(bad.Cause))
	if env.EnvelopeID != "" && len(env.EnvelopeID) <= 128 {
		c.ack(&socketmode.Request{EnvelopeID: env.EnvelopeID}, "bad_message", nil)
	}
}

// ack acknowledges an envelope on this connection, with an optional
// message payload.
func (c *connection) ack(req *socketmode.Request, kind string, payload any) {
	if req == nil || req.EnvelopeID == "" {
		return
	}
	b := c.b
	start := b.now()
	var err error
	if payload == nil {
		err = c.smc.Ack(*req)
	} else {
		err = c.smc.Ack(*req, payload)
	}
	if err != nil {
		b.log.Error("ack failed", "envelope_id", req.EnvelopeID, "kind", kind, "err", err)
		if payload != nil {
			// Most likely too large for Slack: ack without the payload so
			// the user at least sees no error.
			_ = c.smc.Ack(*req)
		}
	}
	b.metrics.Ack(kind, b.now().Sub(start))
}
