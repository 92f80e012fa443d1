package plivo

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
)

// messageKeys are the keys an error body's text is read from, in order
// (Plivo's documented "error"; plivo-cli also reads the others).
var messageKeys = []string{"error", "global_error", "message"}

// maxMessageDepth bounds recursion into nested error objects.
const maxMessageDepth = 3

// errorMessage extracts the error text and the api_id of an error response
// body, raw: the caller makes excerpts of them. The text comes only from
// string values under the documented keys (messageKeys), in the body itself
// or in objects nested under those keys; other keys are never read, so an
// echo of the request (headers, URL) under some other key never becomes
// the message. It returns "" when the body holds no such text (empty, "{}",
// not JSON, HTML…). A body that is one JSON string is that text (real 401
// bodies do that).
func errorMessage(body []byte) (message, apiID string) {
	var v any
	if err := json.Unmarshal(bytes.TrimSpace(body), &v); err != nil {
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
	return message, apiID
}

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

// textOf renders a JSON value found under a message key: a string as it
// is; an object by its own message keys (never its other keys); an array
// by its strings and objects, joined with "; ". Numbers, booleans and
// nulls carry no text.
func textOf(v any, depth int) string {
	if depth > maxMessageDepth {
		return ""
	}
	switch v := v.(type) {
	case string:
		return strings.TrimSpace(v)
	case map[string]any:
		return messageIn(v, depth+1)
	case []any:
		var parts []string
		for _, item := range v {
			switch item.(type) {
			case string, map[string]any:
				if s := textOf(item, depth+1); s != "" {
					parts = append(parts, s)
				}
			}
		}
		return strings.Join(parts, "; ")
	}
	return ""
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
// every field sent: an excerpt of Plivo's string, or "" when the answer has
// none for it.
func (c *Client) decodeUpdate(resp *response, sent []Field) (UpdateResult, error) {
	result := UpdateResult{Status: resp.status}
	raw, err := decodeObject(resp.body)
	if err != nil {
		return result, err
	}
	var apiID string
	_ = json.Unmarshal(raw["api_id"], &apiID) // absent or not a string: ""
	result.APIID = c.excerpt(apiID, maxAPIIDRunes)
	result.Results = make(map[Field]string, len(sent))
	for _, f := range sent {
		var s string
		if err := json.Unmarshal(raw[string(f)], &s); err != nil {
			s = ""
		}
		result.Results[f] = c.excerpt(s, maxMessageRunes)
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

// pageMeta is the "meta" object of Plivo's list answers. Plivo documents
// count; the Java SDK's fixtures say total_count, which is read too.
type pageMeta struct {
	Count      *int    `json:"count"`
	TotalCount *int    `json:"total_count"`
	Limit      int     `json:"limit"`
	Offset     int     `json:"offset"`
	Next       *string `json:"next"`
}

// total returns meta.count (or total_count) and whether Plivo sent one.
func (m pageMeta) total() (int, bool) {
	switch {
	case m.Count != nil:
		return *m.Count, true
	case m.TotalCount != nil:
		return *m.TotalCount, true
	}
	return 0, false
}

// page is one page of a Plivo list.
type page[T any] struct {
	Meta    pageMeta `json:"meta"`
	Objects *[]T     `json:"objects"`
}

// decodePage reads one page of a list; what names the list in errors.
func decodePage[T any](body []byte, what string) (page[T], error) {
	var p page[T]
	if err := decodeJSON(body, &p); err != nil {
		return p, err
	}
	if p.Objects == nil {
		return p, fmt.Errorf(`%s has no "objects"`, what)
	}
	return p, nil
}

// nextOffset returns the offset of the next page and whether there is one.
// It prefers the offset in meta.next (a relative URL such as
// "/v1/Account/…/Participant/?limit=20&offset=20"); otherwise it continues
// after the entries received.
func nextOffset(meta pageMeta, received, offset int) (int, bool) {
	if meta.Next == nil || strings.TrimSpace(*meta.Next) == "" || received == 0 {
		return 0, false
	}
	if u, err := url.Parse(*meta.Next); err == nil {
		if n, err := strconv.Atoi(u.Query().Get("offset")); err == nil && n >= 0 {
			return n, true
		}
	}
	return offset + received, true
}
