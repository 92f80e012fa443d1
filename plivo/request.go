package plivo

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// response is a successful (2xx) HTTP answer.
type response struct {
	status   int
	body     []byte
	attempts int
}

// exchange is one logical request to Plivo and the attempts made for it so
// far. UpdateParticipant keeps one across resends, so that attempts are
// counted and the backoff grows over the whole call.
type exchange struct {
	op     operation
	method string
	target *url.URL
	body   []byte
	// once sends a single attempt, never retried (reading the state back).
	once bool
	// keepUnknown returns a failure whose outcome is unknown (see
	// outcomeUnknown) at once instead of retrying it: the caller decides
	// what to do (UpdateParticipant reads the state back).
	keepUnknown bool

	sent          int           // attempts sent so far
	last          *Error        // the latest failure, nil if none
	retryAfter    time.Duration // Retry-After of the latest failure…
	hasRetryAfter bool          // …if it had a usable one
}

// newExchange prepares a request to an escaped path.
func (c *Client) newExchange(op operation, method, escapedPath, query string, body []byte) (*exchange, *Error) {
	target, err := c.requestURL(escapedPath, query)
	if err != nil {
		return nil, &Error{Op: op.String(), Kind: Internal, Message: "could not build the request URL", Err: err}
	}
	return &exchange{op: op, method: method, target: target, body: body}, nil
}

// outcomeUnknown reports whether a failed attempt may nevertheless have
// been acted on by Plivo: a 5xx, a network error or a timeout. (A 429 or
// any other 4xx was refused.)
func outcomeUnknown(e *Error) bool { return e.Kind == Unavailable }

// do sends x's request, retrying failures. Every attempt takes a token from
// the limiter first. 429, 5xx, network errors and per-attempt timeouts are
// retried with backoff while the next attempt can start before ctx's
// deadline (ctx always has one, see bound); other failures are returned at
// once, and so are failures with an unknown outcome when x.keepUnknown is
// set. Retry-After is honoured on 429 and 503; a 429's Retry-After also
// pauses the limiter, so that every request (the fleet's, with a shared
// limiter) backs off, not only this one. It returns a 2xx response or an
// *Error.
func (c *Client) do(ctx context.Context, x *exchange) (*response, *Error) {
	deadline, _ := ctx.Deadline()
	for {
		if e := c.takeToken(ctx, x.op, deadline, x.last); e != nil {
			e.Attempts = x.sent
			return nil, e
		}
		x.sent++
		status, respBody, header, e := c.attempt(ctx, x.op, x.method, x.target, x.body, x.sent)
		if e == nil {
			return &response{status: status, body: respBody, attempts: x.sent}, nil
		}
		e.Attempts = x.sent
		x.last = e
		x.retryAfter, x.hasRetryAfter = parseRetryAfter(header.Get("Retry-After"), c.now())
		if e.Kind == RateLimited && x.hasRetryAfter {
			c.pause(ctx, x.retryAfter)
		}
		if !retryable(e) || x.once || (x.keepUnknown && outcomeUnknown(e)) {
			return nil, e
		}
		wait := c.retryWait(x)
		if e.Kind == RateLimited {
			e.RetryAfter = wait
		}
		if !c.now().Add(wait).Before(deadline) {
			return nil, e
		}
		c.log.LogAttrs(ctx, slog.LevelWarn, "plivo: retrying",
			slog.String("op", x.op.name), slog.String("mpc", x.op.mpc.String()), slog.String("member", string(x.op.member)),
			slog.Int("status", e.Status), slog.Int("attempt", x.sent), slog.Duration("wait", wait),
			slog.String("kind", e.Kind.String()), slog.String("error", e.Error()))
		if err := c.sleep(ctx, wait); err != nil {
			return nil, c.contextError(ctx, x.op, e, x.sent)
		}
	}
}

// retryWait is how long to wait before trying x again after its latest
// failure: the answer's Retry-After on a 429 or (as HTTP defines it there
// too) a 503, else the jittered backoff for the attempts made.
func (c *Client) retryWait(x *exchange) time.Duration {
	if x.hasRetryAfter && x.last != nil && (x.last.Kind == RateLimited || x.last.Status == http.StatusServiceUnavailable) {
		return x.retryAfter
	}
	return c.backoff(x.sent)
}

// maxPause bounds how long one 429's Retry-After pauses the limiter: Plivo
// counts its budget over 5 s, so a longer value is a mistake, and it must
// not stop the whole fleet for long. The request that got it still waits
// the full Retry-After (or gives up at its deadline).
const maxPause = time.Minute

// pause makes every later reservation of the limiter wait d from now.
func (c *Client) pause(ctx context.Context, d time.Duration) {
	if d <= 0 {
		return
	}
	now := c.now()
	c.limiter.Pause(ctx, now, now.Add(min(d, maxPause)))
	c.log.LogAttrs(ctx, slog.LevelWarn, "plivo: 429 with Retry-After; pausing every request", slog.Duration("pause", min(d, maxPause)))
}

// requestURL returns the absolute URL for an escaped path. Path and RawPath
// are both set so the escaped form is sent byte for byte.
func (c *Client) requestURL(escapedPath, query string) (*url.URL, error) {
	path, err := url.PathUnescape(escapedPath)
	if err != nil {
		return nil, fmt.Errorf("unescape path: %w", err)
	}
	u := &url.URL{Scheme: c.base.Scheme, Host: c.base.Host, Path: path, RawPath: escapedPath, RawQuery: query}
	if u.EscapedPath() != escapedPath {
		return nil, errors.New("path does not round-trip")
	}
	return u, nil
}

// takeToken waits for a limiter token. It never waits past deadline: when
// the token would come too late nothing is booked, and it returns Busy
// (nothing sent yet) or, on a retry, the previous attempt's failure. A wait
// cut short by ctx keeps its booking (a Limiter has no cancel; the budget
// errs on the safe side). A slot booked before a 429's pause began (by this
// client or, on a shared limiter, by any replica) would fall inside the
// pause: after waiting for it, the request asks the limiter and, while a
// pause runs, books again behind it instead of sending.
func (c *Client) takeToken(ctx context.Context, op operation, deadline time.Time, last *Error) *Error {
	for rebook := 0; ; rebook++ {
		waited, err := c.waitForSlot(ctx, op, deadline, last)
		if err != nil || !waited {
			return err
		}
		paused := c.limiter.PausedFor(ctx, c.now())
		if paused <= 0 {
			return nil
		}
		if rebook == maxRebooks {
			// Pause after pause: the budget is held back, not this
			// request's fault; let the caller's retry rules decide.
			if last != nil {
				return last
			}
			return &Error{Op: op.String(), Kind: Busy, RetryAfter: paused,
				Message: "Plivo keeps asking every request to wait; nothing was sent"}
		}
		c.log.LogAttrs(ctx, slog.LevelInfo, "plivo: a pause began while this request waited for its slot; booking again after it",
			slog.String("op", op.name), slog.String("mpc", op.mpc.String()), slog.String("member", string(op.member)),
			slog.Duration("paused_for", paused))
	}
}

// maxRebooks bounds how often one request books again because a pause began
// while it waited (each time, a whole pause has passed).
const maxRebooks = 3

// waitForSlot books one slot and sleeps until it; waited says whether it
// slept (a slot in the future, which a later pause may cover).
func (c *Client) waitForSlot(ctx context.Context, op operation, deadline time.Time, last *Error) (waited bool, _ *Error) {
	if ctx.Err() != nil {
		return false, c.contextError(ctx, op, last, 0)
	}
	now := c.now()
	wait, ok := c.limiter.Reserve(ctx, now, deadline.Sub(now))
	if !ok {
		c.log.LogAttrs(ctx, slog.LevelWarn, "plivo: rate limiter has no token before the deadline",
			slog.String("op", op.name), slog.String("mpc", op.mpc.String()), slog.String("member", string(op.member)),
			slog.Duration("delay", wait), slog.Bool("retry", last != nil))
		if last != nil {
			return false, last
		}
		return false, &Error{Op: op.String(), Kind: Busy, RetryAfter: wait,
			Message: "too many Plivo requests right now; nothing was sent"}
	}
	if wait <= 0 {
		c.observer.LimiterWait(0)
		return false, nil
	}
	c.observer.LimiterQueue(1)
	err := c.sleep(ctx, wait)
	c.observer.LimiterQueue(-1)
	if err != nil {
		return true, c.contextError(ctx, op, last, 0)
	}
	c.observer.LimiterWait(wait)
	return true, nil
}

// attempt sends one HTTP request with its own timeout. It returns the
// status, body and headers of a 2xx answer, or an *Error (with the headers
// of a non-2xx answer, for Retry-After).
func (c *Client) attempt(ctx context.Context, op operation, method string, target *url.URL, body []byte, n int) (int, []byte, http.Header, *Error) {
	actx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	start := time.Now()
	status, header, respBody, err := c.roundTrip(actx, method, target, body)
	elapsed := time.Since(start)

	var e *Error
	switch {
	case err != nil && ctx.Err() != nil && errors.Is(ctx.Err(), context.Canceled):
		e = c.contextError(ctx, op, nil, n)
	case err != nil && ctx.Err() != nil:
		e = &Error{Op: op.String(), Kind: Unavailable, Status: status,
			Message: "Plivo did not answer before the deadline", Err: context.DeadlineExceeded}
	case err != nil && actx.Err() != nil:
		e = &Error{Op: op.String(), Kind: Unavailable, Status: status,
			Message: fmt.Sprintf("Plivo did not answer within %v", c.timeout), Err: context.DeadlineExceeded}
	case err != nil:
		e = &Error{Op: op.String(), Kind: Unavailable, Status: status, Message: "could not reach Plivo", Err: err}
	case status >= 200 && status <= 299:
		c.credentials.Store(int32(CredentialsAccepted))
		c.everAccepted.Store(true)
	default:
		if status == http.StatusUnauthorized {
			c.credentials.Store(int32(CredentialsRejected))
		}
		msg, apiID := errorMessage(respBody)
		e = &Error{Op: op.String(), Kind: kindOf(status), Status: status, APIID: c.excerpt(apiID, maxAPIIDRunes),
			Message: fallbackMessage(c.excerpt(msg, maxMessageRunes), status)}
	}

	attrs := []slog.Attr{
		slog.String("op", op.name), slog.String("mpc", op.mpc.String()), slog.String("member", string(op.member)),
		slog.Int("status", status), slog.Duration("duration", elapsed), slog.Int("attempt", n),
	}
	var attemptErr error
	if e != nil {
		attemptErr = e
		attrs = append(attrs, slog.String("error", e.Error()))
	}
	c.log.LogAttrs(ctx, slog.LevelDebug, "plivo: attempt", attrs...)
	c.observer.Attempt(op.name, status, elapsed, attemptErr)
	return status, respBody, header, e
}

// roundTrip performs the HTTP exchange and reads the (bounded) body. A
// non-nil error means no complete answer; status is then the status line
// received, if any.
func (c *Client) roundTrip(ctx context.Context, method string, target *url.URL, body []byte) (int, http.Header, []byte, error) {
	var reader io.Reader
	if body != nil {
		reader = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, target.String(), reader)
	if err != nil {
		return 0, nil, nil, fmt.Errorf("build request: %w", err)
	}
	req.URL = target
	req.SetBasicAuth(c.authID, c.authToken)
	req.Header.Set("Accept", "application/json")
	req.Header.Set("User-Agent", userAgent)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return 0, nil, nil, stripURL(err)
	}
	defer resp.Body.Close()
	respBody, err := io.ReadAll(io.LimitReader(resp.Body, maxResponseBytes))
	if err != nil {
		return resp.StatusCode, resp.Header, nil, fmt.Errorf("read response: %w", stripURL(err))
	}
	// Drain a little more so the connection can be reused.
	_, _ = io.CopyN(io.Discard, resp.Body, 4<<10)
	return resp.StatusCode, resp.Header, respBody, nil
}

// stripURL removes the *url.Error wrapper, whose text repeats the request
// URL (with the account id), keeping the cause.
func stripURL(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// contextError is the error for a call whose ctx ended outside an HTTP
// exchange: Canceled when it was canceled, or the previous attempt's failure
// when the deadline passed after one, else Canceled (nothing was sent).
func (c *Client) contextError(ctx context.Context, op operation, last *Error, attempts int) *Error {
	err := ctx.Err()
	if err == nil {
		err = context.Canceled
	}
	if last != nil && !errors.Is(err, context.Canceled) {
		return last
	}
	msg := "canceled"
	if errors.Is(err, context.DeadlineExceeded) {
		msg = "the deadline passed before Plivo could be asked"
	}
	return &Error{Op: op.String(), Kind: Canceled, Message: msg, Attempts: attempts, Err: err}
}

// retryable reports whether a failed attempt may be tried again.
func retryable(e *Error) bool {
	return e.Kind == RateLimited || e.Kind == Unavailable
}

// kindOf maps a non-2xx HTTP status to a Kind.
func kindOf(status int) Kind {
	switch {
	case status == http.StatusBadRequest, status == http.StatusMethodNotAllowed, status == http.StatusUnprocessableEntity:
		return Invalid
	case status == http.StatusNotFound:
		return NotFound
	case status == http.StatusUnauthorized:
		return Unauthorized
	case status == http.StatusForbidden:
		return Forbidden
	case status == http.StatusTooManyRequests:
		return RateLimited
	case status >= 500 && status <= 599:
		return Unavailable
	}
	return Other
}

// backoff returns the full-jitter wait before retry number attempt (1 for
// the wait after the first attempt).
func (c *Client) backoff(attempt int) time.Duration {
	ceiling := c.backoffBase
	for i := 1; i < attempt && ceiling < c.backoffMax; i++ {
		ceiling *= 2
	}
	return c.jitter(min(ceiling, c.backoffMax))
}

// maxRetryAfter caps a Retry-After value (avoids overflow; far beyond any
// command deadline anyway).
const maxRetryAfter = 24 * time.Hour

// parseRetryAfter reads a Retry-After header: delay-seconds or an HTTP-date.
func parseRetryAfter(v string, now time.Time) (time.Duration, bool) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, false
	}
	if n, err := strconv.ParseInt(v, 10, 64); err == nil {
		if n < 0 {
			return 0, false
		}
		if n > int64(maxRetryAfter/time.Second) {
			return maxRetryAfter, true
		}
		return time.Duration(n) * time.Second, true
	}
	if t, err := http.ParseTime(v); err == nil {
		d := t.Sub(now)
		return min(max(d, 0), maxRetryAfter), true
	}
	return 0, false
}
