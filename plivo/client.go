package plivo

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
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

// MaxParticipantPages bounds how many pages ListParticipants fetches (20
// entries each). An MPC has at most 10 live participants, but the list keeps
// one entry per join, so long calls with many rejoins can span a few pages;
// more than this means the server is misbehaving.
const MaxParticipantPages = 50

// maxResponseBytes bounds how much of a response body is read.
const maxResponseBytes = 1 << 20

// userAgent is sent with every request.
const userAgent = "mpcbot/1 (plivo-mpc-client)"

// Config configures a Client. Zero fields take the defaults above.
type Config struct {
	// AuthID and AuthToken are the Plivo account credentials (HTTP basic
	// auth). The token is never logged nor put in an error.
	AuthID, AuthToken string
	// BaseURL is the API root, default DefaultBaseURL. Requests go to
	// {BaseURL}/v1/Account/{AuthID}/MultiPartyCall/…/ (always a trailing
	// slash). It must be http or https, with no credentials, query or
	// fragment.
	BaseURL string
	// Rate is the token-bucket rate (requests per second) that gates every
	// HTTP attempt, retries included. Default DefaultRate.
	Rate rate.Limit
	// Burst is the token-bucket size. Default DefaultBurst.
	Burst int
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
	// "list_participants" or "get_participant"; status is 0 when no HTTP
	// answer was received; err is nil on success.
	Attempt(op string, status int, d time.Duration, err error)
}

// CredentialState is what the client has learnt about its credentials.
type CredentialState int32

// Credential states, see Client.Credentials.
const (
	// CredentialsUnknown: no answer from Plivo yet.
	CredentialsUnknown CredentialState = iota
	// CredentialsAccepted: Plivo answered 2xx and the last 401/403, if any,
	// came before it.
	CredentialsAccepted
	// CredentialsRejected: the last authentication verdict from Plivo was
	// 401 or 403.
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

// Client calls Plivo's MPC participant endpoints. All requests share one
// rate limiter. A Client is safe for concurrent use.
type Client struct {
	authID, authToken string
	base              *url.URL // the parsed BaseURL; its scheme and host are used
	basePath          string   // escaped path prefix, no trailing slash
	limiter           *rate.Limiter
	timeout           time.Duration
	backoffBase       time.Duration
	backoffMax        time.Duration
	callTimeout       time.Duration
	http              *http.Client
	observer          Observer
	log               *slog.Logger
	credentials       atomic.Int32
	everAccepted      atomic.Bool
	// confirmBeforeResend reads the state back before resending an update
	// whose answer was lost (see confirmApplied). Always on; retry-mechanics
	// unit tests turn it off to count requests simply.
	confirmBeforeResend bool
	// sent remembers recent updates, so that reading the state back can
	// tell "not applied" from "changed again since by another update".
	sent sentLog

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
		base:        base,
		basePath:    strings.TrimRight(base.EscapedPath(), "/"),
		limiter:     rate.NewLimiter(cfg.Rate, cfg.Burst),
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

		confirmBeforeResend: true,
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
// 401/403 came after the last 2xx. Other answers (404, 429, 5xx) leave it
// unchanged. Used by readiness checks.
func (c *Client) Credentials() CredentialState {
	return CredentialState(c.credentials.Load())
}

// CredentialsAcceptedOnce reports whether Plivo ever accepted the
// credentials (a 2xx answer) since the client was made.
func (c *Client) CredentialsAcceptedOnce() bool { return c.everAccepted.Load() }

// UpdateParticipant sets mute, hold and/or coach_mode of member (a member id
// or AllMembers) in mpc. Only the fields set in u are sent. The update is
// validated first (at least one field; no coach_mode for all members) and
// refused locally with an Invalid error, nothing sent.
//
// On success the result carries Plivo's api_id, the HTTP status and, for
// each field sent, Plivo's result string verbatim ("" if Plivo sent none).
// Errors are *Error values.
func (c *Client) UpdateParticipant(ctx context.Context, mpc MPC, member Member, u ParticipantUpdate) (UpdateResult, error) {
	op := operation{name: "update_participant", mpc: mpc, member: member}
	member, err := c.checkTarget(&op, mpc, member, true)
	if err != nil {
		return UpdateResult{}, err
	}
	if err := u.Validate(member); err != nil {
		if e, ok := AsError(err); ok {
			e.Op = op.String()
		}
		return UpdateResult{}, err
	}
	body, err := jsonMarshal(u)
	if err != nil {
		return UpdateResult{}, &Error{Op: op.String(), Kind: Internal, Message: "could not encode the update", Err: err}
	}
	ctx, cancel := c.bound(ctx)
	defer cancel()
	// An update whose answer was lost may have been applied. Before sending
	// it again, read the state back: if it already is what was asked for,
	// Plivo does not get the same update twice.
	var confirmed UpdateResult
	if c.confirmBeforeResend {
		self := c.sent.add(mpc, member, u.Fields(), c.now())
		defer func() { c.sent.finish(self, c.now()) }()
		op.settled = func(ctx context.Context) settledState {
			res, state := c.confirmApplied(ctx, mpc, member, u, self)
			confirmed = res
			if state == stateNotApplied {
				c.sent.touch(self, c.now()) // it is sent again now
			}
			return state
		}
	}
	resp, err := c.do(ctx, op, http.MethodPost, c.participantPath(mpc, member), "", body)
	if errors.Is(err, errSettled) {
		c.log.LogAttrs(ctx, slog.LevelInfo, "plivo: update confirmed by reading the state back; not sent again",
			slog.String("mpc", mpc.String()), slog.String("member", string(member)))
		return confirmed, nil
	}
	if err != nil {
		return UpdateResult{}, err
	}
	result, err := decodeUpdate(resp, u.Fields())
	if err != nil {
		return UpdateResult{}, &Error{Op: op.String(), Kind: Internal, Status: resp.status, APIID: result.APIID,
			Message:  fmt.Sprintf("Plivo accepted the update (HTTP %d) but its answer could not be read; the change was probably applied", resp.status),
			Attempts: resp.attempts, Err: err}
	}
	return result, nil
}

// errSettled stops do's retries: the request's effect was confirmed.
var errSettled = errors.New("plivo: request settled by reading the state back")

// settledState is what reading the state back after a lost answer showed.
type settledState int

const (
	stateUnknown    settledState = iota // the read failed
	stateApplied                        // the state is what the update asks for
	stateNotApplied                     // it is not: send the update again
)

// confirmApplied reads member's state (or every live member's, for all)
// and reports whether it already is what u asks for. A field that another
// update sent by this client after self may have changed again is not
// compared (that update is the latest word on it). Plivo keeps coach_mode
// false for non-supervisors, so coach_mode is only compared for
// supervisors. The read is a single attempt through the rate limiter.
func (c *Client) confirmApplied(ctx context.Context, mpc MPC, member Member, u ParticipantUpdate, self *sentEntry) (UpdateResult, settledState) {
	var ps []Participant
	if member.IsAll() {
		all, err := c.listParticipants(ctx, mpc, true)
		if err != nil {
			return UpdateResult{}, stateUnknown
		}
		for _, p := range all {
			if p.Live() {
				ps = append(ps, p)
			}
		}
	} else {
		p, err := c.getParticipant(ctx, mpc, member, true)
		if err != nil {
			return UpdateResult{}, stateUnknown
		}
		if !p.Live() {
			// Resending gets Plivo's own answer (the member has left).
			return UpdateResult{}, stateNotApplied
		}
		ps = []Participant{p}
	}
	superseded := false
	for _, p := range ps {
		for _, f := range u.Fields() {
			if c.sent.changedSince(self, Member(p.MemberID), f) {
				superseded = true
				continue
			}
			want, _ := u.Get(f)
			var have *bool
			switch f {
			case FieldMute:
				have = p.Mute
			case FieldHold:
				have = p.Hold
			case FieldCoachMode:
				if !p.IsSupervisor() {
					continue
				}
				have = p.CoachMode
			}
			if have == nil || *have != want {
				return UpdateResult{}, stateNotApplied
			}
		}
	}
	res := UpdateResult{Status: http.StatusOK, Confirmed: true, Results: map[Field]string{}}
	for _, f := range u.Fields() {
		want, _ := u.Get(f)
		state := "off"
		if want {
			state = "on"
		}
		text := fmt.Sprintf("Plivo's answer was lost; reading the state back shows %s is %s, so the update was not sent again", f, state)
		if superseded {
			text = fmt.Sprintf("Plivo's answer was lost; reading the state back shows the change took effect (%s %s) or was followed by a newer change, so it was not sent again", f, state)
		}
		res.Results[f] = text
	}
	return res, stateApplied
}

// sentLog records the updates sent recently, by MPC, member and fields.
type sentLog struct {
	mu      sync.Mutex
	entries map[*sentEntry]struct{}
	pruned  time.Time
}

type sentEntry struct {
	mpc    string // PathSegment
	member Member
	fields []Field
	at     time.Time // the latest send; guarded by sentLog.mu
	done   time.Time // when the call returned (zero: in flight); guarded by sentLog.mu
}

// sentMemory is how long updates are remembered: longer than any call
// (and so any read back) lasts.
const sentMemory = 2 * time.Minute

func (l *sentLog) add(mpc MPC, member Member, fields []Field, at time.Time) *sentEntry {
	e := &sentEntry{mpc: mpc.PathSegment(), member: member, fields: fields, at: at}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.entries == nil {
		l.entries = map[*sentEntry]struct{}{}
	}
	if at.Sub(l.pruned) > time.Second {
		for old := range l.entries {
			if at.Sub(old.at) > sentMemory {
				delete(l.entries, old)
			}
		}
		l.pruned = at
	}
	l.entries[e] = struct{}{}
	return e
}

// touch records that e is sent again at t.
func (l *sentLog) touch(e *sentEntry, t time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	e.at = t
}

// finish records that e's call returned at t.
func (l *sentLog) finish(e *sentEntry, t time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	e.done = t
}

// changedSince reports whether another update for self's MPC that touches
// field f of member (directly or through all) may have been applied after
// self was sent: one still in flight then or later — started after self,
// or started before it but not yet answered (Plivo may apply it last).
func (l *sentLog) changedSince(self *sentEntry, member Member, f Field) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	for e := range l.entries {
		if e == self || e.mpc != self.mpc || (!e.done.IsZero() && !e.done.After(self.at)) {
			continue
		}
		if e.member != member && !e.member.IsAll() {
			continue
		}
		if slices.Contains(e.fields, f) {
			return true
		}
	}
	return false
}

// GetParticipant returns one participant of mpc by member id (not
// AllMembers). An exited participant is returned with Live() false.
func (c *Client) GetParticipant(ctx context.Context, mpc MPC, member Member) (Participant, error) {
	return c.getParticipant(ctx, mpc, member, false)
}

func (c *Client) getParticipant(ctx context.Context, mpc MPC, member Member, once bool) (Participant, error) {
	op := operation{name: "get_participant", mpc: mpc, member: member, once: once}
	member, err := c.checkTarget(&op, mpc, member, false)
	if err != nil {
		return Participant{}, err
	}
	ctx, cancel := c.bound(ctx)
	defer cancel()
	resp, err := c.do(ctx, op, http.MethodGet, c.participantPath(mpc, member), "", nil)
	if err != nil {
		return Participant{}, err
	}
	var p Participant
	if err := decodeJSON(resp.body, &p); err != nil {
		return Participant{}, &Error{Op: op.String(), Kind: Internal, Status: resp.status,
			Message: fmt.Sprintf("could not read Plivo's answer (HTTP %d)", resp.status), Attempts: resp.attempts, Err: err}
	}
	return p, nil
}

// ListParticipants returns every entry of mpc's participant list (one per
// join, exited ones included), following pagination for at most
// MaxParticipantPages pages. Every page is a separate request through the
// rate limiter; the context's deadline bounds them all.
func (c *Client) ListParticipants(ctx context.Context, mpc MPC) ([]Participant, error) {
	return c.listParticipants(ctx, mpc, false)
}

func (c *Client) listParticipants(ctx context.Context, mpc MPC, once bool) ([]Participant, error) {
	op := operation{name: "list_participants", mpc: mpc, once: once}
	if mpc.IsZero() {
		return nil, &Error{Op: op.String(), Kind: Invalid, Message: "no MPC given"}
	}
	ctx, cancel := c.bound(ctx)
	defer cancel()
	path := c.mpcPath(mpc) + "/Participant/"
	var all []Participant
	query := ""
	offset := 0
	for page := 1; ; page++ {
		if page > MaxParticipantPages {
			return nil, &Error{Op: op.String(), Kind: Internal,
				Message: fmt.Sprintf("the participant list is longer than %d pages", MaxParticipantPages)}
		}
		resp, err := c.do(ctx, op, http.MethodGet, path, query, nil)
		if err != nil {
			return nil, err
		}
		list, err := decodeList(resp.body)
		if err != nil {
			return nil, &Error{Op: op.String(), Kind: Internal, Status: resp.status,
				Message:  fmt.Sprintf("could not read Plivo's participant list (HTTP %d, page %d)", resp.status, page),
				Attempts: resp.attempts, Err: err}
		}
		all = append(all, (*list.Objects)...)
		next, more := nextOffset(list, offset)
		if !more {
			return all, nil
		}
		if next <= offset {
			return nil, &Error{Op: op.String(), Kind: Internal,
				Message: fmt.Sprintf("Plivo's participant list does not advance (offset %d after %d)", next, offset)}
		}
		offset = next
		query = url.Values{"limit": {"20"}, "offset": {fmt.Sprint(offset)}}.Encode()
	}
}

// checkTarget validates the MPC and member of a participant operation and
// returns the member normalised ("ALL" → "all").
func (c *Client) checkTarget(op *operation, mpc MPC, member Member, allowAll bool) (Member, error) {
	if mpc.IsZero() {
		return "", &Error{Op: op.String(), Kind: Invalid, Message: "no MPC given"}
	}
	m, err := ParseMember(string(member))
	if err != nil {
		if e, ok := AsError(err); ok {
			e.Op = op.String()
		}
		return "", err
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

// mpcPath returns the escaped path of an MPC, without trailing slash.
func (c *Client) mpcPath(mpc MPC) string {
	return c.basePath + "/v1/Account/" + url.PathEscape(c.authID) + "/MultiPartyCall/" + mpc.PathSegment()
}

// participantPath returns the escaped path of a participant, with the
// trailing slash Plivo requires.
func (c *Client) participantPath(mpc MPC, member Member) string {
	return c.mpcPath(mpc) + "/Participant/" + url.PathEscape(string(member)) + "/"
}

// operation names what a call is doing, for errors, logs and metrics.
type operation struct {
	name   string // metrics label, e.g. "update_participant"
	mpc    MPC
	member Member
	// settled, if set, is asked before resending after a failure whose
	// outcome is unknown (5xx, network error, timeout: Plivo may have
	// applied the request); see do.
	settled func(ctx context.Context) settledState
	// once sends a single attempt, no retries (reads that only confirm).
	once bool
}

// String returns e.g. "update participant test_mpc_1/all".
func (o operation) String() string {
	s := strings.ReplaceAll(o.name, "_", " ") + " " + o.mpc.String()
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
