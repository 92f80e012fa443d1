package plivo

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

// Kind classifies an Error so that one table can decide what a user is told
// and whether a request is retried.
type Kind uint8

// Error kinds.
const (
	// Other is an error that fits no other kind.
	Other Kind = iota
	// Invalid: the request breaks a rule (ours or Plivo's 400/405/422). Not retried.
	Invalid
	// NotFound: unknown or ended MPC, unknown member, member who left (404). Not retried.
	NotFound
	// Unauthorized: Plivo refused the credentials (401). Not retried.
	Unauthorized
	// RateLimited: Plivo answered 429 and the retries ran out of time.
	RateLimited
	// Unavailable: 5xx, network errors or timeouts outlasted the retries.
	Unavailable
	// Busy: the local rate limiter could not grant a token before the
	// command's deadline; nothing was sent.
	Busy
	// Canceled: the caller canceled the context (shutdown), or its deadline
	// passed before anything was sent. A deadline that passes while Plivo
	// has not answered is Unavailable.
	Canceled
	// Internal: a response mpcbot could not understand, or a bug.
	Internal
	// Forbidden: Plivo accepted the credentials but refused the request
	// (403: geo permissions, an account not verified yet, …); Message holds
	// Plivo's reason. Not retried.
	Forbidden
)

var kindNames = [...]string{
	Other: "other", Invalid: "invalid", NotFound: "not_found", Unauthorized: "unauthorized",
	RateLimited: "rate_limited", Unavailable: "unavailable", Busy: "busy", Canceled: "canceled",
	Internal: "internal", Forbidden: "forbidden",
}

// String returns a short snake_case name, used in logs and metrics labels.
func (k Kind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return fmt.Sprintf("kind(%d)", k)
}

// Error is the error returned by this package. Message and APIID are safe to
// show to a user: they never hold credentials (in any form SecretForms
// lists), raw response bodies or URLs; text taken from Plivo's answer is a
// bounded, single-line excerpt without control or format characters.
type Error struct {
	// Op is what was being done, e.g. "update participant test_mpc_1/all".
	Op string
	// Kind classifies the failure.
	Kind Kind
	// Status is the last HTTP status received, 0 if none.
	Status int
	// Message is Plivo's error text, or ours when Plivo gave none.
	Message string
	// APIID is Plivo's api_id of the failed response, if any.
	APIID string
	// RetryAfter is how long the caller should wait before trying again
	// (Busy and RateLimited), 0 if unknown.
	RetryAfter time.Duration
	// Attempts is how many HTTP requests were sent.
	Attempts int
	// Err is the underlying error, if any.
	Err error
}

// Error implements error.
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("plivo: ")
	if e.Op != "" {
		b.WriteString(e.Op)
		b.WriteString(": ")
	}
	if e.Message != "" {
		b.WriteString(e.Message)
	} else {
		b.WriteString(e.Kind.String())
	}
	if e.Status != 0 {
		fmt.Fprintf(&b, " (HTTP %d)", e.Status)
	}
	if e.Err != nil && (e.Message == "" || !strings.Contains(e.Message, e.Err.Error())) {
		b.WriteString(": ")
		b.WriteString(e.Err.Error())
	}
	return b.String()
}

// Unwrap returns the underlying error.
func (e *Error) Unwrap() error { return e.Err }

// KindOf returns the Kind of the first *Error in err's chain, or Other.
func KindOf(err error) Kind {
	var e *Error
	if errors.As(err, &e) {
		return e.Kind
	}
	return Other
}

// AsError returns the first *Error in err's chain, if any.
func AsError(err error) (*Error, bool) {
	var e *Error
	ok := errors.As(err, &e)
	return e, ok
}
