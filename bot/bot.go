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
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/slack-go/slack"
	"golang.org/x/time/rate"

	"github.com/mpcbot/mpcbot/commands"
)

// Defaults for Config.
const (
	defaultQueueSize       = 10000
	DefaultWorkers         = 64
	defaultDoubleTapWindow = 5 * time.Second
	defaultShutdownGrace   = 20 * time.Second
	defaultPingTimeout     = 30 * time.Second
	defaultReconnectRate   = 1 // apps.connections.open calls per second
	defaultReconnectBurst  = 3
	defaultAuditQueueSize  = 1000
	defaultConnections     = 2
	defaultTimedDefault    = 2 * time.Minute
	// MaxConnections is Slack's limit of Socket Mode connections per app.
	MaxConnections  = 10
	envelopeMemory  = 15 * time.Minute
	socketCloseWait = 2 * time.Second // for slack-go to close the connections on shutdown
	// shutdownMargin bounds shutdown beyond ShutdownGrace: closing the
	// connections, telling users their commands were stopped, the audit
	// channel.
	shutdownMargin = 5 * time.Second
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
	// Grammar parses typed commands and button values (its TimedMax is
	// MPC_TIMED_MAX).
	Grammar commands.Grammar
	// Connections is how many Socket Mode connections the process keeps
	// open (default 2, at most MaxConnections): a refresh of one never
	// leaves the app with none.
	Connections int
	// Claims makes redelivered envelopes and double taps run once; with
	// several replicas it must be shared (default: this process only).
	Claims commands.Claims
	// TimedDefault is the timed hold offered on roster rows (default 2m).
	TimedDefault time.Duration
	// ResponseURLAllowed reports whether a response_url may be posted to
	// (default: Slack's hosts only, see SlackResponseURL). Tests point it
	// at the fake Slack.
	ResponseURLAllowed func(rawURL string) bool
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
	// httpClient is the client slack-go uses too (its transport bounds
	// reconnects); the hot chat.* calls go through it directly.
	httpClient *http.Client
	conns      []*connection
	svc        *commands.Service
	now        func() time.Time

	pending     atomic.Int64 // accepted commands not yet finished
	jobs        chan job
	envelopes   *expiringSet    // envelopes this process took (the ack path)
	claims      commands.Claims // envelopes and taps, fleet-wide when shared
	audit       *auditPoster
	guard       *connectGuard
	appID       atomic.Pointer[string] // learnt from hello
	foreignApps sync.Map               // api_app_id values already logged
	replies     sync.WaitGroup         // replies sent outside a worker
	// replyBase bounds every reply to Slack: cancelled when shutdown has
	// taken ShutdownGrace + shutdownMargin.
	replyBase   context.Context
	stopReplies context.CancelFunc
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
	setDefault(&cfg.QueueSize, defaultQueueSize)
	setDefault(&cfg.Workers, DefaultWorkers)
	setDefault(&cfg.CommandTimeout, commands.DefaultTimeout)
	setDefault(&cfg.ButtonMaxAge, commands.DefaultButtonMaxAge)
	setDefault(&cfg.DoubleTapWindow, defaultDoubleTapWindow)
	setDefault(&cfg.ShutdownGrace, defaultShutdownGrace)
	setDefault(&cfg.PingTimeout, defaultPingTimeout)
	setDefault(&cfg.ReconnectRate, defaultReconnectRate)
	setDefault(&cfg.ReconnectBurst, defaultReconnectBurst)
	setDefault(&cfg.Connections, defaultConnections)
	setDefault(&cfg.TimedDefault, defaultTimedDefault)
	if cfg.Connections < 1 || cfg.Connections > MaxConnections {
		return nil, fmt.Errorf("SLACK_CONNECTIONS must be between 1 and %d (Slack allows %d Socket Mode connections per app in total), got %d", MaxConnections, MaxConnections, cfg.Connections)
	}
	if cfg.ResponseURLAllowed == nil {
		cfg.ResponseURLAllowed = SlackResponseURL
	}
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
		claims:    cfg.Claims,
	}
	if b.claims == nil {
		b.claims = commands.NewLocalClaims()
	}
	b.replyBase, b.stopReplies = context.WithCancel(context.Background())
	b.guard = newConnectGuard(base.Transport, cfg.ReconnectRate, cfg.ReconnectBurst, cfg.Logger, cfg.Metrics)
	b.httpClient = &http.Client{Timeout: base.Timeout, Transport: b.guard}
	b.api = slack.New(cfg.BotToken,
		slack.OptionAppLevelToken(cfg.AppToken),
		slack.OptionAPIURL(cfg.APIURL),
		slack.OptionHTTPClient(b.httpClient),
	)
	for i := range cfg.Connections {
		b.conns = append(b.conns, b.newConnection(i+1))
	}
	b.audit = newAuditPoster(b, cfg.AuditChannel)
	// The bot records the audit trail of every change and tells timers'
	// threads what became of them.
	cfg.Service.Audit = b
	cfg.Service.Notify = b
	if cfg.Service.Logger == nil {
		cfg.Service.Logger = cfg.Logger
	}
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
func (b *Bot) Connected() bool { return b.OpenConnections() > 0 }

// OpenConnections returns how many Socket Mode connections are open (Slack
// said hello on them and they did not drop since).
func (b *Bot) OpenConnections() int {
	n := 0
	for _, c := range b.conns {
		if c.up.Load() {
			n++
		}
	}
	return n
}

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
	if err != nil && groupGone(err) {
		return nil, fmt.Errorf("%w: Slack said %s", commands.ErrGroupGone, slackErrorCode(err))
	}
	return ids, err
}

// groupGone reports a Slack answer that a retry will not change: the group
// does not exist, or the token cannot read groups. Its members are dropped
// at once instead of being served from the last lookup.
func groupGone(err error) bool {
	switch slackErrorCode(err) {
	case "no_such_subteam", "subteam_not_found", "missing_scope", "plan_upgrade_required", "invalid_auth",
		"not_authed", "account_inactive", "token_revoked", "token_expired", "not_allowed_token_type", "team_access_not_granted":
		return true
	}
	return false
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
	// The event loops stop taking envelopes when ctx ends or a connection
	// fails fatally.
	loopCtx, stopLoops := context.WithCancel(ctx)
	defer stopLoops()
	workCtx, stopWork := context.WithCancel(context.WithoutCancel(ctx))
	defer stopWork()
	defer b.stopReplies()

	var workers sync.WaitGroup
	for range b.cfg.Workers {
		workers.Go(func() { b.work(workCtx) })
	}
	auditDone := make(chan struct{})
	go func() { b.audit.run(workCtx); close(auditDone) }()

	socketErr := make(chan error, len(b.conns))
	var loops sync.WaitGroup
	for _, c := range b.conns {
		go func() { socketErr <- c.smc.RunContext(socketCtx) }()
		loops.Go(func() { c.eventLoop(loopCtx) })
	}
	loops.Go(func() { b.svc.RunTimers(loopCtx, b.timerSurfaceOf) })

	var runErr error
	running := len(b.conns)
	select {
	case err := <-socketErr:
		running--
		if err != nil && !errors.Is(err, context.Canceled) {
			runErr = fmt.Errorf("slack socket mode: %w", explainSocketError(err))
		}
	case <-ctx.Done():
	}
	// From here on, shutdown is bounded: ShutdownGrace for the commands in
	// flight, then shutdownMargin for everything else (closing the
	// connections, the notices to users whose commands were stopped, the
	// audit channel), whatever Slack does.
	hardStop := time.AfterFunc(b.cfg.ShutdownGrace+shutdownMargin, b.stopReplies)
	defer hardStop.Stop()
	stopLoops()
	stopSocket()
	// Wait for slack-go to close the connections, so that Slack sends new
	// envelopes elsewhere (another replica, or the next start).
	closeBy := time.NewTimer(socketCloseWait)
	defer closeBy.Stop()
wait:
	for ; running > 0; running-- {
		select {
		case <-socketErr:
		case <-closeBy.C:
			b.log.Warn("a Socket Mode connection did not close in time; going on", "waited", socketCloseWait)
			break wait
		}
	}
	loops.Wait()
	for _, c := range b.conns {
		c.up.Store(false)
	}
	b.guard.close()
	close(b.jobs) // only the event loops send on jobs, and they are done

	inflight := b.Pending()
	if inflight > 0 {
		b.log.Info("shutting down: finishing in-flight commands", "pending", inflight, "grace", b.cfg.ShutdownGrace)
	}
	done := make(chan struct{})
	go func() { workers.Wait(); b.replies.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(b.cfg.ShutdownGrace):
		b.log.Warn("shutdown grace period over: stopping the commands still running; their users are told", "pending", b.Pending())
		stopWork()
		<-done
	}
	// Timers kept in this process end with it: each one's thread says what
	// to run by hand. (Timers on Redis are run by another replica.)
	if n := b.svc.AbandonTimers(b.replyBase, "mpcbot stopped"); n > 0 {
		b.log.Warn("pending timers not run: mpcbot stopped (their threads say what to run)", "timers", n)
	}
	b.audit.close()
	select {
	case <-auditDone:
	case <-b.replyBase.Done():
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

// ackPayload is a message carried by an ack: Slack shows it to the user
// who typed the command, and to nobody else.
type ackPayload struct {
	ResponseType string        `json:"response_type"`
	Text         string        `json:"text"`
	Blocks       []slack.Block `json:"blocks,omitempty"`
}

func ephemeralAck(m message) ackPayload {
	return ackPayload{ResponseType: slack.ResponseTypeEphemeral, Text: m.Text, Blocks: m.Blocks}
}

// slogAdapter routes slack-go's own log lines to slog at debug level.
type slogAdapter struct{ l *slog.Logger }

func (a slogAdapter) Output(_ int, s string) error {
	a.l.Debug("slack-go", "msg", strings.TrimSpace(s))
	return nil
}
