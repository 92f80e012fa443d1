package plivo

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"
)

const (
	testAuthID    = "MATESTACCOUNT0000001"
	testAuthToken = "s3cr3t-T0KEN-must-never-appear"
)

// fakeClock is a clock that only moves when something sleeps on it. It
// starts at the real time so that real context deadlines still make sense.
type fakeClock struct {
	mu     sync.Mutex
	now    time.Time
	sleeps []time.Duration
}

func newFakeClock() *fakeClock { return &fakeClock{now: time.Now()} }

func (f *fakeClock) Now() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.now
}

func (f *fakeClock) Sleep(ctx context.Context, d time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if d <= 0 {
		return nil
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.now = f.now.Add(d)
	f.sleeps = append(f.sleeps, d)
	return nil
}

func (f *fakeClock) Sleeps() []time.Duration {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]time.Duration(nil), f.sleeps...)
}

// recordingObserver records every Observer call.
type recordingObserver struct {
	mu       sync.Mutex
	waits    []time.Duration
	queue    []int
	attempts []attemptRecord
}

type attemptRecord struct {
	op     string
	status int
	err    error
}

func (o *recordingObserver) LimiterWait(d time.Duration) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.waits = append(o.waits, d)
}

func (o *recordingObserver) LimiterQueue(delta int) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.queue = append(o.queue, delta)
}

func (o *recordingObserver) Attempt(op string, status int, _ time.Duration, err error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.attempts = append(o.attempts, attemptRecord{op, status, err})
}

func (o *recordingObserver) Waits() []time.Duration {
	o.mu.Lock()
	defer o.mu.Unlock()
	return append([]time.Duration(nil), o.waits...)
}

func (o *recordingObserver) Queue() []int {
	o.mu.Lock()
	defer o.mu.Unlock()
	return append([]int(nil), o.queue...)
}

func (o *recordingObserver) Attempts() []attemptRecord {
	o.mu.Lock()
	defer o.mu.Unlock()
	return append([]attemptRecord(nil), o.attempts...)
}

// recordedRequest is what the test server saw of one request.
type recordedRequest struct {
	Method      string
	RequestURI  string
	EscapedPath string
	Path        string
	RawQuery    string
	Header      http.Header
	Body        []byte
	User, Pass  string
	BasicAuthOK bool
}

// reply is one canned answer of the test server.
type reply struct {
	status int
	body   string
	header map[string]string
	// hang makes the handler wait until the client gives up.
	hang bool
	// drop closes the connection without an answer.
	drop bool
}

// testServer records requests and answers with a handler given the
// request's index (0-based).
type testServer struct {
	*httptest.Server
	mu       sync.Mutex
	requests []recordedRequest
}

func newTestServer(t *testing.T, handle func(n int, w http.ResponseWriter, r *http.Request)) *testServer {
	t.Helper()
	ts := &testServer{}
	ts.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		user, pass, ok := r.BasicAuth()
		ts.mu.Lock()
		n := len(ts.requests)
		ts.requests = append(ts.requests, recordedRequest{
			Method: r.Method, RequestURI: r.RequestURI, EscapedPath: r.URL.EscapedPath(), Path: r.URL.Path,
			RawQuery: r.URL.RawQuery, Header: r.Header.Clone(), Body: body, User: user, Pass: pass, BasicAuthOK: ok,
		})
		ts.mu.Unlock()
		r.Body = io.NopCloser(bytes.NewReader(body))
		handle(n, w, r)
	}))
	t.Cleanup(ts.Close)
	return ts
}

// sequenceServer answers the i-th request with replies[i], repeating the
// last reply.
func sequenceServer(t *testing.T, replies ...reply) *testServer {
	t.Helper()
	return newTestServer(t, func(n int, w http.ResponseWriter, r *http.Request) {
		rep := replies[min(n, len(replies)-1)]
		writeReply(w, r, rep)
	})
}

func writeReply(w http.ResponseWriter, r *http.Request, rep reply) {
	switch {
	case rep.hang:
		select {
		case <-r.Context().Done():
		case <-time.After(10 * time.Second):
		}
		return
	case rep.drop:
		hj, ok := w.(http.Hijacker)
		if !ok {
			panic("test server cannot hijack")
		}
		conn, _, err := hj.Hijack()
		if err == nil {
			_ = conn.Close()
		}
		return
	}
	for k, v := range rep.header {
		w.Header().Set(k, v)
	}
	if w.Header().Get("Content-Type") == "" {
		w.Header().Set("Content-Type", "application/json")
	}
	w.WriteHeader(rep.status)
	_, _ = io.WriteString(w, rep.body)
}

func (ts *testServer) Requests() []recordedRequest {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	return append([]recordedRequest(nil), ts.requests...)
}

func (ts *testServer) Count() int {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	return len(ts.requests)
}

// newTestClient returns a client for baseURL with a fast limiter, a fake
// clock and worst-case (maximal) jitter. mod may adjust the config.
func newTestClient(t testing.TB, baseURL string, mod func(*Config)) (*Client, *fakeClock, *recordingObserver) {
	t.Helper()
	obs := &recordingObserver{}
	cfg := Config{
		AuthID: testAuthID, AuthToken: testAuthToken, BaseURL: baseURL,
		Rate: 1000, Burst: 1000, Timeout: 5 * time.Second, Observer: obs,
	}
	if mod != nil {
		mod(&cfg)
	}
	c, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	clock := newFakeClock()
	c.now = clock.Now
	c.sleep = clock.Sleep
	c.jitter = func(max time.Duration) time.Duration { return max }
	// These tests count requests of the retry mechanics; reading the state
	// back before a resend has its own tests (TestConfirmAppliedIgnoresLaterUpdates,
	// TestSimConfirmBeforeResend).
	c.blindResend = true
	return c, clock, obs
}

func mustMPC(t testing.TB, name string) MPC {
	t.Helper()
	m, err := MPCByName(name)
	if err != nil {
		t.Fatalf("MPCByName(%q): %v", name, err)
	}
	return m
}

func mustUUID(t testing.TB, uuid string) MPC {
	t.Helper()
	m, err := MPCByUUID(uuid)
	if err != nil {
		t.Fatalf("MPCByUUID(%q): %v", uuid, err)
	}
	return m
}

func ptr[T any](v T) *T { return &v }

// withTimeout returns a context with a deadline d from now.
func withTimeout(t *testing.T, d time.Duration) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// mustError asserts err is an *Error of the given kind and returns it.
func mustError(t *testing.T, err error, kind Kind) *Error {
	t.Helper()
	if err == nil {
		t.Fatalf("got no error, want kind %v", kind)
	}
	e, ok := AsError(err)
	if !ok {
		t.Fatalf("error %v (%T) is not a *plivo.Error", err, err)
	}
	if e.Kind != kind {
		t.Fatalf("kind = %v, want %v (error: %v)", e.Kind, kind, err)
	}
	return e
}
