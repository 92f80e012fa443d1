package slacktest

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/slack-go/slack"
)

func TestPostThreadUpdateAndEphemeralReadBack(t *testing.T) {
	srv := newTestServer(t)
	api := webClient(srv)
	ctx := waitCtx(t)

	ch, anchorTS, err := api.PostMessageContext(ctx, DefaultChannelID, slack.MsgOptionText("supervisor: mute alice on conf1", false))
	if err != nil || ch != DefaultChannelID {
		t.Fatalf("post anchor: %q %v", ch, err)
	}
	_, replyTS, reply, err := api.PostMessageWithResponseContext(ctx, DefaultChannelID, slack.MsgOptionTS(anchorTS),
		slack.MsgOptionText("mute: true", false),
		slack.MsgOptionBlocks(slack.NewSectionBlock(slack.NewTextBlockObject("mrkdwn", "*mute*: true ✅", false, false), nil, nil)))
	if err != nil {
		t.Fatalf("post reply: %v", err)
	}
	if reply.ThreadTimestamp != anchorTS || reply.Timestamp != replyTS || reply.BotID != DefaultBotID {
		t.Errorf("reply message = ts %q thread %q bot %q", reply.Timestamp, reply.ThreadTimestamp, reply.BotID)
	}
	tsRE := regexp.MustCompile(`^\d{10}\.\d{6}$`)
	if !tsRE.MatchString(anchorTS) || !tsRE.MatchString(replyTS) || replyTS <= anchorTS {
		t.Errorf("ts values %q, %q: want Slack format and increasing", anchorTS, replyTS)
	}
	ephTS, err := api.PostEphemeralContext(ctx, DefaultChannelID, DefaultUserID, slack.MsgOptionText("only you", false))
	if err != nil || !tsRE.MatchString(ephTS) {
		t.Fatalf("post ephemeral: %q %v", ephTS, err)
	}
	if _, _, _, err := api.UpdateMessageContext(ctx, DefaultChannelID, anchorTS, slack.MsgOptionText("supervisor: mute alice on conf1 (done)", false)); err != nil {
		t.Fatalf("update: %v", err)
	}
	if _, _, err := api.PostMessageContext(ctx, DefaultChannelID, slack.MsgOptionTS(anchorTS), slack.MsgOptionBroadcast(),
		slack.MsgOptionText("broadcast", false)); err != nil {
		t.Fatalf("broadcast: %v", err)
	}

	top := srv.MessagesIn(DefaultChannelID)
	if len(top) != 2 || top[0].TS != anchorTS || top[0].Text != "supervisor: mute alice on conf1 (done)" || top[0].Edits != 1 ||
		!top[1].Broadcast {
		t.Errorf("MessagesIn = %+v, want the edited anchor and the broadcast reply", top)
	}
	replies := srv.ThreadReplies(DefaultChannelID, anchorTS)
	if len(replies) != 2 || replies[0].TS != replyTS || replies[0].VisibleText() != "*mute*: true ✅" || replies[0].Text != "mute: true" {
		t.Errorf("ThreadReplies = %+v", replies)
	}
	eph := srv.Ephemerals(DefaultUserID)
	if len(eph) != 1 || eph[0].TS != ephTS || eph[0].Text != "only you" || eph[0].Method != "chat.postEphemeral" {
		t.Errorf("Ephemerals = %+v", eph)
	}
	var methods []string
	for _, m := range srv.Messages() {
		methods = append(methods, m.Method)
	}
	want := []string{"chat.postMessage", "chat.postMessage", "chat.postEphemeral", "chat.update", "chat.postMessage"}
	if !slices.Equal(methods, want) {
		t.Errorf("Messages methods = %v, want %v", methods, want)
	}
	m, err := srv.WaitForMessage(ctx, func(m Message) bool { return m.ThreadTS == anchorTS })
	if err != nil || m.TS != replyTS {
		t.Errorf("WaitForMessage = %+v, %v; want the first reply", m, err)
	}
}

func TestWaitForMessageWaits(t *testing.T) {
	srv := newTestServer(t)
	go func() {
		time.Sleep(50 * time.Millisecond)
		_, _, _ = webClient(srv).PostMessage(DefaultChannelID, slack.MsgOptionText("later", false))
	}()
	m, err := srv.WaitForMessage(waitCtx(t), func(m Message) bool { return m.Text == "later" })
	if err != nil || m.Channel != DefaultChannelID {
		t.Errorf("WaitForMessage = %+v, %v", m, err)
	}
}

func jsonString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

func sectionJSON(text string) string {
	return `{"type":"section","text":{"type":"mrkdwn","text":` + jsonString(text) + `}}`
}

func buttonJSON(actionID, label, value string) string {
	return `{"type":"button","action_id":` + jsonString(actionID) + `,"text":{"type":"plain_text","text":` + jsonString(label) +
		`},"value":` + jsonString(value) + `}`
}

func actionsJSON(elements ...string) string {
	return `{"type":"actions","elements":[` + strings.Join(elements, ",") + `]}`
}

func nCopies(n int, f func(i int) string) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = f(i)
	}
	return out
}

const confirmOK = `{"title":{"type":"plain_text","text":"Sure?"},"text":{"type":"plain_text","text":"Mute everyone?"},"confirm":{"type":"plain_text","text":"Mute"},"deny":{"type":"plain_text","text":"Cancel"}}`

func TestBlockKitLimits(t *testing.T) {
	srv := newTestServer(t)
	api := webClient(srv)
	btn := func(i int) string { return buttonJSON(fmt.Sprintf("a%d", i), "B", "v") }
	ctxEl := func(int) string { return `{"type":"mrkdwn","text":"x"}` }
	tests := []struct {
		name    string
		blocks  []string
		wantErr string // "" = accepted
		wantMsg string // expected in response_metadata.messages
	}{
		{"section text at limit", []string{sectionJSON(repeat("a", 3000))}, "", ""},
		{"section text over limit", []string{sectionJSON(repeat("a", 3001))}, "invalid_blocks", "must be less than 3001 characters [json-pointer:/blocks/0/text/text]"},
		{"section text empty", []string{sectionJSON("")}, "invalid_blocks", "must be more than 0 characters [json-pointer:/blocks/0/text/text]"},
		{"section without text or fields", []string{`{"type":"section"}`}, "invalid_blocks", "must define either `text` or `fields` [json-pointer:/blocks/0/type]"},
		{"section with 11 fields", []string{`{"type":"section","fields":[` + strings.Join(nCopies(11, ctxEl), ",") + `]}`}, "invalid_blocks", "no more than 10 items allowed [json-pointer:/blocks/0/fields]"},
		{"50 blocks", nCopies(50, func(int) string { return `{"type":"divider"}` }), "", ""},
		{"51 blocks", nCopies(51, func(int) string { return `{"type":"divider"}` }), "invalid_blocks", "no more than 50 items allowed [json-pointer:/blocks]"},
		{"button text at limit", []string{actionsJSON(buttonJSON("a", repeat("b", 75), "v"))}, "", ""},
		{"button text over limit", []string{actionsJSON(buttonJSON("a", repeat("b", 76), "v"))}, "invalid_blocks", "must be less than 76 characters [json-pointer:/blocks/0/elements/0/text/text]"},
		{"button value over limit", []string{actionsJSON(buttonJSON("a", "B", repeat("v", 2001)))}, "invalid_blocks", "must be less than 2001 characters [json-pointer:/blocks/0/elements/0/value]"},
		{"action_id over limit", []string{actionsJSON(buttonJSON(repeat("a", 256), "B", "v"))}, "invalid_blocks", "must be less than 256 characters [json-pointer:/blocks/0/elements/0/action_id]"},
		{"duplicate action_id", []string{actionsJSON(buttonJSON("a", "B", "v"), buttonJSON("a", "C", "w"))}, "invalid_blocks", "duplicate action_id: a [json-pointer:/blocks/0/elements/1/action_id]"},
		{"button text mrkdwn", []string{actionsJSON(`{"type":"button","action_id":"a","text":{"type":"mrkdwn","text":"*B*"}}`)}, "invalid_blocks", "failed to match all allowed schemas [json-pointer:/blocks/0/elements/0/text]"},
		{"button without text", []string{actionsJSON(`{"type":"button","action_id":"a"}`)}, "invalid_blocks", "missing required field: text [json-pointer:/blocks/0/elements/0]"},
		{"button style", []string{actionsJSON(`{"type":"button","action_id":"a","style":"blue","text":{"type":"plain_text","text":"B"}}`)}, "invalid_blocks", "[json-pointer:/blocks/0/elements/0/style]"},
		{"block_id over limit", []string{`{"type":"divider","block_id":` + jsonString(repeat("b", 256)) + `}`}, "invalid_blocks", "must be less than 256 characters [json-pointer:/blocks/0/block_id]"},
		{"duplicate block_id", []string{`{"type":"divider","block_id":"x"}`, `{"type":"divider","block_id":"x"}`}, "invalid_blocks", "duplicate block_id: x [json-pointer:/blocks/1/block_id]"},
		{"actions with 25 elements", []string{actionsJSON(nCopies(25, btn)...)}, "", ""},
		{"actions with 26 elements", []string{actionsJSON(nCopies(26, btn)...)}, "invalid_blocks", "no more than 25 items allowed [json-pointer:/blocks/0/elements]"},
		{"actions with no elements", []string{actionsJSON()}, "invalid_blocks", "must provide at least 1 items [json-pointer:/blocks/0/elements]"},
		{"context with 10 elements", []string{`{"type":"context","elements":[` + strings.Join(nCopies(10, ctxEl), ",") + `]}`}, "", ""},
		{"context with 11 elements", []string{`{"type":"context","elements":[` + strings.Join(nCopies(11, ctxEl), ",") + `]}`}, "invalid_blocks", "no more than 10 items allowed [json-pointer:/blocks/0/elements]"},
		{"header at limit", []string{`{"type":"header","text":{"type":"plain_text","text":` + jsonString(repeat("h", 150)) + `}}`}, "", ""},
		{"header over limit", []string{`{"type":"header","text":{"type":"plain_text","text":` + jsonString(repeat("h", 151)) + `}}`}, "invalid_blocks", "must be less than 151 characters [json-pointer:/blocks/0/text/text]"},
		{"header mrkdwn", []string{`{"type":"header","text":{"type":"mrkdwn","text":"*h*"}}`}, "invalid_blocks", "failed to match all allowed schemas [json-pointer:/blocks/0/text]"},
		{"mrkdwn with emoji", []string{`{"type":"section","text":{"type":"mrkdwn","text":"x","emoji":true}}`}, "invalid_blocks", "[json-pointer:/blocks/0/text/emoji]"},
		{"unknown block type", []string{`{"type":"bogus"}`}, "invalid_blocks", "unsupported type: bogus [json-pointer:/blocks/0/type]"},
		{"block not an object", []string{`"divider"`}, "invalid_blocks", "must provide an object [json-pointer:/blocks/0]"},
		{"confirm ok", []string{actionsJSON(`{"type":"button","action_id":"a","text":{"type":"plain_text","text":"B"},"confirm":` + confirmOK + `}`)}, "", ""},
		{"confirm without deny", []string{actionsJSON(`{"type":"button","action_id":"a","text":{"type":"plain_text","text":"B"},"confirm":` +
			strings.Replace(confirmOK, `,"deny":{"type":"plain_text","text":"Cancel"}`, "", 1) + `}`)}, "invalid_blocks", "missing required field: deny [json-pointer:/blocks/0/elements/0/confirm]"},
		{"confirm title mrkdwn", []string{actionsJSON(`{"type":"button","action_id":"a","text":{"type":"plain_text","text":"B"},"confirm":` +
			strings.Replace(confirmOK, `"title":{"type":"plain_text"`, `"title":{"type":"mrkdwn"`, 1) + `}`)}, "invalid_blocks", "failed to match all allowed schemas [json-pointer:/blocks/0/elements/0/confirm/title]"},
		{"confirm text mrkdwn", []string{actionsJSON(`{"type":"button","action_id":"a","text":{"type":"plain_text","text":"B"},"confirm":` +
			strings.Replace(confirmOK, `"text":{"type":"plain_text","text":"Mute everyone?"}`, `"text":{"type":"mrkdwn","text":"Mute *everyone*?"}`, 1) + `}`)}, "invalid_blocks", "failed to match all allowed schemas [json-pointer:/blocks/0/elements/0/confirm/text]"},
		{"confirm not an object", []string{actionsJSON(`{"type":"button","action_id":"a","text":{"type":"plain_text","text":"B"},"confirm":"yes"}`)}, "invalid_blocks", "must provide an object [json-pointer:/blocks/0/elements/0/confirm]"},
		{"image", []string{`{"type":"image","image_url":"https://example.com/a.png","alt_text":"a"}`}, "", ""},
		{"image without alt_text", []string{`{"type":"image","image_url":"https://example.com/a.png"}`}, "invalid_blocks", "missing required field: alt_text [json-pointer:/blocks/0]"},
		{"image without url", []string{`{"type":"image","alt_text":"a"}`}, "invalid_blocks", "must define either `image_url` or `slack_file` [json-pointer:/blocks/0]"},
		{"context with an image", []string{`{"type":"context","elements":[{"type":"image","image_url":"https://example.com/a.png","alt_text":"a"},{"type":"plain_text","text":"x"}]}`}, "", ""},
		{"select element", []string{actionsJSON(`{"type":"static_select","action_id":"s","placeholder":{"type":"plain_text","text":"Pick"},"options":[{"text":{"type":"plain_text","text":"a"},"value":"a"}]}`)}, "", ""},
		{"unknown element", []string{actionsJSON(`{"type":"slider","action_id":"s"}`)}, "invalid_blocks", "unsupported type: slider [json-pointer:/blocks/0/elements/0/type]"},
		{"rich_text", []string{`{"type":"rich_text","elements":[{"type":"rich_text_section","elements":[{"type":"text","text":"hi"}]}]}`}, "", ""},
		{"section accessory button over limit", []string{`{"type":"section","text":{"type":"mrkdwn","text":"x"},"accessory":` + buttonJSON("a", repeat("b", 76), "v") + `}`}, "invalid_blocks", "[json-pointer:/blocks/0/accessory/text/text]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			blocks := make([]slack.Block, len(tt.blocks))
			for i, b := range tt.blocks {
				blocks[i] = rawBlock(b)
			}
			_, _, err := api.PostMessage(DefaultChannelID, slack.MsgOptionText("fallback", false), slack.MsgOptionBlocks(blocks...))
			if got := slackErrCode(err); got != tt.wantErr {
				t.Fatalf("error = %q (%v), want %q", got, err, tt.wantErr)
			}
			if tt.wantErr == "" {
				return
			}
			var se slack.SlackErrorResponse
			errors.As(err, &se)
			joined := strings.Join(se.ResponseMetadata.Messages, "\n")
			if !strings.Contains(joined, tt.wantMsg) || !strings.HasPrefix(joined, "[ERROR] ") {
				t.Errorf("messages:\n%s\nwant one containing %q", joined, tt.wantMsg)
			}
		})
	}

	t.Run("blocks that are not a JSON array", func(t *testing.T) {
		resp, err := http.PostForm(srv.APIURL()+"chat.postMessage", url.Values{
			"token": {srv.BotToken()}, "channel": {DefaultChannelID}, "blocks": {`{"blocks":[]}`},
		})
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var body map[string]any
		if err := jsonDecode(resp.Body, &body); err != nil || body["error"] != "invalid_blocks_format" {
			t.Errorf("body = %v (%v), want invalid_blocks_format", body, err)
		}
	})
}

func TestWebAPIRejections(t *testing.T) {
	srv := newTestServer(t)
	srv.AddChannel("C0PUBNOBOT", "lobby", ChannelWithoutBot())
	srv.AddChannel("C0PRIVNOBOT", "secret", ChannelPrivate(), ChannelWithoutBot())
	srv.AddChannel("D0DMNOBOT", "", ChannelWithoutBot(), ChannelMembers(DefaultUserID, "U0OTHER"))
	srv.AddChannel("C0ARCHIVED", "old", ChannelArchived())
	srv.AddChannel("C0OTHER", "other")
	api := webClient(srv)
	_, anchorTS, err := api.PostMessage(DefaultChannelID, slack.MsgOptionText("anchor", false))
	if err != nil {
		t.Fatal(err)
	}
	_, replyTS, err := api.PostMessage(DefaultChannelID, slack.MsgOptionTS(anchorTS), slack.MsgOptionText("reply", false))
	if err != nil {
		t.Fatal(err)
	}
	ephTS, err := api.PostEphemeral(DefaultChannelID, DefaultUserID, slack.MsgOptionText("eph", false))
	if err != nil {
		t.Fatal(err)
	}
	userTS := srv.AddUserMessage(DefaultChannelID, DefaultUserID, "typed by a human")
	text := slack.MsgOptionText("hello", false)
	clientWith := func(token string) *slack.Client {
		return slack.New(token, slack.OptionAPIURL(srv.APIURL()), slack.OptionLog(quietLog))
	}
	post := func(channel string, opts ...slack.MsgOption) func() error {
		return func() error { _, _, err := api.PostMessage(channel, opts...); return err }
	}
	update := func(channel, ts string, opts ...slack.MsgOption) func() error {
		return func() error { _, _, _, err := api.UpdateMessage(channel, ts, opts...); return err }
	}

	tests := []struct {
		name    string
		call    func() error
		want    string
		wantMsg string
	}{
		{"wrong bot token", func() error { _, _, err := clientWith("xoxb-wrong").PostMessage(DefaultChannelID, text); return err }, "invalid_auth", ""},
		{"app token on a bot method", func() error { _, _, err := clientWith(srv.AppToken()).PostMessage(DefaultChannelID, text); return err }, "not_allowed_token_type", ""},
		{"no token", func() error { _, _, err := clientWith("").PostMessage(DefaultChannelID, text); return err }, "not_authed", ""},
		{"auth.test wrong token", func() error { _, err := clientWith("xoxb-wrong").AuthTest(); return err }, "invalid_auth", ""},
		{"unknown channel", post("C0NOPE", text), "channel_not_found", ""},
		{"public channel without the bot", post("C0PUBNOBOT", text), "not_in_channel", ""},
		{"private channel without the bot", post("C0PRIVNOBOT", text), "channel_not_found", ""},
		{"DM without the bot", post("D0DMNOBOT", text), "channel_not_found", ""},
		{"archived channel", post("C0ARCHIVED", text), "is_archived", ""},
		{"no text", post(DefaultChannelID), "no_text", ""},
		{"empty text", post(DefaultChannelID, slack.MsgOptionText("", false)), "no_text", ""},
		{"empty blocks and no text", post(DefaultChannelID, slack.MsgOptionBlocks()), "no_text", ""},
		{"malformed thread_ts", post(DefaultChannelID, text, slack.MsgOptionTS("0")), "invalid_thread_ts", "0 is not a valid thread_ts"},
		{"unknown thread_ts", post(DefaultChannelID, text, slack.MsgOptionTS("1700000000.000001")), "thread_not_found", ""},
		{"thread_ts of a reply", post(DefaultChannelID, text, slack.MsgOptionTS(replyTS)), "thread_not_found", ""},
		{"thread_ts of an ephemeral", post(DefaultChannelID, text, slack.MsgOptionTS(ephTS)), "thread_not_found", ""},
		{"thread_ts from another channel", post("C0OTHER", text, slack.MsgOptionTS(anchorTS)), "thread_not_found", ""},
		{"ephemeral to an unknown user", func() error {
			_, err := api.PostEphemeral(DefaultChannelID, "U0NOPE", text)
			return err
		}, "user_not_in_channel", ""},
		{"ephemeral to a user not in the channel", func() error {
			_, err := api.PostEphemeral(DefaultChannelID, "U0OTHER", text)
			return err
		}, "user_not_in_channel", ""},
		{"ephemeral in a channel without the bot", func() error {
			_, err := api.PostEphemeral("C0PUBNOBOT", DefaultUserID, text)
			return err
		}, "not_in_channel", ""},
		{"update unknown ts", update(DefaultChannelID, "1700000000.000001", text), "message_not_found", ""},
		{"update in unknown channel", update("C0NOPE", anchorTS, text), "channel_not_found", ""},
		{"update an ephemeral", update(DefaultChannelID, ephTS, text), "message_not_found", ""},
		{"update a human's message", update(DefaultChannelID, userTS, text), "cant_update_message", ""},
		{"update with invalid blocks", update(DefaultChannelID, anchorTS, slack.MsgOptionBlocks(rawBlock(`{"type":"bogus"}`))), "invalid_blocks", "unsupported type"},
		{"update with no text", update(DefaultChannelID, anchorTS), "no_text", ""},
		{"unknown user", func() error { _, err := api.GetUserInfo("U0NOPE"); return err }, "user_not_found", ""},
		{"unknown user group", func() error { _, err := api.GetUserGroupMembers("S0NOPE"); return err }, "no_such_subteam", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.call()
			if got := slackErrCode(err); got != tt.want {
				t.Fatalf("error = %q, want %q", got, tt.want)
			}
			var se slack.SlackErrorResponse
			errors.As(err, &se)
			if joined := strings.Join(se.ResponseMetadata.Messages, "\n"); !strings.Contains(joined, tt.wantMsg) {
				t.Errorf("messages %q, want %q", joined, tt.wantMsg)
			}
		})
	}

	t.Run("rejected calls post nothing", func(t *testing.T) {
		if got := srv.MessagesIn("C0PUBNOBOT"); len(got) != 0 {
			t.Errorf("messages in C0PUBNOBOT: %+v", got)
		}
		if got := len(srv.MessagesIn(DefaultChannelID)); got != 2 { // anchor + the human's message
			t.Errorf("%d messages in %s, want 2", got, DefaultChannelID)
		}
		calls := srv.Calls()
		var failed int
		for _, c := range calls {
			if c.Error != "" {
				failed++
			}
			if _, ok := c.Params["token"]; ok {
				t.Errorf("call %s records the token", c.Method)
			}
		}
		if failed != len(tests) {
			t.Errorf("%d failed calls recorded, want %d", failed, len(tests))
		}
	})

	t.Run("a user who joins can get ephemerals", func(t *testing.T) {
		srv.JoinChannel(DefaultChannelID, "U0OTHER")
		if _, err := api.PostEphemeral(DefaultChannelID, "U0OTHER", text); err != nil {
			t.Errorf("after JoinChannel: %v", err)
		}
	})

	t.Run("JSON body must carry the token in the header", func(t *testing.T) {
		body := `{"token":"` + srv.BotToken() + `","channel":"` + DefaultChannelID + `","text":"hi"}`
		got, err := postJSONWithBearer(srv.APIURL()+"chat.postMessage", "", body)
		if err != nil || got["error"] != "not_authed" {
			t.Errorf("token in JSON body: %v %v, want not_authed", got, err)
		}
		got, err = postJSONWithBearer(srv.APIURL()+"chat.postMessage", srv.BotToken(), body)
		if err != nil || got["ok"] != true {
			t.Errorf("bearer + JSON body: %v %v, want ok", got, err)
		}
	})

	t.Run("chat:write.public allows public channels only", func(t *testing.T) {
		pub := newTestServer(t, WithChatWritePublic())
		pub.AddChannel("C0PUBNOBOT", "lobby", ChannelWithoutBot())
		pub.AddChannel("C0PRIVNOBOT", "secret", ChannelPrivate(), ChannelWithoutBot())
		papi := webClient(pub)
		if _, _, err := papi.PostMessage("C0PUBNOBOT", text); err != nil {
			t.Errorf("public channel: %v", err)
		}
		if _, _, err := papi.PostMessage("C0PRIVNOBOT", text); slackErrCode(err) != "channel_not_found" {
			t.Errorf("private channel: %v, want channel_not_found", err)
		}
	})
}

func TestInjectedFailures(t *testing.T) {
	tests := []struct {
		name    string
		failure Failure
		check   func(t *testing.T, err error)
	}{
		{
			name: "429 with Retry-After", failure: Failure{Status: 429, RetryAfter: 2},
			check: func(t *testing.T, err error) {
				var rl *slack.RateLimitedError
				if !errors.As(err, &rl) || rl.RetryAfter != 2*time.Second {
					t.Errorf("error = %v, want *slack.RateLimitedError RetryAfter 2s", err)
				}
			},
		},
		{
			name: "429 without Retry-After", failure: Failure{Status: 429},
			check: func(t *testing.T, err error) {
				var sc slack.StatusCodeError
				if !errors.As(err, &sc) || sc.Code != 429 {
					t.Errorf("error = %v, want StatusCodeError 429", err)
				}
			},
		},
		{
			name: "500", failure: Failure{Status: 500},
			check: func(t *testing.T, err error) {
				var sc slack.StatusCodeError
				if !errors.As(err, &sc) || sc.Code != 500 {
					t.Errorf("error = %v, want StatusCodeError 500", err)
				}
			},
		},
		{
			name: "slack error", failure: Failure{Error: "fatal_error"},
			check: func(t *testing.T, err error) {
				if slackErrCode(err) != "fatal_error" {
					t.Errorf("error = %v, want fatal_error", err)
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newTestServer(t)
			api := webClient(srv)
			srv.FailNext("chat.postMessage", 2, tt.failure)
			for range 2 {
				_, _, err := api.PostMessage(DefaultChannelID, slack.MsgOptionText("hi", false))
				tt.check(t, err)
			}
			if _, _, err := api.PostMessage(DefaultChannelID, slack.MsgOptionText("hi", false)); err != nil {
				t.Errorf("third call: %v, want success", err)
			}
			if got := srv.CallCount("chat.postMessage"); got != 3 {
				t.Errorf("CallCount = %d, want 3", got)
			}
			if got := len(srv.Messages()); got != 1 {
				t.Errorf("%d messages, want 1", got)
			}
		})
	}

	t.Run("FailAlways until cleared", func(t *testing.T) {
		srv := newTestServer(t)
		api := webClient(srv)
		srv.FailAlways("auth.test", Failure{Status: 503})
		for range 3 {
			if _, err := api.AuthTest(); err == nil {
				t.Fatal("auth.test succeeded during an outage")
			}
		}
		srv.ClearFailures("auth.test")
		if _, err := api.AuthTest(); err != nil {
			t.Errorf("after ClearFailures: %v", err)
		}
	})
}

func TestUsersGroupsAndAuth(t *testing.T) {
	srv := newTestServer(t)
	srv.AddUser("U0AGENT1", "agent.one")
	srv.SetUserGroup("S0SUPERS", DefaultUserID, "U0AGENT1")
	api := webClient(srv)

	u, err := api.GetUserInfo("U0AGENT1")
	if err != nil || u.ID != "U0AGENT1" || u.Name != "agent.one" || u.TeamID != srv.TeamID() {
		t.Errorf("GetUserInfo = %+v, %v", u, err)
	}
	us, err := api.GetUsersInfo(DefaultUserID, "U0AGENT1")
	if err != nil || len(*us) != 2 || (*us)[0].Name != DefaultUserName {
		t.Errorf("GetUsersInfo = %+v, %v", us, err)
	}
	members, err := api.GetUserGroupMembers("S0SUPERS")
	if err != nil || !slices.Equal(members, []string{DefaultUserID, "U0AGENT1"}) {
		t.Errorf("GetUserGroupMembers = %v, %v", members, err)
	}
	srv.FailUserGroups(1)
	var sc slack.StatusCodeError
	if _, err := api.GetUserGroupMembers("S0SUPERS"); !errors.As(err, &sc) || sc.Code != 503 {
		t.Errorf("during outage: %v, want StatusCodeError 503", err)
	}
	if members, err := api.GetUserGroupMembers("S0SUPERS"); err != nil || len(members) != 2 {
		t.Errorf("after outage: %v, %v", members, err)
	}
	at, err := api.AuthTest()
	if err != nil || at.UserID != srv.BotUserID() || at.BotID != DefaultBotID || at.TeamID != srv.TeamID() || at.User != DefaultBotUserName {
		t.Errorf("AuthTest = %+v, %v", at, err)
	}
}

func TestResponseURL(t *testing.T) {
	srv := newTestServer(t)
	api := webClient(srv)
	_, anchorTS, err := api.PostMessage(DefaultChannelID, slack.MsgOptionText("anchor", false),
		slack.MsgOptionBlocks(buttonsBlocks("b", button("mpc.unmute", "unmute conf1 alice", "Unmute"))))
	if err != nil {
		t.Fatal(err)
	}
	hookURL := func(envelopeID string) string {
		rec, _ := srv.Envelope(envelopeID)
		var frame struct {
			Payload struct {
				ResponseURL string `json:"response_url"`
			} `json:"payload"`
		}
		_ = json.Unmarshal(rec.Frame, &frame)
		return frame.Payload.ResponseURL
	}

	// A connected client, so that commands are dispatched (it never acks: no one reads).
	dialRaw(t, srv).read(t)

	t.Run("slash command replies", func(t *testing.T) {
		u := hookURL(srv.SendSlashCommand(SlashCommand{Text: "help"}))
		if _, _, err := api.PostMessage("", slack.MsgOptionResponseURL(u, ""), slack.MsgOptionText("help text", false)); err != nil {
			t.Fatalf("ephemeral reply: %v", err)
		}
		if _, _, err := api.PostMessage("", slack.MsgOptionResponseURL(u, slack.ResponseTypeInChannel), slack.MsgOptionText("for everyone", false)); err != nil {
			t.Fatalf("in_channel reply: %v", err)
		}
		if _, _, err := api.PostMessage("", slack.MsgOptionResponseURL(u, slack.ResponseTypeInChannel), slack.MsgOptionTS(anchorTS),
			slack.MsgOptionText("in the thread", false)); err != nil {
			t.Fatalf("threaded reply: %v", err)
		}
		eph := srv.Ephemerals(DefaultUserID)
		if len(eph) != 1 || eph[0].Text != "help text" || eph[0].Method != "response_url" || eph[0].Channel != DefaultChannelID {
			t.Errorf("ephemerals = %+v", eph)
		}
		top := srv.MessagesIn(DefaultChannelID)
		if len(top) != 2 || top[1].Text != "for everyone" || top[1].ResponseType != "in_channel" {
			t.Errorf("channel = %+v", top)
		}
		if r := srv.ThreadReplies(DefaultChannelID, anchorTS); len(r) != 1 || r[0].Text != "in the thread" {
			t.Errorf("thread = %+v", r)
		}
		// Uses 4 and 5 succeed; the 6th is refused.
		for i := 4; i <= 6; i++ {
			_, _, err := api.PostMessage("", slack.MsgOptionResponseURL(u, ""), slack.MsgOptionText(fmt.Sprintf("use %d", i), false))
			var sc slack.StatusCodeError
			switch {
			case i <= 5 && err != nil:
				t.Errorf("use %d: %v", i, err)
			case i == 6 && (!errors.As(err, &sc) || sc.Code != http.StatusNotFound):
				t.Errorf("use 6: %v, want StatusCodeError 404", err)
			}
		}
		if calls := srv.Calls(); calls[len(calls)-1].Error != "used_url" {
			t.Errorf("last call = %+v, want used_url", calls[len(calls)-1])
		}
	})

	t.Run("replace and delete the clicked message", func(t *testing.T) {
		id, err := srv.ClickButton(DefaultUserID, DefaultChannelID, anchorTS, "mpc.unmute")
		if err != nil {
			t.Fatal(err)
		}
		u := hookURL(id)
		if _, _, err := api.PostMessage("", slack.MsgOptionReplaceOriginal(u), slack.MsgOptionText("unmuted ✅", false)); err != nil {
			t.Fatalf("replace_original: %v", err)
		}
		m, _ := srv.WaitForMessage(waitCtx(t), func(m Message) bool { return m.ReplaceOriginal })
		if m.TS != anchorTS || m.Text != "unmuted ✅" || m.Blocks != nil || m.EnvelopeID != id {
			t.Errorf("replace logged as %+v", m)
		}
		if top := srv.MessagesIn(DefaultChannelID); top[0].TS != anchorTS || top[0].Text != "unmuted ✅" || top[0].Edits != 1 {
			t.Errorf("anchor now %+v", top[0])
		}
		if _, _, err := api.PostMessage("", slack.MsgOptionDeleteOriginal(u)); err != nil {
			t.Fatalf("delete_original: %v", err)
		}
		for _, m := range srv.MessagesIn(DefaultChannelID) {
			if m.TS == anchorTS {
				t.Errorf("anchor still visible after delete_original: %+v", m)
			}
		}
	})

	t.Run("invalid content", func(t *testing.T) {
		u := hookURL(srv.SendSlashCommand(SlashCommand{Text: "help"}))
		_, _, err := api.PostMessage("", slack.MsgOptionResponseURL(u, ""))
		if slackErrCode(err) != "no_text" {
			t.Errorf("empty reply: %v, want no_text", err)
		}
		_, _, err = api.PostMessage("", slack.MsgOptionResponseURL(u, ""), slack.MsgOptionBlocks(rawBlock(sectionJSON(repeat("a", 3001)))))
		if slackErrCode(err) != "invalid_blocks" {
			t.Errorf("long section: %v, want invalid_blocks", err)
		}
		if _, _, err := api.PostMessage("", slack.MsgOptionResponseURL(srv.URL()+"/response/nope", ""), slack.MsgOptionText("x", false)); err == nil {
			t.Error("unknown response_url accepted")
		}
	})

	t.Run("expires", func(t *testing.T) {
		short := newTestServer(t, WithResponseURLLimits(5, 50*time.Millisecond))
		sapi := webClient(short)
		dialRaw(t, short).read(t)
		rec, _ := short.Envelope(short.SendSlashCommand(SlashCommand{Text: "help"}))
		var frame struct {
			Payload struct {
				ResponseURL string `json:"response_url"`
			} `json:"payload"`
		}
		_ = json.Unmarshal(rec.Frame, &frame)
		time.Sleep(100 * time.Millisecond) // past the lifetime, whatever the machine's speed
		_, _, err := sapi.PostMessage("", slack.MsgOptionResponseURL(frame.Payload.ResponseURL, ""), slack.MsgOptionText("late", false))
		var sc slack.StatusCodeError
		if !errors.As(err, &sc) || sc.Code != http.StatusNotFound {
			t.Errorf("expired response_url: %v, want 404", err)
		}
		if calls := short.Calls(); calls[len(calls)-1].Error != "expired_url" {
			t.Errorf("last call = %+v, want expired_url", calls[len(calls)-1])
		}
	})

	t.Run("failure injection", func(t *testing.T) {
		u := hookURL(srv.SendSlashCommand(SlashCommand{Text: "help"}))
		srv.FailNext("response_url", 1, Failure{Status: 500})
		var sc slack.StatusCodeError
		if _, _, err := api.PostMessage("", slack.MsgOptionResponseURL(u, ""), slack.MsgOptionText("x", false)); !errors.As(err, &sc) || sc.Code != 500 {
			t.Errorf("injected failure: %v, want 500", err)
		}
		if _, _, err := api.PostMessage("", slack.MsgOptionResponseURL(u, ""), slack.MsgOptionText("x", false)); err != nil {
			t.Errorf("after the failure: %v", err)
		}
	})
}

func TestMessageRendering(t *testing.T) {
	m := Message{
		Text: "fallback",
		Blocks: json.RawMessage(`[` + `{"type":"header","text":{"type":"plain_text","text":"Mute"}},` +
			sectionJSON("*alice*: muted") + `,` +
			`{"type":"section","fields":[{"type":"mrkdwn","text":"a"},{"type":"plain_text","text":"b"}],"block_id":"s","accessory":` + buttonJSON("acc", "More", "m") + `},` +
			`{"type":"context","elements":[{"type":"mrkdwn","text":"api_id 123"}]},` +
			actionsJSON(buttonJSON("mpc.unmute", "Unmute", "unmute conf1 alice")) + `,` +
			`{"type":"rich_text","elements":[{"type":"rich_text_section","elements":[{"type":"text","text":"rich "},{"type":"text","text":"text"}]}]}]`),
	}
	want := "Mute\n*alice*: muted\na\nb\n[More]\napi_id 123\n[Unmute]\nrich text"
	if got := m.VisibleText(); got != want {
		t.Errorf("VisibleText =\n%s\nwant\n%s", got, want)
	}
	buttons := m.Buttons()
	if len(buttons) != 2 || buttons[0] != (Button{ActionID: "acc", BlockID: "s", Text: "More", Value: "m"}) ||
		buttons[1].ActionID != "mpc.unmute" || buttons[1].Value != "unmute conf1 alice" {
		t.Errorf("Buttons = %+v", buttons)
	}
	if got := (Message{Text: "plain"}).VisibleText(); got != "plain" {
		t.Errorf("VisibleText without blocks = %q", got)
	}
}

func TestMentions(t *testing.T) {
	tests := []struct {
		name string
		msg  Message
		want int
	}{
		{"escaped echo", Message{Text: "&lt;!channel&gt; mute"}, 0},
		{"raw channel ping", Message{Text: "<!channel> mute"}, 1},
		{"user and subteam", Message{Text: "<@U0SUPER1|sup> and <!subteam^S0SUPERS>"}, 2},
		{"mrkdwn block", Message{Blocks: json.RawMessage(`[` + sectionJSON("<!here> hi") + `]`)}, 1},
		{"plain_text block", Message{Blocks: json.RawMessage(`[{"type":"header","text":{"type":"plain_text","text":"<!here>"}}]`)}, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.msg.Mentions(); len(got) != tt.want {
				t.Errorf("Mentions = %q, want %d", got, tt.want)
			}
		})
	}
}

func TestValidateBlocks(t *testing.T) {
	tests := []struct {
		name     string
		blocks   string
		wantCode string
		wantMsg  string
	}{
		{"valid", `[` + sectionJSON("hi") + `,` + actionsJSON(buttonJSON("a", "Go", "v")) + `]`, "", ""},
		{"empty array", `[]`, "", ""},
		{"too long", `[` + sectionJSON(repeat("a", 3001)) + `]`, "invalid_blocks", "[json-pointer:/blocks/0/text/text]"},
		{"not an array", `{"blocks":[]}`, "invalid_blocks_format", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := ValidateBlocks([]byte(tt.blocks))
			var be *BlocksError
			switch {
			case tt.wantCode == "" && err != nil:
				t.Errorf("ValidateBlocks = %v, want nil", err)
			case tt.wantCode != "" && (!errors.As(err, &be) || be.Code != tt.wantCode || !strings.Contains(err.Error(), tt.wantMsg)):
				t.Errorf("ValidateBlocks = %v, want %s mentioning %q", err, tt.wantCode, tt.wantMsg)
			}
		})
	}
}
