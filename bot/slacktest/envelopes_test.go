package slacktest

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/slack-go/slack"
	"github.com/slack-go/slack/socketmode"
)

func TestSlashCommandDecodesAndAcks(t *testing.T) {
	tests := []struct {
		name        string
		ackPayload  []any // nothing, or one payload for socketmode.Client.Ack
		wantPayload string
		wantShown   string // ephemeral text the user sees after the ack, if any
	}{
		{name: "plain ack"},
		{name: "empty payload", ackPayload: []any{map[string]any{}}, wantPayload: `{}`},
		{name: "message payload", ackPayload: []any{map[string]any{"text": "Usage: /mpc mute <mpc> <member>"}},
			wantPayload: `{"text":"Usage: /mpc mute <mpc> <member>"}`, wantShown: "Usage: /mpc mute <mpc> <member>"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := newTestServer(t)
			srv.AddUser("U0AGENT1", "agent.one")
			bot := startBot(t, webClient(srv))
			bot.next(t, socketmode.EventTypeHello)
			id := srv.SendSlashCommand(SlashCommand{Text: "mute conf1 alice", UserID: "U0AGENT1"})

			evt := bot.next(t, socketmode.EventTypeSlashCommand)
			cmd, ok := evt.Data.(slack.SlashCommand)
			if !ok {
				t.Fatalf("data is %T, want slack.SlashCommand", evt.Data)
			}
			want := slack.SlashCommand{
				Token: cmd.Token, TeamID: srv.TeamID(), TeamDomain: DefaultTeamDomain,
				ChannelID: DefaultChannelID, ChannelName: DefaultChannelName,
				UserID: "U0AGENT1", UserName: "agent.one", Command: "/mpc", Text: "mute conf1 alice",
				ResponseURL: cmd.ResponseURL, TriggerID: cmd.TriggerID, APIAppID: srv.AppID(),
			}
			if cmd != want {
				t.Errorf("slash command = %+v\nwant %+v", cmd, want)
			}
			if !strings.HasPrefix(cmd.ResponseURL, srv.URL()+"/response/") || cmd.TriggerID == "" || cmd.Token == "" {
				t.Errorf("response_url %q, trigger_id %q, token %q: want this server's URL and non-empty ids", cmd.ResponseURL, cmd.TriggerID, cmd.Token)
			}
			if evt.Request.EnvelopeID != id || !evt.Request.AcceptsResponsePayload || evt.Request.Type != TypeSlashCommands {
				t.Errorf("request = %+v, want envelope %s accepting a response payload", evt.Request, id)
			}

			if err := bot.sm.Ack(*evt.Request, tt.ackPayload...); err != nil {
				t.Fatal(err)
			}
			ack, err := srv.WaitAck(waitCtx(t), id)
			if err != nil {
				t.Fatalf("WaitAck: %v", err)
			}
			if !jsonEqual(ack.Payload, tt.wantPayload) || ack.Count != 1 || ack.Late || ack.Latency <= 0 {
				t.Errorf("ack = %+v, want payload %s, one timely ack", ack, tt.wantPayload)
			}
			shown := srv.Ephemerals("U0AGENT1")
			switch {
			case tt.wantShown == "" && len(shown) != 0:
				t.Errorf("ephemerals = %+v, want none", shown)
			case tt.wantShown != "" && (len(shown) != 1 || shown[0].Text != tt.wantShown || shown[0].Method != "ack" ||
				shown[0].Channel != DefaultChannelID || shown[0].EnvelopeID != id):
				t.Errorf("ephemerals = %+v, want one ack reply %q", shown, tt.wantShown)
			}
		})
	}
}

func TestAckPayloadWithInvalidBlocksIsNotShown(t *testing.T) {
	srv := newTestServer(t)
	bot := startBot(t, webClient(srv))
	bot.next(t, socketmode.EventTypeHello)
	id := srv.SendSlashCommand(SlashCommand{Text: "help"})
	evt := bot.next(t, socketmode.EventTypeSlashCommand)
	payload := map[string]any{"blocks": []any{map[string]any{"type": "header", "text": map[string]any{"type": "mrkdwn", "text": "*no*"}}}}
	if err := bot.sm.Ack(*evt.Request, payload); err != nil {
		t.Fatal(err)
	}
	ack, err := srv.WaitAck(waitCtx(t), id)
	if err != nil || ack.Error != "invalid_blocks" {
		t.Errorf("ack = %+v, %v; want acknowledged with Error invalid_blocks", ack, err)
	}
	if got := srv.Ephemerals(DefaultUserID); len(got) != 0 {
		t.Errorf("ephemerals = %+v, want none", got)
	}
}

func buttonsBlocks(blockID string, buttons ...*slack.ButtonBlockElement) slack.Block {
	elems := make([]slack.BlockElement, len(buttons))
	for i, b := range buttons {
		elems[i] = b
	}
	return slack.NewActionBlock(blockID, elems...)
}

func button(actionID, value, label string) *slack.ButtonBlockElement {
	return slack.NewButtonBlockElement(actionID, value, slack.NewTextBlockObject("plain_text", label, false, false))
}

func TestBlockActionDecodes(t *testing.T) {
	srv := newTestServer(t)
	api := webClient(srv)
	ctx := waitCtx(t)
	_, anchorTS, err := api.PostMessageContext(ctx, DefaultChannelID, slack.MsgOptionText("supervisor muted alice on conf1", false))
	if err != nil {
		t.Fatal(err)
	}
	_, replyTS, err := api.PostMessageContext(ctx, DefaultChannelID, slack.MsgOptionTS(anchorTS),
		slack.MsgOptionText("mute: true ✅", false),
		slack.MsgOptionBlocks(buttonsBlocks("followups", button("mpc.unmute", "unmute conf1 alice", "Unmute"))))
	if err != nil {
		t.Fatal(err)
	}
	ephemeralTS, err := api.PostEphemeralContext(ctx, DefaultChannelID, DefaultUserID,
		slack.MsgOptionBlocks(buttonsBlocks("confirm", button("mpc.confirm", "mute conf1 all", "Mute everyone"))))
	if err != nil {
		t.Fatal(err)
	}
	bot := startBot(t, api)
	bot.next(t, socketmode.EventTypeHello)

	tests := []struct {
		name      string
		send      func() (string, error)
		wantTS    string
		wantAct   string
		wantValue string
		wantText  string
		wantBlock string
		wantEph   bool
		wantTh    string
	}{
		{
			name:   "thread reply via ClickButton",
			send:   func() (string, error) { return srv.ClickButton(DefaultUserID, DefaultChannelID, replyTS, "mpc.unmute") },
			wantTS: replyTS, wantAct: "mpc.unmute", wantValue: "unmute conf1 alice", wantText: "Unmute", wantBlock: "followups", wantTh: anchorTS,
		},
		{
			name: "ephemeral via ClickButton",
			send: func() (string, error) {
				return srv.ClickButton(DefaultUserID, DefaultChannelID, ephemeralTS, "mpc.confirm")
			},
			wantTS: ephemeralTS, wantAct: "mpc.confirm", wantValue: "mute conf1 all", wantText: "Mute everyone", wantBlock: "confirm", wantEph: true,
		},
		{
			name: "SendBlockAction fills from the stored message",
			send: func() (string, error) {
				return srv.SendBlockAction(BlockAction{MessageTS: replyTS, ActionID: "mpc.unmute"}), nil
			},
			wantTS: replyTS, wantAct: "mpc.unmute", wantValue: "unmute conf1 alice", wantText: "Unmute", wantBlock: "followups", wantTh: anchorTS,
		},
		{
			name: "SendBlockAction for an unknown message",
			send: func() (string, error) {
				return srv.SendBlockAction(BlockAction{MessageTS: "1700000000.000100", ThreadTS: "1700000000.000001",
					ActionID: "a", BlockID: "b", Value: "v", ButtonText: "Go"}), nil
			},
			wantTS: "1700000000.000100", wantAct: "a", wantValue: "v", wantText: "Go", wantBlock: "b", wantTh: "1700000000.000001",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id, err := tt.send()
			if err != nil {
				t.Fatal(err)
			}
			evt := bot.next(t, socketmode.EventTypeInteractive)
			cb, ok := evt.Data.(slack.InteractionCallback)
			if !ok {
				t.Fatalf("data is %T, want slack.InteractionCallback", evt.Data)
			}
			if evt.Request.EnvelopeID != id || cb.Type != slack.InteractionTypeBlockActions {
				t.Fatalf("envelope %s type %s, want %s block_actions", evt.Request.EnvelopeID, cb.Type, id)
			}
			if cb.User.ID != DefaultUserID || cb.User.Name != DefaultUserName || cb.Channel.ID != DefaultChannelID ||
				cb.Channel.Name != DefaultChannelName || cb.Team.ID != srv.TeamID() || cb.APIAppID != srv.AppID() || cb.TriggerID == "" {
				t.Errorf("callback user/channel/team = %+v / %+v / %+v", cb.User, cb.Channel, cb.Team)
			}
			c := cb.Container
			if c.Type != "message" || c.MessageTs != tt.wantTS || c.ChannelID != DefaultChannelID || c.IsEphemeral != tt.wantEph || c.ThreadTs != tt.wantTh {
				t.Errorf("container = %+v, want message %s thread %q ephemeral %v", c, tt.wantTS, tt.wantTh, tt.wantEph)
			}
			wantMsgTS := tt.wantTS
			if tt.wantEph {
				wantMsgTS = "" // no message object for ephemeral messages
			}
			if cb.Message.Timestamp != wantMsgTS || (!tt.wantEph && cb.Message.ThreadTimestamp != tt.wantTh) {
				t.Errorf("message ts %q thread %q, want %q %q", cb.Message.Timestamp, cb.Message.ThreadTimestamp, wantMsgTS, tt.wantTh)
			}
			acts := cb.ActionCallback.BlockActions
			if len(acts) != 1 {
				t.Fatalf("got %d actions, want 1", len(acts))
			}
			a := acts[0]
			if a.ActionID != tt.wantAct || a.BlockID != tt.wantBlock || a.Value != tt.wantValue || a.Text.Text != tt.wantText ||
				a.Type != "button" || a.ActionTs == "" {
				t.Errorf("action = %+v", a)
			}
			if !strings.HasPrefix(cb.ResponseURL, srv.URL()+"/response/") {
				t.Errorf("response_url = %q", cb.ResponseURL)
			}
			if err := bot.sm.Ack(*evt.Request); err != nil {
				t.Fatal(err)
			}
			if _, err := srv.WaitAck(waitCtx(t), id); err != nil {
				t.Errorf("WaitAck: %v", err)
			}
		})
	}

	if _, err := srv.ClickButton(DefaultUserID, DefaultChannelID, replyTS, "mpc.nothing"); err == nil {
		t.Error("ClickButton on a missing button succeeded")
	}
	if _, err := srv.ClickButton("U0OTHER", DefaultChannelID, ephemeralTS, "mpc.confirm"); err == nil {
		t.Error("ClickButton on someone else's ephemeral message succeeded")
	}
}

// TestEnvelopesMatchFixtures checks the frames the server sends against real
// (and documented) payloads, field by field, and that slack-go decodes both alike.
func TestEnvelopesMatchFixtures(t *testing.T) {
	srv := newTestServer(t)
	api := webClient(srv)
	_, ts, err := api.PostMessage(DefaultChannelID, slack.MsgOptionText("anchor", false))
	if err != nil {
		t.Fatal(err)
	}
	_, replyTS, err := api.PostMessage(DefaultChannelID, slack.MsgOptionTS(ts), slack.MsgOptionText("Approve request?", false),
		slack.MsgOptionBlocks(buttonsBlocks("=qXel", button("WaXA", "click_me_123", "View"))))
	if err != nil {
		t.Fatal(err)
	}
	slashID := srv.SendSlashCommand(SlashCommand{Text: "foobar"})
	clickID, err := srv.ClickButton(DefaultUserID, DefaultChannelID, replyTS, "WaXA")
	if err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name    string
		fixture string
		id      string
		exact   bool // same keys exactly; otherwise the fixture's keys must all be present
		decode  func(t *testing.T, payload json.RawMessage) any
	}{
		{
			name: "slash_commands", fixture: "slash_commands_envelope.json", id: slashID, exact: true,
			decode: func(t *testing.T, p json.RawMessage) any {
				var c slack.SlashCommand
				if err := json.Unmarshal(p, &c); err != nil {
					t.Fatalf("decode slash command: %v", err)
				}
				return c.Command != "" && c.ResponseURL != "" && c.TriggerID != ""
			},
		},
		{
			name: "block_actions", fixture: "interactive_block_actions_envelope.synthetic-compact.json", id: clickID,
			decode: func(t *testing.T, p json.RawMessage) any {
				var cb slack.InteractionCallback
				if err := json.Unmarshal(p, &cb); err != nil {
					t.Fatalf("decode interaction: %v", err)
				}
				return cb.Container.ThreadTs != "" && len(cb.ActionCallback.BlockActions) == 1 && cb.Message.Timestamp != ""
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fixture := readFixture(t, tt.fixture)
			rec, ok := srv.Envelope(tt.id)
			if !ok {
				t.Fatalf("no envelope %s", tt.id)
			}
			want, got := decodeJSON(t, fixture), decodeJSON(t, rec.Frame)
			if d := shapeDiff("", shape(want), shape(got), tt.exact); len(d) > 0 {
				t.Errorf("frame differs from %s:\n%s\nframe: %s", tt.fixture, strings.Join(d, "\n"), rec.Frame)
			}
			var fixReq, gotReq socketmode.Request
			if err := json.Unmarshal(fixture, &fixReq); err != nil {
				t.Fatal(err)
			}
			if err := json.Unmarshal(rec.Frame, &gotReq); err != nil {
				t.Fatal(err)
			}
			if gotReq.Type != fixReq.Type || gotReq.EnvelopeID != tt.id {
				t.Errorf("request type %q id %q, want %q %q", gotReq.Type, gotReq.EnvelopeID, fixReq.Type, tt.id)
			}
			if tt.decode(t, fixReq.Payload) != true || tt.decode(t, gotReq.Payload) != true {
				t.Error("slack-go did not decode the fixture and the frame alike")
			}
		})
	}

	t.Run("is_enterprise_install is the string false", func(t *testing.T) {
		rec, _ := srv.Envelope(slashID)
		if !strings.Contains(string(rec.Frame), `"is_enterprise_install":"false"`) {
			t.Errorf("frame %s lacks the string is_enterprise_install", rec.Frame)
		}
	})
}

func TestSocketFramesMatchFixtures(t *testing.T) {
	srv := newTestServer(t)
	c := dialRaw(t, srv)
	hello := c.read(t)
	for _, fixture := range []string{"hello.json", "hello.real-capture.bolt-js-1061.json"} {
		want := decodeJSON(t, readFixture(t, fixture))
		if d := shapeDiff("", shape(want), shape(hello), true); len(d) > 0 {
			t.Errorf("hello differs from %s: %v (got %v)", fixture, d, hello)
		}
	}

	// Acks in the documented shapes are accepted; a message payload is shown.
	for _, fixture := range []string{"ack_empty.docs.json", "slash_commands_ack_with_payload.docs.json"} {
		id := srv.SendSlashCommand(SlashCommand{Text: "help"})
		if env := c.read(t); env["envelope_id"] != id {
			t.Fatalf("got %v, want envelope %s", env, id)
		}
		frame := strings.Replace(string(readFixture(t, fixture)), "dbdd0ef3-1543-4f94-bfb4-133d0e6c1545", id, 1)
		c.write(t, frame)
		if _, err := srv.WaitAck(waitCtx(t), id); err != nil {
			t.Errorf("%s: %v", fixture, err)
		}
	}
	shown := srv.Ephemerals(DefaultUserID)
	if len(shown) != 1 || shown[0].VisibleText() != "Book of Hours\nDuino Elegies" {
		t.Errorf("ephemerals = %+v, want the docs ack payload's two sections", shown)
	}

	for _, fixture := range []string{"disconnect.json", "disconnect_warning.docs.json", "disconnect_refresh_requested.docs.json", "disconnect_link_disabled.docs.json"} {
		t.Run(fixture, func(t *testing.T) {
			want := decodeJSON(t, readFixture(t, fixture)).(map[string]any)
			c := dialRaw(t, srv)
			c.read(t) // hello
			srv.Disconnect(want["reason"].(string))
			got := c.read(t)
			if d := shapeDiff("", shape(want), shape(got), true); len(d) > 0 || got["reason"] != want["reason"] {
				t.Errorf("disconnect = %v, want like %v (%v)", got, want, d)
			}
		})
	}

	t.Run("apps.connections.open response", func(t *testing.T) {
		resp, err := postJSONWithBearer(srv.APIURL()+"apps.connections.open", srv.AppToken(), "")
		if err != nil {
			t.Fatal(err)
		}
		want := decodeJSON(t, readFixture(t, "apps.connections.open.response.docs.json"))
		if d := shapeDiff("", shape(want), shape(resp), true); len(d) > 0 {
			t.Errorf("response %v differs: %v", resp, d)
		}
	})
}

func TestEventsAPIEnvelopeRedelivery(t *testing.T) {
	srv := newTestServer(t)
	bot := startBot(t, webClient(srv))
	bot.next(t, socketmode.EventTypeHello)
	fixture := readFixture(t, "events_api_app_mention_envelope.slack-go-test.json")
	id := srv.SendEnvelope(fixture)
	if id != "c67a03d0-4094-4744-90ca-d286e00a3ab1" {
		t.Fatalf("SendEnvelope id = %q, want the fixture's", id)
	}
	first := bot.next(t, socketmode.EventTypeEventsAPI)
	if first.Request.RetryAttempt != 0 || first.Request.EnvelopeID != id {
		t.Fatalf("first delivery = %+v", first.Request)
	}
	if err := srv.Redeliver(id); err != nil {
		t.Fatal(err)
	}
	retry := bot.next(t, socketmode.EventTypeEventsAPI)
	if retry.Request.RetryAttempt != 1 || retry.Request.RetryReason != "timeout" || retry.Request.EnvelopeID != id {
		t.Fatalf("redelivery = %+v, want retry_attempt 1, retry_reason timeout", retry.Request)
	}
	bot.sm.Ack(*retry.Request)
	if _, err := srv.WaitAck(waitCtx(t), id); err != nil {
		t.Errorf("WaitAck: %v", err)
	}
	rec, _ := srv.Envelope(id)
	if len(rec.Deliveries) != 2 || rec.Deliveries[1].RetryAttempt != 1 || rec.Type != TypeEventsAPI {
		t.Errorf("record = %+v", rec)
	}
	// The redelivered frame still matches the fixture's shape.
	if d := shapeDiff("", shape(decodeJSON(t, fixture)), shape(decodeJSON(t, rec.Frame)), true); len(d) > 0 {
		t.Errorf("redelivered frame differs: %v", d)
	}
}

// TestDirectMessageFallsBackToResponseURL is the DM case from the design: the
// bot cannot post in a DM it is not part of, but the response_url works.
func TestDirectMessageFallsBackToResponseURL(t *testing.T) {
	srv := newTestServer(t)
	api := webClient(srv)
	bot := startBot(t, api)
	bot.next(t, socketmode.EventTypeHello)
	srv.SendSlashCommand(SlashCommand{ChannelID: "D0DM12345", Text: "status conf1"})
	evt := bot.next(t, socketmode.EventTypeSlashCommand)
	cmd := evt.Data.(slack.SlashCommand)
	if cmd.ChannelName != "directmessage" {
		t.Errorf("channel_name = %q, want directmessage", cmd.ChannelName)
	}
	bot.sm.Ack(*evt.Request)
	if _, _, err := api.PostMessage(cmd.ChannelID, slack.MsgOptionText("anchor", false)); slackErrCode(err) != "channel_not_found" {
		t.Fatalf("post in the DM: %v, want channel_not_found", err)
	}
	if _, _, err := api.PostMessage("", slack.MsgOptionResponseURL(cmd.ResponseURL, slack.ResponseTypeInChannel),
		slack.MsgOptionText("conf1: 3 members", false)); err != nil {
		t.Fatalf("response_url: %v", err)
	}
	if got := srv.MessagesIn("D0DM12345"); len(got) != 1 || got[0].Text != "conf1: 3 members" {
		t.Errorf("DM shows %+v", got)
	}
}
