package commands

import (
	"errors"
	"fmt"
	"math"
	"net/http"
	"time"

	"github.com/mpcbot/mpcbot/plivo"
)

// Explanation is what a user is told about an error: what happened, the
// details Plivo gave, what to do next, and whether trying again may help
// (a Retry button is offered only then).
type Explanation struct {
	Summary string
	Detail  string
	Next    string
	Retry   bool
}

// errCountFailed marks a failure to count the live members for the
// confirmation rule.
var errCountFailed = errors.New("count live participants")

// Explain is the one table from an error to what a user is told, by the
// error's kind. It never includes raw Go error strings, so nothing internal
// (or secret) reaches a user. mpc is the call the request was about.
func Explain(err error, mpc plivo.MPC) Explanation {
	var pe *plivo.Error
	if !errors.As(err, &pe) {
		if errors.Is(err, errCountFailed) {
			return Explanation{Summary: "couldn't count the participants to decide whether to ask for confirmation",
				Next: "Try again, or add `--yes` to skip the check.", Retry: true}
		}
		return Explanation{Summary: "internal error", Next: "Try again; if it persists, tell the mpcbot admins (the log has details)."}
	}
	detail := pe.Message
	if pe.Status != 0 {
		detail = fmt.Sprintf("%s (HTTP %d %s)", pe.Message, pe.Status, http.StatusText(pe.Status))
	}
	if pe.Attempts > 1 {
		detail += fmt.Sprintf(", after %d attempts", pe.Attempts)
	}
	wait := retryIn(pe.RetryAfter)
	switch pe.Kind {
	case plivo.Busy:
		return Explanation{Summary: fmt.Sprintf("busy, try again in %d s", wait),
			Detail: "mpcbot's Plivo rate limit is fully used right now; nothing was sent to Plivo",
			Next:   fmt.Sprintf("Try again in %d s.", wait), Retry: true}
	case plivo.Invalid:
		return Explanation{Summary: "Plivo rejected the request", Detail: detail,
			Next: "Check the command (`/mpc help`)."}
	case plivo.NotFound:
		return Explanation{Summary: "not found", Detail: detail,
			Next: fmt.Sprintf("Check the MPC name (names only match live calls; use `uuid:` for others) and the member id: `/mpc list %s` shows who is on the call.", quoteMPC(mpc))}
	case plivo.Unauthorized:
		return Explanation{Summary: "Plivo refused mpcbot's credentials", Detail: detail,
			Next: "An admin must check PLIVO_AUTH_ID and PLIVO_AUTH_TOKEN."}
	case plivo.Forbidden:
		return Explanation{Summary: "Plivo refused this request for the account", Detail: detail,
			Next: "Plivo's reason is above (geo permissions, an unverified account…); an admin must fix it in the Plivo console."}
	case plivo.RateLimited:
		next := "Try again in a few seconds."
		if pe.RetryAfter > 0 {
			next = fmt.Sprintf("Try again in %d s.", wait)
		}
		return Explanation{Summary: "Plivo is rate-limiting this account", Detail: detail, Next: next, Retry: true}
	case plivo.Unavailable:
		return Explanation{Summary: "Plivo did not answer in time or had an error", Detail: detail,
			Next: "The change may or may not have been applied; retrying is safe (`/mpc list` shows the state).", Retry: true}
	case plivo.Canceled:
		return Explanation{Summary: "stopped before Plivo answered (mpcbot is shutting down or the request timed out)", Detail: detail,
			Next: "The change may or may not have been applied; check with `/mpc list` and retry.", Retry: true}
	}
	return Explanation{Summary: "unexpected answer from Plivo", Detail: detail,
		Next: "Try again; if it persists, tell the mpcbot admins."}
}

// Lines returns the explanation as text lines: "❌ summary: detail" and
// "→ next".
func (ex Explanation) Lines() []string {
	l := "❌ " + ex.Summary
	if ex.Detail != "" {
		l += ": " + ex.Detail
	}
	lines := []string{l}
	if ex.Next != "" {
		lines = append(lines, "→ "+ex.Next)
	}
	return lines
}

func retryIn(d time.Duration) int {
	s := int(math.Ceil(d.Seconds()))
	if s < 1 {
		s = 1
	}
	return s
}
