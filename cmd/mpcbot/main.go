// Command mpcbot controls live Plivo multiparty calls from Slack.
//
//	mpcbot [run]          run the bot (Slack Socket Mode; needs SLACK_* and PLIVO_* variables)
//	mpcbot demo           the same command pipeline against a built-in Plivo simulator, in a terminal
//	mpcbot exec <command> run one /mpc command against Plivo and print the results
//	mpcbot manifest       print the Slack app manifest
//
// Configuration comes from environment variables; see README.md.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
	"golang.org/x/time/rate"

	"github.com/mpcbot/mpcbot"
	"github.com/mpcbot/mpcbot/bot"
	"github.com/mpcbot/mpcbot/commands"
	"github.com/mpcbot/mpcbot/fleet"
	"github.com/mpcbot/mpcbot/plivo"
)

const usageText = `mpcbot controls live Plivo multiparty calls from Slack.

Usage:
  mpcbot [run]            run the bot (needs SLACK_APP_TOKEN, SLACK_BOT_TOKEN, PLIVO_AUTH_ID, PLIVO_AUTH_TOKEN)
  mpcbot demo             try /mpc commands in a terminal against a built-in Plivo simulator (no credentials)
  mpcbot exec <command>   run one /mpc command against Plivo, e.g. mpcbot exec hold test_mpc_1 all
  mpcbot manifest         print the Slack app manifest (create the app from it)

Configuration is read from environment variables; see README.md.
`

// Exit codes.
const (
	exitOK      = 0
	exitFailed  = 1 // the command ran and failed (or the bot stopped on an error)
	exitUsage   = 2 // bad arguments or configuration
	exitRefused = 3 // mpcbot exec: the change needs confirmation or was refused
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], environ(), os.Stdin, os.Stdout, os.Stderr))
}

func environ() map[string]string {
	m := map[string]string{}
	for _, kv := range os.Environ() {
		if k, v, ok := strings.Cut(kv, "="); ok {
			m[k] = v
		}
	}
	return m
}

// run is main without the process: testable end to end.
func run(ctx context.Context, args []string, env map[string]string, stdin io.Reader, stdout, stderr io.Writer) int {
	sub := "run"
	if len(args) > 0 {
		sub, args = args[0], args[1:]
	}
	switch sub {
	case "run":
		if len(args) > 0 {
			fmt.Fprintf(stderr, "mpcbot run takes no arguments (got %q)\n\n%s", args, usageText)
			return exitUsage
		}
		return runBot(ctx, env, stderr)
	case "demo":
		return runDemo(ctx, env, stdin, stdout, stderr)
	case "exec":
		return runExec(ctx, args, env, stdout, stderr)
	case "manifest":
		_, _ = stdout.Write(mpcbot.Manifest)
		return exitOK
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usageText)
		return exitOK
	}
	fmt.Fprintf(stderr, "mpcbot: unknown subcommand %q\n\n%s", sub, usageText)
	return exitUsage
}

// Main is the running bot: configuration in, Slack and HTTP servers out.
type Main struct {
	Config  Config
	Logger  *slog.Logger
	Metrics *metrics
	Plivo   *plivo.Client
	Bot     *bot.Bot
	Groups  *commands.GroupCache
	Policy  *commands.Policy
	// Fleet is the state shared with the other replicas on Redis; nil
	// without REDIS_URL (one process, in-process state).
	Fleet *fleet.Fleet

	httpServer *http.Server
	listener   net.Listener
	// clients are the pooled HTTP clients for Slack and Plivo; Close drops
	// their idle connections.
	clients []*http.Client
}

// NewMain wires the bot from cfg; it does not connect anywhere yet.
func NewMain(cfg Config, logger *slog.Logger) (*Main, error) {
	m := &Main{Config: cfg, Logger: logger}
	m.Metrics = newMetrics(func() float64 {
		if m.Bot != nil && m.Bot.Connected() {
			return 1
		}
		return 0
	}, func() float64 {
		if m.Bot == nil {
			return 0
		}
		return float64(m.Bot.OpenConnections())
	})
	var err error
	pcfg := plivo.Config{
		AuthID: cfg.PlivoAuthID, AuthToken: cfg.PlivoAuthToken, BaseURL: cfg.PlivoAPIURL,
		Rate: rate.Limit(cfg.PlivoRate), Burst: cfg.PlivoBurst, Timeout: cfg.PlivoTimeout,
		Observer: m.Metrics, Logger: logger, HTTPClient: m.pooledClient(0),
	}
	if cfg.RedisURL != "" {
		// PLIVO_RATE and PLIVO_BURST are the fleet's budget: one bucket on
		// Redis for every replica. Opening never fails on Redis being down:
		// the fleet starts degraded and recovers by itself.
		m.Fleet, err = fleet.Open(context.Background(), fleet.Config{URL: cfg.RedisURL, CallTimeout: cfg.RedisTimeout,
			Rate: rate.Limit(cfg.PlivoRate), Burst: cfg.PlivoBurst, Logger: logger})
		if err != nil {
			return nil, err
		}
		pcfg.Limiter, pcfg.InFlight = m.Fleet.Limiter(), m.Fleet.InFlight()
		m.Metrics.watchFleet(m.Fleet)
	}
	m.Plivo, err = plivo.New(pcfg)
	if err != nil {
		m.closeFleet()
		return nil, fmt.Errorf("PLIVO_* configuration: %w", err)
	}
	// The group cache resolves through the bot's Slack client, which needs
	// the policy that needs the cache: the fetcher looks the bot up late.
	m.Groups = commands.NewGroupCache(func(ctx context.Context, id string) ([]string, error) {
		return m.Bot.GroupMembers(ctx, id)
	}, commands.GroupCacheConfig{TTL: cfg.GroupTTL, MaxStale: cfg.GroupMaxStale, Logger: logger})
	m.Policy, err = commands.NewPolicy(commands.PolicyConfig{
		Supervisors: cfg.Supervisors, Agents: cfg.Agents, Channels: cfg.Channels, Groups: m.Groups,
	})
	if err != nil {
		m.closeFleet()
		return nil, err
	}
	svc := &commands.Service{Plivo: m.Plivo, Policy: m.Policy, ConfirmAllAbove: cfg.ConfirmAllAbove, Timeout: cfg.CommandTimeout,
		Logger: logger}
	if m.Fleet != nil {
		svc.Timers, svc.Cache = m.Fleet.Timers(), m.Fleet.Cache()
	}
	m.Bot, err = bot.New(bot.Config{
		AppToken: cfg.SlackAppToken, BotToken: cfg.SlackBotToken, APIURL: cfg.SlackAPIURL,
		Service: svc, Grammar: cfg.grammar(), Connections: cfg.SlackConnections, TimedDefault: cfg.TimedDefault,
		Claims: m.claims(), AuditChannel: cfg.AuditChannel,
		QueueSize: cfg.QueueSize, CommandTimeout: cfg.CommandTimeout, ButtonMaxAge: cfg.ButtonMaxAge,
		DoubleTapWindow: cfg.DoubleTapWindow, ShutdownGrace: cfg.ShutdownGrace, PingTimeout: cfg.SlackPingTimeout,
		Logger: logger, Metrics: m.Metrics, HTTPClient: m.pooledClient(30 * time.Second),
		ResponseURLAllowed: responseURLRule(cfg.SlackAPIURL),
	})
	if err != nil {
		m.closeFleet()
		return nil, err
	}
	return m, nil
}

// claims is where envelopes and taps are claimed: the fleet's Redis, or
// (nil) the bot's own memory.
func (m *Main) claims() commands.Claims {
	if m.Fleet == nil {
		return nil
	}
	return m.Fleet.Claims()
}

func (m *Main) closeFleet() {
	if m.Fleet != nil {
		_ = m.Fleet.Close()
	}
}

// Open starts the health and metrics server (if HTTP_ADDR is set).
func (m *Main) Open() error {
	if m.Config.HTTPAddr == "" {
		return nil
	}
	ln, err := net.Listen("tcp", m.Config.HTTPAddr)
	if err != nil {
		return fmt.Errorf("HTTP_ADDR %s: %w (set HTTP_ADDR to a free host:port, or empty to disable)", m.Config.HTTPAddr, err)
	}
	m.listener = ln
	m.httpServer = &http.Server{Handler: m.handler(), ReadHeaderTimeout: 5 * time.Second}
	go func() {
		if err := m.httpServer.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			m.Logger.Error("health server stopped", "err", err)
		}
	}()
	m.Logger.Info("health and metrics server listening", "addr", ln.Addr().String())
	return nil
}

// Addr returns the health server's address, or "" when disabled.
func (m *Main) Addr() string {
	if m.listener == nil {
		return ""
	}
	return m.listener.Addr().String()
}

func (m *Main) handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintln(w, "ok")
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		var problems []string
		if !m.Bot.Connected() {
			problems = append(problems, "slack: no Socket Mode connection (waiting for hello)")
		}
		// Ready while the credentials were accepted once or not yet tried.
		if m.Plivo.Credentials() == plivo.CredentialsRejected && !m.Plivo.CredentialsAcceptedOnce() {
			problems = append(problems, "plivo: credentials rejected (check PLIVO_AUTH_ID and PLIVO_AUTH_TOKEN)")
		}
		if len(problems) > 0 {
			w.WriteHeader(http.StatusServiceUnavailable)
			fmt.Fprintln(w, strings.Join(problems, "\n"))
			return
		}
		fmt.Fprintln(w, "ready")
		fmt.Fprintf(w, "slack: %d of %d Socket Mode connections open\n", m.Bot.OpenConnections(), m.Config.SlackConnections)
		if m.Fleet != nil {
			// Redis trouble is not an outage: still ready, and says so.
			if st := m.Fleet.Status(); st.Healthy {
				fmt.Fprintf(w, "redis: shared state, %d replicas alive\n", len(m.Fleet.Replicas()))
			} else {
				fmt.Fprintf(w, "redis: degraded since %s (%s): Plivo budget split per replica, dedupe and timers per process\n",
					st.Since.UTC().Format(time.RFC3339), st.Reason)
			}
		}
	})
	mux.Handle("GET /metrics", promhttp.HandlerFor(m.Metrics.registry, promhttp.HandlerOpts{}))
	return mux
}

// Run serves Slack until ctx ends (then drains in-flight commands) or the
// connection fails fatally.
func (m *Main) Run(ctx context.Context) error {
	if m.Policy.Empty() {
		m.Logger.Warn("MPC_SUPERVISORS and MPC_AGENTS are empty: every request will be refused (deny by default); set them to Slack user ids, user-group ids or *")
	}
	groupCtx, stopGroups := context.WithCancel(ctx)
	defer stopGroups()
	go m.Groups.Run(groupCtx, m.Policy.Groups())
	m.Logger.Info("mpcbot starting", "slack_api", m.Config.SlackAPIURL, "plivo_api", m.Config.PlivoAPIURL,
		"plivo_rate", m.Config.PlivoRate, "plivo_burst", m.Config.PlivoBurst, "channels", m.Policy.Channels())
	return m.Bot.Run(ctx)
}

// Close stops the health server, leaves the fleet and drops idle
// connections to Slack and Plivo.
func (m *Main) Close() error {
	defer m.closeFleet()
	for _, c := range m.clients {
		defer c.CloseIdleConnections()
	}
	if m.httpServer == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return m.httpServer.Shutdown(ctx)
}

// responseURLRule is where mpcbot posts response_urls: Slack's hosts only
// (bot.SlackResponseURL) — and, when SLACK_API_URL points elsewhere (a
// proxy, the fake Slack of the tests), that same origin too.
func responseURLRule(apiURL string) func(string) bool {
	api, err := url.Parse(apiURL)
	if err != nil || apiURL == slackDefaultAPIURL {
		return bot.SlackResponseURL
	}
	return func(raw string) bool {
		if bot.SlackResponseURL(raw) {
			return true
		}
		u, err := url.Parse(raw)
		return err == nil && u.User == nil && u.Scheme == api.Scheme && u.Host == api.Host
	}
}

// pooledClient returns an HTTP client that keeps enough idle connections
// for every worker: http.DefaultTransport keeps two per host, so under load
// most Slack and Plivo calls would open a new connection (and, in
// production, a new TLS session).
func (m *Main) pooledClient(timeout time.Duration) *http.Client {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConnsPerHost = bot.DefaultWorkers
	t.MaxIdleConns = 4 * bot.DefaultWorkers
	c := &http.Client{Transport: t, Timeout: timeout}
	m.clients = append(m.clients, c)
	return c
}

func runBot(ctx context.Context, env map[string]string, stderr io.Writer) int {
	cfg, err := loadConfig(env, needSlack|needPlivo)
	logger := newLogger(stderr, cfg.LogLevel, cfg.LogFormat, cfg.secrets())
	if err != nil {
		fmt.Fprintf(stderr, "mpcbot: configuration:\n%s\n", indent(redactor(cfg.secrets()).Replace(err.Error())))
		return exitUsage
	}
	m, err := NewMain(cfg, logger)
	if err != nil {
		fmt.Fprintf(stderr, "mpcbot: %s\n", redactor(cfg.secrets()).Replace(err.Error()))
		return exitUsage
	}
	if err := m.Open(); err != nil {
		fmt.Fprintf(stderr, "mpcbot: %s\n", err)
		return exitUsage
	}
	defer m.Close()
	if err := m.Run(ctx); err != nil {
		logger.Error("mpcbot stopped", "err", err)
		return exitFailed
	}
	logger.Info("mpcbot stopped")
	return exitOK
}

func indent(s string) string {
	return "  " + strings.ReplaceAll(s, "\n", "\n  ")
}
