package plivo

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"
)

// maxMessageRunes bounds an error message taken from a response body.
const maxMessageRunes = 300

// messageKeys are the keys an error body's text is read from, in order
// (Plivo's documented "error"; plivo-cli also reads the others).
var messageKeys = []string{"error", "global_error", "message"}

// errorMessage extracts a human-readable message and the api_id from an
// error response body. It returns "" when the body holds no usable text
// (empty, "{}", not JSON, HTML…). Raw JSON is never returned.
func errorMessage(body []byte) (message, apiID string) {
	var v any
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	if err := dec.Decode(&v); err != nil {
		return "", ""
	}
	switch v := v.(type) {
	case map[string]any:
		if s, ok := v["api_id"].(string); ok {
			apiID = s
		}
		message = messageIn(v, 0)
	case string:
		message = v
	}
	return cleanMessage(message), apiID
}

// maxMessageDepth bounds recursion into nested error objects.
const maxMessageDepth = 3

// messageIn returns the text under the first message key of obj that has
// any.
func messageIn(obj map[string]any, depth int) string {
	for _, key := range messageKeys {
		if s := textOf(obj[key], depth); s != "" {
			return s
		}
	}
	return ""
}

// textOf renders a JSON value found under a message key as text: strings
// as they are; objects by their own message key, else as "key: text" pairs
// (e.g. per-field validation errors); arrays joined with "; "; numbers as
// themselves. Booleans and nulls carry no text.
func textOf(v any, depth int) string {
	if depth > maxMessageDepth {
		return ""
	}
	switch v := v.(type) {
	case string:
		return strings.TrimSpace(v)
	case json.Number:
		return v.String()
	case map[string]any:
		if s := messageIn(v, depth+1); s != "" {
			return s
		}
		keys := make([]string, 0, len(v))
		for k := range v {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		var parts []string
		for _, k := range keys {
			if k == "api_id" {
				continue
			}
			if s := textOf(v[k], depth+1); s != "" {
				parts = append(parts, k+": "+s)
			}
		}
		return strings.Join(parts, "; ")
	case []any:
		var parts []string
		for _, item := range v {
			if s := textOf(item, depth+1); s != "" {
				parts = append(parts, s)
			}
		}
		return strings.Join(parts, "; ")
	}
	return ""
}

// cleanMessage turns control characters and runs of white space into single
// spaces and bounds the length.
func cleanMessage(s string) string {
	if !utf8.ValidString(s) {
		s = strings.ToValidUTF8(s, "\uFFFD")
	}
	s = strings.Join(strings.FieldsFunc(s, func(r rune) bool {
		return unicode.IsSpace(r) || unicode.IsControl(r)
	}), " ")
	if utf8.RuneCountInString(s) > maxMessageRunes {
		runes := []rune(s)
		s = string(runes[:maxMessageRunes]) + "…"
	}
	return s
}

// fallbackMessage returns msg, or the HTTP status text when msg is empty.
func fallbackMessage(msg string, status int) string {
	if msg != "" {
		return msg
	}
	if text := http.StatusText(status); text != "" {
		return text
	}
	return "HTTP status " + strconv.Itoa(status)
}

// decodeUpdate reads an Update Participant answer. Results gets an entry for
// every field sent: Plivo's string, or "" when the answer has none for it.
func decodeUpdate(resp *response, sent []Field) (UpdateResult, error) {
	result := UpdateResult{Status: resp.status}
	raw, err := decodeObject(resp.body)
	if err != nil {
		return result, err
	}
	_ = json.Unmarshal(raw["api_id"], &result.APIID) // absent or not a string: ""
	result.Results = make(map[Field]string, len(sent))
	for _, f := range sent {
		var s string
		if err := json.Unmarshal(raw[string(f)], &s); err != nil {
			s = ""
		}
		result.Results[f] = s
	}
	return result, nil
}

// decodeObject decodes a body that must be one JSON object.
func decodeObject(body []byte) (map[string]json.RawMessage, error) {
	var raw map[string]json.RawMessage
	if err := decodeJSON(body, &raw); err != nil {
		return nil, err
	}
	return raw, nil
}

// decodeJSON decodes a body that must be one JSON object into v.
func decodeJSON(body []byte, v any) error {
	trimmed := bytes.TrimSpace(body)
	if len(trimmed) == 0 {
		return errors.New("empty response body")
	}
	if trimmed[0] != '{' {
		return errors.New("response body is not a JSON object")
	}
	if err := json.Unmarshal(trimmed, v); err != nil {
		return fmt.Errorf("decode response: %w", err)
	}
	return nil
}

// jsonMarshal encodes v as JSON.
func jsonMarshal(v any) ([]byte, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("encode request: %w", err)
	}
	return b, nil
}

// participantList is one page of List Participants.
type participantList struct {
	Meta struct {
		Limit  int     `json:"limit"`
		Offset int     `json:"offset"`
		Next   *string `json:"next"`
	} `json:"meta"`
	Objects *[]Participant `json:"objects"`
}

// decodeList reads one page of List Participants.
func decodeList(body []byte) (participantList, error) {
	var list participantList
	if err := decodeJSON(body, &list); err != nil {
		return list, err
	}
	if list.Objects == nil {
		return list, errors.New(`participant list has no "objects"`)
	}
	return list, nil
}

// nextOffset returns the offset of the next page and whether there is one.
// It prefers the offset in meta.next (a relative URL such as
// "/v1/Account/…/Participant/?limit=20&offset=20"); otherwise it continues
// after the entries received.
func nextOffset(list participantList, offset int) (int, bool) {
	if list.Meta.Next == nil || strings.TrimSpace(*list.Meta.Next) == "" || len(*list.Objects) == 0 {
		return 0, false
	}
	if u, err := url.Parse(*list.Meta.Next); err == nil {
		if n, err := strconv.Atoi(u.Query().Get("offset")); err == nil && n >= 0 {
			return n, true
		}
	}
	return offset + len(*list.Objects), true
}
