package plivotest

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"
)

// Default credentials of a Server: a 20-character auth id starting with "MA"
// like Plivo's, and a fixed dummy token. They are not secrets.
const (
	DefaultAuthID    = "MAPLIVOTEST000000000"
	DefaultAuthToken = "plivotest-dummy-auth-token-0000000000000"
)

// Plivo's documented account budget: 300 requests per 5 seconds, all APIs.
const (
	DefaultAccountLimit  = 300
	DefaultAccountWindow = 5 * time.Second
)

// maxBodyBytes bounds request bodies; Plivo's are tiny.
const maxBodyBytes = 64 << 10

// Server is a Plivo MPC simulator listening on 127.0.0.1. Create it with
// NewServer and stop it with Close. All methods are safe for concurrent use.
type Server struct {
	// URL is the base URL of the server, "http://127.0.0.1:<port>", with no
	// trailing slash; API paths start with /v1/Account/{AuthID}/.
	URL string
	// AuthID and AuthToken are the credentials the server accepts.
	AuthID    string
	AuthToken string

	http *http.Server
	done chan struct{} // closed by Close: ends every delay

	mu          sync.Mutex
	idle        *sync.Cond // signalled when inflight drops to zero
	inflight    int
	closed      bool
	now         func() time.Time
	mpcs        []*mpc // in creation order
	byUUID      map[string]*mpc
	liveByName  map[string]*mpc
	nextMember  int
	sample      bool
	sampleCalls bool

	limit          int
	window         time.Duration
	limitLog       []time.Time // ring of the last `limit` accepted request times
	limitStart     int
	limitRetryHint bool

	faults       []Fault
	delay        time.Duration
	updateStatus int
	spelling     string

	odd oddities

	log      []Request
	logLimit int
}

// Option configures a Server in NewServer.
type Option func(*Server)

// WithCredentials sets the auth id and token the server accepts.
func WithCredentials(authID, authToken string) Option {
	return func(s *Server) { s.AuthID, s.AuthToken = authID, authToken }
}

// WithSampleMPC creates the live MPC "test_mpc_1" (SampleMPCName) with a
// customer, an agent and a supervisor, added in that order (member ids 101,
// 102 and 103 on a fresh server).
func WithSampleMPC() Option {
	return func(s *Server) { s.sample = true }
}

// WithAccountLimit sets the account budget: at most n requests in any
// window of length per (a sliding window over accepted requests); requests
// above it get 429 {"api_id","error":"too many requests"}. The default is
// Plivo's 300 per 5 s. n <= 0 or per <= 0 disables the limit.
//
// Only authenticated requests for this account count, and a request refused
// with 429 does not consume budget. A request answered by a Fault's status,
// or dropped, without Fault.Apply never reaches the limit; requests that get
// normal handling (Fault.Status 0, or Fault.Apply) do count.
func WithAccountLimit(n int, per time.Duration) Option {
	return func(s *Server) {
		if n <= 0 || per <= 0 {
			n, per = 0, 0
		}
		s.limit, s.window = n, per
	}
}

// WithClock sets the clock used for timestamps (join_time, exit_time, …),
// the request log and the account limit window. Delays always use real
// time. The default is time.Now.
func WithClock(now func() time.Time) Option {
	return func(s *Server) {
		if now != nil {
			s.now = now
		}
	}
}

// WithLogLimit keeps only the most recent n requests in the request log
// (n <= 0: keep all, the default). Long-running uses such as load tests and
// the demo console should set it.
func WithLogLimit(n int) Option {
	return func(s *Server) { s.logLimit = max(n, 0) }
}

// NewServer starts a simulator on a free port of 127.0.0.1. Like
// httptest.NewServer it panics if no local port can be opened; programs
// that must not panic (the demo console) use Start.
func NewServer(opts ...Option) *Server {
	s, err := Start(opts...)
	if err != nil {
		panic(err.Error())
	}
	return s
}

// Start is NewServer returning an error instead of panicking when no local
// port can be opened.
func Start(opts ...Option) (*Server, error) {
	s := &Server{
		AuthID:       DefaultAuthID,
		AuthToken:    DefaultAuthToken,
		done:         make(chan struct{}),
		now:          time.Now,
		byUUID:       make(map[string]*mpc),
		liveByName:   make(map[string]*mpc),
		nextMember:   firstMemberID,
		limit:        DefaultAccountLimit,
		window:       DefaultAccountWindow,
		updateStatus: http.StatusOK,
		spelling:     "succeeded",
	}
	s.idle = sync.NewCond(&s.mu)
	for _, opt := range opts {
		if opt != nil {
			opt(s)
		}
	}
	if s.sample {
		s.AddParticipant(SampleMPCName, RoleCustomer)
		s.AddParticipant(SampleMPCName, RoleAgent)
		s.AddParticipant(SampleMPCName, RoleSupervisor)
	}
	if s.sampleCalls {
		s.addSampleCalls()
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("plivotest: listen on a local port: %w", err)
	}
	s.URL = "http://" + ln.Addr().String()
	s.http = &http.Server{
		Handler:           http.HandlerFunc(s.serveHTTP),
		ReadHeaderTimeout: 10 * time.Second,
		// net/http's own messages (e.g. about aborted connections) are noise
		// for a simulator: logged at debug level only.
		ErrorLog: slog.NewLogLogger(slog.Default().Handler(), slog.LevelDebug),
	}
	go func() { _ = s.http.Serve(ln) }()
	return s, nil
}

// Close stops the server: pending delays end at once, connections are
// closed, and Close returns when every handler has finished. Calling Close
// more than once is harmless.
func (s *Server) Close() {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.closed = true
	close(s.done)
	s.mu.Unlock()

	_ = s.http.Close()

	s.mu.Lock()
	for s.inflight > 0 {
		s.idle.Wait()
	}
	s.mu.Unlock()
}

// Fault is an injected failure or slowdown for one request.
type Fault struct {
	// Status is the HTTP status to answer, e.g. 429, 500, 502, 503. 0 means
	// a normal answer (useful with Delay: slow but normal).
	Status int
	// RetryAfter is the value of the Retry-After header; "" sends none.
	RetryAfter string
	// Body is the raw response body; "" means a Plivo-shaped
	// {"api_id","error"} body for Status.
	Body string
	// Delay is how long to wait before answering; the wait ends early if the
	// client gives up (request context cancelled) or the server closes, and
	// then no response is sent.
	Delay time.Duration
	// Apply makes an Update Participant take effect before the delay and the
	// fault: with Status 0 and a Delay it is a slow success whose change is
	// in place even if the client gives up waiting; with a failure status
	// (or Drop) the change is applied and then the request fails, so the
	// client cannot know the outcome. Without Apply, a failing request
	// changes nothing and a Status 0 request is handled after the delay.
	Apply bool
	// Drop hijacks the connection and closes it without any response. Note
	// that net/http's Transport may transparently retry an idempotent
	// request (GET) that was dropped on a reused connection.
	Drop bool
}

// FailNext makes the next n requests (to any endpoint, authenticated or
// not) get fault f. Faults are queued first in, first out, so calls to
// FailNext chain. A fault takes precedence over normal handling, and the
// request is logged with Fault set. n <= 0 does nothing.
func (s *Server) FailNext(n int, f Fault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for range n {
		s.faults = append(s.faults, f)
	}
}

// PendingFaults returns how many queued faults have not been used yet.
func (s *Server) PendingFaults() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.faults)
}

// SetDelay delays every request by d (added to any Fault.Delay); 0 turns
// it off. Like Fault.Delay, the wait ends early if the client gives up.
func (s *Server) SetDelay(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.delay = max(d, 0)
}

// SetUpdateStatus sets the HTTP status of a successful Update Participant:
// 200 (the default) or 202 (what the Go and Java SDK mocks use). Codes
// outside 200–299, and 204/205 (which cannot carry the result body), are
// ignored.
func (s *Server) SetUpdateStatus(code int) {
	if code < 200 || code > 299 || code == http.StatusNoContent || code == http.StatusResetContent {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.updateStatus = code
}

// SetResultSpelling sets the last word of the Update Participant result
// strings: "succeeded" (the default, as in Plivo's docs) or "succeded" (as
// in the official QA-captured fixture). "" restores the default.
func (s *Server) SetResultSpelling(word string) {
	if word == "" {
		word = "succeeded"
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.spelling = word
}

// SetAccountLimitRetryAfter makes 429 answers from the account limit carry
// a Retry-After header with the whole seconds until budget frees up (at
// least 1). Plivo documents no such header, so it is off by default.
func (s *Server) SetAccountLimitRetryAfter(on bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.limitRetryHint = on
}

// Request is one logged request and how the server answered it.
type Request struct {
	// Time is when the request arrived, by the server's clock.
	Time time.Time
	// Method is the HTTP method.
	Method string
	// Path is the path exactly as sent, still percent-encoded
	// (URL.EscapedPath), e.g. "/v1/Account/MA…/MultiPartyCall/name_mpc%201000/".
	Path string
	// RawQuery is the query string as sent, without '?'.
	RawQuery string
	// Body is the request body (read-only; at most 64 KiB are read).
	Body []byte
	// Status is the HTTP status sent, or 0 when no response was sent (the
	// connection was dropped or the client gave up during a delay).
	Status int
	// Applied reports whether the request changed state: an Update
	// Participant, Kick Participant or End MPC that took effect.
	Applied bool
	// Fault reports whether a queued Fault answered the request.
	Fault bool
	// Op names the operation the path and method address, e.g.
	// OpUpdateParticipant; "" for paths and methods the API does not have.
	Op string
}

// Operations recorded in Request.Op.
const (
	OpListMPCs          = "ListMPCs"
	OpGetMPC            = "GetMPC"
	OpEndMPC            = "EndMPC"
	OpActivateMPC       = "ActivateMPC"
	OpListParticipants  = "ListParticipants"
	OpAddParticipant    = "AddParticipant"
	OpGetParticipant    = "GetParticipant"
	OpUpdateParticipant = "UpdateParticipant"
	OpKickParticipant   = "KickParticipant"
)

// Requests returns a copy of the request log, in the order the answers were
// sent (or the requests abandoned).
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return cloneRequests(s.log, func(Request) bool { return true })
}

// AppliedUpdates returns the logged Update Participant requests whose
// change was applied to the state, including those applied before a fault
// (Fault.Apply).
func (s *Server) AppliedUpdates() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return cloneRequests(s.log, func(r Request) bool { return r.Op == OpUpdateParticipant && r.Applied })
}

// SentDuringPause returns when the latest request answered 429 arrived, and
// the requests that arrived after it but less than pause later: a client
// that honours the 429's Retry-After (pause) sends none. ok is false when
// no request was answered 429.
func (s *Server) SentDuringPause(pause time.Duration) (rateLimitedAt time.Time, inside []Request, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, r := range s.log {
		if r.Status == http.StatusTooManyRequests {
			rateLimitedAt, ok = r.Time, true
		}
	}
	if !ok {
		return time.Time{}, nil, false
	}
	end := rateLimitedAt.Add(pause)
	return rateLimitedAt, cloneRequests(s.log, func(r Request) bool {
		return r.Time.After(rateLimitedAt) && r.Time.Before(end)
	}), true
}

// RequestCount returns the number of requests in the log.
func (s *Server) RequestCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.log)
}

// ResetLog empties the request log.
func (s *Server) ResetLog() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.log = nil
}

func cloneRequests(log []Request, keep func(Request) bool) []Request {
	var out []Request
	for _, r := range log {
		if keep(r) {
			r.Body = append([]byte(nil), r.Body...)
			out = append(out, r)
		}
	}
	return out
}

func (s *Server) appendLogLocked(r Request) {
	s.log = append(s.log, r)
	if s.logLimit > 0 && len(s.log) >= 2*s.logLimit {
		n := copy(s.log, s.log[len(s.log)-s.logLimit:])
		clear(s.log[n:])
		s.log = s.log[:n]
	}
}

// response is an answer computed by the API handlers.
type response struct {
	status  int
	body    []byte
	header  map[string]string
	applied bool
}

// serveHTTP answers one request: it takes the next queued fault, waits out
// any delay, computes the answer (handle) and logs the request before the
// client can see the outcome.
func (s *Server) serveHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		abort(w)
		return
	}
	s.inflight++
	entry := Request{
		Time:     s.now(),
		Method:   r.Method,
		Path:     r.URL.EscapedPath(),
		RawQuery: r.URL.RawQuery,
	}
	var fault *Fault
	if len(s.faults) > 0 {
		f := s.faults[0]
		s.faults[0] = Fault{}
		s.faults = s.faults[1:]
		fault = &f
	}
	delay := s.delay
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		s.inflight--
		if s.inflight == 0 {
			s.idle.Broadcast()
		}
		s.mu.Unlock()
	}()

	body, readErr := io.ReadAll(io.LimitReader(r.Body, maxBodyBytes+1))
	tooLarge := len(body) > maxBodyBytes
	if tooLarge {
		body = body[:maxBodyBytes]
	}
	entry.Body = body
	rt := parseRoute(entry.Path, r.Method)
	entry.Op = rt.op

	// The log entry is written before the client can see the outcome, so a
	// test that has its answer always finds the request in the log.
	answer := func(resp response) {
		entry.Status = resp.status
		s.mu.Lock()
		resp = s.oddLocked(resp, r)
		s.appendLogLocked(entry)
		s.mu.Unlock()
		writeResponse(w, resp)
	}
	giveUp := func() {
		s.mu.Lock()
		s.appendLogLocked(entry)
		s.mu.Unlock()
		abort(w)
	}
	handle := func() response {
		resp := s.handle(r, rt, body, readErr, tooLarge)
		entry.Applied = resp.applied
		return resp
	}

	if fault == nil {
		if !s.wait(r.Context(), delay) {
			giveUp()
			return
		}
		answer(handle())
		return
	}
	entry.Fault = true
	var resp response
	if fault.Apply {
		resp = handle()
	}
	if !s.wait(r.Context(), delay+fault.Delay) || fault.Drop {
		giveUp()
		return
	}
	switch {
	case fault.Status != 0:
		resp = faultResponse(*fault)
	case !fault.Apply:
		resp = handle()
	}
	answer(resp)
}

// wait sleeps for d, returning false if the request context is cancelled or
// the server closes first.
func (s *Server) wait(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return true
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	case <-s.done:
		return false
	}
}

// abort closes the connection without sending any response. (A handler
// that just returns would make net/http send an empty 200.)
func abort(w http.ResponseWriter) {
	conn, _, err := http.NewResponseController(w).Hijack()
	if err != nil {
		// Not hijackable (not HTTP/1.x): the documented way to abort.
		panic(http.ErrAbortHandler)
	}
	_ = conn.Close()
}

func writeResponse(w http.ResponseWriter, resp response) {
	h := w.Header()
	for k, v := range resp.header {
		h.Set(k, v)
	}
	if len(resp.body) > 0 && h.Get("Content-Type") == "" {
		h.Set("Content-Type", "application/json")
	}
	h.Set("Content-Length", strconv.Itoa(len(resp.body)))
	w.WriteHeader(resp.status)
	if len(resp.body) > 0 {
		_, _ = w.Write(resp.body)
	}
}

func faultResponse(f Fault) response {
	resp := response{status: f.Status}
	if f.Body != "" {
		resp.body = []byte(f.Body)
	} else {
		resp.body = errorBody(statusText(f.Status))
	}
	if f.RetryAfter != "" {
		resp.header = map[string]string{"Retry-After": f.RetryAfter}
	}
	return resp
}

// statusText is the lower-case status text Plivo-shaped fault bodies carry,
// e.g. "too many requests".
func statusText(code int) string {
	t := http.StatusText(code)
	if t == "" {
		return fmt.Sprintf("error %d", code)
	}
	b := []byte(t)
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}
