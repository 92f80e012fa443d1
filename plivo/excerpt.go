package plivo

import (
	"strings"
	"unicode"
)

// Bounds, in runes, of text taken from Plivo's answers before it reaches a
// user, a log line or an error.
const (
	// maxMessageRunes bounds an error message and a result string.
	maxMessageRunes = 300
	// maxAPIIDRunes bounds an api_id (a real one is a 36-character UUID).
	maxAPIIDRunes = 64
	// maxRoleRunes bounds a participant's role ("supervisor" is the longest
	// documented one).
	maxRoleRunes = 32
	// maxFieldRunes bounds the other strings of participants and MPCs that
	// are not shown but are kept (uuids, times, URIs, addresses).
	maxFieldRunes = 256
)

// excerpt turns text from a foreign body into something safe to show: one
// line of printable text, without the client's secrets, at most max runes
// (then cut, with "…").
//
// Invalid UTF-8 becomes U+FFFD; control characters, line and paragraph
// separators and white space become single spaces; format characters
// (bidi overrides, zero-width joiners, …) are dropped. Secrets are redacted
// before and after that, so neither an escape inside a secret nor a
// zero-width character breaking one up hides it, and before the cut, so
// no part of one survives.
func (c *Client) excerpt(s string, max int) string {
	if s == "" {
		return ""
	}
	s = c.secrets.redact(strings.ToValidUTF8(s, "\uFFFD"))
	s = printable(s)
	s = c.secrets.redact(s)
	return cut(s, max)
}

// printable collapses s to one line of printable text (see excerpt).
func printable(s string) string {
	var b strings.Builder
	b.Grow(len(s))
	space := false // a space is pending
	for _, r := range s {
		switch {
		case unicode.IsSpace(r), unicode.IsControl(r):
			space = b.Len() > 0
		case unicode.Is(unicode.Cf, r), unicode.Is(unicode.Co, r):
			// Invisible or private: dropped.
		default:
			if space {
				b.WriteByte(' ')
				space = false
			}
			b.WriteRune(r)
		}
	}
	return b.String()
}

// cut bounds s to max runes, ending a cut string with "…".
func cut(s string, max int) string {
	if len(s) <= max {
		return s // fewer bytes than max: fewer runes too
	}
	n := 0
	for i := range s {
		if n == max {
			return s[:i] + "…"
		}
		n++
	}
	return s
}
