// Package bot is mpcbot's Slack transport: the Socket Mode connection,
// acknowledging every envelope at once, routing slash commands and button
// clicks to the commands package, rendering outcomes as Block Kit, and
// replying where the user will see it — an anchor message and its thread,
// an ephemeral message, or the command's response_url when the bot cannot
// post in the channel. It also bounds how fast a flapping link makes
// slack-go reconnect, and drains in-flight commands on shutdown.
//
// It knows nothing of how Plivo is called: commands.Service does that.
package bot

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/slack-go/slack"
	"github.com/slack-go/slack/socketmode"
	"golang.org/x/time/rate"

	"github.com/mpcbot/mpcbot/commands"
)

// Defaults for Config.
const (
	DefaultQueueSize       = 10000
	DefaultWorkers         = 64
	DefaultDoubleTapWindow = 5 * time.Second
	DefaultShutdownGrace   = 20 * time.Second
	DefaultPingTimeout     = 30 * time.Second
	DefaultReconnectRate   = 1 // apps.connections.open calls per second
	DefaultReconnectBurst  = 3
	DefaultAuditQueueSize  = 1000
	envelopeMemory         = 15 * time.Minute
	socketCloseWait        = 5 * time.Second // for slack-go to close the connection on shutdown
)

// Config configures a Bot.
type Config struct {
	// AppToken (xapp-…) opens Socket Mode connections; BotToken (xoxb-…)
	// calls the Web API.
	AppToken string
	BotToken string
	// APIURL is the Slack Web API base, with a trailing slash
	// (default "https://slack.com/api/").
	APIURL string
	// Service carries out commands.
	Service *commands.Service
	// ConfirmAllAbove is the MPC_CONFIRM_ALL_ABOVE threshold, used to
	// decide which buttons need Block Kit's confirm dialog.
	ConfirmAllAbove int
	// AuditChannel, if set, receives a one-line summary of every change.
	AuditChannel string
	// QueueSize bounds accepted-but-unfinished commands; beyond it new
	// commands are refused at once, visibly.
	QueueSize int
	// Workers is how many commands run at the same time.
	Workers int
	// CommandTimeout bounds a command from receipt to its Plivo answer
	// (default commands.DefaultTimeout).
	CommandTimeout time.Duration
	// ButtonMaxAge refuses clicks on older buttons (default 1 h).
	ButtonMaxAge time.Duration
	// DoubleTapWindow: a second click of the same button within it does
	// not call Plivo again (default 5 s).
	DoubleTapWindow time.Duration
	// ShutdownGrace is how long in-flight commands may run after Run's
	// context ends (default 20 s).
	ShutdownGrace time.Duration
	// PingTimeout replaces a connection that received no Slack ping for
	// this long (slack-go's OptionPingInterval; default 30 s).
	PingTimeout time.Duration
	// ReconnectRate and ReconnectBurst bound apps.connections.open calls.
	ReconnectRate  rate.Limit
	ReconnectBurst int
	// HTTPClient is the base HTTP client for Slack calls (optional).
	HTTPClient *http.Client
	// Logger receives structured logs and audit records.
	Logger *slog.Logger
	// Metrics receives counters and timings (optional).
	Metrics Metrics
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// Bot is a running Slack Socket Mode bot for /mpc.
type Bot struct {
	cfg     Config
	log     *slog.Logger
	metrics Metrics
	api     *slack.Client
	smc     *socketmode.Client
	svc     *commands.Service
	now     func() time.Time

	connected atomic.Bool
	pending   atomic.Int64 // accepted commands not yet finished
	jobs      chan job
	envelopes *expiringSet
	taps      *expiringSet
	audit     *auditPoster
	guard     *connectGuard
}

// New validates cfg and builds a Bot; it does not connect until Run.
func New(cfg Config) (*Bot, error) {
	if !strings.HasPrefix(cfg.AppToken, "xapp-") {
		return nil, errors.New("SLACK_APP_TOKEN must be an app-level token starting with xapp- (Basic Information → App-Level Tokens, scope connections:write)")
	}
	if !strings.HasPrefix(cfg.BotToken, "xoxb-") {
		return nil, errors.New("SLACK_BOT_TOKEN must be a bot token starting with xoxb- (OAuth & Permissions → Bot User OAuth Token)")
	}
	if cfg.Service == nil {
		return nil, errors.New("bot: no command service")
	}
	if cfg.APIURL == "" {
		cfg.APIURL = slack.APIURL
	}
	if !strings.HasSuffix(cfg.APIURL, "/") {
		cfg.APIURL += "/"
	}
	setDefault(&cfg.QueueSize, DefaultQueueSize)
	setDefault(&cfg.Workers, DefaultWorkers)
	setDefault(&cfg.CommandTimeout, commands.DefaultTimeout)
	setDefault(&cfg.ButtonMaxAge, commands.DefaultButtonMaxAge)
	setDefault(&cfg.DoubleTapWindow, DefaultDoubleTapWindow)
	setDefault(&cfg.ShutdownGrace, DefaultShutdownGrace)
	setDefault(&cfg.PingTimeout, DefaultPingTimeout)
	setDefault(&cfg.ReconnectRate, DefaultReconnectRate)
	setDefault(&cfg.ReconnectBurst, DefaultReconnectBurst)
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Metrics == nil {
		cfg.Metrics = noMetrics{}
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	base := cfg.HTTPClient
	if base == nil {
		base = &http.Client{Timeout: 30 * time.Second}
	}
	b := &Bot{
		cfg:       cfg,
		log:       cfg.Logger,
		metrics:   cfg.Metrics,
		svc:       cfg.Service,
		now:       cfg.Now,
		jobs:      make(chan job, cfg.QueueSize),
		envelopes: newExpiringSet(envelopeMemory),
		taps:      newExpiringSet(cfg.DoubleTapWindow),
	}
	b.guard = newConnectGuard(base.Transport, cfg.ReconnectRate, cfg.ReconnectBurst, cfg.Logger, cfg.Metrics)
	httpClient := &http.Client{Timeout: base.Timeout, Transport: b.guard}
	b.api = slack.New(cfg.BotToken,
		slack.OptionAppLevelToken(cfg.AppToken),
		slack.OptionAPIURL(cfg.APIURL),
		slack.OptionHTTPClient(httpClient),
	)
	b.smc = socketmode.New(b.api,
		socketmode.OptionPingInterval(cfg.PingTimeout),
		socketmode.OptionLog(slogAdapter{cfg.Logger}),
	)
	b.audit = newAuditPoster(b, cfg.AuditChannel)
	return b, nil
}

func setDefault[T comparable](v *T, def T) {
	var zero T
	if *v == zero {
		*v = def
	}
}

// Connected reports whether a Socket Mode connection is open and Slack has
// said hello on it.
func (b *Bot) Connected() bool { return b.connected.Load() }

// Pending returns the number of accepted commands not yet finished.
func (b *Bot) Pending() int { return int(b.pending.Load()) }

// GroupMembers resolves a Slack user group with usergroups.users.list; use
// it as the fetcher of a commands.GroupCache.
func (b *Bot) GroupMembers(ctx context.Context, groupID string) ([]string, error) {
	var ids []string
	err := b.callSlack(ctx, "usergroups.users.list", func(ctx context.Context) error {
		var err error
		ids, err = b.api.GetUserGroupMembersContext(ctx, groupID)
		return err
	})
	return ids, err
}

// Run connects to Slack and serves commands until ctx ends or the
// connection fails fatally (e.g. a revoked token). When ctx ends it stops
// taking envelopes, closes the Socket Mode connection (so Slack sends new
// ones elsewhere), lets in-flight commands finish for ShutdownGrace, then
// stops those still running (each still gets a visible reply) and returns
// nil.
func (b *Bot) Run(ctx context.Context) error {
	socketCtx, stopSocket := context.WithCancel(ctx)
	defer stopSocket()
	workCtx, stopWork := context.WithCancel(context.WithoutCancel(ctx))
	defer stopWork()

	var workers sync.WaitGroup
	for range b.cfg.Workers {
		workers.Go(func() { b.work(workCtx) })
	}
	auditDone := make(chan struct{})
	go func() { b.audit.run(workCtx); close(auditDone) }()

	socketErr := make(chan error, 1)
	go func() { socketErr <- b.smc.RunContext(socketCtx) }()

	var runErr error
loop:
	for {
		select {
		case evt := <-b.smc.Events:
			if ctx.Err() != nil {
				// Shutting down: take no new envelope, even one that
				// arrived together with the cancellation. Slack redelivers
				// what is not acked.
				break loop
			}
			b.handleEvent(evt)
		case err := <-socketErr:
			socketErr = nil // received: nothing more to wait for
			if err != nil && !errors.Is(err, context.Canceled) {
				runErr = fmt.Errorf("slack socket mode: %w", explainSocketError(err))
			}
			break loop
		case <-ctx.Done():
			break loop
		}
	}
	stopSocket()
	if socketErr != nil {
		// Wait for slack-go to close the connection, so that Slack sends
		// new envelopes elsewhere (another replica, or the next start).
		select {
		case <-socketErr:
		case <-time.After(socketCloseWait):
			b.log.Warn("the Socket Mode connection did not close in time; going on", "waited", socketCloseWait)
		}
	}
	b.connected.Store(false)
	b.guard.close()
	close(b.jobs) // only this goroutine sends on jobs

	inflight := b.Pending()
	if inflight > 0 {
		b.log.Info("shutting down: finishing in-flight commands", "pending", inflight, "grace", b.cfg.ShutdownGrace)
	}
	done := make(chan struct{})
	go func() { workers.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(b.cfg.ShutdownGrace):
		b.log.Warn("shutdown grace period over: stopping the commands still running; their users are told", "pending", b.Pending())
		stopWork()
		<-done
	}
	b.audit.close()
	select {
	case <-auditDone:
	case <-time.After(5 * time.Second):
	}
	return runErr
}

func explainSocketError(err error) error {
	switch err.Error() {
	case "invalid_auth", "not_authed", "token_revoked", "account_inactive":
		return fmt.Errorf("Slack refused SLACK_APP_TOKEN (%w): check the app-level token and its connections:write scope", err)
	}
	return err
}

// handleEvent is called for every socketmode event, in order, from Run's
// loop. It must be quick: it acks and enqueues, never waits on the network.
func (b *Bot) handleEvent(evt socketmode.Event) {
	switch evt.Type {
	case socketmode.EventTypeConnecting:
		if b.connected.Swap(false) {
			b.log.Log(context.Background(), b.connectionLogLevel(), "Socket Mode connection lost; reconnecting")
		}
		b.metrics.SocketEvent("connecting")
	case socketmode.EventTypeConnectionError:
		b.connected.Store(false)
		b.metrics.SocketEvent("connection_error")
		if ce, ok := evt.Data.(*slack.ConnectionErrorEvent); ok {
			b.log.Warn("Socket Mode connection failed; slack-go retries", "attempt", ce.Attempt, "backoff", ce.Backoff, "err", ce.Error())
		}
	case socketmode.EventTypeConnected:
		b.metrics.SocketEvent("connected")
	case socketmode.EventTypeHello:
		if !b.connected.Swap(true) {
			b.log.Log(context.Background(), b.connectionLogLevel(), "Socket Mode connected")
		}
		b.guard.linkUp()
		b.metrics.SocketEvent("hello")
	case socketmode.EventTypeInvalidAuth:
		b.log.Error("Slack refused SLACK_APP_TOKEN (invalid_auth)")
	case socketmode.EventTypeSlashCommand:
		b.onSlashCommand(evt)
	case socketmode.EventTypeInteractive:
		b.onInteractive(evt)
	case socketmode.EventTypeEventsAPI:
		b.ack(evt.Request, "events_api", nil)
	case socketmode.EventTypeErrorBadMessage:
		b.onBadMessage(evt)
	case socketmode.EventTypeIncomingError:
		b.log.Warn("unreadable Socket Mode frame", "err", errString(evt.Data))
	case socketmode.EventTypeErrorWriteFailed:
		b.log.Warn("writing to the Socket Mode connection failed", "err", errString(evt.Data))
	default:
		if evt.Request != nil && evt.Request.EnvelopeID != "" {
			b.ack(evt.Request, "unknown", nil)
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
func (b *Bot) onBadMessage(evt socketmode.Event) {
	bad, _ := evt.Data.(*socketmode.ErrorBadMessage)
	var env struct {
		EnvelopeID string `json:"envelope_id"`
		Type       string `json:"type"`
	}
	if bad != nil {
		_ = json.Unmarshal(bad.Message, &env)
	}
	size := 0
	if bad != nil {
		size = len(bad.Message)
	}
	b.log.Warn("unusable Socket Mode envelope", "envelope_id", env.EnvelopeID, "type", truncate(env.Type, 40), "bytes", size, "err", errString(bad.Cause))
	if env.EnvelopeID != "" && len(env.EnvelopeID) <= 128 {
		b.ack(&socketmode.Request{EnvelopeID: env.EnvelopeID}, "bad_message", nil)
	}
}

// ack acknowledges an envelope, with an optional message payload.
func (b *Bot) ack(req *socketmode.Request, kind string, payload any) {
	if req == nil || req.EnvelopeID == "" {
		return
	}
	start := b.now()
	var err error
	if payload == nil {
		err = b.smc.Ack(*req)
	} else {
		err = b.smc.Ack(*req, payload)
	}
	if err != nil {
		b.log.Error("ack failed", "envelope_id", req.EnvelopeID, "kind", kind, "err", err)
		if payload != nil {
			// Most likely too large for Slack: ack without the payload so
			// the user at least sees no error.
			_ = b.smc.Ack(*req)
		}
	}
	b.metrics.Ack(kind, b.now().Sub(start))
}

// ackPayload is a message carried by an ack: Slack shows it to the user
// who typed the command, and to nobody else.
type ackPayload struct {
	ResponseType string        `json:"response_type"`
	Text         string        `json:"text"`
	Blocks       []slack.Block `json:"blocks,omitempty"`
}

func ephemeralAck(m Message) ackPayload {
	return ackPayload{ResponseType: slack.ResponseTypeEphemeral, Text: m.Text, Blocks: m.Blocks}
}

// slogAdapter routes slack-go's own log lines to slog at debug level.
type slogAdapter struct{ l *slog.Logger }

func (a slogAdapter) Output(_ int, s string) error {
	a.l.Debug("slack-go", "msg", strings.TrimSpace(s))
	return nil
}
