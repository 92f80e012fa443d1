package plivo

import (
	"cmp"
	"encoding/base64"
	"encoding/json"
	"net/url"
	"slices"
	"strings"
)

// redactedMark replaces a secret found in text.
const redactedMark = "[redacted]"

// SecretForms returns every form in which the credentials authID:authToken
// could show up in text, so that a log or reply scrubber can remove all of
// them:
//
//   - the auth token itself;
//   - its percent-encodings (path, query and URL userinfo escaping, as in
//     https://id:token@host/), each with upper- and lower-case hex digits;
//   - its JSON string escaping;
//   - the HTTP Basic credential base64("authID:authToken"), in standard and
//     URL-safe base64, padded and unpadded (the header value "Basic <b64>"
//     contains it).
//
// Forms are returned longest first (replace them in that order) without
// duplicates; it returns nil when authToken is empty. The auth id alone is
// not a secret and is not returned.
func SecretForms(authID, authToken string) []string {
	if authToken == "" {
		return nil
	}
	forms := []string{authToken, jsonEscape(authToken)}
	for _, escaped := range []string{url.PathEscape(authToken), url.QueryEscape(authToken), userinfoEscape(authToken)} {
		forms = append(forms, escaped, hexCase(escaped, false), hexCase(escaped, true))
	}
	basic := []byte(authID + ":" + authToken)
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		forms = append(forms, enc.EncodeToString(basic))
	}
	forms = slices.DeleteFunc(forms, func(f string) bool { return f == "" })
	slices.SortFunc(forms, func(a, b string) int { return cmp.Or(cmp.Compare(len(b), len(a)), strings.Compare(a, b)) })
	return slices.Compact(forms)
}

// userinfoEscape escapes a password as net/url does in a URL's userinfo.
func userinfoEscape(password string) string {
	return strings.TrimPrefix(url.UserPassword("", password).String(), ":")
}

// jsonEscape returns s as it appears inside a JSON string.
func jsonEscape(s string) string {
	b, err := json.Marshal(s)
	if err != nil || len(b) < 2 {
		return s
	}
	return string(b[1 : len(b)-1])
}

// hexCase returns s with the hex digits of its %XX escapes in upper or
// lower case.
func hexCase(s string, upper bool) string {
	b := []byte(s)
	for i := 0; i+2 < len(b); i++ {
		if b[i] != '%' {
			continue
		}
		for j := i + 1; j <= i+2; j++ {
			switch c := b[j]; {
			case upper && 'a' <= c && c <= 'f':
				b[j] = c - 'a' + 'A'
			case !upper && 'A' <= c && c <= 'F':
				b[j] = c - 'A' + 'a'
			}
		}
		i += 2
	}
	return string(b)
}

// redactor removes the client's secrets from text.
type redactor struct {
	forms []string // longest first
}

// redact replaces every secret form in s.
func (r redactor) redact(s string) string {
	for _, f := range r.forms {
		if strings.Contains(s, f) {
			s = strings.ReplaceAll(s, f, redactedMark)
		}
	}
	return s
}
