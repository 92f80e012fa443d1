package slacktest

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/slack-go/slack"
	"github.com/slack-go/slack/slackevents"
	"github.com/slack-go/slack/socketmode"
)

func homeRequest(blocks ...slack.Block) slack.HomeTabViewRequest {
	return slack.HomeTabViewRequest{Type: slack.VTHomeTab, Blocks: slack.Blocks{BlockSet: blocks}}
}

func publish(ctx context.Context, api *slack.Client, user, hash string, view slack.HomeTabViewRequest) (*slack.ViewResponse, error) {
	req := slack.PublishViewContextRequest{UserID: user, View: view}
	if hash != "" {
		req.Hash = &hash
	}
	return api.PublishViewContext(ctx, req)
}

func TestViewsPublish(t *testing.T) {
	t.Parallel()
	srv := newTestServer(t)
	api := webClient(srv)
	ctx := waitCtx(t)
	first := homeRequest(
		slack.NewSectionBlock(slack.NewTextBlockObject("mrkdwn", "*Live calls*", false, false), nil, nil),
		buttonsBlocks("calls", button("mpc.status", "status conf1", "conf1"), button("mpc.status2", "status conf2", "conf2")))
	first.PrivateMetadata, first.CallbackID = "page=1", "home"
	resp, err := publish(ctx, api, DefaultUserID, "", first)
	if err != nil {
		t.Fatalf("publish: %v", err)
	}
	v1, ok := srv.HomeView(DefaultUserID)
	if !ok || resp.View.ID != v1.ID || resp.View.Hash != v1.Hash || v1.ID == "" || v1.Hash == "" {
		t.Fatalf("answer %+v, HomeView %+v: want the same new id and hash", resp.View, v1)
	}
	if resp.View.Type != slack.VTHomeTab || resp.View.PrivateMetadata != "page=1" || resp.View.CallbackID != "home" ||
		resp.View.AppID != srv.AppID() || resp.View.BotID != DefaultBotID || resp.View.TeamID != srv.TeamID() ||
		len(resp.View.Blocks.BlockSet) != 2 {
		t.Errorf("view = %+v", resp.View)
	}
	if got := v1.VisibleText(); got != "*Live calls*\n[conf1] [conf2]" || len(v1.Buttons()) != 2 {
		t.Errorf("VisibleText = %q, buttons %+v", got, v1.Buttons())
	}

	// A publish quoting the current hash replaces the view; an old hash conflicts.
	second := homeRequest(slack.NewSectionBlock(slack.NewTextBlockObject("plain_text", "No live calls", false, false), nil, nil))
	resp2, err := publish(ctx, api, DefaultUserID, v1.Hash, second)
	if err != nil {
		t.Fatalf("publish with the current hash: %v", err)
	}
	if resp2.View.ID == v1.ID || resp2.View.Hash == v1.Hash {
		t.Errorf("second view %s/%s, want a new id and hash", resp2.View.ID, resp2.View.Hash)
	}
	if _, err := publish(ctx, api, DefaultUserID, v1.Hash, second); slackErrCode(err) != "hash_conflict" {
		t.Errorf("publish with a stale hash: %v, want hash_conflict", err)
	}
	if history := srv.HomeViews(DefaultUserID); len(history) != 2 || history[0].ID != v1.ID || history[1].ID != resp2.View.ID {
		t.Errorf("HomeViews = %+v, want the two published views", history)
	}
	if v, err := srv.WaitHomeView(ctx, DefaultUserID, func(v HomeView) bool { return strings.Contains(v.VisibleText(), "No live") }); err != nil || v.ID != resp2.View.ID {
		t.Errorf("WaitHomeView = %+v, %v", v, err)
	}
	if _, ok := srv.HomeView("U0NOBODY"); ok {
		t.Error("HomeView of a user with none published reported one")
	}
}

func TestViewsPublishRejections(t *testing.T) {
	t.Parallel()
	srv := newTestServer(t)
	srv.AddUser("U0AGENT1", "agent.one")
	divider := func(int) string { return `{"type":"divider"}` }
	view := func(blocks ...string) string {
		return `{"type":"home","blocks":[` + strings.Join(blocks, ",") + `]}`
	}
	body := func(user, view string) string {
		return `{"user_id":` + jsonString(user) + `,"view":` + view + `}`
	}
	if resp, err := postJSONWithBearer(srv.APIURL()+"views.publish", srv.BotToken(),
		`{"user_id":"U0AGENT1","view":{"type":"home","external_id":"ext-1","blocks":[]}}`); err != nil || resp["ok"] != true {
		t.Fatalf("publish for U0AGENT1: %v %v", resp, err)
	}
	tests := []struct {
		name    string
		token   string
		body    string
		want    string
		wantMsg string
	}{
		{"100 blocks", "", body(DefaultUserID, view(nCopies(100, divider)...)), "", ""},
		{"101 blocks", "", body(DefaultUserID, view(nCopies(101, divider)...)), "invalid_arguments", "no more than 100 items allowed [json-pointer:/view/blocks]"},
		{"invalid block", "", body(DefaultUserID, view(`{"type":"header","text":{"type":"mrkdwn","text":"*h*"}}`)), "invalid_arguments", "[json-pointer:/view/blocks/0/text]"},
		{"confirm text mrkdwn", "", body(DefaultUserID, view(actionsJSON(`{"type":"button","action_id":"a","text":{"type":"plain_text","text":"B"},"confirm":`+
			strings.Replace(confirmOK, `"text":{"type":"plain_text","text":"Mute everyone?"}`, `"text":{"type":"mrkdwn","text":"*all*"}`, 1)+`}`))),
			"invalid_arguments", "[json-pointer:/view/blocks/0/elements/0/confirm/text]"},
		{"modal type", "", body(DefaultUserID, `{"type":"modal","blocks":[]}`), "invalid_arguments", "[json-pointer:/view/type]"},
		{"no blocks", "", body(DefaultUserID, `{"type":"home"}`), "invalid_arguments", "missing required field: blocks"},
		{"null blocks (slack-go's empty Blocks)", "", body(DefaultUserID, `{"type":"home","blocks":null}`), "invalid_arguments", "missing required field: blocks"},
		{"view not an object", "", body(DefaultUserID, `"home"`), "invalid_arguments", ""},
		{"no view", "", `{"user_id":"` + DefaultUserID + `"}`, "invalid_arguments", "missing required field: view"},
		{"no user", "", `{"view":` + view() + `}`, "invalid_arguments", "invalid `user_id`"},
		{"unknown user", "", body("U0NOBODY", view()), "user_not_found", ""},
		{"private_metadata too long", "", body(DefaultUserID, `{"type":"home","blocks":[],"private_metadata":`+jsonString(repeat("m", 3001))+`}`),
			"invalid_arguments", "[json-pointer:/view/private_metadata]"},
		{"external_id of another user's view", "", body(DefaultUserID, `{"type":"home","blocks":[],"external_id":"ext-1"}`), "duplicate_external_id", ""},
		{"too large", "", body(DefaultUserID, view(nCopies(90, func(int) string { return sectionJSON(repeat("x", 3000)) })...)), "view_too_large", ""},
		{"app token", srv.AppToken(), body(DefaultUserID, view()), "not_allowed_token_type", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			token := tt.token
			if token == "" {
				token = srv.BotToken()
			}
			resp, err := postJSONWithBearer(srv.APIURL()+"views.publish", token, tt.body)
			if err != nil {
				t.Fatal(err)
			}
			got, _ := resp["error"].(string)
			if got != tt.want || (tt.want == "") != (resp["ok"] == true) {
				t.Fatalf("answer %v, want error %q", resp, tt.want)
			}
			meta, _ := json.Marshal(resp["response_metadata"])
			if !strings.Contains(string(meta), tt.wantMsg) {
				t.Errorf("response_metadata %s, want %q", meta, tt.wantMsg)
			}
		})
	}

	t.Run("home tab off", func(t *testing.T) {
		off := newTestServer(t, WithHomeTabDisabled())
		api := webClient(off)
		view := homeRequest(slack.NewDividerBlock())
		if _, err := publish(waitCtx(t), api, DefaultUserID, "", view); slackErrCode(err) != "not_enabled" {
			t.Errorf("publish with the Home tab off: %v, want not_enabled", err)
		}
		off.SetHomeTab(true)
		if _, err := publish(waitCtx(t), api, DefaultUserID, "", view); err != nil {
			t.Errorf("publish after SetHomeTab(true): %v", err)
		}
		if n := len(off.HomeViews(DefaultUserID)); n != 1 {
			t.Errorf("%d views kept, want the one that succeeded", n)
		}
	})
}

func TestAppHomeOpened(t *testing.T) {
	t.Parallel()
	srv := newTestServer(t)
	api := webClient(srv)
	bot := startBot(t, api)
	bot.next(t, socketmode.EventTypeHello)

	open := func(t *testing.T) (*slackevents.AppHomeOpenedEvent, *socketmode.Event, string) {
		t.Helper()
		result := make(chan error, 1)
		var id string
		go func() {
			var err error
			id, err = srv.OpenHome(waitCtx(t), DefaultUserID)
			result <- err
		}()
		evt := bot.next(t, socketmode.EventTypeEventsAPI)
		ev, ok := evt.Data.(slackevents.EventsAPIEvent)
		if !ok || ev.Type != slackevents.CallbackEvent || ev.APIAppID != srv.AppID() || ev.TeamID != srv.TeamID() {
			t.Fatalf("data = %#v, want an event_callback for this app", evt.Data)
		}
		inner, ok := ev.InnerEvent.Data.(*slackevents.AppHomeOpenedEvent)
		if !ok {
			t.Fatalf("inner event is %T, want *slackevents.AppHomeOpenedEvent", ev.InnerEvent.Data)
		}
		bot.sm.Ack(*evt.Request)
		if err := <-result; err != nil {
			t.Fatalf("OpenHome: %v", err)
		}
		return inner, &evt, id
	}

	inner, evt, id := open(t)
	dm := srv.DMChannel(DefaultUserID)
	if inner.Type != "app_home_opened" || inner.User != DefaultUserID || inner.Channel != dm || !strings.HasPrefix(dm, "D") ||
		inner.Tab != "home" || inner.EventTimeStamp == "" || inner.View != nil {
		t.Errorf("event = %+v, want home tab of %s in %s and no view yet", inner, DefaultUserID, dm)
	}
	if evt.Request.EnvelopeID != id || evt.Request.AcceptsResponsePayload || evt.Request.Type != TypeEventsAPI {
		t.Errorf("request = %+v", evt.Request)
	}
	rec, _ := srv.Envelope(id)
	want := decodeJSON(t, readFixture(t, "events_api_app_mention_envelope.slack-go-test.json")).(map[string]any)
	got := decodeJSON(t, rec.Frame).(map[string]any)
	delete(want["payload"].(map[string]any), "event") // a different inner event
	delete(got["payload"].(map[string]any), "event")
	if d := shapeDiff("", shape(want), shape(got), true); len(d) > 0 {
		t.Errorf("envelope differs from the events_api fixture: %v\n%s", d, rec.Frame)
	}

	resp, err := publish(waitCtx(t), api, DefaultUserID, "", homeRequest(buttonsBlocks("calls", button("mpc.status", "status conf1", "conf1"))))
	if err != nil {
		t.Fatal(err)
	}
	inner, _, _ = open(t)
	if inner.View == nil || inner.View.ID != resp.View.ID || inner.View.Hash != resp.View.Hash || len(inner.View.Blocks.BlockSet) != 1 {
		t.Errorf("view in the event = %+v, want the published one", inner.View)
	}

	t.Run("messages tab", func(t *testing.T) {
		id := srv.SendAppHomeOpened(AppHomeOpened{Tab: "messages"})
		evt := bot.next(t, socketmode.EventTypeEventsAPI)
		inner := evt.Data.(slackevents.EventsAPIEvent).InnerEvent.Data.(*slackevents.AppHomeOpenedEvent)
		if evt.Request.EnvelopeID != id || inner.Tab != "messages" || inner.View != nil {
			t.Errorf("event = %+v", inner)
		}
		bot.sm.Ack(*evt.Request)
	})

	t.Run("not acknowledged", func(t *testing.T) {
		short := newTestServer(t, WithAckTimeout(100*time.Millisecond))
		dialRawN(t, short, 1)
		if _, err := short.OpenHome(waitCtx(t), DefaultUserID); !errors.Is(err, ErrAckTimeout) {
			t.Errorf("OpenHome without an ack = %v, want ErrAckTimeout", err)
		}
	})
}

func TestHomeButtonClick(t *testing.T) {
	t.Parallel()
	srv := newTestServer(t)
	api := webClient(srv)
	bot := startBot(t, api)
	bot.next(t, socketmode.EventTypeHello)
	view := homeRequest(
		buttonsBlocks("conf1", button("mpc.status", "status conf1", "conf1")),
		buttonsBlocks("conf2", button("mpc.status", "status conf2", "conf2")))
	view.PrivateMetadata = "page=1"
	resp, err := publish(waitCtx(t), api, DefaultUserID, "", view)
	if err != nil {
		t.Fatal(err)
	}

	click := func(t *testing.T, send func() (string, error)) slack.InteractionCallback {
		t.Helper()
		id, err := send()
		if err != nil {
			t.Fatal(err)
		}
		evt := bot.next(t, socketmode.EventTypeInteractive)
		bot.sm.Ack(*evt.Request)
		if evt.Request.EnvelopeID != id {
			t.Fatalf("envelope %s, want %s", evt.Request.EnvelopeID, id)
		}
		return evt.Data.(slack.InteractionCallback)
	}
	cb := click(t, func() (string, error) { return srv.ClickHomeButton(DefaultUserID, "mpc.status", "status conf2") })
	a := cb.ActionCallback.BlockActions
	if cb.Type != slack.InteractionTypeBlockActions || len(a) != 1 || a[0].ActionID != "mpc.status" || a[0].Value != "status conf2" ||
		a[0].BlockID != "conf2" || a[0].Text.Text != "conf2" {
		t.Errorf("callback %s, actions %+v", cb.Type, a)
	}
	if cb.Container.Type != "view" || cb.Container.ViewID != resp.View.ID || cb.View.ID != resp.View.ID ||
		cb.View.Hash != resp.View.Hash || cb.View.Type != slack.VTHomeTab || cb.View.PrivateMetadata != "page=1" {
		t.Errorf("container %+v, view %s/%s/%s", cb.Container, cb.View.ID, cb.View.Hash, cb.View.Type)
	}
	if cb.Channel.ID != "" || cb.ResponseURL != "" || cb.Message.Timestamp != "" || cb.User.ID != DefaultUserID || cb.APIAppID != srv.AppID() {
		t.Errorf("channel %q, response_url %q, message %q, user %q: want no channel, response_url or message",
			cb.Channel.ID, cb.ResponseURL, cb.Message.Timestamp, cb.User.ID)
	}
	var raw struct {
		Payload map[string]json.RawMessage `json:"payload"`
	}
	last := srv.Envelopes()[len(srv.Envelopes())-1]
	if err := json.Unmarshal(last.Frame, &raw); err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{"channel", "response_url", "message"} {
		if _, has := raw.Payload[key]; has {
			t.Errorf("Home click payload has %q", key)
		}
	}

	t.Run("stale view", func(t *testing.T) {
		if _, err := publish(waitCtx(t), api, DefaultUserID, resp.View.Hash, homeRequest(slack.NewDividerBlock())); err != nil {
			t.Fatal(err)
		}
		cb := click(t, func() (string, error) {
			return srv.SendHomeAction(HomeAction{ViewID: resp.View.ID, ActionID: "mpc.status"}), nil
		})
		if cb.View.ID != resp.View.ID || cb.View.Hash != resp.View.Hash || cb.ActionCallback.BlockActions[0].Value != "status conf1" {
			t.Errorf("stale click view %s/%s value %q, want the old view's", cb.View.ID, cb.View.Hash, cb.ActionCallback.BlockActions[0].Value)
		}
	})

	t.Run("no such button", func(t *testing.T) {
		for _, tc := range []struct{ user, action, value string }{
			{DefaultUserID, "mpc.status", ""}, // the current view has no buttons now
			{"U0NOBODY", "mpc.status", ""},
		} {
			if _, err := srv.ClickHomeButton(tc.user, tc.action, tc.value); !errors.Is(err, ErrNoSuchButton) {
				t.Errorf("ClickHomeButton(%s, %s) = %v, want ErrNoSuchButton", tc.user, tc.action, err)
			}
		}
	})
}

func TestDirectMessageByUserID(t *testing.T) {
	t.Parallel()
	srv := newTestServer(t)
	srv.AddUser("U0AGENT1", "agent.one")
	api := webClient(srv)
	ch, ts, err := api.PostMessage("U0AGENT1", slack.MsgOptionText("hold on conf1 ends in 2m", false))
	if err != nil {
		t.Fatalf("post to a user id: %v", err)
	}
	if !strings.HasPrefix(ch, "D") || ch != srv.DMChannel("U0AGENT1") {
		t.Fatalf("channel = %q, want the DM %q", ch, srv.DMChannel("U0AGENT1"))
	}
	if _, _, err := api.PostMessage(ch, slack.MsgOptionTS(ts), slack.MsgOptionText("released", false)); err != nil {
		t.Fatalf("thread reply in the DM: %v", err)
	}
	if ch2, _, err := api.PostMessage("U0AGENT1", slack.MsgOptionText("again", false)); err != nil || ch2 != ch {
		t.Errorf("second post = %q %v, want the same DM", ch2, err)
	}
	if top := srv.MessagesIn(ch); len(top) != 2 || top[0].Text != "hold on conf1 ends in 2m" {
		t.Errorf("DM messages = %+v", top)
	}
	if r := srv.ThreadReplies(ch, ts); len(r) != 1 || r[0].Text != "released" {
		t.Errorf("DM thread = %+v", r)
	}
	if _, _, _, err := api.UpdateMessage(ch, ts, slack.MsgOptionText("hold ended", false)); err != nil {
		t.Errorf("update in the DM: %v", err)
	}
	if _, err := api.PostEphemeral(ch, "U0AGENT1", slack.MsgOptionText("only you", false)); err != nil {
		t.Errorf("ephemeral in the DM: %v", err)
	}
	for _, tc := range []struct{ channel, want string }{
		{"U0NOBODY", "channel_not_found"},
		{DefaultBotUserID, "channel_not_found"},
	} {
		if _, _, err := api.PostMessage(tc.channel, slack.MsgOptionText("x", false)); slackErrCode(err) != tc.want {
			t.Errorf("post to %s: %v, want %s", tc.channel, err, tc.want)
		}
	}
	if _, _, _, err := api.UpdateMessage("U0AGENT1", ts, slack.MsgOptionText("x", false)); slackErrCode(err) != "channel_not_found" {
		t.Errorf("update addressed by user id: %v, want channel_not_found", err)
	}
	if got := srv.DMChannel("U0NOBODY"); got != "" {
		t.Errorf("DMChannel(unknown) = %q", got)
	}
}
