package plivo

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"
)

var muteUpdate = ParticipantUpdate{Mute: ptr(true)}

const okBody = `{"api_id":"ok-1","mute":"MPC: m mute/unmute member(s) succeeded"}`

// basicCredential is the value after "Basic " in the test client's
// Authorization header.
var basicCredential = base64.StdEncoding.EncodeToString([]byte(testAuthID + ":" + testAuthToken))

func TestErrorBodies(t *testing.T) {
	long := strings.Repeat("é", 400)
	tests := []struct {
		name      string
		status    int
		body      string
		ctype     string
		wantKind  Kind
		wantMsg   string
		wantAPIID string
	}{
		{"error key", 404, `{"api_id":"a1","error":"MPC name_x not found"}`, "", NotFound, "MPC name_x not found", "a1"},
		{"global_error key", 400, `{"api_id":"a2","global_error":"bad request"}`, "", Invalid, "bad request", "a2"},
		{"message key", 422, `{"message":"unprocessable thing"}`, "", Invalid, "unprocessable thing", ""},
		{"empty object", 404, `{}`, "", NotFound, "Not Found", ""},
		{"empty body", 404, ``, "", NotFound, "Not Found", ""},
		{"HTML", 405, `<html><body><h1>405 Not Allowed</h1></body></html>`, "text/html", Invalid, "Method Not Allowed", ""},
		{"plain text", 400, `oops {"error":"x"}`, "text/plain", Invalid, "Bad Request", ""},
		{"empty error falls through to message", 400, `{"error":"","message":"from message"}`, "", Invalid, "from message", ""},
		{"null error falls through", 400, `{"error":null,"global_error":"from global"}`, "", Invalid, "from global", ""},
		{"nested message", 400, `{"error":{"message":"nested text","code":12}}`, "", Invalid, "nested text", ""},
		{"nested error key", 400, `{"error":{"error":"deeper","detail":"not read"}}`, "", Invalid, "deeper", ""},
		{"other nested keys are never flattened", 400, `{"error":{"mute":"must be a boolean","hold":["bad","worse"]}}`, "", Invalid, "Bad Request", ""},
		{"an echo under another key is never read", 400, `{"error":{"code":"x","request":{"headers":{"Authorization":"Basic abc"}}}}`, "", Invalid, "Bad Request", ""},
		{"array", 400, `{"error":["first","second"]}`, "", Invalid, "first; second", ""},
		{"array of objects and other values", 400, `{"error":[{"message":"one"},{"field":"x"},7,["nested"],"two"]}`, "", Invalid, "one; two", ""},
		{"number", 400, `{"error":1234}`, "", Invalid, "Bad Request", ""},
		{"deep nesting stops", 400, `{"error":{"error":{"error":{"error":{"error":"too deep"}}}}}`, "", Invalid, "Bad Request", ""},
		{"boolean only", 400, `{"error":true}`, "", Invalid, "Bad Request", ""},
		{"JSON string body", 400, `"just a string"`, "", Invalid, "just a string", ""},
		{"JSON array body", 400, `[1,2]`, "", Invalid, "Bad Request", ""},
		{"white space and controls", 400, "{\"error\":\"line one\\n\\tline two\\u0007 end\"}", "", Invalid, "line one line two end", ""},
		{"format characters dropped", 400, `{"error":"a\u202eb\u200bc\u2028d"}`, "", Invalid, "abc d", ""},
		{"invalid UTF-8", 400, "{\"error\":\"bad \xff byte\"}", "", Invalid, "bad \uFFFD byte", ""},
		{"only invisible text falls back to the status", 400, `{"error":"\u200b\u0007"}`, "", Invalid, "Bad Request", ""},
		{"huge api_id is cut", 404, `{"api_id":"` + strings.Repeat("a", 60000) + `","error":"gone"}`, "", NotFound, "gone", strings.Repeat("a", 64) + "…"},
		{"api_id with controls", 404, `{"api_id":"a\nb\u202ec","error":"gone"}`, "", NotFound, "gone", "a bc"},
		{"long message is cut", 400, `{"error":"` + long + `"}`, "", Invalid, strings.Repeat("é", 300) + "…", ""},
		{"token echoed back is redacted", 401, `{"error":"bad token ` + testAuthToken + `"}`, "", Unauthorized, "bad token [redacted]", ""},
		{"Basic credential echoed back is redacted", 400, `{"error":"headers: Authorization: Basic ` + basicCredential + `; Accept: */*"}`, "", Invalid, "headers: Authorization: Basic [redacted]; Accept: */*", ""},
		{"token in a URL is redacted", 400, `{"error":"GET https://` + testAuthID + `:` + testAuthToken + `@api.plivo.com/v1/"}`, "", Invalid, "GET https://" + testAuthID + ":[redacted]@api.plivo.com/v1/", ""},
		{"token broken up by a zero-width space is redacted", 400, `{"error":"` + testAuthToken[:5] + `\u200b` + testAuthToken[5:] + `!"}`, "", Invalid, "[redacted]!", ""},
		{"redacted before the cut", 400, `{"error":"` + strings.Repeat("x", 295) + testAuthToken + `"}`, "", Invalid, strings.Repeat("x", 295) + "[reda…", ""},
		{"401", 401, `{"api_id":"a3","error":"authentication credentials were not provided"}`, "", Unauthorized, "authentication credentials were not provided", "a3"},
		{"401 without api_id", 401, `{"error":"authentication credentials were not provided"}`, "", Unauthorized, "authentication credentials were not provided", ""},
		{"401 as a plain JSON string", 401, `"Authentication credentials were not provided."`, "", Unauthorized, "Authentication credentials were not provided.", ""},
		{"403 is not about credentials", 403, ``, "", Forbidden, "Forbidden", ""},
		{"403 with Plivo's reason", 403, `{"api_id":"a4","error":"geo permissions do not allow calls to this country"}`, "", Forbidden, "geo permissions do not allow calls to this country", "a4"},
		{"409 other", 409, `{"error":"conflict"}`, "", Other, "conflict", ""},
		{"unknown status", 499, ``, "", Other, "HTTP status 499", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			hdr := map[string]string{}
			if tt.ctype != "" {
				hdr["Content-Type"] = tt.ctype
			}
			srv := sequenceServer(t, reply{status: tt.status, body: tt.body, header: hdr}, reply{status: 200, body: okBody})
			c, _, _ := newTestClient(t, srv.URL, nil)
			_, err := c.UpdateParticipant(withTimeout(t, 5*time.Second), mustMPC(t, "x"), "1", muteUpdate)
			e := mustError(t, err, tt.wantKind)
			if e.Message != tt.wantMsg {
				t.Errorf("message = %q, want %q", e.Message, tt.wantMsg)
			}
			if e.APIID != tt.wantAPIID {
				t.Errorf("api_id = %q, want %q", e.APIID, tt.wantAPIID)
			}
			if e.Status != tt.status {
				t.Errorf("status = %d, want %d", e.Status, tt.status)
			}
			if e.Attempts != 1 || srv.Count() != 1 {
				t.Errorf("attempts %d, requests %d; want 1 (not retried)", e.Attempts, srv.Count())
			}
			if strings.Contains(err.Error(), testAuthToken) {
				t.Errorf("Error() contains the token: %v", err)
			}
			if !strings.Contains(e.Op, "update participant x/1") {
				t.Errorf("op = %q", e.Op)
			}
		})
	}
}

func TestRetryThenSuccess(t *testing.T) {
	retryAt := func(c *fakeClock, d time.Duration) string {
		return c.Now().Add(d).UTC().Format(http.TimeFormat)
	}
	tests := []struct {
		name string
		// replies before the final 200; the clock is passed for HTTP dates.
		failures  func(c *fakeClock) []reply
		wantSleep func(t *testing.T, sleeps []time.Duration)
	}{
		{
			name: "429 with Retry-After seconds",
			failures: func(*fakeClock) []reply {
				return []reply{{status: 429, body: `{"error":"too many requests"}`, header: map[string]string{"Retry-After": "3"}}}
			},
			wantSleep: exactly(3 * time.Second),
		},
		{
			name: "429 with Retry-After 0",
			failures: func(*fakeClock) []reply {
				return []reply{{status: 429, header: map[string]string{"Retry-After": "0"}}}
			},
			wantSleep: exactly(),
		},
		{
			name: "429 with Retry-After HTTP date",
			failures: func(c *fakeClock) []reply {
				return []reply{{status: 429, header: map[string]string{"Retry-After": retryAt(c, 5*time.Second)}}}
			},
			wantSleep: func(t *testing.T, sleeps []time.Duration) {
				// HTTP dates have whole seconds: the wait is in (4 s, 5 s].
				if len(sleeps) != 1 || sleeps[0] <= 4*time.Second || sleeps[0] > 5*time.Second {
					t.Errorf("sleeps = %v, want one in (4s, 5s]", sleeps)
				}
			},
		},
		{
			name: "429 with an unusable Retry-After uses backoff",
			failures: func(*fakeClock) []reply {
				return []reply{{status: 429, header: map[string]string{"Retry-After": "soon"}}}
			},
			wantSleep: exactly(DefaultBackoffBase),
		},
		{
			name:      "429 without Retry-After",
			failures:  func(*fakeClock) []reply { return []reply{{status: 429}} },
			wantSleep: exactly(DefaultBackoffBase),
		},
		{
			name:      "500",
			failures:  func(*fakeClock) []reply { return []reply{{status: 500, body: `{"error":"internal"}`}} },
			wantSleep: exactly(DefaultBackoffBase),
		},
		{
			name:      "502 HTML",
			failures:  func(*fakeClock) []reply { return []reply{{status: 502, body: `<html>bad gateway</html>`}} },
			wantSleep: exactly(DefaultBackoffBase),
		},
		{
			name:      "503",
			failures:  func(*fakeClock) []reply { return []reply{{status: 503}} },
			wantSleep: exactly(DefaultBackoffBase),
		},
		{
			name: "503 with Retry-After",
			failures: func(*fakeClock) []reply {
				return []reply{{status: 503, header: map[string]string{"Retry-After": "2"}}}
			},
			wantSleep: exactly(2 * time.Second),
		},
		{
			name: "500 ignores Retry-After",
			failures: func(*fakeClock) []reply {
				return []reply{{status: 500, header: map[string]string{"Retry-After": "2"}}}
			},
			wantSleep: exactly(DefaultBackoffBase),
		},
		{
			name: "500, 502, 503 back off exponentially",
			failures: func(*fakeClock) []reply {
				return []reply{{status: 500}, {status: 502}, {status: 503}}
			},
			wantSleep: exactly(200*time.Millisecond, 400*time.Millisecond, 800*time.Millisecond),
		},
		{
			name:      "connection dropped",
			failures:  func(*fakeClock) []reply { return []reply{{drop: true}} },
			wantSleep: exactly(DefaultBackoffBase),
		},
		{
			name: "429 then 503",
			failures: func(*fakeClock) []reply {
				return []reply{{status: 429, header: map[string]string{"Retry-After": "2"}}, {status: 503}}
			},
			wantSleep: exactly(2*time.Second, 400*time.Millisecond),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var (
				mu      sync.Mutex
				replies []reply
			)
			srv := newTestServer(t, func(n int, w http.ResponseWriter, r *http.Request) {
				mu.Lock()
				rep := reply{status: 200, body: okBody}
				if n < len(replies) {
					rep = replies[n]
				}
				mu.Unlock()
				writeReply(w, r, rep)
			})
			c, clock, obs := newTestClient(t, srv.URL, nil)
			mu.Lock()
			replies = tt.failures(clock)
			mu.Unlock()

			res, err := c.UpdateParticipant(withTimeout(t, 20*time.Second), mustMPC(t, "m"), "1", muteUpdate)
			if err != nil {
				t.Fatalf("UpdateParticipant: %v", err)
			}
			if res.APIID != "ok-1" || res.Results[FieldMute] == "" {
				t.Errorf("result = %+v", res)
			}
			wantRequests := len(replies) + 1
			if srv.Count() != wantRequests {
				t.Errorf("%d requests, want %d", srv.Count(), wantRequests)
			}
			tt.wantSleep(t, clock.Sleeps())
			// Every attempt took a limiter token and was observed.
			if got := len(obs.Waits()); got != wantRequests {
				t.Errorf("%d limiter waits observed, want %d", got, wantRequests)
			}
			attempts := obs.Attempts()
			if len(attempts) != wantRequests {
				t.Fatalf("%d attempts observed, want %d", len(attempts), wantRequests)
			}
			for i, a := range attempts[:len(attempts)-1] {
				if a.err == nil || a.op != "update_participant" {
					t.Errorf("attempt %d observed as %+v, want a failure", i, a)
				}
				if replies[i].drop && a.status != 0 {
					t.Errorf("dropped attempt observed with status %d, want 0", a.status)
				}
			}
			if last := attempts[len(attempts)-1]; last.err != nil || last.status != 200 {
				t.Errorf("last attempt observed as %+v", last)
			}
		})
	}
}

// exactly asserts the retry sleeps.
func exactly(want ...time.Duration) func(t *testing.T, sleeps []time.Duration) {
	return func(t *testing.T, sleeps []time.Duration) {
		t.Helper()
		if len(want) == 0 && len(sleeps) == 0 {
			return
		}
		if !reflect.DeepEqual(sleeps, want) {
			t.Errorf("sleeps = %v, want %v", sleeps, want)
		}
	}
}

func TestNotRetried(t *testing.T) {
	for _, status := range []int{400, 401, 403, 404, 405, 409, 422} {
		t.Run(fmt.Sprint(status), func(t *testing.T) {
			srv := sequenceServer(t, reply{status: status, body: `{"error":"no"}`}, reply{status: 200, body: okBody})
			c, clock, _ := newTestClient(t, srv.URL, nil)
			_, err := c.UpdateParticipant(withTimeout(t, 5*time.Second), mustMPC(t, "m"), "1", muteUpdate)
			if err == nil {
				t.Fatal("want an error")
			}
			if srv.Count() != 1 {
				t.Errorf("%d requests, want exactly 1", srv.Count())
			}
			if len(clock.Sleeps()) != 0 {
				t.Errorf("slept %v", clock.Sleeps())
			}
		})
	}
}

func TestAttemptTimeoutThenSuccess(t *testing.T) {
	srv := sequenceServer(t, reply{hang: true}, reply{status: 200, body: okBody})
	c, clock, obs := newTestClient(t, srv.URL, func(cfg *Config) { cfg.Timeout = 250 * time.Millisecond })
	res, err := c.UpdateParticipant(withTimeout(t, 20*time.Second), mustMPC(t, "m"), "1", muteUpdate)
	if err != nil {
		t.Fatalf("UpdateParticipant: %v", err)
	}
	if res.Results[FieldMute] == "" {
		t.Errorf("result = %+v", res)
	}
	if srv.Count() != 2 {
		t.Errorf("%d requests, want 2", srv.Count())
	}
	if got := clock.Sleeps(); !reflect.DeepEqual(got, []time.Duration{DefaultBackoffBase}) {
		t.Errorf("sleeps = %v", got)
	}
	first := obs.Attempts()[0]
	if first.status != 0 || KindOf(first.err) != Unavailable || !errors.Is(first.err, context.DeadlineExceeded) {
		t.Errorf("first attempt observed as %+v", first)
	}
}

func TestAttemptTimeoutExhausted(t *testing.T) {
	srv := sequenceServer(t, reply{hang: true})
	// Real sleeps here: the per-attempt timeouts are real, so is the deadline.
	c, _, _ := newTestClient(t, srv.URL, func(cfg *Config) { cfg.Timeout = 50 * time.Millisecond })
	c.now, c.sleep = time.Now, sleepContext
	c.jitter = func(time.Duration) time.Duration { return 0 }
	_, err := c.UpdateParticipant(withTimeout(t, time.Second), mustMPC(t, "m"), "1", muteUpdate)
	e := mustError(t, err, Unavailable)
	// A request cut off very early may never reach the handler, hence <=.
	if e.Attempts < 2 || srv.Count() > e.Attempts {
		t.Errorf("attempts %d, requests %d; want >= 2 attempts and no more requests than attempts", e.Attempts, srv.Count())
	}
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("error %v does not wrap DeadlineExceeded", err)
	}
}

func TestRetriesStopAtDeadline(t *testing.T) {
	tests := []struct {
		name         string
		reply        reply
		ctxTimeout   time.Duration // 0: no deadline, CallTimeout applies
		callTimeout  time.Duration
		wantKind     Kind
		wantAttempts int
		wantSleeps   []time.Duration
		wantRetry    time.Duration
	}{
		{
			// waits 0.2+0.4+0.8 = 1.4 s; the next (1.6 s) would end after 2 s.
			name: "503 until the deadline", reply: reply{status: 503, body: `{"error":"down for maintenance"}`},
			ctxTimeout: 2 * time.Second, wantKind: Unavailable, wantAttempts: 4,
			wantSleeps: []time.Duration{200 * time.Millisecond, 400 * time.Millisecond, 800 * time.Millisecond},
		},
		{
			name: "no deadline: CallTimeout bounds the retries", reply: reply{status: 500},
			callTimeout: time.Second, wantKind: Unavailable, wantAttempts: 3,
			wantSleeps: []time.Duration{200 * time.Millisecond, 400 * time.Millisecond},
		},
		{
			name: "429 with Retry-After past the deadline", reply: reply{status: 429, body: `{"error":"slow down"}`, header: map[string]string{"Retry-After": "3"}},
			ctxTimeout: 5 * time.Second, wantKind: RateLimited, wantAttempts: 2,
			wantSleeps: []time.Duration{3 * time.Second}, wantRetry: 3 * time.Second,
		},
		{
			name: "429 without Retry-After gets the backoff as RetryAfter", reply: reply{status: 429},
			ctxTimeout: time.Second, wantKind: RateLimited, wantAttempts: 3,
			wantSleeps: []time.Duration{200 * time.Millisecond, 400 * time.Millisecond}, wantRetry: 800 * time.Millisecond,
		},
		{
			name: "backoff capped at BackoffMax", reply: reply{status: 502},
			ctxTimeout: 20 * time.Second, wantKind: Unavailable, wantAttempts: 8,
			wantSleeps: []time.Duration{200 * time.Millisecond, 400 * time.Millisecond, 800 * time.Millisecond,
				1600 * time.Millisecond, 3200 * time.Millisecond, 5 * time.Second, 5 * time.Second},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := sequenceServer(t, tt.reply)
			c, clock, _ := newTestClient(t, srv.URL, func(cfg *Config) {
				if tt.callTimeout != 0 {
					cfg.CallTimeout = tt.callTimeout
				}
			})
			ctx := context.Background()
			if tt.ctxTimeout != 0 {
				ctx = withTimeout(t, tt.ctxTimeout)
			}
			_, err := c.UpdateParticipant(ctx, mustMPC(t, "m"), "1", muteUpdate)
			e := mustError(t, err, tt.wantKind)
			if e.Attempts != tt.wantAttempts || srv.Count() != tt.wantAttempts {
				t.Errorf("attempts %d, requests %d; want %d", e.Attempts, srv.Count(), tt.wantAttempts)
			}
			if e.Status != tt.reply.status {
				t.Errorf("status %d, want %d", e.Status, tt.reply.status)
			}
			if got := clock.Sleeps(); !reflect.DeepEqual(got, tt.wantSleeps) {
				t.Errorf("sleeps = %v, want %v", got, tt.wantSleeps)
			}
			if e.RetryAfter != tt.wantRetry {
				t.Errorf("RetryAfter = %v, want %v", e.RetryAfter, tt.wantRetry)
			}
		})
	}
}

func TestCanceledDuringRequest(t *testing.T) {
	started := make(chan struct{}, 1)
	srv := newTestServer(t, func(n int, w http.ResponseWriter, r *http.Request) {
		started <- struct{}{}
		writeReply(w, r, reply{hang: true})
	})
	c, _, _ := newTestClient(t, srv.URL, nil)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	go func() {
		<-started
		cancel()
	}()
	_, err := c.UpdateParticipant(ctx, mustMPC(t, "m"), "1", muteUpdate)
	e := mustError(t, err, Canceled)
	if e.Attempts != 1 || srv.Count() != 1 {
		t.Errorf("attempts %d, requests %d; want 1", e.Attempts, srv.Count())
	}
	if !errors.Is(err, context.Canceled) {
		t.Errorf("error %v does not wrap context.Canceled", err)
	}
}

func TestBusyWhenNoTokenBeforeDeadline(t *testing.T) {
	t.Parallel()
	srv := sequenceServer(t, reply{status: 200, body: okBody})
	// One token every 10 s. The deadlines are real and the clock is fake,
	// so the gap between them is kept far wider than any slow machine's
	// delay between two calls.
	c, clock, obs := newTestClient(t, srv.URL, func(cfg *Config) { cfg.Rate, cfg.Burst = 0.1, 1 })
	mpc := mustMPC(t, "m")

	if _, err := c.UpdateParticipant(withTimeout(t, 5*time.Second), mpc, "1", muteUpdate); err != nil {
		t.Fatalf("first update: %v", err)
	}
	// The bucket is empty; the next token comes in 10 s, after this deadline.
	_, err := c.UpdateParticipant(withTimeout(t, 500*time.Millisecond), mpc, "1", muteUpdate)
	e := mustError(t, err, Busy)
	if e.RetryAfter != 10*time.Second {
		t.Errorf("RetryAfter = %v, want 10s", e.RetryAfter)
	}
	if e.Attempts != 0 || srv.Count() != 1 {
		t.Errorf("attempts %d, requests %d; the busy call must send nothing", e.Attempts, srv.Count())
	}
	if len(clock.Sleeps()) != 0 {
		t.Errorf("the busy call waited %v", clock.Sleeps())
	}
	// The refused call booked nothing: the next caller waits 10 s, not 20 s.
	if _, err := c.UpdateParticipant(withTimeout(t, time.Minute), mpc, "1", muteUpdate); err != nil {
		t.Fatalf("third update: %v", err)
	}
	if got := clock.Sleeps(); !reflect.DeepEqual(got, []time.Duration{10 * time.Second}) {
		t.Errorf("limiter sleeps = %v, want [10s]", got)
	}
	if got := obs.Waits(); !reflect.DeepEqual(got, []time.Duration{0, 10 * time.Second}) {
		t.Errorf("observed waits = %v, want [0 10s]", got)
	}
	if got := obs.Queue(); !reflect.DeepEqual(got, []int{1, -1}) {
		t.Errorf("observed queue = %v, want [1 -1]", got)
	}
}

func TestLimiterGatesRetries(t *testing.T) {
	srv := sequenceServer(t, reply{status: 503}, reply{status: 429}, reply{status: 200, body: okBody})
	c, clock, obs := newTestClient(t, srv.URL, func(cfg *Config) { cfg.Rate, cfg.Burst = 1, 1 })
	c.jitter = func(time.Duration) time.Duration { return 0 } // no backoff: only the limiter spaces attempts
	if _, err := c.UpdateParticipant(withTimeout(t, 10*time.Second), mustMPC(t, "m"), "1", muteUpdate); err != nil {
		t.Fatalf("UpdateParticipant: %v", err)
	}
	if srv.Count() != 3 {
		t.Fatalf("%d requests, want 3", srv.Count())
	}
	// One token per attempt: the first from the full bucket, the retries one
	// second apart.
	if got := obs.Waits(); !reflect.DeepEqual(got, []time.Duration{0, time.Second, time.Second}) {
		t.Errorf("observed waits = %v, want [0 1s 1s]", got)
	}
	if got := clock.Sleeps(); !reflect.DeepEqual(got, []time.Duration{time.Second, time.Second}) {
		t.Errorf("sleeps = %v", got)
	}
	// 3 attempts took 3 tokens: the bucket is empty, the next token is a
	// whole interval (1 s) away.
	if wait, ok := c.limiter.Reserve(context.Background(), clock.Now(), time.Millisecond); ok || wait != time.Second {
		t.Errorf("next token in %v (ok %v), want 1s: 3 attempts took 3 tokens", wait, ok)
	}
}

func TestRetryWithoutTokenReturnsLastFailure(t *testing.T) {
	srv := sequenceServer(t, reply{status: 503, body: `{"error":"down"}`})
	c, _, _ := newTestClient(t, srv.URL, func(cfg *Config) { cfg.Rate, cfg.Burst = 0.2, 1 })
	c.jitter = func(time.Duration) time.Duration { return 0 }
	_, err := c.UpdateParticipant(withTimeout(t, 3*time.Second), mustMPC(t, "m"), "1", muteUpdate)
	e := mustError(t, err, Unavailable)
	if e.Attempts != 1 || srv.Count() != 1 || e.Message != "down" || e.Status != 503 {
		t.Errorf("error %+v, requests %d", e, srv.Count())
	}
}

func TestConcurrentCallers(t *testing.T) {
	srv := sequenceServer(t, reply{status: 200, body: okBody})
	c, err := New(Config{AuthID: testAuthID, AuthToken: testAuthToken, BaseURL: srv.URL, Rate: 1000, Burst: 5})
	if err != nil {
		t.Fatal(err)
	}
	const callers = 20
	mpc := mustMPC(t, "m")
	var wg sync.WaitGroup
	errs := make(chan error, callers)
	ctx := withTimeout(t, 10*time.Second)
	for i := range callers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := c.UpdateParticipant(ctx, mpc, Member(fmt.Sprint(i+1)), muteUpdate)
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	if srv.Count() != callers {
		t.Errorf("%d requests, want %d", srv.Count(), callers)
	}
	if c.Credentials() != CredentialsAccepted {
		t.Errorf("credentials %v", c.Credentials())
	}
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	tests := []struct {
		in     string
		want   time.Duration
		wantOK bool
	}{
		{"", 0, false},
		{"0", 0, true},
		{" 7 ", 7 * time.Second, true},
		{"-1", 0, false},
		{"1.5", 0, false},
		{"99999999999999", maxRetryAfter, true},
		{now.Add(90 * time.Second).Format(http.TimeFormat), 90 * time.Second, true},
		{now.Add(-time.Minute).Format(http.TimeFormat), 0, true},
		{"Mon, 99 Foo 2025", 0, false},
	}
	for _, tt := range tests {
		got, ok := parseRetryAfter(tt.in, now)
		if got != tt.want || ok != tt.wantOK {
			t.Errorf("parseRetryAfter(%q) = %v, %v; want %v, %v", tt.in, got, ok, tt.want, tt.wantOK)
		}
	}
}

func TestFullJitterBounds(t *testing.T) {
	for _, ceiling := range []time.Duration{-1, 0, 1, time.Millisecond, 5 * time.Second} {
		for range 100 {
			if d := fullJitter(ceiling); d < 0 || d > max(ceiling, 0) {
				t.Fatalf("fullJitter(%v) = %v", ceiling, d)
			}
		}
	}
}

// pauseRecorder is a Limiter that records its pauses (until − now).
type pauseRecorder struct {
	Limiter
	mu     sync.Mutex
	pauses []time.Duration
}

func (p *pauseRecorder) Pause(ctx context.Context, now, until time.Time) {
	p.mu.Lock()
	p.pauses = append(p.pauses, until.Sub(now))
	p.mu.Unlock()
	p.Limiter.Pause(ctx, now, until)
}

func (p *pauseRecorder) Pauses() []time.Duration {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]time.Duration(nil), p.pauses...)
}

// Only a 429 with a Retry-After pauses the limiter, for at most maxPause;
// the request that got it still waits the full Retry-After.
func TestPauseOnlyFor429WithRetryAfter(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		reply      reply
		wantPauses []time.Duration
		wantSleeps []time.Duration
	}{
		{"429 Retry-After 2", reply{status: 429, header: map[string]string{"Retry-After": "2"}}, []time.Duration{2 * time.Second}, []time.Duration{2 * time.Second}},
		{"429 Retry-After an hour: pause capped", reply{status: 429, header: map[string]string{"Retry-After": "3600"}}, []time.Duration{maxPause}, []time.Duration{time.Hour}},
		{"429 Retry-After 0", reply{status: 429, header: map[string]string{"Retry-After": "0"}}, nil, nil},
		{"429 without Retry-After", reply{status: 429}, nil, []time.Duration{DefaultBackoffBase}},
		{"503 with Retry-After", reply{status: 503, header: map[string]string{"Retry-After": "2"}}, nil, []time.Duration{2 * time.Second}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv := sequenceServer(t, tt.reply, reply{status: 200, body: okBody})
			local, _ := NewLocalLimiter(1000, 1000)
			rec := &pauseRecorder{Limiter: local}
			c, clock, _ := newTestClient(t, srv.URL, func(cfg *Config) { cfg.Limiter = rec; cfg.CallTimeout = 2 * time.Hour })
			if _, err := c.UpdateParticipant(context.Background(), mustMPC(t, "m"), "1", muteUpdate); err != nil {
				t.Fatalf("UpdateParticipant: %v", err)
			}
			if got := rec.Pauses(); !reflect.DeepEqual(got, tt.wantPauses) {
				t.Errorf("pauses = %v, want %v", got, tt.wantPauses)
			}
			if got := clock.Sleeps(); !reflect.DeepEqual(got, tt.wantSleeps) {
				t.Errorf("sleeps = %v, want %v", got, tt.wantSleeps)
			}
		})
	}
}

// everPaused books every request one second ahead and reports a pause that
// never ends (Plivo answering 429 with Retry-After to every replica).
type everPaused struct{ Limiter }

func (everPaused) Reserve(context.Context, time.Time, time.Duration) (time.Duration, bool) {
	return time.Second, true
}

func (everPaused) PausedFor(context.Context, time.Time) time.Duration { return 5 * time.Second }

// A request that finds a pause running after each wait books again at most
// maxRebooks times, then gives up with Busy: nothing was sent.
func TestRebookingAfterPausesIsBounded(t *testing.T) {
	t.Parallel()
	srv := sequenceServer(t, reply{status: 200, body: okBody})
	c, clock, _ := newTestClient(t, srv.URL, func(cfg *Config) { cfg.Limiter = everPaused{} })
	_, err := c.UpdateParticipant(context.Background(), mustMPC(t, "m"), "1", muteUpdate)
	var pe *Error
	if !errors.As(err, &pe) || pe.Kind != Busy {
		t.Fatalf("err = %v, want a Busy *Error", err)
	}
	if n := srv.Count(); n != 0 {
		t.Errorf("%d requests sent during an endless pause, want 0", n)
	}
	if got, want := len(clock.Sleeps()), maxRebooks+1; got != want {
		t.Errorf("%d waits for a slot, want %d (the first and %d rebookings)", got, want, maxRebooks)
	}
}
