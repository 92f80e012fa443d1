package commands

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/mpcbot/mpcbot/plivo"
)

// maxTextLength bounds the command text mpcbot will parse. Slack allows
// longer messages, but no valid /mpc command comes near this.
const maxTextLength = 1000

// maxMembers bounds the member ids of one command: an MPC has at most 10
// live participants.
const maxMembers = 10

// UsageError is a command that cannot be understood. Problem says what is
// wrong in words a user can act on; the correct usage is shown with it.
type UsageError struct {
	Problem string
}

// Error implements error.
func (e *UsageError) Error() string { return "usage: " + e.Problem }

func usagef(format string, args ...any) error {
	return &UsageError{Problem: fmt.Sprintf(format, args...)}
}

// Problem returns what a user is told about a parse error: the
// UsageError's problem, or a generic sentence for anything else.
func Problem(err error) string {
	var u *UsageError
	if errors.As(err, &u) {
		return u.Problem
	}
	return "the command could not be understood"
}

// isUsage reports whether err is a *UsageError.
func isUsage(err error) bool {
	var u *UsageError
	return errors.As(err, &u)
}

// maxTimerIDLength bounds the id of a timer (`cancel-timer <id>`).
const maxTimerIDLength = 32

// Grammar parses /mpc commands with the settings that come from
// configuration. The zero value is the default grammar.
type Grammar struct {
	// TimedMax is the longest `for <duration>` allowed (MPC_TIMED_MAX);
	// exactly TimedMax is allowed. 0 or less means defaultTimedMax.
	TimedMax time.Duration
}

func (g Grammar) timedMax() time.Duration {
	if g.TimedMax > 0 {
		return g.TimedMax
	}
	return defaultTimedMax
}

// storedGrammar parses command text mpcbot wrote itself (a stored timer's
// change), whose duration was checked against the configured maximum when
// it was asked for: any duration is accepted.
var storedGrammar = Grammar{TimedMax: math.MaxInt64}

// Parse parses text with the default grammar; see Grammar.Parse.
func Parse(text string) (Command, error) { return Grammar{}.Parse(text) }

// Parse parses the text of a /mpc command (everything after "/mpc"):
//
//	<action>[,<action>...] <mpc> <participant>[,<participant>...] [for <duration>] [--yes]
//	list <mpc> [here] [--page N]
//	calls [here]    (also the empty text)
//	cancel-timer <id>
//	help
//
// Keywords are case-insensitive. Phone-keyboard artefacts are tolerated:
// curly quotes, em/en dashes for "--", non-breaking and other Unicode
// spaces, zero-width and bidi marks, and spaces after commas. Slack's
// escaping of &, < and > is undone, and so is Slack's link markup around
// an MPC name or member id (`<http://sales.eu|sales.eu>` is `sales.eu`);
// an MPC name or member id that is a Slack mention (<@U…>, <#C…>, <!here>)
// is refused. Any error is a *UsageError.
func (g Grammar) Parse(text string) (Command, error) {
	if len(text) > maxTextLength {
		return nil, usagef("the command is %d characters long; no /mpc command needs more than %d", len(text), maxTextLength)
	}
	if !utf8.ValidString(text) {
		return nil, usagef("the command is not valid text (bad UTF-8)")
	}
	toks, err := tokenize(normalize(text))
	if err != nil {
		return nil, err
	}
	toks = joinLists(toks)
	if len(toks) == 0 {
		return Calls{}, nil
	}
	head := toks[0]
	if !head.quoted {
		switch strings.ToLower(head.text) {
		case "help", "-h", "--help", "?":
			if len(toks) > 1 {
				return nil, usagef("`help` takes nothing after it")
			}
			return Help{}, nil
		case "calls":
			return parseCalls(toks[1:])
		case "cancel-timer":
			return parseCancelTimer(toks[1:])
		case "list", "ls", "roster", "who":
			return parseList(toks[1:])
		}
	}
	return g.parseChange(toks)
}

func parseCalls(toks []token) (Command, error) {
	switch {
	case len(toks) == 0:
		return Calls{}, nil
	case len(toks) == 1 && !toks[0].quoted && strings.EqualFold(toks[0].text, "here"):
		return Calls{Here: true}, nil
	}
	return nil, usagef("`calls` takes only `here`; unexpected %s. To see one call: `/mpc list <mpc>`", code(nonHere(toks).text))
}

// nonHere returns the first token that is not `here`.
func nonHere(toks []token) token {
	for _, t := range toks {
		if t.quoted || !strings.EqualFold(t.text, "here") {
			return t
		}
	}
	return toks[len(toks)-1]
}

func parseCancelTimer(toks []token) (Command, error) {
	switch len(toks) {
	case 0:
		return nil, usagef("`cancel-timer` needs the timer's id, as on its *Cancel timer* button: `/mpc cancel-timer <id>`")
	case 1:
	default:
		return nil, usagef("`cancel-timer` takes one timer id; unexpected %s", code(toks[1].text))
	}
	id := strings.ToLower(toks[0].text)
	if toks[0].quoted || !validTimerID(id) {
		return nil, usagef("%s is not a timer id: ids are up to %d letters and digits, as on the *Cancel timer* button", code(toks[0].text), maxTimerIDLength)
	}
	return CancelTimer{ID: id}, nil
}

// validTimerID reports whether id is 1 to maxTimerIDLength lowercase ASCII
// letters and digits.
func validTimerID(id string) bool {
	if id == "" || len(id) > maxTimerIDLength {
		return false
	}
	for i := 0; i < len(id); i++ {
		if !(id[i] >= 'a' && id[i] <= 'z' || id[i] >= '0' && id[i] <= '9') {
			return false
		}
	}
	return true
}

func parseList(toks []token) (Command, error) {
	var l List
	var rest []token
	for i := 0; i < len(toks); i++ {
		t := toks[i]
		if t.quoted {
			rest = append(rest, t)
			continue
		}
		flag, isFlag := asFlag(t)
		switch lower := strings.ToLower(t.text); {
		case lower == "here" && len(rest) == 1:
			l.Here = true
		case flag == "--page" || strings.HasPrefix(flag, "--page="):
			v := strings.TrimPrefix(flag, "--page")
			v = strings.TrimPrefix(v, "=")
			if v == "" && i+1 < len(toks) {
				i++
				v = toks[i].text
			}
			n, err := strconv.Atoi(v)
			if err != nil || n < 1 || n > 1000 {
				return nil, usagef("`--page` needs a page number, e.g. `--page 2`")
			}
			l.Page = n
		case isFlag:
			return nil, usagef("unknown option %s for `list`", code(t.text))
		default:
			rest = append(rest, t)
		}
	}
	switch len(rest) {
	case 0:
		return nil, usagef("`list` needs the MPC: `/mpc list test_mpc_1`")
	case 1:
	default:
		return nil, usagef("`list` takes one MPC and optionally `here`; unexpected %s", code(rest[1].text))
	}
	mpc, err := parseMPC(rest[0])
	if err != nil {
		return nil, err
	}
	l.MPC = mpc
	if l.Page == 0 {
		l.Page = 1
	}
	return l, nil
}

func (g Grammar) parseChange(toks []token) (Command, error) {
	var c Change
	var pos []token
	for _, t := range toks {
		if flag, ok := asFlag(t); ok {
			switch flag {
			case "--yes", "-y", "--confirm":
				c.Confirmed = true
				continue
			}
			if len(pos) != 4 || !isFor(pos, 3) || !isNegativeNumber(t.text) {
				return nil, usagef("unknown option %s; the only option is `--yes`", code(t.text))
			}
			// A negative duration after `for`: parseDuration says so.
		}
		pos = append(pos, t)
	}
	if len(pos) == 0 {
		return nil, usagef("nothing to do: give an action, the MPC and the participant")
	}
	actions, err := parseActions(pos[0])
	if err != nil {
		if len(pos) > 1 {
			if _, err2 := parseActions(pos[1]); err2 == nil {
				return nil, usagef("the action comes first: `/mpc %s %s …`", pos[1].text, pos[0].text)
			}
		}
		return nil, err
	}
	c.Actions = actions
	switch {
	case len(pos) == 1:
		return nil, usagef("which MPC? e.g. `/mpc %s test_mpc_1 all`", pos[0].text)
	case len(pos) == 2 || isFor(pos, 2) && len(pos) <= 4:
		return nil, usagef("which participant? add `all` or a member id, e.g. `/mpc %s %s all`", pos[0].text, quoteToken(pos[1]))
	case len(pos) == 3:
	case isFor(pos, 3):
		if len(pos) == 4 {
			return nil, usagef("`for` needs a duration, e.g. %s", timedExample)
		}
		if c.For, err = parseDuration(pos[4].text, g.timedMax()); err != nil {
			return nil, err
		}
		if len(pos) > 5 {
			return nil, usagef("unexpected %s after the duration", code(pos[5].text))
		}
	case len(pos) == 4 && !pos[3].quoted && looksLikeDuration(pos[3].text):
		return nil, usagef("to undo it after %s, write `for %s`, e.g. %s", code(pos[3].text), pos[3].text, timedExample)
	default:
		extra := pos[3].text
		if !pos[1].quoted && !pos[2].quoted {
			return nil, usagef("too many words: %s. Put quotes around an MPC name with spaces, e.g. `\"mpc 1000\"`", code(extra))
		}
		return nil, usagef("unexpected %s after the participant", code(extra))
	}
	if c.MPC, err = parseMPC(pos[1]); err != nil {
		return nil, err
	}
	if c.Members, err = parseMembers(pos[2]); err != nil {
		return nil, err
	}
	if c.All() && c.Coaching() {
		return nil, usagef("coach and uncoach need a specific member id, not `all`: %s", plivo.CoachAllRule)
	}
	return c, nil
}

// isNegativeNumber reports whether s is a minus sign (or dash) and a
// number, as in `for -2m`.
func isNegativeNumber(s string) bool {
	s = strings.TrimLeftFunc(s, func(r rune) bool { return r == '-' || isDash(r) })
	return s != "" && (s[0] >= '0' && s[0] <= '9' || s[0] == '.')
}

// isFor reports whether pos[i] is the keyword `for`.
func isFor(pos []token, i int) bool {
	return i >= 0 && i < len(pos) && !pos[i].quoted && strings.EqualFold(pos[i].text, "for")
}

func parseActions(t token) ([]Action, error) {
	if t.quoted {
		return nil, usagef("%s is not an action; actions are mute, unmute, hold, unhold, coach, uncoach", code(t.text))
	}
	var as []Action
	for _, part := range strings.FieldsFunc(t.text, isListSep) {
		a, ok := parseAction(part)
		if !ok {
			msg := fmt.Sprintf("%s is not an action; actions are mute, unmute, hold, unhold, coach, uncoach", code(part))
			if s := suggestAction(part); s != "" {
				msg += fmt.Sprintf(". Did you mean `%s`?", s)
			}
			return nil, &UsageError{Problem: msg}
		}
		as = append(as, a)
	}
	if len(as) == 0 {
		return nil, usagef("%s is not an action; actions are mute, unmute, hold, unhold, coach, uncoach", code(t.text))
	}
	as = sortActions(as)
	for i := 1; i < len(as); i++ {
		if as[i].Field == as[i-1].Field {
			return nil, usagef("`%s` and `%s` contradict each other; pick one", as[i-1], as[i])
		}
	}
	return as, nil
}

func parseMPC(t token) (plivo.MPC, error) {
	s, problem := unwrapLinks(t.text)
	if problem != linkOK {
		return plivo.MPC{}, usagef("%s is a Slack link that is not an MPC name", code(t.text))
	}
	s = collapseSpaces(s) // as in quotes: a label may bring spaces
	if !t.quoted && len(s) >= 5 && strings.EqualFold(s[:5], "uuid:") {
		m, err := plivo.MPCByUUID(s[5:])
		if err != nil {
			return plivo.MPC{}, usagef("%s is not an MPC UUID: expected `uuid:` followed by 8-4-4-4-12 hex digits", code(s))
		}
		return m, nil
	}
	if isMention(s) {
		return plivo.MPC{}, usagef("%s is a Slack mention, not an MPC name", code(s))
	}
	if looksLikeMarkup(s) {
		return plivo.MPC{}, usagef("%s is a Slack mention or link, not an MPC name", code(s))
	}
	if strings.ContainsAny(s, "\"“”„«»") {
		return plivo.MPC{}, usagef("quote marks can't be part of an MPC name: %s", code(s))
	}
	m, err := plivo.MPCByName(s)
	if err != nil {
		var pe *plivo.Error
		if errors.As(err, &pe) {
			return plivo.MPC{}, usagef("%s is not a valid MPC name: %s", code(s), strings.TrimPrefix(pe.Message, "MPC name "))
		}
		return plivo.MPC{}, usagef("%s is not a valid MPC name", code(s))
	}
	return m, nil
}

func parseMembers(t token) ([]plivo.Member, error) {
	if t.quoted {
		return nil, usagef("the participant is `all` or member ids like `38291045`, not %s", code(t.text))
	}
	text, problem := unwrapLinks(t.text)
	if problem != linkOK {
		return nil, usagef("%s is not a participant: use `all` or member ids (digits) — `/mpc list <mpc>` shows them", code(t.text))
	}
	parts := strings.FieldsFunc(text, isListSep)
	if len(parts) == 0 {
		return nil, usagef("the participant is `all` or member ids like `38291045`")
	}
	seen := map[plivo.Member]bool{}
	var ms []plivo.Member
	for _, p := range parts {
		m, err := plivo.ParseMember(p)
		if err != nil && isMention(p) {
			return nil, usagef("%s is a Slack mention, not a participant: use `all` or member ids (digits) — `/mpc list <mpc>` shows them", code(p))
		}
		if err != nil {
			return nil, usagef("%s is not a participant: use `all` or member ids (digits), e.g. `38291045` — `/mpc list <mpc>` shows them", code(p))
		}
		if m.IsAll() && len(parts) > 1 {
			return nil, usagef("`all` can't be combined with member ids")
		}
		if !seen[m] {
			seen[m] = true
			ms = append(ms, m)
		}
	}
	if len(ms) > maxMembers {
		return nil, usagef("%d member ids given; an MPC has at most %d participants", len(ms), maxMembers)
	}
	return ms, nil
}

// token is one word of the command; quoted tokens came from "…".
type token struct {
	text   string
	quoted bool
}

// slackUnescaper undoes Slack's escaping of &, < and > (built once: parsing
// is on the ack path).
var slackUnescaper = strings.NewReplacer("&lt;", "<", "&gt;", ">", "&amp;", "&")

// normalize undoes Slack's HTML escaping and replaces phone-keyboard
// artefacts with their plain equivalents.
func normalize(s string) string {
	s = slackUnescaper.Replace(s)
	var b strings.Builder
	b.Grow(len(s))
	for _, r := range s {
		switch {
		case r == '＋':
			b.WriteByte('+')
		case r == '，' || r == '、':
			b.WriteByte(',')
		case r == '\u00a0' || r == '\u202f' || r == '\u2007' || r == '\u3000' || r == '\t' || r == '\n' || r == '\r':
			b.WriteByte(' ')
		case unicode.Is(unicode.Cf, r):
			// zero-width spaces and joiners, bidi marks, BOM: invisible, drop.
		case unicode.IsSpace(r):
			b.WriteByte(' ')
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// asFlag reports whether t is an option ("--yes"); a leading em or en dash,
// which phone keyboards make of "--", counts as "--". The flag is returned
// lower-cased.
func asFlag(t token) (string, bool) {
	if t.quoted || t.text == "" {
		return "", false
	}
	rs := []rune(t.text)
	switch {
	case isDash(rs[0]):
		return "--" + strings.ToLower(strings.TrimLeft(string(rs[1:]), "-")), true
	case rs[0] == '-':
		return strings.ToLower(t.text), true
	}
	return "", false
}

func isDash(r rune) bool { return r == '—' || r == '–' || r == '―' || r == '−' }

func isListSep(r rune) bool { return r == ',' || r == '+' }

var closers = map[rune]string{
	'"': `"”“`, '“': `”“"`, '”': `”“"`, '„': `“”"`, '«': `»`, '\'': `'’`, '‘': `’‘'`,
}

func isOpenQuote(r rune) bool { _, ok := closers[r]; return ok }

// tokenize splits s at spaces; a token that starts with a quote mark runs
// to the matching closing quote and may contain spaces.
func tokenize(s string) ([]token, error) {
	var toks []token
	rs := []rune(s)
	for i := 0; i < len(rs); {
		if rs[i] == ' ' {
			i++
			continue
		}
		if close, ok := closers[rs[i]]; ok {
			j := i + 1
			for j < len(rs) && !strings.ContainsRune(close, rs[j]) {
				j++
			}
			if j == len(rs) {
				return nil, usagef("a quote is not closed: %s", code(string(rs[i:])))
			}
			text := string(rs[i+1 : j])
			if strings.TrimSpace(text) == "" {
				return nil, usagef("empty quotes: an MPC name can't be empty")
			}
			toks = append(toks, token{text: strings.TrimSpace(collapseSpaces(text)), quoted: true})
			i = j + 1
			if i < len(rs) && rs[i] != ' ' {
				return nil, usagef("put a space after the closing quote of %s", code(text))
			}
			continue
		}
		j := i
		for j < len(rs) && rs[j] != ' ' {
			j++
		}
		toks = append(toks, token{text: string(rs[i:j])})
		i = j
	}
	return toks, nil
}

func collapseSpaces(s string) string { return strings.Join(strings.Fields(s), " ") }

// joinLists glues "mute, hold" and "101 ,102" back into one list token.
func joinLists(toks []token) []token {
	var out []token
	for _, t := range toks {
		if n := len(out); n > 0 && !t.quoted && !out[n-1].quoted {
			prev := out[n-1].text
			if strings.HasSuffix(prev, ",") || strings.HasSuffix(prev, "+") ||
				strings.HasPrefix(t.text, ",") || strings.HasPrefix(t.text, "+") {
				out[n-1].text = prev + t.text
				continue
			}
		}
		out = append(out, t)
	}
	return out
}

func isAllDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

func looksLikeMarkup(s string) bool {
	return strings.HasPrefix(s, "<") && strings.HasSuffix(s, ">") || isMention(s)
}

func quoteToken(t token) string {
	if t.quoted {
		return `"` + t.text + `"`
	}
	return t.text
}

// code renders user text inside backticks for a message, shortened; the
// caller's renderer escapes it for mrkdwn.
func code(s string) string {
	const max = 60
	if utf8.RuneCountInString(s) > max {
		s = string([]rune(s)[:max]) + "…"
	}
	s = strings.ReplaceAll(s, "`", "'")
	return "`" + s + "`"
}

// suggestAction returns the action closest to a misspelling, or "".
func suggestAction(s string) string {
	s = strings.ToLower(s)
	best, bestD := "", 3
	for _, a := range Actions {
		if d := editDistance(s, a.String()); d < bestD {
			best, bestD = a.String(), d
		}
	}
	return best
}

func editDistance(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	if len(ra) > 20 {
		return 99
	}
	prev := make([]int, len(rb)+1)
	cur := make([]int, len(rb)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(ra); i++ {
		cur[0] = i
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(rb)]
}
