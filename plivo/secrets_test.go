package plivo

import (
	"encoding/base64"
	"net/url"
	"slices"
	"strings"
	"testing"
)

func TestSecretForms(t *testing.T) {
	t.Parallel()
	const id, token = "MAODD0000000000000000", "a/b+c=d&e<f>g%h ij"
	forms := SecretForms(id, token)
	basic := id + ":" + token
	want := []string{
		token,
		url.PathEscape(token), url.QueryEscape(token),
		strings.TrimPrefix(url.UserPassword("", token).String(), ":"),
		"a%2fb+c=d&e%3cf%3eg%25h%20ij", // lower-case hex of the path escaping
		`a/b+c=d\u0026e\u003cf\u003eg%h ij`,
		base64.StdEncoding.EncodeToString([]byte(basic)), base64.RawStdEncoding.EncodeToString([]byte(basic)),
		base64.URLEncoding.EncodeToString([]byte(basic)), base64.RawURLEncoding.EncodeToString([]byte(basic)),
	}
	for _, w := range want {
		if !slices.Contains(forms, w) {
			t.Errorf("SecretForms lacks %q (has %q)", w, forms)
		}
	}
	for i := 1; i < len(forms); i++ {
		if len(forms[i]) > len(forms[i-1]) {
			t.Errorf("not longest first: %q before %q", forms[i-1], forms[i])
		}
		if slices.Contains(forms[:i], forms[i]) || forms[i] == "" {
			t.Errorf("duplicate or empty form %q", forms[i])
		}
	}
	if slices.Contains(forms, id) {
		t.Error("the auth id alone is listed as a secret")
	}
	if got := SecretForms(id, ""); got != nil {
		t.Errorf("SecretForms with no token = %q, want nil", got)
	}

	r := redactor{forms: forms}
	texts := []string{
		"Authorization: Basic " + base64.StdEncoding.EncodeToString([]byte(basic)),
		"GET https://" + url.UserPassword(id, token).String() + "@api.plivo.com/",
		"token=" + url.QueryEscape(token) + "&x=1",
		"path " + strings.ToLower(url.PathEscape(token)),
		`{"token":"a/b+c=d\u0026e\u003cf\u003eg%h ij"}`,
	}
	for _, text := range texts {
		got := r.redact(text)
		if !strings.Contains(got, redactedMark) {
			t.Errorf("redact(%q) = %q: nothing redacted", text, got)
		}
		for _, f := range forms {
			if strings.Contains(got, f) {
				t.Errorf("redact(%q) = %q still holds %q", text, got, f)
			}
		}
	}
}
