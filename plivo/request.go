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

// do sends one request with retries. Every attempt takes a token from the
// limiter first. 429, 5xx, network errors and per-attempt timeouts are
// retried with backoff while the next attempt can start before ctx's
// deadline (ctx always has one, see bound); other failures are returned at
// once. Retry-After is honoured on 429 and 503. It returns a 2xx response
// or an *Error.
//
// When op.settled is set, a failure whose outcome is unknown (5xx, network
// error, timeout: Plivo may have applied it) is not resent blindly: after
// the backoff, op.settled reads the state back. Applied: do returns
// errSettled. Not applied: the request is sent again. Unreadable: do backs
// off and looks again, so that a flaky read never turns into a second
// update.
func (c *Client) do(ctx context.Context, op operation, method, escapedPath, query string, body []byte) (*response, error) {
	target, err := c.requestURL(escapedPath, query)
	if err != nil {
		return nil, &Error{Op: op.String(), Kind: Internal, Message: "could not build the request URL", Err: err}
	}
	deadline, _ := ctx.Deadline()
	var last *Error // the previous attempt's failure, if any
	sent := 0       // requests sent
	for round := 1; ; round++ {
		if last != nil && last.Kind == Unavailable && op.settled != nil {
			switch op.settled(ctx) {
			case stateApplied:
				return nil, errSettled
			case stateUnknown:
				wait := c.backoff(round)
				if !c.now().Add(wait).Before(deadline) {
					e := *last
					e.Message += "; reading the state back to check failed too"
					return nil, &e
				}
				c.log.LogAttrs(ctx, slog.LevelWarn, "plivo: could not read the state back; not resending blind",
					slog.String("op", op.name), slog.String("mpc", op.mpc.String()), slog.String("member", string(op.member)),
					slog.Duration("wait", wait))
				if err := c.sleep(ctx, wait); err != nil {
					return nil, c.contextError(ctx, op, last, sent)
				}
				continue
			}
		}
		if e := c.takeToken(ctx, op, deadline, last); e != nil {
			e.Attempts = sent
			return nil, e
		}
		sent++
		status, respBody, header, e := c.attempt(ctx, op, method, target, body, sent)
		if e == nil {
			return &response{status: status, body: respBody, attempts: sent}, nil
		}
		e.Attempts = sent
		if !retryable(e) || op.once {
			return nil, e
		}
		wait := c.backoff(sent)
		// Retry-After is honoured on 429 and, as HTTP defines it there too,
		// on 503.
		if e.Kind == RateLimited || e.Status == http.StatusServiceUnavailable {
			if d, ok := parseRetryAfter(header.Get("Retry-After"), c.now()); ok {
				wait = d
			}
		}
		if e.Kind == RateLimited {
			e.RetryAfter = wait
		}
		if !c.now().Add(wait).Before(deadline) {
			return nil, e
		}
		c.log.LogAttrs(ctx, slog.LevelWarn, "plivo: retrying",
			slog.String("op", op.name), slog.String("mpc", op.mpc.String()), slog.String("member", string(op.member)),
			slog.Int("status", e.Status), slog.Int("attempt", sent), slog.Duration("wait", wait),
			slog.String("kind", e.Kind.String()), slog.String("error", e.Error()))
		if err := c.sleep(ctx, wait); err != nil {
			return nil, c.contextError(ctx, op, e, sent)
		}
		last = e
	}
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
// the token would come too late it gives the token back and returns Busy
// (nothing sent yet) or, on a retry, the previous attempt's failure.
func (c *Client) takeToken(ctx context.Context, op operation, deadline time.Time, last *Error) *Error {
	if ctx.Err() != nil {
		return c.contextError(ctx, op, last, 0)
	}
	now := c.now()
	r := c.limiter.ReserveN(now, 1)
	if !r.OK() {
		// Only possible with burst < 1, which New refuses.
		return &Error{Op: op.String(), Kind: Internal, Message: "the rate limiter refused the request"}
	}
	delay := r.DelayFrom(now)
	if delay <= 0 {
		c.observer.LimiterWait(0)
		return nil
	}
	if !now.Add(delay).Before(deadline) {
		r.CancelAt(now)
		c.log.LogAttrs(ctx, slog.LevelWarn, "plivo: rate limiter has no token before the deadline",
			slog.String("op", op.name), slog.String("mpc", op.mpc.String()), slog.String("member", string(op.member)),
			slog.Duration("delay", delay), slog.Bool("retry", last != nil))
		if last != nil {
			return last
		}
		return &Error{Op: op.String(), Kind: Busy, RetryAfter: delay,
			Message: "too many Plivo requests right now; nothing was sent"}
	}
	c.observer.LimiterQueue(1)
	err := c.sleep(ctx, delay)
	c.observer.LimiterQueue(-1)
	if err != nil {
		r.CancelAt(c.now())
		return c.contextError(ctx, op, last, 0)
	}
	c.observer.LimiterWait(delay)
	return nil
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
		if status == http.StatusUnauthorized || status == http.StatusForbidden {
			c.credentials.Store(int32(CredentialsRejected))
		}
		msg, apiID := errorMessage(respBody)
		e = &Error{Op: op.String(), Kind: kindOf(status), Status: status, APIID: apiID,
			Message: c.redact(fallbackMessage(msg, status))}
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
	case status == http.StatusUnauthorized, status == http.StatusForbidden:
		return Unauthorized
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

// redact replaces the auth token, should Plivo ever echo it, in text shown
// to users.
func (c *Client) redact(s string) string {
	if c.authToken == "" {
		return s
	}
	return strings.ReplaceAll(s, c.authToken, "[redacted]")
}
