package slacktest

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"unicode/utf8"
)

// Block Kit limits enforced by validateBlocks (docs.slack.dev Block Kit reference).
const (
	maxSectionText    = 3000
	maxSectionFields  = 10
	maxFieldText      = 2000
	maxActionElements = 25
	maxContextElems   = 10
	maxHeaderText     = 150
	maxButtonText     = 75
	maxButtonValue    = 2000
	maxButtonURL      = 3000
	maxID             = 255
	maxMarkdownText   = 12000
	maxAltText        = 2000
	maxConfirmTitle   = 100
	maxConfirmText    = 300
	maxConfirmButton  = 30
	// maxMessageBlocks and maxViewBlocks are the block limits of messages and
	// of Home tabs (and modals).
	maxMessageBlocks = 50
	maxViewBlocks    = 100
)

// knownBlockTypes are accepted; those with rules below are checked in depth.
var knownBlockTypes = []string{
	"section", "divider", "image", "actions", "context", "context_actions", "file", "input",
	"header", "rich_text", "call", "video", "markdown", "table",
}

// interactiveElements may appear in actions blocks and as section accessories.
var interactiveElements = []string{
	"button", "checkboxes", "datepicker", "datetimepicker", "timepicker", "overflow", "radio_buttons",
	"static_select", "external_select", "users_select", "conversations_select", "channels_select",
	"multi_static_select", "multi_external_select", "multi_users_select",
	"multi_conversations_select", "multi_channels_select", "workflow_button", "rich_text_input",
	"plain_text_input", "email_text_input", "url_text_input", "number_input", "feedback_buttons", "icon_button",
}

// blockCheck collects violations as Slack reports them in
// response_metadata.messages: "[ERROR] <what> [json-pointer:/blocks/0/text/text]".
type blockCheck struct {
	msgs     []string
	blockIDs map[string]bool
}

func (c *blockCheck) fail(ptr, format string, args ...any) {
	c.msgs = append(c.msgs, fmt.Sprintf("[ERROR] %s [json-pointer:%s]", fmt.Sprintf(format, args...), ptr))
}

// BlocksError is a Block Kit rejection as Slack reports it.
type BlocksError struct {
	// Code is Slack's error: "invalid_blocks" or "invalid_blocks_format".
	Code string
	// Messages explain it like response_metadata.messages:
	// "[ERROR] <what> [json-pointer:/blocks/0/text/text]".
	Messages []string
}

// Error describes the rejection with its messages.
func (e *BlocksError) Error() string {
	return "slacktest: " + e.Code + ": " + strings.Join(e.Messages, "; ")
}

// ValidateBlocks checks a message's blocks JSON array against the Block Kit
// rules the fake's chat methods and response_url enforce (listed in the package
// documentation). It returns a *BlocksError when Slack would refuse them.
func ValidateBlocks(blocks []byte) error {
	if _, _, code, msgs := validateBlocks(string(blocks), maxMessageBlocks, "/blocks"); code != "" {
		return &BlocksError{Code: code, Messages: msgs}
	}
	return nil
}

// ValidateHomeBlocks checks a Home tab's blocks JSON array like views.publish
// does: the same rules as ValidateBlocks, with the 100-block limit of views.
// Pointers in the messages start at /view/blocks, as views.publish reports them.
func ValidateHomeBlocks(blocks []byte) error {
	if _, _, code, msgs := validateBlocks(string(blocks), maxViewBlocks, "/view/blocks"); code != "" {
		return &BlocksError{Code: code, Messages: msgs}
	}
	return nil
}

// validateBlocks checks a blocks JSON array (at most maxBlocks) found at the
// JSON pointer root ("/blocks" in a message, "/view/blocks" in a view). It
// returns the compact array, the number of blocks, and on failure the Slack
// error code ("invalid_blocks_format" when not a JSON array, else
// "invalid_blocks") with Slack-style messages.
func validateBlocks(blocks string, maxBlocks int, root string) (json.RawMessage, int, string, []string) {
	var list []json.RawMessage
	if err := json.Unmarshal([]byte(blocks), &list); err != nil {
		return nil, 0, "invalid_blocks_format", []string{"[ERROR] blocks must be a JSON array of block objects"}
	}
	c := &blockCheck{blockIDs: map[string]bool{}}
	if len(list) > maxBlocks {
		c.fail(root, "no more than %d items allowed", maxBlocks)
	}
	for i, raw := range list {
		c.block(fmt.Sprintf("%s/%d", root, i), raw)
	}
	if len(c.msgs) > 0 {
		return nil, 0, "invalid_blocks", c.msgs
	}
	compact, _ := json.Marshal(list)
	return compact, len(list), "", nil
}

func asObject(raw json.RawMessage) (map[string]json.RawMessage, bool) {
	var obj map[string]json.RawMessage
	if json.Unmarshal(raw, &obj) != nil || obj == nil {
		return nil, false
	}
	return obj, true
}

// str reads a string member; present reports whether it exists and is a string.
func (c *blockCheck) str(ptr string, obj map[string]json.RawMessage, key string) (value string, present bool) {
	raw, ok := obj[key]
	if !ok || string(raw) == "null" {
		return "", false
	}
	if json.Unmarshal(raw, &value) != nil {
		c.fail(ptr+"/"+key, "must provide a string")
		return "", false
	}
	return value, true
}

// length checks 1 ≤ characters ≤ max for a present string.
func (c *blockCheck) length(ptr, value string, max int) {
	n := utf8.RuneCountInString(value)
	switch {
	case n == 0:
		c.fail(ptr, "must be more than 0 characters")
	case n > max:
		c.fail(ptr, "must be less than %d characters", max+1)
	}
}

func (c *blockCheck) optionalID(ptr string, obj map[string]json.RawMessage, key string) string {
	v, ok := c.str(ptr, obj, key)
	if ok {
		c.length(ptr+"/"+key, v, maxID)
	}
	return v
}

// text checks a text object whose type is one of kinds, with at most max characters.
func (c *blockCheck) text(ptr string, raw json.RawMessage, max int, kinds ...string) {
	obj, ok := asObject(raw)
	if !ok {
		c.fail(ptr, "must provide an object")
		return
	}
	kind, _ := c.str(ptr, obj, "type")
	if !slices.Contains(kinds, kind) {
		c.fail(ptr, "failed to match all allowed schemas")
		c.fail(ptr+"/type", "must be one of %v", kinds)
		return
	}
	t, present := c.str(ptr, obj, "text")
	if !present {
		c.fail(ptr, "missing required field: text")
		return
	}
	c.length(ptr+"/text", t, max)
	if _, has := obj["emoji"]; has && kind == "mrkdwn" {
		// Slack refuses emoji on mrkdwn (slack-go NewTextBlockObject drops it for that reason).
		c.fail(ptr+"/emoji", "emoji is only allowed on plain_text objects")
	}
}

func (c *blockCheck) requiredText(ptr string, obj map[string]json.RawMessage, key string, max int, kinds ...string) {
	raw, ok := obj[key]
	if !ok || string(raw) == "null" {
		c.fail(ptr, "missing required field: %s", key)
		return
	}
	c.text(ptr+"/"+key, raw, max, kinds...)
}

func (c *blockCheck) list(ptr string, obj map[string]json.RawMessage, key string, min, max int) []json.RawMessage {
	raw, ok := obj[key]
	if !ok || string(raw) == "null" {
		if min > 0 {
			c.fail(ptr, "missing required field: %s", key)
		}
		return nil
	}
	var items []json.RawMessage
	if json.Unmarshal(raw, &items) != nil {
		c.fail(ptr+"/"+key, "must provide an array")
		return nil
	}
	switch {
	case len(items) < min:
		c.fail(ptr+"/"+key, "must provide at least %d items", min)
	case len(items) > max:
		c.fail(ptr+"/"+key, "no more than %d items allowed", max)
	}
	return items
}

// typedObject checks that raw is an object with a "type" and returns both.
func (c *blockCheck) typedObject(ptr string, raw json.RawMessage) (map[string]json.RawMessage, string, bool) {
	obj, ok := asObject(raw)
	if !ok {
		c.fail(ptr, "must provide an object")
		return nil, "", false
	}
	kind, present := c.str(ptr, obj, "type")
	if !present {
		c.fail(ptr, "missing required field: type")
		return nil, "", false
	}
	return obj, kind, true
}

func (c *blockCheck) block(ptr string, raw json.RawMessage) {
	obj, kind, ok := c.typedObject(ptr, raw)
	if !ok {
		return
	}
	if !slices.Contains(knownBlockTypes, kind) {
		c.fail(ptr+"/type", "unsupported type: %s", kind)
		return
	}
	if id := c.optionalID(ptr, obj, "block_id"); id != "" {
		if c.blockIDs[id] {
			c.fail(ptr+"/block_id", "duplicate block_id: %s", id)
		}
		c.blockIDs[id] = true
	}
	switch kind {
	case "section":
		_, hasText := obj["text"]
		_, hasFields := obj["fields"]
		if !hasText && !hasFields {
			c.fail(ptr+"/type", "must define either `text` or `fields`")
		}
		if hasText {
			c.text(ptr+"/text", obj["text"], maxSectionText, "plain_text", "mrkdwn")
		}
		for i, f := range c.list(ptr, obj, "fields", 0, maxSectionFields) {
			c.text(fmt.Sprintf("%s/fields/%d", ptr, i), f, maxFieldText, "plain_text", "mrkdwn")
		}
		if acc, ok := obj["accessory"]; ok {
			c.element(ptr+"/accessory", acc, true, map[string]bool{})
		}
	case "actions":
		actionIDs := map[string]bool{}
		for i, el := range c.list(ptr, obj, "elements", 1, maxActionElements) {
			c.element(fmt.Sprintf("%s/elements/%d", ptr, i), el, false, actionIDs)
		}
	case "context":
		for i, el := range c.list(ptr, obj, "elements", 1, maxContextElems) {
			ep := fmt.Sprintf("%s/elements/%d", ptr, i)
			eo, ok := asObject(el)
			if !ok {
				c.fail(ep, "must provide an object")
				continue
			}
			if t, _ := c.str(ep, eo, "type"); t == "image" {
				c.image(ep, eo)
				continue
			}
			c.text(ep, el, maxSectionText, "plain_text", "mrkdwn")
		}
	case "header":
		c.requiredText(ptr, obj, "text", maxHeaderText, "plain_text")
	case "image":
		c.image(ptr, obj)
		if t, ok := obj["title"]; ok {
			c.text(ptr+"/title", t, maxAltText, "plain_text")
		}
	case "rich_text":
		c.list(ptr, obj, "elements", 1, 1<<20)
	case "markdown":
		t, present := c.str(ptr, obj, "text")
		if !present {
			c.fail(ptr, "missing required field: text")
		} else {
			c.length(ptr+"/text", t, maxMarkdownText)
		}
	}
}

func (c *blockCheck) image(ptr string, obj map[string]json.RawMessage) {
	u, hasURL := c.str(ptr, obj, "image_url")
	_, hasFile := obj["slack_file"]
	if !hasURL && !hasFile {
		c.fail(ptr, "must define either `image_url` or `slack_file`")
	}
	if hasURL {
		c.length(ptr+"/image_url", u, maxButtonURL)
	}
	alt, present := c.str(ptr, obj, "alt_text")
	if !present {
		c.fail(ptr, "missing required field: alt_text")
	} else {
		c.length(ptr+"/alt_text", alt, maxAltText)
	}
}

// element checks an interactive element (or, for an accessory, an image).
func (c *blockCheck) element(ptr string, raw json.RawMessage, accessory bool, actionIDs map[string]bool) {
	obj, kind, ok := c.typedObject(ptr, raw)
	if !ok {
		return
	}
	if accessory && kind == "image" {
		c.image(ptr, obj)
		return
	}
	if !slices.Contains(interactiveElements, kind) {
		c.fail(ptr+"/type", "unsupported type: %s", kind)
		return
	}
	if id := c.optionalID(ptr, obj, "action_id"); id != "" {
		if actionIDs[id] {
			c.fail(ptr+"/action_id", "duplicate action_id: %s", id)
		}
		actionIDs[id] = true
	}
	if conf, ok := obj["confirm"]; ok {
		c.confirm(ptr+"/confirm", conf)
	}
	if kind != "button" {
		return
	}
	c.requiredText(ptr, obj, "text", maxButtonText, "plain_text")
	if v, ok := c.str(ptr, obj, "value"); ok {
		c.length(ptr+"/value", v, maxButtonValue)
	}
	if u, ok := c.str(ptr, obj, "url"); ok {
		c.length(ptr+"/url", u, maxButtonURL)
	}
	if st, ok := c.str(ptr, obj, "style"); ok && st != "primary" && st != "danger" {
		c.fail(ptr+"/style", "must be one of [primary danger]")
	}
	if l, ok := c.str(ptr, obj, "accessibility_label"); ok {
		c.length(ptr+"/accessibility_label", l, maxButtonText)
	}
}

// confirm checks a confirmation dialog object.
func (c *blockCheck) confirm(ptr string, raw json.RawMessage) {
	obj, ok := asObject(raw)
	if !ok {
		c.fail(ptr, "must provide an object")
		return
	}
	c.requiredText(ptr, obj, "title", maxConfirmTitle, "plain_text")
	// Slack documents the dialog's text as a plain_text object.
	c.requiredText(ptr, obj, "text", maxConfirmText, "plain_text")
	c.requiredText(ptr, obj, "confirm", maxConfirmButton, "plain_text")
	c.requiredText(ptr, obj, "deny", maxConfirmButton, "plain_text")
	if st, ok := c.str(ptr, obj, "style"); ok && st != "primary" && st != "danger" {
		c.fail(ptr+"/style", "must be one of [primary danger]")
	}
}
