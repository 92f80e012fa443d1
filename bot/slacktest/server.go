package slacktest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	mrand "math/rand/v2"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
)

// Defaults used by NewServer unless an Option overrides them.
const (
	DefaultAppToken    = "xapp-1-A0MPCBOT-1-fakeappleveltoken"
	DefaultBotToken    = "xoxb-1-fakebottoken"
	DefaultAppID       = "A0MPCBOT"
	DefaultTeamID      = "T0MPC"
	DefaultTeamDomain  = "mpc-test"
	DefaultBotUserID   = "U0MPCBOT"
	DefaultBotUserName = "mpcbot"
	DefaultBotID       = "B0MPCBOT"
	// DefaultChannelID is a public channel the bot is a member of; it exists on every new server.
	DefaultChannelID   = "C0MPC"
	DefaultChannelName = "mpc-ops"
	// DefaultUserID is a human user who exists on every new server and is a member of DefaultChannelID.
	DefaultUserID   = "U0SUPER1"
	DefaultUserName = "supervisor"

	// DefaultPingInterval is how often a live connection is sent a websocket PING.
	DefaultPingInterval = 5 * time.Second
	// DefaultAckTimeout is Slack's ack deadline: later, the user sees an error.
	DefaultAckTimeout = 3 * time.Second
	// DefaultMaxConnections is Slack's limit of concurrent Socket Mode connections per app.
	DefaultMaxConnections = 10
	// DefaultResponseURLUses is how many times a response_url may be used.
	DefaultResponseURLUses = 5
	// DefaultResponseURLLifetime is how long a response_url stays usable.
	DefaultResponseURLLifetime = 30 * time.Minute
	// DefaultRefreshWarningLead is how long a refresh with a warning keeps the
	// link open between "warning" and "refresh_requested" (Slack: about 10 s).
	DefaultRefreshWarningLead = 10 * time.Second

	// maxAckBytes is the size at which Slack silently drops a Socket Mode response
	// (slack-go socketmode.go maxResponseSize).
	maxAckBytes = 20 * 1024
)

// Errors returned by waits and lookups.
var (
	// ErrClosed is returned by waits when the server has been closed.
	ErrClosed = errors.New("slacktest: server closed")
	// ErrAckTimeout means the envelope was not acknowledged within the ack
	// deadline: a real user would have seen an error.
	ErrAckTimeout = errors.New("slacktest: envelope not acknowledged within the ack deadline")
	// ErrUnknownEnvelope means no envelope with that id was sent.
	ErrUnknownEnvelope = errors.New("slacktest: unknown envelope id")
	// ErrNoSuchButton means the message or the button to click does not exist.
	ErrNoSuchButton = errors.New("slacktest: no such message or button")
	// ErrDispatchFailed means no connection was open when the envelope was
	// sent: Slack did not hold it and the user saw dispatch_failed.
	ErrDispatchFailed = errors.New("slacktest: dispatch_failed: no open connection")
	// ErrNoSuchConnection means no open connection has that id (or none is open).
	ErrNoSuchConnection = errors.New("slacktest: no such open connection")
	// ErrNoSuchChannel means the channel does not exist on the server.
	ErrNoSuchChannel = errors.New("slacktest: no such channel")
	// ErrNoSuchMessage means the channel has no visible message with that ts.
	ErrNoSuchMessage = errors.New("slacktest: no such message")
)

type config struct {
	appToken, botToken        string
	appID, teamID, teamDomain string
	botUserID, botName, botID string
	verificationToken         string
	pingInterval, ackTimeout  time.Duration
	maxConns                  int
	responseUses              int
	responseTTL               time.Duration
	chatWritePublic           bool
	homeTabDisabled           bool
	refreshLead               time.Duration
	seed                      *uint64
	postRate                  float64 // messages per second per channel; 0 = no limit
	postBurst                 int
	now                       func() time.Time // clock of the rate limiter
	logger                    *slog.Logger
}

// Option configures a Server.
type Option func(*config)

// WithTokens sets the app-level token (must start "xapp-") and the bot token
// (must start "xoxb-") the server accepts.
func WithTokens(appToken, botToken string) Option {
	return func(c *config) { c.appToken, c.botToken = appToken, botToken }
}

// WithAppID sets the app id shown in hello, the connection URL and payloads.
func WithAppID(id string) Option { return func(c *config) { c.appID = id } }

// WithPingInterval sets how often live connections are sent a websocket PING.
func WithPingInterval(d time.Duration) Option { return func(c *config) { c.pingInterval = d } }

// WithAckTimeout sets the ack deadline (default 3 s, Slack's).
func WithAckTimeout(d time.Duration) Option { return func(c *config) { c.ackTimeout = d } }

// WithMaxConnections sets the concurrent connection limit (default 10, Slack's).
func WithMaxConnections(n int) Option { return func(c *config) { c.maxConns = n } }

// WithResponseURLLimits sets how many times and for how long a response_url
// may be used (default 5 times within 30 minutes, Slack's).
func WithResponseURLLimits(uses int, lifetime time.Duration) Option {
	return func(c *config) { c.responseUses, c.responseTTL = uses, lifetime }
}

// WithChatWritePublic grants the chat:write.public scope: the bot may post to
// public channels it is not a member of.
func WithChatWritePublic() Option { return func(c *config) { c.chatWritePublic = true } }

// WithSeed makes the random choices (which connection gets an envelope,
// which one RefreshRandomConnection picks) reproducible: the same seed and the
// same sequence of calls and connections give the same choices. Without it the
// seed is random.
func WithSeed(seed uint64) Option { return func(c *config) { c.seed = &seed } }

// WithRefreshWarningLead sets how long RefreshConnection with a warning keeps
// the link open between "warning" and "refresh_requested" (default 10 s,
// Slack's "about 10 seconds").
func WithRefreshWarningLead(d time.Duration) Option { return func(c *config) { c.refreshLead = d } }

// WithHomeTabDisabled turns the app's Home tab off: views.publish of a home
// view answers not_enabled (see also SetHomeTab).
func WithHomeTabDisabled() Option { return func(c *config) { c.homeTabDisabled = true } }

// WithLogger sets the logger for server-side diagnostics (default: discard).
// Tokens are never logged.
func WithLogger(l *slog.Logger) Option { return func(c *config) { c.logger = l } }

// Server is a fake Slack listening on 127.0.0.1. Create it with NewServer or
// Start and stop it with Close. All methods are safe for concurrent use.
type Server struct {
	cfg      config
	baseURL  string
	listener net.Listener
	httpSrv  *http.Server
	upgrader websocket.Upgrader

	// goroutines counts the server's own background goroutines (websocket
	// readers and ping loops); Close waits for them through wg.
	goroutines atomic.Int64
	wg         sync.WaitGroup
	pings      atomic.Int64
	pongs      atomic.Int64

	mu      sync.Mutex
	changed chan struct{} // closed and replaced on every state change
	closed  bool
	seq     int64 // source of unique ids (tickets, response urls, triggers)

	// Socket Mode state.
	rng          *mrand.Rand // random choices; used with mu held
	tickets      map[string]bool
	conns        []*wsConn // upgraded and not yet ended, in open order
	connLog      []ConnectionInfo
	nextConnID   int
	flap         bool
	silentNew    bool
	envelopes    map[string]*envelope
	envelopeList []*envelope
	stats        Stats

	// Web API state.
	failNext   map[string][]Failure
	failAlways map[string]Failure
	calls      []Call
	callCounts map[string]int
	channels   map[string]*channel
	users      map[string]string // id → name
	groups     map[string][]string
	lastTS     int64 // microseconds of the last ts handed out
	store      []*stored
	index      map[string]*stored // channel + "/" + ts
	log        []Message
	hooks      map[string]*responseHook
	dms        map[string]string  // user id → the app's DM channel with that user
	buckets    map[string]*bucket // per channel, for the posting rate limit
	postRate   float64            // messages per second per channel; 0 = no limit
	postBurst  int
	rateStyle  RateLimitStyle

	// Home tab state.
	homeEnabled bool
	homes       map[string][]HomeView // user id → views published, oldest first
}

// NewServer starts a fake Slack on 127.0.0.1. Like httptest.NewServer it
// panics if the server cannot start (invalid options or no free port); programs
// that prefer an error use Start.
func NewServer(opts ...Option) *Server {
	s, err := Start(opts...)
	if err != nil {
		panic(err)
	}
	return s
}

// Start starts a fake Slack on 127.0.0.1 and returns an error if the options
// are invalid or it cannot listen.
func Start(opts ...Option) (*Server, error) {
	cfg := config{
		appToken: DefaultAppToken, botToken: DefaultBotToken,
		appID: DefaultAppID, teamID: DefaultTeamID, teamDomain: DefaultTeamDomain,
		botUserID: DefaultBotUserID, botName: DefaultBotUserName, botID: DefaultBotID,
		verificationToken: "fakeverificationtoken",
		pingInterval:      DefaultPingInterval, ackTimeout: DefaultAckTimeout,
		maxConns: DefaultMaxConnections, responseUses: DefaultResponseURLUses,
		responseTTL: DefaultResponseURLLifetime, refreshLead: DefaultRefreshWarningLead,
		now:    time.Now,
		logger: slog.New(slog.DiscardHandler),
	}
	for _, o := range opts {
		o(&cfg)
	}
	switch {
	case !strings.HasPrefix(cfg.appToken, "xapp-"):
		return nil, errors.New("slacktest: app-level token must start with xapp-")
	case !strings.HasPrefix(cfg.botToken, "xoxb-"):
		return nil, errors.New("slacktest: bot token must start with xoxb-")
	case cfg.pingInterval <= 0, cfg.ackTimeout <= 0, cfg.responseTTL <= 0, cfg.refreshLead < 0:
		return nil, errors.New("slacktest: intervals must be positive")
	case cfg.maxConns < 1, cfg.responseUses < 1:
		return nil, errors.New("slacktest: limits must be at least 1")
	case cfg.postRate < 0, cfg.postRate > 0 && cfg.postBurst < 1:
		return nil, errors.New("slacktest: the channel rate limit needs a positive rate and a burst of at least 1")
	}
	seed := randomSeed()
	if cfg.seed != nil {
		seed = *cfg.seed
	}

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("slacktest: listen: %w", err)
	}
	s := &Server{
		cfg:         cfg,
		baseURL:     "http://" + ln.Addr().String(),
		listener:    ln,
		changed:     make(chan struct{}),
		tickets:     map[string]bool{},
		envelopes:   map[string]*envelope{},
		failNext:    map[string][]Failure{},
		failAlways:  map[string]Failure{},
		callCounts:  map[string]int{},
		channels:    map[string]*channel{},
		users:       map[string]string{},
		groups:      map[string][]string{},
		index:       map[string]*stored{},
		hooks:       map[string]*responseHook{},
		dms:         map[string]string{},
		buckets:     map[string]*bucket{},
		postRate:    cfg.postRate,
		postBurst:   cfg.postBurst,
		rng:         mrand.New(mrand.NewPCG(seed, seed^0x9e3779b97f4a7c15)),
		homeEnabled: !cfg.homeTabDisabled,
		homes:       map[string][]HomeView{},
	}
	// Slack does not check the Origin header; slack-go sends https://api.slack.com,
	// which gorilla's default check would refuse.
	s.upgrader = websocket.Upgrader{CheckOrigin: func(*http.Request) bool { return true }}
	s.users[cfg.botUserID] = cfg.botName
	s.users[DefaultUserID] = DefaultUserName
	s.channels[DefaultChannelID] = &channel{
		id: DefaultChannelID, name: DefaultChannelName, botMember: true,
		members: map[string]bool{DefaultUserID: true},
	}

	mux := http.NewServeMux()
	mux.HandleFunc("/api/", s.handleAPI)
	mux.HandleFunc("/link/", s.handleLink)
	mux.HandleFunc("/response/", s.handleResponseURL)
	s.httpSrv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = s.httpSrv.Serve(ln) }()
	return s, nil
}

// APIURL returns the Web API base URL with its trailing slash, for
// slack.OptionAPIURL (slack-go appends the method name to it).
func (s *Server) APIURL() string { return s.baseURL + "/api/" }

// URL returns the server's base URL, e.g. "http://127.0.0.1:PORT".
func (s *Server) URL() string { return s.baseURL }

// AppToken returns the app-level token (xapp-…) the server accepts.
func (s *Server) AppToken() string { return s.cfg.appToken }

// BotToken returns the bot token (xoxb-…) the server accepts.
func (s *Server) BotToken() string { return s.cfg.botToken }

// AppID returns the app id.
func (s *Server) AppID() string { return s.cfg.appID }

// TeamID returns the workspace id.
func (s *Server) TeamID() string { return s.cfg.teamID }

// BotUserID returns the bot's user id.
func (s *Server) BotUserID() string { return s.cfg.botUserID }

// Close closes every websocket, stops the ping loops and the HTTP server and
// waits for the server's goroutines. Waits in progress return ErrClosed.
func (s *Server) Close() {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.closed = true
	conns := append([]*wsConn(nil), s.conns...)
	s.notifyLocked()
	s.mu.Unlock()

	for _, c := range conns {
		c.close()
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := s.httpSrv.Shutdown(ctx); err != nil {
		_ = s.httpSrv.Close()
	}
	s.wg.Wait()
}

// notify wakes every wait.
func (s *Server) notify() {
	s.mu.Lock()
	s.notifyLocked()
	s.mu.Unlock()
}

// notifyLocked wakes every wait. Call with s.mu held.
func (s *Server) notifyLocked() {
	close(s.changed)
	s.changed = make(chan struct{})
}

// waitFor blocks until cond (called with s.mu held) returns true, the server
// closes or ctx is done.
func (s *Server) waitFor(ctx context.Context, cond func() bool) error {
	for {
		s.mu.Lock()
		if cond() {
			s.mu.Unlock()
			return nil
		}
		if s.closed {
			s.mu.Unlock()
			return ErrClosed
		}
		ch := s.changed
		s.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("slacktest: wait: %w", ctx.Err())
		}
	}
}

// nextIDLocked returns a unique, hard-to-guess id. Call with s.mu held.
func (s *Server) nextIDLocked() string {
	s.seq++
	return fmt.Sprintf("%d%s", s.seq, randomHex(6))
}

// goTrackedLocked runs f in a goroutine that Close waits for. It reports false (and
// does not run f) if the server is already closed. Call with s.mu held.
func (s *Server) goTrackedLocked(f func()) bool {
	if s.closed {
		return false
	}
	s.wg.Add(1)
	s.goroutines.Add(1)
	go func() {
		defer s.wg.Done()
		defer s.goroutines.Add(-1)
		f()
	}()
	return true
}

func randomSeed() uint64 {
	b := make([]byte, 8)
	_, _ = rand.Read(b)
	var v uint64
	for _, x := range b {
		v = v<<8 | uint64(x)
	}
	return v
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// newUUID returns a random (version 4) UUID, the shape of Slack's envelope ids.
func newUUID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b)
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}
