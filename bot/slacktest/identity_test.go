package slacktest

import (
	"testing"

	"github.com/slack-go/slack"
	"github.com/slack-go/slack/slackevents"
	"github.com/slack-go/slack/socketmode"
)

// TestAppIdentityIsConsistent checks that hello, auth.test, bots.info and
// every payload name the same app, and that a foreign app id can be sent.
func TestAppIdentityIsConsistent(t *testing.T) {
	t.Parallel()
	srv := newTestServer(t, WithAppID("A0FLEET"), WithTokens("xapp-1-A0FLEET-1-x", "xoxb-fleet"))
	api := webClient(srv)
	bot := startBot(t, api)
	hello := bot.next(t, socketmode.EventTypeHello)
	appID := hello.Request.ConnectionInfo.AppID

	auth, err := postJSONWithBearer(srv.APIURL()+"auth.test", srv.BotToken(), "")
	if err != nil || auth["app_id"] != appID || auth["bot_id"] != DefaultBotID || auth["user_id"] != srv.BotUserID() {
		t.Errorf("auth.test = %v (%v), want app %s", auth, err, appID)
	}
	info, err := api.GetBotInfo(slack.GetBotInfoParameters{Bot: DefaultBotID})
	if err != nil || info.AppID != appID || info.ID != DefaultBotID || info.UserID != srv.BotUserID() || info.Deleted {
		t.Errorf("bots.info = %+v (%v), want app %s, user %s", info, err, appID, srv.BotUserID())
	}
	for _, tc := range []struct{ bot, want string }{{"B0OTHER", "bot_not_found"}, {"", "missing_argument"}} {
		if _, err := api.GetBotInfo(slack.GetBotInfoParameters{Bot: tc.bot}); slackErrCode(err) != tc.want {
			t.Errorf("bots.info %q: %v, want %s", tc.bot, err, tc.want)
		}
	}

	_, ts, err := api.PostMessage(DefaultChannelID, slack.MsgOptionText("anchor", false),
		slack.MsgOptionBlocks(buttonsBlocks("b", button("mpc.unmute", "unmute conf1 alice", "Unmute"))))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := publish(waitCtx(t), api, DefaultUserID, "", homeRequest(buttonsBlocks("h", button("mpc.status", "status conf1", "conf1")))); err != nil {
		t.Fatal(err)
	}
	for _, foreign := range []string{"", "A0OTHERAPP"} {
		want := appID
		if foreign != "" {
			want = foreign
		}
		srv.SendSlashCommand(SlashCommand{Text: "help", APIAppID: foreign})
		if cmd := bot.next(t, socketmode.EventTypeSlashCommand).Data.(slack.SlashCommand); cmd.APIAppID != want {
			t.Errorf("slash command api_app_id = %q, want %q", cmd.APIAppID, want)
		}
		srv.SendBlockAction(BlockAction{MessageTS: ts, ActionID: "mpc.unmute", APIAppID: foreign})
		if cb := bot.next(t, socketmode.EventTypeInteractive).Data.(slack.InteractionCallback); cb.APIAppID != want {
			t.Errorf("block_actions api_app_id = %q, want %q", cb.APIAppID, want)
		}
		srv.SendHomeAction(HomeAction{ActionID: "mpc.status", APIAppID: foreign})
		if cb := bot.next(t, socketmode.EventTypeInteractive).Data.(slack.InteractionCallback); cb.APIAppID != want || cb.View.AppID != appID {
			t.Errorf("Home block_actions api_app_id = %q (view app %q), want %q", cb.APIAppID, cb.View.AppID, want)
		}
		srv.SendAppHomeOpened(AppHomeOpened{APIAppID: foreign})
		if ev := bot.next(t, socketmode.EventTypeEventsAPI).Data.(slackevents.EventsAPIEvent); ev.APIAppID != want {
			t.Errorf("events_api api_app_id = %q, want %q", ev.APIAppID, want)
		}
	}
}

// TestResponseURLReplacesTheAckReply: the message a slash command's ack
// showed is the original its response_url replaces or deletes.
func TestResponseURLReplacesTheAckReply(t *testing.T) {
	t.Parallel()
	srv := newTestServer(t)
	api := webClient(srv)
	bot := startBot(t, api)
	bot.next(t, socketmode.EventTypeHello)
	id := srv.SendSlashCommand(SlashCommand{Text: "status conf1"})
	evt := bot.next(t, socketmode.EventTypeSlashCommand)
	cmd := evt.Data.(slack.SlashCommand)
	if err := bot.sm.Ack(*evt.Request, map[string]any{"text": "Working on it…"}); err != nil {
		t.Fatal(err)
	}
	if _, err := srv.WaitAck(waitCtx(t), id); err != nil {
		t.Fatal(err)
	}
	shown := srv.Ephemerals(DefaultUserID)
	if len(shown) != 1 || shown[0].Method != "ack" {
		t.Fatalf("after the ack the user sees %+v", shown)
	}
	if _, _, err := api.PostMessage("", slack.MsgOptionReplaceOriginal(cmd.ResponseURL), slack.MsgOptionText("conf1: 3 members", false)); err != nil {
		t.Fatalf("replace_original: %v", err)
	}
	now := srv.Ephemerals(DefaultUserID)
	if len(now) != 1 || now[0].TS != shown[0].TS || now[0].Text != "conf1: 3 members" || now[0].Edits != 1 {
		t.Errorf("after replace_original the user sees %+v, want the ack reply replaced", now)
	}
	if _, _, err := api.PostMessage("", slack.MsgOptionDeleteOriginal(cmd.ResponseURL)); err != nil {
		t.Fatalf("delete_original: %v", err)
	}
	if got := srv.Ephemerals(DefaultUserID); len(got) != 0 {
		t.Errorf("after delete_original the user sees %+v", got)
	}
	// An ephemeral cannot be edited with chat.update, only through its response_url.
	if _, _, _, err := api.UpdateMessage(DefaultChannelID, shown[0].TS, slack.MsgOptionText("x", false)); slackErrCode(err) != "message_not_found" {
		t.Errorf("chat.update of an ephemeral: %v, want message_not_found", err)
	}
}
