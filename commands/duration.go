package commands

import (
	"regexp"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// defaultTimedMax is the default MPC_TIMED_MAX: the longest `for <duration>`
// a timed change may ask for.
const defaultTimedMax = time.Hour

// MinTimed is the shortest `for <duration>`.
const MinTimed = time.Second

// timedExample is the form shown with every problem of a timed change.
const timedExample = "`/mpc hold test_mpc_1 1002 for 2m`"

// durationSyntax is Go's duration syntax restricted to the units h, m, s.
var durationSyntax = regexp.MustCompile(`^(([0-9]+(\.[0-9]*)?|\.[0-9]+)[hms])+$`)

// parseDuration reads the duration after `for`: Go's syntax with the units
// s, m and h only (`90s`, `1m30s`, `2m`, `1.5h`; case-insensitive), a whole
// number of seconds from MinTimed to max. Any error is a *UsageError that
// says what is wrong and shows the form.
func parseDuration(s string, max time.Duration) (time.Duration, error) {
	tooShort := func(why string) error {
		return usagef("%s %s; the duration after `for` must be at least %s, e.g. %s", code(s), why, FormatDuration(MinTimed), timedExample)
	}
	tooLong := func() error {
		return usagef("%s is longer than the maximum of %s, e.g. %s", code(s), FormatDuration(max), timedExample)
	}
	lower := strings.ToLower(s)
	if r, _ := utf8.DecodeRuneInString(lower); r == '-' || isDash(r) {
		return 0, tooShort("is negative")
	}
	if strings.Trim(lower, "0") == "" {
		return 0, tooShort("is zero")
	}
	if !durationSyntax.MatchString(lower) {
		why := "is not a duration"
		switch unit := badUnit(lower); unit {
		case "":
		case "none":
			why = "has no unit"
		default:
			why = "uses the unit " + code(unit) + ", which is not allowed here"
		}
		return 0, usagef("%s %s; write the duration with `s`, `m` or `h`, e.g. %s", code(s), why, timedExample)
	}
	d, err := time.ParseDuration(lower)
	switch {
	case err != nil: // the syntax is right, so the number is too large
		return 0, tooLong()
	case d == 0:
		return 0, tooShort("is zero")
	case d < MinTimed:
		return 0, tooShort("is shorter than that")
	case d%time.Second != 0:
		return 0, usagef("%s is not a whole number of seconds, e.g. %s", code(s), timedExample)
	case d > max:
		return 0, tooLong()
	}
	return d, nil
}

// badUnit returns the first unit in s other than h, m and s ("none" when a
// number has no unit), or "" when s is not numbers with units at all.
func badUnit(s string) string {
	for s != "" {
		i := 0
		for i < len(s) && (s[i] >= '0' && s[i] <= '9' || s[i] == '.') {
			i++
		}
		if i == 0 {
			return ""
		}
		j := i
		for j < len(s) && !(s[j] >= '0' && s[j] <= '9' || s[j] == '.') {
			j++
		}
		switch unit := s[i:j]; unit {
		case "h", "m", "s":
		case "":
			return "none"
		default:
			return unit
		}
		s = s[j:]
	}
	return ""
}

// looksLikeDuration reports whether s reads as a duration (`2m`), as when
// `for` was left out.
func looksLikeDuration(s string) bool { return durationSyntax.MatchString(strings.ToLower(s)) }

// FormatDuration writes d canonically in hours, minutes and seconds,
// leaving out zero parts: `2m`, `1m30s`, `1h`, `1h5s`. Parts below a second
// are dropped; 0 is `0s`. The result parses back with time.ParseDuration.
func FormatDuration(d time.Duration) string {
	var b strings.Builder
	u := uint64(d)
	if d < 0 {
		b.WriteByte('-')
		u = -u
	}
	h, m, s := u/uint64(time.Hour), u%uint64(time.Hour)/uint64(time.Minute), u%uint64(time.Minute)/uint64(time.Second)
	if h > 0 {
		b.WriteString(strconv.FormatUint(h, 10) + "h")
	}
	if m > 0 {
		b.WriteString(strconv.FormatUint(m, 10) + "m")
	}
	if s > 0 || h == 0 && m == 0 {
		b.WriteString(strconv.FormatUint(s, 10) + "s")
	}
	return b.String()
}
