package plivo

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"
)

// Defaults used by New for zero Config fields.
const (
	DefaultBaseURL     = "https://api.plivo.com"
	DefaultRate        = rate.Limit(10)
	DefaultBurst       = 10
	DefaultTimeout     = 10 * time.Second
	DefaultBackoffBase = 200 * time.Millisecond
	DefaultBackoffMax  = 5 * time.Second
	DefaultCallTimeout = 30 * time.Second
)

// maxResponseBytes bounds how much of a response body is read.
const maxResponseBytes = 1 << 20

// userAgent is sent with every request.
const userAgent = "mpcbot/1 (plivo-mpc-client)"

// Config configures a Client. Zero fields take the defaults above.
type Config struct {
	// AuthID and AuthToken are the Plivo account credentials (HTTP basic
	// auth). The token, in none of the forms SecretForms lists, is ever
	// logged or put in an error or a result.
	AuthID, AuthToken string
	// BaseURL is the API root, default DefaultBaseURL. Requests go to
	// {BaseURL}/v1/Account/{AuthID}/MultiPartyCall/…/ (always a trailing
	// slash). It must be http or https, with no credentials, query or
	// fragment.
	BaseURL string
	// Rate is the token-bucket rate (requests per second) that gates every
	// HTTP attempt, retries and read-backs included. Default DefaultRate.
	// Used only when Limiter is nil.
	Rate rate.Limit
	// Burst is the token-bucket size. Default DefaultBurst. Used only when
	// Limiter is nil.
	Burst int
	// Limiter gates every HTTP attempt. nil means an in-process bucket,
	// NewLocalLimiter(Rate, Burst); replicas of a fleet share one (see
	// Limiter).
	Limiter Limiter
	// InFlight records the updates being sent, for reading the state back
	// after a lost answer. nil means NewLocalInFlight(); replicas of a fleet
	// share one (see InFlight).
	InFlight InFlight
	// Timeout bounds each HTTP attempt. Default DefaultTimeout.
	Timeout time.Duration
	// BackoffBase and BackoffMax shape the full-jitter exponential backoff
	// between retries: attempt n waits a random duration in
	// [0, min(BackoffMax, BackoffBase·2^(n-1))]. Defaults DefaultBackoffBase
	// and DefaultBackoffMax.
	BackoffBase, BackoffMax time.Duration
	// CallTimeout bounds a whole call (all attempts, all pages) when the
	// caller's context has no deadline, so nothing retries forever. Default
	// DefaultCallTimeout.
	CallTimeout time.Duration
	// HTTPClient sends the requests; default a new http.Client. Its Timeout
	// is not relied upon (Timeout above applies per attempt) and redirects
	// are never followed.
	HTTPClient *http.Client
	// Observer receives metrics hooks; nil means none.
	Observer Observer
	// Logger receives debug lines per attempt and warnings on retries; nil
	// means no logging.
	Logger *slog.Logger
}

// Observer receives measurements from a Client, e.g. to feed Prometheus.
// Its methods are called synchronously and concurrently; they must be fast
// and safe for concurrent use.
type Observer interface {
	// LimiterWait reports how long a caller waited for a rate-limiter token
	// (0 when one was available at once). Not called when the token was
	// refused (Busy) or the wait was canceled.
	LimiterWait(d time.Duration)
	// LimiterQueue reports +1 when a caller starts waiting for a token and
	// -1 when it stops waiting (granted or canceled).
	LimiterQueue(delta int)
	// Attempt reports one HTTP attempt: op is "update_participant",
	// "list_participants", "get_participant" or "list_mpcs"; status is 0
	// when no HTTP answer was received; err is nil on success.
	Attempt(op string, status int, d time.Duration, err error)
}

// CredentialState is what the client has learnt about its credentials.
type CredentialState int32

// Credential states, see Client.Credentials.
const (
	// CredentialsUnknown: no answer from Plivo yet.
	CredentialsUnknown CredentialState = iota
	// CredentialsAccepted: Plivo answered 2xx and the last 401, if any,
	// came before it.
	CredentialsAccepted
	// CredentialsRejected: the last authentication verdict from Plivo was
	// 401.
	CredentialsRejected
)

// String returns "unknown", "accepted" or "rejected".
func (s CredentialState) String() string {
	switch s {
	case CredentialsUnknown:
		return "unknown"
	case CredentialsAccepted:
		return "accepted"
	case CredentialsRejected:
		return "rejected"
	}
	return fmt.Sprintf("credential_state(%d)", int32(s))
}

// Client calls Plivo's MPC endpoints. Every request goes through one
// Limiter. A Client is safe for concurrent use.
type Client struct {
	authID, authToken string
	secrets           redactor
	base              *url.URL // the parsed BaseURL; its scheme and host are used
	basePath          string   // escaped path prefix, no trailing slash
	limiter           Limiter
	inFlight          InFlight
	timeout           time.Duration
	backoffBase       time.Duration
	backoffMax        time.Duration
	callTimeout       time.Duration
	http              *http.Client
	observer          Observer
	log               *slog.Logger
	credentials       atomic.Int32
	everAccepted      atomic.Bool
	// blindResend resends an update whose answer was lost without reading
	// the state back first. Never set in production; unit tests of the
	// retry mechanics set it to count requests simply.
	blindResend bool

	// Seams for tests: the clock used for the limiter and deadlines, the
	// sleep between retries and while waiting for a token, and the jitter.
	now    func() time.Time
	sleep  func(ctx context.Context, d time.Duration) error
	jitter func(max time.Duration) time.Duration
}

// New validates cfg and returns a Client. Its errors never contain the auth
// token.
func New(cfg Config) (*Client, error) {
	if cfg.AuthID == "" {
		return nil, errors.New("plivo: config: auth id is empty")
	}
	if cfg.AuthToken == "" {
		return nil, errors.New("plivo: config: auth token is empty")
	}
	if strings.ContainsFunc(cfg.AuthID, isControl) {
		return nil, errors.New("plivo: config: auth id contains control characters")
	}
	if cfg.BaseURL == "" {
		cfg.BaseURL = DefaultBaseURL
	}
	base, err := parseBaseURL(cfg.BaseURL)
	if err != nil {
		return nil, err
	}
	if cfg.Rate == 0 {
		cfg.Rate = DefaultRate
	}
	if !(cfg.Rate > 0) { // also refuses NaN
		return nil, fmt.Errorf("plivo: config: rate must be > 0, got %v", float64(cfg.Rate))
	}
	if cfg.Burst == 0 {
		cfg.Burst = DefaultBurst
	}
	if cfg.Burst < 1 {
		return nil, fmt.Errorf("plivo: config: burst must be >= 1, got %d", cfg.Burst)
	}
	durations := []struct {
		name string
		v    *time.Duration
		def  time.Duration
	}{
		{"timeout", &cfg.Timeout, DefaultTimeout},
		{"backoff base", &cfg.BackoffBase, DefaultBackoffBase},
		{"backoff max", &cfg.BackoffMax, DefaultBackoffMax},
		{"call timeout", &cfg.CallTimeout, DefaultCallTimeout},
	}
	for _, d := range durations {
		if *d.v == 0 {
			*d.v = d.def
		}
		if *d.v < 0 {
			return nil, fmt.Errorf("plivo: config: %s must be > 0, got %v", d.name, *d.v)
		}
	}
	if cfg.BackoffMax < cfg.BackoffBase {
		return nil, fmt.Errorf("plivo: config: backoff max %v is below backoff base %v", cfg.BackoffMax, cfg.BackoffBase)
	}

	hc := &http.Client{}
	if cfg.HTTPClient != nil {
		copied := *cfg.HTTPClient
		hc = &copied
	}
	// A redirect would turn a POST into a GET or send the credentials
	// elsewhere; Plivo does not redirect API calls, so none is followed.
	hc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }

	limiter := cfg.Limiter
	if limiter == nil {
		local, err := NewLocalLimiter(cfg.Rate, cfg.Burst)
		if err != nil {
			return nil, err
		}
		limiter = local
	}
	inFlight := cfg.InFlight
	if inFlight == nil {
		inFlight = NewLocalInFlight()
	}
	logger := cfg.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	observer := cfg.Observer
	if observer == nil {
		observer = nopObserver{}
	}
	return &Client{
		authID:      cfg.AuthID,
		authToken:   cfg.AuthToken,
		secrets:     redactor{forms: SecretForms(cfg.AuthID, cfg.AuthToken)},
		base:        base,
		basePath:    strings.TrimRight(base.EscapedPath(), "/"),
		limiter:     limiter,
		inFlight:    inFlight,
		timeout:     cfg.Timeout,
		backoffBase: cfg.BackoffBase,
		backoffMax:  cfg.BackoffMax,
		callTimeout: cfg.CallTimeout,
		http:        hc,
		observer:    observer,
		log:         logger,
		now:         time.Now,
		sleep:       sleepContext,
		jitter:      fullJitter,
	}, nil
}

func parseBaseURL(raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil {
		// url.Parse errors quote the input, which could hold credentials.
		return nil, errors.New("plivo: config: base URL does not parse")
	}
	switch {
	case u.Scheme != "http" && u.Scheme != "https":
		return nil, fmt.Errorf("plivo: config: base URL scheme must be http or https, got %q", u.Scheme)
	case u.Host == "":
		return nil, errors.New("plivo: config: base URL has no host")
	case u.User != nil:
		return nil, errors.New("plivo: config: base URL must not contain credentials (set AuthID and AuthToken)")
	case u.RawQuery != "" || u.ForceQuery || u.Fragment != "":
		return nil, errors.New("plivo: config: base URL must not have a query or fragment")
	}
	return u, nil
}

func isControl(r rune) bool { return r < 0x20 || r == 0x7f }

// Credentials reports what Plivo said about the credentials: unknown until
// the first answer, accepted once a 2xx was seen, rejected when the last
// 401 came after the last 2xx. Other answers (403, 404, 429, 5xx) leave it
// unchanged: a 403 refuses the request (geo permissions, an unverified
// account), not the credentials. Used by readiness checks.
func (c *Client) Credentials() CredentialState {
	return CredentialState(c.credentials.Load())
}

// CredentialsAcceptedOnce reports whether Plivo ever accepted the
// credentials (a 2xx answer) since the client was made.
func (c *Client) CredentialsAcceptedOnce() bool { return c.everAccepted.Load() }

// checkTarget validates the MPC and member of a participant operation and
// returns the member normalised ("ALL" → "all").
func (c *Client) checkTarget(op *operation, mpc MPC, member Member, allowAll bool) (Member, *Error) {
	if mpc.IsZero() {
		return "", &Error{Op: op.String(), Kind: Invalid, Message: "no MPC given"}
	}
	m, err := ParseMember(string(member))
	if err != nil {
		e, ok := AsError(err)
		if !ok {
			e = &Error{Kind: Invalid, Message: "not a member id", Err: err}
		}
		e.Op = op.String()
		return "", e
	}
	op.member = m
	if m.IsAll() && !allowAll {
		return "", &Error{Op: op.String(), Kind: Invalid, Message: "a member id is needed here, not `all`"}
	}
	return m, nil
}

// bound gives ctx the client's CallTimeout when it has no deadline.
func (c *Client) bound(ctx context.Context) (context.Context, context.CancelFunc) {
	if _, ok := ctx.Deadline(); ok {
		return ctx, func() {}
	}
	return context.WithTimeout(ctx, c.callTimeout)
}

// accountPath returns the escaped path of the account's MPC list, with the
// trailing slash Plivo requires.
func (c *Client) accountPath() string {
	return c.basePath + "/v1/Account/" + url.PathEscape(c.authID) + "/MultiPartyCall/"
}

// mpcPath returns the escaped path of an MPC, without trailing slash.
func (c *Client) mpcPath(mpc MPC) string {
	return c.accountPath() + mpc.PathSegment()
}

// participantPath returns the escaped path of a participant, with the
// trailing slash Plivo requires.
func (c *Client) participantPath(mpc MPC, member Member) string {
	return c.mpcPath(mpc) + "/Participant/" + url.PathEscape(string(member)) + "/"
}

// operation names what a call is doing, for errors, logs and metrics.
type operation struct {
	name   string // metrics label, e.g. "update_participant"
	mpc    MPC    // zero for account-wide operations (list live MPCs)
	member Member
}

// String returns e.g. "update participant test_mpc_1/all".
func (o operation) String() string {
	s := strings.ReplaceAll(o.name, "_", " ")
	if !o.mpc.IsZero() {
		s += " " + o.mpc.String()
	}
	if o.member != "" {
		s += "/" + string(o.member)
	}
	return s
}

type nopObserver struct{}

func (nopObserver) LimiterWait(time.Duration)                 {}
func (nopObserver) LimiterQueue(int)                          {}
func (nopObserver) Attempt(string, int, time.Duration, error) {}

// sleepContext waits d or until ctx ends.
func sleepContext(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// fullJitter returns a uniformly random duration in [0, max].
func fullJitter(max time.Duration) time.Duration {
	if max <= 0 {
		return 0
	}
	return rand.N(max + 1)
}
