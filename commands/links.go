package commands

import (
	"regexp"
	"strings"
)

// linkScheme matches the start of the URL in Slack's link markup
// (`http:`, `mailto:`, `tel:`…).
var linkScheme = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9+.\-]*:`)

// linkProblem says why unwrapLinks refused a text; the caller words the
// message for the position (MPC or participant).
type linkProblem int

// What unwrapLinks may refuse.
const (
	linkOK linkProblem = iota
	linkEmpty
	linkMixed
)

// unwrapLinks undoes the link markup Slack puts around text it recognises
// as a URL: `<http://sales.eu|sales.eu>` becomes its label `sales.eu`, and
// `<http://sales.eu>` without a label its URL without `http://` or
// `https://` (`<mailto:a@b.c|a@b.c>` and `<tel:…|…>` alike). Mentions —
// `<@U…>`, `<#C…|…>`, `<!here>`, `<!subteam^…>` — and other text in angle
// brackets stay as they are, for the caller to refuse (see isMention). An
// empty label, or link markup next to other angle brackets (which could
// make new markup of the result), is refused, so that unwrapping what
// unwrapLinks returns changes nothing.
func unwrapLinks(s string) (string, linkProblem) {
	if !strings.Contains(s, "<") {
		return s, linkOK
	}
	var b strings.Builder
	unwrapped := false
	for s != "" {
		i := strings.IndexByte(s, '<')
		if i < 0 {
			b.WriteString(s)
			break
		}
		b.WriteString(s[:i])
		s = s[i:]
		end := strings.IndexByte(s, '>')
		if end < 0 || strings.Contains(s[1:end], "<") {
			// Not markup: an unclosed bracket, or one whose markup starts later.
			b.WriteByte('<')
			s = s[1:]
			continue
		}
		inner := s[1:end]
		s = s[end+1:]
		switch {
		case linkScheme.MatchString(inner):
			text, label, hasLabel := strings.Cut(inner, "|")
			if hasLabel {
				text = label
			} else {
				text = trimPrefixFold(trimPrefixFold(text, "http://"), "https://")
			}
			if strings.TrimSpace(text) == "" {
				return "", linkEmpty
			}
			b.WriteString(text)
			unwrapped = true
		default:
			b.WriteString("<" + inner + ">")
		}
	}
	out := b.String()
	if unwrapped && strings.ContainsAny(out, "<>") {
		return "", linkMixed
	}
	return out, linkOK
}

// isMention reports whether s starts like Slack's markup for a user,
// channel, user-group or special mention (`<@U…>`, `<#C…>`, `<!here>`,
// `<!subteam^…>`).
func isMention(s string) bool {
	return strings.HasPrefix(s, "<@") || strings.HasPrefix(s, "<#") || strings.HasPrefix(s, "<!")
}

// trimPrefixFold removes prefix from s, ignoring case.
func trimPrefixFold(s, prefix string) string {
	if len(s) >= len(prefix) && strings.EqualFold(s[:len(prefix)], prefix) {
		return s[len(prefix):]
	}
	return s
}
