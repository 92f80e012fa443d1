package commands

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// A button value is "v1|<unix seconds issued>|<command text>". It carries
// everything a click needs (stateless: any replica, after any restart, can
// serve it), and its command text goes through Parse like typed text, so a
// crafted value gets exactly the validation a typed command gets.
const buttonVersion = "v1"

// maxButtonValue is Block Kit's limit on a button value.
const maxButtonValue = 2000

// DefaultButtonMaxAge is how old a button may be before a click is refused.
const DefaultButtonMaxAge = time.Hour

// Button is a decoded button value.
type Button struct {
	Command Command
	Issued  time.Time
}

// EncodeButton returns the value of a button that runs cmd.
func EncodeButton(cmd Command, issued time.Time) string {
	return buttonVersion + "|" + strconv.FormatInt(issued.Unix(), 10) + "|" + cmd.Text()
}

// DecodeButton decodes a button value with the default grammar; see
// Grammar.DecodeButton.
func DecodeButton(value string) (Button, error) { return Grammar{}.DecodeButton(value) }

// DecodeButton parses a button value; its command text is parsed with g,
// like typed text. A button carries a Change, List, Calls or CancelTimer.
// Errors are *UsageError.
func (g Grammar) DecodeButton(value string) (Button, error) {
	if len(value) > maxButtonValue {
		return Button{}, usagef("this button's value is too long (%d bytes)", len(value))
	}
	version, rest, ok := strings.Cut(value, "|")
	if !ok || version != buttonVersion {
		return Button{}, usagef("this button is not one mpcbot made (or is from an incompatible version); run the command again")
	}
	ts, text, ok := strings.Cut(rest, "|")
	if !ok {
		return Button{}, usagef("this button's value is malformed; run the command again")
	}
	secs, err := strconv.ParseInt(ts, 10, 64)
	if err != nil || secs <= 0 || secs > 1<<40 {
		return Button{}, usagef("this button's timestamp is malformed; run the command again")
	}
	if strings.TrimSpace(text) == "" {
		return Button{}, usagef("this button carries no command; run the command again")
	}
	cmd, err := g.Parse(text)
	if err != nil {
		return Button{}, err
	}
	switch cmd.(type) {
	case Change, List, Calls, CancelTimer:
	default:
		return Button{}, usagef("this button does not carry a change, a list, the calls or a timer")
	}
	return Button{Command: cmd, Issued: time.Unix(secs, 0)}, nil
}

// Stale returns a Refusal if the button is older than maxAge (or from the
// future by more than a minute of clock skew), nil otherwise. A Cancel
// timer button does not age: a timer may run longer than maxAge, and
// whether it is still pending is for the timer store to say.
func (b Button) Stale(now time.Time, maxAge time.Duration) *Refusal {
	age := now.Sub(b.Issued)
	if _, ok := b.Command.(CancelTimer); ok && age > 0 {
		return nil
	}
	if age <= maxAge && age > -time.Minute {
		return nil
	}
	again := "`/mpc`"
	switch c := b.Command.(type) {
	case Change:
		again = "`/mpc list " + quoteMPC(c.MPC) + "`"
	case List:
		again = "`/mpc list " + quoteMPC(c.MPC) + "`"
	}
	reason := fmt.Sprintf("This button is %s old; the call may have changed since.", roundAge(age))
	if age < 0 {
		reason = "This button's timestamp is in the future; mpcbot's clock or the button is wrong."
	}
	return &Refusal{
		Code:   RefusedStaleButton,
		Reason: reason,
		Fix:    "Run " + again + " again for fresh buttons.",
	}
}

func roundAge(d time.Duration) string {
	switch {
	case d < 2*time.Hour:
		return fmt.Sprintf("%d minutes", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%d hours", int(d.Hours()))
	}
	return fmt.Sprintf("%d days", int(d.Hours()/24))
}
